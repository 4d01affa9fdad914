/*
 * maildir_index.c - the IMAP UID index of a Maildir++ folder: UIDs,
 * UIDVALIDITY, CONDSTORE MODSEQs (RFC 7162), shared by every session and
 * process that opens the folder (IMAP, POP3, webmail, `hikyaku refilter`).
 * API in store.h ("the UID index"); the design is also in
 * doc/architecture.md ("The UID index of the store").
 *
 * Files, in the folder's directory (the Maildir root for INBOX):
 *
 *   hikyaku-uidlist       the index. Text:
 *                           "hikyaku-uidlist 1 <uidvalidity> <uidnext> <highestmodseq> <count>\n"
 *                         then one line per message, ascending UID:
 *                           "<uid> <modseq> <flags> <identity>\n"
 *                         flags are the Maildir info letters last seen
 *                         ("-" for none), identity is hk_store_identity of
 *                         the file name (the rest of the line). Replaced
 *                         whole: written to hikyaku-uidlist.tmp, fsync-ed,
 *                         renamed over (then the directory fsync-ed: a
 *                         crash never takes it back in time), so a reader
 *                         sees the old or the new file, never half of one.
 *   hikyaku-uidlist.lock  empty; an exclusive flock on it serializes every
 *                         change of the folder's index (and its renames).
 *   hikyaku-uidvalidity   "1 <uidvalidity> <uid reserve> <modseq reserve>\n":
 *                         every UID ever given is below the UID reserve,
 *                         every MODSEQ below the MODSEQ reserve. Rewritten
 *                         (fsync + rename) before either would be passed,
 *                         raising it MAILDIR_UIDX_RESERVE beyond, so about
 *                         once per 4096 deliveries or flag changes.
 *
 * And in the message file names: once a message has a UID, ",U=<uid>" ends
 * its base name (new/X,S=5,W=6,U=42 or cur/X,S=5,W=6,U=42:2,S). The name
 * without it is the message's identity, the index key and the POP3 UIDL.
 *
 * Sync (hk_store_sync): read the index (no lock: it is replaced by rename)
 * and stat new/ and cur/. When hikyaku-dirstamp (maildir_dirstamp.c: the
 * argument and its corner cases are there) vouches that neither directory
 * changed since this very index file last matched them, the view is the
 * index plus the stamp's few irregular names: no readdir, no lock, no
 * write. Otherwise readdir new/ and cur/ (hk_store_scan: no stat when ,S=
 * is there),
 * and match them by identity in a hash table. When everything matches
 * (same messages, same flags, names carrying their UID) the view is built
 * from them: one read and two readdirs, nothing locked, and only the stamp
 * written (when the directories' mtimes are old enough to trust). Otherwise the syncer takes the lock; if the index
 * is no longer the file it read (held open, so its inode is not reused)
 * it reads and scans again, as another syncer may have done the work or
 * expunged what the scan lists; then:
 *   - identities not in the index get UIDs from uidnext up, in delivery
 *     order (the time and microseconds at the start of our names, then the
 *     name bytewise), each with MODSEQ ++highestmodseq, and the files are
 *     renamed to carry ",U=" (they stay in new/ or cur/);
 *   - index entries with no file are dropped (expunged by someone);
 *   - entries whose file shows other flags (another program renamed it)
 *     take the new flags and MODSEQ ++highestmodseq;
 * writes the reserve file when needed, renames, fsyncs the directories it
 * renamed in, then writes the index. Appends, expunges and flag changes
 * through this API do the same sync under the lock and their change in
 * one step, so a UID never goes to two messages and a MODSEQ
 * compare-and-set (UNCHANGEDSINCE) is exact. Two concurrent syncers thus
 * never race on assignment: the second one finds the work done.
 *
 * Loss and damage: an index that does not parse exactly (header, counts,
 * ascending UIDs below uidnext, MODSEQs at most highestmodseq, flags,
 * identities unique, at most HK_STORE_UIDX_LINE_MAX per line and
 * HK_STORE_UIDX_FILE_MAX in all) is rebuilt from the file names:
 *   - UIDVALIDITY stays what hikyaku-uidvalidity says; uidnext becomes the
 *     UID reserve (or above the highest ,U= seen), so no UID is ever used
 *     twice, even one of a message expunged before the loss;
 *   - each file keeps the UID of its ,U= (the first of duplicates; the
 *     others and files without one get new UIDs);
 *   - every message gets MODSEQ = the MODSEQ reserve, greater than any
 *     MODSEQ given before, so a CONDSTORE client refetches all flags.
 * Only when hikyaku-uidvalidity is lost or damaged too does UIDVALIDITY
 * change: the new one is max(now, every UIDVALIDITY still readable + 1),
 * the mailbox's last one included (validity_new).
 * A lost reserve file alone is rewritten from a good index. A file that a
 * foreign program moved in from another folder with its ,U= is a new
 * message here (a new UID, and the name is corrected); only if the index
 * is lost before any sync saw it can its old ,U= be trusted by mistake.
 *
 * Writes cost: a full rewrite of a 10,000-message index is about 0.5 MB
 * plus one fsync; the whole sync after one delivery into 10,000 messages
 * is about twice an unchanged one (test_store_index prints the numbers,
 * doc/architecture.md has them), so there is no append-only journal.
 *
 * BLOCKING: file I/O and fsync; worker threads only. The lock is taken
 * with LOCK_NB in a loop for at most HK_STORE_UIDX_LOCK_WAIT_MS (EAGAIN).
 *
 * SECURITY: the index, the reserve file and the file names may have been
 * written or damaged by another program or a crash: every number is parsed
 * strictly with a bound, lines and the file are size-limited, and anything
 * wrong means "rebuild", never a crash or an out-of-range UID. File names
 * with a newline cannot be indexed and are not shown.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "maildir.h"

#define UIDX_MAGIC "hikyaku-uidlist 1 "
#define UIDX_VMAGIC "1 "
#define UIDX_VALIDITY_FILE_MAX 128
#define UIDX_UID_MAX 0xFFFFFFFEu  /* uidnext may be one more */
#define UIDX_MODSEQ_MAX (1ull << 62) /* RFC 7162: mod-sequence values fit 63 bits */
#define UIDX_NAME_UID_LIMIT 0x80000000u /* see apply() */

/* One message as the index knows it. */
struct ent {
	uint32_t uid;
	uint64_t modseq;
	uint32_t flags, kw;
	struct hk_str id; /* into the index data or a scanned file name */
	uint64_t h;       /* hash_id(id), set with id */
	ssize_t scan;     /* its file in the scan, -1 when none (yet) */
	bool gone;
};

struct uidx {
	uint32_t uidvalidity, uidnext;
	uint64_t highestmodseq;
	struct ent *v;
	size_t n, cap;
	char *data;    /* the index file read; ids point into it */
	bool missing;  /* no index file */
	bool damaged;
	const char *why;
	uint32_t prev_uidvalidity; /* from a damaged index's header, 0 when none */
};

/* The reserve file. */
struct reserve {
	bool valid;
	uint32_t uidvalidity, uid;
	uint64_t modseq;
};

/* What one sync works with. */
struct sync {
	struct hk_store *st;
	const char *folder;
	char *dir;
	struct uidx idx;
	struct hk_store_msg_list scan;
	ssize_t *scan_ent; /* per scanned file: its entry, -1 new, -2 not indexable */
	struct hk_str *scan_id; /* per scanned file: its identity (match()) */
	uint64_t *scan_h;  /* and hash_id of it */
	uint64_t *slots;   /* hash of identities -> entry index (SLOT_*) */
	size_t nslots;
	int lockfd;
	int idx_fd;        /* the index file read, kept open (uidx_load) */
	int dir_fd;        /* s->dir, opened for name_fix's renames; -1 */
	bool scanned;      /* the lock-free pass read, scanned and matched */
	struct reserve res;
	bool dirty;        /* the index must be written */
	bool renamed;      /* apply() renamed files (to carry ,U=) */
	bool rebuilt, new_validity;
	/* for the view: an index that existed was lost (not a first sync) */
	bool lost;
	const char *why;
};

