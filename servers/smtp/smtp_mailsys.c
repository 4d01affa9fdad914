/*
 * smtp_mailsys.c - the SMTP session hooks (see smtp_mailsys.h).
 *
 *   connect, helo   operator rules (connect/helo stages), on the loop
 *   mail            SPF of the MAIL FROM identity (async DNS on the loop;
 *                   skipped for authenticated submission), then on a worker:
 *                   "may this user send as this address", operator rules
 *   rcpt            worker: accounts lookup (user, alias, not hosted,
 *                   unknown), relay policy, quota, operator + domain rules
 *   data            worker: operator data rules, then per final mailbox the
 *                   deliver layers (operator, domain, panel settings.hk,
 *                   personal.hk), the actions carried out into one store
 *                   batch (Maildir copies, Rejected headers, queue files for
 *                   forwards, notices and replies), committed durably
 *                   before the 250
 *   auth            worker: password check (yescrypt)
 *
 * SECURITY: relaying needs authentication or a configured network; a
 * personal script's forward targets are constants (checked when compiled);
 * every failure of our own is a 4xx, never a bounce.
 */
#include "smtp_mailsys.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "accounts.h"
#include "core/auth.h"
#include "compose.h"
#include "core/log.h"
#include "core/timer.h"
#include "core/rulecache.h"
#include "core/spool.h"
#include "core/worker.h"
#include "dns/dns.h"
#include "fields.h"
#include "message.h"
#include "replylog.h"
#include "scram.h"
#include "queue/dsn.h"
#include "queue/queue.h"
#include "queue/queue_file.h"
#include "queue/srs.h"
#include "spf/spf.h"
#include "store.h"
#include "vm.h"

void smtp_session_ehlo_reply(struct smtp_session *s);
void smtp_session_rcpt_accept(struct smtp_session *s, struct smtp_rcpt *r);
void smtp_session_rcpt_drop(struct smtp_session *s, struct smtp_rcpt *r);
void smtp_session_tx_done(struct smtp_session *s);
void smtp_session_auth_result(struct smtp_session *s, bool ok, const char *user);

struct mailsys {
	struct smtp_server *srv;
	const struct hk_config *cfg;
	struct rulecache *rules;
	struct hk_store_committer *committer;
	struct dns_resolver *dns; /* borrowed from serve.c */
	struct spf_ctx *spf;
	char *acct_path, *key_path, *global_rules, *queue_dir, *replylog;
	unsigned long long queued;
	struct queue *queue;    /* woken after deliveries that queued mail */
	unsigned char srs_key[SRS_KEY_LEN];
	bool have_srs_key;
};

void
mailsys_set_queue(struct mailsys *m, struct queue *q)
{
	m->queue = q;
}

static struct mailsys *the_mailsys; /* the hooks are plain functions */

/* per session */
struct msess {
	struct spf_check *spf;
	struct spf_result spf_res;
	bool spf_done;
	/* the SASL exchange (touched only by the session's worker job) */
	struct sasl_server *sasl;
};

/* The calling worker thread's accounts handle (core/auth.h: one per
 * thread, GDBM handles are per thread). */
static struct hk_accounts *
accounts_handle(struct mailsys *m)
{
	return auth_service_accounts(m->srv->auth);
}

/* --- environment and rules ------------------------------------------------ */

struct envbuf {
	struct hk_env env;
	struct hk_str *to;
};

static void
env_build(struct smtp_session *s, int stage, struct envbuf *eb)
{
	struct smtp_session_info *i = smtp_session_info(s);
	struct hk_env *e = &eb->env;
	hk_env_init(e);
	e->stage = stage;
	e->now = (int64_t)time(NULL);
	e->client_ip = (struct hk_str){ i->peer_ip, strlen(i->peer_ip) };
	e->client_helo = (struct hk_str){ i->helo, strlen(i->helo) };
	e->auth_user = (struct hk_str){ i->auth_user, strlen(i->auth_user) };
	e->tls = i->tls;
	e->spf = i->tx.mail_from ? i->tx.spf : SPF_NONE;
	if (i->tx.mail_from)
		e->env_from = (struct hk_str){ i->tx.mail_from, strlen(i->tx.mail_from) };
	eb->to = xcalloc(i->tx.nrcpt + 1, sizeof(*eb->to));
	for (size_t k = 0; k < i->tx.nrcpt; k++)
		eb->to[k] = (struct hk_str){ i->tx.rcpts[k].addr, strlen(i->tx.rcpts[k].addr) };
	e->env_to = eb->to;
	e->n_env_to = i->tx.nrcpt;
}

static void
env_fini(struct envbuf *eb)
{
	free(eb->to);
}

static const char *
domain_of(const char *addr)
{
	const char *at = strrchr(addr, '@');
	return at ? at + 1 : "";
}

/* Loads the layers for a stage: operator always, the domain's rules when
 * `domain` is given, the user's panel and personal scripts when `local`
 * is given too. Returns how many programs were loaded into progs[]. */
static size_t
load_layers(struct mailsys *m, const char *domain, const char *local, const char *owner, struct hk_program **progs)
{
	size_t n = 0;
	struct hk_program *p = rulecache_get(m->rules, m->global_rules, HK_LAYER_OPERATOR, NULL);
	if (p)
		progs[n++] = p;
	if (domain && *domain && strchr(domain, '/') == NULL && domain[0] != '.') {
		char *path = xasprintf("%s/domains/%s/domain.hk", m->cfg->state_dir, domain);
		if ((p = rulecache_get(m->rules, path, HK_LAYER_DOMAIN, NULL)))
			progs[n++] = p;
		free(path);
		if (local && *local && strchr(local, '/') == NULL && local[0] != '.') {
			static const char *const names[] = { "settings.hk", "personal.hk" };
			static const int layers[] = { HK_LAYER_PANEL, HK_LAYER_PERSONAL };
			for (int k = 0; k < 2; k++) {
				path = xasprintf("%s/domains/%s/users/%s/%s", m->cfg->state_dir, domain, local, names[k]);
				if ((p = rulecache_get(m->rules, path, layers[k], owner)))
					progs[n++] = p;
				free(path);
			}
		}
	}
	return n;
}

