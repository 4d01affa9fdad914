/*
 * imap_reader.c - the incremental command reader (see imap_reader.h).
 *
 * A command is one or more lines; a line ending in "{n}" or "{n+}" is
 * followed by n literal bytes and then the rest of the command (RFC 3501
 * 4.3, RFC 7888). States:
 *
 *   R_LINE          copying command text until LF
 *   R_LITERAL       copying n inline literal bytes
 *   R_STREAM        handing n APPEND message bytes out as STREAM_DATA
 *   R_DISCARD_LIT   throwing away a refused {n+} literal
 *   R_DISCARD_LINE  throwing away the rest of a refused command's line
 *                   (only its last bytes are kept, to see a literal marker)
 *
 * Bare LF is accepted as a line end (some clients send it); the CR before
 * the LF is stripped.
 *
 * SECURITY: nothing the client declares is allocated: inline literals grow
 * the command buffer as their bytes arrive, after the size was checked
 * against the caller's cap; the streamed literal never enters a buffer.
 */
#include "imap/imap_reader.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_limits.h"

enum reader_state { R_LINE, R_LITERAL, R_STREAM, R_DISCARD_LIT, R_DISCARD_LINE };

#define TAIL_MAX 24 /* enough for "{4294967295+}" and a CR */

struct imap_reader {
	struct imap_reader_limits lim;
	struct hk_buf in;     /* fed bytes; consumed up to in_off */
	size_t in_off;
	struct hk_buf cmd;    /* the command so far */
	size_t line_start;    /* offset in cmd of the current line */
	size_t text_len;      /* non-literal bytes of the command */
	unsigned nliterals;
	enum reader_state state;
	uint64_t remaining;   /* bytes left in the current literal */
	size_t streamed_at;
	bool done;            /* cmd holds a command already returned */
	bool line_mode;
	bool discard_plain;   /* discarding a line-mode line: no literal marker */
	bool stream_begun;    /* STREAM_BEGIN returned, CONTINUE not yet */
	bool stream_sync;
	const char *reject_status, *reject_text;
	char tail[TAIL_MAX];  /* last bytes of a discarded line */
	size_t tail_len;
	char tag[IMAP_MAX_TAG + 1];
};

struct imap_reader *
imap_reader_new(const struct imap_reader_limits *limits)
{
	struct imap_reader *r = xcalloc(1, sizeof(*r));
	r->lim = *limits;
	buf_init(&r->in);
	buf_init(&r->cmd);
	r->streamed_at = SIZE_MAX;
	return r;
}

void
imap_reader_free(struct imap_reader **rp)
{
	struct imap_reader *r = *rp;
	if (r == NULL)
		return;
	buf_fini(&r->in);
	buf_fini(&r->cmd);
	free(r);
	*rp = NULL;
}

void
imap_reader_set_limits(struct imap_reader *r, const struct imap_reader_limits *limits)
{
	r->lim = *limits;
}

void
imap_reader_line_mode(struct imap_reader *r, bool on)
{
	r->line_mode = on;
}

void
imap_reader_reject(struct imap_reader *r, const char *status, const char *text)
{
	if (r->stream_begun) {
		r->reject_status = status;
		r->reject_text = text;
	}
}

size_t
imap_reader_pending(const struct imap_reader *r)
{
	return r->in.len - r->in_off;
}

void
imap_reader_feed(struct imap_reader *r, const void *data, size_t len)
{
	if (r->in_off > 0) { /* earlier events' pointers die here, as documented */
		memmove(r->in.data, r->in.data + r->in_off, r->in.len - r->in_off);
		r->in.len -= r->in_off;
		r->in_off = 0;
	}
	buf_add(&r->in, data, len);
}

static void
cmd_reset(struct imap_reader *r)
{
	buf_reset(&r->cmd);
	r->line_start = 0;
	r->text_len = 0;
	r->nliterals = 0;
	r->streamed_at = SIZE_MAX;
	r->done = false;
}

