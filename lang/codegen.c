/*
 * codegen.c - turns a checked unit (sema.c) into a program: bytecode per
 * stage, constant pool (deduplicated), regex table, rule table and line
 * table. Conditions compile to short-circuit jumps; constants are folded
 * by reference (a const name emits its value).
 *
 * The program is then verified (bc_verify.c) and prepared exactly as if it
 * had been read from disk, so the servers never run unverified code.
 */
#include <stdlib.h>
#include <string.h>

#include "bytecode.h"
#include "compile.h"

#define CONCAT_CHUNK 32 /* values joined by one CONCAT */
#define ACT_CHUNK 32    /* targets passed to one forward/notify ACT */

struct label {
	uint32_t target;   /* UINT32_MAX until placed */
	uint32_t *patches; /* offsets of u32 operands to fill */
	size_t n, cap;
};

struct list_slot {
	const struct ast *node;
	uint16_t k;
};

struct cg {
	struct hk_unit *u;
	struct list_slot *lists; /* list constants already emitted */
	size_t nlists, lists_cap;
	struct hk_buf code;
	struct hk_buf strpool;
	struct hk_const *consts;
	size_t nconsts, cap_consts;
	struct hk_regex_info *regexes;
	size_t nregexes, cap_regexes;
	struct hk_rule_info *rules;
	size_t nrules, cap_rules;
	struct hk_line_info *lines;
	size_t nlines, cap_lines;
	struct label *labels;
	size_t nlabels, cap_labels;
	/* constant dedupe: open addressing over const indexes + 1 */
	uint32_t *hash;
	size_t hash_cap;
	bool too_big;
	struct loc cur;
};

static uint64_t
fnv(const void *p, size_t n, uint64_t h)
{
	const unsigned char *s = p;
	for (size_t i = 0; i < n; i++) {
		h ^= s[i];
		h *= 1099511628211ull;
	}
	return h;
}

static uint32_t
pool_add(struct cg *cg, const char *s, size_t n)
{
	if (cg->strpool.len + n > HK_MAX_STRPOOL) {
		cg->too_big = true;
		return 0;
	}
	uint32_t off = (uint32_t)cg->strpool.len;
	buf_add(&cg->strpool, s, n);
	return off;
}

static uint64_t
const_hash(const struct cg *cg, const struct hk_const *c)
{
	uint64_t h = fnv(&c->type, 1, 14695981039346656037ull);
	if (c->type == HKC_STR)
		h = fnv(cg->strpool.data + c->off, c->len, h);
	else if (c->type == HKC_STRLIST || c->type == HKC_NUMLIST) {
		h = fnv(&c->first, sizeof(c->first), h);
		h = fnv(&c->count, sizeof(c->count), h);
	} else
		h = fnv(&c->num, sizeof(c->num), h);
	return h;
}

static bool
const_same(const struct cg *cg, const struct hk_const *a, const struct hk_const *b)
{
	if (a->type != b->type)
		return false;
	if (a->type == HKC_STR)
		return a->len == b->len && memcmp(cg->strpool.data + a->off, cg->strpool.data + b->off, a->len) == 0;
	if (a->type == HKC_STRLIST || a->type == HKC_NUMLIST)
		return a->first == b->first && a->count == b->count;
	return a->num == b->num;
}

static void
hash_grow(struct cg *cg)
{
	size_t ncap = cg->hash_cap ? cg->hash_cap * 2 : 1024;
	uint32_t *h = xcalloc(ncap, sizeof(*h));
	for (size_t i = 0; i < cg->nconsts; i++) {
		size_t slot = const_hash(cg, &cg->consts[i]) & (ncap - 1);
		while (h[slot])
			slot = (slot + 1) & (ncap - 1);
		h[slot] = (uint32_t)i + 1;
	}
	free(cg->hash);
	cg->hash = h;
	cg->hash_cap = ncap;
}

/* Adds (or finds) a constant; `dedupe` is false for list items, which
 * must stay contiguous. */
