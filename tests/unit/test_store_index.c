/*
 * test_store_index.c - unit tests of the store's IMAP UID index
 * (runtime/maildir_index.c, API in store.h): UID assignment in delivery
 * order, stability across reopening, losing or damaging the index (and
 * the UIDVALIDITY file), concurrent syncers in threads and in a forked
 * process, flag changes made by renames outside the API (MODSEQ bumps),
 * expunge detection, APPEND with a UID, expunge by UID, STORE with
 * UNCHANGEDSINCE, a failing index write, and the time of syncing a
 * 10,000-message folder (printed, not asserted).
 *
 * Each test works in its own directory under $TMPDIR (or /tmp).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "maildir.h"
#include "store.h"

/* --- fixture and helpers ---------------------------------------------------- */

struct fx {
	char dir[256];
	char root[320];
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

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	const char *t = getenv("TMPDIR");
	snprintf(f->dir, sizeof f->dir, "%s/hk-uidx.XXXXXX", t && *t ? t : "/tmp");
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
	nftw(f->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static const char MSG[] = "From: a@example.jp\r\nSubject: hi\r\n\r\nbody\r\n";

static char *
deliver(struct fx *f, const char *folder)
{
	struct hk_store_part p = { .data = MSG, .fd = -1, .len = strlen(MSG) };
	struct hk_store_deliver_opts o = { .folder = folder };
	char *name = NULL;
	assert_int_equal(hk_store_deliver(f->st, &o, &p, 1, &name), 0);
	return name;
}

/* A file written by hand into root/sub/name (another program's delivery). */
static void
put(struct fx *f, const char *sub, const char *name)
{
	char p[1024];
	snprintf(p, sizeof p, "%s/%s/%s", f->root, sub, name);
	FILE *fp = fopen(p, "w");
	assert_non_null(fp);
	fputs(MSG, fp);
	fclose(fp);
}

static void
sync_ok(struct fx *f, const struct hk_store_view *prev, struct hk_store_view *v)
{
	int r = hk_store_sync(f->st, NULL, prev, v);
	if (r != 0)
		print_error("sync: %s\n", hk_store_error(f->st));
	assert_int_equal(r, 0);
	for (size_t i = 1; i < v->n; i++)
		assert_true(v->v[i - 1].uid < v->v[i].uid);
	for (size_t i = 0; i < v->n; i++) {
		assert_true(v->v[i].uid < v->uidnext);
		assert_true(v->v[i].modseq <= v->highestmodseq);
	}
}

static char *
ipath(struct fx *f, const char *name)
{
	return xasprintf("%s/%s", f->root, name);
}

static ino_t
inode_of(struct fx *f, const char *name)
{
	char *p = ipath(f, name);
	struct stat sb;
	int r = stat(p, &sb);
	free(p);
	return r == 0 ? sb.st_ino : 0;
}

static void
write_file(struct fx *f, const char *name, const char *data, size_t len)
{
	char *p = ipath(f, name);
	FILE *fp = fopen(p, "w");
	assert_non_null(fp);
	assert_int_equal(fwrite(data, 1, len, fp), len);
	fclose(fp);
	free(p);
}

static void
unlink_file(struct fx *f, const char *name)
{
	char *p = ipath(f, name);
	(void)unlink(p);
	free(p);
}

/* The UID the view gives the message with this identity, 0 when none. */
static uint32_t
uid_of(const struct hk_store_view *v, struct hk_str id)
{
	for (size_t i = 0; i < v->n; i++)
		if (str_eq(hk_store_identity(v->v[i].filename), id))
			return v->v[i].uid;
	return 0;
}

static double
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* --- tests ------------------------------------------------------------------ */

static void
test_store_index_identity(void **state)
{
	(void)state;
	struct hk_str id = hk_store_identity("cur/1.M2P3.h,S=5,W=6,U=42:2,S");
	assert_int_equal(id.len, strlen("1.M2P3.h,S=5,W=6"));
	assert_memory_equal(id.ptr, "1.M2P3.h,S=5,W=6", id.len);
	id = hk_store_identity("new/1.M2P3.h,S=5");
	assert_int_equal(id.len, strlen("1.M2P3.h,S=5"));
	/* only a trailing, well-formed field is the UID note */
	id = hk_store_identity("new/1.x,U=,S=5");
	assert_int_equal(id.len, strlen("1.x,U=,S=5"));
	id = hk_store_identity("new/1.x,U=12345678901");
	assert_int_equal(id.len, strlen("1.x,U=12345678901"));
	assert_int_equal(maildir_index_name_uid("cur/1.x,S=5,U=7:2,S"), 7);
	assert_int_equal(maildir_index_name_uid("cur/1.x,S=5,U=07:2,S"), 0);
	assert_int_equal(maildir_index_name_uid("cur/1.x,S=5,U=0"), 0);
	assert_int_equal(maildir_index_name_uid("cur/1.x,S=5,U=4294967295"), 0);
	assert_int_equal(maildir_index_name_uid("new/1.x,S=5"), 0);
}

static void
test_store_index_assign_and_unchanged(void **state)
{
	struct fx *f = *state;
	char *n[3];
	for (int i = 0; i < 3; i++)
		n[i] = deliver(f, NULL);
	struct hk_store_view v;
	sync_ok(f, NULL, &v);
	assert_int_equal(v.n, 3);
	assert_true(v.uidvalidity > 0);
	assert_int_equal(v.uidnext, 4);
	assert_false(v.rebuilt); /* a first sync is no loss */
	assert_false(v.uidvalidity_changed);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(v.v[i].uid, (uint32_t)i + 1);
		assert_int_equal(uid_of(&v, hk_store_identity(n[i])), i + 1); /* delivery order */
		assert_int_equal(maildir_index_name_uid(v.v[i].filename), i + 1);
		assert_true(v.v[i].in_new);
		assert_int_equal(v.v[i].size, strlen(MSG));
		assert_true(v.v[i].modseq >= 1);
	}
	/* a second sync changes nothing and writes nothing */
	ino_t ino = inode_of(f, MAILDIR_UIDX_FILE), vino = inode_of(f, MAILDIR_UIDX_VALIDITY);
	assert_true(ino != 0 && vino != 0);
	struct hk_store_view v2;
	sync_ok(f, &v, &v2);
	assert_int_equal(inode_of(f, MAILDIR_UIDX_FILE), ino);
	assert_int_equal(inode_of(f, MAILDIR_UIDX_VALIDITY), vino);
	assert_int_equal(v2.nexpunged, 0);
	assert_int_equal(v2.highestmodseq, v.highestmodseq);
	assert_false(v2.rebuilt);
	/* and a new message is the only change */
	char *n4 = deliver(f, NULL);
	struct hk_store_view v3;
	sync_ok(f, &v2, &v3);
	assert_int_equal(v3.n, 4);
	assert_int_equal(uid_of(&v3, hk_store_identity(n4)), 4);
	assert_true(v3.v[3].modseq > v2.highestmodseq);
	for (int i = 0; i < 3; i++)
		assert_true(v3.v[i].modseq <= v2.highestmodseq);
	hk_store_view_free(&v);
	hk_store_view_free(&v2);
	hk_store_view_free(&v3);
	for (int i = 0; i < 3; i++)
		free(n[i]);
	free(n4);
}

static void
test_store_index_stable_order(void **state)
{
	struct fx *f = *state;
	/* readdir order is the file system's: UIDs follow the names' time */
	put(f, "new", "1700000003.M5P1Q1.h,S=42");
	put(f, "new", "1700000001.M900P1Q1.h,S=42");
	put(f, "cur", "1700000001.M10P1Q1.h,S=42:2,S");
	put(f, "new", "1700000002.M1P1Q1.h");
	put(f, "new", "foreign-name");
	struct hk_store_view v;
	sync_ok(f, NULL, &v);
	assert_int_equal(v.n, 5);
	const char *order[] = { "foreign-name", "1700000001.M10P1Q1.h,S=42", "1700000001.M900P1Q1.h,S=42",
		"1700000002.M1P1Q1.h", "1700000003.M5P1Q1.h,S=42" };
	for (size_t i = 0; i < 5; i++) {
		struct hk_str id = hk_store_identity(v.v[i].filename);
		assert_int_equal(id.len, strlen(order[i]));
		assert_memory_equal(id.ptr, order[i], id.len);
	}
	assert_int_equal(v.v[1].flags, HK_STORE_SEEN);
	assert_false(v.v[1].in_new);
	assert_string_equal(strchr(v.v[1].filename, ':'), ":2,S"); /* ,U= goes before the info */
	hk_store_view_free(&v);
}

static void
test_store_index_reopen_keeps_uids(void **state)
{
	struct fx *f = *state;
	assert_int_equal(hk_store_folder_create(f->st, "Work"), 0);
	for (int i = 0; i < 5; i++)
		free(deliver(f, "Work"));
	struct hk_store_view v, v2;
	assert_int_equal(hk_store_sync(f->st, "Work", NULL, &v), 0);
	assert_int_equal(v.n, 5);
	char *wdir = ipath(f, ".Work/" MAILDIR_UIDX_FILE);
	struct stat sb;
	assert_int_equal(stat(wdir, &sb), 0); /* the folder's own index */
	free(wdir);
	hk_store_close(&f->st);
	struct hk_store_settings set = { 0 };
	assert_int_equal(hk_store_open(f->root, &set, &f->st), 0);
	assert_int_equal(hk_store_sync(f->st, "Work", &v, &v2), 0);
	assert_int_equal(v2.uidvalidity, v.uidvalidity);
	assert_int_equal(v2.uidnext, v.uidnext);
	assert_int_equal(v2.n, 5);
	for (size_t i = 0; i < 5; i++) {
		assert_int_equal(v2.v[i].uid, v.v[i].uid);
		assert_string_equal(v2.v[i].filename, v.v[i].filename);
	}
	/* INBOX has its own numbering */
	struct hk_store_view vi;
	sync_ok(f, NULL, &vi);
	assert_int_equal(vi.n, 0);
	assert_int_equal(vi.uidnext, 1);
	hk_store_view_free(&v);
	hk_store_view_free(&v2);
	hk_store_view_free(&vi);
}

static void
test_store_index_recreated_folder_new_uidvalidity(void **state)
{
	struct fx *f = *state;
	/* deleted and created again within a second: "Work" UID 1 must not
	 * name the old message under the same UIDVALIDITY */
	uint32_t seen[6];
	for (int i = 0; i < 3; i++) {
		assert_int_equal(hk_store_folder_create(f->st, "Work"), 0);
		free(deliver(f, "Work"));
		struct hk_store_view v;
		assert_int_equal(hk_store_sync(f->st, "Work", NULL, &v), 0);
		assert_int_equal(v.v[0].uid, 1);
		seen[i] = v.uidvalidity;
		hk_store_view_free(&v);
		assert_int_equal(hk_store_folder_delete(f->st, "Work"), 0);
	}
	/* and folders numbered in the same second all differ */
	const char *names[] = { "A", "B", "C" };
	for (int i = 0; i < 3; i++) {
		assert_int_equal(hk_store_folder_create(f->st, names[i]), 0);
		struct hk_store_view v;
		assert_int_equal(hk_store_sync(f->st, names[i], NULL, &v), 0);
		seen[3 + i] = v.uidvalidity;
		hk_store_view_free(&v);
	}
	for (int i = 1; i < 6; i++)
		assert_true(seen[i] > seen[i - 1]);
}

static void
test_store_index_lost_keeps_uids(void **state)
{
	struct fx *f = *state;
	for (int i = 0; i < 6; i++)
		free(deliver(f, NULL));
	struct hk_store_view v, v2, v3;
	sync_ok(f, NULL, &v);
	/* the highest UID is expunged before the loss: it must never come back */
	assert_int_equal(hk_store_expunge(f->st, NULL, v.v[5].filename), 0);
	sync_ok(f, &v, &v2);
	assert_int_equal(v2.nexpunged, 1);
	assert_int_equal(v2.expunged[0], 6);
	hk_store_view_free(&v2);

	unlink_file(f, MAILDIR_UIDX_FILE);
	sync_ok(f, &v, &v2);
	assert_true(v2.rebuilt);
	assert_string_equal(v2.rebuilt_why, "missing");
	assert_false(v2.uidvalidity_changed);
	assert_int_equal(v2.uidvalidity, v.uidvalidity);
	assert_int_equal(v2.n, 5);
	for (size_t i = 0; i < 5; i++)
		assert_int_equal(v2.v[i].uid, v.v[i].uid);
	assert_true(v2.uidnext > 6);
	/* every MODSEQ is above anything given before: CONDSTORE clients refetch */
	for (size_t i = 0; i < 5; i++)
		assert_true(v2.v[i].modseq > v.highestmodseq);
	char *n = deliver(f, NULL);
	sync_ok(f, &v2, &v3);
	assert_int_equal(v3.n, 6);
	assert_true(uid_of(&v3, hk_store_identity(n)) > 6);
	assert_int_equal(uid_of(&v3, hk_store_identity(n)), v2.uidnext);
	hk_store_view_free(&v);
	hk_store_view_free(&v2);
	hk_store_view_free(&v3);
	free(n);
}

static void
test_store_index_uidvalidity_lost(void **state)
{
	struct fx *f = *state;
	for (int i = 0; i < 3; i++)
		free(deliver(f, NULL));
	struct hk_store_view v, v2, v3;
	sync_ok(f, NULL, &v);
	/* the reserve file alone: rewritten from the index, nothing changes */
	unlink_file(f, MAILDIR_UIDX_VALIDITY);
	free(deliver(f, NULL));
	sync_ok(f, &v, &v2);
	assert_false(v2.rebuilt);
	assert_int_equal(v2.uidvalidity, v.uidvalidity);
	assert_true(inode_of(f, MAILDIR_UIDX_VALIDITY) != 0);
	/* both, with a damaged index whose header still says the old value:
	 * a new UIDVALIDITY strictly greater */
	char hdr[128];
	int hl = snprintf(hdr, sizeof hdr, "hikyaku-uidlist 1 %u 5 9 100\n1 1 - x\n", (unsigned)v.uidvalidity);
	write_file(f, MAILDIR_UIDX_FILE, hdr, (size_t)hl);
	unlink_file(f, MAILDIR_UIDX_VALIDITY);
	sync_ok(f, &v2, &v3);
	assert_true(v3.rebuilt);
	assert_true(v3.uidvalidity_changed);
	assert_true(v3.uidvalidity > v.uidvalidity);
	assert_int_equal(v3.n, 4);
	assert_int_equal(v3.nexpunged, 4); /* another UIDVALIDITY: every old UID is gone */
	/* the names' UIDs are still used under the new UIDVALIDITY */
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(v3.v[i].uid, v2.v[i].uid);
	hk_store_view_free(&v);
	hk_store_view_free(&v2);
	hk_store_view_free(&v3);
}

static void
test_store_index_damaged_rebuilt(void **state)
{
	struct fx *f = *state;
	for (int i = 0; i < 4; i++)
		free(deliver(f, NULL));
	struct hk_store_view v;
	sync_ok(f, NULL, &v);
	char *good;
	size_t glen;
	char *gp = ipath(f, MAILDIR_UIDX_FILE);
	assert_int_equal(read_file(gp, 1 << 20, &good, &glen), 0);
	free(gp);
	size_t dummy;
	assert_int_equal(maildir_index_parse_check(good, glen, &dummy), 0);
	assert_int_equal(dummy, 4);

	char *huge = xmalloc(HK_STORE_UIDX_LINE_MAX * 4);
	memset(huge, 'a', HK_STORE_UIDX_LINE_MAX * 4);
	struct hk_buf b;
	buf_init(&b);
	const char *first_nl = strchr(good, '\n');
	for (int kind = 0; kind < 9; kind++) {
		buf_reset(&b);
		switch (kind) {
		case 0: /* truncated mid-line */
			buf_add(&b, good, glen - 3);
			break;
		case 1: { /* truncated at a line end: the count does not match */
			const char *prev = memrchr(good, '\n', glen - 1);
			buf_add(&b, good, (size_t)(prev - good) + 1);
			break;
		}
		case 2: /* garbage */
			for (int i = 0; i < 5000; i++)
				buf_addc(&b, (char)(i * 7919 % 251));
			break;
		case 3: /* a huge line */
			buf_add(&b, good, (size_t)(first_nl - good) + 1);
			buf_adds(&b, "1 1 - ");
			buf_add(&b, huge, HK_STORE_UIDX_LINE_MAX * 4);
			buf_addc(&b, '\n');
			break;
		case 4: /* duplicate UIDs */
			buf_printf(&b, "hikyaku-uidlist 1 %u 10 5 2\n1 1 - a\n1 1 - b\n", (unsigned)v.uidvalidity);
			break;
		case 5: /* UIDs at or above UIDNEXT */
			buf_printf(&b, "hikyaku-uidlist 1 %u 3 5 2\n1 1 - a\n7 1 - b\n", (unsigned)v.uidvalidity);
			break;
		case 6: /* duplicate identities */
			buf_printf(&b, "hikyaku-uidlist 1 %u 10 5 2\n1 1 - a\n2 1 - a\n", (unsigned)v.uidvalidity);
			break;
		case 7: /* empty */
			break;
		case 8: /* numbers out of range */
			buf_printf(&b, "hikyaku-uidlist 1 %u 99999999999999999999 5 0\n", (unsigned)v.uidvalidity);
			break;
		}
		assert_int_equal(maildir_index_parse_check(b.data ? b.data : "", b.len, &dummy), -1);
		write_file(f, MAILDIR_UIDX_FILE, b.data ? b.data : "", b.len);
		struct hk_store_view v2;
		sync_ok(f, &v, &v2);
		assert_true(v2.rebuilt);
		assert_non_null(v2.rebuilt_why);
		assert_int_equal(v2.uidvalidity, v.uidvalidity);
		assert_int_equal(v2.n, 4);
		assert_int_equal(v2.nexpunged, 0);
		for (size_t i = 0; i < 4; i++)
			assert_int_equal(v2.v[i].uid, v.v[i].uid);
		hk_store_view_free(&v2);
	}
	buf_fini(&b);
	free(huge);
	free(good);
	hk_store_view_free(&v);
}

static void
test_store_index_hostile_names(void **state)
{
	struct fx *f = *state;
	put(f, "new", "1700000000.M1P1Q1.h,S=42,U=4294967294"); /* would use the UIDs up */
	put(f, "new", "1700000000.M2P1Q1.h,S=42,U=0");
	put(f, "new", "evil\nname");                      /* cannot be a line of the index */
	put(f, "new", "dup");
	put(f, "cur", "dup,U=1:2,S");                      /* the same identity twice */
	char longname[256];
	memset(longname, 'L', 250);
	memcpy(longname + 250, ":2,S", 5);                 /* no room for ",U=" */
	put(f, "cur", longname);
	struct hk_store_view v, v2, v3;
	sync_ok(f, NULL, &v);
	assert_int_equal(v.n, 4);
	assert_true(v.uidnext <= 5);
	for (size_t i = 0; i < v.n; i++)
		assert_null(strchr(v.v[i].filename, '\n'));
	struct hk_str lid = { longname, 250 };
	uint32_t luid = uid_of(&v, lid);
	assert_true(luid != 0);
	assert_string_equal(hk_store_view_find(&v, luid)->filename + 4, longname); /* not renamed */
	/* and it does not make every sync a write */
	ino_t ino = inode_of(f, MAILDIR_UIDX_FILE);
	sync_ok(f, &v, &v2);
	assert_int_equal(inode_of(f, MAILDIR_UIDX_FILE), ino);
	assert_int_equal(v2.n, 4);
	/* a rebuild with nothing known does not believe a UID near the top */
	unlink_file(f, MAILDIR_UIDX_FILE);
	unlink_file(f, MAILDIR_UIDX_VALIDITY);
	put(f, "new", "1700000001.M1P1Q1.h,S=42,U=4294967290");
	sync_ok(f, &v2, &v3);
	assert_int_equal(v3.n, 5);
	assert_true(v3.uidnext < 100);
	hk_store_view_free(&v);
	hk_store_view_free(&v2);
	hk_store_view_free(&v3);
}

static void
test_store_index_foreign_flag_change_bumps_modseq(void **state)
{
	struct fx *f = *state;
	for (int i = 0; i < 3; i++)
		free(deliver(f, NULL));
	struct hk_store_view v, v2;
	sync_ok(f, NULL, &v);
	/* another program (or hk_store_set_flags without the index) renames */
	char *op = ipath(f, v.v[1].filename);
	struct hk_str base = hk_store_base_name(v.v[1].filename);
	char *np = xasprintf("%s/cur/%.*s:2,FS", f->root, (int)base.len, base.ptr);
	assert_int_equal(rename(op, np), 0);
	sync_ok(f, &v, &v2);
	assert_int_equal(v2.n, 3);
	assert_int_equal(v2.v[1].flags, HK_STORE_SEEN | HK_STORE_FLAGGED);
	assert_false(v2.v[1].in_new);
	assert_true(v2.v[1].modseq > v.highestmodseq);
	assert_int_equal(v2.highestmodseq, v2.v[1].modseq);
	assert_int_equal(v2.v[0].modseq, v.v[0].modseq);
	assert_int_equal(v2.v[2].modseq, v.v[2].modseq);
	assert_int_equal(v2.v[1].uid, v.v[1].uid);
	/* the move new/ -> cur/ alone is not a flag change */
	char *n3 = xasprintf("%s/cur/%s:2,", f->root, strchr(v2.v[2].filename, '/') + 1);
	char *o3 = ipath(f, v2.v[2].filename);
	assert_int_equal(rename(o3, n3), 0);
	struct hk_store_view v3;
	sync_ok(f, &v2, &v3);
	assert_int_equal(v3.v[2].modseq, v2.v[2].modseq);
	assert_false(v3.v[2].in_new);
	free(op);
	free(np);
	free(o3);
	free(n3);
	hk_store_view_free(&v);
	hk_store_view_free(&v2);
	hk_store_view_free(&v3);
}

static void
test_store_index_expunge_detection(void **state)
{
	struct fx *f = *state;
	for (int i = 0; i < 5; i++)
		free(deliver(f, NULL));
	struct hk_store_view v, v2;
	sync_ok(f, NULL, &v);
	unlink_file(f, v.v[1].filename);
	unlink_file(f, v.v[3].filename);
	sync_ok(f, &v, &v2);
	assert_int_equal(v2.n, 3);
	assert_int_equal(v2.nexpunged, 2);
	assert_int_equal(v2.expunged[0], 2);
	assert_int_equal(v2.expunged[1], 4);
	assert_null(hk_store_view_find(&v2, 2));
	assert_non_null(hk_store_view_find(&v2, 5));
	hk_store_view_free(&v);
	hk_store_view_free(&v2);
}

static void
test_store_index_append_expunge_store(void **state)
{
	struct fx *f = *state;
	free(deliver(f, "Sent"));
	struct hk_store_part p = { .data = MSG, .fd = -1, .len = strlen(MSG) };
	struct hk_store_deliver_opts o = { .folder = "Sent", .flags = HK_STORE_SEEN };
	uint32_t uv, uid, uid2;
	assert_int_equal(hk_store_append(f->st, &o, &p, 1, &uv, &uid), 0);
	assert_int_equal(uid, 2); /* the delivered one got 1 in the same step */
	o.flags = 0;
	assert_int_equal(hk_store_append(f->st, &o, &p, 1, &uv, &uid2), 0);
	assert_int_equal(uid2, 3);
	struct hk_store_view v;
	assert_int_equal(hk_store_sync(f->st, "Sent", NULL, &v), 0);
	assert_int_equal(v.uidvalidity, uv);
	assert_int_equal(v.n, 3);
	assert_int_equal(v.v[1].uid, 2);
	assert_int_equal(v.v[1].flags, HK_STORE_SEEN);
	assert_int_equal(maildir_index_name_uid(v.v[1].filename), 2);
	assert_int_equal(maildir_index_name_uid(v.v[2].filename), 3);
	assert_true(v.v[2].in_new);

	/* STORE +FLAGS \Flagged on 1:3, then UNCHANGEDSINCE with a stale MODSEQ */
	uint32_t all[] = { 1, 2, 3, 99 };
	struct hk_store_flag_update u = { all, 4, HK_STORE_FLAGS_ADD, HK_STORE_FLAGGED, 0, 0 };
	struct hk_store_flag_result r;
	assert_int_equal(hk_store_update_flags(f->st, "Sent", &u, &r), 0);
	assert_int_equal(r.changed, 3);
	assert_int_equal(r.nfailed, 0);
	struct hk_store_view v2;
	assert_int_equal(hk_store_sync(f->st, "Sent", &v, &v2), 0);
	for (size_t i = 0; i < 3; i++) {
		assert_true(v2.v[i].flags & HK_STORE_FLAGGED);
		assert_true(v2.v[i].modseq > v.highestmodseq);
		assert_false(v2.v[i].in_new);
	}
	assert_int_equal(v2.highestmodseq, r.highestmodseq);
	uint32_t one[] = { 1, 2 };
	/* UNCHANGEDSINCE uid 1's MODSEQ: uid 1 (equal) is changed, uid 2
	 * (changed later) is refused */
	assert_true(v2.v[0].modseq < v2.v[1].modseq);
	struct hk_store_flag_update u2 = { one, 2, HK_STORE_FLAGS_REMOVE, HK_STORE_FLAGGED, 0, v2.v[0].modseq };
	struct hk_store_flag_result r2;
	assert_int_equal(hk_store_update_flags(f->st, "Sent", &u2, &r2), 0);
	assert_int_equal(r2.changed, 1);
	assert_int_equal(r2.nfailed, 1);
	assert_int_equal(r2.failed[0], 2);
	free(r2.failed);
	/* unchanged flags keep their MODSEQ */
	struct hk_store_flag_update u3 = { one, 1, HK_STORE_FLAGS_ADD, HK_STORE_SEEN, 0, 0 };
	struct hk_store_flag_result r3;
	assert_int_equal(hk_store_update_flags(f->st, "Sent", &u3, &r3), 0);
	assert_int_equal(r3.changed, 1);
	assert_int_equal(hk_store_update_flags(f->st, "Sent", &u3, &r3), 0);
	assert_int_equal(r3.changed, 0);

	/* EXPUNGE by UID; unknown UIDs are skipped */
	uint32_t ex[] = { 2, 42 };
	size_t nx;
	assert_int_equal(hk_store_expunge_uids(f->st, "Sent", ex, 2, &nx), 0);
	assert_int_equal(nx, 1);
	struct hk_store_view v3;
	assert_int_equal(hk_store_sync(f->st, "Sent", &v2, &v3), 0);
	assert_int_equal(v3.n, 2);
	assert_int_equal(v3.nexpunged, 1);
	assert_int_equal(v3.expunged[0], 2);
	assert_int_equal(v3.uidnext, 4);
	hk_store_view_free(&v);
	hk_store_view_free(&v2);
	hk_store_view_free(&v3);
}

static int
rename_gone(enum hk_store_op op, const char *path, void *arg)
{
	(void)path;
	(void)arg;
	return op == HK_STORE_OP_RENAME ? ENOENT : 0;
}

static void
test_store_index_keywords_and_expunge_modseq(void **state)
{
	struct fx *f = *state;
	for (int i = 0; i < 3; i++)
		free(deliver(f, NULL));
	struct hk_store_view v, v2, v3;
	sync_ok(f, NULL, &v);
	/* STORE +FLAGS ($Boss $Later): letters first, then the update */
	const char *names[] = { "$Boss", "$Later", "bad keyword" };
	uint32_t letters;
	assert_int_equal(hk_store_keywords_assign(f->st, NULL, names, 3, &letters), 0);
	assert_int_equal(letters, 3u); /* a, b; the invalid one left out */
	uint32_t two[] = { 2 };
	struct hk_store_flag_update u = { two, 1, HK_STORE_FLAGS_ADD, 0, letters, 0 };
	struct hk_store_flag_result r;
	assert_int_equal(hk_store_update_flags(f->st, NULL, &u, &r), 0);
	assert_int_equal(r.changed, 1);
	sync_ok(f, &v, &v2);
	assert_int_equal(v2.v[1].kw, 3u);
	assert_string_equal(strchr(v2.v[1].filename, ':'), ":2,ab");
	struct hk_store_keywords kw;
	assert_int_equal(hk_store_keywords(f->st, NULL, &kw), 0);
	assert_string_equal(kw.names[0], "$Boss");
	assert_string_equal(kw.names[1], "$Later");
	hk_store_keywords_free(&kw);
	/* an expunge moves HIGHESTMODSEQ on, by API or by another program */
	uint32_t one[] = { 1 };
	assert_int_equal(hk_store_expunge_uids(f->st, NULL, one, 1, NULL), 0);
	sync_ok(f, &v2, &v3);
	assert_true(v3.highestmodseq > v2.highestmodseq);
	assert_int_equal(v3.nexpunged, 1);
	hk_store_view_free(&v2);
	unlink_file(f, v3.v[0].filename);
	sync_ok(f, &v3, &v2);
	assert_true(v2.highestmodseq > v3.highestmodseq);
	assert_int_equal(v2.n, 1);
	/* a STORE on a message that another program renames away between
	 * the scan and the rename (ENOENT) is skipped, not an error */
	uint32_t three[] = { 3 };
	struct hk_store_flag_update u3 = { three, 1, HK_STORE_FLAGS_SET, HK_STORE_SEEN, 0, 0 };
	hk_store_set_fault_hook(rename_gone, NULL);
	assert_int_equal(hk_store_update_flags(f->st, NULL, &u3, &r), 0);
	assert_int_equal(r.changed, 0);
	hk_store_set_fault_hook(NULL, NULL);
	assert_int_equal(hk_store_keywords_assign(f->st, "Nope", names, 1, &letters), -1);
	assert_int_equal(errno, ENOENT);
	hk_store_view_free(&v);
	hk_store_view_free(&v2);
	hk_store_view_free(&v3);
}

/* --- concurrency ------------------------------------------------------------- */

/* Another session's work, run by the fault hook at the moment the first
 * session opens the lock file: between its lock-free pass and its lock. */
struct meddler {
	const char *root;
	bool busy, done;
	uint32_t expunge;
};

static int
meddle(enum hk_store_op op, const char *path, void *arg)
{
	struct meddler *m = arg;
	if (op != HK_STORE_OP_OPEN || strstr(path, MAILDIR_UIDX_LOCK) == NULL || m->busy || m->done)
		return 0;
	m->busy = true;
	struct hk_store *st;
	if (hk_store_open(m->root, NULL, &st) == 0) {
		size_t n = 0;
		if (hk_store_expunge_uids(st, NULL, &m->expunge, 1, &n) == 0 && n == 1)
			m->done = true;
		hk_store_close(&st);
	}
	m->busy = false;
	return 0;
}

static void
test_store_index_change_between_pass_and_lock(void **state)
{
	struct fx *f = *state;
	for (int i = 0; i < 3; i++)
		free(deliver(f, NULL));
	struct hk_store_view v, v2, v3;
	sync_ok(f, NULL, &v);
	/* a new message makes the next sync take the lock; just before it
	 * does, another session expunges UID 2 (and numbers the new one).
	 * The first session's scan still lists UID 2's file: it must not come
	 * back as a new message. */
	char *n4 = deliver(f, NULL);
	struct meddler m = { .root = f->root, .expunge = 2 };
	hk_store_set_fault_hook(meddle, &m);
	sync_ok(f, &v, &v2);
	hk_store_set_fault_hook(NULL, NULL);
	assert_true(m.done);
	assert_int_equal(v2.n, 3);
	assert_int_equal(v2.v[0].uid, 1);
	assert_int_equal(v2.v[1].uid, 3);
	assert_int_equal(v2.v[2].uid, 4);
	assert_int_equal(uid_of(&v2, hk_store_identity(n4)), 4);
	assert_int_equal(v2.uidnext, 5);
	assert_int_equal(v2.nexpunged, 1);
	assert_int_equal(v2.expunged[0], 2);
	sync_ok(f, &v2, &v3);
	assert_int_equal(v3.n, 3);
	assert_int_equal(v3.uidnext, 5);
	free(n4);
	hk_store_view_free(&v);
	hk_store_view_free(&v2);
	hk_store_view_free(&v3);
}


#define CONC_THREADS 4
#define CONC_ROUNDS 25

struct seen {
	uint32_t *uid;
	char **id;
	size_t n, cap;
};

static void
seen_add(struct seen *s, const struct hk_store_view *v)
{
	for (size_t i = 0; i < v->n; i++) {
		s->uid = xgrow(s->uid, &s->cap, s->n + 1, sizeof *s->uid);
		s->id = xrealloc(s->id, s->cap * sizeof *s->id);
		struct hk_str id = hk_store_identity(v->v[i].filename);
		s->uid[s->n] = v->v[i].uid;
		s->id[s->n++] = xstrndup(id.ptr, id.len);
	}
}

struct conc {
	const char *root;
	struct seen seen;
	int failures;
};

static void *
conc_thread(void *arg)
{
	struct conc *c = arg;
	struct hk_store *st;
	if (hk_store_open(c->root, NULL, &st) != 0) {
		c->failures++;
		return NULL;
	}
	for (int r = 0; r < CONC_ROUNDS; r++) {
		struct hk_store_view v;
		if (hk_store_sync(st, NULL, NULL, &v) != 0) {
			c->failures++;
			continue;
		}
		seen_add(&c->seen, &v);
		hk_store_view_free(&v);
	}
	hk_store_close(&st);
	return NULL;
}

/* One UID per identity and one identity per UID, over everything any
 * syncer saw. */
static void
check_consistent(struct seen *all, size_t nall)
{
	struct seen m = { 0 };
	for (size_t k = 0; k < nall; k++)
		for (size_t i = 0; i < all[k].n; i++) {
			m.uid = xgrow(m.uid, &m.cap, m.n + 1, sizeof *m.uid);
			m.id = xrealloc(m.id, m.cap * sizeof *m.id);
			m.uid[m.n] = all[k].uid[i];
			m.id[m.n++] = all[k].id[i];
		}
	/* quadratic but small enough: a few thousand pairs, compare distinct */
	for (size_t i = 0; i < m.n; i++)
		for (size_t j = i + 1; j < m.n; j++) {
			bool su = m.uid[i] == m.uid[j], si = strcmp(m.id[i], m.id[j]) == 0;
			if (su != si)
				fail_msg("UID %u/%u for %s/%s", m.uid[i], m.uid[j], m.id[i], m.id[j]);
		}
	free(m.uid);
	free(m.id);
}

/* Four threads and a forked process sync while 30 deliveries arrive.
 * With `rebuild`, the 40 messages first got their UIDs and the index was
 * then deleted: every syncer starts with a missing index, and the
 * messages keep their UIDs through the rebuild. */
static void
concurrent_syncers(struct fx *f, bool rebuild)
{
	for (int i = 0; i < 40; i++)
		free(deliver(f, NULL));
	struct hk_store_view before;
	memset(&before, 0, sizeof before);
	if (rebuild) {
		sync_ok(f, NULL, &before);
		char *ip = xasprintf("%s/" MAILDIR_UIDX_FILE, f->root);
		assert_int_equal(unlink(ip), 0);
		free(ip);
	}
	char *out = xasprintf("%s/child.txt", f->dir);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct hk_store *st;
		if (hk_store_open(f->root, NULL, &st) != 0)
			_exit(2);
		FILE *fp = fopen(out, "w");
		int bad = 0;
		for (int r = 0; r < CONC_ROUNDS; r++) {
			struct hk_store_view v;
			if (hk_store_sync(st, NULL, NULL, &v) != 0) {
				bad++;
				continue;
			}
			for (size_t i = 0; i < v.n; i++) {
				struct hk_str id = hk_store_identity(v.v[i].filename);
				fprintf(fp, "%u %.*s\n", (unsigned)v.v[i].uid, (int)id.len, id.ptr);
			}
			hk_store_view_free(&v);
		}
		fclose(fp);
		_exit(bad ? 1 : 0);
	}
	struct conc c[CONC_THREADS];
	pthread_t th[CONC_THREADS];
	memset(c, 0, sizeof c);
	for (int i = 0; i < CONC_THREADS; i++) {
		c[i].root = f->root;
		assert_int_equal(pthread_create(&th[i], NULL, conc_thread, &c[i]), 0);
	}
	/* deliveries keep arriving meanwhile */
	for (int i = 0; i < 30; i++)
		free(deliver(f, NULL));
	for (int i = 0; i < CONC_THREADS; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);

