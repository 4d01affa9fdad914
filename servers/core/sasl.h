/*
 * sasl.h - the server side of the SASL mechanisms every protocol offers
 * (SMTP AUTH, POP3 AUTH, IMAP AUTHENTICATE): PLAIN (RFC 4616), LOGIN,
 * CRAM-MD5 (RFC 2195) and SCRAM-SHA-256 (RFC 5802, 7677). Protocols do the
 * framing (base64 lines, "*" to cancel, initial responses); this module
 * turns decoded client data into challenges and a verdict.
 *
 * BLOCKING: sasl_server_step reads the accounts store and may hash a
 * password (yescrypt, ~20 ms): call it on a worker thread. A struct
 * sasl_server is used by one thread at a time.
 */
#ifndef HK_SASL_H
#define HK_SASL_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

struct hk_accounts;

enum sasl_mech { SASL_PLAIN, SASL_LOGIN, SASL_CRAM_MD5, SASL_SCRAM_SHA_256, SASL_MECH_COUNT };

/* Case-insensitive. false for mechanisms we do not offer. */
bool sasl_mech_parse(const char *name, size_t len, enum sasl_mech *m_r);
const char *sasl_mech_name(enum sasl_mech m);
/* The client sends the password itself (PLAIN, LOGIN): offered only under
 * TLS unless the operator allows plaintext logins. */
bool sasl_mech_sends_password(enum sasl_mech m);
/* Needs the legacy secret (CRAM-MD5): only for domains that enable it. */
bool sasl_mech_legacy(enum sasl_mech m);

enum sasl_status {
	SASL_CONTINUE,  /* send the challenge, wait for a response */
	SASL_OK,        /* authenticated: sasl_server_user */
	SASL_FAIL,      /* wrong credentials, unknown user, disabled account */
	SASL_MALFORMED, /* the client's data broke the mechanism's syntax */
	SASL_TEMPFAIL,  /* the accounts store failed */
};

struct sasl_server;

/* hostname: for the CRAM-MD5 challenge. */
struct sasl_server *sasl_server_new(enum sasl_mech m, const char *hostname);
void sasl_server_free(struct sasl_server **s);

/* One step. `has_data` false: the client gave no initial response (the
 * first step only). `data` is the decoded response. On CONTINUE,
 * `challenge` holds the raw (not yet base64) challenge, maybe empty. */
enum sasl_status sasl_server_step(struct sasl_server *s, struct hk_accounts *a, const char *data, size_t len,
    bool has_data, struct hk_buf *challenge);

/* After OK: the user's canonical address. After FAIL: the name the
 * client tried ("" when it never said), for failed-login accounting. */
const char *sasl_server_user(const struct sasl_server *s);

/* PLAIN's message "authzid NUL authcid NUL passwd": pointers into data.
 * false when malformed or when authzid names another user (we do not
 * offer proxy authorization). */
bool sasl_plain_split(const char *data, size_t len, struct hk_str *authcid, struct hk_str *passwd);

#endif
