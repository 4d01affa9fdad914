/*
 * vm.c - the dispatch loop of the rule VM (see vm.h) and the values it
 * works on. The program was verified before it got here (bc_verify.c):
 * operands are in range and stack depths are known, so the loop only
 * checks what depends on the message (types of values, budgets).
 *
 * Values borrow from the message view, the program's constants or the
 * run's scratch arena; action strings are copied into the result's arena.
 *
 * SECURITY: runs untrusted scripts over untrusted mail. Every run is
 * bounded by an instruction budget, a scratch-memory budget, and a PCRE2
 * match limit; comparisons are linear or O(n*m) on bounded inputs.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "vm.h"

#include <inttypes.h>
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "bytecode.h"
#include "fields.h"

enum vt { VT_NIL, VT_BOOL, VT_NUM, VT_STR, VT_STRLIST, VT_NUMLIST, VT_ADDRS };

struct val {
	uint8_t t;
	uint32_t n;
	union {
		int64_t num;
		struct hk_str s;
		const struct hk_str *strs;
		const int64_t *nums;
		const struct hk_address *addrs;
	} u;
	const char *lower;           /* VT_STR: a lower-cased copy, when known */
	const struct hk_str *lowers; /* VT_STRLIST: lower-cased copies, when known */
};

struct vm_const_value {
	struct val v;
};

/* --- constants ------------------------------------------------------------- */

static char *
lower_dup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);
	for (size_t i = 0; i < n; i++)
		p[i] = ascii_lower(s[i]);
	p[n] = '\0';
	return p;
}

/* One block per program holds the runtime constants: values, lower-case
 * copies and list arrays. */
struct vm_prep {
	struct vm_const_value *vals;
	struct arena arena;
};

void
vm_program_prepare(struct hk_program *p)
{
	struct vm_prep *prep = xcalloc(1, sizeof(*prep));
	arena_init(&prep->arena, 0);
	prep->vals = xcalloc(p->nconsts ? p->nconsts : 1, sizeof(*prep->vals));
	for (uint32_t i = 0; i < p->nconsts; i++) {
		const struct hk_const *c = &p->consts[i];
		struct val *v = &prep->vals[i].v;
		switch (c->type) {
		case HKC_STR:
			v->t = VT_STR;
			v->u.s = hk_program_str(p, c->off, c->len);
			{
				char *l = lower_dup(v->u.s.ptr, v->u.s.len);
				char *al = arena_strndup(&prep->arena, l, c->len);
				free(l);
				v->lower = al;
			}
			break;
		case HKC_NUM:
			v->t = VT_NUM;
			v->u.num = c->num;
			break;
		case HKC_BOOL:
			v->t = VT_BOOL;
			v->u.num = c->num != 0;
			break;
		case HKC_STRLIST: {
			struct hk_str *items = arena_calloc(&prep->arena, c->count ? c->count : 1, sizeof(*items));
			struct hk_str *lows = arena_calloc(&prep->arena, c->count ? c->count : 1, sizeof(*lows));
			for (uint32_t k = 0; k < c->count; k++) {
				const struct hk_const *e = &p->consts[c->first + k];
				items[k] = hk_program_str(p, e->off, e->len);
				char *l = lower_dup(items[k].ptr, items[k].len);
				lows[k] = arena_str(&prep->arena, l, items[k].len);
				free(l);
			}
			v->t = VT_STRLIST;
			v->n = c->count;
			v->u.strs = items;
			v->lowers = lows;
			break;
		}
		case HKC_NUMLIST: {
			int64_t *nums = arena_calloc(&prep->arena, c->count ? c->count : 1, sizeof(*nums));
			for (uint32_t k = 0; k < c->count; k++)
				nums[k] = p->consts[c->first + k].num;
			v->t = VT_NUMLIST;
			v->n = c->count;
			v->u.nums = nums;
			break;
		}
		default:
			v->t = VT_NIL;
			break;
		}
	}
	p->rt = (struct vm_const_value *)prep;
}

void
vm_program_release(struct hk_program *p)
{
	struct vm_prep *prep = (struct vm_prep *)p->rt;
	if (prep == NULL)
		return;
	arena_fini(&prep->arena);
	free(prep->vals);
	free(prep);
	p->rt = NULL;
}

/* --- environment ------------------------------------------------------------ */

void
hk_env_init(struct hk_env *e)
{
	memset(e, 0, sizeof(*e));
	e->spf = SPF_NONE;
}

void
hk_vm_limits_for_layer(struct hk_vm_limits *l, int layer)
{
	bool untrusted = layer == HK_LAYER_PERSONAL || layer == HK_LAYER_PANEL;
	l->max_steps = untrusted ? 500000 : 20000000;
	l->max_memory = untrusted ? (1u << 20) : (64u << 20);
	l->match_limit = untrusted ? 100000 : 1000000;
}

