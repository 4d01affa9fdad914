/*
 * password_cache.c - recently verified passwords (see password.h,
 * hk_password_verify_cached).
 *
 * Mail clients log in again and again: POP3 every few minutes, IMAP
 * clients reconnect, phones open several sessions at once. yescrypt is
 * meant to cost ~20 ms, and paying it on every such login is what makes a
 * mail server's logins slow. So a successful verification is remembered
 * for a while, the way Dovecot's auth cache does:
 *
 *   key = HMAC-SHA256(per-process random key, hash NUL password)
 *
 * Only the digest is kept, never the password. The stored hash is part of
 * the key, so a password change (a new hash, a new salt) simply misses,
 * and so does any other user. Only successes are cached: a guess always
 * pays the full cost. Entries expire after HK_PWCACHE_TTL seconds; the
 * table is fixed-size (a miss on a full table replaces the oldest entry
 * of the probed bucket). Thread-safe (one mutex; a lookup is ~1 µs).
 */
#include "password.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#define HK_PWCACHE_SLOTS 8192 /* power of two */
#define HK_PWCACHE_WAYS 4     /* slots probed per key */
#define HK_PWCACHE_TTL 3600   /* seconds */

struct slot {
	unsigned char key[32];
	time_t expires; /* 0: empty */
};

static struct slot slots[HK_PWCACHE_SLOTS];
static unsigned char hmac_key[32];
static bool ready;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static bool
digest(const char *password, const char *hash, unsigned char out[32])
{
	if (!ready) {
		if (RAND_bytes(hmac_key, sizeof(hmac_key)) != 1)
			return false;
		ready = true;
	}
	bool ok = false;
	/* one-shot HMAC over hash NUL password, without concatenating copies */
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *c = mac ? EVP_MAC_CTX_new(mac) : NULL;
	static char sha256[] = "SHA256";
	OSSL_PARAM params[] = { OSSL_PARAM_construct_utf8_string("digest", sha256, 0), OSSL_PARAM_construct_end() };
	size_t outl = 0;
	if (c && EVP_MAC_init(c, hmac_key, sizeof(hmac_key), params) == 1 &&
	    EVP_MAC_update(c, (const unsigned char *)hash, strlen(hash) + 1) == 1 &&
	    EVP_MAC_update(c, (const unsigned char *)password, strlen(password)) == 1 &&
	    EVP_MAC_final(c, out, &outl, 32) == 1 && outl == 32)
		ok = true;
	EVP_MAC_CTX_free(c);
	EVP_MAC_free(mac);
	return ok;
}

static size_t
bucket(const unsigned char key[32])
{
	size_t b;
	memcpy(&b, key, sizeof(b));
	return b & (HK_PWCACHE_SLOTS - 1) & ~(size_t)(HK_PWCACHE_WAYS - 1);
}

enum hk_pw_verify
hk_password_verify_cached(const char *password, const char *hash)
{
	unsigned char key[32];
	pthread_mutex_lock(&lock);
	bool have_key = digest(password, hash, key);
	time_t now = time(NULL);
	if (have_key) {
		size_t b = bucket(key);
		for (size_t i = 0; i < HK_PWCACHE_WAYS; i++)
			if (slots[b + i].expires > now && CRYPTO_memcmp(slots[b + i].key, key, 32) == 0) {
				pthread_mutex_unlock(&lock);
				return HK_PW_OK;
			}
	}
	pthread_mutex_unlock(&lock);
	enum hk_pw_verify v = hk_password_verify(password, hash);
	if (v != HK_PW_OK || !have_key)
		return v;
	pthread_mutex_lock(&lock);
	size_t b = bucket(key), victim = b;
	for (size_t i = 0; i < HK_PWCACHE_WAYS; i++)
		if (slots[b + i].expires < slots[victim].expires)
			victim = b + i;
	memcpy(slots[victim].key, key, 32);
	slots[victim].expires = now + HK_PWCACHE_TTL;
	pthread_mutex_unlock(&lock);
	OPENSSL_cleanse(key, sizeof(key));
	return v;
}

void
hk_password_cache_clear(void)
{
	pthread_mutex_lock(&lock);
	memset(slots, 0, sizeof(slots));
	pthread_mutex_unlock(&lock);
}
