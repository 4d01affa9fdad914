/*
 * address.c - RFC 5322 address-list parser (see address.h).
 *
 * Pipeline: message.c calls it on the raw, unfolded value of each address
 * header a rule asks for (hk_message_addresses) and caches the result.
 *
 * Grammar, tolerant (RFC 5322 3.4 plus the obsolete forms of 4.4):
 *   list     = item *("," item)
 *   item     = group / mailbox / garbage
 *   group    = phrase ":" [mailbox *("," mailbox)] ";"
 *   mailbox  = [phrase] "<" [route ":"] addr-spec ">" / addr-spec
 *   addr-spec = local ["@" domain]
 * Comments and blanks (CFWS) may appear between any two tokens. An item
 * that has none of these shapes is skipped up to the next ',' or ';'.
 *
 * Ownership: strings go into the caller's arena, written in place with a
 * computed upper bound; the array into the caller's address_list (heap).
 * Tokens of an item sit in a stack array (heap only past TOKS_INLINE).
 *
 * Limits: ADDRESS_MAX_PER_LIST addresses per call; nothing recurses (nested
 * comments are counted, not recursed into).
 *
 * SECURITY: the value is hostile. Every loop advances the lexer by at least
 * one byte; unterminated quotes, comments, literals and angle brackets end
 * at the end of the value.
 */
#include "address.h"

#include <stdlib.h>
#include <string.h>

#include "rfc2047.h"

enum tok_type { T_ATOM, T_QSTR, T_DLIT, T_SPECIAL, T_END };

struct tok {
	enum tok_type type;
	const char *p; /* ATOM, DLIT: raw text; QSTR: inside the quotes */
	size_t n;
	char c;        /* T_SPECIAL */
	bool ws;       /* blanks or a comment before it */
};

struct lexer {
	const char *s;
	size_t len, i;
	const char *comment; /* the last comment's text, for "a@b (Name)" */
	size_t comment_len;
};

static bool
is_blank(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == 0 || c == 0x7F || c < 0x20;
}

static bool
is_special(char c)
{
	return c == '(' || c == ')' || c == '<' || c == '>' || c == '[' || c == ':' || c == ';' || c == '@' ||
	       c == ',' || c == '.' || c == '"';
}

/* Skips blanks and comments; true when something was skipped. */
static bool
skip_cfws(struct lexer *lx)
{
	bool any = false;
	while (lx->i < lx->len) {
		unsigned char c = (unsigned char)lx->s[lx->i];
		if (is_blank(c)) {
			lx->i++;
			any = true;
		} else if (c == '(') {
			size_t depth = 1, start = ++lx->i;
			while (lx->i < lx->len && depth > 0) {
				char d = lx->s[lx->i];
				if (d == '\\' && lx->i + 1 < lx->len)
					lx->i++;
				else if (d == '(')
					depth++;
				else if (d == ')')
					depth--;
				lx->i++;
			}
			size_t end = depth == 0 ? lx->i - 1 : lx->i;
			lx->comment = lx->s + start;
			lx->comment_len = end - start;
			any = true;
		} else if (c == ')') {
			lx->i++; /* stray */
			any = true;
		} else {
			break;
		}
	}
	return any;
}

static struct tok
lex_next(struct lexer *lx)
{
	struct tok t = { .type = T_END };
	t.ws = skip_cfws(lx);
	if (lx->i >= lx->len)
		return t;
	const char *s = lx->s;
	char c = s[lx->i];
	if (c == '"') {
		size_t st = lx->i + 1, j = st;
		while (j < lx->len && s[j] != '"') {
			if (s[j] == '\\' && j + 1 < lx->len)
				j++;
			j++;
		}
		if (j >= lx->len) {
			/* unterminated: drop the quote mark and read on, rather
			 * than let it swallow the rest of the list */
			lx->i++;
			struct tok u = lex_next(lx);
			u.ws = true;
			return u;
		}
		t.type = T_QSTR;
		t.p = s + st;
		t.n = j - st;
		lx->i = j + 1;
		return t;
	}
	if (c == '[') {
		size_t st = lx->i++;
		while (lx->i < lx->len && s[lx->i] != ']') {
			if (s[lx->i] == '\\' && lx->i + 1 < lx->len)
				lx->i++;
			lx->i++;
		}
		if (lx->i < lx->len)
			lx->i++;
		t.type = T_DLIT;
		t.p = s + st;
		t.n = lx->i - st;
		return t;
	}
	if (is_special(c)) {
		t.type = T_SPECIAL;
		t.c = c;
		t.p = s + lx->i;
		t.n = 1;
		lx->i++;
		return t;
	}
	size_t st = lx->i;
	while (lx->i < lx->len && !is_special(s[lx->i]) && !is_blank((unsigned char)s[lx->i]))
		lx->i++;
	t.type = T_ATOM;
	t.p = s + st;
	t.n = lx->i - st;
	return t;
}

