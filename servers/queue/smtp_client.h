/*
 * smtp_client.h - one outbound SMTP transaction (one recipient) on a
 * libevent bufferevent: connect (IPv4 or IPv6), greeting, EHLO (HELO when
 * EHLO is refused), opportunistic STARTTLS, MAIL (with SIZE= and
 * BODY=8BITMIME when the server offers them, RET= and ENVID= when it
 * offers DSN), RCPT (NOTIFY= and ORCPT= when it offers DSN), DATA with
 * dot-stuffing, QUIT. `dsn` in the result says whether the DSN
 * parameters went on (RFC 3461 5.2.1: otherwise we report "relayed").
 *
 * Result: delivered (the server said 2xx to the final dot), temporary or
 * permanent failure, with the server's reply text or our own reason.
 * Connection problems, timeouts and 4xx are temporary; 5xx is permanent.
 * `connected` and `in_transaction` tell the queue whether to try the next
 * address (nothing said yet) or stop (the server refused the mail).
 *
 * TLS: when the server offers STARTTLS and the caller gives an SSL_CTX,
 * the session is upgraded; SNI is sent for host names; the certificate is
 * checked against `host` but a failed check does not stop delivery
 * (opportunistic TLS, RFC 7435): it is only recorded in tls_verified.
 * A failed handshake (or a failed EHLO right after it) is a temporary
 * failure marked tls_failed, so that the caller can try again in
 * plaintext (RFC 7435 opportunistic security: cleartext is the baseline).
 *
 * Timeouts: RFC 5321 4.5.3.2 per phase, shortened (smtpc_timeouts_default),
 * each capped by the `cap` argument when not 0 (tests use seconds).
 *
 * Limits (the server is untrusted): a reply line is at most
 * SMTPC_LINE_MAX bytes, a reply at most SMTPC_MAX_LINES lines; the text
 * kept for the result is cut at SMTPC_MAX_TEXT bytes.
 *
 * Ownership: the params' strings, the message and the SSL_CTX belong to
 * the caller and must stay valid until the callback has run or
 * smtpc_cancel() was called. The callback runs once, from the loop, never
 * from inside smtpc_start(); the client frees itself after it returns.
 */
#ifndef HK_SMTP_CLIENT_H
#define HK_SMTP_CLIENT_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "queue/smtp_reply.h" /* SMTPC_LINE_MAX, SMTPC_MAX_LINES, SMTPC_MAX_TEXT */

struct event_base;
struct smtpc;

struct smtpc_timeouts { /* seconds */
	unsigned connect, greeting, ehlo, mail, rcpt, data, block, final, quit;
};

struct smtpc_params {
	const struct sockaddr *addr;
	socklen_t addrlen;
	const char *host;      /* the server's name: SNI, verification, texts */
	const char *helo;      /* our name */
	const char *mail_from; /* "" for the null sender */
	const char *rcpt;
	const char *msg;       /* CRLF lines, not dot-stuffed */
	size_t msglen;
	SSL_CTX *tls;          /* NULL: never STARTTLS */
	/* RFC 3461 parameters to pass on, as the client gave them (xtext); NULL: none */
	const char *dsn_ret, *dsn_envid, *dsn_notify, *dsn_orcpt;
	struct smtpc_timeouts to;
};

enum smtpc_status { SMTPC_DELIVERED, SMTPC_TEMPFAIL, SMTPC_PERMFAIL };

struct smtpc_result {
	enum smtpc_status status;
	bool connected;      /* the server greeted us with 220 */
	bool in_transaction; /* MAIL was sent: the server has spoken on this mail */
	bool tls, tls_verified;
	bool tls_failed;     /* the STARTTLS handshake or the EHLO after it failed */
	bool dsn;            /* the server offered DSN: our parameters went with MAIL and RCPT */
	char reply[SMTPC_MAX_TEXT]; /* "550 5.1.1 no such user" or our reason */
};

typedef void (*smtpc_cb)(const struct smtpc_result *res, void *arg);

/* RFC 5321 values shortened (greeting 2 min instead of 5, final dot 5 min
 * instead of 10), each at most `cap` seconds when cap is not 0. */
void smtpc_timeouts_default(struct smtpc_timeouts *t, unsigned cap);

/* Never NULL; failures (even an immediate connect error) come through cb. */
struct smtpc *smtpc_start(struct event_base *base, const struct smtpc_params *p, smtpc_cb cb, void *arg);
/* Stops without calling the callback; clears *c. Safe on NULL. */
void smtpc_cancel(struct smtpc **c);

/* Appends the dot-stuffed message and the final ".\r\n" to an evbuffer;
 * bare LF line ends become CRLF. Exposed for tests. */
struct evbuffer;
void smtpc_add_stuffed(struct evbuffer *out, const char *msg, size_t len);

#endif
