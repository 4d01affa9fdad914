/*
 * worker.h - a small pool of threads for the blocking work a server must
 * never do on its event loop: password hashing (yescrypt, ~20 ms), fsync-ed
 * deliveries, mailbox scans, GDBM writes. A job runs `work` on a pool
 * thread, then `done` on the event loop thread that submitted it.
 *
 * Ownership: the job's arg belongs to the submitter; it must stay valid
 * until `done` runs. A job cannot be cancelled once submitted (the thread
 * may be inside a syscall); a session that closes meanwhile marks itself
 * dead and its `done` frees what is left.
 */
#ifndef HK_WORKER_H
#define HK_WORKER_H

#include <stdbool.h>

struct event_base;
struct worker_pool;

typedef void (*worker_fn)(void *arg);

/* nthreads 0: one per core, at least 2. */
struct worker_pool *worker_pool_new(struct event_base *base, unsigned nthreads);
/* Finishes queued jobs (running their done callbacks), then joins. */
void worker_pool_free(struct worker_pool **p);
void worker_submit(struct worker_pool *p, worker_fn work, worker_fn done, void *arg);
/* Jobs submitted and not yet done (for tests and shutdown). */
unsigned worker_pending(const struct worker_pool *p);

#endif
