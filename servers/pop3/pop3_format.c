/*
 * pop3_format.c - messages in POP3's multi-line form (see pop3_format.h).
 */
#include "pop3_format.h"

void
pop3_stuffer_init(struct pop3_stuffer *st, long top_lines)
{
	st->top_lines = top_lines;
	st->body_lines = 0;
	st->line_len = 0;
	st->in_header = true;
	st->line_start = true;
	st->prev_cr = false;
	st->stopped = false;
}

/* One complete line was sent: header/body bookkeeping for TOP. */
static void
line_end(struct pop3_stuffer *st)
{
	if (st->in_header) {
		if (st->line_len == 0) {
			st->in_header = false; /* the blank line ending the header */
			if (st->top_lines == 0)
				st->stopped = true;
		}
	} else if (st->top_lines >= 0 && ++st->body_lines >= st->top_lines) {
		st->stopped = true;
	}
	st->line_len = 0;
	st->line_start = true;
}

size_t
pop3_stuff(struct pop3_stuffer *st, const char *in, size_t n, struct hk_buf *out)
{
	if (st->stopped)
		return 0;
	buf_reserve(out, n * 2 + 1);
	char *o = out->data + out->len;
	size_t i;
	for (i = 0; i < n && !st->stopped; i++) {
		char c = in[i];
		if (st->line_start && c == '.')
			*o++ = '.';
		if (c == '\n') {
			if (!st->prev_cr)
				*o++ = '\r';
			*o++ = '\n';
			st->prev_cr = false;
			line_end(st);
			continue;
		}
		*o++ = c;
		st->line_start = false;
		st->prev_cr = c == '\r';
		if (c != '\r')
			st->line_len++;
	}
	out->len = (size_t)(o - out->data);
	out->data[out->len] = '\0';
	return i;
}

void
pop3_stuff_end(struct pop3_stuffer *st, struct hk_buf *out)
{
	if (!st->line_start)
		buf_adds(out, st->prev_cr ? "\n" : "\r\n");
	buf_adds(out, ".\r\n");
	st->line_start = true;
	st->stopped = true;
}
