/*
 * imap_search.c - SEARCH arguments into a key tree (RFC 3501 6.4.4,
 * RFC 7162 3.1.5 for MODSEQ):
 *
 *   search = "SEARCH" [SP "CHARSET" SP astring] 1*(SP search-key)
 *   search-key = "ALL" / "ANSWERED" / "BCC" SP astring / "BEFORE" SP date /
 *       ... / "NOT" SP search-key / "OR" SP search-key SP search-key /
 *       "HEADER" SP header-fld-name SP astring / "UID" SP sequence-set /
 *       "MODSEQ" [SP entry-name SP entry-type-req] SP mod-sequence-value /
 *       sequence-set / "(" search-key *(SP search-key) ")"
 *
 * The keys of one level form an AND list (key->next). A CHARSET other
 * than UTF-8 or US-ASCII is not an error here: the command parses, with
 * bad_charset set, and the session answers NO [BADCHARSET].
 *
 * SECURITY: NOT, OR and groups recurse; the depth is bounded by
 * IMAP_MAX_SEARCH_DEPTH and the number of keys by IMAP_MAX_SEARCH_KEYS.
 * Search strings must be valid UTF-8 unless the charset is unknown.
 */
#include "imap/imap_parse_int.h"

#include <string.h>
#include <strings.h>

#include "charset.h"

enum key_arg { ARG_NONE, ARG_STRING, ARG_DATE, ARG_NUMBER, ARG_HEADER, ARG_KEYWORD, ARG_NOT, ARG_OR, ARG_SEQSET,
	ARG_MODSEQ };

static const struct {
	const char *name;
	enum key_arg arg;
} keys[] = {
	[IMAP_SEARCH_SEQSET] = { "", ARG_SEQSET },
	[IMAP_SEARCH_AND] = { "(", ARG_NONE },
#define X(k, a) [IMAP_SEARCH_##k] = { #k, ARG_##a },
	IMAP_SEARCH_KEYS(X)
#undef X
};

const char *
imap_search_key_name(enum imap_search_op op)
{
	return (size_t)op < HK_ARRAY_LEN(keys) ? keys[op].name : "?";
}

struct search_ctx {
	struct imap_search *s;
};

static bool key(struct imap_parser *P, struct search_ctx *S, unsigned depth, struct imap_search_key **out);

/* search-key *(SP search-key) until ")" or the end; appended to *head */
static bool
key_list(struct imap_parser *P, struct search_ctx *S, unsigned depth, struct imap_search_key **head)
{
	struct imap_search_key **tail = head;
	do {
		if (!key(P, S, depth, tail))
			return false;
		tail = &(*tail)->next;
	} while (imap_p_accept(P, ' '));
	return true;
}

static bool
search_string(struct imap_parser *P, struct search_ctx *S, struct hk_str *out)
{
	if (!imap_p_astring(P, out))
		return false;
	if (!S->s->bad_charset && !utf8_valid(out->ptr, out->len))
		return imap_p_fail(P, "Search string is not valid UTF-8");
	return true;
}

static bool
key_args(struct imap_parser *P, struct search_ctx *S, unsigned depth, struct imap_search_key *k)
{
	switch (keys[k->op].arg) {
	case ARG_NONE:
		return true;
	case ARG_STRING:
		return imap_p_sp(P) && search_string(P, S, &k->str);
	case ARG_DATE:
		return imap_p_sp(P) && imap_p_date(P, &k->date);
	case ARG_NUMBER: {
		uint32_t n;
		if (!imap_p_sp(P) || !imap_p_number(P, &n))
			return false;
		k->num = n;
		return true;
	}
	case ARG_HEADER: {
		struct hk_str h;
		if (!imap_p_sp(P) || !imap_p_astring(P, &h))
			return false;
		if (h.len == 0 || memchr(h.ptr, ':', h.len) != NULL || memchr(h.ptr, ' ', h.len) != NULL)
			return imap_p_fail(P, "Invalid header field name");
		k->header = h.ptr;
		return imap_p_sp(P) && search_string(P, S, &k->str);
	}
	case ARG_KEYWORD: {
		struct hk_str a;
		if (!imap_p_sp(P) || !imap_p_atom(P, false, &a))
			return false;
		if (a.len > IMAP_MAX_KEYWORD)
			return imap_p_fail(P, "Keyword too long");
		k->str = arena_str(P->a, a.ptr, a.len);
		return true;
	}
	case ARG_NOT:
		return imap_p_sp(P) && key(P, S, depth + 1, &k->child);
	case ARG_OR:
		return imap_p_sp(P) && key(P, S, depth + 1, &k->child) && imap_p_sp(P) && key(P, S, depth + 1, &k->child2);
	case ARG_SEQSET:
		return imap_p_sp(P) && imap_p_seqset(P, &k->set);
	case ARG_MODSEQ:
		if (!imap_p_sp(P))
			return false;
		if (imap_p_peek(P, '"')) { /* entry-name SP entry-type-req: parsed, not used */
			struct hk_str entry, type;
			if (!imap_p_astring(P, &entry) || !imap_p_sp(P) || !imap_p_atom(P, false, &type))
				return false;
			if (!str_ieq_cstr(type, "priv") && !str_ieq_cstr(type, "shared") && !str_ieq_cstr(type, "all"))
				return imap_p_fail(P, "Invalid MODSEQ entry type");
			if (!imap_p_sp(P))
				return false;
		}
		return imap_p_number64(P, &k->num);
	}
	return imap_p_fail(P, "Unknown search key");
}

static bool
key(struct imap_parser *P, struct search_ctx *S, unsigned depth, struct imap_search_key **out)
{
	if (depth > IMAP_MAX_SEARCH_DEPTH)
		return imap_p_fail(P, "Search too deeply nested");
	if (++S->s->nkeys > IMAP_MAX_SEARCH_KEYS)
		return imap_p_fail(P, "Too many search keys");
	struct imap_search_key *k = arena_calloc(P->a, 1, sizeof(*k));
	*out = k;
	if (imap_p_accept(P, '(')) {
		if (!imap_p_token(P))
			return false;
		k->op = IMAP_SEARCH_AND;
		if (!key_list(P, S, depth + 1, &k->child))
			return false;
		if (!imap_p_accept(P, ')'))
			return imap_p_fail(P, "Expected ')'");
		return true;
	}
	if (imap_p_peek(P, '*') || (P->p < P->end && *P->p >= '0' && *P->p <= '9')) {
		k->op = IMAP_SEARCH_SEQSET;
		return imap_p_seqset(P, &k->set);
	}
	struct hk_str name;
	if (!imap_p_atom(P, false, &name))
		return imap_p_fail(P, "Expected a search key");
	for (size_t i = IMAP_SEARCH_AND + 1; i < HK_ARRAY_LEN(keys); i++) {
		if (str_ieq_cstr(name, keys[i].name)) {
			k->op = (enum imap_search_op)i;
			return key_args(P, S, depth, k);
		}
	}
	return imap_p_fail(P, "Unknown search key");
}

bool
imap_p_search(struct imap_parser *P, struct imap_search *s)
{
	struct search_ctx S = { s };
	if (!imap_p_sp(P))
		return false;
	if (imap_p_keyword(P, "CHARSET")) {
		struct hk_str cs;
		if (!imap_p_sp(P) || !imap_p_astring(P, &cs) || !imap_p_sp(P))
			return false;
		s->charset = cs.ptr;
		s->bad_charset = !str_ieq_cstr(cs, "UTF-8") && !str_ieq_cstr(cs, "US-ASCII");
	}
	return key_list(P, &S, 0, &s->keys);
}