#define TOKS_INLINE 32

/* Tokens of one item; on the stack unless an item is unusually long. */
struct toks {
	struct tok *v;
	size_t n, cap;
	struct tok inl[TOKS_INLINE];
};

static void
toks_init(struct toks *ts)
{
	ts->v = ts->inl;
	ts->n = 0;
	ts->cap = TOKS_INLINE;
}

static void
toks_add(struct toks *ts, struct tok t)
{
	if (ts->n == ts->cap) {
		size_t cap = ts->cap;
		struct tok *nv = xgrow(NULL, &cap, ts->n + 1, sizeof(*nv));
		memcpy(nv, ts->v, ts->n * sizeof(*nv));
		if (ts->v != ts->inl)
			free(ts->v);
		ts->v = nv;
		ts->cap = cap;
	}
	ts->v[ts->n++] = t;
}

static void
toks_fini(struct toks *ts)
{
	if (ts->v != ts->inl)
		free(ts->v);
}

/* Appends a token's text: quoted strings unquoted. Returns the new end. */
static char *
tok_put(char *d, const struct tok *t)
{
	if (t->type != T_QSTR) {
		memcpy(d, t->p, t->n);
		return d + t->n;
	}
	for (size_t i = 0; i < t->n; i++) {
		if (t->p[i] == '\\' && i + 1 < t->n)
			i++;
		*d++ = t->p[i];
	}
	return d;
}

static const struct hk_str empty = { "", 0 };

/* A phrase as text, words joined by one space where the source had blanks,
 * quoted strings unquoted, RFC 2047 decoded, in the arena. */
static struct hk_str
phrase_decode(struct arena *a, const struct tok *v, size_t n, bool raw, unsigned *errs)
{
	size_t bound = 0;
	for (size_t i = 0; i < n; i++)
		bound += v[i].n + 1;
	if (bound == 0)
		return empty;
	char *text = arena_alloc(a, bound + 1), *d = text;
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && v[i].ws)
			*d++ = ' ';
		d = tok_put(d, &v[i]);
	}
	size_t len = (size_t)(d - text);
	bool plain = true;
	for (size_t i = 0; i < len && plain && !raw; i++) {
		unsigned char c = (unsigned char)text[i];
		if (c >= 0x80 || c == 0x1B || (c == '=' && i + 1 < len && text[i + 1] == '?'))
			plain = false;
	}
	const char *r = text;
	if (!plain) {
		struct hk_buf out;
		buf_init(&out);
		*errs |= rfc2047_decode(text, len, &out);
		r = arena_strndup(a, out.data, out.len);
		len = out.len;
		buf_fini(&out);
	}
	while (len && (*r == ' ' || *r == '\t'))
		r++, len--;
	while (len && (r[len - 1] == ' ' || r[len - 1] == '\t'))
		len--;
	return len ? (struct hk_str){ r, len } : empty;
}

static bool
is_atext(unsigned char c)
{
	if (c >= 0x80)
		return true; /* RFC 6532 UTF-8 */
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	switch (c) {
	case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+': case '-': case '/':
	case '=': case '?': case '^': case '_': case '`': case '{': case '|': case '}': case '~':
		return true;
	}
	return false;
}

static bool
is_dot_atom(const char *s, size_t n)
{
	if (n == 0 || s[0] == '.' || s[n - 1] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '.') {
			if (s[i + 1] == '.')
				return false;
		} else if (!is_atext((unsigned char)s[i])) {
			return false;
		}
	}
	return true;
}

struct ctx {
	struct arena *a;
	struct address_list *list;
	struct hk_str group;
	struct hk_str route; /* of the angle address being emitted */
	unsigned flags;      /* ADDRESS_* */
	bool in_group;       /* a GROUP_START was emitted and its end is due */
	unsigned errs;
	size_t added;
};

