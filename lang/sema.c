/*
 * sema.c - the semantic checker: resolves names (fields, constants, enum
 * words), merges imported libraries, types every expression, checks each
 * action against its stage and the script's layer (what an untrusted
 * personal script may do), and emits the linter's warnings: unreachable
 * and shadowed rules, contradicting actions, too many forward targets,
 * forwarding to oneself. Errors name a fix where one is obvious.
 *
 * Input: the ASTs from parse.c. Output: annotated ASTs (type, field,
 * constant, resolved) in unit->stage[], ready for codegen.c.
 *
 * SECURITY: scripts are untrusted. Recursion over expressions is bounded by
 * HK_MAX_NESTING; imports by HK_MAX_IMPORT_DEPTH and a seen-set (a loop of
 * imports is an error, not a hang); regexes are compiled here with PCRE2 so
 * a bad one is a located error, never a runtime surprise.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "compile.h"
#include "parse.h"

const struct field_info hk_fields[FIELD_COUNT] = {
#define F(id, name, type, stages, flags) { name, type, stages, flags },
#include "fields.def"
#undef F
};

static const char *const spf_words[] = { "pass", "fail", "softfail", "neutral", "none", "temperror", "permerror", NULL };
static const char *const priority_words[] = { "high", "normal", "low", NULL };

const char *const *
sema_enum_words(int field)
{
	if (field == FIELD_SPF)
		return spf_words;
	if (field == FIELD_PRIORITY)
		return priority_words;
	return NULL;
}

struct constdef {
	struct hk_str name;
	struct ast *def;   /* AST_CONST */
	unsigned stages;   /* stages where all fields it reads have values */
};

struct sema {
	struct hk_unit *u;
	struct diag *d;
	struct arena *a;
	struct constdef *consts;
	size_t nconsts, cap_consts;
	char *import_stack[HK_MAX_IMPORT_DEPTH + 2];
	int import_depth;
	char **imported;
	size_t nimported, cap_imported;
	int stage;          /* current stage; -1 while checking a const */
	unsigned used_stages; /* while checking a const: stages its fields allow */
	int nest;
	bool nest_reported; /* one "nested too deeply" per expression */
	unsigned lib_depth;
	/* per-stage state for the linter */
	unsigned forward_count;
	struct loc first_forward;
	bool forward_warned;
};

static bool
hk_streq(struct hk_str s, const char *c)
{
	size_t n = strlen(c);
	return s.len == n && memcmp(s.ptr, c, n) == 0;
}

/* --- did you mean ----------------------------------------------------- */

static unsigned
edit_distance(const char *a, size_t na, const char *b, size_t nb)
{
	unsigned row[64];
	if (na >= 63 || nb >= 63)
		return 99;
	for (size_t j = 0; j <= nb; j++)
		row[j] = (unsigned)j;
	for (size_t i = 1; i <= na; i++) {
		unsigned prev = row[0];
		row[0] = (unsigned)i;
		for (size_t j = 1; j <= nb; j++) {
			unsigned cur = row[j];
			unsigned cost = ascii_lower(a[i - 1]) == ascii_lower(b[j - 1]) ? 0 : 1;
			unsigned best = prev + cost;
			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			/* transposition */
			row[j] = best;
			prev = cur;
		}
	}
	return row[nb];
}

struct suggest {
	const char *best;
	unsigned dist;
};

static void
suggest_try(struct suggest *s, struct hk_str word, const char *cand)
{
	unsigned d = edit_distance(word.ptr, word.len, cand, strlen(cand));
	unsigned max = word.len <= 3 ? 1 : word.len <= 6 ? 2 : 3;
	if (d <= max && (s->best == NULL || d < s->dist)) {
		s->best = cand;
		s->dist = d;
	}
}

static const char *const keyword_list[] = {
	"import", "const", "on", "rule", "when", "if", "else", "test", "true", "false", "and", "or", "not",
	"is", "contains", "starts", "ends", "with", "matches", "in", "has", "header", "headers", "expect",
	"keep", "fileinto", "forward", "notify", "reply", "reject", "discard", "skip", "stop", "expand",
	"strip", "add", "remove", "flag", "refuse", "tempfail", "expunge", "log", NULL
};

static const char *
suggest_name(struct sema *s, struct hk_str word)
{
	struct suggest sg = { NULL, 0 };
	for (int i = 0; i < FIELD_COUNT; i++)
		suggest_try(&sg, word, hk_fields[i].name);
	for (size_t i = 0; i < s->nconsts; i++) {
		char tmp[64];
		size_t n = s->consts[i].name.len < 63 ? s->consts[i].name.len : 63;
		memcpy(tmp, s->consts[i].name.ptr, n);
		tmp[n] = '\0';
		unsigned d = edit_distance(word.ptr, word.len, tmp, n);
		if (d <= 2 && (sg.best == NULL || d < sg.dist)) {
			/* constants live in the arena already; use their text */
			sg.best = arena_strndup(s->a, tmp, n);
			sg.dist = d;
		}
	}
	for (int i = 0; keyword_list[i]; i++)
		suggest_try(&sg, word, keyword_list[i]);
	static const char *const extra[] = { "attachment", "attachments", "envelope", "client", "auth", "plan", NULL };
	for (int i = 0; extra[i]; i++)
		suggest_try(&sg, word, extra[i]);
	return sg.best;
}

const char *
sema_suggest_word(struct hk_str w)
{
	struct suggest sg = { NULL, 0 };
	for (int i = 0; i < FIELD_COUNT; i++)
		if (strchr(hk_fields[i].name, '.') == NULL)
			suggest_try(&sg, w, hk_fields[i].name);
	for (int i = 0; keyword_list[i]; i++)
		suggest_try(&sg, w, keyword_list[i]);
	return sg.best;
}

/* --- names ------------------------------------------------------------- */

static struct constdef *
const_find(struct sema *s, struct hk_str name)
{
	for (size_t i = s->nconsts; i-- > 0;)
		if (str_eq(s->consts[i].name, name))
			return &s->consts[i];
	return NULL;
}

/* Joins the segments of an AST_NAME path "a.b.c" into buf. */
static size_t
path_join(const struct ast *n, char *buf, size_t cap, int max_segs)
{
	size_t len = 0;
	int seg = 0;
	const struct ast *p = n;
	for (const struct ast *c = NULL;; c = c ? c->next : n->list) {
		const struct ast *node = seg == 0 ? p : c;
		if (seg > 0 && node == NULL)
			break;
		if (seg >= max_segs)
			break;
		if (len + node->str.len + 2 >= cap)
			return 0;
		if (seg)
			buf[len++] = '.';
		memcpy(buf + len, node->str.ptr, node->str.len);
		len += node->str.len;
		seg++;
		if (seg == 1 && n->list == NULL)
			break;
		if (seg > 1 && node->next == NULL)
			break;
	}
	buf[len] = '\0';
	return len;
}

static int
field_lookup(const char *name)
{
	for (int i = 0; i < FIELD_COUNT; i++)
		if (strcmp(hk_fields[i].name, name) == 0)
			return i;
	/* friendly aliases */
	static const struct { const char *alias; int field; } aliases[] = {
		{ "attachment.name", FIELD_ATT_NAME }, { "attachment.type", FIELD_ATT_TYPE },
		{ "attachment.size", FIELD_ATT_SIZE }, { "attachments", FIELD_ATT_COUNT },
		{ "attachment.count", FIELD_ATT_COUNT },
		{ "envelope.rcpt", FIELD_ENV_TO }, { "rcpt", FIELD_RECIPIENT },
	};
	for (size_t i = 0; i < HK_ARRAY_LEN(aliases); i++)
		if (strcmp(aliases[i].alias, name) == 0)
			return aliases[i].field;
	return -1;
}

static int
addr_part(struct hk_str s)
{
	static const char *const parts[] = { "addr", "local", "domain", "name" };
	for (int i = 0; i < PART_COUNT; i++)
		if (hk_streq(s, parts[i]))
			return i;
	return -1;
}

