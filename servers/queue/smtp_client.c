/*
 * smtp_client.c - the outbound SMTP client state machine (see
 * smtp_client.h). One struct smtpc per connection; the reply reader is
 * push-mode: lines are taken from the bufferevent as they arrive and a
 * complete (possibly multi-line) reply drives the next step.
 */
#include "smtp_client.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

enum smtpc_state {
	ST_CONNECT,
	ST_GREETING,
	ST_EHLO,
	ST_HELO,
	ST_STARTTLS,
	ST_TLS_HANDSHAKE,
	ST_EHLO2,
	ST_MAIL,
	ST_RCPT,
	ST_DATA,
	ST_DOT,
	ST_QUIT,
	ST_DONE,
};

struct smtpc {
	struct event_base *base;
	struct bufferevent *bev;
	struct event *done_ev;
	struct smtpc_params p;
	smtpc_cb cb;
	void *arg;
	enum smtpc_state st;
	struct smtp_reply reply; /* the reply being read */
	struct smtp_ehlo ehlo;   /* what EHLO offered */
	struct smtpc_result res;
};

void
smtpc_timeouts_default(struct smtpc_timeouts *t, unsigned cap)
{
	*t = (struct smtpc_timeouts){ .connect = 30, .greeting = 120, .ehlo = 120, .mail = 120, .rcpt = 120, .data = 120,
		.block = 180, .final = 300, .quit = 10 };
	if (cap == 0)
		return;
	unsigned *v[] = { &t->connect, &t->greeting, &t->ehlo, &t->mail, &t->rcpt, &t->data, &t->block, &t->final, &t->quit };
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		if (*v[i] > cap)
			*v[i] = cap;
}

static void
set_timeouts(struct smtpc *c, unsigned rd)
{
	struct timeval r = { .tv_sec = rd }, w = { .tv_sec = c->p.to.block };
	bufferevent_set_timeouts(c->bev, &r, &w);
}

static void
finish(struct smtpc *c)
{
	if (c->st == ST_DONE)
		return;
	c->st = ST_DONE;
	if (c->bev)
		bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	event_active(c->done_ev, 0, 0);
}

static void
set_text(struct smtpc *c, const char *s)
{
	snprintf(c->res.reply, sizeof(c->res.reply), "%s", s);
}

static void
fail(struct smtpc *c, enum smtpc_status st, const char *why)
{
	c->res.status = st;
	set_text(c, why);
	if (c->bev && c->res.connected && c->st != ST_TLS_HANDSHAKE)
		bufferevent_write(c->bev, "QUIT\r\n", 6); /* best effort */
	finish(c);
}

static void
send_cmd(struct smtpc *c, enum smtpc_state st, unsigned timeout, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
send_cmd(struct smtpc *c, enum smtpc_state st, unsigned timeout, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	evbuffer_add_vprintf(bufferevent_get_output(c->bev), fmt, ap);
	va_end(ap);
	c->st = st;
	set_timeouts(c, timeout);
}

void
smtpc_add_stuffed(struct evbuffer *out, const char *msg, size_t len)
{
	size_t i = 0;
	while (i < len) {
		const char *nl = memchr(msg + i, '\n', len - i);
		size_t end = nl ? (size_t)(nl - msg) : len;
		size_t seg = end - i;
		if (msg[i] == '.')
			evbuffer_add(out, ".", 1);
		if (seg > 0 && msg[end - 1] == '\r')
			seg--;
		/* a lone CR inside a line is sent as it is; line ends are CRLF */
		evbuffer_add(out, msg + i, seg);
		evbuffer_add(out, "\r\n", 2);
		i = end + 1;
	}
	evbuffer_add(out, ".\r\n", 3);
}

static bool
has_8bit(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] & 0x80)
			return true;
	return false;
}

static void
send_mail(struct smtpc *c)
{
	if (c->ehlo.size && c->ehlo.size_max > 0 && c->p.msglen > c->ehlo.size_max) {
		char why[128];
		snprintf(why, sizeof(why), "552 5.3.4 message size %zu exceeds the server's limit %llu", c->p.msglen, c->ehlo.size_max);
		fail(c, SMTPC_PERMFAIL, why);
		return;
	}
	char size[40] = "";
	if (c->ehlo.size)
		snprintf(size, sizeof(size), " SIZE=%zu", c->p.msglen);
	bool body8 = c->ehlo.eightbit && has_8bit(c->p.msg, c->p.msglen);
	c->res.in_transaction = true;
	c->res.dsn = c->ehlo.dsn;
	bool ret = c->ehlo.dsn && c->p.dsn_ret, envid = c->ehlo.dsn && c->p.dsn_envid;
	send_cmd(c, ST_MAIL, c->p.to.mail, "MAIL FROM:<%s>%s%s%s%s%s%s\r\n", c->p.mail_from, size, body8 ? " BODY=8BITMIME" : "",
	    ret ? " RET=" : "", ret ? c->p.dsn_ret : "", envid ? " ENVID=" : "", envid ? c->p.dsn_envid : "");
}

