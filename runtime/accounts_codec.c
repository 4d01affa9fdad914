/*
 * accounts_codec.c - the stored form of accounts records.
 *
 * A record is:  type (1 byte: 'D' 'U' 'A' 'P' 'M') | format version (1) |
 * fields, each  tag (1) | length (2, big-endian) | value.  Numbers are
 * big-endian, 4 bytes (u32) or 8 bytes (i64); strings carry no NUL.
 * Tags below 0x80 are critical: a reader that does not know one refuses
 * the record; tags from 0x80 on are optional and skipped. A newer format
 * that old readers must not misread bumps the version byte.
 *
 * SECURITY: records come from disk. Every length is checked against what
 * is left and against the field's own limit before anything is copied;
 * every field is checked for syntax (the same rules as new input);
 * duplicates and missing required fields are errors. The result is -1
 * with a reason, never a crash: see the mutation loop in test_accounts.c.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "accounts_be.h"

/* --- writing --------------------------------------------------------------------------- */

static void
put_header(struct hk_buf *b, char type)
{
	buf_reset(b);
	buf_addc(b, type);
	buf_addc(b, (char)ACCT_FORMAT_VERSION);
}

static void
put_field(struct hk_buf *b, uint8_t tag, const void *v, size_t n)
{
	uint8_t h[3] = { tag, (uint8_t)(n >> 8), (uint8_t)n };
	buf_add(b, h, 3);
	buf_add(b, v, n);
}

static void
put_str(struct hk_buf *b, uint8_t tag, const char *s)
{
	if (s[0])
		put_field(b, tag, s, strlen(s));
}

static void
put_u32(struct hk_buf *b, uint8_t tag, uint32_t v)
{
	uint8_t x[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };
	put_field(b, tag, x, 4);
}

static void
put_i64(struct hk_buf *b, uint8_t tag, int64_t sv)
{
	uint64_t v = (uint64_t)sv;
	uint8_t x[8];
	for (int i = 0; i < 8; i++)
		x[i] = (uint8_t)(v >> (56 - 8 * i));
	put_field(b, tag, x, 8);
}

enum { D_NAME = 1, D_PLAN, D_FLAGS, D_MAXSIZE, D_CERT, D_KEY, D_CATCHALL, D_CREATED };
enum { U_LOCAL = 1, U_DOMAIN, U_PLAN, U_QUOTA, U_FLAGS, U_CREATED, U_PWCHANGED, U_PWHASH, U_SCRAM, U_LEGACY };
enum { A_LOCAL = 1, A_DOMAIN, A_TARGET };
enum {
	P_NAME = 1, P_QUOTA, P_MAXSIZE, P_RETENTION, P_STRICT, P_FORWARD, P_LISTS, P_MEMBERS, P_MEMBERS_MAX,
	P_LIST_MAXSIZE, P_LIST_ATTACH
};
enum { M_SCHEMA = 1, M_GENERATION };

void
acct_encode_domain(const struct hk_domain *d, struct hk_buf *b)
{
	put_header(b, 'D');
	put_str(b, D_NAME, d->name);
	put_str(b, D_PLAN, d->plan);
	put_u32(b, D_FLAGS, d->flags);
	put_i64(b, D_MAXSIZE, d->max_message_size);
	put_str(b, D_CERT, d->cert_path);
	put_str(b, D_KEY, d->key_path);
	put_str(b, D_CATCHALL, d->catchall);
	put_i64(b, D_CREATED, d->created);
}

