/*
 * scram.h - SCRAM-SHA-256 (RFC 5802, RFC 7677) on the server side, and the
 * challenge-response helpers of the legacy mechanisms CRAM-MD5 (RFC 2195)
 * and APOP (RFC 1939).
 *
 * SCRAM keys (salt, iterations, StoredKey, ServerKey) are derived once
 * when a password is set (hk_scram_keys_new) and stored beside the
 * yescrypt hash; they cannot be derived from the hash.
 *
 * One exchange is one `struct hk_scram_server`:
 *
 *   s = hk_scram_server_new(&opts);                       AUTH SCRAM-SHA-256
 *   st = hk_scram_server_client_first(s, msg, len);       client-first
 *   ... look up hk_scram_server_username(s) (worker thread) ...
 *   st = hk_scram_server_first(s, keys_or_NULL, &out);    server-first -> client
 *   st = hk_scram_server_final(s, msg, len, &out);        client-final; out = server-final
 *   HK_SCRAM_OK: send out ("v=..."), the user is authenticated.
 *   HK_SCRAM_FAIL: send out ("e=...") when non-empty, then fail (535 / NO).
 *   HK_SCRAM_BAD: malformed message: abort the exchange (501 / BAD).
 *
 * Messages are the raw SASL payloads: the protocol layer base64-decodes
 * what the client sends and encodes what it sends back (hk_b64_*).
 * Unknown users get a deterministic fake salt and the usual iteration
 * count, so the exchange looks the same until the proof fails.
 *
 * Channel binding: `opts.cb` is the TLS layer's tls-exporter value (RFC
 * 9266: SSL_export_keying_material(ssl, out, 32, "EXPORTER-Channel-Binding",
 * 24, NULL, 0, 0)) when the connection is TLS 1.3 (or 1.2 with extended
 * master secret) and SCRAM-SHA-256-PLUS is advertised; NULL otherwise.
 *
 * SECURITY: every client message is untrusted: lengths are checked against
 * HK_SCRAM_MSG_MAX first; comparisons of secrets are constant-time.
 */
#ifndef HK_SCRAM_H
#define HK_SCRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define HK_SCRAM_KEY_LEN 32           /* SHA-256 */
#define HK_SCRAM_SALT_LEN 16          /* generated salts */
#define HK_SCRAM_SALT_MIN 16          /* accepted from storage (PBKDF2 does not check) */
#define HK_SCRAM_SALT_MAX 64
#define HK_SCRAM_ITER_MIN 4096        /* RFC 7677 */
#define HK_SCRAM_ITER_MAX (1u << 20)  /* bound what a stored record can make us do */
#define HK_SCRAM_ITERATIONS_DEFAULT 10000
#define HK_SCRAM_MSG_MAX 2048         /* client messages, decoded */
#define HK_SCRAM_NONCE_MAX 256        /* client nonce */
#define HK_SCRAM_USER_MAX 320         /* username after =2C/=3D decoding */
#define HK_SCRAM_CB_MAX 64            /* channel-binding data */

struct hk_scram_keys {
	uint32_t iterations;
	uint8_t salt_len;
	uint8_t salt[HK_SCRAM_SALT_MAX];
	uint8_t stored_key[HK_SCRAM_KEY_LEN];
	uint8_t server_key[HK_SCRAM_KEY_LEN];
};

/* SASLprep (RFC 4013) for stored strings (unassigned code points refused).
 * *out_r is malloc'd. -1 (errno EINVAL) on invalid UTF-8 or prohibited
 * characters. */
int hk_saslprep(const char *in, char **out_r);

/* Derives the keys for password (SASLprep'd here) with the given salt and
 * iteration count. -1 with errno EINVAL on a SASLprep failure or a salt or
 * count out of range. */
int hk_scram_keys_derive(const char *password, const uint8_t *salt, size_t salt_len, uint32_t iterations,
    struct hk_scram_keys *out);
