/*
 * queue.c - the outbound queue runner (see queue.h): scan, load, route,
 * deliver, record the outcome. One struct qjob per entry in flight; the
 * loop owns it between worker steps.
 */
#include "queue.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "accounts.h"
#include "core/log.h"
#include "core/worker.h"
#include "dns/dns.h"
#include "queue/dsn.h"
#include "queue/queue_file.h"
#include "queue/smtp_client.h"
#include "queue/srs.h"

struct queue {
	struct event_base *base;
	const struct hk_config *cfg;
	struct worker_pool *wp;
	struct dns_resolver *dns;
	SSL_CTX *tls;
	char *dir, *newdir, *defdir, *tmpdir, *flushpath, *acct_path;
	unsigned char srs_key[SRS_KEY_LEN];
	bool have_srs;
	struct event *timer;
	bool scanning, rescan;
	struct qjob *active;
	unsigned nactive;
	unsigned long long seq;
};

struct qtarget {
	struct sockaddr_storage ss;
	socklen_t len;
};

enum qoutcome { Q_DELIVERED, Q_DEFER, Q_BOUNCE, Q_DROP };

struct qjob {
	struct queue *q;
	struct qjob *next;
	char name[QFILE_MAX_NAME + 1];
	bool in_deferred;
	/* loaded on a worker */
	int load_errno;
	char *data;
	size_t len;
	struct qfile_head h;
	struct qfile_state st;
	bool local; /* the recipient's domain is hosted here */
	char mail_from[SRS_MAX_ADDRESS + 1];
	/* routing */
	char hosts[QUEUE_MAX_MX][DNS_MAX_NAME_LEN + 1];
	unsigned nhosts, hosti;
	bool implicit_mx;
	int port;
	struct dns_query *qa, *qaaaa;
	bool any_addr_answer; /* some A/AAAA lookup said more than NXDOMAIN/NODATA */
	struct qtarget addrs[QUEUE_MAX_ADDRS];
	unsigned naddrs, addri;
	struct smtpc *client;
	bool plain_retry; /* this address failed in TLS: now without STARTTLS */
	/* outcome */
	enum smtpc_status status;
	char reply[SMTPC_MAX_TEXT];
	char remote[DNS_MAX_NAME_LEN + 1];
	bool from_remote;
	enum qoutcome outcome;
	bool next_hop_dsn;  /* the server that took it does DSN itself */
	bool relayed_dsn;   /* NOTIFY=SUCCESS and it does not: we say "relayed" */
	bool made_dsn;      /* a DSN was queued: scan again soon */
	char notify_str[32];
};

/* Copies at most size-1 bytes and terminates; false when cut. */
static bool
copy_str(char *dst, size_t size, const char *src)
{
	size_t n = strnlen(src, size);
	bool fits = n < size;
	if (!fits)
		n = size - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
	return fits;
}

static void scan_soon(struct queue *q, unsigned secs);
static void try_next(struct qjob *j);

/* --- scanning ---------------------------------------------------------------- */

struct scan {
	struct queue *q;
	char (*names)[QFILE_MAX_NAME + 1];
	bool *deferred;
	size_t n;
};

static void
scan_dir(struct scan *s, const char *dir, bool deferred, bool flush, time_t now)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return;
	struct dirent *de;
	while (s->n < QUEUE_SCAN_MAX && (de = readdir(d)) != NULL) {
		if (!qfile_name_ok(de->d_name))
			continue;
		if (deferred && !flush) {
			struct qfile_state st;
			if (qfile_state_read(dir, de->d_name, &st) == 0 && st.next > (long long)now)
				continue;
		}
		copy_str(s->names[s->n], QFILE_MAX_NAME + 1, de->d_name);
		s->deferred[s->n++] = deferred;
	}
	closedir(d);
}

static void
scan_work(void *arg)
{
	struct scan *s = arg;
	bool flush = unlink(s->q->flushpath) == 0;
	time_t now = time(NULL);
	if (flush)
		log_info("queue", "flush requested: every deferred entry is due");
	scan_dir(s, s->q->newdir, false, flush, now);
	scan_dir(s, s->q->defdir, true, flush, now);
}

