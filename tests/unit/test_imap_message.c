/*
 * test_imap_message.c - unit tests of the IMAP message views
 * (servers/imap/): ENVELOPE, BODY / BODYSTRUCTURE, BODY[section] with
 * partial fetch and CRLF sizes, the SEARCH text matchers and SENT* dates,
 * plus the runtime helpers they added (address_parse_flags,
 * mime_param_list).
 *
 * Messages are the samples of tests/data/imap/ (made by make-samples.py)
 * and a few built here (RFC 3501's BODYSTRUCTURE example, deep nesting).
 * Expected ENVELOPE / BODYSTRUCTURE strings are written by hand from RFC
 * 3501 7.4.2 in Dovecot's conventions (lower-case types, parameters as
 * written, ("charset" "us-ascii") for text without charset, lines = LFs).
 *
 * Run from the repository root (the data paths are relative to it).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "address.h"
#include "arena.h"
#include "charset.h"
#include "imap/imap_bodystructure.h"
#include "imap/imap_date.h"
#include "imap/imap_envelope.h"
#include "imap/imap_hdr.h"
#include "imap/imap_msg.h"
#include "imap/imap_write.h"
#include "imap/imap_search_text.h"
#include "imap/imap_section.h"
#include "mime_param.h"

#define DATA_DIR "tests/data/imap"

/* --- helpers ------------------------------------------------------------- */

static void
check_mem(const char *got, size_t glen, const char *want, size_t wlen, const char *file, int line)
{
	if (glen != wlen || (wlen && memcmp(got, want, wlen) != 0)) {
		print_error("got  \"%.*s\" (%zu bytes)\nwant \"%.*s\" (%zu bytes)\n", (int)glen, got ? got : "", glen,
			    (int)wlen, want, wlen);
		_fail(file, line);
	}
}
#define assert_buf(b, want) check_mem((b)->data, (b)->len, (want), strlen(want), __FILE__, __LINE__)

struct sample {
	char *data;
	size_t len;
	struct imap_msg m;
};

static void
sample_load(struct sample *s, const char *name)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", DATA_DIR, name);
	assert_int_equal(read_file(path, 1 << 20, &s->data, &s->len), 0);
	imap_msg_init(&s->m, s->data, s->len);
}

static void
sample_mem(struct sample *s, const char *text, size_t len)
{
	s->data = xmalloc(len + 1);
	memcpy(s->data, text, len);
	s->data[len] = '\0';
	s->len = len;
	imap_msg_init(&s->m, s->data, s->len);
}

static void
sample_free(struct sample *s)
{
	imap_msg_fini(&s->m);
	free(s->data);
}

static void
check_envelope(const char *name, const char *want, const char *file, int line)
{
	struct sample s;
	struct hk_buf b;
	sample_load(&s, name);
	buf_init(&b);
	imap_envelope_write(s.data, s.len, &b);
	check_mem(b.data, b.len, want, strlen(want), file, line);
	buf_fini(&b);
	sample_free(&s);
}
#define assert_envelope(name, want) check_envelope((name), (want), __FILE__, __LINE__)

static void
check_bs(struct imap_msg *m, bool ext, const char *want, const char *file, int line)
{
	struct hk_buf b;
	buf_init(&b);
	imap_bodystructure_write(m, ext, &b);
	check_mem(b.data, b.len, want, strlen(want), file, line);
	buf_fini(&b);
}
#define assert_bs(m, ext, want) check_bs((m), (ext), (want), __FILE__, __LINE__)

/* The section's bytes as sent, with <origin.count>; -1 when it does not resolve. */
static int
fetch(struct imap_msg *m, const char *spec, size_t origin, size_t count, struct hk_buf *out)
{
	struct imap_section sec;
	struct imap_section_data d;
	buf_reset(out);
	if (imap_section_parse(spec, strlen(spec), &sec) != 0)
		return -2;
	if (imap_section_resolve(m, &sec, &d) != IMAP_SECTION_OK)
		return -1;
	imap_section_write(m, &d, origin, count, out);
	assert_int_equal(out->len, imap_section_partial_size(&d, origin, count));
	size_t off, len;
	if (imap_section_range(m, &d, origin, count, &off, &len)) {
		/* zero copy agrees with the copy */
		assert_int_equal(len, out->len);
		assert_memory_equal(m->raw + off, out->data ? out->data : "", len);
	}
	return 0;
}

/* --- IMAP strings ---------------------------------------------------------- */

static void
test_quote_quoted_literal_nil(void **state)
{
	(void)state;
	struct hk_buf b;
	buf_init(&b);
	imap_write_string(&b, "say \"hi\" \\o/", 12);
	assert_buf(&b, "\"say \\\"hi\\\" \\\\o/\"");
	buf_reset(&b);
	imap_write_string(&b, "caf\xc3\xa9", 5); /* 8-bit: a literal */
	assert_buf(&b, "{5}\r\ncaf\xc3\xa9");
	buf_reset(&b);
	imap_write_string(&b, "a\r\nb", 4);
	assert_buf(&b, "{4}\r\na\r\nb");
	buf_reset(&b);
	imap_write_string(&b, "a\0b", 3); /* NUL cannot be sent: 0x80 */
	check_mem(b.data, b.len, "{3}\r\na\x80" "b", 8, __FILE__, __LINE__);
	buf_reset(&b);
	imap_write_nstring(&b, NULL, 0);
	imap_write_nstr(&b, (struct hk_str){ "", 0 });
	imap_write_string(&b, "", 0);
	assert_buf(&b, "NILNIL\"\"");
	/* at the length limit: quoted; one more: literal */
	char *big = xmalloc(IMAP_QUOTED_MAX + 1);
	memset(big, 'x', IMAP_QUOTED_MAX + 1);
	buf_reset(&b);
	imap_write_string(&b, big, IMAP_QUOTED_MAX);
	assert_int_equal(b.len, IMAP_QUOTED_MAX + 2);
	buf_reset(&b);
	imap_write_string(&b, big, IMAP_QUOTED_MAX + 1);
	assert_true(b.data[0] == '{');
	free(big);
	buf_fini(&b);
}

/* --- runtime helpers --------------------------------------------------------- */

static void
test_address_flags_raw_groups_route(void **state)
{
	(void)state;
	struct arena a;
	arena_init(&a, 0);
	struct address_list l = { 0 };
	const char *v = "=?UTF-8?Q?Ann?= <a@x>, team: \"B. B\" <b@x>, c@x;, empty:;, <@r1,@r2:d@x>, nodomain";
	address_parse_flags(v, strlen(v), ADDRESS_RAW_NAMES | ADDRESS_GROUP_MARKS | ADDRESS_KEEP_ROUTE, &a, &l);
	assert_int_equal(l.n, 9);
	assert_int_equal(l.v[0].kind, ADDRESS_MAILBOX);
	assert_int_equal(l.v[0].name.len, 15); /* not decoded */
	assert_memory_equal(l.v[0].name.ptr, "=?UTF-8?Q?Ann?=", 15);
	assert_int_equal(l.v[1].kind, ADDRESS_GROUP_START);
	assert_memory_equal(l.v[1].name.ptr, "team", 4);
	assert_memory_equal(l.v[2].name.ptr, "B. B", 4);
	assert_memory_equal(l.v[3].addr.ptr, "c@x", 3);
	assert_int_equal(l.v[4].kind, ADDRESS_GROUP_END);
	assert_int_equal(l.v[5].kind, ADDRESS_GROUP_START);
	assert_int_equal(l.v[6].kind, ADDRESS_GROUP_END);
	assert_int_equal(l.v[7].route.len, 7);
	assert_memory_equal(l.v[7].route.ptr, "@r1,@r2", 7);
	assert_int_equal(l.v[8].route.len, 0); /* the route is per address */
	assert_int_equal(l.v[8].domain.len, 0);
	free(l.v);

	/* without flags: unchanged behaviour (decoded, flattened) */
	struct address_list f = { 0 };
	address_parse(v, strlen(v), &a, &f);
	assert_int_equal(f.n, 5);
	assert_memory_equal(f.v[0].name.ptr, "Ann", 3);
	assert_int_equal(f.v[0].kind, ADDRESS_MAILBOX);
	free(f.v);

	/* a group without ';' still gets its end marker */
	struct address_list g = { 0 };
	address_parse_flags("g: a@x, b@x", 11, ADDRESS_GROUP_MARKS, &a, &g);
	assert_int_equal(g.n, 4);
	assert_int_equal(g.v[3].kind, ADDRESS_GROUP_END);
	free(g.v);
	arena_fini(&a);
}

