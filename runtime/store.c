/*
 * store.c - the store's front: opening a mailbox, folder-name rules, the
 * calls that dispatch to the back end (store_backend.h), the quota check,
 * the Rejected-folder helper, SMTP reply mapping, error recording and the
 * test fault hook around every file-system call. The durability protocol
 * is in store_commit.c, Maildir++ in maildir*.c. See store.h.
 *
 * SECURITY: folder names come from rule scripts (interpolated fileinto),
 * IMAP clients and webmail: hk_store_folder_name_ok is the only gate
 * before a name reaches the file system; user and domain names are checked
 * again before they become path elements (hk_store_user_root).
 */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compose.h"
#include "store_backend.h"

const char *const hk_store_standard_folders[] = { "INBOX", "Sent", "Drafts", "Trash", "Junk", "Rejected", NULL };

/* --- errors and the fault hook --------------------------------------------- */

static int (*fault_hook)(enum hk_store_op, const char *, void *);
static void *fault_arg;

void
hk_store_set_fault_hook(int (*hook)(enum hk_store_op op, const char *path, void *arg), void *arg)
{
	fault_hook = hook;
	fault_arg = arg;
}

int
store_fault(enum hk_store_op op, const char *path)
{
	return fault_hook ? fault_hook(op, path, fault_arg) : 0;
}

static void
vformat_error(char *out, size_t cap, int err, const char *fmt, va_list ap)
{
	int n = vsnprintf(out, cap, fmt, ap);
	char tmp[128];
	if (n >= 0 && (size_t)n < cap && err)
		snprintf(out + n, cap - (size_t)n, ": %s", strerror_r(err, tmp, sizeof tmp));
}

int
store_fail(struct hk_store *st, int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vformat_error(st->err, sizeof st->err, err, fmt, ap);
	va_end(ap);
	errno = err;
	return -1;
}

void
store_item_fail(struct store_item *it, int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vformat_error(it->error, sizeof it->error, err, fmt, ap);
	va_end(ap);
	it->res.err = err ? err : EIO;
	it->res.error = it->error;
	it->state = ITEM_FAILED;
}

const char *
hk_store_error(const struct hk_store *st)
{
	return st->err;
}

int
store_open_excl(int dirfd, const char *name, const char *path)
{
	int e = store_fault(HK_STORE_OP_OPEN, path);
	if (e)
		return errno = e, -1;
	return openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
}

