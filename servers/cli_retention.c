/*
 * cli_retention.c - rules on stored mail from the command line
 * (core/retention.h does the work):
 *
 *   hikyaku retention run [USER|--all] [--dry-run] [--limit N]
 *       the `retention` stage (operator and domain rules) over every
 *       folder of one mailbox or of all (disabled domains and users
 *       too: an operator run is deliberate); what `hikyaku serve` does
 *       at POP3 login and in its sweep, now
 *   hikyaku refilter USER [--folder F] [--dry-run] [--limit N]
 *       the `deliver` layers (operator, domain, panel, personal) over
 *       one folder (INBOX by default); only the storage outcomes happen
 *       (move, delete, Rejected, flags), nothing is ever sent
 *
 * Both take --state DIR and --config FILE like the other admin commands
 * (cli_state_setup). A dry run prints the same lines with "would" and
 * changes nothing. Output goes to stdout; the server-style log (stderr)
 * is off here.
 *
 * Exit codes: 0 done; 1 no such user or folder, or an action failed;
 * 2 usage; 3 the state or the accounts store is unusable.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "accounts.h"
#include "cli.h"
#include "core/retention.h"
#include "core/rulecache.h"

#define CLI_RET_SUBJECT_MAX 40 /* bytes of subject in the table */
#define CLI_RET_FROM_MAX 32

struct cli_ret {
	bool refilter, dry_run;
	unsigned long changes;
};

/* Copies s for a terminal: control characters become '?', at most max
 * bytes, cut on a UTF-8 character boundary ("..." when cut). */
static void
printable(const char *s, size_t max, char *out, size_t outsz)
{
	size_t n = strlen(s), o = 0;
	bool cut = n > max;
	if (cut) {
		n = max;
		while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
			n--;
	}
	for (size_t i = 0; i < n && o + 4 < outsz; i++) {
		unsigned char c = (unsigned char)s[i];
		out[o++] = c < 0x20 || c == 0x7F ? '?' : (char)c;
	}
	if (cut && o + 4 < outsz) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
}

static void
describe(const struct retention_event *ev, char *out, size_t outsz)
{
	char arg[300];
	printable(ev->arg, 200, arg, sizeof(arg));
	switch (ev->what) {
	case RETENTION_KEEP: snprintf(out, outsz, "keep"); break;
	case RETENTION_EXPUNGE: snprintf(out, outsz, "delete"); break;
	case RETENTION_REJECT: snprintf(out, outsz, "reject (to Rejected, deleted)"); break;
	case RETENTION_MOVE: snprintf(out, outsz, "move to \"%s\"", arg); break;
	case RETENTION_COPY: snprintf(out, outsz, "copy to \"%s\"", arg); break;
	case RETENTION_FLAG: snprintf(out, outsz, "flag \"%s\"", arg); break;
	case RETENTION_SKIPPED: snprintf(out, outsz, "skipped: %s", arg); break;
	case RETENTION_LOG: snprintf(out, outsz, "log \"%s\"", arg); break;
	}
}

static void
report(void *ctx, const struct retention_event *ev)
{
	struct cli_ret *c = ctx;
	char what[400], rule[220];
	describe(ev, what, sizeof(what));
	if (ev->rule[0])
		snprintf(rule, sizeof(rule), "rule \"%s\" (%s)", ev->rule, ev->layer);
	else
		snprintf(rule, sizeof(rule), "-");
	if (ev->what != RETENTION_LOG && ev->what != RETENTION_SKIPPED && ev->what != RETENTION_KEEP)
		c->changes++;
	const char *verb = ev->err ? "FAILED " : ev->dry_run && ev->what != RETENTION_LOG && ev->what != RETENTION_SKIPPED ? "would " : "";
	if (c->refilter) {
		char date[32] = "-", from[CLI_RET_FROM_MAX + 8], subj[CLI_RET_SUBJECT_MAX + 8];
		time_t t = (time_t)ev->received;
		struct tm tm;
		if (t > 0 && localtime_r(&t, &tm))
			strftime(date, sizeof(date), "%Y-%m-%d %H:%M", &tm);
		printable(ev->from, CLI_RET_FROM_MAX, from, sizeof(from));
		printable(ev->subject, CLI_RET_SUBJECT_MAX, subj, sizeof(subj));
		printf("%-16s  %-32s  %-40s  %s%s  %s%s%s\n", date, from[0] ? from : "-", subj[0] ? subj : "-", verb, what, rule,
		    ev->err ? ": " : "", ev->err ? strerror(ev->err) : "");
	} else {
		printf("%s  %s  %s%s  %s%s%s\n", ev->folder, ev->base, verb, what, rule, ev->err ? ": " : "",
		    ev->err ? strerror(ev->err) : "");
	}
}

