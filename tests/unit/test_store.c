/*
 * test_store.c - unit tests of the store (runtime/store*.c) and its
 * Maildir++ back end (runtime/maildir*.c): folder-name rules and their
 * Dovecot-compatible directory names (modified UTF-7, listescape), the
 * mailbox layout, delivery (file names, flags, pieces from a spool fd),
 * batches and the group committer, quota in maildirsize (with two
 * processes delivering at once), failures (fault hook for ENOSPC, EDQUOT,
 * EACCES, EIO; RLIMIT_FSIZE for a real EFBIG), the Rejected folder, the
 * read side (scan, flags, expunge, tmp/ cleaning), and crash safety: a
 * child delivering in a loop is killed with SIGKILL at random moments, and
 * every delivery it reported must be in new/ exactly once and complete.
 *
 * Each test works in its own directory under $TMPDIR (or /tmp), removed
 * afterwards. Runs as root or not.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ast.h"
#include "compose.h"
#include "maildir.h"
#include "message.h"
#include "store.h"

/* --- fixture and helpers ---------------------------------------------------- */

struct fx {
	char dir[256];   /* the test's scratch directory */
	char root[320];  /* dir/Maildir */
	struct hk_store *st;
};

static int
rm_cb(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(path);
}

static void
rm_rf(const char *path)
{
	nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	const char *t = getenv("TMPDIR");
	snprintf(f->dir, sizeof f->dir, "%s/hk-store.XXXXXX", t && *t ? t : "/tmp");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->root, sizeof f->root, "%s/Maildir", f->dir);
	struct hk_store_settings set = { .create = true };
	if (hk_store_open(f->root, &set, &f->st) != 0)
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	hk_store_set_fault_hook(NULL, NULL);
	hk_store_close(&f->st);
	rm_rf(f->dir);
	free(f);
	return 0;
}

static void
reopen(struct fx *f, uint64_t qbytes, uint64_t qcount)
{
	hk_store_close(&f->st);
	struct hk_store_settings set = { .quota = { qbytes, qcount }, .create = true };
	assert_int_equal(hk_store_open(f->root, &set, &f->st), 0);
}

/* Names of the files in root/sub, sorted; returns how many. */
static size_t
list_dir(const char *root, const char *sub, char ***names_r)
{
	char p[1024];
	snprintf(p, sizeof p, "%s/%s", root, sub);
	DIR *d = opendir(p);
	char **v = NULL;
	size_t n = 0;
	if (d) {
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
				continue;
			v = realloc(v, (n + 1) * sizeof *v);
			v[n++] = strdup(e->d_name);
		}
		closedir(d);
	}
	if (names_r)
		*names_r = v;
	else {
		for (size_t i = 0; i < n; i++)
			free(v[i]);
		free(v);
	}
	return n;
}