static void
test_mime_param_list_joins_rfc2231(void **state)
{
	(void)state;
	struct arena a;
	arena_init(&a, 0);
	struct mime_param_kv kv[8];
	const char *v = "attachment; FileName*1*=%E6%9B%B8.pdf; filename*0*=utf-8''%E8%AB%8B; size=12; "
			"title*0=\"a \\\"b\\\"\"; title*1=\" c\"; size=13; x*2=gap; x*0=one";
	size_t n = mime_param_list(v, strlen(v), &a, kv, 8);
	assert_int_equal(n, 4);
	assert_memory_equal(kv[0].name.ptr, "filename*", 9);
	assert_int_equal(kv[0].value.len, strlen("utf-8''%E8%AB%8B%E6%9B%B8.pdf"));
	assert_memory_equal(kv[0].value.ptr, "utf-8''%E8%AB%8B%E6%9B%B8.pdf", kv[0].value.len);
	assert_memory_equal(kv[1].name.ptr, "size", 4);
	assert_memory_equal(kv[1].value.ptr, "12", 2); /* first wins */
	assert_memory_equal(kv[2].name.ptr, "title", 5);
	assert_int_equal(kv[2].name.len, 5);
	assert_memory_equal(kv[2].value.ptr, "a \"b\" c", 7);
	assert_memory_equal(kv[3].name.ptr, "x", 1);
	assert_int_equal(kv[3].value.len, 3); /* section 2 after a gap is dropped */
	/* the output limit */
	assert_int_equal(mime_param_list(v, strlen(v), &a, kv, 2), 2);
	arena_fini(&a);
}

/* --- ENVELOPE ---------------------------------------------------------------- */

static void
test_envelope_simple_all_fields(void **state)
{
	(void)state;
	assert_envelope("simple.eml",
			"(\"Mon, 7 Dec 2026 09:00:00 +0900\" \"Lunch on Friday?\" "
			"((\"Alice Liddell\" NIL \"alice\" \"example.org\")) "
			"((NIL NIL \"list-owner\" \"example.org\")) "
			"((\"Alice (home)\" NIL \"alice\" \"home.example\")) "
			"((NIL NIL \"bob\" \"example.net\")(\"Carol \\\"CJ\\\" Jones\" NIL \"carol\" \"example.net\")) "
			"((NIL NIL \"dave\" \"example.net\")) ((NIL NIL \"eve\" \"example.net\")) "
			"\"<prev-1@example.net>\" \"<simple-1@example.org>\")");
}

static void
test_envelope_groups_route_missing_domain(void **state)
{
	(void)state;
	assert_envelope("groups.eml",
			"(\"Thu, 10 Dec 2026 08:15:00 -0500\" \"groups\" "
			"((\"Team Lead\" NIL \"lead\" \"example.com\")) ((\"Team Lead\" NIL \"lead\" \"example.com\")) "
			"((\"Team Lead\" NIL \"lead\" \"example.com\")) "
			"((NIL NIL \"project\" NIL)(NIL NIL \"ann\" \"example.com\")(\"Ben B.\" NIL \"ben\" \"example.com\")"
			"(NIL NIL NIL NIL)(NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) "
			"((NIL \"@relay.example.com\" \"carl\" \"example.com\")(NIL NIL \"MAILER-DAEMON\" \"MISSING_DOMAIN\")) "
			"NIL NIL \"<groups-1@example.com>\")");
}

static void
test_envelope_missing_headers_nil(void **state)
{
	(void)state;
	assert_envelope("missing.eml", "(NIL \"no sender\" NIL NIL NIL NIL NIL NIL NIL NIL)");
}

static void
test_envelope_encoded_words_kept_raw(void **state)
{
	(void)state;
	assert_envelope("encoded-words.eml",
			"(\"10 Dec 2026 12:00 GMT\" "
			"\"=?UTF-8?B?UsOpc3Vtw6kgZHUgcHJvamV0?= =?UTF-8?Q?_STRASSE?=\" "
			"((\"=?UTF-8?Q?Andr=C3=A9_Dupont?=\" NIL \"andre\" \"example.fr\")) "
			"((\"=?UTF-8?Q?Andr=C3=A9_Dupont?=\" NIL \"andre\" \"example.fr\")) "
			"((\"=?UTF-8?Q?Andr=C3=A9_Dupont?=\" NIL \"andre\" \"example.fr\")) "
			"((\"=?ISO-8859-1?Q?J=F6rg?=\" NIL \"joerg\" \"example.de\")) NIL NIL NIL \"<ew-1@example.fr>\")");
	assert_envelope("iso2022jp.eml",
			"(\"Sat, 12 Dec 2026 10:00:00 +0900\" \"=?ISO-2022-JP?B?GyRCMnE1RCROJCpDTiRpJDsbKEI=?=\" "
			"((\"=?ISO-2022-JP?B?GyRCRURDZhsoQg==?=\" NIL \"tanaka\" \"example.jp\")) "
			"((\"=?ISO-2022-JP?B?GyRCRURDZhsoQg==?=\" NIL \"tanaka\" \"example.jp\")) "
			"((\"=?ISO-2022-JP?B?GyRCRURDZhsoQg==?=\" NIL \"tanaka\" \"example.jp\")) "
			"((NIL NIL \"suzuki\" \"example.jp\")) NIL NIL NIL \"<jis-1@example.jp>\")");
}

