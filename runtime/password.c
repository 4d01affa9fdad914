/*
 * password.c - yescrypt hashing and crypt(3) verification with libxcrypt.
 * See password.h: blocking, slow on purpose, worker threads only.
 */
#include "password.h"

#include <crypt.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "charset.h"
#include "scram.h"

const char *
hk_password_check(const char *password)
{
	size_t n = strlen(password);
	if (n > HK_PASSWORD_MAX)
		return "password too long (at most 512 bytes)";
	if (!utf8_valid((const char *)password, n))
		return "password is not valid UTF-8";
	size_t chars = 0, spaces = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)password[i];
		if ((c & 0xC0) != 0x80)
			chars++;
		if (c == ' ')
			spaces++;
		if (c < 0x20 || c == 0x7F)
			return "password contains control characters";
	}
	if (chars < HK_PASSWORD_MIN)
		return "password too short (at least 8 characters)";
	if (spaces == n)
		return "password is only spaces";
	char *prepped;
	if (hk_saslprep(password, &prepped) < 0)
		return "password contains characters SASLprep (RFC 4013) prohibits or unassigned code points";
	bool empty = prepped[0] == '\0';
	OPENSSL_cleanse(prepped, strlen(prepped));
	free(prepped);
	if (empty)
		return "password is empty after SASLprep";
	return NULL;
}

int
hk_password_hash(const char *password, unsigned long cost, char *out, size_t outlen)
{
	if (strlen(password) > HK_PASSWORD_MAX) {
		errno = EINVAL;
		return -1;
	}
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];
	if (crypt_gensalt_rn("$y$", cost, NULL, 0, setting, sizeof(setting)) == NULL) {
		errno = EINVAL;
		return -1;
	}
	struct crypt_data *cd = calloc(1, sizeof(*cd));
	if (cd == NULL)
		return -1;
	int rc = -1;
	const char *h = crypt_rn(password, setting, cd, (int)sizeof(*cd));
	if (h == NULL || h[0] == '*') {
		errno = EINVAL;
	} else if (strlen(h) + 1 > outlen) {
		errno = ERANGE;
	} else {
		memcpy(out, h, strlen(h) + 1);
		rc = 0;
	}
	OPENSSL_cleanse(cd, sizeof(*cd));
	free(cd);
	return rc;
}

enum hk_pw_verify
hk_password_verify(const char *password, const char *hash)
{
	size_t hl = strlen(hash);
	if (hl == 0 || hl >= CRYPT_OUTPUT_SIZE || hash[0] == '*' || hash[0] == '!')
		return HK_PW_ERROR;
	if (strlen(password) > HK_PASSWORD_MAX)
		return HK_PW_MISMATCH;
	struct crypt_data *cd = calloc(1, sizeof(*cd));
	if (cd == NULL)
		return HK_PW_ERROR;
	enum hk_pw_verify r;
	const char *h = crypt_rn(password, hash, cd, (int)sizeof(*cd));
	if (h == NULL || h[0] == '*')
		r = HK_PW_ERROR;
	else if (strlen(h) != hl)
		r = HK_PW_MISMATCH;
	else
		r = CRYPTO_memcmp(h, hash, hl) == 0 ? HK_PW_OK : HK_PW_MISMATCH;
	OPENSSL_cleanse(cd, sizeof(*cd));
	free(cd);
	return r;
}

static pthread_mutex_t dummy_mu = PTHREAD_MUTEX_INITIALIZER;
static char dummy_hash[HK_PW_HASH_OUT];
static unsigned long dummy_cost = (unsigned long)-1;

void
hk_password_burn(const char *password, unsigned long cost)
{
	char h[HK_PW_HASH_OUT];
	pthread_mutex_lock(&dummy_mu);
	if (dummy_cost != cost) {
		if (hk_password_hash("hikyaku dummy password", cost, dummy_hash, sizeof(dummy_hash)) == 0)
			dummy_cost = cost;
		else
			dummy_hash[0] = '\0';
	}
	memcpy(h, dummy_hash, sizeof(h));
	pthread_mutex_unlock(&dummy_mu);
	if (h[0])
		(void)hk_password_verify(password, h);
}

bool
hk_password_needs_rehash(const char *hash)
{
	if (strncmp(hash, "$y$", 3) != 0)
		return true;
	return crypt_checksalt(hash) != CRYPT_SALT_OK;
}

const char *
hk_password_method(const char *hash)
{
	static const struct {
		const char *prefix, *name;
	} m[] = {
		{ "$y$", "yescrypt" }, { "$gy$", "gost-yescrypt" }, { "$7$", "scrypt" }, { "$2b$", "bcrypt" },
		{ "$2a$", "bcrypt" }, { "$2y$", "bcrypt" }, { "$6$", "sha512crypt" }, { "$5$", "sha256crypt" },
		{ "$1$", "md5crypt" },
	};
	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
		if (strncmp(hash, m[i].prefix, strlen(m[i].prefix)) == 0)
			return m[i].name;
	return hash[0] ? "unknown" : "none";
}
