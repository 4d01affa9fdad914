/*
 * store_backend.h - what a store back end implements (the function table)
 * and the helpers store.c gives back ends: error recording, the fault hook
 * around each file-system call, the staged-item record that the generic
 * commit (store_commit.c) makes durable. Included by store*.c and by the
 * back ends (maildir*.c) only; servers use store.h.
 *
 * A back end stages a message as a file in a temporary place and says where
 * it must end up (an item); store_commit.c owns the durability protocol
 * (sync data, rename without replacing, sync directories), so every back
 * end and the outbound queue share one implementation of it.
 *
 * Ownership: items are heap records owned by their batch; their strings are
 * heap-allocated and freed with the item.
 */
#ifndef HK_STORE_BACKEND_H
#define HK_STORE_BACKEND_H

#include <stdarg.h>

#include "store.h"

#define STORE_ERR_MAX 512

struct hk_store {
	const struct hk_store_backend *be;
	char *root;                  /* the mailbox directory, as given */
	struct hk_store_settings set;
	char err[STORE_ERR_MAX];     /* last failure, for hk_store_error */
	void *priv;                  /* back end state */
};

/* One staged message (or queue file) of a batch. The back end fills the
 * paths and result fields in stage(); store_commit.c does the rest. */
struct store_item {
	struct hk_store_result res;  /* public view; its strings point below */
	int fd;                      /* staged file kept open for FSYNC mode, else -1 */
	char *tmp_path;              /* where the staged file is */
	char *dst_path;              /* where it goes (never replacing a file) */
	char *dst_dir;               /* the directory of dst_path, synced after renames */
	char *folder, *filename;     /* res.folder, res.filename */
	/* after a successful commit, e.g. the quota usage update; may be NULL */
	void (*committed)(struct store_item *it);
	char *quota_path;            /* for committed(): the usage file */
	enum store_item_state { ITEM_STAGED, ITEM_SYNCED, ITEM_PUBLISHED, ITEM_DONE, ITEM_FAILED } state;
	bool published;              /* renamed to dst_path (it may still fail: directory sync) */
	bool own_tmp;                /* the staged file is ours to remove when not committed */
	char error[STORE_ERR_MAX];   /* res.error */
};

struct hk_store_backend {
	const char *name;
	/* opens st->root (creating it with st->set.create) */
	int (*open)(struct hk_store *st);
	void (*close)(struct hk_store *st);

	/* folder names given here are canonical (hk_store_folder_canon) */
	int (*folder_create)(struct hk_store *st, const char *name, bool ensure);
	bool (*folder_exists)(struct hk_store *st, const char *name);
	int (*folder_delete)(struct hk_store *st, const char *name);
	int (*folder_rename)(struct hk_store *st, const char *from, const char *to);
	int (*folder_list)(struct hk_store *st, struct hk_store_folder_list *out);

	/* Writes the message to a temporary file and fills it; keeps the file
	 * open in it->fd when keep_fd. On failure nothing is left behind. */
	int (*stage)(struct hk_store *st, struct store_item *it, const char *folder, const struct hk_store_deliver_opts *o,
	    const struct hk_store_part *parts, size_t nparts, uint64_t size, bool keep_fd);

	int (*quota_get)(struct hk_store *st, struct hk_store_usage *u, bool recalc);

	/* the read side */
	int (*scan)(struct hk_store *st, const char *folder, unsigned flags, struct hk_store_msg_list *out);
	int (*set_flags)(struct hk_store *st, const char *folder, const char *filename, uint32_t flags, uint32_t kw,
	    char **newname_r);
	int (*expunge)(struct hk_store *st, const char *folder, const char *filename);
	int (*open_message)(struct hk_store *st, const char *folder, const char *filename);
	int (*folder_open)(struct hk_store *st, const char *folder);
	int (*open_message_at)(struct hk_store *st, int folder_fd, const char *filename);
	int (*keywords)(struct hk_store *st, const char *folder, struct hk_store_keywords *kw);
	int (*keywords_assign)(struct hk_store *st, const char *folder, const char *const *names, size_t n,
	    uint32_t *letters_r);
	int (*clean_tmp)(struct hk_store *st, int64_t max_age, size_t *removed_r);

	/* the UID index (store.h); folder names canonical */
	int (*sync)(struct hk_store *st, const char *folder, const struct hk_store_view *prev, struct hk_store_view *out);
	int (*append)(struct hk_store *st, const char *folder, const struct hk_store_deliver_opts *o,
	    const struct hk_store_part *parts, size_t nparts, uint32_t *uidvalidity_r, uint32_t *uid_r);
	int (*expunge_uids)(struct hk_store *st, const char *folder, const uint32_t *uids, size_t n, size_t *expunged_r);
	int (*claim_recent)(struct hk_store *st, const char *folder, const uint32_t *uids, size_t n, char **names_r);
	int (*update_flags)(struct hk_store *st, const char *folder, const struct hk_store_flag_update *u,
	    struct hk_store_flag_result *res);
	/* the message cache (store.h) */
	int (*cache_open)(struct hk_store *st, const char *folder, uint32_t uidvalidity, struct hk_store_cache **c_r);
};

extern const struct hk_store_backend maildir_backend;

/* Records the failure on st (formatted detail, then ": strerror(err)") and
 * sets errno = err; returns -1. */
int store_fail(struct hk_store *st, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The same into an item's error field. */
void store_item_fail(struct store_item *it, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The fault hook (hk_store_set_fault_hook): 0 or the errno to inject. */
int store_fault(enum hk_store_op op, const char *path);

/* File-system calls with the fault hook in front; -1 with errno as the
 * real calls. */
int store_open_excl(int dirfd, const char *name, const char *path);
int store_write_all(int fd, const void *p, size_t n, const char *path);
int store_fsync(int fd, const char *path);
int store_syncfs(int fd, const char *path);
int store_mkdirat(int dirfd, const char *name, const char *path);
/* rename that never replaces an existing file (EEXIST): renameat2
 * RENAME_NOREPLACE, or link + unlink where the file system lacks it. */
int store_rename_noreplace(int olddirfd, const char *oldname, int newdirfd, const char *newname, const char *path);

void store_item_free(struct store_item *it);

/* store_commit.c, for store.c (and the UID index's append, which names
 * the staged file before its commit) */
struct store_item *store_batch_item(struct hk_store_batch *b, size_t i);
void store_batch_push(struct hk_store_batch *b, struct store_item *it, size_t *index_r);
enum hk_store_sync store_batch_sync(const struct hk_store_batch *b);
bool store_batch_full(const struct hk_store_batch *b);
bool store_batch_committed(const struct hk_store_batch *b);

#endif
