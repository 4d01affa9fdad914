/*
 * test_smtp_dsn.c - the DSN parameters of RFC 3461 (smtp_dsn.h): xtext
 * decoding and encoding, NOTIFY lists, RET, the ENVID and ORCPT limits
 * (at and one past), and what the command parser does with a repeated
 * parameter.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "smtp/smtp_cmd.h"
#include "smtp/smtp_dsn.h"

static struct hk_str
S(const char *s)
{
	return (struct hk_str){ s, strlen(s) };
}

static void
test_xtext_decode_valid(void **state)
{
	(void)state;
	char out[64];
	assert_true(smtp_dsn_xtext_decode(S("plain"), out, sizeof(out)));
	assert_string_equal(out, "plain");
	assert_true(smtp_dsn_xtext_decode(S("a+2Bb+3Dc"), out, sizeof(out)));
	assert_string_equal(out, "a+b=c");
	assert_true(smtp_dsn_xtext_decode(S("sp+20ace"), out, sizeof(out)));
	assert_string_equal(out, "sp ace");
	assert_true(smtp_dsn_xtext_decode(S("<x@y>"), out, sizeof(out))); /* '<' and '>' are xchars */
	assert_string_equal(out, "<x@y>");
	assert_true(smtp_dsn_xtext_decode(S(""), out, sizeof(out)));
	assert_string_equal(out, "");
}

