/*
 * pop3_format.h - a stored message as POP3 sends it (RFC 1939 3): lines
 * end in CRLF (bare LF of foreign files becomes CRLF), a line starting
 * with "." gets another "." (dot-stuffing), and ".\r\n" ends it. For TOP,
 * only the header, the blank line and the first n body lines.
 *
 * Pure and incremental (the input comes in chunks read from the file), so
 * the fuzzer can check it on any bytes.
 */
#ifndef HK_POP3_FORMAT_H
#define HK_POP3_FORMAT_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

struct pop3_stuffer {
	long top_lines;   /* -1: everything (RETR) */
	long body_lines;  /* body lines sent */
	size_t line_len;  /* bytes of the current line but CR */
	bool in_header, line_start, prev_cr;
	bool stopped;     /* TOP has all it wants */
};

void pop3_stuffer_init(struct pop3_stuffer *st, long top_lines);
/* Appends the converted form of in[0..n) to out; returns the bytes used
 * (fewer than n only once stopped). Output is at most 2n bytes. */
size_t pop3_stuff(struct pop3_stuffer *st, const char *in, size_t n, struct hk_buf *out);
/* Ends the response: completes a last line without line end, then ".\r\n". */
void pop3_stuff_end(struct pop3_stuffer *st, struct hk_buf *out);

#endif