/* --- small parsers ------------------------------------------------------------ */

/* A decimal number of 1..20 digits at *p (no sign), at most max; advances. */
static bool
parse_u64(const char **p, const char *end, uint64_t max, uint64_t *v)
{
	const char *s = *p;
	uint64_t x = 0;
	while (s < end && *s >= '0' && *s <= '9' && s - *p < 20) {
		uint64_t d = (uint64_t)(*s - '0');
		if (d > max || x > (max - d) / 10)
			return false;
		x = x * 10 + d;
		s++;
	}
	if (s == *p || (s < end && *s >= '0' && *s <= '9') || (s - *p > 1 && **p == '0'))
		return false;
	*p = s;
	*v = x;
	return true;
}

static bool
expect(const char **p, const char *end, char c)
{
	if (*p >= end || **p != c)
		return false;
	(*p)++;
	return true;
}

/* Maildir info letters -> flags, kw; "-" is none. */
static bool
parse_flags(const char *s, size_t n, uint32_t *flags, uint32_t *kw)
{
	*flags = *kw = 0;
	if (n == 1 && s[0] == '-')
		return true;
	if (n == 0 || n > 52)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] >= 'A' && s[i] <= 'Z')
			*flags |= HK_STORE_FLAG(s[i]);
		else if (s[i] >= 'a' && s[i] <= 'z')
			*kw |= 1u << (s[i] - 'a');
		else
			return false;
	}
	return true;
}

static void
put_u64(struct hk_buf *b, uint64_t v)
{
	char d[20];
	size_t n = 0;
	do
		d[n++] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	while (n)
		buf_addc(b, d[--n]);
}

static void
put_flags(struct hk_buf *b, uint32_t flags, uint32_t kw)
{
	if (flags == 0 && kw == 0) {
		buf_addc(b, '-');
		return;
	}
	for (int c = 0; c < 26; c++)
		if (flags & (1u << c))
			buf_addc(b, (char)('A' + c));
	for (int c = 0; c < 26; c++)
		if (kw & (1u << c))
			buf_addc(b, (char)('a' + c));
}

uint32_t
maildir_index_name_uid(const char *filename)
{
	struct hk_str b = hk_store_base_name(filename), id = hk_store_identity(filename);
	if (b.len == id.len)
		return 0;
	const char *p = b.ptr + id.len + 3, *end = b.ptr + b.len;
	uint64_t v;
	if (!parse_u64(&p, end, UIDX_UID_MAX, &v) || p != end || v == 0)
		return 0;
	return (uint32_t)v;
}

/* --- the identity hash ---------------------------------------------------------- */

static uint64_t
hash_id(struct hk_str s)
{
	/* eight bytes per multiply (a byte-wise FNV was a fifth of an
	 * unchanged sync), then splitmix64's finalizer: the table indexes by
	 * the low bits, which a multiply fills only from below */
	uint64_t h = 14695981039346656037ull ^ s.len;
	size_t i = 0;
	for (; i + 8 <= s.len; i += 8) {
		uint64_t w;
		memcpy(&w, s.ptr + i, 8);
		h = (h ^ w) * 0x9E3779B97F4A7C15ull;
		h ^= h >> 29;
	}
	uint64_t w = 0;
	memcpy(&w, s.ptr + i, s.len - i);
	h = (h ^ w) * 0x9E3779B97F4A7C15ull;
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebull;
	return h ^ (h >> 31);
}

/* A slot holds the entry index + 1 in its low 32 bits (0: empty) and the
 * high half of the identity's hash in its high 32, so a probe that meets
 * another identity rarely has to compare the strings. */
#define SLOT_ENT(x) ((size_t)((x) & 0xFFFFFFFFu))
#define SLOT_MAKE(h, e) (((h) & 0xFFFFFFFF00000000ull) | (uint64_t)((e) + 1))

/* Entry index with that identity (h its hash_id), or -1. */
static ssize_t
hash_find_h(const struct sync *s, struct hk_str id, uint64_t h)
{
	if (s->nslots == 0)
		return -1;
	for (size_t i = h & (s->nslots - 1);; i = (i + 1) & (s->nslots - 1)) {
		uint64_t x = s->slots[i];
		if (x == 0)
			return -1;
		if ((x ^ h) >> 32 == 0 && str_eq(s->idx.v[SLOT_ENT(x) - 1].id, id))
			return (ssize_t)(SLOT_ENT(x) - 1);
	}
}

static void
hash_put(struct sync *s, uint64_t h, size_t ent)
{
	size_t i = h & (s->nslots - 1);
	while (s->slots[i])
		i = (i + 1) & (s->nslots - 1);
	s->slots[i] = SLOT_MAKE(h, ent);
}

/* Adds entry `ent` (its h set); the entries before it are in the table
 * already (they are added in order). false when the identity is there
 * already. */
static bool
hash_add(struct sync *s, size_t ent)
{
	if ((ent + 1) * 2 > s->nslots) {
		size_t ns = s->nslots ? s->nslots : 64;
		while ((ent + 1) * 2 > ns)
			ns *= 2;
		free(s->slots);
		s->slots = xcalloc(ns, sizeof *s->slots);
		s->nslots = ns;
		for (size_t e = 0; e < ent; e++)
			if (!s->idx.v[e].gone)
				hash_put(s, s->idx.v[e].h, e);
	}
	uint64_t h = s->idx.v[ent].h;
	if (hash_find_h(s, s->idx.v[ent].id, h) >= 0)
		return false;
	hash_put(s, h, ent);
	return true;
}

/* Sized for n entries at once, so loading an index never rehashes. */
static void
hash_reserve(struct sync *s, size_t n)
{
	size_t ns = 64;
	while ((n + 1) * 2 > ns)
		ns *= 2;
	if (ns <= s->nslots)
		return;
	free(s->slots);
	s->slots = xcalloc(ns, sizeof *s->slots);
	s->nslots = ns;
}

static void
hash_clear(struct sync *s)
{
	free(s->slots);
	s->slots = NULL;
	s->nslots = 0;
}

/* --- reading the index ------------------------------------------------------------- */

static void
uidx_fini(struct uidx *x)
{
	free(x->v);
	free(x->data);
	memset(x, 0, sizeof *x);
}

static int
damaged(struct uidx *x, const char *why)
{
	x->damaged = true;
	x->why = why;
	x->n = 0;
	return -1;
}

/* Parses an index file's bytes (owned by x afterwards). -1 when damaged
 * (x->why says what); entries are then dropped, the header's UIDVALIDITY
 * kept in prev_uidvalidity when it parsed. Used by the fuzz target. */
