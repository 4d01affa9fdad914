/*
 * bench_vm.c - the rule engine benchmark behind `make bench` (bench/run.sh
 * builds it against the project library and runs it; see bench/README.md).
 *
 * Per message it does the work a delivery does: hk_message_new on bytes
 * already in memory, hk_vm_run of the deliver stage of a personal-layer
 * program (compiled, written to .hkc and read back, as the servers load
 * it), hk_result_finalize, then frees everything. "parse" is only
 * hk_message_new + hk_message_free (headers and bodies are decoded lazily,
 * so this is the structure pass).
 *
 *   bench_vm table DATADIR R20 R1000 R10000  messages/s per core (CPU time),
 *                                            compile times, peak RSS
 *   bench_vm callgrind DATADIR parse|RULES N [MESSAGE...]
 *                                            under valgrind --tool=callgrind
 *                                            --instr-atstart=no --collect-atstart=no:
 *                                            one profile dump per message (below)
 *
 * Before anything is timed, every message is run once through every
 * program and its outcome (folder, flags) compared with DATADIR/manifest.txt;
 * a mismatch or a budget stop fails the run, so the benchmark never times a
 * run that did something else than the anchor's Sieve script.
 *
 * Environment: BENCH_MIN_TIME (seconds per measurement, default 1.0),
 * BENCH_REPS (measurements per cell, median reported, default 3).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef HAVE_CALLGRIND
#include <valgrind/callgrind.h>
#else
#define CALLGRIND_START_INSTRUMENTATION
#define CALLGRIND_TOGGLE_COLLECT
#define CALLGRIND_DUMP_STATS_AT(s) ((void)(s))
#endif

#include "compile.h"
#include "vm.h"

#define MAX_MSGS 64
#define RECIPIENT "u001@sieve.bench"

struct msg {
	char name[64];
	char env_from[128];
	int rules;           /* rules of rules20 the anchor evaluates */
	char outcome[64];    /* e.g. "Work+\Flagged" */
	char *raw;
	size_t len;
};

static struct msg msgs[MAX_MSGS];
static size_t nmsgs;

/* A row of the table: the messages it cycles through. */
struct row {
	const char *label;
	const char *size;
	const char *names[4];
};

static const struct row rows[] = {
	{ "plain text", "4k", { "personal-4k.eml" } },
	{ "multipart + attachment", "4k", { "work-4k.eml" } },
	{ "ISO-2022-JP", "4k", { "personal-ja-4k.eml" } },
	{ "anchor mix (4 kinds)", "4k", { "newsletter-4k.eml", "work-4k.eml", "spam-4k.eml", "personal-4k.eml" } },
	{ "plain text", "100k", { "personal-100k.eml" } },
	{ "multipart + attachment", "100k", { "work-100k.eml" } },
	{ "ISO-2022-JP", "100k", { "personal-ja-100k.eml" } },
	{ "anchor mix (4 kinds)", "100k", { "newsletter-100k.eml", "work-100k.eml", "spam-100k.eml", "personal-100k.eml" } },
};
#define NROWS (sizeof(rows) / sizeof(rows[0]))

static void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("bench_vm: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static double
cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double
env_double(const char *name, double def)
{
	const char *s = getenv(name);
	return s && *s ? atof(s) : def;
}

static void
load_messages(const char *dir)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/manifest.txt", dir);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		die("%s: %s", path, strerror(errno));
	struct msg m;
	memset(&m, 0, sizeof(m));
	while (nmsgs < MAX_MSGS && fscanf(f, "%63s %127s %d %63s", m.name, m.env_from, &m.rules, m.outcome) == 4) {
		snprintf(path, sizeof(path), "%s/%s", dir, m.name);
		if (read_file(path, 64u << 20, &m.raw, &m.len) < 0)
			die("%s: %s", path, strerror(errno));
		msgs[nmsgs++] = m;
		memset(&m, 0, sizeof(m));
	}
	fclose(f);
	if (nmsgs == 0)
		die("%s/manifest.txt lists no messages", dir);
}

