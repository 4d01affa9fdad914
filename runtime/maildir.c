/*
 * maildir.c - the Maildir++ back end of the store: opening and creating a
 * mailbox, folders (create, list, rename, delete), staging a delivery into
 * tmp/, and the simple read side (scan, flags by rename, expunge, tmp/
 * cleaning). Layout and names: maildir.h; durability: store_commit.c.
 *
 * Every directory this file creates is made durable (fsync of the new
 * directory and of its parent) before the call returns, so a message
 * delivered into a brand-new mailbox or folder cannot vanish with it.
 *
 * Concurrency: no locks for delivery (unique names, rename never replaces).
 * Folder creation builds the folder in tmp/ and renames it into place, so
 * nobody sees a folder without its tmp/new/cur. Folder deletion renames it
 * into tmp/ first, then removes it. Flag changes are renames; a rename or
 * unlink of a file that is gone is ENOENT (another session got there
 * first: rescan).
 *
 * SECURITY: paths are built only from validated folder names
 * (hk_store_folder_name_ok, encoded by maildir_name.c) and file names that
 * store.c checked ("new/X" or "cur/X", X without '/'); directory trees are
 * removed without following symbolic links.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "maildir.h"

#define STAGE_BUF (64 * 1024)
#define RM_DEPTH_MAX 4

/* --- paths and directories ------------------------------------------------ */

/* The folder's directory: the root for INBOX, else root/.Enc */
char *
maildir_folder_path(struct hk_store *st, const char *name)
{
	struct hk_buf d;
	buf_init(&d);
	if (maildir_dir_from_name(name, &d) != 0) {
		int e = errno;
		buf_fini(&d);
		store_fail(st, e, "folder name '%s' too long on disk", name);
		return NULL;
	}
	char *p = d.len ? xasprintf("%s/%s", st->root, d.data) : xstrdup(st->root);
	buf_fini(&d);
	return p;
}

static char *
parent_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	if (slash == NULL)
		return xstrdup(".");
	if (slash == path)
		return xstrdup("/");
	return xstrndup(path, (size_t)(slash - path));
}

static int
fsync_path(struct hk_store *st, const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return store_fail(st, errno, "open(%s)", path);
	if (store_fsync(fd, path) != 0) {
		int e = errno;
		close(fd);
		return store_fail(st, e, "fsync(%s)", path);
	}
	close(fd);
	return 0;
}

/* mkdir; 1 when created, 0 when it existed (as a directory), -1 */
static int
mkdir_one(struct hk_store *st, const char *path)
{
	if (store_mkdirat(AT_FDCWD, path, path) == 0)
		return 1;
	if (errno == EEXIST) {
		struct stat sb;
		if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
			return 0;
		return store_fail(st, ENOTDIR, "mkdir(%s)", path);
	}
	return store_fail(st, errno, "mkdir(%s)", path);
}

/* mkdir -p, each created directory made durable in its parent. */
static int
mkdir_parents(struct hk_store *st, const char *path)
{
	char *p = xstrdup(path);
	int rc = 0;
	for (char *s = p + 1;; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char save = *s;
		*s = '\0';
		int r = mkdir_one(st, p);
		if (r < 0) {
			rc = -1;
			break;
		}
		if (r == 1) {
			char *parent = parent_of(p);
			rc = fsync_path(st, parent);
			free(parent);
			if (rc != 0)
				break;
		}
		*s = save;
		if (save == '\0')
			break;
	}
	free(p);
	return rc;
}

/* tmp/ new/ cur/ inside dir; fsyncs dir when one was created. */
static int
ensure_subdirs(struct hk_store *st, const char *dir)
{
	static const char *const sub[] = { "tmp", "new", "cur" };
	bool created = false;
	for (size_t i = 0; i < 3; i++) {
		char *p = xasprintf("%s/%s", dir, sub[i]);
		int r = mkdir_one(st, p);
		free(p);
		if (r < 0)
			return -1;
		created |= r == 1;
	}
	return created ? fsync_path(st, dir) : 0;
}

