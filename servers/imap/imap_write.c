/*
 * imap_write.c - response writers (see imap_write.h).
 *
 * Strings choose their form from the bytes: a quoted string cannot carry
 * CR, LF, NUL or (in IMAP4rev1 without UTF8=ACCEPT) 8-bit bytes, so those
 * go out as literals. A header value or a file name from a message is
 * therefore always representable.
 */
#include "imap/imap_write.h"

#include <string.h>
#include <strings.h>

#include "imap/imap_cmd.h"
#include "maildir.h"

static bool
quotable(const char *s, size_t n)
{
	if (n > IMAP_QUOTED_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == 0 || c == '\r' || c == '\n' || c >= 0x80)
			return false;
	}
	return true;
}

void
imap_write_string(struct hk_buf *out, const char *s, size_t n)
{
	if (!quotable(s, n)) {
		buf_printf(out, "{%zu}\r\n", n);
		if (memchr(s, '\0', n) == NULL) {
			buf_add(out, s, n);
			return;
		}
		/* a literal cannot carry NUL either (RFC 3501 4.3): 0x80, as Dovecot */
		buf_reserve(out, n);
		for (size_t i = 0; i < n; i++)
			buf_addc(out, s[i] == '\0' ? (char)0x80 : s[i]);
		return;
	}
	buf_addc(out, '"');
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '"' || s[i] == '\\')
			buf_addc(out, '\\');
		buf_addc(out, s[i]);
	}
	buf_addc(out, '"');
}

void
imap_write_nstring(struct hk_buf *out, const char *s, size_t n)
{
	if (s == NULL)
		buf_add(out, "NIL", 3);
	else
		imap_write_string(out, s, n);
}

void
imap_write_nstr(struct hk_buf *out, struct hk_str s)
{
	imap_write_nstring(out, s.len ? s.ptr : NULL, s.len);
}

/* ASTRING-CHAR = ATOM-CHAR / "]" */
static bool
astring_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && !strchr("(){%*\"\\", c);
}

void
imap_write_astring(struct hk_buf *out, const char *s, size_t n)
{
	bool atom = n > 0 && !(n == 3 && strncasecmp(s, "NIL", 3) == 0);
	for (size_t i = 0; atom && i < n; i++)
		atom = astring_char((unsigned char)s[i]);
	if (atom)
		buf_add(out, s, n);
	else
		imap_write_string(out, s, n);
}

void
imap_write_mailbox(struct hk_buf *out, const char *utf8_name)
{
	if (strcasecmp(utf8_name, "INBOX") == 0) {
		buf_adds(out, "INBOX");
		return;
	}
	struct hk_buf e;
	buf_init(&e);
	mutf7_encode(utf8_name, strlen(utf8_name), &e);
	imap_write_astring(out, e.data ? e.data : "", e.len);
	buf_fini(&e);
}

void
imap_write_flags(struct hk_buf *out, uint32_t system, const char *const *keywords, size_t nkeywords)
{
	static const struct {
		uint32_t bit;
		const char *name;
	} names[] = {
		{ IMAP_FLAG_ANSWERED, "\\Answered" }, { IMAP_FLAG_FLAGGED, "\\Flagged" },
		{ IMAP_FLAG_DELETED, "\\Deleted" }, { IMAP_FLAG_SEEN, "\\Seen" }, { IMAP_FLAG_DRAFT, "\\Draft" },
		{ IMAP_FLAG_RECENT, "\\Recent" },
	};
	bool first = true;
	buf_addc(out, '(');
	for (size_t i = 0; i < HK_ARRAY_LEN(names); i++) {
		if (!(system & names[i].bit))
			continue;
		if (!first)
			buf_addc(out, ' ');
		buf_adds(out, names[i].name);
		first = false;
	}
	for (size_t i = 0; i < nkeywords; i++) {
		if (!first)
			buf_addc(out, ' ');
		buf_adds(out, keywords[i]);
		first = false;
	}
	buf_addc(out, ')');
}

void
imap_write_seqset(struct hk_buf *out, const uint32_t *nums, size_t n)
{
	size_t i = 0;
	bool first = true;
	while (i < n) {
		uint32_t lo = nums[i], hi = nums[i];
		i++;
		while (i < n && (nums[i] == hi || (hi < UINT32_MAX && nums[i] == hi + 1)))
			hi = nums[i++];
		if (!first)
			buf_addc(out, ',');
		first = false;
		if (lo == hi)
			buf_printf(out, "%u", lo);
		else
			buf_printf(out, "%u:%u", lo, hi);
	}
}

void
imap_write_datetime(struct hk_buf *out, time_t t, int tz_minutes)
{
	static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
		"Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	if (tz_minutes < -(23 * 60 + 59) || tz_minutes > 23 * 60 + 59)
		tz_minutes = 0;
	time_t local = t + (time_t)tz_minutes * 60;
	struct tm tm;
	if (gmtime_r(&local, &tm) == NULL || tm.tm_year + 1900 > 9999 || tm.tm_year + 1900 < 1) {
		buf_adds(out, "\"01-Jan-1970 00:00:00 +0000\"");
		return;
	}
	int z = tz_minutes < 0 ? -tz_minutes : tz_minutes;
	buf_printf(out, "\"%02d-%s-%04d %02d:%02d:%02d %c%02d%02d\"", tm.tm_mday, months[tm.tm_mon],
	    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, tz_minutes < 0 ? '-' : '+', z / 60, z % 60);
}
