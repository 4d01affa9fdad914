/*
 * test_store_cache.c - unit tests of the per-folder message cache
 * (runtime/maildir_cache.c, API in store.h "the message cache"): filled and
 * read back by another handle, a record never used for another message
 * (identity, size), a damaged file (truncated, garbage in the middle and at
 * the end, a bad header, another UIDVALIDITY) read as far as it is sound and
 * then rewritten, the header bound, appends before close past the pending
 * bound, compaction when more than half is dead, and concurrent writers in
 * processes and threads.
 *
 * Each test works in its own directory under $TMPDIR (or /tmp).
 */
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
#include <unistd.h>

#include <cmocka.h>

#include "maildir.h"
#include "store.h"

struct fx {
	char dir[256];
	char root[320];
	struct hk_store *st;
	struct hk_store_view v;
};

static int
rm_cb(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(path);
}

/* A message whose header is about hdr_bytes long, and a body. */
static char *
make_msg(int i, size_t hdr_bytes)
{
	struct hk_buf b;
	buf_init(&b);
	buf_printf(&b, "From: a%d@example.jp\r\nSubject: message %d\r\n", i, i);
	while (b.len + 40 < hdr_bytes)
		buf_printf(&b, "X-Pad-%zu: %.30s\r\n", b.len, "padpadpadpadpadpadpadpadpadpad");
	buf_adds(&b, "\r\nbody\r\n");
	return buf_steal(&b);
}

