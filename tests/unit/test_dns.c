/*
 * test_dns.c - unit tests of servers/dns/dns.c against a real DNS server
 * on 127.0.0.1 (tests/spf/spfdns.py serving tests/spf/dns-unit.yml):
 * every record type, multi-string TXT joined, NXDOMAIN vs NODATA (and an
 * empty non-terminal), SERVFAIL, REFUSED, timeouts, CNAME chains and
 * loops, truncated UDP answers retried over TCP, the DNS_MAX_RECORDS
 * limit, odd names, cancellation (pending, already answered, from a
 * callback) and freeing a resolver with queries pending; plus hostile
 * packets fed straight to the parser. The cache and query joining
 * (dns_cache.c): hits, TTL expiry, negative caching with the SOA minimum,
 * failures, the LRU bound, identical queries joined and cancelled one by
 * one; the server's own query counter ("NAME._count", see spfdns.py)
 * shows what went on the wire.
 *
 * Run from the repository root. Needs /usr/bin/python3 with
 * python3-dnslib and python3-yaml (scripts/install-deps.sh test).
 */
#include <arpa/inet.h>
#include <event2/event.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dns/dns.h"
#include "dns/dns_cache.h"
#include "../spf/spfdns.h"

#define ZONE "tests/spf/dns-unit.yml"
#define WALL_MS 10000 /* no single test waits longer than this */

static struct spfdns server;
static char server_addr[64];

struct fixture {
	struct event_base *base;
	struct dns_resolver *r;
};

/* What a callback saw, copied out of the result. */
struct got {
	bool done;
	int calls;
	enum dns_status status;
	size_t count;
	bool truncated;
	struct dns_addr addrs[DNS_MAX_RECORDS];
	unsigned pref[16];
	char names[16][1100];
	char *txt[16];
	size_t txt_len[16];
};

static void
got_cb(const struct dns_result *res, void *arg)
{
	struct got *g = arg;
	g->done = true;
	g->calls++;
	g->status = res->status;
	g->count = res->count;
	g->truncated = res->truncated;
	for (size_t i = 0; i < res->count; i++) {
		switch (res->type) {
		case DNS_T_A:
		case DNS_T_AAAA: g->addrs[i] = res->addrs[i]; break;
		case DNS_T_MX:
			if (i < 16) {
				g->pref[i] = res->mx[i].pref;
				snprintf(g->names[i], sizeof(g->names[i]), "%s", res->mx[i].host);
			}
			break;
		case DNS_T_PTR:
			if (i < 16)
				snprintf(g->names[i], sizeof(g->names[i]), "%s", res->names[i]);
			break;
		case DNS_T_TXT:
			if (i < 16) {
				g->txt[i] = malloc(res->txt[i].len + 1);
				memcpy(g->txt[i], res->txt[i].data, res->txt[i].len + 1);
				g->txt_len[i] = res->txt[i].len;
			}
			break;
		}
	}
}

static void
got_free(struct got *g)
{
	for (int i = 0; i < 16; i++)
		free(g->txt[i]);
}

static void
wall_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	*(bool *)arg = true;
}

/* Runs the loop until *done or the wall clock limit (a test failure). */
static void
run_until(struct event_base *base, bool *done)
{
	bool wall = false;
	struct timeval tv = { WALL_MS / 1000, 0 };
	struct event *w = evtimer_new(base, wall_cb, &wall);
	evtimer_add(w, &tv);
	while (!*done && !wall)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(w);
	assert_false(wall);
}

/* Runs the loop for ms milliseconds. */
static void
run_for(struct event_base *base, int ms)
{
	bool wall = false;
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	struct event *w = evtimer_new(base, wall_cb, &wall);
	evtimer_add(w, &tv);
	while (!wall)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(w);
}

static struct dns_resolver *
resolver(struct event_base *base, int timeout_ms, int tries)
{
	struct dns_config cfg = { .servers = server_addr, .timeout_ms = timeout_ms, .tries = tries };
	const char *why = NULL;
	struct dns_resolver *r = dns_resolver_new(base, &cfg, &why);
	if (!r)
		fail_msg("dns_resolver_new: %s", why ? why : "?");
	return r;
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	f->base = event_base_new();
	f->r = resolver(f->base, 2000, 1);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	dns_resolver_free(&f->r);
	event_base_free(f->base);
	free(f);
	return 0;
}

static void
ask(struct fixture *f, const char *name, enum dns_type t, struct got *g)
{
	memset(g, 0, sizeof(*g));
	struct dns_query *q = dns_query(f->r, name, t, got_cb, g);
	assert_non_null(q);
	run_until(f->base, &g->done);
	assert_int_equal(g->calls, 1);
}

static void
assert_v4(const struct dns_addr *a, const char *want)
{
	char buf[INET6_ADDRSTRLEN];
	assert_int_equal(a->family, AF_INET);
	inet_ntop(AF_INET, a->a.v4, buf, sizeof(buf));
	assert_string_equal(buf, want);
}

/* --- answers ----------------------------------------------------------------- */

static void
test_dns_a_records(void **state)
{
	struct got g;
	ask(*state, "a.test", DNS_T_A, &g);
	assert_int_equal(g.status, DNS_OK);
	assert_int_equal(g.count, 2);
	assert_v4(&g.addrs[0], "192.0.2.1");
	assert_v4(&g.addrs[1], "192.0.2.2");
	/* upper case and a trailing dot are the same name */
	ask(*state, "A.TEST.", DNS_T_A, &g);
	assert_int_equal(g.status, DNS_OK);
	assert_int_equal(g.count, 2);
}

static void
test_dns_aaaa_record(void **state)
{
	struct got g;
	char buf[INET6_ADDRSTRLEN];
	ask(*state, "a.test", DNS_T_AAAA, &g);
	assert_int_equal(g.status, DNS_OK);
	assert_int_equal(g.count, 1);
	assert_int_equal(g.addrs[0].family, AF_INET6);
	inet_ntop(AF_INET6, g.addrs[0].a.v6, buf, sizeof(buf));
	assert_string_equal(buf, "2001:db8::1");
}

