/*
 * fuzz_cache.c - libFuzzer target for the message cache file of a Maildir
 * folder (runtime/maildir_cache.c), which a crash, a full disk, a torn
 * append or another program may have damaged. The first byte picks the
 * mode:
 *   even: the bytes are read as a cache file (maildir_cache_parse_check):
 *         every record it indexes lies inside the file, and no more
 *         records are counted than the file can hold.
 *   odd:  the bytes become hikyaku-cache of a real three-message folder; a
 *         command's use of it runs (get for every message, a put for each,
 *         close with the view, which appends or rewrites), and afterwards
 *         every message has its sound record with what was put: whatever
 *         the file held, it can only cost a rebuild.
 * The folder is made once per process under $TMPDIR.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_maildir.h"
#include "maildir.h"
#include "store.h"

static struct hk_store_view view;

/* the three messages as a sync shows them (freed at exit with the folder) */
static void
view_free(void)
{
	hk_store_view_free(&view);
}

static void
folder_init(void)
{
	fuzz_maildir_init("cache");
	atexit(view_free); /* runs before fuzz_maildir_fini: atexit is LIFO */
	if (hk_store_sync(fuzz_st, NULL, NULL, &view) != 0 || view.n != 3)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 1 << 20)
		return 0;
	const char *p = (const char *)data + 1;
	size_t n = size - 1;
	if ((data[0] & 1) == 0) {
		size_t nrec;
		(void)maildir_cache_parse_check(p, n, &nrec);
		if (nrec > n / 64) /* a record is at least 64 bytes */
			abort();
		return 0;
	}
	if (fuzz_st == NULL)
		folder_init();
	char path[600];
	snprintf(path, sizeof path, "%s/" MAILDIR_CACHE_FILE, fuzz_root);
	FILE *fp = fopen(path, "w");
	if (fp == NULL || fwrite(p, 1, n, fp) != n || fclose(fp) != 0)
		abort();
	struct hk_store_cache *c;
	if (hk_store_cache_open(fuzz_st, "INBOX", view.uidvalidity, &c) != 0)
		abort();
	static const char hdr[] = "Subject: x\r\n\r\n";
	for (size_t i = 0; i < view.n; i++) {
		struct hk_store_cache_rec r;
		if (hk_store_cache_get(c, &view.v[i], &r) && r.hdr && r.hdr_len > HK_STORE_CACHE_HDR_MAX)
			abort();
		struct hk_store_cache_rec w = { .mtime = 1000 + (int64_t)i, .vsize = 17, .hdr = hdr, .hdr_len = sizeof hdr - 1 };
		hk_store_cache_put(c, &view.v[i], &w);
	}
	hk_store_cache_close(&c, &view);
	if (hk_store_cache_open(fuzz_st, "INBOX", view.uidvalidity, &c) != 0)
		abort();
	for (size_t i = 0; i < view.n; i++) {
		struct hk_store_cache_rec r;
		if (!hk_store_cache_get(c, &view.v[i], &r) || r.mtime != 1000 + (int64_t)i || r.vsize != 17 || r.hdr == NULL ||
		    r.hdr_len != sizeof hdr - 1 || memcmp(r.hdr, hdr, r.hdr_len) != 0)
			abort();
	}
	hk_store_cache_close(&c, NULL);
	return 0;
}
