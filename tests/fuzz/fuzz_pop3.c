/*
 * fuzz_pop3.c - libFuzzer target for POP3's parsers of untrusted bytes:
 * the command line parser (the client's input) and the multi-line
 * formatter (a stored message, which came from anyone who sent mail).
 * First byte < 0x80: the rest is a command line; every slice must lie in
 * it. Otherwise: the rest is a message; RETR/TOP output must be the same
 * whatever the chunking, every LF must follow a CR, no line but the last
 * may be a lone ".", and it must end with ".\r\n".
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pop3/pop3_cmd.h"
#include "pop3/pop3_format.h"

static void
inside(const struct hk_str *s, const char *line, size_t len)
{
	if (s->len && (s->ptr < line || s->ptr + s->len > line + len))
		abort();
}

static void
format(const char *in, size_t n, long top, size_t chunk, struct hk_buf *out)
{
	struct pop3_stuffer st;
	pop3_stuffer_init(&st, top);
	for (size_t off = 0; off < n && !st.stopped;) {
		size_t k = n - off < chunk ? n - off : chunk;
		pop3_stuff(&st, in + off, k, out);
		off += k;
	}
	pop3_stuff_end(&st, out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 1 << 16)
		return 0;
	if (data[0] < 0x80) {
		size_t len = size - 1;
		char *line = malloc(len ? len : 1);
		memcpy(line, data + 1, len);
		struct pop3_cmd c;
		const char *err;
		if (len <= POP3_AUTH_LINE_MAX && pop3_cmd_parse(line, len, &c, &err) == 0) {
			if (c.nargs > 2)
				abort();
			for (unsigned i = 0; i < c.nargs; i++)
				inside(&c.args[i], line, len);
			inside(&c.rest, line, len);
			unsigned n;
			if (c.nargs && pop3_number(c.args[0], true, &n) && n > POP3_MSGNUM_MAX)
				abort();
		}
		free(line);
		return 0;
	}
	if (size < 3)
		return 0;
	long top = (long)data[1] - 1;
	size_t chunk = (size_t)data[2] + 1;
	const char *msg = (const char *)data + 3;
	size_t n = size - 3;
	struct hk_buf a, b;
	buf_init(&a);
	buf_init(&b);
	format(msg, n, top, n ? n : 1, &a);
	format(msg, n, top, chunk, &b);
	if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
		abort();
	if (a.len < 3 || memcmp(a.data + a.len - 3, ".\r\n", 3) != 0)
		abort();
	for (size_t i = 0; i < a.len; i++) {
		if (a.data[i] == '\n' && (i == 0 || a.data[i - 1] != '\r'))
			abort();
		/* a line that is a lone "." before the end would end the response early */
		bool bol = i == 0 || a.data[i - 1] == '\n';
		if (bol && i + 3 < a.len && a.data[i] == '.' && a.data[i + 1] == '\r' && a.data[i + 2] == '\n')
			abort();
	}
	buf_fini(&a);
	buf_fini(&b);
	return 0;
}
