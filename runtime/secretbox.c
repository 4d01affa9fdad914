/*
 * secretbox.c - AES-256-GCM boxes and the key file. See secretbox.h.
 *
 * SECURITY: boxes come from disk: every length is checked before use and
 * the tag is verified before any plaintext is returned. The key file is
 * checked for secrecy on every load.
 */
#include "secretbox.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "util.h"

#define BOX_VERSION 1
#define NONCE_LEN 12
#define TAG_LEN 16
#define KEYFILE_MAX 128

struct hk_secretbox {
	uint8_t key[HK_SECRETBOX_KEY_LEN];
	uint8_t id[4];
};

struct hk_secretbox *
hk_secretbox_from_key(const uint8_t key[HK_SECRETBOX_KEY_LEN])
{
	struct hk_secretbox *b = xcalloc(1, sizeof(*b));
	memcpy(b->key, key, HK_SECRETBOX_KEY_LEN);
	uint8_t h[SHA256_DIGEST_LENGTH];
	uint8_t in[16 + HK_SECRETBOX_KEY_LEN];
	memcpy(in, "hikyaku-key-id:\n", 16);
	memcpy(in + 16, key, HK_SECRETBOX_KEY_LEN);
	SHA256(in, sizeof(in), h);
	OPENSSL_cleanse(in, sizeof(in));
	memcpy(b->id, h, 4);
	return b;
}

void
hk_secretbox_free(struct hk_secretbox **bp)
{
	if (*bp) {
		OPENSSL_cleanse(*bp, sizeof(**bp));
		free(*bp);
		*bp = NULL;
	}
}

static int fail(char *err, size_t errlen, int e, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int
fail(char *err, size_t errlen, int e, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	errno = e;
	return -1;
}

/* Writes a new key through a temporary file and link(2), so a concurrent
 * reader never sees a half-written key and two creators agree on one. */
static int
create_key(const char *path, char *err, size_t errlen)
{
	char *dir = xstrdup(path);
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
			int e = errno;
			fail(err, errlen, e, "cannot create the key directory of %s: %s", path, strerror(e));
			free(dir);
			return -1;
		}
	}
	free(dir);
	uint8_t key[HK_SECRETBOX_KEY_LEN];
	if (RAND_bytes(key, sizeof(key)) != 1)
		return fail(err, errlen, EIO, "cannot create %s: no random bytes", path);
	char hex[2 * HK_SECRETBOX_KEY_LEN + 2];
	for (size_t i = 0; i < sizeof(key); i++)
		snprintf(hex + 2 * i, 3, "%02x", key[i]);
	hex[2 * HK_SECRETBOX_KEY_LEN] = '\n';
	hex[2 * HK_SECRETBOX_KEY_LEN + 1] = '\0';
	OPENSSL_cleanse(key, sizeof(key));
	char *tmp = xasprintf("%s.new.%ld", path, (long)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	int rc = -1;
	if (fd < 0) {
		int e = errno;
		fail(err, errlen, e, "cannot create %s: %s", tmp, strerror(e));
		goto out;
	}
	if (write(fd, hex, strlen(hex)) != (ssize_t)strlen(hex) || fsync(fd) < 0) {
		int e = errno ? errno : EIO;
		close(fd);
		unlink(tmp);
		fail(err, errlen, e, "cannot write %s: %s", tmp, strerror(e));
		goto out;
	}
	close(fd);
	if (link(tmp, path) < 0 && errno != EEXIST) {
		int e = errno;
		unlink(tmp);
		fail(err, errlen, e, "cannot create %s: %s", path, strerror(e));
		goto out;
	}
	unlink(tmp);
	rc = 0;
out:
	OPENSSL_cleanse(hex, sizeof(hex));
	free(tmp);
	return rc;
}

int
hk_secretbox_load(const char *path, bool create, struct hk_secretbox **box_r, char *err, size_t errlen)
{
	*box_r = NULL;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && create) {
		if (create_key(path, err, errlen) < 0)
			return -1;
		fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd < 0) {
		int e = errno;
		if (e == ELOOP)
			return fail(err, errlen, EPERM, "refusing key file %s: it is a symbolic link", path);
		return fail(err, errlen, e, "cannot open key file %s: %s", path, strerror(e));
	}
	struct stat st;
	char buf[KEYFILE_MAX + 1];
	ssize_t n = -1;
	int rc = -1;
	if (fstat(fd, &st) < 0) {
		int e = errno;
		fail(err, errlen, e, "cannot stat key file %s: %s", path, strerror(e));
	} else if (!S_ISREG(st.st_mode)) {
		fail(err, errlen, EPERM, "refusing key file %s: not a regular file", path);
	} else if (st.st_uid != geteuid() && st.st_uid != 0) {
		fail(err, errlen, EPERM, "refusing key file %s: owned by another user", path);
	} else if ((st.st_mode & 077) != 0) {
		char detail[96];
		snprintf(detail, sizeof(detail), " (mode %04o); run: chmod 600 %.40s", (unsigned)(st.st_mode & 07777),
		    path);
		fail(err, errlen, EPERM, "refusing key file %s: group or others may access it%s", path, detail);
	} else if ((n = read(fd, buf, KEYFILE_MAX + 1)) < 0) {
		int e = errno;
		fail(err, errlen, e, "cannot read key file %s: %s", path, strerror(e));
	} else {
		size_t len = (size_t)n;
		while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
			len--;
		uint8_t key[HK_SECRETBOX_KEY_LEN];
		bool ok = len == 2 * HK_SECRETBOX_KEY_LEN;
		for (size_t i = 0; ok && i < HK_SECRETBOX_KEY_LEN; i++) {
			unsigned v;
			char two[3] = { buf[2 * i], buf[2 * i + 1], '\0' };
			char *end;
			v = (unsigned)strtoul(two, &end, 16);
			ok = *end == '\0' && two[0] != '+' && two[0] != '-' && two[0] != ' ';
			key[i] = (uint8_t)v;
		}
		if (!ok) {
			fail(err, errlen, EINVAL, "%s is not a key file (64 hex digits expected)", path);
		} else {
			*box_r = hk_secretbox_from_key(key);
			rc = 0;
		}
		OPENSSL_cleanse(key, sizeof(key));
	}
	OPENSSL_cleanse(buf, sizeof(buf));
	close(fd);
	return rc;
}

