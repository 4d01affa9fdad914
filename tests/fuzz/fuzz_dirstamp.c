/*
 * fuzz_dirstamp.c - libFuzzer target for the directory stamp of a Maildir
 * folder (runtime/maildir_dirstamp.c: the proof that new/ and cur/ are
 * unchanged since the UID index matched them), which a crash or another
 * program may have damaged. The bytes are parsed as a stamp
 * (maildir_stamp_parse); what is accepted must hold what a sync relies on:
 * UIDs ascending, each name "new/" or "cur/" and one component, inside the
 * file.
 */
#include <stdlib.h>
#include <string.h>

#include "maildir.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 1 << 20)
		return 0;
	char *copy = xmalloc(size + 1);
	memcpy(copy, data, size);
	copy[size] = '\0';
	struct maildir_stamp s;
	if (maildir_stamp_parse(copy, size, &s) == 0) {
		for (size_t i = 0; i < s.n; i++) {
			const char *f = s.v[i].filename;
			size_t len = strlen(f);
			if ((i > 0 && s.v[i].uid <= s.v[i - 1].uid) || f < copy || f + len > copy + size || len < 5 ||
			    (memcmp(f, "new/", 4) != 0 && memcmp(f, "cur/", 4) != 0) || strchr(f + 4, '/'))
				abort();
		}
	} else if (s.n != 0) {
		abort();
	}
	maildir_stamp_fini(&s); /* frees copy */
	return 0;
}
