/*
 * imapd_session.c - one IMAP session: the connection, the command reader,
 * the states of RFC 3501 3, login (LOGIN, AUTHENTICATE with SASL-IR),
 * STARTTLS, IDLE, and the jobs that carry commands to worker threads
 * (see imapd_int.h).
 *
 * SECURITY: the reader bounds every line and literal (smaller before
 * login); LOGIN and password mechanisms need TLS unless the operator
 * allows plaintext (LOGINDISABLED otherwise); STARTTLS drops pipelined
 * plaintext; failed logins are slowed and blocked per client and account
 * (core/auth.h, shared with SMTP and POP3); BAD replies count against the
 * error budget; idle sessions are logged out (30 minutes, RFC 3501 5.4).
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/auth.h"
#include "core/conn.h"
#include "core/log.h"
#include "core/timer.h"
#include "core/retention.h"
#include "core/sasl.h"
#include "core/spool.h"
#include "core/worker.h"
#include "imap/imap_write.h"
#include "imapd_int.h"
#include "scram.h"

#define IMAPD_TIMEOUT_NOAUTH 120  /* seconds before login */
#define IMAPD_TIMEOUT_AUTH 1800   /* after login, and in IDLE (RFC 3501 5.4: at least 30 minutes) */

static void session_process(struct imapd_session *s);

/* --- lifetime -------------------------------------------------------------------- */

static void
session_free(struct imapd_session *s)
{
	session_list_remove(&s->srv->sessions, &s->link);
	imapd_notify_unwatch(s->srv->notify, s);
	/* no job is in flight: what is left is closed here (close(2) and
	 * frees, nothing that waits) */
	imapd_mailbox_close(s);
	hk_store_close(&s->st);
	spool_free(&s->append_spool);
	sasl_server_free(&s->sasl);
	free(s->sasl_tag);
	free(s->idle_tag);
	free(s->root);
	imap_reader_free(&s->reader);
	conn_free(&s->conn);
	free(s);
}

static void
session_unref(struct imapd_session *s)
{
	if (--s->refs == 0)
		session_free(s);
}

static void
on_closed(struct conn *c, void *arg)
{
	(void)c;
	struct imapd_session *s = arg;
	if (s->dead)
		return;
	s->dead = true;
	if (s->address[0])
		log_info("imap", "#%llu %s: %s logged out%s", (unsigned long long)s->id, conn_peer_ip(s->conn), s->address,
		    s->state == IS_LOGOUT ? "" : " (disconnected)");
	session_unref(s);
}

static void
close_after(struct imapd_session *s)
{
	s->state = IS_LOGOUT;
	conn_close_after_flush(s->conn);
}

/* --- replies ------------------------------------------------------------------------ */

static void
reply(struct imapd_session *s, const char *tag, const char *status, const char *text)
{
	conn_printf(s->conn, "%s %s %s\r\n", tag, status, text);
}

/* BAD: counts against the error budget. */
static void
reply_bad(struct imapd_session *s, const char *tag, const char *text)
{
	reply(s, tag && *tag ? tag : "*", "BAD", text);
	if (++s->errors >= s->srv->cfg->max_errors) {
		conn_puts(s->conn, "* BYE Too many errors, closing connection\r\n");
		log_info("imap", "#%llu %s: too many errors", (unsigned long long)s->id, conn_peer_ip(s->conn));
		close_after(s);
	}
}

void
imapd_tagged(struct imapd_job *j, const char *status, const char *fmt, ...)
{
	buf_printf(&j->out, "%s %s ", j->cmd.tag, status);
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&j->out, fmt, ap);
	va_end(ap);
	buf_adds(&j->out, "\r\n");
}

static bool
plaintext_ok(const struct imapd_session *s)
{
	return conn_tls(s->conn) || s->srv->cfg->allow_plaintext_auth;
}

void
imapd_capabilities(const struct imapd_session *s, bool logged_in, struct hk_buf *out)
{
	buf_adds(out, "IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE UNSELECT");
	if (logged_in) {
		buf_adds(out, " UIDPLUS MOVE SPECIAL-USE CONDSTORE CHILDREN");
		return;
	}
	if (!conn_tls(s->conn) && conn_tls_available(s->conn))
		buf_adds(out, " STARTTLS");
	/* CRAM-MD5 only where PLAIN is not offered: see doc/pop3.md */
	if (plaintext_ok(s))
		buf_adds(out, " AUTH=PLAIN AUTH=LOGIN AUTH=SCRAM-SHA-256");
	else
		buf_adds(out, " AUTH=SCRAM-SHA-256 AUTH=CRAM-MD5 LOGINDISABLED");
}

