/*
 * test_lexer.c - unit tests of the re2c tokenizer (lang/lexer.re): token
 * types with their line and byte column (also after multi-line """ strings,
 * CRLF line ends and UTF-8 text), the values of sizes and durations, number
 * overflow, regex tokens, located errors for unterminated literals, NUL and
 * invalid bytes, the operators borrowed from other languages ('==' '!='
 * '&&' '||' ';') with their suggestions, the token length limit, and the
 * comments collected on the side for the formatter.
 *
 * The lexer is driven directly (lexer_init / lexer_next) on a source
 * registered in a diag sink, exactly as parse.c does.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "grammar.h"
#include "lexer.h"
#include "parse.h"

#define MAX_TOKS 512

/* --- fixture ----------------------------------------------------------------- */

struct lexed {
	struct diag d;
	struct lexer lx;
	struct token toks[MAX_TOKS];
	size_t n; /* including the final type-0 token */
	bool have_lexer;
};

static int
setup(void **state)
{
	struct lexed *L = calloc(1, sizeof(*L));
	diag_init(&L->d);
	*state = L;
	return 0;
}

static int
teardown(void **state)
{
	struct lexed *L = *state;
	if (L->have_lexer)
		lexer_fini(&L->lx);
	diag_fini(&L->d);
	free(L);
	return 0;
}

/* Lexes `len` bytes of `src` (which may contain NUL bytes) to the end. */
static void
lex_n(struct lexed *L, const char *src, size_t len)
{
	char *copy = malloc(len + 1);
	memcpy(copy, src, len);
	copy[len] = '\0';
	unsigned f = diag_add_file(&L->d, "t.hk", "t.hk", copy, len);
	lexer_init(&L->lx, &L->d, f, L->d.files[f].text, len);
	L->have_lexer = true;
	L->n = 0;
	do {
		lexer_next(&L->lx, &L->toks[L->n]);
	} while (L->toks[L->n++].type != 0 && L->n < MAX_TOKS);
	assert_int_equal(L->toks[L->n - 1].type, 0); /* the lexer always reaches the end */
}

static void
lex(struct lexed *L, const char *src)
{
	lex_n(L, src, strlen(src));
}

/* Asserts token i: type, line, column and spelling. */
static void
check_tok(const struct lexed *L, size_t i, int type, unsigned line, unsigned col, const char *text, const char *file, int at)
{
	if (i >= L->n) {
		print_error("token %zu: only %zu tokens\n", i, L->n);
		_fail(file, at);
	}
	const struct token *t = &L->toks[i];
	size_t n = strlen(text);
	if (t->type != type || t->loc.line != line || t->loc.col != col || t->len != n || memcmp(t->ptr, text, n) != 0) {
		print_error("token %zu: got %s %u:%u '%.*s', want %s %u:%u '%s'\n", i, lexer_token_name(t->type), t->loc.line,
		    t->loc.col, (int)(t->len > 60 ? 60 : t->len), t->ptr, lexer_token_name(type), line, col, text);
		_fail(file, at);
	}
}
#define assert_tok(L, i, type, line, col, text) check_tok((L), (i), (type), (line), (col), (text), __FILE__, __LINE__)

/* Asserts that message i is an error at line:col whose text contains `sub`. */
static void
check_err(const struct lexed *L, size_t i, unsigned line, unsigned col, const char *sub, const char *file, int at)
{
	if (i >= L->d.nmsgs) {
		print_error("message %zu: only %zu messages\n", i, L->d.nmsgs);
		_fail(file, at);
	}
	const struct diag_msg *m = &L->d.msgs[i];
	if (m->sev != DIAG_ERROR || !m->has_loc || m->loc.line != line || m->loc.col != col || strstr(m->text, sub) == NULL) {
		print_error("message %zu: got sev %d %u:%u \"%s\", want error %u:%u containing \"%s\"\n", i, (int)m->sev, m->loc.line,
		    m->loc.col, m->text, line, col, sub);
		_fail(file, at);
	}
}
#define assert_err(L, i, line, col, sub) check_err((L), (i), (line), (col), (sub), __FILE__, __LINE__)

/* --- positions ------------------------------------------------------------------ */

