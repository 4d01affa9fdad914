/*
 * smtp_session.c - the SMTP session state machine (see smtp_session.h).
 *
 * Reading: lines up to SMTP_MAX_LINE; a longer line is answered "500 5.5.2"
 * and skipped up to its end. While a hook is pending (`busy`) nothing is
 * read, so pipelined commands wait in the input buffer in order and are
 * answered in order (RFC 2920). DATA bytes go through the smtp_data push
 * parser into the spool (core/spool.h: in memory up to 256 KiB, beyond
 * that written to a file by workers; reading pauses while a write is
 * behind, so a message costs at most about 1 MiB of memory).
 *
 * SECURITY: every client byte passes smtp_cmd or smtp_data. STARTTLS drops
 * any plaintext pipelined after it (command injection, CVE-2011-0411) and
 * forgets HELO, AUTH and the transaction (RFC 3207 4.2). Each session has an
 * error budget (cfg->max_errors) and timeouts; the server caps sessions.
 */
#include "smtp_session.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/spool.h"
#include "smtp_server.h"
#include "core/tls.h"
#include "scram.h"

enum sstate {
	ST_GREETING,   /* waiting for the connect hook */
	ST_CMD,        /* reading commands */
	ST_AUTH,       /* reading SASL responses */
	ST_DATA,       /* reading message data */
	ST_CLOSING     /* flushing the last reply, then closing */
};

/* a SASL response line, base64 (SCRAM's messages are bounded far below) */
#define SMTP_SASL_LINE_MAX 12288

struct smtp_session {
	struct smtp_server *srv;
	struct bufferevent *bev;
	struct smtp_session_info info;
	enum sstate state;
	bool busy;          /* a hook is pending: no reading */
	bool spool_wait;    /* a spool write is behind (full, or DATA ended): no reading */
	bool data_ended;    /* ... and the data hook waits for it */
	bool discard_line;  /* skipping the rest of an over-long line */
	bool dead;          /* the connection is gone; free when refs drop */
	int refs;
	unsigned errors;
	bool greeted;       /* HELO/EHLO seen */
	struct smtp_data data;
	enum sasl_mech auth_mech; /* of the exchange in ST_AUTH */
	void *hook_data;
	struct hk_buf log;
	struct event *close_ev; /* waits for the last reply to leave under TLS */
	unsigned close_polls;
	struct session_link link; /* in srv->sessions */
};

static void session_read(struct smtp_session *s);
static void session_close(struct smtp_session *s);

struct smtp_session_info *
smtp_session_info(struct smtp_session *s)
{
	return &s->info;
}

struct smtp_server *
smtp_session_server(struct smtp_session *s)
{
	return s->srv;
}

void *
smtp_session_hook_data(struct smtp_session *s)
{
	return s->hook_data;
}

void
smtp_session_set_hook_data(struct smtp_session *s, void *d)
{
	s->hook_data = d;
}

bool
smtp_session_alive(const struct smtp_session *s)
{
	return !s->dead;
}

void
smtp_session_ref(struct smtp_session *s)
{
	s->refs++;
}

static void
tx_reset(struct smtp_tx *tx)
{
	free(tx->mail_from);
	for (size_t i = 0; i < tx->nrcpt; i++) {
		free(tx->rcpts[i].addr);
		free(tx->rcpts[i].mailbox);
		free(tx->rcpts[i].orcpt);
	}
	free(tx->rcpts);
	free(tx->envid);
	spool_free(&tx->spool);
	free(tx->spf_header);
	memset(tx, 0, sizeof(*tx));
}

static void
session_free(struct smtp_session *s)
{
	session_list_remove(&s->srv->sessions, &s->link);
	if (s->close_ev)
		event_free(s->close_ev);
	if (s->srv->hooks && s->srv->hooks->closed)
		s->srv->hooks->closed(s);
	tx_reset(&s->info.tx);
	buf_fini(&s->log);
	free(s);
}

void
smtp_session_unref(struct smtp_session *s)
{
	if (--s->refs == 0)
		session_free(s);
}

/* --- output ----------------------------------------------------------------- */

static void
send_reply(struct smtp_session *s, int code, const char *text)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	const char *p = text;
	for (;;) {
		const char *nl = strchr(p, '\n');
		if (nl) {
			evbuffer_add_printf(out, "%d-%.*s\r\n", code, (int)(nl - p), p);
			p = nl + 1;
		} else {
			evbuffer_add_printf(out, "%d %s\r\n", code, p);
			break;
		}
	}
}

