/*
 * retention.c - the rules on stored mail (see retention.h): one mailbox,
 * folder after folder, message after message in base-name order; the
 * layers' programs come from the rule cache, each message's facts from
 * its file name and mtime, the message itself only when the code reads it.
 */
#include "retention.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "compose.h"
#include "core/log.h"
#include "core/rulecache.h"
#include "fields.h"
#include "message.h"
#include "program.h"
#include "store.h"
#include "vm.h"

#define CURSOR_FILE "hikyaku-retention.cursor"
#define LOCK_FILE "hikyaku-retention.lock"
#define CURSOR_MAX 1024 /* bytes: a folder name and a base name */
#define MAX_FLAG_ACTS 32 /* flags added per message; more are dropped (logged) */

struct run {
	const struct retention_ctx *c;
	const struct retention_user *u;
	const struct retention_opts *o;
	struct retention_stats *stats;
	int stage;
	struct hk_program *progs[HK_LAYER_COUNT];
	size_t nprog;
	enum hk_needs needs;
	struct hk_store *st;
	char *root;
	int64_t now;
	size_t budget;
	/* resume point (retention mode) */
	char *cur_folder, *cur_base;
	bool resuming;
};

/* One message being decided. */
struct item {
	const char *folder;
	const struct hk_store_msg *m;
	char base[300];
	int fd;
	void *map;
	size_t maplen;
	struct hk_message *msg;
	char *date, *from, *subject;
	struct hk_str *to;
	size_t nto;
	char *env_from;
};

/* --- layers ------------------------------------------------------------- */

static bool
safe_part(const char *s)
{
	return s && *s && s[0] != '.' && strchr(s, '/') == NULL;
}

static void
load_progs(struct run *r)
{
	const struct retention_ctx *c = r->c;
	struct hk_program *p = rulecache_get(c->rules, c->global_rules, HK_LAYER_OPERATOR, NULL);
	if (p)
		r->progs[r->nprog++] = p;
	if (!safe_part(r->u->domain))
		return;
	char *path = xasprintf("%s/domains/%s/domain.hk", c->state_dir, r->u->domain);
	if ((p = rulecache_get(c->rules, path, HK_LAYER_DOMAIN, NULL)))
		r->progs[r->nprog++] = p;
	free(path);
	if (r->o->mode != RETENTION_MODE_REFILTER || !safe_part(r->u->local))
		return;
	static const char *const names[] = { "settings.hk", "personal.hk" };
	static const int layers[] = { HK_LAYER_PANEL, HK_LAYER_PERSONAL };
	for (int k = 0; k < 2; k++) {
		path = xasprintf("%s/domains/%s/users/%s/%s", c->state_dir, r->u->domain, r->u->local, names[k]);
		if ((p = rulecache_get(c->rules, path, layers[k], r->u->address)))
			r->progs[r->nprog++] = p;
		free(path);
	}
}

/* --- the cursor ------------------------------------------------------------
 * "FOLDER\nBASE\n": the last message evaluated by a run that stopped at its
 * bound (BASE empty: the run stopped before the folder's first message). Written by rename (never half a file); not fsync-ed: losing it
 * only means the next run starts from the beginning again. */

static void
cursor_read(struct run *r)
{
	char *path = xasprintf("%s/%s", r->root, CURSOR_FILE);
	char *data = NULL;
	size_t len = 0;
	if (read_file(path, CURSOR_MAX, &data, &len) == 0) {
		char *nl = memchr(data, '\n', len);
		char *nl2 = nl ? memchr(nl + 1, '\n', len - (size_t)(nl + 1 - data)) : NULL;
		if (nl && nl2 && nl > data) { /* an empty base: the folder's start */
			r->cur_folder = xstrndup(data, (size_t)(nl - data));
			r->cur_base = xstrndup(nl + 1, (size_t)(nl2 - nl - 1));
			r->resuming = true;
		}
	}
	free(data);
	free(path);
}

