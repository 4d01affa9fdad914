/*
 * lexer.re - re2c tokenizer for rule files (see lexer.h). Generated into
 * build/gen/lang/lexer.c; never commit the output.
 *
 * SECURITY: reads user-written scripts. Sentinel is the NUL that ends the
 * buffer; a NUL inside the file is an error, as is invalid UTF-8.
 */
#include "lexer.h"

#include <stdlib.h>
#include <string.h>

#include "charset.h"
#include "grammar.h"

void
lexer_init(struct lexer *lx, struct diag *d, unsigned file, const char *src, size_t len)
{
	memset(lx, 0, sizeof(*lx));
	lx->src = lx->cur = lx->line_start = src;
	lx->end = src + len;
	lx->line = 1;
	lx->file = file;
	lx->diag = d;
	lx->keep_comments = true;
}

void
lexer_fini(struct lexer *lx)
{
	free(lx->comments);
	lx->comments = NULL;
}

static struct loc
loc_at(const struct lexer *lx, const char *p, size_t len)
{
	struct loc l;
	l.file = lx->file;
	l.line = lx->line;
	l.col = (unsigned)(p - lx->line_start) + 1;
	l.len = len ? (unsigned)(len > 0xFFFF ? 0xFFFF : len) : 1;
	return l;
}

static void
newline(struct lexer *lx, const char *after)
{
	lx->line++;
	lx->line_start = after;
}

static const struct {
	const char *word;
	int type;
} keywords[] = {
	{ "import", TK_IMPORT }, { "const", TK_CONST }, { "on", TK_ON },
	{ "rule", TK_RULE }, { "when", TK_WHEN }, { "if", TK_IF },
	{ "else", TK_ELSE }, { "test", TK_TEST }, { "true", TK_TRUE },
	{ "false", TK_FALSE }, { "and", TK_AND }, { "or", TK_OR },
	{ "not", TK_NOT }, { "is", TK_IS }, { "contains", TK_CONTAINS },
	{ "starts", TK_STARTS }, { "ends", TK_ENDS }, { "with", TK_WITH },
	{ "matches", TK_MATCHES }, { "in", TK_IN }, { "has", TK_HAS },
	{ "header", TK_HEADER }, { "headers", TK_HEADERS }, { "expect", TK_EXPECT },
	{ "keep", TK_KEEP }, { "fileinto", TK_FILEINTO }, { "forward", TK_FORWARD },
	{ "notify", TK_NOTIFY }, { "reply", TK_REPLY }, { "reject", TK_REJECT },
	{ "discard", TK_DISCARD }, { "skip", TK_SKIP }, { "stop", TK_STOP },
	{ "expand", TK_EXPAND }, { "strip", TK_STRIP }, { "add", TK_ADD },
	{ "remove", TK_REMOVE }, { "flag", TK_FLAG }, { "refuse", TK_REFUSE },
	{ "tempfail", TK_TEMPFAIL }, { "expunge", TK_EXPUNGE }, { "log", TK_LOG },
};

static int
keyword_type(const char *p, size_t n)
{
	for (size_t i = 0; i < HK_ARRAY_LEN(keywords); i++)
		if (strlen(keywords[i].word) == n && memcmp(keywords[i].word, p, n) == 0)
			return keywords[i].type;
	return TK_IDENT;
}

const char *
lexer_token_name(int type)
{
	for (size_t i = 0; i < HK_ARRAY_LEN(keywords); i++)
		if (keywords[i].type == type)
			return keywords[i].word;
	switch (type) {
	case 0: return "end of file";
	case TK_IDENT: return "name";
	case TK_STRING: return "string";
	case TK_NUMBER: return "number";
	case TK_SIZE: return "size";
	case TK_DURATION: return "duration";
	case TK_REGEX: return "regex";
	case TK_LBRACE: return "'{'";
	case TK_RBRACE: return "'}'";
	case TK_LPAREN: return "'('";
	case TK_RPAREN: return "')'";
	case TK_LBRACKET: return "'['";
	case TK_RBRACKET: return "']'";
	case TK_COMMA: return "','";
	case TK_DOT: return "'.'";
	case TK_ASSIGN: return "'='";
	case TK_TILDE: return "'~'";
	case TK_NTILDE: return "'!~'";
	case TK_LT: return "'<'";
	case TK_LE: return "'<='";
	case TK_GT: return "'>'";
	case TK_GE: return "'>='";
	case TK_NL: return "end of line";
	default: return "token";
	}
}

