/*
 * test_imap_parse.c - the IMAP command reader (framing, literals,
 * LITERAL+, APPEND streaming, every cap), the command parser (every
 * command of RFC 3501 6 and the extensions, every SEARCH key, FETCH
 * items and sections, the limits, malformed input) and the response
 * writers.
 *
 * Reader tests compare event transcripts: the same input fed in one
 * chunk and byte by byte must give the same transcript.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "imap/imap_cmd.h"
#include "imap/imap_reader.h"
#include "imap/imap_write.h"

static struct arena A;

static int
setup(void **state)
{
	(void)state;
	arena_init(&A, 0);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	arena_fini(&A);
	return 0;
}

static const struct imap_reader_limits lim_small = { .literal_max = 8192, .append_max = 0, .discard_max = 65536 };
static const struct imap_reader_limits lim_auth = { .literal_max = 8192, .append_max = 1 << 20, .discard_max = 1 << 20 };

/* --- reader transcripts ------------------------------------------------ */

/* Appends a printable form of s (CR as \r, LF as \n, NUL as \0). */
static void
show(struct hk_buf *t, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\r')
			buf_adds(t, "\\r");
		else if (s[i] == '\n')
			buf_adds(t, "\\n");
		else if (s[i] == '\0')
			buf_adds(t, "\\0");
		else
			buf_addc(t, s[i]);
	}
}

/* Streamed bytes are collected and shown once, at STREAM_END, so that
 * different chunkings give the same transcript. */
struct run {
	struct imap_reader *r;
	struct hk_buf t;      /* transcript */
	struct hk_buf stream; /* the current streamed literal */
	const char *reject;   /* reject the next STREAM_BEGIN with this text */
};

static void
drain(struct run *run)
{
	struct imap_read_ev ev;
	for (;;) {
		enum imap_read_event e = imap_reader_next(run->r, &ev);
		assert_int_equal(e, ev.type == IMAP_READ_MORE ? IMAP_READ_MORE : ev.type);
		switch (e) {
		case IMAP_READ_MORE:
			return;
		case IMAP_READ_COMMAND:
			buf_adds(&run->t, "CMD[");
			show(&run->t, ev.data, ev.len);
			if (ev.streamed_at != SIZE_MAX)
				buf_printf(&run->t, "|streamed@%zu", ev.streamed_at);
			buf_adds(&run->t, "] ");
			break;
		case IMAP_READ_LINE:
			buf_adds(&run->t, "LINE[");
			show(&run->t, ev.data, ev.len);
			buf_adds(&run->t, "] ");
			break;
		case IMAP_READ_CONTINUE:
			buf_adds(&run->t, "+ ");
			break;
		case IMAP_READ_STREAM_BEGIN:
			buf_printf(&run->t, "BEGIN(%llu,%s) ", (unsigned long long)ev.size, ev.sync ? "sync" : "nonsync");
			buf_reset(&run->stream);
			if (run->reject != NULL) {
				imap_reader_reject(run->r, "NO", run->reject);
				run->reject = NULL;
			}
			break;
		case IMAP_READ_STREAM_DATA:
			buf_add(&run->stream, ev.data, ev.len);
			break;
		case IMAP_READ_STREAM_END:
			buf_adds(&run->t, "DATA[");
			show(&run->t, run->stream.data ? run->stream.data : "", run->stream.len);
			buf_adds(&run->t, "] ");
			break;
		case IMAP_READ_ERROR:
			buf_printf(&run->t, "ERR[%.*s %s %s] ", ev.tag.len ? (int)ev.tag.len : 1, ev.tag.len ? ev.tag.ptr : "*",
			    ev.status, ev.text);
			break;
		case IMAP_READ_FATAL:
			buf_printf(&run->t, "FATAL[%s] ", ev.text);
			return;
		}
	}
}

/* Runs input through a fresh reader in chunks of `chunk` bytes (0: one
 * chunk); returns the transcript (heap). */
static char *
transcript(const struct imap_reader_limits *lim, const char *in, size_t len, size_t chunk, const char *reject)
{
	struct run run = { .r = imap_reader_new(lim), .reject = reject };
	buf_init(&run.t);
	buf_init(&run.stream);
	if (chunk == 0)
		chunk = len ? len : 1;
	for (size_t off = 0; off < len; off += chunk) {
		size_t n = len - off < chunk ? len - off : chunk;
		imap_reader_feed(run.r, in + off, n);
		drain(&run);
		if (strstr(run.t.data ? run.t.data : "", "FATAL") != NULL)
			break;
	}
	drain(&run);
	imap_reader_free(&run.r);
	assert_null(run.r);
	buf_fini(&run.stream);
	char *s = buf_steal(&run.t);
	return s ? s : xstrdup("");
}

/* The transcript must be `want` whether fed whole, byte by byte or in 7s. */
static void
assert_transcript_r(const struct imap_reader_limits *lim, const char *in, size_t len, const char *reject, const char *want)
{
	size_t chunks[] = { 0, 1, 7 };
	for (size_t i = 0; i < HK_ARRAY_LEN(chunks); i++) {
		char *got = transcript(lim, in, len, chunks[i], reject);
		if (strcmp(got, want) != 0)
			fail_msg("chunk %zu:\n got  %s\n want %s", chunks[i], got, want);
		free(got);
	}
}

#define assert_transcript(lim, in, want) assert_transcript_r(lim, in, strlen(in), NULL, want)

static void
test_reader_commands(void **state)
{
	(void)state;
	assert_transcript(&lim_small, "a1 NOOP\r\na2 CAPABILITY\r\n", "CMD[a1 NOOP] CMD[a2 CAPABILITY] ");
	/* bare LF, empty lines, a partial command left pending */
	assert_transcript(&lim_small, "a1 NOOP\n\r\n\na2 LOGOUT\r\na3 NO", "CMD[a1 NOOP] CMD[a2 LOGOUT] ");
	assert_transcript(&lim_small, "", "");
}

static void
test_reader_literals(void **state)
{
	(void)state;
	/* synchronising: the continuation comes right after the header line */
	assert_transcript(&lim_small, "a1 LOGIN {4}\r\nuser {6}\r\npass\"w\r\n",
	    "+ + CMD[a1 LOGIN {4}\\r\\nuser {6}\\r\\npass\"w] ");
	/* LITERAL+: no continuation */
	assert_transcript(&lim_small, "a1 LOGIN {4+}\r\nuser {2+}\r\npw\r\n",
	    "CMD[a1 LOGIN {4+}\\r\\nuser {2+}\\r\\npw] ");
	/* literal bytes containing CRLF and "{9}" are data, not framing */
	assert_transcript(&lim_small, "a1 LOGIN {5}\r\n{9}\r\n x\r\n", "+ CMD[a1 LOGIN {5}\\r\\n{9}\\r\\n x] ");
	/* a zero-length literal */
	assert_transcript(&lim_small, "a1 LOGIN {0}\r\n \"\"\r\n", "+ CMD[a1 LOGIN {0}\\r\\n \"\"] ");
	/* not a literal marker: parsed (and refused) later */
	assert_transcript(&lim_small, "a1 X {a}\r\na2 X {}\r\na3 X {1+1}\r\n",
	    "CMD[a1 X {a}] CMD[a2 X {}] CMD[a3 X {1+1}] ");
}

