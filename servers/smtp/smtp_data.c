/*
 * smtp_data.c - the DATA push parser (see smtp_data.h for the rules).
 *
 * SECURITY: this is the smuggling boundary. The only way to SD_DONE is
 * SD_BOL ('.' after a real CRLF) -> SD_BOL_DOT ('\r') -> SD_BOL_DOT_CR
 * ('\n'); SD_BOL is entered only from SD_CR on '\n', i.e. after a real
 * CRLF (or at the start of the data, which follows the DATA command's
 * CRLF). Every other byte sequence is content.
 */
#include "smtp_data.h"

void
smtp_data_init(struct smtp_data *d, uint64_t max_size, void (*sink)(void *, const char *, size_t), void *ctx)
{
	d->state = SD_BOL;
	d->size = 0;
	d->max_size = max_size;
	d->too_big = false;
	d->bare_cr = d->bare_lf = false;
	d->sink = sink;
	d->ctx = ctx;
}

static void
emit(struct smtp_data *d, const char *p, size_t n)
{
	if (n == 0 || d->too_big)
		return;
	if (d->max_size && d->size + n > d->max_size) {
		d->too_big = true;
		return;
	}
	d->size += n;
	if (d->sink)
		d->sink(d->ctx, p, n);
}

size_t
smtp_data_push(struct smtp_data *d, const char *p, size_t n)
{
	size_t i = 0;
	size_t span = 0; /* start of the pending run of plain content bytes */
	while (i < n && d->state != SD_DONE) {
		char c = p[i];
		switch (d->state) {
		case SD_LINE:
			/* fast path: everything up to the next CR or LF is content */
			while (i < n && p[i] != '\r' && p[i] != '\n')
				i++;
			if (i == n)
				continue;
			c = p[i];
			if (c == '\r') {
				d->state = SD_CR;
			} else {
				d->bare_lf = true; /* stays inside the line: not a line end */
			}
			i++;
			continue;
		case SD_CR:
			if (c == '\n') {
				d->state = SD_BOL;
			} else if (c == '\r') {
				d->bare_cr = true;
			} else {
				d->bare_cr = true;
				d->state = SD_LINE;
			}
			i++;
			continue;
		case SD_BOL:
			if (c == '.') {
				emit(d, p + span, i - span);
				d->state = SD_BOL_DOT;
				i++;
				span = i; /* the stuffed dot is not content */
				continue;
			}
			if (c == '\r')
				d->state = SD_CR;
			else if (c == '\n')
				d->bare_lf = true, d->state = SD_LINE;
			else
				d->state = SD_LINE;
			i++;
			continue;
		case SD_BOL_DOT:
			if (c == '\r') {
				/* hold the CR back: it is either part of the end marker
				 * or emitted with the dot below */
				emit(d, p + span, i - span);
				d->state = SD_BOL_DOT_CR;
				i++;
				span = i;
				continue;
			}
			if (c == '\n')
				d->bare_lf = true;
			d->state = SD_LINE;
			i++;
			continue;
		case SD_BOL_DOT_CR:
			if (c == '\n') {
				/* <CRLF>.<CRLF>: the ".\r\n" is not content */
				d->state = SD_DONE;
				i++;
				span = i;
				continue;
			}
			/* ".\r" then something else: content ".\r" with a bare CR.
			 * The dot was a stuffed one only if a line follows; here it
			 * is kept as written. */
			d->bare_cr = true;
			emit(d, ".\r", 2);
			span = i; /* c itself is content, emitted with what follows */
			d->state = c == '\r' ? SD_CR : SD_LINE;
			if (c == '\n')
				d->bare_lf = true;
			i++;
			continue;
		case SD_DONE:
			break;
		}
	}
	if (d->state != SD_DONE)
		emit(d, p + span, i - span);
	return i;
}