/* The same with a fresh random salt of HK_SCRAM_SALT_LEN bytes. */
int hk_scram_keys_new(const char *password, uint32_t iterations, struct hk_scram_keys *out);
/* Range checks of keys read back from storage. */
bool hk_scram_keys_valid(const struct hk_scram_keys *k);

/* --- the server side of one exchange --------------------------------------------- */
enum hk_scram_status {
	HK_SCRAM_CONTINUE, /* send out, wait for the next client message */
	HK_SCRAM_OK,       /* authenticated; send out (server-final "v=") */
	HK_SCRAM_FAIL,     /* authentication failed; send out ("e=") if non-empty */
	HK_SCRAM_BAD,      /* protocol error or call out of order */
};

struct hk_scram_cb {
	const char *type;       /* "tls-exporter" */
	const uint8_t *data;
	size_t len;             /* <= HK_SCRAM_CB_MAX */
};

struct hk_scram_opts {
	bool plus;                    /* the client chose SCRAM-SHA-256-PLUS */
	const struct hk_scram_cb *cb; /* channel binding available (and -PLUS advertised), or NULL */
	uint32_t fake_iterations;     /* for unknown users; 0 = HK_SCRAM_ITERATIONS_DEFAULT */
};

struct hk_scram_server;

struct hk_scram_server *hk_scram_server_new(const struct hk_scram_opts *opts);
void hk_scram_server_free(struct hk_scram_server **s);

/* client-first-message. CONTINUE: look the user up, then call
 * hk_scram_server_first. FAIL: channel-binding downgrade or unsupported
 * binding (nothing to send). BAD: malformed. */
enum hk_scram_status hk_scram_server_client_first(struct hk_scram_server *s, const char *msg, size_t len);
/* The decoded username (authcid) of the client-first message. */
const char *hk_scram_server_username(const struct hk_scram_server *s);
/* The authzid when the client sent one ("" otherwise); the exchange fails
 * at the proof when it differs from the username (no proxy logins). */
const char *hk_scram_server_authzid(const struct hk_scram_server *s);
/* server-first-message into out (appended). keys NULL: unknown user. */
enum hk_scram_status hk_scram_server_first(struct hk_scram_server *s, const struct hk_scram_keys *keys,
    struct hk_buf *out);
/* client-final-message; server-final into out (appended). */
enum hk_scram_status hk_scram_server_final(struct hk_scram_server *s, const char *msg, size_t len,
    struct hk_buf *out);
/* Tests only: use this server nonce instead of a random one. */
void hk_scram_server_set_nonce(struct hk_scram_server *s, const char *nonce);

/* --- base64 for SASL (RFC 4648, strict: padding required, no whitespace) ---------- */
void hk_b64_encode(const void *in, size_t len, struct hk_buf *out);
/* false on any character outside the alphabet, bad padding or length. */
bool hk_b64_decode(const char *in, size_t len, struct hk_buf *out);

/* --- CRAM-MD5 and APOP ---------------------------------------------------------------- */
#define HK_CHALLENGE_MAX 300

/* "<random.unixtime@host>" (also the APOP greeting timestamp). */
void hk_auth_challenge(const char *host, char out[HK_CHALLENGE_MAX]);
/* Splits a decoded CRAM-MD5 response "user SP 32 lowercase-or-uppercase hex"
 * (the user may contain spaces; the last space separates). */
bool hk_cram_md5_split(const char *resp, char *user, size_t user_cap, char digest[33]);
/* HMAC-MD5(secret, challenge) == digest (hex), constant-time. */
bool hk_cram_md5_verify(const void *secret, size_t secret_len, const char *challenge, const char *digest_hex);
/* MD5(timestamp || secret) == digest (hex), constant-time. */
bool hk_apop_verify(const void *secret, size_t secret_len, const char *timestamp, const char *digest_hex);

#endif