static void
test_xtext_decode_invalid(void **state)
{
	(void)state;
	char out[64];
	const char *bad[] = {
		"a+2b",     /* lower-case hex */
		"a+G0",     /* not hex */
		"a+2",      /* cut escape */
		"a+",       /* cut escape */
		"a=b",      /* '=' must be encoded */
		"a b",      /* space must be encoded */
		"a+00",     /* NUL */
		"a+0D+0A",  /* CR LF: header injection */
		"a+7F",     /* DEL */
		"a+C3+A9",  /* 8-bit */
		"caf\xc3\xa9", /* raw 8-bit */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (smtp_dsn_xtext_decode(S(bad[i]), out, sizeof(out)))
			fail_msg("accepted [%s]", bad[i]);
	/* the output buffer is a limit too */
	char small[4];
	assert_true(smtp_dsn_xtext_decode(S("abc"), small, sizeof(small)));
	assert_false(smtp_dsn_xtext_decode(S("abcd"), small, sizeof(small)));
	assert_false(smtp_dsn_xtext_decode(S("a"), small, 0));
}

static void
test_xtext_encode_roundtrip(void **state)
{
	(void)state;
	struct hk_buf b;
	buf_init(&b);
	smtp_dsn_xtext_encode(&b, "a+b=c d@e");
	assert_string_equal(b.data, "a+2Bb+3Dc+20d@e");
	char out[64];
	assert_true(smtp_dsn_xtext_decode((struct hk_str){ b.data, b.len }, out, sizeof(out)));
	assert_string_equal(out, "a+b=c d@e");
	buf_fini(&b);
}

static void
test_notify(void **state)
{
	(void)state;
	unsigned n;
	char s[32];
	assert_true(smtp_dsn_notify_parse(S("NEVER"), &n));
	assert_int_equal(n, SMTP_DSN_NOTIFY_NEVER);
	assert_string_equal(smtp_dsn_notify_str(n, s), "NEVER");
	assert_true(smtp_dsn_notify_parse(S("delay,Success"), &n));
	assert_int_equal(n, SMTP_DSN_NOTIFY_DELAY | SMTP_DSN_NOTIFY_SUCCESS);
	assert_string_equal(smtp_dsn_notify_str(n, s), "SUCCESS,DELAY");
	assert_true(smtp_dsn_notify_parse(S("SUCCESS,FAILURE,DELAY"), &n));
	assert_string_equal(smtp_dsn_notify_str(n, s), "SUCCESS,FAILURE,DELAY");
	assert_string_equal(smtp_dsn_notify_str(0, s), "");
	const char *bad[] = { "", "NEVER,SUCCESS", "FAILURE,NEVER", "SUCCESS,SUCCESS", "SUCCESS,", ",SUCCESS", "SUCCESS,,DELAY",
		"FAIL", "SUCCESS FAILURE", "NEVERX" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (smtp_dsn_notify_parse(S(bad[i]), &n))
			fail_msg("accepted NOTIFY=[%s]", bad[i]);
	assert_false(smtp_dsn_notify_parse((struct hk_str){ NULL, 0 }, &n)); /* NOTIFY without '=' */
}

static void
test_ret(void **state)
{
	(void)state;
	enum smtp_dsn_ret r;
	assert_true(smtp_dsn_ret_parse(S("FULL"), &r));
	assert_int_equal(r, SMTP_DSN_RET_FULL);
	assert_true(smtp_dsn_ret_parse(S("hdrs"), &r));
	assert_int_equal(r, SMTP_DSN_RET_HDRS);
	assert_false(smtp_dsn_ret_parse(S("BOTH"), &r));
	assert_false(smtp_dsn_ret_parse(S(""), &r));
	assert_false(smtp_dsn_ret_parse((struct hk_str){ NULL, 0 }, &r));
}

static void
test_envid_limit(void **state)
{
	(void)state;
	char v[SMTP_DSN_MAX_ENVID + 2];
	memset(v, 'e', sizeof(v));
	assert_true(smtp_dsn_envid_ok((struct hk_str){ v, SMTP_DSN_MAX_ENVID }));
	assert_false(smtp_dsn_envid_ok((struct hk_str){ v, SMTP_DSN_MAX_ENVID + 1 }));
	assert_false(smtp_dsn_envid_ok(S("")));
	assert_false(smtp_dsn_envid_ok(S("a+0A")));
	assert_true(smtp_dsn_envid_ok(S("QQ+2B1")));
}

static void
test_orcpt(void **state)
{
	(void)state;
	char out[SMTP_DSN_MAX_ORCPT + 1];
	assert_true(smtp_dsn_orcpt_ok(S("rfc822;a+2Bb@c.d")));
	assert_true(smtp_dsn_orcpt_decode(S("rfc822;a+2Bb@c.d"), out, sizeof(out)));
	assert_string_equal(out, "rfc822;a+b@c.d");
	assert_true(smtp_dsn_orcpt_ok(S("x-local;user")));
	const char *bad[] = { "a@b.c", "rfc822;", ";a@b", "rf c822;a@b", "rfc822;a b", "rfc822;a+ZZ", "rfc822;a+0D+0AX-Evil:1" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (smtp_dsn_orcpt_ok(S(bad[i])))
			fail_msg("accepted ORCPT=[%s]", bad[i]);
	/* the limit: the whole value, as written */
	char v[SMTP_DSN_MAX_ORCPT + 2];
	memset(v, 'a', sizeof(v));
	memcpy(v, "rfc822;", 7);
	assert_true(smtp_dsn_orcpt_ok((struct hk_str){ v, SMTP_DSN_MAX_ORCPT }));
	assert_false(smtp_dsn_orcpt_ok((struct hk_str){ v, SMTP_DSN_MAX_ORCPT + 1 }));
	/* addr-type is bounded */
	char t[SMTP_DSN_MAX_ADDRTYPE + 8];
	memset(t, 't', SMTP_DSN_MAX_ADDRTYPE + 1);
	memcpy(t + SMTP_DSN_MAX_ADDRTYPE + 1, ";a@b", 5);
	assert_false(smtp_dsn_orcpt_ok(S(t)));
}

static void
test_cmd_duplicate_params(void **state)
{
	(void)state;
	struct smtp_cmd c;
	const char *l = "RCPT TO:<a@b.c> NOTIFY=SUCCESS ORCPT=rfc822;a@b.c";
	assert_int_equal(smtp_cmd_parse(l, strlen(l), &c), SMTP_PARSE_OK);
	assert_int_equal(c.nparams, 2);
	l = "RCPT TO:<a@b.c> NOTIFY=SUCCESS notify=FAILURE";
	assert_int_equal(smtp_cmd_parse(l, strlen(l), &c), SMTP_PARSE_DUP_PARAM);
	l = "MAIL FROM:<a@b.c> RET=FULL ENVID=x RET=HDRS";
	assert_int_equal(smtp_cmd_parse(l, strlen(l), &c), SMTP_PARSE_DUP_PARAM);
	l = "MAIL FROM:<a@b.c> SMTPUTF8 SMTPUTF8";
	assert_int_equal(smtp_cmd_parse(l, strlen(l), &c), SMTP_PARSE_DUP_PARAM);
}

int
main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_xtext_decode_valid),
		cmocka_unit_test(test_xtext_decode_invalid),
		cmocka_unit_test(test_xtext_encode_roundtrip),
		cmocka_unit_test(test_notify),
		cmocka_unit_test(test_ret),
		cmocka_unit_test(test_envid_limit),
		cmocka_unit_test(test_orcpt),
		cmocka_unit_test(test_cmd_duplicate_params),
	};
	return cmocka_run_group_tests_name("smtp_dsn", tests, NULL, NULL);
}