static void
test_reader_literal_too_large(void **state)
{
	(void)state;
	/* {n}: refused, no continuation; the client sends its next command */
	assert_transcript(&lim_small, "a1 LOGIN {8193}\r\na2 NOOP\r\n",
	    "ERR[a1 BAD Literal too large] CMD[a2 NOOP] ");
	/* at the cap: accepted */
	struct hk_buf in;
	buf_init(&in);
	buf_adds(&in, "a1 LOGIN {8192+}\r\n");
	for (int i = 0; i < 8192; i++)
		buf_addc(&in, 'x');
	buf_adds(&in, " pw\r\n");
	char *t = transcript(&lim_small, in.data, in.len, 0, NULL);
	assert_non_null(strstr(t, "CMD[a1 LOGIN {8192+}"));
	free(t);
	/* {n+}: refused, its bytes (and the rest of the command) discarded */
	buf_reset(&in);
	buf_adds(&in, "a1 LOGIN {8193+}\r\n");
	for (int i = 0; i < 8193; i++)
		buf_addc(&in, i % 100 == 0 ? '\n' : 'y');
	buf_adds(&in, " {3+}\r\nabc\r\na2 NOOP\r\n");
	assert_transcript_r(&lim_small, in.data, in.len, NULL, "ERR[a1 BAD Literal too large] CMD[a2 NOOP] ");
	/* {n+} over discard_max: the connection must end */
	assert_transcript(&lim_small, "a1 LOGIN {65537+}\r\n", "FATAL[Literal too large to discard] ");
	/* over 2^32-1 */
	assert_transcript(&lim_small, "a1 LOGIN {99999999999999999999}\r\na2 NOOP\r\n",
	    "ERR[a1 BAD Literal too large] CMD[a2 NOOP] ");
	buf_fini(&in);
}

static void
test_reader_append_stream(void **state)
{
	(void)state;
	const char *in = "A7 APPEND INBOX (\\Seen) {12}\r\nHello\r\nWorld\r\nA8 NOOP\r\n";
	assert_transcript(&lim_auth, in, "BEGIN(12,sync) + DATA[Hello\\r\\nWorld] CMD[A7 APPEND INBOX (\\Seen) {12}\\r\\n|streamed@24] CMD[A8 NOOP] ");
	/* the mailbox as a literal: that one is inline, the message streamed */
	assert_transcript(&lim_auth, "A1 APPEND {5+}\r\nDraft {3+}\r\nabc\r\n",
	    "BEGIN(3,nonsync) DATA[abc] CMD[A1 APPEND {5+}\\r\\nDraft {3+}\\r\\n|streamed@22] ");
	/* before login append_max is 0 */
	assert_transcript(&lim_small, "A1 APPEND INBOX {3}\r\nA2 NOOP\r\n",
	    "ERR[A1 BAD APPEND not allowed now] CMD[A2 NOOP] ");
	/* over append_max, and at it */
	const struct imap_reader_limits lim_tiny = { .literal_max = 16, .append_max = 4, .discard_max = 16 };
	assert_transcript(&lim_tiny, "A1 APPEND INBOX {5+}\r\n12345\r\nA2 APPEND INBOX {4+}\r\n1234\r\n",
	    "ERR[A1 NO [TOOBIG] Message too large] BEGIN(4,nonsync) DATA[1234] CMD[A2 APPEND INBOX {4+}\\r\\n|streamed@16] ");
	/* refused by the session at STREAM_BEGIN: {n} gets no continuation */
	const char *s1 = "A1 APPEND Nope {3}\r\nA2 NOOP\r\n";
	assert_transcript_r(&lim_auth, s1, strlen(s1), "[TRYCREATE] No such mailbox",
	    "BEGIN(3,sync) ERR[A1 NO [TRYCREATE] No such mailbox] CMD[A2 NOOP] ");
	/* ... and {n+} is read and discarded */
	const char *s2 = "A1 APPEND Nope {3+}\r\nabc\r\nA2 NOOP\r\n";
	assert_transcript_r(&lim_auth, s2, strlen(s2), "[TRYCREATE] No such mailbox",
	    "BEGIN(3,nonsync) ERR[A1 NO [TRYCREATE] No such mailbox] CMD[A2 NOOP] ");

	/* the streamed command parses, with the message marked streamed */
	struct imap_reader *r = imap_reader_new(&lim_auth);
	imap_reader_feed(r, in, strlen(in));
	struct imap_read_ev ev;
	size_t streamed = 0;
	while (imap_reader_next(r, &ev) != IMAP_READ_COMMAND)
		if (ev.type == IMAP_READ_STREAM_DATA)
			streamed += ev.len;
	assert_int_equal(streamed, 12);
	struct imap_cmd c;
	assert_int_equal(imap_cmd_parse(ev.data, ev.len, ev.streamed_at, &A, &c), IMAP_PARSE_OK);
	assert_int_equal(c.kind, IMAP_CMD_APPEND);
	assert_true(c.append.streamed);
	assert_int_equal(c.append.size, 12);
	assert_int_equal(c.append.flags.system, IMAP_FLAG_SEEN);
	/* the same text without streamed_at is a truncated literal */
	assert_int_equal(imap_cmd_parse(ev.data, ev.len, SIZE_MAX, &A, &c), IMAP_PARSE_BAD);
	imap_reader_free(&r);
}

static void
test_reader_limits(void **state)
{
	(void)state;
	/* a line at IMAP_MAX_LINE is fine, one byte more is refused and skipped */
	struct hk_buf in;
	buf_init(&in);
	buf_adds(&in, "a1 NOOP ");
	while (in.len < IMAP_MAX_LINE)
		buf_addc(&in, 'x');
	buf_adds(&in, "\r\na2 NOOP\r\n");
	char *t = transcript(&lim_small, in.data, in.len, 0, NULL);
	assert_non_null(strstr(t, "CMD[a1 NOOP xxx"));
	assert_non_null(strstr(t, "CMD[a2 NOOP]"));
	free(t);
	buf_reset(&in);
	buf_adds(&in, "a1 NOOP ");
	while (in.len < IMAP_MAX_LINE + 1)
		buf_addc(&in, 'x');
	buf_adds(&in, "\r\na2 NOOP\r\n");
	assert_transcript_r(&lim_small, in.data, in.len, NULL, "ERR[a1 BAD Command line too long] CMD[a2 NOOP] ");
	/* the limit counts all lines of the command; a {n+} at the end of the
	 * skipped line is still discarded */
	buf_reset(&in);
	buf_adds(&in, "a1 LOGIN {1+}\r\nx ");
	while (in.len < IMAP_MAX_LINE + 100)
		buf_addc(&in, 'z');
	buf_adds(&in, " {4+}\r\na3 X\r\na2 NOOP\r\n");
	assert_transcript_r(&lim_small, in.data, in.len, NULL, "ERR[a1 BAD Command line too long] CMD[a2 NOOP] ");
	/* too many literals */
	buf_reset(&in);
	buf_adds(&in, "a1 ID (");
	for (int i = 0; i <= IMAP_MAX_LITERALS; i++)
		buf_adds(&in, "{1+}\r\nx ");
	buf_adds(&in, ")\r\na2 NOOP\r\n");
	assert_transcript_r(&lim_small, in.data, in.len, NULL, "ERR[a1 BAD Too many literals in command] CMD[a2 NOOP] ");
	/* NUL in the text */
	assert_transcript_r(&lim_small, "a1 NO\0OP\r\na2 NOOP\r\n", 20, NULL, "ERR[a1 BAD NUL in command] CMD[a2 NOOP] ");
	/* an invalid tag makes the error untagged */
	assert_transcript(&lim_small, "a\"1 LOGIN {9999999}\r\n", "ERR[* BAD Literal too large] ");
	buf_fini(&in);
}

