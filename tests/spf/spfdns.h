/*
 * spfdns.h - test helper (header only, included by tests/unit/test_dns.c
 * and test_spf.c): starts tests/spf/spfdns.py, the loopback DNS server
 * that serves the RFC 7208 suite's zones, reads the JSON manifest it
 * prints (one UDP+TCP port per scenario), and stops it again.
 *
 * The server runs as /usr/bin/python3 (Debian's python3-dnslib and
 * python3-yaml; HK_PYTHON overrides) from the repository root, which is
 * where `make check` runs the tests. It listens on 127.0.0.1 only. Its
 * stdin is a pipe from us: when the test exits, even by a crash, the pipe
 * closes and the server ends. Test data: ../shared/testdata/spf, or
 * HK_SPF_TESTDATA.
 */
#ifndef HK_TEST_SPFDNS_H
#define HK_TEST_SPFDNS_H

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SPFDNS_SCRIPT "tests/spf/spfdns.py"
#define SPFDNS_START_MS 20000 /* python + dnslib + yaml start, generous for CI */

struct spfdns {
	pid_t pid;
	int to_child;
	json_t *manifest; /* {"scenarios": [...]} */
	char error[256];
};

static inline const char *
spfdns_testdata(void)
{
	const char *d = getenv("HK_SPF_TESTDATA");
	return d && *d ? d : "../shared/testdata/spf";
}

static long
spfdns_ms_since(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

/* Starts the server on the given zone files (NULL-terminated); 0 or -1
 * with s->error set. */
static int
spfdns_start(struct spfdns *s, const char *const *files)
{
	int in[2], out[2];
	const char *py = getenv("HK_PYTHON");
	char *argv[16];
	size_t n = 0;

	memset(s, 0, sizeof(*s));
	s->pid = -1;
	s->to_child = -1;
	if (!py || !*py)
		py = "/usr/bin/python3";
	argv[n++] = (char *)(uintptr_t)py;
	argv[n++] = (char *)(uintptr_t)SPFDNS_SCRIPT;
	for (size_t i = 0; files[i] && n < 15; i++)
		argv[n++] = (char *)(uintptr_t)files[i];
	argv[n] = NULL;
	for (size_t i = 0; files[i]; i++)
		if (access(files[i], R_OK) != 0) {
			snprintf(s->error, sizeof(s->error), "cannot read %.200s: %s", files[i], strerror(errno));
			return -1;
		}
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0) {
		snprintf(s->error, sizeof(s->error), "pipe: %s", strerror(errno));
		return -1;
	}
	fflush(stdout);
	fflush(stderr);
	s->pid = fork();
	if (s->pid < 0) {
		snprintf(s->error, sizeof(s->error), "fork: %s", strerror(errno));
		return -1;
	}
	if (s->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		dup2(in[0], 0);
		dup2(out[1], 1);
		execv(py, argv);
		fprintf(stderr, "spfdns: exec %s: %s\n", py, strerror(errno));
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	s->to_child = in[1];

	/* one line of JSON */
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	size_t len = 0, cap = 1 << 16;
	char *line = malloc(cap);
	for (;;) {
		long left = SPFDNS_START_MS - spfdns_ms_since(&t0);
		struct pollfd p = { out[0], POLLIN, 0 };
		if (left <= 0 || poll(&p, 1, (int)left) <= 0) {
			snprintf(s->error, sizeof(s->error), "no manifest from %s within %d ms", SPFDNS_SCRIPT,
				 SPFDNS_START_MS);
			break;
		}
		if (len + 4096 > cap)
			line = realloc(line, cap *= 2);
		ssize_t r = read(out[0], line + len, cap - len - 1);
		if (r <= 0) {
			snprintf(s->error, sizeof(s->error),
				 "%s exited before its manifest (is python3-dnslib installed? run with %s)",
				 SPFDNS_SCRIPT, py);
			break;
		}
		len += (size_t)r;
		if (memchr(line, '\n', len)) {
			json_error_t err;
			s->manifest = json_loadb(line, len, 0, &err);
			if (!s->manifest)
				snprintf(s->error, sizeof(s->error), "bad manifest: %s", err.text);
			break;
		}
	}
	free(line);
	close(out[0]);
	if (!s->manifest) {
		close(s->to_child);
		s->to_child = -1;
		kill(s->pid, SIGTERM);
		waitpid(s->pid, NULL, 0);
		s->pid = -1;
		return -1;
	}
	return 0;
}

static void
spfdns_stop(struct spfdns *s)
{
	if (s->to_child >= 0)
		close(s->to_child);
	s->to_child = -1;
	if (s->pid > 0) {
		int st;
		for (int i = 0; i < 200; i++) { /* it exits on end of file */
			if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
				s->pid = -1;
				break;
			}
			usleep(10000);
		}
		if (s->pid > 0) {
			kill(s->pid, SIGTERM);
			waitpid(s->pid, &st, 0);
			s->pid = -1;
		}
	}
	json_decref(s->manifest);
	s->manifest = NULL;
}

/* The scenario of `file` (base name) number `index`, or NULL. */
static json_t *
spfdns_scenario(const struct spfdns *s, const char *file, int index)
{
	size_t i;
	json_t *sc;
	json_array_foreach(json_object_get(s->manifest, "scenarios"), i, sc)
	{
		if (strcmp(json_string_value(json_object_get(sc, "file")), file) == 0 &&
		    json_integer_value(json_object_get(sc, "index")) == index)
			return sc;
	}
	return NULL;
}

/* "127.0.0.1:PORT" of a scenario, for dns_config.servers. */
static void
spfdns_server(const json_t *sc, char *buf, size_t size)
{
	snprintf(buf, size, "127.0.0.1:%d", (int)json_integer_value(json_object_get(sc, "port")));
}

#endif