static void
test_lexer_tokens_with_line_and_column(void **state)
{
	struct lexed *L = *state;
	lex(L, "on deliver {\n"
	       "    rule \"x\" when from.domain is \"a.example\" {\n"
	       "\tkeep\n"
	       "    }\n"
	       "}\n");
	assert_int_equal(L->d.nmsgs, 0);
	assert_tok(L, 0, TK_ON, 1, 1, "on");
	assert_tok(L, 1, TK_IDENT, 1, 4, "deliver");
	assert_tok(L, 2, TK_LBRACE, 1, 12, "{");
	assert_tok(L, 3, TK_RULE, 2, 5, "rule");
	assert_tok(L, 4, TK_STRING, 2, 10, "\"x\"");
	assert_tok(L, 5, TK_WHEN, 2, 14, "when");
	assert_tok(L, 6, TK_IDENT, 2, 19, "from");
	assert_tok(L, 7, TK_DOT, 2, 23, ".");
	assert_tok(L, 8, TK_IDENT, 2, 24, "domain");
	assert_tok(L, 9, TK_IS, 2, 31, "is");
	assert_tok(L, 10, TK_STRING, 2, 34, "\"a.example\"");
	assert_tok(L, 11, TK_LBRACE, 2, 46, "{");
	assert_tok(L, 12, TK_KEEP, 3, 2, "keep"); /* a tab is one byte column */
	assert_tok(L, 13, TK_RBRACE, 4, 5, "}");
	assert_tok(L, 14, TK_RBRACE, 5, 1, "}");
	assert_int_equal(L->toks[15].type, 0);
	assert_int_equal(L->n, 16);
}

static void
test_lexer_every_operator_token(void **state)
{
	struct lexed *L = *state;
	lex(L, "( ) [ ] , . = ~ !~ < <= > >=");
	assert_int_equal(L->d.nmsgs, 0);
	static const int want[] = { TK_LPAREN, TK_RPAREN, TK_LBRACKET, TK_RBRACKET, TK_COMMA, TK_DOT, TK_ASSIGN, TK_TILDE,
		TK_NTILDE, TK_LT, TK_LE, TK_GT, TK_GE, 0 };
	assert_int_equal(L->n, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < L->n; i++)
		assert_int_equal(L->toks[i].type, want[i]);
	assert_tok(L, 8, TK_NTILDE, 1, 17, "!~");
	assert_tok(L, 10, TK_LE, 1, 22, "<=");
	assert_tok(L, 12, TK_GE, 1, 27, ">=");
}

static void
test_lexer_keywords_are_case_sensitive(void **state)
{
	struct lexed *L = *state;
	lex(L, "rule Rule RULE header headers has_x");
	assert_tok(L, 0, TK_RULE, 1, 1, "rule");
	assert_tok(L, 1, TK_IDENT, 1, 6, "Rule");
	assert_tok(L, 2, TK_IDENT, 1, 11, "RULE");
	assert_tok(L, 3, TK_HEADER, 1, 16, "header");
	assert_tok(L, 4, TK_HEADERS, 1, 23, "headers");
	assert_tok(L, 5, TK_IDENT, 1, 31, "has_x");
}

static void
test_lexer_position_after_triple_string(void **state)
{
	struct lexed *L = *state;
	lex(L, "x = \"\"\"\n"
	       "    first\n"
	       "    second\n"
	       "    \"\"\" y\n"
	       "z");
	assert_int_equal(L->d.nmsgs, 0);
	assert_tok(L, 0, TK_IDENT, 1, 1, "x");
	assert_tok(L, 1, TK_ASSIGN, 1, 3, "=");
	/* the string token starts where its quotes are and spans the block */
	assert_int_equal(L->toks[2].type, TK_STRING);
	assert_int_equal(L->toks[2].loc.line, 1);
	assert_int_equal(L->toks[2].loc.col, 5);
	assert_int_equal(L->toks[2].len, strlen("\"\"\"\n    first\n    second\n    \"\"\""));
	assert_tok(L, 3, TK_IDENT, 4, 9, "y");
	assert_tok(L, 4, TK_IDENT, 5, 1, "z");
}

