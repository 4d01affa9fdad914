/*
 * test_retention.c - the rules on stored mail (servers/core/retention.c)
 * and what a program reads (runtime/program_needs.c), on a real Maildir++
 * mailbox in a temporary state directory: messages delivered through the
 * store, aged with utimensat, and rule files written from source strings
 * and compiled by the servers' rule cache. Covers expunge by age, the
 * stock per-plan rule (strict plans delete flagged mail), fileinto as a
 * durable move keeping flags and date, flag, the folder/seen/flagged facts,
 * envelope.from from Return-Path, dry runs that change nothing, the bound
 * per run and its resume cursor, lazy message reads, and refilter's
 * idempotence, skipped sends, discard and reject.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "compile.h"
#include "core/retention.h"
#include "core/rulecache.h"
#include "diag.h"
#include "program.h"
#include "store.h"

#define DAY 86400

struct fx {
	char dir[256];
	char state[300], root[400], cache[320], global[340], domain_hk[400], personal[400];
	struct hk_store *st;
	struct retention_ctx ctx;
	struct retention_user user;
	int64_t now;
	/* events seen by the report callback */
	unsigned n_ev[RETENTION_LOG + 1];
	unsigned n_dry;
	char last_rule[200], last_arg[300];
};

static int
rm_cb(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(path);
}