/* Parses the digits at p; false on overflow past INT64_MAX / mult. */
static bool
parse_number(const char *p, const char *end, int64_t mult, int64_t *v_r)
{
	int64_t v = 0;
	for (; p < end && *p >= '0' && *p <= '9'; p++) {
		if (v > (INT64_MAX - (*p - '0')) / 10)
			return false;
		v = v * 10 + (*p - '0');
	}
	if (mult > 1 && v > INT64_MAX / mult)
		return false;
	*v_r = v * mult;
	return true;
}

static int64_t
unit_seconds(const char *u)
{
	switch (u[0]) {
	case 's': return 1;
	case 'm': return 60;
	case 'h': return 3600;
	case 'd': return 86400;
	case 'w': return 7 * 86400;
	default: return 1;
	}
}

/* A """ block: scans to the closing """, counting lines. */
static bool
lex_triple(struct lexer *lx, const char *start)
{
	const char *p = start + 3;
	while (p + 2 < lx->end || (p + 2 == lx->end && false)) {
		if (*p == '\\' && p + 1 < lx->end) {
			if (p[1] == '\n')
				newline(lx, p + 2);
			p += 2;
			continue;
		}
		if (*p == '\n')
			newline(lx, p + 1);
		if (p[0] == '"' && p[1] == '"' && p[2] == '"') {
			lx->cur = p + 3;
			return true;
		}
		p++;
	}
	lx->cur = lx->end;
	return false;
}

/*!re2c
	re2c:define:YYCTYPE = "unsigned char";
	re2c:define:YYCURSOR = "cur";
	re2c:define:YYMARKER = "mar";
	re2c:yyfill:enable = 0;
	re2c:flags:utf-8 = 0;

	digit = [0-9];
	ident = [a-zA-Z_][a-zA-Z0-9_]*;
	ws = [ \t\r\f\v];
	unit = "second" "s"? | "minute" "s"? | "hour" "s"? | "day" "s"? | "week" "s"?;
	sizesuf = [kKmMgG] [bB]?;
*/