static void
test_lexer_position_after_triple_string_with_escapes(void **state)
{
	struct lexed *L = *state;
	/* an escaped quote does not end the block; a backslash-newline is a
	 * line continuation that still counts as a line */
	lex(L, "\"\"\"a \\\"\"\" b \\\nc\"\"\" d");
	assert_int_equal(L->d.nmsgs, 0);
	assert_int_equal(L->toks[0].type, TK_STRING);
	assert_int_equal(L->toks[0].len, strlen("\"\"\"a \\\"\"\" b \\\nc\"\"\""));
	assert_tok(L, 1, TK_IDENT, 2, 6, "d");
}

static void
test_lexer_empty_triple_strings(void **state)
{
	struct lexed *L = *state;
	lex(L, "\"\"\"\"\"\" \"\" \"\"\"\n\"\"\" e");
	assert_int_equal(L->d.nmsgs, 0);
	assert_tok(L, 0, TK_STRING, 1, 1, "\"\"\"\"\"\"");
	assert_tok(L, 1, TK_STRING, 1, 8, "\"\"");
	assert_int_equal(L->toks[2].type, TK_STRING);
	assert_int_equal(L->toks[2].len, 7);
	assert_tok(L, 3, TK_IDENT, 2, 5, "e");
}

static void
test_lexer_column_counts_utf8_bytes(void **state)
{
	struct lexed *L = *state;
	/* "日本" is 6 bytes: columns are byte columns */
	lex(L, "rule \"日本\" x # 注記\n\"é\"y");
	assert_int_equal(L->d.nmsgs, 0);
	assert_tok(L, 0, TK_RULE, 1, 1, "rule");
	assert_tok(L, 1, TK_STRING, 1, 6, "\"日本\"");
	assert_tok(L, 2, TK_IDENT, 1, 15, "x");
	assert_tok(L, 3, TK_STRING, 2, 1, "\"é\"");
	assert_tok(L, 4, TK_IDENT, 2, 5, "y");
	assert_int_equal(L->lx.ncomments, 1);
	assert_int_equal(L->lx.comments[0].col, 17);
}

static void
test_lexer_crlf_line_ends(void **state)
{
	struct lexed *L = *state;
	lex(L, "a\r\n  b\r\n\r\nc");
	assert_int_equal(L->d.nmsgs, 0);
	assert_tok(L, 0, TK_IDENT, 1, 1, "a");
	assert_tok(L, 1, TK_IDENT, 2, 3, "b");
	assert_tok(L, 2, TK_IDENT, 4, 1, "c");
}

static void
test_lexer_end_of_input_token(void **state)
{
	struct lexed *L = *state;
	lex(L, "keep\n\n");
	assert_int_equal(L->n, 2);
	assert_int_equal(L->toks[1].type, 0);
	assert_int_equal(L->toks[1].len, 0);
	assert_int_equal(L->toks[1].loc.line, 3);
	assert_int_equal(L->toks[1].loc.col, 1);
	/* lexing past the end keeps returning the end */
	struct token t;
	lexer_next(&L->lx, &t);
	assert_int_equal(t.type, 0);
}

static void
test_lexer_empty_input(void **state)
{
	struct lexed *L = *state;
	lex(L, "");
	assert_int_equal(L->n, 1);
	assert_int_equal(L->toks[0].type, 0);
	assert_int_equal(L->toks[0].loc.line, 1);
	assert_int_equal(L->d.nmsgs, 0);
}

/* --- numbers, sizes, durations ----------------------------------------------------- */

static void
test_lexer_sizes(void **state)
{
	struct lexed *L = *state;
	lex(L, "8M 20K 1G 512KB 8mb 3k 2gB 0K");
	assert_int_equal(L->d.nmsgs, 0);
	static const int64_t want[] = { 8388608, 20480, 1073741824, 524288, 8388608, 3072, 2147483648LL, 0 };
	static const char *const spell[] = { "8M", "20K", "1G", "512KB", "8mb", "3k", "2gB", "0K" };
	assert_int_equal(L->n, 9);
	for (size_t i = 0; i < 8; i++) {
		assert_int_equal(L->toks[i].type, TK_SIZE);
		assert_int_equal(L->toks[i].num, want[i]);
		assert_int_equal(L->toks[i].len, strlen(spell[i]));
	}
	assert_tok(L, 3, TK_SIZE, 1, 11, "512KB");
}

