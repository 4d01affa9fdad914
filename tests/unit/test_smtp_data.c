/*
 * test_smtp_data.c - the DATA push parser: end of data only at a real
 * <CRLF>.<CRLF>, dot-unstuffing, bare CR / bare LF detection (every
 * smuggling variant), size limits, pipelined bytes after the end, and the
 * same result however the input is split into chunks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "smtp/smtp_data.h"
#include "util.h"

struct out {
	struct hk_buf b;
};

static void
sink(void *ctx, const char *p, size_t n)
{
	buf_add(&((struct out *)ctx)->b, p, n);
}

/* Feeds `in` in pieces of `chunk` bytes (0: all at once). */
static size_t
run(const char *in, size_t len, size_t chunk, uint64_t max, struct smtp_data *d, struct out *o)
{
	buf_init(&o->b);
	buf_add(&o->b, "", 0);
	smtp_data_init(d, max, sink, o);
	size_t used = 0;
	while (used < len && !smtp_data_done(d)) {
		size_t n = chunk ? (len - used < chunk ? len - used : chunk) : len - used;
		used += smtp_data_push(d, in + used, n);
	}
	return used;
}

static void
expect(const char *in, const char *content, bool done, bool bare_cr, bool bare_lf)
{
	size_t len = strlen(in);
	for (size_t chunk = 0; chunk <= len; chunk++) {
		struct smtp_data d;
		struct out o;
		run(in, len, chunk, 0, &d, &o);
		if (strcmp(o.b.data, content) != 0 || smtp_data_done(&d) != done || d.bare_cr != bare_cr || d.bare_lf != bare_lf)
			fail_msg("input %s, chunk %zu: content [%s] done %d cr %d lf %d", in, chunk, o.b.data, smtp_data_done(&d), d.bare_cr,
			    d.bare_lf);
		assert_int_equal(d.size, strlen(content));
		buf_fini(&o.b);
	}
}

static void
test_smtp_data_simple_end(void **state)
{
	(void)state;
	expect("Subject: x\r\n\r\nhello\r\n.\r\n", "Subject: x\r\n\r\nhello\r\n", true, false, false);
	expect(".\r\n", "", true, false, false); /* empty message */
}

static void
test_smtp_data_dot_unstuffing(void **state)
{
	(void)state;
	expect("..x\r\n.\r\n", ".x\r\n", true, false, false);
	expect("a\r\n..\r\n.\r\n", "a\r\n.\r\n", true, false, false);
	expect("a\r\n.b.c\r\n.\r\n", "a\r\nb.c\r\n", true, false, false);
	expect("a.\r\n.\r\n", "a.\r\n", true, false, false);
}

/* Every way a bare CR or LF could fake an end of data: none of them ends
 * it, all are flagged, and the real end after them still works. */
static void
test_smtp_data_smuggling_variants_never_end(void **state)
{
	(void)state;
	static const struct {
		const char *fake;
		bool cr, lf;
	} v[] = {
		{ "a\n.\n", false, true },
		{ "a\r.\r", true, false },
		{ "a\n.\r\n", false, true },
		{ "a\r\n.\n", false, true },
		{ "a\r\n.\r", true, false },
		{ "a\r.\r\n", true, false },
		{ "a\n\r.\r\n", true, true },
		{ "a\r\n\n.\r\n", false, true },
	};
	for (size_t i = 0; i < HK_ARRAY_LEN(v); i++) {
		char in[64], mid[64];
		snprintf(mid, sizeof(mid), "%sMAIL FROM:<evil@example.com>\r\n", v[i].fake);
		/* without the real end: not done, whatever the chunking */
		size_t len = strlen(mid);
		for (size_t chunk = 0; chunk <= len; chunk++) {
			struct smtp_data d;
			struct out o;
			size_t used = run(mid, len, chunk, 0, &d, &o);
			if (smtp_data_done(&d))
				fail_msg("variant %zu (chunk %zu) ended the data", i, chunk);
			assert_int_equal(used, len);
			assert_true(d.bare_cr == v[i].cr || d.bare_cr);
			assert_true(d.bare_cr || d.bare_lf);
			buf_fini(&o.b);
		}
		/* with the real end: done, flags set */
		snprintf(in, sizeof(in), "%s\r\n.\r\n", mid);
		struct smtp_data d;
		struct out o;
		run(in, strlen(in), 0, 0, &d, &o);
		assert_true(smtp_data_done(&d));
		assert_true(d.bare_cr || d.bare_lf);
		buf_fini(&o.b);
	}
}

/* A bare CR right before a real <CRLF>.<CRLF> does not hide the end: the
 * bytes do contain the marker. The bare CR is flagged, so the message is
 * refused. */
static void
test_smtp_data_bare_cr_before_real_end(void **state)
{
	(void)state;
	expect("a\r\r\n.\r\n", "a\r\r\n", true, true, false);
}

static void
test_smtp_data_pipelined_commands_after_end(void **state)
{
	(void)state;
	const char *in = "hello\r\n.\r\nQUIT\r\n";
	for (size_t chunk = 0; chunk <= strlen(in); chunk++) {
		struct smtp_data d;
		struct out o;
		size_t used = run(in, strlen(in), chunk, 0, &d, &o);
		assert_true(smtp_data_done(&d));
		assert_int_equal(used, strlen("hello\r\n.\r\n"));
		assert_string_equal(o.b.data, "hello\r\n");
		buf_fini(&o.b);
	}
}

static void
test_smtp_data_size_limit(void **state)
{
	(void)state;
	struct smtp_data d;
	struct out o;
	const char *in = "0123456789\r\n0123456789\r\n.\r\n";
	run(in, strlen(in), 5, 15, &d, &o);
	assert_true(smtp_data_done(&d));
	assert_true(d.too_big);
	assert_true(d.size <= 15);
	buf_fini(&o.b);
	run(in, strlen(in), 5, 24, &d, &o);
	assert_false(d.too_big);
	assert_int_equal(d.size, 24);
	buf_fini(&o.b);
}

static void
test_smtp_data_dot_cr_at_chunk_edges(void **state)
{
	(void)state;
	/* ".\r" followed by content: kept as written, bare CR flagged */
	expect("a\r\n.\rb\r\n.\r\n", "a\r\n.\rb\r\n", true, true, false);
	expect("a\r\n.\r\r\n.\r\n", "a\r\n.\r\r\n", true, true, false);
}

int
main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_smtp_data_simple_end),
		cmocka_unit_test(test_smtp_data_dot_unstuffing),
		cmocka_unit_test(test_smtp_data_smuggling_variants_never_end),
		cmocka_unit_test(test_smtp_data_bare_cr_before_real_end),
		cmocka_unit_test(test_smtp_data_pipelined_commands_after_end),
		cmocka_unit_test(test_smtp_data_size_limit),
		cmocka_unit_test(test_smtp_data_dot_cr_at_chunk_edges),
	};
	return cmocka_run_group_tests_name("smtp_data", tests, NULL, NULL);
}
