/*
 * test_spool.c - unit tests of servers/core/spool.c with a real worker
 * pool and event loop: a small message stays in memory (no file), a large
 * one goes to a file in SPOOL_MEM_MAX chunks written by workers and reads
 * back byte for byte (spool_read_all and spool_parts through the store),
 * the loop is told to stop feeding at SPOOL_HIGH while a write is behind
 * and woken after it, a spool freed with a write in flight leaves no file,
 * and a spool directory that cannot be written to gives spool_error with
 * the bytes after it counted and dropped.
 */
#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/spool.h"
#include "core/worker.h"
#include "util.h"

struct fx {
	struct event_base *base;
	struct worker_pool *wp;
	char dir[64];
	unsigned wakes;
};

static int
setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof(*f));
	f->base = event_base_new();
	f->wp = worker_pool_new(f->base, 2);
	snprintf(f->dir, sizeof(f->dir), "/tmp/hk-spool-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	*state = f;
	return 0;
}

static size_t
files_in(const char *dir)
{
	DIR *d = opendir(dir);
	size_t n = 0;
	for (struct dirent *e; d && (e = readdir(d));)
		n += e->d_name[0] != '.';
	if (d)
		closedir(d);
	return n;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	worker_pool_free(&f->wp);
	event_base_free(f->base);
	assert_int_equal(files_in(f->dir), 0); /* every test leaves nothing */
	rmdir(f->dir);
	free(f);
	return 0;
}

static void
on_wake(void *arg)
{
	((struct fx *)arg)->wakes++;
}

/* Runs the loop until no write is in flight. */
static void
settle(struct fx *f, struct spool *sp)
{
	for (int i = 0; i < 10000 && (sp ? spool_busy(sp) : worker_pending(f->wp) > 0); i++)
		event_base_loop(f->base, EVLOOP_ONCE);
	assert_true(sp ? !spool_busy(sp) : worker_pending(f->wp) == 0);
}

static char *
pattern(size_t n)
{
	char *p = xmalloc(n);
	for (size_t i = 0; i < n; i++)
		p[i] = (char)('a' + (i * 7 + i / 1000) % 26);
	return p;
}

static void
test_small_stays_in_memory(void **state)
{
	struct fx *f = *state;
	struct spool *sp = spool_new(f->wp, f->dir, "t", on_wake, f);
	spool_add(sp, "Subject: hi\r\n\r\n", 15);
	spool_add(sp, "body\r\n", 6);
	assert_false(spool_busy(sp));
	assert_int_equal(spool_size(sp), 21);
	assert_int_equal(files_in(f->dir), 0);
	char *data;
	size_t len;
	assert_int_equal(spool_read_all(sp, 1000, &data, &len), 0);
	assert_int_equal(len, 21);
	assert_memory_equal(data, "Subject: hi\r\n\r\nbody\r\n", 21);
	free(data);
	assert_int_equal(spool_read_all(sp, 20, &data, &len), -1);
	assert_int_equal(errno, EFBIG);
	struct hk_store_part parts[2];
	assert_int_equal(spool_parts(sp, parts), 1);
	assert_int_equal(parts[0].fd, -1);
	assert_int_equal(parts[0].len, 21);
	spool_free(&sp);
	assert_null(sp);
	spool_free(&sp); /* NULL-safe */
}

