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
 * Ownership: strings go into the caller's arena, the array into the
 * caller's address_list (heap). A token array (heap) is reused per item.
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

struct toks {
	struct tok *v;
	size_t n, cap;
};

static void
toks_add(struct toks *ts, struct tok t)
{
	ts->v = xgrow(ts->v, &ts->cap, ts->n + 1, sizeof(*ts->v));
	ts->v[ts->n++] = t;
}

static void
qstr_unescape(const char *p, size_t n, struct hk_buf *out)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\\' && i + 1 < n)
			i++;
		buf_addc(out, p[i]);
	}
}

/* A phrase as text: words joined by one space where the source had blanks,
 * quoted strings unquoted; then RFC 2047 decoded into `out`. */
static unsigned
phrase_decode(const struct tok *v, size_t n, struct hk_buf *tmp, struct hk_buf *out)
{
	buf_reset(tmp);
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && v[i].ws)
			buf_addc(tmp, ' ');
		if (v[i].type == T_QSTR)
			qstr_unescape(v[i].p, v[i].n, tmp);
		else
			buf_add(tmp, v[i].p, v[i].n);
	}
	buf_reset(out);
	if (tmp->len == 0)
		return 0;
	unsigned errs = rfc2047_decode(tmp->data, tmp->len, out);
	/* trim blanks the decoding may have produced */
	size_t s = 0, e = out->len;
	while (s < e && (out->data[s] == ' ' || out->data[s] == '\t'))
		s++;
	while (e > s && (out->data[e - 1] == ' ' || out->data[e - 1] == '\t'))
		e--;
	memmove(out->data, out->data + s, e - s);
	out->len = e - s;
	out->data[out->len] = '\0';
	return errs;
}

static bool
is_atext(unsigned char c)
{
	if (c >= 0x80)
		return true; /* RFC 6532 UTF-8 */
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
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
	struct hk_buf tmp, name, local, domain, addr;
	struct hk_str group;
	unsigned errs;
	size_t added;
};

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

	buf_reset(&cx->local);
	buf_reset(&cx->domain);
	if (!word)
		at = n = 0; /* only punctuation: no address, maybe a name */
	for (size_t i = 0; i < at; i++) {
		if (at == n && i > 0 && v[i].ws)
			buf_addc(&cx->local, ' '); /* "John Smith": no '@', keep the words apart */
		if (v[i].type == T_QSTR)
			qstr_unescape(v[i].p, v[i].n, &cx->local);
		else
			buf_add(&cx->local, v[i].p, v[i].n);
	}
	for (size_t i = at + 1; i < n; i++)
		if (!(v[i].type == T_SPECIAL && v[i].c == '@'))
			buf_add(&cx->domain, v[i].p, v[i].n);

	cx->errs |= phrase_decode(d, dn, &cx->tmp, &cx->name);
	if (cx->name.len == 0 && comment.len > 0) {
		struct tok ct = { .type = T_ATOM, .p = comment.ptr, .n = comment.len };
		cx->errs |= phrase_decode(&ct, 1, &cx->tmp, &cx->name);
	}
	if (!word && cx->name.len == 0)
		return;
	if (!word && dn == 0)
		return;

	buf_reset(&cx->addr);
	if (cx->domain.len > 0) {
		if (is_dot_atom(cx->local.data ? cx->local.data : "", cx->local.len)) {
			buf_add(&cx->addr, cx->local.data, cx->local.len);
		} else {
			buf_addc(&cx->addr, '"');
			for (size_t i = 0; i < cx->local.len; i++) {
				if (cx->local.data[i] == '"' || cx->local.data[i] == '\\')
					buf_addc(&cx->addr, '\\');
				buf_addc(&cx->addr, cx->local.data[i]);
			}
			buf_addc(&cx->addr, '"');
		}
		buf_addc(&cx->addr, '@');
		buf_add(&cx->addr, cx->domain.data, cx->domain.len);
	} else {
		buf_add(&cx->addr, cx->local.data ? cx->local.data : "", cx->local.len);
	}

	struct address_list *l = cx->list;
	l->v = xgrow(l->v, &l->cap, l->n + 1, sizeof(*l->v));
	struct hk_address *ad = &l->v[l->n++];
	ad->name = arena_str(cx->a, cx->name.data ? cx->name.data : "", cx->name.len);
	ad->local = arena_str(cx->a, cx->local.data ? cx->local.data : "", cx->local.len);
	ad->domain = arena_str(cx->a, cx->domain.data ? cx->domain.data : "", cx->domain.len);
	ad->addr = arena_str(cx->a, cx->addr.data ? cx->addr.data : "", cx->addr.len);
	ad->group = cx->group;
	cx->added++;
}

unsigned
address_parse(const char *in, size_t len, struct arena *a, struct address_list *list)
{
	struct lexer lx = { .s = in, .len = len, .i = 0 };
	struct toks ts = { 0 }, as = { 0 };
	struct ctx cx = { .a = a, .list = list, .group = { "", 0 } };
	buf_init(&cx.tmp);
	buf_init(&cx.name);
	buf_init(&cx.local);
	buf_init(&cx.domain);
	buf_init(&cx.addr);

	bool done = false;
	while (!done) {
		ts.n = 0;
		lx.comment = NULL;
		lx.comment_len = 0;
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
					cx.errs |= phrase_decode(ts.v, ts.n, &cx.tmp, &cx.name);
					cx.group = arena_str(a, cx.name.data ? cx.name.data : "", cx.name.len);
					if (cx.group.len == 0)
						cx.group = (struct hk_str){ ":", 1 };
				}
				ts.n = 0;
				lx.comment = NULL;
				lx.comment_len = 0;
				continue;
			}
			if (t.type == T_SPECIAL && t.c == '<' && !emitted) {
				/* angle address: [route ":"] addr-spec ">" */
				as.n = 0;
				bool route = false;
				for (;;) {
					struct tok u = lex_next(&lx);
					if (u.type == T_END) {
						t = u;
						break;
					}
					if (u.type == T_SPECIAL && u.c == '>')
						break;
					if (u.type == T_SPECIAL && u.c == '@' && as.n == 0)
						route = true;
					if (u.type == T_SPECIAL && u.c == ':' && route) {
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
		if (t.type == T_SPECIAL && t.c == ';')
			cx.group = (struct hk_str){ "", 0 };
		if (t.type == T_END)
			done = true;
	}
	free(ts.v);
	free(as.v);
	buf_fini(&cx.tmp);
	buf_fini(&cx.name);
	buf_fini(&cx.local);
	buf_fini(&cx.domain);
	buf_fini(&cx.addr);
	return cx.errs;
}
