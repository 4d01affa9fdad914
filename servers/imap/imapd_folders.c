/*
 * imapd_folders.c - the commands about folders: LIST, LSUB, CREATE,
 * DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, STATUS, NAMESPACE (worker side).
 *
 * Names: the store's folder names are UTF-8 with "/" between levels, and
 * so is the IMAP hierarchy: one personal namespace "" with delimiter "/".
 * Standard folders carry their RFC 6154 attributes; a level that exists
 * only as the parent of others is listed \Noselect (RFC 3501 6.3.8).
 *
 * Subscriptions live in <Maildir>/hikyaku-subscriptions, one UTF-8 name
 * per line, replaced atomically under a lock file. Without the file, the
 * standard folders count as subscribed, so a new account looks right in
 * clients that show only subscribed folders.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "imap/imap_write.h"
#include "imapd_int.h"

#define SUBSCRIPTIONS_MAX 10000   /* lines read from the file */
#define SUBSCRIPTION_LINE_MAX 1024

/* --- pattern matching (RFC 3501 6.3.8) ------------------------------------------- */

#define LIST_WILDCARDS_MAX 8 /* '*' and '%' in one pattern */

/* '*' matches anything, '%' anything but the delimiter. A plain
 * backtracking matcher is exponential in the wildcards ("*a*a*a*a*b"
 * against "aaaa...": a cheap LIST could pin a worker), so a failure is
 * remembered per (wildcard, name position): each pair is tried once, and
 * a pattern costs O(wildcards x name length x pattern length). */
struct matcher {
	const char *name;
	size_t nlen;
	unsigned char failed[LIST_WILDCARDS_MAX][HK_STORE_FOLDER_NAME_MAX + 2];
};

static bool
match_at(struct matcher *m, const char *pat, size_t i, unsigned w)
{
	for (;;) {
		if (*pat == '\0')
			return i == m->nlen;
		if (*pat == '*' || *pat == '%') {
			if (m->failed[w][i])
				return false;
			for (size_t k = i;; k++) {
				if (match_at(m, pat + 1, k, w + 1))
					return true;
				if (k == m->nlen || (*pat == '%' && m->name[k] == '/'))
					break;
			}
			m->failed[w][i] = 1;
			return false;
		}
		if (i == m->nlen || *pat != m->name[i])
			return false;
		pat++;
		i++;
	}
}

static bool
match(const char *pat, const char *name)
{
	size_t nlen = strlen(name);
	if (nlen > HK_STORE_FOLDER_NAME_MAX)
		return false; /* no folder has such a name */
	struct matcher *m = xcalloc(1, sizeof(*m));
	m->name = name;
	m->nlen = nlen;
	bool ok = match_at(m, pat, 0, 0);
	free(m);
	return ok;
}

/* The memo has room for LIST_WILDCARDS_MAX wildcards; more are refused. */
static bool
pattern_ok(const char *p)
{
	unsigned w = 0;
	for (; *p; p++)
		w += *p == '*' || *p == '%';
	return w <= LIST_WILDCARDS_MAX;
}

/* The pattern with its INBOX prefix (any case) spelt "INBOX". */
static char *
canon_pattern(const char *ref, const char *pat)
{
	char *full = xasprintf("%s%s", ref, pat);
	if (strncasecmp(full, "INBOX", 5) == 0 && (full[5] == '\0' || full[5] == '/'))
		memcpy(full, "INBOX", 5);
	return full;
}

static const char *
special_attr(enum hk_store_special sp)
{
	switch (sp) {
	case HK_STORE_SPECIAL_SENT: return " \\Sent";
	case HK_STORE_SPECIAL_DRAFTS: return " \\Drafts";
	case HK_STORE_SPECIAL_TRASH: return " \\Trash";
	case HK_STORE_SPECIAL_JUNK: return " \\Junk";
	default: return "";
	}
}

struct entry {
	char *name;
	enum hk_store_special special;
	bool exists;
	bool children;
};