static void
set_timeout(struct smtp_session *s)
{
	const struct hk_config *c = s->srv->cfg;
	struct timeval tv = { s->state == ST_DATA ? c->timeout_data : c->timeout_command, 0 };
	bufferevent_set_timeouts(s->bev, &tv, &tv);
}

void
smtp_session_reply(struct smtp_session *s, int code, const char *text, bool counts)
{
	if (s->dead)
		return;
	send_reply(s, code, text);
	if (counts && code >= 400 && ++s->errors >= s->srv->cfg->max_errors) {
		send_reply(s, 421, "4.7.0 Too many errors, closing connection");
		log_info("smtp", "#%llu %s: too many errors", (unsigned long long)s->info.id, s->info.peer_ip);
		s->state = ST_CLOSING;
	}
	if (s->busy) {
		s->busy = false;
		if (s->state == ST_GREETING)
			s->state = ST_CMD;
		set_timeout(s);
		bufferevent_enable(s->bev, EV_READ);
		session_read(s); /* pipelined commands already buffered */
	}
	if (s->state == ST_CLOSING)
		bufferevent_disable(s->bev, EV_READ);
}

void
smtp_session_reply_close(struct smtp_session *s, int code, const char *text)
{
	if (s->dead)
		return;
	s->state = ST_CLOSING;
	send_reply(s, code, text);
	s->busy = false;
	bufferevent_disable(s->bev, EV_READ);
}

/* --- commands ------------------------------------------------------------- */

static bool
is_submission(const struct smtp_session *s)
{
	return s->info.kind == LISTEN_SUBMISSION || s->info.kind == LISTEN_SMTPS;
}

static void
reply_now(struct smtp_session *s, int code, const char *text)
{
	smtp_session_reply(s, code, text, code >= 400);
}

static void
start_hook(struct smtp_session *s)
{
	s->busy = true;
	bufferevent_disable(s->bev, EV_READ);
}

void smtp_session_ehlo_reply(struct smtp_session *s);

static void
do_ehlo(struct smtp_session *s, const struct smtp_cmd *c)
{
	if (c->arg.len == 0 || c->arg.len >= sizeof(s->info.helo)) {
		reply_now(s, 501, "5.5.4 Syntax: EHLO hostname");
		return;
	}
	for (size_t i = 0; i < c->arg.len; i++)
		if ((unsigned char)c->arg.ptr[i] <= ' ' || (unsigned char)c->arg.ptr[i] >= 0x7f) {
			reply_now(s, 501, "5.5.4 Invalid EHLO argument");
			return;
		}
	tx_reset(&s->info.tx);
	memcpy(s->info.helo, c->arg.ptr, c->arg.len);
	s->info.helo[c->arg.len] = '\0';
	s->info.esmtp = c->verb == SMTP_EHLO;
	s->greeted = true;
	if (s->srv->hooks && s->srv->hooks->helo) {
		start_hook(s);
		s->srv->hooks->helo(s);
		return;
	}
	smtp_session_ehlo_reply(s);
}

/* The EHLO reply: the hooks' helo calls this when they accept. */
void
smtp_session_ehlo_reply(struct smtp_session *s)
{
	struct hk_buf b;
	buf_init(&b);
	const struct hk_config *c = s->srv->cfg;
	buf_printf(&b, "%s Hello %s [%s]", c->hostname, s->info.helo, s->info.peer_ip);
	if (s->info.esmtp) {
		buf_printf(&b, "\nSIZE %llu\nPIPELINING\n8BITMIME\nENHANCEDSTATUSCODES\nSMTPUTF8\nDSN", (unsigned long long)c->max_message_size);
		if (!s->info.tls && s->srv->tls)
			buf_adds(&b, "\nSTARTTLS");
		/* AUTH only over TLS: plaintext passwords never cross the wire */
		if (s->info.tls && is_submission(s) && !s->info.authenticated)
			buf_adds(&b, s->srv->hooks && s->srv->hooks->sasl ? "\nAUTH PLAIN LOGIN SCRAM-SHA-256 CRAM-MD5" : "\nAUTH PLAIN LOGIN");
	}
	smtp_session_reply(s, 250, b.data, false);
	buf_fini(&b);
}