void
hk_result_init(struct hk_result *r)
{
	memset(r, 0, sizeof(*r));
	arena_init(&r->arena, 0);
}

void
hk_result_fini(struct hk_result *r)
{
	arena_fini(&r->arena);
	free(r->acts);
	memset(r, 0, sizeof(*r));
}

/* --- the run -------------------------------------------------------------- */

struct run {
	const struct hk_program *p;
	struct hk_message *msg;
	const struct hk_env *env;
	struct hk_result *res;
	const struct hk_vm_limits *lim;
	const struct hk_trace *trace;
	struct arena scratch;
	bool oom;
	bool too_many; /* more than HK_MAX_ACTIONS_PER_RUN actions */
	uint64_t steps;  /* instruction budget left; text scanning is charged too */
	unsigned regex_giveups; /* matches stopped by the match limit */
	unsigned rule;
	size_t first_act; /* actions of this run start here */
	size_t kept;      /* bytes copied into the result by this run */
	/* envelope addresses, parsed once */
	struct hk_address env_from, recipient;
	struct hk_address *env_to;
	bool have_env_from, have_recipient, have_env_to;
};

static void *
scratch_alloc(struct run *r, size_t n)
{
	void *p = arena_try_alloc(&r->scratch, n);
	if (p == NULL)
		r->oom = true;
	return p;
}

static void
split_addr(struct hk_str a, struct hk_address *out)
{
	memset(out, 0, sizeof(*out));
	out->addr = a;
	const char *at = NULL;
	for (size_t i = a.len; i-- > 0;)
		if (a.ptr[i] == '@') {
			at = a.ptr + i;
			break;
		}
	if (at) {
		out->local = (struct hk_str){ a.ptr, (size_t)(at - a.ptr) };
		out->domain = (struct hk_str){ at + 1, (size_t)(a.ptr + a.len - at - 1) };
	} else {
		out->local = a;
	}
	out->name = (struct hk_str){ "", 0 };
}

static const struct hk_str *
header_values(struct run *r, const char *name, size_t *n)
{
	const struct hk_str *v = NULL;
	*n = r->msg ? hk_message_header(r->msg, name, strlen(name), &v) : 0;
	return v;
}

