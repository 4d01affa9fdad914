/*
 * retention.h - rules on mail that is already stored: the `retention`
 * stage (operator and domain scripts) over every folder of one mailbox,
 * and `refilter` (the `deliver` layers over one folder), with the
 * outcome carried out on the Maildir++ store.
 *
 * Who calls it:
 *   - POP3 after a login, before the maildrop is listed (pop3_session.c),
 *     so expired mail is not offered; IMAP will call retention_run_login
 *     at login/SELECT the same way;
 *   - the periodic sweep of `hikyaku serve` (retention_sweep.h), one user
 *     at a time;
 *   - `hikyaku retention run` and `hikyaku refilter` (cli_retention.c).
 *
 * What an outcome does (doc/admin.md "Retention and refilter"):
 *   expunge, discard  the message is deleted (hk_store_expunge)
 *   reject (refilter) the header copy goes to Rejected, as at delivery,
 *                     and the message is deleted; no bounce is sent
 *   fileinto "F"      a copy with the same flags and date is stored in F
 *                     and made durable (fsync), then the original is
 *                     deleted, unless a keep (or fileinto the folder it
 *                     is in) keeps it too
 *   flag "X"          added to the stored message's flags
 *   keep, nothing     left where it is
 *   forward, notify, reply (refilter)  never carried out: reported as skipped
 * expunge wins over everything else in the same run (a plan that deletes
 * old mail deletes it even when a later layer asked to keep it).
 *
 * Bounded work: one run evaluates at most `max_messages` messages; when
 * it stops early it leaves a cursor (<Maildir>/hikyaku-retention.cursor:
 * folder and base name, in base-name order, which in Maildir is delivery
 * order) and the next run resumes after it. Listing a folder stats every
 * file; a message is read only when the stage's code reads message facts
 * (hk_program_stage_needs): the header block for header fields, the whole
 * file for body, size and attachments.
 *
 * One run at a time per mailbox: a run (not a dry run) takes an flock on
 * <Maildir>/hikyaku-retention.lock without waiting; when another run holds
 * it, this one does nothing and says so (stats->busy).
 *
 * BLOCKING: file-system I/O, fsync and rule runs: worker threads only.
 * Threads: a retention_ctx is read-only after setup and may be shared by
 * any number of threads (the rule cache has its own lock).
 */
#ifndef HK_RETENTION_H
#define HK_RETENTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "accounts.h"

#define RETENTION_MAX_PER_RUN 10000       /* messages evaluated per run (default) */
#define RETENTION_HEADER_MAX (256 * 1024) /* bytes read for a header-only parse */
#define RETENTION_MESSAGE_MAX (256u << 20) /* larger files are not parsed (the rules see no message) */

struct rulecache;

/* Where the rules and mailboxes are. Borrowed pointers. */
struct retention_ctx {
	const char *state_dir;    /* <state>/domains/<d>/users/<u>/Maildir, <state>/domains/<d>/domain.hk */
	const char *global_rules; /* the operator's rules (<state>/rules/global.hk) */
	const char *hostname;     /* for the Rejected copy of refilter's reject */
	struct rulecache *rules;
	size_t max_messages;      /* retention runs' bound; 0: RETENTION_MAX_PER_RUN */
};

/* One mailbox. */
struct retention_user {
	const char *address, *domain, *local;
	struct hk_limits limits; /* hk_accounts_limits: plan name, retention period, quota */
};

enum retention_mode {
	RETENTION_MODE_RETENTION, /* `retention` stage, operator + domain, every folder */
	RETENTION_MODE_REFILTER,  /* `deliver` stage, all four layers, one folder */
};

enum retention_what {
	RETENTION_KEEP,     /* reported only with report_keep */
	RETENTION_EXPUNGE,  /* expunge or discard */
	RETENTION_REJECT,   /* refilter: to Rejected, then deleted */
	RETENTION_MOVE,     /* fileinto: copied to `arg`, original deleted */
	RETENTION_COPY,     /* fileinto with keep: copied to `arg`, original kept */
	RETENTION_FLAG,     /* flag `arg` added */
	RETENTION_SKIPPED,  /* refilter: forward/notify/reply not carried out (`arg` says which) */
	RETENTION_LOG,      /* a `log` action: `arg` is its text */
};

/* One thing done (or, in a dry run, that would be done) to one message. */
struct retention_event {
	const char *folder;
	const char *base;   /* the message's Maildir base name */
	int64_t received;   /* file mtime (delivery time) */
	const char *date, *from, *subject; /* "" unless the message was parsed */
	enum retention_what what;
	const char *arg;    /* folder, flag, skipped action or log text; "" */
	const char *rule;   /* rule name, "" for implicit keep */
	const char *layer;  /* "operator", "domain", "panel", "personal", "" */
	bool dry_run;
	int err;            /* 0: done; else errno of the failure */
};

struct retention_opts {
	enum retention_mode mode;
	const char *folder;    /* refilter: the folder (NULL: INBOX); retention: NULL = every folder */
	bool dry_run;          /* decide and report, change nothing (no cursor either) */
	size_t max_messages;   /* 0: the context's (retention), unbounded (refilter) */
	int64_t now;           /* 0: time(NULL) */
	bool report_keep;      /* report messages that stay as they are */
	void (*report)(void *ctx, const struct retention_event *ev); /* may be NULL */
	void *ctx;
	bool quiet;            /* do not log every action (the CLI prints them) */
};

struct retention_stats {
	size_t folders, messages;  /* listed */
	size_t evaluated, parsed;  /* rules run; messages read from disk */
	size_t expunged, moved, copied, flagged, rejected, skipped, failed;
	bool incomplete;           /* stopped at max_messages; a cursor was left */
	bool no_rules;             /* no program has code for the stage: nothing was listed */
	bool busy;                 /* another run holds the mailbox's lock: nothing was done */
};

/* Runs the rules on one mailbox. 0 when the run went through (some
 * actions may still have failed: stats->failed), -1 with a message in
 * err when the mailbox could not be opened or listed. A missing mailbox
 * is not an error (nothing to do). */
int retention_run_user(const struct retention_ctx *c, const struct retention_user *u, const struct retention_opts *o,
    struct retention_stats *stats, char *err, size_t errlen);

/* For a login (POP3 now, IMAP at login and SELECT): the retention stage
 * of `address` with the context's bound, logged with counts when anything
 * changed. Cheap when no operator or domain program has a `retention`
 * stage (two stat calls). Worker thread. */
void retention_run_login(const struct retention_ctx *c, struct hk_accounts *a, const char *address);

#endif