/* --- jobs --------------------------------------------------------------------------- */

struct imapd_job *
imapd_job_new(struct imapd_session *s)
{
	struct imapd_job *j = xcalloc(1, sizeof(*j));
	j->s = s;
	arena_init(&j->arena, 0);
	buf_init(&j->out);
	s->busy = true;
	s->refs++;
	s->job = j;
	conn_pause(s->conn);
	return j;
}

static void
job_free(struct imapd_job *j)
{
	free(j->changed_other);
	if (j->state_free)
		j->state_free(j->state);
	arena_fini(&j->arena);
	buf_fini(&j->out);
	free(j);
}

static void job_done(void *arg);

static void
job_work(void *arg)
{
	struct imapd_job *j = arg;
	j->more = false;
	j->work(j);
}

void
imapd_job_submit(struct imapd_job *j, imapd_work_fn work)
{
	j->work = work;
	worker_submit(j->s->srv->workers, job_work, job_done, j);
}

static void
job_finish(struct imapd_session *s, struct imapd_job *j)
{
	bool hold = j->hold;
	s->job = NULL;
	job_free(j);
	if (hold)
		return; /* someone else resumes the session (a delayed NO) */
	s->busy = false;
	if (s->dead || s->state == IS_LOGOUT)
		return;
	conn_resume(s->conn);
	if (s->wake_pending && s->idle_tag) {
		s->wake_pending = false;
		imapd_session_wake(s);
		return;
	}
	session_process(s);
}

static void
job_done(void *arg)
{
	struct imapd_job *j = arg;
	struct imapd_session *s = j->s;
	if (s->dead) {
		s->job = NULL;
		job_free(j);
		session_unref(s);
		return;
	}
	if (j->out.len)
		conn_write(s->conn, j->out.data, j->out.len);
	buf_reset(&j->out);
	if (j->authenticated) {
		s->state = IS_AUTH;
		conn_set_timeout(s->conn, IMAPD_TIMEOUT_AUTH);
		struct imap_reader_limits lim = { IMAPD_LITERAL_MAX, s->max_message_size, 1u << 20 };
		imap_reader_set_limits(s->reader, &lim);
	}
	if (j->unselected) {
		imapd_notify_unwatch(s->srv->notify, s);
		s->state = IS_AUTH;
		j->unselected = false;
	}
	if (j->selected) {
		s->state = IS_SELECTED;
		imapd_notify_watch(s->srv->notify, s);
		j->selected = false;
	}
	if (j->changed && s->folder && s->root) {
		imapd_notify_changed(s->srv->notify, s->root, s->folder, s);
		j->changed = false;
	}
	if (j->changed_other && s->root) {
		imapd_notify_changed(s->srv->notify, s->root, j->changed_other, s);
		free(j->changed_other);
		j->changed_other = NULL;
	}
	if (j->done)
		j->done(j); /* login_done reads j->authenticated: clear it only after */
	j->authenticated = false;
	if (j->logout) {
		s->job = NULL;
		job_free(j);
		close_after(s);
		session_unref(s);
		return;
	}
	if (j->more) {
		/* the rest once most of this chunk has left */
		session_unref(s);
		if (conn_output_pending(s->conn) <= IMAPD_DRAIN_LOW) {
			s->refs++;
			imapd_job_submit(j, j->work);
		} else {
			s->await_drain = true;
			conn_set_drain(s->conn, IMAPD_DRAIN_LOW);
		}
		return;
	}
	job_finish(s, j);
	session_unref(s);
}

static void
on_drained(struct conn *c, void *arg)
{
	(void)c;
	struct imapd_session *s = arg;
	if (s->dead || !s->await_drain)
		return;
	s->await_drain = false;
	conn_set_drain(s->conn, 0);
	s->refs++;
	imapd_job_submit(s->job, s->job->work);
}

/* --- login --------------------------------------------------------------------------- */

/* After a successful login (worker): the user's mailbox and limits, and
 * the retention stage. -1 with a NO in out when the mailbox is not usable. */