static void
unload_layers(struct hk_program **progs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		hk_program_unref(&progs[i]);
}

/* Runs a stage and reports a refusal (refuse/tempfail) in code/text. */
static bool
run_smtp_stage(struct mailsys *m, struct smtp_session *s, int stage, const char *domain, struct hk_message *msg, int *code,
    char *text, size_t textsz)
{
	struct hk_program *progs[4];
	size_t n = load_layers(m, domain, NULL, NULL, progs);
	if (n == 0)
		return false;
	struct envbuf eb;
	env_build(s, stage, &eb);
	struct hk_result res;
	hk_result_init(&res);
	hk_vm_run_layers(progs, n, stage, msg, &eb.env, &res, NULL);
	bool refused = false;
	for (size_t i = 0; i < res.n; i++) {
		const struct hk_action *a = &res.acts[i];
		if (a->kind == ACT_REFUSE || a->kind == ACT_TEMPFAIL) {
			*code = (int)a->num;
			if (a->mask & 2)
				snprintf(text, textsz, "%.*s", (int)a->arg[0].len, a->arg[0].ptr);
			else
				snprintf(text, textsz, "%s", a->kind == ACT_REFUSE ? "5.7.1 Refused by policy" : "4.7.1 Try again later");
			refused = true;
			break;
		}
		if (a->kind == ACT_LOG)
			log_info("rules", "#%llu %.*s", (unsigned long long)smtp_session_info(s)->id, (int)a->arg[0].len, a->arg[0].ptr);
	}
	if (res.error)
		log_warnx("rules", "#%llu %s", (unsigned long long)smtp_session_info(s)->id, res.error);
	hk_result_fini(&res);
	env_fini(&eb);
	unload_layers(progs, n);
	return refused;
}

/* --- worker jobs ---------------------------------------------------------- */

enum job_kind { JOB_CONNECT, JOB_HELO, JOB_MAIL, JOB_RCPT, JOB_DATA, JOB_SASL };

struct job {
	enum job_kind kind;
	struct mailsys *m;
	struct smtp_session *s;
	struct smtp_rcpt *r;
	int code;
	char text[512];
	bool close;
	/* SASL */
	char *user;      /* authenticated, or the name a failed login tried */
	bool auth_ok;
	bool start, has_data;
	enum sasl_mech mech;
	char *data;
	size_t len;
	char *challenge; /* base64; NULL when the exchange ended */
	struct delivery *d; /* JOB_DATA between its two phases */
};

static struct job *
job_new(enum job_kind kind, struct smtp_session *s)
{
	struct job *j = xcalloc(1, sizeof(*j));
	j->kind = kind;
	j->m = the_mailsys;
	j->s = s;
	smtp_session_ref(s);
	return j;
}

/* A failed login is answered after the back-off delay (a timer on the
 * loop: nothing sleeps). */
static void
delayed_fail_fire(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct smtp_session *s = arg;
	if (smtp_session_alive(s))
		smtp_session_auth_result(s, false, "");
	smtp_session_unref(s);
}

static void
auth_verdict(struct job *j)
{
	struct mailsys *m = j->m;
	struct smtp_session_info *i = smtp_session_info(j->s);
	unsigned delay = auth_service_record(m->srv->auth, i->peer_ip, j->user, j->auth_ok);
	if (j->auth_ok) {
		smtp_session_auth_result(j->s, true, j->user);
		return;
	}
	if (delay == 0) {
		smtp_session_auth_result(j->s, false, "");
		return;
	}
	smtp_session_ref(j->s);
	loop_call_after(m->srv->base, delay, delayed_fail_fire, j->s);
}

/* Refuses AUTH from a client that failed too often. */
static bool
auth_blocked(struct smtp_session *s)
{
	if (!auth_service_blocked(the_mailsys->srv->auth, smtp_session_info(s)->peer_ip))
		return false;
	smtp_session_reply(s, 454, "4.7.0 Too many failed logins from your address; try again later", true);
	return true;
}

static void
job_done(void *arg)
{
	struct job *j = arg;
	struct smtp_session *s = j->s;
	if (smtp_session_alive(s)) {
		switch (j->kind) {
		case JOB_RCPT:
			if (j->code == 250)
				smtp_session_rcpt_accept(s, j->r);
			else
				smtp_session_rcpt_drop(s, j->r);
			smtp_session_reply(s, j->code, j->text, j->code >= 400);
			break;
		case JOB_CONNECT:
			if (j->code) {
				smtp_session_reply_close(s, j->code >= 500 ? 554 : 421, j->text);
			} else {
				char *g = xasprintf("%s ESMTP Hikyaku", j->m->cfg->hostname);
				smtp_session_reply(s, 220, g, false);
				free(g);
			}
			break;
		case JOB_HELO:
			if (j->code)
				smtp_session_reply(s, j->code, j->text, true);
			else
				smtp_session_ehlo_reply(s);
			break;
		case JOB_SASL:
			if (j->challenge)
				smtp_session_sasl_challenge(s, j->challenge);
			else if (j->code == 0)
				auth_verdict(j);
			else
				smtp_session_reply(s, j->code, j->text, true);
			break;
		case JOB_DATA:
			smtp_session_tx_done(s);
			smtp_session_reply(s, j->code, j->text, j->code >= 400);
			if (j->code == 250 && j->m->queue)
				queue_poke(j->m->queue); /* forwards and replies go out now */
			break;
		default:
			smtp_session_reply(s, j->code, j->text, j->code >= 400);
			break;
		}
	}
	free(j->user);
	if (j->data) {
		explicit_bzero(j->data, j->len);
		free(j->data);
	}
	free(j->challenge);
	smtp_session_unref(s);
	free(j);
}

/* --- connect / helo (loop) ------------------------------------------------- */

/* connect and helo: the rule files are read (stat, maybe a compile) on a
 * worker, never on the loop; the verdict is answered on the loop. */
