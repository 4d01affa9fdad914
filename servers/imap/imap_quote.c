/*
 * imap_quote.c - IMAP quoted strings and literals (see imap_quote.h).
 *
 * SECURITY: the text is hostile header data; CR, LF and NUL never reach
 * a quoted string, and a literal announces exactly the bytes that follow.
 */
#include "imap_quote.h"

#include <string.h>

void
imap_quote_string(struct hk_buf *out, const char *s, size_t n)
{
	bool quotable = n <= IMAP_QUOTED_MAX;
	bool nul = false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x80 || c == '\r' || c == '\n')
			quotable = false;
		else if (c == 0)
			quotable = false, nul = true;
	}
	if (quotable) {
		buf_reserve(out, n + 2);
		buf_addc(out, '"');
		for (size_t i = 0; i < n; i++) {
			if (s[i] == '"' || s[i] == '\\')
				buf_addc(out, '\\');
			buf_addc(out, s[i]);
		}
		buf_addc(out, '"');
		return;
	}
	buf_printf(out, "{%zu}\r\n", n);
	if (!nul) {
		buf_add(out, s, n);
		return;
	}
	buf_reserve(out, n);
	for (size_t i = 0; i < n; i++)
		buf_addc(out, s[i] == '\0' ? (char)0x80 : s[i]);
}

void
imap_quote_nstring(struct hk_buf *out, const char *s, size_t n)
{
	if (s == NULL)
		buf_add(out, "NIL", 3);
	else
		imap_quote_string(out, s, n);
}

void
imap_quote_nstr(struct hk_buf *out, struct hk_str s)
{
	imap_quote_nstring(out, s.len ? s.ptr : NULL, s.len);
}