static unsigned
path_segments(const struct ast *n)
{
	return 1 + (unsigned)ast_list_len(n);
}

static void use_field(struct sema *s, struct ast *n, int field);

/* Resolves an AST_NAME: a constant, or a field with an optional address
 * part. Sets type/field/resolved; returns false after reporting. */
static bool
resolve_name(struct sema *s, struct ast *n)
{
	if (n->list == NULL) {
		struct constdef *c = const_find(s, n->str);
		if (c) {
			n->resolved = c->def->a;
			n->type = c->def->a->type;
			n->constant = c->def->a->constant;
			if (s->stage < 0)
				s->used_stages &= c->stages;
			else if (!(c->stages & (1u << s->stage))) {
				diag_error(s->d, n->loc, "stage", "constant '%.*s' reads the message or session, which has no value in the '%s' stage",
				    (int)n->str.len, n->str.ptr, ast_stage_name(s->stage));
				return false;
			}
			return true;
		}
	}
	char name[256];
	unsigned segs = path_segments(n);
	for (unsigned k = segs; k >= 1; k--) {
		size_t len = path_join(n, name, sizeof(name), (int)k);
		if (len == 0)
			break;
		int f = field_lookup(name);
		if (f < 0)
			continue;
		if (k == segs) {
			n->field = f;
			n->type = hk_fields[f].type;
			n->op = -1;
			use_field(s, n, f);
			return true;
		}
		if (k == segs - 1 && hk_fields[f].type == TY_ADDR) {
			const struct ast *last = n->list_tail;
			int part = addr_part(last->str);
			if (part >= 0) {
				n->field = f;
				n->op = part;
				n->type = TY_STRLIST;
				use_field(s, n, f);
				return true;
			}
			diag_error(s->d, last->loc, "unknown-name", "'%s' has no part '%.*s' (parts: addr, local, domain, name)",
			    name, (int)last->str.len, last->str.ptr);
			return false;
		}
		const struct ast *bad = n->list;
		for (unsigned i = 1; i < k && bad; i++)
			bad = bad->next;
		diag_error(s->d, bad ? bad->loc : n->loc, "unknown-name", "'%s' has no part '%.*s'", name,
		    bad ? (int)bad->str.len : 0, bad ? bad->str.ptr : "");
		return false;
	}
	size_t len = path_join(n, name, sizeof(name), 16);
	struct hk_str whole = { name, len };
	const char *sg = suggest_name(s, n->list ? whole : n->str);
	if (sg && strlen(sg) == len && memcmp(sg, name, len) == 0)
		sg = NULL;
	if (len == 0)
		diag_error(s->d, n->loc, "unknown-name", "name too long");
	else if (n->list == NULL && (hk_streq(n->str, "envelope") || hk_streq(n->str, "client") || hk_streq(n->str, "auth") ||
	    hk_streq(n->str, "plan")))
		diag_error(s->d, n->loc, "unknown-name", "'%s' needs a part, e.g. %s", name,
		    hk_streq(n->str, "envelope") ? "envelope.from" : hk_streq(n->str, "client") ? "client.ip"
		    : hk_streq(n->str, "auth") ? "auth.user" : "plan.name");
	else if (sg)
		diag_error(s->d, n->loc, "unknown-name", "unknown name '%s'; did you mean '%s'?", name, sg);
	else
		diag_error(s->d, n->loc, "unknown-name", "unknown name '%s'", name);
	return false;
}

static void
use_field(struct sema *s, struct ast *n, int f)
{
	if (s->stage < 0) {
		s->used_stages &= hk_fields[f].stages;
		return;
	}
	if (!(hk_fields[f].stages & (1u << s->stage))) {
		diag_error(s->d, n->loc, "stage", "'%s' has no value in the '%s' stage", hk_fields[f].name,
		    ast_stage_name(s->stage));
	}
}

/* --- expressions ---------------------------------------------------------- */

static const char *
type_name(enum sem_type t)
{
	switch (t) {
	case TY_STR: return "a string";
	case TY_STRLIST: return "a list of strings";
	case TY_NUM: return "a number";
	case TY_NUMLIST: return "a list of numbers";
	case TY_BOOL: return "a condition";
	case TY_ADDR: return "an address";
	case TY_REGEX: return "a regex";
	case TY_ENUM: return "a keyword value";
	default: return "a value";
	}
}

static bool
is_stringish(enum sem_type t)
{
	return t == TY_STR || t == TY_STRLIST || t == TY_ADDR || t == TY_ENUM;
}

static enum sem_type check_expr(struct sema *s, struct ast *n);

/* The field behind a value, following constants (for enum words). */
static int
value_field(const struct ast *n)
{
	while (n && n->kind == AST_NAME && n->resolved)
		n = n->resolved;
	while (n && n->kind == AST_PAREN)
		n = n->a;
	if (n && n->kind == AST_NAME && n->op < 0)
		return n->field;
	return -1;
}

static bool
enum_word_ok(int field, struct hk_str w)
{
	const char *const *words = sema_enum_words(field);
	for (int i = 0; words && words[i]; i++)
		if (w.len == strlen(words[i]) && strncasecmp(w.ptr, words[i], w.len) == 0)
			return true;
	return false;
}

static void
enum_words_hint(int field, struct hk_buf *b)
{
	const char *const *words = sema_enum_words(field);
	for (int i = 0; words && words[i]; i++)
		buf_printf(b, "%s%s", i ? ", " : "", words[i]);
}

/* Turns a bare word compared against an enum field into a string. */
static bool
enum_value(struct sema *s, int field, struct ast *v)
{
	if (v->kind == AST_NAME && v->list == NULL && const_find(s, v->str) == NULL) {
		if (!enum_word_ok(field, v->str)) {
			struct hk_buf b;
			buf_init(&b);
			enum_words_hint(field, &b);
			diag_error(s->d, v->loc, "enum", "'%s' is never '%.*s' (values: %s)", hk_fields[field].name,
			    (int)v->str.len, v->str.ptr, b.data);
			buf_fini(&b);
			return false;
		}
		v->kind = AST_STR;
		v->type = TY_STR;
		v->constant = true;
		v->op = 1; /* spelled as a bare word: fmt keeps it bare */
		return true;
	}
	if (v->kind == AST_STR && !v->interpolated) {
		if (!enum_word_ok(field, v->str)) {
			struct hk_buf b;
			buf_init(&b);
			enum_words_hint(field, &b);
			diag_error(s->d, v->loc, "enum", "'%s' is never \"%.*s\" (values: %s)", hk_fields[field].name,
			    (int)v->str.len, v->str.ptr, b.data);
			buf_fini(&b);
			return false;
		}
		v->type = TY_STR;
		v->constant = true;
		return true;
	}
	if (v->kind == AST_LIST) {
		bool ok = true;
		for (struct ast *e = v->list; e; e = e->next)
			ok &= enum_value(s, field, e);
		v->type = TY_STRLIST;
		v->constant = true;
		return ok;
	}
	return false;
}

static uint32_t
regex_flags(struct sema *s, struct ast *n)
{
	uint32_t opts = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF;
	struct hk_str flags = { n->str2.ptr + n->num, n->str2.len - (size_t)n->num };
	for (size_t i = 0; i < flags.len; i++) {
		switch (flags.ptr[i]) {
		case 'i': opts |= PCRE2_CASELESS; break;
		case 'm': opts |= PCRE2_MULTILINE; break;
		case 's': opts |= PCRE2_DOTALL; break;
		case 'x': opts |= PCRE2_EXTENDED; break;
		default: {
			struct loc l = n->loc;
			l.col += (unsigned)(n->num + (int64_t)i);
			l.len = 1;
			diag_error(s->d, l, "regex", "unknown regex flag '%c' (flags: i m s x)", flags.ptr[i]);
		}
		}
	}
	return opts;
}

