/*
 * maildir.h - the Maildir++ back end of the store (store_backend.h), laid
 * out as Dovecot lays it out by default so Dovecot, Courier tools and our
 * IMAP server all see the same mailbox:
 *
 *   Maildir/{tmp,new,cur}/            INBOX
 *   Maildir/.Sent/ .Work.Reports/     folders: "." + levels joined by ".",
 *                                     each level in IMAP modified UTF-7
 *                                     (RFC 3501 5.1.3): "日本語" -> ".&ZeVnLIqe-"
 *   Maildir/.X/maildirfolder          empty marker file (Maildir++)
 *   Maildir/.X/dovecot-keywords       keyword letters a-z (Dovecot's file)
 *   Maildir/maildirsize               quota usage (Maildir++ quota)
 *   <folder>/hikyaku-uidlist          the IMAP UID index (maildir_index.c),
 *   <folder>/hikyaku-uidlist.lock     its lock (flock) and the UIDVALIDITY
 *   <folder>/hikyaku-uidvalidity      that survives losing the index
 *   Maildir/hikyaku-uidvalidity-last  the last UIDVALIDITY given in the mailbox
 *   <folder>/hikyaku-dirstamp         new/ and cur/ unchanged since the index
 *                                     matched them (maildir_dirstamp.c)
 *   <folder>/hikyaku-cache            the message cache (maildir_cache.c)
 *
 * A '.' inside a level cannot be the on-disk separator, so it is written
 * "\2e" and a leading '~' "\7e", as Dovecot's listescape plugin does (the
 * language allows "v1.2"; '\' itself is never allowed in a name). Dovecot
 * needs `separator = /` in its namespace (and the listescape plugin for
 * names with dots) to show the same names.
 *
 * Message files: "<sec>.M<usec>P<pid>Q<n>R<rand>.<host>,S=<size>,W=<vsize>"
 * in new/, with ":2,<flags>" in cur/ (flags sorted, upper case system
 * flags then keyword letters). Once the UID index has given a message a
 * UID, ",U=<uid>" ends its base name (before ":2,").
 *
 * SECURITY: directory names read back from disk are decoded strictly (a
 * name that does not decode to a valid folder name is skipped), and the
 * keywords and maildirsize files are read with size limits: another
 * program (or a damaged disk) may have written them.
 */
#ifndef HK_MAILDIR_H
#define HK_MAILDIR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "store_backend.h"
#include "util.h"

#define MAILDIR_QUOTA_FILE_MAX 5120      /* larger: recalculate (Maildir++ quota spec) */
#define MAILDIR_QUOTA_STALE_SECS (15 * 60)
#define MAILDIR_KEYWORDS_FILE_MAX 65536
#define MAILDIR_LOCK_STALE_SECS 30       /* dotlocks older than this are broken */
#define MAILDIR_LOCK_WAIT_MS 2000
#define MAILDIR_HOSTNAME_MAX 64

/* --- names (maildir_name.c) --------------------------------------------- */

/* UTF-8 -> IMAP modified UTF-7 (appended to out). The input must be valid
 * UTF-8 (hk_store_folder_name_ok checked it). */
void mutf7_encode(const char *s, size_t n, struct hk_buf *out);
/* modified UTF-7 -> UTF-8; -1 (EINVAL) on anything not canonical: bad
 * base64, non-zero padding bits, unpaired surrogates, printable ASCII
 * encoded in base64, a missing '-'. */
int mutf7_decode(const char *s, size_t n, struct hk_buf *out);

/* Canonical folder name -> directory name relative to the mailbox root:
 * "" for INBOX, ".Work.Reports", ".&ZeVnLIqe-". -1 with ENAMETOOLONG when
 * it does not fit NAME_MAX. */
int maildir_dir_from_name(const char *name, struct hk_buf *out);
/* Directory name (".Work.Reports") -> folder name ("Work/Reports"); -1
 * when it does not decode to a valid folder name. */
int maildir_name_from_dir(const char *dir, struct hk_buf *out);

/* A fresh unique base name (no ,S= and no info). Thread-safe. */
void maildir_unique(struct hk_buf *out);

struct maildir_info {
	uint64_t size, vsize;
	bool has_size, has_vsize;
	uint32_t flags, kw;  /* as hk_store_msg */
};
/* Reads ,S= ,W= and the ":2," flags of a file name. */
void maildir_parse_filename(const char *name, struct maildir_info *info);
/* ":2," + letters: upper-case flags, then keyword letters. */
void maildir_info_append(struct hk_buf *out, uint32_t flags, uint32_t kw);

/* --- keywords (maildir_keywords.c) ----------------------------------------- */

/* Reads <dir>/dovecot-keywords: names[i] for letter 'a' + i (heap, NULL
 * when unassigned). A missing file is no keywords. */
int maildir_keywords_read(const char *dir, char *names[HK_STORE_KEYWORDS_MAX]);
/* The letters of `kw` (assigning free letters under the file's dotlock as
 * needed). Keywords that find no free letter are left out of *letters_r. */
int maildir_keywords_assign(struct hk_store *st, const char *dir, const char *const *kw, size_t n,
    uint32_t *letters_r);

/* --- quota (maildir_quota.c) -------------------------------------------------- */

int maildir_quota_get(struct hk_store *st, struct hk_store_usage *u, bool recalc);
/* Appends "<bytes> <count>\n" to the usage file when it exists (one
 * O_APPEND write, atomic against other writers). */
