/*
 * imap_fetch.c - FETCH arguments (RFC 3501 6.4.5, RFC 7162 3.1.4):
 *
 *   fetch = "FETCH" SP sequence-set SP ("ALL" / "FULL" / "FAST" /
 *           fetch-att / "(" fetch-att *(SP fetch-att) ")")
 *           [SP "(" "CHANGEDSINCE" SP mod-sequence-value ")"]
 *   fetch-att = "ENVELOPE" / "FLAGS" / "INTERNALDATE" /
 *           "RFC822" [".HEADER" / ".SIZE" / ".TEXT"] / "BODY" ["STRUCTURE"] /
 *           "UID" / "MODSEQ" / "BODY" ["." "PEEK"] section ["<" number "." nz-number ">"]
 *   section = "[" [section-spec] "]"
 *   section-spec = section-msgtext / (section-part ["." section-text])
 *   section-msgtext = "HEADER" / "HEADER.FIELDS" [".NOT"] SP header-list / "TEXT"
 *   section-part = nz-number *("." nz-number)
 *   section-text = section-msgtext / "MIME"
 *
 * SECURITY: sections per FETCH, part numbers per section and header
 * fields per list are bounded (imap_limits.h).
 */
#include "imap/imap_parse_int.h"

#include <string.h>

#include "imap/imap_write.h"

static bool
digit(const struct imap_parser *P)
{
	return P->p < P->end && *P->p >= '0' && *P->p <= '9';
}

/* ftext (RFC 5322 3.6.8): printable ASCII but ':' */
static bool
field_name_ok(struct hk_str s)
{
	if (s.len == 0)
		return false;
	for (size_t i = 0; i < s.len; i++) {
		unsigned char c = (unsigned char)s.ptr[i];
		if (c < 33 || c > 126 || c == ':')
			return false;
	}
	return true;
}

/* header-list = "(" header-fld-name *(SP header-fld-name) ")" */
static bool
header_list(struct imap_parser *P, struct imap_fetch_section *sec, struct hk_buf *text)
{
	if (!imap_p_open(P))
		return imap_p_fail(P, "Expected a header field list");
	sec->fields = arena_alloc(P->a, IMAP_MAX_HEADER_FIELDS * sizeof(*sec->fields));
	buf_adds(text, " (");
	do {
		struct hk_str f;
		if (!imap_p_astring(P, &f))
			return false;
		if (!field_name_ok(f))
			return imap_p_fail(P, "Invalid header field name");
		if (sec->nfields >= IMAP_MAX_HEADER_FIELDS)
			return imap_p_fail(P, "Too many header fields");
		sec->fields[sec->nfields] = f.ptr;
		if (sec->nfields++ > 0)
			buf_addc(text, ' ');
		/* replies echo the names upper-cased, as Dovecot and Cyrus do */
		char *u = arena_strndup(P->a, f.ptr, f.len);
		for (size_t i = 0; i < f.len; i++)
			if (u[i] >= 'a' && u[i] <= 'z')
				u[i] = (char)(u[i] - 32);
		imap_write_astring(text, u, f.len);
	} while (imap_p_accept(P, ' '));
	buf_addc(text, ')');
	return imap_p_close(P);
}

/* section-msgtext / "MIME" (the latter only after part numbers) */
static bool
section_text(struct imap_parser *P, struct imap_fetch_section *sec, bool after_part, struct hk_buf *text)
{
	if (imap_p_keyword(P, "HEADER.FIELDS.NOT")) {
		sec->spec = IMAP_SPEC_HEADER_FIELDS_NOT;
		buf_adds(text, "HEADER.FIELDS.NOT");
		return imap_p_sp(P) && header_list(P, sec, text);
	}
	if (imap_p_keyword(P, "HEADER.FIELDS")) {
		sec->spec = IMAP_SPEC_HEADER_FIELDS;
		buf_adds(text, "HEADER.FIELDS");
		return imap_p_sp(P) && header_list(P, sec, text);
	}
	if (imap_p_keyword(P, "HEADER")) {
		sec->spec = IMAP_SPEC_HEADER;
		buf_adds(text, "HEADER");
		return true;
	}
	if (imap_p_keyword(P, "TEXT")) {
		sec->spec = IMAP_SPEC_TEXT;
		buf_adds(text, "TEXT");
		return true;
	}
	if (after_part && imap_p_keyword(P, "MIME")) {
		sec->spec = IMAP_SPEC_MIME;
		buf_adds(text, "MIME");
		return true;
	}
	return imap_p_fail(P, "Invalid section");
}