static struct val
load_field(struct run *r, unsigned f)
{
	struct val v = { 0 };
	const struct hk_env *e = r->env;
	if (f < FIELD_COUNT && (hk_fields[f].flags & FF_MSG) && r->msg == NULL)
		return v; /* no message yet (SMTP stages before data) */
	switch (f) {
	case FIELD_SUBJECT: {
		size_t n;
		const struct hk_str *s = header_values(r, "Subject", &n);
		v.t = VT_STRLIST;
		v.n = (uint32_t)n;
		v.u.strs = s;
		break;
	}
	case FIELD_FROM:
	case FIELD_TO:
	case FIELD_CC:
	case FIELD_BCC:
	case FIELD_REPLY_TO:
	case FIELD_SENDER: {
		static const char *const names[] = { "From", "To", "Cc", "Bcc", "Reply-To", "Sender" };
		const char *name = names[f - FIELD_FROM];
		const struct hk_address *a = NULL;
		size_t n = hk_message_addresses(r->msg, name, strlen(name), &a);
		v.t = VT_ADDRS;
		v.n = (uint32_t)n;
		v.u.addrs = a;
		break;
	}
	case FIELD_BODY:
		v.t = VT_STR;
		v.u.s = hk_message_body_text(r->msg);
		v.lower = hk_message_body_text_lower(r->msg).ptr;
		break;
	case FIELD_BODY_RAW:
		v.t = VT_STR;
		v.u.s = hk_message_body_raw(r->msg);
		break;
	case FIELD_SIZE:
		v.t = VT_NUM;
		v.u.num = (int64_t)hk_message_size(r->msg);
		break;
	case FIELD_ATT_COUNT:
	case FIELD_ATT_NAME:
	case FIELD_ATT_TYPE:
	case FIELD_ATT_SIZE: {
		const struct hk_attachment *att = NULL;
		size_t n = hk_message_attachments(r->msg, &att);
		if (f == FIELD_ATT_COUNT) {
			v.t = VT_NUM;
			v.u.num = (int64_t)n;
			break;
		}
		if (f == FIELD_ATT_SIZE) {
			int64_t *nums = scratch_alloc(r, (n ? n : 1) * sizeof(*nums));
			if (nums == NULL)
				break;
			for (size_t i = 0; i < n; i++)
				nums[i] = (int64_t)att[i].size;
			v.t = VT_NUMLIST;
			v.n = (uint32_t)n;
			v.u.nums = nums;
			break;
		}
		struct hk_str *s = scratch_alloc(r, (n ? n : 1) * sizeof(*s));
		if (s == NULL)
			break;
		for (size_t i = 0; i < n; i++)
			s[i] = f == FIELD_ATT_NAME ? att[i].name : att[i].type;
		v.t = VT_STRLIST;
		v.n = (uint32_t)n;
		v.u.strs = s;
		break;
	}
	case FIELD_PRIORITY: {
		enum hk_priority pr = hk_message_priority(r->msg);
		v.t = VT_STR;
		v.u.s = pr == HK_PRIORITY_HIGH ? HK_STR("high") : pr == HK_PRIORITY_LOW ? HK_STR("low") : HK_STR("normal");
		break;
	}
	case FIELD_HOPS: {
		size_t n;
		(void)header_values(r, "Received", &n);
		v.t = VT_NUM;
		v.u.num = (int64_t)n;
		break;
	}
	case FIELD_ENV_FROM:
		if (!r->have_env_from) {
			split_addr(e->env_from, &r->env_from);
			r->have_env_from = true;
		}
		v.t = VT_ADDRS;
		v.n = 1;
		v.u.addrs = &r->env_from;
		break;
	case FIELD_RECIPIENT:
		if (!r->have_recipient) {
			split_addr(e->recipient, &r->recipient);
			r->have_recipient = true;
		}
		v.t = VT_ADDRS;
		v.n = e->recipient.len ? 1 : 0;
		v.u.addrs = &r->recipient;
		break;
	case FIELD_ENV_TO:
		if (!r->have_env_to) {
			r->env_to = scratch_alloc(r, (e->n_env_to ? e->n_env_to : 1) * sizeof(*r->env_to));
			if (r->env_to == NULL)
				break;
			for (size_t i = 0; i < e->n_env_to; i++)
				split_addr(e->env_to[i], &r->env_to[i]);
			r->have_env_to = true;
		}
		v.t = VT_ADDRS;
		v.n = (uint32_t)e->n_env_to;
		v.u.addrs = r->env_to;
		break;
	case FIELD_CLIENT_IP: v.t = VT_STR; v.u.s = e->client_ip; break;
	case FIELD_CLIENT_HELO: v.t = VT_STR; v.u.s = e->client_helo; break;
	case FIELD_CLIENT_NAME: v.t = VT_STR; v.u.s = e->client_name; break;
	case FIELD_AUTH_USER: v.t = VT_STR; v.u.s = e->auth_user; break;
	case FIELD_TLS: v.t = VT_BOOL; v.u.num = e->tls; break;
	case FIELD_SPF: {
		static const char *const words[] = { "pass", "fail", "softfail", "neutral", "none", "temperror", "permerror" };
		int s = e->spf >= 0 && e->spf < SPF_COUNT ? e->spf : SPF_NONE;
		v.t = VT_STR;
		v.u.s = (struct hk_str){ words[s], strlen(words[s]) };
		break;
	}
	case FIELD_AGE: v.t = VT_NUM; v.u.num = e->age; break;
	case FIELD_SEEN: v.t = VT_BOOL; v.u.num = e->seen; break;
	case FIELD_FLAGGED: v.t = VT_BOOL; v.u.num = e->flagged; break;
	case FIELD_FOLDER: v.t = VT_STR; v.u.s = e->folder; break;
	case FIELD_PLAN_NAME: v.t = VT_STR; v.u.s = e->plan_name; break;
	case FIELD_PLAN_RETENTION: v.t = VT_NUM; v.u.num = e->plan_retention; break;
	case FIELD_PLAN_MAX_SIZE: v.t = VT_NUM; v.u.num = e->plan_max_size; break;
	case FIELD_PLAN_QUOTA: v.t = VT_NUM; v.u.num = e->plan_quota; break;
	default: break;
	}
	return v;
}

static struct val
addr_prop(struct run *r, struct val a, unsigned part)
{
	struct val v = { 0 };
	if (a.t != VT_ADDRS)
		return v;
	struct hk_str *s = scratch_alloc(r, (a.n ? a.n : 1) * sizeof(*s));
	if (s == NULL)
		return v;
	for (uint32_t i = 0; i < a.n; i++) {
		const struct hk_address *ad = &a.u.addrs[i];
		s[i] = part == PART_LOCAL ? ad->local : part == PART_DOMAIN ? ad->domain : part == PART_NAME ? ad->name : ad->addr;
	}
	v.t = VT_STRLIST;
	v.n = a.n;
	v.u.strs = s;
	return v;
}

/* The i-th string of a text value. */
static inline struct hk_str
text_at(const struct val *v, uint32_t i)
{
	switch (v->t) {
	case VT_STR: return v->u.s;
	case VT_STRLIST: return v->u.strs[i];
	case VT_ADDRS: return v->u.addrs[i].addr;
	default: return (struct hk_str){ "", 0 };
	}
}