static void
connect_work(void *arg)
{
	struct job *j = arg;
	int stage = j->kind == JOB_CONNECT ? STAGE_CONNECT : STAGE_HELO;
	j->code = 0;
	if (run_smtp_stage(j->m, j->s, stage, NULL, NULL, &j->code, j->text, sizeof(j->text)) && stage == STAGE_CONNECT)
		log_info("smtp", "#%llu %s: refused at connect: %d %s", (unsigned long long)smtp_session_info(j->s)->id,
		    smtp_session_info(j->s)->peer_ip, j->code, j->text);
}

static void
hook_connect(struct smtp_session *s)
{
	struct msess *ms = xcalloc(1, sizeof(*ms));
	smtp_session_set_hook_data(s, ms);
	worker_submit(the_mailsys->srv->workers, connect_work, job_done, job_new(JOB_CONNECT, s));
}

static void
hook_helo(struct smtp_session *s)
{
	worker_submit(the_mailsys->srv->workers, connect_work, job_done, job_new(JOB_HELO, s));
}

static void
hook_closed(struct smtp_session *s)
{
	struct msess *ms = smtp_session_hook_data(s);
	if (ms) {
		spf_cancel(&ms->spf);
		sasl_server_free(&ms->sasl);
		free(ms);
	}
}

/* --- mail ----------------------------------------------------------------------- */

static void
mail_work(void *arg)
{
	struct job *j = arg;
	struct smtp_session_info *i = smtp_session_info(j->s);
	j->code = 250;
	snprintf(j->text, sizeof(j->text), "2.1.0 Ok");
	if (i->authenticated && i->tx.mail_from[0]) {
		struct hk_accounts *a = accounts_handle(j->m);
		enum hk_acct_status st = a ? hk_accounts_may_send_as(a, i->auth_user, i->tx.mail_from) : HK_ACCT_IO;
		if (st == HK_ACCT_NOTFOUND || st == HK_ACCT_INVALID) {
			j->code = 553;
			snprintf(j->text, sizeof(j->text), "5.7.1 Sender address not owned by the authenticated user");
			return;
		}
		if (st != HK_ACCT_OK) {
			j->code = 451;
			snprintf(j->text, sizeof(j->text), "4.3.0 Temporary lookup failure");
			return;
		}
	}
	int code;
	char text[512];
	if (run_smtp_stage(j->m, j->s, STAGE_MAIL, NULL, NULL, &code, text, sizeof(text))) {
		j->code = code;
		snprintf(j->text, sizeof(j->text), "%s", text);
	}
}

static void
mail_done(void *arg)
{
	struct job *j = arg;
	if (j->code != 250 && smtp_session_alive(j->s)) {
		/* the transaction did not start */
		struct smtp_session_info *i = smtp_session_info(j->s);
		free(i->tx.mail_from);
		i->tx.mail_from = NULL;
	}
	job_done(j);
}

static void
spf_done(const struct spf_result *res, void *arg)
{
	struct smtp_session *s = arg;
	struct msess *ms = smtp_session_hook_data(s);
	ms->spf = NULL;
	ms->spf_res = *res;
	struct smtp_session_info *i = smtp_session_info(s);
	i->tx.spf = res->result;
	free(i->tx.spf_header);
	struct hk_buf hdr;
	buf_init(&hdr);
	spf_received_spf(res, &hdr);
	if (hdr.len)
		i->tx.spf_header = buf_steal(&hdr);
	buf_fini(&hdr);
	worker_submit(the_mailsys->srv->workers, mail_work, mail_done, job_new(JOB_MAIL, s));
}

static void
hook_mail(struct smtp_session *s)
{
	struct mailsys *m = the_mailsys;
	struct smtp_session_info *i = smtp_session_info(s);
	struct msess *ms = smtp_session_hook_data(s);
	i->tx.spf = SPF_NONE;
	if (!i->authenticated && m->spf && ms) {
		struct sockaddr_storage ss;
		memset(&ss, 0, sizeof(ss));
		if (i->peer_family == AF_INET) {
			struct sockaddr_in *in = (struct sockaddr_in *)&ss;
			in->sin_family = AF_INET;
			memcpy(&in->sin_addr, i->peer_addr, 4);
		} else {
			struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
			in6->sin6_family = AF_INET6;
			memcpy(&in6->sin6_addr, i->peer_addr, 16);
		}
		spf_cancel(&ms->spf);
		ms->spf = spf_check(m->spf, (struct sockaddr *)&ss, i->helo, i->tx.mail_from, spf_done, s);
		if (ms->spf)
			return;
	}
	worker_submit(m->srv->workers, mail_work, mail_done, job_new(JOB_MAIL, s));
}

/* --- rcpt --------------------------------------------------------------------------- */

