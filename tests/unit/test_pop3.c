/*
 * test_pop3.c - POP3 pieces without sockets: the command parser, the
 * multi-line formatter (dot-stuffing, CRLF, TOP), and the maildrop on a
 * real Maildir (lock exclusion, numbering in delivery order, UIDL,
 * reading, and the UPDATE commit when another session renamed files).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "pop3/pop3_cmd.h"
#include "pop3/pop3_format.h"
#include "pop3/pop3_maildrop.h"
#include "store.h"

static int
parse(const char *s, struct pop3_cmd *c, const char **err)
{
	return pop3_cmd_parse(s, strlen(s), c, err);
}

static void
assert_str(struct hk_str s, const char *want)
{
	if (s.len != strlen(want) || memcmp(s.ptr, want, s.len) != 0)
		fail_msg("got [%.*s], want [%s]", (int)s.len, s.ptr ? s.ptr : "", want);
}

static void
test_pop3_cmd(void **state)
{
	(void)state;
	struct pop3_cmd c;
	const char *err;
	assert_int_equal(parse("user taro@example.jp", &c, &err), 0);
	assert_int_equal(c.verb, POP3_USER);
	assert_str(c.args[0], "taro@example.jp");
	/* passwords keep their spaces */
	assert_int_equal(parse("PASS correct horse  battery ", &c, &err), 0);
	assert_str(c.args[0], "correct horse  battery ");
	assert_int_equal(parse("TOP 3 0", &c, &err), 0);
	assert_int_equal(c.nargs, 2);
	assert_int_equal(parse("LIST", &c, &err), 0);
	assert_int_equal(c.nargs, 0);
	assert_int_equal(parse("AUTH", &c, &err), 0);
	assert_int_equal(parse("AUTH PLAIN AHRhcm8AcHc=", &c, &err), 0);
	assert_str(c.args[1], "AHRhcm8AcHc=");
	/* errors */
	assert_int_equal(parse("", &c, &err), -1);
	assert_int_equal(parse("FOO", &c, &err), -1);
	assert_string_equal(err, "Unknown command");
	assert_int_equal(parse("RETR", &c, &err), -1);
	assert_string_equal(err, "Missing argument");
	assert_int_equal(parse("RETR 1 2", &c, &err), -1);
	assert_string_equal(err, "Too many arguments");
	assert_int_equal(parse("PASS", &c, &err), -1);
	assert_int_equal(pop3_cmd_parse("USER a\0b", 8, &c, &err), -1);
	char longline[700];
	memset(longline, 'a', sizeof(longline));
	memcpy(longline, "USER ", 5);
	assert_int_equal(pop3_cmd_parse(longline, sizeof(longline), &c, &err), -1);
	/* AUTH may be longer (RFC 5034) */
	memcpy(longline, "AUTH PLAIN ", 11);
	assert_int_equal(pop3_cmd_parse(longline, sizeof(longline), &c, &err), 0);
	unsigned n;
	assert_true(pop3_number((struct hk_str){ "12", 2 }, false, &n) && n == 12);
	assert_false(pop3_number((struct hk_str){ "0", 1 }, false, &n));
	assert_true(pop3_number((struct hk_str){ "0", 1 }, true, &n) && n == 0);
	assert_false(pop3_number((struct hk_str){ "012", 3 }, false, &n));
	assert_false(pop3_number((struct hk_str){ "-1", 2 }, false, &n));
	assert_false(pop3_number((struct hk_str){ "99999999999", 11 }, false, &n));
}

static char *
fmt(const char *msg, long top, size_t chunk)
{
	struct pop3_stuffer st;
	struct hk_buf out;
	buf_init(&out);
	pop3_stuffer_init(&st, top);
	size_t n = strlen(msg);
	for (size_t off = 0; off < n;) {
		size_t k = n - off < chunk ? n - off : chunk;
		pop3_stuff(&st, msg + off, k, &out);
		off += k;
	}
	pop3_stuff_end(&st, &out);
	return buf_steal(&out);
}

static void
test_pop3_format(void **state)
{
	(void)state;
	const char *m = "Subject: x\r\nFrom: a@b\r\n\r\n.one\r\ntwo\r\n..three\r\n";
	for (size_t chunk = 1; chunk < 8; chunk++) {
		char *r = fmt(m, -1, chunk);
		assert_string_equal(r, "Subject: x\r\nFrom: a@b\r\n\r\n..one\r\ntwo\r\n...three\r\n.\r\n");
		free(r);
	}
	char *r = fmt(m, 0, 3);
	assert_string_equal(r, "Subject: x\r\nFrom: a@b\r\n\r\n.\r\n");
	free(r);
	r = fmt(m, 2, 5);
	assert_string_equal(r, "Subject: x\r\nFrom: a@b\r\n\r\n..one\r\ntwo\r\n.\r\n");
	free(r);
	/* bare LF (a foreign file) and no final line end */
	r = fmt("A: b\n\nbody\n.\nend", -1, 4);
	assert_string_equal(r, "A: b\r\n\r\nbody\r\n..\r\nend\r\n.\r\n");
	free(r);
	r = fmt("", -1, 1);
	assert_string_equal(r, ".\r\n");
	free(r);
	/* TOP beyond the end is the whole message */
	r = fmt("A: b\r\n\r\nx\r\n", 50, 2);
	assert_string_equal(r, "A: b\r\n\r\nx\r\n.\r\n");
	free(r);
}

