/*
 * imap_token.c - the IMAP token readers (RFC 3501 9, formal syntax) the
 * command parser is built from: atoms, quoted strings, literals, numbers,
 * sequence sets, mailbox names, flag lists and dates.
 *
 * Strings are copied NUL-terminated into the command's arena, so the
 * session can hand them to C APIs; a NUL inside a string is refused
 * (CHAR8 excludes it, and it would cut the name short).
 *
 * SECURITY: a literal's size is checked against the bytes actually in the
 * command (the reader put them there, but the parser is also fuzzed on
 * its own); sequence sets, flag lists and nesting are bounded by
 * imap_limits.h; the token count is bounded by IMAP_MAX_TOKENS.
 */
#include "imap/imap_parse_int.h"

#include <string.h>
#include <strings.h>

#include "charset.h"
#include "maildir.h"

bool
imap_p_fail(struct imap_parser *P, const char *msg)
{
	if (P->error == NULL)
		P->error = msg;
	return false;
}

bool
imap_p_token(struct imap_parser *P)
{
	if (++P->tokens > IMAP_MAX_TOKENS)
		return imap_p_fail(P, "Too many arguments");
	return true;
}

bool
imap_p_open(struct imap_parser *P)
{
	if (P->p >= P->end || *P->p != '(')
		return imap_p_fail(P, "Expected '('");
	if (++P->depth > IMAP_MAX_DEPTH)
		return imap_p_fail(P, "Too deeply nested");
	P->p++;
	return imap_p_token(P);
}

bool
imap_p_close(struct imap_parser *P)
{
	if (P->p >= P->end || *P->p != ')')
		return imap_p_fail(P, "Expected ')'");
	P->depth--;
	P->p++;
	return true;
}

bool
imap_p_sp(struct imap_parser *P)
{
	if (P->p >= P->end || *P->p != ' ')
		return imap_p_fail(P, P->p >= P->end ? "Missing argument" : "Expected a space");
	P->p++;
	return true;
}

bool
imap_p_at_end(const struct imap_parser *P)
{
	return P->p >= P->end;
}

bool
imap_p_peek(const struct imap_parser *P, char c)
{
	return P->p < P->end && *P->p == c;
}

bool
imap_p_accept(struct imap_parser *P, char c)
{
	if (!imap_p_peek(P, c))
		return false;
	P->p++;
	return true;
}

/* ATOM-CHAR: any CHAR (7-bit, not NUL) but atom-specials:
 * "(" ")" "{" SP CTL "%" "*" DQUOTE "\" "]" */
static bool
atom_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && !strchr("(){%*\"\\]", c);
}

bool
imap_p_atom(struct imap_parser *P, bool bracket_ok, struct hk_str *out)
{
	const char *s = P->p;
	while (P->p < P->end && (atom_char((unsigned char)*P->p) || (bracket_ok && *P->p == ']')))
		P->p++;
	if (P->p == s)
		return imap_p_fail(P, P->p >= P->end ? "Missing argument" : "Invalid characters in atom");
	*out = (struct hk_str){ s, (size_t)(P->p - s) };
	return imap_p_token(P);
}

bool
imap_p_keyword(struct imap_parser *P, const char *kw)
{
	size_t n = strlen(kw);
	if ((size_t)(P->end - P->p) < n || strncasecmp(P->p, kw, n) != 0)
		return false;
	if (P->p + n < P->end && atom_char((unsigned char)P->p[n]) && P->p[n] != '[' && P->p[n] != '.' &&
	    P->p[n] != '<')
		return false; /* "SEENX" is not "SEEN"; "BODY[" and "BODY.PEEK" are handled by the caller */
	P->p += n;
	return imap_p_token(P);
}

/* quoted = DQUOTE *QUOTED-CHAR DQUOTE; 8-bit is accepted (UTF-8 search
 * strings from real clients), CR, LF and NUL are not. */
