/*
 * pop3_session.c - one POP3 session (see pop3_server.h).
 *
 * States (RFC 1939): AUTHORIZATION (USER/PASS, APOP, AUTH, STLS, CAPA),
 * TRANSACTION (STAT LIST RETR DELE NOOP RSET TOP UIDL), UPDATE on QUIT.
 * Every command that touches the accounts or the Maildir is a worker job;
 * meanwhile the session reads nothing more (pipelined commands wait in
 * the input buffer and are answered in order, RFC 2449 PIPELINING).
 * RETR and TOP stream: a job reads a chunk, the loop sends it, and the next
 * chunk is read when the output has drained, so a 50 MB message costs
 * ~256 KiB of memory.
 *
 * SECURITY: lines are capped (pop3_cmd.h), each session has an error
 * budget and an idle timeout, STLS drops pipelined plaintext, passwords
 * travel only under TLS unless the operator allows otherwise, failed
 * logins are slowed and blocked per client and account (core/auth.h), and
 * a second POP3 login to a maildrop gets [IN-USE].
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "accounts.h"
#include "core/auth.h"
#include "core/conn.h"
#include "core/log.h"
#include "core/timer.h"
#include "core/retention.h"
#include "core/sasl.h"
#include "core/worker.h"
#include "pop3_cmd.h"
#include "pop3_maildrop.h"
#include "pop3_server.h"
#include "scram.h"
#include "store.h"

#define POP3_CHUNK (256 * 1024)      /* bytes of a message read per job */
#define POP3_DRAIN_LOW (64 * 1024)   /* ask for the next chunk below this */
/* Read-ahead: clients RETR one message after another, and a worker round
 * trip per message would cost more than the read. So the job that reads
 * message n also reads the following small ones (up to these bounds), and
 * their RETRs are answered from memory on the loop. */
#define POP3_AHEAD_MAX 64             /* messages read in one go */
#define POP3_AHEAD_BYTES (256 * 1024) /* bytes held per session */
#define POP3_AHEAD_MSG_MAX (64 * 1024) /* larger ones are streamed when asked for */

enum pstate { PS_AUTH, PS_SASL, PS_TRANS, PS_CLOSING };

struct pop3_session {
	struct pop3_server *srv;
	struct conn *conn;
	uint64_t id;
	enum pstate state;
	bool busy;       /* a job is in flight: read nothing */
	bool dead;       /* the connection is gone */
	bool discard;    /* skipping the rest of an over-long line */
	int refs;
	unsigned errors;
	char apop_ts[128];            /* "<...>" of the greeting */
	char user[HK_ADDRESS_MAX + 1]; /* USER's argument */
	bool have_user;
	struct sasl_server *sasl;
	char address[HK_ADDRESS_MAX + 1]; /* logged in as */
	struct pop3_maildrop *md;
	struct pop3_reader *reader;   /* RETR/TOP in progress */
	size_t reading;               /* its message index */
	bool reading_retr;
	bool await_drain;             /* the next chunk waits for the output to drain */
	struct ahead {
		size_t idx;
		struct hk_buf data;       /* as sent, ".\r\n" included */
	} ahead[POP3_AHEAD_MAX * 2];  /* read ahead (owned by a RETR job while one runs) */
	size_t nahead;
	size_t ahead_next;            /* where the next read-ahead starts */
	bool prefetching;             /* a background read-ahead job is out */
	bool deferred;                /* a command waits in the input for it */
	unsigned long long n_retr, n_dele, n_top;
	uint64_t bytes_out;
	struct session_link link; /* in srv->sessions */
};

static void session_read(struct pop3_session *s);

/* --- lifetime ------------------------------------------------------------------ */

static void
session_free(struct pop3_session *s)
{
	session_list_remove(&s->srv->sessions, &s->link);
	/* no job is in flight now; closing is close(2) of a message and of
	 * the lock file (which unlocks the maildrop) and frees: no waiting */
	pop3_reader_free(&s->reader);
	pop3_maildrop_close(&s->md);
	for (size_t i = 0; i < s->nahead; i++)
		buf_fini(&s->ahead[i].data);
	sasl_server_free(&s->sasl);
	conn_free(&s->conn);
	explicit_bzero(s->user, sizeof(s->user));
	free(s);
}

static void
session_unref(struct pop3_session *s)
{
	if (--s->refs == 0)
		session_free(s);
}

static void
on_closed(struct conn *c, void *arg)
{
	(void)c;
	struct pop3_session *s = arg;
	if (s->dead)
		return;
	s->dead = true;
	if (s->address[0])
		log_info("pop3", "#%llu %s: %s logged out: retr=%llu top=%llu dele=%llu bytes=%llu%s",
		    (unsigned long long)s->id, conn_peer_ip(s->conn), s->address, s->n_retr, s->n_top, s->n_dele,
		    (unsigned long long)s->bytes_out, s->state == PS_CLOSING ? "" : " (disconnected)");
	session_unref(s);
}