	struct seen all[CONC_THREADS + 2];
	memset(all, 0, sizeof all);
	for (int i = 0; i < CONC_THREADS; i++) {
		assert_int_equal(c[i].failures, 0);
		all[i] = c[i].seen;
	}
	FILE *fp = fopen(out, "r");
	assert_non_null(fp);
	char line[600];
	struct seen *cs = &all[CONC_THREADS];
	while (fgets(line, sizeof line, fp)) {
		char *sp = strchr(line, ' ');
		assert_non_null(sp);
		line[strcspn(line, "\n")] = '\0';
		cs->uid = xgrow(cs->uid, &cs->cap, cs->n + 1, sizeof *cs->uid);
		cs->id = xrealloc(cs->id, cs->cap * sizeof *cs->id);
		cs->uid[cs->n] = (uint32_t)strtoul(line, NULL, 10);
		cs->id[cs->n++] = xstrdup(sp + 1);
	}
	fclose(fp);
	struct hk_store_view v;
	sync_ok(f, NULL, &v);
	assert_int_equal(v.n, 70);
	if (!rebuild)
		assert_int_equal(v.uidnext, 71); /* no UID spent twice or skipped */
	for (size_t i = 0; i < v.n; i++)
		assert_int_equal(maildir_index_name_uid(v.v[i].filename), v.v[i].uid);
	for (size_t i = 0; i < before.n; i++) /* the rebuild kept every UID */
		assert_int_equal(uid_of(&v, hk_store_identity(before.v[i].filename)), before.v[i].uid);
	hk_store_view_free(&before);
	seen_add(&all[CONC_THREADS + 1], &v);
	/* dedupe each list's pairs first so the check stays quick */
	for (size_t k = 0; k < CONC_THREADS + 2; k++) {
		struct seen *s = &all[k];
		size_t w = 0;
		for (size_t i = 0; i < s->n; i++) {
			bool dup = false;
			for (size_t j = 0; j < w && !dup; j++)
				dup = s->uid[j] == s->uid[i] && strcmp(s->id[j], s->id[i]) == 0;
			if (dup) {
				free(s->id[i]);
				continue;
			}
			s->uid[w] = s->uid[i];
			s->id[w++] = s->id[i];
		}
		s->n = w;
	}
	check_consistent(all, CONC_THREADS + 2);
	for (size_t k = 0; k < CONC_THREADS + 2; k++) {
		for (size_t i = 0; i < all[k].n; i++)
			free(all[k].id[i]);
		free(all[k].uid);
		free(all[k].id);
	}
	hk_store_view_free(&v);
	free(out);
}