static void
free_names(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static size_t
count_dir(const char *root, const char *sub)
{
	return list_dir(root, sub, NULL);
}

static char *
slurp(const char *path, size_t *len_r)
{
	char *data;
	size_t len;
	if (read_file(path, 64u << 20, &data, &len) != 0)
		return NULL;
	if (len_r)
		*len_r = len;
	return data;
}

static bool
is_dir(const char *path)
{
	struct stat sb;
	return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static bool
exists(const char *path)
{
	struct stat sb;
	return lstat(path, &sb) == 0;
}

static struct hk_store_part
mem(const char *s)
{
	return (struct hk_store_part){ .data = s, .fd = -1, .len = strlen(s) };
}

static const char MSG[] = "From: a@example.jp\r\nSubject: hi\r\n\r\nbody\r\n";

/* Delivers MSG with the given options; returns the file name (free it). */
static char *
deliver(struct fx *f, const struct hk_store_deliver_opts *o, const char *text)
{
	struct hk_store_part p = mem(text ? text : MSG);
	char *name = NULL;
	int r = hk_store_deliver(f->st, o, &p, 1, &name);
	if (r != 0)
		print_error("deliver: %s\n", hk_store_error(f->st));
	assert_int_equal(r, 0);
	assert_non_null(name);
	return name;
}

/* A file name in new/ or cur/ has Dovecot's shape:
 * <sec>.M<usec>P<pid>Q<n>R<hex>.<host>,S=<size>,W=<vsize>[:2,<flags>] */
static void
check_name_shape(const char *name, uint64_t size, uint64_t vsize)
{
	const char *p = name;
	assert_true(*p >= '0' && *p <= '9');
	while (*p >= '0' && *p <= '9')
		p++;
	assert_memory_equal(p, ".M", 2);
	p += 2;
	for (int i = 0; i < 6; i++, p++)
		assert_true(*p >= '0' && *p <= '9');
	assert_int_equal(*p, 'P');
	assert_non_null(strchr(p, 'Q'));
	assert_non_null(strchr(p, 'R'));
	assert_null(strchr(name, '/'));
	char want[64];
	snprintf(want, sizeof want, ",S=%llu,W=%llu", (unsigned long long)size, (unsigned long long)vsize);
	assert_non_null(strstr(name, want));
	struct maildir_info info;
	maildir_parse_filename(name, &info);
	assert_true(info.has_size && info.has_vsize);
	assert_int_equal(info.size, size);
	assert_int_equal(info.vsize, vsize);
}

/* --- folder names -------------------------------------------------------------- */

static void
test_store_folder_names_valid(void **state)
{
	(void)state;
	const char *ok[] = { "INBOX", "inbox", "Work", "Work/Reports", "日本語", "仕事/報告書", "v1.2", "~home", "a b",
		"Tom & Jerry", "x/y/z", "Entwürfe", "😀" };
	for (size_t i = 0; i < HK_ARRAY_LEN(ok); i++) {
		if (!hk_store_folder_name_ok(ok[i]))
			fail_msg("'%s' refused", ok[i]);
	}
	char *c = hk_store_folder_canon("inbox/Sub");
	assert_string_equal(c, "INBOX/Sub");
	free(c);
	c = hk_store_folder_canon("Inboxes");
	assert_string_equal(c, "Inboxes");
	free(c);
	/* the limits, at and past them */
	char name[300];
	memset(name, 'a', 255);
	name[255] = '\0';
	assert_true(hk_store_folder_name_ok(name));
	name[255] = 'a', name[256] = '\0';
	assert_false(hk_store_folder_name_ok(name));
	strcpy(name, "a");
	for (int i = 1; i < HK_STORE_FOLDER_DEPTH_MAX; i++)
		strcat(name, "/a");
	assert_true(hk_store_folder_name_ok(name));
	strcat(name, "/a");
	assert_false(hk_store_folder_name_ok(name));
}

static void
test_store_folder_names_invalid(void **state)
{
	(void)state;
	const char *bad[] = { "", "..", ".", "/x", "x/", "a//b", ".hidden", "a/.b", "a..b", "a/../b", "a\\b", "a*",
		"50%", "tab\there", "nl\n", "del\x7f", "c1\xc2\x85", "bad\xff", "overlong\xc0\xaf", "surrogate\xed\xa0\x80",
		"trunc\xe6\x97", "big\xf4\x90\x80\x80" };
	for (size_t i = 0; i < HK_ARRAY_LEN(bad); i++) {
		if (hk_store_folder_name_ok(bad[i]))
			fail_msg("'%s' (#%zu) accepted", bad[i], i);
		errno = 0;
		assert_null(hk_store_folder_canon(bad[i]));
		assert_int_equal(errno, EINVAL);
	}
	assert_false(hk_store_folder_name_ok(NULL));
}

static void
test_store_mutf7_vectors(void **state)
{
	(void)state;
	static const struct {
		const char *utf8, *utf7;
	} v[] = {
		{ "日本語", "&ZeVnLIqe-" },
		{ "&", "&-" },
		{ "Tom & Jerry", "Tom &- Jerry" },
		{ "Entwürfe", "Entw&APw-rfe" },
		{ "~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-" }, /* RFC 3501 5.1.3 */
		{ "😀", "&2D3eAA-" },                                             /* a surrogate pair */
		{ "受信箱", "&U9dP4Xux-" },
		{ "plain", "plain" },
	};
	struct hk_buf b;
	buf_init(&b);
	for (size_t i = 0; i < HK_ARRAY_LEN(v); i++) {
		buf_reset(&b);
		mutf7_encode(v[i].utf8, strlen(v[i].utf8), &b);
		assert_string_equal(b.data, v[i].utf7);
		buf_reset(&b);
		assert_int_equal(mutf7_decode(v[i].utf7, strlen(v[i].utf7), &b), 0);
		assert_string_equal(b.data, v[i].utf8);
	}
	const char *bad[] = { "&ZeVnLIqe", "&Ze!-", "&AGE-", "&2D0-", "&3gA-", "&ZeX-", "a\x01", "&-&", "&", "\xe6" };
	for (size_t i = 0; i < HK_ARRAY_LEN(bad); i++) {
		buf_reset(&b);
		if (mutf7_decode(bad[i], strlen(bad[i]), &b) == 0)
			fail_msg("'%s' decoded to '%s'", bad[i], b.data ? b.data : "");
	}
	buf_fini(&b);
}

static void
test_store_dir_names_dovecot_layout(void **state)
{
	(void)state;
	static const struct {
		const char *name, *dir;
	} v[] = {
		{ "INBOX", "" },
		{ "Work", ".Work" },
		{ "Work/Reports", ".Work.Reports" },
		{ "日本語", ".&ZeVnLIqe-" },
		{ "仕事/日本語", ".&TtVOiw-.&ZeVnLIqe-" },
		{ "v1.2", ".v1\\2e2" },
		{ "~home", ".\\7ehome" },
		{ "a/~b", ".a.~b" },
		{ "INBOX/sub", ".INBOX.sub" },
		{ "Tom & Jerry", ".Tom &- Jerry" },
	};
	struct hk_buf b;
	buf_init(&b);
	for (size_t i = 0; i < HK_ARRAY_LEN(v); i++) {
		assert_int_equal(maildir_dir_from_name(v[i].name, &b), 0);
		assert_string_equal(b.len ? b.data : "", v[i].dir);
		if (v[i].dir[0] == '\0')
			continue;
		assert_int_equal(maildir_name_from_dir(v[i].dir, &b), 0);
		assert_string_equal(b.data, v[i].name);
	}
	/* directories that are not ours (or not canonical) are not folders */
	const char *bad[] = { ".", "..", ".a..b", ".a.", ".\\2f", ".a\\5cb", ".inbox.x", ".&AGE-", ".\\2", ".x\\zz",
		".\\2e", ".INBOX", ".a*", "Work" };
	for (size_t i = 0; i < HK_ARRAY_LEN(bad); i++)
		if (maildir_name_from_dir(bad[i], &b) == 0)
			fail_msg("'%s' decoded to '%s'", bad[i], b.data);
	/* too long on disk: NAME_MAX */
	char name[256];
	for (int i = 0; i < 200; i++)
		name[i] = i % 2 ? '.' : 'a';
	name[199] = 'a';
	name[200] = '\0';
	assert_int_equal(maildir_dir_from_name(name, &b), -1); /* every '.' becomes "\2e" */
	assert_int_equal(errno, ENAMETOOLONG);
	buf_fini(&b);
}

static void
test_store_user_root(void **state)
{
	(void)state;
	char *p = hk_store_user_root("var", "example.jp", "taro");
	assert_string_equal(p, "var/domains/example.jp/users/taro/Maildir");
	free(p);
	const char *bad[] = { "", ".", "..", "a/b", ".x", "a\\b", "nl\n" };
	for (size_t i = 0; i < HK_ARRAY_LEN(bad); i++) {
		assert_null(hk_store_user_root("var", bad[i], "taro"));
		assert_null(hk_store_user_root("var", "example.jp", bad[i]));
	}
}

static void
test_store_flag_names(void **state)
{
	(void)state;
	assert_int_equal(hk_store_flag_from_imap("\\Seen", 5), HK_STORE_SEEN);
	assert_int_equal(hk_store_flag_from_imap("\\FLAGGED", 8), HK_STORE_FLAGGED);
	assert_int_equal(hk_store_flag_from_imap("\\Answered", 9), HK_STORE_ANSWERED);
	assert_int_equal(hk_store_flag_from_imap("\\Deleted", 8), HK_STORE_DELETED);
	assert_int_equal(hk_store_flag_from_imap("\\Draft", 6), HK_STORE_DRAFT);
	assert_int_equal(hk_store_flag_from_imap("$Boss", 5), 0);
}

static void
test_store_reply_mapping(void **state)
{
	(void)state;
	struct hk_store_reply r = hk_store_reply(EDQUOT);
	assert_int_equal(r.code, 452);
	assert_string_equal(r.enhanced, "4.2.2");
	assert_int_equal(hk_store_reply(ENOSPC).code, 452);
	assert_string_equal(hk_store_reply(ENOSPC).enhanced, "4.3.1");
	assert_int_equal(hk_store_reply(EFBIG).code, 552);
	assert_int_equal(hk_store_reply(ENOENT).code, 451);
	assert_int_equal(hk_store_reply(EACCES).code, 451);
	assert_int_equal(hk_store_reply(EIO).code, 451);
	assert_int_equal(hk_store_reply(EROFS).code, 451);
}

/* --- the mailbox ------------------------------------------------------------------ */

static void
test_store_open_creates_layout(void **state)
{
	struct fx *f = *state;
	/* a nested root whose parents do not exist yet */
	char *root = hk_store_user_root(f->dir, "example.jp", "taro");
	struct hk_store *st;
	struct hk_store_settings set = { .create = false };
	assert_int_equal(hk_store_open(root, &set, &st), -1);
	assert_int_equal(errno, ENOENT);
	set.create = true;
	assert_int_equal(hk_store_open(root, &set, &st), 0);
	char p[1024];
	for (const char *const *s = (const char *const[]){ "tmp", "new", "cur", NULL }; *s; s++) {
		snprintf(p, sizeof p, "%s/%s", root, *s);
		assert_true(is_dir(p));
	}
	for (size_t i = 1; hk_store_standard_folders[i]; i++) {
		snprintf(p, sizeof p, "%s/.%s/cur", root, hk_store_standard_folders[i]);
		assert_true(is_dir(p));
		snprintf(p, sizeof p, "%s/.%s/maildirfolder", root, hk_store_standard_folders[i]);
		assert_true(exists(p));
	}
	/* nothing left over in tmp/ from building the folders */
	assert_int_equal(count_dir(root, "tmp"), 0);
	hk_store_close(&st);
	/* opening again without create works now */
	set.create = false;
	assert_int_equal(hk_store_open(root, &set, &st), 0);
	hk_store_close(&st);
	assert_null(st);
	free(root);
}

/* --- delivery ----------------------------------------------------------------------- */

static void
test_store_deliver_lands_in_new(void **state)
{
	struct fx *f = *state;
	char *name = deliver(f, NULL, NULL);
	assert_memory_equal(name, "new/", 4);
	check_name_shape(name + 4, strlen(MSG), strlen(MSG));
	assert_null(strchr(name, ':'));
	char p[1024];
	snprintf(p, sizeof p, "%s/%s", f->root, name);
	size_t len;
	char *data = slurp(p, &len);
	assert_non_null(data);
	assert_int_equal(len, strlen(MSG));
	assert_memory_equal(data, MSG, len);
	free(data);
	struct stat sb;
	assert_int_equal(stat(p, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(count_dir(f->root, "tmp"), 0);
	assert_int_equal(count_dir(f->root, "new"), 1);
	free(name);
	/* names are unique */
	char *a = deliver(f, NULL, NULL), *b = deliver(f, NULL, NULL);
	assert_string_not_equal(a, b);
	free(a);
	free(b);
}

static void
test_store_deliver_vsize_counts_bare_lf(void **state)
{
	struct fx *f = *state;
	const char *lf = "Subject: x\n\nline1\nline2\r\nline3\n";
	char *name = deliver(f, NULL, lf);
	check_name_shape(name + 4, strlen(lf), strlen(lf) + 4);
	free(name);
	/* a CR at the end of one piece and the LF at the start of the next */
	struct hk_store_part parts[2] = { mem("a\r"), mem("\nb\n") };
	assert_int_equal(hk_store_deliver(f->st, NULL, parts, 2, &name), 0);
	check_name_shape(name + 4, 5, 6);
	free(name);
}

static void
test_store_deliver_flags_go_to_cur(void **state)
{
	struct fx *f = *state;
	struct hk_store_deliver_opts o = { .flags = HK_STORE_SEEN | HK_STORE_FLAGGED };
	char *name = deliver(f, &o, NULL);
	assert_memory_equal(name, "cur/", 4);
	const char *info = strstr(name, ":2,");
	assert_non_null(info);
	assert_string_equal(info, ":2,FS");
	char p[1024];
	snprintf(p, sizeof p, "%s/%s", f->root, name);
	assert_true(exists(p));
	assert_int_equal(count_dir(f->root, "new"), 0);
	free(name);

	/* keywords get letters from dovecot-keywords */
	const char *kw[] = { "$Boss", "Work" };
	struct hk_store_deliver_opts o2 = { .flags = HK_STORE_FLAGGED, .keywords = kw, .nkeywords = 2 };
	name = deliver(f, &o2, NULL);
	assert_string_equal(strstr(name, ":2,"), ":2,Fab");
	free(name);
	snprintf(p, sizeof p, "%s/dovecot-keywords", f->root);
	char *data = slurp(p, NULL);
	assert_string_equal(data, "0 $Boss\n1 Work\n");
	free(data);
	/* the same keyword (any case) keeps its letter; a new one gets the next */
	const char *kw2[] = { "work", "$Later" };
	struct hk_store_deliver_opts o3 = { .keywords = kw2, .nkeywords = 2 };
	name = deliver(f, &o3, NULL);
	assert_string_equal(strstr(name, ":2,"), ":2,bc");
	free(name);
	struct hk_store_keywords k;
	assert_int_equal(hk_store_keywords(f->st, "INBOX", &k), 0);
	assert_string_equal(k.names[0], "$Boss");
	assert_string_equal(k.names[2], "$Later");
	assert_null(k.names[3]);
	hk_store_keywords_free(&k);
	snprintf(p, sizeof p, "%s/dovecot-keywords.lock", f->root);
	assert_false(exists(p));
}

static void
test_store_deliver_from_spool_fd(void **state)
{
	struct fx *f = *state;
	char spool[512];
	snprintf(spool, sizeof spool, "%s/spool", f->dir);
	int fd = open(spool, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	/* 300 KB: several buffer fills */
	size_t n = 300 * 1024;
	char *big = malloc(n);
	for (size_t i = 0; i < n; i++)
		big[i] = (char)('a' + i % 26);
	memcpy(big, "Subject: big\r\n\r\n", 16);
	assert_int_equal(write(fd, "JUNK", 4), 4);
	assert_int_equal(write(fd, big, n), (ssize_t)n);
	const char *hdr = "Return-Path: <a@example.jp>\r\nDelivered-To: taro@example.jp\r\n";
	struct hk_store_part parts[2] = { mem(hdr), { .data = NULL, .fd = fd, .off = 4, .len = n } };
	char *name;
	assert_int_equal(hk_store_deliver(f->st, NULL, parts, 2, &name), 0);
	char p[1024];
	snprintf(p, sizeof p, "%s/%s", f->root, name);
	size_t len;
	char *data = slurp(p, &len);
	assert_int_equal(len, strlen(hdr) + n);
	assert_memory_equal(data, hdr, strlen(hdr));
	assert_memory_equal(data + strlen(hdr), big, n);
	free(data);
	free(name);
	/* a spool shorter than it claims is an error, and leaves nothing */
	parts[1].len = n + 10;
	assert_int_equal(hk_store_deliver(f->st, NULL, parts, 2, NULL), -1);
	assert_int_equal(errno, EIO);
	assert_int_equal(count_dir(f->root, "tmp"), 0);
	assert_int_equal(count_dir(f->root, "new"), 1);
	close(fd);
	free(big);
}

static void
test_store_deliver_received_time(void **state)
{
	struct fx *f = *state;
	struct hk_store_deliver_opts o = { .received = 1000000000 };
	char *name = deliver(f, &o, NULL);
	struct hk_store_msg_list l;
	assert_int_equal(hk_store_scan(f->st, NULL, HK_STORE_SCAN_STAT, &l), 0);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.v[0].mtime, 1000000000);
	hk_store_msg_list_free(&l);
	free(name);
}

static void
test_store_deliver_missing_folder(void **state)
{
	struct fx *f = *state;
	struct hk_store_deliver_opts o = { .folder = "Work/Reports" };
	struct hk_store_part p = mem(MSG);
	assert_int_equal(hk_store_deliver(f->st, &o, &p, 1, NULL), -1);
	assert_int_equal(errno, ENOENT);
	assert_non_null(strstr(hk_store_error(f->st), "no folder"));
	o.create_folder = true;
	char *name = deliver(f, &o, NULL);
	char path[1024];
	snprintf(path, sizeof path, "%s/.Work.Reports/%s", f->root, name);
	assert_true(exists(path));
	snprintf(path, sizeof path, "%s/.Work/maildirfolder", f->root); /* the parent too */
	assert_true(exists(path));
	free(name);
	/* an invalid folder name is EINVAL, never a path */
	o.folder = "../../etc";
	assert_int_equal(hk_store_deliver(f->st, &o, &p, 1, NULL), -1);
	assert_int_equal(errno, EINVAL);
	/* fileinto "INBOX" in any case is the root */
	o.folder = "inbox";
	o.create_folder = false;
	name = deliver(f, &o, NULL);
	assert_int_equal(count_dir(f->root, "new"), 1);
	free(name);
	/* a damaged INBOX without tmp/ is repaired */
	snprintf(path, sizeof path, "%s/tmp", f->root);
	assert_int_equal(rmdir(path), 0);
	name = deliver(f, NULL, NULL);
	assert_int_equal(count_dir(f->root, "new"), 2);
	free(name);
}

/* --- folders ------------------------------------------------------------------------- */

static void
test_store_folders_create_list_utf8(void **state)
{
	struct fx *f = *state;
	assert_int_equal(hk_store_folder_create(f->st, "日本語"), 0);
	char p[1024];
	snprintf(p, sizeof p, "%s/.&ZeVnLIqe-/maildirfolder", f->root);
	assert_true(exists(p));
	snprintf(p, sizeof p, "%s/.&ZeVnLIqe-/new", f->root);
	assert_true(is_dir(p));
	assert_int_equal(hk_store_folder_create(f->st, "日本語"), -1);
	assert_int_equal(errno, EEXIST);
	assert_int_equal(hk_store_folder_ensure(f->st, "日本語"), 0);
	assert_true(hk_store_folder_exists(f->st, "日本語"));
	assert_true(hk_store_folder_exists(f->st, "inbox"));
	assert_false(hk_store_folder_exists(f->st, "Nope"));
	assert_int_equal(hk_store_folder_create(f->st, "v1.2"), 0);
	snprintf(p, sizeof p, "%s/.v1\\2e2", f->root);
	assert_true(is_dir(p));
	assert_int_equal(hk_store_folder_create(f->st, "INBOX"), -1);
	assert_int_equal(errno, EEXIST);
	const char *bad[] = { "..", "/x", "a\x01", "a//b", ".x", "a*" };
	for (size_t i = 0; i < HK_ARRAY_LEN(bad); i++) {
		assert_int_equal(hk_store_folder_create(f->st, bad[i]), -1);
		assert_int_equal(errno, EINVAL);
	}
	/* a directory made by some other program is skipped, not trusted */
	snprintf(p, sizeof p, "%s/.bad\\2fname", f->root);
	assert_int_equal(mkdir(p, 0700), 0);

	struct hk_store_folder_list l;
	assert_int_equal(hk_store_folder_list(f->st, &l), 0);
	const char *want[] = { "INBOX", "Drafts", "Junk", "Rejected", "Sent", "Trash", "v1.2", "日本語" };
	assert_int_equal(l.n, HK_ARRAY_LEN(want));
	for (size_t i = 0; i < l.n; i++)
		assert_string_equal(l.v[i].name, want[i]);
	assert_int_equal(l.skipped, 1);
	assert_int_equal(l.v[0].special, HK_STORE_SPECIAL_INBOX);
	assert_int_equal(l.v[3].special, HK_STORE_SPECIAL_REJECTED);
	assert_int_equal(l.v[4].special, HK_STORE_SPECIAL_SENT);
	assert_int_equal(l.v[7].special, HK_STORE_SPECIAL_NONE);
	hk_store_folder_list_free(&l);
	assert_int_equal(count_dir(f->root, "tmp"), 0);
}

static void
test_store_folders_rename_delete(void **state)
{
	struct fx *f = *state;
	assert_int_equal(hk_store_folder_ensure(f->st, "Work/Reports/2024"), 0);
	struct hk_store_deliver_opts o = { .folder = "Work/Reports" };
	free(deliver(f, &o, NULL));
	assert_int_equal(hk_store_folder_rename(f->st, "Work", "仕事"), 0);
	char p[1024];
	/* "仕事" is U+4ED5 U+4E8B */
	snprintf(p, sizeof p, "%s/.&TtVOiw-.Reports.2024", f->root);
	assert_true(is_dir(p));
	assert_false(hk_store_folder_exists(f->st, "Work"));
	assert_false(hk_store_folder_exists(f->st, "Work/Reports"));
	assert_true(hk_store_folder_exists(f->st, "仕事/Reports"));
	struct hk_store_msg_list l;
	assert_int_equal(hk_store_scan(f->st, "仕事/Reports", 0, &l), 0);
	assert_int_equal(l.n, 1);
	hk_store_msg_list_free(&l);

	assert_int_equal(hk_store_folder_rename(f->st, "Nope", "X"), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(hk_store_folder_rename(f->st, "仕事", "Sent"), -1);
	assert_int_equal(errno, EEXIST);
	assert_int_equal(hk_store_folder_rename(f->st, "INBOX", "X"), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(hk_store_folder_rename(f->st, "仕事", "仕事/sub"), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(hk_store_folder_rename(f->st, "仕事", ".."), -1);
	assert_int_equal(errno, EINVAL);

	/* delete: the folder and its messages go, the quota follows */
	struct hk_store_usage u;
	assert_int_equal(hk_store_quota_get(f->st, &u), 0);
	assert_int_equal(u.count, 1);
	assert_int_equal(hk_store_folder_delete(f->st, "仕事/Reports"), 0);
	assert_false(hk_store_folder_exists(f->st, "仕事/Reports"));
	assert_true(hk_store_folder_exists(f->st, "仕事/Reports/2024")); /* children stay (Maildir++) */
	assert_int_equal(hk_store_quota_get(f->st, &u), 0);
	assert_int_equal(u.count, 0);
	assert_int_equal(u.bytes, 0);
	assert_int_equal(hk_store_folder_delete(f->st, "仕事/Reports"), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(hk_store_folder_delete(f->st, "INBOX"), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(count_dir(f->root, "tmp"), 0);
}

static void
test_store_folder_create_race(void **state)
{
	struct fx *f = *state;
	enum { N = 15 };
	pid_t pids[3];
	for (int c = 0; c < 3; c++) {
		pids[c] = fork();
		assert_true(pids[c] >= 0);
		if (pids[c] == 0) {
			struct hk_store *st;
			struct hk_store_settings set = { .create = false };
			if (hk_store_open(f->root, &set, &st) != 0)
				_exit(2);
			for (int i = 0; i < N; i++) {
				char name[64];
				snprintf(name, sizeof name, "Race/%d/leaf", i);
				if (hk_store_folder_ensure(st, name) != 0)
					_exit(3);
			}
			hk_store_close(&st);
			_exit(0);
		}
	}
	for (int c = 0; c < 3; c++) {
		int status;
		assert_int_equal(waitpid(pids[c], &status, 0), pids[c]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	struct hk_store_folder_list l;
	assert_int_equal(hk_store_folder_list(f->st, &l), 0);
	assert_int_equal(l.n, 6 + 1 + 2 * N); /* standard + Race + Race/i + Race/i/leaf */
	hk_store_folder_list_free(&l);
	char p[1024];
	snprintf(p, sizeof p, "%s/.Race.3.leaf/cur", f->root);
	assert_true(is_dir(p));
	/* the losers cleaned up after themselves */
	assert_int_equal(count_dir(f->root, "tmp"), 0);
}

static void
test_store_keywords_full_and_stale_lock(void **state)
{
	struct fx *f = *state;
	char names[27][16];
	const char *kw[27];
	for (int i = 0; i < 27; i++) {
		snprintf(names[i], sizeof names[i], "$k%02d", i);
		kw[i] = names[i];
	}
	/* more keywords than letters in one delivery is refused up front */
	struct hk_store_deliver_opts o = { .keywords = kw, .nkeywords = 27 };
	struct hk_store_part p = mem(MSG);
	assert_int_equal(hk_store_deliver(f->st, &o, &p, 1, NULL), -1);
	assert_int_equal(errno, EINVAL);
	/* 26 fill the letters; the 27th keyword later finds none: the message
	 * is delivered without it */
	o.nkeywords = 26;
	char *name = deliver(f, &o, NULL);
	assert_string_equal(strstr(name, ":2,"), ":2,abcdefghijklmnopqrstuvwxyz");
	free(name);
	struct hk_store_deliver_opts o2 = { .keywords = &kw[26], .nkeywords = 1 };
	name = deliver(f, &o2, NULL);
	assert_memory_equal(name, "new/", 4); /* no flags left: new/ */
	free(name);
	/* a lock left by a crashed writer is broken once stale */
	char lock[1024];
	snprintf(lock, sizeof lock, "%s/.Junk/dovecot-keywords.lock", f->root);
	int fd = open(lock, O_WRONLY | O_CREAT, 0600);
	close(fd);
	struct timespec ts[2] = { { time(NULL) - 120, 0 }, { time(NULL) - 120, 0 } };
	assert_int_equal(utimensat(AT_FDCWD, lock, ts, 0), 0);
	struct hk_store_deliver_opts o3 = { .folder = "Junk", .keywords = kw, .nkeywords = 1 };
	name = deliver(f, &o3, NULL);
	assert_string_equal(strstr(name, ":2,"), ":2,a");
	free(name);
	assert_false(exists(lock));
	/* a damaged keywords file: bad lines are ignored */
	char kf[1024];
	snprintf(kf, sizeof kf, "%s/.Trash/dovecot-keywords", f->root);
	FILE *fp = fopen(kf, "w");
	fputs("0 $ok\n99 $toobig\nx $notnum\n1 bad(kw\n2\n3 $three\n", fp);
	fclose(fp);
	struct hk_store_keywords k;
	assert_int_equal(hk_store_keywords(f->st, "Trash", &k), 0);
	assert_string_equal(k.names[0], "$ok");
	assert_null(k.names[1]);
	assert_null(k.names[2]);
	assert_string_equal(k.names[3], "$three");
	hk_store_keywords_free(&k);
}

static void
test_store_batch_misuse(void **state)
{
	struct fx *f = *state;
	struct hk_store_batch *b = hk_store_batch_new(HK_STORE_SYNC_FSYNC);
	assert_int_equal(hk_store_batch_commit(b), 0);
	struct hk_store_part p = mem(MSG);
	assert_int_equal(hk_store_batch_add(b, f->st, NULL, &p, 1, NULL), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(hk_store_batch_add_rename(b, "a", "b", NULL), -1);
	assert_int_equal(errno, EINVAL);
	hk_store_batch_free(&b);
	b = hk_store_batch_new(HK_STORE_SYNC_FSYNC);
	assert_int_equal(hk_store_batch_add_rename(b, NULL, "b", NULL), -1);
	char nothere[600];
	snprintf(nothere, sizeof nothere, "%s/nothere", f->dir);
	assert_int_equal(hk_store_batch_add_rename(b, nothere, "b", NULL), -1);
	assert_int_equal(errno, ENOENT);
	/* a rename onto an existing file is refused, never replacing it */
	char a[600], c[600];
	snprintf(a, sizeof a, "%s/qa", f->dir);
	snprintf(c, sizeof c, "%s/qc", f->dir);
	close(open(a, O_WRONLY | O_CREAT, 0600));
	close(open(c, O_WRONLY | O_CREAT, 0600));
	size_t i;
	assert_int_equal(hk_store_batch_add_rename(b, a, c, &i), 0);
	assert_int_equal(hk_store_batch_commit(b), -1);
	assert_int_equal(hk_store_batch_result(b, i)->err, EEXIST);
	assert_true(exists(a)); /* the caller's file is left alone */
	hk_store_batch_free(&b);
	assert_true(exists(a));
	/* the stage refuses absurd calls */
	struct hk_store_part many[HK_STORE_PARTS_MAX + 1];
	for (size_t k = 0; k < HK_ARRAY_LEN(many); k++)
		many[k] = mem("x");
	assert_int_equal(hk_store_deliver(f->st, NULL, many, HK_ARRAY_LEN(many), NULL), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(hk_store_deliver(f->st, NULL, many, HK_STORE_PARTS_MAX, NULL), 0);
}

/* --- batches and the committer ------------------------------------------------------- */

static void
check_batch(enum hk_store_sync sync, struct fx *f)
{
	struct hk_store *users[3];
	char roots[3][512];
	for (int u = 0; u < 3; u++) {
		snprintf(roots[u], sizeof roots[u], "%s/u%d-%d/Maildir", f->dir, u, (int)sync);
		struct hk_store_settings set = { .create = true };
		assert_int_equal(hk_store_open(roots[u], &set, &users[u]), 0);
	}
	struct hk_store_batch *b = hk_store_batch_new(sync);
	size_t idx[7];
	for (int u = 0; u < 3; u++) {
		struct hk_store_part p = mem(MSG);
		assert_int_equal(hk_store_batch_add(b, users[u], NULL, &p, 1, &idx[u * 2]), 0);
		struct hk_store_deliver_opts o = { .folder = "Junk", .flags = HK_STORE_SEEN };
		assert_int_equal(hk_store_batch_add(b, users[u], &o, &p, 1, &idx[u * 2 + 1]), 0);
	}
	/* a queue file rides along */
	char qtmp[600], qfin[600];
	snprintf(qtmp, sizeof qtmp, "%s/q.tmp.%d", f->dir, (int)sync);
	snprintf(qfin, sizeof qfin, "%s/q.final.%d", f->dir, (int)sync);
	int fd = open(qtmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_int_equal(write(fd, "queue", 5), 5);
	close(fd);
	assert_int_equal(hk_store_batch_add_rename(b, qtmp, qfin, &idx[6]), 0);
	/* the stores may go before the commit */
	for (int u = 0; u < 3; u++)
		hk_store_close(&users[u]);
	for (int u = 0; u < 3; u++) {
		assert_int_equal(count_dir(roots[u], "new"), 0); /* nothing visible yet */
		assert_int_equal(count_dir(roots[u], "tmp"), 1);
	}
	assert_int_equal(hk_store_batch_count(b), 7);
	assert_int_equal(hk_store_batch_commit(b), 0);
	for (size_t i = 0; i < 7; i++) {
		const struct hk_store_result *r = hk_store_batch_result(b, idx[i]);
		assert_int_equal(r->err, 0);
		if (i < 6) {
			assert_string_equal(r->folder, i % 2 ? "Junk" : "INBOX");
			assert_int_equal(r->size, strlen(MSG));
		}
	}
	assert_null(hk_store_batch_result(b, 7));
	assert_int_equal(hk_store_batch_commit(b), -1); /* once */
	hk_store_batch_free(&b);
	assert_null(b);
	for (int u = 0; u < 3; u++) {
		char junk[2048];
		snprintf(junk, sizeof junk, "%s/.Junk", roots[u]);
		assert_int_equal(count_dir(roots[u], "new"), 1);
		assert_int_equal(count_dir(roots[u], "tmp"), 0);
		assert_int_equal(count_dir(junk, "cur"), 1);
		assert_int_equal(count_dir(junk, "tmp"), 0);
	}
	assert_false(exists(qtmp));
	assert_true(exists(qfin));
}

static void
test_store_batch_commit_fsync(void **state)
{
	check_batch(HK_STORE_SYNC_FSYNC, *state);
}

static void
test_store_batch_commit_syncfs(void **state)
{
	check_batch(HK_STORE_SYNC_SYNCFS, *state);
}

static void
test_store_batch_free_uncommitted_cleans_tmp(void **state)
{
	struct fx *f = *state;
	struct hk_store_batch *b = hk_store_batch_new(HK_STORE_SYNC_FSYNC);
	struct hk_store_part p = mem(MSG);
	for (int i = 0; i < 3; i++)
		assert_int_equal(hk_store_batch_add(b, f->st, NULL, &p, 1, NULL), 0);
	assert_int_equal(count_dir(f->root, "tmp"), 3);
	hk_store_batch_free(&b);
	assert_int_equal(count_dir(f->root, "tmp"), 0);
	assert_int_equal(count_dir(f->root, "new"), 0);
	/* bad pieces are refused before anything is written */
	b = hk_store_batch_new(HK_STORE_SYNC_SYNCFS);
	struct hk_store_part badp = { .data = NULL, .fd = -1, .len = 3 };
	assert_int_equal(hk_store_batch_add(b, f->st, NULL, &badp, 1, NULL), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(hk_store_batch_count(b), 0);
	assert_int_equal(hk_store_batch_commit(b), 0); /* an empty batch commits */
	hk_store_batch_free(&b);
}

struct cthread {
	struct hk_store_committer *c;
	const char *root;
	int n;
	int ok;
};

static void *
committer_worker(void *arg)
{
	struct cthread *t = arg;
	struct hk_store *st;
	struct hk_store_settings set = { .create = false };
	if (hk_store_open(t->root, &set, &st) != 0)
		return NULL;
	for (int i = 0; i < t->n; i++) {
		struct hk_store_batch *b = hk_store_batch_new(HK_STORE_SYNC_SYNCFS);
		struct hk_store_part p = mem(MSG);
		if (hk_store_batch_add(b, st, NULL, &p, 1, NULL) == 0 && hk_store_committer_commit(t->c, b) == 0)
			t->ok++;
		hk_store_batch_free(&b);
	}
	hk_store_close(&st);
	return NULL;
}

static int async_done;
static pthread_mutex_t async_mu = PTHREAD_MUTEX_INITIALIZER;

static void
on_done(struct hk_store_batch *b, void *arg)
{
	(void)arg;
	pthread_mutex_lock(&async_mu);
	if (hk_store_batch_result(b, 0)->err == 0)
		async_done++;
	pthread_mutex_unlock(&async_mu);
}

static void
test_store_committer_groups_sessions(void **state)
{
	struct fx *f = *state;
	struct hk_store_committer *c = hk_store_committer_new(HK_STORE_SYNC_SYNCFS, 2);
	pthread_t th[4];
	struct cthread t[4];
	for (int i = 0; i < 4; i++) {
		t[i] = (struct cthread){ .c = c, .root = f->root, .n = 10 };
		pthread_create(&th[i], NULL, committer_worker, &t[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(t[i].ok, 10);
	}
	assert_int_equal(count_dir(f->root, "new"), 40);
	/* an empty batch (every recipient's copy discarded) commits too */
	struct hk_store_batch *empty = hk_store_batch_new(HK_STORE_SYNC_SYNCFS);
	assert_int_equal(hk_store_committer_commit(c, empty), 0);
	hk_store_batch_free(&empty);
	/* asynchronous: done runs on the committer's thread; free drains */
	struct hk_store_batch *bs[5];
	for (int i = 0; i < 5; i++) {
		bs[i] = hk_store_batch_new(HK_STORE_SYNC_SYNCFS);
		struct hk_store_part p = mem(MSG);
		assert_int_equal(hk_store_batch_add(bs[i], f->st, NULL, &p, 1, NULL), 0);
		hk_store_committer_submit(c, bs[i], on_done, NULL);
	}
	hk_store_committer_free(&c);
	assert_null(c);
	assert_int_equal(async_done, 5);
	for (int i = 0; i < 5; i++)
		hk_store_batch_free(&bs[i]);
	assert_int_equal(count_dir(f->root, "new"), 45);
	assert_int_equal(count_dir(f->root, "tmp"), 0);
}

/* --- quota ---------------------------------------------------------------------------- */

static char *
read_quota_file(struct fx *f)
{
	char p[600];
	snprintf(p, sizeof p, "%s/maildirsize", f->root);
	return slurp(p, NULL);
}

static void
test_store_quota_accounting(void **state)
{
	struct fx *f = *state;
	size_t m = strlen(MSG);
	reopen(f, 10 * m, 5);
	struct hk_store_usage u;
	assert_int_equal(hk_store_quota_get(f->st, &u), 0); /* no file: recalculated and written */
	assert_int_equal(u.bytes, 0);
	assert_int_equal(u.limit.bytes, 10 * m);
	char *q = read_quota_file(f);
	char want[128];
	snprintf(want, sizeof want, "%zuS,5C\n0 0\n", 10 * m);
	assert_string_equal(q, want);
	free(q);
	for (int i = 0; i < 3; i++)
		free(deliver(f, NULL, NULL));
	q = read_quota_file(f);
	snprintf(want, sizeof want, "%zuS,5C\n0 0\n%zu 1\n%zu 1\n%zu 1\n", 10 * m, m, m, m);
	assert_string_equal(q, want);
	free(q);
	assert_int_equal(hk_store_quota_get(f->st, &u), 0);
	assert_int_equal(u.bytes, 3 * m);
	assert_int_equal(u.count, 3);
	/* RCPT with SIZE= */
	assert_int_equal(hk_store_quota_check(f->st, 7 * m), 0);
	assert_int_equal(hk_store_quota_check(f->st, 7 * m + 1), -1);
	assert_int_equal(errno, EDQUOT);
	assert_int_equal(hk_store_quota_check(f->st, 10 * m + 1), -1);
	assert_int_equal(errno, EFBIG);
	/* delivery with the check: the message count limit (5) */
	struct hk_store_deliver_opts o = { .check_quota = true };
	free(deliver(f, &o, NULL));
	free(deliver(f, &o, NULL));
	struct hk_store_part p = mem(MSG);
	assert_int_equal(hk_store_deliver(f->st, &o, &p, 1, NULL), -1);
	assert_int_equal(errno, EDQUOT);
	assert_int_equal(hk_store_reply(errno).code, 452);
	assert_int_equal(count_dir(f->root, "tmp"), 0);
	assert_int_equal(count_dir(f->root, "new"), 5);
	/* the Rejected copy is never refused for quota (counted, though) */
	o.check_quota = false;
	free(deliver(f, &o, NULL));
	assert_int_equal(hk_store_quota_get(f->st, &u), 0);
	assert_int_equal(u.count, 6);
	/* expunge gives it back */
	struct hk_store_msg_list l;
	assert_int_equal(hk_store_scan(f->st, NULL, 0, &l), 0);
	assert_int_equal(hk_store_expunge(f->st, NULL, l.v[0].filename), 0);
	hk_store_msg_list_free(&l);
	assert_int_equal(hk_store_quota_get(f->st, &u), 0);
	assert_int_equal(u.count, 5);
	assert_int_equal(u.bytes, 5 * m);
}

static void
write_quota_file(struct fx *f, const char *text)
{
	char p[600];
	snprintf(p, sizeof p, "%s/maildirsize", f->root);
	FILE *fp = fopen(p, "w");
	fputs(text, fp);
	fclose(fp);
}

static void
test_store_quota_recalculates(void **state)
{
	struct fx *f = *state;
	size_t m = strlen(MSG);
	reopen(f, 1000000, 0);
	free(deliver(f, NULL, NULL));
	struct hk_store_deliver_opts o = { .folder = "Trash" };
	free(deliver(f, &o, NULL));
	struct hk_store_usage u;
	/* damaged, negative, wrong limits, NUL bytes, too large: all scanned again */
	const char *bad[] = { "garbage", "1000000S\n-5 -1\n", "999S\n0 0\n", "1000000S\nx y\n", "1000000S\n0 0",
		"1000000S\n0\0 0\n" };
	for (size_t i = 0; i < HK_ARRAY_LEN(bad); i++) {
		write_quota_file(f, bad[i]);
		assert_int_equal(hk_store_quota_get(f->st, &u), 0);
		assert_int_equal(u.bytes, 2 * m);
		assert_int_equal(u.count, 2);
	}
	char *q = read_quota_file(f);
	char want[128];
	snprintf(want, sizeof want, "1000000S\n%zu 2\n", 2 * m);
	assert_string_equal(q, want);
	free(q);
	/* more than 5120 bytes of appends */
	struct hk_buf b;
	buf_init(&b);
	buf_adds(&b, "1000000S\n0 0\n");
	while (b.len < MAILDIR_QUOTA_FILE_MAX)
		buf_adds(&b, "1 1\n-1 -1\n");
	write_quota_file(f, b.data);
	buf_fini(&b);
	assert_int_equal(hk_store_quota_get(f->st, &u), 0);
	assert_int_equal(u.count, 2);
	/* a file that is believable is believed (no scan) */
	write_quota_file(f, "1000000S\n500 7\n");
	assert_int_equal(hk_store_quota_get(f->st, &u), 0);
	assert_int_equal(u.bytes, 500);
	assert_int_equal(u.count, 7);
	/* over quota with appended lines: checked by a scan before refusing */
	reopen(f, 100, 0);
	write_quota_file(f, "100S\n50 1\n60 1\n");
	assert_int_equal(hk_store_quota_get(f->st, &u), 0);
	assert_int_equal(u.bytes, 2 * m); /* the real usage */
	/* a recalculation can be forced */
	write_quota_file(f, "100S\n1 1\n");
	assert_int_equal(hk_store_quota_recalc(f->st), 0);
	assert_int_equal(hk_store_quota_get(f->st, &u), 0);
	assert_int_equal(u.count, 2);
	/* no limits: "0S" as Dovecot writes it */
	reopen(f, 0, 0);
	assert_int_equal(hk_store_quota_get(f->st, &u), 0);
	q = read_quota_file(f);
	assert_memory_equal(q, "0S\n", 3);
	free(q);
	assert_int_equal(hk_store_quota_check(f->st, 1u << 30), 0);
	/* count only */
	reopen(f, 0, 10);
	assert_int_equal(hk_store_quota_get(f->st, &u), 0);
	q = read_quota_file(f);
	assert_memory_equal(q, "10C\n", 4);
	free(q);
}

static void
test_store_quota_two_processes(void **state)
{
	struct fx *f = *state;
	struct hk_store_usage u;
	assert_int_equal(hk_store_quota_get(f->st, &u), 0);
	enum { PER_CHILD = 40 };
	pid_t pids[2];
	for (int c = 0; c < 2; c++) {
		pids[c] = fork();
		assert_true(pids[c] >= 0);
		if (pids[c] == 0) {
			struct hk_store *st;
			struct hk_store_settings set = { .quota = { 1u << 30, 0 }, .create = false };
			if (hk_store_open(f->root, &set, &st) != 0)
				_exit(2);
			/* sizes differ per child so a lost line would show */
			char text[256];
			snprintf(text, sizeof text, "%s%s", MSG, c ? "and some more text\r\n" : "");
			struct hk_store_part p = mem(text);
			struct hk_store_deliver_opts o = { .check_quota = true };
			for (int i = 0; i < PER_CHILD; i++)
				if (hk_store_deliver(st, &o, &p, 1, NULL) != 0)
					_exit(3);
			hk_store_close(&st);
			_exit(0);
		}
	}
	for (int c = 0; c < 2; c++) {
		int status;
		assert_int_equal(waitpid(pids[c], &status, 0), pids[c]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	reopen(f, 1u << 30, 0);
	assert_int_equal(hk_store_quota_get(f->st, &u), 0);
	uint64_t bytes = u.bytes, count = u.count;
	assert_int_equal(count, 2 * PER_CHILD);
	assert_int_equal(bytes, PER_CHILD * (2 * strlen(MSG) + strlen("and some more text\r\n")));
	/* the appended file agrees with a scan */
	assert_int_equal(hk_store_quota_recalc(f->st), 0);
	assert_int_equal(hk_store_quota_get(f->st, &u), 0);
	assert_int_equal(u.bytes, bytes);
	assert_int_equal(u.count, count);
}

/* --- failures ------------------------------------------------------------------------ */

struct fault {
	enum hk_store_op op;
	int err;
	int skip;   /* let this many matching calls through first */
	int hits;
};

static int
fault_hook(enum hk_store_op op, const char *path, void *arg)
{
	(void)path;
	struct fault *ft = arg;
	if (op != ft->op)
		return 0;
	if (ft->skip > 0) {
		ft->skip--;
		return 0;
	}
	ft->hits++;
	return ft->err;
}

static void
expect_failure(struct fx *f, enum hk_store_op op, int err, int skip, int code)
{
	size_t before_new = count_dir(f->root, "new");
	struct fault ft = { op, err, skip, 0 };
	hk_store_set_fault_hook(fault_hook, &ft);
	struct hk_store_part p = mem(MSG);
	assert_int_equal(hk_store_deliver(f->st, NULL, &p, 1, NULL), -1);
	hk_store_set_fault_hook(NULL, NULL);
	assert_int_equal(errno, err);
	assert_true(ft.hits > 0);
	assert_int_equal(hk_store_reply(err).code, code);
	assert_true(strstr(hk_store_error(f->st), strerror(err)) != NULL);
	/* nothing half-made anywhere */
	assert_int_equal(count_dir(f->root, "tmp"), 0);
	assert_int_equal(count_dir(f->root, "new"), before_new);
}

static void
test_store_failures_are_precise(void **state)
{
	struct fx *f = *state;
	expect_failure(f, HK_STORE_OP_WRITE, ENOSPC, 0, 452);
	expect_failure(f, HK_STORE_OP_WRITE, EDQUOT, 0, 452);
	expect_failure(f, HK_STORE_OP_OPEN, EACCES, 0, 451);
	expect_failure(f, HK_STORE_OP_SYNC, EIO, 0, 451);      /* the file's fsync */
	expect_failure(f, HK_STORE_OP_RENAME, EROFS, 0, 451);
	/* the directory's fsync fails after the rename: the file is taken
	 * back out of new/ so the sender's retry makes no duplicate */
	expect_failure(f, HK_STORE_OP_SYNC, EIO, 1, 451);
	/* and with syncfs, both phases */
	for (int skip = 0; skip < 2; skip++) {
		struct fault ft = { HK_STORE_OP_SYNC, ENOSPC, skip, 0 };
		struct hk_store_batch *b = hk_store_batch_new(HK_STORE_SYNC_SYNCFS);
		struct hk_store_part p = mem(MSG);
		assert_int_equal(hk_store_batch_add(b, f->st, NULL, &p, 1, NULL), 0);
		assert_int_equal(hk_store_batch_add(b, f->st, NULL, &p, 1, NULL), 0);
		hk_store_set_fault_hook(fault_hook, &ft);
		assert_int_equal(hk_store_batch_commit(b), -1);
		hk_store_set_fault_hook(NULL, NULL);
		assert_int_equal(hk_store_batch_result(b, 0)->err, ENOSPC);
		assert_int_equal(hk_store_batch_result(b, 1)->err, ENOSPC);
		assert_non_null(strstr(hk_store_batch_result(b, 1)->error, "syncfs"));
		hk_store_batch_free(&b);
		assert_int_equal(count_dir(f->root, "tmp"), 0);
		assert_int_equal(count_dir(f->root, "new"), 0);
	}
	/* mkdir failing while creating a folder */
	struct fault ft = { HK_STORE_OP_MKDIR, ENOSPC, 0, 0 };
	hk_store_set_fault_hook(fault_hook, &ft);
	assert_int_equal(hk_store_folder_create(f->st, "New"), -1);
	hk_store_set_fault_hook(NULL, NULL);
	assert_int_equal(errno, ENOSPC);
	assert_false(hk_store_folder_exists(f->st, "New"));
	assert_int_equal(count_dir(f->root, "tmp"), 0);
}

static void
test_store_efbig_from_rlimit_fsize(void **state)
{
	struct fx *f = *state;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		signal(SIGXFSZ, SIG_IGN); /* as the server must: EFBIG instead of death */
		struct rlimit rl = { 4096, 4096 };
		if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
			_exit(10);
		size_t n = 100000;
		char *big = malloc(n + 1);
		memset(big, 'x', n);
		big[n] = '\0';
		struct hk_store_part p = mem(big);
		int r = hk_store_deliver(f->st, NULL, &p, 1, NULL);
		_exit(r == -1 && errno == EFBIG ? 0 : 11);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(hk_store_reply(EFBIG).code, 552);
	assert_int_equal(count_dir(f->root, "tmp"), 0);
	assert_int_equal(count_dir(f->root, "new"), 0);
}

/* --- Rejected ---------------------------------------------------------------------------- */

static void
test_store_rejected_headers(void **state)
{
	struct fx *f = *state;
	const char raw[] = "From: spammer@example.com\r\nSubject: buy now\r\nX-Spam: yes\r\n\r\nthe body is not kept\r\n";
	struct hk_message *msg = hk_message_new(raw, sizeof raw - 1, NULL);
	assert_non_null(msg);
	struct hk_action a = { .kind = ACT_REJECT, .rule = 0xFFFF, .mask = 1 };
	a.arg[0] = HK_STR("spam");
	struct hk_compose_ctx c = { .hostname = HK_STR("mx.example.jp"), .now = 1700000000 };
	struct hk_store_batch *b = hk_store_batch_new(HK_STORE_SYNC_FSYNC);
	size_t i;
	/* the Rejected folder is recreated when a user deleted it */
	assert_int_equal(hk_store_folder_delete(f->st, "Rejected"), 0);
	assert_int_equal(hk_store_batch_add_rejected(b, f->st, msg, NULL, &a, &c, &i), 0);
	assert_int_equal(hk_store_batch_commit(b), 0);
	const struct hk_store_result *r = hk_store_batch_result(b, i);
	assert_string_equal(r->folder, "Rejected");
	char p[1024];
	snprintf(p, sizeof p, "%s/.Rejected/%s", f->root, r->filename);
	char *data = slurp(p, NULL);
	assert_non_null(data);
	assert_non_null(strstr(data, "X-Hikyaku-Rejected: rejected: spam\r\n"));
	assert_non_null(strstr(data, "Subject: buy now\r\n"));
	assert_null(strstr(data, "the body"));
	free(data);
	struct hk_store_msg_list l;
	assert_int_equal(hk_store_scan(f->st, "Rejected", HK_STORE_SCAN_STAT, &l), 0);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.v[0].mtime, 1700000000);
	hk_store_msg_list_free(&l);
	hk_store_batch_free(&b);
	hk_message_free(&msg);
}

/* --- the read side ------------------------------------------------------------------------- */

static void
test_store_scan_flags_expunge(void **state)
{
	struct fx *f = *state;
	char *n1 = deliver(f, NULL, NULL), *n2 = deliver(f, NULL, "Subject: two\r\n\r\n");
	struct hk_store_deliver_opts o = { .flags = HK_STORE_SEEN };
	char *n3 = deliver(f, &o, NULL);
	struct hk_store_msg_list l;
	assert_int_equal(hk_store_scan(f->st, "INBOX", 0, &l), 0);
	assert_int_equal(l.n, 3);
	int recent = 0, seen = 0;
	for (size_t i = 0; i < l.n; i++) {
		recent += l.v[i].recent;
		seen += (l.v[i].flags & HK_STORE_SEEN) != 0;
		assert_true(l.v[i].size > 0);
		assert_int_equal(l.v[i].mtime, 0); /* no stat asked for */
	}
	assert_int_equal(recent, 2);
	assert_int_equal(seen, 1);
	hk_store_msg_list_free(&l);

	/* flags: a rename into cur/; the base name stays */
	char *nn;
	assert_int_equal(hk_store_set_flags(f->st, NULL, n1, HK_STORE_SEEN | HK_STORE_ANSWERED, 1u << 2, &nn), 0);
	assert_memory_equal(nn, "cur/", 4);
	assert_string_equal(strstr(nn, ":2,"), ":2,RSc");
	struct hk_str b1 = hk_store_base_name(n1), b2 = hk_store_base_name(nn);
	assert_true(str_eq(b1, b2));
	/* the old name is gone: another session would get ENOENT and rescan */
	assert_int_equal(hk_store_set_flags(f->st, NULL, n1, 0, 0, NULL), -1);
	assert_int_equal(errno, ENOENT);
	/* clearing flags keeps ":2," in cur/ */
	char *nn2;
	assert_int_equal(hk_store_set_flags(f->st, NULL, nn, 0, 0, &nn2), 0);
	assert_string_equal(strstr(nn2, ":2,"), ":2,");
	/* same flags: nothing to do */
	char *nn3;
	assert_int_equal(hk_store_set_flags(f->st, NULL, nn2, 0, 0, &nn3), 0);
	assert_string_equal(nn2, nn3);

	int fd = hk_store_open_message(f->st, NULL, n2);
	assert_true(fd >= 0);
	char buf[64];
	assert_int_equal(read(fd, buf, sizeof buf), 16);
	assert_memory_equal(buf, "Subject: two\r\n\r\n", 16);
	close(fd);

	assert_int_equal(hk_store_expunge(f->st, NULL, n3), 0);
	assert_int_equal(hk_store_expunge(f->st, NULL, n3), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(hk_store_scan(f->st, NULL, HK_STORE_SCAN_STAT, &l), 0);
	assert_int_equal(l.n, 2);
	assert_true(l.v[0].mtime > 0);
	hk_store_msg_list_free(&l);

	/* names from a session are checked: never a path outside the folder */
	const char *bad[] = { "../x", "new/../../x", "tmp/x", "new/", "cur/.hidden", "new/a/b", "x" };
	for (size_t i = 0; i < HK_ARRAY_LEN(bad); i++) {
		assert_int_equal(hk_store_expunge(f->st, NULL, bad[i]), -1);
		assert_int_equal(errno, EINVAL);
		assert_int_equal(hk_store_open_message(f->st, NULL, bad[i]), -1);
		assert_int_equal(hk_store_set_flags(f->st, NULL, bad[i], 0, 0, NULL), -1);
	}
	assert_int_equal(hk_store_scan(f->st, "Nope", 0, &l), -1);
	assert_int_equal(errno, ENOENT);
	free(n1);
	free(n2);
	free(n3);
	free(nn);
	free(nn2);
	free(nn3);
}

static void
test_store_base_name(void **state)
{
	(void)state;
	struct hk_str b = hk_store_base_name("cur/1.M2P3.host,S=5,W=6:2,S");
	assert_int_equal(b.len, strlen("1.M2P3.host,S=5,W=6"));
	assert_memory_equal(b.ptr, "1.M2P3.host,S=5,W=6", b.len);
	b = hk_store_base_name("new/1.M2P3.host");
	assert_int_equal(b.len, strlen("1.M2P3.host"));
	/* sizes in foreign names: strict digits */
	struct maildir_info info;
	maildir_parse_filename("1.x,S=12x,S=34:2,FSab", &info);
	assert_true(info.has_size);
	assert_int_equal(info.size, 34);
	assert_false(info.has_vsize);
	assert_int_equal(info.flags, HK_STORE_FLAGGED | HK_STORE_SEEN);
	assert_int_equal(info.kw, 3);
	maildir_parse_filename("1.x,S=99999999999999999999999", &info);
	assert_false(info.has_size);
}

static void
test_store_clean_tmp(void **state)
{
	struct fx *f = *state;
	char p[1024];
	const char *names[] = { "tmp/old", "tmp/fresh", ".Junk/tmp/old2" };
	for (size_t i = 0; i < 3; i++) {
		snprintf(p, sizeof p, "%s/%s", f->root, names[i]);
		int fd = open(p, O_WRONLY | O_CREAT, 0600);
		assert_true(fd >= 0);
		close(fd);
		if (strstr(names[i], "old")) {
			struct timespec ts[2] = { { time(NULL) - HK_STORE_TMP_MAX_AGE - 60, 0 },
				{ time(NULL) - HK_STORE_TMP_MAX_AGE - 60, 0 } };
			assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
		}
	}
	size_t removed;
	assert_int_equal(hk_store_clean_tmp(f->st, HK_STORE_TMP_MAX_AGE, &removed), 0);
	assert_int_equal(removed, 2);
	assert_int_equal(count_dir(f->root, "tmp"), 1);
	assert_int_equal(hk_store_clean_tmp(f->st, 0, &removed), 0);
	assert_int_equal(removed, 1);
	assert_int_equal(count_dir(f->root, "tmp"), 0);
}

/* --- crash safety ----------------------------------------------------------------------- */

/* Message n: headers, a body of a size that varies up to ~600 KB (so kills
 * land inside writes too), and an END line; check_message verifies it. */
static char *
crash_message(unsigned n, size_t *len_r)
{
	size_t body = (n * 7919u) % (600 * 1024);
	struct hk_buf b;
	buf_init(&b);
	buf_printf(&b, "X-Seq: %u\r\nX-Body: %zu\r\n\r\n", n, body);
	buf_reserve(&b, body + 16);
	for (size_t i = 0; i < body; i++)
		b.data[b.len + i] = (char)('a' + (n + i) % 26);
	b.len += body;
	buf_printf(&b, "\r\nEND %u\r\n", n);
	*len_r = b.len;
	return buf_steal(&b);
}

static void
check_message(const char *path)
{
	size_t len = 0;
	char *data = slurp(path, &len);
	assert_non_null(data);
	unsigned n;
	assert_int_equal(sscanf(data, "X-Seq: %u", &n), 1);
	size_t want_len;
	char *want = crash_message(n, &want_len);
	if (len != want_len || memcmp(data, want, len) != 0)
		fail_msg("%s: %zu bytes, expected %zu (partial or corrupt message in new/)", path, len, want_len);
	struct maildir_info info;
	maildir_parse_filename(strrchr(path, '/') + 1, &info);
	assert_int_equal(info.size, len);
	free(want);
	free(data);
}

static void
crash_child(const char *root, int wfd, unsigned first)
{
	struct hk_store *st;
	struct hk_store_settings set = { .create = false };
	if (hk_store_open(root, &set, &st) != 0)
		_exit(2);
	for (unsigned n = first;; n++) {
		size_t len;
		char *m = crash_message(n, &len);
		struct hk_store_part p = { .data = m, .fd = -1, .len = len };
		char *name;
		if (hk_store_deliver(st, NULL, &p, 1, &name) != 0)
			_exit(3);
		char line[512];
		int k = snprintf(line, sizeof line, "%s\n", name);
		if (write(wfd, line, (size_t)k) != k)
			_exit(4);
		free(name);
		free(m);
	}
}

static void
test_store_crash_safety_kill9(void **state)
{
	struct fx *f = *state;
	srand((unsigned)getpid() ^ (unsigned)time(NULL));
	char **reported = NULL;
	size_t nrep = 0;
	enum { ROUNDS = 20 };
	for (int round = 0; round < ROUNDS; round++) {
		int pfd[2];
		assert_int_equal(pipe(pfd), 0);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(pfd[0]);
			crash_child(f->root, pfd[1], (unsigned)round * 100000u);
		}
		close(pfd[1]);
		if (round == ROUNDS - 1) {
			/* however slow the disk, at least one delivery is checked */
			struct pollfd pf = { .fd = pfd[0], .events = POLLIN };
			(void)poll(&pf, 1, 10000);
		}
		struct timespec t = { 0, (long)(1 + rand() % 60) * 1000000L };
		nanosleep(&t, NULL);
		kill(pid, SIGKILL);
		int status;
		assert_int_equal(waitpid(pid, &status, 0), pid);
		if (!WIFSIGNALED(status))
			fail_msg("child ended by itself: status %d", status);
		/* what the child was told had succeeded */
		struct hk_buf in;
		buf_init(&in);
		char chunk[4096];
		ssize_t r;
		while ((r = read(pfd[0], chunk, sizeof chunk)) > 0)
			buf_add(&in, chunk, (size_t)r);
		close(pfd[0]);
		for (char *line = in.data; line && *line;) {
			char *nl = strchr(line, '\n');
			if (nl == NULL)
				break; /* a half-written report line: not reported */
			*nl = '\0';
			reported = realloc(reported, (nrep + 1) * sizeof *reported);
			reported[nrep++] = strdup(line);
			line = nl + 1;
		}
		buf_fini(&in);
	}
	/* every reported delivery is in new/ exactly once; nothing in new/ is
	 * partial; all base names are distinct */
	char **files;
	size_t nfiles = list_dir(f->root, "new", &files);
	char p[1024];
	for (size_t i = 0; i < nfiles; i++) {
		snprintf(p, sizeof p, "%s/new/%s", f->root, files[i]);
		check_message(p);
		for (size_t j = 0; j < i; j++) {
			struct hk_str a = hk_store_base_name(files[i]), b = hk_store_base_name(files[j]);
			assert_false(str_eq(a, b));
		}
	}
	for (size_t i = 0; i < nrep; i++) {
		assert_memory_equal(reported[i], "new/", 4);
		int found = 0;
		for (size_t j = 0; j < nfiles; j++)
			found += strcmp(files[j], reported[i] + 4) == 0;
		if (found != 1)
			fail_msg("%s reported delivered, found %d times in new/", reported[i], found);
	}
	print_message("crash safety: %d kills, %zu deliveries reported, %zu files in new/, %zu left in tmp/\n", ROUNDS,
	    nrep, nfiles, count_dir(f->root, "tmp"));
	assert_true(nrep > 0);
	/* leftovers in tmp/ are allowed; cleaning removes them */
	size_t removed;
	assert_int_equal(hk_store_clean_tmp(f->st, 0, &removed), 0);
	assert_int_equal(count_dir(f->root, "tmp"), 0);
	free_names(files, nfiles);
	free_names(reported, nrep);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_store_folder_names_valid),
		T(test_store_folder_names_invalid),
		T(test_store_mutf7_vectors),
		T(test_store_dir_names_dovecot_layout),
		T(test_store_user_root),
		T(test_store_flag_names),
		T(test_store_reply_mapping),
		T(test_store_open_creates_layout),
		T(test_store_deliver_lands_in_new),
		T(test_store_deliver_vsize_counts_bare_lf),
		T(test_store_deliver_flags_go_to_cur),
		T(test_store_deliver_from_spool_fd),
		T(test_store_deliver_received_time),
		T(test_store_deliver_missing_folder),
		T(test_store_folders_create_list_utf8),
		T(test_store_folders_rename_delete),
		T(test_store_folder_create_race),
		T(test_store_keywords_full_and_stale_lock),
		T(test_store_batch_misuse),
		T(test_store_batch_commit_fsync),
		T(test_store_batch_commit_syncfs),
		T(test_store_batch_free_uncommitted_cleans_tmp),
		T(test_store_committer_groups_sessions),
		T(test_store_quota_accounting),
		T(test_store_quota_recalculates),
		T(test_store_quota_two_processes),
		T(test_store_failures_are_precise),
		T(test_store_efbig_from_rlimit_fsize),
		T(test_store_rejected_headers),
		T(test_store_scan_flags_expunge),
		T(test_store_base_name),
		T(test_store_clean_tmp),
		T(test_store_crash_safety_kill9),
	};
	return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