static void
rcpt_work(void *arg)
{
	struct job *j = arg;
	struct smtp_session_info *i = smtp_session_info(j->s);
	struct smtp_rcpt *r = j->r;
	struct hk_accounts *a = accounts_handle(j->m);
	j->code = 250;
	snprintf(j->text, sizeof(j->text), "2.1.5 Ok");
	if (a == NULL) {
		j->code = 451;
		snprintf(j->text, sizeof(j->text), "4.3.0 Temporary lookup failure");
		return;
	}
	/* a bounce to an SRS address we made goes back to the original sender */
	if (j->m->have_srs_key && strncasecmp(r->addr, "SRS0=", 5) == 0) {
		char orig[400];
		if (srs_reverse(j->m->srs_key, r->addr, time(NULL), orig, sizeof(orig)) == 0) {
			free(r->addr);
			r->addr = xstrdup(orig);
			r->relay = true; /* the original sender is elsewhere: relay the bounce */
			return;
		}
		j->code = 550;
		snprintf(j->text, sizeof(j->text), "5.1.1 Invalid or expired SRS address");
		return;
	}
	struct hk_rcpt *res = xmalloc(sizeof(*res));
	enum hk_acct_status st = hk_accounts_resolve(a, r->addr, res);
	if (st == HK_ACCT_INVALID) {
		j->code = 501;
		snprintf(j->text, sizeof(j->text), "5.1.3 Bad recipient address syntax");
	} else if (st != HK_ACCT_OK) {
		j->code = 451;
		snprintf(j->text, sizeof(j->text), "4.3.0 Temporary lookup failure");
	} else if (res->kind == HK_RCPT_NOT_HOSTED) {
		if (i->relay_ok) {
			r->relay = true;
		} else {
			j->code = 554;
			snprintf(j->text, sizeof(j->text), "5.7.1 Relay access denied");
		}
	} else if (res->kind == HK_RCPT_UNKNOWN) {
		j->code = 550;
		snprintf(j->text, sizeof(j->text), "5.1.1 No such user here");
	} else if (res->kind == HK_RCPT_DISABLED || (res->kind == HK_RCPT_USER && (res->user.flags & HK_USER_DISABLED))) {
		j->code = 550;
		snprintf(j->text, sizeof(j->text), "5.2.1 Mailbox disabled");
	} else if (res->kind == HK_RCPT_USER) {
		r->mailbox = xstrdup(res->user.address);
		int64_t max = res->limits.max_message_size;
		if (max > 0 && i->tx.size_param > (uint64_t)max) {
			j->code = 552;
			snprintf(j->text, sizeof(j->text), "5.3.4 Message too big for this recipient (limit %lld bytes)", (long long)max);
		} else if (res->limits.quota > 0) {
			char *root = hk_store_user_root(j->m->cfg->state_dir, res->user.domain, res->user.local);
			struct hk_store_settings set = { .quota = { .bytes = (uint64_t)res->limits.quota }, .create = true };
			struct hk_store *stor = NULL;
			if (root && hk_store_open(root, &set, &stor) == 0) {
				if (hk_store_quota_check(stor, i->tx.size_param ? i->tx.size_param : 1) < 0 && (errno == EDQUOT || errno == EFBIG)) {
					struct hk_store_reply rp = hk_store_reply(errno);
					j->code = rp.code;
					snprintf(j->text, sizeof(j->text), "%s %s", rp.enhanced, rp.text);
				}
				hk_store_close(&stor);
			}
			free(root);
		}
	}
	/* ALIAS: accepted; expanded at delivery */
	free(res);
	if (j->code == 250) {
		int code;
		char text[512];
		if (run_smtp_stage(j->m, j->s, STAGE_RCPT, domain_of(r->addr), NULL, &code, text, sizeof(text))) {
			j->code = code;
			snprintf(j->text, sizeof(j->text), "%s", text);
		}
	}
}

static void
hook_rcpt(struct smtp_session *s, struct smtp_rcpt *r)
{
	struct job *j = job_new(JOB_RCPT, s);
	j->r = r;
	worker_submit(the_mailsys->srv->workers, rcpt_work, job_done, j);
}

/* --- auth ------------------------------------------------------------------------------ */

static void
sasl_work(void *arg)
{
	struct job *j = arg;
	struct msess *ms = smtp_session_hook_data(j->s);
	struct hk_accounts *a = accounts_handle(j->m);
	if (a == NULL || ms == NULL) {
		j->code = 454;
		snprintf(j->text, sizeof(j->text), "4.7.0 Temporary authentication failure");
		return;
	}
	if (j->start) { /* a new exchange; a cancelled one is dropped here */
		sasl_server_free(&ms->sasl);
		ms->sasl = sasl_server_new(j->mech, j->m->cfg->hostname);
	}
	if (ms->sasl == NULL) {
		j->code = 503;
		snprintf(j->text, sizeof(j->text), "5.5.1 No authentication in progress");
		return;
	}
	struct hk_buf ch;
	buf_init(&ch);
	enum sasl_status st = sasl_server_step(ms->sasl, a, j->data, j->len, j->has_data, &ch);
	if (st == SASL_CONTINUE) {
		struct hk_buf b64;
		buf_init(&b64);
		hk_b64_encode(ch.data ? ch.data : "", ch.len, &b64);
		j->challenge = b64.data ? buf_steal(&b64) : xstrdup("");
		buf_fini(&b64);
	} else if (st == SASL_TEMPFAIL) {
		j->code = 454;
		snprintf(j->text, sizeof(j->text), "4.7.0 Temporary authentication failure");
	} else if (st == SASL_MALFORMED) {
		j->code = 501;
		snprintf(j->text, sizeof(j->text), "5.5.2 Malformed authentication exchange");
	} else {
		j->auth_ok = st == SASL_OK;
		j->user = xstrdup(sasl_server_user(ms->sasl));
	}
	if (st != SASL_CONTINUE)
		sasl_server_free(&ms->sasl);
	if (ch.data)
		explicit_bzero(ch.data, ch.len);
	buf_fini(&ch);
}

static void
hook_sasl(struct smtp_session *s, enum sasl_mech m, bool start, const char *data, size_t len, bool has_data)
{
	if (start && auth_blocked(s))
		return;
	struct job *j = job_new(JOB_SASL, s);
	j->mech = m;
	j->start = start;
	j->has_data = has_data;
	j->data = xmalloc(len + 1);
	memcpy(j->data, data, len);
	j->data[len] = '\0';
	j->len = len;
	worker_submit(the_mailsys->srv->workers, sasl_work, job_done, j);
}

/* --- data ------------------------------------------------------------------------------ */

/* A queue entry: envelope lines, a blank line, the message. Written to
 * queue/tmp and renamed into queue/new by the batch commit, so it becomes
 * durable together with the mailbox copies. With `r`, the entry carries
 * the DSN parameters of the transaction and of that recipient, which the
 * queue honours and passes on (RFC 3461 6.2.7.3: relays and an alias's
 * targets keep NOTIFY and ORCPT). */