static bool
quoted(struct imap_parser *P, struct hk_str *out)
{
	P->p++;
	const char *s = P->p;
	size_t n = 0;
	bool esc = false;
	for (; P->p < P->end && *P->p != '"'; P->p++, n++) {
		if (*P->p == '\\') {
			if (P->p + 1 >= P->end || (P->p[1] != '\\' && P->p[1] != '"'))
				return imap_p_fail(P, "Invalid escape in quoted string");
			P->p++;
			esc = true;
		} else if (*P->p == '\r' || *P->p == '\n' || *P->p == '\0') {
			return imap_p_fail(P, "Invalid character in quoted string");
		}
	}
	if (P->p >= P->end)
		return imap_p_fail(P, "Unterminated quoted string");
	const char *e = P->p++;
	char *d = arena_alloc(P->a, n + 1);
	if (!esc) {
		memcpy(d, s, n);
	} else {
		size_t k = 0;
		for (const char *q = s; q < e; q++)
			d[k++] = *q == '\\' ? *++q : *q;
	}
	d[n] = '\0';
	*out = (struct hk_str){ d, n };
	return imap_p_token(P);
}

/* literal = "{" number ["+"] "}" CRLF *CHAR8 */
static bool
literal(struct imap_parser *P, bool allow_streamed, struct imap_p_string *out)
{
	size_t at = (size_t)(P->p - P->base);
	P->p++;
	uint64_t n = 0;
	const char *d = P->p;
	while (P->p < P->end && *P->p >= '0' && *P->p <= '9') {
		n = n * 10 + (uint64_t)(*P->p++ - '0');
		if (n > UINT32_MAX)
			return imap_p_fail(P, "Literal too large");
	}
	if (P->p == d)
		return imap_p_fail(P, "Invalid literal");
	imap_p_accept(P, '+');
	if (!imap_p_accept(P, '}') || !imap_p_accept(P, '\r') || !imap_p_accept(P, '\n'))
		return imap_p_fail(P, "Invalid literal");
	out->literal = true;
	if (at == P->streamed_at) {
		if (!allow_streamed)
			return imap_p_fail(P, "Unexpected message literal");
		out->streamed = true;
		out->size = n;
		out->s = (struct hk_str){ NULL, 0 };
		return imap_p_token(P);
	}
	if ((uint64_t)(P->end - P->p) < n)
		return imap_p_fail(P, "Literal truncated");
	out->s = (struct hk_str){ P->p, (size_t)n };
	P->p += n;
	return imap_p_token(P);
}

bool
imap_p_string(struct imap_parser *P, bool allow_streamed, struct imap_p_string *out)
{
	memset(out, 0, sizeof(*out));
	if (imap_p_peek(P, '"'))
		return quoted(P, &out->s);
	if (imap_p_peek(P, '{'))
		return literal(P, allow_streamed, out);
	return imap_p_fail(P, P->p >= P->end ? "Missing argument" : "Expected a string");
}

/* A literal made a C string: refused if it holds a NUL. */
static bool
literal_copy(struct imap_parser *P, struct imap_p_string *st, struct hk_str *out)
{
	if (memchr(st->s.ptr, '\0', st->s.len) != NULL)
		return imap_p_fail(P, "NUL in string");
	*out = arena_str(P->a, st->s.ptr, st->s.len);
	return true;
}

/* astring = 1*ASTRING-CHAR / string */
bool
imap_p_astring(struct imap_parser *P, struct hk_str *out)
{
	if (imap_p_peek(P, '"') || imap_p_peek(P, '{')) {
		struct imap_p_string st;
		if (!imap_p_string(P, false, &st))
			return false;
		if (!st.literal) {
			*out = st.s;
			return true;
		}
		return literal_copy(P, &st, out);
	}
	struct hk_str at;
	if (!imap_p_atom(P, true, &at))
		return false;
	*out = arena_str(P->a, at.ptr, at.len);
	return true;
}

