/*
 * diag.h - the diagnostics sink of the compiler. Lexer, parser, sema and
 * the loaders report here, never to stderr; the sink counts, keeps the
 * messages with their location, and stops accepting errors at a limit so a
 * hostile file cannot make the checker produce unbounded output.
 *
 * Rendering (diag_print) is GCC style with the source line and a caret:
 *   rules/personal.hk:14:19: error: unknown field 'hedaer' [-Wunknown-name]
 *      14 |     rule "x" when hedaer "X-Spam" is "yes" {
 *         |                   ^~~~~~
 */
#ifndef HK_DIAG_H
#define HK_DIAG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "util.h"

#define DIAG_MAX_ERRORS 50 /* after this many errors the sink stops recording */

/* A source file known to the compiler; the diag sink keeps the text for
 * rendering source lines. */
struct src_file {
	char *name;   /* as given, for messages */
	char *path;   /* resolved path on disk */
	char *text;   /* NUL-terminated contents */
	size_t len;
};

struct loc {
	unsigned file; /* index into diag->files */
	unsigned line; /* 1-based */
	unsigned col;  /* 1-based byte column */
	unsigned len;  /* bytes underlined by the caret (>= 1) */
};

enum diag_severity { DIAG_ERROR, DIAG_WARNING, DIAG_NOTE };

struct diag_msg {
	enum diag_severity sev;
	struct loc loc;
	bool has_loc;
	char *text;
	const char *flag; /* e.g. "unreachable", printed as [-Wunreachable]; may be NULL */
};

struct diag {
	struct src_file *files;
	size_t nfiles, cap_files;
	struct diag_msg *msgs;
	size_t nmsgs, cap_msgs;
	unsigned errors, warnings;
	bool overflow; /* errors were dropped past DIAG_MAX_ERRORS */
};

void diag_init(struct diag *d);
void diag_fini(struct diag *d);
/* Registers a file (takes ownership of text); returns its index. */
unsigned diag_add_file(struct diag *d, const char *name, const char *path, char *text, size_t len);

void diag_error(struct diag *d, struct loc loc, const char *flag, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void diag_warning(struct diag *d, struct loc loc, const char *flag, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void diag_note(struct diag *d, struct loc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* An error without a source location (e.g. a file that can't be read). */
void diag_error_noloc(struct diag *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints every message in order; color when `color` is true. */
void diag_print(const struct diag *d, FILE *out, bool color);
/* One message, same format, into a buffer. */
void diag_format(const struct diag *d, const struct diag_msg *m, struct hk_buf *out, bool color);

#endif
