/*
 * imapd_store.c - the commands that change messages: STORE (with
 * CONDSTORE's UNCHANGEDSINCE), EXPUNGE, UID EXPUNGE, CLOSE, COPY and MOVE
 * with UIDPLUS answers (worker side). Each change goes through the UID
 * index (store.h: hk_store_update_flags, hk_store_expunge_uids,
 * hk_store_append), so other sessions see it at their next sync.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "imap/imap_write.h"
#include "imapd_int.h"

/* The letters of the command's keywords in the selected folder; `assign`
 * gives free letters to new ones (STORE +FLAGS / FLAGS), else only the
 * known ones count (-FLAGS). $Forwarded is Maildir's 'P' flag. */
static void
keyword_bits(struct imapd_session *s, const struct imap_flags *f, bool assign, uint32_t *flags, uint32_t *kw)
{
	*kw = 0;
	const char *names[HK_STORE_KEYWORDS_MAX];
	size_t n = 0;
	for (unsigned i = 0; i < f->nkeywords; i++) {
		if (imapd_is_forwarded_kw(f->keywords[i])) {
			*flags |= HK_STORE_PASSED;
			continue;
		}
		if (assign) {
			if (n < HK_STORE_KEYWORDS_MAX)
				names[n++] = f->keywords[i];
			continue;
		}
		for (unsigned k = 0; k < HK_STORE_KEYWORDS_MAX; k++)
			if (s->kwn.names[k] && strcasecmp(s->kwn.names[k], f->keywords[i]) == 0)
				*kw |= 1u << k;
	}
	if (n && hk_store_keywords_assign(s->st, s->folder, names, n, kw) < 0)
		log_warnx("imap", "#%llu: keywords in %s: %s", (unsigned long long)s->id, s->folder, hk_store_error(s->st));
}

static void
bad_set(struct imapd_job *j)
{
	imapd_tagged(j, "BAD", "Invalid message sequence number");
}

void
imapd_cmd_store(struct imapd_job *j)
{
	struct imapd_session *s = j->s;
	const struct imap_store *st = &j->cmd.store;
	bool uid = j->cmd.uid, bad;
	size_t n;
	size_t *idx = imapd_set_indexes(s, &st->set, uid, &n, &bad);
	if (bad) {
		bad_set(j);
		return;
	}
	if (s->readonly) {
		free(idx);
		imapd_tagged(j, "NO", "[READ-ONLY] Mailbox is read-only");
		return;
	}
	if (st->unchangedsince_set)
		s->condstore = true;
	uint32_t *uids = xmalloc((n ? n : 1) * sizeof(*uids));
	for (size_t i = 0; i < n; i++)
		uids[i] = s->view.v[idx[i]].uid;
	uint32_t flags = imapd_flags_to_store(st->flags.system), kw;
	keyword_bits(s, &st->flags, st->op != IMAP_STORE_REMOVE, &flags, &kw);
	struct hk_store_flag_update u = {
		.uids = uids,
		.nuids = n,
		.op = st->op == IMAP_STORE_SET ? HK_STORE_FLAGS_SET : st->op == IMAP_STORE_ADD ? HK_STORE_FLAGS_ADD : HK_STORE_FLAGS_REMOVE,
		.flags = flags,
		.kw = kw,
		.unchangedsince = st->unchangedsince_set ? st->unchangedsince : 0,
	};
	struct hk_store_flag_result res;
	memset(&res, 0, sizeof(res));
	int rc = n ? hk_store_update_flags(s->st, s->folder, &u, &res) : 0;
	if (rc < 0) {
		log_error("imap", "#%llu %s: STORE in %s: %s", (unsigned long long)s->id, s->address, s->folder, hk_store_error(s->st));
		free(idx);
		free(uids);
		imapd_tagged(j, "NO", "[UNAVAILABLE] Flags cannot be changed now");
		return;
	}
	if (res.changed)
		j->changed = true;
	/* the new flags into the view; others' changes come along (no EXPUNGE
	 * during STORE); ours are answered below, not twice */
	s->sync_skip = uids;
	s->nsync_skip = n;
	imapd_mailbox_sync(j, uid);
	s->sync_skip = NULL;
	s->nsync_skip = 0;
	bool want = !st->silent || st->unchangedsince_set;
	for (size_t i = 0; i < n && want; i++) {
		uint32_t seq = imapd_seq_of(s, uids[i]);
		bool refused = false;
		for (size_t k = 0; k < res.nfailed && !refused; k++)
			refused = res.failed[k] == uids[i];
		if (seq == 0 || refused)
			continue;
		if (st->silent) { /* RFC 7162 3.2: MODSEQ even when silent */
			buf_printf(&j->out, "* %u FETCH (MODSEQ (%llu)%s", seq, (unsigned long long)s->view.v[seq - 1].modseq,
			    uid ? "" : ")\r\n");
			if (uid)
				buf_printf(&j->out, " UID %u)\r\n", uids[i]);
			continue;
		}
		imapd_write_flags_fetch(j, seq - 1, uid);
	}
	if (res.nfailed) {
		/* MODIFIED lists what UNCHANGEDSINCE kept: UIDs for UID STORE,
		 * sequence numbers otherwise (RFC 7162 3.2) */
		uint32_t *ids = xmalloc(res.nfailed * sizeof(*ids));
		size_t m = 0;
		for (size_t k = 0; k < res.nfailed; k++) {
			uint32_t v = uid ? res.failed[k] : imapd_seq_of(s, res.failed[k]);
			if (v)
				ids[m++] = v;
		}
		struct hk_buf set;
		buf_init(&set);
		imap_write_seqset(&set, ids, m);
		imapd_tagged(j, "OK", "[MODIFIED %s] Conditional STORE failed for some messages", set.data ? set.data : "");
		buf_fini(&set);
		free(ids);
	} else {
		imapd_tagged(j, "OK", "STORE completed");
	}
	free(res.failed);
	free(idx);
	free(uids);
}

