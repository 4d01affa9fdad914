/*
 * maildir_dirstamp.c - the proof that a folder's new/ and cur/ are what
 * its UID index last matched, so an unchanged folder is synced without
 * reading the directories (maildir_index.c, hk_store_sync). Dovecot's
 * maildir does the same with the mtimes in dovecot-uidlist.
 *
 * The file, <folder>/hikyaku-dirstamp, text:
 *   "hikyaku-dirstamp 1 <index dev> <index ino> <index size> <index mtime ns>
 *    <new ino> <new mtime ns> <new ctime ns> <cur ino> <cur mtime ns>
 *    <cur ctime ns> <count>\n"                              (one line)
 * then <count> lines "<uid> <size> <vsize> <filename>\n", ascending UID:
 * the messages whose file name is not the one the index alone gives
 * ("cur/<identity>,U=<uid>:2,<flags sorted>" with ,S= in the identity):
 * still in new/, written by another program with other info, too long to
 * carry ,U=, or without ,S=.
 *
 * It says: "the index file with this inode, size and mtime listed exactly
 * the messages of new/ and cur/ when those directories had these inodes,
 * mtimes and ctimes". A sync stats both directories, then reads the stamp;
 * when every number matches, the view is the index plus the stamp's
 * names, and no directory is read.
 *
 * Why that is sound. Every change of a Maildir folder's message set or
 * flags is a create, rename or unlink in new/ or cur/, and each of those
 * sets the directory's mtime and ctime to the current time. A stamp is
 * written only by a sync that (1) stat-ed both directories, (2) then read
 * them, and (3) found them matching the index it had read, with no change
 * to make. A change after (1) gives the directory a new mtime, unless it
 * lands in the same timestamp tick as the mtime (1) saw: the clock has not
 * moved on, so the new mtime is the same number. So the stamp is written
 * only when both mtimes are older than the clock read after (1) by more
 * than a tick can be: MAILDIR_STAMP_SETTLE_NS (1 s, Dovecot's "dirty"
 * rule) on a file system that keeps whole seconds, and
 * MAILDIR_STAMP_SETTLE_FINE_NS (0.5 s) on one whose times carry
 * sub-second digits (ext4, XFS, Btrfs, tmpfs: their tick is the kernel's
 * coarse clock, one jiffy, at most 10 ms; 50 times that). Any later change
 * is then stamped with a later tick. A folder changed within that time is
 * read in full (cheap: the mailbox is busy anyway). (3) may also be a
 * sync under the index lock that wrote the index from its scan without
 * renaming anything itself (a rebuild, another program's expunge or flag
 * change taken in). The index itself is only ever replaced by rename, so another writer
 * gives it a new inode (or, should an inode be reused, a new size or
 * mtime); the directories' inodes catch a folder deleted and created again.
 *
 * Corner cases, written down:
 *   - timestamp granularity: a file system keeping whole seconds (ext3,
 *     ext4 with 128-byte inodes) is told by times without sub-second
 *     digits and gets the 1 s rule (a time that happens to fall on a whole
 *     second only makes that folder wait 1 s). A file system with
 *     sub-second digits but a tick coarser than 0.5 s would break the
 *     rule; none of Linux's local ones has one (FAT's 2 s mtimes come
 *     with whole seconds, and its names cannot hold Maildir's ':').
 *   - clock steps: a clock stepped back by more than the settle time after
 *     a stamp was written could give a later change the very mtime and
 *     ctime recorded (to the nanosecond, or to the second on a coarse file
 *     system). Nothing here can see that; a step that large on a mail
 *     server is an incident of its own. A clock stepped forward only makes
 *     mtimes look older than they are for one sync: harmless.
 *   - network file systems: the mtimes come from the server's clock, the
 *     settle rule uses ours; with clocks more than a second apart it can
 *     trust a directory too early. Keep the store on a local file system.
 *   - a program that sets a directory's mtime back (touch -d, rsync -t)
 *     still changes its ctime, which is compared too.
 * Anything that does not parse, or does not match, means "read the
 * directories": the stamp is never needed for correctness, only to skip
 * work. It is replaced by rename, without fsync: after a crash it may be
 * missing or empty, which is the same as no stamp. The temporary file is
 * written in the folder's tmp/, so hk_store_clean_tmp removes one that a
 * crash left behind.
 *
 * SECURITY: the file may have been written by another program or damaged;
 * it is size-limited, parsed strictly (numbers, ascending UIDs, file names
 * "new/" or "cur/" plus one path component), and a bad one is ignored.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "maildir.h"

#define STAMP_MAGIC "hikyaku-dirstamp 1 "

static int64_t
ts_ns(struct timespec t)
{
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

int
maildir_dirs_stat(const char *dir, struct maildir_dirs *d)
{
	memset(d, 0, sizeof *d);
	for (int i = 0; i < 2; i++) {
		char *p = xasprintf("%s/%s", dir, i == 0 ? "new" : "cur");
		struct stat sb;
		int r = stat(p, &sb);
		free(p);
		if (r != 0 || !S_ISDIR(sb.st_mode))
			return -1;
		d->ino[i] = (uint64_t)sb.st_ino;
		d->mtime_ns[i] = ts_ns(sb.st_mtim);
		d->ctime_ns[i] = ts_ns(sb.st_ctim);
	}
	/* the clock after the stats: a change the stats did not see is
	 * stamped at this time or later */
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	d->now_ns = ts_ns(now);
	d->ok = true;
	return 0;
}

