/*
 * imapd_fetch.c - FETCH and UID FETCH (worker side): flags, UID, MODSEQ
 * from the UID index; INTERNALDATE from the file's mtime; ENVELOPE,
 * BODY[STRUCTURE], BODY[section]<partial> and RFC822.* from the message
 * (servers/imap/imap_msg.h and friends).
 *
 * Files up to FETCH_READ_MAX are read into memory, larger ones mapped (only
 * what a section touches is read: ENVELOPE of a 50 MB message reads its
 * header). A response is written in chunks of about IMAPD_CHUNK: the job
 * yields and goes on once the output has drained, and a literal larger
 * than a chunk (a whole big message) is copied from the mapping piece by
 * piece, so FETCH 1:* BODY[] of any mailbox costs bounded memory.
 *
 * INTERNALDATE, RFC822.SIZE, ENVELOPE and the top-level HEADER sections
 * come from the folder's message cache when it has the message
 * (imapd_cache.c), and every message file read fills it.
 *
 * A non-PEEK body section sets \Seen (RFC 3501 6.4.5) for every message of
 * the command first, in one update, and those messages' responses then
 * carry FLAGS.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "imap/imap_bodystructure.h"
#include "imap/imap_envelope.h"
#include "imap/imap_msg.h"
#include "imap/imap_section.h"
#include "imap/imap_write.h"
#include "imapd_int.h"

struct fetch_state {
	struct hk_store_cache *cache; /* the folder's message cache, or NULL */
	uint32_t *uids;   /* the messages, ascending */
	size_t n, pos;
	uint32_t *seen;   /* UIDs this FETCH marked \Seen (their responses carry FLAGS) */
	size_t nseen;
	bool gone;        /* some message's file has vanished */
	/* a literal being copied across chunks (from a mapping) */
	bool streaming;
	char *map;
	size_t map_len;
	size_t lit_off, lit_left;
};

static void
fetch_state_free(void *p)
{
	struct fetch_state *st = p;
	if (st == NULL)
		return;
	if (st->map)
		munmap(st->map, st->map_len);
	/* a FETCH abandoned mid-way (the client went away): what it learned
	 * is dropped, no I/O here (this may run on the loop) */
	hk_store_cache_close(&st->cache, NULL);
	free(st->uids);
	free(st->seen);
	free(st);
}

static bool
sets_seen(const struct imap_fetch *f)
{
	if (f->items & (IMAP_FETCH_RFC822 | IMAP_FETCH_RFC822_TEXT))
		return true;
	for (unsigned i = 0; i < f->nsections; i++)
		if (!f->sections[i].peek)
			return true;
	return false;
}

static bool
needs_content(const struct imap_fetch *f)
{
	return f->nsections || (f->items & (IMAP_FETCH_ENVELOPE | IMAP_FETCH_BODY | IMAP_FETCH_BODYSTRUCTURE | IMAP_FETCH_RFC822 |
	    IMAP_FETCH_RFC822_HEADER | IMAP_FETCH_RFC822_TEXT));
}

/* Items that need more of the message than its header block. */
static bool
needs_body(const struct imap_fetch *f)
{
	if (f->items & (IMAP_FETCH_BODY | IMAP_FETCH_BODYSTRUCTURE | IMAP_FETCH_RFC822 | IMAP_FETCH_RFC822_TEXT))
		return true;
	for (unsigned i = 0; i < f->nsections; i++) {
		const struct imap_fetch_section *fs = &f->sections[i];
		if (fs->nparts != 0 || (fs->spec != IMAP_SPEC_HEADER && fs->spec != IMAP_SPEC_HEADER_FIELDS &&
		    fs->spec != IMAP_SPEC_HEADER_FIELDS_NOT))
			return true;
	}
	return false;
}

/* Whether the message cache can answer part of this FETCH, or learn from
 * the files it reads. */
static bool
uses_cache(const struct imap_fetch *f)
{
	return needs_content(f) || (f->items & (IMAP_FETCH_INTERNALDATE | IMAP_FETCH_RFC822_SIZE));
}

/* The message's items from its cache record alone (no body item asked),
 * when the record has all they need: c then holds the header block as the
 * message. */