static void
do_mail(struct smtp_session *s, const struct smtp_cmd *c)
{
	if (!s->greeted) {
		reply_now(s, 503, "5.5.1 Send EHLO first");
		return;
	}
	if (s->info.tx.mail_from) {
		reply_now(s, 503, "5.5.1 Nested MAIL command");
		return;
	}
	if (is_submission(s) && !s->info.authenticated) {
		reply_now(s, 530, "5.7.0 Authentication required");
		return;
	}
	const struct smtp_param *size = smtp_cmd_param(c, "SIZE");
	const struct smtp_param *body = smtp_cmd_param(c, "BODY");
	for (unsigned i = 0; i < c->nparams; i++) {
		struct hk_str k = c->params[i].key;
		if (!str_ieq_cstr(k, "SIZE") && !str_ieq_cstr(k, "BODY") && !str_ieq_cstr(k, "SMTPUTF8") && !str_ieq_cstr(k, "AUTH") &&
		    !str_ieq_cstr(k, "RET") && !str_ieq_cstr(k, "ENVID")) {
			reply_now(s, 555, "5.5.4 Unsupported MAIL parameter");
			return;
		}
	}
	const struct smtp_param *ret = smtp_cmd_param(c, "RET");
	const struct smtp_param *envid = smtp_cmd_param(c, "ENVID");
	enum smtp_dsn_ret dsn_ret = SMTP_DSN_RET_NONE;
	if (ret && !smtp_dsn_ret_parse(ret->value, &dsn_ret)) {
		reply_now(s, 501, "5.5.4 Bad RET parameter (FULL or HDRS)");
		return;
	}
	if (envid && !smtp_dsn_envid_ok(envid->value)) {
		reply_now(s, 501, "5.5.4 Bad ENVID parameter (xtext, at most 100 characters)");
		return;
	}
	uint64_t declared = 0;
	if (size) {
		char tmp[32];
		if (size->value.ptr == NULL || size->value.len >= sizeof(tmp)) {
			reply_now(s, 501, "5.5.4 Bad SIZE parameter");
			return;
		}
		memcpy(tmp, size->value.ptr, size->value.len);
		tmp[size->value.len] = '\0';
		char *end;
		errno = 0;
		declared = strtoull(tmp, &end, 10);
		if (*end || errno) {
			reply_now(s, 501, "5.5.4 Bad SIZE parameter");
			return;
		}
		if (declared > s->srv->cfg->max_message_size) {
			reply_now(s, 552, "5.3.4 Message size exceeds the fixed maximum message size");
			return;
		}
	}
	if (body && body->value.ptr && !str_ieq_cstr(body->value, "8BITMIME") && !str_ieq_cstr(body->value, "7BIT")) {
		reply_now(s, 501, "5.5.4 Bad BODY parameter");
		return;
	}
	if (c->utf8 && smtp_cmd_param(c, "SMTPUTF8") == NULL) {
		reply_now(s, 553, "5.6.7 Non-ASCII address needs SMTPUTF8");
		return;
	}
	struct smtp_tx *tx = &s->info.tx;
	tx->mail_from = xstrndup(c->path.ptr, c->path.len);
	tx->size_param = declared;
	tx->body_8bit = body && str_ieq_cstr(body->value, "8BITMIME");
	tx->smtputf8 = smtp_cmd_param(c, "SMTPUTF8") != NULL;
	tx->dsn_ret = dsn_ret;
	tx->envid = envid ? xstrndup(envid->value.ptr, envid->value.len) : NULL;
	if (s->srv->hooks && s->srv->hooks->mail) {
		start_hook(s);
		s->srv->hooks->mail(s);
		return;
	}
	smtp_session_reply(s, 250, "2.1.0 Ok", false);
}