int
store_write_all(int fd, const void *p, size_t n, const char *path)
{
	const char *c = p;
	int e = store_fault(HK_STORE_OP_WRITE, path);
	if (e)
		return errno = e, -1;
	while (n > 0) {
		ssize_t w = write(fd, c, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (w == 0)
			return errno = EIO, -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

int
store_fsync(int fd, const char *path)
{
	int e = store_fault(HK_STORE_OP_SYNC, path);
	if (e)
		return errno = e, -1;
	return fsync(fd);
}

int
store_syncfs(int fd, const char *path)
{
	int e = store_fault(HK_STORE_OP_SYNC, path);
	if (e)
		return errno = e, -1;
	return syncfs(fd);
}

int
store_mkdirat(int dirfd, const char *name, const char *path)
{
	int e = store_fault(HK_STORE_OP_MKDIR, path);
	if (e)
		return errno = e, -1;
	return mkdirat(dirfd, name, 0700);
}

int
store_rename_noreplace(int olddirfd, const char *oldname, int newdirfd, const char *newname, const char *path)
{
	int e = store_fault(HK_STORE_OP_RENAME, path);
	if (e)
		return errno = e, -1;
	if (renameat2(olddirfd, oldname, newdirfd, newname, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
	/* a file system without RENAME_NOREPLACE: link refuses an existing
	 * target just the same (the Maildir spec's original protocol) */
	if (linkat(olddirfd, oldname, newdirfd, newname, 0) != 0)
		return -1;
	(void)unlinkat(olddirfd, oldname, 0);
	return 0;
}

void
store_item_free(struct store_item *it)
{
	if (it == NULL)
		return;
	if (it->fd >= 0)
		close(it->fd);
	free(it->tmp_path);
	free(it->dst_path);
	free(it->dst_dir);
	free(it->folder);
	free(it->filename);
	free(it->quota_path);
	free(it);
}

/* --- SMTP replies ------------------------------------------------------------ */

struct hk_store_reply
hk_store_reply(int err)
{
	switch (err) {
	case 0:
		return (struct hk_store_reply){ 250, "2.0.0", "Delivered" };
	case EDQUOT:
		return (struct hk_store_reply){ 452, "4.2.2", "Mailbox full" };
	case EFBIG:
		return (struct hk_store_reply){ 552, "5.2.3", "Message too big for the mailbox" };
	case ENOSPC:
		return (struct hk_store_reply){ 452, "4.3.1", "Insufficient system storage" };
	case ENOENT:
		/* a folder or mailbox that vanished under the delivery (deleted
		 * by its user meanwhile): the retry recreates it. Whether a
		 * recipient exists is the accounts' answer at RCPT, never ours. */
		return (struct hk_store_reply){ 451, "4.2.0", "Mailbox temporarily unavailable" };
	default:
		return (struct hk_store_reply){ 451, "4.3.0", "Local error in processing" };
	}
}

/* --- names ---------------------------------------------------------------------- */

uint32_t
hk_store_flag_from_imap(const char *name, size_t len)
{
	static const struct {
		const char *name;
		uint32_t flag;
	} map[] = {
		{ "\\Seen", HK_STORE_SEEN },
		{ "\\Answered", HK_STORE_ANSWERED },
		{ "\\Flagged", HK_STORE_FLAGGED },
		{ "\\Deleted", HK_STORE_DELETED },
		{ "\\Draft", HK_STORE_DRAFT },
	};
	for (size_t i = 0; i < HK_ARRAY_LEN(map); i++)
		if (strlen(map[i].name) == len && strncasecmp(map[i].name, name, len) == 0)
			return map[i].flag;
	return 0;
}

/* Length of the UTF-8 sequence at s (at most n bytes) and its code point;
 * 0 when it is not well-formed (overlong forms, surrogates, > U+10FFFF and
 * truncated sequences are all refused). */
static size_t
utf8_next(const unsigned char *s, size_t n, uint32_t *cp_r)
{
	uint32_t c = s[0];
	size_t len;
	uint32_t min;
	if (c < 0x80) {
		*cp_r = c;
		return 1;
	} else if ((c & 0xE0) == 0xC0) {
		len = 2, min = 0x80, c &= 0x1F;
	} else if ((c & 0xF0) == 0xE0) {
		len = 3, min = 0x800, c &= 0x0F;
	} else if ((c & 0xF8) == 0xF0) {
		len = 4, min = 0x10000, c &= 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3F);
	}
	if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
		return 0;
	*cp_r = c;
	return len;
}

bool
hk_store_folder_name_ok(const char *name)
{
	if (name == NULL)
		return false;
	size_t n = strlen(name);
	if (n == 0 || n > HK_STORE_FOLDER_NAME_MAX)
		return false;
	const unsigned char *s = (const unsigned char *)name;
	unsigned depth = 1;
	bool level_start = true;
	for (size_t i = 0; i < n;) {
		uint32_t cp;
		size_t len = utf8_next(s + i, n - i, &cp);
		if (len == 0)
			return false;
		if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F))
			return false;
		if (cp == '\\' || cp == '*' || cp == '%')
			return false;
		if (cp == '/') {
			/* an empty level: leading, trailing or "//" */
			if (level_start || i + 1 == n)
				return false;
			if (++depth > HK_STORE_FOLDER_DEPTH_MAX)
				return false;
			level_start = true;
			i++;
			continue;
		}
		/* "." and ".." levels, and hidden names, never reach the disk;
		 * ".." is refused anywhere, as the language does */
		if (cp == '.' && (level_start || (i + 1 < n && s[i + 1] == '.')))
			return false;
		level_start = false;
		i += len;
	}
	return true;
}

char *
hk_store_folder_canon(const char *name)
{
	if (!hk_store_folder_name_ok(name)) {
		errno = EINVAL;
		return NULL;
	}
	char *c = xstrdup(name);
	if (strncasecmp(c, "INBOX", 5) == 0 && (c[5] == '\0' || c[5] == '/'))
		memcpy(c, "INBOX", 5);
	return c;
}

enum hk_store_special
hk_store_folder_special(const char *name)
{
	static const struct {
		const char *name;
		enum hk_store_special sp;
	} map[] = {
		{ "Sent", HK_STORE_SPECIAL_SENT },
		{ "Drafts", HK_STORE_SPECIAL_DRAFTS },
		{ "Trash", HK_STORE_SPECIAL_TRASH },
		{ "Junk", HK_STORE_SPECIAL_JUNK },
		{ "Rejected", HK_STORE_SPECIAL_REJECTED },
	};
	if (strcasecmp(name, "INBOX") == 0)
		return HK_STORE_SPECIAL_INBOX;
	for (size_t i = 0; i < HK_ARRAY_LEN(map); i++)
		if (strcmp(name, map[i].name) == 0)
			return map[i].sp;
	return HK_STORE_SPECIAL_NONE;
}

static bool
path_part_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > HK_STORE_NAME_PART_MAX || s[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7F || c == '/' || c == '\\')
			return false;
	}
	return true;
}