static void
check_regex(struct sema *s, struct ast *n)
{
	uint32_t opts = regex_flags(s, n);
	int errcode;
	PCRE2_SIZE erroff;
	pcre2_code *re = pcre2_compile((PCRE2_SPTR)n->str.ptr, n->str.len, opts, &errcode, &erroff, NULL);
	if (re == NULL) {
		PCRE2_UCHAR msg[256];
		pcre2_get_error_message(errcode, msg, sizeof(msg));
		struct loc l = n->loc;
		l.col += 1 + (unsigned)erroff;
		l.len = 1;
		diag_error(s->d, l, "regex", "invalid regex: %s", (const char *)msg);
		return;
	}
	pcre2_code_free(re);
}

static bool
addr_syntax_ok(struct hk_str a)
{
	return hk_address_ok(a);
}

static const struct ast *deref(const struct ast *v);

static enum sem_type
check_string(struct sema *s, struct ast *n)
{
	n->type = TY_STR;
	n->constant = true;
	if (!n->interpolated)
		return TY_STR;
	for (struct ast *p = n->list; p; p = p->next) {
		if (p->kind == AST_STR)
			continue;
		if (!resolve_name(s, p)) {
			n->constant = false;
			continue;
		}
		if (p->type == TY_REGEX || p->type == TY_BOOL) {
			diag_error(s->d, p->loc, "type", "cannot put %s into a string", type_name(p->type));
		}
		if (!p->constant)
			n->constant = false;
	}
	if (n->constant) {
		/* every part is known: fold to a plain string, so constants built
		 * with ${} work wherever a constant string does (lists, header
		 * names, checks of addresses and folders) */
		struct hk_buf b;
		buf_init(&b);
		for (struct ast *p = n->list; p; p = p->next) {
			const struct ast *v = deref(p);
			if (v->kind == AST_STR)
				buf_add(&b, v->str.ptr, v->str.len);
			else if (v->kind == AST_NUM)
				buf_printf(&b, "%lld", (long long)v->num);
			else if (v->kind == AST_BOOL)
				buf_adds(&b, v->num ? "true" : "false");
		}
		n->str = arena_str(s->a, b.data ? b.data : "", b.len);
		n->interpolated = false;
		buf_fini(&b);
	}
	return TY_STR;
}

static enum sem_type
check_list(struct sema *s, struct ast *n)
{
	enum sem_type elem = TY_UNKNOWN;
	n->constant = true;
	for (struct ast *e = n->list; e; e = e->next) {
		enum sem_type t = check_expr(s, e);
		if (e->kind == AST_NAME && e->resolved == NULL && t == TY_UNKNOWN)
			continue;
		if (!e->constant && t != TY_UNKNOWN) {
			diag_error(s->d, e->loc, "type", "list elements must be constants (strings or numbers)");
			continue;
		}
		if (t == TY_STRLIST || t == TY_NUMLIST) {
			diag_error(s->d, e->loc, "type", "lists cannot be nested");
			continue;
		}
		if (t != TY_STR && t != TY_NUM) {
			if (t != TY_UNKNOWN)
				diag_error(s->d, e->loc, "type", "list elements must be strings or numbers, not %s", type_name(t));
			continue;
		}
		if (elem == TY_UNKNOWN)
			elem = t;
		else if (elem != t)
			diag_error(s->d, e->loc, "type", "a list mixes strings and numbers");
	}
	n->type = elem == TY_NUM ? TY_NUMLIST : TY_STRLIST;
	return n->type;
}

static enum sem_type
check_cmp(struct sema *s, struct ast *n)
{
	enum sem_type lt = check_expr(s, n->a);
	int field = value_field(n->a);
	enum sem_type rt;
	if (lt == TY_ENUM && field >= 0) {
		struct ast *b = n->b;
		bool named_const = b->kind == AST_NAME && b->list == NULL && const_find(s, b->str);
		bool bare = !named_const && (b->kind == AST_NAME || b->kind == AST_STR || b->kind == AST_LIST);
		if (named_const) {
			/* a constant: its strings must be values of the field */
			check_expr(s, b);
			const struct ast *v = deref(b);
			const struct ast *items = v->kind == AST_LIST ? v->list : v;
			for (const struct ast *e = items; e; e = v->kind == AST_LIST ? e->next : NULL) {
				const struct ast *ev = deref(e);
				if (ev->kind == AST_STR && !ev->interpolated && !enum_word_ok(field, ev->str)) {
					struct hk_buf words;
					buf_init(&words);
					enum_words_hint(field, &words);
					diag_error(s->d, b->loc, "enum", "'%s' is never \"%.*s\" (from constant '%.*s'; values: %s)", hk_fields[field].name,
					    (int)ev->str.len, ev->str.ptr, (int)b->str.len, b->str.ptr, words.data);
					buf_fini(&words);
				}
				if (v->kind != AST_LIST)
					break;
			}
		} else if (!enum_value(s, field, b) && !bare) {
			check_expr(s, b);
		}
		rt = n->b->type;
		if (n->op != CMP_IS && n->op != CMP_IN) {
			diag_error(s->d, n->loc, "type", "'%s' can only be compared with 'is' or 'in'", hk_fields[field].name);
		}
		if (n->op == CMP_IN && rt != TY_STRLIST)
			diag_error(s->d, n->b->loc, "type", "'in' needs a list, e.g. [%s]",
			    field == FIELD_SPF ? "fail, softfail" : "high, low");
		n->type = TY_BOOL;
		return TY_BOOL;
	}
	rt = check_expr(s, n->b);
	n->type = TY_BOOL;
	if (lt == TY_UNKNOWN || rt == TY_UNKNOWN)
		return TY_BOOL;
	const char *opname = ast_cmp_name(n->op);
	switch (n->op) {
	case CMP_REGEX:
		if (rt != TY_REGEX) {
			diag_error(s->d, n->b->loc, "type", "'~' needs a regex on its right, like /pattern/i");
			break;
		}
		if (!is_stringish(lt))
			diag_error(s->d, n->a->loc, "type", "'~' matches text, not %s", type_name(lt));
		break;
	case CMP_IN:
		if (rt != TY_STRLIST && rt != TY_NUMLIST) {
			diag_error(s->d, n->b->loc, "type", "'in' needs a list on its right%s",
			    rt == TY_STR ? "; did you mean 'contains'?" : "");
			break;
		}
		if (rt == TY_NUMLIST ? (lt != TY_NUM && lt != TY_NUMLIST && lt != TY_STR && lt != TY_STRLIST) : !is_stringish(lt))
			diag_error(s->d, n->a->loc, "type", "cannot look for %s in %s", type_name(lt), type_name(rt));
		break;
	case CMP_IS:
		if (lt == TY_BOOL || rt == TY_BOOL) {
			if (lt != rt)
				diag_error(s->d, n->loc, "type", "cannot compare %s with %s", type_name(lt), type_name(rt));
			break;
		}
		if (lt == TY_NUM || lt == TY_NUMLIST) {
			if (rt != TY_NUM && rt != TY_NUMLIST)
				diag_error(s->d, n->b->loc, "type", "the left side is a number; compare it with a number");
			break;
		}
		if ((lt == TY_STR || lt == TY_STRLIST) && (rt == TY_NUM || rt == TY_NUMLIST))
			break; /* header text read as a number, like '<' does */
		/* fall through */
	case CMP_CONTAINS:
	case CMP_STARTS:
	case CMP_ENDS:
	case CMP_MATCHES:
		if (!is_stringish(lt)) {
			diag_error(s->d, n->a->loc, "type", "'%s' works on text, not %s", opname, type_name(lt));
			break;
		}
		if (rt == TY_REGEX) {
			diag_error(s->d, n->b->loc, "type", "use '~' to match a regex");
			break;
		}
		if (rt != TY_STR && rt != TY_STRLIST)
			diag_error(s->d, n->b->loc, "type", "'%s' needs text on its right, not %s", opname, type_name(rt));
		break;
	default: /* < <= > >= */
		if (lt != TY_NUM && lt != TY_NUMLIST && lt != TY_STR && lt != TY_STRLIST) {
			diag_error(s->d, n->a->loc, "type", "'%s' compares numbers, not %s", opname, type_name(lt));
			break;
		}
		if (rt != TY_NUM)
			diag_error(s->d, n->b->loc, "type", "'%s' needs a number on its right (e.g. 8M, 90 days, 5)", opname);
		break;
	}
	return TY_BOOL;
}

