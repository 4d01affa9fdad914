/*
 * imap_envelope.c - FETCH ENVELOPE (see imap_envelope.h).
 *
 * Pipeline: imap_hdr iterates the top-level header block of the raw
 * message; the ten fields are picked by name; address fields go through
 * runtime/address.c with ADDRESS_RAW_NAMES | ADDRESS_GROUP_MARKS |
 * ADDRESS_KEEP_ROUTE (names as written, groups as markers); imap_write_string
 * writes every string.
 *
 * Ownership: a scratch arena per call holds the parsed addresses.
 *
 * Limits: ADDRESS_MAX_PER_LIST addresses per field (address.h); the
 * header scan stops at the empty line.
 *
 * SECURITY: the header is hostile; strings reach the response only
 * through imap_write_string, which picks a literal for anything that cannot be
 * quoted.
 */
#include "imap_envelope.h"

#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "arena.h"
#include "imap_hdr.h"
#include "imap_write.h"

enum env_field { EF_DATE, EF_SUBJECT, EF_FROM, EF_SENDER, EF_REPLY_TO, EF_TO, EF_CC, EF_BCC, EF_IN_REPLY_TO,
		 EF_MESSAGE_ID, EF__COUNT };

static const struct hk_str env_names[EF__COUNT] = {
	[EF_DATE] = HK_STR("date"),         [EF_SUBJECT] = HK_STR("subject"),
	[EF_FROM] = HK_STR("from"),         [EF_SENDER] = HK_STR("sender"),
	[EF_REPLY_TO] = HK_STR("reply-to"), [EF_TO] = HK_STR("to"),
	[EF_CC] = HK_STR("cc"),             [EF_BCC] = HK_STR("bcc"),
	[EF_IN_REPLY_TO] = HK_STR("in-reply-to"), [EF_MESSAGE_ID] = HK_STR("message-id"),
};

static int
field_index(struct hk_str name)
{
	/* cheap first-letter filter: most header fields are none of these */
	switch (ascii_lower(name.len ? name.ptr[0] : 0)) {
	case 'b': case 'c': case 'd': case 'f': case 'i': case 'm': case 'r': case 's': case 't':
		break;
	default:
		return -1;
	}
	for (int k = 0; k < EF__COUNT; k++)
		if (str_ieq(name, env_names[k]))
			return k;
	return -1;
}

static void
write_nstring_field(struct hk_buf *out, const struct hk_str *v)
{
	if (v == NULL) {
		buf_add(out, "NIL", 3);
		return;
	}
	if (memchr(v->ptr, '\n', v->len) == NULL && memchr(v->ptr, '\r', v->len) == NULL) {
		imap_write_string(out, v->ptr, v->len);
		return;
	}
	struct hk_buf u;
	buf_init(&u);
	imap_hdr_unfold(*v, &u);
	imap_write_string(out, u.data ? u.data : "", u.len);
	buf_fini(&u);
}

/* Writes the address list, or returns false (nothing written) when it
 * holds no address. */
static bool
write_addresses(struct hk_buf *out, const struct hk_str *v, struct arena *a)
{
	if (v == NULL)
		return false;
	struct address_list l = { 0 };
	address_parse_flags(v->ptr, v->len, ADDRESS_RAW_NAMES | ADDRESS_GROUP_MARKS | ADDRESS_KEEP_ROUTE, a, &l);
	if (l.n == 0) {
		free(l.v);
		return false;
	}
	buf_addc(out, '(');
	for (size_t i = 0; i < l.n; i++) {
		const struct hk_address *ad = &l.v[i];
		switch (ad->kind) {
		case ADDRESS_GROUP_START:
			buf_add(out, "(NIL NIL ", 9);
			imap_write_string(out, ad->name.ptr, ad->name.len);
			buf_add(out, " NIL)", 5);
			break;
		case ADDRESS_GROUP_END:
			buf_add(out, "(NIL NIL NIL NIL)", 17);
			break;
		default:
			buf_addc(out, '(');
			imap_write_nstr(out, ad->name);
			buf_addc(out, ' ');
			imap_write_nstr(out, ad->route);
			buf_addc(out, ' ');
			if (ad->local.len)
				imap_write_string(out, ad->local.ptr, ad->local.len);
			else
				buf_adds(out, "\"" IMAP_ENV_MISSING_MAILBOX "\"");
			buf_addc(out, ' ');
			if (ad->domain.len)
				imap_write_string(out, ad->domain.ptr, ad->domain.len);
			else
				buf_adds(out, "\"" IMAP_ENV_MISSING_DOMAIN "\"");
			buf_addc(out, ')');
			break;
		}
	}
	buf_addc(out, ')');
	free(l.v);
	return true;
}

void
imap_envelope_write(const char *raw, size_t len, struct hk_buf *out)
{
	struct hk_str vals[EF__COUNT];
	bool have[EF__COUNT] = { false };
	struct imap_hdr_iter it;
	struct imap_hdr_field f;
	imap_hdr_init(&it, raw, len);
	while (imap_hdr_next(&it, &f)) {
		int k = field_index(f.name);
		if (k >= 0 && !have[k]) {
			vals[k] = f.value;
			have[k] = true;
		}
	}
#define V(k) (have[k] ? &vals[k] : NULL)
	struct arena a;
	arena_init(&a, 0);
	buf_addc(out, '(');
	write_nstring_field(out, V(EF_DATE));
	buf_addc(out, ' ');
	write_nstring_field(out, V(EF_SUBJECT));
	for (int k = EF_FROM; k <= EF_BCC; k++) {
		buf_addc(out, ' ');
		bool done = write_addresses(out, V(k), &a);
		if (!done && (k == EF_SENDER || k == EF_REPLY_TO))
			done = write_addresses(out, V(EF_FROM), &a);
		if (!done)
			buf_add(out, "NIL", 3);
	}
	buf_addc(out, ' ');
	write_nstring_field(out, V(EF_IN_REPLY_TO));
	buf_addc(out, ' ');
	write_nstring_field(out, V(EF_MESSAGE_ID));
	buf_addc(out, ')');
#undef V
	arena_fini(&a);
}
