/*
 * lexer.h - the re2c tokenizer of rule files. The source is UTF-8 and
 * NUL-terminated; every token carries its line and byte column. Comments
 * are collected on the side for the formatter.
 *
 * SECURITY: rule files come from untrusted users (personal scripts). The
 * lexer never reads past the terminating NUL, bounds every literal by
 * HK_MAX_TOKEN_LEN, and reports bad bytes as located errors.
 */
#ifndef HK_LEXER_H
#define HK_LEXER_H

#include <stdbool.h>
#include <stdint.h>

#include "arena.h"
#include "diag.h"

#define HK_MAX_TOKEN_LEN (1u << 20) /* a string or regex literal, in bytes */

struct token {
	int type;          /* TK_* from the generated grammar.h; 0 at end of input */
	const char *ptr;   /* the token's text in the source */
	size_t len;
	struct loc loc;
	int64_t num;       /* NUMBER, SIZE, DURATION: the value (bytes, seconds) */
};

struct comment {
	unsigned line, col;
	struct hk_str text; /* including the '#' */
	bool own_line;      /* nothing but whitespace before it on its line */
};

struct lexer {
	const char *src, *cur, *end;
	const char *line_start;
	unsigned line;
	unsigned file;
	struct diag *diag;
	struct comment *comments;
	size_t ncomments, cap_comments;
	bool keep_comments;
};

void lexer_init(struct lexer *lx, struct diag *d, unsigned file, const char *src, size_t len);
void lexer_fini(struct lexer *lx);
/* Next token; type 0 at the end. Errors go to the diag sink and the
 * offending bytes are skipped. */
void lexer_next(struct lexer *lx, struct token *t);
/* The name of a token type, for "expected X" messages. */
const char *lexer_token_name(int type);

#endif