static int
cmp_entry(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	bool xi = strcmp(x->name, "INBOX") == 0, yi = strcmp(y->name, "INBOX") == 0;
	if (xi != yi)
		return xi ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* Every folder and every implied parent, sorted, INBOX first. */
static struct entry *
all_entries(struct imapd_session *s, size_t *n_r)
{
	struct hk_store_folder_list l;
	*n_r = 0;
	if (hk_store_folder_list(s->st, &l) < 0)
		return NULL;
	size_t cap = l.n * 2 + 1, n = 0;
	struct entry *e = xcalloc(cap, sizeof(*e));
	for (size_t i = 0; i < l.n; i++) {
		e[n].name = xstrdup(l.v[i].name);
		e[n].special = l.v[i].special;
		e[n].exists = true;
		n++;
	}
	hk_store_folder_list_free(&l);
	qsort(e, n, sizeof(*e), cmp_entry);
	/* parents: "a/b/c" needs "a" and "a/b" */
	size_t real = n;
	for (size_t i = 0; i < real; i++) {
		char *p = xstrdup(e[i].name);
		for (char *slash = strrchr(p, '/'); slash; slash = strrchr(p, '/')) {
			*slash = '\0';
			struct entry key = { .name = p };
			struct entry *f = bsearch(&key, e, real, sizeof(*e), cmp_entry);
			bool have = f != NULL;
			for (size_t k = real; k < n && !have; k++)
				have = strcmp(e[k].name, p) == 0;
			if (have)
				continue;
			if (n == cap) {
				cap *= 2;
				e = xrealloc(e, cap * sizeof(*e));
			}
			e[n++] = (struct entry){ .name = xstrdup(p) };
		}
		free(p);
	}
	qsort(e, n, sizeof(*e), cmp_entry);
	for (size_t i = 0; i + 1 < n; i++) {
		size_t len = strlen(e[i].name);
		/* sorted: a child "name/..." comes right after its parent or
		 * after other names starting with "name" and a byte below '/' */
		for (size_t k = i + 1; k < n && strncmp(e[k].name, e[i].name, len) == 0; k++)
			if (e[k].name[len] == '/') {
				e[i].children = true;
				break;
			}
	}
	*n_r = n;
	return e;
}

static void
free_entries(struct entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(e[i].name);
	free(e);
}

static void
list_line(struct hk_buf *o, const char *verb, const char *attrs, const char *name)
{
	buf_printf(o, "* %s (%s) \"/\" ", verb, attrs);
	imap_write_mailbox(o, name);
	buf_adds(o, "\r\n");
}

/* --- subscriptions ----------------------------------------------------------------- */

static char **
subs_read(struct imapd_session *s, size_t *n_r, bool *missing_r)
{
	char *path = xasprintf("%s/hikyaku-subscriptions", s->root);
	FILE *f = fopen(path, "re");
	free(path);
	*n_r = 0;
	*missing_r = f == NULL;
	if (f == NULL)
		return NULL;
	char **v = NULL;
	size_t n = 0;
	char line[SUBSCRIPTION_LINE_MAX + 2];
	while (n < SUBSCRIPTIONS_MAX && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '\0' || !hk_store_folder_name_ok(line))
			continue;
		v = xrealloc(v, (n + 1) * sizeof(*v));
		v[n++] = xstrdup(line);
	}
	fclose(f);
	*n_r = n;
	return v;
}

static void
subs_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static bool
subscribed(char **v, size_t n, bool missing, const char *name)
{
	if (missing)
		return hk_store_folder_special(name) != HK_STORE_SPECIAL_NONE;
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i], name) == 0)
			return true;
	return false;
}

/* Adds or removes `name`, durably, under the lock. */
static int
subs_change(struct imapd_session *s, const char *name, bool add)
{
	char *lockp = xasprintf("%s/hikyaku-subscriptions.lock", s->root);
	int lfd = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	free(lockp);
	if (lfd < 0 || flock(lfd, LOCK_EX) < 0) {
		if (lfd >= 0)
			close(lfd);
		return -1;
	}
	size_t n;
	bool missing;
	char **v = subs_read(s, &n, &missing);
	if (missing) { /* start from the default: the standard folders */
		for (const char *const *sf = hk_store_standard_folders; *sf; sf++) {
			v = xrealloc(v, (n + 1) * sizeof(*v));
			v[n++] = xstrdup(*sf);
		}
	}
	char *tmp = xasprintf("%s/hikyaku-subscriptions.tmp", s->root);
	char *path = xasprintf("%s/hikyaku-subscriptions", s->root);
	int rc = -1;
	FILE *f = fopen(tmp, "we");
	if (f) {
		bool have = false;
		for (size_t i = 0; i < n; i++) {
			if (strcmp(v[i], name) == 0) {
				have = true;
				if (!add)
					continue;
			}
			fprintf(f, "%s\n", v[i]);
		}
		if (add && !have)
			fprintf(f, "%s\n", name);
		if (fflush(f) == 0 && fsync(fileno(f)) == 0 && fclose(f) == 0)
			rc = rename(tmp, path);
		else
			unlink(tmp);
	}
	free(tmp);
	free(path);
	subs_free(v, n);
	close(lfd);
	return rc;
}