static void
cursor_write(struct run *r, const char *folder, const char *base)
{
	char *path = xasprintf("%s/%s", r->root, CURSOR_FILE);
	char *tmp = xasprintf("%s.tmp", path);
	FILE *f = fopen(tmp, "we");
	if (f) {
		fprintf(f, "%s\n%s\n", folder, base);
		if (fclose(f) == 0 && rename(tmp, path) == 0)
			tmp[0] = '\0';
	}
	if (tmp[0]) {
		log_warnx("retention", "%s: cannot write %s: %s", r->u->address, path, strerror(errno));
		unlink(tmp);
	}
	free(tmp);
	free(path);
}

static void
cursor_clear(struct run *r)
{
	char *path = xasprintf("%s/%s", r->root, CURSOR_FILE);
	if (unlink(path) < 0 && errno != ENOENT)
		log_warnx("retention", "%s: cannot remove %s: %s", r->u->address, path, strerror(errno));
	free(path);
}

/* --- one message -------------------------------------------------------------- */

static int
cmp_base(const void *a, const void *b)
{
	struct hk_str x = hk_store_base_name(((const struct hk_store_msg *)a)->filename);
	struct hk_str y = hk_store_base_name(((const struct hk_store_msg *)b)->filename);
	size_t n = x.len < y.len ? x.len : y.len;
	int c = memcmp(x.ptr, y.ptr, n);
	return c ? c : (x.len > y.len) - (x.len < y.len);
}

/* The length of the header block (with its empty line), at most max. */
static size_t
header_len(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] != '\n')
			continue;
		if (i + 1 < n && p[i + 1] == '\n')
			return i + 2;
		if (i + 2 < n && p[i + 1] == '\r' && p[i + 2] == '\n')
			return i + 3;
	}
	return n;
}

static char *
first_value(struct hk_message *msg, const char *name)
{
	const struct hk_str *v = NULL;
	size_t n = hk_message_header(msg, name, strlen(name), &v);
	return n ? xstrndup(v[0].ptr, v[0].len > 200 ? 200 : v[0].len) : xstrdup("");
}

/* Reads and parses the message (as much as the code needs). -1 when the
 * file is gone (another session expunged it): skip it. */
static int
item_load(struct run *r, struct item *it)
{
	it->fd = hk_store_open_message(r->st, it->folder, it->m->filename);
	if (it->fd < 0)
		return errno == ENOENT ? -1 : 0; /* unreadable: the rules see no message */
	struct stat sb;
	if (fstat(it->fd, &sb) < 0 || sb.st_size <= 0 || (uint64_t)sb.st_size > RETENTION_MESSAGE_MAX)
		return 0;
	it->maplen = (size_t)sb.st_size;
	it->map = mmap(NULL, it->maplen, PROT_READ, MAP_PRIVATE, it->fd, 0);
	if (it->map == MAP_FAILED) {
		it->map = NULL;
		return 0;
	}
	size_t len = it->maplen;
	if (r->needs == HK_NEEDS_HEADER)
		len = header_len(it->map, len < RETENTION_HEADER_MAX ? len : RETENTION_HEADER_MAX);
	it->msg = hk_message_new(it->map, len, NULL);
	r->stats->parsed++;
	it->date = first_value(it->msg, "Date");
	it->subject = first_value(it->msg, "Subject");
	const struct hk_address *a = NULL;
	size_t na = hk_message_addresses(it->msg, "From", 4, &a);
	it->from = na ? xstrndup(a[0].addr.ptr, a[0].addr.len) : xstrdup("");
	/* the envelope of stored mail: Return-Path and Delivered-To, as
	 * the delivery wrote them */
	char *rp = first_value(it->msg, "Return-Path");
	char *s = rp, *e = rp + strlen(rp);
	while (*s == ' ' || *s == '<')
		s++;
	while (e > s && (e[-1] == ' ' || e[-1] == '>'))
		e--;
	it->env_from = xstrndup(s, (size_t)(e - s));
	free(rp);
	const struct hk_str *dt = NULL;
	it->nto = hk_message_header(it->msg, "Delivered-To", 12, &dt);
	if (it->nto > 100)
		it->nto = 100;
	it->to = xcalloc(it->nto + 1, sizeof(*it->to));
	for (size_t i = 0; i < it->nto; i++)
		it->to[i] = dt[i];
	return 0;
}