static bool
is_active(struct queue *q, const char *name)
{
	for (struct qjob *j = q->active; j; j = j->next)
		if (strcmp(j->name, name) == 0)
			return true;
	return false;
}

static void job_start(struct queue *q, const char *name, bool deferred);

static void
scan_done(void *arg)
{
	struct scan *s = arg;
	struct queue *q = s->q;
	q->scanning = false;
	for (size_t i = 0; i < s->n; i++) {
		if (is_active(q, s->names[i]))
			continue;
		if (q->nactive >= q->cfg->queue_concurrency) {
			q->rescan = true; /* the rest when a slot frees up */
			break;
		}
		job_start(q, s->names[i], s->deferred[i]);
	}
	if (s->n == QUEUE_SCAN_MAX)
		q->rescan = true;
	free(s->names);
	free(s->deferred);
	free(s);
}

static void
scan_start(struct queue *q)
{
	if (q->scanning) {
		q->rescan = true;
		return;
	}
	q->scanning = true;
	q->rescan = false;
	struct scan *s = xcalloc(1, sizeof(*s));
	s->q = q;
	s->names = xcalloc(QUEUE_SCAN_MAX, sizeof(*s->names));
	s->deferred = xcalloc(QUEUE_SCAN_MAX, sizeof(*s->deferred));
	worker_submit(q->wp, scan_work, scan_done, s);
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct queue *q = arg;
	scan_start(q);
	scan_soon(q, q->cfg->queue_interval);
}

static void
scan_soon(struct queue *q, unsigned secs)
{
	struct timeval tv = { .tv_sec = secs };
	evtimer_add(q->timer, &tv); /* re-adding moves the deadline */
}

void
queue_poke(struct queue *q)
{
	if (q)
		scan_soon(q, 0);
}

/* --- one entry: load (worker) -------------------------------------------------- */

static bool
domain_hosted(struct queue *q, const char *domain)
{
	struct hk_accounts_config c = { .path = q->acct_path };
	struct hk_accounts *a = NULL;
	char err[256];
	if (hk_accounts_open_gdbm(&c, &a, err, sizeof(err)) != HK_ACCT_OK)
		return false;
	struct hk_domain d;
	bool ok = hk_accounts_domain_get(a, domain, &d) == HK_ACCT_OK;
	hk_accounts_close(&a);
	return ok;
}