static void
write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static void
mkdir_p(const char *path)
{
	char tmp[512];
	snprintf(tmp, sizeof tmp, "%s", path);
	for (char *p = tmp + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			mkdir(tmp, 0700);
			*p = '/';
		}
	mkdir(tmp, 0700);
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	const char *t = getenv("TMPDIR");
	snprintf(f->dir, sizeof f->dir, "%s/hk-retention.XXXXXX", t && *t ? t : "/tmp");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->state, sizeof f->state, "%s/var", f->dir);
	snprintf(f->cache, sizeof f->cache, "%s/cache", f->state);
	snprintf(f->global, sizeof f->global, "%s/rules/global.hk", f->state);
	snprintf(f->domain_hk, sizeof f->domain_hk, "%s/domains/ex.test/domain.hk", f->state);
	snprintf(f->personal, sizeof f->personal, "%s/domains/ex.test/users/taro/personal.hk", f->state);
	snprintf(f->root, sizeof f->root, "%s/domains/ex.test/users/taro/Maildir", f->state);
	mkdir_p(f->cache);
	char rules[340];
	snprintf(rules, sizeof rules, "%s/rules", f->state);
	mkdir_p(rules);
	mkdir_p(f->root);
	struct hk_store_settings set = { .create = true };
	if (hk_store_open(f->root, &set, &f->st) != 0)
		return -1;
	f->ctx.state_dir = f->state;
	f->ctx.global_rules = f->global;
	f->ctx.hostname = "mx.test.example";
	f->ctx.rules = rulecache_new(f->cache, "stdlib");
	f->user.address = "taro@ex.test";
	f->user.domain = "ex.test";
	f->user.local = "taro";
	snprintf(f->user.limits.plan, sizeof f->user.limits.plan, "standard");
	f->user.limits.retention = 365 * DAY;
	f->now = (int64_t)time(NULL);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	hk_store_close(&f->st);
	rulecache_free(&f->ctx.rules);
	nftw(f->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* Delivers a message into folder with flags, then sets its mtime to
 * `age` seconds ago with utimensat (what os.utime does in the e2e test). */
static void
put(struct fx *f, const char *folder, const char *subject, uint32_t flags, int64_t age)
{
	char msg[600];
	snprintf(msg, sizeof msg,
	    "Return-Path: <sender@b.example>\r\nDelivered-To: taro@ex.test\r\nFrom: Sender <sender@b.example>\r\n"
	    "To: taro@ex.test\r\nSubject: %s\r\nDate: Mon, 1 Dec 2025 10:00:00 +0000\r\n\r\nHello.\r\n",
	    subject);
	struct hk_store_part p = { msg, -1, 0, strlen(msg) };
	struct hk_store_deliver_opts o = { .folder = folder, .flags = flags, .create_folder = true };
	char *name = NULL;
	assert_int_equal(hk_store_deliver(f->st, &o, &p, 1, &name), 0);
	char path[800];
	if (folder == NULL || strcmp(folder, "INBOX") == 0)
		snprintf(path, sizeof path, "%s/%s", f->root, name);
	else
		snprintf(path, sizeof path, "%s/.%s/%s", f->root, folder, name); /* ASCII names without '/' */
	struct timespec ts[2] = { { (time_t)(f->now - age), 0 }, { (time_t)(f->now - age), 0 } };
	assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
	free(name);
}

static size_t
count(struct fx *f, const char *folder)
{
	struct hk_store_msg_list l;
	if (hk_store_scan(f->st, folder, 0, &l) < 0)
		return 0;
	size_t n = l.n;
	hk_store_msg_list_free(&l);
	return n;
}

/* How many messages of folder have all of flags. */
static size_t
count_flagged(struct fx *f, const char *folder, uint32_t flags)
{
	struct hk_store_msg_list l;
	if (hk_store_scan(f->st, folder, 0, &l) < 0)
		return 0;
	size_t n = 0;
	for (size_t i = 0; i < l.n; i++)
		n += (l.v[i].flags & flags) == flags;
	hk_store_msg_list_free(&l);
	return n;
}

static void
on_event(void *ctx, const struct retention_event *ev)
{
	struct fx *f = ctx;
	f->n_ev[ev->what]++;
	f->n_dry += ev->dry_run;
	snprintf(f->last_rule, sizeof f->last_rule, "%s", ev->rule);
	snprintf(f->last_arg, sizeof f->last_arg, "%s", ev->arg);
	assert_int_equal(ev->err, 0);
}

static void
run(struct fx *f, enum retention_mode mode, bool dry, size_t max, struct retention_stats *s)
{
	memset(f->n_ev, 0, sizeof f->n_ev);
	f->n_dry = 0;
	struct retention_opts o = { .mode = mode, .dry_run = dry, .max_messages = max, .now = f->now, .report = on_event,
		.ctx = f, .quiet = true };
	char err[300] = "";
	assert_int_equal(retention_run_user(&f->ctx, &f->user, &o, s, err, sizeof err), 0);
}

static bool
exists(const char *path)
{
	struct stat sb;
	return stat(path, &sb) == 0;
}

/* --- retention ------------------------------------------------------------------ */

static void
test_retention_expunge_by_age(void **state)
{
	struct fx *f = *state;
	write_text(f->global, "on retention {\n    rule \"old\" when age > 30 days {\n        expunge\n    }\n}\n");
	put(f, NULL, "young", 0, 10 * DAY);
	put(f, NULL, "old", 0, 40 * DAY);
	put(f, "Work", "old at work", 0, 31 * DAY);
	struct retention_stats s;
	run(f, RETENTION_MODE_RETENTION, false, 0, &s);
	assert_int_equal(s.evaluated, 3);
	assert_int_equal(s.expunged, 2);
	assert_int_equal(s.failed, 0);
	assert_false(s.incomplete);
	assert_int_equal(f->n_ev[RETENTION_EXPUNGE], 2);
	assert_string_equal(f->last_rule, "old");
	assert_int_equal(count(f, "INBOX"), 1);
	assert_int_equal(count(f, "Work"), 0);
	/* an age-only program never reads a message */
	assert_int_equal(s.parsed, 0);
}

/* The stock rule (stdlib/retention.hk): entry and light delete after the
 * plan's period even when flagged; other plans keep flagged mail. */
static void
test_retention_stock_rule_strict_plans(void **state)
{
	struct fx *f = *state;
	write_text(f->global, "import \"retention\"\n");
	f->user.limits.retention = 90 * DAY;
	put(f, NULL, "old flagged", HK_STORE_FLAGGED, 120 * DAY);
	put(f, NULL, "old", 0, 120 * DAY);
	put(f, NULL, "recent flagged", HK_STORE_FLAGGED, 30 * DAY);
	struct retention_stats s;
	run(f, RETENTION_MODE_RETENTION, false, 0, &s); /* standard */
	assert_int_equal(s.expunged, 1);
	assert_int_equal(count(f, "INBOX"), 2);
	assert_int_equal(count_flagged(f, "INBOX", HK_STORE_FLAGGED), 2);
	snprintf(f->user.limits.plan, sizeof f->user.limits.plan, "light");
	run(f, RETENTION_MODE_RETENTION, false, 0, &s);
	assert_int_equal(s.expunged, 1);
	assert_int_equal(count(f, "INBOX"), 1); /* only the recent one */
	/* a plan that keeps mail forever */
	f->user.limits.retention = 0;
	put(f, NULL, "ancient", 0, 3000 * DAY);
	run(f, RETENTION_MODE_RETENTION, false, 0, &s);
	assert_int_equal(s.expunged, 0);
}

/* fileinto moves: the copy is in the target with the same flags and
 * date, the original is gone. seen/folder facts pick which. */
static void
test_retention_fileinto_moves(void **state)
{
	struct fx *f = *state;
	write_text(f->global, "on retention {\n    rule \"archive read\" when folder is \"INBOX\" and seen and age > 14 days {\n"
	                      "        fileinto \"Archive/Old\"\n    }\n}\n");
	put(f, NULL, "read old", HK_STORE_SEEN | HK_STORE_ANSWERED, 20 * DAY);
	put(f, NULL, "unread old", 0, 20 * DAY);
	put(f, NULL, "read new", HK_STORE_SEEN, 2 * DAY);
	put(f, "Work", "read old elsewhere", HK_STORE_SEEN, 20 * DAY);
	struct retention_stats s;
	run(f, RETENTION_MODE_RETENTION, false, 0, &s);
	assert_int_equal(s.moved, 1);
	assert_int_equal(f->n_ev[RETENTION_MOVE], 1);
	assert_string_equal(f->last_arg, "Archive/Old");
	assert_int_equal(count(f, "INBOX"), 2);
	assert_int_equal(count(f, "Work"), 1);
	struct hk_store_msg_list l;
	assert_int_equal(hk_store_scan(f->st, "Archive/Old", HK_STORE_SCAN_STAT, &l), 0);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.v[0].flags, HK_STORE_SEEN | HK_STORE_ANSWERED);
	assert_true(l.v[0].mtime >= f->now - 20 * DAY - 1 && l.v[0].mtime <= f->now - 20 * DAY + 1);
	hk_store_msg_list_free(&l);
	/* moved once: the next run finds nothing more to do in INBOX, and
	 * the copy in Archive/Old does not match (folder is not INBOX) */
	run(f, RETENTION_MODE_RETENTION, false, 0, &s);
	assert_int_equal(s.moved, 0);
	assert_int_equal(count(f, "Archive/Old"), 1);
}