static void
test_reader_line_mode(void **state)
{
	(void)state;
	struct imap_reader *r = imap_reader_new(&lim_small);
	struct imap_read_ev ev;
	const char *in = "a1 AUTHENTICATE PLAIN\r\nAGFsaWNlAHNlY3JldA== {5}\r\na2 NOOP\r\n";
	imap_reader_feed(r, in, strlen(in));
	assert_int_equal(imap_reader_next(r, &ev), IMAP_READ_COMMAND);
	imap_reader_line_mode(r, true);
	assert_int_equal(imap_reader_next(r, &ev), IMAP_READ_LINE);
	assert_int_equal(ev.len, 24); /* "{5}" is not a literal in line mode */
	assert_memory_equal(ev.data, "AGFsaWNlAHNlY3JldA== {5}", 24);
	imap_reader_line_mode(r, false);
	assert_int_equal(imap_reader_next(r, &ev), IMAP_READ_COMMAND);
	assert_int_equal(ev.len, 7);
	assert_int_equal(imap_reader_pending(r), 0);
	assert_int_equal(imap_reader_next(r, &ev), IMAP_READ_MORE);
	/* STARTTLS with pipelined plaintext behind it: pending says so */
	imap_reader_feed(r, "a3 STARTTLS\r\na4 LOGIN x y\r\n", 27);
	assert_int_equal(imap_reader_next(r, &ev), IMAP_READ_COMMAND);
	assert_int_equal(imap_reader_pending(r), 14);
	/* a line-mode line too long: refused untagged, the rest skipped */
	assert_int_equal(imap_reader_next(r, &ev), IMAP_READ_COMMAND); /* a4 LOGIN, still pending */
	imap_reader_line_mode(r, true);
	struct hk_buf big;
	buf_init(&big);
	while (big.len <= IMAP_MAX_LINE)
		buf_adds(&big, "QUFB ");
	buf_adds(&big, "{9+}\r\na5 NOOP\r\n");
	imap_reader_feed(r, big.data, big.len);
	assert_int_equal(imap_reader_next(r, &ev), IMAP_READ_ERROR);
	assert_int_equal(ev.tag.len, 0);
	imap_reader_line_mode(r, false);
	assert_int_equal(imap_reader_next(r, &ev), IMAP_READ_COMMAND);
	assert_memory_equal(ev.data, "a5 NOOP", 7);
	buf_fini(&big);
	imap_reader_free(&r);
}

/* --- the parser ----------------------------------------------------------- */

static enum imap_parse_status
parse(const char *s, struct imap_cmd *c)
{
	return imap_cmd_parse(s, strlen(s), SIZE_MAX, &A, c);
}

static struct imap_cmd
ok(const char *s)
{
	struct imap_cmd c;
	enum imap_parse_status st = parse(s, &c);
	if (st != IMAP_PARSE_OK)
		fail_msg("[%s]: %s", s, c.error ? c.error : "?");
	return c;
}

static void
bad(const char *s)
{
	struct imap_cmd c;
	enum imap_parse_status st = parse(s, &c);
	if (st != IMAP_PARSE_BAD)
		fail_msg("[%s]: want BAD, got %d", s, (int)st);
	assert_non_null(c.error);
	assert_non_null(c.tag);
}

static void
test_parse_simple_commands(void **state)
{
	(void)state;
	static const struct {
		const char *line;
		enum imap_cmd_kind kind;
	} simple[] = {
		{ "a CAPABILITY", IMAP_CMD_CAPABILITY }, { "a noop", IMAP_CMD_NOOP }, { "a LOGOUT", IMAP_CMD_LOGOUT },
		{ "a STARTTLS", IMAP_CMD_STARTTLS }, { "a NAMESPACE", IMAP_CMD_NAMESPACE }, { "a IDLE", IMAP_CMD_IDLE },
		{ "a CHECK", IMAP_CMD_CHECK }, { "a CLOSE", IMAP_CMD_CLOSE }, { "a UNSELECT", IMAP_CMD_UNSELECT },
		{ "a EXPUNGE", IMAP_CMD_EXPUNGE },
	};
	for (size_t i = 0; i < HK_ARRAY_LEN(simple); i++) {
		struct imap_cmd c = ok(simple[i].line);
		assert_int_equal(c.kind, simple[i].kind);
		assert_string_equal(c.tag, "a");
		assert_false(c.uid);
		char extra[64];
		snprintf(extra, sizeof(extra), "%s x", simple[i].line);
		bad(extra);
	}
	assert_string_equal(imap_cmd_name(IMAP_CMD_FETCH), "FETCH");
	assert_int_equal(imap_cmd_states(IMAP_CMD_LOGIN), IMAP_ST_NOAUTH);
	assert_int_equal(imap_cmd_states(IMAP_CMD_FETCH), IMAP_ST_SELECTED);
	assert_int_equal(imap_cmd_states(IMAP_CMD_SELECT), IMAP_ST_AUTH | IMAP_ST_SELECTED);
	assert_true(imap_cmd_is_done("done", 4));
	assert_false(imap_cmd_is_done("DONE ", 5));
	assert_string_equal(imap_cmd_name(IMAP_CMD_NONE), "?");
}

static void
test_parse_tags_and_names(void **state)
{
	(void)state;
	struct imap_cmd c;
	assert_int_equal(parse("", &c), IMAP_PARSE_BAD_TAG);
	assert_int_equal(parse(" NOOP", &c), IMAP_PARSE_BAD_TAG);
	assert_int_equal(parse("a+1 NOOP", &c), IMAP_PARSE_BAD_TAG);
	assert_int_equal(parse("a*b NOOP", &c), IMAP_PARSE_BAD_TAG);
	assert_int_equal(parse("a1", &c), IMAP_PARSE_BAD);
	assert_string_equal(c.tag, "a1");
	char tag[IMAP_MAX_TAG + 8];
	memset(tag, 't', sizeof(tag));
	memcpy(tag + IMAP_MAX_TAG, " NOOP", 6);
	assert_int_equal(parse(tag, &c), IMAP_PARSE_OK);
	memset(tag, 't', sizeof(tag));
	memcpy(tag + IMAP_MAX_TAG + 1, " NOOP", 6);
	assert_int_equal(parse(tag, &c), IMAP_PARSE_BAD_TAG);
	assert_int_equal(parse("a] NOOP", &c), IMAP_PARSE_OK); /* ']' is a tag char */
	bad("a FOO");
	bad("a  NOOP");
	bad("a UID");
	bad("a UID LOGIN x y");
	bad("a UID FOO 1");
	assert_int_equal(parse("a FOO", &c), IMAP_PARSE_BAD);
	assert_string_equal(c.error, "Unknown command");
	assert_int_equal(parse("a LOGIN x", &c), IMAP_PARSE_BAD);
	assert_string_equal(c.error, "LOGIN: Missing argument");
	assert_int_equal(imap_cmd_parse("a NOOP\0", 7, SIZE_MAX, &A, &c), IMAP_PARSE_BAD);
}

static void
test_parse_login_authenticate(void **state)
{
	(void)state;
	struct imap_cmd c = ok("a1 LOGIN taro \"p a\\\"s\\\\s\"");
	assert_int_equal(c.kind, IMAP_CMD_LOGIN);
	assert_string_equal(c.auth.user, "taro");
	assert_string_equal(c.auth.password, "p a\"s\\s");
	c = ok("a1 LOGIN {4}\r\ntaro {3+}\r\nx y");
	assert_string_equal(c.auth.user, "taro");
	assert_string_equal(c.auth.password, "x y");
	c = ok("a1 login \"\" \"\"");
	assert_string_equal(c.auth.user, "");
	bad("a1 LOGIN {4}\r\nta");          /* truncated literal */
	bad("a1 LOGIN {2}\r\na\0 b");        /* NUL in a literal */
	bad("a1 LOGIN \"a\\x\" b");         /* bad escape */
	bad("a1 LOGIN \"abc b");            /* unterminated */
	bad("a1 LOGIN a b c");
	bad("a1 LOGIN (a) b");
	c = ok("a2 AUTHENTICATE plain");
	assert_int_equal(c.kind, IMAP_CMD_AUTHENTICATE);
	assert_string_equal(c.auth.mechanism, "PLAIN");
	assert_null(c.auth.initial);
	c = ok("a2 AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==");
	assert_string_equal(c.auth.initial, "AGFsaWNlAHNlY3JldA==");
	c = ok("a2 AUTHENTICATE EXTERNAL =");
	assert_string_equal(c.auth.initial, "=");
	bad("a2 AUTHENTICATE PLAIN AGF*");
	bad("a2 AUTHENTICATE PLAIN abc");
	bad("a2 AUTHENTICATE");
}

