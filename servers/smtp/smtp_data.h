/*
 * smtp_data.h - the DATA phase as a push parser over the raw bytes the
 * client sends: finds the end of data, undoes dot-stuffing, counts the
 * size against the limit, and detects bare CR and bare LF.
 *
 * End of data is only <CRLF>.<CRLF> where both CRLFs are real: a bare LF
 * or bare CR never starts or ends a line here, so "\n.\n", "\r.\r",
 * "\n.\r\n" and every mix are content, never the end (SMTP smuggling).
 * A message that contains a bare CR or bare LF anywhere is refused after
 * its end (550 5.6.11, RFC 5321 2.3.8 forbids them): what such a message
 * would mean differs between servers, which is exactly what smuggling
 * exploits. The decision is documented in doc/smtp.md.
 *
 * SECURITY: input is the client's bytes. No allocation; O(1) state per
 * byte; output goes to the sink in spans.
 */
#ifndef HK_SMTP_DATA_H
#define HK_SMTP_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum smtp_data_state { SD_BOL, SD_BOL_DOT, SD_BOL_DOT_CR, SD_LINE, SD_CR, SD_DONE };

struct smtp_data {
	enum smtp_data_state state;
	uint64_t size;      /* message bytes after unstuffing */
	uint64_t max_size;  /* 0: unlimited */
	bool too_big;       /* size passed max_size: the rest was not given to the sink */
	bool bare_cr, bare_lf;
	/* where the content goes (a spool file writer); may be NULL */
	void (*sink)(void *ctx, const char *p, size_t n);
	void *ctx;
};

void smtp_data_init(struct smtp_data *d, uint64_t max_size, void (*sink)(void *, const char *, size_t), void *ctx);
/* Consumes bytes; returns how many were part of the message data (the
 * rest, after the end marker, belongs to the next commands). */
size_t smtp_data_push(struct smtp_data *d, const char *p, size_t n);
static inline bool
smtp_data_done(const struct smtp_data *d)
{
	return d->state == SD_DONE;
}

#endif