static void
test_envelope_folding_8bit_bare_lf_first_wins(void **state)
{
	(void)state;
	const char *msg = "Subject: first\n line\nSubject: second\nFrom: J\xc3\xb6rg <j@x>\n"
			  "Sender:\nReply-To: <>\nTo: undisclosed-recipients:;\n\nbody\nSubject: not a header\n";
	struct hk_buf b;
	buf_init(&b);
	imap_envelope_write(msg, strlen(msg), &b);
	/* folded subject unfolded, the first Subject wins, 8-bit name as a
	 * literal, empty Sender / unusable Reply-To fall back to From */
	assert_buf(&b, "(NIL \"first line\" (({5}\r\nJ\xc3\xb6rg NIL \"j\" \"x\")) (({5}\r\nJ\xc3\xb6rg NIL \"j\" \"x\")) "
		       "(({5}\r\nJ\xc3\xb6rg NIL \"j\" \"x\")) ((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) "
		       "NIL NIL NIL NIL)");
	/* no header at all; a header without the empty line */
	buf_reset(&b);
	imap_envelope_write("", 0, &b);
	assert_buf(&b, "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
	buf_reset(&b);
	imap_envelope_write("Message-ID: <x@y>", 17, &b);
	assert_buf(&b, "(NIL NIL NIL NIL NIL NIL NIL NIL NIL \"<x@y>\")");
	buf_fini(&b);
}

/* RFC 3501 7.4.2's example FETCH response, for the message it describes:
 * the ENVELOPE is byte for byte the RFC's; BODY differs only in case
 * (UW-IMAP upper-cases, Dovecot and we write types as lower case). */
static void
test_rfc3501_example_message(void **state)
{
	(void)state;
	assert_envelope("rfc3501-example.eml",
			"(\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" \"IMAP4rev1 WG mtg summary and minutes\" "
			"((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) "
			"((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) "
			"((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) "
			"((NIL NIL \"imap\" \"cac.washington.edu\")) "
			"((NIL NIL \"minutes\" \"CNRI.Reston.VA.US\")(\"John Klensin\" NIL \"KLENSIN\" \"MIT.EDU\")) "
			"NIL NIL \"<B27397-0100000@cac.washington.edu>\")");
	struct sample s;
	sample_load(&s, "rfc3501-example.eml");
	assert_bs(&s.m, false, "(\"text\" \"plain\" (\"charset\" \"US-ASCII\") NIL NIL \"7bit\" 3028 92)");
	sample_free(&s);
}

/* --- BODY / BODYSTRUCTURE ------------------------------------------------------ */

static void
test_bodystructure_simple_text(void **state)
{
	(void)state;
	struct sample s;
	sample_load(&s, "simple.eml");
	assert_bs(&s.m, false, "(\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 60 5)");
	assert_bs(&s.m, true, "(\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 60 5 NIL NIL NIL NIL)");
	sample_free(&s);
	/* no Content-Type at all: text/plain; charset=us-ascii */
	sample_load(&s, "missing.eml");
	assert_bs(&s.m, false, "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 11 1)");
	sample_free(&s);
}

static void
test_bodystructure_alternative(void **state)
{
	(void)state;
	struct sample s;
	sample_load(&s, "alternative.eml");
	assert_bs(&s.m, false,
		  "((\"text\" \"plain\" (\"charset\" \"iso-8859-1\") NIL NIL \"quoted-printable\" 32 0)"
		  "(\"text\" \"html\" (\"charset\" \"iso-8859-1\") NIL NIL \"quoted-printable\" 72 0) \"alternative\")");
	assert_bs(&s.m, true,
		  "((\"text\" \"plain\" (\"charset\" \"iso-8859-1\") NIL NIL \"quoted-printable\" 32 0 NIL NIL NIL NIL)"
		  "(\"text\" \"html\" (\"charset\" \"iso-8859-1\") NIL NIL \"quoted-printable\" 72 0 NIL NIL NIL NIL) "
		  "\"alternative\" (\"boundary\" \"=_alt_42\") NIL NIL NIL)");
	sample_free(&s);
}

static void
test_bodystructure_mixed_attachment_nested_message(void **state)
{
	(void)state;
	struct sample s;
	sample_load(&s, "mixed.eml");
	const char *env = "(\"Tue, 8 Dec 2026 08:00:00 +0000\" \"the note\" ((\"Carol\" NIL \"carol\" \"example.net\")) "
			  "((\"Carol\" NIL \"carol\" \"example.net\")) ((\"Carol\" NIL \"carol\" \"example.net\")) "
			  "((NIL NIL \"bob\" \"example.net\")) NIL NIL NIL \"<note-1@example.net>\")";
	char want[4096];
	snprintf(want, sizeof(want),
		 "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 39 0 NIL NIL NIL NIL)"
		 "(\"application\" \"pdf\" (\"name\" \"invoice.pdf\") \"<pdf1@example.net>\" \"the invoice\" \"base64\" 372 "
		 "NIL (\"attachment\" (\"filename*\" \"utf-8''%%E8%%AB%%8B%%E6%%B1%%82%%E6%%9B%%B8.pdf\")) NIL NIL)"
		 "(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 400 %s "
		 "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 21 0 NIL NIL NIL NIL)"
		 "(\"text\" \"html\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 28 0 NIL NIL NIL \"http://example.net/note.html\") "
		 "\"alternative\" (\"boundary\" \"inner\") NIL NIL NIL) 16 NIL (\"inline\" NIL) NIL NIL) "
		 "\"mixed\" (\"boundary\" \"outer\") NIL (\"en\") NIL)",
		 env);
	assert_bs(&s.m, true, want);
	snprintf(want, sizeof(want),
		 "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 39 0)"
		 "(\"application\" \"pdf\" (\"name\" \"invoice.pdf\") \"<pdf1@example.net>\" \"the invoice\" \"base64\" 372)"
		 "(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 400 %s "
		 "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 21 0)"
		 "(\"text\" \"html\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 28 0) \"alternative\") 16) \"mixed\")",
		 env);
	assert_bs(&s.m, false, want);
	sample_free(&s);
}

/* RFC 3501 7.4.2's example, rebuilt as a message with exactly those sizes:
 * (("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 1152 23)("TEXT"
 * "PLAIN" ("CHARSET" "US-ASCII" "NAME" "cc.diff")
 * "<960723163407.20117h@cac.washington.edu>" "Compiler diff" "BASE64"
 * 4554 73) "MIXED") - in Dovecot's case conventions. */
static void
test_bodystructure_rfc3501_example(void **state)
{
	(void)state;
	struct hk_buf m;
	buf_init(&m);
	buf_adds(&m, "From: a@b\r\nMIME-Version: 1.0\r\nContent-Type: MULTIPART/MIXED; BOUNDARY=\"xx\"\r\n\r\n--xx\r\n"
		     "Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\r\n");
	for (int i = 0; i < 23; i++) { /* 22 x 48 + 50 chars, 23 CRLF: 1152 octets */
		for (int k = 0; k < (i == 22 ? 50 : 48); k++)
			buf_addc(&m, 'a');
		buf_adds(&m, "\r\n");
	}
	buf_adds(&m, "\r\n--xx\r\nContent-Type: TEXT/PLAIN; CHARSET=US-ASCII; NAME=cc.diff\r\n"
		     "Content-ID: <960723163407.20117h@cac.washington.edu>\r\nContent-Description: Compiler diff\r\n"
		     "Content-Transfer-Encoding: BASE64\r\n\r\n");
	for (int i = 0; i < 73; i++) { /* 72 x 60 + 88 chars, 73 CRLF: 4554 octets */
		for (int k = 0; k < (i == 72 ? 88 : 60); k++)
			buf_addc(&m, 'A');
		buf_adds(&m, "\r\n");
	}
	buf_adds(&m, "\r\n--xx--\r\n");
	struct sample s;
	sample_mem(&s, m.data, m.len);
	assert_bs(&s.m, false,
		  "((\"text\" \"plain\" (\"charset\" \"US-ASCII\") NIL NIL \"7bit\" 1152 23)"
		  "(\"text\" \"plain\" (\"charset\" \"US-ASCII\" \"name\" \"cc.diff\") "
		  "\"<960723163407.20117h@cac.washington.edu>\" \"Compiler diff\" \"base64\" 4554 73) \"mixed\")");
	sample_free(&s);
	buf_fini(&m);
}

static void
test_bodystructure_bare_lf_counts_crlf(void **state)
{
	(void)state;
	struct sample s;
	sample_load(&s, "bare-lf.eml");
	assert_false(imap_msg_crlf_clean(&s.m));
	assert_int_equal(imap_msg_vsize(&s.m), s.len + imap_count_lines(s.data, s.len));
	assert_bs(&s.m, true,
		  "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 18 1 NIL NIL NIL NIL)"
		  "(\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 5 0 NIL (\"attachment\" (\"filename\" \"notes.txt\")) NIL NIL) "
		  "\"mixed\" (\"boundary\" \"b1\") NIL NIL NIL)");
	sample_free(&s);
}

static void
test_bodystructure_broken_mime(void **state)
{
	(void)state;
	struct sample s;
	/* no closing boundary: the parts that are there */
	sample_load(&s, "no-close.eml");
	assert_bs(&s.m, false,
		  "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 10 0)"
		  "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 45 1) \"mixed\")");
	sample_free(&s);
	/* a multipart without boundary: one empty text part, as Dovecot */
	const char *nb = "Content-Type: multipart/mixed\r\n\r\nno parts here\r\n";
	sample_mem(&s, nb, strlen(nb));
	assert_bs(&s.m, false, "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0) \"mixed\")");
	assert_bs(&s.m, true,
		  "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL) \"mixed\" NIL NIL NIL NIL)");
	sample_free(&s);
	/* an encoded message/rfc822 is a leaf: no envelope */
	const char *enc = "Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\nRnJvbTogYUBi\r\n";
	sample_mem(&s, enc, strlen(enc));
	assert_bs(&s.m, false, "(\"message\" \"rfc822\" NIL NIL NIL \"base64\" 14)");
	sample_free(&s);
}

/* Balanced parentheses outside quoted strings and literals. */
static bool
balanced(const char *p, size_t n)
{
	long depth = 0;
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '"') {
			for (i++; i < n && p[i] != '"'; i++)
				if (p[i] == '\\')
					i++;
		} else if (p[i] == '{') {
			size_t len = strtoul(p + i + 1, NULL, 10);
			const char *e = memchr(p + i, '}', n - i);
			if (e == NULL)
				return false;
			i = (size_t)(e - p) + 2 + len;
		} else if (p[i] == '(') {
			depth++;
		} else if (p[i] == ')' && --depth < 0) {
			return false;
		}
	}
	return depth == 0;
}

