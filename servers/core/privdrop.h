/*
 * privdrop.h - giving up root. `hikyaku serve` started as root (to bind
 * ports 25, 465, 587... and read root-only TLS keys) switches for good to
 * the configured `user` once those are done, and before any thread starts
 * or any mail file is opened. The admin commands switch the same way
 * before they touch the state directory, so nothing they write is
 * root-owned.
 *
 * The order (serve.c): privdrop_plan (decide, look the names up) ->
 * certificates, keys and listeners as root -> privdrop_prepare_state
 * (the state directory and our subdirectories handed to the user) ->
 * privdrop_switch -> worker pool, queue, delivery.
 *
 * SECURITY: prepare_state runs as root on a directory the unprivileged
 * user may control. It never follows a symbolic link (O_NOFOLLOW, *at
 * calls on directory descriptors), only takes over directories owned by
 * root, and never changes the owner of a file: a file owned by someone
 * else stops the start with the command that fixes it (a planted hard
 * link to a root file must not become the user's).
 */
#ifndef HK_PRIVDROP_H
#define HK_PRIVDROP_H

#include <stdbool.h>
#include <sys/types.h>

#include "core/config.h"
#include "util.h"

struct privdrop {
	bool active; /* privdrop_switch will change user */
	uid_t uid;
	gid_t gid;
	char user[CONFIG_MAX_NAME_LEN + 1];
	char group[CONFIG_MAX_NAME_LEN + 1];
};

/* Flags of privdrop_plan. */
enum {
	/* started as root without `user`: run as root (serve --allow-root,
	 * and the admin commands on a configuration without `user`) */
	PRIVDROP_ALLOW_ROOT = 1 << 0,
	/* not root and `user` names someone else: carry on as we are (the
	 * admin commands, whose file permissions decide) instead of failing */
	PRIVDROP_ALLOW_OTHER = 1 << 1,
};

/* Decides, for a process whose effective uid is `euid`, what to do with
 * cfg->user and cfg->group, and looks them up. 0 with pd->active when a
 * switch is due (euid 0 and `user` set); 0 inactive when there is nothing
 * to do (not root and `user` unset or already us; root allowed by flags);
 * -1 with a message for the operator in err (root without `user`, an
 * unknown name, `user root`, `group` without `user`, another user while
 * not root). */
int privdrop_plan(const struct hk_config *cfg, uid_t euid, unsigned flags, struct privdrop *pd, struct hk_buf *err);

/* As root, before the switch: creates state_dir (its last component) and
 * our subdirectories (spool, spool/incoming, queue and its new, tmp,
 * deferred, cache, keys, domains) when missing, gives those owned by root
 * to pd's user and group, and checks that our files there (accounts.gdbm
 * and its .lock, replies.gdbm, keys/secret.key, keys/srs.key) belong to
 * the user.
 * tls/ is left to root. -1 with a message naming the path on anything
 * else: a symbolic link, a directory or file owned by someone else. */
int privdrop_prepare_state(const char *state_dir, const struct privdrop *pd, struct hk_buf *err);

/* Switches for good: setgroups to the one group, setresgid, setresuid,
 * then checks every id (real, effective, saved; supplementary groups
 * without 0) and that setuid(0) and setgid(0) now fail, and marks the
 * process not dumpable. Call it while the process has a single thread.
 * -1 with a message when any step or check fails: the caller must exit. */
int privdrop_switch(const struct privdrop *pd, struct hk_buf *err);

#endif
