/*
 * imapd_server.h - the IMAP4rev1 server (RFC 3501 with IDLE, NAMESPACE,
 * UIDPLUS, MOVE, UNSELECT, ID, ENABLE, LITERAL+, SPECIAL-USE, SASL-IR,
 * CONDSTORE): sessions on the IMAP (STARTTLS) and IMAPS (implicit TLS)
 * listeners over the same Maildir++ store as POP3 and delivery.
 *
 * Files: imapd_session.c (connection, command reader, states, login,
 * IDLE), imapd_mailbox.c (the selected mailbox as the client knows it and
 * the untagged updates that bring it up to date), imapd_folders.c (LIST,
 * LSUB, CREATE, DELETE, RENAME, SUBSCRIBE, STATUS, APPEND), imapd_fetch.c,
 * imapd_search.c, imapd_store.c (STORE, COPY, MOVE, EXPUNGE),
 * imapd_notify.c (other sessions' and programs' changes).
 */
#ifndef HK_IMAPD_SERVER_H
#define HK_IMAPD_SERVER_H

#include <stdint.h>
#include <sys/socket.h>

#include "core/config.h"
#include "core/session_list.h"

struct event_base;
struct tls_server;
struct worker_pool;
struct auth_service;
struct retention_ctx;
struct imapd_session;
struct imapd_notify;

struct imapd_server {
	struct event_base *base;
	const struct hk_config *cfg;
	struct tls_server *tls;
	struct worker_pool *workers;
	struct auth_service *auth;
	const struct retention_ctx *retention; /* at login; NULL: none */
	struct imapd_notify *notify;           /* who has which folder selected */
	uint64_t next_id;
	struct session_list sessions;
};

/* Sets up what the server shares (the change notifier). */
int imapd_server_init(struct imapd_server *srv);
void imapd_server_fini(struct imapd_server *srv);
void imapd_session_start(struct imapd_server *srv, int fd, const struct sockaddr *sa, enum listener_kind kind);
void imapd_server_close_all(struct imapd_server *srv);
/* A folder changed (delivery by this process): sessions that have it
 * selected are told at their next chance; IDLE ones at once. */
void imapd_server_changed(struct imapd_server *srv, const char *maildir_root, const char *folder);

#endif