static int
login_setup(struct imapd_job *j, struct hk_accounts *a)
{
	struct imapd_session *s = j->s;
	struct hk_user *u = xmalloc(sizeof(*u));
	struct hk_limits lim;
	memset(&lim, 0, sizeof(lim));
	if (hk_accounts_user_get(a, s->address, u) != HK_ACCT_OK || hk_accounts_limits(a, u, &lim) != HK_ACCT_OK) {
		free(u);
		imapd_tagged(j, "NO", "[UNAVAILABLE] Account data unavailable, try again later");
		return -1;
	}
	s->root = hk_store_user_root(s->srv->cfg->state_dir, u->domain, u->local);
	free(u);
	s->max_message_size = lim.max_message_size > 0 ? (uint64_t)lim.max_message_size : s->srv->cfg->max_message_size;
	if (s->max_message_size > s->srv->cfg->max_message_size)
		s->max_message_size = s->srv->cfg->max_message_size;
	s->quota_bytes = lim.quota > 0 ? (uint64_t)lim.quota : 0;
	struct hk_store_settings set = { .quota = { .bytes = s->quota_bytes }, .create = true };
	if (s->root == NULL || hk_store_open(s->root, &set, &s->st) < 0) {
		log_error("imap", "#%llu %s: cannot open the mailbox: %s", (unsigned long long)s->id, s->address,
		    s->root ? strerror(errno) : "bad name");
		imapd_tagged(j, "NO", "[UNAVAILABLE] Mailbox unavailable, try again later");
		return -1;
	}
	if (s->srv->retention)
		retention_run_login(s->srv->retention, a, s->address);
	return 0;
}

struct login_state {
	char *user, *pass;
	size_t passlen;          /* SASL data may hold NULs (PLAIN) */
	enum sasl_status sst;
	struct hk_buf challenge;
	bool ok, tempfail;
	char tried[HK_ADDRESS_MAX + 1];
};

static void
login_state_free(void *p)
{
	struct login_state *ls = p;
	if (ls->pass) {
		explicit_bzero(ls->pass, ls->passlen);
		free(ls->pass);
	}
	free(ls->user);
	buf_fini(&ls->challenge);
	free(ls);
}

static void
finish_login(struct imapd_job *j, struct hk_accounts *a)
{
	struct login_state *ls = j->state;
	struct imapd_session *s = j->s;
	if (!ls->ok)
		return; /* answered on the loop, after the back-off */
	if (login_setup(j, a) < 0) {
		s->address[0] = '\0';
		return;
	}
	j->authenticated = true;
	struct hk_buf caps;
	buf_init(&caps);
	imapd_capabilities(s, true, &caps);
	imapd_tagged(j, "OK", "[CAPABILITY %s] Logged in", caps.data);
	buf_fini(&caps);
}

static void
login_work(struct imapd_job *j)
{
	struct login_state *ls = j->state;
	struct imapd_session *s = j->s;
	struct hk_accounts *a = auth_service_accounts(s->srv->auth);
	if (a == NULL) {
		ls->tempfail = true;
		imapd_tagged(j, "NO", "[UNAVAILABLE] Temporary authentication failure");
		return;
	}
	struct hk_user *u = xmalloc(sizeof(*u));
	snprintf(ls->tried, sizeof(ls->tried), "%s", ls->user);
	enum hk_auth_result r = hk_accounts_auth_plain(a, ls->user, ls->pass, u);
	if (r == HK_AUTH_OK) {
		ls->ok = true;
		snprintf(s->address, sizeof(s->address), "%s", u->address);
	} else if (r == HK_AUTH_TEMPFAIL) {
		ls->tempfail = true;
		imapd_tagged(j, "NO", "[UNAVAILABLE] Temporary authentication failure");
	}
	free(u);
	finish_login(j, a);
}

static void
sasl_work(struct imapd_job *j)
{
	struct login_state *ls = j->state;
	struct imapd_session *s = j->s;
	struct hk_accounts *a = auth_service_accounts(s->srv->auth);
	if (a == NULL) {
		ls->tempfail = true;
		ls->sst = SASL_TEMPFAIL;
		return;
	}
	buf_reset(&ls->challenge);
	ls->sst = sasl_server_step(s->sasl, a, ls->pass ? ls->pass : "", ls->passlen, ls->user != NULL, &ls->challenge);
	if (ls->sst == SASL_OK) {
		ls->ok = true;
		snprintf(s->address, sizeof(s->address), "%s", sasl_server_user(s->sasl));
		finish_login(j, a);
	} else if (ls->sst != SASL_CONTINUE) {
		snprintf(ls->tried, sizeof(ls->tried), "%s", sasl_server_user(s->sasl));
	}
}

/* A failed login is answered after the back-off delay (a timer: nothing sleeps). */
struct delayed_no {
	struct imapd_session *s;
	char tag[IMAP_MAX_TAG + 1];
};

static void
delayed_no_fire(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct delayed_no *d = arg;
	struct imapd_session *s = d->s;
	if (!s->dead) {
		reply(s, d->tag, "NO", "[AUTHENTICATIONFAILED] Authentication failed");
		s->busy = false;
		conn_resume(s->conn);
		session_process(s);
	}
	free(d);
	session_unref(s);
}