static void
do_rcpt(struct smtp_session *s, const struct smtp_cmd *c)
{
	struct smtp_tx *tx = &s->info.tx;
	if (tx->mail_from == NULL) {
		reply_now(s, 503, "5.5.1 Need MAIL before RCPT");
		return;
	}
	if (tx->nrcpt >= s->srv->cfg->max_recipients) {
		reply_now(s, 452, "4.5.3 Too many recipients");
		return;
	}
	for (unsigned i = 0; i < c->nparams; i++)
		if (!str_ieq_cstr(c->params[i].key, "NOTIFY") && !str_ieq_cstr(c->params[i].key, "ORCPT")) {
			reply_now(s, 555, "5.5.4 Unsupported RCPT parameter");
			return;
		}
	const struct smtp_param *notify = smtp_cmd_param(c, "NOTIFY");
	const struct smtp_param *orcpt = smtp_cmd_param(c, "ORCPT");
	unsigned nbits = 0;
	if (notify && !smtp_dsn_notify_parse(notify->value, &nbits)) {
		reply_now(s, 501, "5.5.4 Bad NOTIFY parameter (NEVER, or SUCCESS, FAILURE, DELAY)");
		return;
	}
	if (orcpt && !smtp_dsn_orcpt_ok(orcpt->value)) {
		reply_now(s, 501, "5.5.4 Bad ORCPT parameter (addr-type;xtext, at most 500 characters)");
		return;
	}
	if (c->utf8 && !tx->smtputf8) {
		reply_now(s, 553, "5.6.7 Non-ASCII address needs SMTPUTF8");
		return;
	}
	tx->rcpts = xgrow(tx->rcpts, &tx->cap_rcpt, tx->nrcpt + 1, sizeof(*tx->rcpts));
	struct smtp_rcpt *r = &tx->rcpts[tx->nrcpt];
	memset(r, 0, sizeof(*r));
	r->addr = c->postmaster ? xasprintf("postmaster@%s", s->srv->cfg->hostname) : xstrndup(c->path.ptr, c->path.len);
	r->notify = nbits;
	r->orcpt = orcpt ? xstrndup(orcpt->value.ptr, orcpt->value.len) : NULL;
	if (s->srv->hooks && s->srv->hooks->rcpt) {
		start_hook(s);
		s->srv->hooks->rcpt(s, r);
		return;
	}
	/* no hooks: nothing is hosted here, and nobody may relay */
	free(r->addr);
	free(r->orcpt);
	reply_now(s, 554, "5.7.1 Relay access denied");
}

/* The rcpt hook accepted: keep the recipient. */
void smtp_session_rcpt_accept(struct smtp_session *s, struct smtp_rcpt *r);
void
smtp_session_rcpt_accept(struct smtp_session *s, struct smtp_rcpt *r)
{
	struct smtp_tx *tx = &s->info.tx;
	if (r == &tx->rcpts[tx->nrcpt])
		tx->nrcpt++;
}

/* The rcpt hook refused: forget the slot. */
void smtp_session_rcpt_drop(struct smtp_session *s, struct smtp_rcpt *r);
void
smtp_session_rcpt_drop(struct smtp_session *s, struct smtp_rcpt *r)
{
	(void)s;
	free(r->addr);
	free(r->mailbox);
	free(r->orcpt);
	memset(r, 0, sizeof(*r));
}

static void
spool_write(void *ctx, const char *p, size_t n)
{
	struct smtp_session *s = ctx;
	/* after a write error the rest is dropped: the data is read to its
	 * end, then answered 451 */
	spool_add(s->info.tx.spool, p, n);
}

static void data_finished(struct smtp_session *s);

/* A spool write finished (loop): go on reading, or deliver. */
static void
spool_woken(void *arg)
{
	struct smtp_session *s = arg;
	/* reading goes on as soon as the spool has room (the next chunk may
	 * already be on its way); the end of DATA waits for the last write */
	if (s->dead || !s->spool_wait ||
	    (s->data_ended ? spool_busy(s->info.tx.spool) : spool_blocked(s->info.tx.spool)))
		return;
	s->spool_wait = false;
	if (s->data_ended) {
		s->data_ended = false;
		data_finished(s);
	}
	if (!s->busy && !s->dead && s->state != ST_CLOSING) {
		bufferevent_enable(s->bev, EV_READ);
		session_read(s);
	}
}

static void
spool_pause(struct smtp_session *s)
{
	s->spool_wait = true;
	bufferevent_disable(s->bev, EV_READ);
}