static int
uidx_parse(struct uidx *x, char *data, size_t len)
{
	x->data = data;
	const char *p = data, *end = data + len;
	if (len < sizeof UIDX_MAGIC - 1 || memcmp(p, UIDX_MAGIC, sizeof UIDX_MAGIC - 1) != 0)
		return damaged(x, "bad header");
	p += sizeof UIDX_MAGIC - 1;
	uint64_t v, nxt, hms, count;
	if (!parse_u64(&p, end, UINT32_MAX, &v) || v == 0)
		return damaged(x, "bad UIDVALIDITY");
	x->prev_uidvalidity = (uint32_t)v;
	if (!expect(&p, end, ' ') || !parse_u64(&p, end, (uint64_t)UIDX_UID_MAX + 1, &nxt) || nxt == 0 ||
	    !expect(&p, end, ' ') || !parse_u64(&p, end, UIDX_MODSEQ_MAX, &hms) || !expect(&p, end, ' ') ||
	    !parse_u64(&p, end, HK_STORE_SCAN_MAX, &count) || !expect(&p, end, '\n'))
		return damaged(x, "bad header");
	x->uidvalidity = (uint32_t)v;
	x->uidnext = (uint32_t)nxt;
	x->highestmodseq = hms;
	/* lines are at least 8 bytes ("1 1 - x\n"): a count the file cannot
	 * hold is refused before it sizes anything */
	if (count > (uint64_t)(end - p) / 8)
		return damaged(x, "count larger than the file");
	x->v = xgrow(x->v, &x->cap, count ? count : 1, sizeof *x->v);
	uint32_t last = 0;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			return damaged(x, "truncated line");
		if (nl - p > HK_STORE_UIDX_LINE_MAX)
			return damaged(x, "line too long");
		if (x->n >= count)
			return damaged(x, "more lines than the header says");
		uint64_t uid, ms;
		if (!parse_u64(&p, nl, UIDX_UID_MAX, &uid) || uid == 0 || !expect(&p, nl, ' ') ||
		    !parse_u64(&p, nl, UIDX_MODSEQ_MAX, &ms) || ms == 0 || !expect(&p, nl, ' '))
			return damaged(x, "bad UID or MODSEQ");
		if (uid <= last || uid >= x->uidnext)
			return damaged(x, "UIDs out of order or not below UIDNEXT");
		if (ms > x->highestmodseq)
			return damaged(x, "MODSEQ above HIGHESTMODSEQ");
		const char *sp = memchr(p, ' ', (size_t)(nl - p));
		struct ent e = { .uid = (uint32_t)uid, .modseq = ms, .scan = -1 };
		if (sp == NULL || !parse_flags(p, (size_t)(sp - p), &e.flags, &e.kw))
			return damaged(x, "bad flags");
		e.id = (struct hk_str){ sp + 1, (size_t)(nl - sp - 1) };
		if (e.id.len == 0 || e.id.len > NAME_MAX || memchr(e.id.ptr, '/', e.id.len) || memchr(e.id.ptr, '\0', e.id.len))
			return damaged(x, "bad identity");
		x->v[x->n++] = e;
		last = (uint32_t)uid;
		p = nl + 1;
	}
	if (x->n != count)
		return damaged(x, "fewer lines than the header says");
	return 0;
}

/* Reads a whole file from fd; -1 with EFBIG past max. */
static int
read_fd(int fd, size_t max, char **data_r, size_t *len_r)
{
	struct stat sb;
	if (fstat(fd, &sb) != 0)
		return -1;
	if (sb.st_size < 0 || (uint64_t)sb.st_size > max)
		return errno = EFBIG, -1;
	/* room for the file, the NUL and one byte more, so the read that
	 * finds the end needs no growing */
	size_t cap = (size_t)sb.st_size + 2, len = 0;
	char *data = xmalloc(cap);
	for (;;) {
		if (len + 1 >= cap) {
			if (cap > max)
				return free(data), errno = EFBIG, -1;
			cap *= 2;
			data = xrealloc(data, cap);
		}
		ssize_t r = pread(fd, data + len, cap - len - 1, (off_t)len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			free(data);
			return errno = e, -1;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	if (len > max)
		return free(data), errno = EFBIG, -1;
	data[len] = '\0';
	*data_r = data;
	*len_r = len;
	return 0;
}

/* Reads and parses the index, without the identity hash (the stamp's fast
 * path needs none). The file stays open (s->idx_fd), so its inode cannot be
 * reused while this sync runs: sync_locked compares it with the one the
 * name points to. */
static void
uidx_read(struct sync *s)
{
	uidx_fini(&s->idx);
	hash_clear(s);
	if (s->idx_fd >= 0)
		close(s->idx_fd);
	char *path = xasprintf("%s/" MAILDIR_UIDX_FILE, s->dir), *data;
	size_t len;
	s->idx_fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	if (s->idx_fd < 0) {
		if (errno == ENOENT)
			s->idx.missing = true;
		else
			damaged(&s->idx, "unreadable");
		return;
	}
	if (read_fd(s->idx_fd, HK_STORE_UIDX_FILE_MAX, &data, &len) != 0) {
		damaged(&s->idx, errno == EFBIG ? "too large" : "unreadable");
		return;
	}
	(void)uidx_parse(&s->idx, data, len);
}

/* The identity hash of what uidx_read parsed; a duplicate identity makes
 * the index damaged. */
static void
uidx_hash(struct sync *s)
{
	if (s->idx.missing || s->idx.damaged)
		return;
	hash_reserve(s, s->idx.n);
	for (size_t e = 0; e < s->idx.n; e++) {
		s->idx.v[e].h = hash_id(s->idx.v[e].id);
		if (!hash_add(s, e)) {
			hash_clear(s);
			damaged(&s->idx, "duplicate identity");
			return;
		}
	}
}

static void
uidx_load(struct sync *s)
{
	uidx_read(s);
	uidx_hash(s);
}

/* Whether the index read by this sync is still the folder's index: no
 * change was written since (every write renames a new file in). An index
 * missing then and still missing now counts as the same: no syncer wrote
 * one meanwhile (a write only ever renames a file in), so the scan is
 * still newer than what it would be matched against. This saves the
 * second readdir of a rebuild (a third of a 10,000-message one). */
static bool
uidx_same(struct sync *s)
{
	struct stat a, b;
	char *path = xasprintf("%s/" MAILDIR_UIDX_FILE, s->dir);
	bool same;
	if (s->idx_fd < 0)
		same = s->idx.missing && stat(path, &b) != 0 && errno == ENOENT;
	else
		same = fstat(s->idx_fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
	free(path);
	return same;
}

/* --- the reserve file ----------------------------------------------------------------- */

static void
reserve_read(struct sync *s)
{
	memset(&s->res, 0, sizeof s->res);
	char *path = xasprintf("%s/" MAILDIR_UIDX_VALIDITY, s->dir), *data;
	size_t len;
	int r = read_file(path, UIDX_VALIDITY_FILE_MAX, &data, &len);
	free(path);
	if (r != 0)
		return;
	const char *p = data, *end = data + len;
	uint64_t v, u, m;
	if (len > 2 && memcmp(p, UIDX_VMAGIC, 2) == 0 && (p += 2, parse_u64(&p, end, UINT32_MAX, &v)) && v != 0 &&
	    expect(&p, end, ' ') && parse_u64(&p, end, (uint64_t)UIDX_UID_MAX + 1, &u) && u != 0 &&
	    expect(&p, end, ' ') && parse_u64(&p, end, UIDX_MODSEQ_MAX, &m) && m != 0 && expect(&p, end, '\n') &&
	    p == end)
		s->res = (struct reserve){ true, (uint32_t)v, (uint32_t)u, m };
	free(data);
}

static int fsync_dir(struct sync *s, const char *sub);

/* Writes data as dir/name through dir/name.tmp: fsync, rename, fsync of
 * the directory. */
static int
replace_file(struct sync *s, const char *name, const char *data, size_t len)
{
	char *tmp = xasprintf("%s/%s.tmp", s->dir, name), *path = xasprintf("%s/%s", s->dir, name);
	int rc = -1;
	int e = store_fault(HK_STORE_OP_OPEN, tmp);
	int fd = e ? (errno = e, -1) : open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		store_fail(s->st, errno, "open(%s)", tmp);
	} else if (store_write_all(fd, data, len, tmp) != 0 || store_fsync(fd, tmp) != 0) {
		store_fail(s->st, errno, "writing %s", tmp);
	} else if ((e = store_fault(HK_STORE_OP_RENAME, path)) != 0 || rename(tmp, path) != 0) {
		store_fail(s->st, e ? e : errno, "rename(%s, %s)", tmp, path);
	} else {
		/* the rename itself must survive a crash: an index or reserve
		 * that went back in time could give a UID a second time */
		rc = fsync_dir(s, ".");
	}
	if (fd >= 0)
		close(fd);
	if (rc != 0)
		(void)unlink(tmp);
	free(tmp);
	free(path);
	return rc;
}

/* Keeps the invariant "every UID given < res.uid, every MODSEQ given <
 * res.modseq, res.uidvalidity == the index's" before the index or a file
 * name can show a new UID or MODSEQ. */
static int
reserve_ensure(struct sync *s)
{
	struct uidx *x = &s->idx;
	if (s->res.valid && s->res.uidvalidity == x->uidvalidity && x->uidnext <= s->res.uid &&
	    x->highestmodseq < s->res.modseq)
		return 0;
	uint64_t u = (uint64_t)x->uidnext + MAILDIR_UIDX_RESERVE, m = x->highestmodseq + 1 + MAILDIR_UIDX_RESERVE;
	if (u > (uint64_t)UIDX_UID_MAX + 1)
		u = (uint64_t)UIDX_UID_MAX + 1;
	struct hk_buf b;
	buf_init(&b);
	buf_printf(&b, UIDX_VMAGIC "%u %llu %llu\n", (unsigned)x->uidvalidity, (unsigned long long)u,
	    (unsigned long long)m);
	int rc = replace_file(s, MAILDIR_UIDX_VALIDITY, b.data, b.len);
	buf_fini(&b);
	if (rc == 0)
		s->res = (struct reserve){ true, x->uidvalidity, (uint32_t)u, m };
	return rc;
}

/* --- locking ------------------------------------------------------------------------------ */

static int
lock_take(struct sync *s)
{
	char *path = xasprintf("%s/" MAILDIR_UIDX_LOCK, s->dir);
	int e = store_fault(HK_STORE_OP_OPEN, path);
	int fd = e ? (errno = e, -1) : open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		store_fail(s->st, errno, "open(%s)", path);
		free(path);
		return -1;
	}
	long waited_us = 0, step_us = 500;
	while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno != EWOULDBLOCK && errno != EINTR) {
			store_fail(s->st, errno, "flock(%s)", path);
			goto fail;
		}
		if (waited_us >= HK_STORE_UIDX_LOCK_WAIT_MS * 1000L) {
			store_fail(s->st, EAGAIN, "waited %d ms for %s", HK_STORE_UIDX_LOCK_WAIT_MS, path);
			goto fail;
		}
		struct timespec ts = { 0, step_us * 1000 };
		nanosleep(&ts, NULL);
		waited_us += step_us;
		if (step_us < 20000)
			step_us *= 2;
	}
	free(path);
	s->lockfd = fd;
	return 0;