void
lexer_next(struct lexer *lx, struct token *t)
{
	const unsigned char *cur, *mar, *tok;
	const char *tokp;
	for (;;) {
		cur = tok = (const unsigned char *)lx->cur;
		tokp = lx->cur;
		(void)mar;
		t->num = 0;
		t->ptr = tokp;
		/*!re2c
		"\x00" {
			if ((const char *)tok >= lx->end) {
				lx->cur = lx->end;
				t->type = 0;
				t->len = 0;
				t->loc = loc_at(lx, lx->end, 1);
				return;
			}
			diag_error(lx->diag, loc_at(lx, tokp, 1), NULL, "NUL byte in source");
			lx->cur = (const char *)cur;
			continue;
		}
		ws+ { lx->cur = (const char *)cur; continue; }
		"\n" { lx->cur = (const char *)cur; newline(lx, lx->cur); continue; }
		"#" [^\n\x00]* {
			lx->cur = (const char *)cur;
			if (lx->keep_comments) {
				lx->comments = xgrow(lx->comments, &lx->cap_comments, lx->ncomments + 1, sizeof(*lx->comments));
				struct comment *c = &lx->comments[lx->ncomments++];
				c->line = lx->line;
				c->col = (unsigned)(tokp - lx->line_start) + 1;
				c->text = (struct hk_str){ tokp, (size_t)(lx->cur - tokp) };
				c->own_line = true;
				for (const char *q = lx->line_start; q < tokp; q++)
					if (*q != ' ' && *q != '\t')
						c->own_line = false;
			}
			continue;
		}
		"\"\"\"" {
			t->loc = loc_at(lx, tokp, 3);
			if (!lex_triple(lx, tokp)) {
				diag_error(lx->diag, t->loc, NULL, "unterminated \"\"\" string");
				t->type = 0;
				t->len = 0;
				return;
			}
			t->type = TK_STRING;
			t->len = (size_t)(lx->cur - tokp);
			if (t->len > HK_MAX_TOKEN_LEN)
				diag_error(lx->diag, t->loc, NULL, "token longer than %u bytes", HK_MAX_TOKEN_LEN);
			return;
		}
		"\"" ([^"\\\n\x00] | "\\" [^\n\x00])* "\"" {
			t->type = TK_STRING;
			break;
		}
		"\"" ([^"\\\n\x00] | "\\" [^\n\x00])* {
			t->loc = loc_at(lx, tokp, 1);
			diag_error(lx->diag, t->loc, NULL, "unterminated string (a string ends on the line where it starts; use \"\"\" for several lines)");
			lx->cur = (const char *)cur;
			continue;
		}
		"/" ([^/\\\n\x00] | "\\" [^\n\x00])+ "/" [a-zA-Z]* {
			t->type = TK_REGEX;
			break;
		}
		"/" ([^/\\\n\x00] | "\\" [^\n\x00])* {
			diag_error(lx->diag, loc_at(lx, tokp, 1), NULL, "unterminated regex (a regex is /pattern/flags on one line)");
			lx->cur = (const char *)cur;
			continue;
		}
		digit+ ws+ unit / [^a-zA-Z0-9_] {
			const char *u = (const char *)cur;
			while (u > tokp && ((u[-1] >= 'a' && u[-1] <= 'z')))
				u--;
			t->type = TK_DURATION;
			if (!parse_number(tokp, u, unit_seconds(u), &t->num))
				goto overflow;
			break;
		}
		digit+ sizesuf / [^a-zA-Z0-9_] {
			const char *s = tokp;
			while (*s >= '0' && *s <= '9')
				s++;
			int64_t mult = 1024;
			if (*s == 'm' || *s == 'M') mult = 1024 * 1024;
			if (*s == 'g' || *s == 'G') mult = 1024 * 1024 * 1024;
			t->type = TK_SIZE;
			if (!parse_number(tokp, s, mult, &t->num))
				goto overflow;
			break;
		}
		digit+ {
			t->type = TK_NUMBER;
			if (!parse_number(tokp, (const char *)cur, 1, &t->num))
				goto overflow;
			break;
		}
		ident {
			t->type = keyword_type(tokp, (size_t)((const char *)cur - tokp));
			break;
		}
		"{" { t->type = TK_LBRACE; break; }
		"}" { t->type = TK_RBRACE; break; }
		"(" { t->type = TK_LPAREN; break; }
		")" { t->type = TK_RPAREN; break; }
		"[" { t->type = TK_LBRACKET; break; }
		"]" { t->type = TK_RBRACKET; break; }
		"," { t->type = TK_COMMA; break; }
		"." { t->type = TK_DOT; break; }
		"=" { t->type = TK_ASSIGN; break; }
		"==" {
			diag_error(lx->diag, loc_at(lx, tokp, 2), NULL, "unknown operator '=='; did you mean 'is'?");
			t->type = TK_IS;
			break;
		}
		"!=" {
			diag_error(lx->diag, loc_at(lx, tokp, 2), NULL, "unknown operator '!='; did you mean 'is not'?");
			t->type = TK_IS;
			break;
		}
		"&&" {
			diag_error(lx->diag, loc_at(lx, tokp, 2), NULL, "unknown operator '&&'; did you mean 'and'?");
			t->type = TK_AND;
			break;
		}
		"||" {
			diag_error(lx->diag, loc_at(lx, tokp, 2), NULL, "unknown operator '||'; did you mean 'or'?");
			t->type = TK_OR;
			break;
		}
		"~" { t->type = TK_TILDE; break; }
		"!~" { t->type = TK_NTILDE; break; }
		"<" { t->type = TK_LT; break; }
		"<=" { t->type = TK_LE; break; }
		">" { t->type = TK_GT; break; }
		">=" { t->type = TK_GE; break; }
		";" {
			diag_error(lx->diag, loc_at(lx, tokp, 1), NULL, "unexpected ';' (statements need no terminator)");
			lx->cur = (const char *)cur;
			continue;
		}
		[\x80-\xff]+ {
			diag_error(lx->diag, loc_at(lx, tokp, (size_t)((const char *)cur - tokp)), NULL,
			    "non-ASCII text outside a string or comment");
			lx->cur = (const char *)cur;
			continue;
		}
		* {
			unsigned char c = (unsigned char)*tokp;
			if (c >= 0x20 && c < 0x7f)
				diag_error(lx->diag, loc_at(lx, tokp, 1), NULL, "unexpected character '%c'", c);
			else
				diag_error(lx->diag, loc_at(lx, tokp, 1), NULL, "unexpected byte 0x%02x", c);
			lx->cur = (const char *)cur;
			continue;
		}
		*/
	overflow:
		diag_error(lx->diag, loc_at(lx, tokp, 1), NULL, "number too large");
		t->type = TK_NUMBER;
		t->num = INT64_MAX;
		lx->cur = (const char *)cur;
		t->len = (size_t)(lx->cur - tokp);
		t->loc = loc_at(lx, tokp, t->len);
		return;
	}
	/* common exit for single-line tokens */
	lx->cur = (const char *)cur;
	t->len = (size_t)(lx->cur - tokp);
	t->loc = loc_at(lx, tokp, t->len);
	if (t->len > HK_MAX_TOKEN_LEN)
		diag_error(lx->diag, t->loc, NULL, "token longer than %u bytes", HK_MAX_TOKEN_LEN);
}