/* --- the maildrop on a real Maildir --------------------------------------------- */

struct fx {
	char dir[64];
	char *root;
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/hk-pop3-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	f->root = xasprintf("%s/Maildir", f->dir);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char *cmd = xasprintf("rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup failed\n");
	free(cmd);
	free(f->root);
	free(f);
	return 0;
}

static void
deliver(const char *root, const char *text, char **name_r)
{
	struct hk_store_settings set = { .create = true };
	struct hk_store *st;
	assert_int_equal(hk_store_open(root, &set, &st), 0);
	struct hk_store_part p = { text, -1, 0, strlen(text) };
	struct hk_store_deliver_opts o = { 0 };
	assert_int_equal(hk_store_deliver(st, &o, &p, 1, name_r), 0);
	hk_store_close(&st);
}

static char *
read_all(struct pop3_maildrop *md, size_t i, long top)
{
	struct pop3_reader *r = pop3_reader_open(md, i, top);
	assert_non_null(r);
	struct hk_buf out;
	buf_init(&out);
	bool done = false;
	while (!done)
		assert_int_equal(pop3_reader_next(r, &out, 7, &done), 0);
	pop3_reader_free(&r);
	return buf_steal(&out);
}

static void
test_pop3_maildrop(void **state)
{
	struct fx *f = *state;
	char *names[3];
	deliver(f->root, "Subject: 1\r\n\r\nfirst\r\n", &names[0]);
	deliver(f->root, "Subject: 2\r\n\r\n.second\r\n", &names[1]);
	deliver(f->root, "Subject: 3\r\n\r\nthird\r\n", &names[2]);
	struct pop3_maildrop *md, *md2;
	char err[256];
	assert_int_equal(pop3_maildrop_open(f->root, &md, err, sizeof(err)), POP3_OPEN_OK);
	assert_int_equal(md->n, 3);
	/* a second session is refused while the first holds the lock */
	assert_int_equal(pop3_maildrop_open(f->root, &md2, err, sizeof(err)), POP3_OPEN_IN_USE);
	/* numbered in delivery order; UIDL is the base name without fields */
	char *r = read_all(md, 1, -1);
	assert_non_null(strstr(r, "Subject: 2"));
	assert_non_null(strstr(r, "\r\n..second\r\n.\r\n"));
	free(r);
	r = read_all(md, 0, 0);
	assert_string_equal(r, "Subject: 1\r\n\r\n.\r\n");
	free(r);
	for (int i = 0; i < 3; i++) {
		assert_null(strchr(md->v[i].uidl, ','));
		assert_int_equal(md->v[i].size, i == 1 ? 23 : 21);
	}
	char uidl1[POP3_UIDL_MAX + 1];
	snprintf(uidl1, sizeof(uidl1), "%s", md->v[1].uidl);
	/* meanwhile an IMAP session flags message 3 (renames it) */
	struct hk_store_settings set = { 0 };
	struct hk_store *st;
	assert_int_equal(hk_store_open(f->root, &set, &st), 0);
	char *renamed = NULL;
	assert_int_equal(hk_store_set_flags(st, "INBOX", md->v[2].filename, HK_STORE_FLAGGED, 0, &renamed), 0);
	/* ... and the POP3 session still reads it and deletes it */
	r = read_all(md, 2, -1);
	assert_non_null(strstr(r, "third"));
	free(r);
	md->v[0].retrieved = true;
	md->v[2].deleted = true;
	size_t failed = 99;
	assert_int_equal(pop3_maildrop_commit(md, &failed), 0);
	assert_int_equal(failed, 0);
	pop3_maildrop_close(&md);
	/* after the session: two left, message 1 \Seen, UIDL unchanged */
	struct hk_store_msg_list l;
	assert_int_equal(hk_store_scan(st, "INBOX", 0, &l), 0);
	assert_int_equal(l.n, 2);
	int seen = 0;
	for (size_t i = 0; i < l.n; i++)
		seen += (l.v[i].flags & HK_STORE_SEEN) != 0;
	assert_int_equal(seen, 1);
	hk_store_msg_list_free(&l);
	assert_int_equal(pop3_maildrop_open(f->root, &md, err, sizeof(err)), POP3_OPEN_OK);
	assert_int_equal(md->n, 2);
	assert_string_equal(md->v[1].uidl, uidl1);
	pop3_maildrop_close(&md);
	free(renamed);
	hk_store_close(&st);
	for (int i = 0; i < 3; i++)
		free(names[i]);
}

static void
test_pop3_uidl_foreign(void **state)
{
	(void)state;
	char u[POP3_UIDL_MAX + 1];
	pop3_uidl_of("cur/1700000000.M1P2.host,S=10,W=12:2,S", u);
	assert_string_equal(u, "1700000000.M1P2.host");
	/* a name with a space or too long becomes a digest (40 hex digits) */
	pop3_uidl_of("new/odd name", u);
	assert_int_equal(strlen(u), 40);
	char longname[200];
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	pop3_uidl_of(longname, u);
	assert_int_equal(strlen(u), 40);
}

int
main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pop3_cmd),
		cmocka_unit_test(test_pop3_format),
		cmocka_unit_test_setup_teardown(test_pop3_maildrop, setup, teardown),
		cmocka_unit_test(test_pop3_uidl_foreign),
	};
	return cmocka_run_group_tests_name("pop3", tests, NULL, NULL);
}
