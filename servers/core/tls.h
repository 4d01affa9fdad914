/*
 * tls.h - the server side of TLS: one default SSL_CTX (protocol versions,
 * ciphers and options live there), per-domain certificates chosen by SNI,
 * and the self-signed certificate `make run` generates on first start.
 *
 * Ownership: struct tls_server owns every SSL_CTX; sessions get SSL objects
 * from tls_server_ssl_new and free them (or hand them to a bufferevent with
 * BEV_OPT_CLOSE_ON_FREE).
 */
#ifndef HK_TLS_H
#define HK_TLS_H

#include <openssl/ssl.h>
#include <stdbool.h>

#include "util.h"

#define TLS_MAX_SNI_NAMES 4096

struct tls_server;

/* Loads the default certificate and key (PEM). NULL with a message in err. */
struct tls_server *tls_server_new(const char *cert_path, const char *key_path, struct hk_buf *err);
void tls_server_free(struct tls_server **t);
/* Adds a certificate served to clients that ask for `name` by SNI
 * ("mail.example.jp"; "*.example.jp" matches one label). */
int tls_server_add_sni(struct tls_server *t, const char *name, const char *cert_path, const char *key_path, struct hk_buf *err);
SSL *tls_server_ssl_new(struct tls_server *t);
SSL_CTX *tls_server_default_ctx(struct tls_server *t);

/* Creates a self-signed P-256 certificate for `hostname` (with localhost
 * and 127.0.0.1 as alternative names) when cert_path or key_path is
 * missing; the key file is written 0600. 0 when they exist or were made. */
int tls_selfsigned_ensure(const char *cert_path, const char *key_path, const char *hostname, struct hk_buf *err);

/* "TLSv1.3 TLS_AES_256_GCM_SHA384" of an established connection, for
 * Received headers and logs. */
void tls_describe(SSL *ssl, struct hk_buf *out);

#endif