static void
test_lexer_size_needs_a_word_boundary(void **state)
{
	struct lexed *L = *state;
	/* "8 MB" is a number and a name, "8Mx" a number and a name "Mx" */
	lex(L, "8 MB 8Mx");
	assert_tok(L, 0, TK_NUMBER, 1, 1, "8");
	assert_int_equal(L->toks[0].num, 8);
	assert_tok(L, 1, TK_IDENT, 1, 3, "MB");
	assert_tok(L, 2, TK_NUMBER, 1, 6, "8");
	assert_tok(L, 3, TK_IDENT, 1, 7, "Mx");
}

static void
test_lexer_durations(void **state)
{
	struct lexed *L = *state;
	lex(L, "90 days 1 hour 2 weeks 5 minutes 30 seconds 1 day 1 week 7\tdays 1 second 3 minute 2 hours");
	assert_int_equal(L->d.nmsgs, 0);
	static const int64_t want[] = { 7776000, 3600, 1209600, 300, 30, 86400, 604800, 604800, 1, 180, 7200 };
	assert_int_equal(L->n, HK_ARRAY_LEN(want) + 1);
	for (size_t i = 0; i < HK_ARRAY_LEN(want); i++) {
		assert_int_equal(L->toks[i].type, TK_DURATION);
		assert_int_equal(L->toks[i].num, want[i]);
	}
	assert_tok(L, 0, TK_DURATION, 1, 1, "90 days");
	assert_tok(L, 1, TK_DURATION, 1, 9, "1 hour");
	assert_tok(L, 2, TK_DURATION, 1, 16, "2 weeks");
	assert_tok(L, 7, TK_DURATION, 1, 58, "7\tdays");
}

static void
test_lexer_duration_needs_a_known_unit(void **state)
{
	struct lexed *L = *state;
	lex(L, "3 dayz 4 months 5 days_x");
	assert_tok(L, 0, TK_NUMBER, 1, 1, "3");
	assert_tok(L, 1, TK_IDENT, 1, 3, "dayz");
	assert_tok(L, 2, TK_NUMBER, 1, 8, "4");
	assert_tok(L, 3, TK_IDENT, 1, 10, "months");
	assert_tok(L, 4, TK_NUMBER, 1, 17, "5");
	assert_tok(L, 5, TK_IDENT, 1, 19, "days_x");
	assert_int_equal(L->d.nmsgs, 0);
}

static void
test_lexer_number_max_and_overflow(void **state)
{
	struct lexed *L = *state;
	lex(L, "9223372036854775807 x 9223372036854775808 y 99999999999999999999999");
	assert_tok(L, 0, TK_NUMBER, 1, 1, "9223372036854775807");
	assert_int_equal(L->toks[0].num, INT64_MAX);
	assert_tok(L, 1, TK_IDENT, 1, 21, "x");
	/* the overflowing number is still one token, clamped, and the next
	 * token is found where it should be */
	assert_tok(L, 2, TK_NUMBER, 1, 23, "9223372036854775808");
	assert_int_equal(L->toks[2].num, INT64_MAX);
	assert_tok(L, 3, TK_IDENT, 1, 43, "y");
	assert_tok(L, 4, TK_NUMBER, 1, 45, "99999999999999999999999");
	assert_int_equal(L->d.errors, 2);
	assert_err(L, 0, 1, 23, "number too large");
	assert_err(L, 1, 1, 45, "number too large");
}