static void
test_parse_mailboxes(void **state)
{
	(void)state;
	struct imap_cmd c = ok("a SELECT inbox");
	assert_int_equal(c.kind, IMAP_CMD_SELECT);
	assert_true(c.mailbox.inbox);
	assert_string_equal(c.mailbox.name, "INBOX");
	assert_false(c.condstore);
	c = ok("a EXAMINE \"Work/Reports\" (CONDSTORE)");
	assert_int_equal(c.kind, IMAP_CMD_EXAMINE);
	assert_string_equal(c.mailbox.name, "Work/Reports");
	assert_true(c.condstore);
	c = ok("a CREATE &ZeVnLIqe-");
	assert_string_equal(c.mailbox.name, "日本語");
	c = ok("a DELETE {5}\r\nTrash");
	assert_string_equal(c.mailbox.name, "Trash");
	c = ok("a RENAME Old \"New &AKM-\"");
	assert_int_equal(c.kind, IMAP_CMD_RENAME);
	assert_string_equal(c.mailbox.name, "Old");
	assert_string_equal(c.mailbox2.name, "New £");
	c = ok("a SUBSCRIBE Sent");
	assert_int_equal(c.kind, IMAP_CMD_SUBSCRIBE);
	c = ok("a UNSUBSCRIBE Sent]");
	assert_string_equal(c.mailbox.name, "Sent]");
	c = ok("a SELECT INBOX.sub");
	assert_false(c.mailbox.inbox);
	bad("a SELECT &Jjo");              /* unterminated base64 */
	bad("a SELECT &AGE-");             /* "a" encoded in base64: not canonical */
	bad("a SELECT \"caf\xc3\xa9\"");   /* raw 8-bit is not modified UTF-7 */
	bad("a SELECT &AAA-");             /* U+0000 */
	bad("a LIST \"\" &AAA-*");
	bad("a SELECT INBOX (QRESYNC)");
	bad("a SELECT INBOX ()");
	bad("a SELECT");
	bad("a RENAME a");
	bad("a CREATE a%");
	/* a name at IMAP_MAX_MAILBOX bytes, and one over */
	char line[IMAP_MAX_MAILBOX + 32];
	strcpy(line, "a CREATE ");
	size_t n = strlen(line);
	memset(line + n, 'm', IMAP_MAX_MAILBOX);
	line[n + IMAP_MAX_MAILBOX] = '\0';
	ok(line);
	line[n + IMAP_MAX_MAILBOX] = 'm';
	line[n + IMAP_MAX_MAILBOX + 1] = '\0';
	bad(line);
}

static void
test_parse_list_status(void **state)
{
	(void)state;
	struct imap_cmd c = ok("a LIST \"\" *");
	assert_int_equal(c.kind, IMAP_CMD_LIST);
	assert_string_equal(c.list.reference, "");
	assert_string_equal(c.list.pattern, "*");
	c = ok("a LSUB Work/ %/&ZeVnLIqe-*");
	assert_int_equal(c.kind, IMAP_CMD_LSUB);
	assert_string_equal(c.list.reference, "Work/");
	assert_string_equal(c.list.pattern, "%/日本語*");
	c = ok("a LIST \"\" \"\"");
	assert_string_equal(c.list.pattern, "");
	c = ok("a LIST \"\" inbox]");
	assert_string_equal(c.list.pattern, "inbox]");
	bad("a LIST \"\"");
	bad("a LIST \"\" (a)");
	bad("a LIST \"\" &-&Jjo");
	c = ok("a STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ)");
	assert_int_equal(c.kind, IMAP_CMD_STATUS);
	assert_int_equal(c.status_items, IMAP_STATUS_MESSAGES | IMAP_STATUS_RECENT | IMAP_STATUS_UIDNEXT |
	        IMAP_STATUS_UIDVALIDITY | IMAP_STATUS_UNSEEN | IMAP_STATUS_HIGHESTMODSEQ);
	c = ok("a STATUS Sent (unseen)");
	assert_int_equal(c.status_items, IMAP_STATUS_UNSEEN);
	bad("a STATUS INBOX ()");
	bad("a STATUS INBOX (SIZE)");
	bad("a STATUS INBOX MESSAGES");
	bad("a STATUS INBOX (MESSAGES");
}

static void
test_parse_append(void **state)
{
	(void)state;
	struct imap_cmd c = ok("a APPEND Sent (\\Seen \\Draft $Label1) \"17-Jul-1996 02:44:25 -0700\" {5}\r\nHello");
	assert_int_equal(c.kind, IMAP_CMD_APPEND);
	assert_string_equal(c.mailbox.name, "Sent");
	assert_int_equal(c.append.flags.system, IMAP_FLAG_SEEN | IMAP_FLAG_DRAFT);
	assert_int_equal(c.append.flags.nkeywords, 1);
	assert_string_equal(c.append.flags.keywords[0], "$Label1");
	assert_true(c.append.has_date);
	assert_int_equal(c.append.date, 837596665); /* 1996-07-17 09:44:25 UTC */
	assert_int_equal(c.append.tz_minutes, -420);
	assert_false(c.append.streamed);
	assert_int_equal(c.append.size, 5);
	assert_memory_equal(c.append.message.ptr, "Hello", 5);
	c = ok("a APPEND INBOX \" 7-Feb-2000 23:59:59 +0930\" {0+}\r\n");
	assert_int_equal(c.append.date, 949933799); /* 14:29:59 UTC */
	assert_int_equal(c.append.size, 0);
	assert_int_equal(imap_cmd_parse("a APPEND INBOX () {2}\r\n\0x", 25, SIZE_MAX, &A, &c), IMAP_PARSE_OK);
	assert_int_equal(c.append.size, 2); /* the message may hold anything */
	bad("a APPEND INBOX");
	bad("a APPEND INBOX \"hello\"");
	bad("a APPEND INBOX (\\Recent) {1}\r\nx");
	bad("a APPEND INBOX (\\Foo) {1}\r\nx");
	bad("a APPEND INBOX \"17-Jul-1996 24:44:25 -0700\" {1}\r\nx");
	bad("a APPEND INBOX \"31-Feb-1996 02:44:25 -0700\" {1}\r\nx");
	bad("a APPEND INBOX \"17-Jul-1996 02:44:25 0700\" {1}\r\nx");
	bad("a APPEND INBOX \"17-Jux-1996 02:44:25 -0700\" {1}\r\nx");
	bad("a APPEND INBOX {1}\r\nx y");
	bad("a APPEND INBOX {5}\r\nx");
}