static void
item_fini(struct item *it)
{
	hk_message_free(&it->msg);
	if (it->map)
		munmap(it->map, it->maplen);
	if (it->fd >= 0)
		close(it->fd);
	free(it->date);
	free(it->from);
	free(it->subject);
	free(it->to);
	free(it->env_from);
}

static void
event(struct run *r, const struct item *it, enum retention_what what, const char *arg, const struct hk_action *a, int err)
{
	const char *rule = "", *layer = "";
	char rbuf[200];
	if (a && a->prog && a->rule != 0xFFFF && a->rule < a->prog->nrules) {
		const struct hk_rule_info *ri = &a->prog->rules[a->rule];
		snprintf(rbuf, sizeof(rbuf), "%.*s", (int)ri->name_len, a->prog->strpool + ri->name_off);
		rule = rbuf;
		layer = hk_layer_name(a->layer);
	}
	struct retention_event ev = {
		.folder = it->folder,
		.base = it->base,
		.received = it->m->mtime,
		.date = it->date ? it->date : "",
		.from = it->from ? it->from : "",
		.subject = it->subject ? it->subject : "",
		.what = what,
		.arg = arg ? arg : "",
		.rule = rule,
		.layer = layer,
		.dry_run = r->o->dry_run,
		.err = err,
	};
	if (r->o->report)
		r->o->report(r->o->ctx, &ev);
	if (r->o->quiet || what == RETENTION_KEEP)
		return;
	static const char *const words[] = { "keep", "expunge", "reject", "move to", "copy to", "flag", "skipped", "log" };
	log_info("retention", "%s %s %s: %s%s%s%.200s%s%s (rule \"%s\", %s)", r->u->address, it->folder, it->base,
	    r->o->dry_run ? "would " : "", words[what], *ev.arg ? " " : "", ev.arg, err ? ": " : "", err ? strerror(err) : "",
	    rule, *layer ? layer : "implicit");
}

/* The canonical name of a fileinto target; NULL when not allowed. */
static char *
target_folder(const struct hk_action *a)
{
	char tmp[HK_STORE_FOLDER_NAME_MAX + 1];
	if (a->arg[0].len == 0 || a->arg[0].len > HK_STORE_FOLDER_NAME_MAX)
		return NULL;
	memcpy(tmp, a->arg[0].ptr, a->arg[0].len);
	tmp[a->arg[0].len] = '\0';
	return hk_store_folder_canon(tmp);
}

/* Copies the message into `folder` durably (same flags, keywords and
 * date). 0 or an errno. */
static int
copy_to(struct run *r, struct item *it, const char *folder, uint32_t flags, const char *const *kw, size_t nkw)
{
	int fd = it->fd >= 0 ? it->fd : hk_store_open_message(r->st, it->folder, it->m->filename);
	if (fd < 0)
		return errno;
	struct stat sb;
	int rc = 0;
	if (fstat(fd, &sb) < 0) {
		rc = errno;
	} else {
		struct hk_store_part part = { NULL, fd, 0, (size_t)sb.st_size };
		struct hk_store_deliver_opts o = { .folder = folder, .flags = flags & ~HK_STORE_DELETED, .keywords = kw,
			.nkeywords = nkw, .received = it->m->mtime, .create_folder = true };
		if (hk_store_deliver(r->st, &o, &part, 1, NULL) < 0) {
			rc = errno ? errno : EIO;
			log_error("retention", "%s: copy to %s: %s", r->u->address, folder, hk_store_error(r->st));
		}
	}
	if (fd != it->fd)
		close(fd);
	return rc;
}

static int
expunge_item(struct run *r, struct item *it)
{
	if (hk_store_expunge(r->st, it->folder, it->m->filename) < 0) {
		int e = errno;
		log_error("retention", "%s: expunge %s/%s: %s", r->u->address, it->folder, it->base, hk_store_error(r->st));
		return e ? e : EIO;
	}
	return 0;
}