static enum sem_type
check_expr(struct sema *s, struct ast *n)
{
	if (++s->nest > HK_MAX_NESTING) {
		if (!s->nest_reported && (s->nest_reported = true))
			diag_error(s->d, n->loc, "nesting", "expression nested too deeply (more than %d levels)", HK_MAX_NESTING);
		s->nest--;
		n->type = TY_UNKNOWN;
		return TY_UNKNOWN;
	}
	enum sem_type t = TY_UNKNOWN;
	switch (n->kind) {
	case AST_STR: t = check_string(s, n); break;
	case AST_NUM: t = TY_NUM; n->constant = true; break;
	case AST_BOOL: t = TY_BOOL; n->constant = true; break;
	case AST_REGEX: t = TY_REGEX; n->constant = true; check_regex(s, n); break;
	case AST_LIST: t = check_list(s, n); break;
	case AST_NAME:
		if (resolve_name(s, n))
			t = n->type;
		break;
	case AST_HEADER: {
		enum sem_type nt = check_expr(s, n->a);
		if (nt != TY_UNKNOWN && (nt != TY_STR || !n->a->constant)) {
			diag_error(s->d, n->a->loc, "type", "a header name must be a constant string, like header \"X-Spam-Flag\"");
		} else if (nt == TY_STR) {
			const struct ast *v = n->a;
			while (v->kind == AST_NAME && v->resolved)
				v = v->resolved;
			struct hk_str hn = v->str;
			bool ok = hn.len > 0 && hn.len <= 128;
			for (size_t i = 0; i < hn.len; i++)
				if ((unsigned char)hn.ptr[i] <= ' ' || hn.ptr[i] == ':' || (unsigned char)hn.ptr[i] >= 0x7f)
					ok = false;
			if (!ok)
				diag_error(s->d, n->a->loc, "header", "'%.*s' is not a valid header name", (int)(hn.len > 60 ? 60 : hn.len), hn.ptr);
		}
		if (s->stage >= 0 && !(SM_MSG & (1u << s->stage)))
			diag_error(s->d, n->loc, "stage", "headers have no value in the '%s' stage (the message arrives in 'data')",
			    ast_stage_name(s->stage));
		else if (s->stage < 0)
			s->used_stages &= SM_MSG;
		t = TY_STRLIST;
		break;
	}
	case AST_HAS: {
		struct ast *w = n->a;
		if (w->kind == AST_HEADER) {
			check_expr(s, w);
		} else if (w->kind == AST_NAME && w->list == NULL &&
		    (hk_streq(w->str, "attachment") || hk_streq(w->str, "attachments"))) {
			w->field = FIELD_ATT_COUNT;
			use_field(s, w, FIELD_ATT_COUNT);
		} else {
			diag_error(s->d, w->loc, "type", "'has' works with 'attachment' and 'header \"Name\"'");
		}
		t = TY_BOOL;
		break;
	}
	case AST_PAREN:
		t = check_expr(s, n->a);
		n->constant = n->a->constant;
		break;
	case AST_NOT:
	case AST_AND:
	case AST_OR: {
		bool constant = true;
		for (struct ast *op = n->kind == AST_NOT ? n->a : n->list; op; op = n->kind == AST_NOT ? NULL : op->next) {
			enum sem_type ot = check_expr(s, op);
			constant &= op->constant;
			if (ot != TY_BOOL && ot != TY_UNKNOWN) {
				const char *w = n->kind == AST_NOT ? "not" : n->kind == AST_AND ? "and" : "or";
				if (ot == TY_STR || ot == TY_ADDR || ot == TY_STRLIST)
					diag_error(s->d, op->loc, "type", "'%s' needs a condition; %s is not one (did you mean '... is \"...\"' or '... contains \"...\"'?)",
					    w, type_name(ot));
				else
					diag_error(s->d, op->loc, "type", "'%s' needs a condition, not %s", w, type_name(ot));
			}
		}
		n->constant = constant;
		t = TY_BOOL;
		break;
	}
	case AST_CMP: t = check_cmp(s, n); break;
	default: break;
	}
	n->type = t;
	s->nest--;
	return t;
}

static void
check_condition(struct sema *s, struct ast *c)
{
	s->nest_reported = false;
	enum sem_type t = check_expr(s, c);
	if (t == TY_UNKNOWN || t == TY_BOOL)
		return;
	if (t == TY_STR || t == TY_ADDR || t == TY_STRLIST)
		diag_error(s->d, c->loc, "type", "this is %s, not a condition (did you mean '... contains \"...\"'?)", type_name(t));
	else
		diag_error(s->d, c->loc, "type", "this is %s, not a condition", type_name(t));
}

/* --- actions -------------------------------------------------------------- */

static bool
untrusted(const struct sema *s)
{
	return s->u->opts.layer == HK_LAYER_PERSONAL || s->u->opts.layer == HK_LAYER_PANEL;
}

static const char *
layer_words(const struct sema *s)
{
	return s->u->opts.layer == HK_LAYER_PERSONAL ? "personal scripts" : "control-panel settings";
}

static const struct ast *
deref(const struct ast *v)
{
	while (v && ((v->kind == AST_NAME && v->resolved) || v->kind == AST_PAREN))
		v = v->kind == AST_PAREN ? v->a : v->resolved;
	return v;
}

/* Counts the constant forward/notify targets of an argument and checks
 * their syntax; returns false when the target is computed. */
static bool
check_targets(struct sema *s, struct ast *arg, unsigned *count, struct ast *act)
{
	enum sem_type t = check_expr(s, arg);
	if (t == TY_UNKNOWN)
		return true;
	if (t != TY_STR && t != TY_STRLIST && t != TY_ADDR) {
		diag_error(s->d, arg->loc, "type", "'%s' needs addresses, not %s", ast_action_name(act->op), type_name(t));
		return true;
	}
	const struct ast *v = deref(arg);
	if (!arg->constant) {
		if (v && v->kind == AST_NAME && (v->field == FIELD_RECIPIENT || v->field == FIELD_ENV_TO) && act->op == ACT_FORWARD)
			diag_warning(s->d, arg->loc, "forward-self", "this forwards the message to the mailbox it is being delivered to; the copy is dropped to avoid a loop");
		return false;
	}
	const struct ast *items = v->kind == AST_LIST ? v->list : v;
	for (const struct ast *e = items; e; e = v->kind == AST_LIST ? e->next : NULL) {
		const struct ast *ev = deref(e);
		(*count)++;
		if (ev->kind == AST_STR && !ev->interpolated) {
			if (!addr_syntax_ok(ev->str))
				diag_error(s->d, e->loc, "address", "'%.*s' is not an e-mail address", (int)(ev->str.len > 80 ? 80 : ev->str.len), ev->str.ptr);
			else if (act->op == ACT_FORWARD && s->u->opts.owner &&
			    ev->str.len == strlen(s->u->opts.owner) && strncasecmp(ev->str.ptr, s->u->opts.owner, ev->str.len) == 0)
				diag_warning(s->d, e->loc, "forward-self", "forwarding to %s, the address this script belongs to, would loop; the copy is dropped",
				    s->u->opts.owner);
		}
		if (v->kind != AST_LIST)
			break;
	}
	return true;
}

static struct ast *
find_option(struct ast *act, const char *name)
{
	for (struct ast *o = act->opts; o; o = o->next)
		if (hk_streq(o->str, name))
			return o;
	return NULL;
}