/* --- replies ------------------------------------------------------------------- */

static void
reply_ok(struct pop3_session *s, const char *text)
{
	conn_printf(s->conn, "+OK %s\r\n", text);
}

/* -ERR; counts against the error budget when `counts`. */
static void
reply_err(struct pop3_session *s, const char *text, bool counts)
{
	conn_printf(s->conn, "-ERR %s\r\n", text);
	if (counts && ++s->errors >= s->srv->cfg->max_errors) {
		conn_puts(s->conn, "-ERR Too many errors, closing connection\r\n");
		log_info("pop3", "#%llu %s: too many errors", (unsigned long long)s->id, conn_peer_ip(s->conn));
		s->state = PS_CLOSING;
		conn_close_after_flush(s->conn);
	}
}

static void
start_job(struct pop3_session *s)
{
	s->busy = true;
	s->refs++;
	conn_pause(s->conn);
}

/* A job came back: read again (unless the session is ending). */
static void
end_job(struct pop3_session *s)
{
	s->busy = false;
	if (!s->dead && s->state != PS_CLOSING)
		conn_resume(s->conn);
}

static bool
plaintext_ok(const struct pop3_session *s)
{
	return conn_tls(s->conn) || s->srv->cfg->allow_plaintext_auth;
}

/* --- jobs ------------------------------------------------------------------------- */

enum jkind { J_PASS, J_APOP, J_SASL, J_READ, J_COMMIT };

struct job {
	enum jkind kind;
	struct pop3_session *s;
	/* login */
	char *user, *secret;
	char *data;
	size_t len;
	bool has_data;
	enum sasl_status sst;
	struct hk_buf challenge;
	bool auth_ok, tempfail;
	char address[HK_ADDRESS_MAX + 1];
	enum pop3_open_status open;
	struct pop3_maildrop *md;
	char err[512];
	/* read */
	long top;
	struct hk_buf out;
	bool done, read_error;
	/* commit */
	size_t failed;
	int rc;
};

static struct job *
job_new(struct pop3_session *s, enum jkind k)
{
	struct job *j = xcalloc(1, sizeof(*j));
	j->kind = k;
	j->s = s;
	buf_init(&j->challenge);
	buf_init(&j->out);
	start_job(s);
	return j;
}

static void
job_free(struct job *j)
{
	if (j->secret) {
		explicit_bzero(j->secret, strlen(j->secret));
		free(j->secret);
	}
	if (j->data) {
		explicit_bzero(j->data, j->len);
		free(j->data);
	}
	free(j->user);
	buf_fini(&j->challenge);
	buf_fini(&j->out);
	if (j->md) /* opened for a session that went away */
		pop3_maildrop_close(&j->md);
	free(j);
}

/* After a successful login (worker): the retention stage (so expired
 * mail is not offered; skipped cheaply when no operator or domain rules
 * have one), then lock and list the user's INBOX. */
static void
open_maildrop(struct job *j, struct hk_accounts *a)
{
	if (j->s->srv->retention)
		retention_run_login(j->s->srv->retention, a, j->address);
	struct hk_user *u = xmalloc(sizeof(*u));
	if (hk_accounts_user_get(a, j->address, u) != HK_ACCT_OK) {
		j->open = POP3_OPEN_ERROR;
		snprintf(j->err, sizeof(j->err), "user record of %s not readable", j->address);
		free(u);
		return;
	}
	char *root = hk_store_user_root(j->s->srv->cfg->state_dir, u->domain, u->local);
	free(u);
	if (root == NULL) {
		j->open = POP3_OPEN_ERROR;
		snprintf(j->err, sizeof(j->err), "no mailbox path for %s", j->address);
		return;
	}
	j->open = pop3_maildrop_open(root, &j->md, j->err, sizeof(j->err));
	free(root);
}

static void
login_work(void *arg)
{
	struct job *j = arg;
	struct pop3_session *s = j->s;
	struct hk_accounts *a = auth_service_accounts(s->srv->auth);
	if (a == NULL) {
		j->tempfail = true;
		return;
	}
	if (j->kind == J_PASS) {
		struct hk_user *u = xmalloc(sizeof(*u));
		enum hk_auth_result r = hk_accounts_auth_plain(a, j->user, j->secret, u);
		if (r == HK_AUTH_OK) {
			j->auth_ok = true;
			snprintf(j->address, sizeof(j->address), "%s", u->address);
		}
		j->tempfail = r == HK_AUTH_TEMPFAIL;
		free(u);
	} else if (j->kind == J_APOP) {
		enum hk_auth_result r = hk_accounts_auth_apop(a, j->user, s->apop_ts, j->secret, j->address);
		j->auth_ok = r == HK_AUTH_OK;
		j->tempfail = r == HK_AUTH_TEMPFAIL;
	} else {
		j->sst = sasl_server_step(s->sasl, a, j->data, j->len, j->has_data, &j->challenge);
		j->auth_ok = j->sst == SASL_OK;
		j->tempfail = j->sst == SASL_TEMPFAIL;
		if (j->auth_ok)
			snprintf(j->address, sizeof(j->address), "%s", sasl_server_user(s->sasl));
		else if (j->sst != SASL_CONTINUE && j->user == NULL)
			j->user = xstrdup(sasl_server_user(s->sasl));
	}
	if (j->auth_ok)
		open_maildrop(j, a);
}