/* --- commands ------------------------------------------------------------------------ */

static void
do_list(struct imapd_job *j, bool lsub)
{
	struct imapd_session *s = j->s;
	const struct imap_cmd *c = &j->cmd;
	const char *verb = lsub ? "LSUB" : "LIST";
	if (c->list.pattern[0] == '\0') { /* the hierarchy delimiter (RFC 3501 6.3.8) */
		if (!lsub)
			buf_adds(&j->out, "* LIST (\\Noselect) \"/\" \"\"\r\n");
		imapd_tagged(j, "OK", "%s completed", verb);
		return;
	}
	char *pat = canon_pattern(c->list.reference, c->list.pattern);
	if (!pattern_ok(pat)) {
		free(pat);
		imapd_tagged(j, "NO", "Too many wildcards");
		return;
	}
	size_t n, nsub = 0;
	bool missing = false;
	char **subs = lsub ? subs_read(s, &nsub, &missing) : NULL;
	struct entry *e = all_entries(s, &n);
	struct hk_buf attrs;
	buf_init(&attrs);
	for (size_t i = 0; i < n; i++) {
		if (!match(pat, e[i].name))
			continue;
		if (lsub && !subscribed(subs, nsub, missing, e[i].name))
			continue;
		buf_reset(&attrs);
		if (!e[i].exists)
			buf_adds(&attrs, "\\Noselect");
		if (!lsub)
			buf_printf(&attrs, "%s%s", attrs.len ? " " : "", e[i].children ? "\\HasChildren" : "\\HasNoChildren");
		const char *sp = special_attr(e[i].special);
		if (*sp)
			buf_adds(&attrs, attrs.len ? sp : sp + 1);
		list_line(&j->out, verb, attrs.data ? attrs.data : "", e[i].name);
	}
	if (lsub) /* subscribed names with no folder (any more) are listed too */
		for (size_t i = 0; i < nsub; i++) {
			bool found = false;
			for (size_t k = 0; k < n && !found; k++)
				found = strcmp(e[k].name, subs[i]) == 0;
			if (!found && match(pat, subs[i]))
				list_line(&j->out, verb, "\\Noselect", subs[i]);
		}
	buf_fini(&attrs);
	free_entries(e, n);
	subs_free(subs, nsub);
	free(pat);
	imapd_tagged(j, "OK", "%s completed", verb);
}

/* A mailbox argument as a store name: no trailing '/' (CREATE "a/" means
 * "a"), NULL when the store does not allow it. */
static char *
folder_arg(const char *name)
{
	char *n = xstrdup(name);
	size_t len = strlen(n);
	while (len > 1 && n[len - 1] == '/')
		n[--len] = '\0';
	char *canon = hk_store_folder_canon(n);
	free(n);
	return canon;
}

