/*
 * spf_header.c - the texts an SPF result becomes: the result names (RFC
 * 7208 8), the Received-SPF field value (9.1) and the Authentication-
 * Results resinfo "spf=..." (RFC 8601 2.7.2).
 *
 * Place: the SMTP server calls these when it writes the trace headers of
 * an accepted message. Output goes to the caller's struct hk_buf.
 *
 * SECURITY: the result's texts already are printable ASCII (spf.c copies
 * them with spf_printable); here every value is written as a dot-atom
 * only when it is one, else as a quoted-string with '"' and '\' escaped,
 * and comment text has '(' ')' '\' escaped, so no input can end a
 * comment, a value or the header field early.
 */
#include <string.h>

#include "spf_int.h"

void
spf_printable(char *dst, size_t dstsize, const char *src, size_t len)
{
	size_t o = 0;

	if (dstsize == 0)
		return;
	for (size_t i = 0; i < len && o + 1 < dstsize; i++) {
		unsigned char c = (unsigned char)src[i];
		dst[o++] = (c >= 0x20 && c <= 0x7e) ? (char)c : '?';
	}
	if (len >= dstsize && dstsize > 4)
		memcpy(dst + dstsize - 4, "...", 3), o = dstsize - 1;
	dst[o] = '\0';
}

const char *
spf_result_str(enum hk_spf r)
{
	switch (r) {
	case SPF_PASS: return "pass";
	case SPF_FAIL: return "fail";
	case SPF_SOFTFAIL: return "softfail";
	case SPF_NEUTRAL: return "neutral";
	case SPF_NONE: return "none";
	case SPF_TEMPERROR: return "temperror";
	case SPF_PERMERROR: return "permerror";
	default: return "permerror";
	}
}

/* atext (RFC 5322 3.2.3) */
static bool
atext(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

static bool
dot_atom(const char *s)
{
	bool prev_dot = true;
	if (!*s)
		return false;
	for (; *s; s++) {
		if (*s == '.') {
			if (prev_dot)
				return false;
			prev_dot = true;
		} else if (atext(*s)) {
			prev_dot = false;
		} else {
			return false;
		}
	}
	return !prev_dot;
}

static void
put_value(struct hk_buf *out, const char *s)
{
	if (dot_atom(s)) {
		buf_adds(out, s);
		return;
	}
	buf_addc(out, '"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			buf_addc(out, '\\');
		buf_addc(out, *s);
	}
	buf_addc(out, '"');
}

static void
put_comment_text(struct hk_buf *out, const char *s)
{
	for (; *s; s++) {
		if (*s == '(' || *s == ')' || *s == '\\')
			buf_addc(out, '\\');
		buf_addc(out, *s);
	}
}

void
spf_received_spf(const struct spf_result *r, struct hk_buf *out)
{
	const char *who = r->identity == SPF_ID_HELO ? r->helo : r->sender;
	const char *recv = r->receiver[0] ? r->receiver : "unknown";

	buf_adds(out, spf_result_str(r->result));
	buf_adds(out, " (");
	put_comment_text(out, recv);
	buf_adds(out, ": ");
	switch (r->result) {
	case SPF_PASS:
		buf_adds(out, "domain of ");
		put_comment_text(out, who);
		buf_adds(out, " designates ");
		put_comment_text(out, r->client_ip);
		buf_adds(out, " as permitted sender");
		break;
	case SPF_FAIL:
		buf_adds(out, "domain of ");
		put_comment_text(out, who);
		buf_adds(out, " does not designate ");
		put_comment_text(out, r->client_ip);
		buf_adds(out, " as permitted sender");
		break;
	case SPF_SOFTFAIL:
		buf_adds(out, "transitioning domain of ");
		put_comment_text(out, who);
		buf_adds(out, " does not designate ");
		put_comment_text(out, r->client_ip);
		buf_adds(out, " as permitted sender");
		break;
	case SPF_NEUTRAL:
		put_comment_text(out, r->client_ip);
		buf_adds(out, " is neither permitted nor denied by domain of ");
		put_comment_text(out, who);
		break;
	case SPF_NONE:
		buf_adds(out, "domain of ");
		put_comment_text(out, who);
		buf_adds(out, " does not designate permitted sender hosts");
		break;
	case SPF_TEMPERROR:
		buf_adds(out, "error in processing during lookup of ");
		put_comment_text(out, who);
		break;
	default:
		buf_adds(out, "permanent error in processing domain of ");
		put_comment_text(out, who);
		break;
	}
	buf_adds(out, ") receiver=");
	put_value(out, recv);
	buf_adds(out, "; client-ip=");
	put_value(out, r->client_ip);
	if (r->identity == SPF_ID_MAILFROM) {
		buf_adds(out, "; envelope-from=");
		put_value(out, r->sender);
	}
	buf_adds(out, "; helo=");
	put_value(out, r->helo);
	buf_adds(out, "; identity=");
	buf_adds(out, r->identity == SPF_ID_HELO ? "helo" : "mailfrom");
	if (r->mechanism[0] && strcmp(r->mechanism, "default") != 0) {
		buf_adds(out, "; mechanism=");
		put_value(out, r->mechanism);
	}
	if (r->problem[0] && (r->result == SPF_TEMPERROR || r->result == SPF_PERMERROR)) {
		buf_adds(out, "; problem=");
		put_value(out, r->problem);
	}
}

void
spf_auth_results(const struct spf_result *r, struct hk_buf *out)
{
	buf_adds(out, "spf=");
	buf_adds(out, spf_result_str(r->result));
	if (r->problem[0] && (r->result == SPF_TEMPERROR || r->result == SPF_PERMERROR)) {
		buf_adds(out, " reason=");
		put_value(out, r->problem);
	}
	if (r->identity == SPF_ID_HELO) {
		buf_adds(out, " smtp.helo=");
		put_value(out, r->helo);
	} else {
		buf_adds(out, " smtp.mailfrom=");
		put_value(out, r->domain);
	}
}
