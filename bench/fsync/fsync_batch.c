/*
 * fsync_batch.c - how many Maildir deliveries per second this disk makes
 * durable, one at a time and in batches, with the strategies the store's
 * batched commit (runtime/maildir.c) could use. Used to choose that
 * strategy; the numbers are in bench/fsync/README.md.
 *
 * A delivery is: create tmp/NAME (O_EXCL), write SIZE bytes, make the data
 * durable, rename into new/, make the rename durable. Strategies:
 *   single  per message: write, fsync(file), rename, fsync(new/)
 *           (what the peer's fsync_bench.c -d measures)
 *   each    per batch: write all; fsync each file; rename all; fsync each
 *           distinct new/ once (POSIX: correct on any file system)
 *   sfr     as each, but sync_file_range(WRITE) right after each write, so
 *           the writeback of all files overlaps before the first fsync
 *   syncfs  per batch: write all; syncfs; rename all; syncfs (Linux;
 *           also flushes every other writer's dirty data on the file system)
 *   one     per batch: write all + sync_file_range(WRITE|WAIT); fsync the
 *           last file; rename all; fsync one new/. Relies on ext4's single
 *           journal (one commit covers every earlier change); shown for
 *           comparison, not safe in general
 * THREADS writers run batches independently (concurrent SMTP deliveries);
 * each batch spreads its messages over DIRS mailboxes. With NOISE > 0 a
 * thread also writes NOISE MiB/s of never-synced data to a file on the same
 * file system (another tenant, a log, the SMTP spool), which is what syncfs
 * has to flush as well.
 *
 * build: cc -O2 -pthread -o build/fsync_batch bench/fsync/fsync_batch.c
 * usage: fsync_batch DIR STRATEGY [BATCH=1] [THREADS=1] [DIRS=BATCH]
 *        [SECONDS=3] [SIZE=4096] [NOISE=0]
 * Prints one JSON line. Files are removed at the end.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum strategy { S_SINGLE, S_EACH, S_SFR, S_SYNCFS, S_ONE };

static const char *base;
static enum strategy strat;
static int batch = 1, ndirs = 1;
static double seconds = 3;
static size_t size = 4096;
static char *payload;
static double noise_mib;
static volatile int stop_noise;

struct worker {
	int id;
	long ops, batches;
	double max_lat;
	long fsyncs;
	long seq;
	double elapsed;
};

static double
now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
die(const char *what)
{
	perror(what);
	exit(1);
}

static void
xfsync(int fd, struct worker *w)
{
	if (fsync(fd) != 0)
		die("fsync");
	w->fsyncs++;
}

static void *
run(void *arg)
{
	struct worker *w = arg;
	int *fds = calloc((size_t)batch, sizeof *fds);
	int *dfd = calloc((size_t)ndirs, sizeof *dfd);
	char (*tmp)[512] = calloc((size_t)batch, sizeof *tmp);
	char (*dst)[512] = calloc((size_t)batch, sizeof *dst);
	char p[512];
	for (int d = 0; d < ndirs; d++) {
		snprintf(p, sizeof p, "%s/w%d.m%d/new", base, w->id, d);
		if ((dfd[d] = open(p, O_RDONLY | O_DIRECTORY)) < 0)
			die(p);
	}
	double start = now(), end = start + seconds;
	long seq = 0;
	while (now() < end) {
		double t0 = now();
		for (int i = 0; i < batch; i++, seq++) {
			int d = i % ndirs;
			snprintf(tmp[i], sizeof tmp[i], "%s/w%d.m%d/tmp/%ld", base, w->id, d, seq);
			snprintf(dst[i], sizeof dst[i], "%s/w%d.m%d/new/%ld", base, w->id, d, seq);
			fds[i] = open(tmp[i], O_CREAT | O_EXCL | O_WRONLY, 0600);
			if (fds[i] < 0)
				die(tmp[i]);
			if (write(fds[i], payload, size) != (ssize_t)size)
				die("write");
			if (strat == S_SINGLE) {
				xfsync(fds[i], w);
				close(fds[i]);
				if (rename(tmp[i], dst[i]) != 0)
					die("rename");
				xfsync(dfd[d], w);
			} else if (strat == S_SFR) {
				sync_file_range(fds[i], 0, 0, SYNC_FILE_RANGE_WRITE);
			} else if (strat == S_ONE) {
				sync_file_range(fds[i], 0, 0, SYNC_FILE_RANGE_WRITE);
			}
		}
		if (strat != S_SINGLE) {
			if (strat == S_SYNCFS) {
				if (syncfs(fds[0]) != 0)
					die("syncfs");
				w->fsyncs++;
			} else if (strat == S_ONE) {
				for (int i = 0; i < batch; i++)
					sync_file_range(fds[i], 0, 0, SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
				xfsync(fds[batch - 1], w);
			} else {
				for (int i = 0; i < batch; i++)
					xfsync(fds[i], w);
			}
			for (int i = 0; i < batch; i++) {
				close(fds[i]);
				if (rename(tmp[i], dst[i]) != 0)
					die("rename");
			}
			if (strat == S_SYNCFS) {
				if (syncfs(dfd[0]) != 0)
					die("syncfs");
				w->fsyncs++;
			} else if (strat == S_ONE) {
				xfsync(dfd[0], w);
			} else {
				for (int d = 0; d < ndirs && d < batch; d++)
					xfsync(dfd[d], w);
			}
		}
		double lat = now() - t0;
		if (lat > w->max_lat)
			w->max_lat = lat;
		w->ops += batch;
		w->batches++;
	}
	w->elapsed = now() - start;
	w->seq = seq;
	for (int d = 0; d < ndirs; d++)
		close(dfd[d]);
	free(fds);
	free(dfd);
	free(tmp);
	free(dst);
	return NULL;
}

/* Buffered writes at noise_mib MiB/s into a 64 MiB ring file, never synced. */
static void *
noise(void *arg)
{
	(void)arg;
	char p[512];
	snprintf(p, sizeof p, "%s/noise", base);
	int fd = open(p, O_CREAT | O_TRUNC | O_WRONLY, 0600);
	if (fd < 0)
		die(p);
	static char chunk[1 << 20];
	memset(chunk, 'n', sizeof chunk);
	double start = now();
	long written = 0;
	while (!stop_noise) {
		double due = (now() - start) * noise_mib;
		if ((double)written < due) {
			if (pwrite(fd, chunk, sizeof chunk, (off_t)(written % 64) << 20) < 0)
				die("noise write");
			written++;
		} else {
			usleep(2000);
		}
	}
	close(fd);
	unlink(p);
	return NULL;
}

