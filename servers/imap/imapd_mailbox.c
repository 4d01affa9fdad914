/*
 * imapd_mailbox.c - the selected mailbox as the client knows it: a view of
 * the folder from the UID index (store.h hk_store_sync), sequence numbers,
 * \Recent, and the untagged responses (EXPUNGE, EXISTS, RECENT, FETCH
 * FLAGS) that bring the client from its view to the folder's present.
 * Worker side: called from jobs, which own the session's mailbox state.
 *
 * EXPUNGE responses are only sent where RFC 3501 7.4.1 allows them: a sync
 * during FETCH, STORE or SEARCH that finds messages gone keeps the old
 * view whole (those messages stay addressable; their files may be gone,
 * FETCH answers NO [EXPUNGEISSUED] for them) until the next NOOP, CHECK,
 * IDLE, EXPUNGE or UID command.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/log.h"
#include "imap/imap_write.h"
#include "imapd_int.h"

/* --- flags ------------------------------------------------------------------- */

static const struct {
	uint32_t imap, store;
	const char *name;
} sys_flags[] = {
	{ IMAP_FLAG_ANSWERED, HK_STORE_ANSWERED, "\\Answered" },
	{ IMAP_FLAG_FLAGGED, HK_STORE_FLAGGED, "\\Flagged" },
	{ IMAP_FLAG_DELETED, HK_STORE_DELETED, "\\Deleted" },
	{ IMAP_FLAG_SEEN, HK_STORE_SEEN, "\\Seen" },
	{ IMAP_FLAG_DRAFT, HK_STORE_DRAFT, "\\Draft" },
};

bool
imapd_is_forwarded_kw(const char *keyword)
{
	return strcasecmp(keyword, IMAPD_KW_FORWARDED) == 0;
}

uint32_t
imapd_flags_to_store(uint32_t imap_flags)
{
	uint32_t f = 0;
	for (size_t i = 0; i < sizeof(sys_flags) / sizeof(sys_flags[0]); i++)
		if (imap_flags & sys_flags[i].imap)
			f |= sys_flags[i].store;
	return f;
}

void
imapd_write_msg_flags(struct imapd_session *s, struct hk_buf *out, const struct hk_store_uid_msg *m)
{
	buf_addc(out, '(');
	bool sp = false;
	for (size_t i = 0; i < sizeof(sys_flags) / sizeof(sys_flags[0]); i++)
		if (m->flags & sys_flags[i].store) {
			buf_printf(out, "%s%s", sp ? " " : "", sys_flags[i].name);
			sp = true;
		}
	if (m->flags & HK_STORE_PASSED) {
		buf_printf(out, "%s" IMAPD_KW_FORWARDED, sp ? " " : "");
		sp = true;
	}
	for (unsigned k = 0; k < HK_STORE_KEYWORDS_MAX; k++)
		if ((m->kw & (1u << k)) && s->kwn.names[k]) {
			buf_printf(out, "%s%s", sp ? " " : "", s->kwn.names[k]);
			sp = true;
		}
	if (imapd_is_recent(s, m->uid))
		buf_printf(out, "%s\\Recent", sp ? " " : "");
	buf_addc(out, ')');
}

static void
write_flag_names(struct imapd_session *s, struct hk_buf *out, bool star)
{
	buf_adds(out, "(\\Answered \\Flagged \\Deleted \\Seen \\Draft " IMAPD_KW_FORWARDED);
	for (unsigned k = 0; k < HK_STORE_KEYWORDS_MAX; k++)
		if (s->kwn.names[k])
			buf_printf(out, " %s", s->kwn.names[k]);
	if (star)
		buf_adds(out, " \\*");
	buf_addc(out, ')');
}

void
imapd_write_flags_fetch(struct imapd_job *j, size_t i, bool with_uid)
{
	struct imapd_session *s = j->s;
	const struct hk_store_uid_msg *m = &s->view.v[i];
	buf_printf(&j->out, "* %zu FETCH (FLAGS ", i + 1);
	imapd_write_msg_flags(s, &j->out, m);
	if (with_uid)
		buf_printf(&j->out, " UID %u", m->uid);
	if (s->condstore)
		buf_printf(&j->out, " MODSEQ (%llu)", (unsigned long long)m->modseq);
	buf_adds(&j->out, ")\r\n");
}