/* A failed login is answered after the back-off delay (a timer on the
 * loop: nothing sleeps). */
static void
fail_now(struct pop3_session *s)
{
	if (!s->dead) {
		reply_err(s, "[AUTH] Authentication failed", true);
		end_job(s);
	}
	session_unref(s);
}

static void
delayed_fail_fire(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	fail_now(arg);
}

static void
login_done(void *arg)
{
	struct job *j = arg;
	struct pop3_session *s = j->s;
	if (s->dead) {
		job_free(j);
		session_unref(s);
		return;
	}
	if (j->kind == J_SASL && j->sst == SASL_CONTINUE) {
		struct hk_buf b64;
		buf_init(&b64);
		hk_b64_encode(j->challenge.data ? j->challenge.data : "", j->challenge.len, &b64);
		conn_printf(s->conn, "+ %s\r\n", b64.data ? b64.data : "");
		buf_fini(&b64);
		s->state = PS_SASL;
		job_free(j);
		end_job(s);
		session_unref(s);
		return;
	}
	sasl_server_free(&s->sasl);
	s->state = PS_AUTH;
	s->have_user = false;
	if (j->kind == J_SASL && j->sst == SASL_MALFORMED) {
		reply_err(s, "Malformed authentication exchange", true);
		goto out;
	}
	if (j->tempfail) {
		reply_err(s, "[SYS/TEMP] Temporary authentication failure, try again later", false);
		goto out;
	}
	const char *ip = conn_peer_ip(s->conn);
	unsigned delay = auth_service_record(s->srv->auth, ip, j->auth_ok ? j->address : j->user, j->auth_ok);
	if (!j->auth_ok) {
		log_info("pop3", "#%llu %s: authentication failed", (unsigned long long)s->id, ip);
		if (delay == 0) {
			job_free(j);
			fail_now(s);
			return;
		}
		loop_call_after(s->srv->base, delay, delayed_fail_fire, s); /* keeps the job's reference */
		job_free(j);
		return;
	}
	if (j->open == POP3_OPEN_IN_USE) {
		log_info("pop3", "#%llu %s: %s: maildrop in use", (unsigned long long)s->id, ip, j->address);
		reply_err(s, "[IN-USE] Mailbox is locked by another POP3 session", false);
		goto out;
	}
	if (j->open != POP3_OPEN_OK) {
		log_error("pop3", "#%llu %s: %s: %s", (unsigned long long)s->id, ip, j->address, j->err);
		reply_err(s, "[SYS/TEMP] Mailbox unavailable, try again later", false);
		goto out;
	}
	s->md = j->md;
	j->md = NULL;
	snprintf(s->address, sizeof(s->address), "%s", j->address);
	s->state = PS_TRANS;
	uint64_t octets = 0;
	for (size_t i = 0; i < s->md->n; i++)
		octets += s->md->v[i].size;
	log_info("pop3", "#%llu %s: %s logged in%s%s: %zu messages", (unsigned long long)s->id, ip, s->address,
	    conn_tls(s->conn) ? ", " : "", conn_tls_desc(s->conn), s->md->n);
	conn_printf(s->conn, "+OK Logged in, %zu messages (%llu octets)\r\n", s->md->n, (unsigned long long)octets);
out:
	job_free(j);
	end_job(s);
	session_unref(s);
}

static void
submit_login(struct pop3_session *s, struct job *j)
{
	worker_submit(s->srv->workers, login_work, login_done, j);
}

/* --- AUTHORIZATION ----------------------------------------------------------------- */

static bool
auth_blocked(struct pop3_session *s)
{
	if (!auth_service_blocked(s->srv->auth, conn_peer_ip(s->conn)))
		return false;
	reply_err(s, "[SYS/TEMP] Too many failed logins from your address; try again later", true);
	return true;
}

/* The mechanisms offered. CRAM-MD5 works only for users of domains with
 * legacy mechanisms, and clients pick the "strongest" advertised one
 * without falling back (curl, Thunderbird): so it is advertised only where
 * PLAIN is not (before TLS), for the old clients it exists for. It is
 * accepted everywhere. */
