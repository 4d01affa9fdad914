/*
 * conn.c - client connections on libevent bufferevents (see conn.h).
 */
#include "conn.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/ssl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tls.h"
#include "util.h"

/* Input kept while a command is worked on; above it the socket is not
 * read (back-pressure), so a client cannot make us buffer without bound. */
#define CONN_READ_HIGH (256 * 1024)
/* Polls of the closing timer (10 ms each) before giving up on a client
 * that does not take our last reply. */
#define CONN_CLOSE_POLLS 200

struct conn {
	struct event_base *base;
	struct tls_server *tls_srv;
	struct bufferevent *bev;
	struct conn_cbs cbs;
	void *arg;
	bool tls, closing, closed, paused;
	unsigned timeout;
	size_t drain_low;
	struct event *close_ev;
	unsigned close_polls;
	char tls_desc[96];
	char peer_ip[64];
	struct sockaddr_storage peer;
};

static void setup_bev(struct conn *c, struct bufferevent *bev);

static void
finish_close(struct conn *c)
{
	if (c->closed)
		return;
	c->closed = true;
	if (c->close_ev)
		event_del(c->close_ev);
	if (c->bev) {
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
	if (c->cbs.closed)
		c->cbs.closed(c, c->arg);
}

/* All of the last reply has left: our output and, under TLS, the socket
 * bufferevent's below it (freeing a filter does not flush it). */
static bool
output_flushed(struct conn *c)
{
	return conn_output_pending(c) == 0;
}

static void
on_close_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct conn *c = arg;
	if (c->closed)
		return;
	if (!output_flushed(c) && ++c->close_polls < CONN_CLOSE_POLLS) {
		struct timeval tv = { 0, 10000 };
		event_add(c->close_ev, &tv);
		return;
	}
	finish_close(c);
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	(void)bev;
	struct conn *c = arg;
	if (!c->closing && !c->closed && c->cbs.read)
		c->cbs.read(c, c->arg);
}

static void
on_write(struct bufferevent *bev, void *arg)
{
	(void)bev;
	struct conn *c = arg;
	if (c->closed)
		return;
	if (c->closing) {
		if (output_flushed(c)) {
			finish_close(c);
			return;
		}
		if (c->close_ev == NULL)
			c->close_ev = evtimer_new(c->base, on_close_timer, c);
		struct timeval tv = { 0, 10000 };
		event_add(c->close_ev, &tv);
		return;
	}
	if (c->drain_low && c->cbs.drained)
		c->cbs.drained(c, c->arg);
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	struct conn *c = arg;
	if (what & BEV_EVENT_CONNECTED) { /* TLS handshake done */
		SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
		if (ssl) {
			struct hk_buf d;
			buf_init(&d);
			tls_describe(ssl, &d);
			snprintf(c->tls_desc, sizeof(c->tls_desc), "%s", d.data ? d.data : "");
			buf_fini(&d);
		}
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		if (c->closing) {
			finish_close(c);
			return;
		}
		/* libevent disables the direction that timed out */
		if (!c->paused)
			bufferevent_enable(c->bev, EV_READ);
		bufferevent_enable(c->bev, EV_WRITE);
		if (c->cbs.timeout)
			c->cbs.timeout(c, c->arg);
		else
			conn_close(c);
		return;
	}
	finish_close(c); /* EOF or error */
}

static void
apply_timeout(struct conn *c)
{
	if (c->bev == NULL)
		return;
	struct timeval tv = { c->timeout, 0 };
	bufferevent_set_timeouts(c->bev, c->timeout ? &tv : NULL, c->timeout ? &tv : NULL);
}

static void
setup_bev(struct conn *c, struct bufferevent *bev)
{
	c->bev = bev;
	bufferevent_setcb(bev, on_read, on_write, on_event, c);
	bufferevent_setwatermark(bev, EV_READ, 0, CONN_READ_HIGH);
	bufferevent_setwatermark(bev, EV_WRITE, c->drain_low, 0);
	apply_timeout(c);
	bufferevent_enable(bev, c->paused ? EV_WRITE : EV_READ | EV_WRITE);
}

struct conn *
conn_new(struct event_base *base, struct tls_server *tls, int fd, const struct sockaddr *sa, bool implicit_tls,
    const struct conn_cbs *cbs, void *arg)
{
	struct conn *c = xcalloc(1, sizeof(*c));
	c->base = base;
	c->tls_srv = tls;
	c->cbs = *cbs;
	c->arg = arg;
	if (sa->sa_family == AF_INET) {
		memcpy(&c->peer, sa, sizeof(struct sockaddr_in));
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, c->peer_ip, sizeof(c->peer_ip));
	} else if (sa->sa_family == AF_INET6) {
		memcpy(&c->peer, sa, sizeof(struct sockaddr_in6));
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, c->peer_ip, sizeof(c->peer_ip));
	} else {
		snprintf(c->peer_ip, sizeof(c->peer_ip), "unknown");
	}
	/* No Nagle: the bufferevent already gathers a loop iteration's output
	 * into one write, but it writes at most 16 KiB at a time, so a reply
	 * just over that goes out as 16 KiB and a small rest; Nagle held the
	 * rest until the client's delayed ACK (40 ms), once per such reply
	 * (36 of the 10,000 RETRs of bench-imap's mailbox: 1.4 s of 3 s). */
	int one = 1;
	if (sa->sa_family == AF_INET || sa->sa_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct bufferevent *bev;
	if (implicit_tls) {
		SSL *ssl = tls ? tls_server_ssl_new(tls) : NULL;
		bev = ssl ? bufferevent_openssl_socket_new(base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE) : NULL;
		if (ssl && bev == NULL)
			SSL_free(ssl);
		c->tls = true;
	} else {
		bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	}
	if (bev == NULL) {
		close(fd);
		free(c);
		return NULL;
	}
	setup_bev(c, bev);
	return c;
}

