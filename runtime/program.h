/*
 * program.h - a compiled rule file: the bytecode, its constant pool, its
 * regexes, its rule table and line table, and the stage entry points.
 * Built by lang/codegen.c, written to and read from .hkc files here,
 * verified by bc_verify.c before anything runs it, executed by vm.c.
 *
 * Ownership: programs are reference-counted and shared read-only between
 * sessions: hk_program_ref / hk_program_unref. Everything hangs off the
 * program and is freed with the last reference.
 */
#ifndef HK_PROGRAM_H
#define HK_PROGRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define HK_BC_MAGIC "HKBC"
#define HK_BC_VERSION 1
#define HK_STAGES 7 /* must equal STAGE_COUNT in lang/ast.h */

/* Limits on what a program may contain (checked by the reader and the
 * verifier, and by the compiler before it emits anything). */
#define HK_MAX_CODE (16u << 20)
#define HK_MAX_CONSTS 65535u
#define HK_MAX_REGEXES 65535u
#define HK_MAX_RULES 65535u
#define HK_MAX_STRPOOL (64u << 20)
#define HK_MAX_STACK 256u
#define HK_MAX_FILES 256u

/* Who wrote the script; decides what it may do (see doc/language.md). */
enum hk_layer { HK_LAYER_OPERATOR, HK_LAYER_DOMAIN, HK_LAYER_PANEL, HK_LAYER_PERSONAL, HK_LAYER_COUNT };

enum hk_const_type { HKC_STR = 1, HKC_NUM, HKC_BOOL, HKC_STRLIST, HKC_NUMLIST };

struct hk_const {
	uint8_t type;
	uint32_t off, len;   /* STR: bytes in strpool */
	int64_t num;         /* NUM, BOOL */
	uint32_t first, count; /* lists: consts[first .. first+count), all scalars */
};

struct hk_regex_info {
	uint32_t off, len; /* pattern in strpool */
	uint32_t flags;    /* HK_RE_* */
	void *code;        /* pcre2_code *, compiled when loaded */
};

enum { HK_RE_CASELESS = 1, HK_RE_MULTILINE = 2, HK_RE_DOTALL = 4, HK_RE_EXTENDED = 8 };

struct hk_rule_info {
	uint32_t name_off, name_len;
	uint16_t file;
	uint8_t stage;
	uint32_t line, col;
};

struct hk_line_info {
	uint32_t pc;
	uint32_t line;
	uint16_t col, file;
};

struct hk_file_info {
	uint32_t off, len; /* name in strpool */
};

/* A constant as the VM sees it (built at load time). */
struct vm_const_value;

struct hk_program {
	int refs;
	uint8_t layer;
	char *strpool;
	uint32_t strpool_len;
	struct hk_const *consts;
	uint32_t nconsts;
	struct hk_regex_info *regexes;
	uint32_t nregexes;
	struct hk_rule_info *rules;
	uint32_t nrules;
	struct hk_file_info *files;
	uint32_t nfiles;
	uint32_t entry[HK_STAGES]; /* UINT32_MAX: no code for that stage */
	uint8_t *code;
	uint32_t code_len;
	struct hk_line_info *lines;
	uint32_t nlines;
	uint8_t source_hash[32]; /* SHA-256 of the sources, for the cache */
	uint32_t max_stack;      /* computed by the verifier */
	struct vm_const_value *rt; /* per-const runtime values (vm.c) */
	bool prepared;
};

#define HK_NO_ENTRY UINT32_MAX

struct hk_program *hk_program_new(void);
struct hk_program *hk_program_ref(struct hk_program *p);
void hk_program_unref(struct hk_program **p);

/* Serializes to the .hkc format (versioned header, sections, SHA-256
 * trailer). */
void hk_program_write(const struct hk_program *p, struct hk_buf *out);
/* Reads, checks the checksum, verifies (bc_verify) and prepares the
 * program. On failure returns -1 and a message in err (never executes
 * anything from a bad file). */
int hk_program_read(const void *data, size_t len, struct hk_program **p_r, struct hk_buf *err);

/* Verifies structure, operands, jumps, stack depths and the layer's
 * permissions. 0 when the program is safe to run; else -1 and a message. */
int hk_program_verify(struct hk_program *p, struct hk_buf *err);

/* Compiles regexes and builds runtime constants; called by the reader and
 * by the compiler. -1 with a message on failure. */
int hk_program_prepare(struct hk_program *p, struct hk_buf *err);

static inline struct hk_str
hk_program_str(const struct hk_program *p, uint32_t off, uint32_t len)
{
	return (struct hk_str){ p->strpool + off, len };
}

/* The source location of the instruction at pc (line 0 when unknown). */
const struct hk_line_info *hk_program_line(const struct hk_program *p, uint32_t pc);

const char *hk_layer_name(int layer);

/* What a stage of a verified program can read of the message
 * (program_needs.c): nothing (only envelope, plan and retention facts),
 * the header block (subject, from, header "X", ...; envelope.from and
 * envelope.to, which stored mail keeps in Return-Path and Delivered-To),
 * or the body too (body, size, attachments). Ordered: NONE < HEADER <
 * BODY. An upper bound (a fact in a rule that never matches counts). */
enum hk_needs { HK_NEEDS_NONE, HK_NEEDS_HEADER, HK_NEEDS_BODY };
enum hk_needs hk_program_stage_needs(const struct hk_program *p, int stage);

#endif
