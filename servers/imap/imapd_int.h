/*
 * imapd_int.h - what the files of the IMAP server share: the session, and
 * the job that carries one command to a worker thread and its response
 * back to the loop.
 *
 * One command at a time per session: while its job runs, the session reads
 * nothing (pipelined commands wait, in order), and the worker owns the
 * session's mailbox state (the store handle, the selected view); the loop
 * touches only the connection. A job writes the whole response (untagged
 * lines, then the tagged one) into job->out; a long one (FETCH of many
 * bodies) writes a chunk, sets `more`, and is run again once the output
 * has drained, so a response of any size costs bounded memory.
 */
#ifndef HK_IMAPD_INT_H
#define HK_IMAPD_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "accounts.h"
#include "arena.h"
#include "imap/imap_cmd.h"
#include "imap/imap_msg.h"
#include "imap/imap_reader.h"
#include "imapd_server.h"
#include "store.h"
#include "util.h"

#define IMAPD_CHUNK (256 * 1024)        /* response bytes a job writes before yielding */
#define IMAPD_DRAIN_LOW (64 * 1024)     /* run the next chunk when output falls below */
#define IMAPD_LITERAL_MAX_NOAUTH (8 * 1024)
#define IMAPD_LITERAL_MAX (64 * 1024)   /* any literal after login but an APPEND message */

enum imapd_state { IS_NOAUTH, IS_AUTH, IS_SELECTED, IS_LOGOUT };

struct imapd_job;
struct spool;

struct imapd_session {
	struct imapd_server *srv;
	struct conn *conn;
	uint64_t id;
	struct imap_reader *reader;
	enum imapd_state state;
	bool busy;          /* a job is in flight (or a SASL step): read nothing */
	bool dead;
	int refs;
	unsigned errors;    /* BAD replies, against cfg->max_errors */
	struct imapd_job *job; /* in flight, or waiting for the output to drain */
	bool await_drain;
	/* login */
	struct sasl_server *sasl; /* AUTHENTICATE in progress (line mode) */
	char *sasl_tag;
	char address[HK_ADDRESS_MAX + 1];
	char *root;               /* the user's Maildir */
	struct hk_store *st;      /* opened at login (worker) */
	uint64_t max_message_size;
	uint64_t quota_bytes;
	bool condstore;           /* ENABLE CONDSTORE or a CONDSTORE command seen */
	/* the selected folder, as this client knows it (worker-owned) */
	char *folder;
	int folder_fd;            /* hk_store_folder_open of it, -1 when none */
	bool readonly;
	struct hk_store_view view; /* seq n is view.v[n-1] */
	struct hk_store_keywords kwn; /* the folder's keyword letters */
	uint32_t *recent;          /* UIDs that are \Recent for this session, ascending */
	size_t nrecent;
	bool changed;              /* notified: another session or program changed the folder */
	const uint32_t *sync_skip; /* UIDs whose FETCH FLAGS the current command writes itself */
	size_t nsync_skip;
	/* IDLE */
	char *idle_tag;
	bool idle_sync_queued;
	bool wake_pending;        /* a change came while a job ran (loop-owned) */
	/* APPEND: the message literal goes to a spool as it comes (core/spool.h:
	 * memory, then a file written by workers); the loop stops reading
	 * while a write is behind (spool_wait) */
	struct spool *append_spool;
	bool spool_wait;
	bool spool_end;           /* ... for the last write of the literal */
	struct session_link link; /* in srv->sessions */
};

typedef void (*imapd_work_fn)(struct imapd_job *j);

struct imapd_job {
	struct imapd_session *s;
	struct arena arena;       /* the parsed command lives here */
	struct imap_cmd cmd;
	struct hk_buf out;        /* what the worker answered */
	imapd_work_fn work;       /* runs on a worker thread */
	imapd_work_fn done;       /* runs on the loop after `out` is queued (may be NULL) */
	bool more;                /* run `work` again when the output has drained */
	bool logout;              /* close once `out` has left */
	bool selected, unselected; /* state changes for the loop to make */
	bool authenticated;
	bool hold;                /* do not resume reading when done (a delayed NO will) */
	bool changed;             /* the selected folder changed: tell the other sessions */
	char *changed_other;      /* another folder changed (COPY, APPEND target); heap */
	void *state;              /* the command's own (a FETCH cursor) */
	void (*state_free)(void *state);
};

/* --- session (imapd_session.c) --------------------------------------------------- */