static uint16_t
const_add(struct cg *cg, struct hk_const c, bool dedupe)
{
	if (dedupe) {
		if (cg->nconsts * 2 >= cg->hash_cap)
			hash_grow(cg);
		size_t slot = const_hash(cg, &c) & (cg->hash_cap - 1);
		while (cg->hash[slot]) {
			if (const_same(cg, &cg->consts[cg->hash[slot] - 1], &c))
				return (uint16_t)(cg->hash[slot] - 1);
			slot = (slot + 1) & (cg->hash_cap - 1);
		}
		if (cg->nconsts >= HK_MAX_CONSTS) {
			cg->too_big = true;
			return 0;
		}
		cg->hash[slot] = (uint32_t)cg->nconsts + 1;
	} else if (cg->nconsts >= HK_MAX_CONSTS) {
		cg->too_big = true;
		return 0;
	} else if (cg->nconsts * 2 >= cg->hash_cap) {
		hash_grow(cg);
	}
	cg->consts = xgrow(cg->consts, &cg->cap_consts, cg->nconsts + 1, sizeof(*cg->consts));
	cg->consts[cg->nconsts] = c;
	return (uint16_t)cg->nconsts++;
}

static uint16_t
const_str(struct cg *cg, struct hk_str s)
{
	/* look up before adding bytes to the pool */
	struct hk_const probe = { .type = HKC_STR, .off = 0, .len = (uint32_t)s.len };
	if (cg->hash_cap) {
		uint64_t h = fnv(&probe.type, 1, 14695981039346656037ull);
		h = fnv(s.ptr, s.len, h);
		size_t slot = h & (cg->hash_cap - 1);
		while (cg->hash[slot]) {
			const struct hk_const *c = &cg->consts[cg->hash[slot] - 1];
			if (c->type == HKC_STR && c->len == s.len && memcmp(cg->strpool.data + c->off, s.ptr, s.len) == 0)
				return (uint16_t)(cg->hash[slot] - 1);
			slot = (slot + 1) & (cg->hash_cap - 1);
		}
	}
	probe.off = pool_add(cg, s.ptr, s.len);
	return const_add(cg, probe, true);
}

static uint16_t
const_num(struct cg *cg, uint8_t type, int64_t v)
{
	struct hk_const c = { .type = type, .num = v };
	return const_add(cg, c, true);
}

/* --- emitting ------------------------------------------------------------ */

static void
mark_line(struct cg *cg, struct loc l)
{
	uint32_t pc = (uint32_t)cg->code.len;
	if (cg->nlines) {
		struct hk_line_info *last = &cg->lines[cg->nlines - 1];
		if (last->line == l.line && last->col == l.col && last->file == l.file)
			return;
		if (last->pc == pc) {
			last->line = l.line;
			last->col = (uint16_t)(l.col > 0xFFFF ? 0xFFFF : l.col);
			last->file = (uint16_t)l.file;
			return;
		}
	}
	cg->lines = xgrow(cg->lines, &cg->cap_lines, cg->nlines + 1, sizeof(*cg->lines));
	cg->lines[cg->nlines++] = (struct hk_line_info){ pc, l.line, (uint16_t)(l.col > 0xFFFF ? 0xFFFF : l.col), (uint16_t)l.file };
}

static void
emit_op(struct cg *cg, enum hk_op op, struct loc l)
{
	mark_line(cg, l);
	buf_addc(&cg->code, (char)op);
	if (cg->code.len > HK_MAX_CODE)
		cg->too_big = true;
}

static void
emit_u8(struct cg *cg, unsigned v)
{
	buf_addc(&cg->code, (char)(v & 0xFF));
}

static void
emit_u16(struct cg *cg, unsigned v)
{
	emit_u8(cg, v & 0xFF);
	emit_u8(cg, (v >> 8) & 0xFF);
}

static void
emit_u32(struct cg *cg, uint32_t v)
{
	emit_u16(cg, v & 0xFFFF);
	emit_u16(cg, v >> 16);
}

static size_t
label_new(struct cg *cg)
{
	cg->labels = xgrow(cg->labels, &cg->cap_labels, cg->nlabels + 1, sizeof(*cg->labels));
	memset(&cg->labels[cg->nlabels], 0, sizeof(struct label));
	cg->labels[cg->nlabels].target = UINT32_MAX;
	return cg->nlabels++;
}

static void
emit_jump(struct cg *cg, enum hk_op op, size_t label, struct loc l)
{
	emit_op(cg, op, l);
	struct label *lb = &cg->labels[label];
	lb->patches = xgrow(lb->patches, &lb->cap, lb->n + 1, sizeof(*lb->patches));
	lb->patches[lb->n++] = (uint32_t)cg->code.len;
	emit_u32(cg, lb->target);
}

