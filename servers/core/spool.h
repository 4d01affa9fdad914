/*
 * spool.h - a message as it arrives (SMTP DATA, IMAP APPEND), kept off
 * the event loop's disk path.
 *
 * The loop appends the client's bytes (spool_add). Up to SPOOL_MEM_MAX
 * they stay in memory: most mail is a few KiB, and the worker that
 * delivers it reads it from there, with no file created, written, read
 * back and unlinked. Beyond that the bytes go to a file in the spool
 * directory, written by worker jobs (one at a time per spool, in order);
 * the loop never calls mkstemp or write on it, since either can wait for
 * the disk (a full journal, dirty-page throttling) and stall every
 * session of the loop. While a write is in flight the loop keeps
 * buffering up to SPOOL_HIGH, then stops reading the client
 * (spool_blocked) until the `wake` callback says the write is done.
 *
 * Ownership: the loop owns the spool. A worker may read it (spool_read_all,
 * spool_parts) only while no write is in flight (!spool_busy) and the loop
 * does not touch it (a session's hook or job is running). spool_free with
 * a write in flight leaves the file to that job, which removes it.
 *
 * Errors: the first failure to create or write the file is kept
 * (spool_error); later bytes are counted and dropped, so the session reads
 * the message to its end and then refuses it, losing nothing it said OK to.
 */
#ifndef HK_SPOOL_H
#define HK_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define SPOOL_MEM_MAX (256 * 1024) /* in memory up to this; beyond, to a file in chunks of it */
#define SPOOL_HIGH (1024 * 1024)   /* buffered while a write is in flight: stop reading above */

struct worker_pool;
struct spool;

/* `prefix`: the file name's start in `dir` (mkstemp adds .XXXXXX). wake
 * runs on the loop after each write, unless the spool was freed. */
struct spool *spool_new(struct worker_pool *wp, const char *dir, const char *prefix, void (*wake)(void *arg),
    void *arg);
/* Loop (or a worker whose job owns the session, with no write in flight):
 * frees it; a file it made is removed (by the write in flight, if one
 * is). NULL-safe. */
void spool_free(struct spool **sp);

/* Loop: appends; may start a write. */
void spool_add(struct spool *sp, const void *data, size_t len);
/* A write is in flight: a worker must not read the spool yet. */
bool spool_busy(const struct spool *sp);
/* A write is in flight and SPOOL_HIGH is buffered: stop feeding. */
bool spool_blocked(const struct spool *sp);
/* The errno of the first failed create or write, 0 when none. */
int spool_error(const struct spool *sp);
/* Bytes added so far (written or not, dropped after an error included). */
uint64_t spool_size(const struct spool *sp);

/* Worker (not busy): the whole message in one allocation (free() it);
 * -1 with errno (EFBIG beyond max). */
int spool_read_all(const struct spool *sp, size_t max, char **data_r, size_t *len_r);
/* Worker (not busy): the message as at most two store parts (the file,
 * then what is still in memory); the count. */
size_t spool_parts(const struct spool *sp, struct hk_store_part parts[2]);

#endif