/* Loop: the verdict of LOGIN or of a finished SASL exchange. */
static void
login_done(struct imapd_job *j)
{
	struct login_state *ls = j->state;
	struct imapd_session *s = j->s;
	if (ls->tempfail || (ls->ok && !j->authenticated))
		return; /* the NO is in the output already */
	const char *ip = conn_peer_ip(s->conn);
	unsigned delay = auth_service_record(s->srv->auth, ip, ls->ok ? s->address : ls->tried, ls->ok);
	if (ls->ok) {
		log_info("imap", "#%llu %s: %s logged in%s%s", (unsigned long long)s->id, ip, s->address,
		    conn_tls(s->conn) ? ", " : "", conn_tls_desc(s->conn));
		return;
	}
	log_info("imap", "#%llu %s: authentication failed", (unsigned long long)s->id, ip);
	/* keep the session busy until the delayed NO: a client cannot
	 * pipeline more guesses meanwhile */
	struct delayed_no *d = xcalloc(1, sizeof(*d));
	d->s = s;
	s->refs++;
	snprintf(d->tag, sizeof(d->tag), "%s", j->cmd.tag);
	loop_call_after(s->srv->base, delay, delayed_no_fire, d);
	j->hold = true; /* the timer resumes reading */
}

static void
sasl_done(struct imapd_job *j)
{
	struct login_state *ls = j->state;
	struct imapd_session *s = j->s;
	if (ls->sst == SASL_CONTINUE) {
		struct hk_buf b64;
		buf_init(&b64);
		hk_b64_encode(ls->challenge.data ? ls->challenge.data : "", ls->challenge.len, &b64);
		conn_printf(s->conn, "+ %s\r\n", b64.data ? b64.data : "");
		buf_fini(&b64);
		imap_reader_line_mode(s->reader, true);
		return;
	}
	free(s->sasl_tag);
	s->sasl_tag = NULL;
	sasl_server_free(&s->sasl);
	if (ls->sst == SASL_MALFORMED) {
		reply_bad(s, j->cmd.tag, "Malformed authentication exchange");
		return;
	}
	if (ls->sst == SASL_TEMPFAIL) {
		reply(s, j->cmd.tag, "NO", "[UNAVAILABLE] Temporary authentication failure");
		return;
	}
	login_done(j);
}

static bool
auth_blocked(struct imapd_session *s, const char *tag)
{
	if (!auth_service_blocked(s->srv->auth, conn_peer_ip(s->conn)))
		return false;
	reply(s, tag, "NO", "[UNAVAILABLE] Too many failed logins from your address; try again later");
	return true;
}

static void
do_login(struct imapd_session *s, struct imapd_job *j)
{
	if (!plaintext_ok(s)) {
		imapd_tagged(j, "NO", "[PRIVACYREQUIRED] LOGIN is disabled before STARTTLS");
		return;
	}
	struct login_state *ls = xcalloc(1, sizeof(*ls));
	buf_init(&ls->challenge);
	ls->user = xstrdup(j->cmd.auth.user);
	ls->pass = xstrdup(j->cmd.auth.password);
	ls->passlen = strlen(ls->pass);
	j->state = ls;
	j->state_free = login_state_free;
	j->done = login_done;
	imapd_job_submit(j, login_work);
}

/* One SASL step on a worker; `data` decoded (has: the client sent something). */
static void
sasl_step(struct imapd_session *s, const char *tag, const char *data, size_t len, bool has)
{
	struct imapd_job *j = imapd_job_new(s);
	j->cmd.tag = arena_strdup(&j->arena, tag);
	struct login_state *ls = xcalloc(1, sizeof(*ls));
	buf_init(&ls->challenge);
	if (has) {
		ls->user = xstrdup(""); /* marks "has data" */
		ls->pass = xmalloc(len + 1);
		memcpy(ls->pass, data, len);
		ls->pass[len] = '\0';
		ls->passlen = len;
	}
	j->state = ls;
	j->state_free = login_state_free;
	j->done = sasl_done;
	imapd_job_submit(j, sasl_work);
}

static void
do_authenticate(struct imapd_session *s, const char *tag, const char *mech, const char *ir)
{
	enum sasl_mech m;
	if (!sasl_mech_parse(mech, strlen(mech), &m)) {
		reply(s, tag, "NO", "Unsupported authentication mechanism");
		return;
	}
	if (sasl_mech_sends_password(m) && !plaintext_ok(s)) {
		reply(s, tag, "NO", "[PRIVACYREQUIRED] Plaintext authentication disallowed before STARTTLS");
		return;
	}
	if (auth_blocked(s, tag))
		return;
	struct hk_buf d;
	buf_init(&d);
	if (ir && strcmp(ir, "=") != 0 && !hk_b64_decode(ir, strlen(ir), &d)) {
		buf_fini(&d);
		reply_bad(s, tag, "Malformed initial response");
		return;
	}
	s->sasl = sasl_server_new(m, s->srv->cfg->hostname);
	free(s->sasl_tag);
	s->sasl_tag = xstrdup(tag);
	sasl_step(s, tag, d.data ? d.data : "", d.len, ir != NULL);
	if (d.data)
		explicit_bzero(d.data, d.len);
	buf_fini(&d);
}

