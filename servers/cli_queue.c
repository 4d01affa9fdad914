/*
 * cli_queue.c - `hikyaku queue list|flush|delete ID [--state DIR] [--config FILE]`: the
 * outbound queue on disk (servers/queue/queue_file.h), with or without a
 * running server.
 *
 *   list    one line per entry: id, state (new/deferred), kind, sender,
 *           recipient, size, attempts, next attempt, last error
 *   flush   creates STATE/queue/flush; the running server's next scan
 *           (queue_interval) makes every deferred entry due
 *   delete  removes an entry (an attempt already in flight still ends)
 *
 * Exit codes: 0 done; 1 no such entry; 2 usage; 3 the queue folder is
 * unreadable.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "queue/queue_file.h"

static void
fmt_time(long long t, char *out, size_t outsz)
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (t <= 0 || gmtime_r(&tt, &tm) == NULL)
		snprintf(out, outsz, "now");
	else
		strftime(out, outsz, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int
list_dir(const char *qdir, const char *sub, unsigned *count)
{
	char *dir = xasprintf("%s/%s", qdir, sub);
	DIR *d = opendir(dir);
	if (d == NULL) {
		int rc = errno == ENOENT ? 0 : -1;
		free(dir);
		return rc;
	}
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (!qfile_name_ok(de->d_name))
			continue;
		char *path = xasprintf("%s/%s", dir, de->d_name);
		struct qfile_head h;
		size_t size = 0;
		if (qfile_read_head(path, &h, &size) < 0) {
			if (errno != ENOENT)
				printf("%-28s %-8s (unreadable: %s)\n", de->d_name, sub, strerror(errno));
			free(path);
			continue;
		}
		free(path);
		struct qfile_state st = { 0 };
		if (strcmp(sub, "deferred") == 0)
			qfile_state_read(dir, de->d_name, &st);
		char next[32];
		fmt_time(st.next, next, sizeof(next));
		printf("%-28s %-8s %-7s <%s> -> <%s> size %zu attempts %u next %s%s%s\n", de->d_name, sub, h.kind, h.from, h.to, size,
		    st.attempts, next, st.error[0] ? " error: " : "", st.error);
		(*count)++;
	}
	closedir(d);
	free(dir);
	return 0;
}

static int
delete_entry(const char *qdir, const char *id)
{
	if (!qfile_name_ok(id)) {
		cli_usage_error("queue delete: bad id '%s'", id);
		return 2;
	}
	const char *subs[] = { "new", "deferred" };
	for (int i = 0; i < 2; i++) {
		char *p = xasprintf("%s/%s/%s", qdir, subs[i], id);
		int r = unlink(p);
		free(p);
		if (r == 0) {
			p = xasprintf("%s/deferred/%s.st", qdir, id);
			unlink(p);
			free(p);
			printf("deleted %s\n", id);
			return 0;
		}
	}
	fprintf(stderr, "hikyaku: no queue entry %s\n", id);
	return 1;
}

int
cmd_queue(int argc, char **argv)
{
	const char *state = NULL, *config = NULL;
	const char *verb = NULL, *id = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--state") == 0 && i + 1 < argc)
			state = argv[++i];
		else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			config = argv[++i];
		else if (verb == NULL)
			verb = argv[i];
		else if (id == NULL)
			id = argv[i];
		else {
			cli_usage_error("queue: too many arguments");
			return 2;
		}
	}
	bool is_list = verb && strcmp(verb, "list") == 0, is_flush = verb && strcmp(verb, "flush") == 0,
	     is_del = verb && strcmp(verb, "delete") == 0;
	if (!(is_list || is_flush || is_del) || (is_del != (id != NULL))) {
		cli_usage_error("queue needs list, flush or delete ID");
		return 2;
	}
	if (cli_state_setup(config, state, &state) != 0)
		return CLI_EXIT_STATE;
	char *qdir = xasprintf("%s/queue", state);
	int rc = 0;
	if (is_list) {
		unsigned n = 0;
		if (list_dir(qdir, "new", &n) < 0 || list_dir(qdir, "deferred", &n) < 0) {
			fprintf(stderr, "hikyaku: cannot read %s: %s\n", qdir, strerror(errno));
			rc = 3;
		} else {
			printf("%u entr%s\n", n, n == 1 ? "y" : "ies");
		}
	} else if (is_flush) {
		char *p = xasprintf("%s/flush", qdir);
		int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0) {
			fprintf(stderr, "hikyaku: cannot create %s: %s\n", p, strerror(errno));
			rc = 3;
		} else {
			close(fd);
			printf("flush requested: the server retries every deferred entry at its next queue scan\n");
		}
		free(p);
	} else {
		rc = delete_entry(qdir, id);
	}
	free(qdir);
	return rc;
}
