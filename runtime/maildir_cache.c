/*
 * maildir_cache.c - the per-folder message cache (API in store.h, "the
 * message cache"): what IMAP FETCH and SEARCH need of a message without
 * opening its file (INTERNALDATE, the exact RFC822.SIZE, the raw header
 * block), keyed by UID and checked against the message's identity and
 * size, so a record never answers for another file.
 *
 * The file, <folder>/hikyaku-cache, host byte order (a file written on
 * another byte order fails its magic and is rebuilt):
 *
 *   header  "HKCACHE1" u32 uidvalidity, u32 check (of the 12 bytes before)
 *   records, appended; each 8-byte aligned in length:
 *     u32 magic 'HCR1'   u32 len (whole record)   u32 uid   u32 flags
 *     i64 mtime          u64 size                 u64 vsize
 *     u32 id_len         u32 hdr_len
 *     identity bytes, header bytes, zero padding to 8
 *     u64 sum            (cache_sum of every byte before it)
 *
 * A later record for a UID replaces an earlier one. Sessions append what
 * they learned at the end of a command, with one O_APPEND write (records
 * of several writers never interleave within a write; a crash can only
 * tear the tail). Nothing is locked and nothing fsync-ed: the cache is
 * never needed for correctness, and every record is checked before use:
 *   - its structure when the file is read (magic, lengths within bounds),
 *     resynchronizing on the next record whose sum is right after garbage
 *     (a torn write in the middle, when others appended after it);
 *   - its sum, identity and size when it is used: a record that fails is
 *     a miss (the message file is read, and a new record appended).
 * The file is rewritten (temp file, rename) when it was damaged, is for
 * another UIDVALIDITY, or has grown past twice its live size (records of
 * messages still in the view, the latest per UID): compaction (the
 * temporary file in the folder's tmp/). Two
 * compactors may race; the later rename wins, and appends that went to the
 * replaced file are lost, i.e. just misses later on.
 *
 * Why INTERNALDATE and RFC822.SIZE from the cache are right: a Maildir
 * message file never changes once delivered (flags live in its name), and
 * its identity (part of the name, with ,S=) names one file forever. A
 * program that rewrites a file in place or changes its mtime afterwards
 * breaks Maildir's rules; such a change shows once the record is
 * rebuilt, as it does in Dovecot's cache.
 *
 * Bounds: at most HK_STORE_CACHE_HDR_MAX header bytes per record (a longer
 * header is not cached: the record keeps the date and size only), at most
 * HK_STORE_CACHE_FILE_MAX bytes of file read, appended or compacted, and
 * HK_STORE_CACHE_PENDING_MAX bytes buffered before an append.
 *
 * BLOCKING: file I/O; worker threads only (hk_store_cache_close with a
 * NULL view does no I/O). One handle per command and thread.
 *
 * SECURITY: the file may be damaged or written by another program: every
 * length is checked against the file before use, and nothing in it is
 * trusted without the identity and size of the message it is used for.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "maildir.h"

#define CACHE_MAGIC "HKCACHE1"
#define CACHE_HDR_LEN 16
#define REC_MAGIC 0x31524348u /* "HCR1" in little-endian bytes */
#define REC_FIXED 48          /* fields before the identity */
#define REC_MIN (REC_FIXED + 8 + 8)
#define REC_MAX (REC_FIXED + ((NAME_MAX + HK_STORE_CACHE_HDR_MAX + 7) & ~7u) + 8)
#define REC_HAS_HDR 0x80000000u /* internal flag bit: the header is cached */

struct crec {
	uint32_t uid;
	uint32_t off; /* in data (the file is at most HK_STORE_CACHE_FILE_MAX) */
};

struct hk_store_cache {
	char *dir;
	uint32_t uidvalidity;
	char *data;        /* the file as read */
	size_t len;
	bool file_ok;      /* it had a good header for this UIDVALIDITY */
	bool damaged;      /* garbage, a bad sum or a torn tail seen */
	struct crec *v;    /* ascending UID, the latest record of each */
	size_t n;
	struct hk_buf pending; /* records put, not yet written */
};

_Static_assert(HK_STORE_CACHE_FILE_MAX <= UINT32_MAX, "offsets are 32-bit");

/* --- bytes ------------------------------------------------------------------------ */