static void
test_retention_flag_and_flagged_fact(void **state)
{
	struct fx *f = *state;
	write_text(f->global, "on retention {\n    rule \"mark old\" when age > 7 days and not flagged {\n"
	                      "        flag \"\\\\Flagged\"\n    }\n}\n");
	put(f, NULL, "old", HK_STORE_SEEN, 8 * DAY);
	put(f, NULL, "new", 0, 1 * DAY);
	struct retention_stats s;
	run(f, RETENTION_MODE_RETENTION, false, 0, &s);
	assert_int_equal(s.flagged, 1);
	assert_int_equal(f->n_ev[RETENTION_FLAG], 1);
	assert_string_equal(f->last_arg, "\\Flagged");
	assert_int_equal(count_flagged(f, "INBOX", HK_STORE_FLAGGED | HK_STORE_SEEN), 1);
	assert_int_equal(count(f, "INBOX"), 2);
	/* flagged now, so the rule does not match again */
	run(f, RETENTION_MODE_RETENTION, false, 0, &s);
	assert_int_equal(s.flagged, 0);
	assert_int_equal(f->n_ev[RETENTION_FLAG], 0);
}

/* The domain's rules run after the operator's; `folder` sees the folder. */
static void
test_retention_domain_layer_folder_fact(void **state)
{
	struct fx *f = *state;
	char dir[400];
	snprintf(dir, sizeof dir, "%s/domains/ex.test", f->state);
	mkdir_p(dir);
	write_text(f->domain_hk, "on retention {\n    rule \"trash\" when folder is \"Trash\" and age > 3 days {\n"
	                         "        expunge\n    }\n}\n");
	put(f, "Trash", "deleted long ago", HK_STORE_SEEN, 4 * DAY);
	put(f, "Trash", "deleted today", HK_STORE_SEEN, 0);
	put(f, NULL, "old in inbox", 0, 400 * DAY);
	struct retention_stats s;
	run(f, RETENTION_MODE_RETENTION, false, 0, &s);
	assert_int_equal(s.expunged, 1);
	assert_int_equal(count(f, "Trash"), 1);
	assert_int_equal(count(f, "INBOX"), 1);
}

