/*
 * replylog.h - the auto-reply log (自動返信の着信情報): who was answered by
 * whom and when, so each sender gets at most one reply per interval
 * (RFC 3834 / RFC 5230), listable and clearable by the user and the
 * administrator (`hikyaku replies list|clear`).
 *
 * Stored in STATE/replies.gdbm: key "recipient\0sender" (both lower-cased),
 * value the unix time of the last reply as decimal text. Entries older than
 * HK_REPLYLOG_MAX_AGE are dropped when met.
 *
 * Threads: calls may block (file I/O): worker threads only. A process-wide
 * mutex serialises them (GDBM allows one writer); another process holding
 * the file (the CLI) is waited for, briefly.
 */
#ifndef HK_REPLYLOG_H
#define HK_REPLYLOG_H

#include <stdbool.h>
#include <stdint.h>

#include "util.h"

#define HK_REPLYLOG_MAX_AGE (366 * 86400)

struct hk_replylog_entry {
	char recipient[256];
	char sender[256];
	int64_t when;
};

/* True when `recipient` answered `sender` less than `interval` seconds
 * before `now`. Errors count as "not recently" (a reply too many is better
 * than none). */
bool hk_replylog_recent(const char *path, struct hk_str recipient, struct hk_str sender, int64_t interval, int64_t now);
/* Records a reply sent now. 0, or -1 with errno. */
int hk_replylog_record(const char *path, struct hk_str recipient, struct hk_str sender, int64_t now);
/* Entries of one recipient (all when NULL); heap array, free() it. */
int hk_replylog_list(const char *path, const char *recipient, struct hk_replylog_entry **v_r, size_t *n_r);
/* Forgets the entries of one recipient (all when NULL); the count in *n_r. */
int hk_replylog_clear(const char *path, const char *recipient, size_t *n_r);

#endif