static void
do_status(struct imapd_job *j)
{
	struct imapd_session *s = j->s;
	const struct imap_cmd *c = &j->cmd;
	char *name = folder_arg(c->mailbox.name);
	if (name == NULL || !hk_store_folder_exists(s->st, name)) {
		free(name);
		imapd_tagged(j, "NO", "[NONEXISTENT] Mailbox does not exist");
		return;
	}
	struct hk_store_view v;
	if (hk_store_sync(s->st, name, NULL, &v) < 0) {
		free(name);
		imapd_tagged(j, "NO", "[UNAVAILABLE] Mailbox cannot be read now");
		return;
	}
	size_t recent = 0, unseen = 0;
	for (size_t i = 0; i < v.n; i++) {
		recent += v.v[i].in_new;
		unseen += !(v.v[i].flags & HK_STORE_SEEN);
	}
	struct hk_buf *o = &j->out;
	buf_adds(o, "* STATUS ");
	imap_write_mailbox(o, name);
	buf_adds(o, " (");
	const char *sp = "";
	if (c->status_items & IMAP_STATUS_MESSAGES) {
		buf_printf(o, "%sMESSAGES %zu", sp, v.n);
		sp = " ";
	}
	if (c->status_items & IMAP_STATUS_RECENT) {
		buf_printf(o, "%sRECENT %zu", sp, recent);
		sp = " ";
	}
	if (c->status_items & IMAP_STATUS_UIDNEXT) {
		buf_printf(o, "%sUIDNEXT %u", sp, v.uidnext);
		sp = " ";
	}
	if (c->status_items & IMAP_STATUS_UIDVALIDITY) {
		buf_printf(o, "%sUIDVALIDITY %u", sp, v.uidvalidity);
		sp = " ";
	}
	if (c->status_items & IMAP_STATUS_UNSEEN) {
		buf_printf(o, "%sUNSEEN %zu", sp, unseen);
		sp = " ";
	}
	if (c->status_items & IMAP_STATUS_HIGHESTMODSEQ) {
		buf_printf(o, "%sHIGHESTMODSEQ %llu", sp, (unsigned long long)v.highestmodseq);
		s->condstore = true;
	}
	buf_adds(o, ")\r\n");
	hk_store_view_free(&v);
	free(name);
	imapd_tagged(j, "OK", "STATUS completed");
}

static void
do_create(struct imapd_job *j)
{
	struct imapd_session *s = j->s;
	char *name = folder_arg(j->cmd.mailbox.name);
	if (name == NULL) {
		imapd_tagged(j, "NO", "[CANNOT] Invalid mailbox name");
		return;
	}
	if (strcmp(name, "INBOX") == 0 || hk_store_folder_exists(s->st, name)) {
		imapd_tagged(j, "NO", "[ALREADYEXISTS] Mailbox already exists");
	} else if (hk_store_folder_create(s->st, name) < 0) {
		log_error("imap", "%s: CREATE %s: %s", s->address, name, hk_store_error(s->st));
		imapd_tagged(j, "NO", errno == EEXIST ? "[ALREADYEXISTS] Mailbox already exists" : "[CANNOT] Mailbox cannot be created");
	} else {
		imapd_tagged(j, "OK", "CREATE completed");
	}
	free(name);
}

static void
do_delete(struct imapd_job *j)
{
	struct imapd_session *s = j->s;
	char *name = folder_arg(j->cmd.mailbox.name);
	if (name && strcmp(name, "INBOX") == 0)
		imapd_tagged(j, "NO", "[CANNOT] INBOX cannot be deleted");
	else if (name == NULL || !hk_store_folder_exists(s->st, name))
		imapd_tagged(j, "NO", "[NONEXISTENT] Mailbox does not exist");
	else if (s->folder && strcmp(s->folder, name) == 0)
		imapd_tagged(j, "NO", "[INUSE] Close the mailbox before deleting it");
	else if (hk_store_folder_delete(s->st, name) < 0)
		imapd_tagged(j, "NO", "[CANNOT] Mailbox cannot be deleted");
	else
		imapd_tagged(j, "OK", "DELETE completed");
	free(name);
}

/* RFC 3501 6.3.5: renaming INBOX moves all its messages into a new
 * folder of that name and leaves INBOX empty. Each message is appended
 * durably to the new folder (flags and INTERNALDATE kept) before the
 * originals are expunged, so a failure part way loses nothing. */
