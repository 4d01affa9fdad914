/*
 * srs.h - Sender Rewriting Scheme for forwarded mail: the envelope sender
 * of a forward becomes an address of ours, so the target's SPF check
 * passes, and a bounce sent back to it can be reversed to the original
 * sender.
 *
 *   SRS0=HHHHHH=TT=orig-domain=orig-local@our-domain
 *
 * HHHHHH is the first 30 bits of HMAC-SHA256(key, lower-case
 * "TT=orig-domain=orig-local") in base32, TT the day number (mod 1024) in
 * base32; a reversed address older than SRS_MAX_AGE_DAYS is refused.
 * An address that is already SRS0 is wrapped again (no SRS1 chains yet).
 *
 * The key is STATE/keys/srs.key: SRS_KEY_LEN random bytes, created 0600
 * when missing; a key file readable by others is refused (STYLE.md §5.13).
 */
#ifndef HK_SRS_H
#define HK_SRS_H

#include <stddef.h>
#include <time.h>

#define SRS_KEY_LEN 32
#define SRS_HASH_LEN 6
#define SRS_MAX_AGE_DAYS 21
#define SRS_MAX_ADDRESS 254 /* RFC 5321 4.5.3.1.3 path minus the brackets */

/* Loads or creates the key. 0, or -1 with errno (EPERM: file readable by
 * group or others; EINVAL: wrong size). */
int srs_key_load(const char *path, unsigned char key[SRS_KEY_LEN]);

/* Rewrites `sender` (local@domain) into `out`. -1 with errno EINVAL when
 * the sender has no '@', is empty or its domain has an '=' (it could not
 * be reversed), ENAMETOOLONG when the result would be longer than
 * SRS_MAX_ADDRESS or outsz. */
int srs_forward(const unsigned char key[SRS_KEY_LEN], const char *sender, const char *our_domain, time_t now,
    char *out, size_t outsz);

/* Reverses an SRS0 address into the original sender. -1 with errno
 * EINVAL (not SRS0 or malformed), EBADMSG (hash does not match),
 * ETIMEDOUT (older than SRS_MAX_AGE_DAYS), ENAMETOOLONG. */
int srs_reverse(const unsigned char key[SRS_KEY_LEN], const char *addr, time_t now, char *out, size_t outsz);

#endif
