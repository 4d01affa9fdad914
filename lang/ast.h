/*
 * ast.h - the syntax tree of a rule file. Built by the grammar actions
 * (which only build nodes), checked and annotated by sema.c, turned into
 * bytecode by codegen.c, printed back by fmt.c.
 *
 * Ownership: every node and every string lives in the compile arena and
 * dies with it; nothing here is freed piece by piece.
 */
#ifndef HK_AST_H
#define HK_AST_H

#include <stdbool.h>
#include <stdint.h>

#include "arena.h"
#include "diag.h"

enum ast_kind {
	/* top level */
	AST_FILE,     /* list: items */
	AST_IMPORT,   /* str: library name */
	AST_CONST,    /* str: name, a: value */
	AST_ON,       /* op: stage, list: rules and statements */
	AST_TEST,     /* str: name, list: test statements */
	/* rules and statements */
	AST_RULE,     /* str: name, a: condition or NULL, list: body */
	AST_IF,       /* a: condition, list: then, b: else (AST_IF or AST_BLOCK) or NULL */
	AST_BLOCK,    /* list: statements (an else branch) */
	AST_ACTION,   /* op: action, list: arguments, opts: options */
	AST_OPTION,   /* str: option word, a: value */
	AST_TSTMT,    /* str: verb (message, envelope, spf, ...), list: atoms */
	AST_EXPECT,   /* op: 0 plain, 1 suppressed, 2 no; a: AST_ACTION */
	/* expressions */
	AST_STR,      /* str: decoded value (when no interpolation), list: parts */
	AST_NUM,      /* num, str: source spelling ("8M", "90 days") */
	AST_BOOL,     /* num: 0 or 1 */
	AST_LIST,     /* list: elements */
	AST_REGEX,    /* str: pattern, str2: flags */
	AST_NAME,     /* str: name, list: .properties (AST_NAME each) */
	AST_HEADER,   /* op: 0 header, 1 headers; a: name expression */
	AST_HAS,      /* a: what (AST_NAME or AST_HEADER) */
	AST_AND,      /* list: two or more operands */
	AST_OR,       /* list: two or more operands */
	AST_NOT,      /* a */
	AST_CMP,      /* op: comparison, num: negated, a: left, b: right */
	AST_PAREN     /* a: inner (kept for the formatter) */
};

enum ast_stage {
	STAGE_CONNECT, STAGE_HELO, STAGE_MAIL, STAGE_RCPT, STAGE_DATA,
	STAGE_DELIVER, STAGE_RETENTION, STAGE_COUNT
};

enum ast_cmp {
	CMP_IS, CMP_CONTAINS, CMP_STARTS, CMP_ENDS, CMP_MATCHES, CMP_REGEX,
	CMP_IN, CMP_LT, CMP_LE, CMP_GT, CMP_GE
};

#define HK_ACTIONS(X) \
	X(KEEP, "keep") X(FILEINTO, "fileinto") X(FORWARD, "forward") \
	X(NOTIFY, "notify") X(REPLY, "reply") X(REJECT, "reject") \
	X(DISCARD, "discard") X(SKIP, "skip") X(STOP, "stop") \
	X(EXPAND, "expand") X(STRIP, "strip") X(ADD_HEADER, "add") \
	X(REMOVE_HEADER, "remove") X(FLAG, "flag") X(REFUSE, "refuse") \
	X(TEMPFAIL, "tempfail") X(EXPUNGE, "expunge") X(LOG, "log")

enum ast_action {
#define X(id, word) ACT_##id,
	HK_ACTIONS(X)
#undef X
	ACT_COUNT
};

enum sem_type {
	TY_UNKNOWN = 0, TY_STR, TY_STRLIST, TY_NUM, TY_NUMLIST, TY_BOOL,
	TY_ADDR, TY_REGEX, TY_ENUM
};

struct ast {
	enum ast_kind kind;
	int op;
	struct loc loc;
	unsigned end_line; /* last line of the construct (rules, blocks, items) */
	struct hk_str str;
	struct hk_str str2;
	int64_t num;
	struct ast *a, *b;
	struct ast *list, *list_tail; /* children, linked through next */
	struct ast *opts;             /* action options */
	struct ast *next;
	/* filled in by sema */
	enum sem_type type;
	int field;          /* resolved field id for AST_NAME / AST_HEADER */
	bool constant;      /* value is known at compile time */
	bool interpolated;  /* AST_STR with ${...} parts */
	struct ast *resolved; /* AST_NAME that names a const: its value */
	unsigned rule_index;  /* AST_RULE: index in the program's rule table */
	unsigned lib_depth;   /* >0 when the node came from an imported library */
};

struct ast *ast_new(struct arena *a, enum ast_kind kind, struct loc loc);
/* Appends child to parent's list; returns parent. */
struct ast *ast_append(struct ast *parent, struct ast *child);
size_t ast_list_len(const struct ast *parent);

const char *ast_stage_name(int stage);
int ast_stage_lookup(struct hk_str name); /* -1 when unknown */
const char *ast_action_name(int act);
const char *ast_cmp_name(int cmp);

/* Debug dump of the tree (golden tests: tests/golden/lang/ok/NAME.ast). */
void ast_dump(const struct ast *n, struct hk_buf *out);

#endif