/* Carries out the final actions of one message. */
static void
apply(struct run *r, struct item *it, struct hk_final *fin, const struct hk_env *env)
{
	const struct hk_action *del = NULL, *rej = NULL, *keep = NULL;
	const struct hk_action *moves[16];
	char *move_to[16];
	size_t nmoves = 0;
	const struct hk_action *flag_acts[MAX_FLAG_ACTS];
	size_t nflags = 0;
	bool dry = r->o->dry_run;

	for (size_t k = 0; k < fin->n; k++) {
		const struct hk_action *a = &fin->acts[k];
		if (a->suppressed)
			continue;
		switch (a->kind) {
		case ACT_EXPUNGE:
		case ACT_DISCARD:
			if (!del)
				del = a;
			break;
		case ACT_REJECT:
			if (!rej)
				rej = a;
			break;
		case ACT_KEEP:
			if (!keep)
				keep = a;
			break;
		case ACT_FILEINTO: {
			char *f = target_folder(a);
			if (f == NULL)
				break;
			if (strcmp(f, it->folder) == 0 || nmoves == 16) {
				/* filed where it already is: that is a keep; past
				 * 16 targets the original is kept rather than
				 * losing the copies that were not made */
				if (!keep)
					keep = a;
				free(f);
				break;
			}
			moves[nmoves] = a;
			move_to[nmoves++] = f;
			break;
		}
		case ACT_FLAG:
			if (nflags < MAX_FLAG_ACTS)
				flag_acts[nflags++] = a;
			break;
		case ACT_LOG: {
			char *text = xstrndup(a->arg[0].ptr, a->arg[0].len);
			event(r, it, RETENTION_LOG, text, a, 0);
			free(text);
			break;
		}
		case ACT_FORWARD:
		case ACT_NOTIFY:
		case ACT_REPLY:
		case ACT_ADD_HEADER:
		case ACT_REMOVE_HEADER:
		case ACT_STRIP:
		case ACT_EXPAND: {
			struct hk_buf b;
			buf_init(&b);
			hk_action_format(a, env, &b);
			event(r, it, RETENTION_SKIPPED, b.data ? b.data : "", a, 0);
			buf_fini(&b);
			r->stats->skipped++;
			break;
		}
		default:
			break;
		}
	}

	/* the flags the message will have: system flags are bits; a keyword
	 * is a letter of the folder's keyword list, when it has one */
	enum { FL_OLD, FL_NEW, FL_UNASSIGNED };
	uint32_t flags = it->m->flags, kwbits = it->m->kw, new_kw = it->m->kw;
	struct hk_store_keywords kwn;
	memset(&kwn, 0, sizeof(kwn));
	bool have_kwn = (kwbits || nflags) && hk_store_keywords(r->st, it->folder, &kwn) == 0;
	const char *kwv[HK_STORE_KEYWORDS_MAX + MAX_FLAG_ACTS];
	size_t nkw = 0;
	for (unsigned i = 0; have_kwn && i < HK_STORE_KEYWORDS_MAX; i++)
		if ((kwbits & (1u << i)) && kwn.names[i])
			kwv[nkw++] = kwn.names[i];
	char *flagname[MAX_FLAG_ACTS];
	int flag_state[MAX_FLAG_ACTS];
	for (size_t k = 0; k < nflags; k++) {
		const struct hk_action *a = flag_acts[k];
		flagname[k] = xstrndup(a->arg[0].ptr, a->arg[0].len);
		uint32_t f = hk_store_flag_from_imap(flagname[k], strlen(flagname[k]));
		if (f) {
			flag_state[k] = flags & f ? FL_OLD : FL_NEW;
			flags |= f;
			continue;
		}
		flag_state[k] = FL_UNASSIGNED;
		for (unsigned i = 0; have_kwn && i < HK_STORE_KEYWORDS_MAX; i++)
			if (kwn.names[i] && strcasecmp(kwn.names[i], flagname[k]) == 0) {
				flag_state[k] = new_kw & (1u << i) ? FL_OLD : FL_NEW;
				new_kw |= 1u << i;
				if (!(kwbits & (1u << i)))
					kwv[nkw++] = kwn.names[i];
			}
		if (flag_state[k] == FL_UNASSIGNED)
			kwv[nkw++] = flagname[k]; /* a copy gets it assigned */
	}

	if (del || rej) {
		/* deleting wins: the plan's period is not undone by a keep */
		int err = 0;
		if (rej && !dry) {
			struct hk_store_batch *b = hk_store_batch_new(HK_STORE_SYNC_FSYNC);
			struct hk_compose_ctx cc = { { r->c->hostname, strlen(r->c->hostname) }, r->now };
			if (it->msg == NULL || hk_store_batch_add_rejected(b, r->st, it->msg, env, rej, &cc, NULL) < 0 ||
			    hk_store_batch_commit(b) < 0)
				err = errno ? errno : EIO;
			hk_store_batch_free(&b);
		}
		if (!err && !dry)
			err = expunge_item(r, it);
		event(r, it, del ? RETENTION_EXPUNGE : RETENTION_REJECT, "", del ? del : rej, err);
		if (err)
			r->stats->failed++;
		else if (del)
			r->stats->expunged++;
		else
			r->stats->rejected++;
		goto out;
	}

	bool all_copied = true;
	for (size_t k = 0; k < nmoves; k++) {
		int err = dry ? 0 : copy_to(r, it, move_to[k], flags, kwv, nkw);
		if (err)
			all_copied = false;
		event(r, it, keep ? RETENTION_COPY : RETENTION_MOVE, move_to[k], moves[k], err);
		if (err)
			r->stats->failed++;
		else if (keep)
			r->stats->copied++;
		else
			r->stats->moved++;
	}
	if (nmoves && !keep) {
		/* the copies are durable: only now does the original go */
		int err = all_copied && !dry ? expunge_item(r, it) : 0;
		if (err)
			r->stats->failed++;
		goto out;
	}
	/* it stays: add the flags */
	bool changed = flags != it->m->flags || new_kw != kwbits;
	int err = 0;
	if (changed && !dry && hk_store_set_flags(r->st, it->folder, it->m->filename, flags, new_kw, NULL) < 0) {
		err = errno ? errno : EIO;
		log_error("retention", "%s: flags of %s/%s: %s", r->u->address, it->folder, it->base, hk_store_error(r->st));
	}
	bool any = false;
	for (size_t k = 0; k < nflags; k++) {
		if (flag_state[k] == FL_OLD)
			continue;
		if (flag_state[k] == FL_UNASSIGNED) {
			/* a keyword this folder has no letter for: a stored
			 * message gets one only through a copy for now (the
			 * store has no call to assign one in place) */
			event(r, it, RETENTION_SKIPPED, flagname[k], flag_acts[k], 0);
			r->stats->skipped++;
			continue;
		}
		event(r, it, RETENTION_FLAG, flagname[k], flag_acts[k], err);
		any = true;
	}
	if (any) {
		if (err)
			r->stats->failed++;
		else
			r->stats->flagged++;
	}
	if (!any && r->o->report_keep)
		event(r, it, RETENTION_KEEP, "", keep, 0);
out:
	for (size_t k = 0; k < nmoves; k++)
		free(move_to[k]);
	for (size_t k = 0; k < nflags; k++)
		free(flagname[k]);
	if (have_kwn)
		hk_store_keywords_free(&kwn);
}