bool
maildir_dirs_settled(const struct maildir_dirs *d)
{
	if (!d->ok)
		return false;
	/* sub-second digits in any of the times: the file system keeps them,
	 * and its tick is the kernel's coarse clock (a jiffy, 10 ms at most) */
	bool fine = false;
	for (int i = 0; i < 2; i++)
		fine |= d->mtime_ns[i] % 1000000000 != 0 || d->ctime_ns[i] % 1000000000 != 0;
	int64_t settle = fine ? MAILDIR_STAMP_SETTLE_FINE_NS : MAILDIR_STAMP_SETTLE_NS;
	for (int i = 0; i < 2; i++)
		if (d->mtime_ns[i] > d->now_ns - settle)
			return false; /* also a mtime in the future: a clock stepped back */
	return true;
}

/* --- parsing ------------------------------------------------------------------ */

/* A decimal number of 1..20 digits (no sign, no leading zero), at most max. */
static bool
num(const char **p, const char *end, uint64_t max, uint64_t *v)
{
	const char *s = *p;
	uint64_t x = 0;
	while (s < end && *s >= '0' && *s <= '9') {
		uint64_t dg = (uint64_t)(*s - '0');
		if (s - *p >= 20 || x > (max - dg) / 10)
			return false;
		x = x * 10 + dg;
		s++;
	}
	if (s == *p || (s - *p > 1 && **p == '0'))
		return false;
	*p = s;
	*v = x;
	return true;
}

static bool
sep(const char **p, const char *end, char c)
{
	if (*p >= end || **p != c)
		return false;
	(*p)++;
	return true;
}

/* "new/NAME" or "cur/NAME": one component, no NUL (the line has no LF). */
static bool
filename_ok(const char *s, size_t n)
{
	if (n < 5 || n > 4 + NAME_MAX || (memcmp(s, "new/", 4) != 0 && memcmp(s, "cur/", 4) != 0))
		return false;
	if (memchr(s + 4, '/', n - 4) || memchr(s, '\0', n))
		return false;
	return !(n == 5 && s[4] == '.') && !(n == 6 && s[4] == '.' && s[5] == '.');
}

int
maildir_stamp_parse(char *data, size_t len, struct maildir_stamp *out)
{
	memset(out, 0, sizeof *out);
	out->data = data;
	const char *p = data, *end = data + len;
	if (len < sizeof STAMP_MAGIC - 1 || memcmp(p, STAMP_MAGIC, sizeof STAMP_MAGIC - 1) != 0)
		return -1;
	p += sizeof STAMP_MAGIC - 1;
	uint64_t k[10], count;
	for (int i = 0; i < 10; i++)
		if (!num(&p, end, UINT64_MAX, &k[i]) || !sep(&p, end, ' '))
			return -1;
	if (!num(&p, end, HK_STORE_SCAN_MAX, &count) || !sep(&p, end, '\n'))
		return -1;
	out->idx_dev = k[0];
	out->idx_ino = k[1];
	out->idx_size = k[2];
	out->idx_mtime_ns = (int64_t)k[3];
	for (int i = 0; i < 2; i++) {
		out->dirs.ino[i] = k[4 + 3 * i];
		out->dirs.mtime_ns[i] = (int64_t)k[5 + 3 * i];
		out->dirs.ctime_ns[i] = (int64_t)k[6 + 3 * i];
	}
	/* a line is at least 12 bytes ("1 1 1 new/x\n"): refuse a count the
	 * file cannot hold before sizing anything by it */
	if (count > (uint64_t)(end - p) / 12)
		return -1;
	out->v = xcalloc(count ? count : 1, sizeof *out->v);
	uint64_t last = 0;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		uint64_t uid, size, vsize;
		if (nl == NULL || out->n >= count || !num(&p, nl, UINT32_MAX, &uid) || uid <= last || !sep(&p, nl, ' ') ||
		    !num(&p, nl, UINT64_MAX, &size) || !sep(&p, nl, ' ') || !num(&p, nl, UINT64_MAX, &vsize) ||
		    !sep(&p, nl, ' ') || !filename_ok(p, (size_t)(nl - p)))
			goto bad;
		data[nl - data] = '\0'; /* the name is used as a C string */
		out->v[out->n++] = (struct maildir_stamp_exc){ (uint32_t)uid, size, vsize, p };
		last = uid;
		p = nl + 1;
	}
	if (out->n != count)
		goto bad;
	return 0;