char *
hk_store_user_root(const char *var, const char *domain, const char *user)
{
	if (var == NULL || domain == NULL || user == NULL || !path_part_ok(domain) || !path_part_ok(user)) {
		errno = EINVAL;
		return NULL;
	}
	return xasprintf("%s/domains/%s/users/%s/Maildir", var, domain, user);
}

/* --- the mailbox ------------------------------------------------------------------ */

int
hk_store_open(const char *root, const struct hk_store_settings *set, struct hk_store **st_r)
{
	*st_r = NULL;
	if (root == NULL || root[0] == '\0')
		return errno = EINVAL, -1;
	struct hk_store *st = xcalloc(1, sizeof *st);
	st->be = &maildir_backend;
	st->root = xstrdup(root);
	if (set)
		st->set = *set;
	if (st->be->open(st) != 0) {
		int e = errno;
		hk_store_close(&st);
		return errno = e, -1;
	}
	*st_r = st;
	return 0;
}

void
hk_store_close(struct hk_store **stp)
{
	struct hk_store *st = *stp;
	if (st == NULL)
		return;
	if (st->be && st->priv)
		st->be->close(st);
	free(st->root);
	free(st);
	*stp = NULL;
}

/* Canonical name or -1 (EINVAL recorded on st). */
static char *
canon_or_fail(struct hk_store *st, const char *name)
{
	char *c = hk_store_folder_canon(name);
	if (c == NULL)
		store_fail(st, EINVAL, "invalid folder name");
	return c;
}

int
hk_store_folder_create(struct hk_store *st, const char *name)
{
	char *c = canon_or_fail(st, name);
	if (c == NULL)
		return -1;
	int r = st->be->folder_create(st, c, false);
	int e = errno;
	free(c);
	errno = e;
	return r;
}

int
hk_store_folder_ensure(struct hk_store *st, const char *name)
{
	char *c = canon_or_fail(st, name);
	if (c == NULL)
		return -1;
	int r = st->be->folder_create(st, c, true);
	int e = errno;
	free(c);
	errno = e;
	return r;
}

bool
hk_store_folder_exists(struct hk_store *st, const char *name)
{
	char *c = hk_store_folder_canon(name);
	if (c == NULL)
		return false;
	bool r = st->be->folder_exists(st, c);
	free(c);
	return r;
}

int
hk_store_folder_delete(struct hk_store *st, const char *name)
{
	char *c = canon_or_fail(st, name);
	if (c == NULL)
		return -1;
	int r;
	if (strcmp(c, "INBOX") == 0)
		r = store_fail(st, EINVAL, "INBOX cannot be deleted");
	else
		r = st->be->folder_delete(st, c);
	int e = errno;
	free(c);
	errno = e;
	return r;
}

int
hk_store_folder_rename(struct hk_store *st, const char *from, const char *to)
{
	char *f = canon_or_fail(st, from);
	if (f == NULL)
		return -1;
	char *t = canon_or_fail(st, to);
	if (t == NULL) {
		free(f);
		return -1;
	}
	int r;
	size_t fl = strlen(f);
	if (strcmp(f, "INBOX") == 0 || strcmp(t, "INBOX") == 0)
		r = store_fail(st, EINVAL, "INBOX cannot be renamed");
	else if (strncmp(t, f, fl) == 0 && (t[fl] == '\0' || t[fl] == '/'))
		r = store_fail(st, EINVAL, "cannot rename '%s' into itself", f);
	else
		r = st->be->folder_rename(st, f, t);
	int e = errno;
	free(f);
	free(t);
	errno = e;
	return r;
}

int
hk_store_folder_list(struct hk_store *st, struct hk_store_folder_list *out)
{
	memset(out, 0, sizeof *out);
	return st->be->folder_list(st, out);
}