static void
do_data(struct smtp_session *s)
{
	struct smtp_tx *tx = &s->info.tx;
	if (tx->mail_from == NULL) {
		reply_now(s, 503, "5.5.1 Need MAIL command");
		return;
	}
	if (tx->nrcpt == 0) {
		reply_now(s, 554, "5.5.1 No valid recipients");
		return;
	}
	/* a message over 256 KiB goes to var/spool/incoming/<id>.<pid>.<random> */
	char *dir = xasprintf("%s/spool/incoming", s->srv->cfg->state_dir);
	char *prefix = xasprintf("%llu.%ld", (unsigned long long)s->info.id, (long)getpid());
	tx->spool = spool_new(s->srv->workers, dir, prefix, spool_woken, s);
	free(dir);
	free(prefix);
	/* the Received header is the first line of the spool (RFC 5321 4.4) */
	struct hk_buf h;
	buf_init(&h);
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	char date[64];
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	/* RFC 5321 4.4 / RFC 3848 "with" types; the TLS details are a comment */
	buf_printf(&h, "Received: from %s ([%s])\r\n\tby %s (Hikyaku) with %s%s%s%s id %llu\r\n", s->info.helo, s->info.peer_ip,
	    s->srv->cfg->hostname, tx->smtputf8 ? "UTF8" : "", s->info.esmtp ? "ESMTP" : "SMTP", s->info.tls ? "S" : "",
	    s->info.authenticated ? "A" : "", (unsigned long long)s->info.id);
	if (s->info.tls && s->info.tls_desc[0])
		buf_printf(&h, "\t(%s)\r\n", s->info.tls_desc);
	/* "for" only with one recipient: it would tell each one the others */
	if (tx->nrcpt == 1)
		buf_printf(&h, "\tfor <%s>;\r\n\t%s\r\n", tx->rcpts[0].addr, date);
	else
		buf_printf(&h, "\t; %s\r\n", date);
	spool_write(s, h.data, h.len);
	buf_fini(&h);
	smtp_data_init(&s->data, s->srv->cfg->max_message_size, spool_write, s);
	s->state = ST_DATA;
	set_timeout(s);
	smtp_session_reply(s, 354, "End data with <CR><LF>.<CR><LF>", false);
}

static void
data_finished(struct smtp_session *s)
{
	struct smtp_tx *tx = &s->info.tx;
	if (spool_busy(tx->spool)) {
		/* the last chunk is still being written: deliver after it */
		s->data_ended = true;
		spool_pause(s);
		return;
	}
	s->state = ST_CMD;
	set_timeout(s);
	if (s->data.bare_cr || s->data.bare_lf) {
		reply_now(s, 550, "5.6.11 Bare CR or LF in message data (RFC 5321 2.3.8); message not accepted");
		tx_reset(tx);
		return;
	}
	if (s->data.too_big) {
		reply_now(s, 552, "5.3.4 Message size exceeds the fixed maximum message size");
		tx_reset(tx);
		return;
	}
	if (spool_error(tx->spool)) {
		log_error("smtp", "#%llu: spool: %s", (unsigned long long)s->info.id, strerror(spool_error(tx->spool)));
		reply_now(s, 451, "4.3.0 Temporary local problem writing the message, try again later");
		tx_reset(tx);
		return;
	}
	if (s->srv->hooks && s->srv->hooks->data) {
		start_hook(s);
		s->srv->hooks->data(s);
		return;
	}
	reply_now(s, 451, "4.3.0 No delivery configured");
	tx_reset(tx);
}

/* After the data hook replied: the transaction is over either way. */
void smtp_session_tx_done(struct smtp_session *s);
void
smtp_session_tx_done(struct smtp_session *s)
{
	tx_reset(&s->info.tx);
}

static void do_starttls(struct smtp_session *s);

/* AUTH: the mechanism's exchange runs in the sasl hook (core/sasl.h on a
 * worker); the session does the framing: the initial response ("=" is an
 * empty one), 334 challenges, base64 lines, "*" to cancel (RFC 4954). */
static void
do_auth(struct smtp_session *s, const struct smtp_cmd *c)
{
	if (!is_submission(s) || !s->info.tls || s->srv->hooks == NULL || s->srv->hooks->sasl == NULL) {
		reply_now(s, 503, s->info.tls || !is_submission(s) ? "5.5.1 AUTH not available here" : "5.7.0 Must issue a STARTTLS command first");
		return;
	}
	if (s->info.authenticated) {
		reply_now(s, 503, "5.5.1 Already authenticated");
		return;
	}
	if (s->info.tx.mail_from) {
		reply_now(s, 503, "5.5.1 AUTH not permitted during a mail transaction");
		return;
	}
	const char *a = c->arg.ptr;
	size_t n = c->arg.len;
	const char *sp = memchr(a, ' ', n);
	size_t ml = sp ? (size_t)(sp - a) : n;
	const char *ir = sp ? sp + 1 : NULL;
	size_t irl = sp ? n - ml - 1 : 0;
	enum sasl_mech m;
	if (!sasl_mech_parse(a, ml, &m)) {
		reply_now(s, 504, "5.5.4 Unrecognized authentication mechanism");
		return;
	}
	struct hk_buf d;
	buf_init(&d);
	if (ir && !(irl == 1 && ir[0] == '=') && (irl > SMTP_SASL_LINE_MAX || !hk_b64_decode(ir, irl, &d))) {
		reply_now(s, 501, "5.5.2 Malformed initial response");
		buf_fini(&d);
		return;
	}
	s->auth_mech = m;
	s->state = ST_AUTH;
	start_hook(s);
	s->srv->hooks->sasl(s, m, true, d.data ? d.data : "", d.len, ir != NULL);
	if (d.data)
		explicit_bzero(d.data, d.len);
	buf_fini(&d);
}