static void
send_ehlo(struct smtpc *c, enum smtpc_state st)
{
	memset(&c->ehlo, 0, sizeof(c->ehlo));
	send_cmd(c, st, c->p.to.ehlo, "EHLO %s\r\n", c->p.helo);
}

static void read_cb(struct bufferevent *bev, void *arg);
static void event_cb(struct bufferevent *bev, short what, void *arg);

static bool
is_ip_literal(const char *h)
{
	unsigned char b[16];
	return inet_pton(AF_INET, h, b) == 1 || inet_pton(AF_INET6, h, b) == 1;
}

static void
start_tls(struct smtpc *c)
{
	/* STYLE.md §5.8: nothing the server pipelined after its 220 counts */
	struct evbuffer *in = bufferevent_get_input(c->bev);
	evbuffer_drain(in, evbuffer_get_length(in));
	SSL *ssl = SSL_new(c->p.tls);
	if (ssl == NULL) {
		fail(c, SMTPC_TEMPFAIL, "local TLS error (SSL_new)");
		return;
	}
	if (!is_ip_literal(c->p.host)) {
		SSL_set_tlsext_host_name(ssl, c->p.host);
		SSL_set1_host(ssl, c->p.host);
	}
	SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
	struct bufferevent *f = bufferevent_openssl_filter_new(c->base, c->bev, ssl, BUFFEREVENT_SSL_CONNECTING,
	    BEV_OPT_CLOSE_ON_FREE);
	if (f == NULL) {
		SSL_free(ssl);
		fail(c, SMTPC_TEMPFAIL, "local TLS error (filter)");
		return;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(f, 1);
	c->bev = f;
	c->st = ST_TLS_HANDSHAKE;
	bufferevent_setcb(f, read_cb, NULL, event_cb, c);
	set_timeouts(c, c->p.to.ehlo);
	bufferevent_enable(f, EV_READ | EV_WRITE);
}

static void
tls_ready(struct smtpc *c)
{
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
	c->res.tls = true;
	X509 *peer = ssl ? SSL_get1_peer_certificate(ssl) : NULL;
	c->res.tls_verified = peer && !is_ip_literal(c->p.host) && SSL_get_verify_result(ssl) == X509_V_OK;
	X509_free(peer);
	send_ehlo(c, ST_EHLO2);
}

static enum smtpc_status
status_of(int code)
{
	return code >= 500 && code < 600 ? SMTPC_PERMFAIL : SMTPC_TEMPFAIL;
}

static void
reply_fail(struct smtpc *c, int code)
{
	char why[SMTPC_MAX_TEXT];
	snprintf(why, sizeof(why), "%d %s", code, c->reply.text.data ? c->reply.text.data : "");
	fail(c, status_of(code), why);
}

/* A complete reply arrived. */
static void
on_reply(struct smtpc *c, int code)
{
	bool ok = code >= 200 && code < 300;
	switch (c->st) {
	case ST_GREETING:
		if (code != 220) {
			reply_fail(c, code);
			return;
		}
		c->res.connected = true;
		send_ehlo(c, ST_EHLO);
		return;
	case ST_EHLO:
		if (!ok) {
			if (code >= 500) {
				send_cmd(c, ST_HELO, c->p.to.ehlo, "HELO %s\r\n", c->p.helo);
				return;
			}
			reply_fail(c, code);
			return;
		}
		if (c->ehlo.starttls && c->p.tls) {
			send_cmd(c, ST_STARTTLS, c->p.to.ehlo, "STARTTLS\r\n");
			return;
		}
		send_mail(c);
		return;
	case ST_HELO:
	case ST_EHLO2:
		if (!ok) {
			c->res.tls_failed = c->st == ST_EHLO2;
			reply_fail(c, code);
			return;
		}
		send_mail(c);
		return;
	case ST_STARTTLS:
		if (code == 220)
			start_tls(c);
		else
			send_mail(c); /* RFC 3207 4: go on without TLS */
		return;
	case ST_MAIL:
		if (!ok) {
			reply_fail(c, code);
			return;
		}
		{
			bool notify = c->ehlo.dsn && c->p.dsn_notify, orcpt = c->ehlo.dsn && c->p.dsn_orcpt;
			send_cmd(c, ST_RCPT, c->p.to.rcpt, "RCPT TO:<%s>%s%s%s%s\r\n", c->p.rcpt, notify ? " NOTIFY=" : "",
			    notify ? c->p.dsn_notify : "", orcpt ? " ORCPT=" : "", orcpt ? c->p.dsn_orcpt : "");
		}
		return;
	case ST_RCPT:
		if (!ok) {
			reply_fail(c, code);
			return;
		}
		send_cmd(c, ST_DATA, c->p.to.data, "DATA\r\n");
		return;
	case ST_DATA:
		if (code != 354) {
			reply_fail(c, code);
			return;
		}
		smtpc_add_stuffed(bufferevent_get_output(c->bev), c->p.msg, c->p.msglen);
		c->st = ST_DOT;
		set_timeouts(c, c->p.to.final);
		return;
	case ST_DOT:
		if (!ok) {
			reply_fail(c, code);
			return;
		}
		c->res.status = SMTPC_DELIVERED;
		snprintf(c->res.reply, sizeof(c->res.reply), "%d %s", code, c->reply.text.data ? c->reply.text.data : "");
		send_cmd(c, ST_QUIT, c->p.to.quit, "QUIT\r\n");
		return;
	case ST_QUIT:
		finish(c);
		return;
	default:
		fail(c, SMTPC_TEMPFAIL, "protocol error: unexpected reply");
		return;
	}
}

static void
read_cb(struct bufferevent *bev, void *arg)
{
	struct smtpc *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	while (c->st != ST_DONE && c->st != ST_TLS_HANDSHAKE) {
		size_t n;
		char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF);
		if (line == NULL) {
			if (evbuffer_get_length(in) > SMTPC_LINE_MAX)
				fail(c, SMTPC_TEMPFAIL, "protocol error: reply line too long");
			return;
		}
		const char *txt;
		enum smtp_reply_step rs = smtp_reply_line(&c->reply, line, n, &txt);
		if (rs == SMTP_REPLY_MALFORMED || rs == SMTP_REPLY_TOO_LONG) {
			free(line);
			fail(c, SMTPC_TEMPFAIL, rs == SMTP_REPLY_MALFORMED ? "protocol error: malformed reply" : "protocol error: reply too long");
			return;
		}
		if (c->reply.nlines > 1 && (c->st == ST_EHLO || c->st == ST_EHLO2))
			smtp_ehlo_keyword(&c->ehlo, txt);
		free(line);
		if (rs == SMTP_REPLY_MORE)
			continue;
		on_reply(c, c->reply.code);
		smtp_reply_next(&c->reply);
	}
}