static void
test_parse_flags_store(void **state)
{
	(void)state;
	struct imap_cmd c = ok("a STORE 1:3,5 +FLAGS.SILENT (\\Deleted \\seen Junk)");
	assert_int_equal(c.kind, IMAP_CMD_STORE);
	assert_int_equal(c.store.set.n, 2);
	assert_int_equal(c.store.op, IMAP_STORE_ADD);
	assert_true(c.store.silent);
	assert_int_equal(c.store.flags.system, IMAP_FLAG_DELETED | IMAP_FLAG_SEEN);
	assert_int_equal(c.store.flags.nkeywords, 1);
	c = ok("a UID STORE 100:* -FLAGS \\Flagged \\Answered");
	assert_true(c.uid);
	assert_int_equal(c.store.op, IMAP_STORE_REMOVE);
	assert_false(c.store.silent);
	assert_int_equal(c.store.set.r[0].lo, 100);
	assert_int_equal(c.store.set.r[0].hi, IMAP_SEQ_STAR);
	assert_int_equal(c.store.flags.system, IMAP_FLAG_FLAGGED | IMAP_FLAG_ANSWERED);
	c = ok("a STORE 1 FLAGS ()");
	assert_int_equal(c.store.op, IMAP_STORE_SET);
	assert_int_equal(c.store.flags.system, 0);
	c = ok("a STORE 2 (UNCHANGEDSINCE 12345) flags.silent (\\Seen)");
	assert_true(c.store.unchangedsince_set);
	assert_int_equal(c.store.unchangedsince, 12345);
	bad("a STORE 1 FLAGS");
	bad("a STORE 1 FLAGS.LOUD (\\Seen)");
	bad("a STORE 1 +FLAG (\\Seen)");
	bad("a STORE 1 FLAGS (\\Recent)");
	bad("a STORE 1 FLAGS (\\Seen");
	bad("a STORE 1 FLAGS ((\\Seen))");
	bad("a STORE 1 (CHANGEDSINCE 1) FLAGS (\\Seen)");
	bad("a STORE 1 (UNCHANGEDSINCE 9223372036854775808) FLAGS (\\Seen)");
	bad("a STORE 0 FLAGS (\\Seen)");
	bad("a STORE * FLAGS (a%b)");
	/* IMAP_MAX_FLAGS keywords, then one more; a keyword at IMAP_MAX_KEYWORD */
	struct hk_buf b;
	buf_init(&b);
	buf_adds(&b, "a STORE 1 FLAGS (");
	for (int i = 0; i < IMAP_MAX_FLAGS; i++)
		buf_printf(&b, "%sk%d", i ? " " : "", i);
	buf_adds(&b, ")");
	c = ok(b.data);
	assert_int_equal(c.store.flags.nkeywords, IMAP_MAX_FLAGS);
	b.data[--b.len] = '\0';
	buf_adds(&b, " kx)");
	bad(b.data);
	buf_reset(&b);
	buf_adds(&b, "a STORE 1 FLAGS (");
	for (int i = 0; i < IMAP_MAX_KEYWORD; i++)
		buf_addc(&b, 'k');
	buf_adds(&b, ")");
	ok(b.data);
	b.data[b.len - 1] = 'k';
	buf_adds(&b, ")");
	bad(b.data);
	buf_fini(&b);
}

static void
test_parse_seqsets(void **state)
{
	(void)state;
	struct imap_cmd c = ok("a COPY 1,2:4,*,7:*,9:5 Archive");
	assert_int_equal(c.kind, IMAP_CMD_COPY);
	assert_int_equal(c.set.n, 5);
	assert_int_equal(c.set.r[1].lo, 2);
	assert_int_equal(c.set.r[1].hi, 4);
	assert_int_equal(c.set.r[2].lo, IMAP_SEQ_STAR);
	assert_int_equal(c.set.r[4].lo, 9);
	assert_int_equal(c.set.r[4].hi, 5);
	assert_true(imap_seqset_contains(&c.set, 6, 20));
	assert_true(imap_seqset_contains(&c.set, 20, 20));
	c = ok("a COPY 10:12 Archive");
	assert_false(imap_seqset_contains(&c.set, 9, 100));
	assert_true(imap_seqset_contains(&c.set, 12, 100));
	c = ok("a COPY 5:* x");
	assert_true(imap_seqset_contains(&c.set, 3, 3)); /* "5:*" with 3 messages is "3:5" */
	c = ok("a UID MOVE 4294967294 Trash");
	assert_int_equal(c.kind, IMAP_CMD_MOVE);
	assert_true(c.uid);
	assert_string_equal(c.mailbox.name, "Trash");
	c = ok("a UID EXPUNGE 3:5");
	assert_int_equal(c.kind, IMAP_CMD_EXPUNGE);
	assert_int_equal(c.set.n, 1);
	bad("a UID EXPUNGE");
	bad("a COPY 0 x");
	bad("a COPY 4294967295 x");
	bad("a COPY 99999999999 x");
	bad("a COPY 1, x");
	bad("a COPY 1: x");
	bad("a COPY :1 x");
	bad("a COPY 1,,2 x");
	bad("a MOVE 1");
	/* IMAP_MAX_SEQ_RANGES ranges, then one more */
	struct hk_buf b;
	buf_init(&b);
	buf_adds(&b, "a COPY 1");
	for (int i = 1; i < IMAP_MAX_SEQ_RANGES; i++)
		buf_printf(&b, ",%d", 2 * i + 1);
	buf_adds(&b, " x");
	c = ok(b.data);
	assert_int_equal(c.set.n, IMAP_MAX_SEQ_RANGES);
	b.len -= 2;
	buf_adds(&b, ",99 x");
	bad(b.data);
	buf_fini(&b);
}

static const struct imap_fetch_section *
sec(const struct imap_cmd *c, unsigned i)
{
	assert_true(i < c->fetch.nsections);
	return &c->fetch.sections[i];
}

