/*
 * main.c - the `hikyaku` program: one binary, one subcommand per job
 * (check, test, compile, disasm, fmt; serve and administration follow).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#ifndef HK_VERSION
#define HK_VERSION "0.1"
#endif

static void
usage(FILE *out)
{
	fputs("usage: hikyaku COMMAND [ARGS]\n"
	      "\n"
	      "Rule files (.hk):\n"
	      "  check FILE...             report errors and warnings (file:line:col: severity: message)\n"
	      "  test FILE [MSG.eml...]    dry run: what would happen to each message; without messages,\n"
	      "                            run the file's test blocks (--from --to --spf --stage --before --trace --mail --json)\n"
	      "  compile FILE [-o OUT]     compile to bytecode (.hkc)\n"
	      "  disasm FILE               show the bytecode as the servers run it (.hk or .hkc)\n"
	      "  fmt [-w|--check] FILE...  canonical formatting\n"
	      "  version                   print the version\n"
	      "\n"
	      "Accounts (--state DIR, else the state_dir of --config FILE or $HIKYAKU_CONFIG, else $HIKYAKU_STATE\n"
	      "or ./var; --json for list/show; as root with a config that sets `user`, they run as that user):\n"
	      "  domain add|set|del|list|show   hosted domains (--plan --legacy-auth --max-size --cert --key --catchall)\n"
	      "  user add|set|passwd|check|del|list|show  mailboxes (--password-file F | --stdin | prompt; --plan --quota)\n"
	      "  alias add|del|list|show    ADDRESS TARGET...\n"
	      "  plan list|show|set|reset   service plans (quota, sizes, retention, lists)\n"
	      "  accounts check|repair      verify or salvage STATE/accounts.gdbm\n"
	      "  replies list|clear [ADDR]  the auto-reply log: who was answered when\n"
	      "  queue list|flush|delete ID  the outbound queue: entries, retry now, remove one\n"
	      "  retention run USER|--all [--dry-run] [--limit N]  the retention rules on stored mail, now\n"
	      "  refilter USER [--folder F] [--dry-run]  the deliver rules on stored mail (moves, deletes, flags;\n"
	      "                            never sends); --dry-run shows what would happen\n"
	      "\n"
	      "Servers:\n"
	      "  serve [--config FILE] [--state DIR] [--allow-root]   run the mail servers (SMTP now; POP3 and\n"
	      "                            IMAP next); started as root it switches to the configured `user`\n"
	      "\n"
	      "Common options: --layer operator|domain|panel|personal (default: from the file name),\n"
	      "                --stdlib DIR (where import looks), --owner ADDRESS (the mailbox of a personal script)\n"
	      "See hikyaku(1) and doc/language.md.\n",
	    out);
}

bool
cli_color(void)
{
	const char *nc = getenv("NO_COLOR");
	return isatty(2) && (nc == NULL || *nc == '\0');
}

void
cli_usage_error(const char *fmt, ...)
{
	va_list ap;
	fputs("hikyaku: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (see hikyaku --help)\n", stderr);
}

enum hk_layer
cli_layer_for_path(const char *path)
{
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	if (strcmp(base, "personal.hk") == 0)
		return HK_LAYER_PERSONAL;
	if (strcmp(base, "settings.hk") == 0)
		return HK_LAYER_PANEL;
	if (strcmp(base, "domain.hk") == 0)
		return HK_LAYER_DOMAIN;
	return HK_LAYER_OPERATOR;
}

bool
cli_common_option(int argc, char **argv, int *i, struct hk_compile_opts *o, bool *layer_set, int *err)
{
	const char *a = argv[*i];
	const char *val = NULL;
	const char *names[] = { "--layer", "--stdlib", "--owner" };
	int which = -1;
	for (int k = 0; k < 3; k++) {
		size_t n = strlen(names[k]);
		if (strncmp(a, names[k], n) == 0 && (a[n] == '\0' || a[n] == '=')) {
			which = k;
			if (a[n] == '=')
				val = a + n + 1;
			else if (*i + 1 < argc)
				val = argv[++*i];
			break;
		}
	}
	if (which < 0)
		return false;
	if (val == NULL) {
		cli_usage_error("%s needs a value", names[which]);
		*err = 1;
		return true;
	}
	if (which == 0) {
		int l = -1;
		for (int k = 0; k < HK_LAYER_COUNT; k++)
			if (strcmp(val, hk_layer_name(k)) == 0)
				l = k;
		if (l < 0) {
			cli_usage_error("unknown layer '%s' (operator, domain, panel, personal)", val);
			*err = 1;
		} else {
			o->layer = (enum hk_layer)l;
			*layer_set = true;
		}
	} else if (which == 1) {
		o->stdlib_dir = val;
	} else {
		o->owner = val;
	}
	return true;
}

int
main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
		printf("hikyaku %s (bytecode format %d)\n", HK_VERSION, HK_BC_VERSION);
		return 0;
	}
	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} cmds[] = {
		{ "check", cmd_check }, { "test", cmd_test }, { "compile", cmd_compile },
		{ "disasm", cmd_disasm }, { "fmt", cmd_fmt }, { "serve", cmd_serve },
		{ "domain", cmd_domain }, { "user", cmd_user }, { "alias", cmd_alias }, { "plan", cmd_plan },
		{ "accounts", cmd_accounts }, { "replies", cmd_replies }, { "queue", cmd_queue },
		{ "retention", cmd_retention }, { "refilter", cmd_refilter },
	};
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(cmd, cmds[i].name) == 0)
			return cmds[i].fn(argc - 1, argv + 1);
	cli_usage_error("unknown command '%s'", cmd);
	return 2;
}