void
acct_encode_user(const struct hk_user *u, struct hk_buf *b)
{
	put_header(b, 'U');
	put_str(b, U_LOCAL, u->local);
	put_str(b, U_DOMAIN, u->domain);
	put_str(b, U_PLAN, u->plan);
	put_i64(b, U_QUOTA, u->quota);
	put_u32(b, U_FLAGS, u->flags);
	put_i64(b, U_CREATED, u->created);
	put_i64(b, U_PWCHANGED, u->pw_changed);
	put_str(b, U_PWHASH, u->pw_hash);
	if (u->has_scram) {
		const struct hk_scram_keys *k = &u->scram;
		uint8_t v[4 + 1 + HK_SCRAM_SALT_MAX + 2 * HK_SCRAM_KEY_LEN];
		size_t n = 0;
		v[n++] = (uint8_t)(k->iterations >> 24);
		v[n++] = (uint8_t)(k->iterations >> 16);
		v[n++] = (uint8_t)(k->iterations >> 8);
		v[n++] = (uint8_t)k->iterations;
		v[n++] = k->salt_len;
		memcpy(v + n, k->salt, k->salt_len);
		n += k->salt_len;
		memcpy(v + n, k->stored_key, HK_SCRAM_KEY_LEN);
		n += HK_SCRAM_KEY_LEN;
		memcpy(v + n, k->server_key, HK_SCRAM_KEY_LEN);
		n += HK_SCRAM_KEY_LEN;
		put_field(b, U_SCRAM, v, n);
	}
	if (u->legacy_len)
		put_field(b, U_LEGACY, u->legacy, u->legacy_len);
}

void
acct_encode_alias(const struct hk_alias *al, struct hk_buf *b)
{
	put_header(b, 'A');
	put_str(b, A_LOCAL, al->local);
	put_str(b, A_DOMAIN, al->domain);
	for (uint32_t i = 0; i < al->n_targets && i < HK_ALIAS_MAX_TARGETS; i++)
		put_str(b, A_TARGET, al->targets[i]);
}

void
acct_encode_plan(const struct hk_plan *p, struct hk_buf *b)
{
	put_header(b, 'P');
	put_str(b, P_NAME, p->name);
	put_i64(b, P_QUOTA, p->quota);
	put_i64(b, P_MAXSIZE, p->max_message_size);
	put_i64(b, P_RETENTION, p->retention_days);
	put_u32(b, P_STRICT, p->strict_retention);
	put_u32(b, P_FORWARD, p->max_forward);
	put_u32(b, P_LISTS, p->max_lists);
	put_u32(b, P_MEMBERS, p->list_members);
	put_u32(b, P_MEMBERS_MAX, p->list_members_max);
	put_i64(b, P_LIST_MAXSIZE, p->list_max_message_size);
	put_u32(b, P_LIST_ATTACH, p->list_attachments);
}

void
acct_encode_meta(const struct acct_meta *m, struct hk_buf *b)
{
	put_header(b, 'M');
	put_u32(b, M_SCHEMA, m->schema);
	put_i64(b, M_GENERATION, (int64_t)m->generation);
}

/* --- reading ---------------------------------------------------------------------------- */

struct reader {
	const uint8_t *p;
	size_t n, off;
	uint64_t seen[4]; /* tags seen (256 bits) */
	char *why;
	size_t whylen;
};

static int rfail(struct reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
rfail(struct reader *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->why, r->whylen, fmt, ap);
	va_end(ap);
	return -1;
}

static int
start(struct reader *r, const uint8_t *p, size_t n, char type, char *why, size_t whylen)
{
	memset(r, 0, sizeof(*r));
	r->p = p;
	r->n = n;
	r->off = 2;
	r->why = why;
	r->whylen = whylen;
	if (n > HK_ACCT_RECORD_MAX)
		return rfail(r, "record too long");
	if (n < 2 || p[0] != (uint8_t)type)
		return rfail(r, "not a record of this kind");
	if (p[1] != ACCT_FORMAT_VERSION)
		return rfail(r, "unknown record format version %u", p[1]);
	return 0;
}

/* The next field: 1 with tag/value, 0 at the end, -1 on damage. */
static int
next(struct reader *r, unsigned *tag, const uint8_t **v, size_t *vlen, bool repeatable)
{
	for (;;) {
		if (r->off == r->n)
			return 0;
		if (r->n - r->off < 3)
			return rfail(r, "truncated field header");
		*tag = r->p[r->off];
		size_t len = (size_t)r->p[r->off + 1] << 8 | r->p[r->off + 2];
		if (r->n - r->off - 3 < len)
			return rfail(r, "field %u runs past the end of the record", *tag);
		*v = r->p + r->off + 3;
		*vlen = len;
		r->off += 3 + len;
		uint64_t bit = (uint64_t)1 << (*tag & 63);
		bool dup = (r->seen[*tag >> 6] & bit) != 0;
		r->seen[*tag >> 6] |= bit;
		if (*tag >= 0x80)
			continue; /* optional field of a newer writer */
		if (dup && !repeatable)
			return rfail(r, "field %u appears twice", *tag);
		return 1;
	}
}