static void
test_parse_fetch(void **state)
{
	(void)state;
	struct imap_cmd c = ok("a FETCH 1:* ALL");
	assert_int_equal(c.kind, IMAP_CMD_FETCH);
	assert_int_equal(c.fetch.items, IMAP_FETCH_FLAGS | IMAP_FETCH_INTERNALDATE | IMAP_FETCH_RFC822_SIZE | IMAP_FETCH_ENVELOPE);
	c = ok("a FETCH 1 fast");
	assert_int_equal(c.fetch.items, IMAP_FETCH_FLAGS | IMAP_FETCH_INTERNALDATE | IMAP_FETCH_RFC822_SIZE);
	c = ok("a FETCH 1 FULL");
	assert_int_equal(c.fetch.items, IMAP_FETCH_FLAGS | IMAP_FETCH_INTERNALDATE | IMAP_FETCH_RFC822_SIZE |
	        IMAP_FETCH_ENVELOPE | IMAP_FETCH_BODY);
	c = ok("a UID FETCH 1:5 (FLAGS ENVELOPE INTERNALDATE RFC822 RFC822.HEADER RFC822.SIZE RFC822.TEXT BODY "
	       "BODYSTRUCTURE UID MODSEQ)");
	assert_true(c.uid);
	assert_int_equal(c.fetch.items, 0x7ff);
	assert_int_equal(c.fetch.nsections, 0);
	c = ok("a FETCH 2 (BODY[] BODY.PEEK[HEADER] BODY[TEXT]<0.100> BODY[1.2.MIME] BODY.PEEK[1.2] "
	       "BODY[HEADER.FIELDS (From to \"X-Spam\")] BODY[3.HEADER.FIELDS.NOT (Received)]<10.20> BODY[4.TEXT] "
	       "BODY[2.HEADER])");
	assert_int_equal(c.fetch.nsections, 9);
	assert_int_equal(sec(&c, 0)->spec, IMAP_SPEC_ALL);
	assert_false(sec(&c, 0)->peek);
	assert_string_equal(sec(&c, 0)->text, "");
	assert_true(sec(&c, 1)->peek);
	assert_int_equal(sec(&c, 1)->spec, IMAP_SPEC_HEADER);
	assert_string_equal(sec(&c, 1)->text, "HEADER");
	assert_true(sec(&c, 2)->partial);
	assert_int_equal(sec(&c, 2)->offset, 0);
	assert_int_equal(sec(&c, 2)->count, 100);
	assert_int_equal(sec(&c, 3)->spec, IMAP_SPEC_MIME);
	assert_int_equal(sec(&c, 3)->nparts, 2);
	assert_int_equal(sec(&c, 3)->parts[1], 2);
	assert_string_equal(sec(&c, 3)->text, "1.2.MIME");
	assert_int_equal(sec(&c, 4)->spec, IMAP_SPEC_ALL);
	assert_string_equal(sec(&c, 4)->text, "1.2");
	assert_int_equal(sec(&c, 5)->spec, IMAP_SPEC_HEADER_FIELDS);
	assert_int_equal(sec(&c, 5)->nfields, 3);
	assert_string_equal(sec(&c, 5)->fields[1], "to");
	assert_string_equal(sec(&c, 5)->text, "HEADER.FIELDS (FROM TO X-SPAM)");
	assert_int_equal(sec(&c, 6)->spec, IMAP_SPEC_HEADER_FIELDS_NOT);
	assert_string_equal(sec(&c, 6)->text, "3.HEADER.FIELDS.NOT (RECEIVED)");
	assert_int_equal(sec(&c, 6)->offset, 10);
	assert_int_equal(sec(&c, 7)->spec, IMAP_SPEC_TEXT);
	assert_string_equal(sec(&c, 8)->text, "2.HEADER");
	c = ok("a FETCH 1 body[header.fields (subject)]");
	assert_string_equal(sec(&c, 0)->text, "HEADER.FIELDS (SUBJECT)");
	c = ok("a FETCH 1:* (FLAGS) (CHANGEDSINCE 12345)");
	assert_true(c.fetch.changedsince_set);
	assert_int_equal(c.fetch.changedsince, 12345);
	assert_true(c.fetch.items & IMAP_FETCH_MODSEQ);
	bad("a FETCH 1");
	bad("a FETCH 1 ()");
	bad("a FETCH 1 (FLAGS");
	bad("a FETCH 1 BODY.PEEK");
	bad("a FETCH 1 BODY[MIME]");
	bad("a FETCH 1 BODY[0]");
	bad("a FETCH 1 BODY[1.]");
	bad("a FETCH 1 BODY[HEADER.FIELDS]");
	bad("a FETCH 1 BODY[HEADER.FIELDS ()]");
	bad("a FETCH 1 BODY[HEADER.FIELDS (a:b)]");
	bad("a FETCH 1 BODY[TEXT");
	bad("a FETCH 1 BODY[]<1>");
	bad("a FETCH 1 BODY[]<1.0>");
	bad("a FETCH 1 RFC822.SIZES");
	bad("a FETCH 1 FLAGSX");
	bad("a FETCH 1 FLAGS (CHANGEDSINCE)");
	bad("a FETCH 1 FLAGS (VANISHED)");
	bad("a FETCH 1 (ALL)");
	/* limits: sections per FETCH, parts per section, fields per list */
	struct hk_buf b;
	buf_init(&b);
	buf_adds(&b, "a FETCH 1 (");
	for (int i = 0; i < IMAP_MAX_FETCH_SECTIONS; i++)
		buf_adds(&b, i ? " BODY[]" : "BODY[]");
	buf_adds(&b, ")");
	ok(b.data);
	b.data[--b.len] = '\0';
	buf_adds(&b, " BODY[])");
	bad(b.data);
	buf_reset(&b);
	buf_adds(&b, "a FETCH 1 BODY[1");
	for (int i = 1; i < IMAP_MAX_SECTION_PARTS; i++)
		buf_adds(&b, ".1");
	buf_adds(&b, "]");
	ok(b.data);
	b.data[--b.len] = '\0';
	buf_adds(&b, ".1]");
	bad(b.data);
	buf_reset(&b);
	buf_adds(&b, "a FETCH 1 BODY[HEADER.FIELDS (");
	for (int i = 0; i < IMAP_MAX_HEADER_FIELDS; i++)
		buf_printf(&b, "%sX-%d", i ? " " : "", i);
	buf_adds(&b, ")]");
	ok(b.data);
	b.len -= 2;
	buf_adds(&b, " Y)]");
	bad(b.data);
	buf_fini(&b);
}

/* Parses "a SEARCH <keys>" and returns the first key. */
static const struct imap_search_key *
search1(const char *keys, struct imap_cmd *c)
{
	char line[512];
	snprintf(line, sizeof(line), "a SEARCH %s", keys);
	*c = ok(line);
	assert_int_equal(c->kind, IMAP_CMD_SEARCH);
	assert_non_null(c->search.keys);
	return c->search.keys;
}