static int
open_accounts(const char *state, struct hk_accounts **a_r)
{
	char *path = xasprintf("%s/accounts.gdbm", state);
	char *key = xasprintf("%s/keys/secret.key", state);
	struct hk_accounts_config cfg = { .path = path, .key_path = key };
	char err[256];
	enum hk_acct_status s = hk_accounts_open_gdbm(&cfg, a_r, err, sizeof(err));
	free(path);
	free(key);
	if (s != HK_ACCT_OK) {
		fprintf(stderr, "hikyaku: %s\n", err);
		return CLI_EXIT_STATE;
	}
	return 0;
}

/* Runs one mailbox; 0, or 1 when it failed or an action failed. */
static int
run_one(const struct retention_ctx *ctx, struct hk_accounts *a, const struct hk_user *u, struct retention_opts *o,
    struct retention_stats *total)
{
	struct retention_user ru = { .address = u->address, .domain = u->domain, .local = u->local };
	if (hk_accounts_limits(a, u, &ru.limits) != HK_ACCT_OK) {
		fprintf(stderr, "hikyaku: %s: %s\n", u->address, hk_accounts_error(a));
		return 1;
	}
	struct retention_stats s;
	char err[300];
	if (retention_run_user(ctx, &ru, o, &s, err, sizeof(err)) < 0) {
		fprintf(stderr, "hikyaku: %s\n", err);
		return 1;
	}
	total->messages += s.messages;
	total->evaluated += s.evaluated;
	total->expunged += s.expunged;
	total->rejected += s.rejected;
	total->moved += s.moved + s.copied;
	total->flagged += s.flagged;
	total->skipped += s.skipped;
	total->failed += s.failed;
	total->incomplete |= s.incomplete;
	total->no_rules |= s.no_rules;
	if (s.busy) {
		fprintf(stderr, "hikyaku: %s: another retention or refilter run is working on this mailbox; try again\n",
		    u->address);
		return 1;
	}
	if (s.incomplete)
		printf("# %s: stopped after %zu messages (--limit); run again to continue\n", u->address, s.evaluated);
	return s.failed ? 1 : 0;
}

static int
parse_limit(const char *s, size_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (end == s || *end || errno || v == 0 || v > 100000000ull || s[0] == '-')
		return -1;
	*out = (size_t)v;
	return 0;
}

