/*
 * smtp_reply.h - reading an SMTP server's replies, as the outbound client
 * does (RFC 5321 4.2): "NNN-text" lines then "NNN text", one code
 * throughout, and the EHLO keywords we act on. The server is untrusted:
 * a line is at most SMTPC_LINE_MAX bytes, a reply at most SMTPC_MAX_LINES
 * lines, and the text kept (for logs and bounces) is printable ASCII cut
 * below SMTPC_MAX_TEXT bytes. Pure functions (fuzz_smtp_reply).
 */
#ifndef HK_SMTP_REPLY_H
#define HK_SMTP_REPLY_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

#define SMTPC_LINE_MAX 2048 /* RFC 5321 says 512; be lenient with servers */
#define SMTPC_MAX_LINES 100
#define SMTPC_MAX_TEXT 512

struct smtp_reply {
	int code;         /* of the reply being read */
	unsigned nlines;  /* its lines so far */
	struct hk_buf text; /* its texts, joined by spaces, non-printables as '?' */
};

enum smtp_reply_step {
	SMTP_REPLY_MORE,      /* a line that is not the last */
	SMTP_REPLY_END,       /* the last line: code and text are the reply's */
	SMTP_REPLY_MALFORMED, /* not "NNN[ -]...", or another code than its first line */
	SMTP_REPLY_TOO_LONG,  /* more than SMTPC_MAX_LINES lines */
};

void smtp_reply_init(struct smtp_reply *r);
void smtp_reply_fini(struct smtp_reply *r);
/* One line (line[n] must be NUL; no CRLF). *txt_r: its text after
 * "NNN-" (NUL-terminated, in line). After END the caller uses code and
 * text, then smtp_reply_next before the next reply's first line. */
enum smtp_reply_step smtp_reply_line(struct smtp_reply *r, const char *line, size_t n, const char **txt_r);
void smtp_reply_next(struct smtp_reply *r);

/* What EHLO offered (the lines after the first). */
struct smtp_ehlo {
	bool starttls, size, eightbit, dsn;
	unsigned long long size_max; /* SIZE's argument, 0 when none */
};
void smtp_ehlo_keyword(struct smtp_ehlo *e, const char *kw);

#endif
