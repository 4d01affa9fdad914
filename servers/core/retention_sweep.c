/*
 * retention_sweep.c - the periodic retention sweep of `hikyaku serve`
 * (see retention_sweep.h).
 */
#include "retention_sweep.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "accounts.h"
#include "core/auth.h"
#include "core/config.h"
#include "core/log.h"
#include "core/retention.h"
#include "core/rulecache.h"
#include "core/worker.h"

struct retention_sweep {
	struct event_base *base;
	const struct hk_config *cfg;
	struct worker_pool *workers;
	struct auth_service *auth;
	struct retention_ctx ctx;
	char *cache_dir, *global_rules;
	struct event *timer;
	bool running, stopping;
	/* the sweep in progress */
	char (*users)[HK_ADDRESS_MAX + 1];
	size_t nusers, next;
	struct retention_stats total;
	size_t mailboxes, errors;
	struct timespec started;
	/* the job in flight: its user and result */
	char cur[HK_ADDRESS_MAX + 1];
	struct retention_stats st;
	bool list_failed;
};

static void sweep_next(struct retention_sweep *s);

/* worker: every user of every domain, sorted by address */
static void
list_work(void *arg)
{
	struct retention_sweep *s = arg;
	struct hk_accounts *a = auth_service_accounts(s->auth);
	struct hk_user *v = NULL;
	size_t n = 0;
	s->list_failed = a == NULL || hk_accounts_user_list(a, NULL, &v, &n) != HK_ACCT_OK;
	if (s->list_failed)
		return;
	s->users = xcalloc(n ? n : 1, sizeof(*s->users));
	for (size_t i = 0; i < n; i++)
		snprintf(s->users[i], sizeof(s->users[i]), "%s", v[i].address);
	s->nusers = n;
	free(v);
}

static void
list_done(void *arg)
{
	struct retention_sweep *s = arg;
	if (s->list_failed) {
		log_warnx("retention", "sweep: cannot list the users");
		s->running = false;
		return;
	}
	sweep_next(s);
}

/* worker: one mailbox */
static void
user_work(void *arg)
{
	struct retention_sweep *s = arg;
	memset(&s->st, 0, sizeof(s->st));
	struct hk_accounts *a = auth_service_accounts(s->auth);
	if (a == NULL) {
		s->errors++;
		return;
	}
	struct hk_user *u = xmalloc(sizeof(*u));
	struct hk_domain *d = xmalloc(sizeof(*d));
	struct retention_user ru;
	memset(&ru, 0, sizeof(ru));
	if (hk_accounts_user_get(a, s->cur, u) != HK_ACCT_OK || (u->flags & HK_USER_DISABLED) ||
	    hk_accounts_domain_get(a, u->domain, d) != HK_ACCT_OK || (d->flags & HK_DOMAIN_DISABLED) ||
	    hk_accounts_limits(a, u, &ru.limits) != HK_ACCT_OK)
		goto out; /* gone since the listing, or disabled: left alone */
	ru.address = u->address;
	ru.domain = u->domain;
	ru.local = u->local;
	struct retention_opts o = { .mode = RETENTION_MODE_RETENTION };
	char err[300];
	if (retention_run_user(&s->ctx, &ru, &o, &s->st, err, sizeof(err)) < 0) {
		log_warnx("retention", "sweep: %s", err);
		s->errors++;
	}
out:
	free(u);
	free(d);
}

static void
user_done(void *arg)
{
	struct retention_sweep *s = arg;
	struct retention_stats *t = &s->total, *st = &s->st;
	s->mailboxes++;
	t->messages += st->messages;
	t->evaluated += st->evaluated;
	t->parsed += st->parsed;
	t->expunged += st->expunged;
	t->moved += st->moved + st->copied;
	t->flagged += st->flagged;
	t->failed += st->failed;
	if (st->incomplete)
		t->incomplete = true;
	if (st->expunged || st->moved || st->copied || st->flagged || st->failed || st->incomplete)
		log_info("retention", "sweep: %s: %zu messages evaluated, %zu expunged, %zu moved, %zu flagged, %zu failed%s", s->cur,
		    st->evaluated, st->expunged, st->moved + st->copied, st->flagged, st->failed,
		    st->incomplete ? "; the rest at the next sweep" : "");
	sweep_next(s);
}

static void
sweep_next(struct retention_sweep *s)
{
	if (!s->stopping && s->next < s->nusers) {
		snprintf(s->cur, sizeof(s->cur), "%s", s->users[s->next++]);
		worker_submit(s->workers, user_work, user_done, s);
		return;
	}
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	double secs = (double)(now.tv_sec - s->started.tv_sec) + (double)(now.tv_nsec - s->started.tv_nsec) / 1e9;
	const struct retention_stats *t = &s->total;
	log_info("retention", "sweep %s: %zu mailboxes, %zu messages listed, %zu evaluated (%zu read), %zu expunged, %zu moved, "
	    "%zu flagged, %zu failed, %zu errors, %.3f s%s",
	    s->stopping ? "stopped" : "done", s->mailboxes, t->messages, t->evaluated, t->parsed, t->expunged, t->moved,
	    t->flagged, t->failed, s->errors, secs, t->incomplete ? "; some mailboxes continue at the next sweep" : "");
	free(s->users);
	s->users = NULL;
	s->nusers = s->next = 0;
	s->running = false;
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct retention_sweep *s = arg;
	if (s->running || s->stopping)
		return; /* the previous sweep is still going */
	s->running = true;
	memset(&s->total, 0, sizeof(s->total));
	s->mailboxes = s->errors = 0;
	clock_gettime(CLOCK_MONOTONIC, &s->started);
	worker_submit(s->workers, list_work, list_done, s);
}

struct retention_sweep *
retention_sweep_new(struct event_base *base, const struct hk_config *cfg, struct worker_pool *workers, struct auth_service *auth)
{
	struct retention_sweep *s = xcalloc(1, sizeof(*s));
	s->base = base;
	s->cfg = cfg;
	s->workers = workers;
	s->auth = auth;
	s->cache_dir = xasprintf("%s/cache", cfg->state_dir);
	mkdir(s->cache_dir, 0700);
	s->global_rules = xasprintf("%s/rules/global.hk", cfg->state_dir);
	s->ctx.state_dir = cfg->state_dir;
	s->ctx.global_rules = s->global_rules;
	s->ctx.hostname = cfg->hostname;
	s->ctx.rules = rulecache_new(s->cache_dir, NULL);
	s->ctx.max_messages = cfg->retention_max_messages;
	if (cfg->retention_interval > 0) {
		s->timer = event_new(base, -1, EV_PERSIST, on_timer, s);
		struct timeval tv = { (time_t)cfg->retention_interval, 0 };
		event_add(s->timer, &tv);
	}
	return s;
}

void
retention_sweep_stop(struct retention_sweep *s)
{
	if (s == NULL)
		return;
	s->stopping = true;
	if (s->timer)
		event_del(s->timer);
}

void
retention_sweep_free(struct retention_sweep **sp)
{
	struct retention_sweep *s = *sp;
	if (s == NULL)
		return;
	*sp = NULL;
	if (s->timer)
		event_free(s->timer);
	rulecache_free(&s->ctx.rules);
	free(s->users);
	free(s->cache_dir);
	free(s->global_rules);
	free(s);
}

const struct retention_ctx *
retention_sweep_ctx(const struct retention_sweep *s)
{
	return &s->ctx;
}