static int
run_cmd(bool refilter, int argc, char **argv)
{
	const char *state = NULL, *config = NULL, *user = NULL, *folder = NULL;
	bool all = false, dry = false;
	size_t limit = 0;
	const char *name = refilter ? "refilter" : "retention run";
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--state") == 0 && i + 1 < argc)
			state = argv[++i];
		else if (strcmp(a, "--config") == 0 && i + 1 < argc)
			config = argv[++i];
		else if (strcmp(a, "--dry-run") == 0 || strcmp(a, "-n") == 0)
			dry = true;
		else if (strcmp(a, "--limit") == 0 && i + 1 < argc) {
			if (parse_limit(argv[++i], &limit) < 0) {
				cli_usage_error("%s: --limit needs a number of messages (1-100000000)", name);
				return 2;
			}
		} else if (refilter && strcmp(a, "--folder") == 0 && i + 1 < argc)
			folder = argv[++i];
		else if (!refilter && strcmp(a, "--all") == 0)
			all = true;
		else if (a[0] == '-') {
			cli_usage_error("%s: unknown option '%s'", name, a);
			return 2;
		} else if (user == NULL)
			user = a;
		else {
			cli_usage_error("%s: too many arguments", name);
			return 2;
		}
	}
	if (refilter ? user == NULL : (user == NULL) == !all) {
		cli_usage_error(refilter ? "refilter needs USER [--folder F] [--dry-run]" : "retention run needs USER or --all [--dry-run]");
		return 2;
	}
	if (folder && (strlen(folder) > 255 || folder[0] == '\0')) {
		cli_usage_error("%s: bad folder name", name);
		return 2;
	}
	if (cli_state_setup(config, state, &state) != 0)
		return CLI_EXIT_STATE;
	struct hk_accounts *a = NULL;
	int rc = open_accounts(state, &a);
	if (rc)
		return rc;
	char *cache = xasprintf("%s/cache", state);
	mkdir(cache, 0700);
	char *global = xasprintf("%s/rules/global.hk", state);
	char host[256] = "localhost";
	gethostname(host, sizeof(host) - 1);
	struct retention_ctx ctx = { .state_dir = state, .global_rules = global, .hostname = host,
		.rules = rulecache_new(cache, NULL) };
	struct cli_ret cr = { .refilter = refilter, .dry_run = dry };
	struct retention_opts o = {
		.mode = refilter ? RETENTION_MODE_REFILTER : RETENTION_MODE_RETENTION,
		.folder = folder,
		.dry_run = dry,
		.max_messages = limit,
		.report = report,
		.ctx = &cr,
		.quiet = true,
	};
	struct retention_stats total;
	memset(&total, 0, sizeof(total));
	size_t mailboxes = 0;
	if (refilter)
		printf("%-16s  %-32s  %-40s  %s\n", "RECEIVED", "FROM", "SUBJECT", "ACTION  RULE");
	if (user) {
		struct hk_user *u = xmalloc(sizeof(*u));
		if (hk_accounts_user_get(a, user, u) != HK_ACCT_OK) {
			fprintf(stderr, "hikyaku: no user %s\n", user);
			rc = 1;
		} else {
			rc = run_one(&ctx, a, u, &o, &total);
			mailboxes = 1;
		}
		free(u);
	} else {
		struct hk_user *v = NULL;
		size_t n = 0;
		if (hk_accounts_user_list(a, NULL, &v, &n) != HK_ACCT_OK) {
			fprintf(stderr, "hikyaku: %s\n", hk_accounts_error(a));
			rc = CLI_EXIT_STATE;
		}
		for (size_t i = 0; i < n; i++, mailboxes++)
			if (run_one(&ctx, a, &v[i], &o, &total))
				rc = 1;
		free(v);
	}
	if (rc != CLI_EXIT_STATE && mailboxes) {
		if (total.no_rules && total.evaluated == 0)
			printf("# no %s rules apply (%s)\n", refilter ? "deliver" : "retention",
			    refilter ? "operator, domain, settings.hk, personal.hk" : "operator and domain rules");
		printf("# %zu mailbox%s, %zu message%s evaluated: %s%zu deleted, %zu moved, %zu flagged, %zu rejected, %zu "
		       "skipped, %zu failed\n",
		    mailboxes, mailboxes == 1 ? "" : "es", total.evaluated, total.evaluated == 1 ? "" : "s", dry ? "would be " : "",
		    total.expunged, total.moved, total.flagged, total.rejected, total.skipped, total.failed);
	}
	rulecache_free(&ctx.rules);
	free(cache);
	free(global);
	hk_accounts_close(&a);
	return rc;
}

int
cmd_retention(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "run") != 0) {
		cli_usage_error("retention needs run [USER|--all] [--dry-run] [--limit N]");
		return 2;
	}
	return run_cmd(false, argc - 1, argv + 1);
}

int
cmd_refilter(int argc, char **argv)
{
	return run_cmd(true, argc, argv);
}