static const char *
mech_list(const struct pop3_session *s, const char *sep)
{
	static char buf[128];
	if (plaintext_ok(s))
		snprintf(buf, sizeof(buf), "PLAIN%sLOGIN%sSCRAM-SHA-256", sep, sep);
	else
		snprintf(buf, sizeof(buf), "SCRAM-SHA-256%sCRAM-MD5", sep);
	return buf;
}

static void
do_capa(struct pop3_session *s)
{
	struct evbuffer *o = conn_output(s->conn);
	evbuffer_add_printf(o, "+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n");
	if (s->state == PS_AUTH) {
		bool pt = plaintext_ok(s);
		if (pt)
			evbuffer_add_printf(o, "USER\r\n");
		evbuffer_add_printf(o, "SASL %s\r\n", mech_list(s, " "));
		if (!conn_tls(s->conn) && conn_tls_available(s->conn))
			evbuffer_add_printf(o, "STLS\r\n");
	}
	evbuffer_add_printf(o, "IMPLEMENTATION Hikyaku\r\n.\r\n");
}

static void
do_stls(struct pop3_session *s)
{
	if (s->state != PS_AUTH || conn_tls(s->conn)) {
		reply_err(s, conn_tls(s->conn) ? "TLS already active" : "STLS only before login", true);
		return;
	}
	if (!conn_tls_available(s->conn)) {
		reply_err(s, "TLS not available", true);
		return;
	}
	reply_ok(s, "Begin TLS negotiation");
	if (conn_starttls(s->conn) < 0) {
		reply_err(s, "[SYS/TEMP] TLS not available due to a temporary reason", false);
		s->state = PS_CLOSING;
		conn_close_after_flush(s->conn);
		return;
	}
	s->have_user = false; /* RFC 2595 4: forget what came before TLS */
}

/* One SASL step on a worker with the decoded client data `d` (wiped and
 * freed here); `has`: the client sent something (an initial response). */
static void
sasl_submit(struct pop3_session *s, struct hk_buf *d, bool has)
{
	struct job *j = job_new(s, J_SASL);
	j->has_data = has;
	j->len = d->len;
	j->data = xmalloc(d->len + 1);
	if (d->len)
		memcpy(j->data, d->data, d->len);
	j->data[d->len] = '\0';
	if (d->data)
		explicit_bzero(d->data, d->len);
	buf_fini(d);
	submit_login(s, j);
}

static void
do_auth(struct pop3_session *s, const struct pop3_cmd *c)
{
	if (c->nargs == 0) { /* RFC 1734 style: list the mechanisms */
		conn_printf(s->conn, "+OK Mechanisms follow\r\n%s\r\n.\r\n", mech_list(s, "\r\n"));
		return;
	}
	enum sasl_mech m;
	if (!sasl_mech_parse(c->args[0].ptr, c->args[0].len, &m)) {
		reply_err(s, "Unsupported authentication mechanism", true);
		return;
	}
	if (sasl_mech_sends_password(m) && !plaintext_ok(s)) {
		reply_err(s, "[AUTH] Plaintext authentication disallowed on non-secure connections; use STLS", true);
		return;
	}
	if (auth_blocked(s))
		return;
	struct hk_buf d;
	buf_init(&d);
	bool has = c->nargs == 2;
	if (has && !(c->args[1].len == 1 && c->args[1].ptr[0] == '=') && !hk_b64_decode(c->args[1].ptr, c->args[1].len, &d)) {
		buf_fini(&d);
		reply_err(s, "Malformed initial response", true);
		return;
	}
	s->sasl = sasl_server_new(m, s->srv->cfg->hostname);
	sasl_submit(s, &d, has);
}

/* A line while a SASL exchange waits for the client. */
static void
sasl_line(struct pop3_session *s, const char *line, size_t len)
{
	if (len == 1 && line[0] == '*') {
		sasl_server_free(&s->sasl);
		s->state = PS_AUTH;
		reply_err(s, "Authentication cancelled", true);
		return;
	}
	struct hk_buf d;
	buf_init(&d);
	if (len && !hk_b64_decode(line, len, &d)) {
		buf_fini(&d);
		sasl_server_free(&s->sasl);
		s->state = PS_AUTH;
		reply_err(s, "Malformed SASL response", true);
		return;
	}
	sasl_submit(s, &d, true);
}