static void
test_lexer_size_and_duration_overflow(void **state)
{
	struct lexed *L = *state;
	/* 8589934592G = 2^33 GiB = 2^63 bytes, one past INT64_MAX */
	lex(L, "8589934591G 8589934592G 15250284452471 weeks 15250284452472 weeks");
	assert_int_equal(L->toks[0].type, TK_SIZE);
	assert_int_equal(L->toks[0].num, 8589934591LL * 1073741824LL);
	assert_int_equal(L->toks[1].type, TK_NUMBER);
	assert_int_equal(L->toks[1].num, INT64_MAX);
	assert_int_equal(L->toks[2].type, TK_DURATION);
	assert_int_equal(L->toks[2].num, 15250284452471LL * 604800LL);
	assert_tok(L, 3, TK_NUMBER, 1, 46, "15250284452472 weeks");
	assert_int_equal(L->toks[3].num, INT64_MAX);
	assert_int_equal(L->d.errors, 2);
	assert_err(L, 0, 1, 13, "number too large");
	assert_err(L, 1, 1, 46, "number too large");
}

/* --- strings and regexes ------------------------------------------------------------- */

static void
test_lexer_string_escapes_stay_inside(void **state)
{
	struct lexed *L = *state;
	lex(L, "\"a\\\"b # not a comment\" c");
	assert_int_equal(L->d.nmsgs, 0);
	assert_tok(L, 0, TK_STRING, 1, 1, "\"a\\\"b # not a comment\"");
	assert_tok(L, 1, TK_IDENT, 1, 24, "c");
	assert_int_equal(L->lx.ncomments, 0);
}

static void
test_lexer_regex_with_escaped_slash_and_flags(void **state)
{
	struct lexed *L = *state;
	lex(L, "subject ~ /a\\/b\\/c/imsx x /[/] y /\\// z");
	assert_int_equal(L->d.nmsgs, 0);
	assert_tok(L, 0, TK_IDENT, 1, 1, "subject");
	assert_tok(L, 1, TK_TILDE, 1, 9, "~");
	assert_tok(L, 2, TK_REGEX, 1, 11, "/a\\/b\\/c/imsx");
	assert_tok(L, 3, TK_IDENT, 1, 25, "x");
	/* a '/' inside a class still ends the regex (escape it as \/) */
	assert_tok(L, 4, TK_REGEX, 1, 27, "/[/");
	assert_tok(L, 5, TK_RBRACKET, 1, 30, "]");
	assert_tok(L, 6, TK_IDENT, 1, 32, "y");
	assert_tok(L, 7, TK_REGEX, 1, 34, "/\\//");
	assert_tok(L, 8, TK_IDENT, 1, 39, "z");
	assert_int_equal(L->n, 10);
}

static void
test_lexer_regex_decoded_by_parse_regex(void **state)
{
	struct lexed *L = *state;
	lex(L, "/a\\/b\\.c/im /x/");
	assert_int_equal(L->d.nmsgs, 0);
	struct arena a;
	arena_init(&a, 0);
	struct parse_ctx ctx;
	memset(&ctx, 0, sizeof(ctx));
	ctx.arena = &a;
	ctx.diag = &L->d;
	struct ast *r = parse_regex(&ctx, &L->toks[0]);
	assert_int_equal(r->kind, AST_REGEX);
	/* \/ becomes /, other escapes are PCRE2's and stay */
	assert_int_equal(r->str.len, 6);
	assert_memory_equal(r->str.ptr, "a/b\\.c", 6);
	/* the flags start after the closing slash of the spelling */
	assert_int_equal(r->num, 9);
	assert_int_equal(r->str2.len - (size_t)r->num, 2);
	assert_memory_equal(r->str2.ptr + r->num, "im", 2);
	struct ast *r2 = parse_regex(&ctx, &L->toks[1]);
	assert_int_equal(r2->str.len, 1);
	assert_int_equal(r2->num, 3);
	assert_int_equal(r2->str2.len, 3);
	arena_fini(&a);
}

/* --- errors ------------------------------------------------------------------------ */

static void
test_lexer_unterminated_string_error_location(void **state)
{
	struct lexed *L = *state;
	lex(L, "keep\n  x \"abc\ny");
	assert_int_equal(L->d.errors, 1);
	assert_err(L, 0, 2, 5, "unterminated string");
	assert_non_null(strstr(L->d.msgs[0].text, "\"\"\""));
	assert_tok(L, 0, TK_KEEP, 1, 1, "keep");
	assert_tok(L, 1, TK_IDENT, 2, 3, "x");
	/* lexing goes on at the next line */
	assert_tok(L, 2, TK_IDENT, 3, 1, "y");
	assert_int_equal(L->toks[3].type, 0);
}