static void
check_options(struct sema *s, struct ast *act, const char *const *allowed)
{
	for (struct ast *o = act->opts; o; o = o->next) {
		bool ok = false;
		struct suggest sg = { NULL, 0 };
		for (int i = 0; allowed[i]; i++) {
			if (hk_streq(o->str, allowed[i]))
				ok = true;
			suggest_try(&sg, o->str, allowed[i]);
		}
		struct hk_buf b;
		buf_init(&b);
		for (int i = 0; allowed[i]; i++)
			buf_printf(&b, "%s%s", i ? ", " : "", allowed[i]);
		if (!ok) {
			if (sg.best)
				diag_error(s->d, o->loc, "option", "'%s' has no option '%.*s'; did you mean '%s'?", ast_action_name(act->op),
				    (int)o->str.len, o->str.ptr, sg.best);
			else
				diag_error(s->d, o->loc, "option", "'%s' has no option '%.*s' (options: %s)", ast_action_name(act->op),
				    (int)o->str.len, o->str.ptr, b.data);
		}
		buf_fini(&b);
		for (struct ast *p = act->opts; p != o; p = p->next)
			if (str_eq(p->str, o->str))
				diag_error(s->d, o->loc, "option", "option '%.*s' given twice", (int)o->str.len, o->str.ptr);
	}
}

static void
expect_string(struct sema *s, struct ast *v, const char *what)
{
	enum sem_type t = check_expr(s, v);
	if (t != TY_UNKNOWN && t != TY_STR)
		diag_error(s->d, v->loc, "type", "%s must be a string, not %s", what, type_name(t));
}

static void
check_folder(struct sema *s, struct ast *v)
{
	expect_string(s, v, "a folder name");
	const struct ast *d = deref(v);
	if (!v->constant || d->kind != AST_STR)
		return;
	if (!hk_folder_name_ok(d->str))
		diag_error(s->d, v->loc, "folder", "'%.*s' is not a valid folder name (use names like \"Work\" or \"Work/Reports\")",
		    (int)(d->str.len > 60 ? 60 : d->str.len), d->str.ptr);
}

static void
check_smtp_code(struct sema *s, struct ast *act)
{
	int lo = act->op == ACT_REFUSE ? 500 : 400;
	if (act->a) {
		int64_t c = act->a->num;
		if (c < lo || c > lo + 99)
			diag_error(s->d, act->a->loc, "smtp-code", "'%s' needs a %dxx code, not %lld%s", ast_action_name(act->op), lo / 100,
			    (long long)c, act->op == ACT_REFUSE ? " (use tempfail for 4xx)" : " (use refuse for 5xx)");
	}
	if (act->list) {
		expect_string(s, act->list, "the reply text");
		const struct ast *t = deref(act->list);
		if (t && t->kind == AST_STR && !t->interpolated) {
			for (size_t i = 0; i < t->str.len; i++)
				if (t->str.ptr[i] == '\r' || t->str.ptr[i] == '\n')
					diag_error(s->d, act->list->loc, "smtp-code", "the reply text must be one line");
			if (t->str.len >= 2 && t->str.ptr[1] == '.' && t->str.ptr[0] != '0' + lo / 100 && t->str.ptr[0] >= '2' && t->str.ptr[0] <= '5')
				diag_warning(s->d, act->list->loc, "smtp-code", "the enhanced status code should start with %d", lo / 100);
		}
	}
}

static void
check_action(struct sema *s, struct ast *n)
{
	int act = n->op;
	if (!hk_action_stage_ok(act, s->stage)) {
		struct hk_buf where;
		buf_init(&where);
		for (int st = 0; st < STAGE_COUNT; st++)
			if (hk_action_stage_ok(act, st))
				buf_printf(&where, "%s%s", where.len ? ", " : "", ast_stage_name(st));
		diag_error(s->d, n->loc, "stage", "'%s' cannot be used in the '%s' stage (it works in: %s)", ast_action_name(act),
		    ast_stage_name(s->stage), where.data);
		buf_fini(&where);
	} else if (untrusted(s) && !hk_action_untrusted_ok(act)) {
		diag_error(s->d, n->loc, "permission", "%s cannot use '%s'", layer_words(s), ast_action_name(act));
	}

	switch (act) {
	case ACT_FILEINTO:
		check_folder(s, n->list);
		break;
	case ACT_FORWARD:
	case ACT_NOTIFY: {
		unsigned count = 0;
		for (struct ast *t = n->list; t; t = t->next) {
			bool constant = check_targets(s, t, &count, n);
			if (!constant && untrusted(s))
				diag_error(s->d, t->loc, "permission", "%s must name %s targets as constants; a target computed from the message would let mail choose where it goes",
				    layer_words(s), ast_action_name(act));
		}
		if (act == ACT_FORWARD) {
			if (s->forward_count == 0)
				s->first_forward = n->loc;
			s->forward_count += count;
			if (count > HK_MAX_FORWARDS && (s->forward_warned = true))
				diag_warning(s->d, n->loc, "forward-limit", "%u forward targets; at most %d are used per address, the rest are dropped",
				    count, HK_MAX_FORWARDS);
		} else {
			static const char *const opts[] = { "subject", NULL };
			check_options(s, n, opts);
			struct ast *o = find_option(n, "subject");
			if (o)
				expect_string(s, o->a, "the notice subject");
		}
		break;
	}
	case ACT_REPLY: {
		static const char *const opts[] = { "subject", "body", "from", "every", NULL };
		check_options(s, n, opts);
		struct ast *o;
		if ((o = find_option(n, "subject")))
			expect_string(s, o->a, "the reply subject");
		if ((o = find_option(n, "body")))
			expect_string(s, o->a, "the reply body");
		if ((o = find_option(n, "from"))) {
			expect_string(s, o->a, "the reply sender");
			const struct ast *d = deref(o->a);
			if (!o->a->constant && untrusted(s))
				diag_error(s->d, o->a->loc, "permission", "%s must give the reply sender as a constant", layer_words(s));
			else if (d && d->kind == AST_STR && !d->interpolated && !addr_syntax_ok(d->str))
				diag_error(s->d, o->a->loc, "address", "'%.*s' is not an e-mail address", (int)d->str.len, d->str.ptr);
		}
		if ((o = find_option(n, "every"))) {
			enum sem_type t = check_expr(s, o->a);
			if (t != TY_UNKNOWN && t != TY_NUM)
				diag_error(s->d, o->a->loc, "type", "'every' needs a duration, like 'every 7 days'");
			else if (t == TY_NUM && o->a->constant) {
				const struct ast *d = deref(o->a);
				if (d->kind == AST_NUM && d->op != 2)
					diag_error(s->d, o->a->loc, "type", "'every' needs a unit: 'every %lld days'", (long long)d->num);
				else if (d->kind == AST_NUM && d->num < 3600)
					diag_error(s->d, o->a->loc, "reply", "'every' must be at least 1 hour, so a sender is not flooded with replies");
			}
		}
		break;
	}
	case ACT_REJECT:
		if (n->list)
			expect_string(s, n->list, "the reason");
		break;
	case ACT_EXPAND:
		if (!hk_streq(n->str, "list"))
			diag_error(s->d, n->b->loc, "syntax", "write 'expand list \"name\"'");
		expect_string(s, n->list, "the list name");
		break;
	case ACT_STRIP:
		if (!hk_streq(n->str, "attachments"))
			diag_error(s->d, n->b->loc, "syntax", "write 'strip attachments'");
		break;
	case ACT_ADD_HEADER:
	case ACT_REMOVE_HEADER: {
		struct ast *name = n->list;
		expect_string(s, name, "the header name");
		const struct ast *d = deref(name);
		if (!name->constant)
			diag_error(s->d, name->loc, "header", "the header name must be a constant");
		else if (d->kind == AST_STR) {
			bool ok = d->str.len > 0 && d->str.len <= 128;
			for (size_t i = 0; i < d->str.len; i++)
				if ((unsigned char)d->str.ptr[i] <= ' ' || d->str.ptr[i] == ':' || (unsigned char)d->str.ptr[i] >= 0x7f)
					ok = false;
			if (!ok)
				diag_error(s->d, name->loc, "header", "'%.*s' is not a valid header name", (int)(d->str.len > 60 ? 60 : d->str.len), d->str.ptr);
			static const char *const protected_hdrs[] = { "received", "return-path", "dkim-signature", "authentication-results", "received-spf", NULL };
			for (int i = 0; protected_hdrs[i] && ok; i++)
				if (d->str.len == strlen(protected_hdrs[i]) && strncasecmp(d->str.ptr, protected_hdrs[i], d->str.len) == 0 &&
				    (act == ACT_REMOVE_HEADER || untrusted(s)))
					diag_error(s->d, name->loc, "header", "'%.*s' is a trace header and cannot be %s", (int)d->str.len, d->str.ptr,
					    act == ACT_REMOVE_HEADER ? "removed" : "added by this script");
		}
		if (act == ACT_ADD_HEADER) {
			expect_string(s, name->next, "the header value");
			const struct ast *v = deref(name->next);
			if (v && v->kind == AST_STR && !v->interpolated && (memchr(v->str.ptr, '\n', v->str.len) || memchr(v->str.ptr, '\r', v->str.len)))
				diag_error(s->d, name->next->loc, "header", "a header value must be one line");
		}
		break;
	}
	case ACT_FLAG: {
		expect_string(s, n->list, "the flag");
		const struct ast *d = deref(n->list);
		if (n->list->constant && d->kind == AST_STR && !hk_flag_ok(d->str))
			diag_error(s->d, n->list->loc, "flag", "'%.*s' is not a flag (system flags: \\\\Seen \\\\Answered \\\\Flagged \\\\Deleted \\\\Draft; or a keyword like \"$Label\")",
			    (int)(d->str.len > 40 ? 40 : d->str.len), d->str.ptr);
		break;
	}
	case ACT_REFUSE:
	case ACT_TEMPFAIL:
		check_smtp_code(s, n);
		break;
	case ACT_LOG:
		expect_string(s, n->list, "the log message");
		break;
	default:
		break;
	}
}