/* A new job for the session's current command; the session goes busy. */
struct imapd_job *imapd_job_new(struct imapd_session *s);
void imapd_job_submit(struct imapd_job *j, imapd_work_fn work);
/* "tag OK|NO|BAD text\r\n" into out. */
void imapd_tagged(struct imapd_job *j, const char *status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The CAPABILITY list for the session's state (logged in or not). */
void imapd_capabilities(const struct imapd_session *s, bool logged_in, struct hk_buf *out);

/* --- the selected mailbox (imapd_mailbox.c); worker side -------------------------- */

/* SELECT/EXAMINE: syncs the folder and writes the untagged responses of
 * RFC 3501 6.3.1 (and CONDSTORE's HIGHESTMODSEQ). -1 with a NO already in
 * out when the folder does not exist or cannot be read. */
int imapd_mailbox_select(struct imapd_job *j, const char *folder, bool readonly);
void imapd_mailbox_close(struct imapd_session *s);
/* Brings the client up to date: EXPUNGE (only when allow_expunge: not
 * during FETCH, STORE, SEARCH, RFC 3501 7.4.1), EXISTS, RECENT and FETCH
 * FLAGS for others' flag changes. */
void imapd_mailbox_sync(struct imapd_job *j, bool allow_expunge);
/* Opens view message i (O_RDONLY), finding it again when another session
 * renamed it; -1 (errno ENOENT) when it is gone. */
int imapd_open_message(struct imapd_session *s, size_t i);
/* Sequence number (1-based) of a UID in the view, 0 when not there. */
uint32_t imapd_seq_of(const struct imapd_session *s, uint32_t uid);
bool imapd_is_recent(const struct imapd_session *s, uint32_t uid);
/* Is uid in the ascending array v[0..n)? (binary search) */
bool imapd_uid_in(const uint32_t *v, size_t n, uint32_t uid);
/* The set (sequence numbers, or UIDs with `uid`) as indexes into the
 * view, ascending, no duplicates; *n_r of them. UIDs not in the view are
 * left out (RFC 3501 6.4.8); '*' is the last message. *bad_r: a sequence
 * number out of range (answer BAD). Heap (NULL when empty); free(). */
size_t *imapd_set_indexes(const struct imapd_session *s, const struct imap_seqset *set, bool uid, size_t *n_r,
    bool *bad_r);
/* "* n FETCH (FLAGS (...) UID u [MODSEQ (m)])" for the message at index i. */
void imapd_write_flags_fetch(struct imapd_job *j, size_t i, bool with_uid);
/* The message's flags as IMAP writes them. */
void imapd_write_msg_flags(struct imapd_session *s, struct hk_buf *out, const struct hk_store_uid_msg *m);
/* Store flag bits from the parser's IMAP_FLAG_* bits and back. */
uint32_t imapd_flags_to_store(uint32_t imap_flags);
/* Maildir's 'P' (passed) flag is the IMAP keyword $Forwarded (RFC 5788),
 * as in Dovecot: it is shown, stored and searched as that keyword. */
#define IMAPD_KW_FORWARDED "$Forwarded"
bool imapd_is_forwarded_kw(const char *keyword);

/* --- a message's bytes (imapd_content.c); worker side ----------------------------- */

struct imapd_content {
	char *buf, *map;   /* read, or mapped */
	size_t len;
	struct stat sb;    /* INTERNALDATE is st_mtime */
	struct imap_msg msg;
	bool have;
};
/* stat(2) of view message i (INTERNALDATE is st_mtime); -1 when gone. */
int imapd_stat_message(struct imapd_session *s, size_t i, struct stat *sb);
/* Loads view message i; -1 when its file is gone. */
int imapd_content_load(struct imapd_session *s, size_t i, struct imapd_content *c);
/* Frees; with keep_map a mapping is not unmapped but returned (a literal
 * streamed across chunks), NULL otherwise. */
char *imapd_content_free(struct imapd_content *c, bool keep_map);

/* --- the message cache (imapd_cache.c); worker side ----------------------------- */

/* The selected folder's cache for one command; NULL when it cannot be had
 * (then every message is read from its file). */
struct hk_store_cache *imapd_cache_open(struct imapd_session *s);
/* Writes what the command learned and frees (on the worker). */
void imapd_cache_close(struct imapd_session *s, struct hk_store_cache **c);
/* The record of view message i (c may be NULL: false). */
bool imapd_cache_get(struct imapd_session *s, struct hk_store_cache *c, size_t i, struct hk_store_cache_rec *r);
/* Records view message i from its loaded content (c may be NULL). */
void imapd_cache_fill(struct imapd_session *s, struct hk_store_cache *c, size_t i, struct imapd_content *ct);

/* --- commands (one file each group) ----------------------------------------------- */

void imapd_cmd_folders(struct imapd_job *j);   /* LIST LSUB CREATE DELETE RENAME (UN)SUBSCRIBE STATUS NAMESPACE */
void imapd_cmd_append(struct imapd_job *j);
void imapd_cmd_fetch(struct imapd_job *j);
void imapd_cmd_search(struct imapd_job *j);
void imapd_cmd_store(struct imapd_job *j);
void imapd_cmd_copy(struct imapd_job *j);      /* COPY and MOVE */
void imapd_cmd_expunge(struct imapd_job *j);   /* EXPUNGE, UID EXPUNGE, CLOSE */

/* --- notifications (imapd_notify.c); loop side ---------------------------------- */

struct imapd_notify *imapd_notify_new(struct imapd_server *srv);
void imapd_notify_free(struct imapd_notify **n);
void imapd_notify_watch(struct imapd_notify *n, struct imapd_session *s);   /* after SELECT */
void imapd_notify_unwatch(struct imapd_notify *n, struct imapd_session *s); /* UNSELECT, close */
/* Marks every other session with (root, folder) selected as changed and
 * wakes the IDLE ones. */
void imapd_notify_changed(struct imapd_notify *n, const char *root, const char *folder, const struct imapd_session *except);
/* The session was marked changed while in IDLE (imapd_session.c). */
void imapd_session_wake(struct imapd_session *s);

#endif