static void
test_dns_mx_records(void **state)
{
	struct got g;
	ask(*state, "a.test", DNS_T_MX, &g);
	assert_int_equal(g.status, DNS_OK);
	assert_int_equal(g.count, 2);
	/* answer order, not sorted */
	assert_int_equal(g.pref[0], 20);
	assert_string_equal(g.names[0], "mx2.a.test");
	assert_int_equal(g.pref[1], 10);
	assert_string_equal(g.names[1], "mx1.a.test");

	ask(*state, "nullmx.test", DNS_T_MX, &g);
	assert_int_equal(g.status, DNS_OK);
	assert_int_equal(g.count, 1);
	assert_string_equal(g.names[0], "");
}

static void
test_dns_txt_multistring_joined(void **state)
{
	struct got g;
	ask(*state, "a.test", DNS_T_TXT, &g);
	assert_int_equal(g.status, DNS_OK);
	assert_int_equal(g.count, 2);
	assert_string_equal(g.txt[0], "v=spf1 ip4:192.0.2.0/24 -all");
	assert_int_equal(g.txt_len[0], strlen("v=spf1 ip4:192.0.2.0/24 -all"));
	assert_string_equal(g.txt[1], "second record");
	got_free(&g);
}

static void
test_dns_txt_binary_and_empty(void **state)
{
	struct got g;
	ask(*state, "binary.test", DNS_T_TXT, &g);
	assert_int_equal(g.status, DNS_OK);
	assert_int_equal(g.count, 1);
	assert_int_equal(g.txt_len[0], 5);
	assert_memory_equal(g.txt[0], "a\0b\xff" "c", 5);
	got_free(&g);

	ask(*state, "empty.test", DNS_T_TXT, &g); /* a TXT record with no strings */
	assert_int_equal(g.status, DNS_OK);
	assert_int_equal(g.count, 1);
	assert_int_equal(g.txt_len[0], 0);
	got_free(&g);
}

static void
test_dns_txt_over_tcp(void **state)
{
	/* 3000 bytes do not fit a 512-byte UDP answer: TC, then TCP */
	struct got g;
	ask(*state, "big.test", DNS_T_TXT, &g);
	assert_int_equal(g.status, DNS_OK);
	assert_int_equal(g.count, 1);
	assert_int_equal(g.txt_len[0], 3000);
	assert_memory_equal(g.txt[0], "v=spf1 xxx", 10);
	got_free(&g);
}