bool
imap_p_nstring(struct imap_parser *P, struct hk_str *out)
{
	if (imap_p_keyword(P, "NIL")) {
		*out = (struct hk_str){ NULL, 0 };
		return true;
	}
	struct imap_p_string st;
	if (!imap_p_string(P, false, &st))
		return false;
	if (!st.literal) {
		*out = st.s;
		return true;
	}
	return literal_copy(P, &st, out);
}

static bool
digits(struct imap_parser *P, uint64_t max, uint64_t *out)
{
	const char *s = P->p;
	uint64_t n = 0;
	while (P->p < P->end && *P->p >= '0' && *P->p <= '9') {
		n = n * 10 + (uint64_t)(*P->p++ - '0');
		if (n > max)
			return imap_p_fail(P, "Number too large");
	}
	if (P->p == s)
		return imap_p_fail(P, "Expected a number");
	*out = n;
	return true;
}

bool
imap_p_number(struct imap_parser *P, uint32_t *out)
{
	uint64_t n;
	if (!digits(P, UINT32_MAX, &n))
		return false;
	*out = (uint32_t)n;
	return imap_p_token(P);
}

bool
imap_p_nz_number(struct imap_parser *P, uint32_t *out)
{
	if (!imap_p_number(P, out))
		return false;
	if (*out == 0)
		return imap_p_fail(P, "Zero is not a valid number here");
	return true;
}

bool
imap_p_number64(struct imap_parser *P, uint64_t *out)
{
	/* RFC 7162 mod-sequence-value: 1*DIGIT, < 2^63 */
	return digits(P, INT64_MAX, out) && imap_p_token(P);
}

/* seq-number = nz-number / "*"; not counted as tokens: a set is one
 * token, bounded by IMAP_MAX_SEQ_RANGES */
static bool
seq_number(struct imap_parser *P, uint32_t *out)
{
	if (imap_p_accept(P, '*')) {
		*out = IMAP_SEQ_STAR;
		return true;
	}
	uint64_t n;
	if (!digits(P, UINT32_MAX - 1, &n)) /* 2^32-1 would read as "*" */
		return false;
	if (n == 0)
		return imap_p_fail(P, "Zero is not a valid number here");
	*out = (uint32_t)n;
	return true;
}

/* sequence-set = (seq-number / seq-range) *("," sequence-set) */
bool
imap_p_seqset(struct imap_parser *P, struct imap_seqset *out)
{
	/* grows in the arena by doubling; the old arrays stay (bounded: the
	 * whole set is at most twice the final one) */
	unsigned cap = 8;
	out->r = arena_alloc(P->a, cap * sizeof(*out->r));
	out->n = 0;
	do {
		struct imap_seq_range r;
		if (!seq_number(P, &r.lo))
			return imap_p_fail(P, "Invalid sequence set");
		r.hi = r.lo;
		if (imap_p_accept(P, ':') && !seq_number(P, &r.hi))
			return imap_p_fail(P, "Invalid sequence set");
		if (out->n >= IMAP_MAX_SEQ_RANGES)
			return imap_p_fail(P, "Too many ranges in sequence set");
		if (out->n == cap) {
			struct imap_seq_range *g = arena_alloc(P->a, 2 * cap * sizeof(*g));
			memcpy(g, out->r, cap * sizeof(*g));
			out->r = g;
			cap *= 2;
		}
		out->r[out->n++] = r;
	} while (imap_p_accept(P, ','));
	return imap_p_token(P);
}

bool
imap_seqset_contains(const struct imap_seqset *s, uint32_t n, uint32_t max)
{
	for (unsigned i = 0; i < s->n; i++) {
		uint32_t lo = s->r[i].lo == IMAP_SEQ_STAR ? max : s->r[i].lo;
		uint32_t hi = s->r[i].hi == IMAP_SEQ_STAR ? max : s->r[i].hi;
		if (lo > hi) {
			uint32_t t = lo;
			lo = hi;
			hi = t;
		}
		if (n >= lo && n <= hi)
			return true;
	}
	return false;
}

