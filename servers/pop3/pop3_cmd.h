/*
 * pop3_cmd.h - the POP3 command line parser (RFC 1939, 2449, 2595, 5034).
 * A line (without its CRLF) becomes a verb and its arguments; what the
 * verb means in which state is the session's business.
 *
 * SECURITY: input is hostile. The session reads lines of at most
 * POP3_AUTH_LINE_MAX bytes; commands but AUTH may have POP3_LINE_MAX, each
 * argument at most
 * POP3_ARG_MAX bytes (RFC 2449 says 40; we allow more for long user
 * names and SASL initial responses), no NUL bytes.
 */
#ifndef HK_POP3_CMD_H
#define HK_POP3_CMD_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

#define POP3_LINE_MAX 512          /* a command line (RFC 2449: 255) */
#define POP3_AUTH_LINE_MAX 8192    /* a SASL response line */
#define POP3_ARG_MAX 400           /* one argument */
#define POP3_MSGNUM_MAX 100000000u /* message numbers and TOP line counts */

enum pop3_verb {
	POP3_USER, POP3_PASS, POP3_APOP, POP3_AUTH, POP3_STAT, POP3_LIST, POP3_RETR, POP3_DELE, POP3_NOOP, POP3_RSET,
	POP3_QUIT, POP3_TOP, POP3_UIDL, POP3_CAPA, POP3_STLS, POP3_UNKNOWN
};

struct pop3_cmd {
	enum pop3_verb verb;
	unsigned nargs;          /* 0..2 */
	struct hk_str args[2];
	struct hk_str rest;      /* everything after "VERB " (PASS takes it whole: passwords may hold spaces) */
};

/* 0, or -1 with *err_r set to the text for "-ERR ...". */
int pop3_cmd_parse(const char *line, size_t len, struct pop3_cmd *out, const char **err_r);
const char *pop3_verb_name(enum pop3_verb v);
/* "1".."POP3_MSGNUM_MAX" (no sign, no leading zeros beyond "0", for TOP's
 * line count "0" is allowed: allow_zero). */
bool pop3_number(struct hk_str s, bool allow_zero, unsigned *out);

#endif
