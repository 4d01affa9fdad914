/*
 * password.h - login password hashing and verification with libxcrypt.
 *
 * New hashes are yescrypt ($y$). Verification also accepts imported
 * bcrypt ($2b$, $2a$, $2y$), SHA-crypt ($6$, $5$) and whatever else
 * libxcrypt knows; hk_password_needs_rehash says when a login should
 * replace the stored hash.
 *
 * These are plain blocking functions and slow on purpose (yescrypt at the
 * default cost takes ~20 ms of CPU): call them from a worker thread, never
 * on an event loop. They are thread-safe (struct crypt_data per call, on
 * the heap: it is 32 KiB).
 */
#ifndef HK_PASSWORD_H
#define HK_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>

#define HK_PASSWORD_MIN 8      /* characters asked of new passwords (bytes, UTF-8) */
#define HK_PASSWORD_MAX 512    /* bytes, any password we hash or verify */
#define HK_PW_HASH_OUT 256     /* room for any hash we produce */

/* Whether password may be set: HK_PASSWORD_MIN..HK_PASSWORD_MAX bytes,
 * valid UTF-8, accepted by SASLprep (no control characters, so it also
 * works with SCRAM), not only spaces. NULL when fine, else the reason. */
const char *hk_password_check(const char *password);

/* Hashes password with yescrypt; cost 0 = libxcrypt's default (5).
 * out gets the crypt string. -1 with errno on failure (EINVAL: too long
 * or contains NUL; ERANGE: outlen too small). */
int hk_password_hash(const char *password, unsigned long cost, char *out, size_t outlen);

enum hk_pw_verify {
	HK_PW_OK,
	HK_PW_MISMATCH,
	HK_PW_ERROR,   /* hash unusable (unknown or disabled method, malformed) */
};

/* Verifies password against a stored crypt string, constant-time
 * comparison. */
enum hk_pw_verify hk_password_verify(const char *password, const char *hash);
/* The same, answering from a cache of recent successful verifications
 * (password_cache.c: keyed by an HMAC of hash and password under a
 * per-process key; a changed hash misses; an hour; only successes). For
 * logins; thread-safe. */
enum hk_pw_verify hk_password_verify_cached(const char *password, const char *hash);
void hk_password_cache_clear(void);

/* Runs one verification against a fixed dummy hash, so that a login for
 * an unknown user costs as much as one for a known user. */
void hk_password_burn(const char *password, unsigned long cost);

/* True when hash is not yescrypt, or crypt_checksalt finds it legacy,
 * too cheap or invalid. */
bool hk_password_needs_rehash(const char *hash);

/* The method of a hash for display: "yescrypt", "bcrypt", "sha512crypt",
 * "sha256crypt", "md5crypt", "unknown". */
const char *hk_password_method(const char *hash);

#endif
