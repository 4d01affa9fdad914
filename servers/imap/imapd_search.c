/*
 * imapd_search.c - SEARCH and UID SEARCH (worker side): every key of RFC
 * 3501 6.4.4 and CONDSTORE's MODSEQ, evaluated per message with what it
 * needs and no more: flags, sizes, UIDs and MODSEQs come from the UID index;
 * INTERNALDATE keys, SENT* and the header keys come from the folder's
 * message cache (imapd_cache.c) when it has the message, else from the file
 * (stat, or the header), which fills the cache; BODY and TEXT decode the
 * message (charsets included, so UTF-8
 * search strings find Japanese text in ISO-2022-JP, Shift_JIS or EUC-JP
 * mail: servers/imap/imap_search_text.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "imap/imap_msg.h"
#include "imap/imap_search_text.h"
#include "imapd_int.h"

struct ctx {
	struct imapd_session *s;
	size_t i;                        /* index in the view */
	const struct hk_store_uid_msg *m;
	uint32_t max_uid;
	struct hk_store_cache *cache;    /* the folder's message cache, or NULL */
	/* loaded on demand */
	bool rec_done, rec_ok;           /* the message's cache record */
	struct hk_store_cache_rec rec;
	bool hdr_init;
	struct imap_msg hdr;             /* its cached header block, as a message */
	bool stat_done, stat_ok;
	struct stat sb;
	bool loaded, load_ok;
	struct imapd_content content;
	bool gone;
};

static bool
cached(struct ctx *c)
{
	if (!c->rec_done) {
		c->rec_done = true;
		c->rec_ok = imapd_cache_get(c->s, c->cache, c->i, &c->rec);
	}
	return c->rec_ok;
}

static bool
do_stat(struct ctx *c)
{
	if (!c->stat_done && cached(c)) {
		c->stat_done = c->stat_ok = true;
		c->sb.st_mtime = (time_t)c->rec.mtime;
	}
	if (!c->stat_done) {
		c->stat_done = true;
		c->stat_ok = imapd_stat_message(c->s, c->i, &c->sb) == 0;
		if (!c->stat_ok)
			c->gone = true;
	}
	return c->stat_ok;
}

static struct imap_msg *
content(struct ctx *c)
{
	if (!c->loaded) {
		c->loaded = true;
		c->load_ok = imapd_content_load(c->s, c->i, &c->content) == 0;
		if (!c->load_ok)
			c->gone = true;
		else if (!cached(c))
			imapd_cache_fill(c->s, c->cache, c->i, &c->content);
	}
	return c->load_ok ? &c->content.msg : NULL;
}

/* What the header keys read: the cached header block when there is one
 * (the header iterator stops at its end as it does at the empty line of
 * the whole message), else the message. */
static struct imap_msg *
header(struct ctx *c)
{
	if (cached(c) && c->rec.hdr) {
		if (!c->hdr_init) {
			imap_msg_init(&c->hdr, c->rec.hdr, c->rec.hdr_len);
			c->hdr_init = true;
		}
		return &c->hdr;
	}
	return content(c);
}

static void
ctx_reset(struct ctx *c)
{
	imapd_content_free(&c->content, false);
	if (c->hdr_init)
		imap_msg_fini(&c->hdr);
	c->hdr_init = c->rec_done = c->rec_ok = false;
	c->loaded = c->load_ok = c->stat_done = c->stat_ok = false;
}

/* INTERNALDATE's calendar day (UTC) against a SEARCH date: -1, 0, 1. */
static int
cmp_day(time_t t, const struct imap_day *d)
{
	struct tm tm;
	gmtime_r(&t, &tm);
	long a = (long)(tm.tm_year + 1900) * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday;
	long b = (long)d->year * 10000 + d->mon * 100 + d->day;
	return (a > b) - (a < b);
}

static bool
has_keyword(const struct ctx *c, const char *kw)
{
	if (imapd_is_forwarded_kw(kw))
		return c->m->flags & HK_STORE_PASSED;
	for (unsigned k = 0; k < HK_STORE_KEYWORDS_MAX; k++)
		if (c->s->kwn.names[k] && strcasecmp(c->s->kwn.names[k], kw) == 0)
			return c->m->kw & (1u << k);
	return false;
}