static void
test_large_goes_to_a_file(void **state)
{
	struct fx *f = *state;
	size_t n = 3 * SPOOL_MEM_MAX + 12345;
	char *src = pattern(n);
	struct spool *sp = spool_new(f->wp, f->dir, "t", on_wake, f);
	/* fed in pieces as a session would, letting the loop run between */
	for (size_t off = 0; off < n;) {
		size_t k = n - off < 16384 ? n - off : 16384;
		spool_add(sp, src + off, k);
		off += k;
		if (spool_blocked(sp))
			settle(f, sp);
		event_base_loop(f->base, EVLOOP_NONBLOCK);
	}
	settle(f, sp);
	assert_int_equal(spool_error(sp), 0);
	assert_int_equal(spool_size(sp), n);
	assert_int_equal(files_in(f->dir), 1);
	assert_true(f->wakes >= 1);
	char *data;
	size_t len;
	assert_int_equal(spool_read_all(sp, n, &data, &len), 0);
	assert_int_equal(len, n);
	assert_memory_equal(data, src, n);
	free(data);
	/* the parts: the file first, then what is still in memory */
	struct hk_store_part parts[2];
	size_t np = spool_parts(sp, parts);
	assert_true(np >= 1 && parts[0].fd >= 0);
	size_t total = 0;
	for (size_t i = 0; i < np; i++)
		total += parts[i].len;
	assert_int_equal(total, n);
	char *back = xmalloc(parts[0].len);
	assert_int_equal(pread(parts[0].fd, back, parts[0].len, 0), (ssize_t)parts[0].len);
	assert_memory_equal(back, src, parts[0].len);
	if (np == 2)
		assert_memory_equal(parts[1].data, src + parts[0].len, parts[1].len);
	free(back);
	spool_free(&sp);
	assert_int_equal(files_in(f->dir), 0);
	free(src);
}

static void
test_blocked_until_the_write_is_done(void **state)
{
	struct fx *f = *state;
	struct spool *sp = spool_new(f->wp, f->dir, "t", on_wake, f);
	char *chunk = pattern(SPOOL_MEM_MAX);
	/* without running the loop the first write's done cannot come: the
	 * spool keeps buffering, then says stop */
	spool_add(sp, chunk, SPOOL_MEM_MAX);
	assert_true(spool_busy(sp));
	size_t added = SPOOL_MEM_MAX;
	while (!spool_blocked(sp)) {
		spool_add(sp, chunk, SPOOL_MEM_MAX);
		added += SPOOL_MEM_MAX;
		assert_true(added <= SPOOL_MEM_MAX + SPOOL_HIGH);
	}
	unsigned before = f->wakes;
	settle(f, sp);
	assert_false(spool_blocked(sp));
	assert_true(f->wakes > before);
	char *data;
	size_t len;
	assert_int_equal(spool_read_all(sp, added, &data, &len), 0);
	assert_int_equal(len, added);
	for (size_t off = 0; off < added; off += SPOOL_MEM_MAX)
		assert_memory_equal(data + off, chunk, SPOOL_MEM_MAX);
	free(data);
	spool_free(&sp);
	free(chunk);
}

static void
test_freed_with_a_write_in_flight(void **state)
{
	struct fx *f = *state;
	struct spool *sp = spool_new(f->wp, f->dir, "t", on_wake, f);
	char *chunk = pattern(SPOOL_MEM_MAX);
	spool_add(sp, chunk, SPOOL_MEM_MAX);
	assert_true(spool_busy(sp));
	unsigned before = f->wakes;
	spool_free(&sp); /* the session went away mid-message */
	settle(f, NULL);
	assert_int_equal(f->wakes, before); /* no wake for a freed spool */
	free(chunk);
	/* teardown checks that the job removed the file */
}

static void
test_unwritable_directory(void **state)
{
	struct fx *f = *state;
	char missing[128];
	snprintf(missing, sizeof(missing), "%s/no-such-dir", f->dir);
	struct spool *sp = spool_new(f->wp, missing, "t", on_wake, f);
	char *chunk = pattern(SPOOL_MEM_MAX);
	spool_add(sp, chunk, SPOOL_MEM_MAX);
	settle(f, sp);
	assert_int_equal(spool_error(sp), ENOENT);
	spool_add(sp, chunk, 1000); /* counted, dropped */
	assert_false(spool_busy(sp));
	assert_int_equal(spool_size(sp), SPOOL_MEM_MAX + 1000);
	spool_free(&sp);
	free(chunk);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_small_stays_in_memory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_large_goes_to_a_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blocked_until_the_write_is_done, setup, teardown),
		cmocka_unit_test_setup_teardown(test_freed_with_a_write_in_flight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unwritable_directory, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
