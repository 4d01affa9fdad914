/*
 * test_privdrop.c - giving up root (servers/core/privdrop.c): the plan
 * for every way of starting (root with and without `user`, another user,
 * unknown names, root's own ids), the state directory handed over without
 * following links or taking over what is someone else's, and the switch
 * itself in a child process. The tests that need root skip without it.
 * They use the system account `nobody`, which Debian always has.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <fcntl.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/config.h"
#include "core/privdrop.h"
#include "util.h"

static struct passwd nobody;

static int
setup_nobody(void **state)
{
	(void)state;
	struct passwd *pw = getpwnam("nobody");
	if (pw == NULL)
		return -1;
	nobody = *pw;
	return 0;
}

static void
cfg_with(struct hk_config *c, const char *user, const char *group)
{
	config_defaults(c);
	c->user = user ? xstrdup(user) : NULL;
	c->group = group ? xstrdup(group) : NULL;
}

static void
test_plan_root_without_user_refused(void **state)
{
	(void)state;
	struct hk_config c;
	struct privdrop pd;
	struct hk_buf err;
	buf_init(&err);
	cfg_with(&c, NULL, NULL);
	assert_int_equal(privdrop_plan(&c, 0, 0, &pd, &err), -1);
	assert_non_null(strstr(err.data, "running as root: set `user` in the configuration"));
	/* --allow-root */
	buf_reset(&err);
	assert_int_equal(privdrop_plan(&c, 0, PRIVDROP_ALLOW_ROOT, &pd, &err), 0);
	assert_false(pd.active);
	/* not root, no user: nothing to do (`make run`) */
	assert_int_equal(privdrop_plan(&c, 1000, 0, &pd, &err), 0);
	assert_false(pd.active);
	config_fini(&c);
	buf_fini(&err);
}

static void
test_plan_root_with_user(void **state)
{
	(void)state;
	struct hk_config c;
	struct privdrop pd;
	struct hk_buf err;
	buf_init(&err);
	cfg_with(&c, "nobody", NULL);
	assert_int_equal(privdrop_plan(&c, 0, 0, &pd, &err), 0);
	assert_true(pd.active);
	assert_int_equal(pd.uid, nobody.pw_uid);
	assert_int_equal(pd.gid, nobody.pw_gid); /* the primary group by default */
	assert_string_equal(pd.user, "nobody");
	assert_true(pd.group[0] != '\0');
	config_fini(&c);
	/* an explicit group */
	cfg_with(&c, "nobody", "daemon");
	assert_int_equal(privdrop_plan(&c, 0, 0, &pd, &err), 0);
	assert_true(pd.active);
	assert_int_equal(pd.gid, 1); /* Debian's daemon group */
	assert_string_equal(pd.group, "daemon");
	config_fini(&c);
	buf_fini(&err);
}

static void
test_plan_refuses_bad_accounts(void **state)
{
	(void)state;
	static const struct {
		const char *user, *group, *why;
	} cases[] = {
		{ "hk-no-such-user-x", NULL, "no such user" },
		{ "root", NULL, "is root (uid 0)" },
		{ "nobody", "root", "gid 0" },
		{ "nobody", "hk-no-such-group-x", "no such group" },
		{ NULL, "daemon", "without `user`" },
	};
	struct hk_config c;
	struct privdrop pd;
	struct hk_buf err;
	buf_init(&err);
	for (size_t i = 0; i < HK_ARRAY_LEN(cases); i++) {
		cfg_with(&c, cases[i].user, cases[i].group);
		buf_reset(&err);
		assert_int_equal(privdrop_plan(&c, 0, PRIVDROP_ALLOW_ROOT, &pd, &err), -1);
		assert_false(pd.active);
		if (strstr(err.data, cases[i].why) == NULL)
			fail_msg("case %zu: '%s' does not say '%s'", i, err.data, cases[i].why);
		config_fini(&c);
	}
	buf_fini(&err);
}

static void
test_plan_not_root(void **state)
{
	(void)state;
	struct hk_config c;
	struct privdrop pd;
	struct hk_buf err;
	buf_init(&err);
	cfg_with(&c, "nobody", NULL);
	/* already that user: nothing to switch */
	assert_int_equal(privdrop_plan(&c, nobody.pw_uid, 0, &pd, &err), 0);
	assert_false(pd.active);
	/* someone else: serve cannot switch, and says so */
	uid_t other = nobody.pw_uid == 4242 ? 4243 : 4242;
	assert_int_equal(privdrop_plan(&c, other, 0, &pd, &err), -1);
	assert_non_null(strstr(err.data, "not root: it cannot switch users"));
	/* the admin commands carry on as they are */
	assert_int_equal(privdrop_plan(&c, other, PRIVDROP_ALLOW_OTHER, &pd, &err), 0);
	assert_false(pd.active);
	config_fini(&c);
	buf_fini(&err);
}

