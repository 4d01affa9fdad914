/*
 * compile.h - the compiler's one entry point: a rule file in, a checked
 * AST (for the tools) and a verified program out.
 *   parse (lexer.re, grammar.y) -> sema.c -> codegen.c -> bc_verify
 */
#ifndef HK_COMPILE_H
#define HK_COMPILE_H

#include <stdbool.h>

#include "arena.h"
#include "ast.h"
#include "diag.h"
#include "fields.h"
#include "lexer.h"
#include "program.h"

#define HK_MAX_IMPORT_DEPTH 16
#define HK_MAX_SOURCE_SIZE (4u << 20) /* one rule file */
#define HK_MAX_FORWARDS 10            /* forward targets per address */

struct hk_compile_opts {
	enum hk_layer layer;
	const char *stdlib_dir; /* where `import "name"` looks; NULL: the built-in default */
	const char *owner;      /* the mailbox a personal script belongs to, for self-forward checks */
	bool want_comments;     /* keep comments for the formatter */
};

struct ast_vec {
	struct ast **items;
	size_t n, cap;
};

/* One stage's rules after imports are merged, in execution order. */
struct hk_unit {
	struct arena arena;
	struct diag *diag;
	struct hk_compile_opts opts;
	unsigned main_file;
	struct ast *root;                 /* the main file */
	struct ast_vec stage[STAGE_COUNT]; /* rules and statements, imports first */
	struct ast_vec tests;              /* AST_TEST of the main file */
	struct comment *comments;
	size_t ncomments;
	unsigned nrules;
};

/* Parses and checks `path` (and what it imports). Diagnostics go to d.
 * Returns the unit (also when there were errors: check d->errors). */
struct hk_unit *hk_unit_load(const char *path, const struct hk_compile_opts *opts, struct diag *d);
/* Same, from text in memory (`name` is used in messages). */
struct hk_unit *hk_unit_load_text(const char *name, const char *text, size_t len,
    const struct hk_compile_opts *opts, struct diag *d);
void hk_unit_free(struct hk_unit **u);

/* Generates, verifies and prepares the program of a unit without errors. */
struct hk_program *hk_unit_codegen(struct hk_unit *u);

/* Convenience: load + codegen; NULL when there were errors. */
struct hk_program *hk_compile_file(const char *path, const struct hk_compile_opts *opts, struct diag *d);

/* Built-in stdlib directory (from the build; overridden by HIKYAKU_STDLIB). */
const char *hk_stdlib_dir(void);

/* sema.c */
void sema_check_unit(struct hk_unit *u);
/* The enum words a TY_ENUM field accepts, NULL-terminated. */
const char *const *sema_enum_words(int field);
/* codegen.c */
struct hk_program *codegen_unit(struct hk_unit *u);
/* fmt.c: canonical formatting of a parsed file (needs want_comments). */
void fmt_unit(const struct hk_unit *u, struct hk_buf *out);



#endif
