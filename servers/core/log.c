/*
 * log.c - line-oriented server log (see log.h). Each line is written with
 * one write() so lines from several threads do not interleave.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum log_level min_level = LOG_L_INFO;

void
log_set_level(enum log_level l)
{
	min_level = l;
}

void
log_msg(enum log_level l, const char *component, const char *fmt, ...)
{
	if (l < min_level)
		return;
	static const char *const names[] = { "debug", "info", "warn", "error" };
	char line[2048];
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s [%s] ", tm.tm_year + 1900, tm.tm_mon + 1,
	    tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, names[l], component);
	va_list ap;
	va_start(ap, fmt);
	if (n > 0 && (size_t)n < sizeof(line))
		n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line) - 1)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	ssize_t w = write(2, line, (size_t)n);
	(void)w;
}

const char *
log_safe(struct hk_buf *b, const char *s, size_t len, size_t max)
{
	buf_reset(b);
	for (size_t i = 0; i < len && i < max; i++) {
		unsigned char c = (unsigned char)s[i];
		buf_addc(b, (c < 0x20 || c == 0x7f) ? '?' : (char)c);
	}
	if (len > max)
		buf_adds(b, "...");
	if (b->data == NULL)
		buf_add(b, "", 0);
	return b->data;
}
