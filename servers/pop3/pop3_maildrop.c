/*
 * pop3_maildrop.c - the POP3 maildrop on the Maildir++ store (see
 * pop3_maildrop.h).
 */
#include "pop3_maildrop.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "pop3_format.h"
#include "store.h"

#define READ_CHUNK (64 * 1024)

/* --- identity ------------------------------------------------------------------ */

/* The part of a file name that never changes: after the directory, before
 * the first ',' (size fields, a UID field) or ':' (flags). */
static struct hk_str
identity(const char *filename)
{
	const char *s = strrchr(filename, '/');
	s = s ? s + 1 : filename;
	size_t n = strcspn(s, ",:");
	return (struct hk_str){ s, n };
}

void
pop3_uidl_of(const char *filename, char out[POP3_UIDL_MAX + 1])
{
	struct hk_str id = identity(filename);
	bool ok = id.len > 0 && id.len <= POP3_UIDL_MAX;
	for (size_t i = 0; ok && i < id.len; i++)
		ok = id.ptr[i] >= 0x21 && id.ptr[i] <= 0x7e;
	if (ok) {
		memcpy(out, id.ptr, id.len);
		out[id.len] = '\0';
		return;
	}
	/* a foreign name we cannot show as it is: a stable digest of it */
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	EVP_Digest(id.ptr, id.len, md, &mdlen, EVP_sha256(), NULL);
	for (unsigned i = 0; i < 20 && i < mdlen; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* --- open / close ------------------------------------------------------------------ */

enum pop3_open_status
pop3_maildrop_open(const char *root, struct pop3_maildrop **md_r, char *err, size_t errlen)
{
	*md_r = NULL;
	struct hk_store_settings set = { .create = true };
	struct hk_store *st = NULL;
	if (hk_store_open(root, &set, &st) < 0) {
		snprintf(err, errlen, "open %s: %s", root, strerror(errno));
		return POP3_OPEN_ERROR;
	}
	char *lock = xasprintf("%s/hikyaku-pop3.lock", root);
	int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	free(lock);
	if (fd < 0) {
		snprintf(err, errlen, "lock file in %s: %s", root, strerror(errno));
		hk_store_close(&st);
		return POP3_OPEN_ERROR;
	}
	/* flock locks belong to the open file description, so two sessions
	 * of this process exclude each other as two processes would */
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		close(fd);
		hk_store_close(&st);
		if (e == EWOULDBLOCK)
			return POP3_OPEN_IN_USE;
		snprintf(err, errlen, "flock: %s", strerror(e));
		return POP3_OPEN_ERROR;
	}
	/* the UID index gives the numbering IMAP has too (UID order is
	 * delivery order), and keeps MODSEQs right for IMAP's CONDSTORE */
	struct hk_store_view v;
	if (hk_store_sync(st, "INBOX", NULL, &v) < 0) {
		snprintf(err, errlen, "sync INBOX: %s", hk_store_error(st));
		close(fd);
		hk_store_close(&st);
		return POP3_OPEN_ERROR;
	}
	struct pop3_maildrop *md = xcalloc(1, sizeof(*md));
	md->st = st;
	md->lock_fd = fd;
	/* RETR opens each message relative to it: no path walk per message */
	md->folder_fd = hk_store_folder_open(st, "INBOX");
	md->n = v.n;
	md->v = xcalloc(v.n ? v.n : 1, sizeof(*md->v));
	for (size_t i = 0; i < v.n; i++) {
		md->v[i].filename = v.v[i].filename; /* taken over */
		v.v[i].filename = NULL;
		md->v[i].uid = v.v[i].uid;
		md->v[i].seen = v.v[i].flags & HK_STORE_SEEN;
		md->v[i].size = v.v[i].vsize ? v.v[i].vsize : v.v[i].size;
		pop3_uidl_of(md->v[i].filename, md->v[i].uidl);
	}
	hk_store_view_free(&v);
	*md_r = md;
	return POP3_OPEN_OK;
}

void
pop3_maildrop_close(struct pop3_maildrop **mdp)
{
	struct pop3_maildrop *md = *mdp;
	if (md == NULL)
		return;
	*mdp = NULL;
	for (size_t i = 0; i < md->n; i++)
		free(md->v[i].filename);
	free(md->v);
	hk_store_close(&md->st);
	if (md->folder_fd >= 0)
		close(md->folder_fd);
	if (md->lock_fd >= 0)
		close(md->lock_fd); /* releases the flock */
	free(md);
}

/* --- reading ------------------------------------------------------------------------- */

struct pop3_reader {
	int fd;
	struct pop3_stuffer st;
	bool done;
	char buf[READ_CHUNK];
};

static int
open_message(struct pop3_maildrop *md, size_t idx)
{
	if (md->folder_fd >= 0)
		return hk_store_open_message_at(md->st, md->folder_fd, md->v[idx].filename);
	return hk_store_open_message(md->st, "INBOX", md->v[idx].filename);
}

struct pop3_reader *
pop3_reader_open(struct pop3_maildrop *md, size_t idx, long top_lines)
{
	if (idx >= md->n)
		return NULL;
	int fd = open_message(md, idx);
	if (fd < 0 && errno == ENOENT) {
		/* renamed by another session (flags, a UID in its name): find it again */
		struct hk_store_view v;
		if (hk_store_sync(md->st, "INBOX", NULL, &v) < 0)
			return NULL;
		const struct hk_store_uid_msg *m = hk_store_view_find(&v, md->v[idx].uid);
		if (m) {
			free(md->v[idx].filename);
			md->v[idx].filename = xstrdup(m->filename);
			fd = open_message(md, idx);
		}
		hk_store_view_free(&v);
	}
	if (fd < 0)
		return NULL;
	struct pop3_reader *r = xmalloc(sizeof(*r));
	r->fd = fd;
	r->done = false;
	pop3_stuffer_init(&r->st, top_lines);
	return r;
}

void
pop3_reader_free(struct pop3_reader **rp)
{
	struct pop3_reader *r = *rp;
	if (r == NULL)
		return;
	*rp = NULL;
	close(r->fd);
	free(r);
}

int
pop3_reader_next(struct pop3_reader *r, struct hk_buf *out, size_t max, bool *done_r)
{
	*done_r = r->done;
	if (r->done)
		return 0;
	size_t start = out->len;
	while (!r->st.stopped && out->len - start < max) {
		ssize_t n = read(r->fd, r->buf, sizeof(r->buf));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		/* bytes after a complete TOP are simply not sent */
		(void)pop3_stuff(&r->st, r->buf, (size_t)n, out);
	}
	if (r->st.stopped || out->len - start < max) {
		pop3_stuff_end(&r->st, out);
		r->done = true;
		*done_r = true;
	}
	return 0;
}

/* --- UPDATE ----------------------------------------------------------------------------- */

int
pop3_maildrop_commit(struct pop3_maildrop *md, size_t *failed_r)
{
	*failed_r = 0;
	uint32_t *del = xmalloc((md->n ? md->n : 1) * sizeof(*del)), *seen = xmalloc((md->n ? md->n : 1) * sizeof(*seen));
	size_t nd = 0, ns = 0;
	for (size_t i = 0; i < md->n; i++) {
		if (md->v[i].deleted)
			del[nd++] = md->v[i].uid;
		else if (md->v[i].retrieved && !md->v[i].seen)
			seen[ns++] = md->v[i].uid;
	}
	int rc = 0;
	/* through the UID index: IMAP sessions see EXPUNGE and the new \Seen
	 * (with a MODSEQ) at their next sync; messages someone else expunged
	 * meanwhile are simply not there any more */
	if (nd) {
		size_t gone = 0;
		if (hk_store_expunge_uids(md->st, "INBOX", del, nd, &gone) < 0) {
			*failed_r = nd;
			rc = -1;
		}
	}
	if (ns) {
		struct hk_store_flag_update u = { .uids = seen, .nuids = ns, .op = HK_STORE_FLAGS_ADD, .flags = HK_STORE_SEEN };
		struct hk_store_flag_result res;
		memset(&res, 0, sizeof(res));
		(void)hk_store_update_flags(md->st, "INBOX", &u, &res); /* \Seen is a courtesy; deletions are what counts */
		free(res.failed);
	}
	free(del);
	free(seen);
	return rc;
}