void
smtp_session_sasl_challenge(struct smtp_session *s, const char *b64)
{
	if (s->dead)
		return;
	s->state = ST_AUTH;
	smtp_session_reply(s, 334, b64, false);
}

/* A client line during a SASL exchange. */
static void
auth_line(struct smtp_session *s, const char *line, size_t len)
{
	if (len == 1 && line[0] == '*') {
		s->state = ST_CMD;
		reply_now(s, 501, "5.0.0 Authentication cancelled");
		return;
	}
	struct hk_buf d;
	buf_init(&d);
	if (len > SMTP_SASL_LINE_MAX || (len && !hk_b64_decode(line, len, &d))) {
		s->state = ST_CMD;
		reply_now(s, 501, "5.5.2 Malformed SASL response");
		buf_fini(&d);
		return;
	}
	start_hook(s);
	s->srv->hooks->sasl(s, s->auth_mech, false, d.data ? d.data : "", d.len, true);
	if (d.data)
		explicit_bzero(d.data, d.len);
	buf_fini(&d);
}

/* The auth hook's verdict. */
void
smtp_session_auth_result(struct smtp_session *s, bool ok, const char *user)
{
	if (s->dead)
		return;
	s->state = ST_CMD;
	if (ok) {
		s->info.authenticated = true;
		s->info.relay_ok = true;
		snprintf(s->info.auth_user, sizeof(s->info.auth_user), "%s", user);
		log_info("smtp", "#%llu %s: authenticated as %s", (unsigned long long)s->info.id, s->info.peer_ip, user);
		smtp_session_reply(s, 235, "2.7.0 Authentication successful", false);
	} else {
		log_info("smtp", "#%llu %s: authentication failed", (unsigned long long)s->info.id, s->info.peer_ip);
		smtp_session_reply(s, 535, "5.7.8 Authentication credentials invalid", true);
	}
}

static void
command(struct smtp_session *s, const char *line, size_t len)
{
	struct smtp_cmd c;
	enum smtp_parse_error e = smtp_cmd_parse(line, len, &c);
	switch (e) {
	case SMTP_PARSE_OK:
		break;
	case SMTP_PARSE_UNKNOWN_VERB:
		reply_now(s, 500, "5.5.1 Command unrecognized");
		return;
	case SMTP_PARSE_BAD_ADDRESS:
		reply_now(s, 501, c.verb == SMTP_MAIL ? "5.1.7 Bad sender address syntax" : "5.1.3 Bad recipient address syntax");
		return;
	case SMTP_PARSE_DUP_PARAM:
		reply_now(s, 501, "5.5.4 Duplicate parameter");
		return;
	default:
		reply_now(s, 501, "5.5.4 Syntax error in parameters or arguments");
		return;
	}
	switch (c.verb) {
	case SMTP_HELO:
	case SMTP_EHLO:
		do_ehlo(s, &c);
		break;
	case SMTP_MAIL:
		do_mail(s, &c);
		break;
	case SMTP_RCPT:
		do_rcpt(s, &c);
		break;
	case SMTP_DATA:
		if (c.arg.len)
			reply_now(s, 501, "5.5.4 Syntax: DATA");
		else
			do_data(s);
		break;
	case SMTP_RSET:
		tx_reset(&s->info.tx);
		reply_now(s, 250, "2.0.0 Ok");
		break;
	case SMTP_NOOP:
		reply_now(s, 250, "2.0.0 Ok");
		break;
	case SMTP_QUIT:
		smtp_session_reply_close(s, 221, "2.0.0 Bye");
		break;
	case SMTP_VRFY:
		reply_now(s, 252, "2.5.2 Cannot VRFY user, but will accept message and attempt delivery");
		break;
	case SMTP_EXPN:
		reply_now(s, 502, "5.5.1 EXPN not available");
		break;
	case SMTP_HELP:
		reply_now(s, 214, "2.0.0 See RFC 5321");
		break;
	case SMTP_STARTTLS:
		if (c.arg.len)
			reply_now(s, 501, "5.5.4 Syntax: STARTTLS");
		else
			do_starttls(s);
		break;
	case SMTP_AUTH:
		do_auth(s, &c);
		break;
	case SMTP_BDAT:
		reply_now(s, 502, "5.5.1 CHUNKING not offered");
		break;
	default:
		reply_now(s, 500, "5.5.1 Command unrecognized");
		break;
	}
}