static void
deliver_n(struct fx *f, int n, size_t hdr_bytes)
{
	for (int i = 0; i < n; i++) {
		char *m = make_msg(i, hdr_bytes);
		struct hk_store_part p = { .data = m, .fd = -1, .len = strlen(m) };
		struct hk_store_deliver_opts o = { .folder = NULL };
		assert_int_equal(hk_store_deliver(f->st, &o, &p, 1, NULL), 0);
		free(m);
	}
	hk_store_view_free(&f->v);
	assert_int_equal(hk_store_sync(f->st, NULL, NULL, &f->v), 0);
	assert_int_equal(f->v.n, (size_t)n);
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	const char *t = getenv("TMPDIR");
	snprintf(f->dir, sizeof f->dir, "%s/hk-cache.XXXXXX", t && *t ? t : "/tmp");
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
	hk_store_view_free(&f->v);
	hk_store_close(&f->st);
	nftw(f->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static char *
cpath(struct fx *f)
{
	return xasprintf("%s/" MAILDIR_CACHE_FILE, f->root);
}

static off_t
cache_size(struct fx *f)
{
	char *p = cpath(f);
	struct stat sb;
	off_t r = stat(p, &sb) == 0 ? sb.st_size : -1;
	free(p);
	return r;
}

static struct hk_store_cache *
copen(struct fx *f)
{
	struct hk_store_cache *c = NULL;
	assert_int_equal(hk_store_cache_open(f->st, "INBOX", f->v.uidvalidity, &c), 0);
	assert_non_null(c);
	return c;
}

/* The record of message i as the tests put it: the header block of the
 * file, mtime 1000 + i, vsize 5000 + i. */
static void
put_one(struct hk_store_cache *c, struct fx *f, size_t i)
{
	int fd = hk_store_open_message(f->st, "INBOX", f->v.v[i].filename);
	assert_true(fd >= 0);
	char buf[65536];
	ssize_t n = read(fd, buf, sizeof buf);
	close(fd);
	assert_true(n > 0);
	const char *e = memmem(buf, (size_t)n, "\r\n\r\n", 4);
	assert_non_null(e);
	struct hk_store_cache_rec r = { .mtime = 1000 + (int64_t)i, .vsize = 5000 + i, .hdr = buf,
		.hdr_len = (size_t)(e + 4 - buf), .flags = HK_STORE_CACHE_HDR_FIELDS };
	hk_store_cache_put(c, &f->v.v[i], &r);
}

static void
fill_all(struct fx *f)
{
	struct hk_store_cache *c = copen(f);
	for (size_t i = 0; i < f->v.n; i++)
		put_one(c, f, i);
	hk_store_cache_close(&c, &f->v);
}

/* Checks message i's record is there and right. */
static bool
got(struct hk_store_cache *c, struct fx *f, size_t i)
{
	struct hk_store_cache_rec r;
	if (!hk_store_cache_get(c, &f->v.v[i], &r))
		return false;
	assert_int_equal(r.mtime, 1000 + (int64_t)i);
	assert_int_equal(r.vsize, 5000 + i);
	assert_non_null(r.hdr);
	assert_int_equal(r.flags, HK_STORE_CACHE_HDR_FIELDS);
	char want[64];
	snprintf(want, sizeof want, "Subject: message %zu\r\n", i);
	assert_non_null(memmem(r.hdr, r.hdr_len, want, strlen(want)));
	assert_memory_equal(r.hdr + r.hdr_len - 4, "\r\n\r\n", 4);
	return true;
}

static size_t
count_got(struct fx *f, bool *damaged_r)
{
	struct hk_store_cache *c = copen(f);
	size_t n = 0;
	for (size_t i = 0; i < f->v.n; i++)
		n += got(c, f, i);
	(void)hk_store_cache_records(c, damaged_r);
	hk_store_cache_close(&c, NULL);
	return n;
}

/* --- tests ------------------------------------------------------------------ */

static void
test_store_cache_fill_and_reopen(void **state)
{
	struct fx *f = *state;
	deliver_n(f, 20, 300);
	assert_int_equal(cache_size(f), -1);
	struct hk_store_cache *c = copen(f);
	struct hk_store_cache_rec r;
	bool damaged;
	assert_int_equal(hk_store_cache_records(c, &damaged), 0);
	assert_true(damaged); /* none yet */
	for (size_t i = 0; i < f->v.n; i++)
		assert_false(hk_store_cache_get(c, &f->v.v[i], &r));
	for (size_t i = 0; i < f->v.n; i++)
		put_one(c, f, i);
	hk_store_cache_close(&c, &f->v);
	assert_true(cache_size(f) > 20 * 300);
	/* another handle, as another session or process */
	assert_int_equal(count_got(f, &damaged), 20);
	assert_false(damaged);
	/* a second fill of some (two sessions did the same work): the latest
	 * record counts, nothing is damaged */
	c = copen(f);
	for (size_t i = 0; i < 5; i++)
		put_one(c, f, i);
	hk_store_cache_close(&c, &f->v);
	assert_int_equal(count_got(f, &damaged), 20);
	assert_false(damaged);
	/* a command abandoned (close without a view) writes nothing */
	off_t before = cache_size(f);
	c = copen(f);
	put_one(c, f, 7);
	hk_store_cache_close(&c, NULL);
	assert_int_equal(cache_size(f), before);
}

static void
test_store_cache_identity_mismatch_not_used(void **state)
{
	struct fx *f = *state;
	deliver_n(f, 3, 300);
	fill_all(f);
	struct hk_store_cache *c = copen(f);
	struct hk_store_cache_rec r;
	/* the same UID, another file (a UID reused after a rebuild, a foreign
	 * program's file): not its record */
	struct hk_store_uid_msg m = f->v.v[1];
	char *other = xstrdup(m.filename);
	char *s = strstr(other, ",S=");
	assert_non_null(s);
	s[-1] = s[-1] == 'x' ? 'y' : 'x';
	m.filename = other;
	assert_false(hk_store_cache_get(c, &m, &r));
	assert_false(hk_store_cache_has(c, &m));
	assert_true(hk_store_cache_has(c, &f->v.v[1]));
	/* the same identity with another size (a name without ,S=) */
	m = f->v.v[1];
	m.size++;
	assert_false(hk_store_cache_get(c, &m, &r));
	/* another UID */
	m = f->v.v[1];
	m.uid = f->v.uidnext + 10;
	assert_false(hk_store_cache_get(c, &m, &r));
	assert_true(hk_store_cache_get(c, &f->v.v[1], &r));
	hk_store_cache_close(&c, NULL);
	free(other);
	/* a cache for another UIDVALIDITY is empty, and replaced when written */
	assert_int_equal(hk_store_cache_open(f->st, "INBOX", f->v.uidvalidity + 1, &c), 0);
	assert_false(hk_store_cache_get(c, &f->v.v[0], &r));
	hk_store_cache_close(&c, &f->v);
	assert_int_equal(count_got(f, NULL), 3);
	assert_int_equal(hk_store_cache_open(f->st, "INBOX", f->v.uidvalidity + 1, &c), 0);
	struct hk_store_cache_rec nr = { .mtime = 7, .vsize = 8 };
	hk_store_cache_put(c, &f->v.v[0], &nr);
	hk_store_cache_close(&c, &f->v);
	assert_int_equal(count_got(f, NULL), 0);
	assert_int_equal(hk_store_cache_open(f->st, "INBOX", f->v.uidvalidity + 1, &c), 0);
	assert_true(hk_store_cache_get(c, &f->v.v[0], &r));
	assert_int_equal(r.mtime, 7);
	assert_null(r.hdr);
	hk_store_cache_close(&c, NULL);
}

static void
write_bytes(struct fx *f, const char *data, size_t len, off_t at, bool trunc)
{
	char *p = cpath(f);
	int fd = open(p, O_WRONLY | O_CREAT | (trunc ? O_TRUNC : 0), 0600);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, data, len, at), (ssize_t)len);
	close(fd);
	free(p);
}