bad:
	free(out->v);
	out->v = NULL;
	out->n = 0;
	return -1;
}

void
maildir_stamp_fini(struct maildir_stamp *s)
{
	free(s->v);
	free(s->data);
	memset(s, 0, sizeof *s);
}

bool
maildir_stamp_read(const char *dir, const struct stat *idx, const struct maildir_dirs *d, struct maildir_stamp *out)
{
	memset(out, 0, sizeof *out);
	if (!d->ok)
		return false;
	char *path = xasprintf("%s/" MAILDIR_STAMP_FILE, dir), *data;
	size_t len;
	int r = read_file(path, MAILDIR_STAMP_FILE_MAX, &data, &len);
	free(path);
	if (r != 0)
		return false;
	if (maildir_stamp_parse(data, len, out) != 0) {
		maildir_stamp_fini(out);
		return false;
	}
	bool same = out->idx_dev == (uint64_t)idx->st_dev && out->idx_ino == (uint64_t)idx->st_ino &&
	    out->idx_size == (uint64_t)idx->st_size && out->idx_mtime_ns == ts_ns(idx->st_mtim);
	for (int i = 0; i < 2 && same; i++)
		same = out->dirs.ino[i] == d->ino[i] && out->dirs.mtime_ns[i] == d->mtime_ns[i] &&
		    out->dirs.ctime_ns[i] == d->ctime_ns[i];
	if (!same)
		maildir_stamp_fini(out);
	return same;
}

void
maildir_stamp_write(const char *dir, const struct stat *idx, const struct maildir_dirs *d,
    const struct maildir_stamp_exc *v, size_t n)
{
	static atomic_uint seq;
	struct hk_buf b;
	buf_init(&b);
	buf_printf(&b, STAMP_MAGIC "%llu %llu %llu %llu", (unsigned long long)idx->st_dev,
	    (unsigned long long)idx->st_ino, (unsigned long long)idx->st_size,
	    (unsigned long long)ts_ns(idx->st_mtim));
	for (int i = 0; i < 2; i++)
		buf_printf(&b, " %llu %llu %llu", (unsigned long long)d->ino[i], (unsigned long long)d->mtime_ns[i],
		    (unsigned long long)d->ctime_ns[i]);
	buf_printf(&b, " %zu\n", n);
	for (size_t i = 0; i < n; i++)
		buf_printf(&b, "%u %llu %llu %s\n", (unsigned)v[i].uid, (unsigned long long)v[i].size,
		    (unsigned long long)v[i].vsize, v[i].filename);
	/* a name of its own per writer: two syncers may write at once, and
	 * either stamp is right (the later rename wins); in the folder's
	 * tmp/, where hk_store_clean_tmp finds what a crash left */
	char *tmp = xasprintf("%s/tmp/" MAILDIR_STAMP_FILE ".%ld.%u", dir, (long)getpid(), atomic_fetch_add(&seq, 1));
	char *path = xasprintf("%s/" MAILDIR_STAMP_FILE, dir);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	bool ok = false;
	if (fd >= 0) {
		size_t off = 0;
		while (off < b.len) {
			ssize_t w = write(fd, b.data + off, b.len - off);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				break;
			off += (size_t)w;
		}
		ok = close(fd) == 0 && off == b.len && rename(tmp, path) == 0;
	}
	if (fd >= 0 && !ok)
		(void)unlink(tmp);
	free(tmp);
	free(path);
	buf_fini(&b);
}
