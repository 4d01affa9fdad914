/*
 * pop3_maildrop.h - a POP3 session's view of a user's INBOX (RFC 1939):
 * the exclusive maildrop lock, the numbered message list fixed at login,
 * reading a message as POP3 sends it (CRLF lines, dot-stuffed, ended by
 * "."), and the UPDATE state's commit (expunge what was deleted, mark
 * what was retrieved \Seen).
 *
 * The lock is a flock on <Maildir>/hikyaku-pop3.lock held for the whole
 * session: a second POP3 login of the same user gets [IN-USE]. IMAP,
 * webmail and delivery do not take it (Maildir needs no lock for them);
 * they see the POP3 session's deletions when it commits.
 *
 * BLOCKING: every function does file I/O: worker threads only. A maildrop
 * is used by one thread at a time.
 */
#ifndef HK_POP3_MAILDROP_H
#define HK_POP3_MAILDROP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define POP3_UIDL_MAX 70 /* RFC 1939: 1 to 70 characters 0x21..0x7E */

struct pop3_msg {
	char *filename;   /* "new/..." or "cur/..." inside INBOX at login */
	uint64_t size;    /* octets as sent: CRLF line ends, before dot-stuffing */
	char uidl[POP3_UIDL_MAX + 1];
	uint32_t uid;     /* in the UID index */
	bool seen;        /* had \Seen at login */
	bool deleted;     /* DELE'd in this session */
	bool retrieved;   /* RETR'd: \Seen at commit */
};

struct pop3_maildrop {
	struct pop3_msg *v;
	size_t n;
	struct hk_store *st;
	int lock_fd;
	int folder_fd; /* hk_store_folder_open of INBOX, -1 when none */
};

enum pop3_open_status { POP3_OPEN_OK, POP3_OPEN_IN_USE, POP3_OPEN_ERROR };

/* Locks and lists the INBOX of the Maildir at `root` (created when
 * missing). ERROR: err has the detail for the log. */
enum pop3_open_status pop3_maildrop_open(const char *root, struct pop3_maildrop **md_r, char *err, size_t errlen);
/* Unlocks and frees (without committing). */
void pop3_maildrop_close(struct pop3_maildrop **md);

/* The UIDL of a file name: the Maildir base name up to its first ',' or
 * ':' (stable across flag changes and the size fields) when it fits
 * POP3's rules, else a hash of it. */
void pop3_uidl_of(const char *filename, char out[POP3_UIDL_MAX + 1]);

/* Streams one message. TOP: top_lines >= 0 (the header, the blank line,
 * then that many body lines); RETR: -1. */
struct pop3_reader;
struct pop3_reader *pop3_reader_open(struct pop3_maildrop *md, size_t idx, long top_lines);
/* Appends up to about `max` bytes of the response to out; *done_r is true
 * once the final ".\r\n" was appended. -1 on a read error (the file went
 * away: another session expunged it). */
int pop3_reader_next(struct pop3_reader *r, struct hk_buf *out, size_t max, bool *done_r);
void pop3_reader_free(struct pop3_reader **r);

/* UPDATE: expunges every deleted message and marks retrieved ones \Seen,
 * by UID through the UID index (so renames by others do not matter). 0,
 * or -1 when the deletions failed (*failed_r of them). */
int pop3_maildrop_commit(struct pop3_maildrop *md, size_t *failed_r);

#endif