static void
test_parse_search_keys(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		enum imap_search_op op;
	} nullary[] = {
		{ "ALL", IMAP_SEARCH_ALL }, { "ANSWERED", IMAP_SEARCH_ANSWERED }, { "DELETED", IMAP_SEARCH_DELETED },
		{ "DRAFT", IMAP_SEARCH_DRAFT }, { "FLAGGED", IMAP_SEARCH_FLAGGED }, { "NEW", IMAP_SEARCH_NEW },
		{ "OLD", IMAP_SEARCH_OLD }, { "RECENT", IMAP_SEARCH_RECENT }, { "SEEN", IMAP_SEARCH_SEEN },
		{ "UNANSWERED", IMAP_SEARCH_UNANSWERED }, { "UNDELETED", IMAP_SEARCH_UNDELETED },
		{ "UNDRAFT", IMAP_SEARCH_UNDRAFT }, { "UNFLAGGED", IMAP_SEARCH_UNFLAGGED }, { "unseen", IMAP_SEARCH_UNSEEN },
	};
	struct imap_cmd c;
	const struct imap_search_key *k;
	for (size_t i = 0; i < HK_ARRAY_LEN(nullary); i++) {
		k = search1(nullary[i].text, &c);
		assert_int_equal(k->op, nullary[i].op);
		assert_null(k->next);
	}
	static const struct {
		const char *text;
		enum imap_search_op op;
	} strings[] = {
		{ "BCC", IMAP_SEARCH_BCC }, { "BODY", IMAP_SEARCH_BODY }, { "CC", IMAP_SEARCH_CC },
		{ "FROM", IMAP_SEARCH_FROM }, { "SUBJECT", IMAP_SEARCH_SUBJECT }, { "TEXT", IMAP_SEARCH_TEXT },
		{ "TO", IMAP_SEARCH_TO },
	};
	for (size_t i = 0; i < HK_ARRAY_LEN(strings); i++) {
		char q[64];
		snprintf(q, sizeof(q), "%s \"a b\"", strings[i].text);
		k = search1(q, &c);
		assert_int_equal(k->op, strings[i].op);
		assert_string_equal(k->str.ptr, "a b");
		snprintf(q, sizeof(q), "%s {3}\r\n\xe5\xa4\xaa", strings[i].text);
		k = search1(q, &c);
		assert_string_equal(k->str.ptr, "太");
		snprintf(q, sizeof(q), "a SEARCH %s", strings[i].text);
		bad(q);
	}
	static const struct {
		const char *text;
		enum imap_search_op op;
	} dates[] = {
		{ "BEFORE", IMAP_SEARCH_BEFORE }, { "ON", IMAP_SEARCH_ON }, { "SINCE", IMAP_SEARCH_SINCE },
		{ "SENTBEFORE", IMAP_SEARCH_SENTBEFORE }, { "SENTON", IMAP_SEARCH_SENTON },
		{ "SENTSINCE", IMAP_SEARCH_SENTSINCE },
	};
	for (size_t i = 0; i < HK_ARRAY_LEN(dates); i++) {
		char q[64];
		snprintf(q, sizeof(q), "%s 1-Feb-1994", dates[i].text);
		k = search1(q, &c);
		assert_int_equal(k->op, dates[i].op);
		assert_int_equal(k->date.year, 1994);
		assert_int_equal(k->date.mon, 2);
		assert_int_equal(k->date.day, 1);
		snprintf(q, sizeof(q), "%s \"29-feb-2000\"", dates[i].text);
		k = search1(q, &c);
		assert_int_equal(k->date.day, 29);
		snprintf(q, sizeof(q), "a SEARCH %s 29-Feb-1900", dates[i].text);
		bad(q);
	}
	k = search1("LARGER 1000 SMALLER 4294967295", &c);
	assert_int_equal(k->op, IMAP_SEARCH_LARGER);
	assert_int_equal(k->num, 1000);
	assert_int_equal(k->next->op, IMAP_SEARCH_SMALLER);
	assert_int_equal(k->next->num, 4294967295u);
	k = search1("HEADER X-Spam-Flag YES", &c);
	assert_int_equal(k->op, IMAP_SEARCH_HEADER);
	assert_string_equal(k->header, "X-Spam-Flag");
	assert_string_equal(k->str.ptr, "YES");
	k = search1("HEADER Message-ID \"\"", &c);
	assert_string_equal(k->str.ptr, "");
	k = search1("KEYWORD $Junk UNKEYWORD NonJunk", &c);
	assert_int_equal(k->op, IMAP_SEARCH_KEYWORD);
	assert_string_equal(k->str.ptr, "$Junk");
	assert_int_equal(k->next->op, IMAP_SEARCH_UNKEYWORD);
	k = search1("NOT SEEN", &c);
	assert_int_equal(k->op, IMAP_SEARCH_NOT);
	assert_int_equal(k->child->op, IMAP_SEARCH_SEEN);
	k = search1("OR FROM a TO b", &c);
	assert_int_equal(k->op, IMAP_SEARCH_OR);
	assert_int_equal(k->child->op, IMAP_SEARCH_FROM);
	assert_int_equal(k->child2->op, IMAP_SEARCH_TO);
	k = search1("UID 1:100,200", &c);
	assert_int_equal(k->op, IMAP_SEARCH_UID);
	assert_int_equal(k->set.n, 2);
	k = search1("1:5 *", &c);
	assert_int_equal(k->op, IMAP_SEARCH_SEQSET);
	assert_int_equal(k->next->op, IMAP_SEARCH_SEQSET);
	k = search1("(SEEN FLAGGED) (OR (DELETED) NEW)", &c);
	assert_int_equal(k->op, IMAP_SEARCH_AND);
	assert_int_equal(k->child->op, IMAP_SEARCH_SEEN);
	assert_int_equal(k->child->next->op, IMAP_SEARCH_FLAGGED);
	assert_int_equal(k->next->child->op, IMAP_SEARCH_OR);
	assert_int_equal(k->next->child->child->op, IMAP_SEARCH_AND);
	k = search1("MODSEQ 620162338", &c);
	assert_int_equal(k->op, IMAP_SEARCH_MODSEQ);
	assert_int_equal(k->num, 620162338);
	k = search1("MODSEQ \"/flags/\\\\draft\" all 620162338", &c);
	assert_int_equal(k->num, 620162338);
	assert_int_equal(c.search.nkeys, 1);
	for (enum imap_search_op op = IMAP_SEARCH_ALL; op <= IMAP_SEARCH_MODSEQ; op++)
		assert_true(strlen(imap_search_key_name(op)) > 1);
	bad("a SEARCH");
	bad("a SEARCH FOO");
	bad("a SEARCH SEEN  FLAGGED");
	bad("a SEARCH (SEEN");
	bad("a SEARCH ()");
	bad("a SEARCH NOT");
	bad("a SEARCH OR SEEN");
	bad("a SEARCH HEADER \"a:b\" x");
	bad("a SEARCH LARGER x");
	bad("a SEARCH LARGER 4294967296");
	bad("a SEARCH KEYWORD \\Seen");
	bad("a SEARCH BEFORE 1-Feb-94");
	bad("a SEARCH BEFORE 32-Jan-1994");
	bad("a SEARCH MODSEQ \"/flags/x\" bogus 1");
	bad("a SEARCH SUBJECT \"\xff\xfe\"");
}

static void
test_parse_search_charset_and_limits(void **state)
{
	(void)state;
	struct imap_cmd c = ok("a SEARCH CHARSET UTF-8 SUBJECT \"\xe6\x97\xa5\"");
	assert_string_equal(c.search.charset, "UTF-8");
	assert_false(c.search.bad_charset);
	c = ok("a UID SEARCH charset us-ascii ALL");
	assert_true(c.uid);
	assert_false(c.search.bad_charset);
	c = ok("a SEARCH CHARSET ISO-2022-JP SUBJECT {4}\r\n\x1b$B!");
	assert_true(c.search.bad_charset); /* the session answers NO [BADCHARSET] */
	bad("a SEARCH CHARSET UTF-8");
	/* depth: IMAP_MAX_SEARCH_DEPTH NOTs pass, one more fails */
	struct hk_buf b;
	buf_init(&b);
	buf_adds(&b, "a SEARCH ");
	for (int i = 0; i < IMAP_MAX_SEARCH_DEPTH; i++)
		buf_adds(&b, "NOT ");
	buf_adds(&b, "SEEN");
	ok(b.data);
	buf_reset(&b);
	buf_adds(&b, "a SEARCH ");
	for (int i = 0; i <= IMAP_MAX_SEARCH_DEPTH; i++)
		buf_adds(&b, "NOT ");
	buf_adds(&b, "SEEN");
	bad(b.data);
	/* deep parentheses, far past the depth: refused, no stack overflow */
	buf_reset(&b);
	buf_adds(&b, "a SEARCH ");
	for (int i = 0; i < 20000; i++)
		buf_addc(&b, '(');
	bad(b.data);
	/* the key count */
	buf_reset(&b);
	buf_adds(&b, "a SEARCH SEEN");
	for (int i = 1; i < IMAP_MAX_SEARCH_KEYS; i++)
		buf_adds(&b, " SEEN");
	c = ok(b.data);
	assert_int_equal(c.search.nkeys, IMAP_MAX_SEARCH_KEYS);
	buf_adds(&b, " SEEN");
	bad(b.data);
	buf_fini(&b);
}

static void
test_parse_token_limit(void **state)
{
	(void)state;
	/* IMAP_MAX_TOKENS counts atoms, strings, numbers and "(" */
	struct hk_buf b;
	buf_init(&b);
	buf_adds(&b, "a ENABLE X");
	struct imap_cmd c;
	ok(b.data);
	buf_reset(&b);
	buf_adds(&b, "a FETCH 1 (UID");
	for (int i = 0; i < IMAP_MAX_TOKENS; i++)
		buf_adds(&b, " UID");
	buf_adds(&b, ")");
	assert_int_equal(parse(b.data, &c), IMAP_PARSE_BAD);
	assert_string_equal(c.error, "FETCH: Too many arguments");
	buf_fini(&b);
}

