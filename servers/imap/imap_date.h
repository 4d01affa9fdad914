/*
 * imap_date.h - the Date: header read as a calendar date, for SEARCH
 * SENTBEFORE / SENTON / SENTSINCE (RFC 3501 6.4.4 compares the date as
 * written, "disregarding time and timezone").
 */
#ifndef HK_IMAP_DATE_H
#define HK_IMAP_DATE_H

#include <stdbool.h>
#include <stddef.h>

struct imap_date {
	int year, month, day;   /* month 1-12 */
	int hour, min, sec;     /* 0 when the time is missing */
	int zone;               /* minutes east of UTC; 0 for -0000, letters, unknown names */
	bool have_time, have_zone;
};

/* RFC 5322 3.3 date-time with the obsolete forms of 4.3: optional day
 * name (with or without the comma), comments anywhere, 2-digit years
 * (< 50: 20xx, else 19xx) and 3-digit years (+1900), full month names,
 * missing seconds, missing time, zone names (UT, GMT, EST ... PDT) and
 * military letters. False when no valid day, month and year are found;
 * trailing garbage after a valid date is ignored. */
bool imap_date_parse(const char *s, size_t len, struct imap_date *d);

/* year * 10000 + month * 100 + day: an order-preserving day number. */
static inline long
imap_date_key(const struct imap_date *d)
{
	return (long)d->year * 10000 + d->month * 100 + d->day;
}

#endif
