/*
 * test_queue.c - the outbound queue's pure parts: SRS encode/reverse
 * (hash, case, age, tampering, limits, key file rules), the DSN builder
 * (RFC 3464 fields, status codes, header quoting and its limit; the
 * delivered, relayed and delayed actions, RET=FULL and its size cap,
 * ENVID/ORCPT), queue entry headers (with and without the DSN lines) and
 * state files, and the SMTP client's dot-stuffing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <errno.h>
#include <event2/buffer.h>
#include <sys/stat.h>
#include <unistd.h>

#include "queue/dsn.h"
#include "queue/queue_file.h"
#include "queue/smtp_client.h"
#include "queue/srs.h"
#include "util.h"

static const unsigned char KEY[SRS_KEY_LEN] = "0123456789abcdef0123456789abcde";
static const time_t NOW = 1795800000;

static void
test_srs_roundtrip(void **state)
{
	(void)state;
	char fw[300], back[300];
	assert_int_equal(srs_forward(KEY, "friend@example.org", "mail.example.jp", NOW, fw, sizeof(fw)), 0);
	assert_int_equal(strncmp(fw, "SRS0=", 5), 0);
	assert_non_null(strstr(fw, "=example.org=friend@mail.example.jp"));
	assert_int_equal(srs_reverse(KEY, fw, NOW, back, sizeof(back)), 0);
	assert_string_equal(back, "friend@example.org");
	/* case-insensitive: a relay that lower-cases the local part */
	for (char *p = fw; *p && *p != '@'; p++)
		*p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
	assert_int_equal(srs_reverse(KEY, fw, NOW + 86400 * 3, back, sizeof(back)), 0);
	assert_string_equal(back, "friend@example.org");
	/* a local part with '=' survives */
	assert_int_equal(srs_forward(KEY, "a=b@x.test", "m.test", NOW, fw, sizeof(fw)), 0);
	assert_int_equal(srs_reverse(KEY, fw, NOW, back, sizeof(back)), 0);
	assert_string_equal(back, "a=b@x.test");
}

