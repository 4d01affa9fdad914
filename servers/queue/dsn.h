/*
 * dsn.h - the delivery status notification (bounce) the queue sends to the
 * envelope sender when a message cannot be delivered: RFC 3464
 * multipart/report with a human-readable part, message/delivery-status
 * (Reporting-MTA, Final-Recipient, Action: failed, Status,
 * Diagnostic-Code) and the original headers as text/rfc822-headers.
 *
 * The caller decides whether to bounce at all: never to the null sender
 * (a bounce is never bounced). The bounce itself is sent with the null
 * sender and Auto-Submitted: auto-replied.
 *
 * Limits: at most DSN_MAX_HEADERS bytes of the original header are quoted;
 * texts from the remote server are made printable and cut at
 * DSN_MAX_DIAG bytes before they go in.
 */
#ifndef HK_DSN_H
#define HK_DSN_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "util.h"

#define DSN_MAX_HEADERS (64 * 1024)
#define DSN_MAX_DIAG 512

struct dsn_info {
	const char *reporting_mta; /* our host name */
	const char *sender;	   /* the original envelope sender: To: of the bounce */
	const char *recipient;	   /* the recipient that failed */
	const char *remote_mta;	   /* host that answered, NULL when none did */
	const char *diagnostic;	   /* "550 5.1.1 no such user" or our own reason */
	bool from_remote;	   /* diagnostic is a remote SMTP reply (smtp;) */
	const char *status;	   /* "5.1.1"; NULL: derived from diagnostic */
	time_t arrival, now;
	const char *msg;	   /* the original message (header used) */
	size_t msglen;
};

/* Appends the whole bounce message (headers and body, CRLF) to out. */
void dsn_build(const struct dsn_info *d, struct hk_buf *out);

/* The enhanced status code of a reply ("550 5.1.1 x" -> "5.1.1"), or
 * "5.0.0"/"4.0.0" from the basic code; out needs 16 bytes. */
void dsn_status_from_reply(const char *reply, char out[16]);

#endif
