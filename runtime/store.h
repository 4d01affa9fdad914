/*
 * store.h - the mail store: one user's mailbox (folders and the messages in
 * them), shared by SMTP delivery, POP3, IMAP and webmail so there is one
 * locking and indexing story. One back end today, Maildir++ laid out as
 * Dovecot lays it out (runtime/maildir*.c); a back end is one file behind
 * the function table in store_backend.h.
 *
 * Place in the pipeline: after the `deliver` rules have decided, the
 * delivery code turns each keep / fileinto / flag / reject into a staged
 * message (hk_store_batch_add), and commits the batch (or hands it to the
 * group committer) before the SMTP server answers 250. A message is durable
 * and visible when, and only when, its result says so.
 *
 * BLOCKING: every call here does file-system I/O and may sleep in fsync for
 * milliseconds. Call it from worker threads, never on an event loop (see
 * doc/architecture.md: "nothing that blocks runs on a loop").
 *
 * Threads: a struct hk_store is used by one thread at a time; open one per
 * session or job (opening is a few stat calls). Any number of handles, in
 * any number of threads and processes, may work on the same mailbox at
 * once: delivery needs no lock (Maildir), quota updates are atomic appends.
 * A batch may hold messages of several mailboxes and does not need the
 * stores after hk_store_batch_add returns (they may be closed).
 *
 * Errors: functions return 0 or -1 with errno set to what went wrong
 * (ENOSPC, EDQUOT, EFBIG, EACCES, ENOENT, EEXIST, EINVAL, EIO ...);
 * hk_store_error() has the detail for the log (which call, which path).
 * hk_store_reply() maps an errno to the SMTP reply to give.
 *
 * Names: folder names at this API are UTF-8 with "/" as the hierarchy
 * separator ("Work/Reports", "日本語"); "INBOX" (any case) is the mailbox
 * root. hk_store_folder_name_ok() says which names are allowed; the back
 * end chooses the on-disk spelling.
 *
 * Ownership: strings returned in results and lists belong to the batch or
 * the list and die with it.
 */
#ifndef HK_STORE_H
#define HK_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util.h"

struct hk_message;
struct hk_env;
struct hk_action;
struct hk_compose_ctx;

/* --- limits ------------------------------------------------------------ */

#define HK_STORE_FOLDER_NAME_MAX 255       /* bytes of UTF-8 */
#define HK_STORE_FOLDER_DEPTH_MAX 16       /* "a/b/.../p" */
#define HK_STORE_FOLDERS_MAX 10000         /* listed per mailbox */
#define HK_STORE_KEYWORDS_MAX 26           /* per folder: Maildir letters a-z */
#define HK_STORE_KEYWORD_LEN_MAX 64        /* as the language's `flag` */
#define HK_STORE_BATCH_MAX 4096            /* messages per batch */
#define HK_STORE_PARTS_MAX 1024            /* pieces of one message */
#define HK_STORE_SCAN_MAX 1000000          /* messages listed per folder */
#define HK_STORE_TMP_MAX_AGE (36 * 3600)   /* tmp/ files older are garbage (Maildir spec) */
#define HK_STORE_NAME_PART_MAX 255         /* user and domain in a mailbox path */

/* --- flags --------------------------------------------------------------
 * Maildir keeps flags as letters after ":2,". `sys` has one bit per
 * upper-case letter (bit c - 'A'), so unknown ones survive a rename; `kw`
 * one bit per keyword letter a-z (which keyword is which is per folder:
 * hk_store_keywords). */
#define HK_STORE_FLAG(c) (1u << ((c) - 'A'))
#define HK_STORE_DRAFT HK_STORE_FLAG('D')    /* \Draft */
#define HK_STORE_FLAGGED HK_STORE_FLAG('F')  /* \Flagged */
#define HK_STORE_PASSED HK_STORE_FLAG('P')   /* forwarded ($Forwarded) */
#define HK_STORE_ANSWERED HK_STORE_FLAG('R') /* \Answered */
#define HK_STORE_SEEN HK_STORE_FLAG('S')     /* \Seen */
#define HK_STORE_DELETED HK_STORE_FLAG('T')  /* \Deleted ("trashed") */

/* "\Seen" -> HK_STORE_SEEN (case-insensitive), 0 for anything else. */
uint32_t hk_store_flag_from_imap(const char *name, size_t len);

