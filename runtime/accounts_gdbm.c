/*
 * accounts_gdbm.c - the GDBM back end of the accounts store
 * (var/accounts.gdbm).
 *
 * GDBM allows one writer or many readers per file, and its crash-tolerant
 * mode needs reflinks (not on ext4). So the file is never written in place:
 *
 *   readers  open accounts.gdbm read-only and keep it open. Before each
 *            operation they stat(2) the path; when the inode differs from
 *            the open one, they close and reopen. An open handle keeps
 *            reading its own (old, complete) file, so a reader never waits
 *            and never sees half a write.
 *   writers  take an exclusive flock(2) on accounts.gdbm.lock (waiting up
 *            to lock_timeout_ms: BUSY after), copy every record into
 *            accounts.gdbm.new (GDBM_NEWDB), apply the transaction there,
 *            gdbm_sync + fsync the file, rename(2) it over accounts.gdbm
 *            and fsync the directory. A crash leaves either the old or the
 *            new file, complete; a stale .new is discarded by the next
 *            writer.
 *
 * A write costs a copy of the store: fine for administration and the
 * control panel (thousands of records copy in milliseconds), and it makes
 * every commit a clean, compact file. Readers open with GDBM_XVERIFY;
 * damage shows as HK_ACCT_CORRUPT with GDBM's reason, and `hikyaku
 * accounts repair` salvages through gdbm_recover (acct_gdbm_repair).
 *
 * Ownership: a new file keeps the mode (group read at most) and, when root
 * writes, the owner of the file it replaces, so administration as root does
 * not lock out a server running as its own user.
 *
 * One handle per thread: a GDBM_FILE is not shared between threads.
 */
#include <errno.h>
#include <fcntl.h>
#include <gdbm.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "accounts_be.h"

struct gdbm_be {
	GDBM_FILE rd;       /* the committed file, read-only */
	dev_t dev;
	ino_t ino;
	GDBM_FILE wr;       /* the transaction's new file */
	int lock_fd;
	char *tmp_path, *lock_path;
};

static const char *
gerr(void)
{
	return gdbm_strerror(gdbm_errno);
}

static bool
format_error(int ge)
{
	switch (ge) {
	case GDBM_BAD_MAGIC_NUMBER:
	case GDBM_EMPTY_DATABASE:
	case GDBM_BAD_FILE_OFFSET:
	case GDBM_BAD_OPEN_FLAGS:
	case GDBM_FILE_EOF:
	case GDBM_BAD_HEADER:
	case GDBM_BAD_BUCKET:
	case GDBM_BAD_HASH_TABLE:
	case GDBM_BAD_DIR_ENTRY:
	case GDBM_BAD_AVAIL:
	case GDBM_BUCKET_CACHE_CORRUPTED:
	case GDBM_BAD_HASH_ENTRY:
	case GDBM_NEED_RECOVERY:
	case GDBM_DIR_OVERFLOW:
	case GDBM_FILE_SEEK_ERROR:
	case GDBM_FILE_READ_ERROR:
		return true;
	default:
		return false;
	}
}

static enum hk_acct_status
gdbm_status(struct hk_accounts *a, const char *what)
{
	int ge = gdbm_errno;
	int se = errno;
	if (ge == GDBM_CANT_BE_READER || ge == GDBM_CANT_BE_WRITER) {
		acct_set_error(a, "%s %s: locked by another program (%s)", what, a->path, gdbm_strerror(ge));
		return HK_ACCT_BUSY;
	}
	if (format_error(ge)) {
		acct_set_error(a, "%s %s: the file is damaged (%s); run `hikyaku accounts repair`", what, a->path,
		    gdbm_strerror(ge));
		return HK_ACCT_CORRUPT;
	}
	if (gdbm_syserr[ge] && se)
		acct_set_error(a, "%s %s: %s: %s", what, a->path, gdbm_strerror(ge), strerror(se));
	else
		acct_set_error(a, "%s %s: %s", what, a->path, gdbm_strerror(ge));
	return HK_ACCT_IO;
}

static void
close_reader(struct gdbm_be *g)
{
	if (g->rd) {
		gdbm_close(g->rd);
		g->rd = NULL;
	}
}

