/*
 * smtp_mailsys.h - what an SMTP command means for the mail system: the
 * session hooks (smtp_session.h) implemented with the accounts store, SPF,
 * the rule programs (operator, domain, panel, personal layers) and the
 * Maildir++ store, plus the outbound queue's spool for what leaves.
 *
 * Threads: hooks start on the event loop; anything that blocks (accounts
 * lookups, password hashing, rule files, delivery with fsync) runs on the
 * worker pool and answers back on the loop.
 */
#ifndef HK_SMTP_MAILSYS_H
#define HK_SMTP_MAILSYS_H

#include "smtp_server.h"

struct mailsys;

struct dns_resolver;
/* NULL with a message in err when the state directory is unusable. `dns`
 * is borrowed (serve.c's resolver, shared with the queue so both use one
 * cache; free the mailsys first); NULL: SPF results are 'none'. */
struct mailsys *mailsys_new(struct smtp_server *srv, struct dns_resolver *dns, struct hk_buf *err);
void mailsys_free(struct mailsys **m);
const struct smtp_hooks *mailsys_hooks(void);
struct queue;
/* The outbound queue to wake after each delivery that queued something. */
void mailsys_set_queue(struct mailsys *m, struct queue *q);

#endif