static bool
is_dir(const char *path)
{
	struct stat sb;
	return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* rm -r without following symbolic links; depth-limited (a folder is
 * three levels: .X/cur/file). Adds the ,S= sizes of files under new/ and
 * cur/ to *bytes and *count when given. */
static int
rm_tree_at(int dirfd, const char *name, int depth, bool count_here, uint64_t *bytes, uint64_t *count)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOTDIR || errno == ELOOP ? unlinkat(dirfd, name, 0) : -1;
	DIR *d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return -1;
	}
	int rc = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		struct stat sb;
		if (fstatat(fd, e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0)
			continue;
		if (S_ISDIR(sb.st_mode)) {
			bool msgs = depth == 0 && (strcmp(e->d_name, "new") == 0 || strcmp(e->d_name, "cur") == 0);
			if (depth + 1 >= RM_DEPTH_MAX || rm_tree_at(fd, e->d_name, depth + 1, msgs, bytes, count) != 0)
				rc = -1;
			continue;
		}
		if (count_here && bytes && e->d_name[0] != '.') {
			struct maildir_info info;
			maildir_parse_filename(e->d_name, &info);
			*bytes += info.has_size ? info.size : (uint64_t)sb.st_size;
			*count += 1;
		}
		if (unlinkat(fd, e->d_name, 0) != 0 && errno != ENOENT)
			rc = -1;
	}
	closedir(d);
	if (unlinkat(dirfd, name, AT_REMOVEDIR) != 0 && errno != ENOENT)
		rc = -1;
	return rc;
}

static char *
quota_path(struct hk_store *st)
{
	return xasprintf("%s/maildirsize", st->root);
}

/* --- folders ------------------------------------------------------------------ */

/* Builds the folder in root/tmp and renames it into place, so it appears
 * complete. EEXIST when someone else has it. */
