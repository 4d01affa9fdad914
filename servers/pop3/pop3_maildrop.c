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

/* --- identity and order -------------------------------------------------------- */

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

/* "1700000000.M123456P42Q1.host": seconds, then microseconds, then the
 * rest, so messages are numbered in delivery order. */
static void
delivery_key(const char *filename, unsigned long long *secs, unsigned long long *usec)
{
	struct hk_str id = identity(filename);
	char tmp[64];
	size_t n = id.len < sizeof(tmp) - 1 ? id.len : sizeof(tmp) - 1;
	memcpy(tmp, id.ptr, n);
	tmp[n] = '\0';
	char *end;
	*secs = strtoull(tmp, &end, 10);
	*usec = 0;
	if (*end == '.' && end[1] == 'M')
		*usec = strtoull(end + 2, NULL, 10);
}

static int
cmp_delivery(const void *a, const void *b)
{
	const struct pop3_msg *x = a, *y = b;
	unsigned long long xs, xu, ys, yu;
	delivery_key(x->filename, &xs, &xu);
	delivery_key(y->filename, &ys, &yu);
	if (xs != ys)
		return xs < ys ? -1 : 1;
	if (xu != yu)
		return xu < yu ? -1 : 1;
	struct hk_str ix = identity(x->filename), iy = identity(y->filename);
	int c = memcmp(ix.ptr, iy.ptr, ix.len < iy.len ? ix.len : iy.len);
	return c ? c : (ix.len > iy.len) - (ix.len < iy.len);
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
	struct hk_store_msg_list l;
	if (hk_store_scan(st, "INBOX", 0, &l) < 0) {
		snprintf(err, errlen, "scan INBOX: %s", hk_store_error(st));
		close(fd);
		hk_store_close(&st);
		return POP3_OPEN_ERROR;
	}
	struct pop3_maildrop *md = xcalloc(1, sizeof(*md));
	md->st = st;
	md->lock_fd = fd;
	md->n = l.n;
	md->v = xcalloc(l.n ? l.n : 1, sizeof(*md->v));
	for (size_t i = 0; i < l.n; i++) {
		md->v[i].filename = xstrdup(l.v[i].filename);
		md->v[i].size = l.v[i].vsize ? l.v[i].vsize : l.v[i].size;
		pop3_uidl_of(l.v[i].filename, md->v[i].uidl);
	}
	hk_store_msg_list_free(&l);
	qsort(md->v, md->n, sizeof(*md->v), cmp_delivery);
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

struct pop3_reader *
pop3_reader_open(struct pop3_maildrop *md, size_t idx, long top_lines)
{
	if (idx >= md->n)
		return NULL;
	int fd = hk_store_open_message(md->st, "INBOX", md->v[idx].filename);
	if (fd < 0) {
		/* renamed by another session (flags): find it again */
		struct hk_store_msg_list l;
		struct hk_str want = identity(md->v[idx].filename);
		if (hk_store_scan(md->st, "INBOX", 0, &l) < 0)
			return NULL;
		for (size_t i = 0; i < l.n && fd < 0; i++) {
			struct hk_str id = identity(l.v[i].filename);
			if (id.len == want.len && memcmp(id.ptr, want.ptr, id.len) == 0) {
				free(md->v[idx].filename);
				md->v[idx].filename = xstrdup(l.v[i].filename);
				fd = hk_store_open_message(md->st, "INBOX", md->v[idx].filename);
			}
		}
		hk_store_msg_list_free(&l);
		if (fd < 0)
			return NULL;
	}
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

static int
cmp_identity(struct hk_str a, struct hk_str b)
{
	int c = memcmp(a.ptr, b.ptr, a.len < b.len ? a.len : b.len);
	return c ? c : (a.len > b.len) - (a.len < b.len);
}

static int
cmp_msg_identity(const void *a, const void *b)
{
	return cmp_identity(identity(((const struct hk_store_msg *)a)->filename),
	    identity(((const struct hk_store_msg *)b)->filename));
}

/* l sorted by cmp_msg_identity */
static const struct hk_store_msg *
find_current(const struct hk_store_msg_list *l, const char *filename)
{
	struct hk_str want = identity(filename);
	size_t lo = 0, hi = l->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = cmp_identity(identity(l->v[mid].filename), want);
		if (c == 0)
			return &l->v[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

int
pop3_maildrop_commit(struct pop3_maildrop *md, size_t *failed_r)
{
	*failed_r = 0;
	bool any = false;
	for (size_t i = 0; i < md->n; i++)
		any |= md->v[i].deleted || md->v[i].retrieved;
	if (!any)
		return 0;
	/* one fresh listing: IMAP sessions may have renamed files (flags)
	 * since login; expunged ones are simply gone */
	struct hk_store_msg_list l;
	if (hk_store_scan(md->st, "INBOX", 0, &l) < 0) {
		for (size_t i = 0; i < md->n; i++)
			*failed_r += md->v[i].deleted;
		return *failed_r ? -1 : 0;
	}
	qsort(l.v, l.n, sizeof(*l.v), cmp_msg_identity);
	for (size_t i = 0; i < md->n; i++) {
		struct pop3_msg *m = &md->v[i];
		if (!m->deleted && !m->retrieved)
			continue;
		const struct hk_store_msg *cur = find_current(&l, m->filename);
		if (cur == NULL)
			continue; /* already expunged by someone else */
		if (m->deleted) {
			if (hk_store_expunge(md->st, "INBOX", cur->filename) < 0 && errno != ENOENT)
				(*failed_r)++;
		} else if (!(cur->flags & HK_STORE_SEEN)) {
			(void)hk_store_set_flags(md->st, "INBOX", cur->filename, cur->flags | HK_STORE_SEEN, cur->kw, NULL);
		}
	}
	hk_store_msg_list_free(&l);
	return *failed_r ? -1 : 0;
}