static bool
seen(const struct reader *r, unsigned tag)
{
	return (r->seen[tag >> 6] & ((uint64_t)1 << (tag & 63))) != 0;
}

static int
get_str(struct reader *r, unsigned tag, const uint8_t *v, size_t n, char *out, size_t cap)
{
	if (n + 1 > cap)
		return rfail(r, "field %u too long", tag);
	if (memchr(v, '\0', n))
		return rfail(r, "field %u contains NUL", tag);
	memcpy(out, v, n);
	out[n] = '\0';
	return 0;
}

static int
get_u32(struct reader *r, unsigned tag, const uint8_t *v, size_t n, uint32_t *out)
{
	if (n != 4)
		return rfail(r, "field %u: number of the wrong size", tag);
	*out = (uint32_t)v[0] << 24 | (uint32_t)v[1] << 16 | (uint32_t)v[2] << 8 | v[3];
	return 0;
}

static int
get_i64(struct reader *r, unsigned tag, const uint8_t *v, size_t n, int64_t *out, bool nonneg)
{
	if (n != 8)
		return rfail(r, "field %u: number of the wrong size", tag);
	uint64_t x = 0;
	for (int i = 0; i < 8; i++)
		x = x << 8 | v[i];
	*out = (int64_t)x;
	if (nonneg && *out < 0)
		return rfail(r, "field %u: negative", tag);
	return 0;
}

static bool
printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7F)
			return false;
	return true;
}

static bool
crypt_string_ok(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7F || *s == ':')
			return false;
	return true;
}

int
acct_decode_domain(const uint8_t *p, size_t n, struct hk_domain *d, char *why, size_t whylen)
{
	struct reader r;
	hk_domain_init(d);
	d->plan[0] = '\0';
	if (start(&r, p, n, 'D', why, whylen) < 0)
		return -1;
	unsigned tag;
	const uint8_t *v;
	size_t vl;
	int rc;
	while ((rc = next(&r, &tag, &v, &vl, false)) > 0) {
		int e = 0;
		switch (tag) {
		case D_NAME: e = get_str(&r, tag, v, vl, d->name, sizeof(d->name)); break;
		case D_PLAN: e = get_str(&r, tag, v, vl, d->plan, sizeof(d->plan)); break;
		case D_FLAGS: e = get_u32(&r, tag, v, vl, &d->flags); break;
		case D_MAXSIZE: e = get_i64(&r, tag, v, vl, &d->max_message_size, true); break;
		case D_CERT: e = get_str(&r, tag, v, vl, d->cert_path, sizeof(d->cert_path)); break;
		case D_KEY: e = get_str(&r, tag, v, vl, d->key_path, sizeof(d->key_path)); break;
		case D_CATCHALL: e = get_str(&r, tag, v, vl, d->catchall, sizeof(d->catchall)); break;
		case D_CREATED: e = get_i64(&r, tag, v, vl, &d->created, false); break;
		default: return rfail(&r, "unknown field %u", tag);
		}
		if (e < 0)
			return -1;
	}
	if (rc < 0)
		return -1;
	if (!seen(&r, D_NAME) || !acct_valid_domain(d->name))
		return rfail(&r, "missing or invalid domain name");
	if (d->plan[0] && !acct_valid_plan_name(d->plan))
		return rfail(&r, "invalid plan name");
	if (!printable(d->cert_path) || !printable(d->key_path))
		return rfail(&r, "control characters in a certificate path");
	if (d->catchall[0] && !acct_valid_address(d->catchall))
		return rfail(&r, "invalid catch-all address");
	if (!d->plan[0])
		snprintf(d->plan, sizeof(d->plan), "%s", HK_PLAN_DEFAULT);
	return 0;
}