static void
load_work(void *arg)
{
	struct qjob *j = arg;
	struct queue *q = j->q;
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", j->in_deferred ? q->defdir : q->newdir, j->name);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		j->load_errno = errno;
		if (fd >= 0)
			close(fd);
		return;
	}
	uint64_t cap = q->cfg->max_message_size + (1u << 20);
	if ((uint64_t)st.st_size > cap) {
		close(fd);
		j->load_errno = EFBIG;
		return;
	}
	j->len = (size_t)st.st_size;
	j->data = xmalloc(j->len + 1);
	size_t got = 0;
	while (got < j->len) {
		ssize_t n = read(fd, j->data + got, j->len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	j->len = got;
	j->data[got] = '\0';
	if (qfile_parse_head(j->data, j->len, &j->h) < 0) {
		j->load_errno = EBADMSG;
		return;
	}
	if (j->in_deferred)
		qfile_state_read(q->defdir, j->name, &j->st);
	const char *at = strrchr(j->h.to, '@');
	j->local = at && domain_hosted(q, at + 1);
}

/* --- one entry: outcome (worker) -------------------------------------------- */

/* Queues a DSN about this entry to its sender (kind "bounce" for a
 * failure, "dsn" for the others), durable before it returns 0. */
static int
write_dsn(struct qjob *j, enum dsn_action action)
{
	struct queue *q = j->q;
	time_t now = time(NULL);
	struct qfile_head nh = { .created = (long long)now };
	snprintf(nh.kind, sizeof(nh.kind), "%s", action == DSN_FAILED ? "bounce" : "dsn");
	copy_str(nh.to, sizeof(nh.to), j->h.from);
	struct hk_buf b;
	buf_init(&b);
	qfile_format_head(&b, &nh);
	char envid[SMTP_DSN_MAX_ENVID + 1], orcpt[SMTP_DSN_MAX_ORCPT + 1];
	bool have_envid = j->h.envid[0] && smtp_dsn_xtext_decode((struct hk_str){ j->h.envid, strlen(j->h.envid) }, envid, sizeof(envid));
	bool have_orcpt = j->h.orcpt[0] && smtp_dsn_orcpt_decode((struct hk_str){ j->h.orcpt, strlen(j->h.orcpt) }, orcpt, sizeof(orcpt));
	struct dsn_info d = {
		.reporting_mta = q->cfg->hostname,
		.sender = j->h.from,
		.recipient = j->h.to,
		.remote_mta = j->from_remote ? j->remote : NULL,
		.diagnostic = j->reply,
		.from_remote = j->from_remote,
		.status = NULL,
		.arrival = (time_t)j->h.created,
		.now = now,
		.msg = j->data + j->h.body_off,
		.msglen = j->len - j->h.body_off,
		.action = action,
		.envid = have_envid ? envid : NULL,
		.orcpt = have_orcpt ? orcpt : NULL,
		.ret_full = j->h.ret == SMTP_DSN_RET_FULL,
		.retry_until = (time_t)(j->h.created + (long long)q->cfg->queue_lifetime),
	};
	if (action == DSN_FAILED && !j->from_remote && j->status != SMTPC_PERMFAIL)
		d.status = "5.4.7"; /* expired: RFC 3463 delivery time expired, final */
	dsn_build(&d, &b);
	char tmp[4096], fin[4096];
	unsigned long long n = __atomic_add_fetch(&q->seq, 1, __ATOMIC_RELAXED);
	snprintf(tmp, sizeof(tmp), "%s/%lld.%ld.b%llu", q->tmpdir, (long long)now, (long)getpid(), n);
	snprintf(fin, sizeof(fin), "%s/%lld.%ld.b%llu", q->newdir, (long long)now, (long)getpid(), n);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	int rc = -1;
	if (fd >= 0) {
		bool ok = write(fd, b.data, b.len) == (ssize_t)b.len && fsync(fd) == 0;
		ok = close(fd) == 0 && ok;
		if (ok && rename(tmp, fin) == 0 && qfile_sync_dir(q->newdir) == 0)
			rc = 0;
		else
			unlink(tmp);
	}
	buf_fini(&b);
	if (rc == 0)
		j->made_dsn = true;
	return rc;
}

/* RFC 3461 4.1: no NOTIFY means FAILURE (we send no delay notices unless
 * they were asked for); NEVER means none at all. */
static bool
wants_failure_dsn(const struct qjob *j)
{
	return j->h.from[0] != '\0' && (j->h.notify == 0 || (j->h.notify & SMTP_DSN_NOTIFY_FAILURE));
}

static void
remove_entry(struct qjob *j)
{
	struct queue *q = j->q;
	char path[4096];
	const char *dir = j->in_deferred ? q->defdir : q->newdir;
	snprintf(path, sizeof(path), "%s/%s", dir, j->name);
	unlink(path);
	snprintf(path, sizeof(path), "%s/%s.st", q->defdir, j->name);
	unlink(path);
	qfile_sync_dir(dir);
}

static void
finish_work(void *arg)
{
	struct qjob *j = arg;
	struct queue *q = j->q;
	switch (j->outcome) {
	case Q_DELIVERED:
		/* the message is delivered: a lost notice must not send it twice */
		if (j->relayed_dsn && write_dsn(j, DSN_RELAYED) < 0)
			log_error("queue", "%s: cannot write the relayed DSN: %s", j->name, strerror(errno));
		remove_entry(j);
		return;
	case Q_DROP:
		remove_entry(j);
		return;
	case Q_BOUNCE:
		if (write_dsn(j, DSN_FAILED) < 0) {
			log_error("queue", "%s: cannot write the bounce: %s; kept for another try", j->name, strerror(errno));
			j->outcome = Q_DEFER;
			break;
		}
		remove_entry(j);
		return;
	case Q_DEFER:
		break;
	}
	/* deferred: state first, then the entry (a crash in between re-sends) */
	time_t now = time(NULL);
	unsigned attempts = j->in_deferred ? j->st.attempts + 1 : 1;
	unsigned long long delay = q->cfg->queue_retry;
	for (unsigned i = 1; i < attempts && delay < q->cfg->queue_retry_max; i++)
		delay *= 2;
	if (delay > q->cfg->queue_retry_max)
		delay = q->cfg->queue_retry_max;
	struct qfile_state st = { .attempts = attempts, .next = (long long)now + (long long)delay,
		.delay_warned = j->in_deferred && j->st.delay_warned };
	copy_str(st.error, sizeof(st.error), j->reply);
	/* NOTIFY=DELAY: one notice once it has waited queue_delay_warning; the
	 * notice before the state, so a crash in between may send two, never none */
	if (!st.delay_warned && (j->h.notify & SMTP_DSN_NOTIFY_DELAY) && j->h.from[0] && q->cfg->queue_delay_warning &&
	    (long long)now - j->h.created >= (long long)q->cfg->queue_delay_warning) {
		if (write_dsn(j, DSN_DELAYED) == 0) {
			st.delay_warned = true;
			log_info("queue", "%s: delayed DSN sent to <%s>", j->name, j->h.from);
		} else {
			log_error("queue", "%s: cannot write the delayed DSN: %s", j->name, strerror(errno));
		}
	}
	if (qfile_state_write(q->defdir, j->name, &st) < 0) {
		log_error("queue", "%s: cannot write its state: %s", j->name, strerror(errno));
		return;
	}
	if (!j->in_deferred) {
		char from[4096], to[4096];
		snprintf(from, sizeof(from), "%s/%s", q->newdir, j->name);
		snprintf(to, sizeof(to), "%s/%s", q->defdir, j->name);
		if (rename(from, to) < 0)
			log_error("queue", "%s: cannot move to deferred/: %s", j->name, strerror(errno));
		qfile_sync_dir(q->newdir);
	}
	qfile_sync_dir(q->defdir);
	j->st = st;
}

static void
job_free(struct qjob *j)
{
	struct queue *q = j->q;
	for (struct qjob **p = &q->active; *p; p = &(*p)->next)
		if (*p == j) {
			*p = j->next;
			break;
		}
	q->nactive--;
	dns_cancel(&j->qa);
	dns_cancel(&j->qaaaa);
	smtpc_cancel(&j->client);
	free(j->data);
	free(j);
}

static void
finish_done(void *arg)
{
	struct qjob *j = arg;
	struct queue *q = j->q;
	bool rescan = j->made_dsn;
	job_free(j);
	if (rescan || q->rescan)
		scan_soon(q, 0);
}

/* Ends the attempt with j->status and j->reply set. */
static void
conclude(struct qjob *j)
{
	struct queue *q = j->q;
	struct hk_buf lb;
	buf_init(&lb);
	const char *why = log_safe(&lb, j->reply, strlen(j->reply), 300);
	bool expired = (long long)time(NULL) >= j->h.created + (long long)q->cfg->queue_lifetime;
	if (j->status == SMTPC_DELIVERED) {
		j->outcome = Q_DELIVERED;
		/* RFC 3461 5.2.1: a next hop without DSN ends our duty to report */
		j->relayed_dsn = (j->h.notify & SMTP_DSN_NOTIFY_SUCCESS) && j->h.from[0] && !j->next_hop_dsn;
		log_info("queue", "%s: %s to <%s> delivered via %s%s: %s", j->name, j->h.kind, j->h.to, j->remote,
		    j->relayed_dsn ? " (no DSN there: relayed DSN to the sender)" : "", why);
	} else if (j->status == SMTPC_PERMFAIL || expired) {
		j->outcome = wants_failure_dsn(j) ? Q_BOUNCE : Q_DROP;
		log_info("queue", "%s: %s to <%s> failed%s: %s; %s", j->name, j->h.kind, j->h.to, expired && j->status != SMTPC_PERMFAIL
		    ? " (expired)" : "", why, j->outcome == Q_BOUNCE ? "bounced to the sender"
		    : j->h.from[0] ? "dropped (NOTIFY without FAILURE)" : "dropped (null sender)");
		if (expired && j->status != SMTPC_PERMFAIL) {
			char tmp[SMTPC_MAX_TEXT];
			copy_str(tmp, sizeof(tmp), j->reply);
			snprintf(j->reply, sizeof(j->reply), "delivery time expired; last error: %.400s", tmp);
			j->from_remote = false;
		}
	} else {
		j->outcome = Q_DEFER;
		log_info("queue", "%s: %s to <%s> deferred: %s", j->name, j->h.kind, j->h.to, why);
	}
	buf_fini(&lb);
	worker_submit(q->wp, finish_work, finish_done, j);
}

static void
conclude_with(struct qjob *j, enum smtpc_status st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
conclude_with(struct qjob *j, enum smtpc_status st, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(j->reply, sizeof(j->reply), fmt, ap);
	va_end(ap);
	j->status = st;
	j->from_remote = false;
	conclude(j);
}

/* --- delivery ----------------------------------------------------------------------- */

static void connect_addr(struct qjob *j);

static void
client_done(const struct smtpc_result *res, void *arg)
{
	struct qjob *j = arg;
	j->client = NULL;
	j->status = res->status;
	copy_str(j->reply, sizeof(j->reply), res->reply);
	j->from_remote = res->connected;
	j->next_hop_dsn = res->dsn;
	if (res->status == SMTPC_DELIVERED || res->in_transaction) {
		if (res->status == SMTPC_DELIVERED && res->tls)
			log_info("queue", "%s: TLS to %s (%s)", j->name, j->remote, res->tls_verified ? "verified" : "not verified");
		conclude(j);
		return;
	}
	/* A broken TLS stack must not block mail that could go in the clear:
	 * the same address once more without STARTTLS (opportunistic TLS). */
	if (res->tls_failed && !j->plain_retry) {
		struct hk_buf lb;
		buf_init(&lb);
		log_info("queue", "%s: TLS with %s failed (%s); trying again without TLS", j->name, j->remote,
		    log_safe(&lb, res->reply, strlen(res->reply), 300));
		buf_fini(&lb);
		j->plain_retry = true;
		connect_addr(j);
		return;
	}
	/* nothing said about this mail yet: next address, then next host */
	j->addri++;
	j->plain_retry = false;
	try_next(j);
}

static void
connect_addr(struct qjob *j)
{
	struct queue *q = j->q;
	struct smtpc_params p = {
		.addr = (const struct sockaddr *)&j->addrs[j->addri].ss,
		.addrlen = j->addrs[j->addri].len,
		.host = j->remote,
		.helo = q->cfg->hostname,
		.mail_from = j->mail_from,
		.rcpt = j->h.to,
		.msg = j->data + j->h.body_off,
		.msglen = j->len - j->h.body_off,
		.tls = j->plain_retry ? NULL : q->tls, /* the local route too: our MX offers STARTTLS */
		.dsn_ret = j->h.ret == SMTP_DSN_RET_FULL ? "FULL" : j->h.ret == SMTP_DSN_RET_HDRS ? "HDRS" : NULL,
		.dsn_envid = j->h.envid[0] ? j->h.envid : NULL,
		.dsn_notify = j->h.notify ? smtp_dsn_notify_str(j->h.notify, j->notify_str) : NULL,
		.dsn_orcpt = j->h.orcpt[0] ? j->h.orcpt : NULL,
	};
	smtpc_timeouts_default(&p.to, q->cfg->queue_timeout);
	j->client = smtpc_start(q->base, &p, client_done, j);
}

static void resolve_host(struct qjob *j);

static void
try_next(struct qjob *j)
{
	if (j->addri < j->naddrs) {
		connect_addr(j);
		return;
	}
	j->hosti++;
	if (j->hosti < j->nhosts) {
		resolve_host(j);
		return;
	}
	if (j->reply[0] != '\0') { /* every address failed: the last reason */
		conclude(j);
		return;
	}
	if (j->implicit_mx && !j->any_addr_answer)
		conclude_with(j, SMTPC_PERMFAIL, "550 5.1.2 no mail server for domain %s (no MX, A or AAAA record)", j->hosts[0]);
	else
		conclude_with(j, SMTPC_TEMPFAIL, "no address found for the mail servers of %s", strrchr(j->h.to, '@') + 1);
}

static void
addr_answer(const struct dns_result *res, void *arg)
{
	struct qjob *j = arg;
	if (res->type == DNS_T_A)
		j->qa = NULL;
	else
		j->qaaaa = NULL;
	if (res->status != DNS_NXDOMAIN && res->status != DNS_NODATA)
		j->any_addr_answer = true;
	if (res->status == DNS_OK) {
		for (size_t i = 0; i < res->count && j->naddrs < QUEUE_MAX_ADDRS; i++) {
			struct qtarget *t = &j->addrs[j->naddrs++];
			memset(t, 0, sizeof(*t));
			if (res->addrs[i].family == AF_INET6) {
				struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&t->ss;
				s6->sin6_family = AF_INET6;
				s6->sin6_port = htons((uint16_t)j->port);
				memcpy(&s6->sin6_addr, res->addrs[i].a.v6, 16);
				t->len = sizeof(*s6);
			} else {
				struct sockaddr_in *s4 = (struct sockaddr_in *)&t->ss;
				s4->sin_family = AF_INET;
				s4->sin_port = htons((uint16_t)j->port);
				memcpy(&s4->sin_addr, res->addrs[i].a.v4, 4);
				t->len = sizeof(*s4);
			}
		}
	} else if (res->status != DNS_NXDOMAIN && res->status != DNS_NODATA && j->reply[0] == '\0') {
		snprintf(j->reply, sizeof(j->reply), "DNS %s for %s %s", dns_status_str(res->status), dns_type_str(res->type),
		    res->name);
	}
	if (j->qa || j->qaaaa)
		return;
	try_next(j);
}

static void
resolve_host(struct qjob *j)
{
	j->naddrs = j->addri = 0;
	copy_str(j->remote, sizeof(j->remote), j->hosts[j->hosti]);
	j->qaaaa = dns_query(j->q->dns, j->hosts[j->hosti], DNS_T_AAAA, addr_answer, j);
	j->qa = dns_query(j->q->dns, j->hosts[j->hosti], DNS_T_A, addr_answer, j);
}

static void
mx_answer(const struct dns_result *res, void *arg)
{
	struct qjob *j = arg;
	j->qa = NULL;
	const char *domain = res->name;
	switch (res->status) {
	case DNS_OK: {
		if (res->count == 1 && res->mx[0].host[0] == '\0') {
			conclude_with(j, SMTPC_PERMFAIL, "556 5.1.10 domain %s does not accept mail (null MX, RFC 7505)", domain);
			return;
		}
		/* by preference, answer order among equals; null MX among others is skipped */
		bool used[DNS_MAX_RECORDS] = { false };
		while (j->nhosts < QUEUE_MAX_MX) {
			size_t best = res->count;
			for (size_t i = 0; i < res->count; i++)
				if (!used[i] && res->mx[i].host[0] && (best == res->count || res->mx[i].pref < res->mx[best].pref))
					best = i;
			if (best == res->count)
				break;
			used[best] = true;
			copy_str(j->hosts[j->nhosts++], DNS_MAX_NAME_LEN + 1, res->mx[best].host);
		}
		if (j->nhosts == 0) {
			conclude_with(j, SMTPC_PERMFAIL, "556 5.1.10 domain %s does not accept mail (null MX, RFC 7505)", domain);
			return;
		}
		break;
	}
	case DNS_NODATA: /* RFC 5321 5.1: the domain itself is the implicit MX */
		j->implicit_mx = true;
		copy_str(j->hosts[0], DNS_MAX_NAME_LEN + 1, domain);
		j->nhosts = 1;
		break;
	case DNS_NXDOMAIN:
	case DNS_BADNAME:
		conclude_with(j, SMTPC_PERMFAIL, "550 5.1.2 domain %s does not exist", domain);
		return;
	default:
		conclude_with(j, SMTPC_TEMPFAIL, "DNS %s looking up MX of %s", dns_status_str(res->status), domain);
		return;
	}
	j->hosti = 0;
	resolve_host(j);
}

/* "host:port", "[v6]:port"; numeric, or a name resolved with A/AAAA. */
static bool
route_fixed(struct qjob *j, const char *hostport)
{
	char host[DNS_MAX_NAME_LEN + 1];
	const char *colon;
	if (hostport[0] == '[') {
		const char *rb = strchr(hostport, ']');
		if (rb == NULL || rb[1] != ':' || (size_t)(rb - hostport - 1) >= sizeof(host))
			return false;
		snprintf(host, sizeof(host), "%.*s", (int)(rb - hostport - 1), hostport + 1);
		colon = rb + 1;
	} else {
		colon = strrchr(hostport, ':');
		if (colon == NULL || (size_t)(colon - hostport) >= sizeof(host))
			return false;
		snprintf(host, sizeof(host), "%.*s", (int)(colon - hostport), hostport);
	}
	char *e;
	long port = strtol(colon + 1, &e, 10);
	if (*e != '\0' || port <= 0 || port > 65535)
		return false;
	j->port = (int)port;
	copy_str(j->remote, sizeof(j->remote), host);
	copy_str(j->hosts[0], sizeof(j->hosts[0]), host);
	j->nhosts = 1;
	j->hosti = 0;
	struct qtarget *t = &j->addrs[0];
	memset(t, 0, sizeof(*t));
	struct sockaddr_in *s4 = (struct sockaddr_in *)&t->ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&t->ss;
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		t->len = sizeof(*s4);
	} else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		t->len = sizeof(*s6);
	} else {
		resolve_host(j);
		return true;
	}
	j->naddrs = 1;
	j->addri = 0;
	connect_addr(j);
	return true;
}

