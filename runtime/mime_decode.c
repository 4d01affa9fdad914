/*
 * mime_decode.c - base64, quoted-printable, Q and %XX decoders (see
 * mime_decode.h).
 *
 * Pipeline: message.c decodes part bodies with these after mime_parser has
 * located them; rfc2047.c and mime_param.c decode header words and RFC 2231
 * values. Each decoder is one pass over its input, with a NULL-output mode
 * that only counts (attachment sizes without decoding).
 *
 * Ownership: output goes into the caller's buffer, reserved once up front
 * (output <= input), so a decoder never reallocates while it runs.
 *
 * SECURITY: input is hostile mail. No decoder reads past len, and none can
 * loop: every iteration consumes at least one input byte.
 */
#include "mime_decode.h"

#include <string.h>

/* 0-63 for the alphabet, 64 for '=', 65 for blanks, 66 for anything else */
#define B64_PAD 64
#define B64_SPACE 65
#define B64_BAD 66

static const unsigned char b64_table[256] = {
	['A'] = 0, ['B'] = 1, ['C'] = 2, ['D'] = 3, ['E'] = 4, ['F'] = 5, ['G'] = 6, ['H'] = 7,
	['I'] = 8, ['J'] = 9, ['K'] = 10, ['L'] = 11, ['M'] = 12, ['N'] = 13, ['O'] = 14, ['P'] = 15,
	['Q'] = 16, ['R'] = 17, ['S'] = 18, ['T'] = 19, ['U'] = 20, ['V'] = 21, ['W'] = 22, ['X'] = 23,
	['Y'] = 24, ['Z'] = 25, ['a'] = 26, ['b'] = 27, ['c'] = 28, ['d'] = 29, ['e'] = 30, ['f'] = 31,
	['g'] = 32, ['h'] = 33, ['i'] = 34, ['j'] = 35, ['k'] = 36, ['l'] = 37, ['m'] = 38, ['n'] = 39,
	['o'] = 40, ['p'] = 41, ['q'] = 42, ['r'] = 43, ['s'] = 44, ['t'] = 45, ['u'] = 46, ['v'] = 47,
	['w'] = 48, ['x'] = 49, ['y'] = 50, ['z'] = 51, ['0'] = 52, ['1'] = 53, ['2'] = 54, ['3'] = 55,
	['4'] = 56, ['5'] = 57, ['6'] = 58, ['7'] = 59, ['8'] = 60, ['9'] = 61, ['+'] = 62, ['/'] = 63,
};

static unsigned
b64_class(unsigned char c)
{
	if (c == 'A')
		return 0;
	if (b64_table[c])
		return b64_table[c];
	if (c == '=')
		return B64_PAD;
	if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v')
		return B64_SPACE;
	return B64_BAD;
}

/* Decodes into out (may be NULL: count only); returns the output size. */
static size_t
b64_core(const char *in, size_t len, unsigned char *out, bool *ok_r)
{
	const unsigned char *p = (const unsigned char *)in;
	uint32_t acc = 0;
	unsigned nq = 0; /* sextets in the current quantum */
	size_t n = 0;
	bool ok = true;

	for (size_t i = 0; i < len; i++) {
		unsigned v = b64_class(p[i]);
		if (v < 64) {
			acc = (acc << 6) | v;
			if (++nq == 4) {
				if (out) {
					out[n] = (unsigned char)(acc >> 16);
					out[n + 1] = (unsigned char)(acc >> 8);
					out[n + 2] = (unsigned char)acc;
				}
				n += 3;
				nq = 0;
				acc = 0;
			}
		} else if (v == B64_PAD) {
			/* end of a quantum: flush what it holds */
			if (nq == 2) {
				if (out)
					out[n] = (unsigned char)(acc >> 4);
				n += 1;
			} else if (nq == 3) {
				if (out) {
					out[n] = (unsigned char)(acc >> 10);
					out[n + 1] = (unsigned char)(acc >> 2);
				}
				n += 2;
			} else if (nq == 1) {
				ok = false;
			}
			nq = 0;
			acc = 0;
		} else if (v == B64_BAD) {
			ok = false;
		}
	}
	if (nq == 2) {
		if (out)
			out[n] = (unsigned char)(acc >> 4);
		n += 1;
	} else if (nq == 3) {
		if (out) {
			out[n] = (unsigned char)(acc >> 10);
			out[n + 1] = (unsigned char)(acc >> 2);
		}
		n += 2;
	} else if (nq == 1) {
		ok = false;
	}
	if (ok_r)
		*ok_r = ok;
	return n;
}