static bool
is_tag_char(unsigned char c)
{
	/* ASTRING-CHAR except "+" (RFC 3501 9: tag) */
	return c > 0x20 && c < 0x7f && !strchr("(){%*\"\\+", c);
}

/* The command's tag for an error reply, or an empty one when it is not a
 * valid tag (the reply is then untagged). */
static struct hk_str
cmd_tag(struct imap_reader *r)
{
	size_t n = 0;
	while (n < r->cmd.len && n <= IMAP_MAX_TAG && is_tag_char((unsigned char)r->cmd.data[n]))
		n++;
	if (n == 0 || n > IMAP_MAX_TAG || n >= r->cmd.len || r->cmd.data[n] != ' ')
		return (struct hk_str){ r->tag, 0 };
	memcpy(r->tag, r->cmd.data, n);
	r->tag[n] = '\0';
	return (struct hk_str){ r->tag, n };
}

static enum imap_read_event
error_ev(struct imap_reader *r, struct imap_read_ev *ev, const char *status, const char *text)
{
	ev->type = IMAP_READ_ERROR;
	/* a line-mode line has no tag: the session answers for its command */
	ev->tag = r->line_mode ? (struct hk_str){ r->tag, 0 } : cmd_tag(r);
	ev->status = status;
	ev->text = text;
	return IMAP_READ_ERROR;
}

/* "{n}" or "{n+}" at the end of s[0..len): true with the size and kind.
 * A size over 2^32-1 (RFC 3501 number) comes back as UINT64_MAX. */
static bool
literal_marker(const char *s, size_t len, uint64_t *size_r, bool *sync_r, size_t *brace_r)
{
	if (len < 3 || s[len - 1] != '}')
		return false;
	size_t i = len - 1;
	bool sync = true;
	if (s[i - 1] == '+') {
		sync = false;
		i--;
	}
	size_t end = i;
	while (i > 0 && s[i - 1] >= '0' && s[i - 1] <= '9')
		i--;
	if (i == end || i == 0 || s[i - 1] != '{')
		return false;
	uint64_t n = 0;
	for (size_t k = i; k < end; k++) {
		n = n * 10 + (uint64_t)(s[k] - '0');
		if (n > UINT32_MAX) {
			n = UINT64_MAX;
			break;
		}
	}
	*size_r = n;
	*sync_r = sync;
	*brace_r = i - 1;
	return true;
}

/* Is the literal whose "{" is at `brace` the message of an APPEND? It is
 * when the command is "tag APPEND mailbox ..." and the literal comes after
 * the mailbox: flags and date-time are never literals, so anything but
 * the mailbox position is the message. */
static bool
is_append_message(const struct imap_reader *r, size_t brace)
{
	const char *s = r->cmd.data;
	size_t i = 0;
	while (i < brace && s[i] != ' ')
		i++;
	if (i + 8 > brace || strncasecmp(s + i, " APPEND ", 8) != 0)
		return false;
	return brace > i + 8;
}

static void
tail_add(struct imap_reader *r, const char *p, size_t n)
{
	if (n >= TAIL_MAX) {
		memcpy(r->tail, p + n - TAIL_MAX, TAIL_MAX);
		r->tail_len = TAIL_MAX;
		return;
	}
	if (r->tail_len + n > TAIL_MAX) {
		size_t drop = r->tail_len + n - TAIL_MAX;
		memmove(r->tail, r->tail + drop, r->tail_len - drop);
		r->tail_len -= drop;
	}
	memcpy(r->tail + r->tail_len, p, n);
	r->tail_len += n;
}

/* Refuse the command: after a {n+} marker the literal is still coming and
 * must be read; after {n} the client waits for a continuation it will
 * not get. */
