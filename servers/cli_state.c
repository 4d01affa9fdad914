/*
 * cli_state.c - where the administration commands (domain, user, alias,
 * plan, accounts, replies, queue) find the state directory, and how they
 * avoid leaving root-owned files there.
 *
 * The configuration is --config FILE, else $HIKYAKU_CONFIG, else none.
 * The state directory is --state DIR, else the configuration's state_dir,
 * else $HIKYAKU_STATE, else ./var. Run as root on a configuration that
 * names a `user`, the command hands the state directory to that user
 * (privdrop_prepare_state) and becomes it (privdrop_switch) before it
 * opens anything there, exactly as `hikyaku serve` does: the accounts
 * store replaced by rename, the reply log, queue files and new maildirs
 * all end up the server's. Run as root on a state directory that belongs
 * to someone else, without such a configuration, the command refuses
 * instead of writing root-owned files the server could not use.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "core/config.h"
#include "core/privdrop.h"

static char *cli_state; /* the resolved directory, kept until exit */

static void
cli_state_free(void)
{
	free(cli_state);
	cli_state = NULL;
}

int
cli_state_setup(const char *config_opt, const char *state_opt, const char **state_r)
{
	const char *conf = config_opt ? config_opt : getenv("HIKYAKU_CONFIG");
	struct hk_config cfg;
	config_defaults(&cfg);
	struct hk_buf err;
	buf_init(&err);
	int rc = CLI_EXIT_STATE;
	struct privdrop pd;
	if (conf && *conf && config_load(&cfg, conf, &err) < 0) {
		fprintf(stderr, "hikyaku: %s\n", err.data);
		goto out;
	}
	const char *env = getenv("HIKYAKU_STATE");
	const char *dir = state_opt ? state_opt : conf && *conf ? cfg.state_dir : env && *env ? env : "./var";
	/* the admin commands may run as root without `user` (a store that
	 * is root's), and as any account the file permissions let in */
	if (privdrop_plan(&cfg, geteuid(), PRIVDROP_ALLOW_ROOT | PRIVDROP_ALLOW_OTHER, &pd, &err) < 0) {
		fprintf(stderr, "hikyaku: %s\n", err.data);
		goto out;
	}
	struct stat st;
	if (geteuid() == 0 && !pd.active && lstat(dir, &st) == 0 && st.st_uid != 0) {
		fprintf(stderr,
		    "hikyaku: %s belongs to uid %u: run this command as that user, or as root with --config FILE "
		    "(a configuration that sets `user`), so that no root-owned file ends up there\n",
		    dir, (unsigned)st.st_uid);
		goto out;
	}
	if (privdrop_prepare_state(dir, &pd, &err) < 0 || privdrop_switch(&pd, &err) < 0) {
		fprintf(stderr, "hikyaku: %s\n", err.data);
		goto out;
	}
	if (cli_state == NULL)
		atexit(cli_state_free);
	free(cli_state);
	cli_state = xstrdup(dir);
	*state_r = cli_state;
	rc = 0;
out:
	buf_fini(&err);
	config_fini(&cfg);
	return rc;
}