/* --- opening a mailbox --------------------------------------------------- */

struct hk_store;

/* The plan's limits; 0 means unlimited. */
struct hk_store_quota {
	uint64_t bytes;
	uint64_t count;
};

struct hk_store_settings {
	struct hk_store_quota quota;
	/* Create the mailbox root and the standard folders (INBOX, Sent,
	 * Drafts, Trash, Junk, Rejected) when missing, durably. Otherwise a
	 * missing mailbox is ENOENT. */
	bool create;
};

/* `root` is the Maildir directory, e.g. from hk_store_user_root. */
int hk_store_open(const char *root, const struct hk_store_settings *set, struct hk_store **st_r);
void hk_store_close(struct hk_store **st);

/* The detail of the last failure on this handle, e.g.
 * "fsync(.Work/tmp/1700000000.M1P2Q3R...): No space left on device". */
const char *hk_store_error(const struct hk_store *st);

/* "<var>/domains/<domain>/users/<user>/Maildir", heap-allocated; NULL with
 * EINVAL when domain or user could escape their directory (empty, ".",
 * "..", leading dot, '/', control characters, longer than
 * HK_STORE_NAME_PART_MAX). */
char *hk_store_user_root(const char *var, const char *domain, const char *user);

/* --- folders --------------------------------------------------------------- */

enum hk_store_special {
	HK_STORE_SPECIAL_NONE,
	HK_STORE_SPECIAL_INBOX,
	HK_STORE_SPECIAL_SENT,     /* RFC 6154 \Sent */
	HK_STORE_SPECIAL_DRAFTS,   /* \Drafts */
	HK_STORE_SPECIAL_TRASH,    /* \Trash */
	HK_STORE_SPECIAL_JUNK,     /* \Junk */
	HK_STORE_SPECIAL_REJECTED, /* header copies of rejected mail (no RFC 6154 attribute) */
};

/* The standard folders, created by hk_store_open with settings->create. */
extern const char *const hk_store_standard_folders[]; /* NULL-terminated; INBOX first */

/* Allowed: 1..HK_STORE_FOLDER_NAME_MAX bytes of valid UTF-8, at most
 * HK_STORE_FOLDER_DEPTH_MAX levels, no empty level (leading, trailing or
 * double "/"), no level starting with ".", no "..", no control characters
 * (C0, DEL, C1), no '\', '*' or '%' (IMAP LIST wildcards). */
bool hk_store_folder_name_ok(const char *name);
/* The canonical spelling: "inbox/x" -> "INBOX/x". NULL with EINVAL when
 * the name is not allowed. Heap-allocated. */
char *hk_store_folder_canon(const char *name);
enum hk_store_special hk_store_folder_special(const char *name);

/* EEXIST when it exists; the parents need not exist (Maildir++ has no real
 * hierarchy: "Work/Reports" without "Work" is legal and IMAP lists Work as
 * \NonExistent). */
int hk_store_folder_create(struct hk_store *st, const char *name);
/* Creates the folder and its missing parents; 0 when it already exists. */
int hk_store_folder_ensure(struct hk_store *st, const char *name);
bool hk_store_folder_exists(struct hk_store *st, const char *name);
/* Deletes the folder and its messages (not its children). INBOX: EINVAL. */
int hk_store_folder_delete(struct hk_store *st, const char *name);
/* Renames the folder and its children. EEXIST when `to` exists; EINVAL for
 * INBOX or `to` inside `from`. Not atomic over the children. */
int hk_store_folder_rename(struct hk_store *st, const char *from, const char *to);

struct hk_store_folder {
	char *name; /* UTF-8, "/" separated; "INBOX" first */
	enum hk_store_special special;
};
struct hk_store_folder_list {
	struct hk_store_folder *v;
	size_t n;
	size_t skipped; /* directories whose names do not decode (made by other programs) */
};
/* Every folder, INBOX first, the others sorted by name (bytewise). */
int hk_store_folder_list(struct hk_store *st, struct hk_store_folder_list *out);
void hk_store_folder_list_free(struct hk_store_folder_list *l);

/* --- delivery ------------------------------------------------------------------
 * A message is given as pieces, each either bytes in memory (data != NULL)
 * or `len` bytes of a file from offset `off` (data == NULL: fd, e.g. the
 * SMTP spool; read with pread, the file offset is not moved). So prepended
 * headers (Return-Path, Delivered-To, Received, rule headers) and the
 * spooled message need no copy in memory. The bytes are stored as given:
 * the SMTP server stores CRLF line ends, so the file size is the RFC 822
 * size and IMAP can send files as they are. */
