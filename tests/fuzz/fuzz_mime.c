/*
 * fuzz_mime.c - libFuzzer target for the message model: hk_message_new on
 * the input, then every getter and hk_message_dump; the push parser fed in
 * two chunks split at an input-derived point must give the same tree as
 * one push (default and tight limits); and the header decoders (RFC 2047,
 * address lists, charsets) run on the raw input directly.
 *
 * An odd first byte selects tight limits for hk_message_new.
 *
 * Invariants checked (abort on violation): chunking invariance, decoded
 * header values, names and body text are valid UTF-8, the lower-cased body
 * has the body's length, the body respects body_text_max.
 *
 * Build: clang -fsanitize=fuzzer,address,undefined (see the Makefile's fuzz
 * target); seeds in tests/fuzz/corpus/mime/, crashes kept in
 * tests/fuzz/crashes/mime/ and replayed by make test.
 *
 * SECURITY: this is the harness for hostile input; it must itself never
 * read outside `data`.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "arena.h"
#include "charset.h"
#include "message.h"
#include "mime_parser.h"
#include "rfc2047.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_BODY_MAX 4096

static void
check(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_mime: invariant violated: %s\n", what);
		abort();
	}
}

static void
tree_dump(const char *d, size_t len, size_t cut, const struct hk_message_limits *l, struct hk_buf *out)
{
	struct arena a;
	arena_init(&a, 0);
	struct mime_parser *p = mime_parser_new(l, &a);
	/* private copies, so the parser cannot keep pointers into a chunk */
	char *c1 = malloc(cut ? cut : 1), *c2 = malloc(len - cut ? len - cut : 1);
	memcpy(c1, d, cut);
	memcpy(c2, d + cut, len - cut);
	mime_parser_push(p, c1, cut);
	memset(c1, 0x5A, cut);
	mime_parser_push(p, c2, len - cut);
	mime_tree_dump(mime_parser_finish(p), out);
	mime_parser_free(&p);
	free(c1);
	free(c2);
	arena_fini(&a);
}

static void
check_chunking(const char *d, size_t len, const struct hk_message_limits *l)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < len && i < 64; i++)
		h = (h ^ (uint8_t)d[i]) * 16777619u;
	size_t cut = len ? h % (len + 1) : 0;
	struct hk_buf whole, split;
	buf_init(&whole);
	buf_init(&split);
	tree_dump(d, len, len, l, &whole);
	tree_dump(d, len, cut, l, &split);
	check(whole.len == split.len && memcmp(whole.data, split.data, whole.len) == 0, "chunking invariance");
	buf_fini(&whole);
	buf_fini(&split);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *d = (const char *)data;
	struct hk_message_limits l;
	hk_message_limits_default(&l);
	l.body_text_max = FUZZ_BODY_MAX;
	if (size > 0 && (data[0] & 1)) {
		/* odd first byte: tight limits, so that small inputs reach the
		 * depth, parts, header count and length limits */
		l.max_depth = 2;
		l.max_parts = 4;
		l.max_headers = 6;
		l.max_header_line = 1024;
		l.body_text_max = 64;
	}

	struct hk_message *m = hk_message_new(d, size, &l);
	check(hk_message_size(m) == size, "size");
	const struct hk_header *h;
	size_t nh = hk_message_headers(m, &h);
	for (size_t i = 0; i < nh; i++) {
		const struct hk_str *v;
		size_t nv = hk_message_header(m, h[i].name.ptr, h[i].name.len, &v);
		check(nv >= 1, "a present header is found");
		for (size_t k = 0; k < nv; k++)
			check(utf8_valid(v[k].ptr, v[k].len), "decoded header is UTF-8");
		const struct hk_address *a;
		size_t na = hk_message_addresses(m, h[i].name.ptr, h[i].name.len, &a);
		for (size_t k = 0; k < na; k++)
			check(utf8_valid(a[k].name.ptr, a[k].name.len) && utf8_valid(a[k].group.ptr, a[k].group.len),
			      "address name is UTF-8");
	}
	static const char *const names[] = { "From", "To", "Cc", "Subject", "X-Missing", "Content-Type" };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const struct hk_str *v;
		const struct hk_address *a;
		hk_message_header(m, names[i], strlen(names[i]), &v);
		hk_message_addresses(m, names[i], strlen(names[i]), &a);
	}
	struct hk_str b = hk_message_body_text(m);
	struct hk_str bl = hk_message_body_text_lower(m);
	check(b.len == bl.len, "lower-cased body has the same length");
	check(b.len <= l.body_text_max, "body_text_max");
	check(utf8_valid(b.ptr, b.len), "body text is UTF-8");
	struct hk_str raw = hk_message_body_raw(m);
	check(raw.ptr >= d && raw.ptr + raw.len == d + size, "raw body is a suffix");
	const struct hk_attachment *att;
	size_t na = hk_message_attachments(m, &att);
	for (size_t i = 0; i < na; i++)
		check(utf8_valid(att[i].name.ptr, att[i].name.len), "attachment name is UTF-8");
	enum hk_priority pr = hk_message_priority(m);
	check(pr == HK_PRIORITY_NORMAL || pr == HK_PRIORITY_HIGH || pr == HK_PRIORITY_LOW, "priority");
	struct hk_buf out;
	buf_init(&out);
	hk_message_dump(m, &out);
	buf_fini(&out);
	(void)hk_message_errors(m);
	hk_message_free(&m);

	/* the push parser, two chunks, default and tight limits */
	check_chunking(d, size, NULL);
	struct hk_message_limits tight = { .max_depth = 3, .max_parts = 6, .max_headers = 5, .max_header_line = 1024 };
	check_chunking(d, size, &tight);

	/* the decoders on the raw bytes */
	if (size <= 65536) {
		struct hk_buf t;
		buf_init(&t);
		rfc2047_decode(d, size, &t);
		check(utf8_valid(t.data, t.len), "rfc2047 output is UTF-8");
		static const char *const cs[] = { "ISO-2022-JP", "Shift_JIS", "EUC-JP", "UTF-8", "", "x-unknown",
						  "GB18030", "ISO-2022-JP-3" };
		for (size_t i = 0; i < sizeof(cs) / sizeof(cs[0]); i++) {
			buf_reset(&t);
			charset_to_utf8(cs[i], strlen(cs[i]), d, size, &t);
			check(utf8_valid(t.data ? t.data : "", t.len), "charset output is UTF-8");
		}
		buf_fini(&t);
		struct arena a;
		arena_init(&a, 0);
		struct address_list al = { 0 };
		address_parse(d, size, &a, &al);
		free(al.v);
		arena_fini(&a);
	}
	return 0;
}