/* A client line during AUTHENTICATE. */
static void
sasl_line(struct imapd_session *s, const char *line, size_t len)
{
	imap_reader_line_mode(s->reader, false);
	char *tag = s->sasl_tag;
	s->sasl_tag = NULL;
	if (len == 1 && line[0] == '*') {
		sasl_server_free(&s->sasl);
		reply_bad(s, tag, "Authentication cancelled");
		free(tag);
		return;
	}
	struct hk_buf d;
	buf_init(&d);
	if (len && !hk_b64_decode(line, len, &d)) {
		sasl_server_free(&s->sasl);
		reply_bad(s, tag, "Malformed SASL response");
		free(tag);
		buf_fini(&d);
		return;
	}
	s->sasl_tag = tag;
	sasl_step(s, tag, d.data ? d.data : "", d.len, true);
	if (d.data)
		explicit_bzero(d.data, d.len);
	buf_fini(&d);
}

/* --- simple commands ------------------------------------------------------------------ */

static void
sync_work(struct imapd_job *j)
{
	if (j->s->folder)
		imapd_mailbox_sync(j, true);
	imapd_tagged(j, "OK", "%s completed", imap_cmd_name(j->cmd.kind));
}

static void
select_work(struct imapd_job *j)
{
	struct imapd_session *s = j->s;
	bool had = s->folder != NULL;
	if (had) {
		imapd_mailbox_close(s);
		j->unselected = true;
		/* RFC 7162 3.2.11 / RFC 3501: the old mailbox is closed first */
		if (s->condstore)
			buf_adds(&j->out, "* OK [CLOSED] Previous mailbox closed\r\n");
	}
	bool ro = j->cmd.kind == IMAP_CMD_EXAMINE;
	if (j->cmd.condstore)
		s->condstore = true;
	if (imapd_mailbox_select(j, j->cmd.mailbox.name, ro) < 0)
		return;
	j->selected = true;
	imapd_tagged(j, "OK", "[%s] %s completed", ro ? "READ-ONLY" : "READ-WRITE", ro ? "EXAMINE" : "SELECT");
}

static void
unselect_work(struct imapd_job *j)
{
	imapd_mailbox_close(j->s);
	j->unselected = true;
	imapd_tagged(j, "OK", "UNSELECT completed");
}

static void
logout_work(struct imapd_job *j)
{
	buf_adds(&j->out, "* BYE Logging out\r\n");
	imapd_tagged(j, "OK", "LOGOUT completed");
	j->logout = true;
}

static void
do_id(struct imapd_session *s, const struct imap_cmd *c)
{
	conn_puts(s->conn, "* ID (\"name\" \"Hikyaku\" \"vendor\" \"Hikyaku\")\r\n");
	for (unsigned i = 0; i < c->id.n; i++) {
		if (strcasecmp(c->id.pairs[i].field, "name") != 0 || c->id.pairs[i].value == NULL)
			continue;
		struct hk_buf v;
		buf_init(&v);
		log_info("imap", "#%llu: client %s", (unsigned long long)s->id,
		    log_safe(&v, c->id.pairs[i].value, strlen(c->id.pairs[i].value), 64));
		buf_fini(&v);
	}
	reply(s, c->tag, "OK", "ID completed");
}

static void
do_enable(struct imapd_session *s, const struct imap_cmd *c)
{
	bool cs = false;
	for (unsigned i = 0; i < c->enable.n; i++)
		if (strcmp(c->enable.names[i], "CONDSTORE") == 0)
			cs = true;
	if (cs) {
		s->condstore = true;
		conn_puts(s->conn, "* ENABLED CONDSTORE\r\n");
	} else {
		conn_puts(s->conn, "* ENABLED\r\n");
	}
	reply(s, c->tag, "OK", "ENABLE completed");
}