static inline uint32_t
text_count(const struct val *v)
{
	return v->t == VT_STR ? 1 : (v->t == VT_STRLIST || v->t == VT_ADDRS) ? v->n : 0;
}

static inline struct hk_str
lower_at(const struct val *v, uint32_t i)
{
	if (v->t == VT_STR && v->lower)
		return (struct hk_str){ v->lower, v->u.s.len };
	if (v->t == VT_STRLIST && v->lowers)
		return v->lowers[i];
	return (struct hk_str){ NULL, 0 };
}

/* Case-insensitive search of a lower-cased needle. */
static bool
ci_contains(struct hk_str hay, const char *hay_lower, struct hk_str needle_lower)
{
	if (needle_lower.len == 0)
		return true;
	if (hay.len < needle_lower.len)
		return false;
	if (hay_lower)
		return memmem(hay_lower, hay.len, needle_lower.ptr, needle_lower.len) != NULL;
	/* Candidates are the places of the needle's first byte in either case,
	 * found with memchr (vectorized in libc): `body.raw contains` scans the
	 * whole raw body, at ~10 instructions a byte with a byte loop. */
	char first = needle_lower.ptr[0];
	char upper = (first >= 'a' && first <= 'z') ? (char)(first - 32) : first;
	const char *last = hay.ptr + hay.len - needle_lower.len;
	const char *nl = memchr(hay.ptr, first, (size_t)(last - hay.ptr) + 1);
	const char *nu = upper != first ? memchr(hay.ptr, upper, (size_t)(last - hay.ptr) + 1) : NULL;
	while (nl || nu) {
		const char *p = nl && (nu == NULL || nl < nu) ? nl : nu;
		size_t k = 1;
		while (k < needle_lower.len && ascii_lower(p[k]) == needle_lower.ptr[k])
			k++;
		if (k == needle_lower.len)
			return true;
		if (p == nl)
			nl = p < last ? memchr(p + 1, first, (size_t)(last - p)) : NULL;
		else
			nu = p < last ? memchr(p + 1, upper, (size_t)(last - p)) : NULL;
	}
	return false;
}

static bool
ci_equal(struct hk_str a, struct hk_str lower_b)
{
	if (a.len != lower_b.len)
		return false;
	for (size_t i = 0; i < a.len; i++)
		if (ascii_lower(a.ptr[i]) != lower_b.ptr[i])
			return false;
	return true;
}

/* Glob with * and ?, case-insensitive, linear-time greedy matching with one
 * backtrack point (no exponential blow-up). */
static bool
glob_match(struct hk_str s, struct hk_str pat_lower)
{
	size_t si = 0, pi = 0, star = (size_t)-1, mark = 0;
	while (si < s.len) {
		if (pi < pat_lower.len && (pat_lower.ptr[pi] == '?' || pat_lower.ptr[pi] == ascii_lower(s.ptr[si])) &&
		    pat_lower.ptr[pi] != '*') {
			si++;
			pi++;
		} else if (pi < pat_lower.len && pat_lower.ptr[pi] == '*') {
			star = pi++;
			mark = si;
		} else if (star != (size_t)-1) {
			pi = star + 1;
			si = ++mark;
		} else {
			return false;
		}
	}
	while (pi < pat_lower.len && pat_lower.ptr[pi] == '*')
		pi++;
	return pi == pat_lower.len;
}

/* Lower-cases a needle that did not come from the constant pool. */
static struct hk_str
needle_lower(struct run *r, const struct val *v, uint32_t i)
{
	struct hk_str l = lower_at(v, i);
	if (l.ptr)
		return l;
	struct hk_str s = text_at(v, i);
	char *p = scratch_alloc(r, s.len + 1);
	if (p == NULL)
		return (struct hk_str){ "", 0 };
	for (size_t k = 0; k < s.len; k++)
		p[k] = ascii_lower(s.ptr[k]);
	p[s.len] = '\0';
	return (struct hk_str){ p, s.len };
}

static bool
parse_num(struct hk_str s, double *out)
{
	size_t i = 0;
	while (i < s.len && (s.ptr[i] == ' ' || s.ptr[i] == '\t'))
		i++;
	bool neg = false;
	if (i < s.len && (s.ptr[i] == '-' || s.ptr[i] == '+'))
		neg = s.ptr[i++] == '-';
	if (i >= s.len || s.ptr[i] < '0' || s.ptr[i] > '9')
		return false;
	double v = 0;
	for (; i < s.len && s.ptr[i] >= '0' && s.ptr[i] <= '9'; i++)
		v = v * 10 + (s.ptr[i] - '0');
	if (i < s.len && s.ptr[i] == '.') {
		double scale = 0.1;
		for (i++; i < s.len && s.ptr[i] >= '0' && s.ptr[i] <= '9'; i++, scale /= 10)
			v += (s.ptr[i] - '0') * scale;
	}
	*out = neg ? -v : v;
	return true;
}

