/*
 * compose.c - builds the notice, auto-reply and rejected-header messages
 * (see compose.h).
 *
 * SECURITY: every value copied from the incoming message into a header is
 * stripped of CR and LF, so a crafted subject cannot add headers; body
 * lines end in CRLF only (bare CR is dropped), and dot-stuffing is the SMTP
 * client's job.
 */
#include "compose.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <string.h>
#include <time.h>

#include "fields.h"

static bool
printable_ascii(struct hk_str s)
{
	for (size_t i = 0; i < s.len; i++) {
		unsigned char c = (unsigned char)s.ptr[i];
		if (c < 0x20 || c > 0x7e)
			return false;
	}
	return true;
}

static size_t
utf8_seq_len(unsigned char c)
{
	return c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
}

void
hk_header_put(struct hk_buf *out, const char *name, struct hk_str value)
{
	size_t col = strlen(name) + 2;
	buf_printf(out, "%s: ", name);
	/* one line of text: control characters become spaces */
	char *clean = xmalloc(value.len + 1);
	for (size_t i = 0; i < value.len; i++) {
		unsigned char c = (unsigned char)value.ptr[i];
		clean[i] = (c == '\r' || c == '\n' || c == '\t' || c == 0) ? ' ' : (char)c;
	}
	struct hk_str v = { clean, value.len };
	if (printable_ascii(v)) {
		/* fold at blanks so no line is longer than 78 where possible:
		 * the folded line starts with the blank (RFC 5322 2.2.3) */
		size_t i = 0;
		bool first = true;
		while (i <= v.len) {
			size_t word_end = i;
			while (word_end < v.len && v.ptr[word_end] != ' ')
				word_end++;
			size_t wl = word_end - i;
			if (!first) {
				if (col + 1 + wl > 78) {
					buf_adds(out, "\r\n ");
					col = 1;
				} else {
					buf_addc(out, ' ');
					col++;
				}
			}
			buf_add(out, v.ptr + i, wl);
			col += wl;
			first = false;
			if (word_end >= v.len)
				break;
			i = word_end + 1;
		}
	} else {
		/* encoded words of at most 45 input bytes (60 base64 chars, 72 with
		 * the =?UTF-8?B?...?= frame), never splitting a UTF-8 sequence */
		size_t i = 0;
		bool first = true;
		while (i < v.len) {
			size_t n = 0;
			while (i + n < v.len) {
				size_t sl = utf8_seq_len((unsigned char)v.ptr[i + n]);
				if (n + sl > 45)
					break;
				n += sl;
			}
			if (n == 0)
				n = 1;
			if (i + n > v.len)
				n = v.len - i;
			unsigned char enc[80];
			int el = EVP_EncodeBlock(enc, (const unsigned char *)v.ptr + i, (int)n);
			if (!first)
				buf_adds(out, "\r\n ");
			buf_printf(out, "=?UTF-8?B?%.*s?=", el, enc);
			first = false;
			i += n;
		}
	}
	buf_adds(out, "\r\n");
	free(clean);
}

