/*
 * spf_int.h - what the files of servers/spf/ share and nobody else uses:
 * the parsed form of an SPF record (spf_record.c), the macro scanner
 * (spf_macro.c), and the printable-copy helper (spf_header.c).
 *
 * Ownership: a struct spf_record points into the record text it was
 * parsed from (terms are {ptr, len} slices); keep the text alive as long
 * as the record. spf_record_fini frees the term array only.
 */
#ifndef HK_SPF_INT_H
#define HK_SPF_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spf.h"

enum spf_term_kind {
	TERM_ALL,
	TERM_INCLUDE,
	TERM_A,
	TERM_MX,
	TERM_PTR,
	TERM_IP4,
	TERM_IP6,
	TERM_EXISTS,
	TERM_REDIRECT,
	TERM_EXP,
	TERM_UNKNOWN_MOD,
};

struct spf_term {
	enum spf_term_kind kind;
	char qual;	      /* '+', '-', '~', '?' (mechanisms) */
	const char *text;     /* the whole term as written */
	size_t text_len;
	const char *spec;     /* domain-spec, NULL when absent */
	size_t spec_len;
	bool spec_uses_p;     /* the domain-spec has a %{p} */
	unsigned cidr4;	      /* a, mx, ip4: default 32 */
	unsigned cidr6;	      /* a, mx, ip6: default 128 */
	uint8_t net[16];      /* ip4 (4 bytes), ip6 */
};

struct spf_record {
	struct spf_term *terms;
	size_t nterms;
	size_t cap;
	int redirect; /* index of redirect=, -1 */
	int exp;      /* index of exp=, -1 */
};

/* Does this TXT record select itself as SPF (RFC 7208 4.5)? */
bool spf_is_record(const char *txt, size_t len);
/* Parses a whole record; false (with a static reason and the offending
 * term in *bad_r / *bad_len_r, may be NULL) on any syntax error. */
bool spf_record_parse(const char *rec, size_t len, struct spf_record *out, const char **why_r,
		      const char **bad_r, size_t *bad_len_r);
void spf_record_fini(struct spf_record *r);

/* The scanner behind spf_macro_check; *ends_expand_r: the string ends
 * with a macro-expand (for domain-end, RFC 7208 7.1). */
bool spf_macro_scan(const char *s, size_t len, bool exp, bool *uses_p_r, bool *ends_expand_r);

/* ASCII-only case-insensitive comparison of n bytes (strncasecmp follows
 * the locale: "INCLUDE" is not "include" under tr_TR). */
static inline bool
spf_ascii_ieq(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (ascii_lower(a[i]) != ascii_lower(b[i]))
			return false;
	return true;
}

/* Copies src to dst (size dstsize, always NUL-terminated), replacing
 * bytes outside 0x20..0x7e by '?'; an overlong text ends in "...". */
void spf_printable(char *dst, size_t dstsize, const char *src, size_t len);

#endif
