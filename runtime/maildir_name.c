/*
 * maildir_name.c - names on disk for the Maildir++ back end: folder names
 * <-> directory names (IMAP modified UTF-7, RFC 3501 5.1.3, plus Dovecot's
 * listescape escapes), unique message file names, and the ,S= ,W= and
 * ":2," parts of a file name. See maildir.h for the layout.
 *
 * SECURITY: directory and file names read back from disk may come from
 * other programs: decoding is strict and a folder name is only accepted
 * when encoding it again gives the same directory name (one name, one
 * directory), so no decoded name can reach outside the mailbox.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "maildir.h"

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int
b64_index(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == ',')
		return 63;
	return -1;
}

static bool
printable(uint32_t c)
{
	return c >= 0x20 && c <= 0x7E;
}

/* Decodes one UTF-8 sequence of valid input; a broken one reads as one
 * U+FFFD byte (never happens after hk_store_folder_name_ok). */
static size_t
utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
	unsigned char c = s[0];
	size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
	if (len == 0 || len > n) {
		*cp = 0xFFFD;
		return 1;
	}
	uint32_t v = len == 1 ? c : c & (0x7F >> len);
	for (size_t i = 1; i < len; i++)
		v = (v << 6) | (s[i] & 0x3F);
	*cp = v;
	return len;
}

static void
utf8_put(struct hk_buf *out, uint32_t cp)
{
	char b[4];
	size_t n;
	if (cp < 0x80) {
		b[0] = (char)cp, n = 1;
	} else if (cp < 0x800) {
		b[0] = (char)(0xC0 | (cp >> 6)), b[1] = (char)(0x80 | (cp & 0x3F)), n = 2;
	} else if (cp < 0x10000) {
		b[0] = (char)(0xE0 | (cp >> 12)), b[1] = (char)(0x80 | ((cp >> 6) & 0x3F)), b[2] = (char)(0x80 | (cp & 0x3F)), n = 3;
	} else {
		b[0] = (char)(0xF0 | (cp >> 18)), b[1] = (char)(0x80 | ((cp >> 12) & 0x3F)),
		b[2] = (char)(0x80 | ((cp >> 6) & 0x3F)), b[3] = (char)(0x80 | (cp & 0x3F)), n = 4;
	}
	buf_add(out, b, n);
}

void
mutf7_encode(const char *str, size_t n, struct hk_buf *out)
{
	const unsigned char *s = (const unsigned char *)str;
	for (size_t i = 0; i < n;) {
		if (printable(s[i])) {
			if (s[i] == '&')
				buf_adds(out, "&-");
			else
				buf_addc(out, (char)s[i]);
			i++;
			continue;
		}
		/* a run of everything else, as base64 of UTF-16BE */
		buf_addc(out, '&');
		uint32_t acc = 0;
		int bits = 0;
		while (i < n && !printable(s[i])) {
			uint32_t cp, units[2];
			int nu = 1;
			i += utf8_decode(s + i, n - i, &cp);
			if (cp >= 0x10000) {
				cp -= 0x10000;
				units[0] = 0xD800 | (cp >> 10);
				units[1] = 0xDC00 | (cp & 0x3FF);
				nu = 2;
			} else {
				units[0] = cp;
			}
			for (int u = 0; u < nu; u++) {
				acc = ((acc << 16) | units[u]) & 0x3FFFFF;
				bits += 16;
				while (bits >= 6) {
					bits -= 6;
					buf_addc(out, b64[(acc >> bits) & 0x3F]);
				}
			}
		}
		if (bits > 0)
			buf_addc(out, b64[(acc << (6 - bits)) & 0x3F]);
		buf_addc(out, '-');
	}
}