static int
queue_stage(struct mailsys *m, struct hk_store_batch *b, const char *kind, const char *from, const char *to,
    const struct smtp_tx *tx, const struct smtp_rcpt *r, const struct hk_store_part *parts, size_t nparts)
{
	struct qfile_head h = { .created = (long long)time(NULL) };
	if (strlen(from) >= sizeof(h.from) || strlen(to) >= sizeof(h.to)) {
		log_error("queue", "cannot queue %s to %.100s: address too long", kind, to);
		errno = ENAMETOOLONG;
		return -1;
	}
	snprintf(h.kind, sizeof(h.kind), "%s", kind);
	snprintf(h.from, sizeof(h.from), "%s", from);
	snprintf(h.to, sizeof(h.to), "%s", to);
	if (tx && r) {
		/* validated by the session: they fit */
		h.ret = tx->dsn_ret;
		snprintf(h.envid, sizeof(h.envid), "%s", tx->envid ? tx->envid : "");
		h.notify = r->notify;
		snprintf(h.orcpt, sizeof(h.orcpt), "%s", r->orcpt ? r->orcpt : "");
	}
	unsigned long long n = __atomic_add_fetch(&m->queued, 1, __ATOMIC_RELAXED);
	char *tmp = xasprintf("%s/tmp/%lld.%ld.%llu", m->queue_dir, (long long)time(NULL), (long)getpid(), n);
	char *fin = xasprintf("%s/new/%lld.%ld.%llu", m->queue_dir, (long long)time(NULL), (long)getpid(), n);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	int rc = -1;
	if (fd >= 0) {
		struct hk_buf head;
		buf_init(&head);
		qfile_format_head(&head, &h);
		bool ok = write(fd, head.data, head.len) == (ssize_t)head.len;
		buf_fini(&head);
		for (size_t i = 0; ok && i < nparts; i++) {
			const char *p = parts[i].data;
			size_t left = parts[i].len;
			while (ok && left) {
				ssize_t w = write(fd, p, left);
				if (w < 0 && errno == EINTR)
					continue;
				ok = w > 0;
				if (ok) {
					p += w;
					left -= (size_t)w;
				}
			}
		}
		ok = close(fd) == 0 && ok;
		if (ok && hk_store_batch_add_rename(b, tmp, fin, NULL) == 0)
			rc = 0;
		else
			unlink(tmp);
	}
	if (rc < 0)
		log_error("queue", "cannot queue %s to %s: %s", kind, to, strerror(errno));
	free(tmp);
	free(fin);
	return rc;
}

/* replies to remember once the batch is durable */
struct reply_note {
	char recipient[HK_ADDRESS_MAX + 1];
	char sender[400]; /* as the envelope gave it */
};

struct delivery {
	struct reply_note *replies;
	size_t nreplies, cap_replies;
	struct job *j;
	struct smtp_session_info *i;
	struct hk_message *msg;
	char *raw;
	size_t rawlen;
	struct hk_buf prefix;   /* Return-Path, Received-SPF, added headers */
	struct hk_store_batch *batch;
	struct hk_store **stores;
	size_t nstores, cap_stores;
	unsigned stored, rejected_all, mailboxes;
	bool failed;
	int fail_errno;
};

static void
parts_for(struct delivery *d, const struct hk_buf *extra, struct hk_store_part parts[3], size_t *n)
{
	size_t k = 0;
	if (d->prefix.len)
		parts[k++] = (struct hk_store_part){ d->prefix.data, -1, 0, d->prefix.len };
	if (extra && extra->len)
		parts[k++] = (struct hk_store_part){ extra->data, -1, 0, extra->len };
	parts[k++] = (struct hk_store_part){ d->raw, -1, 0, d->rawlen };
	*n = k;
}

static bool
replied_recently(void *ctx, struct hk_str recipient, struct hk_str sender, int64_t interval)
{
	struct mailsys *m = ctx;
	return hk_replylog_recent(m->replylog, recipient, sender, interval, (int64_t)time(NULL));
}

/* The message was delivered to this mailbox before (a Delivered-To header
 * of ours): a forwarding loop brought it back. */
static bool
been_here(struct hk_message *msg, const char *address)
{
	const struct hk_str *v;
	size_t n = hk_message_header(msg, "Delivered-To", 12, &v);
	for (size_t i = 0; i < n; i++) {
		struct hk_str t = v[i];
		while (t.len && (t.ptr[0] == ' ' || t.ptr[0] == '\t'))
			t.ptr++, t.len--;
		while (t.len && (t.ptr[t.len - 1] == ' ' || t.ptr[t.len - 1] == '\t'))
			t.len--;
		if (str_ieq_cstr(t, address))
			return true;
	}
	return false;
}