static bool
num_cmp(double a, int64_t b, unsigned op)
{
	double bd = (double)b;
	switch (op) {
	case CMP_LT: return a < bd;
	case CMP_LE: return a <= bd;
	case CMP_GT: return a > bd;
	case CMP_GE: return a >= bd;
	case CMP_IS:
	case CMP_IN: return a == bd;
	default: return false;
	}
}

#define HK_MAX_REGEX_GIVEUPS 4   /* regex matches stopped by the match limit, per run */
#define HK_SCAN_BYTES_PER_STEP 256 /* text scanned by comparisons, charged to the budget */

/* Charges scanning `bytes` of text to the run's instruction budget, so
 * many tests over a large body cost what they really cost. */
static inline void
charge(struct run *r, size_t bytes)
{
	uint64_t c = bytes / HK_SCAN_BYTES_PER_STEP;
	r->steps = r->steps > c ? r->steps - c : 0;
}

static bool
compare(struct run *r, const struct val *a, const struct val *b, unsigned op)
{
	/* numbers */
	if (b->t == VT_NUM || b->t == VT_NUMLIST) {
		uint32_t nb = b->t == VT_NUM ? 1 : b->n;
		uint32_t na = a->t == VT_NUM ? 1 : a->t == VT_NUMLIST ? a->n : text_count(a);
		for (uint32_t i = 0; i < na; i++) {
			double x;
			if (a->t == VT_NUM)
				x = (double)a->u.num;
			else if (a->t == VT_NUMLIST)
				x = (double)a->u.nums[i];
			else if (!parse_num(text_at(a, i), &x))
				continue;
			for (uint32_t k = 0; k < nb; k++)
				if (num_cmp(x, b->t == VT_NUM ? b->u.num : b->u.nums[k], op))
					return true;
		}
		return false;
	}
	if (b->t == VT_BOOL)
		return a->t == VT_BOOL && (a->u.num != 0) == (b->u.num != 0);
	uint32_t na = text_count(a), nb = text_count(b);
	if (nb == 0 || na == 0)
		return false;
	for (uint32_t k = 0; k < nb; k++) {
		struct hk_str nl = needle_lower(r, b, k);
		for (uint32_t i = 0; i < na; i++) {
			struct hk_str s = text_at(a, i);
			bool hit = false;
			charge(r, s.len);
			switch (op) {
			case CMP_IS:
			case CMP_IN:
				hit = ci_equal(s, nl);
				break;
			case CMP_CONTAINS:
				hit = ci_contains(s, a->t == VT_STR ? a->lower : NULL, nl);
				break;
			case CMP_STARTS:
				hit = s.len >= nl.len && ci_equal((struct hk_str){ s.ptr, nl.len }, nl);
				break;
			case CMP_ENDS:
				hit = s.len >= nl.len && ci_equal((struct hk_str){ s.ptr + s.len - nl.len, nl.len }, nl);
				break;
			case CMP_MATCHES:
				hit = glob_match(s, nl);
				break;
			default:
				break;
			}
			if (hit)
				return true;
		}
	}
	return false;
}

/* Per-thread PCRE2 match state: created once, reused by every run. */
static _Thread_local pcre2_match_data *tl_md;
static _Thread_local pcre2_match_context *tl_mctx;

/* 1 when any value matches, 0 when none does, -1 when the match limit
 * stopped a match before any matched: then the test is neither true nor
 * false, so neither `~` nor `!~` holds (a crafted subject must not turn a
 * negated test true). */
static int
regex_match(struct run *r, const struct val *a, unsigned idx)
{
	pcre2_code *re = r->p->regexes[idx].code;
	if (re == NULL)
		return 0;
	if (tl_md == NULL) {
		tl_md = pcre2_match_data_create(1, NULL);
		tl_mctx = pcre2_match_context_create(NULL);
	}
	pcre2_set_match_limit(tl_mctx, r->lim->match_limit);
	pcre2_set_depth_limit(tl_mctx, r->lim->match_limit / 10 + 1);
	uint32_t n = text_count(a);
	int result = 0;
	for (uint32_t i = 0; i < n; i++) {
		struct hk_str s = text_at(a, i);
		int rc = pcre2_match(re, (PCRE2_SPTR)s.ptr, s.len, 0, 0, tl_md, tl_mctx);
		if (rc >= 0)
			return 1;
		charge(r, s.len);
		if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT || rc == PCRE2_ERROR_HEAPLIMIT ||
		    rc == PCRE2_ERROR_JIT_STACKLIMIT) {
			result = -1;
			/* each give-up cost a whole match limit of work: a few are
			 * bad luck, many are an attack on the server's CPU */
			if (++r->regex_giveups >= HK_MAX_REGEX_GIVEUPS)
				r->steps = 0;
		}
	}
	if (result < 0 && r->res->error == NULL)
		r->res->error = arena_printf(&r->res->arena, "a regex gave up at its match limit (%u); the test counted as not matching either way",
		    r->lim->match_limit);
	return result;
}