/* section ["<" number "." nz-number ">"], after "BODY" or "BODY.PEEK" */
static bool
section(struct imap_parser *P, struct imap_fetch *f, bool peek)
{
	if (f->nsections >= IMAP_MAX_FETCH_SECTIONS)
		return imap_p_fail(P, "Too many sections");
	struct imap_fetch_section *sec = &f->sections[f->nsections++];
	memset(sec, 0, sizeof(*sec));
	sec->peek = peek;
	sec->spec = IMAP_SPEC_ALL;
	struct hk_buf text;
	buf_init(&text);
	bool ok = imap_p_accept(P, '[');
	if (ok && digit(P)) {
		sec->parts = arena_alloc(P->a, IMAP_MAX_SECTION_PARTS * sizeof(*sec->parts));
		bool more = true;
		while (ok && more) {
			uint32_t n;
			if (sec->nparts >= IMAP_MAX_SECTION_PARTS)
				ok = imap_p_fail(P, "Too many section parts");
			else if (!imap_p_nz_number(P, &n))
				ok = false;
			if (!ok)
				break;
			buf_printf(&text, "%u", n); /* the "." before it was added when it was read */
			sec->parts[sec->nparts++] = n;
			more = false;
			if (imap_p_accept(P, '.')) {
				buf_addc(&text, '.');
				if (digit(P))
					more = true;
				else
					ok = section_text(P, sec, true, &text);
			}
		}
	} else if (ok && !imap_p_peek(P, ']')) {
		ok = section_text(P, sec, false, &text);
	}
	if (ok && !imap_p_accept(P, ']'))
		ok = imap_p_fail(P, "Invalid section");
	sec->text = arena_strndup(P->a, text.data ? text.data : "", text.len);
	buf_fini(&text);
	if (!ok)
		return imap_p_fail(P, "Invalid section");
	if (imap_p_accept(P, '<')) {
		sec->partial = true;
		if (!imap_p_number(P, &sec->offset) || !imap_p_accept(P, '.') || !imap_p_nz_number(P, &sec->count) ||
		    !imap_p_accept(P, '>'))
			return imap_p_fail(P, "Invalid partial range");
	}
	return imap_p_token(P);
}

static bool
fetch_att(struct imap_parser *P, struct imap_fetch *f)
{
	static const struct {
		const char *name;
		uint32_t bits;
	} atts[] = { /* longer names first: "RFC822" is a prefix of "RFC822.SIZE" */
		{ "ENVELOPE", IMAP_FETCH_ENVELOPE }, { "FLAGS", IMAP_FETCH_FLAGS },
		{ "INTERNALDATE", IMAP_FETCH_INTERNALDATE }, { "RFC822.HEADER", IMAP_FETCH_RFC822_HEADER },
		{ "RFC822.SIZE", IMAP_FETCH_RFC822_SIZE }, { "RFC822.TEXT", IMAP_FETCH_RFC822_TEXT },
		{ "RFC822", IMAP_FETCH_RFC822 }, { "BODYSTRUCTURE", IMAP_FETCH_BODYSTRUCTURE },
		{ "UID", IMAP_FETCH_UID }, { "MODSEQ", IMAP_FETCH_MODSEQ },
	};
	if (imap_p_keyword(P, "BODY.PEEK")) {
		if (!imap_p_peek(P, '['))
			return imap_p_fail(P, "Expected a section after BODY.PEEK");
		return section(P, f, true);
	}
	if (imap_p_keyword(P, "BODY")) {
		if (imap_p_peek(P, '['))
			return section(P, f, false);
		f->items |= IMAP_FETCH_BODY;
		return true;
	}
	for (size_t i = 0; i < HK_ARRAY_LEN(atts); i++) {
		if (imap_p_keyword(P, atts[i].name)) {
			if (P->p < P->end && *P->p != ' ' && *P->p != ')')
				return imap_p_fail(P, "Unknown FETCH item");
			f->items |= atts[i].bits;
			return true;
		}
	}
	return imap_p_fail(P, "Unknown FETCH item");
}

bool
imap_p_fetch(struct imap_parser *P, struct imap_fetch *f)
{
	if (!imap_p_seqset(P, &f->set) || !imap_p_sp(P))
		return false;
	f->sections = arena_alloc(P->a, IMAP_MAX_FETCH_SECTIONS * sizeof(*f->sections));
	if (imap_p_keyword(P, "ALL"))
		f->items |= IMAP_FETCH_FLAGS | IMAP_FETCH_INTERNALDATE | IMAP_FETCH_RFC822_SIZE | IMAP_FETCH_ENVELOPE;
	else if (imap_p_keyword(P, "FAST"))
		f->items |= IMAP_FETCH_FLAGS | IMAP_FETCH_INTERNALDATE | IMAP_FETCH_RFC822_SIZE;
	else if (imap_p_keyword(P, "FULL"))
		f->items |= IMAP_FETCH_FLAGS | IMAP_FETCH_INTERNALDATE | IMAP_FETCH_RFC822_SIZE | IMAP_FETCH_ENVELOPE |
		    IMAP_FETCH_BODY;
	else if (imap_p_peek(P, '(')) {
		if (!imap_p_open(P))
			return false;
		do {
			if (!fetch_att(P, f))
				return false;
		} while (imap_p_accept(P, ' '));
		if (!imap_p_close(P))
			return false;
	} else if (!fetch_att(P, f)) {
		return false;
	}
	if (imap_p_at_end(P))
		return true;
	/* fetch-modifiers (RFC 4466 2.4); CHANGEDSINCE is the one we know */
	if (!imap_p_sp(P) || !imap_p_open(P))
		return false;
	if (!imap_p_keyword(P, "CHANGEDSINCE"))
		return imap_p_fail(P, "Unknown FETCH modifier");
	if (!imap_p_sp(P) || !imap_p_number64(P, &f->changedsince) || !imap_p_close(P))
		return false;
	f->changedsince_set = true;
	f->items |= IMAP_FETCH_MODSEQ; /* RFC 7162 3.1.4.1 */
	return true;
}