static int
create_one(struct hk_store *st, const char *name, const char *path)
{
	struct hk_buf u;
	buf_init(&u);
	buf_printf(&u, "%s/tmp/hk-folder.", st->root);
	maildir_unique(&u);
	char *tmp = buf_steal(&u);
	int rc = -1;
	int made = mkdir_one(st, tmp);
	if (made != 1) {
		if (made == 0)
			store_fail(st, EEXIST, "mkdir(%s)", tmp);
		free(tmp);
		return -1;
	}
	char *marker = xasprintf("%s/maildirfolder", tmp);
	int fd = store_open_excl(AT_FDCWD, marker, marker);
	if (fd < 0) {
		store_fail(st, errno, "open(%s)", marker);
		goto fail;
	}
	close(fd);
	/* a fresh directory: fsync it so its entries exist after a crash */
	if (ensure_subdirs(st, tmp) != 0 || fsync_path(st, tmp) != 0)
		goto fail;
	if (store_rename_noreplace(AT_FDCWD, tmp, AT_FDCWD, path, path) != 0) {
		int e = errno;
		if (e == ENOTEMPTY || e == EEXIST)
			store_fail(st, EEXIST, "folder '%s' exists", name);
		else if (e == EPERM || e == EINVAL) /* no RENAME_NOREPLACE, link() cannot do directories */
			rc = 2;
		else
			store_fail(st, e, "rename(%s, %s)", tmp, path);
		if (rc != 2)
			goto fail;
	}
	if (rc == 2) {
		/* the plain way: mkdir in place (a reader may see it half made) */
		int r = mkdir_one(st, path);
		if (r == 0)
			r = store_fail(st, EEXIST, "folder '%s' exists", name);
		if (r < 0 || ensure_subdirs(st, path) != 0)
			goto fail;
		char *m2 = xasprintf("%s/maildirfolder", path);
		fd = open(m2, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
		free(m2);
		if (fd >= 0)
			close(fd);
		(void)rm_tree_at(AT_FDCWD, tmp, 0, false, NULL, NULL);
	}
	rc = fsync_path(st, st->root);
	free(marker);
	free(tmp);
	return rc;
fail:;
	int e = errno;
	(void)rm_tree_at(AT_FDCWD, tmp, 0, false, NULL, NULL);
	free(marker);
	free(tmp);
	errno = e;
	return -1;
}

static int
md_folder_create(struct hk_store *st, const char *name, bool ensure)
{
	if (strcmp(name, "INBOX") == 0) {
		if (!ensure)
			return store_fail(st, EEXIST, "folder 'INBOX' exists");
		return ensure_subdirs(st, st->root);
	}
	char *path = maildir_folder_path(st, name);
	if (path == NULL)
		return -1;
	int rc = 0;
	if (is_dir(path)) {
		rc = ensure ? ensure_subdirs(st, path) : store_fail(st, EEXIST, "folder '%s' exists", name);
		free(path);
		return rc;
	}
	if (ensure) {
		/* the parents first, so IMAP lists them as real folders */
		char *n = xstrdup(name);
		for (char *s = strchr(n, '/'); s && rc == 0; s = strchr(s + 1, '/')) {
			*s = '\0';
			char *pp = maildir_folder_path(st, n);
			if (pp == NULL)
				rc = -1;
			else if (!is_dir(pp) && create_one(st, n, pp) != 0 && errno != EEXIST)
				rc = -1;
			free(pp);
			*s = '/';
		}
		free(n);
	}
	if (rc == 0 && create_one(st, name, path) != 0) {
		rc = -1;
		if (ensure && errno == EEXIST && is_dir(path)) /* lost a race: fine */
			rc = 0;
	}
	free(path);
	return rc;
}

static bool
md_folder_exists(struct hk_store *st, const char *name)
{
	char *path = maildir_folder_path(st, name);
	bool r = path && is_dir(path);
	free(path);
	return r;
}

static int
md_folder_delete(struct hk_store *st, const char *name)
{
	char *path = maildir_folder_path(st, name);
	if (path == NULL)
		return -1;
	struct hk_buf u;
	buf_init(&u);
	buf_printf(&u, "%s/tmp/hk-delete.", st->root);
	maildir_unique(&u);
	char *trash = buf_steal(&u);
	int rc = 0;
	if (!is_dir(path)) {
		rc = store_fail(st, ENOENT, "no folder '%s'", name);
	} else if (store_rename_noreplace(AT_FDCWD, path, AT_FDCWD, trash, trash) != 0) {
		rc = store_fail(st, errno, "rename(%s, %s)", path, trash);
	} else if (fsync_path(st, st->root) != 0) {
		rc = -1;
	} else {
		/* gone for everybody; now the slow part */
		uint64_t bytes = 0, count = 0;
		(void)rm_tree_at(AT_FDCWD, trash, 0, false, &bytes, &count);
		char *q = quota_path(st);
		if (count)
			maildir_quota_add(q, -(int64_t)bytes, -(int64_t)count);
		free(q);
	}
	free(trash);
	free(path);
	return rc;
}

static int
md_folder_rename(struct hk_store *st, const char *from, const char *to)
{
	struct hk_buf ef, et;
	buf_init(&ef);
	buf_init(&et);
	int rc = -1;
	char **names = NULL;
	size_t n = 0, cap = 0;
	DIR *d = NULL;
	if (maildir_dir_from_name(from, &ef) != 0 || maildir_dir_from_name(to, &et) != 0) {
		store_fail(st, errno, "folder name too long on disk");
		goto out;
	}
	char *tpath = xasprintf("%s/%s", st->root, et.data);
	bool exists = is_dir(tpath);
	free(tpath);
	if (exists) {
		store_fail(st, EEXIST, "folder '%s' exists", to);
		goto out;
	}
	d = opendir(st->root);
	if (d == NULL) {
		store_fail(st, errno, "opendir(%s)", st->root);
		goto out;
	}
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, ef.data, ef.len) != 0 || (e->d_name[ef.len] != '\0' && e->d_name[ef.len] != '.'))
			continue;
		names = xgrow(names, &cap, n + 1, sizeof *names);
		names[n++] = xstrdup(e->d_name);
	}
	if (n == 0) {
		store_fail(st, ENOENT, "no folder '%s'", from);
		goto out;
	}
	rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		char *newname = xasprintf("%s%s", et.data, names[i] + ef.len);
		char *op = xasprintf("%s/%s", st->root, names[i]);
		char *np = xasprintf("%s/%s", st->root, newname);
		if (strlen(newname) > 255)
			rc = store_fail(st, ENAMETOOLONG, "folder name too long on disk: %s", newname);
		else if (store_rename_noreplace(AT_FDCWD, op, AT_FDCWD, np, np) != 0)
			rc = store_fail(st, errno == ENOTEMPTY ? EEXIST : errno, "rename(%s, %s)", op, np);
		free(newname);
		free(op);
		free(np);
	}
	if (fsync_path(st, st->root) != 0)
		rc = -1;