static void
test_dns_ptr_records(void **state)
{
	struct got g;
	char rev[DNS_PTR_NAME_SIZE];
	uint8_t v4[4] = { 192, 0, 2, 1 };
	dns_ptr_name(AF_INET, v4, rev);
	assert_string_equal(rev, "1.2.0.192.in-addr.arpa");
	ask(*state, rev, DNS_T_PTR, &g);
	assert_int_equal(g.status, DNS_OK);
	assert_int_equal(g.count, 2);
	assert_string_equal(g.names[0], "a.test");
	assert_string_equal(g.names[1], "Mail.A.Test");

	uint8_t v6[16];
	inet_pton(AF_INET6, "2001:db8::1", v6);
	dns_ptr_name(AF_INET6, v6, rev);
	assert_string_equal(rev, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
	assert_int_equal(strlen(rev) + 1, DNS_PTR_NAME_SIZE);
	ask(*state, rev, DNS_T_PTR, &g);
	assert_int_equal(g.status, DNS_OK);
	assert_string_equal(g.names[0], "a.test");
}

/* --- absence and errors -------------------------------------------------------- */

static void
test_dns_nxdomain_vs_nodata(void **state)
{
	struct got g;
	ask(*state, "nonexistent.test", DNS_T_A, &g);
	assert_int_equal(g.status, DNS_NXDOMAIN);
	ask(*state, "nodata.test", DNS_T_AAAA, &g);
	assert_int_equal(g.status, DNS_NODATA);
	ask(*state, "nodata.test", DNS_T_TXT, &g);
	assert_int_equal(g.status, DNS_NODATA);
	/* ent.test has no records but a child: it exists */
	ask(*state, "ent.test", DNS_T_A, &g);
	assert_int_equal(g.status, DNS_NODATA);
	ask(*state, "sub.ent.test", DNS_T_A, &g);
	assert_int_equal(g.status, DNS_OK);
}

static void
test_dns_servfail_and_refused(void **state)
{
	struct got g;
	ask(*state, "servfail.test", DNS_T_TXT, &g);
	assert_int_equal(g.status, DNS_SERVFAIL);
	ask(*state, "refused.test", DNS_T_A, &g);
	assert_int_equal(g.status, DNS_SERVFAIL);
}

static void
test_dns_timeout(void **state)
{
	struct fixture *f = *state;
	struct got g;
	struct timespec t0;

	/* 150 ms x 2 tries: c-ares doubles the second wait, 450 ms in all */
	dns_resolver_free(&f->r);
	f->r = resolver(f->base, 150, 2);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ask(f, "timeout.test", DNS_T_A, &g);
	long ms = spfdns_ms_since(&t0);
	assert_int_equal(g.status, DNS_TIMEOUT);
	assert_true(ms >= 400);
	assert_true(ms < 3000);
	/* the resolver still works afterwards */
	ask(f, "a.test", DNS_T_A, &g);
	assert_int_equal(g.status, DNS_OK);
}

/* The default timeouts: the first packet of lost.test is dropped, the
 * retry after DNS_DEFAULT_TIMEOUT_MS is answered: well under a second. */
static void
test_dns_lost_packet_default_timeouts(void **state)
{
	struct fixture *f = *state;
	struct got g;
	struct timespec t0;
	struct dns_config cfg = { .servers = server_addr };

	dns_resolver_free(&f->r);
	f->r = dns_resolver_new(f->base, &cfg, NULL);
	assert_non_null(f->r);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ask(f, "lost.test", DNS_T_A, &g);
	long ms = spfdns_ms_since(&t0);
	assert_int_equal(g.status, DNS_OK);
	assert_v4(&g.addrs[0], "192.0.2.36");
	assert_true(ms >= DNS_DEFAULT_TIMEOUT_MS - 50);
	assert_true(ms < 1000);
}

static void
test_dns_cname_chain(void **state)
{
	struct got g;
	ask(*state, "alias2.test", DNS_T_A, &g);
	assert_int_equal(g.status, DNS_OK);
	assert_int_equal(g.count, 2);
	assert_v4(&g.addrs[0], "192.0.2.1");
	ask(*state, "alias.test", DNS_T_TXT, &g);
	assert_int_equal(g.status, DNS_OK);
	assert_int_equal(g.count, 2);
	got_free(&g);
	ask(*state, "dangling.test", DNS_T_A, &g);
	assert_int_equal(g.status, DNS_NXDOMAIN);
	ask(*state, "loop1.test", DNS_T_A, &g);
	assert_int_equal(g.status, DNS_SERVFAIL);
	/* DNS_MAX_CNAME_CHAIN links are followed, one more is not */
	ask(*state, "c1.test", DNS_T_A, &g);
	assert_int_equal(g.status, DNS_OK);
	assert_v4(&g.addrs[0], "192.0.2.17");
	ask(*state, "c0.test", DNS_T_A, &g);
	assert_int_equal(g.status, DNS_NODATA);
}

static void
test_dns_record_limit(void **state)
{
	struct got g;
	ask(*state, "limit.test", DNS_T_A, &g); /* exactly DNS_MAX_RECORDS */
	assert_int_equal(g.status, DNS_OK);
	assert_int_equal(g.count, DNS_MAX_RECORDS);
	assert_false(g.truncated);
	assert_v4(&g.addrs[DNS_MAX_RECORDS - 1], "10.0.1.255");
	ask(*state, "many.test", DNS_T_A, &g); /* 600 */
	assert_int_equal(g.status, DNS_OK);
	assert_int_equal(g.count, DNS_MAX_RECORDS);
	assert_true(g.truncated);
}

static void
test_dns_bad_names(void **state)
{
	struct got g;
	char longlabel[80], longname[300];
	memset(longlabel, 'a', 64);
	strcpy(longlabel + 64, ".test");
	for (int i = 0; i < 300; i++)
		longname[i] = i % 2 ? '.' : 'a';
	longname[299] = '\0';

	ask(*state, "a..test", DNS_T_A, &g);
	assert_int_equal(g.status, DNS_BADNAME);
	ask(*state, "", DNS_T_A, &g);
	assert_int_equal(g.status, DNS_BADNAME);
	ask(*state, longlabel, DNS_T_A, &g);
	assert_int_equal(g.status, DNS_BADNAME);
	ask(*state, longname, DNS_T_A, &g);
	assert_int_equal(g.status, DNS_BADNAME);
	memset(longlabel, 'a', 63); /* 63 'a' + ".test" is fine (and absent) */
	strcpy(longlabel + 63, ".test");
	ask(*state, longlabel, DNS_T_A, &g);
	assert_int_equal(g.status, DNS_NXDOMAIN);
}

static void
test_dns_odd_names(void **state)
{
	struct got g;
	/* returned names: a space as \032, a dot inside a label escaped */
	ask(*state, "odd.test", DNS_T_MX, &g);
	assert_int_equal(g.status, DNS_OK);
	assert_string_equal(g.names[0], "we\\032ird.test");
	assert_string_equal(g.names[1], "dot\\.inside.test");
	/* asked names: anything printable goes, a backslash escapes */
	ask(*state, "sp ace.test", DNS_T_A, &g);
	assert_int_equal(g.status, DNS_OK);
	assert_v4(&g.addrs[0], "192.0.2.9");
	ask(*state, "back\\\\slash.test", DNS_T_A, &g);
	assert_int_equal(g.status, DNS_OK);
	assert_v4(&g.addrs[0], "192.0.2.10");
}

/* --- many, cancel, free --------------------------------------------------------- */

static void
test_dns_parallel_queries(void **state)
{
	struct fixture *f = *state;
	struct got g[8];
	const char *names[8] = { "a.test", "nodata.test", "nonexistent.test", "servfail.test",
				 "mx1.a.test", "sub.ent.test", "alias.test", "a.test" };
	enum dns_status want[8] = { DNS_OK, DNS_NODATA, DNS_NXDOMAIN, DNS_SERVFAIL,
				    DNS_OK, DNS_OK, DNS_OK, DNS_OK };
	for (int i = 0; i < 8; i++) {
		memset(&g[i], 0, sizeof(g[i]));
		dns_query(f->r, names[i], i == 1 ? DNS_T_AAAA : DNS_T_A, got_cb, &g[i]);
	}
	assert_int_equal(dns_pending(f->r), 8);
	for (int i = 0; i < 8; i++)
		run_until(f->base, &g[i].done);
	for (int i = 0; i < 8; i++) {
		assert_int_equal(g[i].calls, 1);
		assert_int_equal(g[i].status, want[i]);
	}
	assert_int_equal(dns_pending(f->r), 0);
}

static void
never_cb(const struct dns_result *res, void *arg)
{
	(void)res;
	(void)arg;
	fail_msg("callback of a cancelled query");
}

static void
test_dns_cancel_pending(void **state)
{
	struct fixture *f = *state;
	struct got g;
	memset(&g, 0, sizeof(g));

	/* slow.test answers after 250 ms: cancel while c-ares waits */
	int *owner = malloc(sizeof(int)); /* stands for a session's memory */
	struct dns_query *q = dns_query(f->r, "slow.test", DNS_T_A, never_cb, owner);
	assert_int_equal(dns_pending(f->r), 1);
	run_for(f->base, 50);
	dns_cancel(&q);
	assert_null(q);
	free(owner); /* a use after free would show under ASan */
	assert_int_equal(dns_pending(f->r), 0);
	dns_cancel(&q); /* NULL-safe */
	run_for(f->base, 300); /* the answer arrives and is dropped */

	/* a query whose answer is already in, not yet delivered */
	q = dns_query(f->r, "a..test", DNS_T_A, never_cb, NULL);
	dns_cancel(&q);
	run_for(f->base, 20);

	/* the resolver is fine */
	dns_query(f->r, "a.test", DNS_T_A, got_cb, &g);
	run_until(f->base, &g.done);
	assert_int_equal(g.status, DNS_OK);
}

struct sibling {
	struct dns_query *other;
	struct dns_query *self;
	int calls;
};

static void
cancel_sibling_cb(const struct dns_result *res, void *arg)
{
	struct sibling *s = arg;
	(void)res;
	s->calls++;
	dns_cancel(&s->other); /* the other query: answered or not, no callback */
	dns_cancel(&s->self);  /* our own, inside the callback: a no-op */
}

static void
test_dns_cancel_from_callback(void **state)
{
	struct fixture *f = *state;
	struct sibling s = { 0 };
	/* both are answered in the same loop round (local errors) */
	s.self = dns_query(f->r, "a..test", DNS_T_A, cancel_sibling_cb, &s);
	s.other = dns_query(f->r, "b..test", DNS_T_A, never_cb, NULL);
	run_for(f->base, 20);
	assert_int_equal(s.calls, 1);
	assert_null(s.other);
	assert_int_equal(dns_pending(f->r), 0);

	/* and with a real answer pending for the other */
	memset(&s, 0, sizeof(s));
	s.other = dns_query(f->r, "slow.test", DNS_T_A, never_cb, NULL);
	s.self = dns_query(f->r, "a.test", DNS_T_A, cancel_sibling_cb, &s);
	run_for(f->base, 300);
	assert_int_equal(s.calls, 1);
	assert_int_equal(dns_pending(f->r), 0);
}

static void
test_dns_free_with_pending(void **state)
{
	struct fixture *f = *state;
	dns_query(f->r, "slow.test", DNS_T_A, never_cb, NULL);
	dns_query(f->r, "timeout.test", DNS_T_A, never_cb, NULL);
	run_for(f->base, 10); /* both sent */
	dns_query(f->r, "a..test", DNS_T_A, never_cb, NULL); /* on the done list */
	dns_resolver_free(&f->r); /* no callbacks, no leaks (LSan) */
	assert_null(f->r);
	run_for(f->base, 20);
	f->r = resolver(f->base, 2000, 1);
}

static void
test_dns_bad_config(void **state)
{
	struct fixture *f = *state;
	struct dns_config cfg = { .servers = "not an address:x", .timeout_ms = 100, .tries = 1 };
	const char *why = NULL;
	assert_null(dns_resolver_new(f->base, &cfg, &why));
	assert_non_null(why);
	/* the system configuration (no query: CI has no network) */
	struct dns_resolver *sys = dns_resolver_new(f->base, NULL, &why);
	assert_non_null(sys);
	dns_resolver_free(&sys);
	/* nothing listens on port 9 (discard): refused or a timeout */
	cfg.servers = "127.0.0.1:9";
	struct dns_resolver *r = dns_resolver_new(f->base, &cfg, NULL);
	assert_non_null(r);
	struct got g = { 0 };
	dns_query(r, "a.test", DNS_T_A, got_cb, &g);
	run_until(f->base, &g.done);
	assert_true(g.status == DNS_SERVFAIL || g.status == DNS_TIMEOUT);
	dns_resolver_free(&r);
}

/* --- cache and joined queries --------------------------------------------------- */

static struct dns_resolver *
cached_resolver(struct event_base *base, unsigned size, unsigned max_ttl)
{
	struct dns_config cfg = {
		.servers = server_addr, .timeout_ms = 2000, .tries = 1, .cache_size = size, .cache_max_ttl = max_ttl
	};
	struct dns_resolver *r = dns_resolver_new(base, &cfg, NULL);
	assert_non_null(r);
	return r;
}

/* Queries the test server received for `name` (any type), asked through
 * an uncached resolver of its own. */
static int
server_count(struct event_base *base, const char *name)
{
	struct dns_resolver *r = resolver(base, 2000, 1);
	char q[300];
	struct got g = { 0 };
	snprintf(q, sizeof(q), "%s._count", name);
	dns_query(r, q, DNS_T_TXT, got_cb, &g);
	run_until(base, &g.done);
	assert_int_equal(g.status, DNS_OK);
	assert_int_equal(g.count, 1);
	int n = atoi(g.txt[0]);
	got_free(&g);
	dns_resolver_free(&r);
	return n;
}

static void
ask_on(struct event_base *base, struct dns_resolver *r, const char *name, enum dns_type t, struct got *g)
{
	memset(g, 0, sizeof(*g));
	dns_query(r, name, t, got_cb, g);
	assert_false(g->done); /* never inside dns_query, not even a cache hit */
	run_until(base, &g->done);
	assert_int_equal(g->calls, 1);
}

static void
test_dns_cache_hit(void **state)
{
	struct fixture *f = *state;
	struct dns_resolver *r = cached_resolver(f->base, 100, 0);
	struct got g;
	struct dns_stats st;

	ask_on(f->base, r, "cached.test", DNS_T_A, &g);
	assert_int_equal(g.status, DNS_OK);
	assert_v4(&g.addrs[0], "192.0.2.30");
	assert_int_equal(server_count(f->base, "cached.test"), 1);
	/* again, in another case and with the trailing dot: the cache */
	ask_on(f->base, r, "cached.test", DNS_T_A, &g);
	assert_int_equal(g.status, DNS_OK);
	assert_int_equal(g.count, 1);
	assert_v4(&g.addrs[0], "192.0.2.30");
	ask_on(f->base, r, "CACHED.Test.", DNS_T_A, &g);
	assert_int_equal(g.status, DNS_OK);
	assert_int_equal(server_count(f->base, "cached.test"), 1);
	/* another type of the same name is another entry */
	ask_on(f->base, r, "cached.test", DNS_T_MX, &g);
	assert_int_equal(g.status, DNS_OK);
	assert_string_equal(g.names[0], "mx1.a.test");
	ask_on(f->base, r, "cached.test", DNS_T_MX, &g);
	assert_string_equal(g.names[0], "mx1.a.test");
	assert_int_equal(server_count(f->base, "cached.test"), 2);
	dns_get_stats(r, &st);
	assert_int_equal(st.asked, 5);
	assert_int_equal(st.cache_hits, 3);
	assert_int_equal(st.sent, 2);
	assert_int_equal(st.cache_entries, 2);
	/* a resolver without a cache asks every time */
	ask(f, "cached.test", DNS_T_A, &g);
	ask(f, "cached.test", DNS_T_A, &g);
	assert_int_equal(server_count(f->base, "cached.test"), 4);
	dns_resolver_free(&r);
}

struct ttl_got {
	bool done;
	uint32_t ttl;
};

static void
ttl_cb(const struct dns_result *res, void *arg)
{
	struct ttl_got *t = arg;
	t->done = true;
	t->ttl = res->ttl;
}

static void
test_dns_cache_ttl_expiry(void **state)
{
	struct fixture *f = *state;
	struct dns_resolver *r = cached_resolver(f->base, 100, 0);
	struct got g;

	/* TTL 1: kept for a second, then asked again */
	ask_on(f->base, r, "short.test", DNS_T_A, &g);
	ask_on(f->base, r, "short.test", DNS_T_A, &g);
	assert_int_equal(g.status, DNS_OK);
	assert_int_equal(server_count(f->base, "short.test"), 1);
	run_for(f->base, 1100);
	ask_on(f->base, r, "short.test", DNS_T_A, &g);
	assert_int_equal(g.status, DNS_OK);
	assert_int_equal(server_count(f->base, "short.test"), 2);
	/* TTL 0: never kept */
	ask_on(f->base, r, "zero.test", DNS_T_A, &g);
	ask_on(f->base, r, "zero.test", DNS_T_A, &g);
	assert_int_equal(g.status, DNS_OK);
	assert_int_equal(server_count(f->base, "zero.test"), 2);
	/* a hit reports the seconds left, never more than the record said */
	struct ttl_got t = { 0 };
	dns_query(r, "cached.test", DNS_T_AAAA, ttl_cb, &t); /* NODATA: not the point */
	run_until(f->base, &t.done);
	ask_on(f->base, r, "a.test", DNS_T_A, &g);
	memset(&t, 0, sizeof(t));
	dns_query(r, "a.test", DNS_T_A, ttl_cb, &t);
	run_until(f->base, &t.done);
	assert_true(t.ttl >= 59 && t.ttl <= 60);
	dns_resolver_free(&r);

	/* cache_max_ttl caps the record's 60 s */
	r = cached_resolver(f->base, 100, 1);
	int before = server_count(f->base, "mx1.a.test");
	ask_on(f->base, r, "mx1.a.test", DNS_T_A, &g);
	ask_on(f->base, r, "mx1.a.test", DNS_T_A, &g);
	assert_int_equal(server_count(f->base, "mx1.a.test"), before + 1);
	run_for(f->base, 1100);
	ask_on(f->base, r, "mx1.a.test", DNS_T_A, &g);
	assert_int_equal(server_count(f->base, "mx1.a.test"), before + 2);
	dns_resolver_free(&r);
}

static void
test_dns_cache_negative_soa(void **state)
{
	struct fixture *f = *state;
	struct dns_resolver *r = cached_resolver(f->base, 100, 0);
	struct got g;

	/* neg.test's SOA: TTL 300, MINIMUM 1: NXDOMAIN and NODATA kept 1 s */
	ask_on(f->base, r, "gone.neg.test", DNS_T_A, &g);
	assert_int_equal(g.status, DNS_NXDOMAIN);
	ask_on(f->base, r, "neg.test", DNS_T_AAAA, &g);
	assert_int_equal(g.status, DNS_NODATA);
	ask_on(f->base, r, "gone.neg.test", DNS_T_A, &g);
	assert_int_equal(g.status, DNS_NXDOMAIN);
	ask_on(f->base, r, "neg.test", DNS_T_AAAA, &g);
	assert_int_equal(g.status, DNS_NODATA);
	assert_int_equal(server_count(f->base, "gone.neg.test"), 1);
	assert_int_equal(server_count(f->base, "neg.test"), 1);
	/* no SOA in the answer: DNS_NEG_TTL_DEFAULT (30 s) */
	ask_on(f->base, r, "nosoa.test", DNS_T_A, &g);
	assert_int_equal(g.status, DNS_NXDOMAIN);
	run_for(f->base, 1100);
	ask_on(f->base, r, "gone.neg.test", DNS_T_A, &g);
	assert_int_equal(g.status, DNS_NXDOMAIN);
	ask_on(f->base, r, "neg.test", DNS_T_AAAA, &g);
	assert_int_equal(g.status, DNS_NODATA);
	ask_on(f->base, r, "nosoa.test", DNS_T_A, &g);
	assert_int_equal(g.status, DNS_NXDOMAIN);
	assert_int_equal(server_count(f->base, "gone.neg.test"), 2);
	assert_int_equal(server_count(f->base, "neg.test"), 2);
	assert_int_equal(server_count(f->base, "nosoa.test"), 1);
	/* the name exists: its A record is an answer of its own */
	ask_on(f->base, r, "neg.test", DNS_T_A, &g);
	assert_int_equal(g.status, DNS_OK);
	dns_resolver_free(&r);

	/* an SOA of a day is capped (here by cache_max_ttl 1) */
	r = cached_resolver(f->base, 100, 1);
	ask_on(f->base, r, "x.negcap.test", DNS_T_A, &g);
	ask_on(f->base, r, "x.negcap.test", DNS_T_A, &g);
	assert_int_equal(g.status, DNS_NXDOMAIN);
	assert_int_equal(server_count(f->base, "x.negcap.test"), 1);
	run_for(f->base, 1100);
	ask_on(f->base, r, "x.negcap.test", DNS_T_A, &g);
	assert_int_equal(server_count(f->base, "x.negcap.test"), 2);
	dns_resolver_free(&r);
}

static void
test_dns_cache_failures(void **state)
{
	struct fixture *f = *state;
	struct dns_resolver *r = cached_resolver(f->base, 100, 0);
	struct got g;

	/* SERVFAIL is kept DNS_FAIL_TTL (2 s): a burst asks once */
	ask_on(f->base, r, "failing.test", DNS_T_TXT, &g);
	assert_int_equal(g.status, DNS_SERVFAIL);
	int first = server_count(f->base, "failing.test");
	assert_true(first >= 1);
	ask_on(f->base, r, "failing.test", DNS_T_TXT, &g);
	assert_int_equal(g.status, DNS_SERVFAIL);
	assert_int_equal(server_count(f->base, "failing.test"), first);
	run_for(f->base, DNS_FAIL_TTL * 1000 + 100);
	ask_on(f->base, r, "failing.test", DNS_T_TXT, &g);
	assert_int_equal(g.status, DNS_SERVFAIL);
	assert_int_equal(server_count(f->base, "failing.test"), 2 * first);
	/* bad names are no answer: never cached, never sent */
	ask_on(f->base, r, "a..test", DNS_T_A, &g);
	assert_int_equal(g.status, DNS_BADNAME);
	struct dns_stats st;
	dns_get_stats(r, &st);
	assert_int_equal(st.cache_entries, 1);
	dns_resolver_free(&r);
}

static void
test_dns_cache_lru_bound(void **state)
{
	struct fixture *f = *state;
	struct dns_resolver *r = cached_resolver(f->base, 3, 0);
	struct got g;
	struct dns_stats st;
	const char *n[4] = { "lru1.test", "lru2.test", "lru3.test", "lru4.test" };

	for (int i = 0; i < 3; i++)
		ask_on(f->base, r, n[i], DNS_T_A, &g);
	ask_on(f->base, r, n[0], DNS_T_A, &g); /* lru1 is now the most recent */
	ask_on(f->base, r, n[3], DNS_T_A, &g); /* evicts lru2, the least recent */
	dns_get_stats(r, &st);
	assert_int_equal(st.cache_entries, 3);
	assert_int_equal(st.cache_evictions, 1);
	ask_on(f->base, r, n[0], DNS_T_A, &g);
	ask_on(f->base, r, n[2], DNS_T_A, &g);
	ask_on(f->base, r, n[3], DNS_T_A, &g);
	assert_int_equal(server_count(f->base, n[0]), 1);
	assert_int_equal(server_count(f->base, n[2]), 1);
	assert_int_equal(server_count(f->base, n[3]), 1);
	ask_on(f->base, r, n[1], DNS_T_A, &g); /* gone: asked again */
	assert_int_equal(g.status, DNS_NXDOMAIN);
	assert_int_equal(server_count(f->base, n[1]), 2);
	dns_get_stats(r, &st);
	assert_int_equal(st.cache_entries, 3);
	assert_int_equal(st.cache_evictions, 2);
	dns_resolver_free(&r);
}

/* The table alone, on a clock of our own: expiry to the millisecond,
 * both bounds, replacement, TTL 0. */
static void
test_dns_cache_table(void **state)
{
	(void)state;
	struct dns_cache *c = dns_cache_new(4, 0);
	struct dns_cache_hit hit;
	const unsigned char pkt[] = { 1, 2, 3, 4, 5 };

	dns_cache_put(c, "a.test", DNS_T_A, DNS_OK, pkt, sizeof(pkt), 10, 1000);
	assert_true(dns_cache_get(c, "a.test", DNS_T_A, 10999, &hit));
	assert_int_equal(hit.status, DNS_OK);
	assert_int_equal(hit.len, sizeof(pkt));
	assert_memory_equal(hit.pkt, pkt, sizeof(pkt));
	assert_int_equal(hit.ttl_left, 1);
	assert_false(dns_cache_get(c, "a.test", DNS_T_MX, 2000, &hit));
	assert_false(dns_cache_get(c, "a.test", DNS_T_A, 11000, &hit)); /* expired, dropped */
	assert_int_equal(dns_cache_count(c), 0);
	assert_int_equal(dns_cache_bytes(c), 0);

	/* replacement keeps one entry; TTL 0 removes it */
	dns_cache_put(c, "b.test", DNS_T_TXT, DNS_NXDOMAIN, NULL, 0, 5, 0);
	dns_cache_put(c, "b.test", DNS_T_TXT, DNS_NODATA, NULL, 0, 5, 0);
	assert_int_equal(dns_cache_count(c), 1);
	assert_true(dns_cache_get(c, "b.test", DNS_T_TXT, 1, &hit));
	assert_int_equal(hit.status, DNS_NODATA);
	assert_null(hit.pkt);
	dns_cache_put(c, "b.test", DNS_T_TXT, DNS_OK, pkt, sizeof(pkt), 0, 0);
	assert_int_equal(dns_cache_count(c), 0);

	/* an answer over DNS_CACHE_MAX_PACKET is not kept */
	unsigned char *big = calloc(1, DNS_CACHE_MAX_PACKET + 1);
	dns_cache_put(c, "big.test", DNS_T_TXT, DNS_OK, big, DNS_CACHE_MAX_PACKET + 1, 60, 0);
	assert_int_equal(dns_cache_count(c), 0);
	dns_cache_put(c, "big.test", DNS_T_TXT, DNS_OK, big, DNS_CACHE_MAX_PACKET, 60, 0);
	assert_int_equal(dns_cache_count(c), 1);
	free(big);

	/* entry bound: the least recently used goes */
	char name[32];
	for (int i = 0; i < 10; i++) {
		snprintf(name, sizeof(name), "n%d.test", i);
		dns_cache_put(c, name, DNS_T_A, DNS_OK, pkt, sizeof(pkt), 60, 0);
	}
	assert_int_equal(dns_cache_count(c), 4);
	assert_int_equal(dns_cache_evictions(c), 7);
	assert_false(dns_cache_get(c, "n5.test", DNS_T_A, 0, &hit));
	assert_true(dns_cache_get(c, "n6.test", DNS_T_A, 0, &hit));
	dns_cache_free(&c);
	assert_null(c);

	/* byte bound: room for about three entries of 1000 bytes */
	unsigned char kb[1000] = { 0 };
	c = dns_cache_new(100, 3500);
	for (int i = 0; i < 10; i++) {
		snprintf(name, sizeof(name), "k%d.test", i);
		dns_cache_put(c, name, DNS_T_TXT, DNS_OK, kb, sizeof(kb), 60, 0);
		assert_true(dns_cache_bytes(c) <= 3500);
	}
	assert_true(dns_cache_count(c) >= 2 && dns_cache_count(c) <= 3);
	assert_true(dns_cache_get(c, "k9.test", DNS_T_TXT, 0, &hit));
	assert_false(dns_cache_get(c, "k0.test", DNS_T_TXT, 0, &hit));
	dns_cache_free(&c);
}

static void
test_dns_join_identical(void **state)
{
	struct fixture *f = *state; /* no cache: joining works without one */
	struct got g[3];
	struct dns_stats st;
	memset(g, 0, sizeof(g));

	/* joined.test answers after 300 ms: three askers, one query */
	dns_query(f->r, "joined.test", DNS_T_A, got_cb, &g[0]);
	dns_query(f->r, "JOINED.test.", DNS_T_A, got_cb, &g[1]);
	dns_query(f->r, "joined.test", DNS_T_A, got_cb, &g[2]);
	assert_int_equal(dns_pending(f->r), 3);
	for (int i = 0; i < 3; i++)
		run_until(f->base, &g[i].done);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(g[i].calls, 1);
		assert_int_equal(g[i].status, DNS_OK);
		assert_v4(&g[i].addrs[0], "192.0.2.34");
	}
	assert_int_equal(server_count(f->base, "joined.test"), 1);
	dns_get_stats(f->r, &st);
	assert_int_equal(st.sent, 1);
	assert_int_equal(st.joined, 2);
	assert_int_equal(dns_pending(f->r), 0);
	/* once answered, the flight is over: a new query goes out */
	struct got h;
	ask(f, "joined.test", DNS_T_A, &h);
	assert_int_equal(server_count(f->base, "joined.test"), 2);
	/* another type is another query */
	memset(g, 0, sizeof(g));
	dns_query(f->r, "joined.test", DNS_T_A, got_cb, &g[0]);
	dns_query(f->r, "joined.test", DNS_T_AAAA, got_cb, &g[1]);
	run_until(f->base, &g[0].done);
	run_until(f->base, &g[1].done);
	assert_int_equal(g[1].status, DNS_NODATA);
	assert_int_equal(server_count(f->base, "joined.test"), 4);
}