static void
label_place(struct cg *cg, size_t label)
{
	struct label *lb = &cg->labels[label];
	lb->target = (uint32_t)cg->code.len;
	for (size_t i = 0; i < lb->n; i++) {
		uint32_t at = lb->patches[i];
		unsigned char *p = (unsigned char *)cg->code.data + at;
		p[0] = lb->target & 0xFF;
		p[1] = (lb->target >> 8) & 0xFF;
		p[2] = (lb->target >> 16) & 0xFF;
		p[3] = (lb->target >> 24) & 0xFF;
	}
}

/* --- expressions ------------------------------------------------------------ */

static const struct ast *
deref(const struct ast *v)
{
	while (v && ((v->kind == AST_NAME && v->resolved) || v->kind == AST_PAREN))
		v = v->kind == AST_PAREN ? v->a : v->resolved;
	return v;
}

static void gen_value(struct cg *cg, const struct ast *n);
static void gen_branch(struct cg *cg, const struct ast *n, bool jump_if, size_t label);

static uint16_t list_const_new(struct cg *cg, const struct ast *n);

/* A constant list is stored once however often it is used: a map from
 * the list's node to its constant (open addressing on the pointer). */
static uint16_t
list_const(struct cg *cg, const struct ast *n)
{
	if (cg->nlists * 2 >= cg->lists_cap) {
		size_t ncap = cg->lists_cap ? cg->lists_cap * 2 : 64;
		struct list_slot *t = xcalloc(ncap, sizeof(*t));
		for (size_t i = 0; i < cg->lists_cap; i++)
			if (cg->lists[i].node) {
				size_t h = ((uintptr_t)cg->lists[i].node >> 4) & (ncap - 1);
				while (t[h].node)
					h = (h + 1) & (ncap - 1);
				t[h] = cg->lists[i];
			}
		free(cg->lists);
		cg->lists = t;
		cg->lists_cap = ncap;
	}
	size_t h = ((uintptr_t)n >> 4) & (cg->lists_cap - 1);
	while (cg->lists[h].node) {
		if (cg->lists[h].node == n)
			return cg->lists[h].k;
		h = (h + 1) & (cg->lists_cap - 1);
	}
	uint16_t k = list_const_new(cg, n);
	cg->lists[h].node = n;
	cg->lists[h].k = k;
	cg->nlists++;
	return k;
}

static uint16_t
list_const_new(struct cg *cg, const struct ast *n)
{
	uint32_t first = (uint32_t)cg->nconsts;
	uint32_t count = 0;
	bool nums = n->type == TY_NUMLIST;
	for (const struct ast *e = n->list; e; e = e->next) {
		const struct ast *v = deref(e);
		struct hk_const c = { 0 };
		if (v->kind == AST_STR) {
			c.type = HKC_STR;
			c.off = pool_add(cg, v->str.ptr, v->str.len);
			c.len = (uint32_t)v->str.len;
		} else {
			c.type = HKC_NUM;
			c.num = v->num;
		}
		(void)nums;
		const_add(cg, c, false);
		count++;
	}
	struct hk_const l = { .type = nums ? HKC_NUMLIST : HKC_STRLIST, .first = first, .count = count };
	return const_add(cg, l, true);
}

static const struct ast *
header_name(const struct ast *n)
{
	return deref(n->a);
}

static bool
is_condition(const struct ast *n)
{
	n = deref(n);
	return n->kind == AST_CMP || n->kind == AST_AND || n->kind == AST_OR || n->kind == AST_NOT;
}