out:
	if (d)
		closedir(d);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	buf_fini(&ef);
	buf_fini(&et);
	return rc;
}

static int
cmp_folder(const void *a, const void *b)
{
	return strcmp(((const struct hk_store_folder *)a)->name, ((const struct hk_store_folder *)b)->name);
}

static bool
entry_is_dir(DIR *d, const struct dirent *e)
{
	if (e->d_type == DT_DIR)
		return true;
	if (e->d_type != DT_UNKNOWN && e->d_type != DT_LNK)
		return false;
	struct stat sb;
	return fstatat(dirfd(d), e->d_name, &sb, 0) == 0 && S_ISDIR(sb.st_mode);
}

static int
md_folder_list(struct hk_store *st, struct hk_store_folder_list *out)
{
	DIR *d = opendir(st->root);
	if (d == NULL)
		return store_fail(st, errno, "opendir(%s)", st->root);
	size_t cap = 0;
	out->v = xgrow(out->v, &cap, 1, sizeof *out->v);
	out->v[0] = (struct hk_store_folder){ xstrdup("INBOX"), HK_STORE_SPECIAL_INBOX };
	out->n = 1;
	struct hk_buf name;
	buf_init(&name);
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] != '.' || strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 || !entry_is_dir(d, e))
			continue;
		if (out->n > HK_STORE_FOLDERS_MAX || maildir_name_from_dir(e->d_name, &name) != 0) {
			out->skipped++;
			continue;
		}
		out->v = xgrow(out->v, &cap, out->n + 1, sizeof *out->v);
		out->v[out->n++] = (struct hk_store_folder){ xstrdup(name.data), hk_store_folder_special(name.data) };
	}
	closedir(d);
	buf_fini(&name);
	qsort(out->v + 1, out->n - 1, sizeof *out->v, cmp_folder);
	return 0;
}

char **
maildir_folder_dirs(struct hk_store *st, size_t *n_r)
{
	size_t n = 0, cap = 0;
	char **v = xgrow(NULL, &cap, 1, sizeof *v);
	v[n++] = xstrdup(st->root);
	DIR *d = opendir(st->root);
	if (d) {
		struct dirent *e;
		while ((e = readdir(d)) != NULL && n <= HK_STORE_FOLDERS_MAX) {
			if (e->d_name[0] != '.' || strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
			    !entry_is_dir(d, e))
				continue;
			v = xgrow(v, &cap, n + 1, sizeof *v);
			v[n++] = xasprintf("%s/%s", st->root, e->d_name);
		}
		closedir(d);
	}
	*n_r = n;
	return v;
}

void
maildir_free_strv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* --- opening ---------------------------------------------------------------------- */

struct maildir {
	char *quota_path;
};

