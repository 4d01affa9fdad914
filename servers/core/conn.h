/*
 * conn.h - one client connection of a line-oriented server (POP3, IMAP):
 * the socket as a libevent bufferevent, implicit TLS or an upgrade
 * (STARTTLS/STLS), read pausing, idle timeouts, and "close once the last
 * reply has left". Protocol code sees events and bytes, never OpenSSL.
 *
 * Events go to the protocol through struct conn_cbs on the loop thread:
 *   read     bytes are waiting in conn_input(); consume what you can
 *   drained  the output fell to the low-water mark set by conn_set_drain
 *            (a streaming reply asks for its next chunk)
 *   timeout  no input for the idle timeout (the protocol says goodbye and
 *            calls conn_close_after_flush, or extends the timeout)
 *   closed   the connection is gone (EOF, error, or closed by us); after
 *            it no other callback comes. The protocol frees its session
 *            when nothing of its own is in flight, then calls conn_free.
 *
 * SECURITY: conn_starttls drops every byte the client sent before the
 * handshake (plaintext pipelined after STARTTLS must never be read as
 * commands inside TLS: CVE-2011-0411 class).
 */
#ifndef HK_CONN_H
#define HK_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct conn;
struct event_base;
struct evbuffer;
struct tls_server;

struct conn_cbs {
	void (*read)(struct conn *c, void *arg);
	void (*drained)(struct conn *c, void *arg);
	void (*timeout)(struct conn *c, void *arg);
	void (*closed)(struct conn *c, void *arg);
};

/* Takes the accepted socket (closed on failure). NULL when out of memory
 * or TLS cannot start. */
struct conn *conn_new(struct event_base *base, struct tls_server *tls, int fd, const struct sockaddr *sa,
    bool implicit_tls, const struct conn_cbs *cbs, void *arg);
/* Frees the connection (closing the socket if still open). No callback. */
void conn_free(struct conn **c);

struct evbuffer *conn_input(struct conn *c);
struct evbuffer *conn_output(struct conn *c);
void conn_write(struct conn *c, const void *data, size_t len);
void conn_puts(struct conn *c, const char *s);
void conn_printf(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Bytes waiting to be sent (ours and, under TLS, the socket's). */
size_t conn_output_pending(struct conn *c);

/* Stop/start reading (while a command is being worked on). */
void conn_pause(struct conn *c);
void conn_resume(struct conn *c);
void conn_set_timeout(struct conn *c, unsigned seconds);
/* Call `drained` when pending output falls to `low` bytes or below; 0
 * turns it off. */
void conn_set_drain(struct conn *c, size_t low);

/* Starts a TLS handshake on the connection (the caller has queued its
 * "go ahead" reply, which is sent in plaintext first). -1 when TLS is not
 * available. */
int conn_starttls(struct conn *c);

/* Sends what is queued, then closes (the closed callback follows). */
void conn_close_after_flush(struct conn *c);
/* Closes now; the closed callback follows (from this call). */
void conn_close(struct conn *c);
bool conn_is_closed(const struct conn *c);

bool conn_tls(const struct conn *c);
bool conn_tls_available(const struct conn *c);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384", "" before TLS. */
const char *conn_tls_desc(const struct conn *c);
const char *conn_peer_ip(const struct conn *c);
const struct sockaddr *conn_peer(const struct conn *c);

#endif