static struct msg *
find_msg(const char *name)
{
	for (size_t i = 0; i < nmsgs; i++)
		if (strcmp(msgs[i].name, name) == 0)
			return &msgs[i];
	die("message %s is not in the manifest", name);
}

/* Compiles a personal-layer program and reloads it from its .hkc bytes,
 * the way a server gets it. */
static struct hk_program *
load_program(const char *path)
{
	struct hk_compile_opts o = { .layer = HK_LAYER_PERSONAL };
	struct diag d;
	diag_init(&d);
	struct hk_program *p = hk_compile_file(path, &o, &d);
	if (p == NULL || d.errors) {
		diag_print(&d, stderr, false);
		die("%s does not compile", path);
	}
	diag_fini(&d);
	struct hk_buf b, err;
	buf_init(&b);
	buf_init(&err);
	hk_program_write(p, &b);
	hk_program_unref(&p);
	if (hk_program_read(b.data, b.len, &p, &err) < 0)
		die("%s: reading the .hkc back failed: %s", path, err.data);
	buf_fini(&b);
	buf_fini(&err);
	return p;
}

/* --- one message ------------------------------------------------------------ */

struct ctx {
	const struct hk_program *prog; /* NULL: parse only */
	struct hk_vm_limits vlim;
	struct hk_message_limits mlim;
	struct hk_env env;
	struct hk_str rcpt;
};

static void
ctx_init(struct ctx *c, const struct hk_program *prog)
{
	memset(c, 0, sizeof(*c));
	c->prog = prog;
	if (prog)
		hk_vm_limits_for_layer(&c->vlim, prog->layer);
	hk_message_limits_default(&c->mlim);
	c->rcpt = HK_STR(RECIPIENT);
	hk_env_init(&c->env);
	c->env.stage = STAGE_DELIVER;
	c->env.now = 1760434200; /* the messages' Date */
	c->env.client_ip = HK_STR("127.0.0.1");
	c->env.client_helo = HK_STR("localhost");
	c->env.plan_name = HK_STR("standard");
	c->env.env_to = &c->rcpt;
	c->env.n_env_to = 1;
	c->env.recipient = c->rcpt;
}

static void
ctx_set_msg(struct ctx *c, const struct msg *m)
{
	c->env.env_from = (struct hk_str){ m->env_from, strlen(m->env_from) };
}

/* The folder(s) and flags of a final decision, e.g. "Work+\Flagged". */
static void
outcome_of(const struct hk_final *fin, char *out, size_t outlen)
{
	char folders[256] = "", flags[256] = "";
	for (size_t i = 0; i < fin->n; i++) {
		const struct hk_action *a = &fin->acts[i];
		if (a->suppressed)
			continue;
		if (a->kind == ACT_KEEP)
			snprintf(folders + strlen(folders), sizeof(folders) - strlen(folders), "%sINBOX", *folders ? "," : "");
		else if (a->kind == ACT_FILEINTO)
			snprintf(folders + strlen(folders), sizeof(folders) - strlen(folders), "%s%.*s", *folders ? "," : "",
			    (int)a->arg[0].len, a->arg[0].ptr);
		else if (a->kind == ACT_FLAG)
			snprintf(flags + strlen(flags), sizeof(flags) - strlen(flags), "+%.*s", (int)a->arg[0].len, a->arg[0].ptr);
		else
			snprintf(folders + strlen(folders), sizeof(folders) - strlen(folders), "%s?action%d", *folders ? "," : "",
			    a->kind);
	}
	snprintf(out, outlen, "%s%s", folders, flags);
}

/* The unit of work that is timed and counted. `check` (not timed) returns
 * the outcome. */
static void __attribute__((noinline))
process_one(struct ctx *c, const struct msg *m, char *check, size_t checklen)
{
	struct hk_message *msg = hk_message_new(m->raw, m->len, &c->mlim);
	if (c->prog) {
		struct hk_result res;
		struct hk_final fin;
		hk_result_init(&res);
		enum hk_vm_status st = hk_vm_run(c->prog, STAGE_DELIVER, msg, &c->env, &res, &c->vlim, NULL);
		hk_result_finalize(&res, msg, &c->env, NULL, &fin);
		if (check) {
			if (st == HK_VM_BUDGET || res.error)
				snprintf(check, checklen, "budget: %s", res.error ? res.error : "?");
			else
				outcome_of(&fin, check, checklen);
		}
		hk_result_fini(&res);
	}
	hk_message_free(&msg);
}