static int
md_open(struct hk_store *st)
{
	char *cur = xasprintf("%s/cur", st->root);
	bool have = is_dir(cur);
	free(cur);
	if (!have && !st->set.create)
		return store_fail(st, ENOENT, "no mailbox at %s", st->root);
	if (st->set.create) {
		if (!have && mkdir_parents(st, st->root) != 0)
			return -1;
		if (!have && ensure_subdirs(st, st->root) != 0)
			return -1;
		/* a stat per folder when they exist (the usual case) */
		for (size_t i = 1; hk_store_standard_folders[i]; i++)
			if (!md_folder_exists(st, hk_store_standard_folders[i]) &&
			    md_folder_create(st, hk_store_standard_folders[i], true) != 0)
				return -1;
	}
	struct maildir *md = xcalloc(1, sizeof *md);
	md->quota_path = quota_path(st);
	st->priv = md;
	return 0;
}

static void
md_close(struct hk_store *st)
{
	struct maildir *md = st->priv;
	free(md->quota_path);
	free(md);
	st->priv = NULL;
}

/* --- delivery ------------------------------------------------------------------------ */

static void
item_committed(struct store_item *it)
{
	if (it->quota_path)
		maildir_quota_add(it->quota_path, (int64_t)it->res.size, 1);
}

struct writer {
	int fd;
	const char *path;
	char *buf;
	size_t len;
	uint64_t size, vsize;
	bool last_cr;
};

static int
w_flush(struct writer *w)
{
	if (w->len == 0)
		return 0;
	int r = store_write_all(w->fd, w->buf, w->len, w->path);
	w->len = 0;
	return r;
}

/* Counts what goes through for the RFC 822 size: a LF without CR before it
 * becomes CRLF on the wire. */
static void
w_count(struct writer *w, const char *p, size_t n)
{
	w->size += n;
	w->vsize += n;
	if (n == 0)
		return;
	const char *s = p, *end = p + n;
	while ((s = memchr(s, '\n', (size_t)(end - s))) != NULL) {
		bool cr = s == p ? w->last_cr : s[-1] == '\r';
		if (!cr)
			w->vsize++;
		s++;
	}
	w->last_cr = p[n - 1] == '\r';
}

static int
w_add(struct writer *w, const char *p, size_t n)
{
	w_count(w, p, n);
	if (w->len + n > STAGE_BUF) {
		if (w_flush(w) != 0)
			return -1;
		if (n >= STAGE_BUF)
			return store_write_all(w->fd, p, n, w->path);
	}
	memcpy(w->buf + w->len, p, n);
	w->len += n;
	return 0;
}

static int
write_parts(struct hk_store *st, struct writer *w, const struct hk_store_part *parts, size_t nparts)
{
	for (size_t i = 0; i < nparts; i++) {
		const struct hk_store_part *pt = &parts[i];
		if (pt->data) {
			if (w_add(w, pt->data, pt->len) != 0)
				return store_fail(st, errno, "write(%s)", w->path);
			continue;
		}
		off_t off = pt->off;
		size_t left = pt->len;
		while (left > 0) {
			if (w->len == STAGE_BUF && w_flush(w) != 0)
				return store_fail(st, errno, "write(%s)", w->path);
			size_t want = STAGE_BUF - w->len < left ? STAGE_BUF - w->len : left;
			ssize_t r = pread(pt->fd, w->buf + w->len, want, off);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0)
				return store_fail(st, errno, "reading the message (part %zu)", i);
			if (r == 0)
				return store_fail(st, EIO, "the message file ended %zu bytes early (part %zu)", left, i);
			w_count(w, w->buf + w->len, (size_t)r);
			w->len += (size_t)r;
			off += r;
			left -= (size_t)r;
		}
	}
	if (w_flush(w) != 0)
		return store_fail(st, errno, "write(%s)", w->path);
	return 0;
}

