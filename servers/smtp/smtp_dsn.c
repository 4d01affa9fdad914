/*
 * smtp_dsn.c - DSN parameters and xtext (see smtp_dsn.h).
 *
 *   xtext      = *( xchar / hexchar )
 *   xchar      = any ASCII 33..126 except "+" and "="
 *   hexchar    = "+" 2( %x30-39 / %x41-46 )     ; upper-case hex only
 *   notify     = "NEVER" / 1#( "SUCCESS" / "FAILURE" / "DELAY" )
 *   orcpt      = addr-type ";" xtext
 *   addr-type  = atom
 */
#include "smtp_dsn.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1; /* RFC 3461 4: the hex digits are upper case */
}

bool
smtp_dsn_xtext_decode(struct hk_str in, char *out, size_t outsz)
{
	size_t o = 0;
	if (outsz == 0)
		return false;
	for (size_t i = 0; i < in.len; i++) {
		unsigned char c = (unsigned char)in.ptr[i];
		if (c == '+') {
			if (i + 2 >= in.len)
				return false;
			int hi = hexval(in.ptr[i + 1]), lo = hexval(in.ptr[i + 2]);
			if (hi < 0 || lo < 0)
				return false;
			c = (unsigned char)(hi * 16 + lo);
			i += 2;
			if (c < 0x20 || c > 0x7e)
				return false;
		} else if (c < 33 || c > 126 || c == '=') {
			return false;
		}
		if (o + 1 >= outsz)
			return false;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return true;
}

void
smtp_dsn_xtext_encode(struct hk_buf *out, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c < 33 || c > 126 || c == '+' || c == '=')
			buf_printf(out, "+%02X", c);
		else
			buf_addc(out, (char)c);
	}
}

static bool
xtext_ok(struct hk_str v)
{
	char tmp[SMTP_DSN_MAX_ORCPT + 1];
	return v.len <= SMTP_DSN_MAX_ORCPT && smtp_dsn_xtext_decode(v, tmp, sizeof(tmp));
}

bool
smtp_dsn_notify_parse(struct hk_str v, unsigned *notify_r)
{
	static const struct {
		const char *name;
		unsigned bit;
	} kw[] = { { "NEVER", SMTP_DSN_NOTIFY_NEVER }, { "SUCCESS", SMTP_DSN_NOTIFY_SUCCESS },
		{ "FAILURE", SMTP_DSN_NOTIFY_FAILURE }, { "DELAY", SMTP_DSN_NOTIFY_DELAY } };
	unsigned n = 0;
	size_t i = 0;
	if (v.ptr == NULL || v.len == 0)
		return false;
	while (i <= v.len) {
		const char *w = v.ptr + i;
		const char *comma = memchr(w, ',', v.len - i);
		size_t wl = comma ? (size_t)(comma - w) : v.len - i;
		unsigned bit = 0;
		for (size_t k = 0; k < HK_ARRAY_LEN(kw); k++)
			if (strlen(kw[k].name) == wl && strncasecmp(w, kw[k].name, wl) == 0)
				bit = kw[k].bit;
		if (bit == 0 || (n & bit))
			return false; /* unknown, empty or repeated keyword */
		n |= bit;
		i += wl + 1;
	}
	/* NEVER stands alone (RFC 3461 4.1) */
	if ((n & SMTP_DSN_NOTIFY_NEVER) && n != SMTP_DSN_NOTIFY_NEVER)
		return false;
	*notify_r = n;
	return true;
}

const char *
smtp_dsn_notify_str(unsigned notify, char out[32])
{
	out[0] = '\0';
	if (notify & SMTP_DSN_NOTIFY_NEVER) {
		snprintf(out, 32, "NEVER");
		return out;
	}
	snprintf(out, 32, "%s%s%s", notify & SMTP_DSN_NOTIFY_SUCCESS ? "SUCCESS," : "",
	    notify & SMTP_DSN_NOTIFY_FAILURE ? "FAILURE," : "", notify & SMTP_DSN_NOTIFY_DELAY ? "DELAY," : "");
	size_t l = strlen(out);
	if (l)
		out[l - 1] = '\0';
	return out;
}

bool
smtp_dsn_ret_parse(struct hk_str v, enum smtp_dsn_ret *ret_r)
{
	if (v.ptr == NULL)
		return false;
	if (str_ieq_cstr(v, "FULL"))
		*ret_r = SMTP_DSN_RET_FULL;
	else if (str_ieq_cstr(v, "HDRS"))
		*ret_r = SMTP_DSN_RET_HDRS;
	else
		return false;
	return true;
}

bool
smtp_dsn_envid_ok(struct hk_str v)
{
	return v.ptr != NULL && v.len > 0 && v.len <= SMTP_DSN_MAX_ENVID && xtext_ok(v);
}

/* addr-type: an RFC 5322 atom, bounded */
static bool
addrtype_ok(const char *p, size_t n)
{
	if (n == 0 || n > SMTP_DSN_MAX_ADDRTYPE)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("!#$%&'*+-/=?^_`{|}~", c)))
			return false;
	}
	return true;
}

bool
smtp_dsn_orcpt_ok(struct hk_str v)
{
	if (v.ptr == NULL || v.len > SMTP_DSN_MAX_ORCPT)
		return false;
	const char *semi = memchr(v.ptr, ';', v.len);
	if (semi == NULL || !addrtype_ok(v.ptr, (size_t)(semi - v.ptr)))
		return false;
	struct hk_str x = { semi + 1, v.len - (size_t)(semi + 1 - v.ptr) };
	return x.len > 0 && xtext_ok(x);
}

bool
smtp_dsn_orcpt_decode(struct hk_str v, char *out, size_t outsz)
{
	if (!smtp_dsn_orcpt_ok(v))
		return false;
	const char *semi = memchr(v.ptr, ';', v.len);
	size_t tl = (size_t)(semi - v.ptr);
	if (tl + 2 > outsz)
		return false;
	memcpy(out, v.ptr, tl + 1);
	struct hk_str x = { semi + 1, v.len - tl - 1 };
	return smtp_dsn_xtext_decode(x, out + tl + 1, outsz - tl - 1);
}