int
acct_decode_user(const uint8_t *p, size_t n, struct hk_user *u, char *why, size_t whylen)
{
	struct reader r;
	hk_user_init(u);
	if (start(&r, p, n, 'U', why, whylen) < 0)
		return -1;
	unsigned tag;
	const uint8_t *v;
	size_t vl;
	int rc;
	while ((rc = next(&r, &tag, &v, &vl, false)) > 0) {
		int e = 0;
		switch (tag) {
		case U_LOCAL: e = get_str(&r, tag, v, vl, u->local, sizeof(u->local)); break;
		case U_DOMAIN: e = get_str(&r, tag, v, vl, u->domain, sizeof(u->domain)); break;
		case U_PLAN: e = get_str(&r, tag, v, vl, u->plan, sizeof(u->plan)); break;
		case U_QUOTA: e = get_i64(&r, tag, v, vl, &u->quota, true); break;
		case U_FLAGS: e = get_u32(&r, tag, v, vl, &u->flags); break;
		case U_CREATED: e = get_i64(&r, tag, v, vl, &u->created, false); break;
		case U_PWCHANGED: e = get_i64(&r, tag, v, vl, &u->pw_changed, false); break;
		case U_PWHASH: e = get_str(&r, tag, v, vl, u->pw_hash, sizeof(u->pw_hash)); break;
		case U_SCRAM: {
			struct hk_scram_keys *k = &u->scram;
			if (vl < 5)
				return rfail(&r, "field %u truncated", tag);
			k->iterations = (uint32_t)v[0] << 24 | (uint32_t)v[1] << 16 | (uint32_t)v[2] << 8 | v[3];
			k->salt_len = v[4];
			if (k->salt_len < HK_SCRAM_SALT_MIN || k->salt_len > HK_SCRAM_SALT_MAX ||
			    vl != 5 + (size_t)k->salt_len + 2 * HK_SCRAM_KEY_LEN)
				return rfail(&r, "field %u: bad SCRAM salt length", tag);
			memcpy(k->salt, v + 5, k->salt_len);
			memcpy(k->stored_key, v + 5 + k->salt_len, HK_SCRAM_KEY_LEN);
			memcpy(k->server_key, v + 5 + k->salt_len + HK_SCRAM_KEY_LEN, HK_SCRAM_KEY_LEN);
			if (!hk_scram_keys_valid(k))
				return rfail(&r, "field %u: SCRAM iteration count out of range", tag);
			u->has_scram = true;
			break;
		}
		case U_LEGACY:
			if (vl == 0 || vl > HK_LEGACY_BLOB_MAX)
				return rfail(&r, "field %u: bad legacy secret length", tag);
			memcpy(u->legacy, v, vl);
			u->legacy_len = (uint16_t)vl;
			break;
		default: return rfail(&r, "unknown field %u", tag);
		}
		if (e < 0)
			return -1;
	}
	if (rc < 0)
		return -1;
	if (!seen(&r, U_LOCAL) || !acct_valid_local(u->local, true))
		return rfail(&r, "missing or invalid local part");
	if (!seen(&r, U_DOMAIN) || !acct_valid_domain(u->domain))
		return rfail(&r, "missing or invalid domain");
	if (u->plan[0] && !acct_valid_plan_name(u->plan))
		return rfail(&r, "invalid plan name");
	if (!crypt_string_ok(u->pw_hash))
		return rfail(&r, "invalid password hash");
	acct_join_address(u->address, sizeof(u->address), u->local, u->domain);
	if (strlen(u->local) + 1 + strlen(u->domain) > HK_ADDRESS_MAX)
		return rfail(&r, "address too long");
	return 0;
}

int
acct_decode_alias(const uint8_t *p, size_t n, struct hk_alias *al, char *why, size_t whylen)
{
	struct reader r;
	hk_alias_init(al);
	if (start(&r, p, n, 'A', why, whylen) < 0)
		return -1;
	unsigned tag;
	const uint8_t *v;
	size_t vl;
	int rc;
	while ((rc = next(&r, &tag, &v, &vl, true)) > 0) {
		int e = 0;
		switch (tag) {
		case A_LOCAL:
		case A_DOMAIN:
			/* repeatable only for targets */
			if ((tag == A_LOCAL && al->local[0]) || (tag == A_DOMAIN && al->domain[0]))
				return rfail(&r, "field %u appears twice", tag);
			e = tag == A_LOCAL ? get_str(&r, tag, v, vl, al->local, sizeof(al->local))
			                   : get_str(&r, tag, v, vl, al->domain, sizeof(al->domain));
			if (e == 0 && vl == 0)
				return rfail(&r, "field %u empty", tag);
			break;
		case A_TARGET:
			if (al->n_targets >= HK_ALIAS_MAX_TARGETS)
				return rfail(&r, "more than %u targets", HK_ALIAS_MAX_TARGETS);
			e = get_str(&r, tag, v, vl, al->targets[al->n_targets], sizeof(al->targets[0]));
			if (e == 0 && !acct_valid_address(al->targets[al->n_targets]))
				return rfail(&r, "field %u: invalid target address", tag);
			al->n_targets++;
			break;
		default: return rfail(&r, "unknown field %u", tag);
		}
		if (e < 0)
			return -1;
	}
	if (rc < 0)
		return -1;
	if (!acct_valid_local(al->local, true) || !acct_valid_domain(al->domain))
		return rfail(&r, "missing or invalid alias address");
	if (strlen(al->local) + 1 + strlen(al->domain) > HK_ADDRESS_MAX)
		return rfail(&r, "address too long");
	acct_join_address(al->address, sizeof(al->address), al->local, al->domain);
	return 0;
}