static int
md_stage(struct hk_store *st, struct store_item *it, const char *folder, const struct hk_store_deliver_opts *o,
    const struct hk_store_part *parts, size_t nparts, uint64_t size, bool keep_fd)
{
	char *dir = maildir_folder_path(st, folder);
	if (dir == NULL)
		return -1;
	struct hk_buf base, path;
	buf_init(&base);
	buf_init(&path);
	int fd = -1;
	bool retried = false;
	for (int attempt = 0; attempt < 4; attempt++) {
		buf_reset(&base);
		maildir_unique(&base);
		buf_reset(&path);
		buf_printf(&path, "%s/tmp/%s", dir, base.data);
		fd = store_open_excl(AT_FDCWD, path.data, path.data);
		if (fd >= 0)
			break;
		if (errno == EEXIST)
			continue;
		if (errno != ENOENT || retried)
			break;
		/* no such folder (or a damaged one): create it if allowed */
		retried = true;
		bool inbox = strcmp(folder, "INBOX") == 0;
		if (!inbox && !o->create_folder && !is_dir(dir)) {
			errno = ENOENT;
			break;
		}
		if (md_folder_create(st, folder, true) != 0)
			goto fail_noerr;
	}
	if (fd < 0) {
		if (errno == ENOENT)
			store_fail(st, ENOENT, "no folder '%s'", folder);
		else
			store_fail(st, errno, "open(%s)", path.data);
		goto fail_noerr;
	}
	uint32_t letters = 0;
	if (o->nkeywords && maildir_keywords_assign(st, dir, o->keywords, o->nkeywords, &letters) != 0)
		letters = 0; /* the message matters more than its keywords */

	struct writer w = { .fd = fd, .path = path.data, .buf = xmalloc(STAGE_BUF) };
	int r = write_parts(st, &w, parts, nparts);
	free(w.buf);
	if (r == 0 && w.size != size)
		r = store_fail(st, EIO, "wrote %llu bytes of %llu", (unsigned long long)w.size, (unsigned long long)size);
	if (r == 0 && o->received > 0) {
		struct timespec ts[2] = { { .tv_sec = o->received }, { .tv_sec = o->received } };
		if (futimens(fd, ts) != 0)
			r = store_fail(st, errno, "futimens(%s)", path.data);
	}
	if (r == 0 && !keep_fd) {
		int cr = close(fd);
		fd = -1;
		if (cr != 0)
			r = store_fail(st, errno, "close(%s)", path.data);
	}
	if (r != 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		(void)unlink(path.data);
		errno = e;
		goto fail_noerr;
	}
	uint32_t flags = o->flags;
	const char *sub = flags || letters ? "cur" : "new";
	struct hk_buf fname;
	buf_init(&fname);
	buf_printf(&fname, "%s/%s,S=%llu,W=%llu", sub, base.data, (unsigned long long)w.size, (unsigned long long)w.vsize);
	if (flags || letters)
		maildir_info_append(&fname, flags, letters);
	it->fd = keep_fd ? fd : -1;
	it->tmp_path = buf_steal(&path);
	it->dst_path = xasprintf("%s/%s", dir, fname.data);
	it->dst_dir = xasprintf("%s/%s", dir, sub);
	it->folder = xstrdup(folder);
	it->filename = buf_steal(&fname);
	it->own_tmp = true;
	it->res.size = w.size;
	it->res.vsize = w.vsize;
	it->res.kw = letters;
	it->committed = item_committed;
	it->quota_path = xstrdup(((struct maildir *)st->priv)->quota_path);
	buf_fini(&base);
	free(dir);
	return 0;
fail_noerr:;
	int e = errno;
	buf_fini(&base);
	buf_fini(&path);
	free(dir);
	errno = e;
	return -1;
}

/* --- reading ----------------------------------------------------------------------------- */

/* Directory listings of new/ or cur/ made (hk_store_dir_reads). */
static atomic_ullong md_dir_reads;

uint64_t
hk_store_dir_reads(void)
{
	return atomic_load(&md_dir_reads);
}