bool
mime_base64_decode(const char *in, size_t len, struct hk_buf *out)
{
	bool ok;
	buf_reserve(out, len / 4 * 3 + 3);
	size_t n = b64_core(in, len, (unsigned char *)out->data + out->len, &ok);
	out->len += n;
	out->data[out->len] = '\0';
	return ok;
}

size_t
mime_base64_decoded_len(const char *in, size_t len)
{
	return b64_core(in, len, NULL, NULL);
}

static int
hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/*
 * Quoted-printable, line by line: blanks before a hard line break are
 * dropped (RFC 2045 rule 3), "=" as the last non-blank of a line is a soft
 * break, =XX is a byte, any other "=" is kept. q_mode: RFC 2047 Q words,
 * where '_' is a space and there are no lines.
 */
static size_t
qp_core(const char *in, size_t len, unsigned char *out, bool q_mode, bool *ok_r)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t n = 0, i = 0;
	bool ok = true;

	while (i < len) {
		/* one line: [i, le) content, [le, next) line end */
		const unsigned char *nl = q_mode ? NULL : memchr(p + i, '\n', len - i);
		size_t next = nl ? (size_t)(nl - p) + 1 : len;
		size_t le = nl ? (size_t)(nl - p) : len;
		if (nl && le > i && p[le - 1] == '\r')
			le--;
		size_t ce = le; /* content end without trailing blanks */
		if (!q_mode)
			while (ce > i && (p[ce - 1] == ' ' || p[ce - 1] == '\t'))
				ce--;
		bool soft = false;
		if (!q_mode && ce > i && p[ce - 1] == '=') {
			soft = true;
			ce--;
		}
		for (size_t j = i; j < ce; j++) {
			unsigned char c = p[j];
			if (c == '=') {
				int h1 = j + 1 < ce ? hexval(p[j + 1]) : -1;
				int h2 = j + 2 < ce ? hexval(p[j + 2]) : -1;
				if (h1 >= 0 && h2 >= 0) {
					if (out)
						out[n] = (unsigned char)(h1 << 4 | h2);
					n++;
					j += 2;
					continue;
				}
				ok = false;
			} else if (c == '_' && q_mode) {
				c = ' ';
			}
			if (out)
				out[n] = c;
			n++;
		}
		if (!soft) {
			/* keep the hard line break as it was written */
			for (size_t j = le; j < next; j++) {
				if (out)
					out[n] = p[j];
				n++;
			}
		}
		i = next;
	}
	if (ok_r)
		*ok_r = ok;
	return n;
}

bool
mime_qp_decode(const char *in, size_t len, struct hk_buf *out)
{
	bool ok;
	buf_reserve(out, len);
	out->len += qp_core(in, len, (unsigned char *)out->data + out->len, false, &ok);
	out->data[out->len] = '\0';
	return ok;
}

size_t
mime_qp_decoded_len(const char *in, size_t len)
{
	return qp_core(in, len, NULL, false, NULL);
}

bool
mime_q_decode(const char *in, size_t len, struct hk_buf *out)
{
	bool ok;
	buf_reserve(out, len);
	out->len += qp_core(in, len, (unsigned char *)out->data + out->len, true, &ok);
	out->data[out->len] = '\0';
	return ok;
}

bool
mime_percent_decode(const char *in, size_t len, struct hk_buf *out)
{
	const unsigned char *p = (const unsigned char *)in;
	bool ok = true;
	buf_reserve(out, len);
	for (size_t i = 0; i < len; i++) {
		int h1, h2;
		if (p[i] == '%' && i + 2 < len && (h1 = hexval(p[i + 1])) >= 0 && (h2 = hexval(p[i + 2])) >= 0) {
			out->data[out->len++] = (char)(h1 << 4 | h2);
			i += 2;
			continue;
		}
		if (p[i] == '%')
			ok = false;
		out->data[out->len++] = (char)p[i];
	}
	out->data[out->len] = '\0';
	return ok;
}
