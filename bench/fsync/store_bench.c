/*
 * store_bench.c - durable deliveries per second through the store API
 * itself (runtime/store.h), as the SMTP server will drive it: THREADS
 * worker threads each deliver SIZE-byte messages to one of 200 mailboxes
 * (the anchor's u001..u200), one message per SMTP transaction, or RCPTS
 * recipients per transaction. Numbers: bench/fsync/README.md.
 *
 * Modes:
 *   deliver    hk_store_deliver per recipient on the worker thread (FSYNC:
 *              2 fsyncs per message; concurrent threads' fsyncs merge in
 *              the kernel's journal commits)
 *   batch      one hk_store_batch per transaction, committed on the worker
 *              thread (SYNC=syncfs|fsync)
 *   committer  the worker stages one batch per transaction and hands it to
 *              the group committer (SYNC=syncfs|fsync), waiting for it
 *
 * build: see bench/fsync/run.sh (links build/<dir>/libhikyaku.a)
 * usage: store_bench DIR MODE [THREADS=1] [RCPTS=1] [SYNC=syncfs]
 *        [SECONDS=3] [SIZE=4096] [COMMITTER_THREADS=1]
 * Prints one JSON line: messages/s, mean and max transaction latency, CPU
 * ms per message (user+system of the whole process).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "store.h"

#define USERS 200

static const char *base;
static const char *mode;
static int rcpts = 1;
static enum hk_store_sync sync_mode = HK_STORE_SYNC_SYNCFS;
static double seconds = 3;
static size_t size = 4096;
static char *payload;
static struct hk_store_committer *committer;
static unsigned committer_threads = 1;
static char *roots[USERS];

struct worker {
	int id;
	long msgs, txns, errors;
	double lat_sum, lat_max;
};

static double
now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *
run(void *arg)
{
	struct worker *w = arg;
	struct hk_store_part part = { .data = payload, .fd = -1, .len = size };
	struct hk_store_settings set = { .create = false };
	double end = now() + seconds;
	unsigned next = (unsigned)w->id * 7919u;
	while (now() < end) {
		double t0 = now();
		struct hk_store *st[64];
		int n = rcpts < 64 ? rcpts : 64;
		for (int r = 0; r < n; r++)
			if (hk_store_open(roots[next++ % USERS], &set, &st[r]) != 0) {
				perror("open");
				exit(1);
			}
		int ok = 0;
		if (strcmp(mode, "deliver") == 0) {
			for (int r = 0; r < n; r++)
				ok += hk_store_deliver(st[r], NULL, &part, 1, NULL) == 0;
		} else {
			struct hk_store_batch *b = hk_store_batch_new(sync_mode);
			for (int r = 0; r < n; r++)
				if (hk_store_batch_add(b, st[r], NULL, &part, 1, NULL) != 0)
					w->errors++;
			for (int r = 0; r < n; r++)
				hk_store_close(&st[r]);
			if (strcmp(mode, "batch") == 0)
				hk_store_batch_commit(b);
			else
				hk_store_committer_commit(committer, b);
			for (size_t i = 0; i < hk_store_batch_count(b); i++)
				ok += hk_store_batch_result(b, i)->err == 0;
			hk_store_batch_free(&b);
		}
		for (int r = 0; r < n; r++)
			hk_store_close(&st[r]);
		w->errors += n - ok;
		w->msgs += ok;
		w->txns++;
		double lat = now() - t0;
		w->lat_sum += lat;
		if (lat > w->lat_max)
			w->lat_max = lat;
	}
	return NULL;
}

static double
cpu_seconds(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	    (double)ru.ru_stime.tv_usec / 1e6;
}

int
main(int argc, char **argv)
{
	int threads = 1;
	if (argc < 3) {
		fprintf(stderr, "usage: %s DIR deliver|batch|committer [THREADS] [RCPTS] [syncfs|fsync] [SECONDS] [SIZE]\n",
		    argv[0]);
		return 2;
	}
	base = argv[1];
	mode = argv[2];
	if (argc > 3)
		threads = atoi(argv[3]);
	if (argc > 4)
		rcpts = atoi(argv[4]);
	if (argc > 5)
		sync_mode = strcmp(argv[5], "fsync") == 0 ? HK_STORE_SYNC_FSYNC : HK_STORE_SYNC_SYNCFS;
	if (argc > 6)
		seconds = atof(argv[6]);
	if (argc > 7)
		size = strtoul(argv[7], NULL, 10);
	if (argc > 8)
		committer_threads = (unsigned)atoi(argv[8]);
	if (threads < 1 || rcpts < 1)
		return 2;
	payload = malloc(size);
	for (size_t i = 0; i < size; i++)
		payload[i] = (char)('a' + i % 26);
	memcpy(payload, "Subject: bench\r\n\r\n", size > 18 ? 18 : size);
	for (int u = 0; u < USERS; u++) {
		char user[16];
		snprintf(user, sizeof user, "u%03d", u + 1);
		roots[u] = hk_store_user_root(base, "bench.example", user);
		struct hk_store *st;
		struct hk_store_settings set = { .create = true }; /* quick when they exist */
		if (hk_store_open(roots[u], &set, &st) != 0) {
			perror(roots[u]);
			return 1;
		}
		hk_store_close(&st);
	}
	if (strcmp(mode, "committer") == 0)
		committer = hk_store_committer_new(sync_mode, committer_threads);

	struct worker *ws = calloc((size_t)threads, sizeof *ws);
	pthread_t *th = calloc((size_t)threads, sizeof *th);
	double c0 = cpu_seconds(), t0 = now();
	for (int t = 0; t < threads; t++) {
		ws[t].id = t;
		pthread_create(&th[t], NULL, run, &ws[t]);
	}
	long msgs = 0, txns = 0, errors = 0;
	double lat_sum = 0, lat_max = 0;
	for (int t = 0; t < threads; t++) {
		pthread_join(th[t], NULL);
		msgs += ws[t].msgs;
		txns += ws[t].txns;
		errors += ws[t].errors;
		lat_sum += ws[t].lat_sum;
		if (ws[t].lat_max > lat_max)
			lat_max = ws[t].lat_max;
	}
	double el = now() - t0, cpu = cpu_seconds() - c0;
	hk_store_committer_free(&committer);
	printf("{\"mode\": \"%s\", \"sync\": \"%s\", \"threads\": %d, \"rcpts\": %d, \"size\": %zu, \"seconds\": %.2f, "
	       "\"msgs\": %ld, \"msgs_per_s\": %.1f, \"errors\": %ld, \"mean_txn_ms\": %.2f, \"max_txn_ms\": %.2f, "
	       "\"cpu_ms_per_msg\": %.3f, \"committer_threads\": %u}\n",
	    mode, strcmp(mode, "deliver") == 0 ? "fsync" : sync_mode == HK_STORE_SYNC_FSYNC ? "fsync" : "syncfs", threads,
	    rcpts, size, el, msgs, (double)msgs / el, errors, txns ? lat_sum * 1000 / (double)txns : 0, lat_max * 1000,
	    msgs ? cpu * 1000 / (double)msgs : 0, strcmp(mode, "committer") == 0 ? committer_threads : 0);
	for (int u = 0; u < USERS; u++)
		free(roots[u]);
	free(ws);
	free(th);
	free(payload);
	return errors ? 1 : 0;
}