static int
md_scan(struct hk_store *st, const char *folder, unsigned flags, struct hk_store_msg_list *out)
{
	char *dir = maildir_folder_path(st, folder);
	if (dir == NULL)
		return -1;
	if (!is_dir(dir)) {
		free(dir);
		return store_fail(st, ENOENT, "no folder '%s'", folder);
	}
	size_t cap = 0;
	int rc = 0;
	for (int s = 0; s < 2 && rc == 0; s++) {
		const char *sub = s == 0 ? "new" : "cur";
		char *p = xasprintf("%s/%s", dir, sub);
		DIR *d = opendir(p);
		if (d == NULL) {
			if (errno != ENOENT)
				rc = store_fail(st, errno, "opendir(%s)", p);
			free(p);
			continue;
		}
		atomic_fetch_add(&md_dir_reads, 1);
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			if (e->d_name[0] == '.' || e->d_type == DT_DIR)
				continue;
			if (out->n >= HK_STORE_SCAN_MAX) {
				rc = store_fail(st, E2BIG, "more than %d messages in '%s'", HK_STORE_SCAN_MAX, folder);
				break;
			}
			struct maildir_info info;
			maildir_parse_filename(e->d_name, &info);
			struct hk_store_msg m = { .flags = info.flags, .kw = info.kw, .recent = s == 0 };
			m.size = info.size;
			if ((flags & HK_STORE_SCAN_STAT) || !info.has_size) {
				struct stat sb;
				if (fstatat(dirfd(d), e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(sb.st_mode))
					continue; /* gone meanwhile, or not a message */
				if (!info.has_size)
					m.size = (uint64_t)sb.st_size;
				m.mtime = (int64_t)sb.st_mtime;
			}
			m.vsize = info.has_vsize ? info.vsize : m.size;
			/* "sub/name" without printf: 10,000 of these per scan */
			size_t nl = strlen(e->d_name);
			m.filename = xmalloc(4 + nl + 1);
			memcpy(m.filename, sub, 3);
			m.filename[3] = '/';
			memcpy(m.filename + 4, e->d_name, nl + 1);
			out->v = xgrow(out->v, &cap, out->n + 1, sizeof *out->v);
			out->v[out->n++] = m;
		}
		closedir(d);
		free(p);
	}
	free(dir);
	if (rc != 0)
		hk_store_msg_list_free(out);
	return rc;
}

static int
md_set_flags(struct hk_store *st, const char *folder, const char *filename, uint32_t flags, uint32_t kw,
    char **newname_r)
{
	char *dir = maildir_folder_path(st, folder);
	if (dir == NULL)
		return -1;
	struct hk_str base = hk_store_base_name(filename);
	struct hk_buf nn;
	buf_init(&nn);
	buf_adds(&nn, "cur/");
	buf_add(&nn, base.ptr, base.len);
	maildir_info_append(&nn, flags, kw);
	int rc = 0;
	if (strcmp(nn.data, filename) != 0) {
		char *op = xasprintf("%s/%s", dir, filename);
		char *np = xasprintf("%s/%s", dir, nn.data);
		if (store_rename_noreplace(AT_FDCWD, op, AT_FDCWD, np, np) != 0)
			rc = store_fail(st, errno, "rename(%s, %s)", op, np);
		free(op);
		free(np);
	}
	if (rc == 0 && newname_r)
		*newname_r = buf_steal(&nn);
	buf_fini(&nn);
	free(dir);
	return rc;
}

static int
md_expunge(struct hk_store *st, const char *folder, const char *filename)
{
	char *dir = maildir_folder_path(st, folder);
	if (dir == NULL)
		return -1;
	char *p = xasprintf("%s/%s", dir, filename);
	struct maildir_info info;
	maildir_parse_filename(filename, &info);
	struct stat sb;
	int rc = 0;
	if (!info.has_size && stat(p, &sb) == 0)
		info.size = (uint64_t)sb.st_size;
	if (unlink(p) != 0)
		rc = store_fail(st, errno, "unlink(%s)", p);
	else
		maildir_quota_add(((struct maildir *)st->priv)->quota_path, -(int64_t)info.size, -1);
	free(p);
	free(dir);
	return rc;
}