static void
do_starttls(struct imapd_session *s, const char *tag)
{
	if (conn_tls(s->conn) || !conn_tls_available(s->conn)) {
		reply_bad(s, tag, conn_tls(s->conn) ? "TLS already active" : "STARTTLS not available");
		return;
	}
	reply(s, tag, "OK", "Begin TLS negotiation now");
	/* RFC 3501 6.2.1: pipelined plaintext after STARTTLS is dropped (the
	 * reader may hold some already: start a fresh one) */
	struct imap_reader_limits lim = { IMAPD_LITERAL_MAX_NOAUTH, 0, 1u << 16 };
	imap_reader_free(&s->reader);
	s->reader = imap_reader_new(&lim);
	if (conn_starttls(s->conn) < 0) {
		conn_puts(s->conn, "* BYE TLS not available due to a temporary reason\r\n");
		close_after(s);
	}
}

static void
do_idle_start(struct imapd_job *j)
{
	struct imapd_session *s = j->s;
	free(s->idle_tag);
	s->idle_tag = xstrdup(j->cmd.tag);
	imap_reader_line_mode(s->reader, true);
}

static void
idle_work(struct imapd_job *j)
{
	if (j->s->folder)
		imapd_mailbox_sync(j, true);
	buf_adds(&j->out, "+ idling\r\n");
}

/* IDLE: an update arrived (imapd_notify.c). */
static void
idle_sync_work(struct imapd_job *j)
{
	if (j->s->folder)
		imapd_mailbox_sync(j, true);
}

static void
idle_sync_done(struct imapd_job *j)
{
	struct imapd_session *s = j->s;
	s->idle_sync_queued = false;
	/* still idling: the line mode stays; only DONE comes next */
	(void)s;
}

void
imapd_session_wake(struct imapd_session *s)
{
	if (s->dead || s->idle_tag == NULL || s->idle_sync_queued)
		return;
	if (s->busy) { /* after the job in flight */
		s->wake_pending = true;
		return;
	}
	s->idle_sync_queued = true;
	struct imapd_job *j = imapd_job_new(s);
	j->cmd.tag = arena_strdup(&j->arena, s->idle_tag);
	j->done = idle_sync_done;
	imapd_job_submit(j, idle_sync_work);
}

static void
idle_line(struct imapd_session *s, const char *line, size_t len)
{
	char *tag = s->idle_tag;
	s->idle_tag = NULL;
	imap_reader_line_mode(s->reader, false);
	if (imap_cmd_is_done(line, len))
		reply(s, tag, "OK", "IDLE terminated");
	else
		reply_bad(s, tag, "Expected DONE");
	free(tag);
}

/* --- dispatch ------------------------------------------------------------------------------ */

static unsigned
state_bit(const struct imapd_session *s)
{
	return s->state == IS_NOAUTH ? IMAP_ST_NOAUTH : s->state == IS_AUTH ? IMAP_ST_AUTH : IMAP_ST_SELECTED;
}

/* A command answered without a worker: drop its job. */
static void
job_release(struct imapd_session *s, struct imapd_job *j)
{
	if (j->out.len)
		conn_write(s->conn, j->out.data, j->out.len);
	s->job = NULL;
	job_free(j);
	s->busy = false;
	session_unref(s);
	conn_resume(s->conn);
}

static void
append_discard(struct imapd_session *s)
{
	spool_free(&s->append_spool);
}