/* Makes g->rd the current file (or NULL when there is none yet). */
static enum hk_acct_status
ensure_reader(struct hk_accounts *a, bool *changed_r)
{
	struct gdbm_be *g = a->be;
	struct stat st;
	if (changed_r)
		*changed_r = false;
	if (stat(a->path, &st) < 0) {
		if (errno == ENOENT) {
			if (g->rd && changed_r)
				*changed_r = true;
			close_reader(g);
			return HK_ACCT_OK;
		}
		acct_set_error(a, "cannot stat %s: %s", a->path, strerror(errno));
		return HK_ACCT_IO;
	}
	if (g->rd && st.st_dev == g->dev && st.st_ino == g->ino)
		return HK_ACCT_OK;
	close_reader(g);
	if (changed_r)
		*changed_r = true;
	gdbm_errno = GDBM_NO_ERROR;
	errno = 0;
	GDBM_FILE rd = gdbm_open(a->path, 0, GDBM_READER | GDBM_CLOEXEC | GDBM_XVERIFY, 0, NULL);
	if (rd == NULL) {
		if (errno == ENOENT)
			return HK_ACCT_OK; /* removed between stat and open */
		return gdbm_status(a, "cannot open");
	}
	if (fstat(gdbm_fdesc(rd), &st) < 0) {
		acct_set_error(a, "cannot stat %s: %s", a->path, strerror(errno));
		gdbm_close(rd);
		return HK_ACCT_IO;
	}
	g->rd = rd;
	g->dev = st.st_dev;
	g->ino = st.st_ino;
	return HK_ACCT_OK;
}

static GDBM_FILE
current(struct hk_accounts *a)
{
	struct gdbm_be *g = a->be;
	return a->in_txn ? g->wr : g->rd;
}

static enum hk_acct_status
g_get(struct hk_accounts *a, const char *key, size_t klen, struct hk_buf *val)
{
	GDBM_FILE f = current(a);
	if (f == NULL)
		return HK_ACCT_NOTFOUND;
	datum k = { (char *)(uintptr_t)key, (int)klen };
	datum v = gdbm_fetch(f, k);
	if (v.dptr == NULL) {
		if (gdbm_last_errno(f) == GDBM_ITEM_NOT_FOUND)
			return HK_ACCT_NOTFOUND;
		return gdbm_status(a, "cannot read");
	}
	buf_reset(val);
	enum hk_acct_status st = HK_ACCT_OK;
	if (v.dsize < 0 || (size_t)v.dsize > HK_ACCT_RECORD_MAX) {
		char pk[128];
		acct_printable(pk, sizeof(pk), key, klen);
		acct_set_error(a, "record %s in %s: %d bytes, more than any record can be", pk, a->path, v.dsize);
		st = HK_ACCT_CORRUPT;
	} else {
		buf_add(val, v.dptr, (size_t)v.dsize);
	}
	free(v.dptr);
	return st;
}

static enum hk_acct_status
g_put(struct hk_accounts *a, const char *key, size_t klen, const void *val, size_t vlen)
{
	struct gdbm_be *g = a->be;
	if (!a->in_txn || g->wr == NULL)
		return HK_ACCT_IO;
	datum k = { (char *)(uintptr_t)key, (int)klen };
	datum v = { (char *)(uintptr_t)val, (int)vlen };
	if (gdbm_store(g->wr, k, v, GDBM_REPLACE) != 0)
		return gdbm_status(a, "cannot write");
	return HK_ACCT_OK;
}

static enum hk_acct_status
g_del(struct hk_accounts *a, const char *key, size_t klen)
{
	struct gdbm_be *g = a->be;
	if (!a->in_txn || g->wr == NULL)
		return HK_ACCT_IO;
	datum k = { (char *)(uintptr_t)key, (int)klen };
	if (gdbm_delete(g->wr, k) != 0) {
		if (gdbm_last_errno(g->wr) == GDBM_ITEM_NOT_FOUND)
			return HK_ACCT_NOTFOUND;
		return gdbm_status(a, "cannot delete from");
	}
	return HK_ACCT_OK;
}

