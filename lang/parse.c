/*
 * parse.c - drives the lexer into the Lemon parser, and decodes string and
 * regex literals for the grammar actions.
 *
 * SECURITY: input is a user's script. Literal decoding is bounded by the
 * token length limit of the lexer; nesting is bounded by the parser stack
 * (%stack_size in grammar.y) and by HK_MAX_NESTING in sema.
 */
#include "parse.h"

#include <stdlib.h>
#include <string.h>

#include "grammar.h"

/* Appends the UTF-8 encoding of code point cp. */
static void
put_utf8(struct hk_buf *b, uint32_t cp)
{
	char s[4];
	size_t n;
	if (cp < 0x80) {
		s[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		s[0] = (char)(0xC0 | (cp >> 6));
		s[1] = (char)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		s[0] = (char)(0xE0 | (cp >> 12));
		s[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		s[2] = (char)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		s[0] = (char)(0xF0 | (cp >> 18));
		s[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
		s[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
		s[3] = (char)(0x80 | (cp & 0x3F));
		n = 4;
	}
	buf_add(b, s, n);
}

static struct loc
loc_in(const struct token *t, const char *body, const char *p)
{
	/* Locations inside single-line literals are exact; inside """ blocks
	 * they point at the literal's start. */
	struct loc l = t->loc;
	if (memchr(t->ptr, '\n', t->len) == NULL) {
		l.col += (unsigned)(p - t->ptr);
		l.len = 1;
	}
	(void)body;
	return l;
}

/* Removes the indentation of a """ block: the first newline after the
 * opening quotes is dropped, and when the closing quotes stand on their own
 * line, that line's indentation is removed from every line (as in Swift),
 * otherwise the smallest indentation of the non-blank lines. */
void
parse_strip_block(const char *in, size_t n, struct hk_buf *out)
{
	if (n && in[0] == '\n') {
		in++;
		n--;
	} else if (n > 1 && in[0] == '\r' && in[1] == '\n') {
		in += 2;
		n -= 2;
	}
	/* Indentation of the closing line. */
	size_t last = n;
	while (last > 0 && (in[last - 1] == ' ' || in[last - 1] == '\t'))
		last--;
	size_t indent = (size_t)-1;
	size_t body_end = n;
	if (last == 0 || in[last - 1] == '\n') {
		indent = n - last;
		body_end = last ? last - 1 : 0; /* drop the final newline */
		if (body_end && in[body_end - 1] == '\r')
			body_end--;
	} else {
		const char *p = in, *end = in + n;
		while (p < end) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			const char *le = nl ? nl : end;
			size_t i = 0;
			while (p + i < le && (p[i] == ' ' || p[i] == '\t'))
				i++;
			if (p + i < le && p[i] != '\r' && i < indent)
				indent = i;
			p = nl ? nl + 1 : end;
		}
		if (indent == (size_t)-1)
			indent = 0;
	}
	const char *p = in, *end = in + body_end;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		size_t i = 0;
		while (i < indent && p + i < le && (p[i] == ' ' || p[i] == '\t'))
			i++;
		buf_add(out, p + i, (size_t)(le - p - i));
		if (nl)
			buf_addc(out, '\n');
		p = nl ? nl + 1 : end;
	}
}

struct ast *
parse_string(struct parse_ctx *ctx, const struct token *t)
{
	struct ast *n = ast_new(ctx->arena, AST_STR, t->loc);
	n->str2 = arena_str(ctx->arena, t->ptr, t->len); /* source spelling, for fmt */
	for (size_t i = 0; i < t->len; i++)
		if (t->ptr[i] == '\n')
			n->end_line++;
	const char *body;
	size_t blen;
	struct hk_buf raw;
	buf_init(&raw);
	bool triple = t->len >= 6 && memcmp(t->ptr, "\"\"\"", 3) == 0;
	if (triple) {
		parse_strip_block(t->ptr + 3, t->len - 6, &raw);
		body = raw.data ? raw.data : "";
		blen = raw.len;
	} else {
		body = t->ptr + 1;
		blen = t->len >= 2 ? t->len - 2 : 0;
	}

	struct hk_buf cur;
	buf_init(&cur);
	const char *p = body, *end = body + blen;
	while (p < end) {
		char c = *p;
		if (c == '\\' && p + 1 < end) {
			char e = p[1];
			p += 2;
			switch (e) {
			case 'n': buf_addc(&cur, '\n'); break;
			case 't': buf_addc(&cur, '\t'); break;
			case 'r': buf_addc(&cur, '\r'); break;
			case '"': buf_addc(&cur, '"'); break;
			case '\\': buf_addc(&cur, '\\'); break;
			case '$': buf_addc(&cur, '$'); break;
			case '\n': /* line continuation in """ blocks */
				while (p < end && (*p == ' ' || *p == '\t'))
					p++;
				break;
			case 'u': {
				uint32_t cp = 0;
				const char *q = p;
				bool ok = q < end && *q == '{';
				int digits = 0;
				if (ok)
					for (q++; q < end && *q != '}' && digits <= 6; q++, digits++) {
						char h = *q;
						int v = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10
						    : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
						if (v < 0) {
							ok = false;
							break;
						}
						cp = cp * 16 + (uint32_t)v;
					}
				if (!ok || q >= end || *q != '}' || digits == 0 || digits > 6 || cp > 0x10FFFF ||
				    (cp >= 0xD800 && cp <= 0xDFFF) || cp == 0) {
					diag_error(ctx->diag, loc_in(t, body, p - 2), NULL,
					    "bad \\u escape (write \\u{XXXX} with 1 to 6 hex digits, not a surrogate or NUL)");
					break;
				}
				put_utf8(&cur, cp);
				p = q + 1;
				break;
			}
			default:
				diag_error(ctx->diag, loc_in(t, body, p - 2), NULL,
				    "unknown escape '\\%c' (known: \\n \\t \\r \\\" \\\\ \\$ \\u{XXXX})", e);
				break;
			}
			continue;
		}
		if (c == '$' && p + 1 < end && p[1] == '{') {
			const char *q = p + 2;
			const char *close = memchr(q, '}', (size_t)(end - q));
			if (close == NULL) {
				diag_error(ctx->diag, loc_in(t, body, p), NULL, "'${' without a closing '}'");
				p = end;
				break;
			}
			/* name(.name)* */
			struct loc nl = loc_in(t, body, q);
			struct ast *path = NULL;
			const char *s = q;
			bool bad = s == close;
			while (s < close && !bad) {
				const char *w = s;
				if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
					bad = true;
				while (s < close && ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_' ||
				    (*s >= '0' && *s <= '9')))
					s++;
				struct ast *seg = ast_new(ctx->arena, AST_NAME, nl);
				seg->str = arena_str(ctx->arena, w, (size_t)(s - w));
				if (path == NULL)
					path = seg;
				else
					ast_append(path, seg);
				if (s < close) {
					if (*s == '.')
						s++;
					else
						bad = true;
				}
			}
			if (bad) {
				diag_error(ctx->diag, nl, NULL, "bad interpolation '${%.*s}' (write ${name} or ${name.part})",
				    (int)(close - q > 40 ? 40 : close - q), q);
			} else {
				if (cur.len) {
					struct ast *lit = ast_new(ctx->arena, AST_STR, t->loc);
					lit->str = arena_str(ctx->arena, cur.data, cur.len);
					lit->constant = true;
					ast_append(n, lit);
					buf_reset(&cur);
				}
				ast_append(n, path);
				n->interpolated = true;
			}
			p = close + 1;
			continue;
		}
		buf_addc(&cur, c);
		p++;
	}
	if (n->interpolated) {
		if (cur.len) {
			struct ast *lit = ast_new(ctx->arena, AST_STR, t->loc);
			lit->str = arena_str(ctx->arena, cur.data, cur.len);
			lit->constant = true;
			ast_append(n, lit);
		}
		n->str = (struct hk_str){ "", 0 };
	} else {
		n->str = arena_str(ctx->arena, cur.data ? cur.data : "", cur.len);
	}
	buf_fini(&cur);
	buf_fini(&raw);
	return n;
}

struct ast *
parse_regex(struct parse_ctx *ctx, const struct token *t)
{
	struct ast *n = ast_new(ctx->arena, AST_REGEX, t->loc);
	n->str2 = arena_str(ctx->arena, t->ptr, t->len);
	const char *close = t->ptr + t->len;
	while (close > t->ptr && *(close - 1) != '/')
		close--;
	struct hk_buf b;
	buf_init(&b);
	for (const char *p = t->ptr + 1; p < close - 1; p++) {
		if (*p == '\\' && p + 1 < close - 1 && p[1] == '/') {
			buf_addc(&b, '/');
			p++;
			continue;
		}
		buf_addc(&b, *p);
	}
	n->str = arena_str(ctx->arena, b.data ? b.data : "", b.len);
	n->num = (int64_t)(close - t->ptr); /* offset of the flags in the spelling */
	buf_fini(&b);
	return n;
}

struct ast *
parse_file(struct arena *a, struct diag *d, unsigned file, struct comment **comments_r, size_t *ncomments_r)
{
	struct lexer lx;
	const struct src_file *f = &d->files[file];
	lexer_init(&lx, d, file, f->text, f->len);
	lx.keep_comments = comments_r != NULL;

	struct parse_ctx ctx;
	memset(&ctx, 0, sizeof(ctx));
	ctx.arena = a;
	ctx.diag = d;
	ctx.file = file;
	ctx.last.loc = (struct loc){ file, 1, 1, 1 };

	void *p = hkParseAlloc(malloc);
	/* Test blocks: NL tokens at line ends (see grammar.y). */
	enum { T_NONE, T_KW, T_NAME, T_BODY } tstate = T_NONE;
	int bracket = 0;
	unsigned prev_line = 1;
	struct token t;
	for (;;) {
		lexer_next(&lx, &t);
		if (tstate == T_BODY) {
			if (t.type == TK_LBRACKET)
				bracket++;
			else if (t.type == TK_RBRACKET && bracket > 0)
				bracket--;
			if ((t.loc.line > prev_line && bracket == 0) || t.type == TK_RBRACE || t.type == 0) {
				struct token nl = ctx.last;
				nl.type = TK_NL;
				nl.len = 0;
				hkParse(p, TK_NL, nl, &ctx);
			}
			if (t.type == TK_RBRACE)
				tstate = T_NONE;
		} else if (t.type == TK_TEST && tstate == T_NONE) {
			tstate = T_KW;
		} else if (tstate == T_KW) {
			tstate = t.type == TK_STRING ? T_NAME : T_NONE;
		} else if (tstate == T_NAME) {
			if (t.type == TK_LBRACE) {
				tstate = T_BODY;
				bracket = 0;
			} else {
				tstate = T_NONE;
			}
		}
		if (t.type != 0)
			prev_line = t.loc.line + (unsigned)(t.type == TK_STRING ? 0 : 0);
		if (t.type == TK_STRING) {
			/* a """ block may span lines: continue from its last line */
			for (size_t i = 0; i < t.len; i++)
				if (t.ptr[i] == '\n')
					prev_line++;
		}
		if (t.type == TK_LBRACE) {
			if (ctx.nopen < PARSE_MAX_OPEN)
				ctx.open[ctx.nopen] = t.loc;
			ctx.nopen++;
		} else if (t.type == TK_RBRACE && ctx.nopen > 0) {
			ctx.nopen--;
		}
		hkParse(p, t.type, t, &ctx);
		if (t.type != 0)
			ctx.last = t;
		if (t.type == 0 || d->overflow)
			break;
		if (ctx.failed && d->errors > DIAG_MAX_ERRORS)
			break;
	}
	hkParseFree(p, free);
	if (comments_r) {
		*comments_r = lx.comments;
		*ncomments_r = lx.ncomments;
		lx.comments = NULL;
	}
	lexer_fini(&lx);
	if (ctx.root == NULL)
		ctx.root = ast_new(a, AST_FILE, (struct loc){ file, 1, 1, 1 });
	return ctx.root;
}