/* envelope.from of stored mail is its Return-Path; reading it parses the
 * header block only. */
static void
test_retention_envelope_from_return_path(void **state)
{
	struct fx *f = *state;
	write_text(f->global, "on retention {\n    rule \"from b\" when envelope.from is \"sender@b.example\" and age > 1 day {\n"
	                      "        expunge\n    }\n}\n");
	put(f, NULL, "one", 0, 2 * DAY);
	put(f, NULL, "two", 0, 0);
	struct retention_stats s;
	run(f, RETENTION_MODE_RETENTION, false, 0, &s);
	assert_int_equal(s.expunged, 1);
	assert_int_equal(s.parsed, 2);
}

static void
test_retention_dry_run_changes_nothing(void **state)
{
	struct fx *f = *state;
	write_text(f->global, "on retention {\n    rule \"all\" when subject contains \"a\" {\n        expunge\n    }\n"
	                      "    rule \"move\" { fileinto \"Elsewhere\" flag \"\\\\Seen\" }\n}\n");
	put(f, NULL, "alpha", 0, 1);
	put(f, NULL, "zzz", 0, 1);
	put(f, NULL, "beta", 0, 1);
	struct retention_stats s;
	run(f, RETENTION_MODE_RETENTION, true, 1, &s); /* dry and bounded */
	assert_int_equal(s.evaluated, 1);
	run(f, RETENTION_MODE_RETENTION, true, 0, &s);
	assert_int_equal(s.expunged, 2);
	assert_int_equal(s.moved, 1);
	assert_int_equal(f->n_ev[RETENTION_EXPUNGE], 2);
	assert_int_equal(f->n_ev[RETENTION_MOVE], 1);
	assert_int_equal(f->n_dry, 3);
	assert_int_equal(count(f, "INBOX"), 3);
	assert_int_equal(count_flagged(f, "INBOX", HK_STORE_SEEN), 0);
	assert_false(hk_store_folder_exists(f->st, "Elsewhere"));
	char cursor[500];
	snprintf(cursor, sizeof cursor, "%s/hikyaku-retention.cursor", f->root);
	assert_false(exists(cursor));
}

/* A run evaluates at most max messages and leaves a cursor; the next run
 * goes on after it, across folders, and the last one removes it. */