/* Iterates f; for a damaged file the iteration ends with an error. */
static enum hk_acct_status
scan_file(struct hk_accounts *a, GDBM_FILE f, const char *prefix, acct_scan_fn fn, void *ctx)
{
	size_t pl = strlen(prefix);
	enum hk_acct_status st = HK_ACCT_OK;
	gdbm_errno = GDBM_NO_ERROR;
	datum k = gdbm_firstkey(f);
	size_t guard = 0;
	while (k.dptr) {
		if (k.dsize >= 0 && (size_t)k.dsize >= pl && memcmp(k.dptr, prefix, pl) == 0) {
			datum v = gdbm_fetch(f, k);
			if (v.dptr == NULL) {
				st = gdbm_status(a, "cannot read");
				free(k.dptr);
				return st;
			}
			int rc = v.dsize >= 0 ? fn(ctx, k.dptr, (size_t)k.dsize, (const uint8_t *)v.dptr, (size_t)v.dsize)
			                      : HK_ACCT_CORRUPT;
			free(v.dptr);
			if (rc) {
				free(k.dptr);
				return rc > 0 ? (enum hk_acct_status)rc : HK_ACCT_OK;
			}
		}
		datum nk = gdbm_nextkey(f, k);
		free(k.dptr);
		k = nk;
		if (++guard > 100000000u) {
			acct_set_error(a, "%s: iteration does not end; run `hikyaku accounts repair`", a->path);
			free(k.dptr);
			return HK_ACCT_CORRUPT;
		}
	}
	if (gdbm_last_errno(f) != GDBM_ITEM_NOT_FOUND && gdbm_last_errno(f) != GDBM_NO_ERROR)
		return gdbm_status(a, "cannot read");
	return st;
}

static enum hk_acct_status
g_scan(struct hk_accounts *a, const char *prefix, acct_scan_fn fn, void *ctx)
{
	GDBM_FILE f = current(a);
	if (f == NULL)
		return HK_ACCT_OK;
	return scan_file(a, f, prefix, fn, ctx);
}

