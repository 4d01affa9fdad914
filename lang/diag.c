/*
 * diag.c - the compiler's diagnostics sink and its GCC-style renderer.
 * See diag.h.
 */
#include "diag.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define DIAG_LINE_MAX 160 /* bytes of a source line shown under a message */

void
diag_init(struct diag *d)
{
	memset(d, 0, sizeof(*d));
}

void
diag_fini(struct diag *d)
{
	for (size_t i = 0; i < d->nfiles; i++) {
		free(d->files[i].name);
		free(d->files[i].path);
		free(d->files[i].text);
	}
	for (size_t i = 0; i < d->nmsgs; i++)
		free(d->msgs[i].text);
	free(d->files);
	free(d->msgs);
	memset(d, 0, sizeof(*d));
}

unsigned
diag_add_file(struct diag *d, const char *name, const char *path, char *text, size_t len)
{
	d->files = xgrow(d->files, &d->cap_files, d->nfiles + 1, sizeof(*d->files));
	struct src_file *f = &d->files[d->nfiles];
	f->name = xstrdup(name);
	f->path = xstrdup(path ? path : name);
	f->text = text;
	f->len = len;
	return (unsigned)d->nfiles++;
}

static void
diag_add(struct diag *d, enum diag_severity sev, const struct loc *loc, const char *flag, const char *fmt, va_list ap)
{
	if (sev == DIAG_ERROR) {
		d->errors++;
		if (d->errors > DIAG_MAX_ERRORS) {
			d->overflow = true;
			return;
		}
	} else if (sev == DIAG_WARNING) {
		d->warnings++;
		if (d->warnings > DIAG_MAX_ERRORS)
			return;
	} else if (d->overflow) {
		return;
	}
	struct hk_buf b;
	buf_init(&b);
	buf_vprintf(&b, fmt, ap);
	d->msgs = xgrow(d->msgs, &d->cap_msgs, d->nmsgs + 1, sizeof(*d->msgs));
	struct diag_msg *m = &d->msgs[d->nmsgs++];
	m->sev = sev;
	m->has_loc = loc != NULL;
	if (loc)
		m->loc = *loc;
	else
		memset(&m->loc, 0, sizeof(m->loc));
	m->text = buf_steal(&b);
	m->flag = flag;
}

void
diag_error(struct diag *d, struct loc loc, const char *flag, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	diag_add(d, DIAG_ERROR, &loc, flag, fmt, ap);
	va_end(ap);
}

void
diag_warning(struct diag *d, struct loc loc, const char *flag, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	diag_add(d, DIAG_WARNING, &loc, flag, fmt, ap);
	va_end(ap);
}

void
diag_note(struct diag *d, struct loc loc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	diag_add(d, DIAG_NOTE, &loc, NULL, fmt, ap);
	va_end(ap);
}

void
diag_error_noloc(struct diag *d, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	diag_add(d, DIAG_ERROR, NULL, NULL, fmt, ap);
	va_end(ap);
}

/* Finds the start and length of line `line` in the file's text. */
static bool
source_line(const struct src_file *f, unsigned line, const char **start_r, size_t *len_r)
{
	const char *p = f->text, *end = f->text + f->len;
	for (unsigned l = 1; l < line; l++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			return false;
		p = nl + 1;
	}
	const char *nl = memchr(p, '\n', (size_t)(end - p));
	size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
	if (n && p[n - 1] == '\r')
		n--;
	*start_r = p;
	*len_r = n;
	return true;
}