static bool eval_list(struct ctx *c, const struct imap_search_key *k);

static bool
header_has(struct ctx *c, const char *name, const struct hk_str *needle)
{
	struct imap_msg *m = header(c);
	return m && imap_search_header(m, name, strlen(name), needle->ptr, needle->len);
}

static bool
eval(struct ctx *c, const struct imap_search_key *k)
{
	const struct hk_store_uid_msg *m = c->m;
	uint32_t f = m->flags;
	bool recent = imapd_is_recent(c->s, m->uid);
	switch (k->op) {
	case IMAP_SEARCH_SEQSET:
		return imap_seqset_contains(&k->set, (uint32_t)(c->i + 1), (uint32_t)c->s->view.n);
	case IMAP_SEARCH_AND:
		return eval_list(c, k->child);
	case IMAP_SEARCH_ALL:
		return true;
	case IMAP_SEARCH_ANSWERED:
		return f & HK_STORE_ANSWERED;
	case IMAP_SEARCH_UNANSWERED:
		return !(f & HK_STORE_ANSWERED);
	case IMAP_SEARCH_DELETED:
		return f & HK_STORE_DELETED;
	case IMAP_SEARCH_UNDELETED:
		return !(f & HK_STORE_DELETED);
	case IMAP_SEARCH_DRAFT:
		return f & HK_STORE_DRAFT;
	case IMAP_SEARCH_UNDRAFT:
		return !(f & HK_STORE_DRAFT);
	case IMAP_SEARCH_FLAGGED:
		return f & HK_STORE_FLAGGED;
	case IMAP_SEARCH_UNFLAGGED:
		return !(f & HK_STORE_FLAGGED);
	case IMAP_SEARCH_SEEN:
		return f & HK_STORE_SEEN;
	case IMAP_SEARCH_UNSEEN:
		return !(f & HK_STORE_SEEN);
	case IMAP_SEARCH_RECENT:
		return recent;
	case IMAP_SEARCH_NEW:
		return recent && !(f & HK_STORE_SEEN);
	case IMAP_SEARCH_OLD:
		return !recent;
	case IMAP_SEARCH_KEYWORD:
		return has_keyword(c, k->str.ptr);
	case IMAP_SEARCH_UNKEYWORD:
		return !has_keyword(c, k->str.ptr);
	case IMAP_SEARCH_LARGER:
		return m->vsize > k->num;
	case IMAP_SEARCH_SMALLER:
		return m->vsize < k->num;
	case IMAP_SEARCH_UID:
		return imap_seqset_contains(&k->set, m->uid, c->max_uid);
	case IMAP_SEARCH_MODSEQ:
		return m->modseq >= k->num;
	case IMAP_SEARCH_NOT:
		return !eval(c, k->child);
	case IMAP_SEARCH_OR:
		return eval(c, k->child) || eval(c, k->child2);
	case IMAP_SEARCH_BEFORE:
		return do_stat(c) && cmp_day(c->sb.st_mtime, &k->date) < 0;
	case IMAP_SEARCH_ON:
		return do_stat(c) && cmp_day(c->sb.st_mtime, &k->date) == 0;
	case IMAP_SEARCH_SINCE:
		return do_stat(c) && cmp_day(c->sb.st_mtime, &k->date) >= 0;
	case IMAP_SEARCH_SENTBEFORE:
	case IMAP_SEARCH_SENTON:
	case IMAP_SEARCH_SENTSINCE: {
		struct imap_msg *msg = header(c);
		enum imap_sent_op op = k->op == IMAP_SEARCH_SENTBEFORE ? IMAP_SENT_BEFORE : k->op == IMAP_SEARCH_SENTON ? IMAP_SENT_ON
		    : IMAP_SENT_SINCE;
		return msg && imap_search_sent(msg, op, k->date.year, k->date.mon, k->date.day);
	}
	case IMAP_SEARCH_FROM:
		return header_has(c, "From", &k->str);
	case IMAP_SEARCH_TO:
		return header_has(c, "To", &k->str);
	case IMAP_SEARCH_CC:
		return header_has(c, "Cc", &k->str);
	case IMAP_SEARCH_BCC:
		return header_has(c, "Bcc", &k->str);
	case IMAP_SEARCH_SUBJECT:
		return header_has(c, "Subject", &k->str);
	case IMAP_SEARCH_HEADER:
		return header_has(c, k->header, &k->str);
	case IMAP_SEARCH_BODY: {
		struct imap_msg *msg = content(c);
		return msg && imap_search_body(msg, k->str.ptr, k->str.len);
	}
	case IMAP_SEARCH_TEXT: {
		struct imap_msg *msg = content(c);
		return msg && imap_search_text(msg, k->str.ptr, k->str.len);
	}
	default:
		return false;
	}
}

