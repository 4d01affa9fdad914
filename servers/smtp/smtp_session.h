/*
 * smtp_session.h - one SMTP server session on a libevent bufferevent:
 * the protocol state machine (greeting, EHLO/HELO, STARTTLS, AUTH, MAIL,
 * RCPT, DATA, RSET, NOOP, QUIT), pipelining, limits, error budget and
 * timeouts. What a command means for the mail system (is this recipient
 * ours, may this client relay, run the rules, deliver) is asked of the
 * server's hooks, which may answer later (SPF lookups, worker threads):
 * the session then stops reading until the hook replies.
 *
 * Ownership: the server owns sessions; a session frees itself when the
 * connection ends, after any hook in flight has come back (hooks hold a
 * reference through smtp_session_ref/unref).
 */
#ifndef HK_SMTP_SESSION_H
#define HK_SMTP_SESSION_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/config.h"
#include "core/sasl.h"
#include "smtp_cmd.h"
#include "smtp_data.h"
#include "smtp_dsn.h"

struct spool;

struct smtp_session;
struct smtp_server;

struct smtp_rcpt {
	char *addr;     /* as given (local@domain) */
	char *mailbox;  /* the local mailbox it resolved to, or NULL for a relay */
	bool relay;     /* delivered by the outbound queue */
	void *data;     /* the hooks' per-recipient state */
	unsigned notify; /* enum smtp_dsn_notify bits; 0: no NOTIFY given */
	char *orcpt;    /* ORCPT as given ("rfc822;xtext"), or NULL */
};

struct smtp_tx {
	char *mail_from;   /* "" for the null sender */
	uint64_t size_param;
	bool body_8bit, smtputf8;
	struct smtp_rcpt *rcpts;
	size_t nrcpt, cap_rcpt;
	struct spool *spool; /* the message as received, Received header first (core/spool.h) */
	int spf;           /* enum hk_spf of the MAIL FROM identity */
	char *spf_header;  /* Received-SPF value */
	enum smtp_dsn_ret dsn_ret; /* RET= (RFC 3461 4.3) */
	char *envid;       /* ENVID as given (xtext), or NULL */
};

/* What the session asks of the rest of the server. Each hook must end in
 * exactly one smtp_session_reply call (now or later). */
struct smtp_hooks {
	void (*connect)(struct smtp_session *s);
	void (*helo)(struct smtp_session *s);
	void (*mail)(struct smtp_session *s);
	void (*rcpt)(struct smtp_session *s, struct smtp_rcpt *r);
	/* the message is in tx->spool (spool_read_all on a worker); deliver
	 * or refuse */
	void (*data)(struct smtp_session *s);
	/* SASL (core/sasl.h): `start` on the AUTH command (data: the decoded
	 * initial response; has_data false when there was none), then each
	 * decoded client response. Answer with smtp_session_sasl_challenge or
	 * smtp_session_auth_result (or a reply for trouble). */
	void (*sasl)(struct smtp_session *s, enum sasl_mech m, bool start, const char *data, size_t len, bool has_data);
	void (*closed)(struct smtp_session *s);
};

struct smtp_session_info {
	uint64_t id;
	enum listener_kind kind;
	char peer_ip[64];
	int peer_family;
	unsigned char peer_addr[16];
	char helo[256];
	bool esmtp, tls;
	char tls_desc[96];
	char auth_user[320];
	bool authenticated;
	bool relay_ok;      /* authenticated, or a configured relay network */
	struct smtp_tx tx;
};

struct smtp_session_info *smtp_session_info(struct smtp_session *s);
struct smtp_server *smtp_session_server(struct smtp_session *s);
void *smtp_session_hook_data(struct smtp_session *s);
void smtp_session_set_hook_data(struct smtp_session *s, void *d);

/* Sends a reply ("250 2.1.0 Ok"; multi-line text with '\n' becomes
 * continuation lines) and, when the session was waiting for a hook,
 * resumes reading. A 4xx/5xx counts against the error budget when
 * `counts` is true. */
void smtp_session_reply(struct smtp_session *s, int code, const char *text, bool counts);
/* For a hook that refuses the whole session (e.g. connect): reply, then close. */
void smtp_session_reply_close(struct smtp_session *s, int code, const char *text);

/* SASL: send a 334 challenge (base64 already) and wait for the response. */
void smtp_session_sasl_challenge(struct smtp_session *s, const char *b64);
/* SASL: the verdict (235 with the user, or 535). */
void smtp_session_auth_result(struct smtp_session *s, bool ok, const char *user);

void smtp_session_ref(struct smtp_session *s);
void smtp_session_unref(struct smtp_session *s);
bool smtp_session_alive(const struct smtp_session *s);

/* Starts a session on an accepted socket (implicit TLS for SMTPS). */
struct smtp_session *smtp_session_start(struct smtp_server *srv, int fd, const struct sockaddr *sa, socklen_t salen,
    enum listener_kind kind);

#endif
