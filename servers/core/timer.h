/*
 * timer.h - "call cb on the loop in ms milliseconds", for the delayed
 * answer to a failed login (the back-off: a timer, nothing sleeps). One
 * shot, not cancellable: cb must cope with a session that died meanwhile
 * (the callers hold a reference). libevent allocates and frees the event.
 */
#ifndef HK_TIMER_H
#define HK_TIMER_H

#include <event2/event.h>

static inline int
loop_call_after(struct event_base *base, unsigned ms, event_callback_fn cb, void *arg)
{
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
	return event_base_once(base, -1, EV_TIMEOUT, cb, arg, &tv);
}

#endif