struct hk_store_part {
	const void *data;
	int fd;
	off_t off;
	size_t len;
};

struct hk_store_deliver_opts {
	const char *folder;     /* NULL or "INBOX": INBOX */
	uint32_t flags;         /* HK_STORE_SEEN ... (from `flag` actions) */
	const char *const *keywords; /* e.g. "$Boss"; assigned letters per folder */
	size_t nkeywords;
	int64_t received;       /* unix time stored as the file's mtime (IMAP INTERNALDATE); 0: now */
	bool create_folder;     /* fileinto a missing folder creates it (with its parents) */
	bool check_quota;       /* EDQUOT when it would not fit the plan's quota */
};

/* How a commit makes files durable. Both are correct on any Linux file
 * system; they differ in cost (bench/fsync/README.md has the numbers):
 *   FSYNC   fsync each file, then each distinct directory once. Cost grows
 *           with the batch (each fsync flushes the disk cache), but only this
 *           process's files are written out.
 *   SYNCFS  one syncfs per file system before the renames and one after:
 *           two cache flushes per batch whatever its size, but every dirty
 *           page of the file system is written out too. The default; use
 *           FSYNC when the store shares its file system with heavy writers. */
enum hk_store_sync {
	HK_STORE_SYNC_SYNCFS,
	HK_STORE_SYNC_FSYNC,
};

struct hk_store_batch;

struct hk_store_result {
	int err;              /* 0: durable and visible; else errno */
	const char *error;    /* detail when err != 0 */
	const char *folder;   /* canonical UTF-8 name; NULL for hk_store_batch_add_rename items */
	const char *filename; /* "new/NAME" or "cur/NAME:2,FLAGS" inside the folder */
	uint64_t size;        /* bytes stored */
	uint64_t vsize;       /* bytes with CRLF line ends (RFC822.SIZE) */
	uint32_t kw;          /* keyword letters given (some may be dropped: no free letter) */
};

struct hk_store_batch *hk_store_batch_new(enum hk_store_sync sync);
/* Unlinks whatever was staged and not committed. */
void hk_store_batch_free(struct hk_store_batch **b);

/* Writes the message into the folder's tmp/ (no fsync yet). On success
 * *index_r (may be NULL) is its index in the batch. On failure nothing is
 * left behind and hk_store_error(st) says why; the batch goes on. */
int hk_store_batch_add(struct hk_store_batch *b, struct hk_store *st, const struct hk_store_deliver_opts *o,
    const struct hk_store_part *parts, size_t nparts, size_t *index_r);

/* The headers of a rejected message (hk_compose_rejected: the original
 * header block plus X-Hikyaku-Rejected) as a message in the Rejected folder,
 * created when missing; not counted against the quota check (still counted
 * in the usage). */
int hk_store_batch_add_rejected(struct hk_store_batch *b, struct hk_store *st, struct hk_message *msg,
    const struct hk_env *env, const struct hk_action *a, const struct hk_compose_ctx *c, size_t *index_r);

/* Any other file that must become durable with the batch (an outbound
 * queue entry): `tmp_path`, already written and closed, is made durable
 * and renamed to `final_path` (same file system, never replacing a file)
 * in the same commit. */
int hk_store_batch_add_rename(struct hk_store_batch *b, const char *tmp_path, const char *final_path, size_t *index_r);

/* Makes every staged message durable and visible: data synced, renamed
 * into new/ (cur/ with flags), directories synced, quota usage updated.
 * 0 when all succeeded, -1 when any failed (see each result). A batch is
 * committed once. */
int hk_store_batch_commit(struct hk_store_batch *b);

size_t hk_store_batch_count(const struct hk_store_batch *b);
const struct hk_store_result *hk_store_batch_result(const struct hk_store_batch *b, size_t i);

/* One message, committed on its own: stage + commit (FSYNC mode: one
 * message gains nothing from syncfs). filename_r (may be NULL) receives
 * "new/NAME" or "cur/NAME"; free() it. */
int hk_store_deliver(struct hk_store *st, const struct hk_store_deliver_opts *o, const struct hk_store_part *parts,
    size_t nparts, char **filename_r);