/* --- statements, rules, the linter --------------------------------------- */

/* What a statement list always does, for the linter. */
struct flow {
	bool terminates;     /* always ends with skip or stop */
	struct loc term_loc;
	const char *term_word;
};

static bool
same_expr(const struct ast *a, const struct ast *b)
{
	a = deref(a);
	b = deref(b);
	if (a == b)
		return true;
	if (a == NULL || b == NULL || a->kind != b->kind || a->op != b->op || a->num != b->num)
		return false;
	switch (a->kind) {
	case AST_STR:
		if (a->interpolated || b->interpolated)
			return false;
		return str_eq(a->str, b->str);
	case AST_REGEX:
		return str_eq(a->str2, b->str2);
	case AST_NAME:
		return a->field == b->field && a->op == b->op && a->resolved == NULL && b->resolved == NULL;
	case AST_NUM:
	case AST_BOOL:
		return true;
	default:
		break;
	}
	if (!same_expr(a->a, b->a) || !same_expr(a->b, b->b))
		return false;
	const struct ast *x = a->list, *y = b->list;
	for (; x && y; x = x->next, y = y->next)
		if (!same_expr(x, y))
			return false;
	return x == NULL && y == NULL;
}

/* True when `earlier` holding is implied by `later` holding: equal, or one
 * of later's top-level 'and' operands. */
static bool
implies(const struct ast *later, const struct ast *earlier)
{
	later = deref(later);
	if (same_expr(later, earlier))
		return true;
	if (later->kind == AST_AND)
		for (const struct ast *op = later->list; op; op = op->next)
			if (same_expr(op, earlier))
				return true;
	return false;
}

struct act_seen {
	struct loc discard, keep, fileinto, reject, forward;
	bool has_discard, has_keep, has_fileinto, has_reject, has_forward;
};

static void
contradictions(struct sema *s, struct ast *n, struct act_seen *seen)
{
	switch (n->op) {
	case ACT_DISCARD:
		if (seen->has_fileinto || seen->has_keep)
			diag_warning(s->d, n->loc, "contradiction", "'discard' after '%s' (line %u) does not undo it: the message is still stored",
			    seen->has_fileinto ? "fileinto" : "keep", seen->has_fileinto ? seen->fileinto.line : seen->keep.line);
		seen->has_discard = true;
		seen->discard = n->loc;
		break;
	case ACT_KEEP:
	case ACT_FILEINTO:
		if (seen->has_discard)
			diag_warning(s->d, n->loc, "contradiction", "'%s' contradicts the 'discard' at line %u: the message is stored anyway",
			    ast_action_name(n->op), seen->discard.line);
		if (seen->has_reject)
			diag_warning(s->d, n->loc, "contradiction", "'%s' contradicts the 'reject' at line %u", ast_action_name(n->op),
			    seen->reject.line);
		if (n->op == ACT_KEEP) {
			seen->has_keep = true;
			seen->keep = n->loc;
		} else {
			seen->has_fileinto = true;
			seen->fileinto = n->loc;
		}
		break;
	case ACT_REJECT:
		if (seen->has_keep || seen->has_fileinto || seen->has_forward)
			diag_warning(s->d, n->loc, "contradiction", "'reject' after '%s' (line %u): the message is refused for this mailbox but was already %s",
			    seen->has_forward ? "forward" : seen->has_keep ? "keep" : "fileinto",
			    seen->has_forward ? seen->forward.line : seen->has_keep ? seen->keep.line : seen->fileinto.line,
			    seen->has_forward ? "forwarded" : "stored");
		seen->has_reject = true;
		seen->reject = n->loc;
		break;
	case ACT_FORWARD:
		if (seen->has_reject)
			diag_warning(s->d, n->loc, "contradiction", "'forward' contradicts the 'reject' at line %u", seen->reject.line);
		seen->has_forward = true;
		seen->forward = n->loc;
		break;
	default:
		break;
	}
}

static struct flow check_stmts(struct sema *s, struct ast *list, struct act_seen *seen);

static struct flow
check_stmt(struct sema *s, struct ast *n, struct act_seen *seen)
{
	struct flow f = { false, { 0, 0, 0, 0 }, NULL };
	if (n->kind == AST_ACTION) {
		check_action(s, n);
		contradictions(s, n, seen);
		if (n->op == ACT_SKIP || n->op == ACT_STOP || n->op == ACT_REFUSE || n->op == ACT_TEMPFAIL) {
			f.terminates = true;
			f.term_loc = n->loc;
			f.term_word = ast_action_name(n->op);
		}
		return f;
	}
	if (n->kind == AST_IF) {
		if (++s->nest > HK_MAX_NESTING) {
			diag_error(s->d, n->loc, "nesting", "'if' nested too deeply");
			s->nest--;
			return f;
		}
		check_condition(s, n->a);
		struct act_seen branch = *seen;
		struct flow t = check_stmts(s, n->list, &branch);
		struct flow e = { false, { 0, 0, 0, 0 }, NULL };
		if (n->b) {
			struct act_seen branch2 = *seen;
			if (n->b->kind == AST_IF)
				e = check_stmt(s, n->b, &branch2);
			else
				e = check_stmts(s, n->b->list, &branch2);
		}
		s->nest--;
		if (t.terminates && e.terminates) {
			f = t;
		}
	}
	return f;
}

static struct flow
check_stmts(struct sema *s, struct ast *list, struct act_seen *seen)
{
	struct flow f = { false, { 0, 0, 0, 0 }, NULL };
	for (struct ast *n = list; n; n = n->next) {
		if (f.terminates) {
			diag_warning(s->d, n->loc, "unreachable", "unreachable: '%s' at line %u always ends the rules before this", f.term_word,
			    f.term_loc.line);
			f.terminates = false; /* one warning per block */
			struct act_seen dummy = { 0 };
			check_stmt(s, n, &dummy);
			f.terminates = true;
			continue;
		}
		struct flow g = check_stmt(s, n, seen);
		if (g.terminates)
			f = g;
	}
	return f;
}

/* The shadowing and duplicate-name checks compare a rule with the rules
 * before it in its stage: only with the last SEMA_LINT_WINDOW of them, so a
 * hostile file of 300,000 rules is checked in linear time, not hours. */
#define SEMA_LINT_WINDOW 256

