/*
 * smtp_server.h - what SMTP sessions share: the event loop, configuration,
 * TLS contexts, the worker pool and the hooks into accounts, rules, store
 * and queue.
 */
#ifndef HK_SMTP_SERVER_H
#define HK_SMTP_SERVER_H

#include <stdint.h>

#include "core/config.h"
#include "core/session_list.h"
#include "smtp_session.h"

struct event_base;
struct tls_server;
struct worker_pool;
struct auth_service;

struct smtp_server {
	struct event_base *base;
	const struct hk_config *cfg;
	struct tls_server *tls;
	struct worker_pool *workers;
	struct auth_service *auth; /* accounts handles and failed-login accounting, shared with POP3/IMAP */
	const struct smtp_hooks *hooks;
	void *hooks_ctx;
	uint64_t next_id;
	struct session_list sessions; /* every live session (shutdown closes them) */
};

/* Closes every session (at shutdown, before the worker pool is freed:
 * sessions with a job in flight are freed when its answer comes back). */
void smtp_server_close_all(struct smtp_server *srv);

#endif