static int
md_open_message(struct hk_store *st, const char *folder, const char *filename)
{
	char *dir = maildir_folder_path(st, folder);
	if (dir == NULL)
		return -1;
	char *p = xasprintf("%s/%s", dir, filename);
	int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		store_fail(st, errno, "open(%s)", p);
	free(p);
	free(dir);
	return fd;
}

static int
md_folder_open(struct hk_store *st, const char *folder)
{
	char *dir = maildir_folder_path(st, folder);
	if (dir == NULL)
		return -1;
	int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		store_fail(st, errno, "open(%s)", dir);
	free(dir);
	return fd;
}

static int
md_open_message_at(struct hk_store *st, int folder_fd, const char *filename)
{
	int fd = openat(folder_fd, filename, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		store_fail(st, errno, "open(%s)", filename);
	return fd;
}

static int
md_keywords(struct hk_store *st, const char *folder, struct hk_store_keywords *kw)
{
	char *dir = maildir_folder_path(st, folder);
	if (dir == NULL)
		return -1;
	int rc = maildir_keywords_read(dir, kw->names);
	if (rc != 0)
		store_fail(st, errno, "reading %s/dovecot-keywords", dir);
	free(dir);
	return rc;
}

static int
md_keywords_assign(struct hk_store *st, const char *folder, const char *const *names, size_t n, uint32_t *letters_r)
{
	char *dir = maildir_folder_path(st, folder);
	if (dir == NULL)
		return -1;
	int rc = is_dir(dir) ? maildir_keywords_assign(st, dir, names, n, letters_r)
	                     : store_fail(st, ENOENT, "no folder '%s'", folder);
	free(dir);
	return rc;
}

static int
md_clean_tmp(struct hk_store *st, int64_t max_age, size_t *removed_r)
{
	size_t n;
	char **dirs = maildir_folder_dirs(st, &n);
	time_t now = time(NULL);
	for (size_t i = 0; i < n; i++) {
		char *p = xasprintf("%s/tmp", dirs[i]);
		DIR *d = opendir(p);
		free(p);
		if (d == NULL)
			continue;
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
				continue;
			struct stat sb;
			if (fstatat(dirfd(d), e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0)
				continue;
			if ((int64_t)(now - sb.st_mtime) < max_age)
				continue;
			int r = S_ISDIR(sb.st_mode) ? rm_tree_at(dirfd(d), e->d_name, 0, false, NULL, NULL)
			                            : unlinkat(dirfd(d), e->d_name, 0);
			if (r == 0)
				(*removed_r)++;
		}
		closedir(d);
	}
	maildir_free_strv(dirs, n);
	return 0;
}

const struct hk_store_backend maildir_backend = {
	.name = "maildir",
	.open = md_open,
	.close = md_close,
	.folder_create = md_folder_create,
	.folder_exists = md_folder_exists,
	.folder_delete = md_folder_delete,
	.folder_rename = md_folder_rename,
	.folder_list = md_folder_list,
	.stage = md_stage,
	.quota_get = maildir_quota_get,
	.scan = md_scan,
	.set_flags = md_set_flags,
	.expunge = md_expunge,
	.open_message = md_open_message,
	.folder_open = md_folder_open,
	.open_message_at = md_open_message_at,
	.keywords = md_keywords,
	.keywords_assign = md_keywords_assign,
	.clean_tmp = md_clean_tmp,
	.sync = maildir_index_sync,
	.append = maildir_index_append,
	.expunge_uids = maildir_index_expunge,
	.claim_recent = maildir_index_claim_recent,
	.update_flags = maildir_index_update_flags,
	.cache_open = maildir_cache_open,
};