static void
test_srs_refuses(void **state)
{
	(void)state;
	char fw[300], back[300];
	assert_int_equal(srs_forward(KEY, "friend@example.org", "m.test", NOW, fw, sizeof(fw)), 0);
	assert_int_equal(srs_reverse(KEY, fw, NOW + 86400 * (SRS_MAX_AGE_DAYS + 1), back, sizeof(back)), -1);
	assert_int_equal(errno, ETIMEDOUT);
	char bad[300];
	snprintf(bad, sizeof(bad), "%s", fw);
	char *d = strstr(bad, "example.org");
	d[0] = 'f'; /* another domain, same hash */
	assert_int_equal(srs_reverse(KEY, bad, NOW, back, sizeof(back)), -1);
	assert_int_equal(errno, EBADMSG);
	unsigned char other[SRS_KEY_LEN] = { 1 };
	assert_int_equal(srs_reverse(other, fw, NOW, back, sizeof(back)), -1);
	assert_int_equal(errno, EBADMSG);
	assert_int_equal(srs_reverse(KEY, "friend@example.org", NOW, back, sizeof(back)), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(srs_reverse(KEY, "SRS0=xx@m.test", NOW, back, sizeof(back)), -1);
	assert_int_equal(srs_reverse(KEY, "SRS0=ABCDEF=AA=dom@m.test", NOW, back, sizeof(back)), -1);
	assert_int_equal(srs_forward(KEY, "nodomain", "m.test", NOW, fw, sizeof(fw)), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(srs_forward(KEY, "", "m.test", NOW, fw, sizeof(fw)), -1);
	/* a domain with '=' could not be reversed (found by fuzz_srs) */
	assert_int_equal(srs_forward(KEY, "joe@ex=ample.org", "m.test", NOW, fw, sizeof(fw)), -1);
	assert_int_equal(errno, EINVAL);
	char longlocal[300];
	memset(longlocal, 'a', 240);
	strcpy(longlocal + 240, "@x.test");
	assert_int_equal(srs_forward(KEY, longlocal, "m.test", NOW, fw, sizeof(fw)), -1);
	assert_int_equal(errno, ENAMETOOLONG);
	assert_int_equal(srs_forward(KEY, "a@b.test", "m.test", NOW, fw, 10), -1);
}

static void
test_srs_key_file(void **state)
{
	(void)state;
	char dir[] = "/tmp/hk-srs-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char *p = xasprintf("%s/srs.key", dir);
	unsigned char k1[SRS_KEY_LEN], k2[SRS_KEY_LEN];
	assert_int_equal(srs_key_load(p, k1), 0);
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(srs_key_load(p, k2), 0);
	assert_memory_equal(k1, k2, SRS_KEY_LEN);
	chmod(p, 0644);
	assert_int_equal(srs_key_load(p, k2), -1);
	assert_int_equal(errno, EPERM);
	unlink(p);
	rmdir(dir);
	free(p);
}

static void
test_dsn_build(void **state)
{
	(void)state;
	const char *msg = "From: a@x.test\r\nSubject: hello\r\nMessage-ID: <1@x>\r\n\r\nsecret body\r\n";
	struct dsn_info d = { .reporting_mta = "mail.example.jp", .sender = "a@x.test", .recipient = "b@y.test",
		.remote_mta = "mx.y.test", .diagnostic = "550 5.1.1 no\r\nsuch user", .from_remote = true, .arrival = NOW,
		.now = NOW + 10, .msg = msg, .msglen = strlen(msg) };
	struct hk_buf b;
	buf_init(&b);
	dsn_build(&d, &b);
	const char *want[] = { "To: <a@x.test>\r\n", "Auto-Submitted: auto-replied\r\n", "multipart/report; report-type=delivery-status",
		"Content-Type: message/delivery-status\r\n", "Reporting-MTA: dns; mail.example.jp\r\n",
		"Final-Recipient: rfc822; b@y.test\r\n", "Action: failed\r\n", "Status: 5.1.1\r\n", "Remote-MTA: dns; mx.y.test\r\n",
		"Diagnostic-Code: smtp; 550 5.1.1 no  such user\r\n", "Content-Type: text/rfc822-headers\r\n", "Subject: hello\r\n",
		"Message-ID: <1@x>\r\n" };
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		assert_non_null(strstr(b.data, want[i]));
	assert_null(strstr(b.data, "secret body"));
	/* every line ends in CRLF */
	for (size_t i = 0; i < b.len; i++)
		if (b.data[i] == '\n')
			assert_true(i > 0 && b.data[i - 1] == '\r');
	buf_fini(&b);
	/* our own reason, no remote: X-Hikyaku diagnostic, given status */
	d.from_remote = false;
	d.remote_mta = NULL;
	d.status = "5.4.7";
	d.diagnostic = "delivery time expired";
	buf_init(&b);
	dsn_build(&d, &b);
	assert_non_null(strstr(b.data, "Status: 5.4.7\r\n"));
	assert_non_null(strstr(b.data, "Diagnostic-Code: X-Hikyaku; delivery time expired"));
	assert_null(strstr(b.data, "Remote-MTA"));
	buf_fini(&b);
}

static void
test_dsn_header_limit(void **state)
{
	(void)state;
	size_t n = DSN_MAX_HEADERS * 2 / 100 * 100; /* whole 100-byte lines */
	char *msg = malloc(n + 1);
	for (size_t i = 0; i < n; i += 100) {
		memset(msg + i, 'h', 98);
		memcpy(msg + i, "X-Long: ", 8);
		msg[i + 98] = '\r';
		msg[i + 99] = '\n';
	}
	msg[n] = '\0';
	struct dsn_info d = { .reporting_mta = "m", .sender = "a@x", .recipient = "b@y", .diagnostic = "x", .msg = msg, .msglen = n };
	struct hk_buf b;
	buf_init(&b);
	dsn_build(&d, &b);
	assert_true(b.len < DSN_MAX_HEADERS + 4096);
	buf_fini(&b);
	free(msg);
}

static void
test_dsn_status(void **state)
{
	(void)state;
	char s[16];
	dsn_status_from_reply("550 5.7.1 denied", s);
	assert_string_equal(s, "5.7.1");
	dsn_status_from_reply("550 denied", s);
	assert_string_equal(s, "5.0.0");
	dsn_status_from_reply("451 4.3.0 later", s);
	assert_string_equal(s, "4.3.0");
	dsn_status_from_reply("550 4.3.0 mismatch", s); /* class must agree */
	assert_string_equal(s, "5.0.0");
	dsn_status_from_reply("552 5.3.4234 x", s);
	assert_string_equal(s, "5.0.0");
	dsn_status_from_reply("", s);
	assert_string_equal(s, "5.0.0");
}

static void
test_qfile_head(void **state)
{
	(void)state;
	const char *e = "HKQ1\nkind forward\nfrom a@x.test\nto b@y.test\ncreated 123\n\nMSG";
	struct qfile_head h;
	assert_int_equal(qfile_parse_head(e, strlen(e), &h), 0);
	assert_string_equal(h.kind, "forward");
	assert_string_equal(h.from, "a@x.test");
	assert_string_equal(h.to, "b@y.test");
	assert_int_equal(h.created, 123);
	assert_string_equal(e + h.body_off, "MSG");
	const char *null = "HKQ1\nkind reply\nfrom \nto b@y.test\ncreated 1\n\n";
	assert_int_equal(qfile_parse_head(null, strlen(null), &h), 0);
	assert_string_equal(h.from, "");
	const char *bad[] = { "HKQ2\nkind x\nfrom \nto b\ncreated 1\n\n", "HKQ1\nkind x\nfrom \nto b\ncreated 1\n",
		"HKQ1\nkind x\nfrom <a>\nto b\ncreated 1\n\n", "HKQ1\nkind x\nfrom \nto \ncreated 1\n\n",
		"HKQ1\nkind x\nfrom \nto b\ncreated 1x\n\n", "" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(qfile_parse_head(bad[i], strlen(bad[i]), &h), -1);
	assert_true(qfile_name_ok("1795828964.22839.3"));
	assert_false(qfile_name_ok("1795828964.22839.3.st"));
	assert_false(qfile_name_ok(".tmp"));
	assert_false(qfile_name_ok("../x"));
	assert_false(qfile_name_ok(""));
}


static const char DSN_MSG[] = "From: a@x.test\r\nSubject: hello\r\n\r\nsecret body\r\n";

static char *
dsn_of(const struct dsn_info *d)
{
	struct hk_buf b;
	buf_init(&b);
	dsn_build(d, &b);
	for (size_t i = 0; i < b.len; i++) /* every line ends in CRLF */
		if (b.data[i] == '\n')
			assert_true(i > 0 && b.data[i - 1] == '\r');
	return b.data; /* the caller frees */
}

static void
test_dsn_actions(void **state)
{
	(void)state;
	struct dsn_info d = { .reporting_mta = "mail.example.jp", .sender = "a@x.test", .recipient = "b@y.test", .diagnostic = "",
		.arrival = NOW, .now = NOW, .msg = DSN_MSG, .msglen = strlen(DSN_MSG), .action = DSN_DELIVERED, .ret_full = true };
	char *s = dsn_of(&d);
	assert_non_null(strstr(s, "Subject: Successful Mail Delivery Report\r\n"));
	assert_non_null(strstr(s, "Action: delivered\r\nStatus: 2.0.0\r\n"));
	assert_null(strstr(s, "Diagnostic-Code")); /* nothing to say */
	assert_null(strstr(s, "Will-Retry-Until"));
	/* RET=FULL is for failures only (RFC 3461 4.3) */
	assert_non_null(strstr(s, "Content-Type: text/rfc822-headers\r\n"));
	assert_null(strstr(s, "secret body"));
	free(s);

	d.action = DSN_RELAYED;
	d.remote_mta = "mx.y.test";
	d.diagnostic = "250 2.0.0 queued";
	d.from_remote = true;
	s = dsn_of(&d);
	assert_non_null(strstr(s, "Action: relayed\r\nStatus: 2.0.0\r\nRemote-MTA: dns; mx.y.test\r\n"));
	assert_non_null(strstr(s, "Diagnostic-Code: smtp; 250 2.0.0 queued\r\n"));
	free(s);

	d.action = DSN_DELAYED;
	d.diagnostic = "451 4.3.0 later";
	d.retry_until = NOW + 5 * 86400;
	s = dsn_of(&d);
	assert_non_null(strstr(s, "Subject: Delayed Mail (still being retried)\r\n"));
	assert_non_null(strstr(s, "Action: delayed\r\nStatus: 4.3.0\r\n"));
	char want[80];
	struct tm tm;
	time_t until = NOW + 5 * 86400;
	gmtime_r(&until, &tm);
	strftime(want, sizeof(want), "Will-Retry-Until: %a, %d %b %Y %H:%M:%S +0000\r\n", &tm);
	assert_non_null(strstr(s, want));
	assert_null(strstr(s, "secret body"));
	free(s);

	/* a delay of our own (no remote said anything): class 4 still */
	d.from_remote = false;
	d.remote_mta = NULL;
	d.diagnostic = "connection refused";
	s = dsn_of(&d);
	assert_non_null(strstr(s, "Status: 4.0.0\r\n"));
	assert_non_null(strstr(s, "Diagnostic-Code: X-Hikyaku; connection refused\r\n"));
	free(s);
}

static void
test_dsn_ret_full(void **state)
{
	(void)state;
	struct dsn_info d = { .reporting_mta = "m.test", .sender = "a@x", .recipient = "b@y", .diagnostic = "550 5.1.1 no",
		.from_remote = true, .arrival = NOW, .now = NOW, .msg = DSN_MSG, .msglen = strlen(DSN_MSG), .ret_full = true };
	char *s = dsn_of(&d);
	assert_non_null(strstr(s, "Content-Type: message/rfc822\r\n"));
	assert_non_null(strstr(s, "\r\n\r\nsecret body\r\n"));
	assert_null(strstr(s, "text/rfc822-headers"));
	free(s);
	/* one byte over the cap: headers only, and the text says why */
	size_t n = DSN_MAX_FULL + 1;
	char *big = malloc(n);
	memset(big, 'x', n);
	memcpy(big, DSN_MSG, strlen(DSN_MSG));
	d.msg = big;
	d.msglen = n;
	s = dsn_of(&d);
	assert_null(strstr(s, "message/rfc822"));
	assert_non_null(strstr(s, "Content-Type: text/rfc822-headers\r\n"));
	assert_non_null(strstr(s, "only its headers are attached"));
	assert_true(strlen(s) < 16 * 1024);
	free(s);
	/* at the cap: whole */
	d.msglen = DSN_MAX_FULL;
	s = dsn_of(&d);
	assert_non_null(strstr(s, "Content-Type: message/rfc822\r\n"));
	free(s);
	free(big);
}

static void
test_dsn_envid_orcpt(void **state)
{
	(void)state;
	struct dsn_info d = { .reporting_mta = "m.test", .sender = "a@x", .recipient = "b@y", .diagnostic = "550 x",
		.from_remote = true, .arrival = NOW, .now = NOW, .msg = DSN_MSG, .msglen = strlen(DSN_MSG), .envid = "env 1",
		.orcpt = "rfc822;orig+x@y" };
	char *s = dsn_of(&d);
	/* per-message field before Reporting-MTA, per-recipient before Final-Recipient (RFC 3464 2.2, 2.3) */
	const char *e = strstr(s, "Original-Envelope-Id: env 1\r\nReporting-MTA: dns; m.test\r\n");
	const char *o = strstr(s, "Original-Recipient: rfc822;orig+x@y\r\nFinal-Recipient: rfc822; b@y\r\n");
	assert_non_null(e);
	assert_non_null(o);
	assert_true(e < o);
	free(s);
	/* whatever they hold, they stay on one line */
	d.envid = "a\r\nX-Evil: 1";
	s = dsn_of(&d);
	assert_null(strstr(s, "\r\nX-Evil"));
	free(s);
}

static void
test_qfile_head_dsn(void **state)
{
	(void)state;
	struct qfile_head w = { .kind = "relay", .from = "a@x.test", .to = "b@y.test", .created = 77, .ret = SMTP_DSN_RET_FULL,
		.envid = "E+2B1", .notify = SMTP_DSN_NOTIFY_SUCCESS | SMTP_DSN_NOTIFY_DELAY, .orcpt = "rfc822;<b@y>" };
	struct hk_buf b;
	buf_init(&b);
	qfile_format_head(&b, &w);
	assert_string_equal(b.data, "HKQ1\nkind relay\nfrom a@x.test\nto b@y.test\ncreated 77\nret FULL\nenvid E+2B1\n"
				    "notify SUCCESS,DELAY\norcpt rfc822;<b@y>\n\n");
	buf_adds(&b, "MSG");
	struct qfile_head h;
	assert_int_equal(qfile_parse_head(b.data, b.len, &h), 0);
	assert_string_equal(h.kind, "relay");
	assert_int_equal(h.ret, SMTP_DSN_RET_FULL);
	assert_string_equal(h.envid, "E+2B1");
	assert_int_equal(h.notify, SMTP_DSN_NOTIFY_SUCCESS | SMTP_DSN_NOTIFY_DELAY);
	assert_string_equal(h.orcpt, "rfc822;<b@y>");
	assert_string_equal(b.data + h.body_off, "MSG");
	buf_fini(&b);
	/* no DSN lines: exactly the old format */
	struct qfile_head o = { .kind = "bounce", .from = "", .to = "a@x.test", .created = 5 };
	buf_init(&b);
	qfile_format_head(&b, &o);
	assert_string_equal(b.data, "HKQ1\nkind bounce\nfrom \nto a@x.test\ncreated 5\n\n");
	assert_int_equal(qfile_parse_head(b.data, b.len, &h), 0);
	assert_int_equal(h.ret, SMTP_DSN_RET_NONE);
	assert_int_equal(h.notify, 0);
	assert_string_equal(h.envid, "");
	assert_string_equal(h.orcpt, "");
	buf_fini(&b);
	/* one of them alone */
	const char *one = "HKQ1\nkind relay\nfrom a@x\nto b@y\ncreated 1\nnotify NEVER\n\n";
	assert_int_equal(qfile_parse_head(one, strlen(one), &h), 0);
	assert_int_equal(h.notify, SMTP_DSN_NOTIFY_NEVER);
	const char *bad[] = {
		"HKQ1\nkind r\nfrom \nto b\ncreated 1\nret BOTH\n\n",
		"HKQ1\nkind r\nfrom \nto b\ncreated 1\nnotify NEVER,DELAY\n\n",
		"HKQ1\nkind r\nfrom \nto b\ncreated 1\nenvid a+0A\n\n",
		"HKQ1\nkind r\nfrom \nto b\ncreated 1\norcpt nosemicolon\n\n",
		"HKQ1\nkind r\nfrom \nto b\ncreated 1\nnotify DELAY\nret FULL\n\n", /* out of order */
		"HKQ1\nkind r\nfrom \nto b\ncreated 1\nret FULL\nret FULL\n\n",     /* twice */
		"HKQ1\nkind r\nfrom \nto b\ncreated 1\nsurprise 1\n\n",             /* unknown */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (qfile_parse_head(bad[i], strlen(bad[i]), &h) != -1)
			fail_msg("accepted %s", bad[i]);
	/* an ENVID one over its limit */
	char lng[256];
	snprintf(lng, sizeof(lng), "HKQ1\nkind r\nfrom \nto b\ncreated 1\nenvid %0101d\n\n", 0);
	assert_int_equal(qfile_parse_head(lng, strlen(lng), &h), -1);
}

static void
test_qfile_state(void **state)
{
	(void)state;
	char dir[] = "/tmp/hk-qst-XXXXXX";
	assert_non_null(mkdtemp(dir));
	struct qfile_state s;
	assert_int_equal(qfile_state_read(dir, "e1", &s), 0);
	assert_int_equal(s.attempts, 1);
	assert_int_equal(s.next, 0);
	struct qfile_state w = { .attempts = 3, .next = 99 };
	snprintf(w.error, sizeof(w.error), "451 line\nbreak");
	assert_int_equal(qfile_state_write(dir, "e1", &w), 0);
	assert_int_equal(qfile_state_read(dir, "e1", &s), 0);
	assert_int_equal(s.attempts, 3);
	assert_int_equal(s.next, 99);
	assert_string_equal(s.error, "451 line break");
	assert_false(s.delay_warned);
	w.delay_warned = true;
	assert_int_equal(qfile_state_write(dir, "e1", &w), 0);
	assert_int_equal(qfile_state_read(dir, "e1", &s), 0);
	assert_true(s.delay_warned);
	assert_int_equal(s.attempts, 3);
	char *p = xasprintf("%s/e1.st", dir);
	unlink(p);
	free(p);
	rmdir(dir);
}

static void
stuffed(const char *in, const char *want)
{
	struct evbuffer *b = evbuffer_new();
	smtpc_add_stuffed(b, in, strlen(in));
	size_t n = evbuffer_get_length(b);
	char *s = calloc(1, n + 1);
	evbuffer_remove(b, s, n);
	assert_string_equal(s, want);
	free(s);
	evbuffer_free(b);
}

static void
test_dot_stuffing(void **state)
{
	(void)state;
	stuffed("a\r\n.b\r\n..\r\n.\r\n", "a\r\n..b\r\n...\r\n..\r\n.\r\n");
	stuffed(".first\r\nlast", "..first\r\nlast\r\n.\r\n");
	stuffed("bare\nlf\n.x\n", "bare\r\nlf\r\n..x\r\n.\r\n");
	stuffed("", ".\r\n");
}

static void
test_timeouts(void **state)
{
	(void)state;
	struct smtpc_timeouts t;
	smtpc_timeouts_default(&t, 0);
	assert_int_equal(t.final, 300);
	assert_int_equal(t.data, 120);
	smtpc_timeouts_default(&t, 5);
	assert_int_equal(t.final, 5);
	assert_int_equal(t.connect, 5);
	assert_int_equal(t.quit, 5);
}

int
main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_srs_roundtrip),
		cmocka_unit_test(test_srs_refuses),
		cmocka_unit_test(test_srs_key_file),
		cmocka_unit_test(test_dsn_build),
		cmocka_unit_test(test_dsn_header_limit),
		cmocka_unit_test(test_dsn_status),
		cmocka_unit_test(test_qfile_head),
		cmocka_unit_test(test_dsn_actions),
		cmocka_unit_test(test_dsn_ret_full),
		cmocka_unit_test(test_dsn_envid_orcpt),
		cmocka_unit_test(test_qfile_head_dsn),
		cmocka_unit_test(test_qfile_state),
		cmocka_unit_test(test_dot_stuffing),
		cmocka_unit_test(test_timeouts),
	};
	return cmocka_run_group_tests_name("queue", tests, NULL, NULL);
}