void
diag_format(const struct diag *d, const struct diag_msg *m, struct hk_buf *out, bool color)
{
	static const char *names[] = { "error", "warning", "note" };
	static const char *colors[] = { "\033[1;31m", "\033[1;35m", "\033[1;36m" };
	const char *bold = color ? "\033[1m" : "", *reset = color ? "\033[0m" : "";
	const struct src_file *f = m->has_loc && m->loc.file < d->nfiles ? &d->files[m->loc.file] : NULL;

	if (f)
		buf_printf(out, "%s%s:%u:%u: %s", bold, f->name, m->loc.line, m->loc.col, reset);
	else
		buf_printf(out, "%shikyaku: %s", bold, reset);
	buf_printf(out, "%s%s:%s ", color ? colors[m->sev] : "", names[m->sev], reset);
	/* Messages quote the script (names, decoded strings): control bytes
	 * are shown as '?', so a script cannot send escape sequences to the
	 * terminal or the log reading the diagnostics. */
	for (const char *t = m->text; *t; t++)
		buf_addc(out, (unsigned char)*t < 0x20 || *t == 0x7f ? '?' : *t);
	if (m->flag)
		buf_printf(out, " [-W%s]", m->flag);
	buf_addc(out, '\n');

	const char *line;
	size_t len;
	if (f == NULL || !source_line(f, m->loc.line, &line, &len))
		return;
	/* A long line is cut to a window around the caret (a hostile file may
	 * be one 4 MB line with 50 errors on it), never inside a UTF-8
	 * sequence; tabs and control bytes are shown as spaces, so the caret
	 * lines up and nothing reaches the terminal raw. */
	size_t col = m->loc.col ? m->loc.col - 1 : 0;
	size_t from = 0, to = len;
	if (len > DIAG_LINE_MAX) {
		from = col > DIAG_LINE_MAX / 2 ? col - DIAG_LINE_MAX / 2 : 0;
		if (from > len - DIAG_LINE_MAX)
			from = len - DIAG_LINE_MAX;
		to = from + DIAG_LINE_MAX;
		while (from < to && ((unsigned char)line[from] & 0xC0) == 0x80)
			from++;
		while (to > from && to < len && ((unsigned char)line[to] & 0xC0) == 0x80)
			to--;
	}
	buf_printf(out, "%5u | %s", m->loc.line, from ? "..." : "");
	for (size_t i = from; i < to; i++)
		buf_addc(out, (unsigned char)line[i] < 0x20 || line[i] == 0x7f ? ' ' : line[i]);
	buf_adds(out, to < len ? "...\n      | " : "\n      | ");
	if (from)
		buf_adds(out, "   ");
	for (size_t i = from; i < col && i < to; i++) {
		/* Count a UTF-8 sequence as one column for the caret line. */
		unsigned char c = (unsigned char)line[i];
		if ((c & 0xC0) != 0x80)
			buf_addc(out, ' ');
	}
	if (color)
		buf_adds(out, colors[m->sev]);
	buf_addc(out, '^');
	unsigned width = 0;
	for (size_t i = col + 1; i < col + m->loc.len && i < to; i++)
		if (((unsigned char)line[i] & 0xC0) != 0x80)
			width++;
	for (unsigned i = 0; i < width; i++)
		buf_addc(out, '~');
	buf_adds(out, reset);
	buf_addc(out, '\n');
}

/* Messages are printed in source order (file, line, column), whatever
 * order the passes found them in; insertion sort keeps it stable. */
static size_t *
sorted_order(const struct diag *d)
{
	size_t *ord = xmalloc((d->nmsgs ? d->nmsgs : 1) * sizeof(*ord));
	for (size_t i = 0; i < d->nmsgs; i++) {
		const struct diag_msg *m = &d->msgs[i];
		size_t j = i;
		while (j > 0) {
			const struct diag_msg *p = &d->msgs[ord[j - 1]];
			bool after = !p->has_loc ? false : !m->has_loc ? true
			    : p->loc.file != m->loc.file ? p->loc.file > m->loc.file
			    : p->loc.line != m->loc.line ? p->loc.line > m->loc.line : p->loc.col > m->loc.col;
			if (!after)
				break;
			ord[j] = ord[j - 1];
			j--;
		}
		ord[j] = i;
	}
	return ord;
}

void
diag_print(const struct diag *d, FILE *out, bool color)
{
	struct hk_buf b;
	buf_init(&b);
	size_t *ord = sorted_order(d);
	for (size_t i = 0; i < d->nmsgs; i++)
		diag_format(d, &d->msgs[ord[i]], &b, color);
	free(ord);
	if (d->overflow)
		buf_printf(&b, "hikyaku: too many errors; stopped after %d\n", DIAG_MAX_ERRORS);
	if (b.len)
		fwrite(b.data, 1, b.len, out);
	buf_fini(&b);
}
