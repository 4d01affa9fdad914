/*
 * dsn.c - builds RFC 3464 bounces (see dsn.h).
 */
#include "dsn.h"

#include <ctype.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

/* A printable one-line copy, at most max bytes. */
static void
add_printable(struct hk_buf *out, const char *s, size_t max)
{
	for (size_t i = 0; s && s[i] && i < max; i++) {
		unsigned char c = (unsigned char)s[i];
		buf_addc(out, c == '\r' || c == '\n' || c == '\t' ? ' ' : c < 0x20 || c > 0x7e ? '?' : (char)c);
	}
}

void
dsn_status_from_reply(const char *reply, char out[16])
{
	const char *p = reply ? reply : "";
	char cls = (p[0] == '4' || p[0] == '5') ? p[0] : '5';
	snprintf(out, 16, "%c.0.0", cls);
	if (strlen(p) < 4)
		return;
	p += 4;
	/* class.subject.detail: 1 digit, 1-3 digits, 1-3 digits */
	const char *q = p;
	if ((q[0] == '4' || q[0] == '5') && q[1] == '.') {
		q += 2;
		int n = 0;
		while (isdigit((unsigned char)*q) && n < 3)
			q++, n++;
		if (n > 0 && *q == '.') {
			q++;
			int m = 0;
			while (isdigit((unsigned char)*q) && m < 3)
				q++, m++;
			if (m > 0 && (*q == '\0' || *q == ' ') && p[0] == cls)
				snprintf(out, 16, "%.*s", (int)(q - p), p);
		}
	}
}

static void
rfc5322_date(time_t t, char *out, size_t outsz)
{
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, outsz, "%a, %d %b %Y %H:%M:%S +0000", &tm);
}

static const struct {
	const char *subject, *action, *intro;
} kinds[] = {
	[DSN_FAILED] = { "Undelivered Mail Returned to Sender", "failed",
		"Your message could not be delivered to one or more recipients." },
	[DSN_DELAYED] = { "Delayed Mail (still being retried)", "delayed",
		"Your message has not been delivered yet to one or more recipients.\r\n"
		"It is still being retried; you do not need to send it again." },
	[DSN_DELIVERED] = { "Successful Mail Delivery Report", "delivered",
		"Your message was delivered to the mailbox of the recipient below." },
	[DSN_RELAYED] = { "Relayed Mail Delivery Report", "relayed",
		"Your message was handed on to a mail system that does not send\r\n"
		"delivery notifications; you will get no further notice from it." },
};

/* The original header, CRLF lines, up to the blank line. */
static void
add_headers(struct hk_buf *out, const char *msg, size_t msglen)
{
	size_t i = 0, lim = msglen < DSN_MAX_HEADERS ? msglen : DSN_MAX_HEADERS;
	while (i < lim) {
		const char *nl = memchr(msg + i, '\n', lim - i);
		size_t end = nl ? (size_t)(nl - msg) : lim;
		size_t len = end - i;
		if (len > 0 && msg[i + len - 1] == '\r')
			len--;
		if (len == 0)
			break;
		if (nl == NULL && lim < msglen)
			break; /* a line cut by the limit is left out */
		/* a header line that starts with "--" cannot clash with our
		 * boundary (it has a random tag), so it goes in as it is */
		buf_add(out, msg + i, len);
		buf_adds(out, "\r\n");
		i = end + 1;
	}
}

/* The whole message with CRLF line ends (it was stored with them). A line
 * "--tag/host" inside it cannot occur by chance: the tag is random. */
static void
add_full(struct hk_buf *out, const char *msg, size_t msglen)
{
	buf_add(out, msg, msglen);
	if (msglen > 0 && msg[msglen - 1] != '\n')
		buf_adds(out, "\r\n");
}