static uint32_t
get32(const char *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static uint64_t
get64(const char *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

static void
put32(char *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static void
put64(char *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

/* A checksum against torn writes and garbage (not an adversary: a record
 * is used only for the file whose identity it names). Eight bytes per
 * multiply, so summing a folder's headers costs about a memcpy of them. */
static uint64_t
cache_sum(const char *p, size_t n)
{
	uint64_t h = 0x9E3779B97F4A7C15ull ^ n;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		h = (h ^ get64(p + i)) * 0xbf58476d1ce4e5b9ull;
		h ^= h >> 31;
	}
	uint64_t w = 0;
	memcpy(&w, p + i, n - i);
	h = (h ^ w) * 0x94d049bb133111ebull;
	return h ^ (h >> 29);
}

static size_t
rec_len(size_t id_len, size_t hdr_len)
{
	return REC_FIXED + ((id_len + hdr_len + 7) & ~(size_t)7) + 8;
}

/* Whether p[0..avail) starts with a structurally sound record (magic,
 * lengths); *len_r is its length. The sum is not checked here. */
static bool
rec_sound(const char *p, size_t avail, size_t *len_r)
{
	if (avail < REC_MIN || get32(p) != REC_MAGIC)
		return false;
	size_t len = get32(p + 4), id_len = get32(p + 40), hdr_len = get32(p + 44);
	if (len < REC_MIN || len > REC_MAX || len > avail || (len & 7) != 0)
		return false;
	if (id_len == 0 || id_len > NAME_MAX || hdr_len > HK_STORE_CACHE_HDR_MAX || rec_len(id_len, hdr_len) != len)
		return false;
	if (hdr_len != 0 && !(get32(p + 12) & REC_HAS_HDR))
		return false;
	*len_r = len;
	return true;
}

static bool
rec_sum_ok(const char *p, size_t len)
{
	return cache_sum(p, len - 8) == get64(p + len - 8);
}

/* --- reading ------------------------------------------------------------------------ */

static int
cmp_crec(const void *a, const void *b)
{
	const struct crec *x = a, *y = b;
	if (x->uid != y->uid)
		return x->uid < y->uid ? -1 : 1;
	return x->off < y->off ? -1 : x->off > y->off;
}

/* Indexes the records of data[CACHE_HDR_LEN..len). */
static void
cache_index(struct hk_store_cache *c)
{
	size_t off = CACHE_HDR_LEN, cap = 0;
	bool sorted = true;
	while (off < c->len) {
		size_t rl;
		if (!rec_sound(c->data + off, c->len - off, &rl)) {
			/* garbage or a torn record: go on at the next record that
			 * is whole (its sum right), if any */
			c->damaged = true;
			size_t k = off + 1;
			bool found = false;
			while (k + REC_MIN <= c->len) {
				static const uint32_t magic = REC_MAGIC;
				const char *m = memmem(c->data + k, c->len - k, &magic, 4);
				if (m == NULL)
					break;
				k = (size_t)(m - c->data);
				if (rec_sound(m, c->len - k, &rl) && rec_sum_ok(m, rl)) {
					found = true;
					break;
				}
				k++;
			}
			if (!found)
				break;
			off = k;
		}
		uint32_t uid = get32(c->data + off + 8);
		c->v = xgrow(c->v, &cap, c->n + 1, sizeof *c->v);
		if (c->n && c->v[c->n - 1].uid >= uid)
			sorted = false;
		c->v[c->n++] = (struct crec){ uid, (uint32_t)off };
		off += rl;
	}
	if (!sorted && c->n > 1) {
		qsort(c->v, c->n, sizeof *c->v, cmp_crec);
		/* the latest record (highest offset) of each UID */
		size_t w = 0;
		for (size_t i = 0; i < c->n; i++) {
			if (w && c->v[w - 1].uid == c->v[i].uid)
				w--;
			c->v[w++] = c->v[i];
		}
		c->n = w;
	}
}

static int
read_upto(const char *path, size_t max, char **data_r, size_t *len_r)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	struct stat sb;
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		return errno = EINVAL, -1;
	}
	size_t want = (uint64_t)sb.st_size > max ? max : (size_t)sb.st_size, got = 0;
	char *data = xmalloc(want + 1);
	while (got < want) {
		ssize_t r = pread(fd, data + got, want - got, (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break; /* shorter than its stat: what is there counts */
		got += (size_t)r;
	}
	close(fd);
	*data_r = data;
	*len_r = got;
	return 0;
}

static bool
header_ok(const char *p, size_t len, uint32_t uidvalidity)
{
	return len >= CACHE_HDR_LEN && memcmp(p, CACHE_MAGIC, 8) == 0 && get32(p + 8) == uidvalidity &&
	    get32(p + 12) == (uint32_t)cache_sum(p, 12);
}

int
maildir_cache_open(struct hk_store *st, const char *folder, uint32_t uidvalidity, struct hk_store_cache **c_r)
{
	char *dir = maildir_folder_path(st, folder);
	if (dir == NULL)
		return -1;
	struct hk_store_cache *c = xcalloc(1, sizeof *c);
	c->dir = dir;
	c->uidvalidity = uidvalidity;
	buf_init(&c->pending);
	char *path = xasprintf("%s/" MAILDIR_CACHE_FILE, dir);
	if (read_upto(path, HK_STORE_CACHE_FILE_MAX, &c->data, &c->len) == 0) {
		c->file_ok = header_ok(c->data, c->len, uidvalidity);
		if (c->file_ok)
			cache_index(c);
	}
	free(path);
	*c_r = c;
	return 0;
}

/* --- using records ------------------------------------------------------------------ */

static const char *
rec_find(const struct hk_store_cache *c, uint32_t uid)
{
	size_t lo = 0, hi = c->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (c->v[mid].uid == uid)
			return c->data + c->v[mid].off;
		if (c->v[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Whether the record r is for the message m: its identity and size. */
static bool
rec_matches(const char *r, const struct hk_store_uid_msg *m)
{
	struct hk_str id = hk_store_identity(m->filename);
	return get32(r + 40) == id.len && memcmp(r + REC_FIXED, id.ptr, id.len) == 0 && get64(r + 24) == m->size;
}

bool
hk_store_cache_get(struct hk_store_cache *c, const struct hk_store_uid_msg *m, struct hk_store_cache_rec *out)
{
	const char *r = rec_find(c, m->uid);
	if (r == NULL || !rec_matches(r, m))
		return false;
	size_t len = get32(r + 4);
	if (!rec_sum_ok(r, len)) {
		c->damaged = true;
		return false;
	}
	uint32_t flags = get32(r + 12);
	size_t id_len = get32(r + 40);
	memset(out, 0, sizeof *out);
	out->mtime = (int64_t)get64(r + 16);
	out->vsize = get64(r + 32);
	out->flags = flags & ~REC_HAS_HDR;
	if (flags & REC_HAS_HDR) {
		out->hdr = r + REC_FIXED + id_len;
		out->hdr_len = get32(r + 44);
	}
	return true;
}

bool
hk_store_cache_has(const struct hk_store_cache *c, const struct hk_store_uid_msg *m)
{
	const char *r = rec_find(c, m->uid);
	return r != NULL && rec_matches(r, m);
}

static void flush(struct hk_store_cache *c);

void
hk_store_cache_put(struct hk_store_cache *c, const struct hk_store_uid_msg *m, const struct hk_store_cache_rec *r)
{
	struct hk_str id = hk_store_identity(m->filename);
	if (id.len == 0 || id.len > NAME_MAX)
		return;
	bool hdr = r->hdr != NULL && r->hdr_len <= HK_STORE_CACHE_HDR_MAX;
	size_t hl = hdr ? r->hdr_len : 0, len = rec_len(id.len, hl);
	if (c->pending.len + len > HK_STORE_CACHE_PENDING_MAX)
		flush(c);
	buf_reserve(&c->pending, len);
	char *p = c->pending.data + c->pending.len;
	memset(p, 0, len);
	put32(p, REC_MAGIC);
	put32(p + 4, (uint32_t)len);
	put32(p + 8, m->uid);
	put32(p + 12, (r->flags & ~REC_HAS_HDR) | (hdr ? REC_HAS_HDR : 0));
	put64(p + 16, (uint64_t)r->mtime);
	put64(p + 24, m->size);
	put64(p + 32, r->vsize);
	put32(p + 40, (uint32_t)id.len);
	put32(p + 44, (uint32_t)hl);
	memcpy(p + REC_FIXED, id.ptr, id.len);
	if (hl)
		memcpy(p + REC_FIXED + id.len, r->hdr, hl);
	put64(p + len - 8, cache_sum(p, len - 8));
	c->pending.len += len;
}

/* --- writing -------------------------------------------------------------------------- */

static bool
write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

static void compact(struct hk_store_cache *c, const struct hk_store_view *v);

/* Appends the pending records to the file, when it has room: one write,
 * so other writers' records never interleave with these. A missing or
 * unusable file (no records of it are in use) is replaced by a new one
 * with the header and these records. */
static void
flush(struct hk_store_cache *c)
{
	if (c->pending.len == 0)
		return;
	if (!c->file_ok) {
		compact(c, NULL);
		c->file_ok = true;
		return;
	}
	char *path = xasprintf("%s/" MAILDIR_CACHE_FILE, c->dir);
	int fd = open(path, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
	free(path);
	struct stat sb;
	if (fd >= 0 && fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) &&
	    (uint64_t)sb.st_size + c->pending.len <= HK_STORE_CACHE_FILE_MAX)
		(void)write_all(fd, c->pending.data, c->pending.len);
	if (fd >= 0)
		close(fd);
	buf_reset(&c->pending);
}

/* Writes a new file: the live records (the view's messages whose record
 * is whole and theirs; none without a view) and the pending ones, then
 * renames it in. */
static void
compact(struct hk_store_cache *c, const struct hk_store_view *v)
{
	static atomic_uint seq;
	struct hk_buf b;
	buf_init(&b);
	buf_reserve(&b, CACHE_HDR_LEN);
	memcpy(b.data, CACHE_MAGIC, 8);
	put32(b.data + 8, c->uidvalidity);
	put32(b.data + 12, (uint32_t)cache_sum(b.data, 12));
	b.len = CACHE_HDR_LEN;
	for (size_t i = 0; v && c->file_ok && i < v->n; i++) {
		const char *r = rec_find(c, v->v[i].uid);
		if (r == NULL || !rec_matches(r, &v->v[i]))
			continue;
		size_t len = get32(r + 4);
		if (!rec_sum_ok(r, len) || b.len + len > HK_STORE_CACHE_FILE_MAX)
			continue;
		buf_add(&b, r, len);
	}
	if (b.len + c->pending.len <= HK_STORE_CACHE_FILE_MAX)
		buf_add(&b, c->pending.data, c->pending.len);
	buf_reset(&c->pending);
	/* in the folder's tmp/: hk_store_clean_tmp removes what a crash left */
	char *tmp = xasprintf("%s/tmp/" MAILDIR_CACHE_FILE ".%ld.%u", c->dir, (long)getpid(), atomic_fetch_add(&seq, 1));
	char *path = xasprintf("%s/" MAILDIR_CACHE_FILE, c->dir);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd >= 0) {
		bool ok = write_all(fd, b.data, b.len);
		ok = close(fd) == 0 && ok && rename(tmp, path) == 0;
		if (!ok)
			(void)unlink(tmp);
	}
	free(tmp);
	free(path);
	buf_fini(&b);
}

/* Bytes of the live records: those compaction would keep. */
static size_t
live_bytes(const struct hk_store_cache *c, const struct hk_store_view *v)
{
	size_t live = 0;
	for (size_t i = 0; i < v->n; i++) {
		const char *r = rec_find(c, v->v[i].uid);
		if (r && rec_matches(r, &v->v[i]))
			live += get32(r + 4);
	}
	return live;
}

void
hk_store_cache_close(struct hk_store_cache **cp, const struct hk_store_view *v)
{
	struct hk_store_cache *c = *cp;
	if (c == NULL)
		return;
	*cp = NULL;
	if (v != NULL) {
		bool rewrite = c->damaged || (!c->file_ok && c->pending.len > 0);
		if (!rewrite && c->len > HK_STORE_CACHE_COMPACT_MIN)
			rewrite = c->len > 2 * (live_bytes(c, v) + c->pending.len);
		if (rewrite)
			compact(c, v);
		else
			flush(c);
	}
	buf_fini(&c->pending);
	free(c->v);
	free(c->data);
	free(c->dir);
	free(c);
}

size_t
hk_store_cache_records(const struct hk_store_cache *c, bool *damaged_r)
{
	if (damaged_r)
		*damaged_r = c->damaged || !c->file_ok;
	return c->n;
}

int
maildir_cache_parse_check(const char *data, size_t len, size_t *nrec_r)
{
	struct hk_store_cache c;
	memset(&c, 0, sizeof c);
	c.data = xmalloc(len + 1);
	memcpy(c.data, data, len);
	c.len = len;
	c.file_ok = len >= CACHE_HDR_LEN && memcmp(data, CACHE_MAGIC, 8) == 0;
	if (c.file_ok)
		cache_index(&c);
	/* what a get would do with every record: sums, bounds */
	size_t good = 0;
	for (size_t i = 0; i < c.n; i++) {
		const char *r = c.data + c.v[i].off;
		size_t rl = get32(r + 4);
		if (c.v[i].off + rl > c.len)
			abort(); /* cache_index let a record past the end through */
		good += rec_sum_ok(r, rl);
	}
	*nrec_r = good;
	int rc = c.file_ok && !c.damaged ? 0 : -1;
	free(c.v);
	free(c.data);
	return rc;
}