static void
command(struct imapd_session *s, const char *text, size_t len, size_t streamed_at)
{
	struct imapd_job *j = imapd_job_new(s);
	struct imap_cmd *c = &j->cmd;
	enum imap_parse_status ps = imap_cmd_parse(text, len, streamed_at, &j->arena, c);
	if (ps != IMAP_PARSE_OK || !(imap_cmd_states(c->kind) & state_bit(s))) {
		char tag[IMAP_MAX_TAG + 1], msg[200];
		snprintf(tag, sizeof(tag), "%s", ps == IMAP_PARSE_BAD_TAG || c->tag == NULL ? "*" : c->tag);
		if (ps == IMAP_PARSE_OK)
			snprintf(msg, sizeof(msg), "%s not allowed %s", imap_cmd_name(c->kind),
			    s->state == IS_NOAUTH ? "before login" : s->state == IS_AUTH ? "without a selected mailbox" : "now");
		else
			snprintf(msg, sizeof(msg), "%s", c->error ? c->error : "Syntax error");
		job_release(s, j);
		append_discard(s); /* a streamed APPEND message whose command was refused */
		reply_bad(s, tag, msg);
		return;
	}
	switch (c->kind) {
	case IMAP_CMD_CAPABILITY:
		buf_adds(&j->out, "* CAPABILITY ");
		imapd_capabilities(s, s->state != IS_NOAUTH, &j->out);
		buf_adds(&j->out, "\r\n");
		imapd_tagged(j, "OK", "CAPABILITY completed");
		break;
	case IMAP_CMD_NOOP:
	case IMAP_CMD_CHECK:
		if (s->folder) {
			imapd_job_submit(j, sync_work);
			return;
		}
		imapd_tagged(j, "OK", "%s completed", imap_cmd_name(c->kind));
		break;
	case IMAP_CMD_LOGOUT:
		imapd_job_submit(j, logout_work);
		return;
	case IMAP_CMD_ID:
		do_id(s, c);
		break;
	case IMAP_CMD_ENABLE:
		do_enable(s, c);
		break;
	case IMAP_CMD_STARTTLS: {
		char tag[IMAP_MAX_TAG + 1];
		snprintf(tag, sizeof(tag), "%s", c->tag);
		job_release(s, j);
		do_starttls(s, tag);
		return;
	}
	case IMAP_CMD_AUTHENTICATE: {
		char *tag = xstrdup(c->tag), *mech = xstrdup(c->auth.mechanism);
		char *ir = c->auth.initial ? xstrdup(c->auth.initial) : NULL;
		job_release(s, j);
		do_authenticate(s, tag, mech, ir);
		free(tag);
		free(mech);
		if (ir) {
			explicit_bzero(ir, strlen(ir));
			free(ir);
		}
		return;
	}
	case IMAP_CMD_LOGIN:
		if (auth_blocked(s, c->tag))
			break;
		do_login(s, j);
		if (j->work)
			return;
		break;
	case IMAP_CMD_SELECT:
	case IMAP_CMD_EXAMINE:
		imapd_job_submit(j, select_work);
		return;
	case IMAP_CMD_UNSELECT:
		imapd_job_submit(j, unselect_work);
		return;
	case IMAP_CMD_CLOSE:
	case IMAP_CMD_EXPUNGE:
		imapd_job_submit(j, imapd_cmd_expunge);
		return;
	case IMAP_CMD_CREATE:
	case IMAP_CMD_DELETE:
	case IMAP_CMD_RENAME:
	case IMAP_CMD_SUBSCRIBE:
	case IMAP_CMD_UNSUBSCRIBE:
	case IMAP_CMD_LIST:
	case IMAP_CMD_LSUB:
	case IMAP_CMD_STATUS:
	case IMAP_CMD_NAMESPACE:
		imapd_job_submit(j, imapd_cmd_folders);
		return;
	case IMAP_CMD_APPEND:
		imapd_job_submit(j, imapd_cmd_append);
		return;
	case IMAP_CMD_IDLE:
		j->done = do_idle_start;
		imapd_job_submit(j, idle_work);
		return;
	case IMAP_CMD_FETCH:
		imapd_job_submit(j, imapd_cmd_fetch);
		return;
	case IMAP_CMD_SEARCH:
		imapd_job_submit(j, imapd_cmd_search);
		return;
	case IMAP_CMD_STORE:
		imapd_job_submit(j, imapd_cmd_store);
		return;
	case IMAP_CMD_COPY:
	case IMAP_CMD_MOVE:
		imapd_job_submit(j, imapd_cmd_copy);
		return;
	default:
		imapd_tagged(j, "BAD", "Command not implemented");
		break;
	}
	job_release(s, j);
}

/* --- APPEND's message literal ---------------------------------------------------------- */

static void session_process(struct imapd_session *s);

/* A spool write finished (loop): go on reading. */
static void
spool_woken(void *arg)
{
	struct imapd_session *s = arg;
	/* reading goes on as soon as the spool has room (the next chunk may
	 * already be on its way); the command waits for the last write */
	if (s->dead || !s->spool_wait || (s->spool_end ? spool_busy(s->append_spool) : spool_blocked(s->append_spool)))
		return;
	s->spool_wait = false;
	s->spool_end = false;
	if (!s->busy) {
		conn_resume(s->conn);
		session_process(s);
	}
}

static void
spool_pause(struct imapd_session *s)
{
	s->spool_wait = true;
	conn_pause(s->conn);
}

static void
append_begin(struct imapd_session *s)
{
	spool_free(&s->append_spool);
	char *dir = xasprintf("%s/spool/incoming", s->srv->cfg->state_dir);
	s->append_spool = spool_new(s->srv->workers, dir, "imap-append", spool_woken, s);
	free(dir);
}

static void
append_data(struct imapd_session *s, const char *p, size_t n)
{
	/* made durable by the store's commit on a worker; a write error is
	 * kept and the APPEND answered NO once the literal has been read */
	spool_add(s->append_spool, p, n);
	if (spool_blocked(s->append_spool))
		spool_pause(s);
}

/* --- reading ---------------------------------------------------------------------------------- */