static void
test_dns_join_cancel_one(void **state)
{
	struct fixture *f = *state;
	struct dns_resolver *r = cached_resolver(f->base, 100, 0);
	struct got g;
	memset(&g, 0, sizeof(g));

	/* cancel the asker that started the flight: the other still gets it */
	int *owner = malloc(sizeof(int));
	struct dns_query *q1 = dns_query(r, "joined2.test", DNS_T_A, never_cb, owner);
	struct dns_query *q2 = dns_query(r, "joined2.test", DNS_T_A, got_cb, &g);
	run_for(f->base, 50);
	dns_cancel(&q1);
	free(owner);
	assert_int_equal(dns_pending(r), 1);
	run_until(f->base, &g.done);
	assert_int_equal(g.calls, 1);
	assert_int_equal(g.status, DNS_OK);
	assert_v4(&g.addrs[0], "192.0.2.35");
	(void)q2;
	assert_int_equal(dns_pending(r), 0);

	/* cancel the one that joined: the first still gets it */
	memset(&g, 0, sizeof(g));
	struct dns_query *q3 = dns_query(r, "joined.test", DNS_T_MX, got_cb, &g);
	struct dns_query *q4 = dns_query(r, "joined.test", DNS_T_MX, never_cb, NULL);
	dns_cancel(&q4);
	run_until(f->base, &g.done);
	assert_int_equal(g.calls, 1);
	assert_int_equal(g.status, DNS_NODATA);
	(void)q3;

	/* every asker cancelled: the answer still lands in the cache */
	int before = server_count(f->base, "joined2.test");
	q1 = dns_query(r, "joined2.test", DNS_T_TXT, never_cb, NULL);
	q2 = dns_query(r, "joined2.test", DNS_T_TXT, never_cb, NULL);
	dns_cancel(&q2);
	dns_cancel(&q1);
	assert_int_equal(dns_pending(r), 0);
	run_for(f->base, 400);
	ask_on(f->base, r, "joined2.test", DNS_T_TXT, &g);
	assert_int_equal(g.status, DNS_NODATA);
	assert_int_equal(server_count(f->base, "joined2.test"), before + 1);

	/* freeing the resolver with a joined flight pending: no callback, no leak */
	dns_query(r, "joined.test", DNS_T_TXT, never_cb, NULL);
	q1 = dns_query(r, "joined.test", DNS_T_TXT, never_cb, NULL);
	dns_cancel(&q1);
	run_for(f->base, 20);
	dns_resolver_free(&r);
	run_for(f->base, 350);
}