/* --- input ---------------------------------------------------------------- */

static void
session_read(struct smtp_session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	while (!s->busy && !s->spool_wait && !s->dead && s->state != ST_CLOSING && s->state != ST_GREETING) {
		if (s->state == ST_DATA) {
			if (spool_blocked(s->info.tx.spool)) {
				spool_pause(s);
				return;
			}
			struct evbuffer_iovec v;
			if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
				return;
			size_t used = smtp_data_push(&s->data, v.iov_base, v.iov_len);
			evbuffer_drain(in, used);
			if (smtp_data_done(&s->data))
				data_finished(s);
			continue;
		}
		size_t eol_len = 0;
		struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_CRLF);
		if (eol.pos < 0) {
			if (evbuffer_get_length(in) > SMTP_MAX_LINE) {
				/* too long: answer once, skip to the end of the line */
				evbuffer_drain(in, evbuffer_get_length(in));
				if (!s->discard_line) {
					s->discard_line = true;
					reply_now(s, 500, "5.5.2 Line too long");
				}
			}
			return;
		}
		size_t len = (size_t)eol.pos;
		if (s->discard_line || len > SMTP_MAX_LINE) {
			evbuffer_drain(in, len + eol_len);
			if (!s->discard_line)
				reply_now(s, 500, "5.5.2 Line too long");
			s->discard_line = false;
			continue;
		}
		char *line = xmalloc(len + 1);
		evbuffer_remove(in, line, len);
		evbuffer_drain(in, eol_len);
		line[len] = '\0';
		if (s->state == ST_AUTH)
			auth_line(s, line, len);
		else
			command(s, line, len);
		explicit_bzero(line, len);
		free(line);
	}
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	(void)bev;
	session_read(arg);
}

/* All of the last reply has left: the bufferevent's output and, under
 * TLS, the underlying socket bufferevent's (freeing a filter does not
 * flush it). */
static bool
output_flushed(struct bufferevent *bev)
{
	if (evbuffer_get_length(bufferevent_get_output(bev)) > 0)
		return false;
	struct bufferevent *under = bufferevent_get_underlying(bev);
	return under == NULL || evbuffer_get_length(bufferevent_get_output(under)) == 0;
}

static void
on_close_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct smtp_session *s = arg;
	if (s->dead)
		return;
	if (s->bev && !output_flushed(s->bev) && ++s->close_polls < 200) {
		struct timeval tv = { 0, 10000 };
		event_add(s->close_ev, &tv);
		return;
	}
	session_close(s);
}

static void
on_write(struct bufferevent *bev, void *arg)
{
	struct smtp_session *s = arg;
	if (s->state != ST_CLOSING || evbuffer_get_length(bufferevent_get_output(bev)) > 0)
		return;
	if (output_flushed(bev)) {
		session_close(s);
		return;
	}
	if (s->close_ev == NULL)
		s->close_ev = evtimer_new(s->srv->base, on_close_timer, s);
	struct timeval tv = { 0, 10000 };
	event_add(s->close_ev, &tv);
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct smtp_session *s = arg;
	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		/* TLS handshake done (implicit TLS or after STARTTLS) */
		SSL *ssl = bufferevent_openssl_get_ssl(s->bev);
		s->info.tls = ssl != NULL;
		if (ssl) {
			struct hk_buf d;
			buf_init(&d);
			tls_describe(ssl, &d);
			snprintf(s->info.tls_desc, sizeof(s->info.tls_desc), "%s", d.data);
			buf_fini(&d);
		}
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		if (!s->busy) {
			send_reply(s, 421, "4.4.2 Timeout, closing connection");
			s->state = ST_CLOSING;
			bufferevent_disable(s->bev, EV_READ);
			bufferevent_set_timeouts(s->bev, NULL, NULL);
			return;
		}
		bufferevent_enable(s->bev, EV_READ); /* a hook is slow: keep waiting */
		return;
	}
	/* EOF or error */
	session_close(s);
}