int
acct_decode_plan(const uint8_t *p, size_t n, struct hk_plan *pl, char *why, size_t whylen)
{
	struct reader r;
	memset(pl, 0, sizeof(*pl));
	if (start(&r, p, n, 'P', why, whylen) < 0)
		return -1;
	unsigned tag;
	const uint8_t *v;
	size_t vl;
	int rc;
	uint32_t strict = 0, attach = 0;
	while ((rc = next(&r, &tag, &v, &vl, false)) > 0) {
		int e = 0;
		switch (tag) {
		case P_NAME: e = get_str(&r, tag, v, vl, pl->name, sizeof(pl->name)); break;
		case P_QUOTA: e = get_i64(&r, tag, v, vl, &pl->quota, true); break;
		case P_MAXSIZE: e = get_i64(&r, tag, v, vl, &pl->max_message_size, true); break;
		case P_RETENTION: e = get_i64(&r, tag, v, vl, &pl->retention_days, true); break;
		case P_STRICT: e = get_u32(&r, tag, v, vl, &strict); break;
		case P_FORWARD: e = get_u32(&r, tag, v, vl, &pl->max_forward); break;
		case P_LISTS: e = get_u32(&r, tag, v, vl, &pl->max_lists); break;
		case P_MEMBERS: e = get_u32(&r, tag, v, vl, &pl->list_members); break;
		case P_MEMBERS_MAX: e = get_u32(&r, tag, v, vl, &pl->list_members_max); break;
		case P_LIST_MAXSIZE: e = get_i64(&r, tag, v, vl, &pl->list_max_message_size, true); break;
		case P_LIST_ATTACH: e = get_u32(&r, tag, v, vl, &attach); break;
		default: return rfail(&r, "unknown field %u", tag);
		}
		if (e < 0)
			return -1;
	}
	if (rc < 0)
		return -1;
	if (!acct_valid_plan_name(pl->name))
		return rfail(&r, "missing or invalid plan name");
	if (pl->retention_days > 100000)
		return rfail(&r, "retention out of range");
	pl->strict_retention = strict != 0;
	pl->list_attachments = attach != 0;
	return 0;
}

int
acct_decode_meta(const uint8_t *p, size_t n, struct acct_meta *m, char *why, size_t whylen)
{
	struct reader r;
	memset(m, 0, sizeof(*m));
	if (start(&r, p, n, 'M', why, whylen) < 0)
		return -1;
	unsigned tag;
	const uint8_t *v;
	size_t vl;
	int rc;
	int64_t gen = 0;
	while ((rc = next(&r, &tag, &v, &vl, false)) > 0) {
		int e = 0;
		switch (tag) {
		case M_SCHEMA: e = get_u32(&r, tag, v, vl, &m->schema); break;
		case M_GENERATION: e = get_i64(&r, tag, v, vl, &gen, true); break;
		default: return rfail(&r, "unknown field %u", tag);
		}
		if (e < 0)
			return -1;
	}
	if (rc < 0)
		return -1;
	if (!seen(&r, M_SCHEMA) || !seen(&r, M_GENERATION))
		return rfail(&r, "incomplete meta record");
	if (m->schema != ACCT_SCHEMA_VERSION)
		return rfail(&r, "unknown schema version %u", m->schema);
	m->generation = (uint64_t)gen;
	return 0;
}