static void
authorization(struct pop3_session *s, const struct pop3_cmd *c)
{
	switch (c->verb) {
	case POP3_USER:
		if (!plaintext_ok(s)) {
			reply_err(s, "[AUTH] Plaintext authentication disallowed on non-secure connections; use STLS", true);
			return;
		}
		if (c->args[0].len > HK_ADDRESS_MAX) {
			reply_err(s, "User name too long", true);
			return;
		}
		snprintf(s->user, sizeof(s->user), "%.*s", (int)c->args[0].len, c->args[0].ptr);
		s->have_user = true;
		reply_ok(s, "Send your password");
		return;
	case POP3_PASS: {
		if (!s->have_user) {
			reply_err(s, "USER first", true);
			return;
		}
		s->have_user = false;
		if (auth_blocked(s))
			return;
		struct job *j = job_new(s, J_PASS);
		j->user = xstrdup(s->user);
		j->secret = xstrndup(c->args[0].ptr, c->args[0].len);
		submit_login(s, j);
		return;
	}
	case POP3_APOP: {
		if (c->args[0].len > HK_ADDRESS_MAX || c->args[1].len != 32) {
			reply_err(s, "[AUTH] Authentication failed", true);
			return;
		}
		if (auth_blocked(s))
			return;
		struct job *j = job_new(s, J_APOP);
		j->user = xstrndup(c->args[0].ptr, c->args[0].len);
		j->secret = xstrndup(c->args[1].ptr, c->args[1].len);
		submit_login(s, j);
		return;
	}
	case POP3_AUTH:
		do_auth(s, c);
		return;
	case POP3_STLS:
		do_stls(s);
		return;
	case POP3_CAPA:
		do_capa(s);
		return;
	case POP3_QUIT:
		reply_ok(s, "Bye");
		s->state = PS_CLOSING;
		conn_close_after_flush(s->conn);
		return;
	case POP3_NOOP:
	default:
		reply_err(s, "Not logged in", true);
		return;
	}
}

/* --- TRANSACTION --------------------------------------------------------------------- */

/* The message with number `arg` (1-based), not deleted; else -ERR. */
static bool
message_arg(struct pop3_session *s, struct hk_str arg, size_t *idx_r)
{
	unsigned n;
	if (!pop3_number(arg, false, &n)) {
		reply_err(s, "Invalid message number", true);
		return false;
	}
	if (n > s->md->n) {
		reply_err(s, "No such message", true);
		return false;
	}
	if (s->md->v[n - 1].deleted) {
		reply_err(s, "Message already deleted", true);
		return false;
	}
	*idx_r = n - 1;
	return true;
}

/* The whole of a small message into out (worker). */
static bool
read_whole(struct pop3_session *s, size_t idx, struct hk_buf *out)
{
	struct pop3_reader *r = pop3_reader_open(s->md, idx, -1);
	if (r == NULL)
		return false;
	bool done = false;
	int rc = 0;
	while (!done && rc == 0)
		rc = pop3_reader_next(r, out, POP3_CHUNK, &done);
	pop3_reader_free(&r);
	return rc == 0;
}

/* Which messages to read ahead from `from` on: up to POP3_AHEAD_MAX not
 * deleted, POP3_AHEAD_BYTES in all, stopping at a large one (it is
 * streamed when asked for). Sets ahead_next past them. */
static size_t
choose_ahead(struct pop3_session *s, size_t from, size_t idx[POP3_AHEAD_MAX])
{
	uint64_t bytes = 0;
	size_t n = 0, k;
	for (k = from; k < s->md->n && n < POP3_AHEAD_MAX && bytes < POP3_AHEAD_BYTES; k++) {
		const struct pop3_msg *m = &s->md->v[k];
		if (m->deleted)
			continue;
		if (m->size > POP3_AHEAD_MSG_MAX)
			break;
		idx[n++] = k;
		bytes += m->size;
	}
	s->ahead_next = k;
	return n;
}

/* The synchronous read-ahead of a RETR job (worker; no prefetch is out). */
static void
read_ahead(struct pop3_session *s, size_t from)
{
	for (size_t i = 0; i < s->nahead; i++)
		buf_fini(&s->ahead[i].data);
	s->nahead = 0;
	size_t idx[POP3_AHEAD_MAX];
	size_t n = choose_ahead(s, from, idx);
	for (size_t i = 0; i < n; i++) {
		struct ahead *a = &s->ahead[s->nahead];
		buf_init(&a->data);
		if (!read_whole(s, idx[i], &a->data)) {
			buf_fini(&a->data);
			s->ahead_next = idx[i]; /* the rest is read when asked for */
			break;
		}
		a->idx = idx[i];
		s->nahead++;
	}
}

/* --- background read-ahead ---------------------------------------------------
 * When the messages read ahead run low, the next ones are read by a job
 * while the client is still served from memory, so a client that RETRs
 * everything never waits for the disk. The job reads only the indexes
 * chosen on the loop (it touches no flags) into its own buffers; a command
 * that needs a worker meanwhile waits in the input until it is back. */
struct prefetch {
	struct pop3_session *s;
	size_t idx[POP3_AHEAD_MAX];
	size_t n;
	struct hk_buf data[POP3_AHEAD_MAX];
	size_t got; /* how many of idx were read */
};

static void
prefetch_work(void *arg)
{
	struct prefetch *p = arg;
	for (; p->got < p->n; p->got++) {
		buf_init(&p->data[p->got]);
		if (!read_whole(p->s, p->idx[p->got], &p->data[p->got])) {
			buf_fini(&p->data[p->got]);
			break;
		}
	}
}