/* --- EXPUNGE, UID EXPUNGE, CLOSE ----------------------------------------------------- */

void
imapd_cmd_expunge(struct imapd_job *j)
{
	struct imapd_session *s = j->s;
	bool close_cmd = j->cmd.kind == IMAP_CMD_CLOSE;
	if (s->readonly) {
		if (close_cmd) { /* CLOSE of an EXAMINEd mailbox expunges nothing */
			imapd_mailbox_close(s);
			j->unselected = true;
			imapd_tagged(j, "OK", "CLOSE completed");
		} else {
			imapd_tagged(j, "NO", "[READ-ONLY] Mailbox is read-only");
		}
		return;
	}
	size_t *idx = NULL, n = s->view.n;
	if (j->cmd.uid) {
		bool bad;
		idx = imapd_set_indexes(s, &j->cmd.set, true, &n, &bad);
	}
	uint32_t *uids = xmalloc((n ? n : 1) * sizeof(*uids));
	size_t nd = 0;
	for (size_t i = 0; i < n; i++) {
		const struct hk_store_uid_msg *m = &s->view.v[idx ? idx[i] : i];
		if (m->flags & HK_STORE_DELETED)
			uids[nd++] = m->uid;
	}
	free(idx);
	size_t gone = 0;
	int rc = nd ? hk_store_expunge_uids(s->st, s->folder, uids, nd, &gone) : 0;
	free(uids);
	if (rc < 0)
		log_error("imap", "#%llu %s: EXPUNGE in %s: %s", (unsigned long long)s->id, s->address, s->folder, hk_store_error(s->st));
	if (gone)
		j->changed = true;
	if (close_cmd) { /* RFC 3501 6.4.2: no untagged EXPUNGE for CLOSE */
		imapd_mailbox_close(s);
		j->unselected = true;
		imapd_tagged(j, "OK", "CLOSE completed");
		return;
	}
	imapd_mailbox_sync(j, true);
	if (rc < 0)
		imapd_tagged(j, "NO", "[UNAVAILABLE] Some messages could not be expunged");
	else
		imapd_tagged(j, "OK", "EXPUNGE completed");
}

/* --- COPY, MOVE -------------------------------------------------------------------------- */