static void
test_lexer_unterminated_string_at_end_of_input(void **state)
{
	struct lexed *L = *state;
	lex(L, "a \"abc\\\"");
	assert_int_equal(L->d.errors, 1);
	assert_err(L, 0, 1, 3, "unterminated string");
	assert_int_equal(L->n, 2);
}

static void
test_lexer_unterminated_regex_error_location(void **state)
{
	struct lexed *L = *state;
	lex(L, "rule \"r\" when subject ~ /abc\\/d\nkeep");
	assert_int_equal(L->d.errors, 1);
	assert_err(L, 0, 1, 25, "unterminated regex");
	assert_tok(L, 4, TK_TILDE, 1, 23, "~");
	assert_tok(L, 5, TK_KEEP, 2, 1, "keep");
}

static void
test_lexer_unterminated_triple_string_error_location(void **state)
{
	struct lexed *L = *state;
	lex(L, "a\n  b = \"\"\"\n  text\n  more \\\"\"\"\n");
	assert_int_equal(L->d.errors, 1);
	assert_err(L, 0, 2, 7, "unterminated \"\"\" string");
	assert_int_equal(L->d.msgs[0].loc.len, 3);
	/* the error ends the input */
	assert_tok(L, 0, TK_IDENT, 1, 1, "a");
	assert_tok(L, 1, TK_IDENT, 2, 3, "b");
	assert_tok(L, 2, TK_ASSIGN, 2, 5, "=");
	assert_int_equal(L->toks[3].type, 0);
	assert_int_equal(L->n, 4);
}

static void
test_lexer_nul_byte_reported_and_skipped(void **state)
{
	struct lexed *L = *state;
	static const char src[] = "keep\n ab\0cd \"x\"";
	lex_n(L, src, sizeof(src) - 1);
	assert_int_equal(L->d.errors, 1);
	assert_err(L, 0, 2, 4, "NUL byte");
	assert_tok(L, 0, TK_KEEP, 1, 1, "keep");
	assert_tok(L, 1, TK_IDENT, 2, 2, "ab");
	assert_tok(L, 2, TK_IDENT, 2, 5, "cd");
	assert_tok(L, 3, TK_STRING, 2, 8, "\"x\"");
	assert_int_equal(L->n, 5);
}

static void
test_lexer_nul_byte_inside_string_and_comment(void **state)
{
	struct lexed *L = *state;
	static const char src[] = "\"a\0b\" # c\0d\nz";
	lex_n(L, src, sizeof(src) - 1);
	/* the string cannot contain the NUL: it is unterminated, then the NUL
	 * is reported; the comment ends at its NUL */
	assert_true(L->d.errors >= 2);
	assert_err(L, 0, 1, 1, "unterminated string");
	assert_err(L, 1, 1, 3, "NUL byte");
	bool nul_in_comment = false;
	for (size_t i = 0; i < L->d.nmsgs; i++)
		if (L->d.msgs[i].loc.col == 10 && strstr(L->d.msgs[i].text, "NUL byte"))
			nul_in_comment = true;
	assert_true(nul_in_comment);
	assert_int_equal(L->toks[L->n - 2].type, TK_IDENT);
	assert_int_equal(L->toks[L->n - 2].loc.line, 2);
}

static void
test_lexer_invalid_bytes(void **state)
{
	struct lexed *L = *state;
	lex(L, "a @ \x01 \xff\xfe b \xc3\xa9 $ c");
	assert_int_equal(L->d.errors, 5);
	assert_err(L, 0, 1, 3, "unexpected character '@'");
	assert_err(L, 1, 1, 5, "unexpected byte 0x01");
	assert_err(L, 2, 1, 7, "non-ASCII text outside a string or comment");
	assert_int_equal(L->d.msgs[2].loc.len, 2); /* the whole run of high bytes */
	assert_err(L, 3, 1, 12, "non-ASCII text");
	assert_err(L, 4, 1, 15, "unexpected character '$'");
	assert_tok(L, 0, TK_IDENT, 1, 1, "a");
	assert_tok(L, 1, TK_IDENT, 1, 10, "b");
	assert_tok(L, 2, TK_IDENT, 1, 17, "c");
	assert_int_equal(L->n, 4);
}

