/*
 * cli_replies.c - `hikyaku replies list|clear [ADDRESS]`: the auto-reply
 * log (自動返信の着信情報) of one mailbox or of all: who was answered when,
 * and forgetting it so the next mail gets a reply again. --state DIR and
 * --config FILE as for every admin command (cli_state.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "replylog.h"

int
cmd_replies(int argc, char **argv)
{
	const char *state = NULL, *config = NULL;
	const char *verb = NULL, *who = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--state") == 0 && i + 1 < argc)
			state = argv[++i];
		else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			config = argv[++i];
		else if (verb == NULL)
			verb = argv[i];
		else if (who == NULL)
			who = argv[i];
		else {
			cli_usage_error("replies: too many arguments");
			return 2;
		}
	}
	if (verb == NULL || (strcmp(verb, "list") != 0 && strcmp(verb, "clear") != 0)) {
		cli_usage_error("replies needs list or clear [ADDRESS]");
		return 2;
	}
	if (cli_state_setup(config, state, &state) != 0)
		return CLI_EXIT_STATE;
	char *path = xasprintf("%s/replies.gdbm", state);
	int rc = 0;
	if (strcmp(verb, "list") == 0) {
		struct hk_replylog_entry *v;
		size_t n;
		if (hk_replylog_list(path, who, &v, &n) < 0) {
			fprintf(stderr, "hikyaku: cannot read %s: %s\n", path, strerror(errno));
			rc = 3;
		} else {
			for (size_t i = 0; i < n; i++) {
				char when[32] = "?";
				time_t t = (time_t)v[i].when;
				struct tm tm;
				if (v[i].when >= 0 && gmtime_r(&t, &tm))
					strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%SZ", &tm);
				printf("%s answered %s at %s\n", v[i].recipient, v[i].sender, when);
			}
			free(v);
		}
	} else {
		size_t n;
		if (hk_replylog_clear(path, who, &n) < 0) {
			fprintf(stderr, "hikyaku: cannot update %s: %s\n", path, strerror(errno));
			rc = 3;
		} else {
			printf("forgot %zu answered sender%s\n", n, n == 1 ? "" : "s");
		}
	}
	free(path);
	return rc;
}