static void
put_date(struct hk_buf *out, int64_t now)
{
	time_t t = (time_t)now;
	struct tm tm;
	gmtime_r(&t, &tm);
	static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	buf_printf(out, "Date: %s, %02d %s %04d %02d:%02d:%02d +0000\r\n", days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
	    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static void
put_message_id(struct hk_buf *out, const struct hk_compose_ctx *c)
{
	unsigned char r[12];
	if (RAND_bytes(r, sizeof(r)) != 1)
		memset(r, 0, sizeof(r));
	buf_printf(out, "Message-ID: <%lld.", (long long)c->now);
	for (size_t i = 0; i < sizeof(r); i++)
		buf_printf(out, "%02x", r[i]);
	buf_printf(out, "@%.*s>\r\n", (int)c->hostname.len, c->hostname.ptr);
}

/* A text/plain UTF-8 body with CRLF line ends: 7bit when ASCII, else
 * 8bit (the outbound SMTP client downgrades to quoted-printable for a peer
 * without 8BITMIME). Lines are cut at 998 octets (RFC 5322). */
static void
put_text_body(struct hk_buf *out, struct hk_str text)
{
	bool ascii = true;
	for (size_t i = 0; i < text.len; i++)
		if ((unsigned char)text.ptr[i] >= 0x80)
			ascii = false;
	buf_printf(out, "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: %s\r\n\r\n",
	    ascii ? "7bit" : "8bit");
	size_t col = 0;
	for (size_t i = 0; i < text.len; i++) {
		char ch = text.ptr[i];
		if (ch == '\r')
			continue;
		if (ch == '\n' || col >= 998) {
			buf_adds(out, "\r\n");
			col = 0;
			if (ch == '\n')
				continue;
		}
		buf_addc(out, ch);
		col++;
	}
	if (col)
		buf_adds(out, "\r\n");
}

static struct hk_str
first_header(struct hk_message *m, const char *name)
{
	const struct hk_str *v;
	if (m && hk_message_header(m, name, strlen(name), &v) > 0)
		return v[0];
	return (struct hk_str){ "", 0 };
}

static void
addr_list_text(struct hk_message *m, const char *name, struct hk_buf *out)
{
	const struct hk_address *a;
	size_t n = m ? hk_message_addresses(m, name, strlen(name), &a) : 0;
	for (size_t i = 0; i < n; i++) {
		if (i)
			buf_adds(out, ", ");
		if (a[i].name.len)
			buf_printf(out, "%.*s <%.*s>", (int)a[i].name.len, a[i].name.ptr, (int)a[i].addr.len, a[i].addr.ptr);
		else
			buf_add(out, a[i].addr.ptr, a[i].addr.len);
	}
}

static struct hk_str
domain_of(struct hk_str addr)
{
	for (size_t i = addr.len; i-- > 0;)
		if (addr.ptr[i] == '@')
			return (struct hk_str){ addr.ptr + i + 1, addr.len - i - 1 };
	return (struct hk_str){ "", 0 };
}

void
hk_compose_notice(struct hk_message *msg, const struct hk_env *env, const struct hk_action *a, const struct hk_compose_ctx *c,
    struct hk_buf *out)
{
	struct hk_buf tmp;
	buf_init(&tmp);
	struct hk_str dom = domain_of(env->recipient);
	if (dom.len == 0)
		dom = c->hostname;
	buf_printf(&tmp, "Mail Notice <postmaster@%.*s>", (int)dom.len, dom.ptr);
	hk_header_put(out, "From", (struct hk_str){ tmp.data, tmp.len });
	hk_header_put(out, "To", a->arg[0]);
	struct hk_str subject = first_header(msg, "Subject");
	buf_reset(&tmp);
	if (a->mask & 1)
		buf_add(&tmp, a->arg[1].ptr, a->arg[1].len);
	else
		buf_printf(&tmp, "受信通知 / Mail received: %.*s", (int)subject.len, subject.ptr);
	hk_header_put(out, "Subject", (struct hk_str){ tmp.data, tmp.len });
	put_date(out, c->now);
	put_message_id(out, c);
	buf_adds(out, "Auto-Submitted: auto-generated (notify)\r\n");

	struct hk_buf body;
	buf_init(&body);
	buf_printf(&body, "%.*s 宛てにメールが届きました。\nNew mail for %.*s.\n\n", (int)env->recipient.len, env->recipient.ptr,
	    (int)env->recipient.len, env->recipient.ptr);
	buf_adds(&body, "From:    ");
	addr_list_text(msg, "From", &body);
	buf_adds(&body, "\nTo:      ");
	addr_list_text(msg, "To", &body);
	struct hk_buf cc;
	buf_init(&cc);
	addr_list_text(msg, "Cc", &cc);
	if (cc.len)
		buf_printf(&body, "\nCc:      %s", cc.data);
	buf_fini(&cc);
	buf_printf(&body, "\nSubject: %.*s\n", (int)subject.len, subject.ptr);
	struct hk_str date = first_header(msg, "Date");
	if (date.len)
		buf_printf(&body, "Date:    %.*s\n", (int)date.len, date.ptr);
	const struct hk_attachment *att;
	size_t natt = msg ? hk_message_attachments(msg, &att) : 0;
	buf_printf(&body, "Size:    %zu bytes%s", msg ? hk_message_size(msg) : 0, natt ? ", attachments:" : "\n");
	for (size_t i = 0; i < natt; i++)
		buf_printf(&body, " %.*s%s", (int)att[i].name.len, att[i].name.ptr, i + 1 < natt ? "," : "\n");
	/* the body never carries a newline from a header into a line start */
	for (size_t i = 0; i < body.len; i++)
		if (body.data[i] == '\r')
			body.data[i] = ' ';
	put_text_body(out, (struct hk_str){ body.data, body.len });
	buf_fini(&body);
	buf_fini(&tmp);
}

void
hk_compose_reply(struct hk_message *msg, const struct hk_env *env, const struct hk_action *a, const struct hk_compose_ctx *c,
    struct hk_buf *out)
{
	struct hk_str from = (a->mask & 4) ? a->arg[2] : env->recipient;
	hk_header_put(out, "From", from);
	hk_header_put(out, "To", hk_reply_target(env));
	hk_header_put(out, "Subject", a->arg[0].ptr ? a->arg[0] : HK_STR("Notification for your mail."));
	put_date(out, c->now);
	put_message_id(out, c);
	struct hk_str mid = first_header(msg, "Message-ID");
	if (mid.len) {
		hk_header_put(out, "In-Reply-To", mid);
		struct hk_str refs = first_header(msg, "References");
		struct hk_buf r;
		buf_init(&r);
		if (refs.len)
			buf_printf(&r, "%.*s ", (int)refs.len, refs.ptr);
		buf_add(&r, mid.ptr, mid.len);
		hk_header_put(out, "References", (struct hk_str){ r.data, r.len });
		buf_fini(&r);
	}
	buf_adds(out, "Auto-Submitted: auto-replied\r\nX-Auto-Response-Suppress: All\r\n");
	struct hk_str body = (a->mask & 2) ? a->arg[1] : HK_STR("This is an automatic reply to your message.\n");
	put_text_body(out, body);
}

void
hk_compose_rejected(struct hk_message *msg, const struct hk_env *env, const struct hk_action *a, const struct hk_compose_ctx *c,
    struct hk_buf *out)
{
	(void)env;
	(void)c;
	const struct hk_header *h;
	size_t n = msg ? hk_message_headers(msg, &h) : 0;
	struct hk_buf why;
	buf_init(&why);
	buf_adds(&why, "rejected");
	if (a->rule != 0xFFFF && a->prog && a->rule < a->prog->nrules) {
		const struct hk_rule_info *r = &a->prog->rules[a->rule];
		buf_printf(&why, " by rule \"%.*s\"", (int)r->name_len, a->prog->strpool + r->name_off);
	}
	if (a->mask & 1)
		buf_printf(&why, ": %.*s", (int)a->arg[0].len, a->arg[0].ptr);
	hk_header_put(out, "X-Hikyaku-Rejected", (struct hk_str){ why.data, why.len });
	buf_fini(&why);
	for (size_t i = 0; i < n; i++) {
		/* the raw values are unfolded; keep them as they came (bytes
		 * included), only line ends are normalised */
		buf_add(out, h[i].name.ptr, h[i].name.len);
		buf_adds(out, ": ");
		for (size_t k = 0; k < h[i].raw.len; k++) {
			char ch = h[i].raw.ptr[k];
			buf_addc(out, ch == '\r' || ch == '\n' ? ' ' : ch);
		}
		buf_adds(out, "\r\n");
	}
	buf_adds(out, "\r\n");
}