static struct hk_address *
list_push(struct ctx *cx)
{
	struct address_list *l = cx->list;
	l->v = xgrow(l->v, &l->cap, l->n + 1, sizeof(*l->v));
	struct hk_address *ad = &l->v[l->n++];
	*ad = (struct hk_address){ .name = empty, .local = empty, .domain = empty, .addr = empty,
				   .group = empty, .route = empty, .kind = ADDRESS_MAILBOX };
	return ad;
}

/* ADDRESS_GROUP_MARKS: the start marker of a group named by tokens v[0..n). */
static void
group_start(struct ctx *cx, const struct tok *v, size_t n)
{
	if (cx->added >= ADDRESS_MAX_PER_LIST)
		return;
	struct hk_address *ad = list_push(cx);
	ad->kind = ADDRESS_GROUP_START;
	ad->name = phrase_decode(cx->a, v, n, cx->flags & ADDRESS_RAW_NAMES, &cx->errs);
	cx->added++;
	cx->in_group = true;
}

static void
group_end(struct ctx *cx)
{
	if (!cx->in_group)
		return;
	list_push(cx)->kind = ADDRESS_GROUP_END;
	cx->in_group = false;
}

/* Builds and appends one address from the addr-spec tokens v[0..n) and the
 * display name tokens d[0..dn); `comment` names it when d is empty. */
static void
emit(struct ctx *cx, const struct tok *d, size_t dn, const struct tok *v, size_t n, struct hk_str comment)
{
	size_t at = n;
	bool word = false;
	for (size_t i = 0; i < n; i++) {
		if (v[i].type == T_SPECIAL && v[i].c == '@')
			at = i;
		else if (v[i].type == T_ATOM || v[i].type == T_QSTR)
			word = true;
	}
	if (cx->added >= ADDRESS_MAX_PER_LIST)
		return;
	if (!word)
		at = n = 0; /* only punctuation: no address, maybe a name */

	bool raw = cx->flags & ADDRESS_RAW_NAMES;
	struct hk_str name = phrase_decode(cx->a, d, dn, raw, &cx->errs);
	if (name.len == 0 && comment.len > 0) {
		struct tok ct = { .type = T_ATOM, .p = comment.ptr, .n = comment.len };
		name = phrase_decode(cx->a, &ct, 1, raw, &cx->errs);
	}
	if (!word && (name.len == 0 || dn == 0))
		return;

	struct hk_str local = empty, domain = empty, addr = empty;
	size_t lb = 0, db = 0;
	for (size_t i = 0; i < at; i++)
		lb += v[i].n + 1;
	for (size_t i = at + 1; i < n; i++)
		db += v[i].n;
	if (lb) {
		char *l = arena_alloc(cx->a, lb + 1), *e = l;
		for (size_t i = 0; i < at; i++) {
			if (at == n && i > 0 && v[i].ws)
				*e++ = ' '; /* "John Smith": no '@', keep the words apart */
			e = tok_put(e, &v[i]);
		}
		*e = '\0';
		local = (struct hk_str){ l, (size_t)(e - l) };
	}
	if (db) {
		char *m = arena_alloc(cx->a, db + 1), *e = m;
		for (size_t i = at + 1; i < n; i++)
			if (!(v[i].type == T_SPECIAL && v[i].c == '@'))
				e = tok_put(e, &v[i]);
		*e = '\0';
		domain = (struct hk_str){ m, (size_t)(e - m) };
	}
	if (domain.len == 0) {
		addr = local;
	} else if (is_dot_atom(local.ptr, local.len)) {
		char *x = arena_alloc(cx->a, local.len + 1 + domain.len + 1);
		memcpy(x, local.ptr, local.len);
		x[local.len] = '@';
		memcpy(x + local.len + 1, domain.ptr, domain.len);
		x[local.len + 1 + domain.len] = '\0';
		addr = (struct hk_str){ x, local.len + 1 + domain.len };
	} else {
		/* canonical form: the local part quoted again */
		char *x = arena_alloc(cx->a, local.len * 2 + 3 + domain.len + 1), *e = x;
		*e++ = '"';
		for (size_t i = 0; i < local.len; i++) {
			if (local.ptr[i] == '"' || local.ptr[i] == '\\')
				*e++ = '\\';
			*e++ = local.ptr[i];
		}
		*e++ = '"';
		*e++ = '@';
		memcpy(e, domain.ptr, domain.len);
		e += domain.len;
		*e = '\0';
		addr = (struct hk_str){ x, (size_t)(e - x) };
	}

	struct hk_address *ad = list_push(cx);
	ad->name = name;
	ad->local = local;
	ad->domain = domain;
	ad->addr = addr;
	ad->group = cx->group;
	if (cx->flags & ADDRESS_KEEP_ROUTE)
		ad->route = cx->route;
	cx->added++;
}