void
hk_store_folder_list_free(struct hk_store_folder_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].name);
	free(l->v);
	memset(l, 0, sizeof *l);
}

/* --- quota --------------------------------------------------------------------------- */

int
hk_store_quota_get(struct hk_store *st, struct hk_store_usage *u)
{
	return st->be->quota_get(st, u, false);
}

int
hk_store_quota_recalc(struct hk_store *st)
{
	struct hk_store_usage u;
	return st->be->quota_get(st, &u, true);
}

int
hk_store_quota_check(struct hk_store *st, uint64_t size)
{
	const struct hk_store_quota *q = &st->set.quota;
	if (q->bytes == 0 && q->count == 0)
		return 0;
	if (q->bytes && size > q->bytes)
		return store_fail(st, EFBIG, "message of %llu bytes is larger than the quota of %llu",
		    (unsigned long long)size, (unsigned long long)q->bytes);
	struct hk_store_usage u;
	if (hk_store_quota_get(st, &u) != 0)
		return -1;
	if (q->bytes && u.bytes + size > q->bytes)
		return store_fail(st, EDQUOT, "quota: %llu of %llu bytes used, message of %llu bytes",
		    (unsigned long long)u.bytes, (unsigned long long)q->bytes, (unsigned long long)size);
	if (q->count && u.count + 1 > q->count)
		return store_fail(st, EDQUOT, "quota: %llu of %llu messages", (unsigned long long)u.count,
		    (unsigned long long)q->count);
	return 0;
}

/* --- delivery ------------------------------------------------------------------------ */

static int
add_item(struct hk_store_batch *b, struct hk_store *st, const struct hk_store_deliver_opts *o,
    const struct hk_store_part *parts, size_t nparts, bool quota_check, size_t *index_r)
{
	static const struct hk_store_deliver_opts defaults;
	if (o == NULL)
		o = &defaults;
	if (store_batch_committed(b))
		return store_fail(st, EINVAL, "the batch was committed");
	if (store_batch_full(b))
		return store_fail(st, E2BIG, "more than %d messages in one batch", HK_STORE_BATCH_MAX);
	if (nparts > HK_STORE_PARTS_MAX || (nparts && parts == NULL))
		return store_fail(st, EINVAL, "%zu message parts", nparts);
	if (o->nkeywords > HK_STORE_KEYWORDS_MAX)
		return store_fail(st, EINVAL, "%zu keywords", o->nkeywords);
	uint64_t size = 0;
	for (size_t i = 0; i < nparts; i++) {
		if (parts[i].len > UINT64_MAX - size || (parts[i].data == NULL && (parts[i].fd < 0 || parts[i].off < 0)))
			return store_fail(st, EINVAL, "bad message part %zu", i);
		size += parts[i].len;
	}
	char *folder = canon_or_fail(st, o->folder ? o->folder : "INBOX");
	if (folder == NULL)
		return -1;
	if (quota_check && hk_store_quota_check(st, size) != 0) {
		int e = errno;
		free(folder);
		return errno = e, -1;
	}
	struct store_item *it = xcalloc(1, sizeof *it);
	it->fd = -1;
	bool keep_fd = store_batch_sync(b) == HK_STORE_SYNC_FSYNC;
	if (st->be->stage(st, it, folder, o, parts, nparts, size, keep_fd) != 0) {
		int e = errno;
		free(folder);
		store_item_free(it);
		return errno = e, -1;
	}
	free(folder);
	store_batch_push(b, it, index_r);
	return 0;
}

int
hk_store_batch_add(struct hk_store_batch *b, struct hk_store *st, const struct hk_store_deliver_opts *o,
    const struct hk_store_part *parts, size_t nparts, size_t *index_r)
{
	return add_item(b, st, o, parts, nparts, o && o->check_quota, index_r);
}

int
hk_store_batch_add_rejected(struct hk_store_batch *b, struct hk_store *st, struct hk_message *msg,
    const struct hk_env *env, const struct hk_action *a, const struct hk_compose_ctx *c, size_t *index_r)
{
	struct hk_buf out;
	buf_init(&out);
	hk_compose_rejected(msg, env, a, c, &out);
	struct hk_store_deliver_opts o = {
		.folder = "Rejected",
		.create_folder = true,
		.received = c ? c->now : 0,
	};
	struct hk_store_part part = { .data = out.data, .fd = -1, .len = out.len };
	int r = add_item(b, st, &o, &part, 1, false, index_r);
	int e = errno;
	buf_fini(&out);
	errno = e;
	return r;
}

