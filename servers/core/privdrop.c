/*
 * privdrop.c - giving up root for good (see privdrop.h for the order and
 * the rules on what is handed over in the state directory).
 *
 * Modelled on OpenSMTPD's setgroups(1)/setresgid/setresuid sequence: the
 * process keeps only the user's one group, since every file that needs
 * another group (TLS keys) was read before the switch.
 */
#include "core/privdrop.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

/* getpwnam_r/getgrnam_r scratch: glibc asks for 1 KiB; a group with many
 * members needs more, and ERANGE is reported rather than guessed at */
#define PRIVDROP_NSS_BUF (64 * 1024)
#define PRIVDROP_MAX_GROUPS 64

int
privdrop_plan(const struct hk_config *cfg, uid_t euid, unsigned flags, struct privdrop *pd, struct hk_buf *err)
{
	memset(pd, 0, sizeof(*pd));
	if (cfg->group && !cfg->user) {
		buf_printf(err, "`group %s` is set without `user`: set both, or neither", cfg->group);
		return -1;
	}
	if (cfg->user == NULL) {
		if (euid == 0 && !(flags & PRIVDROP_ALLOW_ROOT)) {
			buf_adds(err, "running as root: set `user` in the configuration (or start with --allow-root to keep root)");
			return -1;
		}
		return 0;
	}
	char *nss = xmalloc(PRIVDROP_NSS_BUF);
	int rc = -1;
	struct passwd pw, *pwp = NULL;
	int e = getpwnam_r(cfg->user, &pw, nss, PRIVDROP_NSS_BUF, &pwp);
	if (pwp == NULL) {
		buf_printf(err, "`user %s`: %s", cfg->user, e ? strerror(e) : "no such user");
		goto out;
	}
	if (pw.pw_uid == 0) {
		buf_printf(err, "`user %s` is root (uid 0): name an unprivileged account", cfg->user);
		goto out;
	}
	uid_t uid = pw.pw_uid;
	gid_t gid = pw.pw_gid;
	const char *gname = NULL;
	if (cfg->group) {
		struct group gr, *grp = NULL;
		e = getgrnam_r(cfg->group, &gr, nss, PRIVDROP_NSS_BUF, &grp);
		if (grp == NULL) {
			buf_printf(err, "`group %s`: %s", cfg->group, e ? strerror(e) : "no such group");
			goto out;
		}
		gid = gr.gr_gid;
		gname = cfg->group;
	}
	if (gid == 0) {
		buf_printf(err, "`user %s`: the group would be root's (gid 0): set `group` to an unprivileged group", cfg->user);
		goto out;
	}
	if (euid != 0) {
		if (uid != euid && !(flags & PRIVDROP_ALLOW_OTHER)) {
			buf_printf(err, "`user %s` is set but hikyaku was started as uid %u, not root: it cannot switch users; "
			                "start it as root or as %s",
			    cfg->user, (unsigned)euid, cfg->user);
			goto out;
		}
		rc = 0; /* already that user, or allowed to carry on as we are */
		goto out;
	}
	pd->active = true;
	pd->uid = uid;
	pd->gid = gid;
	snprintf(pd->user, sizeof(pd->user), "%s", cfg->user);
	if (gname) {
		snprintf(pd->group, sizeof(pd->group), "%s", gname);
	} else {
		struct group gr, *grp = NULL;
		if (getgrgid_r(gid, &gr, nss, PRIVDROP_NSS_BUF, &grp) == 0 && grp && strlen(grp->gr_name) < sizeof(pd->group))
			snprintf(pd->group, sizeof(pd->group), "%s", grp->gr_name);
		else
			snprintf(pd->group, sizeof(pd->group), "%u", (unsigned)gid);
	}
	rc = 0;
out:
	free(nss);
	return rc;
}

/* --- the state directory ------------------------------------------------------------------ */

static void
owner_name(uid_t uid, char *out, size_t cap)
{
	struct passwd *pw = getpwuid(uid); /* single-threaded here */
	if (pw)
		snprintf(out, cap, "%s (uid %u)", pw->pw_name, (unsigned)uid);
	else
		snprintf(out, cap, "uid %u", (unsigned)uid);
}

/* Creates parent/name when missing, opens it without following a link,
 * and gives it to the user when root owns it. The descriptor, or -1. */
static int
take_dir(int parentfd, const char *name, const char *shown, const struct privdrop *pd, struct hk_buf *err)
{
	if (mkdirat(parentfd, name, 0700) < 0 && errno != EEXIST) {
		buf_printf(err, "cannot create %s: %s", shown, strerror(errno));
		return -1;
	}
	int fd = openat(parentfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ELOOP || errno == ENOTDIR)
			buf_printf(err, "%s is a symbolic link or not a directory: refusing to use it as root", shown);
		else
			buf_printf(err, "cannot open %s: %s", shown, strerror(errno));
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		buf_printf(err, "%s: %s", shown, strerror(errno));
		close(fd);
		return -1;
	}
	if (st.st_uid == pd->uid)
		return fd;
	if (st.st_uid != 0) {
		char who[96];
		owner_name(st.st_uid, who, sizeof(who));
		buf_printf(err, "%s is owned by %s, not %s or root: refusing to take it over (chown -R %s:%s %s, if it is ours)",
		    shown, who, pd->user, pd->user, pd->group, shown);
		close(fd);
		return -1;
	}
	/* fchown on the descriptor: the directory we checked, whatever the
	 * name points to by now */
	if (fchown(fd, pd->uid, pd->gid) < 0) {
		buf_printf(err, "cannot give %s to %s: %s", shown, pd->user, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* A file of ours must already be the user's: never chowned (see the
 * header), so a root-owned one is reported with the fix. */
static int
check_file(int dirfd, const char *name, const char *shown, const struct privdrop *pd, struct hk_buf *err)
{
	struct stat st;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			return 0; /* not made yet: it will be the user's */
		buf_printf(err, "%s: %s", shown, strerror(errno));
		return -1;
	}
	if (S_ISLNK(st.st_mode)) {
		buf_printf(err, "%s is a symbolic link: refusing to use it", shown);
		return -1;
	}
	if (st.st_uid == pd->uid)
		return 0;
	char who[96];
	owner_name(st.st_uid, who, sizeof(who));
	buf_printf(err, "%s is owned by %s, not %s, so the server could not use it (an admin command run as root before "
	                "`user` was set?): check it, then chown %s:%s %s",
	    shown, who, pd->user, pd->user, pd->group, shown);
	return -1;
}

