/*
 * imap_write.h - writing the pieces of IMAP responses (RFC 3501 9) into a
 * buffer: strings (atom, quoted or literal, whichever the bytes allow),
 * NIL, mailbox names (modified UTF-7), flag lists, compressed sequence
 * sets (UIDPLUS COPYUID/APPENDUID, SEARCH) and INTERNALDATE date-times.
 *
 * Everything is appended to `out`; nothing here fails.
 */
#ifndef HK_IMAP_WRITE_H
#define HK_IMAP_WRITE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "util.h"

#define IMAP_QUOTED_MAX 1024 /* longer strings are sent as literals */

/* string: quoted when every byte is 7-bit, not CR/LF/NUL and the length
 * fits IMAP_QUOTED_MAX; a literal otherwise ("{n}\r\n" + bytes, a NUL
 * sent as 0x80). Safe for hostile text (header values of messages). */
void imap_write_string(struct hk_buf *out, const char *s, size_t n);
/* nstring: NIL for s == NULL. */
void imap_write_nstring(struct hk_buf *out, const char *s, size_t n);
/* nstring from an hk_str: NIL when it is empty. */
void imap_write_nstr(struct hk_buf *out, struct hk_str s);
/* astring: a bare atom when it is one (and not "NIL"), else a string. */
void imap_write_astring(struct hk_buf *out, const char *s, size_t n);
/* A UTF-8 mailbox name, modified UTF-7 encoded, as an astring. */
void imap_write_mailbox(struct hk_buf *out, const char *utf8_name);
/* "(\Seen \Flagged kw1 kw2)"; system is IMAP_FLAG_* bits (imap_cmd.h). */
void imap_write_flags(struct hk_buf *out, uint32_t system, const char *const *keywords, size_t nkeywords);
/* "1:3,5,9:10" from ascending numbers (duplicates tolerated); nothing for n == 0. */
void imap_write_seqset(struct hk_buf *out, const uint32_t *nums, size_t n);
/* "\"17-Jul-1996 02:44:25 -0700\"": t in the zone tz_minutes east of UTC. */
void imap_write_datetime(struct hk_buf *out, time_t t, int tz_minutes);

#endif
