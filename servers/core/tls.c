/*
 * tls.c - TLS contexts, SNI and self-signed certificates (see tls.h).
 *
 * SECURITY: TLS 1.2 minimum, no compression, no renegotiation, server
 * cipher order; SSL_OP_IGNORE_UNEXPECTED_EOF because OpenSSL 3 reports a
 * peer that closes without close_notify as an error (DEPENDENCIES.md).
 * Protocol versions and options are set on the default context only: after
 * an SNI switch only the certificate comes from the domain's context.
 */
#include "tls.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

struct sni_entry {
	char *name;
	SSL_CTX *ctx;
};

struct tls_server {
	SSL_CTX *ctx;
	struct sni_entry *sni;
	size_t nsni, cap_sni;
};

static void
ssl_errors(struct hk_buf *err)
{
	unsigned long e;
	char buf[256];
	while ((e = ERR_get_error()) != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		buf_printf(err, "%s%s", err->len ? "; " : "", buf);
	}
}

static SSL_CTX *
ctx_with_cert(const char *cert, const char *key, struct hk_buf *err)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL) {
		ssl_errors(err);
		return NULL;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 || SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		buf_printf(err, "cannot load %s / %s: ", cert, key);
		ssl_errors(err);
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

static bool
sni_match(const char *pattern, const char *name)
{
	if (strcasecmp(pattern, name) == 0)
		return true;
	if (pattern[0] == '*' && pattern[1] == '.') {
		const char *dot = strchr(name, '.');
		return dot && dot != name && strcasecmp(pattern + 1, dot) == 0;
	}
	return false;
}

static int
on_servername(SSL *ssl, int *alert, void *arg)
{
	(void)alert;
	struct tls_server *t = arg;
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	if (name == NULL)
		return SSL_TLSEXT_ERR_OK;
	for (size_t i = 0; i < t->nsni; i++)
		if (sni_match(t->sni[i].name, name)) {
			SSL_set_SSL_CTX(ssl, t->sni[i].ctx);
			break;
		}
	return SSL_TLSEXT_ERR_OK; /* unknown names get the default certificate */
}

struct tls_server *
tls_server_new(const char *cert_path, const char *key_path, struct hk_buf *err)
{
	SSL_CTX *ctx = ctx_with_cert(cert_path, key_path, err);
	if (ctx == NULL)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
	    SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_TICKET);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS); /* idle sessions keep no buffers */
	SSL_CTX_set_cipher_list(ctx, "HIGH:!aNULL:!MD5:!RC4:!3DES");
	struct tls_server *t = xcalloc(1, sizeof(*t));
	t->ctx = ctx;
	SSL_CTX_set_tlsext_servername_callback(ctx, on_servername);
	SSL_CTX_set_tlsext_servername_arg(ctx, t);
	return t;
}

int
tls_server_add_sni(struct tls_server *t, const char *name, const char *cert_path, const char *key_path, struct hk_buf *err)
{
	if (t->nsni >= TLS_MAX_SNI_NAMES) {
		buf_adds(err, "too many SNI certificates");
		return -1;
	}
	SSL_CTX *ctx = ctx_with_cert(cert_path, key_path, err);
	if (ctx == NULL)
		return -1;
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	t->sni = xgrow(t->sni, &t->cap_sni, t->nsni + 1, sizeof(*t->sni));
	t->sni[t->nsni].name = xstrdup(name);
	t->sni[t->nsni].ctx = ctx;
	t->nsni++;
	return 0;
}

void
tls_server_free(struct tls_server **tp)
{
	struct tls_server *t = *tp;
	*tp = NULL;
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->nsni; i++) {
		free(t->sni[i].name);
		SSL_CTX_free(t->sni[i].ctx);
	}
	free(t->sni);
	SSL_CTX_free(t->ctx);
	free(t);
}

SSL *
tls_server_ssl_new(struct tls_server *t)
{
	return SSL_new(t->ctx);
}

SSL_CTX *
tls_server_default_ctx(struct tls_server *t)
{
	return t->ctx;
}

void
tls_describe(SSL *ssl, struct hk_buf *out)
{
	buf_printf(out, "%s %s", SSL_get_version(ssl), SSL_get_cipher_name(ssl));
}

static int
write_pem(const char *path, int mode, int (*fn)(FILE *, void *), void *obj)
{
	char *tmp = xasprintf("%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0) {
		free(tmp);
		return -1;
	}
	FILE *fp = fdopen(fd, "w");
	int ok = fp && fn(fp, obj) == 1;
	if (fp == NULL || fclose(fp) != 0)
		ok = 0;
	if (ok && rename(tmp, path) != 0)
		ok = 0;
	if (!ok)
		unlink(tmp);
	free(tmp);
	return ok ? 0 : -1;
}

static int
pem_key(FILE *fp, void *k)
{
	return PEM_write_PrivateKey(fp, k, NULL, NULL, 0, NULL, NULL);
}

static int
pem_cert(FILE *fp, void *x)
{
	return PEM_write_X509(fp, x);
}

int
tls_selfsigned_ensure(const char *cert_path, const char *key_path, const char *hostname, struct hk_buf *err)
{
	struct stat st;
	if (stat(cert_path, &st) == 0 && stat(key_path, &st) == 0)
		return 0;
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	int rc = -1;
	if (key == NULL || x == NULL)
		goto out;
	X509_set_version(x, 2);
	unsigned char serial[16];
	BIGNUM *bn = NULL;
	if (RAND_bytes(serial, sizeof(serial)) == 1 && (bn = BN_bin2bn(serial, sizeof(serial), NULL)) != NULL) {
		BN_set_negative(bn, 0);
		BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
		BN_free(bn);
	}
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 365L * 86400);
	X509_set_pubkey(x, key);
	X509_NAME *name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"Hikyaku (self-signed)", -1, -1, 0);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)hostname, -1, -1, 0);
	X509_set_issuer_name(x, name);
	char *san = xasprintf("DNS:%s,DNS:localhost,IP:127.0.0.1", hostname);
	X509V3_CTX v3;
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
	free(san);
	if (ext) {
		X509_add_ext(x, ext, -1);
		X509_EXTENSION_free(ext);
	}
	if (X509_sign(x, key, EVP_sha256()) == 0)
		goto out;
	if (write_pem(key_path, 0600, pem_key, key) < 0 || write_pem(cert_path, 0644, pem_cert, x) < 0) {
		buf_printf(err, "cannot write %s / %s: %s", cert_path, key_path, strerror(errno));
		X509_free(x);
		EVP_PKEY_free(key);
		return -1;
	}
	rc = 0;
out:
	if (rc < 0 && err->len == 0) {
		buf_adds(err, "cannot create a self-signed certificate: ");
		ssl_errors(err);
	}
	X509_free(x);
	EVP_PKEY_free(key);
	return rc;
}