/* --- group commit ------------------------------------------------------------
 * Threads that commit the batches of many sessions together: a committer
 * thread takes everything submitted so far as one round; while it syncs,
 * new submissions gather for the next round, so with SYNCFS a round of any
 * size costs two cache flushes. With several threads, rounds overlap (a
 * fast disk is then not left idle while one round waits). Worker threads
 * stage (the cheap part) and submit; `done` runs on a committer thread
 * once the batch is committed (every result final) and should only hand
 * the batch back to its session (e.g. post it to the event loop); the
 * batch must not be touched between submit and done. The committer's
 * sync mode applies to every batch it commits. In FSYNC mode a staged file
 * stays open until its commit: size RLIMIT_NOFILE for the batches in
 * flight. */
struct hk_store_committer;

struct hk_store_committer *hk_store_committer_new(enum hk_store_sync sync, unsigned threads);
/* Commits what was submitted, then stops the threads. */
void hk_store_committer_free(struct hk_store_committer **c);
void hk_store_committer_submit(struct hk_store_committer *c, struct hk_store_batch *b,
    void (*done)(struct hk_store_batch *b, void *arg), void *arg);
/* Submit and wait: the return value of hk_store_batch_commit. */
int hk_store_committer_commit(struct hk_store_committer *c, struct hk_store_batch *b);

/* --- quota (Maildir++ maildirsize, as Courier and Dovecot keep it) ------------ */

struct hk_store_usage {
	uint64_t bytes, count;       /* in use, every folder counted */
	struct hk_store_quota limit; /* the plan's */
};

/* Reads the usage file; recalculates it (scanning every folder) when it is
 * missing, damaged, larger than 5120 bytes, for other limits, or over quota
 * and older than 15 minutes. */
int hk_store_quota_get(struct hk_store *st, struct hk_store_usage *u);
/* 0 when a message of `size` bytes fits (RCPT with SIZE=, delivery);
 * -1 with EDQUOT when not, EFBIG when it is larger than the whole quota,
 * or an I/O errno. */
int hk_store_quota_check(struct hk_store *st, uint64_t size);
int hk_store_quota_recalc(struct hk_store *st);

/* --- SMTP replies ---------------------------------------------------------------
 * What to answer when a delivery failed with errno `err`:
 *   EDQUOT            452 4.2.2 mailbox full (temporary: the user can clean up)
 *   EFBIG             552 5.2.3 message too big for the mailbox (larger
 *                     than the whole quota, or the file-size limit)
 *   ENOSPC            452 4.3.1 insufficient system storage
 *   ENOENT            451 4.2.0 mailbox temporarily unavailable (a folder
 *                     deleted under the delivery; whether a recipient exists
 *                     is for the accounts lookup at RCPT to say)
 *   EACCES, EPERM,
 *   EROFS, EIO, other 451 4.3.0 local error (an operator can fix it; never
 *                     a bounce for our own trouble)
 * So the store never makes a permanent failure but EFBIG. A plan that wants
 * "bounce when full" answers 552 5.2.2 for EDQUOT itself.
 * `text` is fixed text, safe to send. */
struct hk_store_reply {
	int code;
	const char *enhanced;
	const char *text;
};
struct hk_store_reply hk_store_reply(int err);

/* --- reading (the IMAP/POP3 side; UIDs: the UID index below) ---------------------
 * A message is named by its file name inside the folder ("new/NAME" or
 * "cur/NAME:2,FLAGS"). Its identity across flag changes and UID
 * bookkeeping is hk_store_identity: NAME without the directory, without
 * ":2,..." and without the index's ",U=<uid>"; the UID index maps
 * identities to UIDs. A call with a name that is gone fails with ENOENT:
 * another session changed or expunged the message (or the index added
 * ",U=" to its name); rescan or sync. */
struct hk_store_msg {
	char *filename;      /* "new/..." or "cur/..." */
	uint64_t size, vsize; /* from ,S= and ,W= (stat when missing; vsize = size when unknown) */
	uint32_t flags, kw;
	bool recent;         /* in new/ */
	int64_t mtime;       /* INTERNALDATE; only with HK_STORE_SCAN_STAT, else 0 */
};
struct hk_store_msg_list {
	struct hk_store_msg *v;
	size_t n;
};
#define HK_STORE_SCAN_STAT 1u /* stat every file (mtime, sizes of foreign files) */

