/*
 * secretbox.h - authenticated encryption of small secrets at rest
 * (AES-256-GCM, OpenSSL EVP) with a key from a key file.
 *
 * Used for the plaintext-equivalent secrets of CRAM-MD5 and APOP. A sealed
 * box is: version (1) | key id (4, from a hash of the key) | nonce (12,
 * random per box) | ciphertext | tag (16). The caller's associated data
 * (the owner's address) is authenticated too, so a box cannot be moved to
 * another record.
 *
 * The key file holds 64 hex digits (32 bytes). It is created 0600 on first
 * use (inside a 0700 directory when that is missing), and refused when it
 * is not a regular file, not owned by us (or root), or readable or
 * writable by group or others (OpenSMTPD check_file_secrecy).
 */
#ifndef HK_SECRETBOX_H
#define HK_SECRETBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HK_SECRETBOX_KEY_LEN 32
#define HK_SECRETBOX_OVERHEAD (1 + 4 + 12 + 16)
#define HK_SECRETBOX_PLAIN_MAX 512

struct hk_secretbox;

/* 0, or -1 with errno and a sentence in err: ENOENT (missing and !create),
 * EPERM (insecure file: the message says how to fix it), EINVAL (not a
 * key file), or the system's error. */
int hk_secretbox_load(const char *path, bool create, struct hk_secretbox **box_r, char *err, size_t errlen);
/* A box with a given key (tests). */
struct hk_secretbox *hk_secretbox_from_key(const uint8_t key[HK_SECRETBOX_KEY_LEN]);
void hk_secretbox_free(struct hk_secretbox **box);

/* Seals pt (at most HK_SECRETBOX_PLAIN_MAX bytes) into out
 * (ptlen + HK_SECRETBOX_OVERHEAD bytes). -1 with errno on failure. */
int hk_secretbox_seal(const struct hk_secretbox *b, const void *aad, size_t aadlen, const void *pt, size_t ptlen,
    uint8_t *out, size_t outcap, size_t *outlen_r);
/* Opens a box into pt. -1 with errno: EBADMSG (tampered, wrong associated
 * data or malformed), ENOKEY (sealed with another key), ERANGE (ptcap). */
int hk_secretbox_open(const struct hk_secretbox *b, const void *aad, size_t aadlen, const uint8_t *in, size_t inlen,
    uint8_t *pt, size_t ptcap, size_t *ptlen_r);

#endif
