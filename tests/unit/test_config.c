/*
 * test_config.c - the configuration file parser (servers/core/config.c):
 * the `user` and `group` keys and their name rules, defaults, and the
 * file:line errors for what is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <unistd.h>

#include "core/config.h"
#include "util.h"

/* Writes text to a temporary file and loads it over the defaults. */
static int
load_text(struct hk_config *c, const char *text, struct hk_buf *err)
{
	char path[] = "/tmp/hk-test-config-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	size_t n = strlen(text);
	assert_int_equal(write(fd, text, n), (ssize_t)n);
	close(fd);
	config_defaults(c);
	buf_reset(err);
	int rc = config_load(c, path, err);
	unlink(path);
	return rc;
}

static void
test_config_user_group_default_none(void **state)
{
	(void)state;
	struct hk_config c;
	config_defaults(&c);
	assert_null(c.user);
	assert_null(c.group);
	config_fini(&c);
}

static void
test_config_user_group_parsed(void **state)
{
	(void)state;
	struct hk_config c;
	struct hk_buf err;
	buf_init(&err);
	assert_int_equal(load_text(&c, "hostname mail.example.jp\nuser hikyaku   # the service account\ngroup mail\n", &err), 0);
	assert_string_equal(c.user, "hikyaku");
	assert_string_equal(c.group, "mail");
	config_fini(&c);
	/* the last one wins, as for every single-valued key */
	assert_int_equal(load_text(&c, "user a\nuser _hk-mail.2\n", &err), 0);
	assert_string_equal(c.user, "_hk-mail.2");
	assert_null(c.group);
	config_fini(&c);
	buf_fini(&err);
}

static void
test_config_user_bad_names(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"user -rf\n",                     /* looks like an option */
		"user 1000\n",                    /* an id, not a name */
		"group 0\n",                      /* the same for groups */
		"user a/b\n",                     /* a path */
		"user caf\xc3\xa9\n",             /* 8-bit */
		"user a:b\n",                     /* passwd field separator */
		"user abcdefghijklmnopqrstuvwxyz0123456\n", /* 33 bytes */
		"user\n",                         /* no value */
		"user a b\n",                     /* two values */
		"group\n",
	};
	struct hk_config c;
	struct hk_buf err;
	buf_init(&err);
	for (size_t i = 0; i < HK_ARRAY_LEN(bad); i++) {
		assert_int_equal(load_text(&c, bad[i], &err), -1);
		assert_non_null(strstr(err.data, ":1: "));
		config_fini(&c);
	}
	buf_fini(&err);
}

static void
test_config_user_name_limit(void **state)
{
	(void)state;
	char name[CONFIG_MAX_NAME_LEN + 2];
	memset(name, 'a', sizeof(name));
	name[CONFIG_MAX_NAME_LEN] = '\0';
	assert_true(config_valid_account_name(name)); /* exactly at the limit */
	name[CONFIG_MAX_NAME_LEN] = 'a';
	name[CONFIG_MAX_NAME_LEN + 1] = '\0';
	assert_false(config_valid_account_name(name));
	assert_false(config_valid_account_name(""));
	assert_true(config_valid_account_name("www-data"));
	assert_true(config_valid_account_name("u1000"));
}

static void
test_config_error_names_line(void **state)
{
	(void)state;
	struct hk_config c;
	struct hk_buf err;
	buf_init(&err);
	assert_int_equal(load_text(&c, "# comment\nuser hikyaku\n\ngroup bad/name\n", &err), -1);
	assert_non_null(strstr(err.data, ":4: bad value for group"));
	config_fini(&c);
	buf_fini(&err);
}

/* retention_interval: seconds, 0 = no sweep, at most a week;
 * retention_max_messages: 1..10,000,000 per mailbox and run. */
static void
test_config_retention_keys(void **state)
{
	(void)state;
	struct hk_config c;
	struct hk_buf err;
	buf_init(&err);
	config_defaults(&c);
	assert_int_equal(c.retention_interval, 3600);
	assert_int_equal(c.retention_max_messages, 10000);
	config_fini(&c);
	assert_int_equal(load_text(&c, "retention_interval 0\nretention_max_messages 1\n", &err), 0);
	assert_int_equal(c.retention_interval, 0);
	assert_int_equal(c.retention_max_messages, 1);
	config_fini(&c);
	assert_int_equal(load_text(&c, "retention_interval 604800\nretention_max_messages 10000000\n", &err), 0);
	assert_int_equal(c.retention_interval, 604800);
	config_fini(&c);
	assert_int_equal(load_text(&c, "retention_interval 604801\n", &err), -1);
	assert_non_null(strstr(err.data, ":1: bad value for retention_interval"));
	config_fini(&c);
	assert_int_equal(load_text(&c, "\nretention_max_messages 0\n", &err), -1);
	assert_non_null(strstr(err.data, ":2: bad value for retention_max_messages"));
	config_fini(&c);
	assert_int_equal(load_text(&c, "retention_max_messages 10000001\n", &err), -1);
	config_fini(&c);
	assert_int_equal(load_text(&c, "retention_interval\n", &err), -1);
	assert_non_null(strstr(err.data, "unknown setting or wrong number of values: retention_interval"));
	config_fini(&c);
	buf_fini(&err);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_user_group_default_none),
		cmocka_unit_test(test_config_user_group_parsed),
		cmocka_unit_test(test_config_user_bad_names),
		cmocka_unit_test(test_config_user_name_limit),
		cmocka_unit_test(test_config_error_names_line),
		cmocka_unit_test(test_config_retention_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
