/*
 * dns.c - the resolver of dns.h: c-ares 1.18 driven from a libevent loop
 * (ARES_OPT_SOCK_STATE_CB + ares_process_fd + ares_timeout, as tested in
 * doc DEPENDENCIES.md), and a parser for the answers.
 *
 * How a query lives: dns_query() allocates a struct dns_query (the
 * asker's handle). A live cache entry answers it at once; otherwise it
 * joins the flight of an identical query in flight, or starts a flight:
 * a struct dns_flight, handed to ares_query() as the callback argument.
 * When c-ares finishes it (from ares_process_fd in io_cb/timer_cb, or at
 * once inside ares_query for a local error), flight_done() stores the
 * outcome in the cache, parses the answer into each asker and puts the
 * askers on the resolver's done list, then activates `deliver_ev`.
 * deliver_cb() calls the user's callback and frees the query. So user
 * callbacks never run inside c-ares or inside a dns_* call, and a
 * cancelled query (its callback cleared) stays where it is (in its flight
 * or on the done list) and is freed there: cancelling one asker of a
 * flight never touches the flight or its other askers.
 *
 * Ownership: the resolver owns every query until it is freed; results
 * live in the query. Limits and SECURITY: see dns.h. The answer parser
 * works on the raw packet: compression pointers are followed at most
 * MAX_POINTERS times, names are capped at DNS_MAX_NAME_LEN, every record
 * must fit the packet and every rdata must be exactly as long as it says.
 */
#include "dns.h"

#include <ares.h>
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>

#include "dns_cache.h"
#include "siphash.h"
#include "util.h"

#define MAX_POINTERS 128      /* compression jumps in one name */
#define NAME_TEXT_MAX 1024    /* presentation form: 255 wire bytes, \DDD each */

#define T_A_ 1
#define T_CNAME_ 5
#define T_PTR_ 12
#define T_MX_ 15
#define T_TXT_ 16
#define T_SOA_ 6
#define T_AAAA_ 28
#define C_IN_ 1
#define FLIGHT_BUCKETS 1024 /* power of two; chains stay short below ~10k in flight */

/* --- results ------------------------------------------------------------ */

struct answer {
	enum dns_status status;
	size_t count;
	bool truncated;
	uint32_t ttl;
	uint32_t cache_ttl; /* DNS_OK: min of ttl and the CNAME links used */
	struct dns_addr *addrs;
	struct dns_mx *mx;
	struct dns_txt *txt;
	char **names;
};

static void
answer_free(struct answer *a, enum dns_type type)
{
	for (size_t i = 0; i < a->count; i++) {
		switch (type) {
		case DNS_T_MX: free((void *)(uintptr_t)a->mx[i].host); break;
		case DNS_T_TXT: free((void *)(uintptr_t)a->txt[i].data); break;
		case DNS_T_PTR: free(a->names[i]); break;
		default: break;
		}
	}
	free(a->addrs);
	free(a->mx);
	free(a->txt);
	free(a->names);
	memset(a, 0, sizeof(*a));
}

/* --- answer parser --------------------------------------------------------- */

struct packet {
	const unsigned char *p;
	size_t len;
};