static void
test_store_cache_damage_rebuilt(void **state)
{
	struct fx *f = *state;
	deliver_n(f, 10, 300);
	fill_all(f);
	off_t full = cache_size(f);
	bool damaged;
	/* truncated in the middle of the last records: the sound ones are
	 * used, the file is rewritten at the next close */
	char *p = cpath(f);
	assert_int_equal(truncate(p, full - 100), 0);
	size_t n = count_got(f, &damaged);
	assert_int_equal(n, 9);
	assert_true(damaged);
	struct hk_store_cache *c = copen(f);
	hk_store_cache_close(&c, &f->v); /* compacts */
	assert_int_equal(count_got(f, &damaged), 9);
	assert_false(damaged);
	/* refilled */
	c = copen(f);
	put_one(c, f, 9);
	hk_store_cache_close(&c, &f->v);
	assert_int_equal(count_got(f, &damaged), 10);
	assert_false(damaged);
	/* garbage over a record in the middle: that one is a miss, the ones
	 * after it are found again */
	full = cache_size(f);
	write_bytes(f, "garbage garbage garbage garbage", 31, full / 2, false);
	n = count_got(f, &damaged);
	assert_true(damaged);
	assert_true(n >= 8 && n <= 9);
	/* a torn record at the end (a crash), and the records of a writer
	 * that had read the file before, appended after it: found again */
	c = copen(f);
	hk_store_cache_close(&c, &f->v); /* clean again */
	assert_int_equal(count_got(f, &damaged), n);
	assert_false(damaged);
	c = copen(f);
	write_bytes(f, "HCR1\x10\x00", 6, cache_size(f), false);
	for (size_t i = 0; i < 10; i++)
		put_one(c, f, i);
	hk_store_cache_close(&c, &f->v);
	assert_int_equal(count_got(f, &damaged), 10);
	assert_true(damaged);
	c = copen(f);
	hk_store_cache_close(&c, &f->v);
	assert_int_equal(count_got(f, &damaged), 10);
	assert_false(damaged);
	/* a bad header: empty, rewritten at the next write */
	write_bytes(f, "HKCACHE2", 8, 0, false);
	assert_int_equal(count_got(f, &damaged), 0);
	assert_true(damaged);
	fill_all(f);
	assert_int_equal(count_got(f, &damaged), 10);
	assert_false(damaged);
	/* random bytes, an empty file: nothing, no crash */
	char junk[4096];
	for (size_t i = 0; i < sizeof junk; i++)
		junk[i] = (char)(i * 7 + 3);
	write_bytes(f, junk, sizeof junk, 0, true);
	assert_int_equal(count_got(f, NULL), 0);
	write_bytes(f, "", 0, 0, true);
	assert_int_equal(count_got(f, NULL), 0);
	fill_all(f);
	assert_int_equal(count_got(f, &damaged), 10);
	free(p);
}

static void
test_store_cache_size_bounds(void **state)
{
	struct fx *f = *state;
	deliver_n(f, 2, 300);
	struct hk_store_cache *c = copen(f);
	/* a header over HK_STORE_CACHE_HDR_MAX: date and size only */
	char *big = xmalloc(HK_STORE_CACHE_HDR_MAX + 2);
	memset(big, 'x', HK_STORE_CACHE_HDR_MAX + 1);
	struct hk_store_cache_rec r = { .mtime = 11, .vsize = 22, .hdr = big, .hdr_len = HK_STORE_CACHE_HDR_MAX + 1 };
	hk_store_cache_put(c, &f->v.v[0], &r);
	/* exactly at the bound: kept */
	r.hdr_len = HK_STORE_CACHE_HDR_MAX;
	hk_store_cache_put(c, &f->v.v[1], &r);
	hk_store_cache_close(&c, &f->v);
	c = copen(f);
	struct hk_store_cache_rec g;
	assert_true(hk_store_cache_get(c, &f->v.v[0], &g));
	assert_int_equal(g.mtime, 11);
	assert_int_equal(g.vsize, 22);
	assert_null(g.hdr);
	assert_true(hk_store_cache_get(c, &f->v.v[1], &g));
	assert_int_equal(g.hdr_len, HK_STORE_CACHE_HDR_MAX);
	hk_store_cache_close(&c, NULL);
	/* more than HK_STORE_CACHE_PENDING_MAX put: written before the close */
	c = copen(f);
	off_t before = cache_size(f);
	size_t per = HK_STORE_CACHE_HDR_MAX + 200;
	for (size_t k = 0; k * per <= HK_STORE_CACHE_PENDING_MAX + per; k++)
		hk_store_cache_put(c, &f->v.v[k % 2], &r);
	assert_true(cache_size(f) > before);
	hk_store_cache_close(&c, NULL);
	free(big);
}