static void
verify(const struct hk_program *p, const char *what)
{
	struct ctx c;
	ctx_init(&c, p);
	for (size_t i = 0; i < nmsgs; i++) {
		char got[512];
		ctx_set_msg(&c, &msgs[i]);
		process_one(&c, &msgs[i], got, sizeof(got));
		if (strcmp(got, msgs[i].outcome) != 0)
			die("%s: %s: outcome %s, expected %s", what, msgs[i].name, got, msgs[i].outcome);
	}
}

/* --- timing ------------------------------------------------------------------- */

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Messages per CPU second over one row, median of `reps` runs of at least
 * `min_time` seconds each. */
static double
measure_row(const struct hk_program *p, const struct row *r, double min_time, int reps)
{
	struct ctx c;
	ctx_init(&c, p);
	const struct msg *set[4];
	size_t nset = 0;
	for (; nset < 4 && r->names[nset]; nset++)
		set[nset] = find_msg(r->names[nset]);
	for (int w = 0; w < 20; w++) { /* warm-up: caches, allocator */
		ctx_set_msg(&c, set[w % nset]);
		process_one(&c, set[w % nset], NULL, 0);
	}
	double rate[16];
	if (reps > 16)
		reps = 16;
	for (int k = 0; k < reps; k++) {
		unsigned long n = 0;
		double t0 = cpu_now(), t;
		do {
			for (int b = 0; b < 16; b++) {
				const struct msg *m = set[n % nset];
				ctx_set_msg(&c, m);
				process_one(&c, m, NULL, 0);
				n++;
			}
			t = cpu_now() - t0;
		} while (t < min_time);
		rate[k] = (double)n / t;
	}
	qsort(rate, (size_t)reps, sizeof(rate[0]), cmp_double);
	return rate[reps / 2];
}

/* Runs fn in a child so that its peak RSS is its own; the child writes
 * `n` doubles back. Returns the child's ru_maxrss in KiB. */
static long
in_child(void (*fn)(void *arg, double *out), void *arg, double *out, size_t n)
{
	int fd[2];
	if (pipe(fd) < 0)
		die("pipe: %s", strerror(errno));
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		close(fd[0]);
		fn(arg, out);
		size_t len = n * sizeof(*out);
		if (write(fd[1], out, len) != (ssize_t)len)
			_exit(1);
		_exit(0);
	}
	close(fd[1]);
	size_t len = n * sizeof(*out), got = 0;
	while (got < len) {
		ssize_t k = read(fd[0], (char *)out + got, len - got);
		if (k <= 0)
			break;
		got += (size_t)k;
	}
	close(fd[0]);
	int status;
	struct rusage ru;
	if (wait4(pid, &status, 0, &ru) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0 || got != len)
		die("a measurement child failed");
	return ru.ru_maxrss;
}

struct col_arg {
	const char *rules; /* NULL: parse only */
	double min_time;
	int reps;
};

static void
run_column(void *argp, double *out)
{
	struct col_arg *a = argp;
	struct hk_program *p = a->rules ? load_program(a->rules) : NULL;
	for (size_t i = 0; i < NROWS; i++)
		out[i] = measure_row(p, &rows[i], a->min_time, a->reps);
	if (p)
		hk_program_unref(&p);
}

static void
run_verify(void *argp, double *out)
{
	const char **files = argp;
	for (int k = 0; k < 2; k++) {
		struct hk_program *p = load_program(files[k]);
		verify(p, files[k]);
		hk_program_unref(&p);
	}
	out[0] = 0;
}

static void
run_nothing(void *argp, double *out)
{
	(void)argp;
	out[0] = 0;
}

