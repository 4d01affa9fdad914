/*
 * test_spf.c - tests of servers/spf/: the whole RFC 7208 test suite
 * (../shared/testdata/spf/rfc7208-tests.yml, every scenario and case) and
 * our own scenarios (tests/spf/spf-extra.yml) run through spf_check()
 * against a real DNS server on 127.0.0.1 (tests/spf/spfdns.py, which
 * serves each scenario's zonedata on its own port); then unit tests of
 * macro expansion, domain truncation, CIDR matching, record syntax, the
 * lookup limits, cancellation while lookups are pending, the deadline,
 * bad identities and the header texts; and that a resolver with a cache
 * sends the queries of one sender domain once for two checks.
 *
 * Each scenario is one cmocka test; its cases run concurrently on one
 * event loop and resolver, and a failing case prints what it got. At the
 * end the totals per file are printed ("rfc7208-tests.yml: N of M cases
 * passed"). A case passes when the result is one of the expected ones
 * and, when the case gives an explanation and the result is fail, the
 * explanation is exactly that (the suite's driver convention: the default
 * explanation is "DEFAULT").
 *
 * Run from the repository root. Needs /usr/bin/python3 with
 * python3-dnslib and python3-yaml (scripts/install-deps.sh test).
 */
#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include <cmocka.h>

#include "dns/dns.h"
#include "spf/spf.h"
#include "spf/spf_int.h" /* spf_printable */
#include "../spf/spfdns.h"

#define RFC_FILE "rfc7208-tests.yml"
#define EXTRA_FILE "tests/spf/spf-extra.yml"
#define DNS_TIMEOUT_MS 400 /* one try: TIMEOUT cases cost this much */
#define FIXED_TIME 1700000000
#define WALL_MS 15000

static struct spfdns server;
static bool verbose; /* HK_SPF_VERBOSE=1: print every case */

struct totals {
	const char *file;
	int cases, passed;
};
static struct totals totals[2] = { { RFC_FILE, 0, 0 }, { "spf-extra.yml", 0, 0 } };

/* --- loop helpers -------------------------------------------------------------- */

static void
flag_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	*(bool *)arg = true;
}

static void
run_until_count(struct event_base *base, const int *count, int want)
{
	bool wall = false;
	struct timeval tv = { WALL_MS / 1000, 0 };
	struct event *w = evtimer_new(base, flag_cb, &wall);
	evtimer_add(w, &tv);
	while (*count < want && !wall)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(w);
	assert_false(wall);
}

static void
run_for(struct event_base *base, int ms)
{
	bool wall = false;
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	struct event *w = evtimer_new(base, flag_cb, &wall);
	evtimer_add(w, &tv);
	while (!wall)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(w);
}

static bool
parse_host(const char *host, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *in = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		return true;
	}
	return false;
}

struct env {
	struct event_base *base;
	struct dns_resolver *dns;
	struct spf_ctx *spf;
};

static void
env_open(struct env *e, const char *file, int index, int spf_timeout_ms)
{
	char addr[64];
	json_t *sc = spfdns_scenario(&server, file, index);
	assert_non_null(sc);
	spfdns_server(sc, addr, sizeof(addr));
	e->base = event_base_new();
	struct dns_config dc = { .servers = addr, .timeout_ms = DNS_TIMEOUT_MS, .tries = 1 };
	e->dns = dns_resolver_new(e->base, &dc, NULL);
	assert_non_null(e->dns);
	struct spf_config sc_cfg = { "receiver.test", "DEFAULT", spf_timeout_ms, FIXED_TIME };
	e->spf = spf_ctx_new(e->dns, &sc_cfg);
}

static void
env_close(struct env *e)
{
	spf_ctx_free(&e->spf);
	dns_resolver_free(&e->dns);
	event_base_free(e->base);
}

/* --- the suites -------------------------------------------------------------------- */

struct scenario_arg {
	const char *file; /* manifest name */
	int index;
	struct totals *tot;
};

struct case_run {
	const json_t *t;
	int *done;
	bool finished;
	struct spf_result res;
};

static void
case_cb(const struct spf_result *res, void *arg)
{
	struct case_run *cr = arg;
	cr->res = *res;
	cr->finished = true;
	(*cr->done)++;
}