/* Runs the deliver layers for one mailbox and stages what they decide. */
static void
deliver_mailbox(struct delivery *d, struct hk_accounts *a, const char *address, const char *original_rcpt)
{
	struct mailsys *m = d->j->m;
	struct hk_rcpt *res = xmalloc(sizeof(*res));
	if (hk_accounts_resolve(a, address, res) != HK_ACCT_OK || res->kind != HK_RCPT_USER) {
		free(res);
		return;
	}
	if (been_here(d->msg, res->user.address)) {
		/* a forward never brings a message back to the same mailbox */
		log_warnx("deliver", "#%llu %s: forwarding loop (already delivered here); not delivered again",
		    (unsigned long long)d->i->id, res->user.address);
		d->mailboxes++;
		d->stored++;
		free(res);
		return;
	}
	d->mailboxes++;
	struct hk_program *progs[4];
	size_t np = load_layers(m, res->user.domain, res->user.local, res->user.address, progs);
	struct envbuf eb;
	env_build(d->j->s, STAGE_DELIVER, &eb);
	eb.env.recipient = (struct hk_str){ res->user.address, strlen(res->user.address) };
	eb.env.plan_name = (struct hk_str){ res->limits.plan, strlen(res->limits.plan) };
	eb.env.plan_retention = res->limits.retention;
	eb.env.plan_max_size = res->limits.max_message_size;
	eb.env.plan_quota = res->limits.quota;
	struct hk_result r;
	hk_result_init(&r);
	hk_vm_run_layers(progs, np, STAGE_DELIVER, d->msg, &eb.env, &r, NULL);
	if (r.error)
		log_warnx("rules", "%s: %s", res->user.address, r.error);
	struct hk_final fin;
	struct hk_policy pol = { m, replied_recently };
	hk_result_finalize(&r, d->msg, &eb.env, &pol, &fin);

	char *root = hk_store_user_root(m->cfg->state_dir, res->user.domain, res->user.local);
	struct hk_store_settings set = { .quota = { .bytes = (uint64_t)(res->limits.quota > 0 ? res->limits.quota : 0) }, .create = true };
	struct hk_store *st = NULL;
	if (root == NULL || hk_store_open(root, &set, &st) != 0) {
		d->failed = true;
		d->fail_errno = errno;
		log_error("deliver", "%s: cannot open the mailbox: %s", res->user.address, strerror(errno));
		goto out;
	}
	d->stores = xgrow(d->stores, &d->cap_stores, d->nstores + 1, sizeof(*d->stores));
	d->stores[d->nstores++] = st;

	uint32_t flags = 0;
	const char *keywords[16];
	size_t nkw = 0;
	struct hk_buf added;
	buf_init(&added);
	char *delivered_to = xasprintf("Delivered-To: %s\r\n", res->user.address);
	buf_adds(&added, delivered_to);
	free(delivered_to);
	for (size_t k = 0; k < fin.n; k++) {
		const struct hk_action *act = &fin.acts[k];
		if (act->suppressed)
			continue;
		if (act->kind == ACT_FLAG) {
			char tmp[80];
			snprintf(tmp, sizeof(tmp), "%.*s", (int)act->arg[0].len, act->arg[0].ptr);
			uint32_t f = hk_store_flag_from_imap(tmp, strlen(tmp));
			if (f)
				flags |= f;
			else if (nkw < 16)
				keywords[nkw++] = arena_strndup(&r.arena, act->arg[0].ptr, act->arg[0].len);
		} else if (act->kind == ACT_ADD_HEADER) {
			hk_header_put(&added, arena_strndup(&r.arena, act->arg[0].ptr, act->arg[0].len), act->arg[1]);
		}
	}
	bool stored = false, rejected = false;
	struct hk_compose_ctx cc = { { m->cfg->hostname, strlen(m->cfg->hostname) }, (int64_t)time(NULL) };
	for (size_t k = 0; k < fin.n; k++) {
		const struct hk_action *act = &fin.acts[k];
		if (act->suppressed)
			continue;
		struct hk_store_part parts[3];
		size_t nparts;
		switch (act->kind) {
		case ACT_KEEP:
		case ACT_FILEINTO: {
			char folder[300];
			snprintf(folder, sizeof(folder), "%.*s", act->kind == ACT_KEEP ? 5 : (int)act->arg[0].len,
			    act->kind == ACT_KEEP ? "INBOX" : act->arg[0].ptr);
			struct hk_store_deliver_opts o = { .folder = folder, .flags = flags, .keywords = keywords, .nkeywords = nkw,
				.create_folder = true, .check_quota = true };
			parts_for(d, &added, parts, &nparts);
			if (hk_store_batch_add(d->batch, st, &o, parts, nparts, NULL) < 0) {
				d->failed = true;
				d->fail_errno = errno;
				log_error("deliver", "%s: %s", res->user.address, hk_store_error(st));
			} else {
				stored = true;
			}
			break;
		}
		case ACT_REJECT:
			rejected = true;
			if (hk_store_batch_add_rejected(d->batch, st, d->msg, &eb.env, act, &cc, NULL) < 0)
				log_error("deliver", "%s: Rejected folder: %s", res->user.address, hk_store_error(st));
			break;
		case ACT_FORWARD: {
			char to[400];
			snprintf(to, sizeof(to), "%.*s", (int)act->arg[0].len, act->arg[0].ptr);
			parts_for(d, NULL, parts, &nparts);
			/* SRS rewriting of the envelope sender comes with the queue runner */
			if (queue_stage(m, d->batch, "forward", d->i->tx.mail_from, to, NULL, NULL, parts, nparts) < 0)
				d->failed = true, d->fail_errno = errno;
			break;
		}
		case ACT_NOTIFY:
		case ACT_REPLY: {
			struct hk_buf mail;
			buf_init(&mail);
			if (act->kind == ACT_NOTIFY)
				hk_compose_notice(d->msg, &eb.env, act, &cc, &mail);
			else
				hk_compose_reply(d->msg, &eb.env, act, &cc, &mail);
			char to[400];
			if (act->kind == ACT_NOTIFY)
				snprintf(to, sizeof(to), "%.*s", (int)act->arg[0].len, act->arg[0].ptr);
			else
				snprintf(to, sizeof(to), "%s", d->i->tx.mail_from);
			struct hk_store_part p = { mail.data, -1, 0, mail.len };
			/* notices and replies go out with the null sender (RFC 3834) */
			if (queue_stage(m, d->batch, act->kind == ACT_NOTIFY ? "notify" : "reply", "", to, NULL, NULL, &p, 1) < 0)
				d->failed = true, d->fail_errno = errno;
			else if (act->kind == ACT_REPLY) {
				d->replies = xgrow(d->replies, &d->cap_replies, d->nreplies + 1, sizeof(*d->replies));
				snprintf(d->replies[d->nreplies].recipient, sizeof(d->replies->recipient), "%s", res->user.address);
				snprintf(d->replies[d->nreplies].sender, sizeof(d->replies->sender), "%s", to);
				d->nreplies++;
			}
			buf_fini(&mail);
			break;
		}
		case ACT_EXPAND:
		case ACT_STRIP:
		case ACT_REMOVE_HEADER:
			log_warnx("deliver", "%s: '%s' is not carried out yet by this server", res->user.address, ast_action_name(act->kind));
			break;
		default:
			break;
		}
	}
	if (stored)
		d->stored++;
	else if (rejected)
		d->rejected_all++;
	buf_fini(&added);
	(void)original_rcpt;
out:
	free(root);
	hk_result_fini(&r);
	env_fini(&eb);
	unload_layers(progs, np);
	free(res);
}

/* NOTIFY=SUCCESS for a recipient a hosted mailbox took: the "delivered"
 * DSN (RFC 3464) to the sender, staged into the same batch as the copies,
 * so it exists exactly when the delivery does. Headers only (RFC 3461 4.3:
 * RET=FULL is for failures). */