struct compile_arg {
	const char *rules;
	double min_time;
};

/* out: compile ms (median), .hkc load ms (median), .hkc bytes, rules */
static void
run_compile(void *argp, double *out)
{
	struct compile_arg *a = argp;
	double tc[64], tl[64];
	int n = 0;
	double total = 0;
	struct hk_buf b;
	buf_init(&b);
	while (n < 64 && (n < 3 || total < a->min_time)) {
		struct hk_compile_opts o = { .layer = HK_LAYER_PERSONAL };
		struct diag d;
		diag_init(&d);
		double t0 = cpu_now();
		struct hk_program *p = hk_compile_file(a->rules, &o, &d);
		double t1 = cpu_now();
		if (p == NULL)
			die("%s does not compile", a->rules);
		diag_fini(&d);
		buf_reset(&b);
		hk_program_write(p, &b);
		out[3] = p->nrules;
		hk_program_unref(&p);
		struct hk_buf err;
		buf_init(&err);
		double t2 = cpu_now();
		if (hk_program_read(b.data, b.len, &p, &err) < 0)
			die("%s: .hkc refused: %s", a->rules, err.data);
		double t3 = cpu_now();
		hk_program_unref(&p);
		buf_fini(&err);
		tc[n] = (t1 - t0) * 1e3;
		tl[n] = (t3 - t2) * 1e3;
		total += t3 - t0;
		n++;
	}
	qsort(tc, (size_t)n, sizeof(tc[0]), cmp_double);
	qsort(tl, (size_t)n, sizeof(tl[0]), cmp_double);
	out[0] = tc[n / 2];
	out[1] = tl[n / 2];
	out[2] = (double)b.len;
	buf_fini(&b);
}

static int
cmd_table(int argc, char **argv)
{
	if (argc != 6)
		die("usage: bench_vm table DATADIR RULES20 RULES1000 RULES10000");
	const char *r20 = argv[3], *r1000 = argv[4], *r10000 = argv[5];
	double min_time = env_double("BENCH_MIN_TIME", 1.0);
	int reps = (int)env_double("BENCH_REPS", 3);
	if (reps < 1)
		reps = 1;
	load_messages(argv[2]);

	/* outcomes first, in a child so that the parent (which every child
	 * starts as a copy of) holds only the messages */
	const char *both[2] = { r20, r1000 };
	double dummy;
	in_child(run_verify, both, &dummy, 1);
	printf("outcomes: all %zu messages filed as the anchor's Sieve script files them, with %s and %s\n\n", nmsgs, r20,
	    r1000);

	double col[3][NROWS];
	long rss[3];
	const char *names[3] = { "parse only", "20 rules", "1000 rules" };
	struct col_arg ca[3] = { { NULL, min_time, reps }, { r20, min_time, reps }, { r1000, min_time, reps } };
	long rss_base = in_child(run_nothing, NULL, &dummy, 1);
	for (int k = 0; k < 3; k++)
		rss[k] = in_child(run_column, &ca[k], col[k], NROWS);

	printf("messages per second per core (CPU time; median of %d runs of >= %.1f s)\n", reps, min_time);
	printf("  each: hk_message_new [+ hk_vm_run deliver + hk_result_finalize] + free\n\n");
	printf("| %-4s | %-22s | %8s | %12s | %12s | %12s |\n", "size", "message", "bytes", names[0], names[1], names[2]);
	printf("|------|------------------------|----------|--------------|--------------|--------------|\n");
	for (size_t i = 0; i < NROWS; i++) {
		size_t bytes = 0, n = 0;
		for (; n < 4 && rows[i].names[n]; n++)
			bytes += find_msg(rows[i].names[n])->len;
		printf("| %-4s | %-22s | %8zu | %12.0f | %12.0f | %12.0f |\n", rows[i].size, rows[i].label, bytes / n, col[0][i],
		    col[1][i], col[2][i]);
	}
	printf("\nmicroseconds per message\n\n");
	printf("| %-4s | %-22s | %12s | %12s | %12s |\n", "size", "message", names[0], names[1], names[2]);
	printf("|------|------------------------|--------------|--------------|--------------|\n");
	for (size_t i = 0; i < NROWS; i++)
		printf("| %-4s | %-22s | %12.2f | %12.2f | %12.2f |\n", rows[i].size, rows[i].label, 1e6 / col[0][i],
		    1e6 / col[1][i], 1e6 / col[2][i]);

	printf("\ncompile (hk_compile_file: parse, check, codegen, verify, regex JIT) and .hkc load (hk_program_read), CPU ms, median\n\n");
	printf("| %-28s | %6s | %10s | %10s | %10s | %13s |\n", "file", "rules", "compile ms", "load ms", ".hkc bytes", "peak RSS KiB");
	printf("|------------------------------|--------|------------|------------|------------|---------------|\n");
	const char *files[3] = { r20, r1000, r10000 };
	for (int k = 0; k < 3; k++) {
		double out[4];
		struct compile_arg a = { files[k], min_time };
		long r = in_child(run_compile, &a, out, 4);
		const char *base = strrchr(files[k], '/');
		printf("| %-28s | %6.0f | %10.2f | %10.2f | %10.0f | %13ld |\n", base ? base + 1 : files[k], out[3], out[0], out[1],
		    out[2], r);
	}

	size_t mail = 0;
	for (size_t i = 0; i < nmsgs; i++)
		mail += msgs[i].len;
	printf("\npeak RSS (ru_maxrss of a child process; every child holds the %zu messages, %zu KiB of mail)\n\n",
	    nmsgs, mail / 1024);
	printf("| %-32s | %13s |\n", "process", "peak RSS KiB");
	printf("|----------------------------------|---------------|\n");
	printf("| %-32s | %13ld |\n", "baseline (messages loaded)", rss_base);
	for (int k = 0; k < 3; k++)
		printf("| %-32s | %13ld |\n", names[k], rss[k]);
	return 0;
}