static const char *
jstr(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

static void
test_scenario(void **state)
{
	struct scenario_arg *sa = *state;
	json_t *sc = spfdns_scenario(&server, sa->file, sa->index);
	assert_non_null(sc);
	json_t *tests = json_object_get(sc, "tests");
	size_t n = json_array_size(tests);
	struct case_run *runs = calloc(n ? n : 1, sizeof(*runs));
	struct env e;
	int done = 0, passed = 0;

	env_open(&e, sa->file, sa->index, 0);
	for (size_t i = 0; i < n; i++) {
		const json_t *t = json_array_get(tests, i);
		struct sockaddr_storage ss;
		runs[i].t = t;
		runs[i].done = &done;
		if (!parse_host(jstr(t, "host"), &ss))
			fail_msg("%s: bad host %s", jstr(t, "name"), jstr(t, "host"));
		spf_check(e.spf, (struct sockaddr *)&ss, jstr(t, "helo"), jstr(t, "mailfrom"), case_cb, &runs[i]);
	}
	run_until_count(e.base, &done, (int)n);

	for (size_t i = 0; i < n; i++) {
		const json_t *t = runs[i].t;
		const struct spf_result *r = &runs[i].res;
		const char *got = spf_result_str(r->result);
		bool ok = false;
		size_t k;
		json_t *want;
		char wants[128] = "";
		json_array_foreach(json_object_get(t, "result"), k, want)
		{
			ok |= strcmp(json_string_value(want), got) == 0;
			snprintf(wants + strlen(wants), sizeof(wants) - strlen(wants), "%s%s", k ? "|" : "",
				 json_string_value(want));
		}
		const char *exp = json_string_value(json_object_get(t, "explanation"));
		bool exp_ok = !exp || r->result != SPF_FAIL || strcmp(exp, r->explanation) == 0;
		if (verbose)
			printf("    %-28s %-9s want %-17s %s%s%s\n", jstr(t, "name"), got, wants,
			       r->result == SPF_FAIL ? "exp \"" : r->problem[0] ? "problem \"" : "",
			       r->result == SPF_FAIL ? r->explanation : r->problem,
			       r->result == SPF_FAIL || r->problem[0] ? "\"" : "");
		if (ok && exp_ok) {
			passed++;
			continue;
		}
		printf("  FAIL %s/%s: got %s, want %s", jstr(sc, "description"), jstr(t, "name"), got, wants);
		if (!exp_ok)
			printf("; explanation \"%s\", want \"%s\"", r->explanation, exp);
		printf("\n       mechanism \"%s\" problem \"%s\" (host %s helo %s mailfrom %s; %u terms, %u void)\n",
		       r->mechanism, r->problem, jstr(t, "host"), jstr(t, "helo"), jstr(t, "mailfrom"), r->dns_terms,
		       r->void_lookups);
	}
	printf("  %s: %s: %d of %zu cases passed\n", sa->tot->file, jstr(sc, "description"), passed, n);
	sa->tot->cases += (int)n;
	sa->tot->passed += passed;
	assert_int_equal(spf_running(e.spf), 0);
	assert_int_equal(dns_pending(e.dns), 0);
	env_close(&e);
	free(runs);
	assert_int_equal(passed, (int)n);
}

/* --- macros, names, CIDR ------------------------------------------------------------ */

static void
expand_ok(const struct spf_macro_env *env, const char *in, bool exp, const char *want)
{
	struct hk_buf b;
	buf_init(&b);
	if (!spf_macro_check(in, strlen(in), exp, NULL))
		fail_msg("macro-string rejected: %s", in);
	if (!spf_macro_expand(env, in, strlen(in), exp, &b))
		fail_msg("expansion failed: %s", in);
	if (strcmp(b.data ? b.data : "", want) != 0)
		fail_msg("%s -> \"%s\", want \"%s\"", in, b.data ? b.data : "", want);
	buf_fini(&b);
}

static void
rfc_env(struct spf_macro_env *env, bool v6)
{
	memset(env, 0, sizeof(*env));
	env->sender = "strong-bad@email.example.com";
	env->local = "strong-bad";
	env->sender_domain = "email.example.com";
	env->domain = "email.example.com";
	env->helo = "mx.example.org";
	env->receiver = "receiver.test";
	env->now = FIXED_TIME;
	if (v6) {
		env->family = AF_INET6;
		inet_pton(AF_INET6, "2001:db8::cb01", env->addr);
	} else {
		env->family = AF_INET;
		inet_pton(AF_INET, "192.0.2.3", env->addr);
	}
}

static void
test_spf_macro_rfc_examples(void **state)
{
	(void)state;
	struct spf_macro_env env;
	rfc_env(&env, false);
	/* RFC 7208 7.4 */
	expand_ok(&env, "%{s}", false, "strong-bad@email.example.com");
	expand_ok(&env, "%{o}", false, "email.example.com");
	expand_ok(&env, "%{d}", false, "email.example.com");
	expand_ok(&env, "%{d4}", false, "email.example.com");
	expand_ok(&env, "%{d3}", false, "email.example.com");
	expand_ok(&env, "%{d2}", false, "example.com");
	expand_ok(&env, "%{d1}", false, "com");
	expand_ok(&env, "%{dr}", false, "com.example.email");
	expand_ok(&env, "%{d2r}", false, "example.email");
	expand_ok(&env, "%{l}", false, "strong-bad");
	expand_ok(&env, "%{l-}", false, "strong.bad");
	expand_ok(&env, "%{lr}", false, "strong-bad");
	expand_ok(&env, "%{lr-}", false, "bad.strong");
	expand_ok(&env, "%{l1r-}", false, "strong");
	expand_ok(&env, "%{ir}.%{v}._spf.%{d2}", false, "3.2.0.192.in-addr._spf.example.com");
	expand_ok(&env, "%{lr-}.lp._spf.%{d2}", false, "bad.strong.lp._spf.example.com");
	expand_ok(&env, "%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", false, "bad.strong.lp.3.2.0.192.in-addr._spf.example.com");
	expand_ok(&env, "%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", false, "3.2.0.192.in-addr.strong.lp._spf.example.com");
	expand_ok(&env, "%{d2}.trusted-domains.example.net", false, "example.com.trusted-domains.example.net");
	rfc_env(&env, true);
	expand_ok(&env, "%{ir}.%{v}._spf.%{d2}", false,
		  "1.0.B.C.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.B.D.0.1.0.0.2.ip6._spf.example.com");
}

static void
test_spf_macro_letters_and_escapes(void **state)
{
	(void)state;
	struct spf_macro_env env;
	rfc_env(&env, false);
	expand_ok(&env, "%%%_%-", false, "% %20");
	expand_ok(&env, "a%%b", false, "a%b");
	expand_ok(&env, "%{h}", false, "mx.example.org");
	expand_ok(&env, "%{H}", false, "mx.example.org");
	expand_ok(&env, "%{S}", false, "strong-bad%40email.example.com");
	expand_ok(&env, "%{c} %{r} %{t}", true, "192.0.2.3 receiver.test 1700000000");
	expand_ok(&env, "%{p}", false, "unknown");
	env.validated = "mail.example.com";
	expand_ok(&env, "%{p2}", false, "example.com");
	expand_ok(&env, "%{d100}", false, "email.example.com"); /* more parts than there are */
	expand_ok(&env, "%{d99999999999999999999}", false, "email.example.com");
	expand_ok(&env, "%{D2R}", false, "example.email");
	expand_ok(&env, "%{l+-=,/_}", false, "strong.bad");
	env.local = "a+b=c,d/e_f-g";
	expand_ok(&env, "%{l+-=,/_}", false, "a.b.c.d.e.f.g");
	expand_ok(&env, "%{l2r=,}", false, "c.a+b");
	expand_ok(&env, "%{L}", false, "a%2Bb%3Dc%2Cd%2Fe_f-g");
	env.local = "~jack&jill=up-a_b3.c";
	expand_ok(&env, "%{L}", false, "~jack%26jill%3Dup-a_b3.c");
	rfc_env(&env, true);
	expand_ok(&env, "%{c} %{v} %{i1}", true, "2001:db8::cb01 ip6 1");
	expand_ok(&env, "%{C}", true, "2001%3Adb8%3A%3Acb01");
	/* an expansion that empties out */
	env.helo = "";
	expand_ok(&env, "%{h}", false, "");
}

static void
test_spf_macro_syntax_errors(void **state)
{
	(void)state;
	static const char *bad[] = {
		"%",	 "%x",	 "%{",	   "%{d",     "%{d}%",	  "%{z}",     "%{d0}", "%{d00}", "%{d2x}",
		"%{dr.x}", "%(d)", "a b",	 "tab\there", "\x80",	  "%{c}",     "%{r}",  "%{t}",	 "%{}",
		"%{d2rr}", "ab%",  "%{d-r}", "%{ d}",    "null\x01", "del\x7f",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (spf_macro_check(bad[i], strlen(bad[i]), false, NULL))
			fail_msg("accepted bad macro-string \"%s\"", bad[i]);
	/* c, r, t and spaces only in explanations; NUL never */
	assert_true(spf_macro_check("%{c} %{r} %{t}", 14, true, NULL));
	assert_false(spf_macro_check("a\0b", 3, true, NULL));
	bool uses_p = false;
	assert_true(spf_macro_check("x.%{p}.%{d}", 11, false, &uses_p));
	assert_true(uses_p);
	assert_true(spf_macro_check("x.%{P2r-}", 9, false, &uses_p));
	assert_true(uses_p);
	assert_true(spf_macro_check("%{d}", 4, false, &uses_p));
	assert_false(uses_p);
	assert_true(spf_macro_check("", 0, false, NULL));
}

static void
test_spf_macro_expansion_limit(void **state)
{
	(void)state;
	struct spf_macro_env env;
	struct hk_buf b, in;
	rfc_env(&env, false);
	buf_init(&b);
	buf_init(&in);
	/* 28 bytes per %{s}; literals up to exactly the limit are fine */
	while (in.len + 1 <= SPF_MAX_EXPANSION)
		buf_addc(&in, 'x');
	assert_int_equal(in.len, SPF_MAX_EXPANSION);
	assert_true(spf_macro_expand(&env, in.data, in.len, false, &b));
	assert_int_equal(b.len, SPF_MAX_EXPANSION);
	buf_reset(&b);
	buf_addc(&in, 'x');
	assert_false(spf_macro_expand(&env, in.data, in.len, false, &b));
	assert_int_equal(b.len, 0);
	/* many macros: refused as soon as the output passes the limit */
	buf_reset(&in);
	for (int i = 0; i < 1000; i++)
		buf_adds(&in, "%{S}");
	assert_false(spf_macro_expand(&env, in.data, in.len, false, &b));
	buf_fini(&b);
	buf_fini(&in);
}

static void
finish_ok(const char *in, const char *want)
{
	struct hk_buf b;
	buf_init(&b);
	buf_adds(&b, in);
	bool ok = spf_domain_finish(&b);
	if (want == NULL) {
		if (ok)
			fail_msg("%s accepted as \"%s\"", in, b.data);
	} else if (!ok || strcmp(b.data, want) != 0) {
		fail_msg("%s -> %s \"%s\", want \"%s\"", in, ok ? "ok" : "bad", b.data, want);
	}
	buf_fini(&b);
}

static void
test_spf_domain_truncation(void **state)
{
	(void)state;
	char label63[64], label64[65], long_in[600], long_want[300];
	memset(label63, 'a', 63);
	label63[63] = '\0';
	memset(label64, 'b', 64);
	label64[64] = '\0';

	finish_ok("example.com.", "example.com");
	finish_ok("example.com", "example.com");
	finish_ok("a..com", NULL);
	finish_ok(".com", NULL);
	finish_ok("", NULL);
	finish_ok(".", NULL);
	snprintf(long_in, sizeof(long_in), "%s.com", label63);
	finish_ok(long_in, long_in);
	snprintf(long_in, sizeof(long_in), "%s.com", label64);
	finish_ok(long_in, NULL);
	/* 7.3: left labels dropped until <= 253; 4 x 63 + 3 dots = 255 */
	snprintf(long_in, sizeof(long_in), "x.%s.%s.%s.%s", label63, label63, label63, label63);
	snprintf(long_want, sizeof(long_want), "%s.%s.%s", label63, label63, label63);
	finish_ok(long_in, long_want);
	/* exactly 253 stays */
	snprintf(long_in, sizeof(long_in), "%s.%s.%s.%.61s", label63, label63, label63, label63);
	assert_int_equal(strlen(long_in), 253);
	finish_ok(long_in, long_in);
	/* one label over 253 cannot be cut */
	memset(long_in, 'c', 300);
	long_in[300] = '\0';
	finish_ok(long_in, NULL);
}

static void
test_spf_cidr_match(void **state)
{
	(void)state;
	uint8_t a[16], n[16];
	inet_pton(AF_INET, "192.0.2.130", a);
	inet_pton(AF_INET, "192.0.2.128", n);
	assert_true(spf_cidr_match(AF_INET, a, n, 25));
	assert_true(spf_cidr_match(AF_INET, a, n, 30));
	assert_false(spf_cidr_match(AF_INET, a, n, 31));
	assert_false(spf_cidr_match(AF_INET, a, n, 32));
	assert_true(spf_cidr_match(AF_INET, a, n, 0));
	assert_false(spf_cidr_match(AF_INET, a, n, 33));
	inet_pton(AF_INET, "10.0.0.0", n);
	assert_false(spf_cidr_match(AF_INET, a, n, 1));
	assert_true(spf_cidr_match(AF_INET, a, n, 0));

	inet_pton(AF_INET6, "2001:db8:1234::dead:beef", a);
	inet_pton(AF_INET6, "2001:db8:1234::", n);
	assert_true(spf_cidr_match(AF_INET6, a, n, 48));
	assert_true(spf_cidr_match(AF_INET6, a, n, 64));
	assert_false(spf_cidr_match(AF_INET6, a, n, 100));
	assert_false(spf_cidr_match(AF_INET6, a, n, 128));
	assert_true(spf_cidr_match(AF_INET6, a, a, 128));
	assert_true(spf_cidr_match(AF_INET6, a, n, 0));
	assert_false(spf_cidr_match(AF_INET6, a, n, 129));
	inet_pton(AF_INET6, "2001:db9::", n);
	assert_true(spf_cidr_match(AF_INET6, a, n, 31));
	assert_false(spf_cidr_match(AF_INET6, a, n, 32));
}

static void
test_spf_record_syntax(void **state)
{
	(void)state;
	static const char *good[] = {
		"v=spf1",
		"V=SpF1 -ALL",
		"v=spf1  a   mx  ",
		"v=spf1 a/24//64 mx//0 a:%{d}/0 mx:foo.example.com/32//128",
		"v=spf1 ip4:0.0.0.0/0 ip6:::/0 ip6:::ffff:1.2.3.4 ip4:255.255.255.255/32 ip6:2001:db8::/128",
		"v=spf1 ptr ptr:example.com exists:%{ir}.%{l1r+-}._spf.%{d} include:_spf.example.com",
		"v=spf1 redirect=_spf.example.com exp=explain._spf.%{d}",
		"v=spf1 x-unknown=anything%%%_%- foo.bar=%{d2}",
		"v=spf1 a:foo.xn--zckzah a:x.123-4 a:%{d} a:%{d}%- a:%{d}.com.",
		"v=spf1 ?all ~all +all -all",
	};
	static const char *bad[] = {
		"v=spf1x",
		"v=spf1 a:foo.com:8080",
		"v=spf1 a:museum",
		"v=spf1 a:abc.123",
		"v=spf1 a:a.-com",
		"v=spf1 a:a.com-",
		"v=spf1 a/33",
		"v=spf1 a//129",
		"v=spf1 a/24/64",
		"v=spf1 a/032",
		"v=spf1 a/",
		"v=spf1 ip4:1.2.3.4/33",
		"v=spf1 ip4:01.2.3.4",
		"v=spf1 ip4:1.2.3",
		"v=spf1 ip4:256.1.1.1",
		"v=spf1 ip4:1.2.3.4//32",
		"v=spf1 ip6:::1/129",
		"v=spf1 ip6:1.2.3.4",
		"v=spf1 ip6",
		"v=spf1 ip4",
		"v=spf1 all:x",
		"v=spf1 -all.",
		"v=spf1 include",
		"v=spf1 include:",
		"v=spf1 exists",
		"v=spf1 exists:a.com/24",
		"v=spf1 ptr:",
		"v=spf1 ptr/24",
		"v=spf1 redirect=a.com redirect=b.com",
		"v=spf1 exp=a.com exp=b.com",
		"v=spf1 exp=",
		"v=spf1 redirect:a.com",
		"v=spf1 -redirect=a.com",
		"v=spf1 1x=y",
		"v=spf1 =all",
		"v=spf1 foo=%x",
		"v=spf1 a:%{c}.com",
		"v=spf1 frob",
		"v=spf1 a:x.com\r",
		"v=spf1 a:%{d}.", /* domain-end: "." needs a toplabel after it */
		"v=spf1 \xc3\xa9",
	};
	const char *why;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!spf_record_check(good[i], strlen(good[i]), &why))
			fail_msg("rejected \"%s\": %s", good[i], why);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (spf_record_check(bad[i], strlen(bad[i]), &why))
			fail_msg("accepted \"%s\"", bad[i]);
	assert_false(spf_record_check("v=spf1 a\0", 9, &why)); /* a NUL inside */
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

/* Random records built from SPF's own pieces: the parser and the macro
 * expander accept or refuse them, never misbehave (ASan, valgrind watch).
 * Fixed seed. */
static void
test_spf_random_records(void **state)
{
	(void)state;
	static const char *pieces[] = {
		"v=spf1", " ", " ", "a", "mx", "ptr", "ip4:", "ip6:", "include:", "exists:", "redirect=", "exp=",
		"all", "-", "+", "~", "?", ":", "/", "//", "24", "0", "128", "33", "1.2.3.4", "::1", "2001:db8::",
		".", "example.com", "%{d}", "%{ir}", "%{l1r-}", "%{p}", "%{c}", "%%", "%_", "%-", "%", "{", "}",
		"=", "x-", "NUL", "\x80", "\t", "\"", "foo.bar", "a.-b", "1.2.3", "%{d99999}", "%{s0}",
	};
	uint32_t seed = 0x51f00d;
	struct spf_macro_env env;
	struct hk_buf rec, out;
	rfc_env(&env, false);
	buf_init(&rec);
	buf_init(&out);
	int accepted = 0;
	for (int round = 0; round < 20000; round++) {
		buf_reset(&rec);
		buf_adds(&rec, "v=spf1 ");
		int n = 1 + (int)(xorshift(&seed) % 12);
		for (int i = 0; i < n; i++) {
			const char *pc = pieces[xorshift(&seed) % (sizeof(pieces) / sizeof(pieces[0]))];
			if (strcmp(pc, "NUL") == 0)
				buf_addc(&rec, '\0');
			else
				buf_adds(&rec, pc);
		}
		struct spf_record r;
		if (spf_record_parse(rec.data, rec.len, &r, NULL, NULL, NULL)) {
			accepted++;
			for (size_t t = 0; t < r.nterms; t++) {
				if (!r.terms[t].spec)
					continue;
				buf_reset(&out);
				if (spf_macro_expand(&env, r.terms[t].spec, r.terms[t].spec_len, false, &out))
					(void)spf_domain_finish(&out);
			}
			spf_record_fini(&r);
		}
		/* the same text as an explanation */
		bool p;
		if (spf_macro_check(rec.data, rec.len, true, &p)) {
			buf_reset(&out);
			(void)spf_macro_expand(&env, rec.data, rec.len, true, &out);
		}
	}
	assert_true(accepted > 100); /* the generator reaches good records too */
	buf_fini(&rec);
	buf_fini(&out);
}

/* --- checks against the unit zones ---------------------------------------------------- */

#define EXTRA_UNIT_INDEX 3 /* "extra: zones for the C unit tests" */

struct one {
	int done;
	int calls;
	struct spf_result res;
	struct spf_check **self; /* cleared in the callback, as a session does */
	struct spf_check **cancel_other;
};

static void
one_cb(const struct spf_result *res, void *arg)
{
	struct one *o = arg;
	o->calls++;
	o->done++;
	o->res = *res;
	if (o->self) {
		spf_cancel(o->self); /* inside its own callback: a no-op that clears the handle */
		assert_null(*o->self);
	}
	if (o->cancel_other)
		spf_cancel(o->cancel_other);
}

static void
never_cb(const struct spf_result *res, void *arg)
{
	(void)res;
	(void)arg;
	fail_msg("callback of a cancelled check");
}

static struct sockaddr_storage
ip(const char *s)
{
	struct sockaddr_storage ss;
	assert_true(parse_host(s, &ss));
	return ss;
}

static void
check_one(struct env *e, const char *host, const char *helo, const char *from, struct one *o)
{
	struct sockaddr_storage ss = ip(host);
	memset(o, 0, sizeof(*o));
	spf_check(e->spf, (struct sockaddr *)&ss, helo, from, one_cb, o);
	run_until_count(e->base, &o->done, 1);
	assert_int_equal(o->calls, 1);
}

static void
test_spf_cancel_pending(void **state)
{
	(void)state;
	struct env e;
	env_open(&e, "spf-extra.yml", EXTRA_UNIT_INDEX, 0);
	struct sockaddr_storage ss = ip("192.0.2.1");

	/* the TXT lookup of slow.test takes 500 ms: cancel at once, and later */
	int *session = malloc(sizeof(int));
	struct spf_check *h1 = spf_check(e.spf, (struct sockaddr *)&ss, "h.test", "a@slow.test", never_cb, session);
	struct spf_check *h2 = spf_check(e.spf, (struct sockaddr *)&ss, "h.test", "a@slow.test", never_cb, session);
	/* and one waiting on an A lookup of its a: term */
	struct spf_check *h3 = spf_check(e.spf, (struct sockaddr *)&ss, "h.test", "a@slowa.test", never_cb, session);
	assert_int_equal(spf_running(e.spf), 3);
	spf_cancel(&h1);
	assert_null(h1);
	run_for(e.base, 100);
	spf_cancel(&h2);
	spf_cancel(&h3);
	free(session); /* use after free would show under ASan */
	assert_int_equal(spf_running(e.spf), 0);
	assert_int_equal(dns_pending(e.dns), 0);
	spf_cancel(&h1); /* NULL-safe */
	run_for(e.base, 600); /* the late answers come and are dropped */

	/* cancelled before its (immediate) result is delivered */
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	h1 = spf_check(e.spf, (struct sockaddr *)&un, "h.test", "a@fast.test", never_cb, NULL);
	spf_cancel(&h1);
	run_for(e.base, 20);

	/* a callback that cancels another check, and clears its own handle */
	struct one o;
	memset(&o, 0, sizeof(o));
	struct spf_check *self = spf_check(e.spf, (struct sockaddr *)&ss, "h.test", "a@fast.test", one_cb, &o);
	struct spf_check *other = spf_check(e.spf, (struct sockaddr *)&ss, "h.test", "a@slow.test", never_cb, NULL);
	o.self = &self;
	o.cancel_other = &other;
	run_until_count(e.base, &o.done, 1);
	assert_int_equal(o.res.result, SPF_PASS);
	assert_null(other);
	assert_int_equal(spf_running(e.spf), 0);

	/* freeing the context with checks running: no callbacks, no leaks */
	spf_check(e.spf, (struct sockaddr *)&ss, "h.test", "a@slow.test", never_cb, NULL);
	spf_check(e.spf, (struct sockaddr *)&ss, "h.test", "a@slowa.test", never_cb, NULL);
	run_for(e.base, 50);
	spf_ctx_free(&e.spf);
	assert_null(e.spf);
	run_for(e.base, 50);
	dns_resolver_free(&e.dns);
	event_base_free(e.base);
}

static void
test_spf_deadline(void **state)
{
	(void)state;
	struct env e;
	struct one o;
	env_open(&e, "spf-extra.yml", EXTRA_UNIT_INDEX, 200); /* slow.test needs 500 ms */
	check_one(&e, "192.0.2.1", "h.test", "a@slow.test", &o);
	assert_int_equal(o.res.result, SPF_TEMPERROR);
	assert_string_equal(o.res.problem, "no SPF result within 200 ms");
	check_one(&e, "192.0.2.1", "h.test", "a@fast.test", &o);
	assert_int_equal(o.res.result, SPF_PASS);
	env_close(&e);
}

struct count_q {
	int done;
	int n;
};

static void
count_cb(const struct dns_result *res, void *arg)
{
	struct count_q *cq = arg;
	cq->done++;
	if (res->status == DNS_OK && res->count == 1)
		cq->n = atoi(res->txt[0].data);
}

/* Queries the scenario's server saw in all ("_count", see spfdns.py),
 * asked through an uncached resolver of its own. */
static int
server_total(struct env *e)
{
	char addr[64];
	spfdns_server(spfdns_scenario(&server, "spf-extra.yml", EXTRA_UNIT_INDEX), addr, sizeof(addr));
	struct dns_config dc = { .servers = addr, .timeout_ms = DNS_TIMEOUT_MS, .tries = 1 };
	struct dns_resolver *r = dns_resolver_new(e->base, &dc, NULL);
	assert_non_null(r);
	struct count_q cq = { 0, -1 };
	dns_query(r, "_count", DNS_T_TXT, count_cb, &cq);
	run_until_count(e->base, &cq.done, 1);
	dns_resolver_free(&r);
	assert_true(cq.n >= 0);
	return cq.n;
}

static void
test_spf_cache(void **state)
{
	(void)state;
	struct env e;
	struct one o;
	env_open(&e, "spf-extra.yml", EXTRA_UNIT_INDEX, 0);
	/* the serve configuration: one resolver with a cache */
	spf_ctx_free(&e.spf);
	dns_resolver_free(&e.dns);
	char addr[64];
	spfdns_server(spfdns_scenario(&server, "spf-extra.yml", EXTRA_UNIT_INDEX), addr, sizeof(addr));
	struct dns_config dc = { .servers = addr, .timeout_ms = DNS_TIMEOUT_MS, .tries = 1,
				 .cache_size = DNS_CACHE_DEFAULT_SIZE };
	e.dns = dns_resolver_new(e.base, &dc, NULL);
	assert_non_null(e.dns);
	struct spf_config sc_cfg = { "receiver.test", "DEFAULT", 0, FIXED_TIME };
	e.spf = spf_ctx_new(e.dns, &sc_cfg);

	/* TXT cached.test, MX cached.test, A mx.cached.test, A h.cached.test,
	 * TXT inc.cached.test: five queries the first time, none after */
	int t0 = server_total(&e);
	check_one(&e, "192.0.2.1", "h.test", "a@cached.test", &o);
	assert_int_equal(o.res.result, SPF_PASS);
	assert_string_equal(o.res.mechanism, "include:inc.cached.test");
	int t1 = server_total(&e);
	assert_int_equal(t1 - t0, 5);
	check_one(&e, "192.0.2.1", "h.test", "b@cached.test", &o);
	assert_int_equal(o.res.result, SPF_PASS);
	assert_string_equal(o.res.mechanism, "include:inc.cached.test");
	check_one(&e, "198.51.100.8", "h.test", "c@CACHED.test", &o);
	assert_int_equal(o.res.result, SPF_PASS);
	assert_string_equal(o.res.mechanism, "a:h.cached.test");
	assert_int_equal(server_total(&e), t1);
	/* two checks at once share the queries too (nothing cached yet) */
	int t2 = server_total(&e);
	struct one o2;
	memset(&o, 0, sizeof(o));
	memset(&o2, 0, sizeof(o2));
	struct sockaddr_storage ss = ip("192.0.2.1");
	spf_check(e.spf, (struct sockaddr *)&ss, "h.test", "a@pass.test", one_cb, &o);
	spf_check(e.spf, (struct sockaddr *)&ss, "h.test", "b@pass.test", one_cb, &o2);
	run_until_count(e.base, &o.done, 1);
	run_until_count(e.base, &o2.done, 1);
	assert_int_equal(o.res.result, SPF_PASS);
	assert_int_equal(o2.res.result, SPF_PASS);
	assert_int_equal(server_total(&e), t2 + 1);
	struct dns_stats st;
	dns_get_stats(e.dns, &st);
	assert_int_equal(st.sent, 6);
	assert_int_equal(st.cache_hits, 5 + 4); /* the second check, the third */
	assert_int_equal(st.joined, 1);
	env_close(&e);
}

static void
test_spf_identities(void **state)
{
	(void)state;
	struct env e;
	struct one o;
	char longfrom[SPF_MAX_SENDER_LEN + 10];
	env_open(&e, "spf-extra.yml", EXTRA_UNIT_INDEX, 0);

	check_one(&e, "192.0.2.1", "helo.test", "a@pass.test", &o);
	assert_int_equal(o.res.result, SPF_PASS);
	assert_int_equal(o.res.identity, SPF_ID_MAILFROM);
	assert_string_equal(o.res.sender, "a@pass.test");
	assert_string_equal(o.res.domain, "pass.test");
	assert_string_equal(o.res.client_ip, "192.0.2.1");
	assert_string_equal(o.res.mechanism, "ip4:192.0.2.0/24");
	assert_string_equal(o.res.receiver, "receiver.test");
	assert_string_equal(o.res.explanation, "");

	/* empty MAIL FROM: postmaster@helo, the HELO identity */
	check_one(&e, "2001:db8::1", "pass.test", "", &o);
	assert_int_equal(o.res.result, SPF_PASS);
	assert_int_equal(o.res.identity, SPF_ID_HELO);
	assert_string_equal(o.res.sender, "postmaster@pass.test");
	assert_string_equal(o.res.mechanism, "ip6:2001:db8::/32");

	/* the HELO check alone, trailing dot */
	struct sockaddr_storage ss = ip("198.51.100.1");
	memset(&o, 0, sizeof(o));
	spf_check_helo(e.spf, (struct sockaddr *)&ss, "pass.test.", one_cb, &o);
	run_until_count(e.base, &o.done, 1);
	assert_int_equal(o.res.result, SPF_FAIL);
	assert_int_equal(o.res.identity, SPF_ID_HELO);
	assert_string_equal(o.res.mechanism, "-all");
	assert_string_equal(o.res.explanation, "DEFAULT");

	/* the record's own explanation */
	check_one(&e, "192.0.2.77", "helo.test", "who@fail.test", &o);
	assert_int_equal(o.res.result, SPF_FAIL);
	assert_string_equal(o.res.explanation, "192.0.2.77 is not one of ours (fail.test)");

	/* no local-part */
	check_one(&e, "192.0.2.1", "helo.test", "@pass.test", &o);
	assert_string_equal(o.res.sender, "postmaster@pass.test");
	assert_int_equal(o.res.result, SPF_PASS);

	/* malformed identities are "none", without DNS */
	check_one(&e, "192.0.2.1", "helo.test", "a@[192.0.2.1]", &o);
	assert_int_equal(o.res.result, SPF_NONE);
	check_one(&e, "192.0.2.1", "localhost", "", &o);
	assert_int_equal(o.res.result, SPF_NONE);
	check_one(&e, "192.0.2.1", NULL, NULL, &o);
	assert_int_equal(o.res.result, SPF_NONE);
	memset(longfrom, 'x', sizeof(longfrom) - 1);
	longfrom[sizeof(longfrom) - 1] = '\0';
	longfrom[5] = '@';
	check_one(&e, "192.0.2.1", "helo.test", longfrom, &o);
	assert_int_equal(o.res.result, SPF_NONE);
	assert_string_equal(o.res.problem, "MAIL FROM over 320 bytes");

	/* not an IP client */
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	memset(&o, 0, sizeof(o));
	spf_check(e.spf, (struct sockaddr *)&un, "helo.test", "a@pass.test", one_cb, &o);
	run_until_count(e.base, &o.done, 1);
	assert_int_equal(o.res.result, SPF_NONE);

	/* permerror carries the reason */
	check_one(&e, "192.0.2.1", "helo.test", "a@perm.test", &o);
	assert_int_equal(o.res.result, SPF_PERMERROR);
	assert_string_equal(o.res.problem, "SPF record of perm.test: unknown mechanism: 'frob'");
	env_close(&e);
}

static void
test_spf_enum_matches_rule_vm(void **state)
{
	(void)state;
	/* the server hands res.result straight to the VM's `spf` field */
	assert_int_equal(SPF_PASS, 0);
	assert_int_equal(SPF_PERMERROR, 6);
	assert_int_equal(SPF_COUNT, 7);
	assert_string_equal(spf_result_str(SPF_PASS), "pass");
	assert_string_equal(spf_result_str(SPF_FAIL), "fail");
	assert_string_equal(spf_result_str(SPF_SOFTFAIL), "softfail");
	assert_string_equal(spf_result_str(SPF_NEUTRAL), "neutral");
	assert_string_equal(spf_result_str(SPF_NONE), "none");
	assert_string_equal(spf_result_str(SPF_TEMPERROR), "temperror");
	assert_string_equal(spf_result_str(SPF_PERMERROR), "permerror");
}

static void
assert_buf(struct hk_buf *b, const char *want)
{
	if (strcmp(b->data ? b->data : "", want) != 0)
		fail_msg("got  %s\nwant %s", b->data ? b->data : "", want);
	buf_reset(b);
}

static void
test_spf_headers(void **state)
{
	(void)state;
	struct env e;
	struct one o;
	struct hk_buf b;
	buf_init(&b);
	env_open(&e, "spf-extra.yml", EXTRA_UNIT_INDEX, 0);

	check_one(&e, "192.0.2.1", "mail.pass.test", "joe@pass.test", &o);
	spf_received_spf(&o.res, &b);
	assert_buf(&b, "pass (receiver.test: domain of joe@pass.test designates 192.0.2.1 as permitted sender) "
		       "receiver=receiver.test; client-ip=192.0.2.1; envelope-from=\"joe@pass.test\"; "
		       "helo=mail.pass.test; identity=mailfrom; mechanism=\"ip4:192.0.2.0/24\"");
	spf_auth_results(&o.res, &b);
	assert_buf(&b, "spf=pass smtp.mailfrom=pass.test");

	check_one(&e, "2001:db8::1", "fail.test", "", &o);
	spf_received_spf(&o.res, &b);
	assert_buf(&b, "fail (receiver.test: domain of fail.test does not designate 2001:db8::1 as permitted "
		       "sender) receiver=receiver.test; client-ip=\"2001:db8::1\"; helo=fail.test; "
		       "identity=helo; mechanism=-all");
	spf_auth_results(&o.res, &b);
	assert_buf(&b, "spf=fail smtp.helo=fail.test");

	check_one(&e, "192.0.2.1", "h(x)\"y", "a@perm.test", &o);
	spf_received_spf(&o.res, &b);
	assert_buf(&b, "permerror (receiver.test: permanent error in processing domain of a@perm.test) "
		       "receiver=receiver.test; client-ip=192.0.2.1; envelope-from=\"a@perm.test\"; "
		       "helo=\"h(x)\\\"y\"; identity=mailfrom; "
		       "problem=\"SPF record of perm.test: unknown mechanism: 'frob'\"");
	spf_auth_results(&o.res, &b);
	assert_buf(&b, "spf=permerror reason=\"SPF record of perm.test: unknown mechanism: 'frob'\" "
		       "smtp.mailfrom=perm.test");

	/* a quote and parentheses in the sender cannot break out */
	check_one(&e, "192.0.2.1", "helo.test", "x(y)@quote\"me.test", &o);
	assert_int_equal(o.res.result, SPF_FAIL);
	spf_received_spf(&o.res, &b);
	assert_buf(&b, "fail (receiver.test: domain of x\\(y\\)@quote\"me.test does not designate 192.0.2.1 as "
		       "permitted sender) receiver=receiver.test; client-ip=192.0.2.1; "
		       "envelope-from=\"x(y)@quote\\\"me.test\"; helo=helo.test; identity=mailfrom; "
		       "mechanism=-all");
	spf_auth_results(&o.res, &b);
	assert_buf(&b, "spf=fail smtp.mailfrom=\"quote\\\"me.test\"");

	check_one(&e, "192.0.2.1", "helo.test", "a@nothing.test", &o);
	spf_received_spf(&o.res, &b);
	assert_buf(&b, "none (receiver.test: domain of a@nothing.test does not designate permitted sender hosts) "
		       "receiver=receiver.test; client-ip=192.0.2.1; envelope-from=\"a@nothing.test\"; "
		       "helo=helo.test; identity=mailfrom");
	buf_fini(&b);
	env_close(&e);
}

static void
test_spf_printable(void **state)
{
	(void)state;
	struct spf_result r;
	char src[400];
	memset(src, 'e', sizeof(src));
	src[3] = '\r';
	src[4] = '\n';
	src[5] = '\0';
	spf_printable(r.explanation, sizeof(r.explanation), src, sizeof(src));
	assert_int_equal(strlen(r.explanation), SPF_MAX_EXPLANATION);
	assert_memory_equal(r.explanation, "eee???eee", 9);
	assert_string_equal(r.explanation + SPF_MAX_EXPLANATION - 3, "...");
	spf_printable(r.explanation, sizeof(r.explanation), src, 3);
	assert_string_equal(r.explanation, "eee");
}

/* --- main ------------------------------------------------------------------------------- */

static int
group_teardown(void **state)
{
	(void)state;
	for (int i = 0; i < 2; i++)
		printf("%s: %d of %d cases passed\n", totals[i].file, totals[i].passed, totals[i].cases);
	return 0;
}

int
main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	verbose = getenv("HK_SPF_VERBOSE") && strcmp(getenv("HK_SPF_VERBOSE"), "1") == 0;
	char rfc_path[512];
	snprintf(rfc_path, sizeof(rfc_path), "%s/%s", spfdns_testdata(), RFC_FILE);
	const char *files[] = { rfc_path, EXTRA_FILE, NULL };
	if (spfdns_start(&server, files) != 0) {
		fprintf(stderr, "test_spf: cannot start the test DNS server: %s\n", server.error);
		return 1;
	}

	/* one cmocka test per scenario, then the unit tests */
	json_t *scs = json_object_get(server.manifest, "scenarios");
	size_t nsc = json_array_size(scs), n = 0;
	struct CMUnitTest *tests = calloc(nsc + 16, sizeof(*tests));
	struct scenario_arg *args = calloc(nsc + 1, sizeof(*args));
	char **names = calloc(nsc + 1, sizeof(*names));
	for (size_t i = 0; i < nsc; i++) {
		json_t *sc = json_array_get(scs, i);
		if (json_array_size(json_object_get(sc, "tests")) == 0)
			continue;
		const char *file = jstr(sc, "file");
		args[n].file = file;
		args[n].index = (int)json_integer_value(json_object_get(sc, "index"));
		args[n].tot = strcmp(file, RFC_FILE) == 0 ? &totals[0] : &totals[1];
		names[n] = malloc(300);
		snprintf(names[n], 300, "%s%s", strcmp(file, RFC_FILE) == 0 ? "rfc7208: " : "",
			 jstr(sc, "description"));
		tests[n] = (struct CMUnitTest){ names[n], test_scenario, NULL, NULL, &args[n] };
		n++;
	}
	const struct CMUnitTest unit[] = {
		cmocka_unit_test(test_spf_macro_rfc_examples),
		cmocka_unit_test(test_spf_macro_letters_and_escapes),
		cmocka_unit_test(test_spf_macro_syntax_errors),
		cmocka_unit_test(test_spf_macro_expansion_limit),
		cmocka_unit_test(test_spf_domain_truncation),
		cmocka_unit_test(test_spf_cidr_match),
		cmocka_unit_test(test_spf_record_syntax),
		cmocka_unit_test(test_spf_random_records),
		cmocka_unit_test(test_spf_enum_matches_rule_vm),
		cmocka_unit_test(test_spf_printable),
		cmocka_unit_test(test_spf_identities),
		cmocka_unit_test(test_spf_headers),
		cmocka_unit_test(test_spf_deadline),
		cmocka_unit_test(test_spf_cancel_pending),
		cmocka_unit_test(test_spf_cache),
	};
	for (size_t i = 0; i < sizeof(unit) / sizeof(unit[0]); i++)
		tests[n++] = unit[i];

	int rc = _cmocka_run_group_tests("spf", tests, n, NULL, group_teardown);
	spfdns_stop(&server);
	for (size_t i = 0; i < nsc; i++)
		free(names[i]);
	free(names);
	free(args);
	free(tests);
	return rc;
}