static void
test_parse_id_enable(void **state)
{
	(void)state;
	struct imap_cmd c = ok("a ID NIL");
	assert_int_equal(c.kind, IMAP_CMD_ID);
	assert_int_equal(c.id.n, 0);
	c = ok("a ID (\"name\" \"Thunderbird\" \"version\" NIL {6}\r\nvendor \"x\")");
	assert_int_equal(c.id.n, 3);
	assert_string_equal(c.id.pairs[0].field, "name");
	assert_string_equal(c.id.pairs[0].value, "Thunderbird");
	assert_null(c.id.pairs[1].value);
	assert_string_equal(c.id.pairs[2].field, "vendor");
	c = ok("a ID ()");
	assert_int_equal(c.id.n, 0);
	bad("a ID");
	bad("a ID (\"name\")");
	bad("a ID (name \"x\")");
	bad("a ID (\"name\" \"x\"");
	struct hk_buf b;
	buf_init(&b);
	buf_adds(&b, "a ID (");
	for (int i = 0; i < IMAP_MAX_ID_PAIRS; i++)
		buf_printf(&b, "%s\"f%d\" \"v\"", i ? " " : "", i);
	buf_adds(&b, ")");
	c = ok(b.data);
	assert_int_equal(c.id.n, IMAP_MAX_ID_PAIRS);
	b.data[--b.len] = '\0';
	buf_adds(&b, " \"f\" \"v\")");
	bad(b.data);
	buf_reset(&b);
	buf_adds(&b, "a ID (\"");
	for (int i = 0; i < IMAP_MAX_ID_FIELD; i++)
		buf_addc(&b, 'f');
	buf_adds(&b, "\" \"");
	for (int i = 0; i < IMAP_MAX_ID_VALUE; i++)
		buf_addc(&b, 'v');
	buf_adds(&b, "\")");
	ok(b.data);
	buf_reset(&b);
	buf_adds(&b, "a ID (\"f\" \"");
	for (int i = 0; i <= IMAP_MAX_ID_VALUE; i++)
		buf_addc(&b, 'v');
	buf_adds(&b, "\")");
	bad(b.data);
	buf_reset(&b);
	buf_adds(&b, "a ID (\"");
	for (int i = 0; i <= IMAP_MAX_ID_FIELD; i++)
		buf_addc(&b, 'f');
	buf_adds(&b, "\" NIL)");
	bad(b.data);

	c = ok("a ENABLE condstore UTF8=ACCEPT");
	assert_int_equal(c.kind, IMAP_CMD_ENABLE);
	assert_int_equal(c.enable.n, 2);
	assert_string_equal(c.enable.names[0], "CONDSTORE");
	assert_string_equal(c.enable.names[1], "UTF8=ACCEPT");
	bad("a ENABLE");
	bad("a ENABLE (X)");
	buf_reset(&b);
	buf_adds(&b, "a ENABLE");
	for (int i = 0; i < IMAP_MAX_ENABLE; i++)
		buf_adds(&b, " X");
	ok(b.data);
	buf_adds(&b, " X");
	bad(b.data);
	buf_fini(&b);
}

/* --- response writers ------------------------------------------------------ */

#define assert_written(call, want) \
	do { \
		struct hk_buf _b; \
		buf_init(&_b); \
		call; \
		assert_int_equal(_b.len, sizeof(want) - 1); \
		assert_memory_equal(_b.data, want, sizeof(want) - 1); \
		buf_fini(&_b); \
	} while (0)

static void
test_write_strings(void **state)
{
	(void)state;
	assert_written(imap_write_string(&_b, "abc", 3), "\"abc\"");
	assert_written(imap_write_string(&_b, "a\"b\\c", 5), "\"a\\\"b\\\\c\"");
	assert_written(imap_write_string(&_b, "", 0), "\"\"");
	assert_written(imap_write_string(&_b, "a\r\nb", 4), "{4}\r\na\r\nb");
	assert_written(imap_write_string(&_b, "caf\xc3\xa9", 5), "{5}\r\ncaf\xc3\xa9");
	assert_written(imap_write_nstring(&_b, NULL, 0), "NIL");
	assert_written(imap_write_nstring(&_b, "NIL", 3), "\"NIL\"");
	assert_written(imap_write_astring(&_b, "Sent]", 5), "Sent]");
	assert_written(imap_write_astring(&_b, "nil", 3), "\"nil\"");
	assert_written(imap_write_astring(&_b, "a b", 3), "\"a b\"");
	assert_written(imap_write_astring(&_b, "", 0), "\"\"");
	assert_written(imap_write_astring(&_b, "50%", 3), "\"50%\"");
	assert_written(imap_write_mailbox(&_b, "inbox"), "INBOX");
	assert_written(imap_write_mailbox(&_b, "日本語"), "&ZeVnLIqe-");
	assert_written(imap_write_mailbox(&_b, "Work/R&D"), "Work/R&-D");
	assert_written(imap_write_mailbox(&_b, "My Files"), "\"My Files\"");
	/* long strings become literals */
	char big[IMAP_QUOTED_MAX + 1];
	memset(big, 'a', sizeof(big));
	struct hk_buf b;
	buf_init(&b);
	imap_write_string(&b, big, IMAP_QUOTED_MAX);
	assert_int_equal(b.data[0], '"');
	buf_reset(&b);
	imap_write_string(&b, big, IMAP_QUOTED_MAX + 1);
	assert_memory_equal(b.data, "{1025}\r\n", 8);
	buf_fini(&b);
	/* what the writer writes, the parser reads back */
	const char *samples[] = { "plain", "with space", "quote\"back\\", "line\r\nbreak", "caf\xc3\xa9", "" };
	for (size_t i = 0; i < HK_ARRAY_LEN(samples); i++) {
		buf_init(&b);
		buf_adds(&b, "a LOGIN ");
		imap_write_astring(&b, samples[i], strlen(samples[i]));
		buf_adds(&b, " x");
		struct imap_cmd c = ok(b.data);
		assert_string_equal(c.auth.user, samples[i]);
		buf_fini(&b);
	}
}

static void
test_write_flags_seqset_date(void **state)
{
	(void)state;
	const char *kw[] = { "$Junk", "Work" };
	assert_written(imap_write_flags(&_b, IMAP_FLAG_SEEN | IMAP_FLAG_ANSWERED, kw, 2), "(\\Answered \\Seen $Junk Work)");
	assert_written(imap_write_flags(&_b, 0, NULL, 0), "()");
	assert_written(imap_write_flags(&_b, 0x3f, NULL, 0), "(\\Answered \\Flagged \\Deleted \\Seen \\Draft \\Recent)");
	const uint32_t u1[] = { 1, 2, 3, 5, 7, 8, 9, 9, 20 };
	assert_written(imap_write_seqset(&_b, u1, HK_ARRAY_LEN(u1)), "1:3,5,7:9,20");
	const uint32_t u2[] = { 4294967294u, 4294967295u };
	assert_written(imap_write_seqset(&_b, u2, 2), "4294967294:4294967295");
	assert_written(imap_write_seqset(&_b, u1, 1), "1");
	assert_written(imap_write_seqset(&_b, u1, 0), "");
	assert_written(imap_write_datetime(&_b, 837596665, -420), "\"17-Jul-1996 02:44:25 -0700\"");
	assert_written(imap_write_datetime(&_b, 0, 0), "\"01-Jan-1970 00:00:00 +0000\"");
	assert_written(imap_write_datetime(&_b, 949933799, 570), "\"07-Feb-2000 23:59:59 +0930\"");
	/* the APPEND parser reads the formatted date back */
	struct hk_buf b;
	buf_init(&b);
	buf_adds(&b, "a APPEND INBOX ");
	imap_write_datetime(&b, 1700000000, 540);
	buf_adds(&b, " {1}\r\nx");
	struct imap_cmd c = ok(b.data);
	assert_int_equal(c.append.date, 1700000000);
	assert_int_equal(c.append.tz_minutes, 540);
	buf_fini(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_reader_commands, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reader_literals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reader_literal_too_large, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reader_append_stream, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reader_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reader_line_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parse_simple_commands, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parse_tags_and_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parse_login_authenticate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parse_mailboxes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parse_list_status, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parse_append, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parse_flags_store, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parse_seqsets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parse_fetch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parse_search_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parse_search_charset_and_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parse_token_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parse_id_enable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_strings, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_flags_seqset_date, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
