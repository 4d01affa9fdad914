/*
 * smtp_cmd.h - parses one SMTP command line (without its CRLF) into a verb,
 * a path and ESMTP parameters. Tolerant where real clients differ (a space
 * after "MAIL FROM:", lower-case verbs, source routes), strict where
 * ambiguity is dangerous (addresses, parameter syntax, NUL and control
 * bytes).
 *
 * Ownership: the parsed command points into the line; it is valid while
 * the line is.
 *
 * SECURITY: input is a client's line, already bounded by
 * SMTP_MAX_LINE by the session.
 */
#ifndef HK_SMTP_CMD_H
#define HK_SMTP_CMD_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

#define SMTP_MAX_LINE 4096        /* a command line (RFC 5321 says 512; extensions need more) */
#define SMTP_MAX_PARAMS 16
#define SMTP_MAX_LOCAL 255        /* local part (RFC 5321: 64; SRS and BATV addresses exceed it) */
#define SMTP_MAX_DOMAIN 255
#define SMTP_MAX_PATH 512

enum smtp_verb {
	SMTP_UNKNOWN, SMTP_HELO, SMTP_EHLO, SMTP_MAIL, SMTP_RCPT, SMTP_DATA, SMTP_RSET, SMTP_NOOP,
	SMTP_QUIT, SMTP_VRFY, SMTP_EXPN, SMTP_HELP, SMTP_STARTTLS, SMTP_AUTH, SMTP_BDAT
};

struct smtp_param {
	struct hk_str key;   /* as written; compare case-insensitively */
	struct hk_str value; /* ptr NULL when there was no '=' */
};

struct smtp_cmd {
	enum smtp_verb verb;
	struct hk_str arg;          /* everything after the verb, trimmed */
	/* MAIL and RCPT */
	bool null_path;             /* MAIL FROM:<> */
	struct hk_str local, domain;
	struct hk_str path;         /* local@domain (or "" for <>) without brackets */
	bool utf8;                  /* the address has non-ASCII characters */
	bool postmaster;            /* RCPT TO:<postmaster> without a domain */
	struct smtp_param params[SMTP_MAX_PARAMS];
	unsigned nparams;
};

enum smtp_parse_error {
	SMTP_PARSE_OK,
	SMTP_PARSE_UNKNOWN_VERB,    /* 500 5.5.1 */
	SMTP_PARSE_SYNTAX,          /* 501 5.5.2 / 5.5.4 */
	SMTP_PARSE_BAD_ADDRESS,     /* 501 5.1.7 (MAIL) / 5.1.3 (RCPT) */
	SMTP_PARSE_BAD_PARAM,       /* 501 5.5.4 */
	SMTP_PARSE_TOO_MANY_PARAMS, /* 501 5.5.4 */
	SMTP_PARSE_DUP_PARAM        /* 501 5.5.4: the same keyword twice (RFC 3461 4: "at most once") */
};

enum smtp_parse_error smtp_cmd_parse(const char *line, size_t len, struct smtp_cmd *cmd);
const char *smtp_verb_name(enum smtp_verb v);
/* The parameter `key` (case-insensitive), or NULL. */
const struct smtp_param *smtp_cmd_param(const struct smtp_cmd *cmd, const char *key);

#endif