static void
mkdirs(int threads)
{
	char p[512];
	mkdir(base, 0700);
	for (int t = 0; t < threads; t++)
		for (int d = 0; d < ndirs; d++) {
			const char *sub[] = { "", "/tmp", "/new" };
			for (int k = 0; k < 3; k++) {
				snprintf(p, sizeof p, "%s/w%d.m%d%s", base, t, d, sub[k]);
				if (mkdir(p, 0700) != 0 && errno != EEXIST)
					die(p);
			}
		}
}

int
main(int argc, char **argv)
{
	static const char *names[] = { "single", "each", "sfr", "syncfs", "one" };
	int threads = 1;
	if (argc < 3) {
		fprintf(stderr, "usage: %s DIR single|each|sfr|syncfs|one [BATCH] [THREADS] [DIRS] [SECONDS] [SIZE]\n", argv[0]);
		return 2;
	}
	base = argv[1];
	strat = (enum strategy)-1;
	for (int i = 0; i < 5; i++)
		if (strcmp(argv[2], names[i]) == 0)
			strat = (enum strategy)i;
	if ((int)strat < 0)
		return fprintf(stderr, "unknown strategy %s\n", argv[2]), 2;
	if (argc > 3)
		batch = atoi(argv[3]);
	if (argc > 4)
		threads = atoi(argv[4]);
	ndirs = batch;
	if (argc > 5)
		ndirs = atoi(argv[5]);
	if (argc > 6)
		seconds = atof(argv[6]);
	if (argc > 7)
		size = strtoul(argv[7], NULL, 10);
	if (argc > 8)
		noise_mib = atof(argv[8]);
	if (strat == S_SINGLE)
		batch = 1;
	if (batch < 1 || threads < 1 || ndirs < 1)
		return fprintf(stderr, "bad numbers\n"), 2;
	if (ndirs > batch)
		ndirs = batch;
	payload = malloc(size);
	for (size_t i = 0; i < size; i++)
		payload[i] = (char)('a' + i % 26);
	mkdirs(threads);

	pthread_t noise_th;
	if (noise_mib > 0) {
		pthread_create(&noise_th, NULL, noise, NULL);
		usleep(500000);
	}
	struct worker *ws = calloc((size_t)threads, sizeof *ws);
	pthread_t *th = calloc((size_t)threads, sizeof *th);
	for (int t = 0; t < threads; t++) {
		ws[t].id = t;
		pthread_create(&th[t], NULL, run, &ws[t]);
	}
	long ops = 0, fsyncs = 0, batches = 0;
	double max_lat = 0, el = 0;
	for (int t = 0; t < threads; t++) {
		pthread_join(th[t], NULL);
		ops += ws[t].ops;
		fsyncs += ws[t].fsyncs;
		batches += ws[t].batches;
		if (ws[t].max_lat > max_lat)
			max_lat = ws[t].max_lat;
		if (ws[t].elapsed > el)
			el = ws[t].elapsed;
	}
	if (noise_mib > 0) {
		stop_noise = 1;
		pthread_join(noise_th, NULL);
	}
	/* cleanup outside the timed part */
	char p[512];
	for (int t = 0; t < threads; t++)
		for (long i = 0; i < ws[t].seq; i++) {
			snprintf(p, sizeof p, "%s/w%d.m%ld/new/%ld", base, t, (i % batch) % ndirs, i);
			unlink(p);
		}
	printf("{\"strategy\": \"%s\", \"batch\": %d, \"threads\": %d, \"dirs\": %d, \"size\": %zu, "
	       "\"seconds\": %.2f, \"ops\": %ld, \"ops_per_s\": %.1f, \"syncs_per_msg\": %.2f, "
	       "\"mean_batch_ms\": %.2f, \"max_batch_ms\": %.2f, \"noise_mib_s\": %.0f}\n",
	    names[strat], batch, threads, ndirs, size, el, ops, (double)ops / el, ops ? (double)fsyncs / (double)ops : 0,
	    batches ? el * 1000 / ((double)batches / threads) : 0, max_lat * 1000, noise_mib);
	free(ws);
	free(th);
	free(payload);
	return 0;
}