/* Lists new/ and cur/ of a folder, in no particular order. */
int hk_store_scan(struct hk_store *st, const char *folder, unsigned scan_flags, struct hk_store_msg_list *out);
void hk_store_msg_list_free(struct hk_store_msg_list *l);
/* Sets the flags of a message: renames it into cur/ with the new info (also
 * moves it out of new/, which is how \Recent ends). newname_r (may be
 * NULL) receives the new file name; free() it. This and hk_store_expunge
 * work outside the UID index: the next hk_store_sync sees their changes as
 * another program's (a new MODSEQ, an expunge). IMAP uses
 * hk_store_update_flags and hk_store_expunge_uids. */
int hk_store_set_flags(struct hk_store *st, const char *folder, const char *filename, uint32_t flags, uint32_t kw,
    char **newname_r);
/* Unlinks the message and updates the quota usage. */
int hk_store_expunge(struct hk_store *st, const char *folder, const char *filename);
/* An fd to read the message from (O_RDONLY). */
int hk_store_open_message(struct hk_store *st, const char *folder, const char *filename);
/* A handle (an fd) on the folder, for many hk_store_open_message_at: a
 * session that reads thousands of messages (IMAP FETCH) then pays the
 * path walk to the folder once, not per message. -1 on failure; close()
 * it when done. The handle follows the folder if it is renamed. */
int hk_store_folder_open(struct hk_store *st, const char *folder);
/* hk_store_open_message of a message of the folder behind folder_fd. */
int hk_store_open_message_at(struct hk_store *st, int folder_fd, const char *filename);
/* "new/1.M2P3.host,S=5:2,S" -> "1.M2P3.host,S=5" (a slice of filename). */
struct hk_str hk_store_base_name(const char *filename);

/* The identity of a message: its base name without a trailing ",U=<uid>"
 * field (the UID index writes that field; see below). It never changes
 * while the message lives, whatever its flags or UID bookkeeping: POP3
 * UIDL and the index key use it. A slice of filename. */
struct hk_str hk_store_identity(const char *filename);

/* --- the UID index (IMAP UIDs and CONDSTORE MODSEQs; maildir_index.c) ------
 * Each folder has an index mapping message identities to UIDs and
 * MODSEQs. hk_store_sync reads new/ and cur/ and the index: messages it
 * has not seen get the next UIDs (in delivery order), gone ones are
 * dropped, and flags changed by anyone (another session, another program
 * renaming files) bump that message's MODSEQ. UIDs and UIDVALIDITY survive
 * restarts and the loss or damage of the index; doc/architecture.md
 * ("The UID index") says exactly when UIDVALIDITY changes. Any number of
 * sessions and processes may sync, append, store and expunge on one folder
 * at once: changes are serialized by a lock on the folder's index, and a
 * sync that finds nothing changed takes no lock and writes nothing.
 *
 * BLOCKING like the rest of the store: worker threads only. */

#define HK_STORE_UIDX_LINE_MAX 512              /* one message line of the index */
#define HK_STORE_UIDX_FILE_MAX (256u << 20)     /* a larger index is damaged: rebuilt */
#define HK_STORE_UIDX_LOCK_WAIT_MS 10000        /* EAGAIN after waiting this long */

struct hk_store_uid_msg {
	uint32_t uid;
	uint64_t modseq;
	char *filename;       /* "new/..." or "cur/..." (for open_message) */
	uint32_t flags, kw;   /* as hk_store_msg */
	uint64_t size, vsize; /* from ,S= and ,W= (stat when missing) */
	bool in_new;          /* still in new/: \Recent for the first session */
};

/* One folder as a session sees it after a sync; messages sorted by UID. */
struct hk_store_view {
	struct hk_store_uid_msg *v;
	size_t n;
	uint32_t uidvalidity, uidnext;
	uint64_t highestmodseq;
	/* UIDs of the `prev` view given to hk_store_sync that are gone,
	 * ascending (the EXPUNGE/VANISHED responses to send) */
	uint32_t *expunged;
	size_t nexpunged;
	/* the index was lost (damaged, or missing where UIDs had been given)
	 * and this sync rebuilt it; uidvalidity_changed when the rebuild had
	 * to pick a new UIDVALIDITY. Both false on a folder's first sync. */
	bool rebuilt, uidvalidity_changed;
	const char *rebuilt_why; /* static text for the log ("bad header", "missing"...) */
};