/* --- lookups ---------------------------------------------------------------------- */

static size_t
lower_bound(const struct hk_store_view *v, uint32_t uid)
{
	size_t lo = 0, hi = v->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v->v[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

uint32_t
imapd_seq_of(const struct imapd_session *s, uint32_t uid)
{
	size_t i = lower_bound(&s->view, uid);
	return i < s->view.n && s->view.v[i].uid == uid ? (uint32_t)(i + 1) : 0;
}

bool
imapd_uid_in(const uint32_t *v, size_t n, uint32_t uid)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v[mid] == uid)
			return true;
		if (v[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

bool
imapd_is_recent(const struct imapd_session *s, uint32_t uid)
{
	return imapd_uid_in(s->recent, s->nrecent, uid);
}

size_t *
imapd_set_indexes(const struct imapd_session *s, const struct imap_seqset *set, bool uid, size_t *n_r, bool *bad_r)
{
	const struct hk_store_view *v = &s->view;
	*n_r = 0;
	*bad_r = false;
	if (v->n == 0) {
		/* "1:*" on an empty mailbox is empty; any number is out of range */
		for (unsigned r = 0; r < set->n && !uid; r++)
			if (set->r[r].lo != IMAP_SEQ_STAR || set->r[r].hi != IMAP_SEQ_STAR)
				*bad_r = true;
		return NULL;
	}
	unsigned char *mark = xcalloc(v->n, 1);
	for (unsigned r = 0; r < set->n; r++) {
		uint32_t lo = set->r[r].lo, hi = set->r[r].hi;
		if (uid) {
			uint32_t max = v->v[v->n - 1].uid;
			lo = lo == IMAP_SEQ_STAR ? max : lo;
			hi = hi == IMAP_SEQ_STAR ? max : hi;
			if (lo > hi) {
				uint32_t t = lo;
				lo = hi;
				hi = t;
			}
			for (size_t i = lower_bound(v, lo); i < v->n && v->v[i].uid <= hi; i++)
				mark[i] = 1;
		} else {
			uint32_t max = (uint32_t)v->n;
			lo = lo == IMAP_SEQ_STAR ? max : lo;
			hi = hi == IMAP_SEQ_STAR ? max : hi;
			if (lo > hi) {
				uint32_t t = lo;
				lo = hi;
				hi = t;
			}
			if (lo == 0 || hi > max) {
				*bad_r = true;
				break;
			}
			memset(mark + lo - 1, 1, hi - lo + 1);
		}
	}
	size_t *idx = NULL, n = 0;
	if (!*bad_r) {
		idx = xmalloc(v->n * sizeof(*idx));
		for (size_t i = 0; i < v->n; i++)
			if (mark[i])
				idx[n++] = i;
	}
	free(mark);
	*n_r = n;
	return idx;
}

/* --- \Recent ----------------------------------------------------------------------- */

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

/* Messages still in new/ that this session sees first are \Recent for it;
 * a read-write session moves them to cur/ so no other session counts them
 * (RFC 3501 2.3.2). `known_below`: UIDs under it were already seen. */
static size_t
claim_recent(struct imapd_session *s, uint32_t known_below)
{
	size_t added = 0;
	uint32_t *claim = NULL;
	size_t nclaim = 0;
	for (size_t i = 0; i < s->view.n; i++) {
		const struct hk_store_uid_msg *m = &s->view.v[i];
		if (!m->in_new || m->uid < known_below)
			continue;
		s->recent = xrealloc(s->recent, (s->nrecent + 1) * sizeof(*s->recent));
		s->recent[s->nrecent++] = m->uid;
		added++;
		if (!s->readonly) {
			claim = xrealloc(claim, (nclaim + 1) * sizeof(*claim));
			claim[nclaim++] = m->uid;
		}
	}
	if (added)
		qsort(s->recent, s->nrecent, sizeof(*s->recent), cmp_u32);
	if (nclaim) {
		char **names = xcalloc(nclaim, sizeof(*names));
		if (hk_store_claim_recent(s->st, s->folder, claim, nclaim, names) < 0)
			log_warnx("imap", "#%llu: moving new messages to cur/: %s", (unsigned long long)s->id, hk_store_error(s->st));
		/* their names changed: the view takes the new ones (claim is in
		 * view order, so one pass over both) */
		size_t k = 0;
		for (size_t i = 0; i < s->view.n && k < nclaim; i++) {
			if (s->view.v[i].uid != claim[k])
				continue;
			if (names[k]) {
				free(s->view.v[i].filename);
				s->view.v[i].filename = names[k];
				s->view.v[i].in_new = false;
			}
			k++;
		}
		free(names);
	}
	free(claim);
	return added;
}

static void
drop_recent(struct imapd_session *s, uint32_t uid)
{
	for (size_t i = 0; i < s->nrecent; i++)
		if (s->recent[i] == uid) {
			memmove(s->recent + i, s->recent + i + 1, (s->nrecent - i - 1) * sizeof(*s->recent));
			s->nrecent--;
			return;
		}
}

/* --- opening messages --------------------------------------------------------------------- */

/* The file of view message i was renamed (flags changed by another
 * session, \Recent claimed, a UID written into its name): find its
 * present name without touching anything else of the client's view. */
static bool
refresh_name(struct imapd_session *s, size_t i)
{
	struct hk_store_view v;
	if (hk_store_sync(s->st, s->folder, NULL, &v) < 0)
		return false;
	const struct hk_store_uid_msg *now = hk_store_view_find(&v, s->view.v[i].uid);
	bool ok = now != NULL;
	if (ok) {
		free(s->view.v[i].filename);
		s->view.v[i].filename = xstrdup(now->filename);
	}
	hk_store_view_free(&v);
	return ok;
}

static int
open_message(struct imapd_session *s, size_t i)
{
	if (s->folder_fd >= 0)
		return hk_store_open_message_at(s->st, s->folder_fd, s->view.v[i].filename);
	return hk_store_open_message(s->st, s->folder, s->view.v[i].filename);
}

int
imapd_open_message(struct imapd_session *s, size_t i)
{
	int fd = open_message(s, i);
	if (fd < 0 && errno == ENOENT && refresh_name(s, i))
		fd = open_message(s, i);
	return fd;
}

/* --- select / sync / close ------------------------------------------------------------- */

void
imapd_mailbox_close(struct imapd_session *s)
{
	hk_store_view_free(&s->view);
	memset(&s->view, 0, sizeof(s->view));
	hk_store_keywords_free(&s->kwn);
	memset(&s->kwn, 0, sizeof(s->kwn));
	free(s->folder);
	s->folder = NULL;
	if (s->folder_fd >= 0)
		close(s->folder_fd);
	s->folder_fd = -1;
	free(s->recent);
	s->recent = NULL;
	s->nrecent = 0;
	s->changed = false;
}

int
imapd_mailbox_select(struct imapd_job *j, const char *folder, bool readonly)
{
	struct imapd_session *s = j->s;
	if (!hk_store_folder_exists(s->st, folder)) {
		imapd_tagged(j, "NO", "[NONEXISTENT] Mailbox does not exist");
		return -1;
	}
	struct hk_store_view v;
	if (hk_store_sync(s->st, folder, NULL, &v) < 0) {
		log_error("imap", "#%llu %s: sync %s: %s", (unsigned long long)s->id, s->address, folder, hk_store_error(s->st));
		imapd_tagged(j, "NO", "[UNAVAILABLE] Mailbox cannot be read now");
		return -1;
	}
	if (v.rebuilt)
		log_warnx("imap", "%s %s: UID index rebuilt (%s)%s", s->address, folder, v.rebuilt_why ? v.rebuilt_why : "?",
		    v.uidvalidity_changed ? ", new UIDVALIDITY" : "");
	s->view = v;
	s->folder = xstrdup(folder);
	/* FETCH and SEARCH open messages relative to it (no path walk per
	 * message, a fifth of a FETCH of all bodies); without it, by path */
	s->folder_fd = hk_store_folder_open(s->st, folder);
	s->readonly = readonly;
	if (hk_store_keywords(s->st, folder, &s->kwn) < 0)
		memset(&s->kwn, 0, sizeof(s->kwn));
	size_t recent = claim_recent(s, 0);
	struct hk_buf *o = &j->out;
	buf_adds(o, "* FLAGS ");
	write_flag_names(s, o, false);
	buf_adds(o, "\r\n* OK [PERMANENTFLAGS ");
	if (readonly)
		buf_adds(o, "()");
	else
		write_flag_names(s, o, true);
	buf_printf(o, "] Flags permitted\r\n* %zu EXISTS\r\n* %zu RECENT\r\n", s->view.n, recent);
	for (size_t i = 0; i < s->view.n; i++)
		if (!(s->view.v[i].flags & HK_STORE_SEEN)) {
			buf_printf(o, "* OK [UNSEEN %zu] First unseen\r\n", i + 1);
			break;
		}
	buf_printf(o, "* OK [UIDVALIDITY %u] UIDs valid\r\n* OK [UIDNEXT %u] Predicted next UID\r\n", s->view.uidvalidity,
	    s->view.uidnext);
	buf_printf(o, "* OK [HIGHESTMODSEQ %llu] Highest\r\n", (unsigned long long)s->view.highestmodseq);
	return 0;
}

void
imapd_mailbox_sync(struct imapd_job *j, bool allow_expunge)
{
	struct imapd_session *s = j->s;
	if (s->folder == NULL)
		return;
	struct hk_store_view nv;
	if (hk_store_sync(s->st, s->folder, &s->view, &nv) < 0) {
		log_warnx("imap", "#%llu %s: sync %s: %s", (unsigned long long)s->id, s->address, s->folder, hk_store_error(s->st));
		return;
	}
	if (nv.uidvalidity != s->view.uidvalidity) {
		/* the client's UIDs mean nothing any more: it must start over */
		hk_store_view_free(&nv);
		buf_adds(&j->out, "* BYE Mailbox UIDVALIDITY changed, please reconnect\r\n");
		j->logout = true;
		return;
	}
	if (nv.nexpunged && !allow_expunge) {
		/* keep the client's numbering until EXPUNGE may be said */
		hk_store_view_free(&nv);
		s->changed = true;
		return;
	}
	struct hk_buf *o = &j->out;
	/* EXPUNGE from the highest sequence number down, so each one names
	 * the message by the numbering the client has at that moment */
	for (size_t k = nv.nexpunged; k-- > 0;) {
		uint32_t seq = imapd_seq_of(s, nv.expunged[k]);
		if (seq) {
			buf_printf(o, "* %u EXPUNGE\r\n", seq);
			drop_recent(s, nv.expunged[k]);
		}
	}
	size_t old_n = s->view.n - nv.nexpunged;
	uint32_t old_next = s->view.n ? s->view.v[s->view.n - 1].uid + 1 : 0;
	uint64_t old_hms = s->view.highestmodseq;
	size_t old_recent = s->nrecent;
	struct hk_store_view old = s->view;
	s->view = nv;
	if (hk_store_keywords(s->st, s->folder, &s->kwn) < 0) { /* new keywords may have been assigned */
		hk_store_keywords_free(&s->kwn);
		memset(&s->kwn, 0, sizeof(s->kwn));
	}
	claim_recent(s, old_next);
	if (s->view.n != old_n || nv.nexpunged)
		buf_printf(o, "* %zu EXISTS\r\n", s->view.n);
	if (s->nrecent != old_recent)
		buf_printf(o, "* %zu RECENT\r\n", s->nrecent);
	/* flags others changed, on messages the client knew */
	for (size_t i = 0; i < s->view.n; i++) {
		const struct hk_store_uid_msg *m = &s->view.v[i];
		if (m->uid < old_next && m->modseq > old_hms && !imapd_uid_in(s->sync_skip, s->nsync_skip, m->uid)) {
			const struct hk_store_uid_msg *was = hk_store_view_find(&old, m->uid);
			if (was == NULL || was->flags != m->flags || was->kw != m->kw || s->condstore)
				imapd_write_flags_fetch(j, i, true);
		}
	}
	hk_store_view_free(&old);
	s->changed = false;
}