/* --- callgrind ------------------------------------------------------------------ */

/* For each message (all of the manifest, or those named) dumps a profile
 * "RULES MESSAGE first" (one run of it; for the first message named, the
 * first run of the process) and "RULES MESSAGE nN" (the next N runs). Only
 * process_one is collected: loading, compiling and the loop are not. */
static int
cmd_callgrind(int argc, char **argv)
{
	if (argc < 5)
		die("usage: bench_vm callgrind DATADIR parse|RULES N [MESSAGE...]");
	load_messages(argv[2]);
	const char *mode = argv[3];
	int n = atoi(argv[4]);
	/* no verify() here: the first message counted is the first one this
	 * process runs, as in a fresh delivery process (table mode verifies) */
	struct hk_program *p = strcmp(mode, "parse") == 0 ? NULL : load_program(mode);
	const char *base = strrchr(mode, '/');
	base = base ? base + 1 : mode;
	struct ctx c;
	ctx_init(&c, p);
	CALLGRIND_START_INSTRUMENTATION;
	for (int a = 5; a < argc || (argc == 5 && a - 5 < (int)nmsgs); a++) {
		const struct msg *m = argc > 5 ? find_msg(argv[a]) : &msgs[a - 5];
		char label[256];
		ctx_set_msg(&c, m);
		CALLGRIND_TOGGLE_COLLECT;
		process_one(&c, m, NULL, 0);
		CALLGRIND_TOGGLE_COLLECT;
		snprintf(label, sizeof(label), "%s %s first", base, m->name);
		CALLGRIND_DUMP_STATS_AT(label);
		CALLGRIND_TOGGLE_COLLECT;
		for (int i = 0; i < n; i++)
			process_one(&c, m, NULL, 0);
		CALLGRIND_TOGGLE_COLLECT;
		snprintf(label, sizeof(label), "%s %s n%d", base, m->name, n);
		CALLGRIND_DUMP_STATS_AT(label);
	}
	if (p)
		hk_program_unref(&p);
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "table") == 0)
		return cmd_table(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "callgrind") == 0)
		return cmd_callgrind(argc, argv);
	die("usage: bench_vm table|callgrind ...");
}
