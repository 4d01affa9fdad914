/*
 * imap_date.c - RFC 5322 date parsing for SEARCH SENT* (see imap_date.h).
 *
 * SECURITY: the value is hostile header text. Numbers are read with a
 * digit limit, so nothing overflows; every loop advances.
 */
#include "imap_date.h"

#include <string.h>

#include "util.h"

struct rd {
	const char *s;
	size_t len, i;
};

/* blanks and (possibly nested) comments */
static void
skip_cfws(struct rd *r)
{
	while (r->i < r->len) {
		char c = r->s[r->i];
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			r->i++;
		} else if (c == '(') {
			unsigned depth = 0;
			while (r->i < r->len) {
				char d = r->s[r->i++];
				if (d == '\\' && r->i < r->len)
					r->i++;
				else if (d == '(')
					depth++;
				else if (d == ')' && --depth == 0)
					break;
			}
		} else {
			break;
		}
	}
}

static bool
is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Up to maxd digits; the count read, 0 when none. */
static int
read_num(struct rd *r, int maxd, int *v)
{
	int n = 0, x = 0;
	while (r->i < r->len && is_digit(r->s[r->i]) && n < maxd) {
		x = x * 10 + (r->s[r->i++] - '0');
		n++;
	}
	if (n == maxd && r->i < r->len && is_digit(r->s[r->i]))
		return 0; /* too many digits */
	*v = x;
	return n;
}

static struct hk_str
read_word(struct rd *r)
{
	size_t st = r->i;
	while (r->i < r->len && is_alpha(r->s[r->i]))
		r->i++;
	return (struct hk_str){ r->s + st, r->i - st };
}

static int
month_number(struct hk_str w)
{
	static const char *const names[] = { "jan", "feb", "mar", "apr", "may", "jun",
					     "jul", "aug", "sep", "oct", "nov", "dec" };
	if (w.len < 3)
		return 0;
	for (int k = 0; k < 12; k++)
		if (str_ieq((struct hk_str){ w.ptr, 3 }, (struct hk_str){ names[k], 3 }))
			return k + 1;
	return 0;
}

static int
days_in_month(int y, int m)
{
	static const int dm[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return dm[m - 1];
}

static void
read_zone(struct rd *r, struct imap_date *d)
{
	skip_cfws(r);
	if (r->i >= r->len)
		return;
	char c = r->s[r->i];
	if (c == '+' || c == '-') {
		r->i++;
		int v;
		if (read_num(r, 4, &v) == 4 && v % 100 < 60) {
			d->zone = (v / 100 * 60 + v % 100) * (c == '-' ? -1 : 1);
			d->have_zone = true;
		}
		return;
	}
	struct hk_str w = read_word(r);
	static const struct {
		const char *name;
		int hours;
	} zones[] = { { "UT", 0 },   { "GMT", 0 },  { "UTC", 0 },  { "EST", -5 }, { "EDT", -4 },
		      { "CST", -6 }, { "CDT", -5 }, { "MST", -7 }, { "MDT", -6 }, { "PST", -8 },
		      { "PDT", -7 } };
	for (size_t k = 0; k < HK_ARRAY_LEN(zones); k++) {
		if (str_ieq_cstr(w, zones[k].name)) {
			d->zone = zones[k].hours * 60;
			d->have_zone = true;
			return;
		}
	}
	/* military letters and unknown names: RFC 5322 4.3 says read as -0000 */
	d->have_zone = w.len > 0;
}

bool
imap_date_parse(const char *s, size_t len, struct imap_date *d)
{
	struct rd r = { s, len, 0 };
	memset(d, 0, sizeof(*d));
	skip_cfws(&r);
	/* [day-name [","]] */
	if (r.i < r.len && is_alpha(s[r.i])) {
		read_word(&r);
		skip_cfws(&r);
		if (r.i < r.len && s[r.i] == ',')
			r.i++;
		skip_cfws(&r);
	}
	int day, year, n;
	if (read_num(&r, 2, &day) == 0)
		return false;
	skip_cfws(&r);
	if (r.i < r.len && s[r.i] == '-')
		r.i++; /* "6-Dec-2026", seen from old gateways */
	int month = month_number(read_word(&r));
	if (month == 0)
		return false;
	skip_cfws(&r);
	if (r.i < r.len && s[r.i] == '-')
		r.i++;
	n = read_num(&r, 4, &year);
	if (n == 2)
		year += year < 50 ? 2000 : 1900;
	else if (n == 3)
		year += 1900;
	else if (n != 4)
		return false;
	if (year < 1900 || day < 1 || day > days_in_month(year, month))
		return false;
	d->year = year;
	d->month = month;
	d->day = day;

	/* [time [zone]]: optional, the date is what SEARCH needs */
	skip_cfws(&r);
	int h, mi, sec = 0;
	size_t save = r.i;
	if (read_num(&r, 2, &h) && r.i < r.len && s[r.i] == ':') {
		r.i++;
		if (read_num(&r, 2, &mi)) {
			if (r.i < r.len && s[r.i] == ':') {
				r.i++;
				if (!read_num(&r, 2, &sec))
					sec = 0;
			}
			if (h <= 23 && mi <= 59 && sec <= 60) {
				d->hour = h;
				d->min = mi;
				d->sec = sec;
				d->have_time = true;
				read_zone(&r, d);
				return true;
			}
		}
	}
	r.i = save;
	return true;
}