static void
evaluate(struct run *r, const char *folder, const struct hk_store_msg *m)
{
	struct item it;
	memset(&it, 0, sizeof(it));
	it.fd = -1;
	it.folder = folder;
	it.m = m;
	struct hk_str b = hk_store_base_name(m->filename);
	snprintf(it.base, sizeof(it.base), "%.*s", (int)b.len, b.ptr);
	if (r->needs != HK_NEEDS_NONE && item_load(r, &it) < 0) {
		item_fini(&it);
		return;
	}
	r->stats->evaluated++;
	struct hk_env env;
	hk_env_init(&env);
	env.stage = r->stage;
	env.now = r->now;
	env.recipient = (struct hk_str){ r->u->address, strlen(r->u->address) };
	env.plan_name = (struct hk_str){ r->u->limits.plan, strlen(r->u->limits.plan) };
	env.plan_retention = r->u->limits.retention;
	env.plan_max_size = r->u->limits.max_message_size;
	env.plan_quota = r->u->limits.quota;
	env.age = m->mtime > 0 && m->mtime < r->now ? r->now - m->mtime : 0;
	env.seen = (m->flags & HK_STORE_SEEN) != 0;
	env.flagged = (m->flags & HK_STORE_FLAGGED) != 0;
	env.folder = (struct hk_str){ folder, strlen(folder) };
	if (it.env_from)
		env.env_from = (struct hk_str){ it.env_from, strlen(it.env_from) };
	env.env_to = it.to;
	env.n_env_to = it.nto;

	struct hk_result res;
	hk_result_init(&res);
	hk_vm_run_layers(r->progs, r->nprog, r->stage, it.msg, &env, &res, NULL);
	if (res.error)
		log_warnx("retention", "%s %s %s: %s", r->u->address, folder, it.base, res.error);
	struct hk_final fin;
	hk_result_finalize(&res, it.msg, &env, NULL, &fin);
	apply(r, &it, &fin, &env);
	hk_result_fini(&res);
	item_fini(&it);
}