static void
test_huge_nesting_bounded(void **state)
{
	(void)state;
	struct hk_buf m, b;
	buf_init(&m);
	buf_init(&b);
	/* 200 nested multiparts, then 200 nested message/rfc822 */
	for (int i = 0; i < 200; i++)
		buf_printf(&m, "Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\n", i, i);
	buf_adds(&m, "Content-Type: text/plain\r\n\r\ndeep\r\n");
	for (int i = 199; i >= 0; i--)
		buf_printf(&m, "--b%d--\r\n", i);
	struct sample s;
	sample_mem(&s, m.data, m.len);
	imap_bodystructure_write(&s.m, true, &b);
	assert_true(balanced(b.data, b.len));
	/* the limit is the parser's depth: below it parts resolve, past it they do not */
	char spec[256] = "1";
	for (int i = 1; i < HK_MSG_DEFAULT_MAX_DEPTH; i++)
		strcat(spec, ".1");
	struct hk_buf out;
	buf_init(&out);
	assert_int_equal(fetch(&s.m, spec, 0, SIZE_MAX, &out), 0);
	/* past the parser's depth the innermost multipart is opaque: it is
	 * written as holding one empty text part */
	assert_non_null(memmem(b.data, b.len, "\"7bit\" 0 0 NIL NIL NIL NIL) \"mixed\"", 35));
	strcat(spec, ".1"); /* longer than a section path may be */
	assert_int_equal(fetch(&s.m, spec, 0, SIZE_MAX, &out), -2);
	sample_free(&s);

	buf_reset(&m);
	buf_reset(&b);
	for (int i = 0; i < 200; i++)
		buf_printf(&m, "Subject: level %d\r\nContent-Type: message/rfc822\r\n\r\n", i);
	buf_adds(&m, "Subject: bottom\r\n\r\nhello\r\n");
	sample_mem(&s, m.data, m.len);
	imap_bodystructure_write(&s.m, false, &b);
	assert_true(balanced(b.data, b.len));
	assert_non_null(memmem(b.data, b.len, "\"level 1\"", 9));
	assert_int_equal(fetch(&s.m, "1.HEADER", 0, SIZE_MAX, &out), 0);
	assert_buf(&out, "Subject: level 1\r\nContent-Type: message/rfc822\r\n\r\n");
	assert_int_equal(fetch(&s.m, "1.1.HEADER.FIELDS (subject)", 0, SIZE_MAX, &out), 0);
	assert_buf(&out, "Subject: level 2\r\n\r\n");
	sample_free(&s);
	buf_fini(&out);
	buf_fini(&m);
	buf_fini(&b);
}

/* --- BODY[section] --------------------------------------------------------------- */

static void
test_section_parse_syntax(void **state)
{
	(void)state;
	struct imap_section sec;
	assert_int_equal(imap_section_parse("", 0, &sec), 0);
	assert_int_equal(sec.nparts, 0);
	assert_int_equal(sec.kind, IMAP_SECTION_ALL);
	assert_int_equal(imap_section_parse("2.3.header.fields (From \"X-Spam\")", 33, &sec), 0);
	assert_int_equal(sec.nparts, 2);
	assert_int_equal(sec.part[1], 3);
	assert_int_equal(sec.kind, IMAP_SECTION_HEADER_FIELDS);
	assert_int_equal(sec.nfields, 2);
	assert_memory_equal(sec.fields[1].ptr, "X-Spam", 6);
	assert_int_equal(imap_section_parse("HEADER.FIELDS.NOT (a)", 21, &sec), 0);
	assert_int_equal(sec.kind, IMAP_SECTION_HEADER_FIELDS_NOT);
	static const char *const bad[] = { "0", "1.", ".1", "01", "MIME", "1.MIMEX", "HEADER.FIELDS", "HEADER.FIELDS ()",
					   "HEADER.FIELDS (a", "TEXT ", "1.2.X", "999999999", "HEADER.FIELDS (\"a\\b\")" };
	for (size_t i = 0; i < HK_ARRAY_LEN(bad); i++)
		assert_int_equal(imap_section_parse(bad[i], strlen(bad[i]), &sec), -1);
	/* the limits, at and past them */
	char path[256] = "1";
	for (int i = 1; i < IMAP_SECTION_MAX_DEPTH; i++)
		strcat(path, ".1");
	assert_int_equal(imap_section_parse(path, strlen(path), &sec), 0);
	strcat(path, ".1");
	assert_int_equal(imap_section_parse(path, strlen(path), &sec), -1);
	struct hk_buf f;
	buf_init(&f);
	buf_adds(&f, "HEADER.FIELDS (");
	for (int i = 0; i < IMAP_SECTION_MAX_FIELDS; i++)
		buf_printf(&f, "%sf%d", i ? " " : "", i);
	buf_adds(&f, ")");
	assert_int_equal(imap_section_parse(f.data, f.len, &sec), 0);
	f.len--;
	buf_adds(&f, " one-more)");
	assert_int_equal(imap_section_parse(f.data, f.len, &sec), -1);
	buf_fini(&f);
}