/* mailbox = "INBOX" / astring, in modified UTF-7 (RFC 3501 5.1.3). */
bool
imap_p_mailbox(struct imap_parser *P, struct imap_mailbox *out)
{
	struct hk_str s;
	if (!imap_p_astring(P, &s))
		return false;
	if (s.len > IMAP_MAX_MAILBOX)
		return imap_p_fail(P, "Mailbox name too long");
	if (str_ieq_cstr(s, "INBOX")) {
		out->name = "INBOX";
		out->inbox = true;
		return true;
	}
	struct hk_buf b;
	buf_init(&b);
	int rc = mutf7_decode(s.ptr, s.len, &b);
	if (rc == 0 && memchr(b.data ? b.data : "", '\0', b.len) != NULL)
		rc = -1; /* "&AAA-" decodes to U+0000 */
	if (rc == 0)
		out->name = arena_strndup(P->a, b.data ? b.data : "", b.len);
	buf_fini(&b);
	if (rc != 0)
		return imap_p_fail(P, "Mailbox name is not valid modified UTF-7");
	out->inbox = false;
	return true;
}

static const struct {
	const char *name;
	uint32_t bit;
} system_flags[] = {
	{ "\\Seen", IMAP_FLAG_SEEN }, { "\\Answered", IMAP_FLAG_ANSWERED }, { "\\Flagged", IMAP_FLAG_FLAGGED },
	{ "\\Deleted", IMAP_FLAG_DELETED }, { "\\Draft", IMAP_FLAG_DRAFT },
};

/* flag = "\Answered" / "\Flagged" / "\Deleted" / "\Seen" / "\Draft" /
 *        flag-keyword / flag-extension. An unknown "\X" and "\Recent"
 * cannot be stored, so they are errors here (as in Dovecot). */
static bool
flag(struct imap_parser *P, struct imap_flags *out, const char ***kw, unsigned *cap)
{
	bool sys = imap_p_accept(P, '\\');
	struct hk_str a;
	if (!imap_p_atom(P, false, &a))
		return imap_p_fail(P, "Invalid flag");
	if (sys) {
		struct hk_str full = { a.ptr - 1, a.len + 1 };
		for (size_t i = 0; i < HK_ARRAY_LEN(system_flags); i++) {
			if (str_ieq_cstr(full, system_flags[i].name)) {
				out->system |= system_flags[i].bit;
				return true;
			}
		}
		return imap_p_fail(P, "Invalid system flag");
	}
	if (a.len > IMAP_MAX_KEYWORD)
		return imap_p_fail(P, "Keyword too long");
	if (out->nkeywords >= IMAP_MAX_FLAGS)
		return imap_p_fail(P, "Too many flags");
	if (out->nkeywords == *cap) {
		const char **g = arena_alloc(P->a, 2 * *cap * sizeof(*g));
		if (*cap > 0)
			memcpy(g, *kw, *cap * sizeof(*g));
		*kw = g;
		*cap *= 2;
	}
	(*kw)[out->nkeywords++] = arena_strndup(P->a, a.ptr, a.len);
	return true;
}

static bool
flags_until_close(struct imap_parser *P, struct imap_flags *out)
{
	unsigned cap = 4;
	const char **kw = arena_alloc(P->a, cap * sizeof(*kw));
	memset(out, 0, sizeof(*out));
	out->keywords = kw;
	if (P->p >= P->end || *P->p == ')')
		return true;
	do {
		if (!flag(P, out, &kw, &cap))
			return false;
		out->keywords = kw;
	} while (imap_p_accept(P, ' '));
	return true;
}

/* flag-list = "(" [flag *(SP flag)] ")" */
bool
imap_p_flag_list(struct imap_parser *P, struct imap_flags *out)
{
	if (!imap_p_open(P))
		return imap_p_fail(P, "Expected a flag list");
	if (!flags_until_close(P, out))
		return false;
	return imap_p_close(P);
}