/* --- the parser on hand-made packets ---------------------------------------------- */

static void
parse_cb(const struct dns_result *res, void *arg)
{
	got_cb(res, arg);
}

/* header id 0x1234, QR, rcode 0, qd 1, an `an` */
static size_t
pkt_start(unsigned char *p, int an)
{
	static const unsigned char hdr[] = { 0x12, 0x34, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0 };
	memcpy(p, hdr, 12);
	p[7] = (unsigned char)an;
	static const unsigned char q[] = { 1, 'x', 4, 't', 'e', 's', 't', 0, 0, 1, 0, 1 };
	memcpy(p + 12, q, sizeof(q));
	return 12 + sizeof(q);
}

static enum dns_status
parse(const unsigned char *p, size_t n, enum dns_type t, struct got *g)
{
	memset(g, 0, sizeof(*g));
	dns_parse_answer(p, n, t, "x.test", parse_cb, g);
	assert_int_equal(g->calls, 1);
	return g->status;
}

static void
test_dns_parse_hostile(void **state)
{
	(void)state;
	unsigned char p[600];
	struct got g;
	size_t n;

	/* a good A record, owner by compression pointer to the question */
	n = pkt_start(p, 1);
	static const unsigned char a_rr[] = { 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 7 };
	memcpy(p + n, a_rr, sizeof(a_rr));
	assert_int_equal(parse(p, n + sizeof(a_rr), DNS_T_A, &g), DNS_OK);
	assert_v4(&g.addrs[0], "192.0.2.7");
	/* every shorter packet is rejected, never read past */
	for (size_t k = 0; k < n + sizeof(a_rr); k++)
		assert_int_equal(parse(p, k, DNS_T_A, &g), DNS_SERVFAIL);
	/* rdata length 3 for an A record */
	p[n + 11] = 3;
	assert_int_equal(parse(p, n + sizeof(a_rr) - 1, DNS_T_A, &g), DNS_SERVFAIL);
	p[n + 11] = 4;
	/* a record of another owner is not ours */
	p[n + 1] = 14; /* points at "test" */
	assert_int_equal(parse(p, n + sizeof(a_rr), DNS_T_A, &g), DNS_NODATA);

	/* compression loop in the owner name */
	n = pkt_start(p, 1);
	static const unsigned char loop_rr[] = { 0xc0, 24, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 1, 2, 3, 4 };
	memcpy(p + n, loop_rr, sizeof(loop_rr)); /* offset 24 points at itself */
	assert_int_equal(n, 24);
	assert_int_equal(parse(p, n + sizeof(loop_rr), DNS_T_A, &g), DNS_SERVFAIL);

	/* pointer past the end */
	p[n + 1] = 250;
	assert_int_equal(parse(p, n + sizeof(loop_rr), DNS_T_A, &g), DNS_SERVFAIL);

	/* TXT whose string runs past its rdata */
	n = pkt_start(p, 1);
	static const unsigned char txt_rr[] = { 0xc0, 12, 0, 16, 0, 1, 0, 0, 0, 60, 0, 4, 5, 'a', 'b', 'c' };
	memcpy(p + n, txt_rr, sizeof(txt_rr));
	assert_int_equal(parse(p, n + sizeof(txt_rr), DNS_T_TXT, &g), DNS_SERVFAIL);
	p[n + 12] = 3;
	assert_int_equal(parse(p, n + sizeof(txt_rr), DNS_T_TXT, &g), DNS_OK);
	assert_string_equal(g.txt[0], "abc");
	got_free(&g);

	/* MX whose name ends before its rdata does */
	n = pkt_start(p, 1);
	static const unsigned char mx_rr[] = { 0xc0, 12, 0, 15, 0, 1, 0, 0, 0, 60, 0, 6, 0, 10, 0xc0, 12, 0, 0 };
	memcpy(p + n, mx_rr, sizeof(mx_rr));
	assert_int_equal(parse(p, n + sizeof(mx_rr), DNS_T_MX, &g), DNS_SERVFAIL);
	p[n + 11] = 4;
	assert_int_equal(parse(p, n + sizeof(mx_rr) - 2, DNS_T_MX, &g), DNS_OK);
	assert_string_equal(g.names[0], "x.test");

	/* a question name longer than 255 bytes */
	n = 12;
	memcpy(p, "\x12\x34\x81\x80\0\1\0\0\0\0\0\0", 12);
	for (int i = 0; i < 5; i++) { /* 5 x 60-byte labels, then a pointer back */
		p[n++] = 60;
		memset(p + n, 'a', 60);
		n += 60;
	}
	p[n++] = 0;
	p[n++] = 0;
	p[n++] = 1;
	p[n++] = 0;
	p[n++] = 1;
	assert_int_equal(parse(p, n, DNS_T_A, &g), DNS_SERVFAIL);
}