/* Brings the folder's index up to date and returns the view. `prev` (may
 * be NULL) is this session's previous view: out->expunged lists its UIDs
 * that are gone. Messages whose modseq > prev->highestmodseq changed since
 * (new ones included). On failure *out is empty. */
int hk_store_sync(struct hk_store *st, const char *folder, const struct hk_store_view *prev,
    struct hk_store_view *out);
void hk_store_view_free(struct hk_store_view *v);
/* The message with that UID, or NULL (binary search). */
const struct hk_store_uid_msg *hk_store_view_find(const struct hk_store_view *v, uint32_t uid);

/* Delivers one message into o->folder and gives it the next UID in the
 * same step, under the folder's index lock (IMAP APPEND, and COPY/MOVE
 * with the source message's fd as the part): the UIDPLUS answer is
 * *uidvalidity_r and *uid_r. The message is durable when this returns 0.
 * o->check_quota works as for hk_store_deliver. */
int hk_store_append(struct hk_store *st, const struct hk_store_deliver_opts *o, const struct hk_store_part *parts,
    size_t nparts, uint32_t *uidvalidity_r, uint32_t *uid_r);

/* Removes the messages with these UIDs (unlink, quota usage, index) under
 * the lock; UIDs that are not there are skipped (already expunged).
 * *expunged_r (may be NULL): how many were removed. */
int hk_store_expunge_uids(struct hk_store *st, const char *folder, const uint32_t *uids, size_t n,
    size_t *expunged_r);

/* STORE: changes the flags of the messages with these UIDs, each rename
 * and its MODSEQ bump in one step under the lock. A message whose flags
 * do not change keeps its MODSEQ. With unchangedsince != 0 (CONDSTORE
 * UNCHANGEDSINCE) a message whose modseq is greater is left alone and its
 * UID listed in res->failed (the MODIFIED response). */
enum hk_store_flag_op {
	HK_STORE_FLAGS_SET,    /* FLAGS */
	HK_STORE_FLAGS_ADD,    /* +FLAGS */
	HK_STORE_FLAGS_REMOVE, /* -FLAGS */
};
struct hk_store_flag_update {
	const uint32_t *uids;
	size_t nuids;
	enum hk_store_flag_op op;
	uint32_t flags, kw;
	uint64_t unchangedsince;
};
struct hk_store_flag_result {
	size_t changed;    /* messages whose flags changed */
	uint32_t *failed;  /* UNCHANGEDSINCE refusals, ascending; free() it */
	size_t nfailed;
	uint64_t highestmodseq;
};
int hk_store_update_flags(struct hk_store *st, const char *folder, const struct hk_store_flag_update *u,
    struct hk_store_flag_result *res);

/* IMAP \Recent (RFC 3501 2.3.2): moves the messages with these UIDs that
 * are still in new/ to cur/, flags and MODSEQ unchanged, so the next
 * session does not count them as recent again. Under the index lock.
 * names_r (n slots, or NULL): the new file name of each message moved
 * (free() it), NULL for the others, so the caller's view needs no sync. */
int hk_store_claim_recent(struct hk_store *st, const char *folder, const uint32_t *uids, size_t n, char **names_r);

/* The folder's keywords: names[i] is the keyword of letter 'a' + i, NULL
 * when unassigned. Free with hk_store_keywords_free. */
struct hk_store_keywords {
	char *names[HK_STORE_KEYWORDS_MAX];
};
int hk_store_keywords(struct hk_store *st, const char *folder, struct hk_store_keywords *kw);
void hk_store_keywords_free(struct hk_store_keywords *kw);
/* The letters of these keywords in the folder (STORE +FLAGS ($Boss)),
 * assigning free letters as needed. Invalid keywords and those that find
 * no free letter are left out of *letters_r. At most
 * HK_STORE_KEYWORDS_MAX names (EINVAL). */
int hk_store_keywords_assign(struct hk_store *st, const char *folder, const char *const *names, size_t n,
    uint32_t *letters_r);

