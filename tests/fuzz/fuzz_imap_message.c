/*
 * fuzz_imap_message.c - libFuzzer target for the IMAP message views
 * (servers/imap/): ENVELOPE, BODY and BODYSTRUCTURE, BODY[section] with
 * partial fetches, the SEARCH text matchers and the Date: parser, all on
 * the input as a stored message. The first line of the input (up to 80
 * bytes) is also parsed as a section spec and, when valid, fetched.
 *
 * An odd first byte selects tight MIME limits (depth 3, 8 parts), so small
 * inputs reach the limits.
 *
 * Invariants checked (abort on violation): ENVELOPE and BODYSTRUCTURE have
 * balanced parentheses outside strings and literals and announce exact
 * literal lengths; a section's written length equals its announced
 * partial size, and the zero-copy range gives the same bytes; the whole
 * message fetched is vsize octets with no bare LF and no NUL; case folding is
 * idempotent.
 *
 * Build: clang -fsanitize=fuzzer,address,undefined (make fuzz); seeds in
 * tests/fuzz/corpus/imap_message/, crashes kept in
 * tests/fuzz/crashes/imap_message/ and replayed by make check.
 *
 * SECURITY: this is the harness for hostile input; it must itself never
 * read outside `data`.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "charset.h"
#include "imap/imap_bodystructure.h"
#include "imap/imap_date.h"
#include "imap/imap_envelope.h"
#include "imap/imap_msg.h"
#include "imap/imap_search_text.h"
#include "imap/imap_section.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_imap_message: invariant violated: %s\n", what);
		abort();
	}
}

/* Balanced parentheses outside quoted strings and literals; literals must
 * announce a length that fits. */
static bool
well_formed(const char *p, size_t n)
{
	long depth = 0;
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '"') {
			for (i++; i < n && p[i] != '"'; i++)
				if (p[i] == '\\')
					i++;
			if (i >= n)
				return false;
		} else if (p[i] == '{') {
			char *e;
			unsigned long len = strtoul(p + i + 1, &e, 10);
			if (e >= p + n || *e != '}' || (size_t)(e - p) + 3 + len > n || e[1] != '\r' || e[2] != '\n')
				return false;
			i = (size_t)(e - p) + 2 + len;
		} else if (p[i] == '(') {
			depth++;
		} else if (p[i] == ')' && --depth < 0) {
			return false;
		}
	}
	return depth == 0;
}

static void
fetch(struct imap_msg *m, const char *spec, size_t slen, size_t origin, size_t count)
{
	struct imap_section sec;
	struct imap_section_data d;
	if (imap_section_parse(spec, slen, &sec) != 0)
		return;
	if (imap_section_resolve(m, &sec, &d) != IMAP_SECTION_OK)
		return;
	struct hk_buf b;
	buf_init(&b);
	imap_section_write(m, &d, origin, count, &b);
	check(b.len == imap_section_partial_size(&d, origin, count), "section length = partial size");
	size_t off, len;
	if (imap_section_range(m, &d, origin, count, &off, &len))
		check(len == b.len && off + len <= m->len && (len == 0 || memcmp(m->raw + off, b.data, len) == 0),
		      "zero-copy range = copy");
	buf_fini(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *d = (const char *)data;
	struct imap_msg m;
	imap_msg_init(&m, d, size);
	if (size > 0 && (data[0] & 1)) {
		m.limits.max_depth = 3;
		m.limits.max_parts = 8;
	}
	struct hk_buf b;
	buf_init(&b);
	imap_envelope_write(d, size, &b);
	check(well_formed(b.data, b.len), "ENVELOPE well formed");
	buf_reset(&b);
	imap_bodystructure_write(&m, false, &b);
	check(well_formed(b.data, b.len), "BODY well formed");
	buf_reset(&b);
	imap_bodystructure_write(&m, true, &b);
	check(well_formed(b.data, b.len), "BODYSTRUCTURE well formed");

	/* the whole message as sent */
	struct imap_section sec;
	struct imap_section_data sd;
	check(imap_section_parse("", 0, &sec) == 0 && imap_section_resolve(&m, &sec, &sd) == IMAP_SECTION_OK, "\"\"");
	buf_reset(&b);
	imap_section_write(&m, &sd, 0, SIZE_MAX, &b);
	check(b.len == imap_msg_vsize(&m) && imap_crlf_size(b.data, b.len) == b.len, "vsize, no bare LF");
	check(b.len == 0 || memchr(b.data, '\0', b.len) == NULL, "no NUL sent");

	static const char *const specs[] = { "HEADER", "TEXT", "1", "2", "1.MIME", "2.MIME", "1.1", "1.2", "2.1",
					     "1.HEADER", "2.TEXT", "1.1.MIME", "3", "1.1.1", "2.HEADER.FIELDS (From)",
					     "HEADER.FIELDS (Subject To CONTENT-TYPE)", "HEADER.FIELDS.NOT (Received)",
					     "1.HEADER.FIELDS.NOT (a b)" };
	size_t o = size > 2 ? data[1] : 0, c = size > 3 ? data[2] : SIZE_MAX;
	for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
		fetch(&m, specs[i], strlen(specs[i]), 0, SIZE_MAX);
		fetch(&m, specs[i], strlen(specs[i]), o, c);
	}
	const char *nl = memchr(d, '\n', size < 80 ? size : 80);
	fetch(&m, d, nl ? (size_t)(nl - d) : (size < 80 ? size : 80), o, c);

	/* SEARCH */
	static const char *const needles[] = { "", "a", "\xe4\xbc\x9a\xe8\xad\xb0", "\xc3\x89t\xc3\xa9", "From" };
	for (size_t i = 0; i < sizeof(needles) / sizeof(needles[0]); i++) {
		size_t n = strlen(needles[i]);
		(void)imap_search_header(&m, "Subject", 7, needles[i], n);
		(void)imap_search_header(&m, "From", 4, needles[i], n);
		(void)imap_search_body(&m, needles[i], n);
		(void)imap_search_text(&m, needles[i], n);
	}
	if (size > 4) {
		size_t n = size - 1 < 8 ? size - 1 : 8;
		(void)imap_search_text(&m, d + 1, n);
	}
	(void)imap_search_sent(&m, IMAP_SENT_ON, 2026, 12, 7);
	struct imap_date dt;
	(void)imap_date_parse(d, size, &dt);

	if (size <= 65536) {
		struct hk_buf f1, f2;
		buf_init(&f1);
		buf_init(&f2);
		imap_search_fold(d, size, &f1);
		imap_search_fold(f1.data ? f1.data : "", f1.len, &f2);
		check(f1.len == f2.len && (f1.len == 0 || memcmp(f1.data, f2.data, f1.len) == 0), "fold idempotent");
		buf_fini(&f1);
		buf_fini(&f2);
	}
	buf_fini(&b);
	imap_msg_fini(&m);
	return 0;
}