static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	struct smtpc *c = arg;
	if (what & BEV_EVENT_CONNECTED) {
		if (c->st == ST_CONNECT) {
			c->st = ST_GREETING;
			set_timeouts(c, c->p.to.greeting);
		} else if (c->st == ST_TLS_HANDSHAKE) {
			tls_ready(c);
		}
		return;
	}
	if (c->st == ST_QUIT) { /* delivered; the goodbye does not matter */
		finish(c);
		return;
	}
	char why[SMTPC_MAX_TEXT];
	const char *phase = c->st == ST_CONNECT ? "connecting" : c->st == ST_TLS_HANDSHAKE ? "in the TLS handshake"
	    : c->st == ST_DOT ? "after the message data" : "waiting for a reply";
	if (what & BEV_EVENT_TIMEOUT)
		snprintf(why, sizeof(why), "timeout %s (%s)", phase, c->p.host);
	else if (what & BEV_EVENT_EOF)
		snprintf(why, sizeof(why), "connection closed %s (%s)", phase, c->p.host);
	else {
		unsigned long e = bufferevent_get_openssl_error(c->bev);
		char es[256];
		if (e)
			ERR_error_string_n(e, es, sizeof(es));
		snprintf(why, sizeof(why), "%s %s (%s)", e ? es : strerror(EVUTIL_SOCKET_ERROR() ? EVUTIL_SOCKET_ERROR() : EIO), phase,
		    c->p.host);
	}
	c->res.status = SMTPC_TEMPFAIL;
	c->res.tls_failed = c->st == ST_TLS_HANDSHAKE || c->st == ST_EHLO2;
	set_text(c, why);
	finish(c);
}

static void
free_client(struct smtpc *c)
{
	if (c->bev)
		bufferevent_free(c->bev);
	event_free(c->done_ev);
	smtp_reply_fini(&c->reply);
	free(c);
}

static void
done_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct smtpc *c = arg;
	struct smtpc_result res = c->res;
	smtpc_cb cb = c->cb;
	void *cbarg = c->arg;
	free_client(c);
	cb(&res, cbarg);
}

struct smtpc *
smtpc_start(struct event_base *base, const struct smtpc_params *p, smtpc_cb cb, void *arg)
{
	struct smtpc *c = xcalloc(1, sizeof(*c));
	c->base = base;
	c->p = *p;
	c->cb = cb;
	c->arg = arg;
	smtp_reply_init(&c->reply);
	c->res.status = SMTPC_TEMPFAIL;
	c->done_ev = event_new(base, -1, 0, done_cb, c);
	c->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	c->st = ST_CONNECT;
	bufferevent_setcb(c->bev, read_cb, NULL, event_cb, c);
	struct timeval t = { .tv_sec = p->to.connect };
	bufferevent_set_timeouts(c->bev, &t, &t);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	if (bufferevent_socket_connect(c->bev, p->addr, (int)p->addrlen) < 0) {
		char why[SMTPC_MAX_TEXT];
		snprintf(why, sizeof(why), "cannot connect to %s: %s", p->host, strerror(errno ? errno : EIO));
		c->res.status = SMTPC_TEMPFAIL;
		set_text(c, why);
		c->st = ST_DONE;
		event_active(c->done_ev, 0, 0);
	}
	return c;
}

void
smtpc_cancel(struct smtpc **cp)
{
	struct smtpc *c = *cp;
	*cp = NULL;
	if (c)
		free_client(c);
}