/* One folder; false when the bound was reached (the cursor is written). */
static bool
run_folder(struct run *r, const char *folder)
{
	struct hk_store_msg_list l;
	if (hk_store_scan(r->st, folder, HK_STORE_SCAN_STAT, &l) < 0) {
		if (errno != ENOENT)
			log_warnx("retention", "%s: %s", r->u->address, hk_store_error(r->st));
		return true;
	}
	r->stats->folders++;
	r->stats->messages += l.n;
	if (l.n > 1)
		qsort(l.v, l.n, sizeof(*l.v), cmp_base);
	size_t i = 0;
	if (r->resuming && r->cur_base) {
		/* skip what the last run already did */
		struct hk_str cb = { r->cur_base, strlen(r->cur_base) };
		while (i < l.n) {
			struct hk_str x = hk_store_base_name(l.v[i].filename);
			size_t n = x.len < cb.len ? x.len : cb.len;
			int c = memcmp(x.ptr, cb.ptr, n);
			if (c > 0 || (c == 0 && x.len > cb.len))
				break;
			i++;
		}
		r->resuming = false;
	}
	bool done = true;
	for (; i < l.n; i++) {
		if (r->budget == 0) {
			done = false;
			if (r->o->mode == RETENTION_MODE_RETENTION && !r->o->dry_run) {
				struct hk_str x = i > 0 ? hk_store_base_name(l.v[i - 1].filename) : HK_STR("");
				char *base = xstrndup(x.ptr, x.len);
				cursor_write(r, folder, base);
				free(base);
			}
			break;
		}
		r->budget--;
		evaluate(r, folder, &l.v[i]);
	}
	hk_store_msg_list_free(&l);
	return done;
}

int
retention_run_user(const struct retention_ctx *c, const struct retention_user *u, const struct retention_opts *o,
    struct retention_stats *stats, char *err, size_t errlen)
{
	memset(stats, 0, sizeof(*stats));
	struct run r;
	memset(&r, 0, sizeof(r));
	r.c = c;
	r.u = u;
	r.o = o;
	r.stats = stats;
	r.stage = o->mode == RETENTION_MODE_REFILTER ? STAGE_DELIVER : STAGE_RETENTION;
	int lock_fd = -1;
	r.now = o->now ? o->now : (int64_t)time(NULL);
	r.budget = o->max_messages                        ? o->max_messages
	    : o->mode == RETENTION_MODE_REFILTER ? SIZE_MAX
	    : c->max_messages                    ? c->max_messages
	                                         : RETENTION_MAX_PER_RUN;
	int rc = 0;