static bool
truth(const struct val *v)
{
	switch (v->t) {
	case VT_BOOL:
	case VT_NUM: return v->u.num != 0;
	case VT_STR: return v->u.s.len != 0;
	case VT_STRLIST:
	case VT_NUMLIST:
	case VT_ADDRS: return v->n != 0;
	default: return false;
	}
}

/* Converts a value to text for interpolation and action arguments. */
static struct hk_str
to_text(struct run *r, const struct val *v)
{
	char tmp[32];
	switch (v->t) {
	case VT_STR: return v->u.s;
	case VT_STRLIST:
	case VT_ADDRS: return v->n ? text_at(v, 0) : (struct hk_str){ "", 0 };
	case VT_NUM: {
		int n = snprintf(tmp, sizeof(tmp), "%" PRId64, v->u.num);
		char *p = scratch_alloc(r, (size_t)n + 1);
		if (p == NULL)
			return (struct hk_str){ "", 0 };
		memcpy(p, tmp, (size_t)n + 1);
		return (struct hk_str){ p, (size_t)n };
	}
	case VT_NUMLIST: {
		struct val first = { .t = VT_NUM };
		if (v->n == 0)
			return (struct hk_str){ "", 0 };
		first.u.num = v->u.nums[0];
		return to_text(r, &first);
	}
	case VT_BOOL: return v->u.num ? HK_STR("true") : HK_STR("false");
	default: return (struct hk_str){ "", 0 };
	}
}

/* Copies s into the result arena; CR and LF become spaces when oneline. */
static struct hk_str
keep_str(struct run *r, struct hk_str s, bool oneline)
{
	/* The copies count against the memory budget too: else 1,000
	 * `log body` in a 12 KB script keep 1,000 copies of a 1 MB body. */
	if (s.len > r->lim->max_memory - r->kept) {
		r->oom = true;
		return (struct hk_str){ "", 0 };
	}
	r->kept += s.len;
	char *p = arena_strndup(&r->res->arena, s.ptr ? s.ptr : "", s.len);
	if (oneline)
		for (size_t i = 0; i < s.len; i++)
			if (p[i] == '\r' || p[i] == '\n')
				p[i] = ' ';
	return (struct hk_str){ p, s.len };
}

#define HK_MAX_ACTIONS_PER_RUN 1000

static struct hk_action *
add_action(struct run *r, unsigned kind, uint32_t pc)
{
	if (r->res->n - r->first_act >= HK_MAX_ACTIONS_PER_RUN) {
		r->too_many = true;
		return NULL;
	}
	r->res->acts = xgrow(r->res->acts, &r->res->cap, r->res->n + 1, sizeof(*r->res->acts));
	struct hk_action *a = &r->res->acts[r->res->n++];
	memset(a, 0, sizeof(*a));
	a->kind = (uint8_t)kind;
	a->layer = r->p->layer;
	a->rule = (uint16_t)r->rule;
	a->pc = pc;
	a->prog = r->p;
	return a;
}

static void
trace_action(struct run *r, const struct hk_action *a)
{
	if (r->trace && r->trace->action)
		r->trace->action(r->trace->ctx, r->p, a->pc, a);
}

/* Adds one action per address in v (forward, notify). */
static void
add_targets(struct run *r, unsigned kind, uint32_t pc, const struct val *v, struct hk_str subject, bool has_subject,
    bool first_target)
{
	uint32_t n = text_count(v);
	for (uint32_t i = 0; i < n; i++) {
		struct hk_action *a = add_action(r, kind, pc);
		if (a == NULL)
			return;
		a->arg[0] = keep_str(r, text_at(v, i), true);
		if (has_subject) {
			a->arg[1] = keep_str(r, subject, true);
			a->mask = 1;
		}
		if (i == 0 && first_target)
			trace_action(r, a);
	}
}

/* Runs ACT: pops argc values (at sp - argc .. sp - 1). Returns a status
 * when the action ends the run. */