static uint32_t
xorshift(uint32_t *st)
{
	uint32_t x = *st;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *st = x;
}

/* Mutations of good answers of every type: the parser may refuse them,
 * never read outside them (ASan and valgrind watch). Fixed seed. */
static void
test_dns_parse_mutations(void **state)
{
	(void)state;
	unsigned char base[200], p[200];
	struct got g;
	uint32_t seed = 0x5eed1234;
	static const unsigned char rrs[][24] = {
		{ 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 7 },
		{ 0xc0, 12, 0, 16, 0, 1, 0, 0, 0, 60, 0, 6, 2, 'a', 'b', 2, 'c', 'd' },
		{ 0xc0, 12, 0, 15, 0, 1, 0, 0, 0, 60, 0, 4, 0, 10, 0xc0, 12 },
		{ 0xc0, 12, 0, 12, 0, 1, 0, 0, 0, 60, 0, 4, 1, 'y', 0xc0, 14 },
		{ 0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 2, 0xc0, 14 },
	};
	static const enum dns_type types[] = { DNS_T_A, DNS_T_TXT, DNS_T_MX, DNS_T_PTR, DNS_T_AAAA };
	for (int round = 0; round < 20000; round++) {
		size_t n = pkt_start(base, 2);
		size_t k = xorshift(&seed) % 5, k2 = xorshift(&seed) % 5;
		memcpy(base + n, rrs[k], 24);
		n += 12 + base[n + 11];
		memcpy(base + n, rrs[k2], 24);
		n += 12 + base[n + 11];
		memcpy(p, base, n);
		int flips = 1 + (int)(xorshift(&seed) % 4);
		for (int f = 0; f < flips; f++)
			p[xorshift(&seed) % n] = (unsigned char)xorshift(&seed);
		size_t len = xorshift(&seed) % 8 == 0 ? xorshift(&seed) % n : n;
		for (size_t t = 0; t < 5; t++) {
			memset(&g, 0, sizeof(g));
			dns_parse_answer(p, len, types[t], "x.test", parse_cb, &g);
			assert_int_equal(g.calls, 1);
			got_free(&g);
		}
	}
}