static void
test_store_index_concurrent_syncers(void **state)
{
	concurrent_syncers(*state, false);
}

static void
test_store_index_concurrent_rebuild(void **state)
{
	concurrent_syncers(*state, true);
}

#define APPENDS 12

struct appender {
	const char *root;
	uint32_t uids[APPENDS];
	uint32_t uidvalidity;
	int failures;
};

static void *
append_thread(void *arg)
{
	struct appender *a = arg;
	struct hk_store *st;
	if (hk_store_open(a->root, NULL, &st) != 0) {
		a->failures++;
		return NULL;
	}
	struct hk_store_part p = { .data = MSG, .fd = -1, .len = strlen(MSG) };
	struct hk_store_deliver_opts o = { .folder = "Drafts", .flags = HK_STORE_DRAFT };
	for (int i = 0; i < APPENDS; i++)
		if (hk_store_append(st, &o, &p, 1, &a->uidvalidity, &a->uids[i]) != 0)
			a->failures++;
	hk_store_close(&st);
	return NULL;
}

static void
test_store_index_concurrent_appends(void **state)
{
	struct fx *f = *state;
	/* a forked process appends too, and reports its UIDs through a pipe */
	int pfd[2];
	assert_int_equal(pipe(pfd), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(pfd[0]);
		struct appender a = { .root = f->root };
		append_thread(&a);
		ssize_t w = write(pfd[1], &a, sizeof a);
		_exit(w == (ssize_t)sizeof a && a.failures == 0 ? 0 : 1);
	}
	close(pfd[1]);
	struct appender a[3];
	pthread_t th[3];
	for (int i = 0; i < 3; i++) {
		a[i] = (struct appender){ .root = f->root };
		assert_int_equal(pthread_create(&th[i], NULL, append_thread, &a[i]), 0);
	}
	/* and a session syncs meanwhile */
	for (int i = 0; i < 10; i++) {
		struct hk_store_view v;
		assert_int_equal(hk_store_sync(f->st, "Drafts", NULL, &v), 0);
		hk_store_view_free(&v);
	}
	for (int i = 0; i < 3; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	struct appender child;
	assert_int_equal(read(pfd[0], &child, sizeof child), (ssize_t)sizeof child);
	close(pfd[0]);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	/* 48 appends, 48 distinct UIDs 1..48, each where the view says */
	bool seen[4 * APPENDS + 1] = { false };
	struct hk_store_view v;
	assert_int_equal(hk_store_sync(f->st, "Drafts", NULL, &v), 0);
	assert_int_equal(v.n, 4 * APPENDS);
	assert_int_equal(v.uidnext, 4 * APPENDS + 1);
	for (int t = 0; t < 4; t++) {
		const struct appender *x = t < 3 ? &a[t] : &child;
		assert_int_equal(x->failures, 0);
		assert_int_equal(x->uidvalidity, v.uidvalidity);
		for (int i = 0; i < APPENDS; i++) {
			uint32_t u = x->uids[i];
			assert_true(u >= 1 && u <= 4 * APPENDS);
			assert_false(seen[u]);
			seen[u] = true;
			if (i > 0)
				assert_true(u > x->uids[i - 1]); /* one appender's UIDs ascend */
			const struct hk_store_uid_msg *m = hk_store_view_find(&v, u);
			assert_non_null(m);
			assert_int_equal(m->flags, HK_STORE_DRAFT);
			assert_int_equal(maildir_index_name_uid(m->filename), u);
		}
	}
	hk_store_view_free(&v);
}

/* --- failures ----------------------------------------------------------------- */

static int
fail_index_write(enum hk_store_op op, const char *path, void *arg)
{
	(void)arg;
	return op == HK_STORE_OP_WRITE && strstr(path, MAILDIR_UIDX_FILE) ? ENOSPC : 0;
}

static void
test_store_index_write_failure(void **state)
{
	struct fx *f = *state;
	for (int i = 0; i < 3; i++)
		free(deliver(f, NULL));
	hk_store_set_fault_hook(fail_index_write, NULL);
	struct hk_store_view v;
	assert_int_equal(hk_store_sync(f->st, NULL, NULL, &v), -1);
	assert_int_equal(errno, ENOSPC);
	assert_non_null(strstr(hk_store_error(f->st), MAILDIR_UIDX_FILE));
	assert_int_equal(v.n, 0);
	assert_int_equal(inode_of(f, MAILDIR_UIDX_FILE ".tmp"), 0); /* no half file left */
	hk_store_set_fault_hook(NULL, NULL);
	/* the names already carry their UIDs: the next sync keeps them */
	sync_ok(f, NULL, &v);
	assert_int_equal(v.n, 3);
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(v.v[i].uid, i + 1);
	hk_store_view_free(&v);
	assert_int_equal(hk_store_sync(f->st, "Nope", NULL, &v), -1);
	assert_int_equal(errno, ENOENT);
}

/* --- performance -------------------------------------------------------------- */

#define BIG 10000

/* --- the directory stamp: an unchanged folder without readdir ---------------- */

/* Sets the mtime of new/ and cur/ `secs` seconds from now (negative: in
 * the past), as if the last change were that old (or a clock had been
 * stepped back). */
static void
age_dirs(struct fx *f, int secs)
{
	for (int i = 0; i < 2; i++) {
		char *p = ipath(f, i ? "cur" : "new");
		struct timespec t[2];
		clock_gettime(CLOCK_REALTIME, &t[0]);
		t[1] = t[0];
		t[1].tv_sec += secs;
		assert_int_equal(utimensat(AT_FDCWD, p, t, 0), 0);
		free(p);
	}
}

static bool
exists(struct fx *f, const char *name)
{
	char *p = ipath(f, name);
	bool r = access(p, F_OK) == 0;
	free(p);
	return r;
}

static void
assert_views_equal(const struct hk_store_view *a, const struct hk_store_view *b)
{
	assert_int_equal(a->n, b->n);
	assert_int_equal(a->uidvalidity, b->uidvalidity);
	assert_int_equal(a->uidnext, b->uidnext);
	assert_int_equal(a->highestmodseq, b->highestmodseq);
	for (size_t i = 0; i < a->n; i++) {
		assert_int_equal(a->v[i].uid, b->v[i].uid);
		assert_int_equal(a->v[i].modseq, b->v[i].modseq);
		assert_string_equal(a->v[i].filename, b->v[i].filename);
		assert_int_equal(a->v[i].flags, b->v[i].flags);
		assert_int_equal(a->v[i].kw, b->v[i].kw);
		assert_int_equal(a->v[i].size, b->v[i].size);
		assert_int_equal(a->v[i].vsize, b->v[i].vsize);
		assert_int_equal(a->v[i].in_new, b->v[i].in_new);
	}
}

/* A synced folder whose directories look settled, with names of every
 * kind: ours in cur/ and new/, one without ,S= (stat for its size), one
 * with its flag letters out of order (another program's), keywords. */
static void
stamp_folder(struct fx *f, struct hk_store_view *v)
{
	for (int i = 0; i < 4; i++)
		free(deliver(f, NULL));
	put(f, "new", "1700000000.foreign.host");
	put(f, "cur", "1700000001.other.host,S=42:2,SF");
	struct hk_store_view v0;
	sync_ok(f, NULL, &v0);
	uint32_t uids[2] = { v0.v[2].uid, v0.v[3].uid }; /* two of ours, into cur/ */
	struct hk_store_flag_update u = { .uids = uids, .nuids = 2, .op = HK_STORE_FLAGS_ADD, .flags = HK_STORE_SEEN, .kw = 1 };
	struct hk_store_flag_result res;
	memset(&res, 0, sizeof res);
	assert_int_equal(hk_store_update_flags(f->st, NULL, &u, &res), 0);
	free(res.failed);
	hk_store_view_free(&v0);
	age_dirs(f, -10);
	uint64_t r0 = hk_store_dir_reads();
	sync_ok(f, NULL, v);
	assert_int_equal(hk_store_dir_reads(), r0 + 2); /* read once, stamp written */
	assert_true(exists(f, MAILDIR_STAMP_FILE));
	assert_int_equal(v->n, 6);
}

static void
test_store_index_stamp_unchanged_no_readdir(void **state)
{
	struct fx *f = *state;
	struct hk_store_view v, v2, v3;
	stamp_folder(f, &v);
	uint64_t r0 = hk_store_dir_reads();
	sync_ok(f, &v, &v2);
	assert_int_equal(hk_store_dir_reads(), r0); /* no readdir */
	assert_views_equal(&v, &v2);
	assert_int_equal(v2.nexpunged, 0);
	/* every kind of name came back exactly */
	bool foreign = false, unsorted = false, innew = false;
	for (size_t i = 0; i < v2.n; i++) {
		foreign |= strstr(v2.v[i].filename, "foreign") != NULL;
		unsorted |= strstr(v2.v[i].filename, ":2,SF") != NULL;
		innew |= v2.v[i].in_new;
		char *p = ipath(f, v2.v[i].filename);
		assert_int_equal(access(p, F_OK), 0);
		free(p);
	}
	assert_true(foreign && unsorted && innew);
	/* another handle (another process would do the same) */
	struct hk_store *st2;
	struct hk_store_settings set = { 0 };
	assert_int_equal(hk_store_open(f->root, &set, &st2), 0);
	assert_int_equal(hk_store_sync(st2, "INBOX", NULL, &v3), 0);
	assert_int_equal(hk_store_dir_reads(), r0);
	assert_views_equal(&v, &v3);
	hk_store_close(&st2);
	hk_store_view_free(&v);
	hk_store_view_free(&v2);
	hk_store_view_free(&v3);
}

static void
test_store_index_stamp_sees_foreign_changes(void **state)
{
	struct fx *f = *state;
	struct hk_store_view v, v2, v3, v4, v5;
	stamp_folder(f, &v);
	/* a flag change by rename, outside the API */
	const char *fn = v.v[3].filename;
	assert_non_null(strstr(fn, "cur/"));
	struct hk_str base = hk_store_base_name(fn);
	char *op = ipath(f, fn), *np = xasprintf("%s/cur/%.*s:2,FS", f->root, (int)base.len, base.ptr);
	assert_int_equal(rename(op, np), 0);
	uint64_t r0 = hk_store_dir_reads();
	sync_ok(f, &v, &v2);
	assert_true(hk_store_dir_reads() > r0);
	assert_int_equal(v2.v[3].flags, HK_STORE_SEEN | HK_STORE_FLAGGED);
	assert_true(v2.v[3].modseq > v.highestmodseq);
	/* settled again: the stamp comes back, then an unlink is seen */
	age_dirs(f, -10);
	sync_ok(f, &v2, &v3);
	r0 = hk_store_dir_reads();
	hk_store_view_free(&v3);
	sync_ok(f, &v2, &v3);
	assert_int_equal(hk_store_dir_reads(), r0);
	unlink_file(f, v3.v[0].filename);
	sync_ok(f, &v3, &v4);
	assert_int_equal(v4.n, v3.n - 1);
	assert_int_equal(v4.nexpunged, 1);
	assert_int_equal(v4.expunged[0], v3.v[0].uid);
	/* and a file created by another program's delivery */
	age_dirs(f, -10);
	sync_ok(f, &v4, &v5);
	hk_store_view_free(&v5);
	put(f, "new", "1800000000.late.host,S=42");
	sync_ok(f, &v4, &v5);
	assert_int_equal(v5.n, v4.n + 1);
	assert_non_null(strstr(v5.v[v5.n - 1].filename, "late.host"));
	free(op);
	free(np);
	hk_store_view_free(&v);
	hk_store_view_free(&v2);
	hk_store_view_free(&v3);
	hk_store_view_free(&v4);
	hk_store_view_free(&v5);
}

static void
test_store_index_stamp_recent_mtime_rule(void **state)
{
	struct fx *f = *state;
	for (int i = 0; i < 3; i++)
		free(deliver(f, NULL));
	struct hk_store_view v, v2;
	sync_ok(f, NULL, &v);
	/* just changed: the directories are read every time, no stamp */
	for (int k = 0; k < 3; k++) {
		uint64_t r0 = hk_store_dir_reads();
		sync_ok(f, &v, &v2);
		assert_int_equal(hk_store_dir_reads(), r0 + 2);
		assert_false(exists(f, MAILDIR_STAMP_FILE));
		hk_store_view_free(&v2);
	}
	/* an mtime in the future (the clock stepped back): not trusted either */
	age_dirs(f, 3600);
	sync_ok(f, &v, &v2);
	hk_store_view_free(&v2);
	assert_false(exists(f, MAILDIR_STAMP_FILE));
	/* settled: the next sync writes the stamp, the one after reads nothing */
	age_dirs(f, -3);
	sync_ok(f, &v, &v2);
	hk_store_view_free(&v2);
	assert_true(exists(f, MAILDIR_STAMP_FILE));
	uint64_t r0 = hk_store_dir_reads();
	sync_ok(f, &v, &v2);
	assert_int_equal(hk_store_dir_reads(), r0);
	assert_views_equal(&v, &v2);
	hk_store_view_free(&v2);
	/* a change through the API (a new index file): read again */
	free(deliver(f, NULL));
	struct hk_store_view v3;
	sync_ok(f, &v, &v3);
	assert_int_equal(hk_store_dir_reads(), r0 + 2);
	assert_int_equal(v3.n, 4);
	/* a sync under the lock that renames nothing (here: the rebuild of a
	 * lost index from names that carry their UIDs) leaves a stamp too */
	struct hk_store_view v4;
	unlink_file(f, MAILDIR_UIDX_FILE);
	age_dirs(f, -3);
	sync_ok(f, &v3, &v4);
	assert_true(v4.rebuilt);
	hk_store_view_free(&v4);
	r0 = hk_store_dir_reads();
	sync_ok(f, &v3, &v4);
	assert_int_equal(hk_store_dir_reads(), r0);
	assert_int_equal(v4.n, 4);
	hk_store_view_free(&v);
	hk_store_view_free(&v3);
	hk_store_view_free(&v4);
}

/* The settle rule itself: times with sub-second digits are trusted half a
 * second on, whole-second ones after a second, future ones never. */
static void
test_store_index_stamp_settle_rule(void **state)
{
	(void)state;
	const int64_t S = 1000000000;
	struct maildir_dirs d = { .ok = true, .now_ns = 100 * S };
	for (int i = 0; i < 2; i++)
		d.mtime_ns[i] = d.ctime_ns[i] = 99 * S + S / 2 + 123; /* 0.49 s old, fine */
	assert_false(maildir_dirs_settled(&d));
	d.now_ns += S / 50;
	assert_true(maildir_dirs_settled(&d));
	d.mtime_ns[1] = d.now_ns + 5; /* a clock stepped back */
	assert_false(maildir_dirs_settled(&d));
	for (int i = 0; i < 2; i++)
		d.mtime_ns[i] = d.ctime_ns[i] = 99 * S; /* whole seconds */
	d.now_ns = 99 * S + S * 9 / 10;
	assert_false(maildir_dirs_settled(&d));
	d.now_ns = 100 * S + 1;
	assert_true(maildir_dirs_settled(&d));
	d.ok = false;
	assert_false(maildir_dirs_settled(&d));
}

static void
test_store_index_stamp_damaged_ignored(void **state)
{
	struct fx *f = *state;
	struct hk_store_view v, v2;
	stamp_folder(f, &v);
	char *p = ipath(f, MAILDIR_STAMP_FILE), *good;
	size_t len;
	assert_int_equal(read_file(p, 1 << 20, &good, &len), 0);
	/* garbage, a truncated one, one with a line for a UID the index
	 * lacks, one whose name is another message's: each is ignored (the
	 * directories are read) and a good one written again */
	char *bad[4];
	bad[0] = xstrdup("hikyaku-dirstamp 1 garbage\n");
	bad[1] = xstrndup(good, len / 2);
	struct hk_buf b;
	buf_init(&b);
	const char *nl = strchr(good, '\n');
	const char *sp = nl;
	while (sp[-1] != ' ')
		sp--;
	unsigned long cnt = strtoul(sp, NULL, 10);
	buf_add(&b, good, (size_t)(sp - good));
	buf_printf(&b, "%lu\n", cnt + 1);
	buf_adds(&b, nl + 1);
	buf_printf(&b, "%u 42 42 cur/x,S=42\n", (unsigned)v.uidnext + 5);
	bad[2] = buf_steal(&b);
	buf_init(&b);
	buf_add(&b, good, len);
	char *first = strstr(b.data, "\n") + 1; /* the first irregular name: make it another's */
	char *name = strchr(strchr(strchr(first, ' ') + 1, ' ') + 1, ' ') + 1;
	name[4] = name[4] == 'Z' ? 'Y' : 'Z';
	bad[3] = buf_steal(&b);
	for (int k = 0; k < 4; k++) {
		write_file(f, MAILDIR_STAMP_FILE, bad[k], strlen(bad[k]));
		uint64_t r0 = hk_store_dir_reads();
		sync_ok(f, &v, &v2);
		assert_int_equal(hk_store_dir_reads(), r0 + 2);
		assert_views_equal(&v, &v2);
		hk_store_view_free(&v2);
		sync_ok(f, &v, &v2);
		assert_int_equal(hk_store_dir_reads(), r0 + 2); /* rewritten */
		assert_views_equal(&v, &v2);
		hk_store_view_free(&v2);
		free(bad[k]);
	}
	free(good);
	free(p);
	hk_store_view_free(&v);
}

static void
test_store_index_10000_timing(void **state)
{
	struct fx *f = *state;
	char name[128];
	for (int i = 0; i < BIG; i++) {
		snprintf(name, sizeof name, "%d.M%06dP1Q%dR0.host,S=%zu,W=%zu%s", 1700000000 + i / 100, i % 100, i,
		    strlen(MSG), strlen(MSG), i % 2 ? ":2,S" : "");
		put(f, i % 2 ? "cur" : "new", name);
	}
	struct hk_store_view v, v2, v3, v4;
	double t0 = now_ms();
	sync_ok(f, NULL, &v);
	double t1 = now_ms();
	sync_ok(f, &v, &v2);
	double t2 = now_ms();
	unlink_file(f, MAILDIR_UIDX_FILE);
	sync_ok(f, &v2, &v3);
	double t3 = now_ms();
	free(deliver(f, NULL));
	double t4 = now_ms();
	sync_ok(f, &v3, &v4);
	double t5 = now_ms();
	assert_int_equal(v.n, BIG);
	assert_int_equal(v2.n, BIG);
	assert_int_equal(v4.n, BIG + 1);
	assert_true(v3.rebuilt);
	for (size_t i = 0; i < BIG; i++)
		assert_int_equal(v3.v[i].uid, v.v[i].uid);
	/* unchanged: median of a few runs */
	double best = 1e9;
	for (int r = 0; r < 5; r++) {
		struct hk_store_view vv;
		double a = now_ms();
		sync_ok(f, &v4, &vv);
		double d = now_ms() - a;
		best = d < best ? d : best;
		hk_store_view_free(&vv);
	}
	/* unchanged and settled: the stamp, no readdir */
	age_dirs(f, -10);
	struct hk_store_view vs;
	sync_ok(f, &v4, &vs);
	hk_store_view_free(&vs);
	uint64_t r0 = hk_store_dir_reads();
	double best_stamp = 1e9;
	for (int r = 0; r < 5; r++) {
		double a = now_ms();
		sync_ok(f, &v4, &vs);
		double d = now_ms() - a;
		best_stamp = d < best_stamp ? d : best_stamp;
		assert_views_equal(&v4, &vs);
		hk_store_view_free(&vs);
	}
	assert_int_equal(hk_store_dir_reads(), r0);
	printf("# uid index, %d messages: first sync (UIDs, renames, index) %.1f ms; unchanged %.1f ms "
	       "(best of 5: %.1f ms; with the directory stamp, no readdir: %.1f ms); rebuild after losing the "
	       "index %.1f ms; one new message %.1f ms\n",
	    BIG, t1 - t0, t2 - t1, best, best_stamp, t3 - t2, t5 - t4);
	hk_store_view_free(&v);
	hk_store_view_free(&v2);
	hk_store_view_free(&v3);
	hk_store_view_free(&v4);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_store_index_identity),
		T(test_store_index_assign_and_unchanged),
		T(test_store_index_stable_order),
		T(test_store_index_reopen_keeps_uids),
		T(test_store_index_recreated_folder_new_uidvalidity),
		T(test_store_index_lost_keeps_uids),
		T(test_store_index_uidvalidity_lost),
		T(test_store_index_damaged_rebuilt),
		T(test_store_index_hostile_names),
		T(test_store_index_foreign_flag_change_bumps_modseq),
		T(test_store_index_expunge_detection),
		T(test_store_index_append_expunge_store),
		T(test_store_index_keywords_and_expunge_modseq),
		T(test_store_index_change_between_pass_and_lock),
		T(test_store_index_concurrent_syncers),
		T(test_store_index_concurrent_rebuild),
		T(test_store_index_concurrent_appends),
		T(test_store_index_write_failure),
		T(test_store_index_stamp_unchanged_no_readdir),
		T(test_store_index_stamp_sees_foreign_changes),
		T(test_store_index_stamp_recent_mtime_rule),
		T(test_store_index_stamp_damaged_ignored),
		T(test_store_index_stamp_settle_rule),
		T(test_store_index_10000_timing),
	};
	return cmocka_run_group_tests_name("store_index", tests, NULL, NULL);
}