int
hk_store_deliver(struct hk_store *st, const struct hk_store_deliver_opts *o, const struct hk_store_part *parts,
    size_t nparts, char **filename_r)
{
	if (filename_r)
		*filename_r = NULL;
	struct hk_store_batch *b = hk_store_batch_new(HK_STORE_SYNC_FSYNC);
	size_t i;
	int r = hk_store_batch_add(b, st, o, parts, nparts, &i);
	if (r == 0) {
		r = hk_store_batch_commit(b);
		const struct hk_store_result *res = hk_store_batch_result(b, i);
		if (r != 0) {
			snprintf(st->err, sizeof st->err, "%s", res->error ? res->error : "commit failed");
			errno = res->err;
		} else if (filename_r) {
			*filename_r = xstrdup(res->filename);
		}
	}
	int e = errno;
	hk_store_batch_free(&b);
	errno = e;
	return r;
}

/* --- reading ---------------------------------------------------------------------------- */

struct hk_str
hk_store_base_name(const char *filename)
{
	const char *s = strrchr(filename, '/');
	s = s ? s + 1 : filename;
	const char *colon = strchr(s, ':');
	return (struct hk_str){ s, colon ? (size_t)(colon - s) : strlen(s) };
}

struct hk_str
hk_store_identity(const char *filename)
{
	struct hk_str b = hk_store_base_name(filename);
	/* a trailing ",U=<1-10 digits>" is the index's note, not identity */
	size_t i = b.len, digits = 0;
	while (i > 0 && b.ptr[i - 1] >= '0' && b.ptr[i - 1] <= '9' && digits <= 10)
		i--, digits++;
	if (digits >= 1 && digits <= 10 && i > 3 && memcmp(b.ptr + i - 3, ",U=", 3) == 0)
		b.len = i - 3;
	return b;
}

/* "new/X" or "cur/X" with X a plain file name: the only shape accepted
 * from a caller, so an IMAP session can never name a path outside the
 * folder. */
static int
filename_ok(struct hk_store *st, const char *f)
{
	if (f == NULL || (strncmp(f, "new/", 4) != 0 && strncmp(f, "cur/", 4) != 0) || f[4] == '\0' || f[4] == '.' ||
	    strchr(f + 4, '/') != NULL || strlen(f) > 4 + 255)
		return store_fail(st, EINVAL, "invalid message file name");
	return 0;
}

#define WITH_FOLDER(st, folder, c, expr)                                   \
	do {                                                                   \
		char *c = canon_or_fail((st), (folder) ? (folder) : "INBOX"); \
		if (c == NULL)                                                 \
			return -1;                                             \
		int r_ = (expr);                                               \
		int e_ = errno;                                                \
		free(c);                                                       \
		errno = e_;                                                    \
		return r_;                                                     \
	} while (0)

int
hk_store_scan(struct hk_store *st, const char *folder, unsigned scan_flags, struct hk_store_msg_list *out)
{
	memset(out, 0, sizeof *out);
	WITH_FOLDER(st, folder, c, st->be->scan(st, c, scan_flags, out));
}

void
hk_store_msg_list_free(struct hk_store_msg_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].filename);
	free(l->v);
	memset(l, 0, sizeof *l);
}

int
hk_store_set_flags(struct hk_store *st, const char *folder, const char *filename, uint32_t flags, uint32_t kw,
    char **newname_r)
{
	if (newname_r)
		*newname_r = NULL;
	if (filename_ok(st, filename) != 0)
		return -1;
	WITH_FOLDER(st, folder, c, st->be->set_flags(st, c, filename, flags, kw, newname_r));
}

int
hk_store_expunge(struct hk_store *st, const char *folder, const char *filename)
{
	if (filename_ok(st, filename) != 0)
		return -1;
	WITH_FOLDER(st, folder, c, st->be->expunge(st, c, filename));
}

int
hk_store_open_message(struct hk_store *st, const char *folder, const char *filename)
{
	if (filename_ok(st, filename) != 0)
		return -1;
	WITH_FOLDER(st, folder, c, st->be->open_message(st, c, filename));
}

int
hk_store_folder_open(struct hk_store *st, const char *folder)
{
	WITH_FOLDER(st, folder, c, st->be->folder_open(st, c));
}

