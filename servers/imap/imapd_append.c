/*
 * imapd_append.c - APPEND (worker side). The message literal was written
 * to a spool file while it arrived (imapd_session.c); here it is stored
 * durably into the folder with its UID (hk_store_append) before the OK,
 * which carries UIDPLUS's APPENDUID.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/log.h"
#include "imapd_int.h"

static void
spool_done(struct imapd_session *s)
{
	if (s->append_fd >= 0) {
		close(s->append_fd);
		s->append_fd = -1;
	}
	if (s->append_path) {
		unlink(s->append_path);
		free(s->append_path);
		s->append_path = NULL;
	}
}

void
imapd_cmd_append(struct imapd_job *j)
{
	struct imapd_session *s = j->s;
	const struct imap_cmd *c = &j->cmd;
	if (!c->append.streamed || s->append_fd < 0 || s->append_failed || s->append_got != c->append.size) {
		spool_done(s);
		imapd_tagged(j, "NO", "[UNAVAILABLE] The message could not be received");
		return;
	}
	char *folder = hk_store_folder_canon(c->mailbox.name);
	if (folder == NULL || !hk_store_folder_exists(s->st, folder)) {
		free(folder);
		spool_done(s);
		imapd_tagged(j, "NO", "[TRYCREATE] Mailbox does not exist");
		return;
	}
	uint32_t flags = imapd_flags_to_store(c->append.flags.system);
	const char *kw[HK_STORE_KEYWORDS_MAX];
	size_t nkw = 0;
	for (unsigned i = 0; i < c->append.flags.nkeywords; i++) {
		if (imapd_is_forwarded_kw(c->append.flags.keywords[i]))
			flags |= HK_STORE_PASSED;
		else if (nkw < HK_STORE_KEYWORDS_MAX)
			kw[nkw++] = c->append.flags.keywords[i];
	}
	struct hk_store_deliver_opts o = {
		.folder = folder,
		.flags = flags,
		.keywords = kw,
		.nkeywords = nkw,
		.received = c->append.has_date ? (int64_t)c->append.date : 0,
		.check_quota = true,
	};
	struct hk_store_part part = { NULL, s->append_fd, 0, (size_t)c->append.size };
	uint32_t validity = 0, uid = 0;
	int rc = hk_store_append(s->st, &o, &part, 1, &validity, &uid);
	int e = errno;
	spool_done(s);
	if (rc < 0) {
		if (e != EDQUOT && e != EFBIG)
			log_error("imap", "#%llu %s: APPEND to %s: %s", (unsigned long long)s->id, s->address, folder, hk_store_error(s->st));
		imapd_tagged(j, "NO", e == EDQUOT || e == EFBIG ? "[OVERQUOTA] Quota exceeded" : "[UNAVAILABLE] The message cannot be stored now");
		free(folder);
		return;
	}
	if (s->folder && strcmp(s->folder, folder) == 0) {
		j->changed = true;
		imapd_mailbox_sync(j, true); /* EXISTS for the client's own APPEND */
		free(folder);
	} else {
		j->changed_other = folder;
	}
	imapd_tagged(j, "OK", "[APPENDUID %u %u] APPEND completed", validity, uid);
}