static bool
from_cache(const struct imap_fetch *f, const struct hk_store_cache_rec *r, struct imapd_content *c)
{
	bool sections = f->nsections || (f->items & IMAP_FETCH_RFC822_HEADER);
	if (needs_content(f)) {
		if (r->hdr == NULL)
			return false; /* a header longer than the cache keeps */
		/* HEADER sections come from the MIME parser's idea of the header:
		 * the same on the block only when every line is a field */
		if (sections && !(r->flags & HK_STORE_CACHE_HDR_FIELDS))
			return false;
		imap_msg_init(&c->msg, r->hdr, r->hdr_len);
		c->len = r->hdr_len;
		c->have = true;
	}
	return true;
}

/* The first run: which messages, and \Seen for the body fetches. */
static bool
prepare(struct imapd_job *j, struct fetch_state *st)
{
	struct imapd_session *s = j->s;
	const struct imap_fetch *f = &j->cmd.fetch;
	bool bad;
	size_t n;
	size_t *idx = imapd_set_indexes(s, &f->set, j->cmd.uid, &n, &bad);
	if (bad) {
		imapd_tagged(j, "BAD", "Invalid message sequence number");
		return false;
	}
	if (f->changedsince_set || (f->items & IMAP_FETCH_MODSEQ))
		s->condstore = true;
	st->uids = xmalloc((n ? n : 1) * sizeof(*st->uids));
	for (size_t i = 0; i < n; i++) {
		const struct hk_store_uid_msg *m = &s->view.v[idx[i]];
		if (f->changedsince_set && m->modseq <= f->changedsince)
			continue;
		st->uids[st->n++] = m->uid;
	}
	free(idx);
	if (!s->readonly && sets_seen(f)) {
		uint32_t *want = xmalloc((st->n ? st->n : 1) * sizeof(*want));
		size_t nw = 0;
		for (size_t i = 0; i < st->n; i++) {
			uint32_t seq = imapd_seq_of(s, st->uids[i]);
			if (seq && !(s->view.v[seq - 1].flags & HK_STORE_SEEN))
				want[nw++] = st->uids[i];
		}
		if (nw) {
			struct hk_store_flag_update u = { .uids = want, .nuids = nw, .op = HK_STORE_FLAGS_ADD, .flags = HK_STORE_SEEN };
			struct hk_store_flag_result res;
			memset(&res, 0, sizeof(res));
			if (hk_store_update_flags(s->st, s->folder, &u, &res) < 0)
				log_warnx("imap", "#%llu: \\Seen in %s: %s", (unsigned long long)s->id, s->folder, hk_store_error(s->st));
			free(res.failed);
			j->changed = true;
			st->seen = want;
			st->nseen = nw;
			s->sync_skip = want;
			s->nsync_skip = nw;
			imapd_mailbox_sync(j, j->cmd.uid);
			s->sync_skip = NULL;
			s->nsync_skip = 0;
		} else {
			free(want);
		}
	}
	return true;
}

/* --- one message ---------------------------------------------------------------- */

static void
section_of(const struct imap_fetch_section *fs, struct imap_section *sec)
{
	memset(sec, 0, sizeof(*sec));
	sec->nparts = fs->nparts < IMAP_SECTION_MAX_DEPTH ? fs->nparts : IMAP_SECTION_MAX_DEPTH;
	for (unsigned i = 0; i < sec->nparts; i++)
		sec->part[i] = fs->parts[i];
	switch (fs->spec) {
	case IMAP_SPEC_HEADER: sec->kind = IMAP_SECTION_HEADER; break;
	case IMAP_SPEC_HEADER_FIELDS: sec->kind = IMAP_SECTION_HEADER_FIELDS; break;
	case IMAP_SPEC_HEADER_FIELDS_NOT: sec->kind = IMAP_SECTION_HEADER_FIELDS_NOT; break;
	case IMAP_SPEC_TEXT: sec->kind = IMAP_SECTION_TEXT; break;
	case IMAP_SPEC_MIME: sec->kind = IMAP_SECTION_MIME; break;
	default: sec->kind = IMAP_SECTION_ALL; break;
	}
	sec->nfields = fs->nfields < IMAP_SECTION_MAX_FIELDS ? fs->nfields : IMAP_SECTION_MAX_FIELDS;
	for (size_t i = 0; i < sec->nfields; i++)
		sec->fields[i] = (struct hk_str){ fs->fields[i], strlen(fs->fields[i]) };
}

/* Writes "label {n}\r\n" and the bytes; or, for a big clean range that is
 * the last item, starts streaming it (returns true). */
