/*
 * smtp_cmd.c - the SMTP command line parser (see smtp_cmd.h).
 *
 * Grammar (RFC 5321 4.1.1, 4.1.2, RFC 6531 for UTF-8):
 *   mail = "MAIL FROM:" [SP] ( "<>" / Path ) *( SP Mail-parameter )
 *   rcpt = "RCPT TO:" [SP] ( "<Postmaster>" / Path ) *( SP Rcpt-parameter )
 *   Path = "<" [ A-d-l ":" ] Mailbox ">"
 *   Mailbox = Local-part "@" ( Domain / address-literal )
 *   param = esmtp-keyword [ "=" esmtp-value ]
 *
 * SECURITY: every byte is classified; NUL, CR, LF and other controls are
 * syntax errors; addresses are bounded by the SMTP_MAX_* limits; UTF-8 must
 * be well-formed.
 */
#include "smtp_cmd.h"

#include <string.h>
#include <strings.h>

#include "charset.h"

static const struct {
	const char *name;
	enum smtp_verb verb;
} verbs[] = {
	{ "HELO", SMTP_HELO }, { "EHLO", SMTP_EHLO }, { "MAIL", SMTP_MAIL }, { "RCPT", SMTP_RCPT },
	{ "DATA", SMTP_DATA }, { "RSET", SMTP_RSET }, { "NOOP", SMTP_NOOP }, { "QUIT", SMTP_QUIT },
	{ "VRFY", SMTP_VRFY }, { "EXPN", SMTP_EXPN }, { "HELP", SMTP_HELP }, { "STARTTLS", SMTP_STARTTLS },
	{ "AUTH", SMTP_AUTH }, { "BDAT", SMTP_BDAT },
};

const char *
smtp_verb_name(enum smtp_verb v)
{
	for (size_t i = 0; i < HK_ARRAY_LEN(verbs); i++)
		if (verbs[i].verb == v)
			return verbs[i].name;
	return "?";
}

const struct smtp_param *
smtp_cmd_param(const struct smtp_cmd *cmd, const char *key)
{
	size_t n = strlen(key);
	for (unsigned i = 0; i < cmd->nparams; i++)
		if (cmd->params[i].key.len == n && strncasecmp(cmd->params[i].key.ptr, key, n) == 0)
			return &cmd->params[i];
	return NULL;
}

static bool
is_atext(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* Local-part = Dot-string / Quoted-string; UTF-8 allowed (RFC 6531). */
static bool
parse_local(const char *p, const char *end, const char **next, bool *utf8)
{
	const char *s = p;
	if (p < end && *p == '"') {
		p++;
		while (p < end && *p != '"') {
			unsigned char c = (unsigned char)*p;
			if (c == '\\') {
				if (p + 1 >= end || (unsigned char)p[1] < 0x20 || p[1] == 0x7f)
					return false;
				p += 2;
				continue;
			}
			if (c < 0x20 || c == 0x7f)
				return false;
			if (c >= 0x80)
				*utf8 = true;
			p++;
		}
		if (p >= end)
			return false;
		p++;
	} else {
		bool dot_ok = false;
		while (p < end) {
			unsigned char c = (unsigned char)*p;
			if (is_atext(c) || c >= 0x80) {
				if (c >= 0x80)
					*utf8 = true;
				dot_ok = true;
				p++;
			} else if (c == '.' && dot_ok) {
				dot_ok = false;
				p++;
			} else {
				break;
			}
		}
		if (!dot_ok) /* empty, or ends with a dot */
			return false;
	}
	if ((size_t)(p - s) > SMTP_MAX_LOCAL)
		return false;
	*next = p;
	return true;
}

/* Domain (LDH labels, or U-labels with UTF-8) or an address literal. */
static bool
parse_domain(const char *p, const char *end, const char **next, bool *utf8)
{
	const char *s = p;
	if (p < end && *p == '[') {
		const char *close = memchr(p, ']', (size_t)(end - p));
		if (close == NULL || close == p + 1)
			return false;
		for (const char *q = p + 1; q < close; q++) {
			unsigned char c = (unsigned char)*q;
			if (c < 0x21 || c > 0x7e || c == '[' || c == '\\')
				return false;
		}
		*next = close + 1;
		return (size_t)(*next - s) <= SMTP_MAX_DOMAIN;
	}
	size_t label = 0;
	while (p < end) {
		unsigned char c = (unsigned char)*p;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80) {
			if (c >= 0x80)
				*utf8 = true;
			label++;
		} else if (c == '-' && label > 0) {
			label++;
		} else if (c == '.' && label > 0 && p[-1] != '-') {
			label = 0;
		} else {
			break;
		}
		if (label > 63)
			return false;
		p++;
	}
	if (label == 0 || p[-1] == '-' || (size_t)(p - s) > SMTP_MAX_DOMAIN)
		return false;
	*next = p;
	return true;
}