static void
rename_inbox(struct imapd_job *j, const char *to)
{
	struct imapd_session *s = j->s;
	if (hk_store_folder_create(s->st, to) < 0) {
		imapd_tagged(j, "NO", "[CANNOT] Mailbox cannot be created");
		return;
	}
	struct hk_store_view v;
	struct hk_store_keywords kwn;
	if (hk_store_sync(s->st, "INBOX", NULL, &v) < 0) {
		imapd_tagged(j, "NO", "[UNAVAILABLE] INBOX cannot be read now");
		return;
	}
	if (hk_store_keywords(s->st, "INBOX", &kwn) < 0)
		memset(&kwn, 0, sizeof(kwn));
	uint32_t *moved = xmalloc((v.n ? v.n : 1) * sizeof(*moved));
	size_t nm = 0;
	bool failed = false;
	for (size_t i = 0; i < v.n && !failed; i++) {
		const struct hk_store_uid_msg *m = &v.v[i];
		int fd = hk_store_open_message(s->st, "INBOX", m->filename);
		struct stat sb;
		if (fd < 0 || fstat(fd, &sb) < 0) {
			if (fd >= 0)
				close(fd);
			continue; /* expunged meanwhile */
		}
		const char *names[HK_STORE_KEYWORDS_MAX];
		size_t nk = 0;
		for (unsigned k = 0; k < HK_STORE_KEYWORDS_MAX; k++)
			if ((m->kw & (1u << k)) && kwn.names[k])
				names[nk++] = kwn.names[k];
		struct hk_store_deliver_opts o = { .folder = to, .flags = m->flags, .keywords = names, .nkeywords = nk,
			.received = (int64_t)sb.st_mtime };
		struct hk_store_part part = { NULL, fd, 0, (size_t)sb.st_size };
		uint32_t uv, uid;
		failed = hk_store_append(s->st, &o, &part, 1, &uv, &uid) < 0;
		close(fd);
		if (!failed)
			moved[nm++] = m->uid;
	}
	size_t gone = 0;
	if (nm && hk_store_expunge_uids(s->st, "INBOX", moved, nm, &gone) < 0)
		failed = true;
	if (nm)
		j->changed_other = xstrdup("INBOX");
	free(moved);
	hk_store_keywords_free(&kwn);
	hk_store_view_free(&v);
	if (failed)
		imapd_tagged(j, "NO", "[UNAVAILABLE] Some messages could not be moved");
	else
		imapd_tagged(j, "OK", "RENAME completed");
}

static void
do_rename(struct imapd_job *j)
{
	struct imapd_session *s = j->s;
	char *from = folder_arg(j->cmd.mailbox.name), *to = folder_arg(j->cmd.mailbox2.name);
	if (from == NULL || to == NULL)
		imapd_tagged(j, "NO", "[CANNOT] Invalid mailbox name");
	else if (strcmp(to, "INBOX") == 0 || hk_store_folder_exists(s->st, to))
		imapd_tagged(j, "NO", "[ALREADYEXISTS] Target mailbox already exists");
	else if (strcmp(from, "INBOX") == 0)
		rename_inbox(j, to);
	else if (!hk_store_folder_exists(s->st, from))
		imapd_tagged(j, "NO", "[NONEXISTENT] Mailbox does not exist");
	else if (s->folder && strcmp(s->folder, from) == 0)
		imapd_tagged(j, "NO", "[INUSE] Close the mailbox before renaming it");
	else if (hk_store_folder_rename(s->st, from, to) < 0)
		imapd_tagged(j, "NO", "[CANNOT] Mailbox cannot be renamed");
	else
		imapd_tagged(j, "OK", "RENAME completed");
	free(from);
	free(to);
}

static void
do_subscribe(struct imapd_job *j, bool add)
{
	struct imapd_session *s = j->s;
	char *name = folder_arg(j->cmd.mailbox.name);
	if (name == NULL)
		imapd_tagged(j, "NO", "[CANNOT] Invalid mailbox name");
	else if (add && !hk_store_folder_exists(s->st, name))
		imapd_tagged(j, "NO", "[NONEXISTENT] Mailbox does not exist");
	else if (subs_change(s, name, add) < 0)
		imapd_tagged(j, "NO", "[UNAVAILABLE] Subscriptions cannot be changed now");
	else
		imapd_tagged(j, "OK", "%s completed", add ? "SUBSCRIBE" : "UNSUBSCRIBE");
	free(name);
}

void
imapd_cmd_folders(struct imapd_job *j)
{
	switch (j->cmd.kind) {
	case IMAP_CMD_LIST:
		do_list(j, false);
		break;
	case IMAP_CMD_LSUB:
		do_list(j, true);
		break;
	case IMAP_CMD_STATUS:
		do_status(j);
		break;
	case IMAP_CMD_CREATE:
		do_create(j);
		break;
	case IMAP_CMD_DELETE:
		do_delete(j);
		break;
	case IMAP_CMD_RENAME:
		do_rename(j);
		break;
	case IMAP_CMD_SUBSCRIBE:
	case IMAP_CMD_UNSUBSCRIBE:
		do_subscribe(j, j->cmd.kind == IMAP_CMD_SUBSCRIBE);
		break;
	case IMAP_CMD_NAMESPACE:
		buf_adds(&j->out, "* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n");
		imapd_tagged(j, "OK", "NAMESPACE completed");
		break;
	default:
		imapd_tagged(j, "BAD", "Not a folder command");
		break;
	}
}
