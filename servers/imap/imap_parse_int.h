/*
 * imap_parse_int.h - the token readers shared by the IMAP command parser
 * files (imap_cmd.c, imap_fetch.c, imap_search.c). Not for the session:
 * its API is imap_cmd.h.
 *
 * Every reader returns true and advances, or returns false with
 * P->error set (the first error wins) and leaves the position undefined:
 * a failed parse is abandoned, never resumed.
 */
#ifndef HK_IMAP_PARSE_INT_H
#define HK_IMAP_PARSE_INT_H

#include "imap/imap_cmd.h"

struct imap_parser {
	const char *base, *p, *end;
	size_t streamed_at;     /* offset of the streamed literal's "{", or SIZE_MAX */
	struct arena *a;
	unsigned tokens, depth;
	const char *error;
};

/* The result of reading a string: bytes (NUL-terminated arena copy, or
 * for a literal a slice of the text when `inplace`) or the streamed one. */
struct imap_p_string {
	struct hk_str s;
	bool literal;
	bool streamed;    /* the APPEND message went to the sink */
	uint64_t size;    /* streamed: its size */
};

bool imap_p_fail(struct imap_parser *P, const char *msg);
bool imap_p_token(struct imap_parser *P);
bool imap_p_open(struct imap_parser *P);  /* "(" with the depth check */
bool imap_p_close(struct imap_parser *P); /* ")" */
bool imap_p_sp(struct imap_parser *P);
bool imap_p_at_end(const struct imap_parser *P);
bool imap_p_peek(const struct imap_parser *P, char c);
bool imap_p_accept(struct imap_parser *P, char c);
/* Reads ATOM-CHARs (plus ']' if bracket_ok); slice of the text. */
bool imap_p_atom(struct imap_parser *P, bool bracket_ok, struct hk_str *out);
/* Case-insensitive keyword match of the atom at P->p; advances on match. */
bool imap_p_keyword(struct imap_parser *P, const char *kw);
bool imap_p_string(struct imap_parser *P, bool allow_streamed, struct imap_p_string *out);
bool imap_p_astring(struct imap_parser *P, struct hk_str *out);
/* string or NIL (out->ptr NULL) */
bool imap_p_nstring(struct imap_parser *P, struct hk_str *out);
bool imap_p_number(struct imap_parser *P, uint32_t *out);
bool imap_p_nz_number(struct imap_parser *P, uint32_t *out);
bool imap_p_number64(struct imap_parser *P, uint64_t *out); /* mod-sequence-value: < 2^63 */
bool imap_p_seqset(struct imap_parser *P, struct imap_seqset *out);
bool imap_p_mailbox(struct imap_parser *P, struct imap_mailbox *out);
bool imap_p_flag_list(struct imap_parser *P, struct imap_flags *out);
/* flag *(SP flag) until ")" or the end (STORE without parentheses) */
bool imap_p_flags_bare(struct imap_parser *P, struct imap_flags *out);
bool imap_p_date(struct imap_parser *P, struct imap_day *out);
bool imap_p_datetime(struct imap_parser *P, time_t *t, int *tz_minutes);

/* imap_fetch.c, imap_search.c */
bool imap_p_fetch(struct imap_parser *P, struct imap_fetch *out);
bool imap_p_search(struct imap_parser *P, struct imap_search *out);

#endif
