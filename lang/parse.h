/*
 * parse.h - parses one rule file into an AST (lexer.re + grammar.y).
 * Grammar actions only build nodes; checks are in sema.c.
 */
#ifndef HK_PARSE_H
#define HK_PARSE_H

#include "ast.h"
#include "lexer.h"

#define HK_MAX_NESTING 64
#define PARSE_MAX_OPEN 64 /* parser stack / block nesting before "too deep" */

struct parse_ctx {
	struct arena *arena;
	struct diag *diag;
	unsigned file;
	struct ast *root;
	bool failed;       /* a syntax error was reported */
	struct token last; /* last token fed, for end-of-file errors */
	struct loc open[PARSE_MAX_OPEN]; /* where the unclosed '{' are */
	unsigned nopen;
};

/* Suggests a known word close to `w` (keywords, fields), or NULL. */
const char *sema_suggest_word(struct hk_str w);

/* Parses file `file` of the diag sink. Returns the AST_FILE root (possibly
 * partial on errors: check diag->errors). If comments_r is not NULL, the
 * comments are returned too (heap array, free() it). */
struct ast *parse_file(struct arena *a, struct diag *d, unsigned file, struct comment **comments_r, size_t *ncomments_r);

/* Decodes a STRING token (escapes, """ indentation stripping, ${name}
 * interpolation) into an AST_STR node. Used by the grammar actions. */
struct ast *parse_string(struct parse_ctx *ctx, const struct token *t);
/* The text of a """ block without its common indentation (escapes kept). */
void parse_strip_block(const char *in, size_t n, struct hk_buf *out);
struct ast *parse_regex(struct parse_ctx *ctx, const struct token *t);

/* Lemon's generated entry points (grammar.c). */
void *hkParseAlloc(void *(*malloc_proc)(size_t));
void hkParse(void *p, int major, struct token minor, struct parse_ctx *ctx);
void hkParseFree(void *p, void (*free_proc)(void *));

#endif
