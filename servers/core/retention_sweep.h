/*
 * retention_sweep.h - stored-mail retention inside `hikyaku serve`: the
 * shared context (rule cache, paths, bound) for the logins that run
 * retention (POP3 now, IMAP later: retention_sweep_ctx + retention_run_login
 * on a worker), and the periodic sweep over every mailbox of every domain
 * (config key retention_interval; 0: no sweep).
 *
 * A sweep is a chain of worker jobs: one lists the users, then one job per
 * mailbox, each submitted when the previous one is done, so a sweep never
 * holds more than one worker thread and never blocks the loop. A sweep
 * still running when the timer fires again is not started twice. Disabled
 * domains and users are left alone (their data is kept as it is). Each
 * mailbox that changed and every finished sweep are logged with counts.
 *
 * Threads: new, free, stop and the timer run on the event loop thread;
 * the context is read-only and may be used from any worker.
 */
#ifndef HK_RETENTION_SWEEP_H
#define HK_RETENTION_SWEEP_H

struct event_base;
struct hk_config;
struct worker_pool;
struct auth_service;
struct retention_ctx;
struct retention_sweep;

/* Borrows everything (free the sweep before them, after stopping it and
 * freeing the worker pool). */
struct retention_sweep *retention_sweep_new(struct event_base *base, const struct hk_config *cfg, struct worker_pool *workers,
    struct auth_service *auth);
/* No new jobs from now on (call before worker_pool_free, which still runs
 * the done callback of a job in flight). */
void retention_sweep_stop(struct retention_sweep *s);
void retention_sweep_free(struct retention_sweep **s);
const struct retention_ctx *retention_sweep_ctx(const struct retention_sweep *s);

#endif