static enum imap_read_event
refuse(struct imap_reader *r, struct imap_read_ev *ev, bool literal_follows, bool sync, uint64_t size,
    const char *status, const char *text)
{
	enum imap_read_event e = error_ev(r, ev, status, text);
	if (literal_follows && !sync) {
		if (size > r->lim.discard_max) {
			ev->type = IMAP_READ_FATAL;
			ev->text = "Literal too large to discard";
			e = IMAP_READ_FATAL;
		}
		r->state = R_DISCARD_LIT;
		r->remaining = size;
	} else {
		r->state = R_LINE;
	}
	r->discard_plain = false;
	r->tail_len = 0;
	r->done = true; /* the next call starts a fresh command */
	return e;
}

/* A whole line is in cmd from line_start (its LF consumed, CR stripped). */
static enum imap_read_event
line_complete(struct imap_reader *r, struct imap_read_ev *ev)
{
	const char *line = r->cmd.data + r->line_start;
	size_t len = r->cmd.len - r->line_start;
	if (r->line_mode) {
		r->done = true;
		if (memchr(line, '\0', len) != NULL)
			return refuse(r, ev, false, true, 0, "BAD", "NUL in line");
		ev->type = IMAP_READ_LINE;
		ev->data = r->cmd.data;
		ev->len = r->cmd.len;
		return IMAP_READ_LINE;
	}
	uint64_t size = 0;
	bool sync = true;
	size_t brace = 0;
	bool lit = literal_marker(line, len, &size, &sync, &brace);
	brace += r->line_start;
	if (memchr(line, '\0', len) != NULL)
		return refuse(r, ev, lit, sync, size, "BAD", "NUL in command");
	if (!lit) {
		if (r->cmd.len == 0) /* an empty line is no command: ignore it */
			return IMAP_READ_MORE;
		r->done = true;
		ev->type = IMAP_READ_COMMAND;
		ev->data = r->cmd.data;
		ev->len = r->cmd.len;
		ev->streamed_at = r->streamed_at;
		return IMAP_READ_COMMAND;
	}
	if (++r->nliterals > IMAP_MAX_LITERALS)
		return refuse(r, ev, true, sync, size, "BAD", "Too many literals in command");
	buf_add(&r->cmd, "\r\n", 2);
	r->text_len += 2;
	bool append = r->streamed_at == SIZE_MAX && is_append_message(r, brace);
	if (append) {
		if (r->lim.append_max == 0) /* not logged in: the state is wrong, not the size */
			return refuse(r, ev, true, sync, size, "BAD", "APPEND not allowed now");
		if (size > r->lim.append_max)
			return refuse(r, ev, true, sync, size, "NO", "[TOOBIG] Message too large");
		r->streamed_at = brace;
		r->state = R_STREAM;
		r->remaining = size;
		r->stream_begun = true;
		r->stream_sync = sync;
		r->reject_status = r->reject_text = NULL;
		ev->type = IMAP_READ_STREAM_BEGIN;
		ev->size = size;
		ev->sync = sync;
		return IMAP_READ_STREAM_BEGIN;
	}
	if (size > r->lim.literal_max)
		return refuse(r, ev, true, sync, size, "BAD", "Literal too large");
	r->state = R_LITERAL;
	r->remaining = size;
	if (size > 0) /* the buffer grows as bytes arrive, never by the declared size */
		buf_reserve(&r->cmd, size < 4096 ? (size_t)size : 4096);
	if (sync) {
		ev->type = IMAP_READ_CONTINUE;
		return IMAP_READ_CONTINUE;
	}
	return IMAP_READ_MORE; /* internal: go on */
}