int
mutf7_decode(const char *str, size_t n, struct hk_buf *out)
{
	const unsigned char *s = (const unsigned char *)str;
	for (size_t i = 0; i < n;) {
		if (!printable(s[i]))
			return errno = EINVAL, -1;
		if (s[i] != '&') {
			buf_addc(out, (char)s[i++]);
			continue;
		}
		i++;
		if (i < n && s[i] == '-') {
			buf_addc(out, '&');
			i++;
			continue;
		}
		uint32_t acc = 0, high = 0;
		int bits = 0;
		size_t chars = 0;
		for (; i < n && s[i] != '-'; i++) {
			int v = b64_index(s[i]);
			if (v < 0)
				return errno = EINVAL, -1;
			acc = ((acc << 6) | (uint32_t)v) & 0x3FFFFF;
			bits += 6;
			if (bits < 16)
				continue;
			bits -= 16;
			uint32_t unit = (acc >> bits) & 0xFFFF, cp;
			if (high) {
				if (unit < 0xDC00 || unit > 0xDFFF)
					return errno = EINVAL, -1;
				cp = 0x10000 + ((high - 0xD800) << 10) + (unit - 0xDC00);
				high = 0;
			} else if (unit >= 0xD800 && unit <= 0xDBFF) {
				high = unit;
				continue;
			} else if (unit >= 0xDC00 && unit <= 0xDFFF) {
				return errno = EINVAL, -1;
			} else {
				cp = unit;
			}
			/* printable ASCII must be written as itself */
			if (printable(cp))
				return errno = EINVAL, -1;
			utf8_put(out, cp);
			chars++;
		}
		if (i >= n || high || chars == 0 || bits >= 6 || (acc & ((1u << bits) - 1)) != 0)
			return errno = EINVAL, -1;
		i++; /* '-' */
	}
	return 0;
}

int
maildir_dir_from_name(const char *name, struct hk_buf *out)
{
	buf_reset(out);
	if (strcmp(name, "INBOX") == 0)
		return 0;
	struct hk_buf enc;
	buf_init(&enc);
	buf_addc(out, '.');
	const char *p = name;
	bool first = true;
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);
		buf_reset(&enc);
		mutf7_encode(p, len, &enc);
		for (size_t i = 0; i < enc.len; i++) {
			char c = enc.data[i];
			if (c == '.')
				buf_adds(out, "\\2e");
			else if (c == '~' && first && i == 0)
				buf_adds(out, "\\7e");
			else
				buf_addc(out, c);
		}
		first = false;
		if (slash == NULL)
			break;
		buf_addc(out, '.');
		p = slash + 1;
	}
	buf_fini(&enc);
	if (out->len > NAME_MAX)
		return errno = ENAMETOOLONG, -1;
	return 0;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
maildir_name_from_dir(const char *dir, struct hk_buf *out)
{
	buf_reset(out);
	size_t n = strlen(dir);
	if (n < 2 || dir[0] != '.' || n > NAME_MAX)
		return errno = EINVAL, -1;
	struct hk_buf level, check;
	buf_init(&level);
	buf_init(&check);
	int rc = -1;
	const char *p = dir + 1, *end = dir + n;
	while (p <= end) {
		const char *dot = memchr(p, '.', (size_t)(end - p));
		const char *lend = dot ? dot : end;
		buf_reset(&level);
		for (const char *q = p; q < lend; q++) {
			if (*q != '\\') {
				buf_addc(&level, *q);
				continue;
			}
			int h = q + 2 < lend ? hexval(q[1]) : -1, l = h >= 0 ? hexval(q[2]) : -1;
			if (h < 0 || l < 0)
				goto out;
			char c = (char)(h * 16 + l);
			if (c == '/' || c == '\\' || !printable((unsigned char)c))
				goto out;
			buf_addc(&level, c);
			q += 2;
		}
		if (out->len)
			buf_addc(out, '/');
		if (mutf7_decode(level.data ? level.data : "", level.len, out) != 0)
			goto out;
		if (dot == NULL)
			break;
		p = dot + 1;
	}
	/* one directory per name: the name must be valid, canonical, and
	 * encode back to exactly this directory */
	char *canon = hk_store_folder_canon(out->data ? out->data : "");
	if (canon == NULL)
		goto out;
	bool same = strcmp(canon, out->data) == 0 && maildir_dir_from_name(canon, &check) == 0 && check.len == n &&
	    memcmp(check.data, dir, n) == 0;
	free(canon);
	if (same)
		rc = 0;
out:
	buf_fini(&level);
	buf_fini(&check);
	if (rc != 0)
		errno = EINVAL;
	return rc;
}