static bool
write_section(struct imapd_job *j, struct fetch_state *st, struct imapd_content *c, bool *first, const char *label,
    const struct imap_section *sec, bool partial, size_t origin, size_t count, bool last)
{
	struct imap_section_data d;
	enum imap_section_status ss = imap_section_resolve(&c->msg, sec, &d);
	buf_printf(&j->out, "%s%s", *first ? "" : " ", label);
	*first = false;
	if (partial)
		buf_printf(&j->out, "<%zu>", origin);
	if (ss != IMAP_SECTION_OK) {
		buf_adds(&j->out, " \"\""); /* no such part: empty, as Dovecot answers */
		return false;
	}
	size_t len = imap_section_partial_size(&d, partial ? origin : 0, partial ? count : SIZE_MAX);
	buf_printf(&j->out, " {%zu}\r\n", len);
	size_t off, rlen;
	if (last && c->map && len > IMAPD_CHUNK && imap_section_range(&c->msg, &d, partial ? origin : 0,
	    partial ? count : SIZE_MAX, &off, &rlen) && rlen == len) {
		st->streaming = true;
		st->lit_off = off;
		st->lit_left = rlen;
		return true;
	}
	imap_section_write(&c->msg, &d, partial ? origin : 0, partial ? count : SIZE_MAX, &j->out);
	return false;
}

static void
stream_some(struct imapd_job *j, struct fetch_state *st)
{
	size_t room = IMAPD_CHUNK > j->out.len ? IMAPD_CHUNK - j->out.len : 0;
	size_t k = st->lit_left < room ? st->lit_left : room;
	if (k == 0)
		k = st->lit_left < 4096 ? st->lit_left : 4096;
	buf_add(&j->out, st->map + st->lit_off, k);
	st->lit_off += k;
	st->lit_left -= k;
	if (st->lit_left == 0) {
		buf_adds(&j->out, ")\r\n");
		munmap(st->map, st->map_len);
		st->map = NULL;
		st->streaming = false;
		st->pos++;
	}
}