static void
prefetch_done(void *arg)
{
	struct prefetch *p = arg;
	struct pop3_session *s = p->s;
	s->prefetching = false;
	for (size_t i = 0; i < p->got; i++) {
		if (!s->dead && s->nahead < POP3_AHEAD_MAX * 2) {
			s->ahead[s->nahead].idx = p->idx[i];
			s->ahead[s->nahead].data = p->data[i];
			s->nahead++;
		} else {
			buf_fini(&p->data[i]);
		}
	}
	free(p);
	if (!s->dead && s->deferred) {
		s->deferred = false;
		end_job(s); /* the waiting command is read again */
		session_read(s);
	}
	session_unref(s);
}

static void
prefetch_start(struct pop3_session *s)
{
	struct prefetch *p = xcalloc(1, sizeof(*p));
	p->s = s;
	p->n = choose_ahead(s, s->ahead_next, p->idx);
	if (p->n == 0) {
		free(p);
		return;
	}
	s->prefetching = true;
	s->refs++;
	worker_submit(s->srv->workers, prefetch_work, prefetch_done, p);
}

/* RETR of a message read ahead: answered at once (loop). */
static bool
serve_ahead(struct pop3_session *s, size_t idx)
{
	for (size_t i = 0; i < s->nahead; i++) {
		if (s->ahead[i].idx != idx)
			continue;
		struct ahead *a = &s->ahead[i];
		conn_printf(s->conn, "+OK %llu octets\r\n", (unsigned long long)s->md->v[idx].size);
		conn_write(s->conn, a->data.data, a->data.len);
		s->bytes_out += a->data.len;
		s->md->v[idx].retrieved = true;
		s->n_retr++;
		buf_fini(&a->data);
		*a = s->ahead[--s->nahead];
		if (!s->prefetching && s->nahead <= POP3_AHEAD_MAX / 2 && s->ahead_next < s->md->n)
			prefetch_start(s);
		return true;
	}
	return false;
}

static void
read_work(void *arg)
{
	struct job *j = arg;
	struct pop3_session *s = j->s;
	if (j->top == -1 && s->md->v[s->reading].size <= POP3_AHEAD_MSG_MAX) {
		/* a small message whole, then the next ones */
		j->done = true;
		j->read_error = !read_whole(s, s->reading, &j->out);
		if (!j->read_error)
			read_ahead(s, s->reading + 1);
		return;
	}
	if (s->reader == NULL) {
		s->reader = pop3_reader_open(s->md, s->reading, j->top);
		if (s->reader == NULL) {
			j->read_error = true;
			return;
		}
	}
	if (pop3_reader_next(s->reader, &j->out, POP3_CHUNK, &j->done) < 0)
		j->read_error = true;
	if (j->done || j->read_error)
		pop3_reader_free(&s->reader);
}

static void read_next(struct pop3_session *s);

static void
read_done(void *arg)
{
	struct job *j = arg;
	struct pop3_session *s = j->s;
	if (s->dead) {
		job_free(j);
		session_unref(s);
		return;
	}
	bool first = j->top != -2; /* -2 marks the chunks after the first */
	if (j->read_error) {
		if (first) {
			reply_err(s, "[SYS/TEMP] Message no longer available (deleted by another session?)", false);
			end_job(s);
		} else {
			/* the "+OK" is out: a broken stream must not look complete */
			log_error("pop3", "#%llu: read error in the middle of message %zu", (unsigned long long)s->id, s->reading + 1);
			s->state = PS_CLOSING;
			conn_close(s->conn);
		}
		job_free(j);
		session_unref(s);
		return;
	}
	if (first) {
		if (s->reading_retr)
			conn_printf(s->conn, "+OK %llu octets\r\n", (unsigned long long)s->md->v[s->reading].size);
		else
			reply_ok(s, "Top of message follows");
	}
	if (j->out.len)
		conn_write(s->conn, j->out.data, j->out.len);
	s->bytes_out += j->out.len;
	if (j->done) {
		if (s->reading_retr) {
			s->md->v[s->reading].retrieved = true;
			s->n_retr++;
		} else {
			s->n_top++;
		}
		conn_set_drain(s->conn, 0);
		job_free(j);
		end_job(s);
		session_unref(s);
		return;
	}
	job_free(j);
	session_unref(s);
	/* the next chunk once most of this one has left */
	if (conn_output_pending(s->conn) <= POP3_DRAIN_LOW) {
		read_next(s);
	} else {
		s->await_drain = true;
		conn_set_drain(s->conn, POP3_DRAIN_LOW);
	}
}

static void
read_next(struct pop3_session *s)
{
	conn_set_drain(s->conn, 0);
	struct job *j = job_new(s, J_READ);
	j->top = -2;
	worker_submit(s->srv->workers, read_work, read_done, j);
}