static void
test_store_cache_compaction(void **state)
{
	struct fx *f = *state;
	deliver_n(f, 20, 8000);
	fill_all(f);
	off_t full = cache_size(f);
	assert_true(full > 20 * 8000);
	/* 18 of 20 expunged: more than half of the file is dead */
	uint32_t uids[18];
	for (int i = 0; i < 18; i++)
		uids[i] = f->v.v[i].uid;
	size_t ex = 0;
	assert_int_equal(hk_store_expunge_uids(f->st, "INBOX", uids, 18, &ex), 0);
	struct hk_store_view v2;
	assert_int_equal(hk_store_sync(f->st, NULL, &f->v, &v2), 0);
	assert_int_equal(v2.n, 2);
	struct hk_store_cache *c = copen(f);
	hk_store_cache_close(&c, &v2);
	off_t small = cache_size(f);
	assert_true(small < full / 5);
	assert_true(small > 2 * 8000);
	hk_store_view_free(&f->v);
	f->v = v2;
	/* the two survivors' records are still there (they are 18 and 19) */
	c = copen(f);
	struct hk_store_cache_rec r;
	assert_true(hk_store_cache_get(c, &f->v.v[0], &r));
	assert_int_equal(r.mtime, 1018);
	assert_true(hk_store_cache_get(c, &f->v.v[1], &r));
	assert_int_equal(r.mtime, 1019);
	bool damaged;
	hk_store_cache_records(c, &damaged);
	assert_false(damaged);
	/* nothing dead: no rewrite */
	struct stat a, b;
	char *p = cpath(f);
	assert_int_equal(stat(p, &a), 0);
	hk_store_cache_close(&c, &f->v);
	assert_int_equal(stat(p, &b), 0);
	assert_int_equal(a.st_ino, b.st_ino);
	free(p);
}

/* Concurrent writers: each fills every message, with appends during the
 * command (the pending bound) and at its close. */
struct writer_arg {
	struct fx *f;
	int rounds;
};

static void *
writer(void *p)
{
	struct writer_arg *a = p;
	struct hk_store *st;
	struct hk_store_settings set = { 0 };
	if (hk_store_open(a->f->root, &set, &st) != 0)
		return (void *)1;
	for (int r = 0; r < a->rounds; r++) {
		struct hk_store_cache *c = NULL;
		if (hk_store_cache_open(st, "INBOX", a->f->v.uidvalidity, &c) != 0)
			return (void *)1;
		for (size_t i = 0; i < a->f->v.n; i++)
			put_one(c, a->f, i);
		hk_store_cache_close(&c, &a->f->v);
	}
	hk_store_close(&st);
	return NULL;
}

static void
test_store_cache_concurrent_writers(void **state)
{
	struct fx *f = *state;
	deliver_n(f, 150, 8000); /* 1.2 MB per fill: two appends each */
	struct writer_arg a = { f, 3 };
	pid_t kids[3];
	for (int k = 0; k < 3; k++) {
		kids[k] = fork();
		assert_true(kids[k] >= 0);
		if (kids[k] == 0)
			_exit(writer(&a) == NULL ? 0 : 1);
	}
	pthread_t th[2];
	for (int k = 0; k < 2; k++)
		assert_int_equal(pthread_create(&th[k], NULL, writer, &a), 0);
	for (int k = 0; k < 2; k++) {
		void *rv;
		pthread_join(th[k], &rv);
		assert_null(rv);
	}
	for (int k = 0; k < 3; k++) {
		int status;
		assert_int_equal(waitpid(kids[k], &status, 0), kids[k]);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	bool damaged;
	assert_int_equal(count_got(f, &damaged), 150);
	assert_false(damaged);
	/* bounded: many fills, but compaction keeps it near the live size */
	assert_true(cache_size(f) < 4 * 150 * 8200);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_store_cache_fill_and_reopen),
		T(test_store_cache_identity_mismatch_not_used),
		T(test_store_cache_damage_rebuilt),
		T(test_store_cache_size_bounds),
		T(test_store_cache_compaction),
		T(test_store_cache_concurrent_writers),
	};
	return cmocka_run_group_tests_name("store_cache", tests, NULL, NULL);
}