static void
session_close(struct smtp_session *s)
{
	if (s->dead)
		return;
	s->dead = true;
	if (s->bev) {
		bufferevent_free(s->bev);
		s->bev = NULL;
	}
	smtp_session_unref(s);
}

static void
setup_bev(struct smtp_session *s, struct bufferevent *bev)
{
	s->bev = bev;
	bufferevent_setcb(bev, on_read, on_write, on_event, s);
	bufferevent_setwatermark(bev, EV_READ, 0, 256 * 1024);
	set_timeout(s);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static void
do_starttls(struct smtp_session *s)
{
	if (s->info.tls || s->srv->tls == NULL) {
		reply_now(s, s->info.tls ? 503 : 502, s->info.tls ? "5.5.1 TLS already active" : "5.5.1 STARTTLS not available");
		return;
	}
	send_reply(s, 220, "2.0.0 Ready to start TLS");
	/* Plaintext the client sent after STARTTLS must not be read as
	 * commands inside TLS (CVE-2011-0411 class): drop it. */
	struct evbuffer *in = bufferevent_get_input(s->bev);
	evbuffer_drain(in, evbuffer_get_length(in));
	struct bufferevent *tls = bufferevent_openssl_filter_new(s->srv->base, s->bev, tls_server_ssl_new(s->srv->tls),
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (tls == NULL) {
		smtp_session_reply_close(s, 454, "4.7.0 TLS not available due to temporary reason");
		return;
	}
	/* RFC 3207 4.2: forget everything learned before TLS */
	tx_reset(&s->info.tx);
	s->greeted = false;
	s->info.helo[0] = '\0';
	s->info.esmtp = false;
	setup_bev(s, tls);
}

struct smtp_session *
smtp_session_start(struct smtp_server *srv, int fd, const struct sockaddr *sa, socklen_t salen, enum listener_kind kind)
{
	(void)salen;
	struct smtp_session *s = xcalloc(1, sizeof(*s));
	s->srv = srv;
	s->refs = 1;
	s->info.id = ++srv->next_id;
	s->info.kind = kind;
	buf_init(&s->log);
	session_list_add(&srv->sessions, &s->link);
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
		inet_ntop(AF_INET, &in->sin_addr, s->info.peer_ip, sizeof(s->info.peer_ip));
		memcpy(s->info.peer_addr, &in->sin_addr, 4);
		s->info.peer_family = AF_INET;
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, s->info.peer_ip, sizeof(s->info.peer_ip));
		memcpy(s->info.peer_addr, &in6->sin6_addr, 16);
		s->info.peer_family = AF_INET6;
	}
	for (unsigned i = 0; i < srv->cfg->nrelay; i++)
		if (net_cidr_contains(&srv->cfg->relay_networks[i], s->info.peer_family, s->info.peer_addr))
			s->info.relay_ok = true;
	struct bufferevent *bev;
	if (kind == LISTEN_SMTPS && srv->tls) {
		bev = bufferevent_openssl_socket_new(srv->base, fd, tls_server_ssl_new(srv->tls), BUFFEREVENT_SSL_ACCEPTING,
		    BEV_OPT_CLOSE_ON_FREE);
		s->info.tls = true;
	} else {
		bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
	}
	if (bev == NULL) {
		close(fd);
		session_free(s);
		return NULL;
	}
	setup_bev(s, bev);
	if (srv->sessions.n > srv->cfg->max_sessions) {
		smtp_session_reply_close(s, 421, "4.7.0 Too many connections, try again later");
		return s;
	}
	s->state = ST_GREETING;
	if (srv->hooks && srv->hooks->connect) {
		start_hook(s);
		srv->hooks->connect(s);
		return s;
	}
	struct hk_buf g;
	buf_init(&g);
	buf_printf(&g, "%s ESMTP Hikyaku", srv->cfg->hostname);
	s->state = ST_CMD;
	smtp_session_reply(s, 220, g.data, false);
	buf_fini(&g);
	return s;
}

void
smtp_server_close_all(struct smtp_server *srv)
{
	for (struct session_link *k = srv->sessions.head, *next; k; k = next) {
		next = k->next;
		session_close(SESSION_OF(k, struct smtp_session, link)); /* may free s now, or when its job comes back */
	}
}
