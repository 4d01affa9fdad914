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
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "maildir.h"
#include "store.h"

static char dir[256], root[512];
static struct hk_store *st;
static struct hk_store_view view;

static int
rm_cb(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(path);
}

static void
folder_fini(void)
{
	hk_store_view_free(&view);
	hk_store_close(&st);
	nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static void
folder_init(void)
{
	const char *t = getenv("TMPDIR");
	snprintf(dir, sizeof dir, "%s/hk-fuzz-cache.XXXXXX", t && *t ? t : "/tmp");
	if (mkdtemp(dir) == NULL)
		abort();
	atexit(folder_fini);
	snprintf(root, sizeof root, "%s/Maildir", dir);
	struct hk_store_settings set = { .create = true };
	if (hk_store_open(root, &set, &st) != 0)
		abort();
	static const char msg[] = "Subject: x\r\n\r\nx\r\n";
	for (int i = 0; i < 3; i++) {
		struct hk_store_part p = { .data = msg, .fd = -1, .len = sizeof msg - 1 };
		if (hk_store_deliver(st, NULL, &p, 1, NULL) != 0)
			abort();
	}
	if (hk_store_sync(st, NULL, NULL, &view) != 0 || view.n != 3)
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
	if (st == NULL)
		folder_init();
	char path[600];
	snprintf(path, sizeof path, "%s/" MAILDIR_CACHE_FILE, root);
	FILE *fp = fopen(path, "w");
	if (fp == NULL || fwrite(p, 1, n, fp) != n || fclose(fp) != 0)
		abort();
	struct hk_store_cache *c;
	if (hk_store_cache_open(st, "INBOX", view.uidvalidity, &c) != 0)
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
	if (hk_store_cache_open(st, "INBOX", view.uidvalidity, &c) != 0)
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