static void
test_section_mixed_parts(void **state)
{
	(void)state;
	struct sample s;
	struct hk_buf b;
	buf_init(&b);
	sample_load(&s, "mixed.eml");
	assert_int_equal(fetch(&s.m, "", 0, SIZE_MAX, &b), 0);
	assert_int_equal(b.len, s.len);
	assert_int_equal(fetch(&s.m, "1", 0, SIZE_MAX, &b), 0);
	assert_buf(&b, "See the invoice and the forwarded note.");
	assert_int_equal(fetch(&s.m, "2.MIME", 0, 29, &b), 0);
	assert_buf(&b, "Content-Type: application/pdf");
	assert_int_equal(fetch(&s.m, "3.HEADER.FIELDS (Subject FROM)", 0, SIZE_MAX, &b), 0);
	assert_buf(&b, "From: Carol <carol@example.net>\r\nSubject: the note\r\n\r\n");
	assert_int_equal(fetch(&s.m, "3.1", 0, SIZE_MAX, &b), 0);
	assert_buf(&b, "Please pay by Friday.");
	assert_int_equal(fetch(&s.m, "3.2.MIME", 0, SIZE_MAX, &b), 0);
	assert_buf(&b, "Content-Type: text/html; charset=utf-8\r\nContent-Location: http://example.net/note.html\r\n\r\n");
	assert_int_equal(fetch(&s.m, "3.TEXT", 0, 7, &b), 0);
	assert_buf(&b, "--inner");
	assert_int_equal(fetch(&s.m, "3.HEADER", 0, SIZE_MAX, &b), 0);
	assert_true(b.len > 4 && memcmp(b.data, "From: Carol", 11) == 0 && memcmp(b.data + b.len - 4, "\r\n\r\n", 4) == 0);
	assert_int_equal(fetch(&s.m, "3", 0, 6, &b), 0);
	assert_buf(&b, "From: ");
	assert_int_equal(fetch(&s.m, "3.MIME", 0, SIZE_MAX, &b), 0);
	assert_buf(&b, "Content-Type: message/rfc822\r\nContent-Disposition: inline\r\n\r\n");
	assert_int_equal(fetch(&s.m, "HEADER.FIELDS.NOT (Received Content-Type From To Subject Date Message-ID "
				     "MIME-Version)", 0, SIZE_MAX, &b), 0);
	assert_buf(&b, "Content-Language: en\r\n\r\n");
	assert_int_equal(fetch(&s.m, "HEADER.FIELDS (X-Absent)", 0, SIZE_MAX, &b), 0);
	assert_buf(&b, "\r\n");
	/* no such part; HEADER of a part that is not a message */
	assert_int_equal(fetch(&s.m, "4", 0, SIZE_MAX, &b), -1);
	assert_int_equal(fetch(&s.m, "1.1", 0, SIZE_MAX, &b), -1);
	assert_int_equal(fetch(&s.m, "3.3", 0, SIZE_MAX, &b), -1);
	struct imap_section sec;
	struct imap_section_data d;
	assert_int_equal(imap_section_parse("1.HEADER", 8, &sec), 0);
	assert_int_equal(imap_section_resolve(&s.m, &sec, &d), IMAP_SECTION_NOT_MESSAGE);
	sample_free(&s);
	buf_fini(&b);
}

static void
test_section_single_part_and_partial(void **state)
{
	(void)state;
	struct sample s;
	struct hk_buf b;
	buf_init(&b);
	sample_load(&s, "simple.eml");
	/* part 1 of a message that is not multipart is its body */
	assert_int_equal(fetch(&s.m, "1", 0, SIZE_MAX, &b), 0);
	assert_int_equal(b.len, 60);
	assert_int_equal(fetch(&s.m, "TEXT", 0, SIZE_MAX, &b), 0);
	assert_int_equal(b.len, 60);
	assert_int_equal(fetch(&s.m, "1", 3, 4, &b), 0);
	assert_buf(&b, "Bob,");
	assert_int_equal(fetch(&s.m, "1", 55, 100, &b), 0); /* clamped */
	assert_buf(&b, "ice\r\n");
	assert_int_equal(fetch(&s.m, "1", 60, 10, &b), 0); /* origin at the end */
	assert_int_equal(b.len, 0);
	assert_int_equal(fetch(&s.m, "1", SIZE_MAX, SIZE_MAX, &b), 0);
	assert_int_equal(b.len, 0);
	assert_int_equal(fetch(&s.m, "1.MIME", 0, 12, &b), 0); /* the message header */
	assert_buf(&b, "Return-Path:");
	assert_int_equal(fetch(&s.m, "2", 0, SIZE_MAX, &b), -1);
	assert_int_equal(fetch(&s.m, "HEADER.FIELDS (to CC)", 0, SIZE_MAX, &b), 0);
	assert_buf(&b, "To: bob@example.net, \"Carol \\\"CJ\\\" Jones\" <carol@example.net>\r\nCc: dave@example.net\r\n\r\n");
	assert_int_equal(fetch(&s.m, "HEADER.FIELDS (to CC)", 20, 5, &b), 0);
	assert_buf(&b, " \"Car");
	assert_int_equal(imap_msg_vsize(&s.m), s.len);
	assert_true(imap_msg_crlf_clean(&s.m));
	sample_free(&s);
	buf_fini(&b);
}

static void
test_section_bare_lf_converted(void **state)
{
	(void)state;
	struct sample s;
	struct hk_buf b;
	buf_init(&b);
	sample_load(&s, "bare-lf.eml");
	assert_int_equal(fetch(&s.m, "1", 0, SIZE_MAX, &b), 0);
	assert_buf(&b, "line one\r\nline two");
	assert_int_equal(fetch(&s.m, "1", 8, 2, &b), 0); /* the inserted CR counts */
	assert_buf(&b, "\r\n");
	assert_int_equal(fetch(&s.m, "1", 9, 3, &b), 0);
	assert_buf(&b, "\nli");
	assert_int_equal(fetch(&s.m, "2.MIME", 0, SIZE_MAX, &b), 0);
	assert_buf(&b, "Content-Type: text/plain; charset=utf-8\r\nContent-Disposition: attachment; filename=notes.txt\r\n\r\n");
	assert_int_equal(fetch(&s.m, "HEADER.FIELDS (Subject)", 0, SIZE_MAX, &b), 0);
	assert_buf(&b, "Subject: bare LF\r\n\r\n");
	assert_int_equal(fetch(&s.m, "", 0, SIZE_MAX, &b), 0);
	assert_int_equal(b.len, imap_msg_vsize(&s.m));
	assert_int_equal(imap_crlf_size(b.data, b.len), b.len); /* no bare LF left */
	sample_free(&s);
	buf_fini(&b);
}