/* "<" [A-d-l ":"] Mailbox ">" with the brackets; sets local/domain/path. */
static enum smtp_parse_error
parse_path(const char *p, const char *end, struct smtp_cmd *cmd, bool is_mail, const char **next)
{
	if (p >= end || *p != '<')
		return SMTP_PARSE_BAD_ADDRESS;
	const char *close = NULL;
	/* find the matching '>' outside a quoted local part */
	bool quoted = false;
	for (const char *q = p + 1; q < end; q++) {
		if (*q == '\\' && quoted) {
			q++;
			continue;
		}
		if (*q == '"')
			quoted = !quoted;
		else if (*q == '>' && !quoted) {
			close = q;
			break;
		}
	}
	if (close == NULL || (size_t)(close - p) > SMTP_MAX_PATH)
		return SMTP_PARSE_BAD_ADDRESS;
	*next = close + 1;
	const char *a = p + 1;
	if (a == close) {
		if (!is_mail)
			return SMTP_PARSE_BAD_ADDRESS;
		cmd->null_path = true;
		cmd->path = (struct hk_str){ a, 0 };
		cmd->local = cmd->domain = cmd->path;
		return SMTP_PARSE_OK;
	}
	/* an obsolete source route "@a,@b:" is accepted and ignored */
	if (*a == '@') {
		const char *colon = memchr(a, ':', (size_t)(close - a));
		if (colon == NULL)
			return SMTP_PARSE_BAD_ADDRESS;
		for (const char *q = a; q < colon; q++)
			if (*q != '@' && *q != ',' && *q != '.' && *q != '-' && *q != '[' && *q != ']' && *q != ':' &&
			    !((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9')))
				return SMTP_PARSE_BAD_ADDRESS;
		a = colon + 1;
	}
	const char *q;
	if (!is_mail && (size_t)(close - a) == 10 && strncasecmp(a, "postmaster", 10) == 0) {
		cmd->postmaster = true;
		cmd->local = (struct hk_str){ a, 10 };
		cmd->domain = (struct hk_str){ close, 0 };
		cmd->path = cmd->local;
		return SMTP_PARSE_OK;
	}
	if (!parse_local(a, close, &q, &cmd->utf8) || q >= close || *q != '@')
		return SMTP_PARSE_BAD_ADDRESS;
	cmd->local = (struct hk_str){ a, (size_t)(q - a) };
	const char *d = q + 1, *dend;
	if (!parse_domain(d, close, &dend, &cmd->utf8) || dend != close)
		return SMTP_PARSE_BAD_ADDRESS;
	cmd->domain = (struct hk_str){ d, (size_t)(close - d) };
	cmd->path = (struct hk_str){ a, (size_t)(close - a) };
	if (cmd->utf8 && !utf8_valid(a, (size_t)(close - a)))
		return SMTP_PARSE_BAD_ADDRESS;
	return SMTP_PARSE_OK;
}

static enum smtp_parse_error
parse_params(const char *p, const char *end, struct smtp_cmd *cmd)
{
	while (p < end) {
		if (*p != ' ')
			return SMTP_PARSE_SYNTAX;
		while (p < end && *p == ' ')
			p++;
		if (p == end)
			break;
		const char *k = p;
		while (p < end && ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || (*p == '-' && p > k)))
			p++;
		if (p == k)
			return SMTP_PARSE_BAD_PARAM;
		if (cmd->nparams >= SMTP_MAX_PARAMS)
			return SMTP_PARSE_TOO_MANY_PARAMS;
		/* a repeated keyword is ambiguous (which NOTIFY counts?): refuse it */
		for (unsigned i = 0; i < cmd->nparams; i++)
			if (cmd->params[i].key.len == (size_t)(p - k) && strncasecmp(cmd->params[i].key.ptr, k, (size_t)(p - k)) == 0)
				return SMTP_PARSE_DUP_PARAM;
		struct smtp_param *pm = &cmd->params[cmd->nparams++];
		pm->key = (struct hk_str){ k, (size_t)(p - k) };
		pm->value = (struct hk_str){ NULL, 0 };
		if (p < end && *p == '=') {
			const char *v = ++p;
			while (p < end && *p != ' ') {
				unsigned char c = (unsigned char)*p;
				if (c < 0x21 || c == '=' || c == 0x7f)
					return SMTP_PARSE_BAD_PARAM;
				p++;
			}
			if (p == v)
				return SMTP_PARSE_BAD_PARAM;
			pm->value = (struct hk_str){ v, (size_t)(p - v) };
		}
	}
	return SMTP_PARSE_OK;
}

enum smtp_parse_error
smtp_cmd_parse(const char *line, size_t len, struct smtp_cmd *cmd)
{
	memset(cmd, 0, sizeof(*cmd));
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return SMTP_PARSE_SYNTAX;
	}
	const char *end = line + len;
	while (end > line && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	const char *p = line;
	const char *v = p;
	while (p < end && *p != ' ')
		p++;
	size_t vlen = (size_t)(p - v);
	for (size_t i = 0; i < HK_ARRAY_LEN(verbs); i++)
		if (strlen(verbs[i].name) == vlen && strncasecmp(v, verbs[i].name, vlen) == 0)
			cmd->verb = verbs[i].verb;
	if (cmd->verb == SMTP_UNKNOWN)
		return SMTP_PARSE_UNKNOWN_VERB;
	while (p < end && *p == ' ')
		p++;
	cmd->arg = (struct hk_str){ p, (size_t)(end - p) };
	if (cmd->verb != SMTP_MAIL && cmd->verb != SMTP_RCPT)
		return SMTP_PARSE_OK;
	const char *kw = cmd->verb == SMTP_MAIL ? "FROM:" : "TO:";
	size_t kl = strlen(kw);
	if ((size_t)(end - p) < kl || strncasecmp(p, kw, kl) != 0)
		return SMTP_PARSE_SYNTAX;
	p += kl;
	while (p < end && *p == ' ') /* "MAIL FROM: <a@b>" is common; accept it */
		p++;
	const char *after;
	enum smtp_parse_error e = parse_path(p, end, cmd, cmd->verb == SMTP_MAIL, &after);
	if (e != SMTP_PARSE_OK)
		return e;
	return parse_params(after, end, cmd);
}