fail:
	close(fd);
	free(path);
	return -1;
}

static void
lock_release(struct sync *s)
{
	if (s->lockfd >= 0)
		close(s->lockfd); /* releases the flock */
	s->lockfd = -1;
}

/* --- sync ------------------------------------------------------------------------------- */

static bool name_needs_uid(const char *filename, uint32_t uid);

static void
sync_init(struct sync *s, struct hk_store *st, const char *folder)
{
	memset(s, 0, sizeof *s);
	s->st = st;
	s->folder = folder;
	s->lockfd = -1;
	s->idx_fd = -1;
	s->dir_fd = -1;
}

static void
sync_fini(struct sync *s)
{
	lock_release(s);
	if (s->idx_fd >= 0)
		close(s->idx_fd);
	if (s->dir_fd >= 0)
		close(s->dir_fd);
	hash_clear(s);
	uidx_fini(&s->idx);
	hk_store_msg_list_free(&s->scan);
	free(s->scan_ent);
	free(s->scan_id);
	free(s->scan_h);
	free(s->dir);
}

static int
rescan(struct sync *s)
{
	hk_store_msg_list_free(&s->scan);
	free(s->scan_ent);
	free(s->scan_id);
	free(s->scan_h);
	s->scan_ent = NULL;
	s->scan_id = NULL;
	s->scan_h = NULL;
	if (s->st->be->scan(s->st, s->folder, 0, &s->scan) != 0)
		return -1;
	size_t n = s->scan.n ? s->scan.n : 1;
	s->scan_ent = xcalloc(n, sizeof *s->scan_ent);
	s->scan_id = xcalloc(n, sizeof *s->scan_id);
	s->scan_h = xcalloc(n, sizeof *s->scan_h);
	return 0;
}

/* Of two files of one identity, whether `a` rather than `b` is shown:
 * the one whose name carries the index's UID, else the first by name. */
static bool
dup_better(const char *a, const char *b, uint32_t uid)
{
	bool ua = maildir_index_name_uid(a) == uid, ub = maildir_index_name_uid(b) == uid;
	if (ua != ub)
		return ua;
	return strcmp(a, b) < 0;
}

/* Matches the scan against the index: fills scan_ent and ent.scan.
 * Returns whether anything must change (new, gone or re-flagged
 * messages, names without their UID, a damaged or missing index). */
static bool
match(struct sync *s)
{
	bool change = s->idx.missing || s->idx.damaged;
	for (size_t e = 0; e < s->idx.n; e++)
		s->idx.v[e].scan = -1;
	for (size_t i = 0; i < s->scan.n; i++) {
		const struct hk_store_msg *m = &s->scan.v[i];
		struct hk_str id = hk_store_identity(m->filename);
		if (id.len == 0 || memchr(id.ptr, '\n', id.len) || strchr(m->filename, '\n')) {
			s->scan_ent[i] = -2;
			continue;
		}
		s->scan_id[i] = id;
		s->scan_h[i] = hash_id(id);
		ssize_t e = hash_find_h(s, id, s->scan_h[i]);
		s->scan_ent[i] = e;
		if (e < 0) {
			change = true;
			continue;
		}
		struct ent *en = &s->idx.v[e];
		if (en->scan >= 0) {
			/* the same message twice (a foreign copy, or a crash in a
			 * link+unlink rename): show one, the same one every time */
			if (!dup_better(m->filename, s->scan.v[en->scan].filename, en->uid)) {
				s->scan_ent[i] = -2;
				continue;
			}
			s->scan_ent[en->scan] = -2;
		}
		en->scan = (ssize_t)i;
	}
	for (size_t e = 0; e < s->idx.n && !change; e++) {
		const struct ent *en = &s->idx.v[e];
		if (en->scan < 0)
			change = true;
		else {
			const struct hk_store_msg *m = &s->scan.v[en->scan];
			change = en->flags != m->flags || en->kw != m->kw || name_needs_uid(m->filename, en->uid);
		}
	}
	return change;
}

/* Delivery order of new messages: our names start "<sec>.M<usec>P". */
struct newmsg {
	size_t scan;
	const char *file;
	struct hk_str id;
	uint64_t sec, usec;
	uint32_t name_uid;
	bool done;
};

static int
cmp_new(const void *a, const void *b)
{
	const struct newmsg *x = a, *y = b;
	if (x->sec != y->sec)
		return x->sec < y->sec ? -1 : 1;
	if (x->usec != y->usec)
		return x->usec < y->usec ? -1 : 1;
	size_t n = x->id.len < y->id.len ? x->id.len : y->id.len;
	int c = memcmp(x->id.ptr, y->id.ptr, n);
	if (c)
		return c;
	if (x->id.len != y->id.len)
		return x->id.len < y->id.len ? -1 : 1;
	/* one identity twice: the first by file name is the one shown */
	return strcmp(x->file, y->file);
}

static void
new_key(struct newmsg *nm)
{
	const char *p = nm->id.ptr, *end = p + nm->id.len;
	nm->sec = nm->usec = 0;
	if (!parse_u64(&p, end, UINT64_MAX, &nm->sec))
		return;
	if (end - p > 2 && p[0] == '.' && p[1] == 'M') {
		p += 2;
		const char *q = p;
		while (q < end && *q == '0' && q + 1 < end && q[1] >= '0' && q[1] <= '9')
			q++; /* "M000123" */
		(void)parse_u64(&q, end, UINT64_MAX, &nm->usec);
	}
}