void maildir_quota_add(const char *path, int64_t bytes, int64_t count);

/* --- the UID index (maildir_index.c; API in store.h) ----------------------------- */

#define MAILDIR_UIDX_FILE "hikyaku-uidlist"
#define MAILDIR_UIDX_LOCK "hikyaku-uidlist.lock"
#define MAILDIR_UIDX_VALIDITY "hikyaku-uidvalidity"
#define MAILDIR_UIDX_LAST "hikyaku-uidvalidity-last" /* in the mailbox root */
#define MAILDIR_UIDX_RESERVE 4096 /* UIDs and MODSEQs reserved per write of the validity file */

int maildir_index_sync(struct hk_store *st, const char *folder, const struct hk_store_view *prev,
    struct hk_store_view *out);
int maildir_index_append(struct hk_store *st, const char *folder, const struct hk_store_deliver_opts *o,
    const struct hk_store_part *parts, size_t nparts, uint32_t *uidvalidity_r, uint32_t *uid_r);
int maildir_index_expunge(struct hk_store *st, const char *folder, const uint32_t *uids, size_t n,
    size_t *expunged_r);
int maildir_index_claim_recent(struct hk_store *st, const char *folder, const uint32_t *uids, size_t n,
    char **names_r);
int maildir_index_update_flags(struct hk_store *st, const char *folder, const struct hk_store_flag_update *u,
    struct hk_store_flag_result *res);
/* The UID of a trailing ",U=<uid>" in the file name's base, 0 when none. */
uint32_t maildir_index_name_uid(const char *filename);
/* For tests/fuzz/fuzz_uidlist.c: parses an index file's bytes as a sync
 * would; 0 when it would be used as it is (*count_r messages), -1 when it
 * would be rebuilt. */
int maildir_index_parse_check(const char *data, size_t len, size_t *count_r);

/* --- the directory stamp (maildir_dirstamp.c): syncing an unchanged
 * folder without reading new/ and cur/ ----------------------------------- */

#define MAILDIR_STAMP_FILE "hikyaku-dirstamp"
#define MAILDIR_STAMP_FILE_MAX (64u << 20)           /* larger: ignored */
#define MAILDIR_STAMP_SETTLE_NS 1000000000LL        /* mtimes younger are not trusted (whole-second times) */
#define MAILDIR_STAMP_SETTLE_FINE_NS 500000000LL    /* the same, times with sub-second digits */

/* new/ and cur/ as two stat calls saw them, and the clock just after. */
struct maildir_dirs {
	bool ok;             /* both exist and were stat-ed */
	uint64_t ino[2];     /* [0] new/, [1] cur/ */
	int64_t mtime_ns[2], ctime_ns[2];
	int64_t now_ns;
};
int maildir_dirs_stat(const char *dir, struct maildir_dirs *d);
/* Both mtimes older than now_ns by more than a timestamp tick can be
 * (MAILDIR_STAMP_SETTLE_NS, or _FINE_NS when the times have sub-second
 * digits): a change after the stat would show as a new mtime. */
bool maildir_dirs_settled(const struct maildir_dirs *d);

/* A message whose file name the index alone does not give. */
struct maildir_stamp_exc {
	uint32_t uid;
	uint64_t size, vsize;
	const char *filename; /* "new/..." or "cur/..." */
};
struct maildir_stamp {
	uint64_t idx_dev, idx_ino, idx_size;
	int64_t idx_mtime_ns;
	struct maildir_dirs dirs;     /* ino, mtime_ns, ctime_ns */
	struct maildir_stamp_exc *v;  /* ascending UID; names point into data */
	size_t n;
	char *data;
};
/* The folder's stamp, when it is for this index file (fstat of the one
 * read) and these directories; false otherwise (no stamp, damaged, or
 * anything changed). */
bool maildir_stamp_read(const char *dir, const struct stat *idx, const struct maildir_dirs *d, struct maildir_stamp *out);
void maildir_stamp_fini(struct maildir_stamp *s);
/* Replaces the stamp (best effort: a failure only costs the next sync a
 * directory read). v ascending UID. */
void maildir_stamp_write(const char *dir, const struct stat *idx, const struct maildir_dirs *d,
    const struct maildir_stamp_exc *v, size_t n);
/* Parses a stamp's bytes (owned by out afterwards, also on failure:
 * maildir_stamp_fini). 0 when well-formed. For the fuzz target too. */
int maildir_stamp_parse(char *data, size_t len, struct maildir_stamp *out);

/* --- the message cache (maildir_cache.c; API in store.h) ------------------------ */

#define MAILDIR_CACHE_FILE "hikyaku-cache"

int maildir_cache_open(struct hk_store *st, const char *folder, uint32_t uidvalidity, struct hk_store_cache **c_r);
/* For tests/fuzz/fuzz_cache.c: reads a cache file's bytes as a session
 * would and checks every record it would use; *nrec_r: records whose sum
 * is right. 0 when the file is sound, -1 when it would be rewritten. */
int maildir_cache_parse_check(const char *data, size_t len, size_t *nrec_r);

/* --- maildir.c, for the quota scan -------------------------------------------- */

/* The folder's directory (the root for INBOX), heap; NULL (error recorded
 * on st) when the name does not fit on disk. */
char *maildir_folder_path(struct hk_store *st, const char *name);

/* Every folder's directory path (INBOX first), heap strings; *n_r of them. */
char **maildir_folder_dirs(struct hk_store *st, size_t *n_r);
void maildir_free_strv(char **v, size_t n);

#endif
