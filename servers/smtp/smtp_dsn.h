/*
 * smtp_dsn.h - the ESMTP DSN parameters (RFC 3461 4): RET and ENVID on
 * MAIL, NOTIFY and ORCPT on RCPT, and the xtext encoding they use.
 * The SMTP server validates them here, the queue keeps them in its entries
 * (queue_file.h) in their xtext form, passes them on to a next hop that
 * offers DSN (smtp_client.h) and decodes them for the reports (dsn.h).
 *
 * Ownership: nothing is allocated; decoded text goes into caller buffers.
 *
 * SECURITY: every value is a client's; lengths are checked against the
 * SMTP_DSN_MAX_* limits before anything is copied, and decoded text must be
 * printable US-ASCII (it ends up in a report header).
 */
#ifndef HK_SMTP_DSN_H
#define HK_SMTP_DSN_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

#define SMTP_DSN_MAX_ENVID 100 /* RFC 3461 4.4: the ENVID value, as written */
#define SMTP_DSN_MAX_ORCPT 500 /* RFC 3461 4.2: the ORCPT value, as written */
#define SMTP_DSN_MAX_ADDRTYPE 32

/* NOTIFY: 0 when the parameter was not given */
enum smtp_dsn_notify {
	SMTP_DSN_NOTIFY_NEVER = 1u << 0,
	SMTP_DSN_NOTIFY_SUCCESS = 1u << 1,
	SMTP_DSN_NOTIFY_FAILURE = 1u << 2,
	SMTP_DSN_NOTIFY_DELAY = 1u << 3,
};

/* RET: none given, FULL, HDRS */
enum smtp_dsn_ret { SMTP_DSN_RET_NONE, SMTP_DSN_RET_FULL, SMTP_DSN_RET_HDRS };

/* xtext (RFC 3461 4): printable ASCII except '+' and '=', and "+XX" with
 * upper-case hex. Decodes into out (outsz including the NUL); false on bad
 * syntax, a decoded byte outside 0x20..0x7e, or when it does not fit. */
bool smtp_dsn_xtext_decode(struct hk_str in, char *out, size_t outsz);
/* Appends the xtext form of s (a NUL-terminated string). */
void smtp_dsn_xtext_encode(struct hk_buf *out, const char *s);

/* "NEVER" or a comma list of SUCCESS, FAILURE, DELAY (case-insensitive,
 * each at most once). */
bool smtp_dsn_notify_parse(struct hk_str v, unsigned *notify_r);
/* The canonical text ("NEVER", "SUCCESS,FAILURE", ...); "" for 0. */
const char *smtp_dsn_notify_str(unsigned notify, char out[32]);
bool smtp_dsn_ret_parse(struct hk_str v, enum smtp_dsn_ret *ret_r);
/* ENVID=xtext, at most SMTP_DSN_MAX_ENVID characters. */
bool smtp_dsn_envid_ok(struct hk_str v);
/* ORCPT=addr-type ";" xtext, at most SMTP_DSN_MAX_ORCPT characters;
 * addr-type is an atom (RFC 3461 4.2, e.g. rfc822). */
bool smtp_dsn_orcpt_ok(struct hk_str v);
/* "rfc822;a+2Bb@c" -> "rfc822;a+b@c" for Original-Recipient; false when the
 * value is not a valid ORCPT. */
bool smtp_dsn_orcpt_decode(struct hk_str v, char *out, size_t outsz);

#endif
