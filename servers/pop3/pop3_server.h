/*
 * pop3_server.h - the POP3 server (RFC 1939, 2449, 2595, 5034, 3206):
 * sessions on the POP3 (STLS) and POP3S (implicit TLS) listeners, reading
 * users' INBOX through the store (pop3_maildrop.h), logging in through the
 * shared login service (core/auth.h, core/sasl.h).
 */
#ifndef HK_POP3_SERVER_H
#define HK_POP3_SERVER_H

#include <stdint.h>
#include <sys/socket.h>

#include "core/config.h"
#include "core/session_list.h"

struct event_base;
struct tls_server;
struct worker_pool;
struct auth_service;
struct pop3_session;
struct retention_ctx;

struct pop3_server {
	struct event_base *base;
	const struct hk_config *cfg;
	struct tls_server *tls;
	struct worker_pool *workers;
	struct auth_service *auth;
	/* the retention stage runs after each login, before the listing;
	 * NULL: not at all (core/retention.h) */
	const struct retention_ctx *retention;
	uint64_t next_id;
	struct session_list sessions; /* every live session */
};

/* Starts a session on an accepted socket (implicit TLS for POP3S). */
void pop3_session_start(struct pop3_server *srv, int fd, const struct sockaddr *sa, enum listener_kind kind);
/* Closes every session (shutdown, before the worker pool is freed). */
void pop3_server_close_all(struct pop3_server *srv);

#endif