/* Our own MX listener, for mail to hosted domains (bounces to local
 * senders): delivered by the same code path as mail from outside. */
static bool
route_local(struct qjob *j)
{
	const struct hk_config *c = j->q->cfg;
	for (unsigned i = 0; i < c->nlisteners; i++) {
		if (c->listeners[i].kind != LISTEN_MX)
			continue;
		const char *a = c->listeners[i].addr;
		char hp[128];
		if (strchr(a, ':'))
			snprintf(hp, sizeof(hp), "[%s]:%d", strcmp(a, "::") == 0 ? "::1" : a, c->listeners[i].port);
		else
			snprintf(hp, sizeof(hp), "%s:%d", strcmp(a, "0.0.0.0") == 0 ? "127.0.0.1" : a, c->listeners[i].port);
		return route_fixed(j, hp);
	}
	return false;
}

static void
load_done(void *arg)
{
	struct qjob *j = arg;
	struct queue *q = j->q;
	if (j->load_errno == ENOENT) { /* deleted meanwhile (hikyaku queue delete) */
		job_free(j);
		return;
	}
	if (j->load_errno) {
		log_error("queue", "%s: unusable entry (%s); moved aside to queue/corrupt", j->name, strerror(j->load_errno));
		char *from = xasprintf("%s/%s", j->in_deferred ? q->defdir : q->newdir, j->name);
		char *cdir = xasprintf("%s/corrupt", q->dir);
		char *to = xasprintf("%s/%s", cdir, j->name);
		mkdir(cdir, 0700);
		rename(from, to); /* a rename of one entry: cheap enough for the loop */
		free(from);
		free(cdir);
		free(to);
		job_free(j);
		return;
	}
	/* SRS for forwards: the target's SPF sees our domain */
	if (!copy_str(j->mail_from, sizeof(j->mail_from), j->h.from)) {
		conclude_with(j, SMTPC_PERMFAIL, "553 5.1.7 sender address too long");
		return;
	}
	if (strcmp(j->h.kind, "forward") == 0 && j->h.from[0] && q->have_srs &&
	    srs_forward(q->srs_key, j->h.from, q->cfg->hostname, time(NULL), j->mail_from, sizeof(j->mail_from)) < 0) {
		log_warnx("queue", "%s: sender <%s> kept (SRS: %s)", j->name, j->h.from, strerror(errno));
		copy_str(j->mail_from, sizeof(j->mail_from), j->h.from);
	}
	const char *at = strrchr(j->h.to, '@');
	if (j->local) {
		if (route_local(j))
			return;
	}
	if (q->cfg->transport) {
		if (!route_fixed(j, q->cfg->transport))
			conclude_with(j, SMTPC_TEMPFAIL, "bad transport setting '%s'", q->cfg->transport);
		return;
	}
	if (at == NULL || at[1] == '\0') {
		conclude_with(j, SMTPC_PERMFAIL, "553 5.1.3 bad recipient address <%s>", j->h.to);
		return;
	}
	if (q->dns == NULL) {
		conclude_with(j, SMTPC_TEMPFAIL, "no DNS resolver");
		return;
	}
	j->port = 25;
	j->qa = dns_query(q->dns, at + 1, DNS_T_MX, mx_answer, j);
}