static void
test_lexer_foreign_operators_suggest_words(void **state)
{
	struct lexed *L = *state;
	lex(L, "a == b\nc != d && e || f;\ng ! h");
	assert_int_equal(L->d.errors, 6);
	assert_err(L, 0, 1, 3, "unknown operator '=='; did you mean 'is'?");
	assert_int_equal(L->d.msgs[0].loc.len, 2);
	assert_err(L, 1, 2, 3, "unknown operator '!='; did you mean 'is not'?");
	assert_err(L, 2, 2, 8, "unknown operator '&&'; did you mean 'and'?");
	assert_err(L, 3, 2, 13, "unknown operator '||'; did you mean 'or'?");
	assert_err(L, 4, 2, 17, "unexpected ';'");
	assert_err(L, 5, 3, 3, "unexpected character '!'");
	/* for error recovery the parser gets the operator the user meant */
	assert_tok(L, 1, TK_IS, 1, 3, "==");
	assert_tok(L, 4, TK_IS, 2, 3, "!=");
	assert_tok(L, 6, TK_AND, 2, 8, "&&");
	assert_tok(L, 8, TK_OR, 2, 13, "||");
	assert_tok(L, 9, TK_IDENT, 2, 16, "f");
	/* ';' produces no token */
	assert_tok(L, 10, TK_IDENT, 3, 1, "g");
	assert_tok(L, 11, TK_IDENT, 3, 5, "h");
}

static void
test_lexer_token_length_limit_string_and_regex(void **state)
{
	struct lexed *L = *state;
	size_t n = HK_MAX_TOKEN_LEN + 8;
	char *src = malloc(2 * n + 16);
	size_t k = 0;
	src[k++] = '"';
	memset(src + k, 'a', n);
	k += n;
	src[k++] = '"';
	src[k++] = '\n';
	src[k++] = '/';
	memset(src + k, 'b', n);
	k += n;
	src[k++] = '/';
	src[k++] = ' ';
	src[k++] = 'z';
	lex_n(L, src, k);
	free(src);
	assert_int_equal(L->d.errors, 2);
	assert_err(L, 0, 1, 1, "token longer than 1048576 bytes");
	assert_err(L, 1, 2, 1, "token longer than 1048576 bytes");
	assert_int_equal(L->toks[0].type, TK_STRING);
	assert_int_equal(L->toks[1].type, TK_REGEX);
	assert_tok(L, 2, TK_IDENT, 2, (unsigned)n + 4, "z");
}

/* Regression (found in this review at 35aa793, fixed in f0b9752): a """
 * literal was not bounded by HK_MAX_TOKEN_LEN (lexer.h promises every
 * literal is): lex_triple returned before the common length check, so a
 * 1 MiB + 8 byte """ block was accepted without an error. */
static void
test_lexer_token_length_limit_triple_string(void **state)
{
	struct lexed *L = *state;
	size_t n = HK_MAX_TOKEN_LEN + 8;
	char *src = malloc(n + 16);
	size_t k = 0;
	memcpy(src, "\"\"\"", 3);
	k += 3;
	memset(src + k, 'a', n);
	k += n;
	memcpy(src + k, "\"\"\" z", 5);
	k += 5;
	lex_n(L, src, k);
	free(src);
	assert_int_equal(L->toks[0].type, TK_STRING);
	assert_int_equal(L->toks[0].len, n + 6);
	assert_int_equal(L->toks[1].type, TK_IDENT);
	assert_int_equal(L->d.errors, 1);
	assert_err(L, 0, 1, 1, "token longer than");
}

/* --- comments -------------------------------------------------------------------------- */