int
hk_store_open_message_at(struct hk_store *st, int folder_fd, const char *filename)
{
	if (filename_ok(st, filename) != 0)
		return -1;
	return st->be->open_message_at(st, folder_fd, filename);
}

int
hk_store_keywords(struct hk_store *st, const char *folder, struct hk_store_keywords *kw)
{
	memset(kw, 0, sizeof *kw);
	WITH_FOLDER(st, folder, c, st->be->keywords(st, c, kw));
}

int
hk_store_keywords_assign(struct hk_store *st, const char *folder, const char *const *names, size_t n,
    uint32_t *letters_r)
{
	*letters_r = 0;
	if (n > HK_STORE_KEYWORDS_MAX || (n && names == NULL))
		return store_fail(st, EINVAL, "%zu keywords", n);
	WITH_FOLDER(st, folder, c, st->be->keywords_assign(st, c, names, n, letters_r));
}

void
hk_store_keywords_free(struct hk_store_keywords *kw)
{
	for (size_t i = 0; i < HK_STORE_KEYWORDS_MAX; i++) {
		free(kw->names[i]);
		kw->names[i] = NULL;
	}
}

int
hk_store_clean_tmp(struct hk_store *st, int64_t max_age, size_t *removed_r)
{
	size_t dummy;
	if (removed_r == NULL)
		removed_r = &dummy;
	*removed_r = 0;
	return st->be->clean_tmp(st, max_age, removed_r);
}

/* --- the UID index ----------------------------------------------------------------------- */

int
hk_store_sync(struct hk_store *st, const char *folder, const struct hk_store_view *prev, struct hk_store_view *out)
{
	memset(out, 0, sizeof *out);
	WITH_FOLDER(st, folder, c, st->be->sync(st, c, prev, out));
}

void
hk_store_view_free(struct hk_store_view *v)
{
	for (size_t i = 0; i < v->n; i++)
		free(v->v[i].filename);
	free(v->v);
	free(v->expunged);
	memset(v, 0, sizeof *v);
}

const struct hk_store_uid_msg *
hk_store_view_find(const struct hk_store_view *v, uint32_t uid)
{
	size_t lo = 0, hi = v->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v->v[mid].uid == uid)
			return &v->v[mid];
		if (v->v[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

int
hk_store_append(struct hk_store *st, const struct hk_store_deliver_opts *o, const struct hk_store_part *parts,
    size_t nparts, uint32_t *uidvalidity_r, uint32_t *uid_r)
{
	static const struct hk_store_deliver_opts defaults;
	*uidvalidity_r = 0;
	*uid_r = 0;
	if (o == NULL)
		o = &defaults;
	WITH_FOLDER(st, o->folder, c, st->be->append(st, c, o, parts, nparts, uidvalidity_r, uid_r));
}

int
hk_store_expunge_uids(struct hk_store *st, const char *folder, const uint32_t *uids, size_t n, size_t *expunged_r)
{
	size_t dummy;
	if (expunged_r == NULL)
		expunged_r = &dummy;
	*expunged_r = 0;
	if (n && uids == NULL)
		return store_fail(st, EINVAL, "no UIDs");
	WITH_FOLDER(st, folder, c, st->be->expunge_uids(st, c, uids, n, expunged_r));
}

int
hk_store_claim_recent(struct hk_store *st, const char *folder, const uint32_t *uids, size_t n, char **names_r)
{
	for (size_t i = 0; names_r && i < n; i++)
		names_r[i] = NULL;
	if (n && uids == NULL)
		return store_fail(st, EINVAL, "no UIDs");
	WITH_FOLDER(st, folder, c, st->be->claim_recent(st, c, uids, n, names_r));
}

int
hk_store_update_flags(struct hk_store *st, const char *folder, const struct hk_store_flag_update *u,
    struct hk_store_flag_result *res)
{
	memset(res, 0, sizeof *res);
	if (u == NULL || (u->nuids && u->uids == NULL) || u->op > HK_STORE_FLAGS_REMOVE)
		return store_fail(st, EINVAL, "bad flag update");
	WITH_FOLDER(st, folder, c, st->be->update_flags(st, c, u, res));
}

int
hk_store_cache_open(struct hk_store *st, const char *folder, uint32_t uidvalidity, struct hk_store_cache **c_r)
{
	*c_r = NULL;
	WITH_FOLDER(st, folder, c, st->be->cache_open(st, c, uidvalidity, c_r));
}
