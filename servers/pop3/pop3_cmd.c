/*
 * pop3_cmd.c - POP3 command lines (see pop3_cmd.h).
 */
#include "pop3_cmd.h"

#include <string.h>
#include <strings.h>

static const struct {
	const char *name;
	enum pop3_verb verb;
	unsigned min, max; /* arguments */
} verbs[] = {
	{ "USER", POP3_USER, 1, 1 }, { "PASS", POP3_PASS, 1, 1 }, { "APOP", POP3_APOP, 2, 2 },
	{ "AUTH", POP3_AUTH, 0, 2 }, { "STAT", POP3_STAT, 0, 0 }, { "LIST", POP3_LIST, 0, 1 },
	{ "RETR", POP3_RETR, 1, 1 }, { "DELE", POP3_DELE, 1, 1 }, { "NOOP", POP3_NOOP, 0, 0 },
	{ "RSET", POP3_RSET, 0, 0 }, { "QUIT", POP3_QUIT, 0, 0 }, { "TOP", POP3_TOP, 2, 2 },
	{ "UIDL", POP3_UIDL, 0, 1 }, { "CAPA", POP3_CAPA, 0, 0 }, { "STLS", POP3_STLS, 0, 0 },
};

const char *
pop3_verb_name(enum pop3_verb v)
{
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (verbs[i].verb == v)
			return verbs[i].name;
	return "?";
}

bool
pop3_number(struct hk_str s, bool allow_zero, unsigned *out)
{
	if (s.len == 0 || s.len > 9)
		return false;
	unsigned v = 0;
	for (size_t i = 0; i < s.len; i++) {
		if (s.ptr[i] < '0' || s.ptr[i] > '9')
			return false;
		v = v * 10 + (unsigned)(s.ptr[i] - '0');
	}
	if ((v == 0 && !allow_zero) || v > POP3_MSGNUM_MAX || (s.len > 1 && s.ptr[0] == '0'))
		return false;
	*out = v;
	return true;
}

int
pop3_cmd_parse(const char *line, size_t len, struct pop3_cmd *out, const char **err_r)
{
	memset(out, 0, sizeof(*out));
	out->verb = POP3_UNKNOWN;
	if (memchr(line, '\0', len)) {
		*err_r = "NUL in command";
		return -1;
	}
	size_t vl = 0;
	while (vl < len && line[vl] != ' ')
		vl++;
	if (vl == 0) {
		*err_r = "Empty command";
		return -1;
	}
	size_t k;
	for (k = 0; k < sizeof(verbs) / sizeof(verbs[0]); k++)
		if (strlen(verbs[k].name) == vl && strncasecmp(verbs[k].name, line, vl) == 0)
			break;
	if (k == sizeof(verbs) / sizeof(verbs[0])) {
		*err_r = "Unknown command";
		return -1;
	}
	out->verb = verbs[k].verb;
	/* RFC 5034 4: the line limit does not hold for AUTH (initial responses) */
	if (out->verb != POP3_AUTH && len > POP3_LINE_MAX) {
		*err_r = "Line too long";
		return -1;
	}
	size_t arg_max = out->verb == POP3_AUTH ? POP3_AUTH_LINE_MAX : POP3_ARG_MAX;
	const char *p = line + vl, *end = line + len;
	if (p < end)
		p++; /* the space after the verb */
	out->rest = (struct hk_str){ p, (size_t)(end - p) };
	if (out->verb == POP3_PASS) {
		if (out->rest.len == 0 || out->rest.len > POP3_ARG_MAX) {
			*err_r = out->rest.len ? "Password too long" : "Missing password";
			return -1;
		}
		out->args[0] = out->rest;
		out->nargs = 1;
		return 0;
	}
	while (p < end) {
		while (p < end && *p == ' ')
			p++; /* RFC 1939 says one space; clients sometimes send two */
		if (p == end)
			break;
		const char *a = p;
		while (p < end && *p != ' ')
			p++;
		if (out->nargs == verbs[k].max) {
			*err_r = "Too many arguments";
			return -1;
		}
		if ((size_t)(p - a) > arg_max) {
			*err_r = "Argument too long";
			return -1;
		}
		out->args[out->nargs++] = (struct hk_str){ a, (size_t)(p - a) };
	}
	if (out->nargs < verbs[k].min) {
		*err_r = "Missing argument";
		return -1;
	}
	return 0;
}