int
hk_secretbox_seal(const struct hk_secretbox *b, const void *aad, size_t aadlen, const void *pt, size_t ptlen,
    uint8_t *out, size_t outcap, size_t *outlen_r)
{
	if (ptlen > HK_SECRETBOX_PLAIN_MAX || aadlen > 4096) {
		errno = EINVAL;
		return -1;
	}
	if (outcap < ptlen + HK_SECRETBOX_OVERHEAD) {
		errno = ERANGE;
		return -1;
	}
	out[0] = BOX_VERSION;
	memcpy(out + 1, b->id, 4);
	uint8_t *nonce = out + 5, *ct = out + 5 + NONCE_LEN, *tag = ct + ptlen;
	if (RAND_bytes(nonce, NONCE_LEN) != 1) {
		errno = EIO;
		return -1;
	}
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int len = 0, ok = c != NULL;
	ok = ok && EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL);
	ok = ok && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL);
	ok = ok && EVP_EncryptInit_ex(c, NULL, NULL, b->key, nonce);
	/* the header is authenticated too */
	ok = ok && EVP_EncryptUpdate(c, NULL, &len, out, 5);
	ok = ok && (aadlen == 0 || EVP_EncryptUpdate(c, NULL, &len, aad, (int)aadlen));
	ok = ok && (ptlen == 0 || EVP_EncryptUpdate(c, ct, &len, pt, (int)ptlen));
	ok = ok && EVP_EncryptFinal_ex(c, ct + len, &len);
	ok = ok && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag);
	EVP_CIPHER_CTX_free(c);
	if (!ok) {
		errno = EIO;
		return -1;
	}
	*outlen_r = ptlen + HK_SECRETBOX_OVERHEAD;
	return 0;
}

int
hk_secretbox_open(const struct hk_secretbox *b, const void *aad, size_t aadlen, const uint8_t *in, size_t inlen,
    uint8_t *pt, size_t ptcap, size_t *ptlen_r)
{
	if (inlen < HK_SECRETBOX_OVERHEAD || inlen - HK_SECRETBOX_OVERHEAD > HK_SECRETBOX_PLAIN_MAX ||
	    in[0] != BOX_VERSION || aadlen > 4096) {
		errno = EBADMSG;
		return -1;
	}
	if (CRYPTO_memcmp(in + 1, b->id, 4) != 0) {
		errno = ENOKEY;
		return -1;
	}
	size_t ptlen = inlen - HK_SECRETBOX_OVERHEAD;
	if (ptcap < ptlen) {
		errno = ERANGE;
		return -1;
	}
	const uint8_t *nonce = in + 5, *ct = in + 5 + NONCE_LEN, *tag = ct + ptlen;
	uint8_t tagcopy[TAG_LEN];
	memcpy(tagcopy, tag, TAG_LEN);
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int len = 0, ok = c != NULL;
	ok = ok && EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL);
	ok = ok && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL);
	ok = ok && EVP_DecryptInit_ex(c, NULL, NULL, b->key, nonce);
	ok = ok && EVP_DecryptUpdate(c, NULL, &len, in, 5);
	ok = ok && (aadlen == 0 || EVP_DecryptUpdate(c, NULL, &len, aad, (int)aadlen));
	ok = ok && (ptlen == 0 || EVP_DecryptUpdate(c, pt, &len, ct, (int)ptlen));
	ok = ok && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tagcopy);
	int fin = ok ? EVP_DecryptFinal_ex(c, pt + (ptlen ? len : 0), &len) : 0;
	EVP_CIPHER_CTX_free(c);
	if (!ok || fin <= 0) {
		OPENSSL_cleanse(pt, ptlen);
		errno = EBADMSG;
		return -1;
	}
	*ptlen_r = ptlen;
	return 0;
}