static void
job_start(struct queue *q, const char *name, bool deferred)
{
	struct qjob *j = xcalloc(1, sizeof(*j));
	j->q = q;
	copy_str(j->name, sizeof(j->name), name);
	j->in_deferred = deferred;
	j->next = q->active;
	q->active = j;
	q->nactive++;
	worker_submit(q->wp, load_work, load_done, j);
}

/* --- lifecycle ----------------------------------------------------------------------- */

struct queue *
queue_new(struct event_base *base, const struct hk_config *cfg, struct worker_pool *wp, struct dns_resolver *dns,
    struct hk_buf *err)
{
	struct queue *q = xcalloc(1, sizeof(*q));
	q->base = base;
	q->cfg = cfg;
	q->wp = wp;
	q->dir = xasprintf("%s/queue", cfg->state_dir);
	q->newdir = xasprintf("%s/new", q->dir);
	q->defdir = xasprintf("%s/deferred", q->dir);
	q->tmpdir = xasprintf("%s/tmp", q->dir);
	q->flushpath = xasprintf("%s/flush", q->dir);
	q->acct_path = xasprintf("%s/accounts.gdbm", cfg->state_dir);
	const char *dirs[] = { q->dir, q->newdir, q->defdir, q->tmpdir };
	for (size_t i = 0; i < 4; i++)
		if (mkdir(dirs[i], 0700) < 0 && errno != EEXIST) {
			buf_printf(err, "cannot create %s: %s", dirs[i], strerror(errno));
			queue_free(&q);
			return NULL;
		}
	char *keys = xasprintf("%s/keys", cfg->state_dir);
	char *kp = xasprintf("%s/srs.key", keys);
	mkdir(keys, 0700);
	q->have_srs = srs_key_load(kp, q->srs_key) == 0;
	if (!q->have_srs)
		log_error("queue", "%s: %s; forwards keep their sender (no SRS)", kp, strerror(errno));
	free(keys);
	free(kp);
	q->dns = dns; /* borrowed: serve.c's, shared with SPF */
	if (q->dns == NULL)
		log_warnx("queue", "no resolver: only the transport route works");
	q->tls = SSL_CTX_new(TLS_client_method());
	if (q->tls) {
		SSL_CTX_set_min_proto_version(q->tls, TLS1_2_VERSION);
		SSL_CTX_set_options(q->tls, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_COMPRESSION);
		SSL_CTX_set_default_verify_paths(q->tls);
		SSL_CTX_set_verify(q->tls, SSL_VERIFY_NONE, NULL);
	}
	q->timer = evtimer_new(base, timer_cb, q);
	scan_soon(q, 0);
	return q;
}

void
queue_free(struct queue **qp)
{
	struct queue *q = *qp;
	*qp = NULL;
	if (q == NULL)
		return;
	/* jobs between worker steps have no pending worker job any more (the
	 * pool is gone): drop them; their entries stay on disk for next time */
	while (q->active)
		job_free(q->active);
	if (q->timer)
		event_free(q->timer);
	if (q->tls)
		SSL_CTX_free(q->tls);
	OPENSSL_cleanse(q->srs_key, sizeof(q->srs_key));
	free(q->dir);
	free(q->newdir);
	free(q->defdir);
	free(q->tmpdir);
	free(q->flushpath);
	free(q->acct_path);
	free(q);
}
