/*
 * maildir_quota.c - quota usage in the Maildir++ "maildirsize" file, the
 * format Courier, Dovecot, maildrop and Exim share:
 *
 *   1073741824S,10000C        the limits (bytes S, messages C; "0S": none)
 *   40960 12                  usage at the last recalculation
 *   4096 1                    one line appended per delivery ...
 *   -2048 -1                  ... and per expunge
 *
 * Usage is the sum of the lines. Reading is one small read; the file is
 * rewritten from a scan of every folder's new/ and cur/ (sizes from ,S=,
 * stat otherwise) when it is missing, unparsable, negative, larger than
 * 5120 bytes, written for other limits than the plan's (the plan is the
 * authority), or shows the user over quota while having changed since
 * the last recalculation or being older than 15 minutes (the Maildir++
 * quota rules, as Dovecot applies them). A recalculation whose directories
 * changed while it scanned is used but not written, so the next reader
 * scans again rather than trust a racy total.
 *
 * Updates are single O_APPEND writes, atomic against concurrent deliveries
 * in any process; no lock. The file is not fsync-ed: it is recomputable,
 * and a damaged file is recalculated.
 *
 * SECURITY: the file is read with a size cap and parsed strictly (any
 * oddity means recalculation, never a crash or a wrong refusal).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "maildir.h"

void
maildir_quota_add(const char *path, int64_t bytes, int64_t count)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return; /* no file: the next reader recalculates */
	char line[64];
	int n = snprintf(line, sizeof line, "%" PRId64 " %" PRId64 "\n", bytes, count);
	(void)!write(fd, line, (size_t)n);
	close(fd);
}

/* Parses an unsigned decimal at *p (advancing); false on no digits or
 * overflow. */
static bool
parse_u64(const char **p, const char *end, uint64_t *v)
{
	const char *s = *p;
	uint64_t x = 0;
	if (s >= end || *s < '0' || *s > '9')
		return false;
	while (s < end && *s >= '0' && *s <= '9') {
		if (x > (UINT64_MAX - 9) / 10)
			return false;
		x = x * 10 + (uint64_t)(*s++ - '0');
	}
	*p = s;
	*v = x;
	return true;
}

static bool
parse_i64(const char **p, const char *end, int64_t *v)
{
	bool neg = *p < end && **p == '-';
	if (neg)
		(*p)++;
	uint64_t u;
	if (!parse_u64(p, end, &u) || u > (uint64_t)INT64_MAX)
		return false;
	*v = neg ? -(int64_t)u : (int64_t)u;
	return true;
}

/* "1000S,10C" -> limits; false when malformed */
static bool
parse_limits(const char *s, const char *end, struct hk_store_quota *q)
{
	memset(q, 0, sizeof *q);
	while (s < end) {
		uint64_t v;
		if (!parse_u64(&s, end, &v) || s >= end)
			return false;
		if (*s == 'S')
			q->bytes = v;
		else if (*s == 'C')
			q->count = v;
		else
			return false;
		s++;
		if (s < end && *s++ != ',')
			return false;
	}
	return true;
}

/* 1: usable, filled in; 0: recalculate */
static int
parse_file(const char *data, size_t len, time_t mtime, const struct hk_store_quota *plan, struct hk_store_usage *u)
{
	if (len >= MAILDIR_QUOTA_FILE_MAX || memchr(data, '\0', len))
		return 0;
	/* a line still being appended is not there yet */
	while (len > 0 && data[len - 1] != '\n')
		len--;
	const char *p = data, *end = data + len;
	const char *nl = memchr(p, '\n', (size_t)(end - p));
	if (nl == NULL)
		return 0;
	struct hk_store_quota fq;
	if (!parse_limits(p, nl, &fq) || fq.bytes != plan->bytes || fq.count != plan->count)
		return 0;
	int64_t bytes = 0, count = 0;
	unsigned lines = 0;
	for (p = nl + 1; p < end; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(end - p));
		int64_t b, c;
		while (p < nl && *p == ' ')
			p++;
		if (!parse_i64(&p, nl, &b) || p >= nl || *p != ' ')
			return 0;
		while (p < nl && *p == ' ')
			p++;
		if (!parse_i64(&p, nl, &c))
			return 0;
		while (p < nl && *p == ' ')
			p++;
		if (p != nl)
			return 0;
		if ((b > 0 && bytes > INT64_MAX - b) || (b < 0 && bytes < INT64_MIN - b) ||
		    (c > 0 && count > INT64_MAX - c) || (c < 0 && count < INT64_MIN - c))
			return 0;
		bytes += b;
		count += c;
		lines++;
	}
	if (lines == 0 || bytes < 0 || count < 0)
		return 0;
	bool over = (plan->bytes && (uint64_t)bytes > plan->bytes) || (plan->count && (uint64_t)count > plan->count);
	if (over && (lines > 1 || time(NULL) - mtime > MAILDIR_QUOTA_STALE_SECS))
		return 0;
	u->bytes = (uint64_t)bytes;
	u->count = (uint64_t)count;
	return 1;
}

