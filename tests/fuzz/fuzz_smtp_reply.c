/*
 * fuzz_smtp_reply.c - libFuzzer target for what a remote SMTP server says
 * to our outbound queue (servers/queue/smtp_reply.c): replies line by line
 * (the input split at LF, a CR before it dropped, as evbuffer_readln does)
 * and the EHLO keywords of every line after a reply's first.
 * Properties: a finished reply's code is 100..599 and the same as its
 * first line's; its text is printable ASCII below SMTPC_MAX_TEXT; a reply
 * never has more than SMTPC_MAX_LINES lines.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "queue/smtp_reply.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 1 << 16)
		return 0;
	struct smtp_reply r;
	struct smtp_ehlo e;
	memset(&e, 0, sizeof(e));
	smtp_reply_init(&r);
	const char *p = (const char *)data, *end = p + size;
	int first = 0;
	while (p < end) {
		const char *lf = memchr(p, '\n', (size_t)(end - p));
		size_t n = lf ? (size_t)(lf - p) : (size_t)(end - p);
		if (n && p[n - 1] == '\r')
			n--;
		char *line = malloc(n + 1);
		memcpy(line, p, n);
		line[n] = '\0';
		p = lf ? lf + 1 : end;
		const char *txt;
		enum smtp_reply_step st = smtp_reply_line(&r, line, n, &txt);
		if (st == SMTP_REPLY_MALFORMED || st == SMTP_REPLY_TOO_LONG) {
			free(line);
			break; /* the client gives up on the connection */
		}
		if (*txt && (txt < line || txt > line + n)) /* "" when the line has no text */
			abort();
		if (r.nlines == 1)
			first = r.code;
		if (r.nlines > SMTPC_MAX_LINES || r.code != first || r.code < 100 || r.code > 599)
			abort();
		if (r.nlines > 1)
			smtp_ehlo_keyword(&e, txt);
		free(line);
		if (st == SMTP_REPLY_END) {
			if (r.text.len >= SMTPC_MAX_TEXT)
				abort();
			for (size_t i = 0; i < r.text.len; i++)
				if ((unsigned char)r.text.data[i] < 0x20 || (unsigned char)r.text.data[i] > 0x7e)
					abort();
			smtp_reply_next(&r);
		}
	}
	if (e.size_max && !e.size)
		abort();
	smtp_reply_fini(&r);
	return 0;
}