static void
gen_value(struct cg *cg, const struct ast *n)
{
	struct loc l = n->loc;
	if (n->kind == AST_NAME && n->resolved) {
		gen_value(cg, n->resolved);
		return;
	}
	if (n->kind == AST_PAREN) {
		gen_value(cg, n->a);
		return;
	}
	if (is_condition(n)) {
		size_t lf = label_new(cg), lend = label_new(cg);
		gen_branch(cg, n, false, lf);
		emit_op(cg, OP_CONST, l);
		emit_u16(cg, const_num(cg, HKC_BOOL, 1));
		emit_jump(cg, OP_JMP, lend, l);
		label_place(cg, lf);
		emit_op(cg, OP_CONST, l);
		emit_u16(cg, const_num(cg, HKC_BOOL, 0));
		label_place(cg, lend);
		return;
	}
	switch (n->kind) {
	case AST_STR:
		if (!n->interpolated) {
			emit_op(cg, OP_CONST, l);
			emit_u16(cg, const_str(cg, n->str));
			return;
		}
		{
			/* CONCAT takes at most CONCAT_CHUNK values, so a long string
			 * is joined in steps, each continuing the previous result */
			unsigned parts = 0;
			for (const struct ast *p = n->list; p; p = p->next) {
				if (parts == CONCAT_CHUNK) {
					emit_op(cg, OP_CONCAT, l);
					emit_u8(cg, parts);
					parts = 1;
				}
				gen_value(cg, p);
				parts++;
			}
			emit_op(cg, OP_CONCAT, l);
			emit_u8(cg, parts);
		}
		return;
	case AST_NUM:
		emit_op(cg, OP_CONST, l);
		emit_u16(cg, const_num(cg, HKC_NUM, n->num));
		return;
	case AST_BOOL:
		emit_op(cg, OP_CONST, l);
		emit_u16(cg, const_num(cg, HKC_BOOL, n->num));
		return;
	case AST_LIST:
		emit_op(cg, OP_CONST, l);
		emit_u16(cg, list_const(cg, n));
		return;
	case AST_NAME:
		emit_op(cg, OP_FIELD, l);
		emit_u8(cg, (unsigned)n->field);
		if (n->op >= 0) {
			emit_op(cg, OP_PROP, l);
			emit_u8(cg, (unsigned)n->op);
		}
		return;
	case AST_HEADER:
		emit_op(cg, OP_HEADER, l);
		emit_u16(cg, const_str(cg, header_name(n)->str));
		return;
	case AST_HAS:
		if (n->a->kind == AST_HEADER) {
			emit_op(cg, OP_HAS_HEADER, l);
			emit_u16(cg, const_str(cg, header_name(n->a)->str));
		} else {
			emit_op(cg, OP_HAS_ATT, l);
		}
		return;
	default:
		/* regex literals only appear on the right of '~' (sema) */
		emit_op(cg, OP_CONST, l);
		emit_u16(cg, const_num(cg, HKC_BOOL, 0));
		return;
	}
}

static uint16_t
regex_add(struct cg *cg, const struct ast *r)
{
	uint32_t flags = 0;
	for (size_t i = (size_t)r->num; i < r->str2.len; i++) {
		switch (r->str2.ptr[i]) {
		case 'i': flags |= HK_RE_CASELESS; break;
		case 'm': flags |= HK_RE_MULTILINE; break;
		case 's': flags |= HK_RE_DOTALL; break;
		case 'x': flags |= HK_RE_EXTENDED; break;
		default: break;
		}
	}
	for (size_t i = 0; i < cg->nregexes; i++)
		if (cg->regexes[i].flags == flags && cg->regexes[i].len == r->str.len &&
		    memcmp(cg->strpool.data + cg->regexes[i].off, r->str.ptr, r->str.len) == 0)
			return (uint16_t)i;
	if (cg->nregexes >= HK_MAX_REGEXES) {
		cg->too_big = true;
		return 0;
	}
	cg->regexes = xgrow(cg->regexes, &cg->cap_regexes, cg->nregexes + 1, sizeof(*cg->regexes));
	struct hk_regex_info *ri = &cg->regexes[cg->nregexes];
	ri->off = pool_add(cg, r->str.ptr, r->str.len);
	ri->len = (uint32_t)r->str.len;
	ri->flags = flags;
	ri->code = NULL;
	return (uint16_t)cg->nregexes++;
}