int
privdrop_prepare_state(const char *state_dir, const struct privdrop *pd, struct hk_buf *err)
{
	if (!pd->active)
		return 0;
	/* parents first; tls/ is not here: it stays root's (the key is read
	 * before the switch) */
	static const struct {
		const char *name;
		const char *sub[3];
	} dirs[] = {
		{ "spool", { "incoming" } },
		{ "queue", { "new", "tmp", "deferred" } },
		{ "cache", { NULL } },
		{ "keys", { NULL } },
		{ "domains", { NULL } },
	};
	static const char *const top_files[] = { "accounts.gdbm", "accounts.gdbm.lock", "replies.gdbm" };
	static const char *const key_files[] = { "secret.key", "srs.key" };
	int sfd = take_dir(AT_FDCWD, state_dir, state_dir, pd, err);
	if (sfd < 0)
		return -1;
	int rc = 0;
	for (size_t i = 0; i < HK_ARRAY_LEN(dirs) && rc == 0; i++) {
		char *shown = xasprintf("%s/%s", state_dir, dirs[i].name);
		int fd = take_dir(sfd, dirs[i].name, shown, pd, err);
		if (fd < 0)
			rc = -1;
		for (size_t k = 0; rc == 0 && k < 3 && dirs[i].sub[k]; k++) {
			char *sub = xasprintf("%s/%s", shown, dirs[i].sub[k]);
			int cfd = take_dir(fd, dirs[i].sub[k], sub, pd, err);
			if (cfd < 0)
				rc = -1;
			else
				close(cfd);
			free(sub);
		}
		if (rc == 0 && strcmp(dirs[i].name, "keys") == 0) {
			for (size_t k = 0; k < HK_ARRAY_LEN(key_files) && rc == 0; k++) {
				char *f = xasprintf("%s/%s", shown, key_files[k]);
				rc = check_file(fd, key_files[k], f, pd, err);
				free(f);
			}
		}
		if (fd >= 0)
			close(fd);
		free(shown);
	}
	for (size_t k = 0; k < HK_ARRAY_LEN(top_files) && rc == 0; k++) {
		char *f = xasprintf("%s/%s", state_dir, top_files[k]);
		rc = check_file(sfd, top_files[k], f, pd, err);
		free(f);
	}
	close(sfd);
	return rc;
}

/* --- the switch ---------------------------------------------------------------------------- */

/* Threads started before the switch would keep running as root on some
 * kernels and C libraries; ours start after it (worker pool, committer). */
static int
count_threads(void)
{
	DIR *d = opendir("/proc/self/task");
	if (d == NULL)
		return -1;
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

int
privdrop_switch(const struct privdrop *pd, struct hk_buf *err)
{
	if (!pd->active)
		return 0;
	if (count_threads() > 1) {
		buf_adds(err, "internal error: threads were started before giving up root");
		return -1;
	}
	uid_t u = pd->uid;
	gid_t g = pd->gid;
	if (setgroups(1, &g) < 0) {
		buf_printf(err, "setgroups(%u): %s", (unsigned)g, strerror(errno));
		return -1;
	}
	if (setresgid(g, g, g) < 0) {
		buf_printf(err, "setresgid(%u): %s", (unsigned)g, strerror(errno));
		return -1;
	}
	if (setresuid(u, u, u) < 0) {
		buf_printf(err, "setresuid(%u): %s", (unsigned)u, strerror(errno));
		return -1;
	}
	uid_t ru, eu, su;
	gid_t rg, eg, sg;
	if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0 || ru != u || eu != u || su != u || rg != g ||
	    eg != g || sg != g) {
		buf_adds(err, "the user and group ids did not all change");
		return -1;
	}
	gid_t groups[PRIVDROP_MAX_GROUPS];
	int ng = getgroups(PRIVDROP_MAX_GROUPS, groups);
	if (ng < 0 || ng > 1 || (ng == 1 && groups[0] != g)) {
		buf_adds(err, "the supplementary groups did not change");
		return -1;
	}
	/* the proof: root cannot be had back */
	if (setuid(0) == 0 || seteuid(0) == 0 || setgid(0) == 0 || setegid(0) == 0) {
		buf_adds(err, "could become root again after the switch");
		return -1;
	}
	/* Not dumpable: no core file with TLS keys and passwords in it, and
	 * no ptrace or /proc/<pid>/mem for other processes of the same user
	 * (the admin commands run as that user too). The kernel clears the
	 * flag on a uid change already; saying it keeps it so on any setting
	 * of fs.suid_dumpable. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
		buf_printf(err, "prctl(PR_SET_DUMPABLE): %s", strerror(errno));
		return -1;
	}
	return 0;
}