static bool
eval_list(struct ctx *c, const struct imap_search_key *k)
{
	for (; k; k = k->next)
		if (!eval(c, k))
			return false;
	return true;
}

/* Whether a key reads the message (its date, header or text): then the
 * message cache is worth opening. */
static bool
reads_message(const struct imap_search_key *k)
{
	for (; k; k = k->next) {
		switch (k->op) {
		case IMAP_SEARCH_BEFORE: case IMAP_SEARCH_ON: case IMAP_SEARCH_SINCE:
		case IMAP_SEARCH_SENTBEFORE: case IMAP_SEARCH_SENTON: case IMAP_SEARCH_SENTSINCE:
		case IMAP_SEARCH_FROM: case IMAP_SEARCH_TO: case IMAP_SEARCH_CC: case IMAP_SEARCH_BCC:
		case IMAP_SEARCH_SUBJECT: case IMAP_SEARCH_HEADER: case IMAP_SEARCH_BODY: case IMAP_SEARCH_TEXT:
			return true;
		default:
			break;
		}
		if (reads_message(k->child) || reads_message(k->child2))
			return true;
	}
	return false;
}

static bool
uses_modseq(const struct imap_search_key *k)
{
	for (; k; k = k->next)
		if (k->op == IMAP_SEARCH_MODSEQ || uses_modseq(k->child) || uses_modseq(k->child2))
			return true;
	return false;
}

void
imapd_cmd_search(struct imapd_job *j)
{
	struct imapd_session *s = j->s;
	const struct imap_search *q = &j->cmd.search;
	if (q->bad_charset) {
		imapd_tagged(j, "NO", "[BADCHARSET (UTF-8 US-ASCII)] Unsupported charset");
		return;
	}
	bool uid = j->cmd.uid;
	if (uid) /* UID SEARCH may bring the client up to date first */
		imapd_mailbox_sync(j, true);
	bool modseq = uses_modseq(q->keys);
	if (modseq)
		s->condstore = true;
	struct ctx c;
	memset(&c, 0, sizeof(c));
	c.s = s;
	c.max_uid = s->view.n ? s->view.v[s->view.n - 1].uid : 0;
	if (reads_message(q->keys))
		c.cache = imapd_cache_open(s);
	buf_adds(&j->out, "* SEARCH");
	uint64_t top = 0;
	bool gone = false;
	for (size_t i = 0; i < s->view.n; i++) {
		c.i = i;
		c.m = &s->view.v[i];
		bool hit = eval_list(&c, q->keys);
		gone |= c.gone;
		c.gone = false;
		ctx_reset(&c);
		if (!hit)
			continue;
		buf_printf(&j->out, " %u", uid ? c.m->uid : (uint32_t)(i + 1));
		if (c.m->modseq > top)
			top = c.m->modseq;
	}
	imapd_cache_close(s, &c.cache);
	if (modseq && top)
		buf_printf(&j->out, " (MODSEQ %llu)", (unsigned long long)top);
	buf_adds(&j->out, "\r\n");
	(void)gone; /* a vanished file simply does not match (RFC 2180 4.1.3) */
	imapd_tagged(j, "OK", "%sSEARCH completed", uid ? "UID " : "");
}