static void
test_section_folded_fields_and_header_only(void **state)
{
	(void)state;
	struct sample s;
	struct hk_buf b;
	buf_init(&b);
	/* a folded field is copied whole; a bare-LF fold becomes CRLF */
	const char *msg = "X-A: one\r\nSubject: a long\r\n\tsubject\r\nX-B: two\n three\r\n\r\nbody";
	sample_mem(&s, msg, strlen(msg));
	assert_int_equal(fetch(&s.m, "HEADER.FIELDS (SUBJECT x-b)", 0, SIZE_MAX, &b), 0);
	assert_buf(&b, "Subject: a long\r\n\tsubject\r\nX-B: two\r\n three\r\n\r\n");
	assert_int_equal(fetch(&s.m, "TEXT", 0, SIZE_MAX, &b), 0);
	assert_buf(&b, "body");
	sample_free(&s);
	/* a message that is all header, without the empty line */
	msg = "Subject: only\r\nFrom: a@b";
	sample_mem(&s, msg, strlen(msg));
	assert_int_equal(fetch(&s.m, "HEADER", 0, SIZE_MAX, &b), 0);
	assert_buf(&b, "Subject: only\r\nFrom: a@b");
	assert_int_equal(fetch(&s.m, "TEXT", 0, SIZE_MAX, &b), 0);
	assert_int_equal(b.len, 0);
	assert_int_equal(fetch(&s.m, "HEADER.FIELDS (from)", 0, SIZE_MAX, &b), 0);
	assert_buf(&b, "From: a@b\r\n\r\n");
	assert_bs(&s.m, false, "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)");
	sample_free(&s);
	/* NUL cannot be sent in a literal: 0x80, same size, no zero copy */
	sample_mem(&s, "Subject: z\r\n\r\na\0b\r\n", 19);
	assert_false(imap_msg_crlf_clean(&s.m));
	assert_int_equal(imap_msg_vsize(&s.m), 19);
	assert_int_equal(fetch(&s.m, "TEXT", 0, SIZE_MAX, &b), 0);
	assert_buf(&b, "a\x80" "b\r\n");
	struct imap_section sec;
	struct imap_section_data d;
	size_t off, len;
	assert_int_equal(imap_section_parse("TEXT", 4, &sec), 0);
	assert_int_equal(imap_section_resolve(&s.m, &sec, &d), IMAP_SECTION_OK);
	assert_false(imap_section_range(&s.m, &d, 0, SIZE_MAX, &off, &len));
	sample_free(&s);
	/* the empty message */
	sample_mem(&s, "", 0);
	assert_int_equal(fetch(&s.m, "", 0, SIZE_MAX, &b), 0);
	assert_int_equal(b.len, 0);
	assert_int_equal(fetch(&s.m, "1", 0, SIZE_MAX, &b), 0);
	assert_int_equal(b.len, 0);
	assert_int_equal(imap_msg_vsize(&s.m), 0);
	sample_free(&s);
	buf_fini(&b);
}

/* --- SEARCH -------------------------------------------------------------------- */

#define S(x) (x), strlen(x)

static void
test_search_japanese_found_by_utf8(void **state)
{
	(void)state;
	struct sample s;
	sample_load(&s, "iso2022jp.eml");
	assert_true(imap_search_header(&s.m, S("Subject"), S("会議")));
	assert_true(imap_search_header(&s.m, S("subject"), S("お知らせ")));
	assert_true(imap_search_header(&s.m, S("From"), S("田中")));
	assert_true(imap_search_header(&s.m, S("From"), S("TANAKA@example")));
	assert_false(imap_search_header(&s.m, S("To"), S("田中")));
	assert_true(imap_search_body(&s.m, S("十時から")));
	assert_true(imap_search_body(&s.m, S("資料をご確認")));
	assert_false(imap_search_body(&s.m, S("会議のお知らせ"))); /* only in the Subject */
	assert_true(imap_search_text(&s.m, S("会議のお知らせ")));
	assert_true(imap_search_text(&s.m, S("十時")));
	assert_false(imap_search_text(&s.m, S("ありません")));
	sample_free(&s);

	sample_load(&s, "sjis.eml");
	assert_true(imap_search_header(&s.m, S("Subject"), S("見積書")));
	assert_true(imap_search_body(&s.m, S("お見積りを添付")));
	assert_true(imap_search_body(&s.m, S("ａｂｃ株式会社"))); /* fullwidth Latin folds */
	sample_free(&s);

	sample_load(&s, "eucjp.eml");
	assert_true(imap_search_body(&s.m, S("月次報告書")));
	assert_false(imap_search_body(&s.m, S("週次")));
	sample_free(&s);
}

static void
test_search_case_folding_decoded(void **state)
{
	(void)state;
	struct sample s;
	sample_load(&s, "encoded-words.eml");
	assert_true(imap_search_header(&s.m, S("SUBJECT"), S("résumé du")));
	assert_true(imap_search_header(&s.m, S("Subject"), S("RÉSUMÉ")));
	assert_true(imap_search_header(&s.m, S("Subject"), S("projet strasse")));
	assert_true(imap_search_header(&s.m, S("From"), S("ANDRÉ dupont")));
	assert_true(imap_search_header(&s.m, S("To"), S("jÖrg")));
	assert_false(imap_search_header(&s.m, S("Subject"), S("=?UTF-8?"))); /* decoded, not raw */
	assert_true(imap_search_body(&s.m, S("RÉSUMÉ EST"))); /* unlabelled UTF-8 body */
	sample_free(&s);

	sample_load(&s, "alternative.eml");
	assert_true(imap_search_body(&s.m, S("café crème"))); /* QP + ISO-8859-1 */
	assert_true(imap_search_body(&s.m, S("CAFÉ CRÈME OFFERS")));
	assert_true(imap_search_text(&s.m, S("alt-1@SHOP")));
	assert_false(imap_search_body(&s.m, S("alt-1@shop")));
	sample_free(&s);

	struct hk_buf f;
	buf_init(&f);
	imap_search_fold(S("ÀÉÎÕÜ Ÿ Ł ŉ ΣΩ ДЖ Ё ＡＺ ß \xff"), &f);
	assert_buf(&f, "àéîõü ÿ ł ŉ σω дж ё ａｚ ß \xff");
	buf_fini(&f);
}

static void
test_search_header_presence_and_missing(void **state)
{
	(void)state;
	struct sample s;
	sample_load(&s, "missing.eml");
	assert_false(imap_search_header(&s.m, S("From"), S("")));
	assert_true(imap_search_header(&s.m, S("Subject"), S("")));
	assert_true(imap_search_header(&s.m, S("Subject"), S("SENDER")));
	assert_true(imap_search_body(&s.m, S("")));
	assert_true(imap_search_text(&s.m, S("subject: no")));
	assert_false(imap_search_sent(&s.m, IMAP_SENT_BEFORE, 9999, 12, 31));
	assert_false(imap_search_sent(&s.m, IMAP_SENT_SINCE, 1900, 1, 1));
	sample_free(&s);

	sample_load(&s, "mixed.eml");
	assert_true(imap_search_body(&s.m, S("forwarded note")));
	assert_true(imap_search_body(&s.m, S("please pay"))); /* inline message/rfc822 text */
	assert_false(imap_search_body(&s.m, S("JVBERi0"))); /* attachments are not text */
	sample_free(&s);
}

static void
test_search_sent_dates(void **state)
{
	(void)state;
	struct sample s;
	sample_load(&s, "simple.eml"); /* Mon, 7 Dec 2026 09:00:00 +0900 */
	assert_true(imap_search_sent(&s.m, IMAP_SENT_ON, 2026, 12, 7));
	assert_false(imap_search_sent(&s.m, IMAP_SENT_ON, 2026, 12, 6)); /* the zone is disregarded */
	assert_true(imap_search_sent(&s.m, IMAP_SENT_BEFORE, 2026, 12, 8));
	assert_false(imap_search_sent(&s.m, IMAP_SENT_BEFORE, 2026, 12, 7));
	assert_true(imap_search_sent(&s.m, IMAP_SENT_SINCE, 2026, 12, 7));
	assert_false(imap_search_sent(&s.m, IMAP_SENT_SINCE, 2027, 1, 1));
	sample_free(&s);
}