void
dsn_build(const struct dsn_info *d, struct hk_buf *out)
{
	unsigned char rnd[8];
	RAND_bytes(rnd, sizeof(rnd));
	char tag[17];
	for (int i = 0; i < 8; i++)
		snprintf(tag + 2 * i, 3, "%02x", rnd[i]);
	char date[64], arr[64];
	rfc5322_date(d->now, date, sizeof(date));
	rfc5322_date(d->arrival, arr, sizeof(arr));
	enum dsn_action act = d->action <= DSN_RELAYED ? d->action : DSN_FAILED;
	bool success = act == DSN_DELIVERED || act == DSN_RELAYED;
	char status[16];
	if (d->status)
		snprintf(status, sizeof(status), "%s", d->status);
	else if (success)
		snprintf(status, sizeof(status), "2.0.0");
	else
		dsn_status_from_reply(d->from_remote ? d->diagnostic : act == DSN_DELAYED ? "450" : "550", status);
	/* RFC 3461 4.3: only a failure returns the whole message */
	bool full = act == DSN_FAILED && d->ret_full && d->msglen <= DSN_MAX_FULL;
	buf_printf(out, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n", d->reporting_mta);
	buf_adds(out, "To: <");
	add_printable(out, d->sender, 256);
	buf_printf(out, ">\r\nSubject: %s\r\n", kinds[act].subject);
	buf_printf(out, "Date: %s\r\nMessage-ID: <%lld.%s@%s>\r\n", date, (long long)d->now, tag, d->reporting_mta);
	buf_adds(out, "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n");
	buf_printf(out, "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"%s/%s\"\r\n\r\n", tag,
	    d->reporting_mta);
	buf_adds(out, "This is a MIME-encapsulated message.\r\n\r\n");
	/* human part */
	buf_printf(out, "--%s/%s\r\nContent-Type: text/plain; charset=us-ascii\r\nContent-Description: Notification\r\n\r\n", tag,
	    d->reporting_mta);
	buf_printf(out, "This is the mail system at host %s.\r\n\r\n%s\r\n", d->reporting_mta, kinds[act].intro);
	if (full)
		buf_adds(out, "It is attached below.\r\n\r\n<");
	else if (act == DSN_FAILED && d->ret_full)
		buf_printf(out, "It is larger than %u bytes: only its headers are attached below.\r\n\r\n<", (unsigned)DSN_MAX_FULL);
	else
		buf_adds(out, "Its headers are attached below.\r\n\r\n<");
	add_printable(out, d->recipient, 256);
	buf_adds(out, ">: ");
	if (d->remote_mta) {
		buf_adds(out, "host ");
		add_printable(out, d->remote_mta, 256);
		buf_adds(out, " said: ");
	}
	add_printable(out, d->diagnostic, DSN_MAX_DIAG);
	buf_adds(out, "\r\n\r\n");
	/* machine part */
	buf_printf(out, "--%s/%s\r\nContent-Type: message/delivery-status\r\nContent-Description: Delivery report\r\n\r\n", tag,
	    d->reporting_mta);
	if (d->envid && d->envid[0]) {
		buf_adds(out, "Original-Envelope-Id: ");
		add_printable(out, d->envid, DSN_MAX_DIAG);
		buf_adds(out, "\r\n");
	}
	buf_printf(out, "Reporting-MTA: dns; %s\r\nArrival-Date: %s\r\n\r\n", d->reporting_mta, arr);
	if (d->orcpt && d->orcpt[0]) {
		buf_adds(out, "Original-Recipient: ");
		add_printable(out, d->orcpt, DSN_MAX_DIAG);
		buf_adds(out, "\r\n");
	}
	buf_adds(out, "Final-Recipient: rfc822; ");
	add_printable(out, d->recipient, 256);
	buf_printf(out, "\r\nAction: %s\r\nStatus: %s\r\n", kinds[act].action, status);
	if (d->remote_mta) {
		buf_adds(out, "Remote-MTA: dns; ");
		add_printable(out, d->remote_mta, 256);
		buf_adds(out, "\r\n");
	}
	if (d->diagnostic && d->diagnostic[0]) {
		buf_adds(out, d->from_remote ? "Diagnostic-Code: smtp; " : "Diagnostic-Code: X-Hikyaku; ");
		add_printable(out, d->diagnostic, DSN_MAX_DIAG);
		buf_adds(out, "\r\n");
	}
	buf_printf(out, "Last-Attempt-Date: %s\r\n", date);
	if (act == DSN_DELAYED && d->retry_until) {
		char until[64];
		rfc5322_date(d->retry_until, until, sizeof(until));
		buf_printf(out, "Will-Retry-Until: %s\r\n", until);
	}
	buf_adds(out, "\r\n");
	if (full) {
		buf_printf(out, "--%s/%s\r\nContent-Type: message/rfc822\r\nContent-Description: Undelivered Message\r\n\r\n", tag,
		    d->reporting_mta);
		add_full(out, d->msg, d->msglen);
	} else {
		buf_printf(out, "--%s/%s\r\nContent-Type: text/rfc822-headers\r\nContent-Description: %s Message Headers\r\n\r\n",
		    tag, d->reporting_mta, act == DSN_FAILED ? "Undelivered" : act == DSN_DELAYED ? "Delayed" : "Delivered");
		add_headers(out, d->msg, d->msglen);
	}
	buf_printf(out, "\r\n--%s/%s--\r\n", tag, d->reporting_mta);
}
