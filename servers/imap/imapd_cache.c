/*
 * imapd_cache.c - the store's message cache (runtime/store.h, "the message
 * cache") as FETCH and SEARCH use it (worker side): the cache is opened
 * for one command, answers INTERNALDATE, RFC822.SIZE, ENVELOPE, the
 * top-level HEADER sections and the SEARCH header and date keys without
 * opening message files, and learns from every message file the command
 * reads anyway, so the first FETCH or SEARCH of a folder fills it and the
 * next ones are served from it.
 *
 * Memory: the cache lives for the command only (one read of the folder's
 * cache file, freed at the tagged reply), so an idle session holds none of
 * it.
 */
#include <string.h>

#include "imap/imap_hdr.h"
#include "imapd_int.h"

struct hk_store_cache *
imapd_cache_open(struct imapd_session *s)
{
	struct hk_store_cache *c = NULL;
	if (s->folder == NULL || hk_store_cache_open(s->st, s->folder, s->view.uidvalidity, &c) != 0)
		return NULL; /* only a folder name that cannot be on disk */
	return c;
}

void
imapd_cache_close(struct imapd_session *s, struct hk_store_cache **c)
{
	hk_store_cache_close(c, &s->view);
}

bool
imapd_cache_get(struct imapd_session *s, struct hk_store_cache *c, size_t i, struct hk_store_cache_rec *r)
{
	return c != NULL && hk_store_cache_get(c, &s->view.v[i], r);
}

void
imapd_cache_fill(struct imapd_session *s, struct hk_store_cache *c, size_t i, struct imapd_content *ct)
{
	if (c == NULL || !ct->have)
		return;
	const struct hk_store_uid_msg *m = &s->view.v[i];
	bool has_w = strstr(m->filename, ",W=") != NULL;
	if (!has_w && ct->map)
		return; /* a large file of another program's: its size would mean reading it all */
	bool fields;
	size_t hlen = imap_hdr_block(ct->msg.raw, ct->msg.len, &fields);
	struct hk_store_cache_rec r = { .mtime = (int64_t)ct->sb.st_mtime };
	/* ,W= is the size with CRLF, counted when the message was stored (as
	 * FETCH without the file already trusts it); counting again would read
	 * every page of a mapped 50 MB message for an ENVELOPE */
	r.vsize = has_w ? m->vsize : imap_msg_vsize(&ct->msg);
	if (hlen <= HK_STORE_CACHE_HDR_MAX) {
		r.hdr = ct->msg.raw;
		r.hdr_len = hlen;
		r.flags = fields ? HK_STORE_CACHE_HDR_FIELDS : 0;
	}
	hk_store_cache_put(c, m, &r);
}
