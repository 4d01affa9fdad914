/*
 * srs.c - SRS0 envelope rewriting and reversal (see srs.h).
 */
#include "srs.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static const char b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

int
srs_key_load(const char *path, unsigned char key[SRS_KEY_LEN])
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ENOENT) {
		unsigned char k[SRS_KEY_LEN];
		if (RAND_bytes(k, sizeof(k)) != 1) {
			errno = EIO;
			return -1;
		}
		char tmp[4096];
		snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
		int w = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (w < 0)
			return -1;
		bool ok = write(w, k, sizeof(k)) == (ssize_t)sizeof(k) && fsync(w) == 0;
		ok = close(w) == 0 && ok;
		/* link, not rename: a concurrent creator's key wins and is read back */
		if (!ok || (link(tmp, path) < 0 && errno != EEXIST)) {
			unlink(tmp);
			return -1;
		}
		unlink(tmp);
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	}
	if (fd < 0)
		return -1;
	struct stat st;
	if (fstat(fd, &st) < 0 || (st.st_mode & 077) != 0 || st.st_size != SRS_KEY_LEN) {
		int e = (st.st_mode & 077) != 0 ? EPERM : EINVAL;
		close(fd);
		errno = e;
		return -1;
	}
	ssize_t n = read(fd, key, SRS_KEY_LEN);
	close(fd);
	if (n != SRS_KEY_LEN) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

static void
srs_hash(const unsigned char key[SRS_KEY_LEN], const char *tt, const char *domain, size_t dlen, const char *local,
    size_t llen, char out[SRS_HASH_LEN + 1])
{
	unsigned char msg[2 * SRS_MAX_ADDRESS + 8];
	size_t n = 0;
	msg[n++] = (unsigned char)tolower((unsigned char)tt[0]);
	msg[n++] = (unsigned char)tolower((unsigned char)tt[1]);
	msg[n++] = '=';
	for (size_t i = 0; i < dlen && n < sizeof(msg) - 1; i++)
		msg[n++] = (unsigned char)tolower((unsigned char)domain[i]);
	msg[n++] = '=';
	for (size_t i = 0; i < llen && n < sizeof(msg); i++)
		msg[n++] = (unsigned char)tolower((unsigned char)local[i]);
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	HMAC(EVP_sha256(), key, SRS_KEY_LEN, msg, n, mac, &maclen);
	uint64_t bits = ((uint64_t)mac[0] << 32) | ((uint64_t)mac[1] << 24) | ((uint64_t)mac[2] << 16) |
	    ((uint64_t)mac[3] << 8) | mac[4];
	for (int i = 0; i < SRS_HASH_LEN; i++)
		out[i] = b32[(bits >> (35 - 5 * i)) & 31];
	out[SRS_HASH_LEN] = '\0';
}

static unsigned
srs_day(time_t now)
{
	return (unsigned)((now / 86400) % 1024);
}

int
srs_forward(const unsigned char key[SRS_KEY_LEN], const char *sender, const char *our_domain, time_t now,
    char *out, size_t outsz)
{
	const char *at = strrchr(sender, '@');
	/* a domain with '=' could not be told from the fields of SRS0 when
	 * a bounce comes back (fuzz_srs found it): not rewritten */
	if (at == NULL || at == sender || at[1] == '\0' || *our_domain == '\0' || strchr(at + 1, '=') != NULL) {
		errno = EINVAL;
		return -1;
	}
	size_t llen = (size_t)(at - sender), dlen = strlen(at + 1);
	if (llen + dlen + strlen(our_domain) + SRS_HASH_LEN + 12 > SRS_MAX_ADDRESS) {
		errno = ENAMETOOLONG;
		return -1;
	}
	unsigned d = srs_day(now);
	char tt[3] = { b32[(d >> 5) & 31], b32[d & 31], '\0' };
	char h[SRS_HASH_LEN + 1];
	srs_hash(key, tt, at + 1, dlen, sender, llen, h);
	int n = snprintf(out, outsz, "SRS0=%s=%s=%s=%.*s@%s", h, tt, at + 1, (int)llen, sender, our_domain);
	if (n < 0 || (size_t)n >= outsz) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

static int
b32_val(char c)
{
	const char *p = strchr(b32, toupper((unsigned char)c));
	return c && p ? (int)(p - b32) : -1;
}

int
srs_reverse(const unsigned char key[SRS_KEY_LEN], const char *addr, time_t now, char *out, size_t outsz)
{
	if (strncasecmp(addr, "SRS0=", 5) != 0) {
		errno = EINVAL;
		return -1;
	}
	const char *h = addr + 5;
	const char *at = strrchr(addr, '@');
	const char *e1 = strchr(h, '=');
	if (at == NULL || e1 == NULL || e1 - h != SRS_HASH_LEN || e1 + 4 > at || e1[3] != '=') {
		errno = EINVAL;
		return -1;
	}
	const char *tt = e1 + 1, *dom = e1 + 4;
	const char *e3 = memchr(dom, '=', (size_t)(at - dom));
	if (e3 == NULL || e3 == dom || e3 + 1 >= at) {
		errno = EINVAL;
		return -1;
	}
	const char *local = e3 + 1;
	size_t dlen = (size_t)(e3 - dom), llen = (size_t)(at - local);
	int t0 = b32_val(tt[0]), t1 = b32_val(tt[1]);
	if (t0 < 0 || t1 < 0 || dlen + llen > SRS_MAX_ADDRESS) {
		errno = EINVAL;
		return -1;
	}
	char want[SRS_HASH_LEN + 1], got[SRS_HASH_LEN + 1];
	srs_hash(key, tt, dom, dlen, local, llen, want);
	for (int i = 0; i < SRS_HASH_LEN; i++)
		got[i] = (char)toupper((unsigned char)h[i]);
	got[SRS_HASH_LEN] = '\0';
	if (CRYPTO_memcmp(want, got, SRS_HASH_LEN) != 0) {
		errno = EBADMSG;
		return -1;
	}
	unsigned day = (unsigned)(t0 * 32 + t1);
	if ((srs_day(now) + 1024 - day) % 1024 > SRS_MAX_AGE_DAYS) {
		errno = ETIMEDOUT;
		return -1;
	}
	int n = snprintf(out, outsz, "%.*s@%.*s", (int)llen, local, (int)dlen, dom);
	if (n < 0 || (size_t)n >= outsz) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}
