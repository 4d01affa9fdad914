/*
 * cli.h - the subcommands of the `hikyaku` program and what they share.
 */
#ifndef HK_CLI_H
#define HK_CLI_H

#include <stdbool.h>

#include "compile.h"

int cmd_check(int argc, char **argv);
int cmd_test(int argc, char **argv);
int cmd_compile(int argc, char **argv);
int cmd_disasm(int argc, char **argv);
int cmd_fmt(int argc, char **argv);
/* cli_admin.c: the accounts store (domains, users, aliases, plans) */
int cmd_domain(int argc, char **argv);
int cmd_user(int argc, char **argv);
int cmd_alias(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_accounts(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_replies(int argc, char **argv);
/* cli_queue.c: the outbound queue (list, flush, delete) */
int cmd_queue(int argc, char **argv);
/* cli_retention.c: rules on stored mail (retention run, refilter) */
int cmd_retention(int argc, char **argv);
int cmd_refilter(int argc, char **argv);

/* cli_state.c: the state directory of the admin commands (--config FILE
 * or $HIKYAKU_CONFIG; --state DIR, else the configuration's state_dir,
 * else $HIKYAKU_STATE, else ./var). Run as root on a configuration with
 * `user`, switches to that user first (see cli_state.c). 0 with the
 * directory (valid until exit) in *state_r, else CLI_EXIT_STATE after
 * printing why. */
#define CLI_EXIT_STATE 3
int cli_state_setup(const char *config_opt, const char *state_opt, const char **state_r);

/* Common options: --layer, --stdlib, --owner. Returns true when argv[*i]
 * was one of them (and consumed its value). */
bool cli_common_option(int argc, char **argv, int *i, struct hk_compile_opts *o, bool *layer_set, int *err);
/* The layer a file's name suggests: personal.hk, settings.hk, domain.hk,
 * anything else is operator. */
enum hk_layer cli_layer_for_path(const char *path);
bool cli_color(void);
void cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
