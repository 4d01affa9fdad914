/*
 * queue.h - the outbound queue runner, started by `hikyaku serve`: sends
 * what smtp_mailsys.c spooled into STATE/queue/new (forwards, notices,
 * auto-replies, relayed mail) and the bounces it makes itself.
 *
 * Per entry: read it (worker), pick the route (a hosted recipient domain:
 * our own MX listener; else the `transport` setting; else MX records of
 * the domain, A/AAAA of the domain when it has none (RFC 5321 5.1), no
 * delivery to a null MX (RFC 7505)), rewrite the sender of a forward with
 * SRS (srs.h), send with smtp_client.h, then (worker) unlink it after the
 * remote 2xx, or move it to deferred/ with the next attempt after
 * queue_retry seconds doubling up to queue_retry_max, or, after a 5xx or
 * once queue_lifetime has passed, queue a DSN (dsn.h) to the envelope
 * sender (none for the null sender, none when its NOTIFY lacks FAILURE)
 * and drop it. NOTIFY=SUCCESS: a "relayed" DSN when the next hop does not
 * offer DSN (else the parameters go on with MAIL/RCPT); NOTIFY=DELAY: one
 * "delayed" DSN once the entry has waited queue_delay_warning seconds
 * (recorded in its state file). Formats: queue_file.h.
 *
 * Scans: at start, every queue_interval seconds, after a bounce was made,
 * and soon after queue_poke(). STATE/queue/flush makes every deferred
 * entry due. At most queue_concurrency deliveries run at once; nothing
 * blocks the loop (files are read and written on the worker pool).
 *
 * Lifetime: create after the worker pool; free after worker_pool_free()
 * (its pending jobs call back into the queue) and before the event base.
 * The resolver is the server's (serve.c), shared with SPF so both use one
 * cache: the queue only borrows it (NULL: only the transport route works)
 * and must be freed before it.
 */
#ifndef HK_QUEUE_H
#define HK_QUEUE_H

#include "core/config.h"

#define QUEUE_SCAN_MAX 1000 /* entries taken from one scan */
#define QUEUE_MAX_MX 10	    /* MX hosts tried per attempt */
#define QUEUE_MAX_ADDRS 8   /* addresses kept per host */

struct event_base;
struct worker_pool;
struct dns_resolver;
struct queue;

struct queue *queue_new(struct event_base *base, const struct hk_config *cfg, struct worker_pool *wp,
    struct dns_resolver *dns, struct hk_buf *err);
void queue_free(struct queue **q);
/* Scan soon (after a local commit queued something). */
void queue_poke(struct queue *q);

#endif