static void
test_retention_bounded_work_resumes(void **state)
{
	struct fx *f = *state;
	write_text(f->global, "on retention {\n    rule \"read\" when not seen { flag \"\\\\Seen\" }\n}\n");
	for (int i = 0; i < 4; i++)
		put(f, NULL, "inbox", 0, DAY);
	put(f, "Work", "work", 0, DAY);
	char cursor[500];
	snprintf(cursor, sizeof cursor, "%s/hikyaku-retention.cursor", f->root);
	struct retention_stats s;
	run(f, RETENTION_MODE_RETENTION, false, 2, &s);
	assert_int_equal(s.evaluated, 2);
	assert_int_equal(s.flagged, 2);
	assert_true(s.incomplete);
	assert_true(exists(cursor));
	run(f, RETENTION_MODE_RETENTION, false, 2, &s);
	assert_int_equal(s.evaluated, 2); /* the next two, not the first again */
	assert_int_equal(s.flagged, 2);
	assert_true(s.incomplete);
	assert_int_equal(count_flagged(f, "INBOX", HK_STORE_SEEN), 4);
	assert_int_equal(count_flagged(f, "Work", HK_STORE_SEEN), 0);
	run(f, RETENTION_MODE_RETENTION, false, 2, &s);
	assert_int_equal(s.evaluated, 1);
	assert_int_equal(s.flagged, 1);
	assert_false(s.incomplete);
	assert_false(exists(cursor));
	assert_int_equal(count_flagged(f, "Work", HK_STORE_SEEN), 1);
	/* complete again: a new run starts from the beginning */
	run(f, RETENTION_MODE_RETENTION, false, 0, &s);
	assert_int_equal(s.evaluated, 5);
	assert_int_equal(s.flagged, 0);
}

static void
test_retention_no_rules_lists_nothing(void **state)
{
	struct fx *f = *state;
	put(f, NULL, "x", 0, 1000 * DAY);
	struct retention_stats s;
	run(f, RETENTION_MODE_RETENTION, false, 0, &s); /* no global.hk at all */
	assert_true(s.no_rules);
	assert_int_equal(s.messages, 0);
	/* rules without a retention stage: the same */
	write_text(f->global, "on deliver {\n    rule \"k\" { keep }\n}\n");
	run(f, RETENTION_MODE_RETENTION, false, 0, &s);
	assert_true(s.no_rules);
	assert_int_equal(s.messages, 0);
	assert_int_equal(count(f, "INBOX"), 1);
}

/* Two runs never work on one mailbox at once: the second does nothing
 * and says the mailbox is busy; a dry run needs no lock. */
