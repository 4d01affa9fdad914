/*
 * imap_reader.h - the incremental IMAP command reader: bytes from the
 * connection in, complete commands (and the events a session must act on
 * between them) out. It only frames; imap_cmd_parse() gives the command
 * its meaning.
 *
 * Push mode: the session calls imap_reader_feed() with whatever it read,
 * then imap_reader_next() until it returns IMAP_READ_MORE. Events:
 *
 *   IMAP_READ_COMMAND   a complete command (ev.data/ev.len, no final CRLF),
 *                       literals left inline as "{n}\r\n" + n bytes, ready
 *                       for imap_cmd_parse(); ev.streamed_at says where an
 *                       APPEND message literal was streamed (see below).
 *   IMAP_READ_LINE      one raw line (line mode, imap_reader_line_mode):
 *                       AUTHENTICATE responses and IDLE's DONE.
 *   IMAP_READ_CONTINUE  a synchronising literal {n} was accepted: send
 *                       "+ ...\r\n" now, the client waits for it.
 *   IMAP_READ_STREAM_BEGIN  the APPEND message literal starts (ev.size
 *                       bytes, ev.sync). Open the sink here; the session
 *                       may still refuse it with imap_reader_reject()
 *                       (quota, unknown mailbox) before the next call:
 *                       for {n} no continuation is sent, for {n+} the
 *                       bytes are read and discarded.
 *   IMAP_READ_STREAM_DATA   ev.data/ev.len: the next bytes of that literal
 *                       (valid until the next call; write them to the sink).
 *   IMAP_READ_STREAM_END    all of it has arrived; the command (with the
 *                       rest of its line) follows as IMAP_READ_COMMAND.
 *   IMAP_READ_ERROR     the command is refused: send ev.tag (or "*" when
 *                       ev.tag.len is 0) SP ev.status SP ev.text CRLF. The
 *                       reader has already dropped or skips what remains
 *                       of the command.
 *   IMAP_READ_FATAL     send "* BYE " ev.text and close: the client sent a
 *                       non-synchronising literal too big even to discard.
 *
 * Literal sizes are never used to allocate: an inline literal must fit
 * limits.literal_max and is copied as it arrives; the APPEND message
 * literal (the one after the mailbox name of an APPEND) must fit
 * limits.append_max and is never buffered. A refused {n+} literal is read
 * and thrown away (RFC 7888 3: the client sends it regardless) unless it
 * exceeds limits.discard_max, then the connection must end.
 *
 * Ownership: ev.data points into the reader and is valid until the next
 * call to imap_reader_next() or imap_reader_feed().
 *
 * SECURITY: input is the raw client stream. Non-literal text is bounded by
 * IMAP_MAX_LINE per command, the count of literals by IMAP_MAX_LITERALS,
 * each literal by the caller's caps; NUL in command text is refused.
 */
#ifndef HK_IMAP_READER_H
#define HK_IMAP_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

struct imap_reader_limits {
	uint64_t literal_max; /* any literal but the APPEND message (e.g. 8 KiB before login) */
	uint64_t append_max;  /* the APPEND message (the account's max message size); 0: APPEND is
	                       * refused with BAD (before login), over it with NO [TOOBIG] */
	uint64_t discard_max; /* a refused {n+} literal larger than this ends the connection */
};

enum imap_read_event {
	IMAP_READ_MORE,
	IMAP_READ_COMMAND,
	IMAP_READ_LINE,
	IMAP_READ_CONTINUE,
	IMAP_READ_STREAM_BEGIN,
	IMAP_READ_STREAM_DATA,
	IMAP_READ_STREAM_END,
	IMAP_READ_ERROR,
	IMAP_READ_FATAL,
};

struct imap_read_ev {
	enum imap_read_event type;
	const char *data;   /* COMMAND, LINE, STREAM_DATA */
	size_t len;
	size_t streamed_at; /* COMMAND: offset of the streamed literal's "{", or SIZE_MAX */
	uint64_t size;      /* STREAM_BEGIN: the literal's size */
	bool sync;          /* STREAM_BEGIN: {n} (true) or {n+} */
	struct hk_str tag;  /* ERROR: empty for an untagged reply */
	const char *status; /* ERROR: "BAD" or "NO" */
	const char *text;   /* ERROR, FATAL: the reply text (static) */
};

struct imap_reader;

struct imap_reader *imap_reader_new(const struct imap_reader_limits *limits);
void imap_reader_free(struct imap_reader **r);
/* New caps, e.g. after LOGIN; they apply from the next literal on. */
void imap_reader_set_limits(struct imap_reader *r, const struct imap_reader_limits *limits);
/* Appends bytes read from the connection. */
void imap_reader_feed(struct imap_reader *r, const void *data, size_t len);
/* The next event; IMAP_READ_MORE when everything fed has been consumed. */
enum imap_read_event imap_reader_next(struct imap_reader *r, struct imap_read_ev *ev);
/* While on: the next input line is returned as IMAP_READ_LINE, without
 * literal processing (AUTHENTICATE, IDLE). Only between commands. */
void imap_reader_line_mode(struct imap_reader *r, bool on);
/* Right after IMAP_READ_STREAM_BEGIN: refuse that literal; the next call
 * returns IMAP_READ_ERROR with this status and text (static strings). */
void imap_reader_reject(struct imap_reader *r, const char *status, const char *text);
/* Bytes fed but not yet consumed (STARTTLS: must be 0, else plaintext was
 * pipelined after the command). */
size_t imap_reader_pending(const struct imap_reader *r);

#endif
