/*
 * dsn.h - the delivery status notifications sent to the envelope sender:
 * RFC 3464 multipart/report with a human-readable part,
 * message/delivery-status (Reporting-MTA, Original-Envelope-Id,
 * Original-Recipient, Final-Recipient, Action, Status, Remote-MTA,
 * Diagnostic-Code, Will-Retry-Until) and the original message: its header
 * as text/rfc822-headers, or the whole of it as message/rfc822 for a
 * failure when the sender asked for RET=FULL and it is at most
 * DSN_MAX_FULL bytes. Actions: failed (the bounce), delayed, delivered
 * (a hosted mailbox took it), relayed (the next hop does not do DSN).
 *
 * The caller decides whether to send one at all (NOTIFY, RFC 3461 4.1):
 * never to the null sender (a DSN is never answered with a DSN). It is
 * sent with the null sender and Auto-Submitted: auto-replied.
 *
 * Limits: at most DSN_MAX_HEADERS bytes of the original header are quoted;
 * texts from the remote server and the sender's ENVID/ORCPT are made
 * printable and cut at DSN_MAX_DIAG bytes before they go in.
 */
#ifndef HK_DSN_H
#define HK_DSN_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "util.h"

#define DSN_MAX_HEADERS (64 * 1024)
#define DSN_MAX_DIAG 512
#define DSN_MAX_FULL (1024 * 1024) /* RET=FULL returns messages up to this size whole */

enum dsn_action { DSN_FAILED, DSN_DELAYED, DSN_DELIVERED, DSN_RELAYED };

struct dsn_info {
	const char *reporting_mta; /* our host name */
	const char *sender;	   /* the original envelope sender: To: of the bounce */
	const char *recipient;	   /* the recipient that failed */
	const char *remote_mta;	   /* host that answered, NULL when none did */
	const char *diagnostic;	   /* "550 5.1.1 no such user" or our own reason */
	bool from_remote;	   /* diagnostic is a remote SMTP reply (smtp;) */
	const char *status;	   /* "5.1.1"; NULL: derived from diagnostic */
	time_t arrival, now;
	const char *msg;	   /* the original message */
	size_t msglen;
	enum dsn_action action;	   /* DSN_FAILED when zeroed */
	const char *envid;	   /* decoded ENVID, or NULL */
	const char *orcpt;	   /* decoded ORCPT ("rfc822;a@b"), or NULL */
	bool ret_full;		   /* RET=FULL: a failure returns the whole message */
	time_t retry_until;	   /* DSN_DELAYED: Will-Retry-Until */
};

/* Appends the whole bounce message (headers and body, CRLF) to out. */
void dsn_build(const struct dsn_info *d, struct hk_buf *out);

/* The enhanced status code of a reply ("550 5.1.1 x" -> "5.1.1"), or
 * "5.0.0"/"4.0.0" from the basic code; out needs 16 bytes. */
void dsn_status_from_reply(const char *reply, char out[16]);

#endif