static void
gen_branch(struct cg *cg, const struct ast *n, bool jump_if, size_t label)
{
	if (n->kind == AST_NAME && n->resolved) {
		gen_branch(cg, n->resolved, jump_if, label);
		return;
	}
	switch (n->kind) {
	case AST_PAREN:
		gen_branch(cg, n->a, jump_if, label);
		return;
	case AST_NOT:
		gen_branch(cg, n->a, !jump_if, label);
		return;
	case AST_AND:
	case AST_OR: {
		/* 'and' jumps out early on a false operand, 'or' on a true one;
		 * the last operand decides when none did */
		bool early = n->kind == AST_OR;
		if (jump_if == early) {
			for (const struct ast *op = n->list; op; op = op->next)
				gen_branch(cg, op, jump_if, label);
		} else {
			size_t skip = label_new(cg);
			for (const struct ast *op = n->list; op; op = op->next)
				gen_branch(cg, op, op->next ? early : jump_if, op->next ? skip : label);
			label_place(cg, skip);
		}
		return;
	}
	case AST_BOOL:
		if ((n->num != 0) == jump_if)
			emit_jump(cg, OP_JMP, label, n->loc);
		return;
	case AST_CMP: {
		gen_value(cg, n->a);
		const struct ast *r = deref(n->b);
		/* the line table points a test at its left operand, so a trace
		 * shows the whole comparison */
		if (n->op == CMP_REGEX && r->kind == AST_REGEX) {
			emit_op(cg, OP_REGEX, n->a->loc);
			emit_u16(cg, regex_add(cg, r));
			emit_u8(cg, n->num ? 1 : 0);
		} else {
			gen_value(cg, n->b);
			emit_op(cg, OP_CMP, n->a->loc);
			emit_u8(cg, (unsigned)n->op);
			emit_u8(cg, n->num ? 1 : 0);
		}
		emit_jump(cg, jump_if ? OP_JT : OP_JF, label, n->loc);
		return;
	}
	default:
		gen_value(cg, n);
		/* TRUTH also gives a trace line for a bare condition like `tls`;
		 * `has` tests trace themselves */
		if (deref(n)->kind != AST_HAS)
			emit_op(cg, OP_TRUTH, n->loc);
		emit_jump(cg, jump_if ? OP_JT : OP_JF, label, n->loc);
		return;
	}
}

/* --- statements --------------------------------------------------------------- */

static const struct ast *
option(const struct ast *act, const char *name)
{
	for (const struct ast *o = act->opts; o; o = o->next)
		if (o->str.len == strlen(name) && memcmp(o->str.ptr, name, o->str.len) == 0)
			return o;
	return NULL;
}

static void
gen_action(struct cg *cg, const struct ast *n)
{
	unsigned argc = 0, mask = 0;
	switch (n->op) {
	case ACT_REPLY: {
		static const char *const names[] = { "subject", "body", "from", "every" };
		for (unsigned i = 0; i < 4; i++) {
			const struct ast *o = option(n, names[i]);
			if (o) {
				gen_value(cg, o->a);
				argc++;
				mask |= 1u << i;
			}
		}
		break;
	}
	case ACT_NOTIFY:
	case ACT_FORWARD: {
		/* one ACT per ACT_CHUNK targets (each a string or a list), with
		 * the notice subject evaluated for each */
		const struct ast *o = n->op == ACT_NOTIFY ? option(n, "subject") : NULL;
		const struct ast *v = n->list;
		while (v) {
			argc = 0;
			for (; v && argc < ACT_CHUNK; v = v->next, argc++)
				gen_value(cg, v);
			mask = 0;
			if (o) {
				gen_value(cg, o->a);
				argc++;
				mask = 1;
			}
			emit_op(cg, OP_ACT, n->loc);
			emit_u8(cg, (unsigned)n->op);
			emit_u8(cg, argc);
			emit_u8(cg, mask);
		}
		return;
	}
	case ACT_REFUSE:
	case ACT_TEMPFAIL:
		if (n->a) {
			gen_value(cg, n->a);
			argc++;
			mask |= 1;
		}
		if (n->list) {
			gen_value(cg, n->list);
			argc++;
			mask |= 2;
		}
		break;
	default:
		for (const struct ast *v = n->list; v; v = v->next) {
			if (argc == 255)
				break;
			gen_value(cg, v);
			argc++;
		}
		if (n->op == ACT_REJECT && argc)
			mask |= 1;
		break;
	}
	emit_op(cg, OP_ACT, n->loc);
	emit_u8(cg, (unsigned)n->op);
	emit_u8(cg, argc);
	emit_u8(cg, mask);
}

static void gen_stmts(struct cg *cg, const struct ast *list);