void
conn_free(struct conn **cp)
{
	struct conn *c = *cp;
	if (c == NULL)
		return;
	*cp = NULL;
	if (c->bev)
		bufferevent_free(c->bev);
	if (c->close_ev)
		event_free(c->close_ev);
	free(c);
}

struct evbuffer *
conn_input(struct conn *c)
{
	return bufferevent_get_input(c->bev);
}

struct evbuffer *
conn_output(struct conn *c)
{
	return bufferevent_get_output(c->bev);
}

void
conn_write(struct conn *c, const void *data, size_t len)
{
	if (c->bev && !c->closed)
		bufferevent_write(c->bev, data, len);
}

void
conn_puts(struct conn *c, const char *s)
{
	conn_write(c, s, strlen(s));
}

void
conn_printf(struct conn *c, const char *fmt, ...)
{
	if (c->bev == NULL || c->closed)
		return;
	va_list ap;
	va_start(ap, fmt);
	evbuffer_add_vprintf(bufferevent_get_output(c->bev), fmt, ap);
	va_end(ap);
}

size_t
conn_output_pending(struct conn *c)
{
	if (c->bev == NULL)
		return 0;
	size_t n = evbuffer_get_length(bufferevent_get_output(c->bev));
	struct bufferevent *under = bufferevent_get_underlying(c->bev);
	if (under)
		n += evbuffer_get_length(bufferevent_get_output(under));
	return n;
}

void
conn_pause(struct conn *c)
{
	c->paused = true;
	if (c->bev)
		bufferevent_disable(c->bev, EV_READ);
}

void
conn_resume(struct conn *c)
{
	c->paused = false;
	if (c->bev == NULL || c->closed || c->closing)
		return;
	bufferevent_enable(c->bev, EV_READ);
	/* input that arrived (or was pipelined) while paused: the read
	 * callback does not fire again for bytes already buffered */
	if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
		bufferevent_trigger(c->bev, EV_READ, BEV_TRIG_DEFER_CALLBACKS);
}

void
conn_set_timeout(struct conn *c, unsigned seconds)
{
	c->timeout = seconds;
	apply_timeout(c);
}

void
conn_set_drain(struct conn *c, size_t low)
{
	c->drain_low = low;
	if (c->bev)
		bufferevent_setwatermark(c->bev, EV_WRITE, low, 0);
}

int
conn_starttls(struct conn *c)
{
	if (c->tls || c->tls_srv == NULL || c->bev == NULL)
		return -1;
	struct evbuffer *in = bufferevent_get_input(c->bev);
	evbuffer_drain(in, evbuffer_get_length(in));
	SSL *ssl = tls_server_ssl_new(c->tls_srv);
	if (ssl == NULL)
		return -1;
	struct bufferevent *t = bufferevent_openssl_filter_new(c->base, c->bev, ssl, BUFFEREVENT_SSL_ACCEPTING,
	    BEV_OPT_CLOSE_ON_FREE);
	if (t == NULL) {
		SSL_free(ssl);
		return -1;
	}
	c->tls = true;
	setup_bev(c, t);
	return 0;
}

void
conn_close_after_flush(struct conn *c)
{
	if (c->closed || c->closing)
		return;
	c->closing = true;
	bufferevent_disable(c->bev, EV_READ);
	struct timeval tv = { 30, 0 };
	bufferevent_set_timeouts(c->bev, NULL, &tv);
	if (output_flushed(c)) {
		finish_close(c);
		return;
	}
	bufferevent_enable(c->bev, EV_WRITE);
	on_write(c->bev, c);
}

void
conn_close(struct conn *c)
{
	finish_close(c);
}

bool
conn_is_closed(const struct conn *c)
{
	return c->closed || c->closing;
}

bool
conn_tls(const struct conn *c)
{
	return c->tls;
}

bool
conn_tls_available(const struct conn *c)
{
	return c->tls_srv != NULL;
}

const char *
conn_tls_desc(const struct conn *c)
{
	return c->tls_desc;
}

const char *
conn_peer_ip(const struct conn *c)
{
	return c->peer_ip;
}

const struct sockaddr *
conn_peer(const struct conn *c)
{
	return (const struct sockaddr *)&c->peer;
}
