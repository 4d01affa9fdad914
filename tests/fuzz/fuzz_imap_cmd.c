/*
 * fuzz_imap_cmd.c - libFuzzer target for the IMAP command reader and
 * parser. The input is a client stream: the first byte picks the chunk
 * size and the literal caps, the rest is fed to imap_reader in chunks;
 * every command it returns is parsed, the way a session would (with line
 * mode after AUTHENTICATE and IDLE). The whole input is also parsed as
 * one command text. Checked: no crash, the reader's framing invariants
 * (streamed bytes add up, commands are bounded), the parser's results
 * lie inside the text, and strings written by imap_write_astring parse
 * back to the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_cmd.h"
#include "imap/imap_reader.h"
#include "imap/imap_write.h"

static void
check_parsed(const char *text, size_t len, enum imap_parse_status st, const struct imap_cmd *c, struct arena *a)
{
	if (st != IMAP_PARSE_OK) {
		if (c->error == NULL || (st == IMAP_PARSE_BAD && c->tag == NULL))
			abort();
		return;
	}
	if (c->kind == IMAP_CMD_NONE || c->tag == NULL || c->error != NULL)
		abort();
	if (c->kind == IMAP_CMD_APPEND && !c->append.streamed && c->append.message.len > 0 &&
	    (c->append.message.ptr < text || c->append.message.ptr + c->append.message.len > text + len))
		abort();
	if (c->set.n > IMAP_MAX_SEQ_RANGES || c->fetch.nsections > IMAP_MAX_FETCH_SECTIONS ||
	    c->search.nkeys > IMAP_MAX_SEARCH_KEYS || c->id.n > IMAP_MAX_ID_PAIRS || c->enable.n > IMAP_MAX_ENABLE)
		abort();
	for (unsigned i = 0; i < c->fetch.nsections; i++)
		if (c->fetch.sections[i].text == NULL || c->fetch.sections[i].nparts > IMAP_MAX_SECTION_PARTS ||
		    c->fetch.sections[i].nfields > IMAP_MAX_HEADER_FIELDS)
			abort();
	if (c->kind == IMAP_CMD_LOGIN) {
		/* round trip: what the writer makes of the user name parses back */
		struct hk_buf b;
		buf_init(&b);
		buf_adds(&b, "t LOGIN ");
		imap_write_astring(&b, c->auth.user, strlen(c->auth.user));
		buf_adds(&b, " p");
		struct imap_cmd r;
		if (imap_cmd_parse(b.data, b.len, SIZE_MAX, a, &r) != IMAP_PARSE_OK || strcmp(r.auth.user, c->auth.user) != 0)
			abort();
		buf_fini(&b);
	}
	if (c->kind == IMAP_CMD_STORE || c->kind == IMAP_CMD_FETCH || c->kind == IMAP_CMD_COPY) {
		const struct imap_seqset *s = c->kind == IMAP_CMD_STORE ? &c->store.set :
		    c->kind == IMAP_CMD_FETCH ? &c->fetch.set : &c->set;
		(void)imap_seqset_contains(s, 7, 100);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	struct arena a;
	arena_init(&a, 0);

	/* 1. the whole input as one command text */
	{
		char *text = malloc(size);
		memcpy(text, data + 1, size - 1);
		struct imap_cmd c;
		enum imap_parse_status st = imap_cmd_parse(text, size - 1, SIZE_MAX, &a, &c);
		check_parsed(text, size - 1, st, &c, &a);
		free(text);
		arena_reset(&a);
	}

	/* 2. as a stream through the reader */
	unsigned chunk = (data[0] & 0x0f) + 1;
	struct imap_reader_limits lim = {
		.literal_max = (data[0] & 0x10) ? 64 : 8192,
		.append_max = (data[0] & 0x20) ? 0 : 4096,
		.discard_max = (data[0] & 0x40) ? 16 : 65536,
	};
	struct imap_reader *r = imap_reader_new(&lim);
	bool fatal = false, in_stream = false;
	uint64_t stream_size = 0, streamed = 0;
	for (size_t off = 1; off < size && !fatal; off += chunk) {
		size_t n = size - off < chunk ? size - off : chunk;
		imap_reader_feed(r, data + off, n);
		struct imap_read_ev ev;
		for (;;) {
			enum imap_read_event e = imap_reader_next(r, &ev);
			if (e == IMAP_READ_MORE)
				break;
			if (e == IMAP_READ_FATAL) {
				fatal = true;
				break;
			}
			switch (e) {
			case IMAP_READ_STREAM_BEGIN:
				if (in_stream || ev.size > lim.append_max)
					abort();
				in_stream = true;
				stream_size = ev.size;
				streamed = 0;
				if (data[0] & 0x80)
					imap_reader_reject(r, "NO", "[TRYCREATE] refused by the fuzzer");
				break;
			case IMAP_READ_STREAM_DATA:
				if (!in_stream || ev.len == 0)
					abort();
				streamed += ev.len;
				break;
			case IMAP_READ_STREAM_END:
				if (!in_stream || streamed != stream_size)
					abort();
				in_stream = false;
				break;
			case IMAP_READ_ERROR:
				in_stream = false; /* a rejected stream ends here */
				if (ev.status == NULL || ev.text == NULL || ev.tag.len > IMAP_MAX_TAG)
					abort();
				break;
			case IMAP_READ_LINE:
				imap_reader_line_mode(r, false);
				(void)imap_cmd_is_done(ev.data, ev.len);
				break;
			case IMAP_READ_COMMAND: {
				if (in_stream)
					abort();
				if (ev.len > IMAP_MAX_LINE + IMAP_MAX_LITERALS * (lim.literal_max + 16))
					abort();
				struct imap_cmd c;
				enum imap_parse_status st = imap_cmd_parse(ev.data, ev.len, ev.streamed_at, &a, &c);
				check_parsed(ev.data, ev.len, st, &c, &a);
				/* a streamed literal is only ever accepted as the APPEND message */
				if (st == IMAP_PARSE_OK && ev.streamed_at != SIZE_MAX &&
				    !(c.kind == IMAP_CMD_APPEND && c.append.streamed))
					abort();
				if (st == IMAP_PARSE_OK && (c.kind == IMAP_CMD_AUTHENTICATE || c.kind == IMAP_CMD_IDLE))
					imap_reader_line_mode(r, true);
				arena_reset(&a);
				break;
			}
			default:
				break;
			}
		}
	}
	imap_reader_free(&r);
	arena_fini(&a);
	return 0;
}