static void
test_lexer_comments_collected_with_own_line(void **state)
{
	struct lexed *L = *state;
	lex(L, "# header comment\n"
	       "on deliver { # trailing\n"
	       "\t  # indented\n"
	       "    keep #end\n"
	       "}#tight\n"
	       "#");
	assert_int_equal(L->d.nmsgs, 0);
	assert_int_equal(L->lx.ncomments, 6);
	static const struct {
		unsigned line, col;
		const char *text;
		bool own;
	} want[] = {
		{ 1, 1, "# header comment", true },
		{ 2, 14, "# trailing", false },
		{ 3, 4, "# indented", true },
		{ 4, 10, "#end", false },
		{ 5, 2, "#tight", false },
		{ 6, 1, "#", true },
	};
	for (size_t i = 0; i < HK_ARRAY_LEN(want); i++) {
		const struct comment *c = &L->lx.comments[i];
		assert_int_equal(c->line, want[i].line);
		assert_int_equal(c->col, want[i].col);
		assert_int_equal(c->text.len, strlen(want[i].text));
		assert_memory_equal(c->text.ptr, want[i].text, c->text.len);
		assert_int_equal(c->own_line, want[i].own);
	}
	/* comments are not tokens */
	assert_tok(L, 0, TK_ON, 2, 1, "on");
	assert_tok(L, 3, TK_KEEP, 4, 5, "keep");
	assert_tok(L, 4, TK_RBRACE, 5, 1, "}");
	assert_int_equal(L->n, 6);
}

static void
test_lexer_comments_not_kept_when_disabled(void **state)
{
	struct lexed *L = *state;
	const char *src = "# a\nkeep # b\n";
	char *copy = strdup(src);
	unsigned f = diag_add_file(&L->d, "t.hk", "t.hk", copy, strlen(src));
	lexer_init(&L->lx, &L->d, f, copy, strlen(src));
	L->have_lexer = true;
	L->lx.keep_comments = false;
	struct token t;
	lexer_next(&L->lx, &t);
	assert_int_equal(t.type, TK_KEEP);
	assert_int_equal(t.loc.line, 2);
	lexer_next(&L->lx, &t);
	assert_int_equal(t.type, 0);
	assert_int_equal(L->lx.ncomments, 0);
}

static void
test_lexer_token_names(void **state)
{
	(void)state;
	assert_string_equal(lexer_token_name(0), "end of file");
	assert_string_equal(lexer_token_name(TK_IDENT), "name");
	assert_string_equal(lexer_token_name(TK_STRING), "string");
	assert_string_equal(lexer_token_name(TK_SIZE), "size");
	assert_string_equal(lexer_token_name(TK_DURATION), "duration");
	assert_string_equal(lexer_token_name(TK_REGEX), "regex");
	assert_string_equal(lexer_token_name(TK_LBRACE), "'{'");
	assert_string_equal(lexer_token_name(TK_NTILDE), "'!~'");
	assert_string_equal(lexer_token_name(TK_NL), "end of line");
	assert_string_equal(lexer_token_name(TK_FILEINTO), "fileinto");
	assert_string_equal(lexer_token_name(TK_EXPECT), "expect");
}

int
main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_lexer_tokens_with_line_and_column, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lexer_every_operator_token, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lexer_keywords_are_case_sensitive, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lexer_position_after_triple_string, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lexer_position_after_triple_string_with_escapes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lexer_empty_triple_strings, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lexer_column_counts_utf8_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lexer_crlf_line_ends, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lexer_end_of_input_token, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lexer_empty_input, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lexer_sizes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lexer_size_needs_a_word_boundary, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lexer_durations, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lexer_duration_needs_a_known_unit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lexer_number_max_and_overflow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lexer_size_and_duration_overflow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lexer_string_escapes_stay_inside, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lexer_regex_with_escaped_slash_and_flags, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lexer_regex_decoded_by_parse_regex, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lexer_unterminated_string_error_location, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lexer_unterminated_string_at_end_of_input, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lexer_unterminated_regex_error_location, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lexer_unterminated_triple_string_error_location, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lexer_nul_byte_reported_and_skipped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lexer_nul_byte_inside_string_and_comment, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lexer_invalid_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lexer_foreign_operators_suggest_words, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lexer_token_length_limit_string_and_regex, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lexer_token_length_limit_triple_string, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lexer_comments_collected_with_own_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lexer_comments_not_kept_when_disabled, setup, teardown),
		cmocka_unit_test(test_lexer_token_names),
	};
	return cmocka_run_group_tests_name("lexer", tests, NULL, NULL);
}