static void
session_process(struct imapd_session *s)
{
	while (!s->busy && !s->spool_wait && !s->dead && s->state != IS_LOGOUT) {
		struct imap_read_ev ev;
		enum imap_read_event e = imap_reader_next(s->reader, &ev);
		switch (e) {
		case IMAP_READ_MORE:
			return;
		case IMAP_READ_COMMAND:
			command(s, ev.data, ev.len, ev.streamed_at);
			break;
		case IMAP_READ_LINE:
			if (s->sasl)
				sasl_line(s, ev.data, ev.len);
			else if (s->idle_tag)
				idle_line(s, ev.data, ev.len);
			break;
		case IMAP_READ_CONTINUE:
			conn_puts(s->conn, "+ Ready for literal data\r\n");
			break;
		case IMAP_READ_STREAM_BEGIN:
			append_begin(s);
			break;
		case IMAP_READ_STREAM_DATA:
			append_data(s, ev.data, ev.len);
			break;
		case IMAP_READ_STREAM_END:
			/* the command runs once the last write is on its way */
			if (spool_busy(s->append_spool)) {
				s->spool_end = true;
				spool_pause(s);
			}
			break;
		case IMAP_READ_ERROR: {
			char tag[IMAP_MAX_TAG + 1];
			snprintf(tag, sizeof(tag), "%.*s", (int)ev.tag.len, ev.tag.ptr ? ev.tag.ptr : "");
			if (strcmp(ev.status, "BAD") == 0)
				reply_bad(s, tag[0] ? tag : "*", ev.text);
			else
				reply(s, tag[0] ? tag : "*", ev.status, ev.text);
			break;
		}
		case IMAP_READ_FATAL:
			conn_printf(s->conn, "* BYE %s\r\n", ev.text);
			close_after(s);
			return;
		}
	}
}

static void
on_read(struct conn *c, void *arg)
{
	struct imapd_session *s = arg;
	struct evbuffer *in = conn_input(c);
	size_t n = evbuffer_get_length(in);
	if (n == 0)
		return;
	/* the reader keeps its own copy; feed only what it can take now */
	unsigned char *p = evbuffer_pullup(in, (ssize_t)n);
	imap_reader_feed(s->reader, p, n);
	evbuffer_drain(in, n);
	session_process(s);
}

static void
on_timeout(struct conn *c, void *arg)
{
	struct imapd_session *s = arg;
	if (s->busy)
		return; /* our own job is slow: keep waiting */
	conn_puts(c, "* BYE Autologout; idle for too long\r\n");
	close_after(s);
}

static const struct conn_cbs imapd_cbs = {
	.read = on_read,
	.drained = on_drained,
	.timeout = on_timeout,
	.closed = on_closed,
};

void
imapd_session_start(struct imapd_server *srv, int fd, const struct sockaddr *sa, enum listener_kind kind)
{
	struct imapd_session *s = xcalloc(1, sizeof(*s));
	s->srv = srv;
	s->refs = 1;
	s->id = ++srv->next_id;
	s->folder_fd = -1;
	s->conn = conn_new(srv->base, srv->tls, fd, sa, kind == LISTEN_IMAPS, &imapd_cbs, s);
	if (s->conn == NULL) {
		free(s);
		return;
	}
	struct imap_reader_limits lim = { IMAPD_LITERAL_MAX_NOAUTH, 0, 1u << 16 };
	s->reader = imap_reader_new(&lim);
	session_list_add(&srv->sessions, &s->link);
	conn_set_timeout(s->conn, IMAPD_TIMEOUT_NOAUTH);
	if (srv->sessions.n > srv->cfg->max_sessions) {
		conn_puts(s->conn, "* BYE Too many connections, try again later\r\n");
		close_after(s);
		return;
	}
	struct hk_buf caps;
	buf_init(&caps);
	imapd_capabilities(s, false, &caps);
	conn_printf(s->conn, "* OK [CAPABILITY %s] Hikyaku IMAP4rev1 ready\r\n", caps.data);
	buf_fini(&caps);
}

void
imapd_server_close_all(struct imapd_server *srv)
{
	for (struct session_link *k = srv->sessions.head, *next; k; k = next) {
		next = k->next;
		struct imapd_session *s = SESSION_OF(k, struct imapd_session, link);
		if (!s->dead)
			conn_close(s->conn);
	}
}

int
imapd_server_init(struct imapd_server *srv)
{
	srv->notify = imapd_notify_new(srv);
	return srv->notify ? 0 : -1;
}

void
imapd_server_fini(struct imapd_server *srv)
{
	imapd_notify_free(&srv->notify);
}

void
imapd_server_changed(struct imapd_server *srv, const char *maildir_root, const char *folder)
{
	if (srv->notify)
		imapd_notify_changed(srv->notify, maildir_root, folder, NULL);
}