static enum hk_acct_status
take_lock(struct hk_accounts *a)
{
	struct gdbm_be *g = a->be;
	g->lock_fd = open(g->lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (g->lock_fd < 0) {
		acct_set_error(a, "cannot open %s: %s", g->lock_path, strerror(errno));
		return HK_ACCT_IO;
	}
	unsigned timeout = a->cfg.lock_timeout_ms ? a->cfg.lock_timeout_ms : HK_ACCT_LOCK_TIMEOUT_MS;
	for (unsigned waited = 0;; waited += 10) {
		if (flock(g->lock_fd, LOCK_EX | LOCK_NB) == 0)
			return HK_ACCT_OK;
		if (errno != EWOULDBLOCK && errno != EINTR) {
			acct_set_error(a, "cannot lock %s: %s", g->lock_path, strerror(errno));
			break;
		}
		if (waited >= timeout) {
			acct_set_error(a, "%s is locked by another writer (waited %u ms)", g->lock_path, timeout);
			close(g->lock_fd);
			g->lock_fd = -1;
			return HK_ACCT_BUSY;
		}
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	close(g->lock_fd);
	g->lock_fd = -1;
	return HK_ACCT_IO;
}

static void
drop_lock(struct gdbm_be *g)
{
	if (g->lock_fd >= 0) {
		flock(g->lock_fd, LOCK_UN);
		close(g->lock_fd);
		g->lock_fd = -1;
	}
}

struct copy_ctx {
	struct hk_accounts *a;
	GDBM_FILE dst;
	bool validate;              /* repair: keep only records that decode */
	struct hk_accounts_check *check;
};

static int
copy_one(void *vctx, const char *key, size_t klen, const uint8_t *val, size_t vlen)
{
	struct copy_ctx *c = vctx;
	if (c->check)
		c->check->records++;
	if (c->validate) {
		char why[128];
		if (!acct_record_valid(key, klen, val, vlen, why, sizeof(why))) {
			c->check->bad++;
			if (c->check->first_bad[0] == '\0')
				acct_printable(c->check->first_bad, sizeof(c->check->first_bad), key, klen);
			return 0;
		}
	}
	datum k = { (char *)(uintptr_t)key, (int)klen };
	datum v = { (char *)(uintptr_t)val, (int)vlen };
	if (gdbm_store(c->dst, k, v, GDBM_REPLACE) != 0)
		return gdbm_status(c->a, "cannot write");
	return 0;
}

/* Creates the transaction file and copies src (NULL: the current file). */
static enum hk_acct_status
start_new_file(struct hk_accounts *a, GDBM_FILE src, bool validate, struct hk_accounts_check *check)
{
	struct gdbm_be *g = a->be;
	mode_t mode = 0600;
	struct stat st;
	bool had_file = stat(a->path, &st) == 0;
	if (had_file)
		mode = (st.st_mode & 0640) | 0600;
	unlink(g->tmp_path);
	gdbm_errno = GDBM_NO_ERROR;
	g->wr = gdbm_open(g->tmp_path, 0, GDBM_NEWDB | GDBM_NOLOCK | GDBM_CLOEXEC, (int)mode, NULL);
	if (g->wr == NULL) {
		acct_set_error(a, "cannot create %s: %s%s%s", g->tmp_path, gerr(), errno ? ": " : "",
		    errno ? strerror(errno) : "");
		return HK_ACCT_IO;
	}
	fchmod(gdbm_fdesc(g->wr), mode);
	/* root editing a store owned by the service user must not take it away
	 * from the (unprivileged) server: the new file keeps the old owner */
	if (had_file && geteuid() == 0 && (st.st_uid != 0 || st.st_gid != 0) &&
	    fchown(gdbm_fdesc(g->wr), st.st_uid, st.st_gid) < 0) {
		acct_set_error(a, "cannot give %s to uid %u: %s", g->tmp_path, (unsigned)st.st_uid, strerror(errno));
		return HK_ACCT_IO;
	}
	if (src == NULL) {
		enum hk_acct_status rst = ensure_reader(a, NULL);
		if (rst != HK_ACCT_OK)
			return rst;
		src = g->rd;
	}
	if (src == NULL)
		return HK_ACCT_OK;
	struct copy_ctx c = { a, g->wr, validate, check };
	return scan_file(a, src, "", copy_one, &c);
}

static void
discard_new_file(struct gdbm_be *g)
{
	if (g->wr) {
		gdbm_close(g->wr);
		g->wr = NULL;
	}
	unlink(g->tmp_path);
}

static enum hk_acct_status
g_begin(struct hk_accounts *a)
{
	struct gdbm_be *g = a->be;
	enum hk_acct_status st = take_lock(a);
	if (st != HK_ACCT_OK)
		return st;
	st = start_new_file(a, NULL, false, NULL);
	if (st != HK_ACCT_OK) {
		discard_new_file(g);
		drop_lock(g);
	}
	return st;
}

static int
fsync_path(const char *path, bool dir)
{
	int fd = open(path, (dir ? O_DIRECTORY : 0) | O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	int e = errno;
	close(fd);
	errno = e;
	return rc;
}

/* Makes the transaction file the store. */
static enum hk_acct_status
install_new_file(struct hk_accounts *a)
{
	struct gdbm_be *g = a->be;
	if (gdbm_sync(g->wr) != 0) {
		enum hk_acct_status st = gdbm_status(a, "cannot sync");
		discard_new_file(g);
		return st;
	}
	gdbm_close(g->wr);
	g->wr = NULL;
	if (fsync_path(g->tmp_path, false) < 0 || rename(g->tmp_path, a->path) < 0) {
		acct_set_error(a, "cannot install %s as %s: %s", g->tmp_path, a->path, strerror(errno));
		unlink(g->tmp_path);
		return HK_ACCT_IO;
	}
	char *d = xstrdup(a->path);
	if (fsync_path(dirname(d), true) < 0) {
		/* the rename happened; only its durability is in doubt */
		acct_set_error(a, "cannot fsync the directory of %s: %s", a->path, strerror(errno));
		free(d);
		return HK_ACCT_IO;
	}
	free(d);
	return HK_ACCT_OK;
}

static enum hk_acct_status
g_commit(struct hk_accounts *a)
{
	struct gdbm_be *g = a->be;
	enum hk_acct_status st = install_new_file(a);
	drop_lock(g);
	return st;
}

static void
g_abort(struct hk_accounts *a)
{
	struct gdbm_be *g = a->be;
	discard_new_file(g);
	drop_lock(g);
}

static enum hk_acct_status
g_refresh(struct hk_accounts *a, bool *changed_r)
{
	return ensure_reader(a, changed_r);
}

static enum hk_acct_status
copy_file(struct hk_accounts *a, const char *from, const char *to)
{
	int in = open(from, O_RDONLY | O_CLOEXEC);
	if (in < 0) {
		acct_set_error(a, "cannot open %s: %s", from, strerror(errno));
		return errno == ENOENT ? HK_ACCT_NOTFOUND : HK_ACCT_IO;
	}
	int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (out < 0) {
		acct_set_error(a, "cannot create %s: %s", to, strerror(errno));
		close(in);
		return HK_ACCT_IO;
	}
	char buf[65536];
	ssize_t n;
	enum hk_acct_status st = HK_ACCT_OK;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n) {
			st = HK_ACCT_IO;
			break;
		}
	if (n < 0)
		st = HK_ACCT_IO;
	if (st != HK_ACCT_OK)
		acct_set_error(a, "cannot copy %s to %s: %s", from, to, strerror(errno));
	close(in);
	close(out);
	return st;
}

static void
recover_msg(void *data, const char *fmt, ...)
{
	(void)data;
	(void)fmt;
}

/*
 * Repair: copy the damaged file aside, let gdbm_recover rebuild what it
 * can from the copy, keep the records that decode, install the result and
 * keep the damaged original as accounts.gdbm.damaged-<unixtime>.
 */
static enum hk_acct_status
g_repair(struct hk_accounts *a, struct hk_accounts_check *out)
{
	struct gdbm_be *g = a->be;
	memset(out, 0, sizeof(*out));
	enum hk_acct_status st = take_lock(a);
	if (st != HK_ACCT_OK)
		return st;
	close_reader(g);
	char *rcv = xasprintf("%s.recover", a->path);
	char *damaged = xasprintf("%s.damaged-%lld", a->path, (long long)time(NULL));
	GDBM_FILE src = NULL;
	st = copy_file(a, a->path, rcv);
	if (st != HK_ACCT_OK)
		goto out;
	gdbm_errno = GDBM_NO_ERROR;
	src = gdbm_open(rcv, 0, GDBM_WRITER | GDBM_NOLOCK | GDBM_CLOEXEC, 0600, NULL);
	if (src == NULL) {
		acct_set_error(a, "%s cannot be salvaged (%s); restore it from a backup", a->path, gerr());
		st = HK_ACCT_CORRUPT;
		goto out;
	}
	gdbm_recovery r;
	memset(&r, 0, sizeof(r));
	r.errfun = recover_msg;
	if (gdbm_recover(src, &r, GDBM_RCVR_FORCE | GDBM_RCVR_ERRFUN) != 0) {
		acct_set_error(a, "%s cannot be salvaged: gdbm_recover: %s", a->path, gdbm_db_strerror(src));
		st = HK_ACCT_CORRUPT;
		goto out;
	}
	out->bad += r.failed_keys;
	st = start_new_file(a, src, true, out);
	if (st != HK_ACCT_OK) {
		discard_new_file(g);
		goto out;
	}
	if (link(a->path, damaged) < 0 && errno != ENOENT) {
		acct_set_error(a, "cannot keep the damaged file as %s: %s", damaged, strerror(errno));
		discard_new_file(g);
		st = HK_ACCT_IO;
		goto out;
	}
	st = install_new_file(a);
	if (st == HK_ACCT_OK && (out->bad || r.failed_buckets))
		acct_set_error(a, "dropped %zu damaged record(s) and %zu bucket(s); the old file is %s", out->bad,
		    r.failed_buckets, damaged);
	else if (st == HK_ACCT_OK)
		acct_set_error(a, "nothing was lost; the old file is %s", damaged);
out:
	if (src)
		gdbm_close(src);
	unlink(rcv);
	free(rcv);
	free(damaged);
	drop_lock(g);
	return st;
}

static void
g_close(struct hk_accounts *a)
{
	struct gdbm_be *g = a->be;
	if (g == NULL)
		return;
	if (g->wr)
		discard_new_file(g);
	drop_lock(g);
	close_reader(g);
	free(g->tmp_path);
	free(g->lock_path);
	free(g);
	a->be = NULL;
}

static const struct hk_accounts_ops gdbm_ops = {
	.name = "gdbm",
	.get = g_get,
	.put = g_put,
	.del = g_del,
	.scan = g_scan,
	.begin = g_begin,
	.commit = g_commit,
	.abort = g_abort,
	.refresh = g_refresh,
	.repair = g_repair,
	.close = g_close,
};

struct hk_accounts *
acct_gdbm_new(const struct hk_accounts_config *cfg)
{
	struct hk_accounts *a = xcalloc(1, sizeof(*a));
	struct gdbm_be *g = xcalloc(1, sizeof(*g));
	a->ops = &gdbm_ops;
	a->be = g;
	g->lock_fd = -1;
	g->tmp_path = xasprintf("%s.new", cfg->path);
	g->lock_path = xasprintf("%s.lock", cfg->path);
	return a;
}