enum imap_read_event
imap_reader_next(struct imap_reader *r, struct imap_read_ev *ev)
{
	memset(ev, 0, sizeof(*ev));
	ev->streamed_at = SIZE_MAX;
	if (r->done && r->state == R_LINE)
		cmd_reset(r);
	if (r->stream_begun) {
		r->stream_begun = false;
		if (r->reject_status != NULL) {
			uint64_t size = r->remaining;
			return refuse(r, ev, true, r->stream_sync, size, r->reject_status, r->reject_text);
		}
		if (r->stream_sync) {
			ev->type = IMAP_READ_CONTINUE;
			return IMAP_READ_CONTINUE;
		}
	}
	for (;;) {
		const char *p = r->in.data + r->in_off;
		size_t avail = r->in.len - r->in_off;
		switch (r->state) {
		case R_LITERAL:
		case R_STREAM:
		case R_DISCARD_LIT: {
			if (r->remaining == 0) {
				if (r->state == R_STREAM) {
					r->state = R_LINE;
					r->line_start = r->cmd.len;
					ev->type = IMAP_READ_STREAM_END;
					return IMAP_READ_STREAM_END;
				}
				r->state = r->state == R_LITERAL ? R_LINE : R_DISCARD_LINE;
				r->line_start = r->cmd.len;
				continue;
			}
			if (avail == 0)
				return IMAP_READ_MORE;
			size_t n = avail < r->remaining ? avail : (size_t)r->remaining;
			r->in_off += n;
			r->remaining -= n;
			if (r->state == R_LITERAL) {
				buf_add(&r->cmd, p, n);
			} else if (r->state == R_STREAM) {
				ev->type = IMAP_READ_STREAM_DATA;
				ev->data = p;
				ev->len = n;
				return IMAP_READ_STREAM_DATA;
			}
			continue;
		}
		case R_DISCARD_LINE: {
			if (avail == 0)
				return IMAP_READ_MORE;
			const char *lf = memchr(p, '\n', avail);
			size_t n = lf ? (size_t)(lf - p) : avail;
			tail_add(r, p, n);
			r->in_off += n + (lf ? 1 : 0);
			if (lf == NULL)
				return IMAP_READ_MORE;
			r->state = R_LINE;
			size_t tl = r->tail_len;
			if (tl > 0 && r->tail[tl - 1] == '\r')
				tl--;
			uint64_t size;
			bool sync;
			size_t brace;
			if (!r->discard_plain && literal_marker(r->tail, tl, &size, &sync, &brace) && !sync) {
				if (size > r->lim.discard_max) {
					ev->type = IMAP_READ_FATAL;
					ev->text = "Literal too large to discard";
					return IMAP_READ_FATAL;
				}
				r->state = R_DISCARD_LIT;
				r->remaining = size;
			}
			r->tail_len = 0;
			continue;
		}
		case R_LINE: {
			if (r->done)
				cmd_reset(r);
			if (avail == 0)
				return IMAP_READ_MORE;
			const char *lf = memchr(p, '\n', avail);
			size_t n = lf ? (size_t)(lf - p) : avail;
			/* the CR of a CRLF does not count; a lone CR might be the start of one */
			size_t counted = n > 0 && p[n - 1] == '\r' ? n - 1 : n;
			if (r->text_len + counted > IMAP_MAX_LINE) {
				if (r->cmd.len == 0) /* not even the tag yet: take it from the input */
					buf_add(&r->cmd, p, n < IMAP_MAX_TAG + 2 ? n : IMAP_MAX_TAG + 2);
				enum imap_read_event e = error_ev(r, ev, "BAD", "Command line too long");
				r->discard_plain = r->line_mode;
				r->state = R_DISCARD_LINE;
				r->tail_len = 0;
				r->done = true;
				return e;
			}
			buf_add(&r->cmd, p, n);
			r->text_len += counted;
			r->in_off += n;
			if (lf == NULL)
				return IMAP_READ_MORE;
			r->in_off++;
			if (r->cmd.len > r->line_start && r->cmd.data[r->cmd.len - 1] == '\r')
				r->cmd.data[--r->cmd.len] = '\0';
			enum imap_read_event e = line_complete(r, ev);
			if (e != IMAP_READ_MORE)
				return e;
			if (r->state == R_LINE) /* an empty line was skipped */
				r->line_start = r->cmd.len;
			continue;
		}
		}
	}
}