static void
success_dsn_stage(struct delivery *d, const struct smtp_rcpt *r)
{
	struct mailsys *m = d->j->m;
	const struct smtp_tx *tx = &d->i->tx;
	char envid[SMTP_DSN_MAX_ENVID + 1], orcpt[SMTP_DSN_MAX_ORCPT + 1];
	bool have_envid = tx->envid && smtp_dsn_xtext_decode((struct hk_str){ tx->envid, strlen(tx->envid) }, envid, sizeof(envid));
	bool have_orcpt = r->orcpt && smtp_dsn_orcpt_decode((struct hk_str){ r->orcpt, strlen(r->orcpt) }, orcpt, sizeof(orcpt));
	time_t now = time(NULL);
	struct dsn_info di = {
		.reporting_mta = m->cfg->hostname,
		.sender = tx->mail_from,
		.recipient = r->addr,
		.diagnostic = "",
		.arrival = now,
		.now = now,
		.msg = d->raw,
		.msglen = d->rawlen,
		.action = DSN_DELIVERED,
		.envid = have_envid ? envid : NULL,
		.orcpt = have_orcpt ? orcpt : NULL,
	};
	struct hk_buf mail;
	buf_init(&mail);
	dsn_build(&di, &mail);
	struct hk_store_part p = { mail.data, -1, 0, mail.len };
	if (queue_stage(m, d->batch, "dsn", "", tx->mail_from, NULL, NULL, &p, 1) < 0)
		d->failed = true, d->fail_errno = errno;
	buf_fini(&mail);
}

static void
delivery_free(struct delivery *d)
{
	for (size_t k = 0; k < d->nstores; k++)
		hk_store_close(&d->stores[k]);
	free(d->stores);
	free(d->replies);
	hk_store_batch_free(&d->batch);
	hk_message_free(&d->msg);
	buf_fini(&d->prefix);
	free(d->raw);
	free(d);
}

static void data_finish(void *arg);
static void job_done(void *arg);

/* The committer thread made the batch durable (or failed): the rest of
 * the job (results, the reply log, the reply) goes back to a worker. */
static void
on_committed(struct hk_store_batch *b, void *arg)
{
	(void)b;
	struct job *j = arg;
	worker_submit(j->m->srv->workers, data_finish, job_done, j);
}

/* Phase 1 (worker): read the spool, run the data stage, run every
 * recipient's deliver layers and stage all copies into one batch. The
 * commit itself is the committer's: it syncs the batches of many sessions
 * in one round, and no worker waits for the disk meanwhile. */
static bool
data_stage(struct job *j)
{
	struct mailsys *m = j->m;
	struct smtp_session_info *i = smtp_session_info(j->s);
	struct delivery *d = xcalloc(1, sizeof(*d));
	j->d = d;
	d->j = j;
	d->i = i;
	buf_init(&d->prefix);
	j->code = 451;
	snprintf(j->text, sizeof(j->text), "4.3.0 Temporary local problem, try again later");
	char *raw = NULL;
	size_t rawlen = 0;
	if (spool_read_all(i->tx.spool, m->cfg->max_message_size + 65536, &raw, &rawlen) < 0) {
		log_error("deliver", "cannot read the spool: %s", strerror(errno));
		return false;
	}
	d->raw = raw;
	d->rawlen = rawlen;
	struct hk_message_limits lim;
	hk_message_limits_default(&lim);
	d->msg = hk_message_new(raw, rawlen, &lim);
	/* loops: too many Received headers */
	const struct hk_str *rcv;
	if (hk_message_header(d->msg, "Received", 8, &rcv) > 50) {
		j->code = 554;
		snprintf(j->text, sizeof(j->text), "5.4.6 Too many hops (mail loop?)");
		return false;
	}
	int code;
	char text[512];
	const char *dom = i->tx.nrcpt ? domain_of(i->tx.rcpts[0].addr) : NULL;
	if (run_smtp_stage(m, j->s, STAGE_DATA, dom, d->msg, &code, text, sizeof(text))) {
		j->code = code;
		snprintf(j->text, sizeof(j->text), "%s", text);
		return false;
	}
	buf_printf(&d->prefix, "Return-Path: <%s>\r\n", i->tx.mail_from);
	if (i->tx.spf_header)
		hk_header_put(&d->prefix, "Received-SPF", (struct hk_str){ i->tx.spf_header, strlen(i->tx.spf_header) });
	d->batch = hk_store_batch_new(HK_STORE_SYNC_SYNCFS);
	struct hk_accounts *a = accounts_handle(m);
	if (a == NULL)
		return false;
	struct hk_expansion *ex = xmalloc(sizeof(*ex));
	for (size_t k = 0; k < i->tx.nrcpt; k++) {
		struct smtp_rcpt *r = &i->tx.rcpts[k];
		struct hk_store_part parts[3];
		size_t nparts;
		if (r->relay) {
			parts_for(d, NULL, parts, &nparts);
			if (queue_stage(m, d->batch, "relay", i->tx.mail_from, r->addr, &i->tx, r, parts, nparts) < 0)
				d->failed = true, d->fail_errno = errno;
			d->stored++;
			continue;
		}
		if (hk_accounts_expand(a, r->addr, ex) != HK_ACCT_OK) {
			d->failed = true;
			d->fail_errno = EIO;
			continue;
		}
		unsigned stored_before = d->stored;
		bool local_target = false;
		for (size_t t = 0; t < ex->n; t++) {
			if (ex->v[t].local) {
				local_target = true;
				deliver_mailbox(d, a, ex->v[t].address, r->addr);
			} else {
				parts_for(d, NULL, parts, &nparts);
				if (queue_stage(m, d->batch, "forward", i->tx.mail_from, ex->v[t].address, &i->tx, r, parts, nparts) < 0)
					d->failed = true, d->fail_errno = errno;
				d->stored++;
			}
		}
		if (local_target && d->stored > stored_before && (r->notify & SMTP_DSN_NOTIFY_SUCCESS) && i->tx.mail_from[0])
			success_dsn_stage(d, r);
	}
	free(ex);
	return true;
}