	load_progs(&r);
	bool any = false;
	for (size_t i = 0; i < r.nprog; i++) {
		if (r.progs[i]->entry[r.stage] == HK_NO_ENTRY)
			continue;
		any = true;
		enum hk_needs n = hk_program_stage_needs(r.progs[i], r.stage);
		if (n > r.needs)
			r.needs = n;
	}
	/* refilter prints date, from and subject */
	if (o->mode == RETENTION_MODE_REFILTER && r.needs < HK_NEEDS_HEADER)
		r.needs = HK_NEEDS_HEADER;
	if (!any && o->mode == RETENTION_MODE_RETENTION) {
		stats->no_rules = true;
		goto out;
	}
	r.root = hk_store_user_root(c->state_dir, u->domain, u->local);
	if (r.root == NULL) {
		snprintf(err, errlen, "%s: no mailbox path", u->address);
		rc = -1;
		goto out;
	}
	struct hk_store_settings set = { .quota = { .bytes = u->limits.quota > 0 ? (uint64_t)u->limits.quota : 0 } };
	if (hk_store_open(r.root, &set, &r.st) < 0) {
		if (errno == ENOENT && o->mode == RETENTION_MODE_RETENTION)
			goto out; /* never received mail: nothing to keep or expunge */
		snprintf(err, errlen, "%s: cannot open the mailbox: %s", u->address, strerror(errno));
		rc = -1;
		goto out;
	}
	/* one run per mailbox at a time (the sweep, a login, the CLI): two
	 * runs moving the same message would leave two copies. A run that
	 * finds the lock taken leaves the work to the one holding it. */
	if (!o->dry_run) {
		char *lp = xasprintf("%s/%s", r.root, LOCK_FILE);
		lock_fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		free(lp);
		if (lock_fd < 0 || flock(lock_fd, LOCK_EX | LOCK_NB) < 0) {
			if (lock_fd >= 0 && errno == EWOULDBLOCK) {
				stats->busy = true;
				goto out;
			}
			snprintf(err, errlen, "%s: cannot lock the mailbox: %s", u->address, strerror(errno));
			rc = -1;
			goto out;
		}
	}
	if (o->mode == RETENTION_MODE_REFILTER) {
		char *f = hk_store_folder_canon(o->folder ? o->folder : "INBOX");
		if (f == NULL || !hk_store_folder_exists(r.st, f)) {
			snprintf(err, errlen, "%s: no folder '%.100s'", u->address, o->folder ? o->folder : "INBOX");
			free(f);
			rc = -1;
			goto out;
		}
		if (!any)
			stats->no_rules = true;
		else
			run_folder(&r, f);
		free(f);
		goto out;
	}
	struct hk_store_folder_list fl;
	if (hk_store_folder_list(r.st, &fl) < 0) {
		snprintf(err, errlen, "%s: %s", u->address, hk_store_error(r.st));
		rc = -1;
		goto out;
	}
	cursor_read(&r);
	bool found = false;
	for (size_t i = 0; r.resuming && i < fl.n; i++)
		found |= strcmp(fl.v[i].name, r.cur_folder) == 0;
	if (!found)
		r.resuming = false; /* its folder is gone: start over */
	bool done = true;
	for (size_t i = 0; i < fl.n && done; i++) {
		if (o->folder && strcmp(fl.v[i].name, o->folder) != 0)
			continue;
		if (r.resuming && strcmp(fl.v[i].name, r.cur_folder) != 0)
			continue;
		done = run_folder(&r, fl.v[i].name);
	}
	stats->incomplete = !done;
	if (done && r.cur_folder && !o->dry_run)
		cursor_clear(&r);
	hk_store_folder_list_free(&fl);
out:
	if (lock_fd >= 0)
		close(lock_fd); /* releases the flock */
	hk_store_close(&r.st);
	free(r.root);
	free(r.cur_folder);
	free(r.cur_base);
	for (size_t i = 0; i < r.nprog; i++)
		hk_program_unref(&r.progs[i]);
	return rc;
}

void
retention_run_login(const struct retention_ctx *c, struct hk_accounts *a, const char *address)
{
	struct hk_user *user = xmalloc(sizeof(*user));
	struct retention_user ru;
	memset(&ru, 0, sizeof(ru));
	if (hk_accounts_user_get(a, address, user) != HK_ACCT_OK || hk_accounts_limits(a, user, &ru.limits) != HK_ACCT_OK) {
		free(user);
		return;
	}
	ru.address = user->address;
	ru.domain = user->domain;
	ru.local = user->local;
	struct retention_opts o = { .mode = RETENTION_MODE_RETENTION };
	struct retention_stats s;
	char err[300];
	if (retention_run_user(c, &ru, &o, &s, err, sizeof(err)) < 0)
		log_warnx("retention", "%s", err);
	else if (s.expunged || s.moved || s.copied || s.flagged || s.failed || s.incomplete)
		log_info("retention", "%s at login: %zu messages evaluated, %zu expunged, %zu moved, %zu flagged, %zu failed%s",
		    user->address, s.evaluated, s.expunged, s.moved + s.copied, s.flagged, s.failed,
		    s.incomplete ? "; the rest at the next run" : "");
	free(user);
}