static void
on_drained(struct conn *c, void *arg)
{
	(void)c;
	struct pop3_session *s = arg;
	if (!s->dead && s->await_drain) {
		s->await_drain = false;
		read_next(s);
	}
}

static void
start_read(struct pop3_session *s, size_t idx, long top)
{
	s->reading = idx;
	s->reading_retr = top < 0;
	struct job *j = job_new(s, J_READ);
	j->top = top;
	worker_submit(s->srv->workers, read_work, read_done, j);
}

static void
commit_work(void *arg)
{
	struct job *j = arg;
	j->rc = pop3_maildrop_commit(j->s->md, &j->failed);
	/* unlock before the +OK: a client that logs in again right after
	 * QUIT must find the maildrop free */
	pop3_reader_free(&j->s->reader);
	pop3_maildrop_close(&j->s->md);
}

static void
commit_done(void *arg)
{
	struct job *j = arg;
	struct pop3_session *s = j->s;
	if (!s->dead) {
		if (j->rc < 0) {
			log_error("pop3", "#%llu %s: %zu deletions failed", (unsigned long long)s->id, s->address, j->failed);
			conn_printf(s->conn, "-ERR [SYS/TEMP] %zu messages could not be deleted\r\n", j->failed);
		} else {
			reply_ok(s, "Bye");
		}
		conn_close_after_flush(s->conn);
	}
	job_free(j);
	session_unref(s);
}

static void
transaction(struct pop3_session *s, const struct pop3_cmd *c)
{
	struct pop3_maildrop *md = s->md;
	size_t idx;
	switch (c->verb) {
	case POP3_STAT: {
		size_t n = 0;
		uint64_t octets = 0;
		for (size_t i = 0; i < md->n; i++)
			if (!md->v[i].deleted) {
				n++;
				octets += md->v[i].size;
			}
		conn_printf(s->conn, "+OK %zu %llu\r\n", n, (unsigned long long)octets);
		return;
	}
	case POP3_LIST:
	case POP3_UIDL: {
		bool uidl = c->verb == POP3_UIDL;
		if (c->nargs == 1) {
			if (!message_arg(s, c->args[0], &idx))
				return;
			if (uidl)
				conn_printf(s->conn, "+OK %zu %s\r\n", idx + 1, md->v[idx].uidl);
			else
				conn_printf(s->conn, "+OK %zu %llu\r\n", idx + 1, (unsigned long long)md->v[idx].size);
			return;
		}
		struct evbuffer *o = conn_output(s->conn);
		evbuffer_add_printf(o, "+OK\r\n");
		for (size_t i = 0; i < md->n; i++) {
			if (md->v[i].deleted)
				continue;
			if (uidl)
				evbuffer_add_printf(o, "%zu %s\r\n", i + 1, md->v[i].uidl);
			else
				evbuffer_add_printf(o, "%zu %llu\r\n", i + 1, (unsigned long long)md->v[i].size);
		}
		evbuffer_add(o, ".\r\n", 3);
		return;
	}
	case POP3_RETR:
		if (message_arg(s, c->args[0], &idx) && !serve_ahead(s, idx))
			start_read(s, idx, -1);
		return;
	case POP3_TOP: {
		unsigned lines;
		if (!message_arg(s, c->args[0], &idx))
			return;
		if (!pop3_number(c->args[1], true, &lines)) {
			reply_err(s, "Invalid number of lines", true);
			return;
		}
		start_read(s, idx, (long)lines);
		return;
	}
	case POP3_DELE:
		if (!message_arg(s, c->args[0], &idx))
			return;
		md->v[idx].deleted = true;
		s->n_dele++;
		conn_printf(s->conn, "+OK Message %zu deleted\r\n", idx + 1);
		return;
	case POP3_RSET: {
		size_t n = 0;
		for (size_t i = 0; i < md->n; i++) {
			md->v[i].deleted = false;
			n++;
		}
		s->n_dele = 0;
		conn_printf(s->conn, "+OK %zu messages\r\n", n);
		return;
	}
	case POP3_NOOP:
		reply_ok(s, "");
		return;
	case POP3_CAPA:
		do_capa(s);
		return;
	case POP3_QUIT: {
		s->state = PS_CLOSING;
		struct job *j = job_new(s, J_COMMIT);
		worker_submit(s->srv->workers, commit_work, commit_done, j);
		return;
	}
	default:
		reply_err(s, "Not valid after login", true);
		return;
	}
}

/* --- reading commands ----------------------------------------------------------------- */

static void
command(struct pop3_session *s, const char *line, size_t len)
{
	if (s->state == PS_SASL) {
		sasl_line(s, line, len);
		return;
	}
	struct pop3_cmd c;
	const char *err;
	if (pop3_cmd_parse(line, len, &c, &err) < 0) {
		reply_err(s, err, true);
		return;
	}
	if (s->state == PS_AUTH)
		authorization(s, &c);
	else if (s->state == PS_TRANS)
		transaction(s, &c);
}