/* --- the state directory (root only) -------------------------------------------------------- */

static char tmp_root[64];

static int
setup_tmp(void **state)
{
	(void)state;
	snprintf(tmp_root, sizeof(tmp_root), "/tmp/hk-test-privdrop-XXXXXX");
	return mkdtemp(tmp_root) ? 0 : -1;
}

static int
teardown_tmp(void **state)
{
	(void)state;
	char *cmd = xasprintf("rm -rf '%s'", tmp_root);
	int rc = system(cmd);
	free(cmd);
	return rc == 0 ? 0 : -1;
}

static void
plan_nobody(struct privdrop *pd)
{
	struct hk_config c;
	struct hk_buf err;
	buf_init(&err);
	cfg_with(&c, "nobody", NULL);
	assert_int_equal(privdrop_plan(&c, 0, 0, pd, &err), 0);
	config_fini(&c);
	buf_fini(&err);
}

/* The owner of dir/name (name NULL: of dir), without following a link. */
static uid_t
owner(const char *dir, const char *name)
{
	char *p = name ? xasprintf("%s/%s", dir, name) : xstrdup(dir);
	struct stat st;
	int rc = lstat(p, &st);
	free(p);
	assert_int_equal(rc, 0);
	return st.st_uid;
}

static void
test_prepare_state_creates_and_hands_over(void **state)
{
	(void)state;
	if (geteuid() != 0)
		skip();
	struct privdrop pd;
	plan_nobody(&pd);
	struct hk_buf err;
	buf_init(&err);
	char *dir = xasprintf("%s/var", tmp_root);
	/* tls/ made by root beforehand, as serve does */
	assert_int_equal(mkdir(dir, 0700), 0);
	char *tls = xasprintf("%s/tls", dir);
	assert_int_equal(mkdir(tls, 0700), 0);
	assert_int_equal(privdrop_prepare_state(dir, &pd, &err), 0);
	static const char *const subs[] = { "", "/spool", "/spool/incoming", "/queue", "/queue/new", "/queue/tmp",
		"/queue/deferred", "/cache", "/keys", "/domains" };
	for (size_t i = 0; i < HK_ARRAY_LEN(subs); i++) {
		char *p = xasprintf("%s%s", dir, subs[i]);
		struct stat st;
		assert_int_equal(lstat(p, &st), 0);
		assert_true(S_ISDIR(st.st_mode));
		if (st.st_uid != pd.uid || st.st_gid != pd.gid)
			fail_msg("%s is %u:%u", p, (unsigned)st.st_uid, (unsigned)st.st_gid);
		assert_int_equal(st.st_mode & 07777, 0700);
		free(p);
	}
	assert_int_equal(owner(dir, "tls"), 0); /* the key's directory stays root's */
	/* a second run changes nothing and succeeds */
	assert_int_equal(privdrop_prepare_state(dir, &pd, &err), 0);
	free(tls);
	free(dir);
	buf_fini(&err);
}

static void
test_prepare_state_refuses_symlinks(void **state)
{
	(void)state;
	if (geteuid() != 0)
		skip();
	struct privdrop pd;
	plan_nobody(&pd);
	struct hk_buf err;
	buf_init(&err);
	char *dir = xasprintf("%s/var2", tmp_root);
	char *victim = xasprintf("%s/victim", tmp_root);
	assert_int_equal(mkdir(dir, 0700), 0);
	assert_int_equal(mkdir(victim, 0700), 0);
	/* the unprivileged user replaced cache/ with a link to a root directory */
	char *link = xasprintf("%s/cache", dir);
	assert_int_equal(symlink(victim, link), 0);
	assert_int_equal(privdrop_prepare_state(dir, &pd, &err), -1);
	assert_non_null(strstr(err.data, "cache is a symbolic link"));
	assert_int_equal(owner(victim, NULL), 0); /* not given away */
	/* a link as the state directory itself */
	char *ldir = xasprintf("%s/var-link", tmp_root);
	assert_int_equal(symlink(victim, ldir), 0);
	buf_reset(&err);
	assert_int_equal(privdrop_prepare_state(ldir, &pd, &err), -1);
	assert_non_null(strstr(err.data, "symbolic link"));
	assert_int_equal(owner(victim, NULL), 0);
	/* a link where our file goes (accounts.gdbm -> /etc/shadow) */
	assert_int_equal(unlink(link), 0);
	char *acc = xasprintf("%s/accounts.gdbm", dir);
	assert_int_equal(symlink("/etc/shadow", acc), 0);
	buf_reset(&err);
	assert_int_equal(privdrop_prepare_state(dir, &pd, &err), -1);
	assert_non_null(strstr(err.data, "accounts.gdbm is a symbolic link"));
	free(acc);
	free(ldir);
	free(link);
	free(victim);
	free(dir);
	buf_fini(&err);
}