/* Returns true when the message's response is complete (else streaming). */
static bool
write_message(struct imapd_job *j, struct fetch_state *st, uint32_t uid)
{
	struct imapd_session *s = j->s;
	const struct imap_fetch *f = &j->cmd.fetch;
	uint32_t seq = imapd_seq_of(s, uid);
	if (seq == 0)
		return true; /* expunged and already announced: nothing to say */
	const struct hk_store_uid_msg *m = &s->view.v[seq - 1];
	struct imapd_content c;
	memset(&c, 0, sizeof(c));
	struct stat sb;
	memset(&sb, 0, sizeof(sb));
	time_t idate = 0;
	uint64_t vsize = m->vsize;
	struct hk_store_cache_rec cr;
	/* a FETCH of bodies reads the file anyway: the cache only learns */
	bool body = needs_body(f);
	bool hit = body ? st->cache && hk_store_cache_has(st->cache, m) : imapd_cache_get(s, st->cache, seq - 1, &cr);
	if (!body && hit && from_cache(f, &cr, &c)) {
		idate = (time_t)cr.mtime;
		vsize = cr.vsize;
	} else {
		bool want_size_exact = (f->items & IMAP_FETCH_RFC822_SIZE) && strstr(m->filename, ",W=") == NULL;
		bool need = needs_content(f) || want_size_exact;
		if ((need || (f->items & IMAP_FETCH_INTERNALDATE)) &&
		    (need ? imapd_content_load(s, seq - 1, &c) : imapd_stat_message(s, seq - 1, &sb)) < 0) {
			st->gone = true; /* the file went away under us (RFC 2180 4.1) */
			return true;
		}
		idate = c.have ? c.sb.st_mtime : sb.st_mtime;
		if (c.have) {
			if (f->items & IMAP_FETCH_RFC822_SIZE)
				vsize = imap_msg_vsize(&c.msg); /* reads it all: only when asked */
			if (!hit)
				imapd_cache_fill(s, st->cache, seq - 1, &c);
		}
	}
	struct hk_buf *o = &j->out;
	buf_printf(o, "* %u FETCH (", seq);
	const char *sp = "";
	if (j->cmd.uid || (f->items & IMAP_FETCH_UID)) {
		buf_printf(o, "UID %u", m->uid);
		sp = " ";
	}
	bool flags = (f->items & IMAP_FETCH_FLAGS) || imapd_uid_in(st->seen, st->nseen, uid);
	if (flags) {
		buf_printf(o, "%sFLAGS ", sp);
		imapd_write_msg_flags(s, o, m);
		sp = " ";
	}
	if ((f->items & IMAP_FETCH_MODSEQ) || f->changedsince_set || (flags && s->condstore)) {
		buf_printf(o, "%sMODSEQ (%llu)", sp, (unsigned long long)m->modseq);
		sp = " ";
	}
	if (f->items & IMAP_FETCH_INTERNALDATE) {
		buf_printf(o, "%sINTERNALDATE ", sp);
		imap_write_datetime(o, idate, 0);
		sp = " ";
	}
	if (f->items & IMAP_FETCH_RFC822_SIZE) {
		buf_printf(o, "%sRFC822.SIZE %llu", sp, (unsigned long long)vsize);
		sp = " ";
	}
	if (f->items & IMAP_FETCH_ENVELOPE) {
		buf_printf(o, "%sENVELOPE ", sp);
		imap_envelope_write(c.msg.raw, c.msg.len, o);
		sp = " ";
	}
	if (f->items & IMAP_FETCH_BODYSTRUCTURE) {
		buf_printf(o, "%sBODYSTRUCTURE ", sp);
		imap_bodystructure_write(&c.msg, true, o);
		sp = " ";
	}
	if (f->items & IMAP_FETCH_BODY) {
		buf_printf(o, "%sBODY ", sp);
		imap_bodystructure_write(&c.msg, false, o);
		sp = " ";
	}
	/* the literals last; the very last may stream */
	bool first = *sp == '\0';
	struct imap_section sec;
	bool streaming = false;
	unsigned nlit = (f->items & IMAP_FETCH_RFC822_HEADER ? 1 : 0) + (f->items & IMAP_FETCH_RFC822_TEXT ? 1 : 0) +
	    (f->items & IMAP_FETCH_RFC822 ? 1 : 0) + f->nsections;
	unsigned lit = 0;
	if (f->items & IMAP_FETCH_RFC822_HEADER) {
		memset(&sec, 0, sizeof(sec));
		sec.kind = IMAP_SECTION_HEADER;
		streaming = write_section(j, st, &c, &first, "RFC822.HEADER", &sec, false, 0, 0, ++lit == nlit);
	}
	if ((f->items & IMAP_FETCH_RFC822_TEXT) && !streaming) {
		memset(&sec, 0, sizeof(sec));
		sec.kind = IMAP_SECTION_TEXT;
		streaming = write_section(j, st, &c, &first, "RFC822.TEXT", &sec, false, 0, 0, ++lit == nlit);
	}
	if ((f->items & IMAP_FETCH_RFC822) && !streaming) {
		memset(&sec, 0, sizeof(sec));
		streaming = write_section(j, st, &c, &first, "RFC822", &sec, false, 0, 0, ++lit == nlit);
	}
	for (unsigned i = 0; i < f->nsections && !streaming; i++) {
		const struct imap_fetch_section *fs = &f->sections[i];
		section_of(fs, &sec);
		char *label = xasprintf("BODY[%s]", fs->text ? fs->text : "");
		streaming = write_section(j, st, &c, &first, label, &sec, fs->partial, fs->offset, fs->partial ? fs->count : 0,
		    ++lit == nlit);
		free(label);
	}
	size_t len = c.len;
	char *kept = imapd_content_free(&c, streaming);
	if (kept) {
		st->map = kept;
		st->map_len = len;
	}
	if (streaming)
		return false;
	buf_adds(o, ")\r\n");
	return true;
}

void
imapd_cmd_fetch(struct imapd_job *j)
{
	struct fetch_state *st = j->state;
	if (st == NULL) {
		st = xcalloc(1, sizeof(*st));
		j->state = st;
		j->state_free = fetch_state_free;
		if (!prepare(j, st))
			return;
		if (uses_cache(&j->cmd.fetch))
			st->cache = imapd_cache_open(j->s);
	}
	while (st->pos < st->n && j->out.len < IMAPD_CHUNK) {
		if (st->streaming) {
			stream_some(j, st);
			continue;
		}
		if (write_message(j, st, st->uids[st->pos]))
			st->pos++;
	}
	if (st->pos < st->n || st->streaming) {
		j->more = true;
		return;
	}
	imapd_cache_close(j->s, &st->cache);
	if (st->gone)
		imapd_tagged(j, "NO", "[EXPUNGEISSUED] Some of the requested messages no longer exist");
	else
		imapd_tagged(j, "OK", "%sFETCH completed", j->cmd.uid ? "UID " : "");
}