struct rule_summary {
	struct ast *rule;
	bool terminates;
	struct loc term_loc;
	const char *term_word;
};

static void
check_stage(struct sema *s, int stage)
{
	struct ast_vec *v = &s->u->stage[stage];
	if (v->n == 0)
		return;
	s->stage = stage;
	s->forward_count = 0;
	s->forward_warned = false;
	struct rule_summary *sum = xcalloc(v->n, sizeof(*sum));
	size_t nsum = 0;
	bool warned_unreachable = false;
	struct flow always = { false, { 0, 0, 0, 0 }, NULL };
	for (size_t idx = 0; idx < v->n; idx++) {
		struct ast *n = v->items[idx];
		if (always.terminates && !warned_unreachable && n->lib_depth == 0) {
			diag_warning(s->d, n->loc, "unreachable", "unreachable %s: '%s' at line %u always ends the '%s' rules before this",
			    n->kind == AST_RULE ? "rule" : "statement", always.term_word, always.term_loc.line, ast_stage_name(stage));
			warned_unreachable = true;
		}
		struct act_seen seen = { 0 };
		if (n->kind != AST_RULE) {
			struct flow f = check_stmt(s, n, &seen);
			if (f.terminates && !always.terminates)
				always = f;
			continue;
		}
		n->rule_index = s->u->nrules++;
		if (n->a)
			check_condition(s, n->a);
		struct flow f = check_stmts(s, n->list, &seen);
		const struct ast *cond = n->a ? deref(n->a) : NULL;
		bool never = cond && cond->kind == AST_BOOL && cond->num == 0;
		bool unconditional = cond == NULL || (cond->kind == AST_BOOL && cond->num == 1);
		if (never && n->lib_depth == 0)
			diag_warning(s->d, n->a->loc, "unreachable", "rule \"%.*s\" never runs: its condition is always false", (int)n->str.len, n->str.ptr);
		if (f.terminates && unconditional && !always.terminates)
			always = f;
		/* shadowing: an earlier rule that always ends processing and
		 * whose condition this rule's condition implies */
		if (cond && !never && n->lib_depth == 0 && !always.terminates) {
			for (size_t i = nsum > SEMA_LINT_WINDOW ? nsum - SEMA_LINT_WINDOW : 0; i < nsum; i++) {
				if (!sum[i].terminates || sum[i].rule->a == NULL)
					continue;
				if (implies(n->a, sum[i].rule->a)) {
					diag_warning(s->d, n->loc, "shadowed", "rule \"%.*s\" never runs: rule \"%.*s\" at line %u matches the same mail first and ends with '%s'",
					    (int)n->str.len, n->str.ptr, (int)sum[i].rule->str.len, sum[i].rule->str.ptr, sum[i].rule->loc.line,
					    sum[i].term_word);
					break;
				}
			}
		}
		for (size_t i = nsum > SEMA_LINT_WINDOW ? nsum - SEMA_LINT_WINDOW : 0; i < nsum; i++)
			if (str_eq(sum[i].rule->str, n->str) && n->str.len && n->lib_depth == 0 && sum[i].rule->lib_depth == 0) {
				diag_warning(s->d, n->loc, "duplicate-rule", "another rule named \"%.*s\" is at line %u", (int)n->str.len, n->str.ptr,
				    sum[i].rule->loc.line);
				break;
			}
		sum[nsum].rule = n;
		sum[nsum].terminates = f.terminates;
		sum[nsum].term_loc = f.term_loc;
		sum[nsum].term_word = f.term_word;
		nsum++;
	}
	if (s->forward_count > HK_MAX_FORWARDS && !s->forward_warned)
		diag_warning(s->d, s->first_forward, "forward-limit", "this script forwards to %u addresses; at most %d are used per address",
		    s->forward_count, HK_MAX_FORWARDS);
	free(sum);
}

/* --- test blocks ------------------------------------------------------------- */

static const char *const test_verbs[] = {
	"message", "envelope", "recipient", "spf", "client", "auth", "tls", "stage", "plan",
	"age", "seen", "flagged", "folder", "replied", NULL
};

static void
check_test(struct sema *s, struct ast *t)
{
	int stage = STAGE_DELIVER;
	for (struct ast *st = t->list; st; st = st->next) {
		if (st->kind == AST_TSTMT && hk_streq(st->str, "stage") && st->list && st->list->kind == AST_NAME) {
			int sg = ast_stage_lookup(st->list->str);
			if (sg >= 0)
				stage = sg;
		}
	}
	for (struct ast *st = t->list; st; st = st->next) {
		if (st->kind == AST_EXPECT) {
			if (st->op == -1) {
				if (hk_streq(st->str, "suppressed"))
					st->op = 1;
				else {
					diag_error(s->d, st->loc, "test", "write 'expect ACTION' or 'expect suppressed ACTION', not 'expect %.*s'",
					    (int)st->str.len, st->str.ptr);
					st->op = 0;
				}
			}
			/* The expected action is checked like one in the file, but
			 * without stage or permission rules and with constant values. */
			int saved = s->stage;
			s->stage = stage;
			struct ast *x = st->a;
			for (struct ast *v = x->list; v; v = v->next) {
				enum sem_type vt = check_expr(s, v);
				bool wants_text = x->op != ACT_FORWARD && x->op != ACT_NOTIFY;
				if (vt != TY_UNKNOWN && (wants_text ? vt != TY_STR : (vt != TY_STR && vt != TY_STRLIST)))
					diag_error(s->d, v->loc, "test", "'expect %s' needs %s here, not %s", ast_action_name(x->op),
					    wants_text ? "a string" : "addresses", type_name(vt));
			}
			for (struct ast *o = x->opts; o; o = o->next)
				check_expr(s, o->a);
			s->stage = saved;
			continue;
		}
		bool known = false;
		struct suggest sg = { NULL, 0 };
		for (int i = 0; test_verbs[i]; i++) {
			if (hk_streq(st->str, test_verbs[i]))
				known = true;
			suggest_try(&sg, st->str, test_verbs[i]);
		}
		if (!known) {
			if (sg.best)
				diag_error(s->d, st->loc, "test", "unknown test setting '%.*s'; did you mean '%s'?", (int)st->str.len, st->str.ptr, sg.best);
			else
				diag_error(s->d, st->loc, "test", "unknown test setting '%.*s' (settings: message, envelope, recipient, spf, client, auth, tls, stage, plan, age, seen, flagged, folder, replied, expect)",
				    (int)st->str.len, st->str.ptr);
			continue;
		}
		for (struct ast *v = st->list; v; v = v->next) {
			if (v->kind == AST_STR)
				check_string(s, v);
			else if (v->kind == AST_LIST) {
				for (struct ast *e = v->list; e; e = e->next)
					if (e->kind == AST_STR)
						check_string(s, e);
			}
			if (v->kind == AST_NAME && v->list == NULL) {
				struct constdef *c = const_find(s, v->str);
				if (c)
					v->resolved = c->def->a;
			}
		}
		if (hk_streq(st->str, "stage") && (st->list == NULL || st->list->kind != AST_NAME || ast_stage_lookup(st->list->str) < 0))
			diag_error(s->d, st->loc, "test", "write 'stage NAME' with one of connect, helo, mail, rcpt, data, deliver, retention");
		if (hk_streq(st->str, "spf") && (st->list == NULL || st->list->kind != AST_NAME || !enum_word_ok(FIELD_SPF, st->list->str)))
			diag_error(s->d, st->loc, "test", "write 'spf RESULT' with one of pass, fail, softfail, neutral, none, temperror, permerror");
		if (hk_streq(st->str, "message") && st->list == NULL)
			diag_error(s->d, st->loc, "test", "write 'message file \"sample.eml\"' or 'message \"\"\"...\"\"\"'");
	}
}

/* --- files and imports ---------------------------------------------------------- */

static void process_file(struct sema *s, struct ast *root, unsigned file, bool is_main);