/* Phase 2 (worker, after the commit): the verdict. */
static void
data_finish(void *arg)
{
	struct job *j = arg;
	struct mailsys *m = j->m;
	struct delivery *d = j->d;
	struct smtp_session_info *i = d->i;
	size_t nres = hk_store_batch_count(d->batch);
	int err = d->fail_errno;
	for (size_t k = 0; k < nres && err == 0; k++)
		if (hk_store_batch_result(d->batch, k)->err)
			err = hk_store_batch_result(d->batch, k)->err;
	if (d->failed || err) {
		/* nothing is acknowledged unless all of it is on disk */
		struct hk_store_reply rp = hk_store_reply(err ? err : EIO);
		/* our own trouble is always temporary after DATA */
		j->code = rp.code >= 500 && rp.code != 552 ? 451 : rp.code;
		snprintf(j->text, sizeof(j->text), "%s %s", rp.enhanced, rp.text);
		if (d->stored)
			log_error("deliver", "#%llu partly delivered before a failure; the client will retry (duplicates possible)",
			    (unsigned long long)i->id);
	} else {
		for (size_t k = 0; k < d->nreplies; k++) {
			struct hk_str rc = { d->replies[k].recipient, strlen(d->replies[k].recipient) };
			struct hk_str sn = { d->replies[k].sender, strlen(d->replies[k].sender) };
			if (hk_replylog_record(m->replylog, rc, sn, (int64_t)time(NULL)) < 0)
				log_warnx("replies", "cannot record the reply to %s: %s", d->replies[k].sender, strerror(errno));
		}
		if (d->stored == 0 && d->rejected_all > 0 && d->rejected_all == d->mailboxes) {
			j->code = 550;
			snprintf(j->text, sizeof(j->text), "5.7.1 Message rejected by the recipient's filters");
		} else {
			j->code = 250;
			snprintf(j->text, sizeof(j->text), "2.0.0 Ok: queued as %llu", (unsigned long long)i->id);
		}
	}
	log_info("deliver", "#%llu from=<%s> nrcpt=%zu size=%zu: %d", (unsigned long long)i->id, i->tx.mail_from, i->tx.nrcpt,
	    d->rawlen, j->code);
	delivery_free(d);
	j->d = NULL;
}

/* Phase 1 runs under a token of its own: once the batch is submitted the
 * job belongs to phase 2, which may finish (and free it) before the
 * worker pool gets round to phase 1's done callback. */
struct data_token {
	struct job *j;
	bool async;
};

static void
data_work(void *arg)
{
	struct data_token *t = arg;
	struct job *j = t->j;
	if (data_stage(j) && !j->d->failed) {
		t->async = true;
		hk_store_committer_submit(j->m->committer, j->d->batch, on_committed, j);
		return;
	}
	if (j->d) {
		if (j->d->failed) {
			/* staging failed: nothing was made durable */
			struct hk_store_reply rp = hk_store_reply(j->d->fail_errno ? j->d->fail_errno : EIO);
			j->code = rp.code >= 500 && rp.code != 552 ? 451 : rp.code;
			snprintf(j->text, sizeof(j->text), "%s %s", rp.enhanced, rp.text);
		}
		delivery_free(j->d);
		j->d = NULL;
	}
}

static void
data_work_done(void *arg)
{
	struct data_token *t = arg;
	if (!t->async)
		job_done(t->j);
	free(t);
}

static void
hook_data(struct smtp_session *s)
{
	struct data_token *t = xcalloc(1, sizeof(*t));
	t->j = job_new(JOB_DATA, s);
	worker_submit(the_mailsys->srv->workers, data_work, data_work_done, t);
}

static const struct smtp_hooks hooks = {
	.connect = hook_connect,
	.helo = hook_helo,
	.mail = hook_mail,
	.rcpt = hook_rcpt,
	.data = hook_data,
	.sasl = hook_sasl,
	.closed = hook_closed,
};

const struct smtp_hooks *
mailsys_hooks(void)
{
	return &hooks;
}

struct mailsys *
mailsys_new(struct smtp_server *srv, struct dns_resolver *dns, struct hk_buf *err)
{
	struct mailsys *m = xcalloc(1, sizeof(*m));
	m->srv = srv;
	m->cfg = srv->cfg;
	char *cache = xasprintf("%s/cache", m->cfg->state_dir);
	mkdir(cache, 0700);
	m->rules = rulecache_new(cache, NULL);
	free(cache);
	m->acct_path = xasprintf("%s/accounts.gdbm", m->cfg->state_dir);
	m->key_path = xasprintf("%s/keys/secret.key", m->cfg->state_dir);
	m->global_rules = xasprintf("%s/rules/global.hk", m->cfg->state_dir);
	m->queue_dir = xasprintf("%s/queue", m->cfg->state_dir);
	m->replylog = xasprintf("%s/replies.gdbm", m->cfg->state_dir);
	char *q = xasprintf("%s/new", m->queue_dir), *t = xasprintf("%s/tmp", m->queue_dir);
	mkdir(m->queue_dir, 0700);
	mkdir(q, 0700);
	mkdir(t, 0700);
	free(q);
	free(t);
	char *keys = xasprintf("%s/keys", m->cfg->state_dir);
	mkdir(keys, 0700);
	free(keys);
	char *srs_path = xasprintf("%s/keys/srs.key", m->cfg->state_dir);
	m->have_srs_key = srs_key_load(srs_path, m->srs_key) == 0;
	free(srs_path);
	m->committer = hk_store_committer_new(HK_STORE_SYNC_SYNCFS, 1);
	m->dns = dns; /* borrowed: serve.c's, shared with the queue */
	if (m->dns == NULL)
		log_warnx("dns", "no resolver: SPF results will be 'none'");
	else
		m->spf = spf_ctx_new(m->dns, &(struct spf_config){ .receiver = m->cfg->hostname });
	(void)err;
	the_mailsys = m;
	return m;
}

void
mailsys_free(struct mailsys **mp)
{
	struct mailsys *m = *mp;
	*mp = NULL;
	if (m == NULL)
		return;
	spf_ctx_free(&m->spf);
	hk_store_committer_free(&m->committer);
	rulecache_free(&m->rules);
	free(m->acct_path);
	free(m->key_path);
	free(m->global_rules);
	free(m->queue_dir);
	free(m->replylog);
	if (the_mailsys == m)
		the_mailsys = NULL;
	free(m);
}
