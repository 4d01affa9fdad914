/*
 * fuzz_maildir.h - a scratch Maildir with three delivered messages, for
 * the fuzz targets of the store's own files (fuzz_uidlist, fuzz_cache):
 * made once per process under $TMPDIR, removed at exit.
 */
#ifndef HK_FUZZ_MAILDIR_H
#define HK_FUZZ_MAILDIR_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>

#include "store.h"

static char fuzz_dir[256], fuzz_root[512];
static struct hk_store *fuzz_st;

static int
fuzz_rm_cb(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(path);
}

static void
fuzz_maildir_fini(void)
{
	hk_store_close(&fuzz_st);
	nftw(fuzz_dir, fuzz_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* name: part of the directory's name (hk-fuzz-<name>.XXXXXX). */
static void
fuzz_maildir_init(const char *name)
{
	const char *t = getenv("TMPDIR");
	snprintf(fuzz_dir, sizeof fuzz_dir, "%s/hk-fuzz-%s.XXXXXX", t && *t ? t : "/tmp", name);
	if (mkdtemp(fuzz_dir) == NULL)
		abort();
	atexit(fuzz_maildir_fini);
	snprintf(fuzz_root, sizeof fuzz_root, "%s/Maildir", fuzz_dir);
	struct hk_store_settings set = { .create = true };
	if (hk_store_open(fuzz_root, &set, &fuzz_st) != 0)
		abort();
	static const char msg[] = "Subject: x\r\n\r\nx\r\n";
	for (int i = 0; i < 3; i++) {
		struct hk_store_part p = { .data = msg, .fd = -1, .len = sizeof msg - 1 };
		if (hk_store_deliver(fuzz_st, NULL, &p, 1, NULL) != 0)
			abort();
	}
}

#endif