bool
imap_p_flags_bare(struct imap_parser *P, struct imap_flags *out)
{
	if (imap_p_at_end(P))
		return imap_p_fail(P, "Missing flags");
	return flags_until_close(P, out);
}

static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
	"Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

static bool
month(struct imap_parser *P, int *mon)
{
	if (P->end - P->p < 3)
		return false;
	for (int i = 0; i < 12; i++) {
		if (strncasecmp(P->p, months[i], 3) == 0) {
			*mon = i + 1;
			P->p += 3;
			return true;
		}
	}
	return false;
}

static int
days_in_month(int y, int m)
{
	static const int d[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return d[m - 1];
}

/* n digits exactly (min..max of them) as an int */
static bool
fixed_digits(struct imap_parser *P, int min, int max, int *out)
{
	int n = 0, v = 0;
	while (n < max && P->p < P->end && *P->p >= '0' && *P->p <= '9') {
		v = v * 10 + (*P->p++ - '0');
		n++;
	}
	*out = v;
	return n >= min;
}

/* date-text = date-day "-" date-month "-" date-year (1*2DIGIT "-" Mon "-" 4DIGIT) */
static bool
date_text(struct imap_parser *P, struct imap_day *d)
{
	if (!fixed_digits(P, 1, 2, &d->day) || !imap_p_accept(P, '-') || !month(P, &d->mon) ||
	    !imap_p_accept(P, '-') || !fixed_digits(P, 4, 4, &d->year))
		return false;
	return d->year >= 1 && d->day >= 1 && d->day <= days_in_month(d->year, d->mon);
}

/* date = date-text / DQUOTE date-text DQUOTE */
bool
imap_p_date(struct imap_parser *P, struct imap_day *out)
{
	bool q = imap_p_accept(P, '"');
	if (!date_text(P, out) || (q && !imap_p_accept(P, '"')))
		return imap_p_fail(P, "Invalid date");
	if (P->p < P->end && *P->p != ' ' && *P->p != ')')
		return imap_p_fail(P, "Invalid date");
	return imap_p_token(P);
}

/* Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm). */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE
 * date-day-fixed = (SP DIGIT) / 2DIGIT; time = 2DIGIT ":" 2DIGIT ":" 2DIGIT;
 * zone = ("+" / "-") 4DIGIT */
bool
imap_p_datetime(struct imap_parser *P, time_t *t, int *tz_minutes)
{
	struct imap_day d;
	int hh, mm, ss, zone;
	if (!imap_p_accept(P, '"'))
		return imap_p_fail(P, "Invalid date-time");
	imap_p_accept(P, ' '); /* date-day-fixed: " 7-Jul-1996" */
	if (!date_text(P, &d) || !imap_p_accept(P, ' ') || !fixed_digits(P, 2, 2, &hh) || !imap_p_accept(P, ':') ||
	    !fixed_digits(P, 2, 2, &mm) || !imap_p_accept(P, ':') || !fixed_digits(P, 2, 2, &ss) ||
	    !imap_p_accept(P, ' '))
		return imap_p_fail(P, "Invalid date-time");
	int sign = imap_p_accept(P, '-') ? -1 : imap_p_accept(P, '+') ? 1 : 0;
	if (sign == 0 || !fixed_digits(P, 4, 4, &zone) || !imap_p_accept(P, '"'))
		return imap_p_fail(P, "Invalid date-time");
	if (hh > 23 || mm > 59 || ss > 60 || zone / 100 > 23 || zone % 100 > 59)
		return imap_p_fail(P, "Invalid date-time");
	int tz = sign * ((zone / 100) * 60 + zone % 100);
	int64_t secs = days_from_civil(d.year, d.mon, d.day) * 86400 + hh * 3600 + mm * 60 + (ss == 60 ? 59 : ss);
	secs -= (int64_t)tz * 60;
	*t = (time_t)secs;
	*tz_minutes = tz;
	return imap_p_token(P);
}
