/*
 * fuzz_uidlist.c - libFuzzer target for the UID index file of a Maildir
 * folder (runtime/maildir_index.c), which a crash, a full disk or another
 * program may have damaged. The first byte picks the mode:
 *   even: the bytes are parsed as an index (maildir_index_parse_check);
 *         what is accepted must be self-consistent.
 *   odd:  the bytes become hikyaku-uidlist of a real three-message folder
 *         and hk_store_sync runs on it: it must succeed (using or rebuilding
 *         the index) and show each message once with a UID below UIDNEXT.
 * The folder is made once per process under $TMPDIR.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_maildir.h"
#include "maildir.h"
#include "store.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 1 << 20)
		return 0;
	const char *p = (const char *)data + 1;
	size_t n = size - 1;
	if ((data[0] & 1) == 0) {
		size_t count;
		int r = maildir_index_parse_check(p, n, &count);
		if (r == 0 && count > n / 8)
			abort();
		if (r != 0 && count != 0)
			abort();
		return 0;
	}
	if (fuzz_st == NULL)
		fuzz_maildir_init("uidlist");
	char path[600];
	snprintf(path, sizeof path, "%s/" MAILDIR_UIDX_FILE, fuzz_root);
	FILE *fp = fopen(path, "w");
	if (fp == NULL || fwrite(p, 1, n, fp) != n || fclose(fp) != 0)
		abort();
	struct hk_store_view v;
	if (hk_store_sync(fuzz_st, NULL, NULL, &v) != 0 || v.n != 3)
		abort();
	for (size_t i = 0; i < v.n; i++)
		if (v.v[i].uid == 0 || v.v[i].uid >= v.uidnext || (i > 0 && v.v[i].uid <= v.v[i - 1].uid) ||
		    v.v[i].modseq > v.highestmodseq)
			abort();
	hk_store_view_free(&v);
	return 0;
}