static unsigned
get16(const unsigned char *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

static uint32_t
get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/*
 * Reads the (possibly compressed) name at *off into `wire` (uncompressed
 * labels, ending with the zero label); moves *off past the name as it
 * stands at its position. Returns the wire length, or -1.
 */
static int
read_name(const struct packet *pk, size_t *off, unsigned char wire[DNS_MAX_NAME_LEN])
{
	size_t pos = *off, out = 0;
	unsigned jumps = 0;
	bool jumped = false;

	for (;;) {
		if (pos >= pk->len)
			return -1;
		unsigned c = pk->p[pos];
		if ((c & 0xc0) == 0xc0) {
			if (pos + 1 >= pk->len || ++jumps > MAX_POINTERS)
				return -1;
			if (!jumped)
				*off = pos + 2;
			jumped = true;
			pos = (size_t)(c & 0x3f) << 8 | pk->p[pos + 1];
			continue;
		}
		if (c & 0xc0) /* 0x40 and 0x80: obsolete label types */
			return -1;
		if (pos + 1 + c > pk->len || out + 1 + c > DNS_MAX_NAME_LEN)
			return -1;
		wire[out++] = (unsigned char)c;
		memcpy(wire + out, pk->p + pos + 1, c);
		out += c;
		pos += 1 + c;
		if (c == 0) {
			if (!jumped)
				*off = pos;
			return (int)out;
		}
	}
}

static bool
wire_eq(const unsigned char *a, const unsigned char *b)
{
	for (;;) {
		if (*a != *b)
			return false;
		unsigned n = *a;
		if (n == 0)
			return true;
		for (unsigned i = 1; i <= n; i++)
			if (ascii_lower((char)a[i]) != ascii_lower((char)b[i]))
				return false;
		a += n + 1;
		b += n + 1;
	}
}

/* Presentation form of a wire name (see dns.h); "" for the root. */
static char *
wire_to_text(const unsigned char *w)
{
	char buf[NAME_TEXT_MAX];
	size_t o = 0;

	while (*w) {
		unsigned n = *w++;
		if (o)
			buf[o++] = '.';
		for (unsigned i = 0; i < n; i++, w++) {
			unsigned char c = *w;
			if (c == '.' || c == '\\') {
				buf[o++] = '\\';
				buf[o++] = (char)c;
			} else if (c < 0x21 || c > 0x7e) {
				o += (size_t)snprintf(buf + o, sizeof(buf) - o, "\\%03u", c);
			} else {
				buf[o++] = (char)c;
			}
		}
	}
	buf[o] = '\0';
	return xstrndup(buf, o);
}

struct rr {
	unsigned char owner[DNS_MAX_NAME_LEN];
	unsigned type, cls;
	uint32_t ttl;
	size_t rdoff, rdlen;
};

/* Reads the resource record at *off; -1 if it does not fit the packet. */
static int
read_rr(const struct packet *pk, size_t *off, struct rr *rr)
{
	if (read_name(pk, off, rr->owner) < 0 || *off + 10 > pk->len)
		return -1;
	const unsigned char *h = pk->p + *off;
	rr->type = get16(h);
	rr->cls = get16(h + 2);
	rr->ttl = get32(h + 4);
	rr->rdlen = get16(h + 8);
	rr->rdoff = *off + 10;
	if (rr->rdoff + rr->rdlen > pk->len)
		return -1;
	*off = rr->rdoff + rr->rdlen;
	return 0;
}

static unsigned
wanted_rrtype(enum dns_type t)
{
	switch (t) {
	case DNS_T_A: return T_A_;
	case DNS_T_AAAA: return T_AAAA_;
	case DNS_T_MX: return T_MX_;
	case DNS_T_TXT: return T_TXT_;
	case DNS_T_PTR: return T_PTR_;
	}
	return 0;
}

/* Appends the record's data to `a`; -1 if the rdata is malformed. */
static int
take_record(const struct packet *pk, const struct rr *rr, enum dns_type type, struct answer *a)
{
	const unsigned char *rd = pk->p + rr->rdoff;
	size_t n = a->count;
	unsigned char wire[DNS_MAX_NAME_LEN];
	size_t off;

	switch (type) {
	case DNS_T_A:
	case DNS_T_AAAA: {
		size_t alen = type == DNS_T_A ? 4 : 16;
		if (rr->rdlen != alen)
			return -1;
		a->addrs = xrealloc(a->addrs, (n + 1) * sizeof(*a->addrs));
		memset(&a->addrs[n], 0, sizeof(a->addrs[n]));
		a->addrs[n].family = type == DNS_T_A ? AF_INET : AF_INET6;
		memcpy(&a->addrs[n].a, rd, alen);
		break;
	}
	case DNS_T_MX:
		off = rr->rdoff + 2;
		if (rr->rdlen < 3 || read_name(pk, &off, wire) < 0 || off != rr->rdoff + rr->rdlen)
			return -1;
		a->mx = xrealloc(a->mx, (n + 1) * sizeof(*a->mx));
		a->mx[n].pref = get16(rd);
		a->mx[n].host = wire_to_text(wire);
		break;
	case DNS_T_PTR:
		off = rr->rdoff;
		if (read_name(pk, &off, wire) < 0 || off != rr->rdoff + rr->rdlen)
			return -1;
		a->names = xrealloc(a->names, (n + 1) * sizeof(*a->names));
		a->names[n] = wire_to_text(wire);
		break;
	case DNS_T_TXT: {
		/* character-strings joined (RFC 7208 3.3); rdlen < 64 KiB */
		char *data = xmalloc(rr->rdlen + 1);
		size_t dl = 0, i = 0;
		while (i < rr->rdlen) {
			size_t sl = rd[i];
			if (i + 1 + sl > rr->rdlen) {
				free(data);
				return -1;
			}
			memcpy(data + dl, rd + i + 1, sl);
			dl += sl;
			i += 1 + sl;
		}
		data[dl] = '\0';
		a->txt = xrealloc(a->txt, (n + 1) * sizeof(*a->txt));
		a->txt[n].data = data;
		a->txt[n].len = dl;
		break;
	}
	}
	if (n == 0 || rr->ttl < a->ttl)
		a->ttl = rr->ttl;
	a->count = n + 1;
	return 0;
}

/*
 * Parses a response to a one-question query. The question's name starts
 * the chain of names; CNAME records whose owner is the chain's last name
 * extend it; records of the wanted type owned by any name of the chain
 * are kept. Anything structurally wrong makes the whole answer
 * DNS_SERVFAIL (the caller treats it as a failed server).
 */
static void
parse_answer(const unsigned char *p, size_t len, enum dns_type type, struct answer *a)
{
	struct packet pk = { p, len };
	unsigned char chain[DNS_MAX_CNAME_CHAIN + 1][DNS_MAX_NAME_LEN];
	size_t nchain = 1, off = 12, ans_off;
	struct rr rr;
	uint32_t chain_ttl = UINT32_MAX;

	memset(a, 0, sizeof(*a));
	if (len < 12 || get16(p + 4) != 1)
		goto bad;
	unsigned ancount = get16(p + 6);
	if (read_name(&pk, &off, chain[0]) < 0 || off + 4 > len)
		goto bad;
	off += 4;
	ans_off = off;

	/* follow CNAMEs, whatever order the server put them in */
	for (bool grew = true; grew && nchain <= DNS_MAX_CNAME_CHAIN;) {
		grew = false;
		off = ans_off;
		for (unsigned i = 0; i < ancount; i++) {
			if (read_rr(&pk, &off, &rr) < 0)
				goto bad;
			if (rr.type != T_CNAME_ || rr.cls != C_IN_ || !wire_eq(rr.owner, chain[nchain - 1]))
				continue;
			size_t t = rr.rdoff;
			if (read_name(&pk, &t, chain[nchain]) < 0 || t != rr.rdoff + rr.rdlen)
				goto bad;
			for (size_t k = 0; k < nchain; k++)
				if (wire_eq(chain[k], chain[nchain]))
					goto bad; /* a loop: no usable answer */
			nchain++;
			if (rr.ttl < chain_ttl)
				chain_ttl = rr.ttl;
			grew = true;
			break;
		}
	}

	off = ans_off;
	for (unsigned i = 0; i < ancount; i++) {
		if (read_rr(&pk, &off, &rr) < 0)
			goto bad;
		if (rr.type != wanted_rrtype(type) || rr.cls != C_IN_)
			continue;
		bool ours = false;
		for (size_t k = 0; k < nchain && !ours; k++)
			ours = wire_eq(rr.owner, chain[k]);
		if (!ours)
			continue;
		if (a->count == DNS_MAX_RECORDS) {
			a->truncated = true;
			continue;
		}
		if (take_record(&pk, &rr, type, a) < 0)
			goto bad;
	}
	a->status = a->count ? DNS_OK : DNS_NODATA;
	a->cache_ttl = a->ttl < chain_ttl ? a->ttl : chain_ttl;
	return;
bad:
	answer_free(a, type);
	a->status = DNS_SERVFAIL;
}

/*
 * RFC 2308 3 and 5: how long a negative answer (NXDOMAIN or NODATA) may be
 * kept: the SOA of the authority section says min(its TTL, its MINIMUM);
 * the CNAME links of the answer section bound it too. -1 when the packet
 * has no usable SOA (or is malformed: then nothing is trusted from it).
 */
static int64_t
negative_ttl(const unsigned char *p, size_t len)
{
	struct packet pk = { p, len };
	unsigned char wire[DNS_MAX_NAME_LEN];
	size_t off = 12;
	struct rr rr;
	uint32_t min = UINT32_MAX;
	bool soa = false;

	if (len < 12 || get16(p + 4) != 1)
		return -1;
	if (read_name(&pk, &off, wire) < 0 || off + 4 > len)
		return -1;
	off += 4;
	unsigned ancount = get16(p + 6), nscount = get16(p + 8);
	for (unsigned i = 0; i < ancount; i++) {
		if (read_rr(&pk, &off, &rr) < 0)
			return -1;
		if (rr.ttl < min)
			min = rr.ttl;
	}
	for (unsigned i = 0; i < nscount && !soa; i++) {
		if (read_rr(&pk, &off, &rr) < 0)
			return -1;
		if (rr.type != T_SOA_ || rr.cls != C_IN_)
			continue;
		size_t t = rr.rdoff;
		/* MNAME, RNAME, then SERIAL REFRESH RETRY EXPIRE MINIMUM */
		if (read_name(&pk, &t, wire) < 0 || read_name(&pk, &t, wire) < 0 || t + 20 != rr.rdoff + rr.rdlen)
			return -1;
		uint32_t minimum = get32(p + t + 16);
		if (rr.ttl < min)
			min = rr.ttl;
		if (minimum < min)
			min = minimum;
		soa = true;
	}
	return soa ? (int64_t)min : -1;
}

void
dns_parse_answer(const unsigned char *pkt, size_t len, enum dns_type type, const char *name, dns_cb cb,
		 void *arg)
{
	struct answer a;
	parse_answer(pkt, len, type, &a);
	struct dns_result res = {
		.status = a.status,
		.type = type,
		.name = name,
		.count = a.count,
		.truncated = a.truncated,
		.ttl = a.ttl,
		.addrs = a.addrs,
		.mx = a.mx,
		.txt = a.txt,
		.names = (const char *const *)a.names,
	};
	cb(&res, arg);
	answer_free(&a, type);
}

/* --- resolver ---------------------------------------------------------------- */

struct sock_ev {
	struct sock_ev *next;
	struct dns_resolver *r;
	int fd;
	short flags; /* EV_READ/EV_WRITE armed, 0: idle */
	struct event *ev;
};

struct dns_query {
	struct dns_resolver *r;
	dns_cb cb;
	void *arg;
	enum dns_type type;
	char *name;
	struct answer ans;
	struct dns_query *next; /* done list, or the askers of its flight */
	bool done;		/* on the done list */
	bool cancelled;
	bool in_callback;
};

/* One query inside c-ares and everyone waiting for its answer. */
struct dns_flight {
	struct dns_flight *hnext; /* resolver's flight table */
	struct dns_resolver *r;
	uint64_t hash;
	enum dns_type type;
	char *key; /* lower-cased name */
	struct dns_query *askers, *askers_tail;
};

struct dns_resolver {
	struct event_base *base;
	ares_channel channel;
	struct sock_ev *socks;
	struct event *timer;
	struct event *deliver_ev;
	struct dns_query *done_head, *done_tail;
	unsigned pending;
	bool delivering;
	bool destroying;
	struct dns_cache *cache; /* NULL: cache_size 0 */
	uint32_t max_ttl;
	struct dns_flight *flights[FLIGHT_BUCKETS];
	uint64_t k0, k1; /* flight table hash key */
	struct dns_stats stats;
};

static void
rearm_timer(struct dns_resolver *r)
{
	struct timeval tv, *tvp;

	if (r->destroying)
		return;
	tvp = ares_timeout(r->channel, NULL, &tv);
	if (tvp)
		evtimer_add(r->timer, tvp);
	else
		evtimer_del(r->timer);
}

static void
io_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sock_ev *se = arg;
	struct dns_resolver *r = se->r;

	ares_process_fd(r->channel, (what & EV_READ) ? fd : ARES_SOCKET_BAD,
			(what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
	rearm_timer(r);
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns_resolver *r = arg;
	(void)fd;
	(void)what;
	ares_process_fd(r->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	rearm_timer(r);
}

/* c-ares opens, changes or closes interest in a socket. The struct event
 * of an fd is kept and reassigned, never freed here: this may run inside
 * io_cb of that very event. */
static void
sock_state_cb(void *data, ares_socket_t fd, int readable, int writable)
{
	struct dns_resolver *r = data;
	struct sock_ev *se;
	short flags = (short)((readable ? EV_READ : 0) | (writable ? EV_WRITE : 0));

	for (se = r->socks; se; se = se->next)
		if (se->fd == fd)
			break;
	if (!se) {
		if (!flags)
			return;
		se = xcalloc(1, sizeof(*se));
		se->r = r;
		se->fd = fd;
		se->ev = event_new(r->base, fd, flags | EV_PERSIST, io_cb, se);
		if (!se->ev) {
			fprintf(stderr, "dns: event_new failed\n");
			abort();
		}
		se->next = r->socks;
		r->socks = se;
		se->flags = flags;
		if (flags)
			event_add(se->ev, NULL);
		return;
	}
	if (se->flags == flags)
		return;
	event_del(se->ev);
	se->flags = flags;
	if (flags) {
		event_assign(se->ev, r->base, fd, flags | EV_PERSIST, io_cb, se);
		event_add(se->ev, NULL);
	}
}

static void
query_free(struct dns_query *q)
{
	answer_free(&q->ans, q->type);
	free(q->name);
	free(q);
}

static void
deliver_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns_resolver *r = arg;
	(void)fd;
	(void)what;

	r->delivering = true;
	while (r->done_head) {
		struct dns_query *q = r->done_head;
		r->done_head = q->next;
		if (!r->done_head)
			r->done_tail = NULL;
		if (!q->cancelled && q->cb) {
			struct dns_result res = {
				.status = q->ans.status,
				.type = q->type,
				.name = q->name,
				.count = q->ans.count,
				.truncated = q->ans.truncated,
				.ttl = q->ans.ttl,
				.addrs = q->ans.addrs,
				.mx = q->ans.mx,
				.txt = q->ans.txt,
				.names = (const char *const *)q->ans.names,
			};
			r->pending--;
			q->in_callback = true;
			q->cb(&res, q->arg);
		}
		query_free(q);
	}
	r->delivering = false;
}

static void
enqueue_done(struct dns_resolver *r, struct dns_query *q)
{
	q->done = true;
	q->next = NULL;
	if (r->done_tail)
		r->done_tail->next = q;
	else
		r->done_head = q;
	r->done_tail = q;
	event_active(r->deliver_ev, EV_TIMEOUT, 1);
}

static enum dns_status
map_ares_status(int status)
{
	switch (status) {
	case ARES_ENODATA: return DNS_NODATA;
	case ARES_ENOTFOUND: return DNS_NXDOMAIN;
	case ARES_ESERVFAIL:
	case ARES_EREFUSED:
	case ARES_ECONNREFUSED: /* c-ares 1.18: SERVFAIL/REFUSED from every server */
	case ARES_EFORMERR:
	case ARES_ENOTIMP:
	case ARES_EBADRESP:
	case ARES_EOF: return DNS_SERVFAIL;
	case ARES_ETIMEOUT: return DNS_TIMEOUT;
	case ARES_EBADNAME:
	case ARES_EBADQUERY: return DNS_BADNAME;
	default: return DNS_ERROR;
	}
}

static uint64_t
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The cache and flight key of a name: ASCII lower case (DNS compares
 * names without regard to ASCII case, RFC 4343). */
static char *
key_of(const char *name)
{
	char *k = xstrdup(name);
	for (char *p = k; *p; p++)
		*p = ascii_lower(*p);
	return k;
}

/* How long an outcome is kept (see dns.h): seconds, 0 for not at all. */
static uint32_t
cache_lifetime(const struct dns_resolver *r, enum dns_status st, uint32_t ok_ttl, int64_t neg_ttl)
{
	uint32_t ttl;

	switch (st) {
	case DNS_OK:
		/* RFC 2181 8: a TTL with the top bit set means zero */
		ttl = ok_ttl > 0x7fffffffu ? 0 : ok_ttl;
		break;
	case DNS_NODATA:
	case DNS_NXDOMAIN:
		if (neg_ttl < 0)
			ttl = DNS_NEG_TTL_DEFAULT;
		else
			ttl = neg_ttl > 0x7fffffff ? 0 : (uint32_t)neg_ttl;
		if (ttl > DNS_NEG_TTL_MAX)
			ttl = DNS_NEG_TTL_MAX;
		break;
	case DNS_SERVFAIL:
	case DNS_TIMEOUT: ttl = DNS_FAIL_TTL; break;
	default: return 0;
	}
	return ttl < r->max_ttl ? ttl : r->max_ttl;
}

static uint64_t
flight_hash(const struct dns_resolver *r, const char *key, enum dns_type type)
{
	return hk_siphash24(r->k0, r->k1 ^ ((uint64_t)type + 1), (const uint8_t *)key, strlen(key));
}

static struct dns_flight *
flight_find(struct dns_resolver *r, const char *key, enum dns_type type, uint64_t h)
{
	struct dns_flight *f = r->flights[h & (FLIGHT_BUCKETS - 1)];
	while (f && !(f->hash == h && f->type == type && strcmp(f->key, key) == 0))
		f = f->hnext;
	return f;
}

static void
flight_unlink(struct dns_flight *f)
{
	struct dns_flight **pp = &f->r->flights[f->hash & (FLIGHT_BUCKETS - 1)];
	while (*pp && *pp != f)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = f->hnext;
}

static void
flight_join(struct dns_flight *f, struct dns_query *q)
{
	q->next = NULL;
	if (f->askers_tail)
		f->askers_tail->next = q;
	else
		f->askers = q;
	f->askers_tail = q;
}

/* c-ares is done with a flight: cache the outcome, hand it to each asker. */
static void
flight_done(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_flight *f = arg;
	struct dns_resolver *r = f->r;
	struct dns_query *q, *next;
	struct answer first;
	enum dns_status st;
	(void)timeouts;

	flight_unlink(f);
	if (status == ARES_EDESTRUCTION || r->destroying) {
		for (q = f->askers; q; q = next) {
			next = q->next;
			query_free(q);
		}
		goto out;
	}
	memset(&first, 0, sizeof(first));
	bool have_pkt = abuf && alen > 0;
	if (status == ARES_SUCCESS && have_pkt) {
		parse_answer(abuf, (size_t)alen, f->type, &first);
		st = first.status;
	} else {
		st = status == ARES_SUCCESS ? DNS_NODATA : map_ares_status(status);
	}
	if (r->cache) {
		int64_t neg = -1;
		if ((st == DNS_NODATA || st == DNS_NXDOMAIN) && have_pkt)
			neg = negative_ttl(abuf, (size_t)alen);
		uint32_t ttl = cache_lifetime(r, st, first.cache_ttl, neg);
		dns_cache_put(r->cache, f->key, f->type, st, st == DNS_OK ? abuf : NULL,
			      st == DNS_OK ? (size_t)alen : 0, ttl, now_ms());
	}
	for (q = f->askers; q; q = next) {
		next = q->next;
		if (q->cancelled) {
			query_free(q);
			continue;
		}
		if (st == DNS_OK && first.status == DNS_OK) {
			q->ans = first; /* the first live asker takes the parsed answer */
			first.status = DNS_NODATA;
			first.count = 0;
			first.addrs = NULL;
			first.mx = NULL;
			first.txt = NULL;
			first.names = NULL;
		} else if (st == DNS_OK) {
			parse_answer(abuf, (size_t)alen, f->type, &q->ans);
		} else {
			q->ans.status = st;
		}
		enqueue_done(r, q);
	}
	answer_free(&first, f->type);
out:
	free(f->key);
	free(f);
}

/* Checks the name as ares_create_query will encode it (a backslash
 * escapes one character): labels of 1..63 bytes, at most 255 on the wire. */
static bool
name_ok(const char *name)
{
	size_t wire = 1, label = 0;
	const char *p = name;

	if (!*p)
		return false;
	for (; *p; p++) {
		if (*p == '.') {
			if (label == 0)
				return false;
			wire += label + 1;
			label = 0;
			continue;
		}
		if (*p == '\\' && p[1])
			p++;
		if (++label > DNS_MAX_LABEL_LEN)
			return false;
	}
	if (label)
		wire += label + 1;
	return wire <= DNS_MAX_NAME_LEN;
}

struct dns_query *
dns_query(struct dns_resolver *r, const char *name, enum dns_type type, dns_cb cb, void *arg)
{
	struct dns_query *q = xcalloc(1, sizeof(*q));
	q->r = r;
	q->cb = cb;
	q->arg = arg;
	q->type = type;
	q->name = xstrdup(name);
	r->pending++;
	r->stats.asked++;

	/* a single trailing dot is allowed and ignored */
	size_t n = strlen(q->name);
	if (n > 1 && q->name[n - 1] == '.' && q->name[n - 2] != '\\')
		q->name[n - 1] = '\0';
	if (!name_ok(q->name)) {
		q->ans.status = DNS_BADNAME;
		enqueue_done(r, q);
		return q;
	}
	char *key = key_of(q->name);
	struct dns_cache_hit hit;
	if (r->cache && dns_cache_get(r->cache, key, type, now_ms(), &hit)) {
		r->stats.cache_hits++;
		if (hit.status == DNS_OK) {
			parse_answer(hit.pkt, hit.len, type, &q->ans);
			if (q->ans.status == DNS_OK && hit.ttl_left < q->ans.ttl)
				q->ans.ttl = hit.ttl_left;
		} else {
			q->ans.status = hit.status;
		}
		free(key);
		enqueue_done(r, q);
		return q;
	}
	uint64_t h = flight_hash(r, key, type);
	struct dns_flight *f = flight_find(r, key, type, h);
	if (f) {
		r->stats.joined++;
		free(key);
		flight_join(f, q);
		return q;
	}
	f = xcalloc(1, sizeof(*f));
	f->r = r;
	f->hash = h;
	f->type = type;
	f->key = key;
	f->hnext = r->flights[h & (FLIGHT_BUCKETS - 1)];
	r->flights[h & (FLIGHT_BUCKETS - 1)] = f;
	flight_join(f, q);
	r->stats.sent++;
	static const int rrtype[] = { [DNS_T_A] = T_A_,	    [DNS_T_AAAA] = T_AAAA_, [DNS_T_MX] = T_MX_,
				      [DNS_T_TXT] = T_TXT_, [DNS_T_PTR] = T_PTR_ };
	/* may call flight_done at once (local errors): f is not touched after */
	ares_query(r->channel, q->name, C_IN_, rrtype[type], flight_done, f);
	rearm_timer(r);
	return q;
}

void
dns_cancel(struct dns_query **qp)
{
	struct dns_query *q = *qp;

	if (!q)
		return;
	*qp = NULL;
	if (q->in_callback || q->cancelled)
		return;
	q->cancelled = true;
	q->cb = NULL;
	q->r->pending--;
	/* on the done list: deliver_cb frees it; in a flight: flight_done does,
	 * and the flight goes on for its other askers (and the cache) */
}

unsigned
dns_pending(const struct dns_resolver *r)
{
	return r->pending;
}

struct event_base *
dns_base(const struct dns_resolver *r)
{
	return r->base;
}

void
dns_get_stats(const struct dns_resolver *r, struct dns_stats *out)
{
	*out = r->stats;
	out->cache_entries = r->cache ? dns_cache_count(r->cache) : 0;
	out->cache_evictions = r->cache ? dns_cache_evictions(r->cache) : 0;
}

struct dns_resolver *
dns_resolver_new(struct event_base *base, const struct dns_config *cfg, const char **why_r)
{
	static const struct dns_config defaults = { 0 };
	struct ares_options opts;
	int optmask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_FLAGS;
	const char *why = NULL;

	if (!cfg)
		cfg = &defaults;
	if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS) {
		if (why_r)
			*why_r = "c-ares library init failed";
		return NULL;
	}
	struct dns_resolver *r = xcalloc(1, sizeof(*r));
	r->base = base;

	memset(&opts, 0, sizeof(opts));
	opts.sock_state_cb = sock_state_cb;
	opts.sock_state_cb_data = r;
	opts.timeout = cfg->timeout_ms > 0 ? cfg->timeout_ms : DNS_DEFAULT_TIMEOUT_MS;
	opts.tries = cfg->tries > 0 ? cfg->tries : DNS_DEFAULT_TRIES;
	if (opts.timeout > DNS_MAX_TIMEOUT_MS)
		opts.timeout = DNS_MAX_TIMEOUT_MS;
	if (opts.tries > DNS_MAX_TRIES)
		opts.tries = DNS_MAX_TRIES;
	/* no search list (we only ask FQDNs); keep SERVFAIL failover */
	opts.flags = ARES_FLAG_NOSEARCH;
	int rc = ares_init_options(&r->channel, &opts, optmask);
	if (rc != ARES_SUCCESS) {
		why = "c-ares init failed (resolv.conf?)";
		goto fail;
	}
	if (cfg->servers && ares_set_servers_ports_csv(r->channel, cfg->servers) != ARES_SUCCESS) {
		why = "bad DNS server list";
		ares_destroy(r->channel);
		goto fail;
	}
	r->timer = evtimer_new(base, timer_cb, r);
	r->deliver_ev = event_new(base, -1, 0, deliver_cb, r);
	if (!r->timer || !r->deliver_ev) {
		why = "event_new failed";
		ares_destroy(r->channel);
		if (r->timer)
			event_free(r->timer);
		if (r->deliver_ev)
			event_free(r->deliver_ev);
		goto fail;
	}
	if (cfg->cache_size > 0)
		r->cache = dns_cache_new(cfg->cache_size, 0);
	r->max_ttl = cfg->cache_max_ttl > 0 ? cfg->cache_max_ttl : DNS_CACHE_DEFAULT_MAX_TTL;
	uint8_t k[16];
	if (getrandom(k, sizeof(k), GRND_NONBLOCK) != (ssize_t)sizeof(k))
		for (size_t i = 0; i < sizeof(k); i++)
			k[i] = (uint8_t)rand();
	memcpy(&r->k0, k, 8);
	memcpy(&r->k1, k + 8, 8);
	return r;
fail:
	free(r);
	ares_library_cleanup();
	if (why_r)
		*why_r = why;
	return NULL;
}

void
dns_resolver_free(struct dns_resolver **rp)
{
	struct dns_resolver *r = *rp;

	if (!r)
		return;
	if (r->delivering) {
		fprintf(stderr, "dns: dns_resolver_free called from a query callback\n");
		abort();
	}
	*rp = NULL;
	r->destroying = true;
	ares_destroy(r->channel); /* flight_done frees the flights still inside */
	while (r->done_head) {
		struct dns_query *q = r->done_head;
		r->done_head = q->next;
		query_free(q);
	}
	for (struct sock_ev *se = r->socks, *next; se; se = next) {
		next = se->next;
		event_free(se->ev);
		free(se);
	}
	event_free(r->timer);
	event_free(r->deliver_ev);
	dns_cache_free(&r->cache);
	free(r);
	ares_library_cleanup();
}

/* --- helpers ------------------------------------------------------------------ */

void
dns_ptr_name(int family, const void *addr, char *out)
{
	const uint8_t *b = addr;
	static const char hex[] = "0123456789abcdef";

	if (family == AF_INET) {
		snprintf(out, DNS_PTR_NAME_SIZE, "%u.%u.%u.%u.in-addr.arpa", b[3], b[2], b[1], b[0]);
		return;
	}
	char *o = out;
	for (int i = 15; i >= 0; i--) {
		*o++ = hex[b[i] & 15];
		*o++ = '.';
		*o++ = hex[b[i] >> 4];
		*o++ = '.';
	}
	memcpy(o, "ip6.arpa", sizeof("ip6.arpa"));
}

const char *
dns_status_str(enum dns_status s)
{
	switch (s) {
	case DNS_OK: return "ok";
	case DNS_NODATA: return "no data";
	case DNS_NXDOMAIN: return "no such domain";
	case DNS_SERVFAIL: return "server failure";
	case DNS_TIMEOUT: return "timeout";
	case DNS_BADNAME: return "bad name";
	case DNS_ERROR: return "resolver error";
	}
	return "?";
}

const char *
dns_type_str(enum dns_type t)
{
	switch (t) {
	case DNS_T_A: return "A";
	case DNS_T_AAAA: return "AAAA";
	case DNS_T_MX: return "MX";
	case DNS_T_TXT: return "TXT";
	case DNS_T_PTR: return "PTR";
	}
	return "?";
}