int
main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	const char *files[] = { ZONE, NULL };
	if (spfdns_start(&server, files) != 0) {
		fprintf(stderr, "test_dns: cannot start the test DNS server: %s\n", server.error);
		return 1;
	}
	spfdns_server(spfdns_scenario(&server, "dns-unit.yml", 0), server_addr, sizeof(server_addr));

	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_dns_a_records, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dns_aaaa_record, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dns_mx_records, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dns_txt_multistring_joined, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dns_txt_binary_and_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dns_txt_over_tcp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dns_ptr_records, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dns_nxdomain_vs_nodata, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dns_servfail_and_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dns_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dns_lost_packet_default_timeouts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dns_cname_chain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dns_record_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dns_bad_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dns_odd_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dns_parallel_queries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dns_cancel_pending, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dns_cancel_from_callback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dns_free_with_pending, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dns_bad_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dns_cache_hit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dns_cache_ttl_expiry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dns_cache_negative_soa, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dns_cache_failures, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dns_cache_lru_bound, setup, teardown),
		cmocka_unit_test(test_dns_cache_table),
		cmocka_unit_test_setup_teardown(test_dns_join_identical, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dns_join_cancel_one, setup, teardown),
		cmocka_unit_test(test_dns_parse_hostile),
		cmocka_unit_test(test_dns_parse_mutations),
	};
	int rc = cmocka_run_group_tests_name("dns", tests, NULL, NULL);
	spfdns_stop(&server);
	return rc;
}
