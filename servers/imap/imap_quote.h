/*
 * imap_quote.h - IMAP strings in responses (RFC 3501 4.3, 4.5): quoted
 * when that is possible, a literal otherwise, NIL for an absent nstring.
 *
 * The message views (ENVELOPE, BODYSTRUCTURE) write header text taken from
 * hostile messages through these, so nothing a message holds can break
 * the response syntax.
 */
#ifndef HK_IMAP_QUOTE_H
#define HK_IMAP_QUOTE_H

#include <stddef.h>

#include "util.h"

/* Quoted strings longer than this are sent as literals (a client's line
 * buffer is the concern, as in Dovecot's imap-quote.c). */
#define IMAP_QUOTED_MAX 1024

/* Appends s[0..n) as an IMAP string: "..." with '"' and '\' escaped when
 * every byte is 7-bit and not CR, LF or NUL; else the literal {n}CRLF
 * bytes. NUL cannot be sent in a literal either: it becomes 0x80 (what
 * Dovecot does). */
void imap_quote_string(struct hk_buf *out, const char *s, size_t n);
/* The same, NIL when s is NULL. */
void imap_quote_nstring(struct hk_buf *out, const char *s, size_t n);
/* An hk_str, NIL when it is empty. */
void imap_quote_nstr(struct hk_buf *out, struct hk_str s);

#endif