static int
do_action(struct run *r, unsigned act, unsigned argc, unsigned mask, const struct val *args, uint32_t pc)
{
	struct hk_action *a;
	switch (act) {
	case ACT_FORWARD:
		for (unsigned i = 0; i < argc; i++)
			add_targets(r, act, pc, &args[i], (struct hk_str){ NULL, 0 }, false, i == 0);
		return -1;
	case ACT_NOTIFY: {
		unsigned ntargets = (mask & 1) ? argc - 1 : argc;
		struct hk_str subject = (mask & 1) ? to_text(r, &args[argc - 1]) : (struct hk_str){ NULL, 0 };
		for (unsigned i = 0; i < ntargets; i++)
			add_targets(r, act, pc, &args[i], subject, mask & 1, i == 0);
		return -1;
	}
	default:
		break;
	}
	a = add_action(r, act, pc);
	if (a == NULL)
		return -1;
	a->mask = mask;
	switch (act) {
	case ACT_REPLY: {
		/* subject, body, from, every -> arg[0..2], num */
		unsigned k = 0;
		for (unsigned bit = 0; bit < 4; bit++) {
			if (!(mask & (1u << bit)))
				continue;
			if (bit == 3)
				a->num = args[k].t == VT_NUM ? args[k].u.num : 0;
			else
				a->arg[bit] = keep_str(r, to_text(r, &args[k]), bit != 1);
			k++;
		}
		break;
	}
	case ACT_REFUSE:
	case ACT_TEMPFAIL: {
		unsigned k = 0;
		a->num = act == ACT_REFUSE ? 550 : 451;
		/* stored bytecode is not type-checked: a code that is not a
		 * number of the action's class (5xx, 4xx) keeps the default, so
		 * a refusal can never be answered with a 2xx */
		if ((mask & 1) && args[k].t == VT_NUM && args[k].u.num / 100 == a->num / 100)
			a->num = args[k].u.num;
		k += mask & 1;
		if (mask & 2)
			a->arg[0] = keep_str(r, to_text(r, &args[k]), true);
		break;
	}
	case ACT_ADD_HEADER:
		a->arg[0] = keep_str(r, to_text(r, &args[0]), true);
		a->arg[1] = keep_str(r, to_text(r, &args[1]), true);
		break;
	default:
		if (argc >= 1)
			a->arg[0] = keep_str(r, to_text(r, &args[0]), act != ACT_LOG);
		break;
	}
	trace_action(r, a);
	switch (act) {
	case ACT_SKIP: return HK_VM_SKIP;
	case ACT_STOP:
	case ACT_REFUSE:
	case ACT_TEMPFAIL:
		r->res->stopped = true;
		return HK_VM_STOP;
	default: return -1;
	}
}