/* --- unique file names ----------------------------------------------------- */

static pthread_once_t host_once = PTHREAD_ONCE_INIT;
static char hostname[MAILDIR_HOSTNAME_MAX * 4 + 1];
static atomic_ulong counter;

/* The host name with '/' ':' ',' and anything unusual as \ooo (octal), as
 * the Maildir spec asks for '/' and ':'; ',' would confuse the ,S= parse. */
static void
host_init(void)
{
	char raw[256];
	if (gethostname(raw, sizeof raw) != 0 || raw[0] == '\0')
		snprintf(raw, sizeof raw, "localhost");
	raw[sizeof raw - 1] = '\0';
	size_t o = 0;
	for (size_t i = 0; raw[i] && i < MAILDIR_HOSTNAME_MAX; i++) {
		unsigned char c = (unsigned char)raw[i];
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
		    c == '_')
			hostname[o++] = (char)c;
		else
			o += (size_t)snprintf(hostname + o, sizeof hostname - o, "\\%03o", c);
	}
	hostname[o] = '\0';
}

void
maildir_unique(struct hk_buf *out)
{
	pthread_once(&host_once, host_init);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	unsigned long q = atomic_fetch_add(&counter, 1);
	uint32_t r;
	if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r)
		r = (uint32_t)(ts.tv_nsec ^ (long)q * 2654435761u);
	buf_printf(out, "%lld.M%06ldP%ldQ%luR%08x.%s", (long long)ts.tv_sec, ts.tv_nsec / 1000, (long)getpid(), q,
	    (unsigned)r, hostname);
}

/* --- ,S= ,W= and :2, -------------------------------------------------------- */

static bool
parse_field(const char *base, size_t blen, const char *key, uint64_t *v)
{
	const char *p = base, *end = base + blen;
	size_t klen = strlen(key);
	/* memchr for the ',' the keys start with, not memmem: names are short
	 * and a sync parses 10,000 of them (memmem was a quarter of it) */
	while ((p = memchr(p, key[0], (size_t)(end - p))) != NULL) {
		if ((size_t)(end - p) < klen || memcmp(p, key, klen) != 0) {
			p++;
			continue;
		}
		const char *d = p + klen;
		uint64_t x = 0;
		const char *q = d;
		while (q < end && *q >= '0' && *q <= '9' && q - d < 20) {
			uint64_t nx = x * 10 + (uint64_t)(*q - '0');
			if (nx / 10 != x)
				break;
			x = nx;
			q++;
		}
		if (q > d && (q == end || *q == ',')) {
			*v = x;
			return true;
		}
		p = d;
	}
	return false;
}

void
maildir_parse_filename(const char *name, struct maildir_info *info)
{
	memset(info, 0, sizeof *info);
	const char *colon = strchr(name, ':');
	size_t blen = colon ? (size_t)(colon - name) : strlen(name);
	info->has_size = parse_field(name, blen, ",S=", &info->size);
	info->has_vsize = parse_field(name, blen, ",W=", &info->vsize);
	if (colon && strncmp(colon, ":2,", 3) == 0) {
		for (const char *p = colon + 3; *p; p++) {
			if (*p >= 'A' && *p <= 'Z')
				info->flags |= HK_STORE_FLAG(*p);
			else if (*p >= 'a' && *p <= 'z')
				info->kw |= 1u << (*p - 'a');
		}
	}
}

void
maildir_info_append(struct hk_buf *out, uint32_t flags, uint32_t kw)
{
	buf_adds(out, ":2,");
	for (int c = 0; c < 26; c++)
		if (flags & (1u << c))
			buf_addc(out, (char)('A' + c));
	for (int c = 0; c < 26; c++)
		if (kw & (1u << c))
			buf_addc(out, (char)('a' + c));
}
