/*
 * replylog.c - the auto-reply log in GDBM (see replylog.h).
 *
 * SECURITY: the file is ours, but keys and values are still bounded and
 * parsed defensively; a damaged entry is ignored, never trusted.
 */
#include "replylog.h"

#include <errno.h>
#include <gdbm.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static GDBM_FILE
open_db(const char *path, int mode)
{
	for (int tries = 0; tries < 50; tries++) {
		GDBM_FILE db = gdbm_open(path, 0, mode | GDBM_CLOEXEC, 0600, NULL);
		if (db || (gdbm_errno != GDBM_CANT_BE_WRITER && gdbm_errno != GDBM_CANT_BE_READER))
			return db;
		struct timespec ts = { 0, 20 * 1000000 }; /* another process has it: wait */
		nanosleep(&ts, NULL);
	}
	return NULL;
}

static size_t
make_key(struct hk_str recipient, struct hk_str sender, char *key, size_t cap)
{
	if (recipient.len + sender.len + 1 > cap)
		return 0;
	for (size_t i = 0; i < recipient.len; i++)
		key[i] = ascii_lower(recipient.ptr[i]);
	key[recipient.len] = '\0';
	for (size_t i = 0; i < sender.len; i++)
		key[recipient.len + 1 + i] = ascii_lower(sender.ptr[i]);
	return recipient.len + 1 + sender.len;
}

static int64_t
parse_when(datum v)
{
	if (v.dptr == NULL || v.dsize <= 0 || v.dsize > 20)
		return -1;
	int64_t t = 0;
	for (int i = 0; i < v.dsize; i++) {
		if (v.dptr[i] < '0' || v.dptr[i] > '9')
			return -1;
		t = t * 10 + (v.dptr[i] - '0');
	}
	return t;
}

bool
hk_replylog_recent(const char *path, struct hk_str recipient, struct hk_str sender, int64_t interval, int64_t now)
{
	char key[600];
	size_t kl = make_key(recipient, sender, key, sizeof(key));
	if (kl == 0)
		return false;
	pthread_mutex_lock(&mu);
	GDBM_FILE db = open_db(path, GDBM_READER);
	bool recent = false;
	if (db) {
		datum k = { key, (int)kl };
		datum v = gdbm_fetch(db, k);
		int64_t when = parse_when(v);
		free(v.dptr);
		recent = when >= 0 && now - when < interval;
		gdbm_close(db);
	}
	pthread_mutex_unlock(&mu);
	return recent;
}

int
hk_replylog_record(const char *path, struct hk_str recipient, struct hk_str sender, int64_t now)
{
	char key[600], val[24];
	size_t kl = make_key(recipient, sender, key, sizeof(key));
	if (kl == 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	int vl = snprintf(val, sizeof(val), "%lld", (long long)now);
	pthread_mutex_lock(&mu);
	GDBM_FILE db = open_db(path, GDBM_WRCREAT);
	int rc = -1;
	if (db) {
		datum k = { key, (int)kl }, v = { val, vl };
		if (gdbm_store(db, k, v, GDBM_REPLACE) == 0 && gdbm_sync(db) == 0)
			rc = 0;
		gdbm_close(db);
	}
	pthread_mutex_unlock(&mu);
	return rc;
}

/* Visits every entry; `drop` decides which to delete. */
static int
walk(const char *path, const char *recipient, bool clear, struct hk_replylog_entry **v_r, size_t *n_r)
{
	pthread_mutex_lock(&mu);
	GDBM_FILE db = open_db(path, clear ? GDBM_WRITER : GDBM_READER);
	*n_r = 0;
	if (v_r)
		*v_r = NULL;
	if (db == NULL) {
		pthread_mutex_unlock(&mu);
		return gdbm_errno == GDBM_FILE_OPEN_ERROR || errno == ENOENT ? 0 : -1;
	}
	size_t cap = 0;
	datum *dead = NULL;
	size_t ndead = 0, capdead = 0;
	for (datum k = gdbm_firstkey(db); k.dptr; ) {
		const char *nul = memchr(k.dptr, '\0', (size_t)k.dsize);
		bool mine = nul && (recipient == NULL || (strlen(recipient) == (size_t)(nul - k.dptr) &&
		    strncasecmp(recipient, k.dptr, (size_t)(nul - k.dptr)) == 0));
		if (mine && clear) {
			dead = xgrow(dead, &capdead, ndead + 1, sizeof(*dead));
			dead[ndead++] = k;
		} else if (mine && v_r) {
			datum v = gdbm_fetch(db, k);
			*v_r = xgrow(*v_r, &cap, *n_r + 1, sizeof(**v_r));
			struct hk_replylog_entry *e = &(*v_r)[(*n_r)++];
			snprintf(e->recipient, sizeof(e->recipient), "%.*s", (int)(nul - k.dptr), k.dptr);
			snprintf(e->sender, sizeof(e->sender), "%.*s", (int)(k.dsize - (nul - k.dptr) - 1), nul + 1);
			e->when = parse_when(v);
			free(v.dptr);
		}
		datum next = gdbm_nextkey(db, k);
		if (!(mine && clear))
			free(k.dptr);
		k = next;
	}
	for (size_t i = 0; i < ndead; i++) {
		gdbm_delete(db, dead[i]);
		free(dead[i].dptr);
	}
	if (clear) {
		*n_r = ndead;
		gdbm_sync(db);
	}
	free(dead);
	gdbm_close(db);
	pthread_mutex_unlock(&mu);
	return 0;
}

int
hk_replylog_list(const char *path, const char *recipient, struct hk_replylog_entry **v_r, size_t *n_r)
{
	return walk(path, recipient, false, v_r, n_r);
}

int
hk_replylog_clear(const char *path, const char *recipient, size_t *n_r)
{
	return walk(path, recipient, true, NULL, n_r);
}