struct dirstamp {
	char *path;
	struct timespec mtime;
	bool exists;
};

static void
stamp(struct dirstamp *d)
{
	struct stat sb;
	d->exists = stat(d->path, &sb) == 0;
	if (d->exists)
		d->mtime = sb.st_mtim;
}

static void
sum_dir(const char *path, uint64_t *bytes, uint64_t *count)
{
	DIR *d = opendir(path);
	if (d == NULL)
		return;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' || e->d_type == DT_DIR)
			continue;
		struct maildir_info info;
		maildir_parse_filename(e->d_name, &info);
		if (!info.has_size) {
			struct stat sb;
			if (fstatat(dirfd(d), e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(sb.st_mode))
				continue;
			info.size = (uint64_t)sb.st_size;
		}
		*bytes += info.size;
		*count += 1;
	}
	closedir(d);
}

static void
write_limits(struct hk_buf *b, const struct hk_store_quota *q)
{
	if (q->bytes || q->count == 0)
		buf_printf(b, "%" PRIu64 "S", q->bytes);
	if (q->count)
		buf_printf(b, "%s%" PRIu64 "C", q->bytes ? "," : "", q->count);
	buf_addc(b, '\n');
}

static int
recalc(struct hk_store *st, const char *path, struct hk_store_usage *u)
{
	size_t nf;
	char **folders = maildir_folder_dirs(st, &nf);
	struct dirstamp *ds = xcalloc(nf * 2, sizeof *ds);
	uint64_t bytes = 0, count = 0;
	for (size_t i = 0; i < nf * 2; i++) {
		ds[i].path = xasprintf("%s/%s", folders[i / 2], i % 2 ? "cur" : "new");
		stamp(&ds[i]);
		sum_dir(ds[i].path, &bytes, &count);
	}
	bool changed = false;
	for (size_t i = 0; i < nf * 2; i++) {
		struct dirstamp again = { .path = ds[i].path };
		stamp(&again);
		if (again.exists != ds[i].exists ||
		    (again.exists && (again.mtime.tv_sec != ds[i].mtime.tv_sec || again.mtime.tv_nsec != ds[i].mtime.tv_nsec)))
			changed = true;
		free(ds[i].path);
	}
	free(ds);
	maildir_free_strv(folders, nf);
	u->bytes = bytes;
	u->count = count;
	if (changed)
		return 0;

	struct hk_buf tmp, content;
	buf_init(&tmp);
	buf_init(&content);
	buf_printf(&tmp, "%s/tmp/maildirsize.", st->root);
	maildir_unique(&tmp);
	write_limits(&content, &st->set.quota);
	buf_printf(&content, "%" PRIu64 " %" PRIu64 "\n", bytes, count);
	int rc = 0;
	int fd = store_open_excl(AT_FDCWD, tmp.data, tmp.data);
	if (fd < 0) {
		rc = store_fail(st, errno, "open(%s)", tmp.data);
	} else {
		if (store_write_all(fd, content.data, content.len, tmp.data) != 0)
			rc = store_fail(st, errno, "write(%s)", tmp.data);
		close(fd);
		if (rc == 0 && rename(tmp.data, path) != 0)
			rc = store_fail(st, errno, "rename(%s, %s)", tmp.data, path);
		if (rc != 0)
			(void)unlink(tmp.data);
	}
	buf_fini(&tmp);
	buf_fini(&content);
	/* the usage is known even when the file could not be written (the
	 * reason is in hk_store_error; the next reader tries again) */
	(void)rc;
	return 0;
}

int
maildir_quota_get(struct hk_store *st, struct hk_store_usage *u, bool force)
{
	memset(u, 0, sizeof *u);
	u->limit = st->set.quota;
	char *path = xasprintf("%s/maildirsize", st->root);
	int rc = 0;
	if (!force) {
		int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd >= 0) {
			char buf[MAILDIR_QUOTA_FILE_MAX + 1];
			size_t len = 0;
			ssize_t r;
			while (len < sizeof buf && (r = read(fd, buf + len, sizeof buf - len)) != 0) {
				if (r < 0) {
					if (errno == EINTR)
						continue;
					break;
				}
				len += (size_t)r;
			}
			struct stat sb;
			int ok = fstat(fd, &sb) == 0 && parse_file(buf, len, sb.st_mtime, &st->set.quota, u);
			close(fd);
			if (ok) {
				free(path);
				return 0;
			}
		}
	}
	rc = recalc(st, path, u);
	free(path);
	return rc;
}
