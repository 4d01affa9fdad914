/*
 * queue_file.h - the on-disk form of the outbound queue, shared by the
 * runner (queue.c) and `hikyaku queue` (cli_queue.c).
 *
 *   STATE/queue/tmp/       entries being written (then renamed)
 *   STATE/queue/new/NAME   fresh entries, written by smtp_mailsys.c:
 *       "HKQ1\nkind K\nfrom F\nto T\ncreated N\n" + optional DSN lines
 *       + "\n" + the message (CRLF)
 *       kind: forward, notify, reply, relay, bounce (ours: a failure DSN),
 *       dsn (ours: a delivered, relayed or delayed DSN)
 *       optional lines (RFC 3461 parameters, in this order, each at most
 *       once; entries written before DSN support have none and still
 *       load): "ret FULL|HDRS", "envid XTEXT", "notify NEVER|SUCCESS,..",
 *       "orcpt TYPE;XTEXT", all as the client wrote them (xtext)
 *   STATE/queue/deferred/NAME     entries that failed temporarily, and
 *   STATE/queue/deferred/NAME.st  their state: "attempts N\nnext T\n
 *       error TEXT\n" and "warned 1\n" once a delay DSN went out, replaced via tmp + rename; a missing .st file
 *       means "one attempt, due now" (a crash between the two renames)
 *   STATE/queue/flush      present: retry every deferred entry now
 *
 * Names are [0-9A-Za-z._-] and never end in ".st"; anything else in the
 * folders is ignored. Limits: QFILE_MAX_HEAD bytes of header, addresses
 * of at most QFILE_MAX_ADDR bytes.
 */
#ifndef HK_QUEUE_FILE_H
#define HK_QUEUE_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "smtp/smtp_dsn.h"
#include "util.h"

#define QFILE_MAX_HEAD 4096
#define QFILE_MAX_ADDR 512
#define QFILE_MAX_NAME 200
#define QFILE_MAX_ERROR 512

struct qfile_head {
	char kind[16];
	char from[QFILE_MAX_ADDR + 1]; /* "" for the null sender */
	char to[QFILE_MAX_ADDR + 1];
	long long created;
	size_t body_off; /* where the message starts in the file */
	/* DSN parameters (RFC 3461); empty / 0 when not given */
	enum smtp_dsn_ret ret;
	char envid[SMTP_DSN_MAX_ENVID + 1];  /* xtext */
	unsigned notify;                     /* enum smtp_dsn_notify bits */
	char orcpt[SMTP_DSN_MAX_ORCPT + 1];  /* addr-type;xtext */
};

struct qfile_state {
	unsigned attempts;
	long long next; /* unix time of the next attempt */
	char error[QFILE_MAX_ERROR];
	bool delay_warned; /* the delayed DSN (NOTIFY=DELAY) has been sent */
};

/* Appends an entry's header (up to and including the blank line); h's
 * body_off is ignored. The addresses must be free of control characters. */
void qfile_format_head(struct hk_buf *out, const struct qfile_head *h);
/* Parses the header at the start of buf. 0, or -1 (EBADMSG). */
int qfile_parse_head(const char *buf, size_t len, struct qfile_head *h);
/* Reads the first QFILE_MAX_HEAD bytes of a file and parses them; *size_r
 * gets the message size. -1 with errno. */
int qfile_read_head(const char *path, struct qfile_head *h, size_t *size_r);
/* Reads NAME.st in dir; a missing file gives attempts 1, next 0. */
int qfile_state_read(const char *dir, const char *name, struct qfile_state *s);
/* Writes NAME.st in dir via a temporary file and rename, fsync-ed. */
int qfile_state_write(const char *dir, const char *name, const struct qfile_state *s);
/* A name the queue would have made (and no ".st" file). */
bool qfile_name_ok(const char *name);
/* fsync of a directory (after renames). */
int qfile_sync_dir(const char *dir);

#endif