static int
cmp_ent_uid(const void *a, const void *b)
{
	const struct ent *x = a, *y = b;
	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

static uint64_t
modseq_next(struct uidx *x)
{
	if (x->highestmodseq < UIDX_MODSEQ_MAX)
		x->highestmodseq++;
	return x->highestmodseq;
}

/* A new UIDVALIDITY: max(now, prev + 1, the mailbox's last one + 1). The
 * mailbox's last one is kept in <root>/hikyaku-uidvalidity-last (under a
 * flock on itself), so a folder deleted and created again within one
 * second (RFC 3501 2.3.1.1: name, UIDVALIDITY and UID name one message
 * forever) or several folders losing their files at once never share a
 * value. If that file cannot be used, the time alone decides. */
static uint32_t
validity_new(struct sync *s, uint32_t prev)
{
	uint64_t v = (uint64_t)time(NULL);
	if (prev && prev >= v)
		v = (uint64_t)prev + 1;
	char *path = xasprintf("%s/" MAILDIR_UIDX_LAST, s->st->root);
	int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	free(path);
	if (fd >= 0 && flock(fd, LOCK_EX) == 0) {
		char buf[32];
		ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
		uint64_t last;
		const char *p = buf;
		if (n > 0 && (buf[n] = '\0', parse_u64(&p, buf + n, UINT32_MAX, &last)) && last >= v)
			v = last + 1;
		if (v <= UINT32_MAX) {
			int len = snprintf(buf, sizeof buf, "%llu\n", (unsigned long long)v);
			if (pwrite(fd, buf, (size_t)len, 0) == len && ftruncate(fd, len) == 0)
				(void)fsync(fd);
		}
	}
	if (fd >= 0)
		close(fd); /* and the flock with it */
	if (v > UINT32_MAX)
		v = 1; /* in 2106 */
	return (uint32_t)v;
}

/* The index empty, with UIDVALIDITY and the counters for a rebuild. */
static void
rebuild_start(struct sync *s)
{
	struct uidx *x = &s->idx;
	uint32_t prev = x->prev_uidvalidity;
	/* a first sync of a folder finds neither file; the caller hears of a
	 * rebuild only when there was something to lose */
	s->lost = x->damaged || s->res.valid;
	s->why = x->damaged ? x->why : "missing";
	x->n = 0;
	hash_clear(s);
	hash_reserve(s, s->scan.n);
	s->rebuilt = true;
	s->dirty = true;
	if (s->res.valid) {
		x->uidvalidity = s->res.uidvalidity;
		x->uidnext = s->res.uid;
		/* every message gets this MODSEQ: above any given before */
		x->highestmodseq = s->res.modseq;
		return;
	}
	/* UIDVALIDITY lost too, or a new folder: a new one, above any still
	 * known (this folder's damaged index, and the mailbox's last) */
	x->uidvalidity = validity_new(s, prev);
	x->uidnext = 1;
	x->highestmodseq = 1;
	s->new_validity = true;
}

/* Adds the scanned file as an entry; false (and the file is not shown)
 * when its identity has an entry already: two new files with one identity
 * (a foreign program's half-done rename or copy). */
static bool
ent_add(struct sync *s, uint32_t uid, uint64_t modseq, size_t scan)
{
	struct uidx *x = &s->idx;
	const struct hk_store_msg *m = &s->scan.v[scan];
	struct hk_str id = s->scan_id[scan];
	if (hash_find_h(s, id, s->scan_h[scan]) >= 0) {
		s->scan_ent[scan] = -2;
		return false;
	}
	x->v = xgrow(x->v, &x->cap, x->n + 1, sizeof *x->v);
	x->v[x->n] = (struct ent){ uid, modseq, m->flags, m->kw, id, s->scan_h[scan], (ssize_t)scan, false };
	(void)hash_add(s, x->n);
	s->scan_ent[scan] = (ssize_t)x->n;
	x->n++;
	return true;
}

/* Whether the file's name should be renamed to carry ",U=<uid>": it
 * does not yet, and the longer name fits NAME_MAX. */
static bool
name_needs_uid(const char *filename, uint32_t uid)
{
	if (maildir_index_name_uid(filename) == uid)
		return false;
	struct hk_str id = hk_store_identity(filename), base = hk_store_base_name(filename);
	size_t info = strlen(base.ptr + base.len);
	char digits[16];
	return id.len + 3 + (size_t)snprintf(digits, sizeof digits, "%u", (unsigned)uid) + info <= NAME_MAX;
}

/* Renames the scanned file so its base name ends with ",U=<uid>";
 * returns whether it did. ENOENT (renamed or expunged meanwhile by a
 * foreign program) is left for the next sync. */
static bool
name_fix(struct sync *s, size_t scan, uint32_t uid)
{
	struct hk_store_msg *m = &s->scan.v[scan];
	struct hk_str id = hk_store_identity(m->filename), base = hk_store_base_name(m->filename);
	const char *info = base.ptr + base.len; /* ":2,..." or "" */
	struct hk_buf nn;
	buf_init(&nn);
	buf_add(&nn, m->filename, 4);
	buf_add(&nn, id.ptr, id.len);
	buf_printf(&nn, ",U=%u", (unsigned)uid);
	size_t blen = nn.len - 4;
	buf_adds(&nn, info);
	bool done = false;
	/* relative to the folder: a first sync renames every file, and a
	 * path walk from / per rename was a third of it */
	if (s->dir_fd < 0)
		s->dir_fd = open(s->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (s->dir_fd >= 0 && blen + strlen(info) <= NAME_MAX) {
		char *op = m->filename, *np = nn.data;
		if (store_rename_noreplace(s->dir_fd, op, s->dir_fd, np, np) == 0) {
			free(m->filename);
			m->filename = buf_steal(&nn);
			s->scan_id[scan] = hk_store_identity(m->filename); /* the same bytes */
			done = true;
		}
	}
	buf_fini(&nn);
	return done;
}

static int
fsync_dir(struct sync *s, const char *sub)
{
	char *p = xasprintf("%s/%s", s->dir, sub);
	int fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;
	if (fd < 0 || store_fsync(fd, p) != 0)
		rc = store_fail(s->st, errno, "fsync(%s)", p);
	if (fd >= 0)
		close(fd);
	free(p);
	return rc;
}

static int
cmp_name_uid(const void *a, const void *b)
{
	const struct newmsg *x = *(const struct newmsg *const *)a, *y = *(const struct newmsg *const *)b;
	if (x->name_uid != y->name_uid)
		return x->name_uid < y->name_uid ? -1 : 1;
	return x < y ? -1 : x > y; /* then delivery order: the first keeps it */
}

/* A rebuild: files keep the UID their name carries, the first in delivery
 * order of any duplicates (a copy made by cp); uidnext goes above them. */
static void
rebuild_name_uids(struct sync *s, struct newmsg *nv, size_t nn, uint64_t modseq)
{
	struct newmsg **ord = xcalloc(nn ? nn : 1, sizeof *ord);
	size_t n = 0;
	for (size_t k = 0; k < nn; k++)
		if (nv[k].name_uid)
			ord[n++] = &nv[k];
	if (n > 1)
		qsort(ord, n, sizeof *ord, cmp_name_uid);
	for (size_t k = 0; k < n; k++) {
		if (k > 0 && ord[k]->name_uid == ord[k - 1]->name_uid)
			continue;
		if (!ent_add(s, ord[k]->name_uid, modseq, ord[k]->scan)) {
			ord[k]->done = true; /* a duplicate identity: not shown */
			continue;
		}
		ord[k]->done = true;
		if (ord[k]->name_uid >= s->idx.uidnext)
			s->idx.uidnext = ord[k]->name_uid + 1;
	}
	free(ord);
}

/* Under the lock: applies what match() found. */
static int
apply(struct sync *s)
{
	struct uidx *x = &s->idx;
	reserve_read(s);
	if (x->missing || x->damaged) {
		rebuild_start(s);
	} else if (!s->res.valid || s->res.uidvalidity != x->uidvalidity) {
		s->dirty = true; /* the reserve file is rewritten from the index below */
	}
	/* gone messages; an expunge is a change of the folder too (RFC 7162
	 * 3.2.10 asks for a new HIGHESTMODSEQ, so QRESYNC can be added) */
	size_t w = 0;
	for (size_t e = 0; e < x->n; e++) {
		if (x->v[e].scan < 0) {
			s->dirty = true;
			continue;
		}
		x->v[w++] = x->v[e];
	}
	if (w != x->n) {
		(void)modseq_next(x);
		x->n = w;
		hash_clear(s);
		for (size_t e = 0; e < x->n; e++)
			(void)hash_add(s, e);
	}
	/* flags changed by someone else */
	for (size_t e = 0; e < x->n; e++) {
		struct ent *en = &x->v[e];
		const struct hk_store_msg *m = &s->scan.v[en->scan];
		s->scan_ent[en->scan] = (ssize_t)e;
		if (en->flags != m->flags || en->kw != m->kw) {
			en->flags = m->flags;
			en->kw = m->kw;
			en->modseq = modseq_next(x);
			s->dirty = true;
		}
	}
	/* new messages, in delivery order */
	struct newmsg *nv = NULL;
	size_t nn = 0, cap = 0;
	for (size_t i = 0; i < s->scan.n; i++) {
		if (s->scan_ent[i] != -1)
			continue;
		nv = xgrow(nv, &cap, nn + 1, sizeof *nv);
		struct newmsg nm = { .scan = i, .file = s->scan.v[i].filename, .id = s->scan_id[i] };
		new_key(&nm);
		nm.name_uid = s->rebuilt ? maildir_index_name_uid(s->scan.v[i].filename) : 0;
		s->lost |= nm.name_uid != 0; /* UIDs were given before */
		/* a name's UID is only believed in the range we can have given:
		 * below the reserve, or (the reserve lost too) in the lower half,
		 * so a foreign ",U=4294967294" cannot use the UIDs up */
		if (nm.name_uid >= (s->new_validity ? UIDX_NAME_UID_LIMIT : s->res.uid))
			nm.name_uid = 0;
		nv[nn++] = nm;
	}
	if (nn)
		qsort(nv, nn, sizeof *nv, cmp_new);
	int rc = 0;
	uint64_t rebuild_modseq = x->highestmodseq;
	if (s->rebuilt)
		rebuild_name_uids(s, nv, nn, rebuild_modseq);
	for (size_t k = 0; k < nn; k++) {
		if (nv[k].done)
			continue;
		if (x->uidnext > UIDX_UID_MAX) {
			rc = store_fail(s->st, EOVERFLOW, "no UIDs left in '%s'", s->folder);
			break;
		}
		if (hash_find_h(s, nv[k].id, s->scan_h[nv[k].scan]) >= 0) {
			s->scan_ent[nv[k].scan] = -2;
			continue;
		}
		ent_add(s, x->uidnext++, s->rebuilt ? rebuild_modseq : modseq_next(x), nv[k].scan);
		s->dirty = true;
	}
	free(nv);
	if (rc != 0)
		return rc;
	if (s->rebuilt && x->highestmodseq < rebuild_modseq)
		x->highestmodseq = rebuild_modseq;
	/* a rebuild adds the entries in UID order already */
	bool sorted = true;
	for (size_t e = 1; e < x->n && sorted; e++)
		sorted = x->v[e - 1].uid < x->v[e].uid;
	if (!sorted)
		qsort(x->v, x->n, sizeof *x->v, cmp_ent_uid);
	hash_clear(s);
	for (size_t e = 0; e < x->n; e++) {
		(void)hash_add(s, e);
		s->scan_ent[x->v[e].scan] = (ssize_t)e;
	}
	if (s->dirty && reserve_ensure(s) != 0)
		return -1;
	/* names carry their UID, so a lost index keeps it */
	bool renamed[2] = { false, false };
	for (size_t e = 0; e < x->n; e++) {
		struct ent *en = &x->v[e];
		const char *f = s->scan.v[en->scan].filename;
		if (!name_needs_uid(f, en->uid))
			continue;
		if (reserve_ensure(s) != 0)
			return -1;
		bool in_new = f[0] == 'n';
		if (name_fix(s, (size_t)en->scan, en->uid)) {
			renamed[in_new ? 0 : 1] = true;
			/* the same bytes, in the new name's memory */
			en->id = hk_store_identity(s->scan.v[en->scan].filename);
		}
	}
	s->renamed = renamed[0] || renamed[1];
	if ((renamed[0] && fsync_dir(s, "new") != 0) || (renamed[1] && fsync_dir(s, "cur") != 0))
		return -1;
	return 0;
}

static int
uidx_write(struct sync *s)
{
	struct uidx *x = &s->idx;
	if (reserve_ensure(s) != 0)
		return -1;
	struct hk_buf b;
	buf_init(&b);
	buf_reserve(&b, 64 + x->n * 96);
	buf_printf(&b, UIDX_MAGIC "%u %u %llu %zu\n", (unsigned)x->uidvalidity, (unsigned)x->uidnext,
	    (unsigned long long)x->highestmodseq, x->n);
	for (size_t e = 0; e < x->n; e++) {
		struct ent *en = &x->v[e];
		/* by hand, not printf: a rebuild writes 10,000 of these */
		put_u64(&b, en->uid);
		buf_addc(&b, ' ');
		put_u64(&b, en->modseq);
		buf_addc(&b, ' ');
		put_flags(&b, en->flags, en->kw);
		buf_addc(&b, ' ');
		buf_add(&b, en->id.ptr, en->id.len);
		buf_addc(&b, '\n');
	}
	int rc = replace_file(s, MAILDIR_UIDX_FILE, b.data, b.len);
	buf_fini(&b);
	if (rc == 0) {
		s->dirty = false;
		x->missing = x->damaged = false;
	}
	return rc;
}

/* Opens the folder, takes the lock and brings the index up to date. */
static int
sync_locked(struct sync *s)
{
	if (s->dir == NULL && (s->dir = maildir_folder_path(s->st, s->folder)) == NULL)
		return -1;
	struct stat sb;
	if (stat(s->dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
		return store_fail(s->st, ENOENT, "no folder '%s'", s->folder);
	if (s->lockfd < 0 && lock_take(s) != 0)
		return -1;
	/* The lock-free pass read the index, then scanned. If nobody has
	 * written the index since, its scan is newer than the index, which is
	 * all apply() needs; otherwise a syncer may have done (part of) the
	 * work, or expunged what the scan still lists: read and scan again.
	 * This halves the cost of the common "one new message" sync. */
	if (!s->scanned || !uidx_same(s)) {
		uidx_load(s);
		if (rescan(s) != 0)
			return -1;
		(void)match(s);
	}
	if (apply(s) != 0)
		return -1;
	return s->dirty ? uidx_write(s) : 0;
}

static void view_expunged(const struct hk_store_view *prev, struct hk_store_view *out);

static void
view_build(struct sync *s, const struct hk_store_view *prev, struct hk_store_view *out)
{
	struct uidx *x = &s->idx;
	memset(out, 0, sizeof *out);
	out->uidvalidity = x->uidvalidity;
	out->uidnext = x->uidnext;
	out->highestmodseq = x->highestmodseq;
	out->rebuilt = s->rebuilt && s->lost;
	if (out->rebuilt)
		out->rebuilt_why = s->why;
	out->uidvalidity_changed = s->new_validity && s->lost;
	out->v = xcalloc(x->n ? x->n : 1, sizeof *out->v);
	for (size_t e = 0; e < x->n; e++) {
		struct ent *en = &x->v[e];
		struct hk_store_msg *m = &s->scan.v[en->scan];
		out->v[out->n++] = (struct hk_store_uid_msg){ en->uid, en->modseq, m->filename, m->flags, m->kw, m->size,
			m->vsize, m->recent };
		m->filename = NULL; /* the view owns it now */
	}
	view_expunged(prev, out);
}

/* out->expunged: the UIDs of prev that out does not have. */
static void
view_expunged(const struct hk_store_view *prev, struct hk_store_view *out)
{
	if (prev == NULL || prev->n == 0)
		return;
	out->expunged = xcalloc(prev->n, sizeof *out->expunged);
	bool same = prev->uidvalidity == out->uidvalidity;
	size_t j = 0;
	for (size_t i = 0; i < prev->n; i++) {
		uint32_t u = prev->v[i].uid;
		while (same && j < out->n && out->v[j].uid < u)
			j++;
		if (!same || j >= out->n || out->v[j].uid != u)
			out->expunged[out->nexpunged++] = u;
	}
}

/* --- the unchanged folder: no readdir (maildir_dirstamp.c says why) ------------ */

#define CANON_NAME_MAX (4 + NAME_MAX + 70) /* "cur/" id ",U=" uid ":2," 52 letters NUL */

/* The name the index alone gives a message: "cur/<id>,U=<uid>:2,<flags>"
 * into buf (CANON_NAME_MAX bytes); its length. */
static size_t
canon_name(char *buf, const struct ent *en)
{
	/* by hand, not printf: a sync builds 10,000 of these */
	memcpy(buf, "cur/", 4);
	memcpy(buf + 4, en->id.ptr, en->id.len);
	size_t n = 4 + en->id.len;
	memcpy(buf + n, ",U=", 3);
	n += 3;
	char digits[10];
	size_t nd = 0;
	for (uint32_t u = en->uid; u; u /= 10)
		digits[nd++] = (char)('0' + u % 10);
	while (nd)
		buf[n++] = digits[--nd];
	memcpy(buf + n, ":2,", 3);
	n += 3;
	for (uint32_t f = en->flags; f; f &= f - 1)
		buf[n++] = (char)('A' + __builtin_ctz(f));
	for (uint32_t k = en->kw; k; k &= k - 1)
		buf[n++] = (char)('a' + __builtin_ctz(k));
	buf[n] = '\0';
	return n;
}

/* The view from the index and the stamp alone, when the stamp vouches for
 * this index file and the directories as stat-ed; false (nothing built)
 * otherwise. */
static bool
sync_fast(struct sync *s, const struct maildir_dirs *d, const struct hk_store_view *prev, struct hk_store_view *out)
{
	struct uidx *x = &s->idx;
	struct stat ib;
	struct maildir_stamp sp;
	if (!d->ok || x->missing || x->damaged || s->idx_fd < 0 || fstat(s->idx_fd, &ib) != 0 ||
	    !maildir_stamp_read(s->dir, &ib, d, &sp))
		return false;
	memset(out, 0, sizeof *out);
	out->v = xcalloc(x->n ? x->n : 1, sizeof *out->v);
	char name[CANON_NAME_MAX];
	size_t j = 0;
	bool ok = true;
	for (size_t e = 0; e < x->n && ok; e++) {
		const struct ent *en = &x->v[e];
		struct hk_store_uid_msg *m = &out->v[out->n];
		*m = (struct hk_store_uid_msg){ .uid = en->uid, .modseq = en->modseq, .flags = en->flags, .kw = en->kw };
		if (j < sp.n && sp.v[j].uid == en->uid) {
			const struct maildir_stamp_exc *xc = &sp.v[j++];
			ok = str_eq(hk_store_identity(xc->filename), en->id);
			m->filename = xstrdup(xc->filename);
			m->size = xc->size;
			m->vsize = xc->vsize;
			m->in_new = xc->filename[0] == 'n';
		} else {
			/* an exception for a UID the index lacks: not this index's */
			ok = j >= sp.n || sp.v[j].uid > en->uid;
			size_t n = canon_name(name, en);
			struct maildir_info info;
			maildir_parse_filename(name + 4, &info);
			ok = ok && info.has_size;
			m->filename = xmalloc(n + 1);
			memcpy(m->filename, name, n + 1);
			m->size = info.size;
			m->vsize = info.has_vsize ? info.vsize : info.size;
		}
		out->n++;
	}
	ok = ok && j == sp.n;
	maildir_stamp_fini(&sp);
	if (!ok) {
		hk_store_view_free(out);
		return false;
	}
	out->uidvalidity = x->uidvalidity;
	out->uidnext = x->uidnext;
	out->highestmodseq = x->highestmodseq;
	view_expunged(prev, out);
	return true;
}

/* The stamp for the index file `ib` and the directories as `d` saw them,
 * when their mtimes have settled. The index must list exactly what the
 * scan (made after `d`) found: a lock-free pass that found nothing to
 * change, or a sync under the lock that renamed nothing. */
static void
stamp_update(struct sync *s, const struct maildir_dirs *d, const struct stat *ib)
{
	if (!maildir_dirs_settled(d))
		return;
	struct uidx *x = &s->idx;
	struct maildir_stamp_exc *v = NULL;
	size_t n = 0, cap = 0;
	char name[CANON_NAME_MAX];
	for (size_t e = 0; e < x->n; e++) {
		const struct ent *en = &x->v[e];
		if (en->scan < 0)
			return; /* cannot be after a match without change */
		const struct hk_store_msg *m = &s->scan.v[en->scan];
		canon_name(name, en);
		struct maildir_info info;
		maildir_parse_filename(name + 4, &info);
		if (info.has_size && info.size == m->size && strcmp(name, m->filename) == 0)
			continue;
		v = xgrow(v, &cap, n + 1, sizeof *v);
		v[n++] = (struct maildir_stamp_exc){ en->uid, m->size, m->vsize, m->filename };
	}
	maildir_stamp_write(s->dir, ib, d, v, n);
	free(v);
}

int
maildir_index_sync(struct hk_store *st, const char *folder, const struct hk_store_view *prev,
    struct hk_store_view *out)
{
	struct sync s;
	sync_init(&s, st, folder);
	int rc = -1;
	if ((s.dir = maildir_folder_path(st, folder)) == NULL)
		goto out;
	/* the cheapest path: the index read, both directories stat-ed and the
	 * stamp saying neither changed since the index last matched them.
	 * The index is read before the stats and the stats before the
	 * readdirs, which is what a stamp written below needs */
	uidx_read(&s);
	struct maildir_dirs d;
	(void)maildir_dirs_stat(s.dir, &d);
	if (sync_fast(&s, &d, prev, out)) {
		rc = 0;
		goto out;
	}
	/* the cheap path: no lock, nothing written when nothing changed (but
	 * the stamp) */
	uidx_hash(&s);
	if (rescan(&s) != 0)
		goto out;
	bool change = match(&s);
	s.scanned = true;
	struct stat ib;
	if (!change && s.idx_fd >= 0 && fstat(s.idx_fd, &ib) == 0)
		stamp_update(&s, &d, &ib);
	if (change) {
		if (sync_locked(&s) != 0)
			goto out;
		/* still under the lock, so the index file is the one just
		 * written (or read); with no rename of ours since the scan it
		 * lists the directories as the stats saw them (a rebuild, an
		 * expunge or a flag change by another program) */
		char *ip = xasprintf("%s/" MAILDIR_UIDX_FILE, s.dir);
		if (!s.renamed && stat(ip, &ib) == 0)
			stamp_update(&s, &d, &ib);
		free(ip);
	}
	view_build(&s, prev, out);
	rc = 0;
out:;
	int e = errno;
	sync_fini(&s);
	errno = e;
	return rc;
}

/* --- changes under the lock ------------------------------------------------------------ */

static struct ent *
ent_by_uid(struct uidx *x, uint32_t uid)
{
	struct ent key = { .uid = uid };
	return bsearch(&key, x->v, x->n, sizeof *x->v, cmp_ent_uid);
}

/* ",U=<uid>" into a staged item's names, before ":2," when there is one. */
static void
item_add_uid(char **name, uint32_t uid)
{
	char *colon = strrchr(*name, ':');
	const char *slash = strrchr(*name, '/');
	if (colon && slash && colon < slash)
		colon = NULL;
	size_t head = colon ? (size_t)(colon - *name) : strlen(*name);
	char *n = xasprintf("%.*s,U=%u%s", (int)head, *name, (unsigned)uid, colon ? colon : "");
	free(*name);
	*name = n;
}

int
maildir_index_append(struct hk_store *st, const char *folder, const struct hk_store_deliver_opts *o,
    const struct hk_store_part *parts, size_t nparts, uint32_t *uidvalidity_r, uint32_t *uid_r)
{
	struct hk_store_deliver_opts oc = *o;
	oc.folder = folder;
	/* the slow part (writing the message) before the lock */
	struct hk_store_batch *b = hk_store_batch_new(HK_STORE_SYNC_FSYNC);
	size_t bi;
	if (hk_store_batch_add(b, st, &oc, parts, nparts, &bi) != 0) {
		int e = errno;
		hk_store_batch_free(&b);
		return errno = e, -1;
	}
	struct sync s;
	sync_init(&s, st, folder);
	int rc = -1;
	if (sync_locked(&s) != 0)
		goto out;
	struct uidx *x = &s.idx;
	if (x->uidnext > UIDX_UID_MAX) {
		store_fail(st, EOVERFLOW, "no UIDs left in '%s'", folder);
		goto out;
	}
	uint32_t uid = x->uidnext++;
	uint64_t modseq = modseq_next(x);
	if (reserve_ensure(&s) != 0)
		goto out;
	struct store_item *it = store_batch_item(b, bi);
	item_add_uid(&it->dst_path, uid);
	item_add_uid(&it->filename, uid);
	it->res.filename = it->filename;
	if (strlen(strrchr(it->dst_path, '/') + 1) > NAME_MAX) {
		store_fail(st, ENAMETOOLONG, "message file name too long");
		goto write;
	}
	if (hk_store_batch_commit(b) != 0) {
		const struct hk_store_result *r = hk_store_batch_result(b, bi);
		store_fail(st, r->err, "%s", r->error ? r->error : "commit failed");
		goto write;
	}
	x->v = xgrow(x->v, &x->cap, x->n + 1, sizeof *x->v);
	struct hk_str id = hk_store_identity(it->filename);
	x->v[x->n++] = (struct ent){ uid, modseq, oc.flags, it->res.kw, id, hash_id(id), -1, false };
	*uidvalidity_r = x->uidvalidity;
	*uid_r = uid;
	rc = 0;
write:
	/* also after a failure: the UID is spent (uidnext moved on) */
	if (uidx_write(&s) != 0)
		rc = -1;
out:;
	int e = errno;
	sync_fini(&s);
	hk_store_batch_free(&b);
	errno = e;
	return rc;
}

int
maildir_index_expunge(struct hk_store *st, const char *folder, const uint32_t *uids, size_t n, size_t *expunged_r)
{
	struct sync s;
	sync_init(&s, st, folder);
	int rc = -1;
	if (sync_locked(&s) != 0)
		goto out;
	struct uidx *x = &s.idx;
	rc = 0;
	for (size_t i = 0; i < n; i++) {
		struct ent *en = ent_by_uid(x, uids[i]);
		if (en == NULL || en->gone)
			continue;
		const char *f = s.scan.v[en->scan].filename;
		if (st->be->expunge(st, folder, f) != 0 && errno != ENOENT) {
			rc = -1;
			continue;
		}
		en->gone = true;
		(*expunged_r)++;
	}
	if (*expunged_r) {
		(void)modseq_next(x);
		size_t w = 0;
		for (size_t e = 0; e < x->n; e++)
			if (!x->v[e].gone)
				x->v[w++] = x->v[e];
		x->n = w;
		int e = errno;
		if (uidx_write(&s) != 0)
			rc = -1;
		else
			errno = e;
	}
out:;
	int e = errno;
	sync_fini(&s);
	errno = e;
	return rc;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

int
maildir_index_update_flags(struct hk_store *st, const char *folder, const struct hk_store_flag_update *u,
    struct hk_store_flag_result *res)
{
	struct sync s;
	sync_init(&s, st, folder);
	int rc = -1;
	size_t cap = 0;
	if (sync_locked(&s) != 0)
		goto out;
	struct uidx *x = &s.idx;
	rc = 0;
	for (size_t i = 0; i < u->nuids; i++) {
		struct ent *en = ent_by_uid(x, u->uids[i]);
		if (en == NULL)
			continue;
		if (u->unchangedsince && en->modseq > u->unchangedsince) {
			res->failed = xgrow(res->failed, &cap, res->nfailed + 1, sizeof *res->failed);
			res->failed[res->nfailed++] = en->uid;
			continue;
		}
		uint32_t f = en->flags, k = en->kw;
		if (u->op == HK_STORE_FLAGS_SET)
			f = u->flags, k = u->kw;
		else if (u->op == HK_STORE_FLAGS_ADD)
			f |= u->flags, k |= u->kw;
		else
			f &= ~u->flags, k &= ~u->kw;
		if (f == en->flags && k == en->kw)
			continue;
		struct hk_store_msg *m = &s.scan.v[en->scan];
		char *nn = NULL;
		if (st->be->set_flags(st, folder, m->filename, f, k, &nn) != 0) {
			/* ENOENT: renamed or expunged by a foreign program since
			 * the scan (no lock stops those); the next sync shows it */
			if (errno != ENOENT)
				rc = -1;
			continue;
		}
		free(m->filename);
		m->filename = nn;
		en->id = hk_store_identity(nn);
		en->flags = f;
		en->kw = k;
		en->modseq = modseq_next(x);
		res->changed++;
		s.dirty = true;
	}
	if (res->nfailed > 1)
		qsort(res->failed, res->nfailed, sizeof *res->failed, cmp_u32);
	if (s.dirty) {
		int e = errno;
		if (uidx_write(&s) != 0)
			rc = -1;
		else
			errno = e;
	}
	res->highestmodseq = x->highestmodseq;
out:;
	int e = errno;
	sync_fini(&s);
	errno = e;
	return rc;
}

int
maildir_index_claim_recent(struct hk_store *st, const char *folder, const uint32_t *uids, size_t n,
    char **names_r)
{
	struct sync s;
	sync_init(&s, st, folder);
	int rc = -1;
	if (sync_locked(&s) != 0)
		goto out;
	rc = 0;
	for (size_t i = 0; i < n; i++) {
		struct ent *en = ent_by_uid(&s.idx, uids[i]);
		if (en == NULL)
			continue;
		struct hk_store_msg *m = &s.scan.v[en->scan];
		if (strncmp(m->filename, "new/", 4) != 0)
			continue;
		/* set_flags with the same flags is the rename into cur/; the
		 * identity and flags the index keeps do not change */
		char *nn = NULL;
		if (st->be->set_flags(st, folder, m->filename, en->flags, en->kw, &nn) != 0) {
			if (errno != ENOENT)
				rc = -1;
			continue;
		}
		free(m->filename);
		m->filename = nn;
		en->id = hk_store_identity(nn);
		if (names_r)
			names_r[i] = xstrdup(nn);
	}
out:;
	int e = errno;
	sync_fini(&s);
	errno = e;
	return rc;
}

int
maildir_index_parse_check(const char *data, size_t len, size_t *count_r)
{
	struct sync s;
	sync_init(&s, NULL, "INBOX");
	char *copy = xmalloc(len + 1);
	memcpy(copy, data, len);
	copy[len] = '\0';
	int rc = uidx_parse(&s.idx, copy, len);
	for (size_t e = 0; rc == 0 && e < s.idx.n; e++)
		if (!hash_add(&s, e))
			rc = -1;
	*count_r = rc == 0 ? s.idx.n : 0;
	hash_clear(&s);
	uidx_fini(&s.idx);
	return rc;
}
