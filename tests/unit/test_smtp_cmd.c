/*
 * test_smtp_cmd.c - the SMTP command line parser: verbs, paths, source
 * routes, quoted and UTF-8 local parts, address literals, parameters, and
 * the errors for everything malformed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "smtp/smtp_cmd.h"

static enum smtp_parse_error
parse(const char *s, struct smtp_cmd *c)
{
	return smtp_cmd_parse(s, strlen(s), c);
}

static void
assert_str(struct hk_str s, const char *want)
{
	if (s.len != strlen(want) || memcmp(s.ptr, want, s.len) != 0)
		fail_msg("got [%.*s], want [%s]", (int)s.len, s.ptr ? s.ptr : "", want);
}

static void
test_smtp_cmd_verbs(void **state)
{
	(void)state;
	struct smtp_cmd c;
	assert_int_equal(parse("EHLO client.example.net", &c), SMTP_PARSE_OK);
	assert_int_equal(c.verb, SMTP_EHLO);
	assert_str(c.arg, "client.example.net");
	assert_int_equal(parse("ehlo x", &c), SMTP_PARSE_OK);
	assert_int_equal(c.verb, SMTP_EHLO);
	assert_int_equal(parse("QUIT", &c), SMTP_PARSE_OK);
	assert_int_equal(c.verb, SMTP_QUIT);
	assert_int_equal(parse("STARTTLS  ", &c), SMTP_PARSE_OK);
	assert_int_equal(c.verb, SMTP_STARTTLS);
	assert_int_equal(parse("FOO bar", &c), SMTP_PARSE_UNKNOWN_VERB);
	assert_int_equal(parse("MAILX FROM:<a@b.c>", &c), SMTP_PARSE_UNKNOWN_VERB);
	assert_int_equal(parse("", &c), SMTP_PARSE_UNKNOWN_VERB);
}

static void
test_smtp_cmd_mail_paths(void **state)
{
	(void)state;
	struct smtp_cmd c;
	assert_int_equal(parse("MAIL FROM:<taro@example.jp>", &c), SMTP_PARSE_OK);
	assert_str(c.local, "taro");
	assert_str(c.domain, "example.jp");
	assert_str(c.path, "taro@example.jp");
	assert_false(c.null_path);
	assert_int_equal(parse("mail from: <a.b+tag@sub.example.jp> SIZE=1024 BODY=8BITMIME", &c), SMTP_PARSE_OK);
	assert_str(c.path, "a.b+tag@sub.example.jp");
	assert_int_equal(c.nparams, 2);
	assert_str(smtp_cmd_param(&c, "size")->value, "1024");
	assert_str(smtp_cmd_param(&c, "BODY")->value, "8BITMIME");
	assert_int_equal(parse("MAIL FROM:<>", &c), SMTP_PARSE_OK);
	assert_true(c.null_path);
	assert_int_equal(parse("MAIL FROM:<@relay.example,@b.example:user@example.jp>", &c), SMTP_PARSE_OK);
	assert_str(c.path, "user@example.jp");
	assert_int_equal(parse("MAIL FROM:<\"john doe\"@example.jp>", &c), SMTP_PARSE_OK);
	assert_str(c.local, "\"john doe\"");
	assert_int_equal(parse("MAIL FROM:<user@[192.0.2.1]>", &c), SMTP_PARSE_OK);
	assert_str(c.domain, "[192.0.2.1]");
	assert_int_equal(parse("MAIL FROM:<太郎@例え.jp> SMTPUTF8", &c), SMTP_PARSE_OK);
	assert_true(c.utf8);
	assert_non_null(smtp_cmd_param(&c, "SMTPUTF8"));
	assert_null(smtp_cmd_param(&c, "SMTPUTF8")->value.ptr);
}

static void
test_smtp_cmd_rcpt_paths(void **state)
{
	(void)state;
	struct smtp_cmd c;
	assert_int_equal(parse("RCPT TO:<hanako@example.jp> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;hanako@example.jp", &c), SMTP_PARSE_OK);
	assert_str(c.path, "hanako@example.jp");
	assert_int_equal(c.nparams, 2);
	assert_int_equal(parse("RCPT TO:<Postmaster>", &c), SMTP_PARSE_OK);
	assert_true(c.postmaster);
	assert_int_equal(parse("RCPT TO:<>", &c), SMTP_PARSE_BAD_ADDRESS);
}

static void
test_smtp_cmd_bad_input(void **state)
{
	(void)state;
	struct smtp_cmd c;
	static const struct {
		const char *line;
		enum smtp_parse_error e;
	} bad[] = {
		{ "MAIL FROM:taro@example.jp", SMTP_PARSE_BAD_ADDRESS },
		{ "MAIL FROM <a@b.c>", SMTP_PARSE_SYNTAX },
		{ "MAIL TO:<a@b.c>", SMTP_PARSE_SYNTAX },
		{ "MAIL FROM:<a@b.c", SMTP_PARSE_BAD_ADDRESS },
		{ "MAIL FROM:<a>", SMTP_PARSE_BAD_ADDRESS },
		{ "MAIL FROM:<@b.c>", SMTP_PARSE_BAD_ADDRESS },
		{ "MAIL FROM:<a@>", SMTP_PARSE_BAD_ADDRESS },
		{ "MAIL FROM:<a..b@c.d>", SMTP_PARSE_BAD_ADDRESS },
		{ "MAIL FROM:<a.@c.d>", SMTP_PARSE_BAD_ADDRESS },
		{ "MAIL FROM:<a@-c.d>", SMTP_PARSE_BAD_ADDRESS },
		{ "MAIL FROM:<a@c-.d>", SMTP_PARSE_BAD_ADDRESS },
		{ "MAIL FROM:<a@c..d>", SMTP_PARSE_BAD_ADDRESS },
		{ "MAIL FROM:<a b@c.d>", SMTP_PARSE_BAD_ADDRESS },
		{ "MAIL FROM:<a@b.c> SIZE=", SMTP_PARSE_BAD_PARAM },
		{ "MAIL FROM:<a@b.c> =x", SMTP_PARSE_BAD_PARAM },
		{ "MAIL FROM:<a@b.c>SIZE=1", SMTP_PARSE_SYNTAX },
		{ "MAIL FROM:<a@b.c> A B C D E F G H I J K L M N O P Q", SMTP_PARSE_TOO_MANY_PARAMS },
		{ "MAIL FROM:<\xff@b.c> SMTPUTF8", SMTP_PARSE_BAD_ADDRESS },
		{ "RCPT TO:<a@b.c>\x01", SMTP_PARSE_SYNTAX },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		enum smtp_parse_error e = parse(bad[i].line, &c);
		if (e != bad[i].e)
			fail_msg("%s: got %d, want %d", bad[i].line, e, bad[i].e);
	}
	/* an embedded NUL is a syntax error, not the end of the line */
	assert_int_equal(smtp_cmd_parse("RCPT TO:<a@b.c>\0x", 17, &c), SMTP_PARSE_SYNTAX);
	/* a 300-byte local part is too long */
	char line[600];
	snprintf(line, sizeof(line), "MAIL FROM:<%0300d@b.c>", 0);
	assert_int_equal(parse(line, &c), SMTP_PARSE_BAD_ADDRESS);
}

int
main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_smtp_cmd_verbs),
		cmocka_unit_test(test_smtp_cmd_mail_paths),
		cmocka_unit_test(test_smtp_cmd_rcpt_paths),
		cmocka_unit_test(test_smtp_cmd_bad_input),
	};
	return cmocka_run_group_tests_name("smtp_cmd", tests, NULL, NULL);
}