unsigned
address_parse(const char *in, size_t len, struct arena *a, struct address_list *list)
{
	return address_parse_flags(in, len, 0, a, list);
}

unsigned
address_parse_flags(const char *in, size_t len, unsigned flags, struct arena *a, struct address_list *list)
{
	struct lexer lx = { .s = in, .len = len, .i = 0 };
	struct toks ts, as;
	struct ctx cx = { .a = a, .list = list, .group = { "", 0 }, .route = { "", 0 }, .flags = flags };
	toks_init(&ts);
	toks_init(&as);

	bool done = false;
	while (!done) {
		ts.n = 0;
		lx.comment = NULL;
		lx.comment_len = 0;
		cx.route = empty;
		bool emitted = false;
		struct tok t;
		for (;;) {
			t = lex_next(&lx);
			if (t.type == T_END)
				break;
			if (t.type == T_SPECIAL && (t.c == ',' || t.c == ';'))
				break;
			if (t.type == T_SPECIAL && t.c == ':' && !emitted) {
				/* group start; a second ':' inside a group is junk */
				if (cx.group.len == 0 && ts.n > 0) {
					cx.group = phrase_decode(a, ts.v, ts.n, flags & ADDRESS_RAW_NAMES, &cx.errs);
					if (cx.group.len == 0)
						cx.group = (struct hk_str){ ":", 1 };
				}
				if ((flags & ADDRESS_GROUP_MARKS) && !cx.in_group)
					group_start(&cx, ts.v, ts.n);
				ts.n = 0;
				lx.comment = NULL;
				lx.comment_len = 0;
				continue;
			}
			if (t.type == T_SPECIAL && t.c == '<' && !emitted) {
				/* angle address: [route ":"] addr-spec ">" */
				as.n = 0;
				bool route = false;
				size_t route_start = 0;
				cx.route = empty;
				for (;;) {
					struct tok u = lex_next(&lx);
					if (u.type == T_END) {
						t = u;
						break;
					}
					if (u.type == T_SPECIAL && u.c == '>')
						break;
					if (u.type == T_SPECIAL && u.c == '@' && as.n == 0) {
						route = true;
						route_start = (size_t)(u.p - in);
					}
					if (u.type == T_SPECIAL && u.c == ':' && route) {
						cx.route = (struct hk_str){ in + route_start, (size_t)(u.p - in) - route_start };
						as.n = 0;
						route = false;
						continue;
					}
					if (u.type == T_SPECIAL && (u.c == ',' || u.c == ';') && !route) {
						t = u; /* unterminated: the ',' ends the item */
						break;
					}
					toks_add(&as, u);
				}
				struct hk_str comment = { lx.comment, lx.comment_len };
				emit(&cx, ts.v, ts.n, as.v, as.n, ts.n ? (struct hk_str){ "", 0 } : comment);
				emitted = true;
				if (t.type == T_END || (t.type == T_SPECIAL && (t.c == ',' || t.c == ';')))
					break;
				continue;
			}
			if (!emitted)
				toks_add(&ts, t);
			/* after an angle address everything up to ',' is junk */
		}
		if (!emitted && ts.n > 0)
			emit(&cx, NULL, 0, ts.v, ts.n, (struct hk_str){ lx.comment, lx.comment_len });
		if (t.type == T_SPECIAL && t.c == ';') {
			cx.group = (struct hk_str){ "", 0 };
			group_end(&cx);
		}
		if (t.type == T_END)
			done = true;
	}
	group_end(&cx); /* a group without its ';' */
	toks_fini(&ts);
	toks_fini(&as);
	return cx.errs;
}