static void
gen_stmt(struct cg *cg, const struct ast *n)
{
	if (n->kind == AST_ACTION) {
		gen_action(cg, n);
		return;
	}
	if (n->kind == AST_IF) {
		size_t lelse = label_new(cg), lend = label_new(cg);
		gen_branch(cg, n->a, false, lelse);
		gen_stmts(cg, n->list);
		if (n->b) {
			emit_jump(cg, OP_JMP, lend, n->loc);
			label_place(cg, lelse);
			if (n->b->kind == AST_IF)
				gen_stmt(cg, n->b);
			else
				gen_stmts(cg, n->b->list);
			label_place(cg, lend);
		} else {
			label_place(cg, lelse);
		}
	}
}

static void
gen_stmts(struct cg *cg, const struct ast *list)
{
	for (const struct ast *n = list; n; n = n->next)
		gen_stmt(cg, n);
}

static void
gen_rule(struct cg *cg, const struct ast *r, int stage)
{
	cg->rules = xgrow(cg->rules, &cg->cap_rules, cg->nrules + 1, sizeof(*cg->rules));
	struct hk_rule_info *ri = &cg->rules[cg->nrules];
	ri->name_off = pool_add(cg, r->str.ptr, r->str.len);
	ri->name_len = (uint32_t)r->str.len;
	ri->file = (uint16_t)r->loc.file;
	ri->stage = (uint8_t)stage;
	ri->line = r->loc.line;
	ri->col = r->loc.col;
	if (cg->nrules >= HK_MAX_RULES) {
		cg->too_big = true;
		return;
	}
	emit_op(cg, OP_RULE, r->loc);
	emit_u16(cg, (unsigned)cg->nrules++);
	size_t next = label_new(cg);
	if (r->a)
		gen_branch(cg, r->a, false, next);
	gen_stmts(cg, r->list);
	label_place(cg, next);
}

struct hk_program *
codegen_unit(struct hk_unit *u)
{
	struct cg cg;
	memset(&cg, 0, sizeof(cg));
	cg.u = u;
	buf_init(&cg.code);
	buf_init(&cg.strpool);
	hash_grow(&cg);

	struct hk_program *p = hk_program_new();
	p->layer = (uint8_t)u->opts.layer;
	for (int st = 0; st < STAGE_COUNT; st++) {
		p->entry[st] = HK_NO_ENTRY;
		if (u->stage[st].n == 0)
			continue;
		p->entry[st] = (uint32_t)cg.code.len;
		for (size_t i = 0; i < u->stage[st].n; i++) {
			const struct ast *n = u->stage[st].items[i];
			if (n->kind == AST_RULE)
				gen_rule(&cg, n, st);
			else
				gen_stmt(&cg, n);
		}
		emit_op(&cg, OP_END, u->stage[st].items[u->stage[st].n - 1]->loc);
	}
	/* file names */
	p->nfiles = (uint32_t)u->diag->nfiles;
	p->files = xcalloc(p->nfiles ? p->nfiles : 1, sizeof(*p->files));
	for (size_t i = 0; i < u->diag->nfiles; i++) {
		const char *nm = u->diag->files[i].name;
		p->files[i].off = pool_add(&cg, nm, strlen(nm));
		p->files[i].len = (uint32_t)strlen(nm);
	}

	for (size_t i = 0; i < cg.nlabels; i++)
		free(cg.labels[i].patches);
	free(cg.labels);
	free(cg.hash);
	free(cg.lists);
	if (cg.too_big) {
		diag_error_noloc(u->diag, "the script is too large to compile (limits: %u constants, %u rules, %u MB of code)",
		    HK_MAX_CONSTS, HK_MAX_RULES, HK_MAX_CODE >> 20);
		buf_fini(&cg.code);
		buf_fini(&cg.strpool);
		free(cg.consts);
		free(cg.regexes);
		free(cg.rules);
		free(cg.lines);
		hk_program_unref(&p);
		return NULL;
	}
	p->code_len = (uint32_t)cg.code.len;
	p->code = (uint8_t *)buf_steal(&cg.code);
	p->strpool_len = (uint32_t)cg.strpool.len;
	p->strpool = buf_steal(&cg.strpool);
	p->consts = cg.consts;
	p->nconsts = (uint32_t)cg.nconsts;
	p->regexes = cg.regexes;
	p->nregexes = (uint32_t)cg.nregexes;
	p->rules = cg.rules;
	p->nrules = (uint32_t)cg.nrules;
	p->lines = cg.lines;
	p->nlines = (uint32_t)cg.nlines;
	return p;
}