static bool
library_name_ok(struct hk_str n)
{
	if (n.len == 0 || n.len > 64)
		return false;
	for (size_t i = 0; i < n.len; i++) {
		char c = n.ptr[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return false;
	}
	return true;
}

static void
do_import(struct sema *s, struct ast *imp, unsigned from_file)
{
	struct hk_str name = imp->str;
	char *path = NULL;
	if (library_name_ok(name)) {
		path = xasprintf("%s/%.*s.hk", s->u->opts.stdlib_dir ? s->u->opts.stdlib_dir : hk_stdlib_dir(), (int)name.len, name.ptr);
	} else if (name.len > 3 && memcmp(name.ptr + name.len - 3, ".hk", 3) == 0 && memchr(name.ptr, '\0', name.len) == NULL) {
		if (untrusted(s)) {
			diag_error(s->d, imp->a->loc, "permission", "%s can only import libraries from the standard library (like import \"warpmail\")",
			    layer_words(s));
			return;
		}
		char *dir = xstrdup(s->d->files[from_file].path);
		path = name.ptr[0] == '/' ? xasprintf("%.*s", (int)name.len, name.ptr) : xasprintf("%s/%.*s", dirname(dir), (int)name.len, name.ptr);
		free(dir);
	} else {
		diag_error(s->d, imp->a->loc, "import", "'%.*s' is not a library name (libraries are lower-case names like \"warpmail\"; files end in .hk)",
		    (int)(name.len > 60 ? 60 : name.len), name.ptr);
		return;
	}
	char real[PATH_MAX];
	if (realpath(path, real) == NULL) {
		diag_error(s->d, imp->a->loc, "import", "cannot import \"%.*s\": %s (looked for %s)", (int)name.len, name.ptr, strerror(errno), path);
		free(path);
		return;
	}
	free(path);
	for (int i = 0; i < s->import_depth; i++)
		if (strcmp(s->import_stack[i], real) == 0) {
			diag_error(s->d, imp->a->loc, "import", "import loop: \"%.*s\" imports itself (through %d file%s)", (int)name.len, name.ptr,
			    s->import_depth - i, s->import_depth - i == 1 ? "" : "s");
			return;
		}
	for (size_t i = 0; i < s->nimported; i++)
		if (strcmp(s->imported[i], real) == 0)
			return; /* already imported: once is enough */
	if (s->import_depth >= HK_MAX_IMPORT_DEPTH) {
		diag_error(s->d, imp->a->loc, "import", "imports nested more than %d deep", HK_MAX_IMPORT_DEPTH);
		return;
	}
	if (s->d->nfiles >= HK_MAX_FILES) {
		diag_error(s->d, imp->a->loc, "import", "too many imported files");
		return;
	}
	char *text;
	size_t len;
	if (read_file(real, HK_MAX_SOURCE_SIZE, &text, &len) < 0) {
		diag_error(s->d, imp->a->loc, "import", "cannot read %s: %s", real, errno == EFBIG ? "file too large" : strerror(errno));
		return;
	}
	s->imported = xgrow(s->imported, &s->cap_imported, s->nimported + 1, sizeof(char *));
	s->imported[s->nimported++] = xstrdup(real);
	/* a file is shown relative to its importer, as given, never by the
	 * machine's absolute path (messages and golden files stay stable) */
	char *dir = xstrdup(s->d->files[from_file].name);
	char *shown = library_name_ok(name) ? xasprintf("%.*s.hk", (int)name.len, name.ptr)
	    : name.ptr[0] == '/' ? xasprintf("%.*s", (int)name.len, name.ptr) : xasprintf("%s/%.*s", dirname(dir), (int)name.len, name.ptr);
	free(dir);
	unsigned f = diag_add_file(s->d, shown, real, text, len);
	free(shown);
	struct ast *root = parse_file(s->a, s->d, f, NULL, NULL);
	s->import_stack[s->import_depth++] = xstrdup(real);
	s->lib_depth++;
	process_file(s, root, f, false);
	s->lib_depth--;
	free(s->import_stack[--s->import_depth]);
}

static void
vec_push(struct ast_vec *v, struct ast *n)
{
	v->items = xgrow(v->items, &v->cap, v->n + 1, sizeof(*v->items));
	v->items[v->n++] = n;
}

static void
mark_lib(struct ast *n, unsigned depth)
{
	n->lib_depth = depth;
}

static void
process_file(struct sema *s, struct ast *root, unsigned file, bool is_main)
{
	for (struct ast *it = root->list; it; it = it->next) {
		switch (it->kind) {
		case AST_IMPORT:
			do_import(s, it, file);
			break;
		case AST_CONST: {
			if (field_lookup(arena_strndup(s->a, it->str.ptr, it->str.len)) >= 0 || ast_stage_lookup(it->str) >= 0 ||
			    hk_streq(it->str, "attachment") || hk_streq(it->str, "envelope") || hk_streq(it->str, "client") ||
			    hk_streq(it->str, "auth") || hk_streq(it->str, "plan")) {
				diag_error(s->d, it->b->loc, "const", "'%.*s' is a built-in name; choose another name for the constant",
				    (int)it->str.len, it->str.ptr);
				break;
			}
			struct constdef *prev = const_find(s, it->str);
			if (prev) {
				diag_error(s->d, it->b->loc, "const", "constant '%.*s' is already defined at %s:%u", (int)it->str.len, it->str.ptr,
				    s->d->files[prev->def->loc.file].name, prev->def->loc.line);
				break;
			}
			int saved = s->stage;
			s->stage = -1;
			s->used_stages = ~0u;
			enum sem_type t = check_expr(s, it->a);
			s->stage = saved;
			it->type = t;
			s->consts = xgrow(s->consts, &s->cap_consts, s->nconsts + 1, sizeof(*s->consts));
			s->consts[s->nconsts].name = it->str;
			s->consts[s->nconsts].def = it;
			s->consts[s->nconsts].stages = s->used_stages;
			s->nconsts++;
			break;
		}
		case AST_ON: {
			int stage = ast_stage_lookup(it->str);
			if (stage < 0) {
				struct suggest sg = { NULL, 0 };
				for (int i = 0; i < STAGE_COUNT; i++)
					suggest_try(&sg, it->str, ast_stage_name(i));
				if (sg.best)
					diag_error(s->d, it->b->loc, "stage", "unknown stage '%.*s'; did you mean '%s'?", (int)it->str.len, it->str.ptr, sg.best);
				else
					diag_error(s->d, it->b->loc, "stage", "unknown stage '%.*s' (stages: connect, helo, mail, rcpt, data, deliver, retention)",
					    (int)it->str.len, it->str.ptr);
				break;
			}
			if (untrusted(s) && stage != STAGE_DELIVER) {
				diag_error(s->d, it->b->loc, "permission", "%s can only use the 'deliver' stage, not '%s'", layer_words(s),
				    ast_stage_name(stage));
				break;
			}
			for (struct ast *r = it->list; r; r = r->next) {
				mark_lib(r, s->lib_depth);
				vec_push(&s->u->stage[stage], r);
			}
			break;
		}
		case AST_TEST:
			/* checked after the stages; a library's tests are its own */
			if (is_main)
				vec_push(&s->u->tests, it);
			break;
		default:
			break;
		}
	}
}

void
sema_check_unit(struct hk_unit *u)
{
	struct sema s;
	memset(&s, 0, sizeof(s));
	s.u = u;
	s.d = u->diag;
	s.a = &u->arena;
	s.stage = -1;
	char real[PATH_MAX];
	if (realpath(u->diag->files[u->main_file].path, real))
		s.import_stack[s.import_depth++] = xstrdup(real);
	process_file(&s, u->root, u->main_file, true);
	for (int st = 0; st < STAGE_COUNT; st++)
		check_stage(&s, st);
	s.stage = STAGE_DELIVER;
	for (size_t i = 0; i < u->tests.n; i++)
		check_test(&s, u->tests.items[i]);
	while (s.import_depth > 0)
		free(s.import_stack[--s.import_depth]);
	for (size_t i = 0; i < s.nimported; i++)
		free(s.imported[i]);
	free(s.imported);
	free(s.consts);
}
