/*
 * spf.c - check_host() of RFC 7208 as an asynchronous state machine on
 * the dns module (see spf.h for the API and its lifetime rules).
 *
 * Shape: a check keeps a stack of frames, one per check_host() level (the
 * top level and one per include; redirect= replaces the top frame). Each
 * step that needs DNS starts a "batch" of up to MAX_SLOTS queries and
 * names the function to continue with once every answer is in; answers
 * are boiled down as they arrive (did an address match? the SPF record,
 * the MX or PTR names), so nothing of a dns_result outlives its callback.
 * Terms are evaluated in order; a %{p} in a domain-spec first resolves
 * the validated names of the client (PTR, then A/AAAA), once per check.
 *
 * The result is never delivered from inside a dns callback: finish()
 * cancels whatever is in flight and activates the check's event, whose
 * callback calls the user and frees the check. The same event is the
 * check's deadline (a timeout there is a temperror).
 *
 * Choices where RFC 7208 leaves room (all within the RFC 7208 test suite):
 *   - MX: more than 10 MX records is a permerror (4.6.4); the address
 *     lookups of the MX hosts run in parallel but are judged in MX
 *     preference order: the first DNS error before a match is a temperror.
 *   - Void lookups (4.6.4) are counted for the query a, mx, ptr and exists
 *     make for their own target (not for the address lookups of MX or PTR
 *     names, not for exp=).
 *   - ptr: the first 10 PTR names are taken, then only those that are the
 *     target or below it are validated.
 *   - A target-name that cannot be a DNS name after expansion (empty label,
 *     label over 63) does not match (a, mx, exists, ptr) and is "none",
 *     hence permerror, for include and redirect.
 *   - Names in DNS answers that need escaping (dns.h) are not host names;
 *     they are skipped.
 *
 * Ownership: the check owns its frames, record copies and strings; the
 * context owns the list of running checks. Limits: spf.h.
 * SECURITY: see spf.h; every DNS-driven quantity here is bounded by a
 * named limit (terms, void lookups, MX and PTR names, frame depth, macro
 * expansion size, the deadline).
 */
#include "spf.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns/dns.h"
#include "spf_int.h"

/* one frame for the top level plus one per include, each of which costs
 * one of the SPF_MAX_DNS_TERMS lookups */
#define SPF_MAX_DEPTH (SPF_MAX_DNS_TERMS + 1)
#define MAX_SLOTS (SPF_MAX_MX_NAMES > SPF_MAX_PTR_NAMES ? SPF_MAX_MX_NAMES : SPF_MAX_PTR_NAMES)

struct spf_ctx {
	struct dns_resolver *dns;
	struct event_base *base;
	char *receiver;
	char *default_exp;
	int timeout_ms;
	time_t fixed_time;
	struct spf_check *checks;
	unsigned running;
	unsigned delivering;
};

struct frame {
	char *domain;	   /* <domain> of this check_host() level */
	char *text;	   /* the record (owned) */
	size_t text_len;
	struct spf_record rec;
	size_t pos;	   /* the term being evaluated */
	bool none_is_permerror; /* include and redirect targets */
};

struct slot {
	struct spf_check *c;
	struct dns_query *q;
	enum dns_status status;
	bool hit; /* an address of the answer matched */
	bool any; /* the answer had records */
};

typedef void (*step_fn)(struct spf_check *c);
typedef void (*answer_fn)(struct spf_check *c, struct slot *s, const struct dns_result *res);

enum p_state { P_UNKNOWN, P_RUNNING, P_DONE };

struct spf_check {
	struct spf_ctx *ctx;
	struct spf_check *prev, *next;
	spf_cb cb;
	void *arg;
	struct spf_result res;
	struct event *ev;
	bool finished;
	bool in_callback;

	char *sender, *local, *sender_domain, *helo;
	int family;
	uint8_t addr[16];
	time_t now;

	struct frame frames[SPF_MAX_DEPTH];
	unsigned depth;
	unsigned dns_terms, voids;

	/* the batch in flight */
	struct slot slots[MAX_SLOTS];
	unsigned nslots, outstanding;
	answer_fn on_answer;
	step_fn cont;
	unsigned prefix; /* CIDR length the address answers are matched with */

	/* what the last answers left */
	char *names[MAX_SLOTS];
	size_t nnames;
	size_t rr_count;
	char *txt;
	size_t txt_len;
	unsigned spf_records;
	struct hk_buf target;

	/* %{p}: the validated names of the client */
	enum p_state p_state;
	step_fn p_cont;
	char *p_names[SPF_MAX_PTR_NAMES];
	bool p_valid[SPF_MAX_PTR_NAMES];
	size_t p_count;

	/* the explanation being built */
	char *exp_src;
	size_t exp_len;
	bool exp_uses_p;
};