static void
test_prepare_state_never_chowns_files(void **state)
{
	(void)state;
	if (geteuid() != 0)
		skip();
	struct privdrop pd;
	plan_nobody(&pd);
	struct hk_buf err;
	buf_init(&err);
	char *dir = xasprintf("%s/var3", tmp_root);
	assert_int_equal(mkdir(dir, 0700), 0);
	/* accounts.gdbm left by an admin command run as root: reported with the fix */
	char *acc = xasprintf("%s/accounts.gdbm", dir);
	int fd = open(acc, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(privdrop_prepare_state(dir, &pd, &err), -1);
	assert_non_null(strstr(err.data, "accounts.gdbm is owned by root"));
	assert_non_null(strstr(err.data, "chown nobody:"));
	assert_int_equal(owner(acc, NULL), 0);
	/* once the operator fixed it, the start goes on */
	assert_int_equal(chown(acc, pd.uid, pd.gid), 0);
	buf_reset(&err);
	assert_int_equal(privdrop_prepare_state(dir, &pd, &err), 0);
	free(acc);
	free(dir);
	buf_fini(&err);
}

static void
test_prepare_state_refuses_others_directory(void **state)
{
	(void)state;
	if (geteuid() != 0)
		skip();
	struct privdrop pd;
	plan_nobody(&pd);
	struct hk_buf err;
	buf_init(&err);
	char *dir = xasprintf("%s/var4", tmp_root);
	assert_int_equal(mkdir(dir, 0700), 0);
	assert_int_equal(chown(dir, 1, 1), 0); /* daemon's */
	assert_int_equal(privdrop_prepare_state(dir, &pd, &err), -1);
	assert_non_null(strstr(err.data, "refusing to take it over"));
	assert_int_equal(owner(dir, NULL), 1);
	free(dir);
	buf_fini(&err);
}

/* --- the switch, in a child: it cannot be undone ------------------------------------------ */

static void
test_switch_for_good(void **state)
{
	(void)state;
	if (geteuid() != 0)
		skip();
	struct privdrop pd;
	plan_nobody(&pd);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct hk_buf err;
		buf_init(&err);
		if (privdrop_switch(&pd, &err) < 0)
			_exit(10);
		uid_t r, e, s;
		gid_t rg, eg, sg;
		if (getresuid(&r, &e, &s) < 0 || r != pd.uid || e != pd.uid || s != pd.uid)
			_exit(11);
		if (getresgid(&rg, &eg, &sg) < 0 || rg != pd.gid || eg != pd.gid || sg != pd.gid)
			_exit(12);
		gid_t groups[8];
		int n = getgroups(8, groups);
		if (n != 1 || groups[0] != pd.gid)
			_exit(13);
		if (setuid(0) == 0 || seteuid(0) == 0)
			_exit(14);
		if (prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0)
			_exit(15);
		if (open("/etc/shadow", O_RDONLY) >= 0)
			_exit(16);
		_exit(0);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void
test_switch_inactive_is_noop(void **state)
{
	(void)state;
	struct privdrop pd;
	memset(&pd, 0, sizeof(pd));
	struct hk_buf err;
	buf_init(&err);
	uid_t before = geteuid();
	assert_int_equal(privdrop_switch(&pd, &err), 0);
	assert_int_equal(privdrop_prepare_state("/nonexistent/hk", &pd, &err), 0);
	assert_int_equal(geteuid(), before);
	buf_fini(&err);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plan_root_without_user_refused),
		cmocka_unit_test(test_plan_root_with_user),
		cmocka_unit_test(test_plan_refuses_bad_accounts),
		cmocka_unit_test(test_plan_not_root),
		cmocka_unit_test_setup_teardown(test_prepare_state_creates_and_hands_over, setup_tmp, teardown_tmp),
		cmocka_unit_test_setup_teardown(test_prepare_state_refuses_symlinks, setup_tmp, teardown_tmp),
		cmocka_unit_test_setup_teardown(test_prepare_state_never_chowns_files, setup_tmp, teardown_tmp),
		cmocka_unit_test_setup_teardown(test_prepare_state_refuses_others_directory, setup_tmp, teardown_tmp),
		cmocka_unit_test(test_switch_for_good),
		cmocka_unit_test(test_switch_inactive_is_noop),
	};
	return cmocka_run_group_tests(tests, setup_nobody, NULL);
}