static void
test_date_parse_obsolete_forms(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		int y, m, d, zone;
	} ok[] = {
		{ "Mon, 7 Dec 2026 09:00:00 +0900", 2026, 12, 7, 540 },
		{ "7 Dec 2026 09:00 GMT", 2026, 12, 7, 0 },
		{ "Mon , 07 Dec 2026 (note) 09:00:00 -0130", 2026, 12, 7, -90 },
		{ "Monday, 7 December 2026", 2026, 12, 7, 0 },
		{ "7 Dec 26 09:00 EST", 2026, 12, 7, -300 },
		{ "7 Dec 99 09:00:00 PDT", 1999, 12, 7, -420 },
		{ "1 Jan 099 00:00 Z", 1999, 1, 1, 0 },
		{ "29 Feb 2024 23:59:60 +0000", 2024, 2, 29, 0 },
		{ "  (comment (nested)) 3 mar 2025", 2025, 3, 3, 0 },
		{ "6-Dec-2026 10:00:00 +0100", 2026, 12, 6, 60 },
		{ "Tue, 8 Dec 2026 10:30:00 +0000 (UTC) trailing", 2026, 12, 8, 0 },
	};
	for (size_t i = 0; i < HK_ARRAY_LEN(ok); i++) {
		struct imap_date d;
		if (!imap_date_parse(ok[i].in, strlen(ok[i].in), &d))
			fail_msg("not parsed: %s", ok[i].in);
		assert_int_equal(d.year, ok[i].y);
		assert_int_equal(d.month, ok[i].m);
		assert_int_equal(d.day, ok[i].d);
		assert_int_equal(d.zone, ok[i].zone);
	}
	static const char *const bad[] = { "", "yesterday", "31 Feb 2026", "29 Feb 2025", "7 Foo 2026", "7 Dec",
					   "7 Dec 20266", "123 Dec 2026", "0 Dec 2026", "7 Dec 1066", "Mon, Dec 7 2026" };
	for (size_t i = 0; i < HK_ARRAY_LEN(bad); i++) {
		struct imap_date d;
		if (imap_date_parse(bad[i], strlen(bad[i]), &d))
			fail_msg("parsed: %s", bad[i]);
	}
}

/* --- limits at the edge ----------------------------------------------------------- */

static size_t
count_occurrences(const struct hk_buf *b, const char *needle)
{
	size_t n = 0, l = strlen(needle);
	for (const char *p = b->data; (p = memmem(p, b->len - (size_t)(p - b->data), needle, l)) != NULL; p += l)
		n++;
	return n;
}

static void
test_limits_params_langs_numbers(void **state)
{
	(void)state;
	struct hk_buf m, b;
	buf_init(&m);
	buf_init(&b);
	/* IMAP_BS_MAX_PARAMS parameters written, the rest dropped;
	 * IMAP_BS_MAX_LANGS languages */
	buf_adds(&m, "Content-Type: application/x-test");
	for (int i = 0; i < IMAP_BS_MAX_PARAMS + 8; i++)
		buf_printf(&m, "; p%d=v", i);
	buf_adds(&m, "\r\nContent-Language: ");
	for (int i = 0; i < IMAP_BS_MAX_LANGS + 4; i++)
		buf_printf(&m, "%sl%d", i ? ", " : "", i);
	buf_adds(&m, "\r\n\r\nx\r\n");
	struct sample s;
	sample_mem(&s, m.data, m.len);
	imap_bodystructure_write(&s.m, true, &b);
	assert_int_equal(count_occurrences(&b, " \"v\""), IMAP_BS_MAX_PARAMS);
	assert_int_equal(count_occurrences(&b, "\"p31\" \"v\")"), 1); /* the last one kept */
	assert_int_equal(count_occurrences(&b, "\"l"), IMAP_BS_MAX_LANGS);
	sample_free(&s);

	/* MIME_PARAM_LIST_SCAN: parameters past it are not seen */
	struct arena a;
	arena_init(&a, 0);
	struct mime_param_kv kv[2];
	buf_reset(&m);
	buf_adds(&m, "text/plain");
	for (int i = 0; i < MIME_PARAM_LIST_SCAN - 1; i++)
		buf_adds(&m, "; x=1");
	buf_adds(&m, "; last=1; after=1");
	assert_int_equal(mime_param_list(m.data, m.len, &a, kv, 2), 2);
	assert_memory_equal(kv[1].name.ptr, "last", 4);
	arena_fini(&a);

	/* IMAP_SECTION_MAX_NUMBER */
	struct imap_section sec;
	char num[32];
	snprintf(num, sizeof(num), "%d", IMAP_SECTION_MAX_NUMBER);
	assert_int_equal(imap_section_parse(num, strlen(num), &sec), 0);
	snprintf(num, sizeof(num), "%d", IMAP_SECTION_MAX_NUMBER + 1);
	assert_int_equal(imap_section_parse(num, strlen(num), &sec), -1);
	buf_fini(&m);
	buf_fini(&b);
}

/* IMAP_SEARCH_TEXT_MAX: text inside the cap is found, text past it is not. */
static void
test_search_text_cap(void **state)
{
	(void)state;
	struct hk_buf m;
	buf_init(&m);
	buf_adds(&m, "Subject: big\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nEARLY\r\n");
	while (m.len < IMAP_SEARCH_TEXT_MAX - 100)
		buf_adds(&m, "filler text of a very long message, line after line\r\n");
	buf_adds(&m, "INSIDE\r\n");
	/* CRLF becomes LF in the decoded text: go well past the cap */
	while (m.len < IMAP_SEARCH_TEXT_MAX + IMAP_SEARCH_TEXT_MAX / 8)
		buf_adds(&m, "more filler past the cap\r\n");
	buf_adds(&m, "BEYOND\r\n");
	struct sample s;
	sample_mem(&s, m.data, m.len);
	assert_true(imap_search_body(&s.m, S("early")));
	assert_true(imap_search_body(&s.m, S("inside")));
	assert_false(imap_search_body(&s.m, S("beyond")));
	assert_false(imap_search_text(&s.m, S("beyond")));
	sample_free(&s);
	buf_fini(&m);
}

/* --- performance ----------------------------------------------------------------- */

/* ENVELOPE of 10,000 4 KB messages from memory: reported, and bounded so a
 * regression to whole-message parsing shows (the body here is 3 KB of
 * MIME parts the envelope must never look at). */
/* --- the header block the message cache keeps (imap_hdr_block) ----------- */

/* One section's bytes as sent. */
static void
section_bytes(struct imap_msg *m, const char *spec, struct hk_buf *out)
{
	struct imap_section sec;
	struct imap_section_data d;
	assert_int_equal(imap_section_parse(spec, strlen(spec), &sec), 0);
	buf_reset(out);
	if (imap_section_resolve(m, &sec, &d) == IMAP_SECTION_OK)
		imap_section_write(m, &d, 0, SIZE_MAX, out);
}

/* What FETCH and SEARCH answer from the block must be what they answer
 * from the whole message: ENVELOPE, the header keys and SENT* always,
 * the HEADER sections when the block says every line is a field. */
