/*
 * smtp_reply.c - an SMTP server's replies as the client reads them
 * (smtp_reply.h).
 */
#include "smtp_reply.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void
smtp_reply_init(struct smtp_reply *r)
{
	memset(r, 0, sizeof(*r));
	buf_init(&r->text);
}

void
smtp_reply_fini(struct smtp_reply *r)
{
	buf_fini(&r->text);
}

void
smtp_reply_next(struct smtp_reply *r)
{
	r->nlines = 0;
	buf_reset(&r->text);
}

enum smtp_reply_step
smtp_reply_line(struct smtp_reply *r, const char *line, size_t n, const char **txt_r)
{
	*txt_r = "";
	bool bad = n > SMTPC_LINE_MAX || n < 3 || !isdigit((unsigned char)line[0]) || !isdigit((unsigned char)line[1]) ||
	    !isdigit((unsigned char)line[2]) || (n > 3 && line[3] != ' ' && line[3] != '-') || line[0] < '1' || line[0] > '5';
	int code = bad ? 0 : (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	if (!bad && r->nlines > 0 && code != r->code)
		bad = true;
	if (bad)
		return SMTP_REPLY_MALFORMED;
	if (++r->nlines > SMTPC_MAX_LINES)
		return SMTP_REPLY_TOO_LONG;
	r->code = code;
	const char *txt = n > 4 ? line + 4 : "";
	*txt_r = txt;
	/* strlen, not n: a NUL in the line ends its text */
	if (r->text.len + strlen(txt) + 2 < SMTPC_MAX_TEXT) {
		if (r->text.len)
			buf_addc(&r->text, ' ');
		for (const char *p = txt; *p; p++)
			buf_addc(&r->text, (unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e ? '?' : *p);
	}
	return n == 3 || line[3] == ' ' ? SMTP_REPLY_END : SMTP_REPLY_MORE;
}

static bool
keyword_is(const char *kw, const char *name, size_t len)
{
	return strncasecmp(kw, name, len) == 0 && (kw[len] == '\0' || kw[len] == ' ');
}

void
smtp_ehlo_keyword(struct smtp_ehlo *e, const char *kw)
{
	if (keyword_is(kw, "STARTTLS", 8))
		e->starttls = true;
	else if (keyword_is(kw, "8BITMIME", 8))
		e->eightbit = true;
	else if (keyword_is(kw, "DSN", 3))
		e->dsn = true;
	else if (keyword_is(kw, "SIZE", 4)) {
		e->size = true;
		e->size_max = kw[4] ? strtoull(kw + 5, NULL, 10) : 0;
	}
}