/* Would this line start a worker job (while one is out, it must wait)? */
static bool
needs_worker(struct pop3_session *s, const char *line, size_t n)
{
	if (s->state != PS_TRANS)
		return true;
	struct pop3_cmd c;
	const char *err;
	if (pop3_cmd_parse(line, n, &c, &err) < 0)
		return false;
	if (c.verb == POP3_TOP || c.verb == POP3_QUIT)
		return true;
	if (c.verb != POP3_RETR)
		return false;
	unsigned k;
	if (!pop3_number(c.args[0], false, &k) || k > s->md->n)
		return false;
	for (size_t i = 0; i < s->nahead; i++)
		if (s->ahead[i].idx == k - 1)
			return false;
	return true;
}

static void
session_read(struct pop3_session *s)
{
	struct evbuffer *in = conn_input(s->conn);
	while (!s->busy && !s->dead && s->state != PS_CLOSING) {
		size_t eol_len = 0;
		struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_CRLF);
		if (eol.pos < 0) {
			size_t have = evbuffer_get_length(in);
			if (have > POP3_AUTH_LINE_MAX) {
				evbuffer_drain(in, have);
				if (!s->discard) {
					s->discard = true;
					reply_err(s, "Line too long", true);
				}
			}
			return;
		}
		size_t n = (size_t)eol.pos;
		if (s->discard || n > POP3_AUTH_LINE_MAX) {
			evbuffer_drain(in, n + eol_len);
			if (!s->discard)
				reply_err(s, "Line too long", true);
			s->discard = false;
			continue;
		}
		char *line = xmalloc(n + 1);
		evbuffer_copyout(in, line, n);
		line[n] = '\0';
		if (s->prefetching && needs_worker(s, line, n)) {
			/* left in the input until the read-ahead job is back */
			s->deferred = true;
			s->busy = true;
			conn_pause(s->conn);
			free(line);
			return;
		}
		evbuffer_drain(in, n + eol_len);
		command(s, line, n);
		explicit_bzero(line, n);
		free(line);
	}
}

static void
on_read(struct conn *c, void *arg)
{
	(void)c;
	session_read(arg);
}

static void
on_timeout(struct conn *c, void *arg)
{
	struct pop3_session *s = arg;
	if (s->busy) /* our own job is slow: keep waiting */
		return;
	/* RFC 1939 3: an autologout does not enter UPDATE: nothing is deleted */
	conn_puts(c, "-ERR Autologout; idle for too long\r\n");
	s->state = PS_CLOSING;
	conn_close_after_flush(c);
}

static const struct conn_cbs pop3_cbs = {
	.read = on_read,
	.drained = on_drained,
	.timeout = on_timeout,
	.closed = on_closed,
};

void
pop3_session_start(struct pop3_server *srv, int fd, const struct sockaddr *sa, enum listener_kind kind)
{
	struct pop3_session *s = xcalloc(1, sizeof(*s));
	s->srv = srv;
	s->refs = 1;
	s->id = ++srv->next_id;
	s->conn = conn_new(srv->base, srv->tls, fd, sa, kind == LISTEN_POP3S, &pop3_cbs, s);
	if (s->conn == NULL) {
		free(s);
		return;
	}
	session_list_add(&srv->sessions, &s->link);
	conn_set_timeout(s->conn, srv->cfg->timeout_pop3);
	if (srv->sessions.n > srv->cfg->max_sessions) {
		conn_puts(s->conn, "-ERR [SYS/TEMP] Too many connections, try again later\r\n");
		s->state = PS_CLOSING;
		conn_close_after_flush(s->conn);
		return;
	}
	/* APOP's timestamp (RFC 1939 7): unique per greeting */
	unsigned char rnd[8];
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		memset(rnd, 0, sizeof(rnd)); /* the id and the time still make it unique */
	snprintf(s->apop_ts, sizeof(s->apop_ts), "<%llx.%02x%02x%02x%02x%02x%02x%02x%02x.%lld@%s>",
	    (unsigned long long)s->id, rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7],
	    (long long)time(NULL), srv->cfg->hostname);
	log_info("pop3", "#%llu %s: connected%s", (unsigned long long)s->id, conn_peer_ip(s->conn),
	    kind == LISTEN_POP3S ? " (TLS)" : "");
	conn_printf(s->conn, "+OK Hikyaku POP3 ready %s\r\n", s->apop_ts);
}

void
pop3_server_close_all(struct pop3_server *srv)
{
	for (struct session_link *k = srv->sessions.head, *next; k; k = next) {
		next = k->next;
		struct pop3_session *s = SESSION_OF(k, struct pop3_session, link);
		if (!s->dead)
			conn_close(s->conn); /* may free s now, or when its job comes back */
	}
}
