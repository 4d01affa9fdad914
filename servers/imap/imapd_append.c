/*
 * imapd_append.c - APPEND (worker side). The message literal went to a
 * spool while it arrived (imapd_session.c, core/spool.h); here it is stored
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
#include "core/spool.h"
#include "imapd_int.h"

/* The session is busy with this job: the worker owns the spool now, and
 * no write of it is in flight (the command ran after the last one). */
static void
spool_done(struct imapd_session *s)
{
	spool_free(&s->append_spool);
}

void
imapd_cmd_append(struct imapd_job *j)
{
	struct imapd_session *s = j->s;
	const struct imap_cmd *c = &j->cmd;
	if (!c->append.streamed || s->append_spool == NULL || spool_busy(s->append_spool) ||
	    spool_error(s->append_spool) || spool_size(s->append_spool) != c->append.size) {
		if (s->append_spool && spool_error(s->append_spool))
			log_error("imap", "#%llu: APPEND spool: %s", (unsigned long long)s->id, strerror(spool_error(s->append_spool)));
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
	struct hk_store_part parts[2];
	size_t nparts = spool_parts(s->append_spool, parts);
	uint32_t validity = 0, uid = 0;
	int rc = hk_store_append(s->st, &o, parts, nparts, &validity, &uid);
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