void
imapd_cmd_copy(struct imapd_job *j)
{
	struct imapd_session *s = j->s;
	bool move = j->cmd.kind == IMAP_CMD_MOVE, uid = j->cmd.uid, bad;
	const char *verb = move ? "MOVE" : "COPY";
	char *dest = hk_store_folder_canon(j->cmd.mailbox.name);
	if (dest == NULL || !hk_store_folder_exists(s->st, dest)) {
		free(dest);
		imapd_tagged(j, "NO", "[TRYCREATE] Mailbox does not exist");
		return;
	}
	if (move && s->readonly) {
		free(dest);
		imapd_tagged(j, "NO", "[READ-ONLY] Mailbox is read-only");
		return;
	}
	size_t n;
	size_t *idx = imapd_set_indexes(s, &j->cmd.set, uid, &n, &bad);
	if (bad) {
		free(dest);
		bad_set(j);
		return;
	}
	uint32_t *src = xmalloc((n ? n : 1) * sizeof(*src)), *dst = xmalloc((n ? n : 1) * sizeof(*dst));
	size_t ok = 0;
	bool gone = false, failed = false;
	uint32_t dest_validity = 0;
	for (size_t i = 0; i < n && !failed; i++) {
		const struct hk_store_uid_msg *m = &s->view.v[idx[i]];
		int fd = imapd_open_message(s, idx[i]);
		struct stat sb;
		if (fd < 0 || fstat(fd, &sb) < 0) {
			if (fd >= 0)
				close(fd);
			gone = true; /* expunged by someone else meanwhile */
			continue;
		}
		const char *kwnames[HK_STORE_KEYWORDS_MAX];
		size_t nkw = 0;
		for (unsigned k = 0; k < HK_STORE_KEYWORDS_MAX; k++)
			if ((m->kw & (1u << k)) && s->kwn.names[k])
				kwnames[nkw++] = s->kwn.names[k];
		struct hk_store_deliver_opts o = {
			.folder = dest,
			.flags = m->flags,
			.keywords = kwnames,
			.nkeywords = nkw,
			.received = (int64_t)sb.st_mtime,
			.check_quota = !move, /* a move frees what it takes */
		};
		struct hk_store_part part = { NULL, fd, 0, (size_t)sb.st_size };
		uint32_t v, u;
		if (hk_store_append(s->st, &o, &part, 1, &v, &u) < 0) {
			int e = errno;
			close(fd);
			failed = true;
			imapd_tagged(j, "NO", e == EDQUOT || e == EFBIG ? "[OVERQUOTA] Quota exceeded" : "[UNAVAILABLE] Messages cannot be copied now");
			break;
		}
		close(fd);
		dest_validity = v;
		src[ok] = m->uid;
		dst[ok] = u;
		ok++;
	}
	free(idx);
	if (ok)
		j->changed_other = dest;
	else
		free(dest);
	if (failed) {
		/* RFC 3501 6.4.7: the copies made so far stay (no partial undo
		 * is promised for MOVE either: the originals are untouched) */
		free(src);
		free(dst);
		return;
	}
	struct hk_buf code;
	buf_init(&code);
	if (ok) {
		buf_printf(&code, "COPYUID %u ", dest_validity);
		imap_write_seqset(&code, src, ok);
		buf_addc(&code, ' ');
		imap_write_seqset(&code, dst, ok);
	}
	if (move) {
		if (ok) {
			/* RFC 6851 3.3: COPYUID untagged, then the EXPUNGEs */
			buf_printf(&j->out, "* OK [%s] Moved\r\n", code.data);
			size_t removed = 0;
			if (hk_store_expunge_uids(s->st, s->folder, src, ok, &removed) < 0)
				log_error("imap", "#%llu %s: MOVE expunge in %s: %s", (unsigned long long)s->id, s->address, s->folder,
				    hk_store_error(s->st));
			j->changed = true;
		}
		imapd_mailbox_sync(j, true);
		if (gone)
			imapd_tagged(j, "NO", "[EXPUNGEISSUED] Some of the messages no longer exist");
		else
			imapd_tagged(j, "OK", "%s completed", verb);
	} else {
		imapd_mailbox_sync(j, uid);
		if (gone)
			imapd_tagged(j, "NO", "[EXPUNGEISSUED] Some of the messages no longer exist");
		else if (ok)
			imapd_tagged(j, "OK", "[%s] %s completed", code.data, verb);
		else
			imapd_tagged(j, "OK", "%s completed", verb);
	}
	buf_fini(&code);
	free(src);
	free(dst);
}