static void
check_block(struct sample *s, bool want_fields)
{
	bool fields;
	size_t b = imap_hdr_block(s->data, s->len, &fields);
	assert_true(b <= s->len);
	assert_int_equal(fields, want_fields);
	struct imap_msg hm;
	imap_msg_init(&hm, s->data, b);
	struct hk_buf x, y;
	buf_init(&x);
	buf_init(&y);
	imap_envelope_write(s->data, s->len, &x);
	imap_envelope_write(s->data, b, &y);
	check_mem(y.data, y.len, x.data, x.len, __FILE__, __LINE__);
	static const char *const names[] = { "From", "To", "Cc", "Subject", "X-Campaign", "Date" };
	static const char *const needles[] = { "", "a", "example", "test", "Report", "2024" };
	for (size_t i = 0; i < 6; i++)
		for (size_t k = 0; k < 6; k++)
			assert_int_equal(imap_search_header(&s->m, names[i], strlen(names[i]), needles[k], strlen(needles[k])),
			    imap_search_header(&hm, names[i], strlen(names[i]), needles[k], strlen(needles[k])));
	struct imap_date d1, d2;
	bool h1 = imap_search_sent_date(&s->m, &d1), h2 = imap_search_sent_date(&hm, &d2);
	assert_int_equal(h1, h2);
	if (h1)
		assert_int_equal(imap_date_key(&d1), imap_date_key(&d2));
	if (fields) {
		static const char *const specs[] = { "HEADER", "HEADER.FIELDS (From Subject X-Campaign)",
			"HEADER.FIELDS.NOT (Subject)" };
		for (size_t i = 0; i < 3; i++) {
			section_bytes(&s->m, specs[i], &x);
			section_bytes(&hm, specs[i], &y);
			check_mem(y.data, y.len, x.data, x.len, __FILE__, __LINE__);
		}
	}
	buf_fini(&x);
	buf_fini(&y);
	imap_msg_fini(&hm);
}

static void
test_header_block_same_views(void **state)
{
	(void)state;
	static const char *const files[] = { "alternative.eml", "bare-lf.eml", "encoded-words.eml", "eucjp.eml",
		"groups.eml", "iso2022jp.eml", "missing.eml", "mixed.eml", "no-close.eml", "rfc3501-example.eml",
		"simple.eml", "sjis.eml" };
	for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
		struct sample s;
		sample_load(&s, files[i]);
		bool fields;
		(void)imap_hdr_block(s.data, s.len, &fields);
		check_block(&s, fields);
		sample_free(&s);
	}
	/* built ones: clean, and each way a header can have lines that are
	 * not fields (the MIME parser may end the header there) */
	static const struct {
		const char *text;
		bool fields;
	} cases[] = {
		{ "From: a@example.jp\r\nSubject: Report\r\n  folded\r\nDate: 1 Jan 2024 00:00 +0000\r\n\r\nbody\r\n", true },
		{ "From: a@example.jp\nSubject: bare LF\n\nbody\n", true },
		{ "Subject: no body, no empty line\r\nFrom: a@example.jp\r\n", true },
		{ "Subject: ends with CR\r\n\r", true },
		{ "Subject: x\r\n\r\n", true },
		{ "", true },
		{ "\r\nbody only\r\n", true },
		{ "From: a@example.jp\r\ngarbage line\r\nSubject: Report\r\n\r\nbody\r\n", false },
		{ "From a@example.jp Mon Jan  1 00:00:00 2024\r\nSubject: Report\r\n\r\nbody\r\n", false },
		{ "  stray continuation\r\nSubject: Report\r\n\r\nbody\r\n", false },
		{ "From: a@example.jp\r\nX Campaign: spaced name\r\nSubject: Report\r\n\r\nbody\r\n", false },
		{ "Subject: Report\r\ngarbage at the end\r\n", false },
		{ "Subject: Report\r\nX-Campaign: needle-7\r\n\r\nX-Campaign: in the body\r\n", true },
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		struct sample s;
		sample_mem(&s, cases[i].text, strlen(cases[i].text));
		check_block(&s, cases[i].fields);
		sample_free(&s);
	}
}

static void
test_envelope_speed_10000(void **state)
{
	(void)state;
	struct hk_buf m, out;
	buf_init(&m);
	buf_init(&out);
	buf_adds(&m, "Return-Path: <alice@example.org>\r\n"
		     "Received: from mx.example.org (mx.example.org [192.0.2.1]) by mail.example.net with ESMTPS id 1; "
		     "Mon, 7 Dec 2026 09:00:00 +0900\r\n"
		     "Date: Mon, 7 Dec 2026 09:00:00 +0900\r\nFrom: =?UTF-8?Q?Alice_Liddell?= <alice@example.org>\r\n"
		     "To: bob@example.net, \"Carol Jones\" <carol@example.net>, team: ann@example.com, ben@example.com;\r\n"
		     "Cc: dave@example.net\r\nSubject: Re: the quarterly report, with a subject long enough to fold\r\n"
		     " onto a second line\r\nMessage-ID: <perf-1@example.org>\r\nIn-Reply-To: <perf-0@example.org>\r\n"
		     "MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"b\"\r\n\r\n");
	while (m.len < 4096 - 8)
		buf_adds(&m, "--b\r\nContent-Type: text/plain\r\n\r\nsome text of the body, line after line\r\n");
	buf_adds(&m, "--b--\r\n");
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	size_t total = 0;
	for (int i = 0; i < 10000; i++) {
		buf_reset(&out);
		imap_envelope_write(m.data, m.len, &out);
		total += out.len;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	print_message("ENVELOPE x 10000 (%zu-byte messages): %.1f ms, %zu bytes of output\n", m.len, ms, total);
	assert_true(total > 10000 * 300);
	assert_true(ms < 5000);
	buf_fini(&m);
	buf_fini(&out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_quote_quoted_literal_nil),
		cmocka_unit_test(test_header_block_same_views),
		cmocka_unit_test(test_address_flags_raw_groups_route),
		cmocka_unit_test(test_mime_param_list_joins_rfc2231),
		cmocka_unit_test(test_envelope_simple_all_fields),
		cmocka_unit_test(test_envelope_groups_route_missing_domain),
		cmocka_unit_test(test_envelope_missing_headers_nil),
		cmocka_unit_test(test_envelope_encoded_words_kept_raw),
		cmocka_unit_test(test_envelope_folding_8bit_bare_lf_first_wins),
		cmocka_unit_test(test_rfc3501_example_message),
		cmocka_unit_test(test_bodystructure_simple_text),
		cmocka_unit_test(test_bodystructure_alternative),
		cmocka_unit_test(test_bodystructure_mixed_attachment_nested_message),
		cmocka_unit_test(test_bodystructure_rfc3501_example),
		cmocka_unit_test(test_bodystructure_bare_lf_counts_crlf),
		cmocka_unit_test(test_bodystructure_broken_mime),
		cmocka_unit_test(test_huge_nesting_bounded),
		cmocka_unit_test(test_section_parse_syntax),
		cmocka_unit_test(test_section_mixed_parts),
		cmocka_unit_test(test_section_single_part_and_partial),
		cmocka_unit_test(test_section_bare_lf_converted),
		cmocka_unit_test(test_section_folded_fields_and_header_only),
		cmocka_unit_test(test_search_japanese_found_by_utf8),
		cmocka_unit_test(test_search_case_folding_decoded),
		cmocka_unit_test(test_search_header_presence_and_missing),
		cmocka_unit_test(test_search_sent_dates),
		cmocka_unit_test(test_date_parse_obsolete_forms),
		cmocka_unit_test(test_limits_params_langs_numbers),
		cmocka_unit_test(test_search_text_cap),
		cmocka_unit_test(test_envelope_speed_10000),
	};
	int failed = cmocka_run_group_tests(tests, NULL, NULL);
	charset_cache_clear();
	return failed;
}