static void
test_retention_one_run_per_mailbox(void **state)
{
	struct fx *f = *state;
	write_text(f->global, "on retention {\n    rule \"x\" { expunge }\n}\n");
	put(f, NULL, "a", 0, 0);
	char lp[500];
	snprintf(lp, sizeof lp, "%s/hikyaku-retention.lock", f->root);
	int fd = open(lp, O_RDWR | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(flock(fd, LOCK_EX), 0); /* a run in another process */
	struct retention_stats s;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* flock belongs to the open file: a child with its own open
		 * file description sees the lock like another process would */
		struct retention_opts o = { .mode = RETENTION_MODE_RETENTION, .now = f->now, .quiet = true };
		char err[300];
		int rc = retention_run_user(&f->ctx, &f->user, &o, &s, err, sizeof err);
		_exit(rc == 0 && s.busy && s.expunged == 0 ? 0 : 1);
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(count(f, "INBOX"), 1);
	run(f, RETENTION_MODE_RETENTION, true, 0, &s); /* a dry run does not wait for it */
	assert_false(s.busy);
	assert_int_equal(s.expunged, 1);
	close(fd);
	run(f, RETENTION_MODE_RETENTION, false, 0, &s);
	assert_false(s.busy);
	assert_int_equal(s.expunged, 1);
	assert_int_equal(count(f, "INBOX"), 0);
}

static void
test_retention_missing_mailbox_is_nothing(void **state)
{
	struct fx *f = *state;
	write_text(f->global, "on retention {\n    rule \"x\" { expunge }\n}\n");
	f->user.local = "nobody";
	struct retention_stats s;
	run(f, RETENTION_MODE_RETENTION, false, 0, &s);
	assert_int_equal(s.messages, 0);
}

/* --- what a program reads ---------------------------------------------------------- */

static struct hk_program *
compile_text(const char *src, enum hk_layer layer)
{
	struct diag d;
	diag_init(&d);
	struct hk_compile_opts o = { .layer = layer, .stdlib_dir = "stdlib" };
	struct hk_unit *u = hk_unit_load_text("t.hk", src, strlen(src), &o, &d);
	struct hk_program *p = u && d.errors == 0 ? hk_unit_codegen(u) : NULL;
	if (p == NULL)
		diag_print(&d, stdout, false);
	hk_unit_free(&u);
	diag_fini(&d);
	assert_non_null(p);
	return p;
}

static void
test_program_stage_needs(void **state)
{
	(void)state;
	static const struct {
		const char *src;
		enum hk_needs retention, deliver;
	} cases[] = {
		{ "import \"retention\"\n", HK_NEEDS_NONE, HK_NEEDS_NONE },
		{ "on retention {\n rule \"a\" when age > 1 day and seen { expunge }\n}\n", HK_NEEDS_NONE, HK_NEEDS_NONE },
		{ "on retention {\n rule \"a\" when age > 1 day or subject contains \"x\" { expunge }\n}\n", HK_NEEDS_HEADER,
		    HK_NEEDS_NONE },
		{ "on retention {\n rule \"a\" when has header \"List-Id\" { expunge }\n}\n", HK_NEEDS_HEADER, HK_NEEDS_NONE },
		{ "on retention {\n rule \"a\" { log \"${from}\" }\n}\n", HK_NEEDS_HEADER, HK_NEEDS_NONE },
		{ "on retention {\n rule \"a\" when size > 1M { expunge }\n}\n", HK_NEEDS_BODY, HK_NEEDS_NONE },
		{ "on retention {\n rule \"a\" when has attachment { expunge }\n}\n", HK_NEEDS_BODY, HK_NEEDS_NONE },
		{ "on deliver {\n rule \"a\" when body contains \"x\" { discard }\n}\non retention {\n rule \"b\" { keep }\n}\n",
		    HK_NEEDS_NONE, HK_NEEDS_BODY },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct hk_program *p = compile_text(cases[i].src, HK_LAYER_OPERATOR);
		assert_int_equal(hk_program_stage_needs(p, STAGE_RETENTION), cases[i].retention);
		assert_int_equal(hk_program_stage_needs(p, STAGE_DELIVER), cases[i].deliver);
		assert_int_equal(hk_program_stage_needs(p, STAGE_CONNECT), HK_NEEDS_NONE);
		hk_program_unref(&p);
	}
}

/* A subject rule reads each message's header block; a size rule reads
 * the whole file. */
static void
test_retention_reads_message_when_needed(void **state)
{
	struct fx *f = *state;
	write_text(f->global, "on retention {\n    rule \"ads\" when subject starts with \"[AD]\" { expunge }\n}\n");
	put(f, NULL, "[AD] cheap", 0, 0);
	put(f, NULL, "hello", 0, 0);
	struct retention_stats s;
	run(f, RETENTION_MODE_RETENTION, false, 0, &s);
	assert_int_equal(s.parsed, 2);
	assert_int_equal(s.expunged, 1);
	write_text(f->global, "on retention {\n    rule \"big\" when size > 100 { expunge }\n}\n");
	run(f, RETENTION_MODE_RETENTION, false, 0, &s);
	assert_int_equal(s.parsed, 1);
	assert_int_equal(s.expunged, 1); /* every test message is larger than 100 bytes */
}

/* --- refilter ----------------------------------------------------------------------- */

static void
test_refilter_moves_once_and_never_sends(void **state)
{
	struct fx *f = *state;
	char dir[400];
	snprintf(dir, sizeof dir, "%s/domains/ex.test/users/taro", f->state);
	mkdir_p(dir);
	write_text(f->personal, "on deliver {\n"
	                        "    rule \"lists\" when subject contains \"[list]\" { fileinto \"Lists\" }\n"
	                        "    rule \"spam\" when subject contains \"spam\" { discard }\n"
	                        "    rule \"nope\" when subject contains \"nope\" { reject \"not wanted\" }\n"
	                        "    rule \"phone\" when subject contains \"urgent\" { forward \"taro.mobile@phone.example\" }\n"
	                        "}\n");
	put(f, NULL, "[list] news", 0, DAY);
	put(f, NULL, "buy spam", 0, DAY);
	put(f, NULL, "nope nope", 0, DAY);
	put(f, NULL, "urgent: call me", 0, DAY);
	put(f, NULL, "plain", 0, DAY);
	struct retention_stats s;
	run(f, RETENTION_MODE_REFILTER, true, 0, &s);
	assert_int_equal(f->n_ev[RETENTION_MOVE], 1);
	assert_int_equal(f->n_ev[RETENTION_EXPUNGE], 1);
	assert_int_equal(f->n_ev[RETENTION_REJECT], 1);
	assert_int_equal(f->n_ev[RETENTION_SKIPPED], 1);
	assert_int_equal(count(f, "INBOX"), 5);
	run(f, RETENTION_MODE_REFILTER, false, 0, &s);
	assert_int_equal(s.moved, 1);
	assert_int_equal(s.expunged, 1);
	assert_int_equal(s.rejected, 1);
	assert_int_equal(s.skipped, 1);
	assert_string_equal(f->last_rule, "phone");
	assert_non_null(strstr(f->last_arg, "forward"));
	assert_int_equal(count(f, "INBOX"), 2); /* urgent (forward keeps) and plain */
	assert_int_equal(count(f, "Lists"), 1);
	assert_int_equal(count(f, "Rejected"), 1);
	/* the forward went nowhere: no queue directory was even made */
	char q[400];
	snprintf(q, sizeof q, "%s/queue", f->state);
	assert_false(exists(q));
	/* twice: nothing moves again */
	run(f, RETENTION_MODE_REFILTER, false, 0, &s);
	assert_int_equal(s.moved, 0);
	assert_int_equal(s.expunged, 0);
	assert_int_equal(count(f, "Lists"), 1);
	/* another folder, by name */
	struct retention_opts o = { .mode = RETENTION_MODE_REFILTER, .folder = "Lists", .now = f->now, .quiet = true };
	char err[300] = "";
	assert_int_equal(retention_run_user(&f->ctx, &f->user, &o, &s, err, sizeof err), 0);
	assert_int_equal(s.evaluated, 1);
	assert_int_equal(s.moved, 0); /* filed where it already is: kept */
	o.folder = "NoSuchFolder";
	assert_int_equal(retention_run_user(&f->ctx, &f->user, &o, &s, err, sizeof err), -1);
	assert_non_null(strstr(err, "no folder 'NoSuchFolder'"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_retention_expunge_by_age, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retention_stock_rule_strict_plans, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retention_fileinto_moves, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retention_flag_and_flagged_fact, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retention_domain_layer_folder_fact, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retention_envelope_from_return_path, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retention_dry_run_changes_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retention_bounded_work_resumes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retention_no_rules_lists_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retention_one_run_per_mailbox, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retention_missing_mailbox_is_nothing, setup, teardown),
		cmocka_unit_test(test_program_stage_needs),
		cmocka_unit_test_setup_teardown(test_retention_reads_message_when_needed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refilter_moves_once_and_never_sends, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