static void eval(struct spf_check *c);
static void frame_result(struct spf_check *c, enum hk_spf r, const struct spf_term *t);

/* --- finishing ---------------------------------------------------------- */

static void
cancel_lookups(struct spf_check *c)
{
	for (unsigned i = 0; i < c->nslots; i++)
		dns_cancel(&c->slots[i].q);
	c->outstanding = 0;
	c->cont = NULL;
}

/* Records the result and stops every lookup; the delivery is up to the
 * caller (finish() or the deadline in check_event()). */
static void
settle(struct spf_check *c, enum hk_spf r)
{
	c->finished = true;
	c->res.result = r;
	c->res.dns_terms = c->dns_terms;
	c->res.void_lookups = c->voids;
	cancel_lookups(c);
}

static void
finish(struct spf_check *c, enum hk_spf r)
{
	if (c->finished)
		return;
	settle(c, r);
	evtimer_del(c->ev);
	event_active(c->ev, EV_TIMEOUT, 1);
}

static void set_problem(struct spf_check *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
set_problem(struct spf_check *c, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	spf_printable(c->res.problem, sizeof(c->res.problem), tmp,
		      (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

#define fail_check(c, r, ...) (set_problem((c), __VA_ARGS__), finish((c), (r)))

static void
frame_fini(struct frame *f)
{
	spf_record_fini(&f->rec);
	free(f->domain);
	free(f->text);
	memset(f, 0, sizeof(*f));
}

static void
clear_names(struct spf_check *c)
{
	for (size_t i = 0; i < c->nnames; i++)
		free(c->names[i]);
	c->nnames = 0;
}

static void
check_free(struct spf_check *c)
{
	struct spf_ctx *ctx = c->ctx;

	cancel_lookups(c);
	for (unsigned i = 0; i < c->depth; i++)
		frame_fini(&c->frames[i]);
	clear_names(c);
	for (size_t i = 0; i < c->p_count; i++)
		free(c->p_names[i]);
	free(c->txt);
	free(c->exp_src);
	buf_fini(&c->target);
	free(c->sender);
	free(c->local);
	free(c->sender_domain);
	free(c->helo);
	event_free(c->ev);
	if (c->prev)
		c->prev->next = c->next;
	else
		ctx->checks = c->next;
	if (c->next)
		c->next->prev = c->prev;
	ctx->running--;
	free(c);
}

/* The check's event: the result is ready, or the deadline passed. */
static void
check_event(evutil_socket_t fd, short what, void *arg)
{
	struct spf_check *c = arg;
	(void)fd;
	(void)what;

	if (!c->finished) {
		set_problem(c, "no SPF result within %d ms", c->ctx->timeout_ms);
		settle(c, SPF_TEMPERROR);
	}
	c->in_callback = true;
	c->ctx->delivering++;
	c->cb(&c->res, c->arg);
	c->ctx->delivering--;
	check_free(c);
}

/* --- DNS batches ----------------------------------------------------------- */

static void
slot_cb(const struct dns_result *res, void *arg)
{
	struct slot *s = arg;
	struct spf_check *c = s->c;

	s->q = NULL;
	s->status = res->status;
	s->any = res->status == DNS_OK && res->count > 0;
	if (c->on_answer)
		c->on_answer(c, s, res);
	if (--c->outstanding == 0) {
		step_fn k = c->cont;
		c->cont = NULL;
		if (k)
			k(c);
	}
}

static void
batch(struct spf_check *c, answer_fn on_answer, step_fn cont)
{
	c->on_answer = on_answer;
	c->cont = cont;
	c->outstanding = 0;
	c->nslots = 0;
}

/* Adds slot number c->nslots; with name NULL the slot is marked unusable
 * and no query is made. */
static void
lookup(struct spf_check *c, const char *name, enum dns_type type)
{
	struct slot *s = &c->slots[c->nslots++];
	char esc[2 * SPF_MAX_DOMAIN_LEN + 2];
	size_t o = 0;

	memset(s, 0, sizeof(*s));
	s->c = c;
	s->status = DNS_BADNAME;
	if (!name)
		return;
	/* our names are plain label text; dns.h wants '\' escaped */
	for (const char *p = name; *p; p++) {
		if (o + 3 > sizeof(esc))
			return;
		if (*p == '\\')
			esc[o++] = '\\';
		esc[o++] = *p;
	}
	esc[o] = '\0';
	c->outstanding++;
	s->q = dns_query(c->ctx->dns, esc, type, slot_cb, s);
}

/* After the lookups of a batch are added: continue at once if none went
 * out (every name was unusable). */
static void
batch_go(struct spf_check *c)
{
	if (c->outstanding == 0) {
		step_fn k = c->cont;
		c->cont = NULL;
		k(c);
	}
}

static enum dns_type
addr_type(const struct spf_check *c)
{
	return c->family == AF_INET ? DNS_T_A : DNS_T_AAAA;
}

static void
addr_answer(struct spf_check *c, struct slot *s, const struct dns_result *res)
{
	if (res->status != DNS_OK)
		return;
	for (size_t i = 0; i < res->count && !s->hit; i++)
		if (res->addrs[i].family == c->family &&
		    spf_cidr_match(c->family, c->family == AF_INET ? res->addrs[i].a.v4 : res->addrs[i].a.v6,
				   c->addr, c->prefix))
			s->hit = true;
}

static bool
dns_error(enum dns_status st)
{
	return st == DNS_SERVFAIL || st == DNS_TIMEOUT || st == DNS_ERROR;
}

static bool
dns_void(enum dns_status st)
{
	return st == DNS_NODATA || st == DNS_NXDOMAIN;
}

/* a host name we may query: no escapes, not the null MX */
static bool
usable_name(const char *n)
{
	return n[0] && strchr(n, '\\') == NULL && strlen(n) <= SPF_MAX_DOMAIN_LEN;
}

/* Counts a void lookup; false (and the check is over) past the limit. */
static bool
count_void(struct spf_check *c)
{
	if (++c->voids > SPF_MAX_VOID_LOOKUPS) {
		fail_check(c, SPF_PERMERROR, "more than %d void DNS lookups", SPF_MAX_VOID_LOOKUPS);
		return false;
	}
	return true;
}

/* --- names and macros ---------------------------------------------------------- */

static bool
name_ieq(const char *a, const char *b)
{
	size_t n = strlen(a);
	return n == strlen(b) && spf_ascii_ieq(a, b, n);
}

/* name is `dom` or below it */
static bool
name_within(const char *name, const char *dom)
{
	size_t n = strlen(name), d = strlen(dom);
	if (n == d)
		return name_ieq(name, dom);
	return n > d && name[n - d - 1] == '.' && spf_ascii_ieq(name + n - d, dom, d);
}

/* RFC 7208 7.3: the validated name for %{p}: the domain itself, else one
 * below it, else any; NULL for "unknown". */
static const char *
choose_p(const struct spf_check *c, const char *domain)
{
	const char *any = NULL, *below = NULL;
	for (size_t i = 0; i < c->p_count; i++) {
		if (!c->p_valid[i])
			continue;
		if (name_ieq(c->p_names[i], domain))
			return c->p_names[i];
		if (!below && name_within(c->p_names[i], domain))
			below = c->p_names[i];
		if (!any)
			any = c->p_names[i];
	}
	return below ? below : any;
}

static void
macro_env(const struct spf_check *c, const char *domain, struct spf_macro_env *env)
{
	memset(env, 0, sizeof(*env));
	env->sender = c->sender;
	env->local = c->local;
	env->sender_domain = c->sender_domain;
	env->domain = domain;
	env->helo = c->helo;
	env->receiver = c->ctx->receiver;
	env->validated = c->p_state == P_DONE ? choose_p(c, domain) : NULL;
	env->family = c->family;
	memcpy(env->addr, c->addr, sizeof(env->addr));
	env->now = c->now;
}

/*
 * The target-name of a term (its domain-spec expanded, or <domain>) into
 * c->target. 1: a name DNS can be asked about; 0: no query can be made of
 * it (RFC 7208 leaves this open; see the top of the file); -1: the
 * expansion is over SPF_MAX_EXPANSION (the check is over: permerror).
 */
static int
expand_target(struct spf_check *c, const char *spec, size_t len)
{
	const struct frame *f = &c->frames[c->depth - 1];
	struct spf_macro_env env;

	buf_reset(&c->target);
	if (!spec) {
		buf_adds(&c->target, f->domain);
	} else {
		macro_env(c, f->domain, &env);
		if (!spf_macro_expand(&env, spec, len, false, &c->target)) {
			fail_check(c, SPF_PERMERROR, "macro expansion over %d bytes in %s", SPF_MAX_EXPANSION,
				   f->domain);
			return -1;
		}
	}
	bool ok = spf_domain_finish(&c->target);
	if (!c->target.data)
		buf_adds(&c->target, "");
	return ok ? 1 : 0;
}

/* --- %{p} -------------------------------------------------------------------------- */

static void
names_answer(struct spf_check *c, struct slot *s, const struct dns_result *res)
{
	(void)s;
	clear_names(c);
	c->rr_count = res->status == DNS_OK ? res->count + (res->truncated ? 1 : 0) : 0;
	if (res->status != DNS_OK)
		return;
	if (res->type == DNS_T_PTR) {
		/* RFC 7208 4.6.4: only the first 10 PTR names count */
		for (size_t i = 0; i < res->count && c->nnames < SPF_MAX_PTR_NAMES; i++)
			c->names[c->nnames++] = xstrdup(res->names[i]);
		return;
	}
	if (res->count > SPF_MAX_MX_NAMES || res->truncated)
		return; /* permerror, see after_mx_list */
	/* MX: by preference; insertion sort keeps the answer order of equals */
	size_t order[SPF_MAX_MX_NAMES];
	for (size_t i = 0; i < res->count; i++) {
		size_t j = i;
		while (j > 0 && res->mx[order[j - 1]].pref > res->mx[i].pref) {
			order[j] = order[j - 1];
			j--;
		}
		order[j] = i;
	}
	for (size_t i = 0; i < res->count; i++)
		c->names[c->nnames++] = xstrdup(res->mx[order[i]].host);
}

static void
p_after_addrs(struct spf_check *c)
{
	for (size_t i = 0; i < c->p_count; i++)
		c->p_valid[i] = c->slots[i].hit;
	c->p_state = P_DONE;
	c->p_cont(c);
}

static void
p_after_ptr(struct spf_check *c)
{
	if (c->slots[0].status != DNS_OK || c->nnames == 0) {
		c->p_state = P_DONE;
		c->p_cont(c);
		return;
	}
	for (size_t i = 0; i < c->nnames; i++) {
		c->p_names[i] = c->names[i];
		c->p_valid[i] = false;
	}
	c->p_count = c->nnames;
	c->nnames = 0;
	c->prefix = c->family == AF_INET ? 32 : 128;
	batch(c, addr_answer, p_after_addrs);
	for (size_t i = 0; i < c->p_count; i++)
		lookup(c, usable_name(c->p_names[i]) ? c->p_names[i] : NULL, addr_type(c));
	batch_go(c);
}

/* Starts resolving %{p} unless done; true if `resume` will be called. */
static bool
need_p(struct spf_check *c, step_fn resume)
{
	char rev[DNS_PTR_NAME_SIZE];

	if (c->p_state == P_DONE)
		return false;
	c->p_state = P_RUNNING;
	c->p_cont = resume;
	dns_ptr_name(c->family, c->addr, rev);
	batch(c, names_answer, p_after_ptr);
	lookup(c, rev, DNS_T_PTR);
	batch_go(c);
	return true;
}

/* --- explanation (RFC 7208 6.2) -------------------------------------------------- */

static void
exp_expand(struct spf_check *c)
{
	struct spf_macro_env env;
	struct hk_buf out;

	if (c->exp_uses_p && need_p(c, exp_expand))
		return;
	buf_init(&out);
	macro_env(c, c->frames[0].domain, &env);
	if (spf_macro_expand(&env, c->exp_src, c->exp_len, true, &out))
		spf_printable(c->res.explanation, sizeof(c->res.explanation), out.data ? out.data : "", out.len);
	else
		spf_printable(c->res.explanation, sizeof(c->res.explanation), c->exp_src, c->exp_len);
	buf_fini(&out);
	finish(c, SPF_FAIL);
}

static void
exp_default(struct spf_check *c)
{
	const char *d = c->ctx->default_exp;
	size_t n = strlen(d);

	free(c->exp_src);
	c->exp_src = xstrndup(d, n);
	c->exp_len = n;
	c->exp_uses_p = false;
	if (!spf_macro_check(d, n, true, &c->exp_uses_p)) {
		/* not a macro-string: shown as written */
		spf_printable(c->res.explanation, sizeof(c->res.explanation), d, n);
		finish(c, SPF_FAIL);
		return;
	}
	exp_expand(c);
}

static void
exp_txt_answer(struct spf_check *c, struct slot *s, const struct dns_result *res)
{
	(void)s;
	c->rr_count = res->status == DNS_OK ? res->count : 0;
	if (res->status == DNS_OK && res->count == 1) {
		free(c->exp_src);
		c->exp_src = xstrndup(res->txt[0].data, res->txt[0].len);
		c->exp_len = res->txt[0].len;
	}
}

static void
exp_txt_ready(struct spf_check *c)
{
	/* 6.2: DNS errors, no record, several records or a bad explain-string
	 * all mean "as if there were no exp=" */
	if (c->slots[0].status != DNS_OK || c->rr_count != 1 ||
	    !spf_macro_scan(c->exp_src, c->exp_len, true, &c->exp_uses_p, NULL)) {
		exp_default(c);
		return;
	}
	exp_expand(c);
}

static void
explanation(struct spf_check *c)
{
	struct frame *f = &c->frames[0];

	if (f->rec.exp < 0) {
		exp_default(c);
		return;
	}
	const struct spf_term *t = &f->rec.terms[f->rec.exp];
	if (t->spec_uses_p && need_p(c, explanation))
		return;
	int ok = expand_target(c, t->spec, t->spec_len);
	if (ok < 0)
		return;
	if (ok == 0) {
		exp_default(c);
		return;
	}
	/* exp= lookups count neither as terms nor as void lookups (4.6.4) */
	batch(c, exp_txt_answer, exp_txt_ready);
	lookup(c, c->target.data, DNS_T_TXT);
	batch_go(c);
}

/* --- frames -------------------------------------------------------------------- */

static void
set_mechanism(struct spf_check *c, const struct spf_term *t)
{
	if (t)
		spf_printable(c->res.mechanism, sizeof(c->res.mechanism), t->text, t->text_len);
	else
		strcpy(c->res.mechanism, "default");
}

static enum hk_spf
qual_result(char q)
{
	switch (q) {
	case '-': return SPF_FAIL;
	case '~': return SPF_SOFTFAIL;
	case '?': return SPF_NEUTRAL;
	default: return SPF_PASS;
	}
}

static void
match(struct spf_check *c, const struct spf_term *t)
{
	frame_result(c, qual_result(t->qual), t);
}

/* next term of the top frame */
static void
next_term(struct spf_check *c)
{
	c->frames[c->depth - 1].pos++;
	eval(c);
}

/*
 * A check_host() level ended with r (t: the deciding term, NULL for the
 * default). Errors end the whole check; an include level's result goes to
 * the include term of the level below (5.2: only pass matches).
 */
static void
frame_result(struct spf_check *c, enum hk_spf r, const struct spf_term *t)
{
	struct frame *f = &c->frames[c->depth - 1];

	if (r == SPF_NONE && f->none_is_permerror) {
		fail_check(c, SPF_PERMERROR, "no SPF record at %s (include or redirect target)", f->domain);
		return;
	}
	if (r == SPF_TEMPERROR || r == SPF_PERMERROR) {
		finish(c, r);
		return;
	}
	if (c->depth == 1) {
		if (r != SPF_NONE)
			set_mechanism(c, t);
		if (r == SPF_FAIL)
			explanation(c);
		else
			finish(c, r);
		return;
	}
	frame_fini(f);
	c->depth--;
	struct frame *parent = &c->frames[c->depth - 1];
	const struct spf_term *inc = &parent->rec.terms[parent->pos];
	if (r == SPF_PASS)
		match(c, inc);
	else
		next_term(c);
}

static void
record_answer(struct spf_check *c, struct slot *s, const struct dns_result *res)
{
	(void)s;
	c->spf_records = 0;
	free(c->txt);
	c->txt = NULL;
	if (res->status != DNS_OK)
		return;
	for (size_t i = 0; i < res->count; i++) {
		if (!spf_is_record(res->txt[i].data, res->txt[i].len))
			continue;
		if (c->spf_records++ == 0) {
			c->txt = xstrndup(res->txt[i].data, res->txt[i].len);
			c->txt_len = res->txt[i].len;
		}
	}
}

static void
record_ready(struct spf_check *c)
{
	struct frame *f = &c->frames[c->depth - 1];
	enum dns_status st = c->slots[0].status;
	const char *why = NULL, *bad = NULL;
	size_t bad_len = 0;

	if (dns_error(st)) {
		fail_check(c, SPF_TEMPERROR, "DNS %s looking up TXT %s", dns_status_str(st), f->domain);
		return;
	}
	if (st != DNS_OK || c->spf_records == 0) {
		spf_printable(c->res.problem, sizeof(c->res.problem), "no SPF record", 13);
		frame_result(c, SPF_NONE, NULL);
		return;
	}
	if (c->spf_records > 1) {
		fail_check(c, SPF_PERMERROR, "%u SPF records at %s", c->spf_records, f->domain);
		return;
	}
	f->text = c->txt;
	f->text_len = c->txt_len;
	c->txt = NULL;
	if (!spf_record_parse(f->text, f->text_len, &f->rec, &why, &bad, &bad_len)) {
		char term[64];
		spf_printable(term, sizeof(term), bad ? bad : "", bad_len);
		fail_check(c, SPF_PERMERROR, "SPF record of %s: %s: '%s'", f->domain, why, term);
		return;
	}
	f->pos = 0;
	eval(c);
}

/* RFC 7208 4.3: a domain check_host() can start from. */
static bool
domain_ok(const char *d)
{
	size_t len = strlen(d), label = 0, labels = 0;

	if (len == 0 || len > SPF_MAX_DOMAIN_LEN || d[0] == '[')
		return false;
	for (size_t i = 0; i <= len; i++) {
		if (i == len || d[i] == '.') {
			if (label == 0 || label > 63)
				return false;
			labels++;
			label = 0;
		} else {
			label++;
		}
	}
	return labels >= 2;
}

/* Pushes a check_host() level (or, for redirect, replaces the top one). */
static void
start_frame(struct spf_check *c, const char *domain, bool none_is_permerror)
{
	struct frame *f = &c->frames[c->depth++];

	memset(f, 0, sizeof(*f));
	f->domain = xstrdup(domain);
	f->none_is_permerror = none_is_permerror;
	if (!domain_ok(domain)) {
		spf_printable(c->res.problem, sizeof(c->res.problem), "malformed domain", 16);
		frame_result(c, SPF_NONE, NULL);
		return;
	}
	batch(c, record_answer, record_ready);
	lookup(c, domain, DNS_T_TXT);
	batch_go(c);
}

/* --- terms ----------------------------------------------------------------------- */

static void
after_addr_term(struct spf_check *c)
{
	struct frame *f = &c->frames[c->depth - 1];
	const struct spf_term *t = &f->rec.terms[f->pos];
	struct slot *s = &c->slots[0];

	if (dns_error(s->status)) {
		fail_check(c, SPF_TEMPERROR, "DNS %s looking up %s %s", dns_status_str(s->status),
			   t->kind == TERM_EXISTS ? "A" : dns_type_str(addr_type(c)), c->target.data);
		return;
	}
	if (dns_void(s->status) && !count_void(c))
		return;
	if (t->kind == TERM_EXISTS ? s->any : s->hit)
		match(c, t);
	else
		next_term(c);
}

static void
after_mx_addrs(struct spf_check *c)
{
	struct frame *f = &c->frames[c->depth - 1];
	const struct spf_term *t = &f->rec.terms[f->pos];

	for (unsigned i = 0; i < c->nslots; i++) {
		if (dns_error(c->slots[i].status)) {
			fail_check(c, SPF_TEMPERROR, "DNS %s looking up MX host %s",
				   dns_status_str(c->slots[i].status), c->names[i]);
			return;
		}
		if (c->slots[i].hit) {
			match(c, t);
			return;
		}
	}
	next_term(c);
}

static void
after_mx_list(struct spf_check *c)
{
	struct frame *f = &c->frames[c->depth - 1];
	const struct spf_term *t = &f->rec.terms[f->pos];
	enum dns_status st = c->slots[0].status;

	if (dns_error(st)) {
		fail_check(c, SPF_TEMPERROR, "DNS %s looking up MX %s", dns_status_str(st), c->target.data);
		return;
	}
	if (st != DNS_OK) {
		if (dns_void(st) && !count_void(c))
			return;
		next_term(c);
		return;
	}
	if (c->rr_count > SPF_MAX_MX_NAMES) {
		fail_check(c, SPF_PERMERROR, "more than %d MX records for %s", SPF_MAX_MX_NAMES, c->target.data);
		return;
	}
	c->prefix = c->family == AF_INET ? t->cidr4 : t->cidr6;
	batch(c, addr_answer, after_mx_addrs);
	for (size_t i = 0; i < c->nnames; i++)
		lookup(c, usable_name(c->names[i]) ? c->names[i] : NULL, addr_type(c));
	batch_go(c);
}

static void
after_ptr_addrs(struct spf_check *c)
{
	struct frame *f = &c->frames[c->depth - 1];
	const struct spf_term *t = &f->rec.terms[f->pos];

	/* 5.5: an error on an address lookup skips that name */
	for (unsigned i = 0; i < c->nslots; i++)
		if (c->slots[i].hit) {
			match(c, t);
			return;
		}
	next_term(c);
}

static void
after_ptr_list(struct spf_check *c)
{
	enum dns_status st = c->slots[0].status;

	if (st != DNS_OK) {
		/* 5.5: a DNS error on the PTR lookup: no match */
		if (dns_void(st) && !count_void(c))
			return;
		next_term(c);
		return;
	}
	/* keep only the names the target covers, then validate them */
	size_t k = 0;
	for (size_t i = 0; i < c->nnames; i++) {
		if (usable_name(c->names[i]) && name_within(c->names[i], c->target.data))
			c->names[k++] = c->names[i];
		else
			free(c->names[i]);
	}
	c->nnames = k;
	c->prefix = c->family == AF_INET ? 32 : 128;
	batch(c, addr_answer, after_ptr_addrs);
	for (size_t i = 0; i < c->nnames; i++)
		lookup(c, c->names[i], addr_type(c));
	batch_go(c);
}

/* redirect= after the last mechanism (6.1), else the default neutral */
static void
after_mechanisms(struct spf_check *c)
{
	struct frame *f = &c->frames[c->depth - 1];

	if (f->rec.redirect < 0) {
		frame_result(c, SPF_NEUTRAL, NULL);
		return;
	}
	const struct spf_term *t = &f->rec.terms[f->rec.redirect];
	if (t->spec_uses_p && need_p(c, after_mechanisms))
		return;
	if (++c->dns_terms > SPF_MAX_DNS_TERMS) {
		fail_check(c, SPF_PERMERROR, "more than %d DNS lookups (redirect at %s)", SPF_MAX_DNS_TERMS,
			   f->domain);
		return;
	}
	int ok = expand_target(c, t->spec, t->spec_len);
	if (ok < 0)
		return;
	if (ok == 0) {
		fail_check(c, SPF_PERMERROR, "malformed redirect target at %s", f->domain);
		return;
	}
	/* the redirect replaces this level: its exp= is not used (6.2) */
	char *target = xstrdup(c->target.data);
	bool none_perm = true;
	frame_fini(f);
	c->depth--;
	start_frame(c, target, none_perm);
	free(target);
}

static void
eval(struct spf_check *c)
{
	for (;;) {
		struct frame *f = &c->frames[c->depth - 1];
		if (f->pos >= f->rec.nterms) {
			after_mechanisms(c);
			return;
		}
		const struct spf_term *t = &f->rec.terms[f->pos];
		switch (t->kind) {
		case TERM_REDIRECT:
		case TERM_EXP:
		case TERM_UNKNOWN_MOD:
			f->pos++;
			continue;
		case TERM_ALL:
			match(c, t);
			return;
		case TERM_IP4:
		case TERM_IP6:
			if ((t->kind == TERM_IP4) == (c->family == AF_INET) &&
			    spf_cidr_match(c->family, c->addr, t->net, t->kind == TERM_IP4 ? t->cidr4 : t->cidr6)) {
				match(c, t);
				return;
			}
			f->pos++;
			continue;
		default:
			break;
		}

		/* a term that costs a DNS lookup (4.6.4) */
		if (t->spec_uses_p && need_p(c, eval))
			return;
		if (++c->dns_terms > SPF_MAX_DNS_TERMS) {
			fail_check(c, SPF_PERMERROR, "more than %d DNS lookups (at %s)", SPF_MAX_DNS_TERMS,
				   f->domain);
			return;
		}
		int ok = expand_target(c, t->spec, t->spec_len);
		if (ok < 0)
			return;
		switch (t->kind) {
		case TERM_INCLUDE:
			if (c->depth == SPF_MAX_DEPTH) { /* not reached: the term limit comes first */
				fail_check(c, SPF_PERMERROR, "includes nested too deep");
				return;
			}
			start_frame(c, c->target.data, true);
			return;
		case TERM_A:
		case TERM_EXISTS:
			if (!ok)
				break;
			c->prefix = c->family == AF_INET ? t->cidr4 : t->cidr6;
			batch(c, addr_answer, after_addr_term);
			lookup(c, c->target.data, t->kind == TERM_EXISTS ? DNS_T_A : addr_type(c));
			batch_go(c);
			return;
		case TERM_MX:
			if (!ok)
				break;
			batch(c, names_answer, after_mx_list);
			lookup(c, c->target.data, DNS_T_MX);
			batch_go(c);
			return;
		case TERM_PTR: {
			if (!ok)
				break;
			char rev[DNS_PTR_NAME_SIZE];
			dns_ptr_name(c->family, c->addr, rev);
			batch(c, names_answer, after_ptr_list);
			lookup(c, rev, DNS_T_PTR);
			batch_go(c);
			return;
		}
		default:
			break;
		}
		/* an unusable target name matches nothing */
		f->pos++;
	}
}

/* --- API ------------------------------------------------------------------------------ */

struct spf_ctx *
spf_ctx_new(struct dns_resolver *dns, const struct spf_config *cfg)
{
	static const struct spf_config defaults = { 0 };
	struct spf_ctx *ctx = xcalloc(1, sizeof(*ctx));

	if (!cfg)
		cfg = &defaults;
	ctx->dns = dns;
	ctx->base = dns_base(dns);
	ctx->receiver = xstrdup(cfg->receiver && *cfg->receiver ? cfg->receiver : "unknown");
	ctx->default_exp = xstrdup(cfg->default_explanation ? cfg->default_explanation : SPF_DEFAULT_EXPLANATION);
	ctx->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : SPF_DEFAULT_TIMEOUT_MS;
	ctx->fixed_time = cfg->fixed_time;
	return ctx;
}

void
spf_ctx_free(struct spf_ctx **ctxp)
{
	struct spf_ctx *ctx = *ctxp;

	if (!ctx)
		return;
	if (ctx->delivering) {
		fprintf(stderr, "spf: spf_ctx_free called from a check callback\n");
		abort();
	}
	*ctxp = NULL;
	while (ctx->checks)
		check_free(ctx->checks);
	free(ctx->receiver);
	free(ctx->default_exp);
	free(ctx);
}

unsigned
spf_running(const struct spf_ctx *ctx)
{
	return ctx->running;
}

void
spf_cancel(struct spf_check **h)
{
	struct spf_check *c = *h;

	*h = NULL;
	if (!c || c->in_callback)
		return;
	check_free(c);
}

static struct spf_check *
check_new(struct spf_ctx *ctx, spf_cb cb, void *arg)
{
	struct spf_check *c = xcalloc(1, sizeof(*c));

	c->ctx = ctx;
	c->cb = cb;
	c->arg = arg;
	c->ev = evtimer_new(ctx->base, check_event, c);
	if (!c->ev) {
		fprintf(stderr, "spf: evtimer_new failed\n");
		abort();
	}
	buf_init(&c->target);
	c->next = ctx->checks;
	if (ctx->checks)
		ctx->checks->prev = c;
	ctx->checks = c;
	ctx->running++;
	c->now = ctx->fixed_time ? ctx->fixed_time : time(NULL);
	spf_printable(c->res.receiver, sizeof(c->res.receiver), ctx->receiver, strlen(ctx->receiver));
	return c;
}

/* The client address; false for a family SPF has no rules for. */
static bool
set_client(struct spf_check *c, const struct sockaddr *sa)
{
	if (sa && sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
		c->family = AF_INET;
		memcpy(c->addr, &in->sin_addr, 4);
	} else if (sa && sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
			/* RFC 7208 5: an IPv4-mapped address is IPv4 */
			c->family = AF_INET;
			memcpy(c->addr, in6->sin6_addr.s6_addr + 12, 4);
		} else {
			c->family = AF_INET6;
			memcpy(c->addr, in6->sin6_addr.s6_addr, 16);
		}
	} else {
		return false;
	}
	inet_ntop(c->family, c->addr, c->res.client_ip, sizeof(c->res.client_ip));
	return true;
}

static struct spf_check *
start(struct spf_ctx *ctx, const struct sockaddr *ip, const char *helo, const char *mail_from, bool helo_only,
      spf_cb cb, void *arg)
{
	struct spf_check *c = check_new(ctx, cb, arg);
	size_t hl = helo ? strlen(helo) : 0;
	bool from_helo = helo_only || !mail_from || !*mail_from;

	if (!helo)
		helo = "";
	spf_printable(c->res.helo, sizeof(c->res.helo), helo, hl);
	c->res.identity = from_helo ? SPF_ID_HELO : SPF_ID_MAILFROM;
	if (!set_client(c, ip)) {
		fail_check(c, SPF_NONE, "no IPv4 or IPv6 client address");
		return c;
	}
	if (hl > SPF_MAX_DOMAIN_LEN) {
		if (from_helo) {
			fail_check(c, SPF_NONE, "HELO name over %d bytes", SPF_MAX_DOMAIN_LEN);
			return c;
		}
		helo = "unknown"; /* only %{h} would use it */
	}
	c->helo = xstrdup(helo);

	/* <sender> and its parts (4.3): no local-part is "postmaster" */
	const char *at = NULL;
	if (from_helo) {
		c->local = xstrdup("postmaster");
		c->sender_domain = xstrdup(helo);
	} else {
		if (strlen(mail_from) > SPF_MAX_SENDER_LEN) {
			fail_check(c, SPF_NONE, "MAIL FROM over %d bytes", SPF_MAX_SENDER_LEN);
			return c;
		}
		at = strrchr(mail_from, '@');
		if (at && at > mail_from)
			c->local = xstrndup(mail_from, (size_t)(at - mail_from));
		else
			c->local = xstrdup("postmaster");
		c->sender_domain = xstrdup(at ? at + 1 : mail_from);
	}
	c->sender = xasprintf("%s@%s", c->local, c->sender_domain);
	spf_printable(c->res.sender, sizeof(c->res.sender), c->sender, strlen(c->sender));

	/* a single trailing dot is not part of the domain */
	char *d = xstrdup(c->sender_domain);
	size_t dl = strlen(d);
	if (dl > 1 && d[dl - 1] == '.')
		d[dl - 1] = '\0';
	spf_printable(c->res.domain, sizeof(c->res.domain), d, strlen(d));
	if (ctx->timeout_ms > 0) {
		struct timeval tv = { ctx->timeout_ms / 1000, (ctx->timeout_ms % 1000) * 1000 };
		evtimer_add(c->ev, &tv);
	}
	start_frame(c, d, false);
	free(d);
	return c;
}

struct spf_check *
spf_check(struct spf_ctx *ctx, const struct sockaddr *ip, const char *helo, const char *mail_from, spf_cb cb,
	  void *arg)
{
	return start(ctx, ip, helo, mail_from, false, cb, arg);
}

struct spf_check *
spf_check_helo(struct spf_ctx *ctx, const struct sockaddr *ip, const char *helo, spf_cb cb, void *arg)
{
	return start(ctx, ip, helo, NULL, true, cb, arg);
}