/* --- the message cache (IMAP FETCH and SEARCH; maildir_cache.c) -------------------
 * Per folder, what the warm IMAP commands need of a message without opening
 * its file: INTERNALDATE (the file's mtime), the exact RFC822.SIZE (bare LF
 * counted as CRLF) and the raw header block, keyed by UID and valid only for
 * the message whose identity (with its ,S= size) and size it names. A
 * command opens the cache (one read of one file), answers what it can from
 * it, puts what it learned by reading message files, and closes it (one
 * appending write; a rewrite when the file is damaged or more than half
 * dead). Any number of sessions and processes may use a folder's cache at
 * once, without a lock. A missing, damaged or foreign cache is only slower:
 * it is rebuilt, never trusted over the file.
 *
 * BLOCKING like the rest of the store. A handle belongs to one thread. */

#define HK_STORE_CACHE_HDR_MAX (16 * 1024)       /* header bytes per message; longer: not cached */
#define HK_STORE_CACHE_FILE_MAX (128u << 20)     /* bytes read, appended or rewritten per folder */
#define HK_STORE_CACHE_PENDING_MAX (1u << 20)    /* bytes put before an append */
#define HK_STORE_CACHE_COMPACT_MIN (64u * 1024)  /* smaller files are never compacted for size */

/* hk_store_cache_rec.flags, kept for the caller: */
#define HK_STORE_CACHE_HDR_FIELDS 1u /* every line before the header's empty line is a field */

struct hk_store_cache;

struct hk_store_cache_rec {
	int64_t mtime;     /* INTERNALDATE, unix time */
	uint64_t vsize;    /* RFC822.SIZE */
	const char *hdr;   /* the header block through its empty line (or the whole
	                      message when it has none); NULL when not cached */
	size_t hdr_len;
	uint32_t flags;    /* HK_STORE_CACHE_* */
};

/* Reads the folder's cache for this UIDVALIDITY (a cache for another one
 * is empty, and replaced at the first write). Fails only for a folder name
 * that cannot be on disk; a missing or unreadable file is an empty cache. */
int hk_store_cache_open(struct hk_store *st, const char *folder, uint32_t uidvalidity, struct hk_store_cache **c_r);
/* The record of view message m when there is a sound one for its identity
 * and size; its strings live until the cache is closed. */
bool hk_store_cache_get(struct hk_store_cache *c, const struct hk_store_uid_msg *m, struct hk_store_cache_rec *r);
/* Whether there is a record for view message m (identity and size; its
 * checksum is not verified): a command that reads the file anyway need
 * not put one. */
bool hk_store_cache_has(const struct hk_store_cache *c, const struct hk_store_uid_msg *m);
/* Records what was read of message m (copied; r->hdr NULL or longer than
 * HK_STORE_CACHE_HDR_MAX: date and size only). Buffered; written at
 * close, or when HK_STORE_CACHE_PENDING_MAX is buffered. */
void hk_store_cache_put(struct hk_store_cache *c, const struct hk_store_uid_msg *m, const struct hk_store_cache_rec *r);
/* Writes what was put and compacts when needed (`v`: the folder's
 * messages now, whose records are live), then frees. With v NULL nothing
 * more is written and no I/O is done (a command abandoned on the loop). */
void hk_store_cache_close(struct hk_store_cache **c, const struct hk_store_view *v);
/* For tests: the records indexed at open; *damaged_r (may be NULL): the
 * file was missing, foreign or damaged, or a record failed its sum. */
size_t hk_store_cache_records(const struct hk_store_cache *c, bool *damaged_r);

/* Removes files (and directories) in every folder's tmp/ whose mtime is
 * older than max_age seconds: what a crash between write and rename left
 * behind. The Maildir spec says 36 hours (HK_STORE_TMP_MAX_AGE). */
int hk_store_clean_tmp(struct hk_store *st, int64_t max_age, size_t *removed_r);

/* --- testing ---------------------------------------------------------------------
 * A fault hook for tests: called before each file-system operation of the
 * store; a non-zero return makes that operation fail with that errno (as a
 * full disk would). Process-wide; set it while no store call runs. */
enum hk_store_op {
	HK_STORE_OP_OPEN,   /* creating a file */
	HK_STORE_OP_WRITE,
	HK_STORE_OP_SYNC,   /* fsync or syncfs */
	HK_STORE_OP_RENAME,
	HK_STORE_OP_MKDIR,
};
void hk_store_set_fault_hook(int (*hook)(enum hk_store_op op, const char *path, void *arg), void *arg);
/* How many times the process has listed a new/ or cur/ directory (every
 * store, every thread): tests show that an unchanged folder syncs without. */
uint64_t hk_store_dir_reads(void);

#endif