enum hk_vm_status
hk_vm_run(const struct hk_program *p, int stage, struct hk_message *msg, const struct hk_env *env, struct hk_result *res,
    const struct hk_vm_limits *lim, const struct hk_trace *trace)
{
	if (stage < 0 || stage >= HK_STAGES || p->entry[stage] == HK_NO_ENTRY)
		return HK_VM_NOCODE;
	if (res->stopped)
		return HK_VM_STOP;
	struct run r;
	memset(&r, 0, sizeof(r));
	r.p = p;
	r.msg = msg;
	r.env = env;
	r.res = res;
	r.lim = lim;
	r.trace = trace;
	r.rule = 0xFFFF;
	r.first_act = res->n;
	arena_init(&r.scratch, lim->max_memory);

	const struct vm_const_value *consts = ((const struct vm_prep *)p->rt)->vals;
	struct val stack[HK_MAX_STACK + 1];
	unsigned sp = 0;
	const uint8_t *code = p->code;
	uint32_t pc = p->entry[stage];
	r.steps = lim->max_steps;
	enum hk_vm_status status = HK_VM_OK;

	for (;;) {
		if (r.steps == 0 || r.oom || r.too_many) {
			status = HK_VM_BUDGET;
			break;
		}
		r.steps--;
		uint32_t at = pc;
		enum hk_op op = (enum hk_op)code[pc];
		const uint8_t *o = code + pc + 1;
		pc += 1u + hk_ops[op].operands;
		switch (op) {
		case OP_NOP:
			break;
		case OP_CONST:
			stack[sp++] = consts[bc_u16(o)].v;
			break;
		case OP_FIELD:
			stack[sp++] = load_field(&r, o[0]);
			break;
		case OP_HEADER: {
			struct hk_str name = consts[bc_u16(o)].v.u.s;
			struct val v = { 0 };
			if (msg) {
				const struct hk_str *vals = NULL;
				v.t = VT_STRLIST;
				v.n = (uint32_t)hk_message_header(msg, name.ptr, name.len, &vals);
				v.u.strs = vals;
			}
			stack[sp++] = v;
			break;
		}
		case OP_HAS_HEADER: {
			struct hk_str name = consts[bc_u16(o)].v.u.s;
			const struct hk_str *vals = NULL;
			struct val v = { .t = VT_BOOL };
			v.u.num = msg && hk_message_header(msg, name.ptr, name.len, &vals) > 0;
			if (trace && trace->test)
				trace->test(trace->ctx, p, at, v.u.num);
			stack[sp++] = v;
			break;
		}
		case OP_HAS_ATT: {
			const struct hk_attachment *att;
			struct val v = { .t = VT_BOOL };
			v.u.num = msg && hk_message_attachments(msg, &att) > 0;
			if (trace && trace->test)
				trace->test(trace->ctx, p, at, v.u.num);
			stack[sp++] = v;
			break;
		}
		case OP_PROP:
			stack[sp - 1] = addr_prop(&r, stack[sp - 1], o[0]);
			break;
		case OP_CMP: {
			bool hit = compare(&r, &stack[sp - 2], &stack[sp - 1], o[0]);
			if (o[1] & 1)
				hit = !hit;
			sp--;
			stack[sp - 1] = (struct val){ .t = VT_BOOL, .u.num = hit };
			if (trace && trace->test)
				trace->test(trace->ctx, p, at, hit);
			break;
		}
		case OP_REGEX: {
			int m = regex_match(&r, &stack[sp - 1], bc_u16(o));
			bool hit = m > 0;
			if ((o[2] & 1) && m >= 0)
				hit = !hit;
			stack[sp - 1] = (struct val){ .t = VT_BOOL, .u.num = hit };
			if (trace && trace->test)
				trace->test(trace->ctx, p, at, hit);
			break;
		}
		case OP_TRUTH: {
			bool t = truth(&stack[sp - 1]);
			stack[sp - 1] = (struct val){ .t = VT_BOOL, .u.num = t };
			if (trace && trace->test)
				trace->test(trace->ctx, p, at, t);
			break;
		}
		case OP_NOT:
			stack[sp - 1].u.num = !truth(&stack[sp - 1]);
			stack[sp - 1].t = VT_BOOL;
			break;
		case OP_JMP:
			pc = bc_u32(o);
			break;
		case OP_JF:
			sp--;
			if (!truth(&stack[sp]))
				pc = bc_u32(o);
			break;
		case OP_JT:
			sp--;
			if (truth(&stack[sp]))
				pc = bc_u32(o);
			break;
		case OP_CONCAT: {
			unsigned n = o[0];
			size_t total = 0;
			struct hk_str parts[256];
			for (unsigned i = 0; i < n; i++) {
				parts[i] = to_text(&r, &stack[sp - n + i]);
				total += parts[i].len;
			}
			char *s = scratch_alloc(&r, total + 1);
			struct val v = { .t = VT_STR };
			if (s) {
				size_t off = 0;
				for (unsigned i = 0; i < n; i++) {
					if (parts[i].len)
						memcpy(s + off, parts[i].ptr, parts[i].len);
					off += parts[i].len;
				}
				s[total] = '\0';
				v.u.s = (struct hk_str){ s, total };
			}
			sp -= n;
			stack[sp++] = v;
			break;
		}
		case OP_RULE:
			r.rule = bc_u16(o);
			if (trace && trace->rule)
				trace->rule(trace->ctx, p, r.rule);
			break;
		case OP_ACT: {
			unsigned act = o[0], argc = o[1], mask = o[2];
			int st = do_action(&r, act, argc, mask, &stack[sp - argc], at);
			sp -= argc;
			if (st >= 0) {
				status = (enum hk_vm_status)st;
				goto out;
			}
			break;
		}
		case OP_END:
			goto out;
		default:
			status = HK_VM_BUDGET; /* unreachable after verification */
			goto out;
		}
	}
out:
	if (status == HK_VM_BUDGET || r.oom || r.too_many) {
		/* Drop what this run did: the message falls back to what the
		 * earlier layers decided (and implicit keep). */
		res->n = r.first_act;
		res->error = r.too_many ? arena_printf(&res->arena, "%s script stopped: more than %d actions", hk_layer_name(p->layer),
		    HK_MAX_ACTIONS_PER_RUN) : arena_printf(&res->arena, "%s script stopped: %s budget exhausted", hk_layer_name(p->layer),
		    r.oom ? "memory" : "instruction");
		if (status == HK_VM_STOP)
			res->stopped = false;
		status = HK_VM_BUDGET;
	}
	arena_fini(&r.scratch);
	return status;
}

enum hk_vm_status
hk_vm_run_layers(struct hk_program *const *progs, size_t n, int stage, struct hk_message *msg, const struct hk_env *env,
    struct hk_result *res, const struct hk_trace *trace)
{
	enum hk_vm_status st = HK_VM_NOCODE;
	for (size_t i = 0; i < n && !res->stopped; i++) {
		struct hk_vm_limits lim;
		hk_vm_limits_for_layer(&lim, progs[i]->layer);
		enum hk_vm_status s = hk_vm_run(progs[i], stage, msg, env, res, &lim, trace);
		if (s != HK_VM_NOCODE)
			st = s;
	}
	return st;
}
