/*
 * accounts.c - the accounts store above its back end: plans, domains,
 * users, aliases, credentials, and the questions the servers ask. See
 * accounts.h for the interface and accounts_be.h for the key layout.
 *
 * Every public read starts by letting the back end pick up a newer file
 * (one stat(2) for GDBM), then works on that one version. Writes outside
 * an explicit transaction run in their own.
 *
 * SECURITY: addresses from clients are normalised before they become keys;
 * records read back are decoded with bounds checks (accounts_codec.c);
 * secrets are compared in constant time and wiped after use.
 */
#include <stdarg.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>

#include "accounts.h"
#include "accounts_be.h"
#include "password.h"
#include "scram.h"
#include "secretbox.h"

/* --- status and errors ---------------------------------------------------------------- */

const char *
hk_acct_status_str(enum hk_acct_status st)
{
	switch (st) {
	case HK_ACCT_OK: return "ok";
	case HK_ACCT_NOTFOUND: return "not found";
	case HK_ACCT_EXISTS: return "already exists";
	case HK_ACCT_INVALID: return "invalid";
	case HK_ACCT_NODOMAIN: return "domain not hosted";
	case HK_ACCT_NOTEMPTY: return "still in use";
	case HK_ACCT_LIMIT: return "limit reached";
	case HK_ACCT_BUSY: return "busy";
	case HK_ACCT_CORRUPT: return "damaged";
	case HK_ACCT_IO: return "system error";
	case HK_ACCT_INSECURE: return "insecure file";
	}
	return "?";
}

void
acct_set_error(struct hk_accounts *a, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(a->err, sizeof(a->err), fmt, ap);
	va_end(ap);
}

void
acct_printable(char *out, size_t cap, const char *key, size_t klen)
{
	size_t o = 0;
	for (size_t i = 0; i < klen && o + 5 < cap; i++) {
		unsigned char c = (unsigned char)key[i];
		if (c < 0x20 || c >= 0x7F)
			o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
		else
			out[o++] = (char)c;
	}
	if (cap)
		out[o < cap ? o : cap - 1] = '\0';
}

const char *
hk_accounts_error(const struct hk_accounts *a)
{
	return a->err;
}

static enum hk_acct_status
fail(struct hk_accounts *a, enum hk_acct_status st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static enum hk_acct_status
fail(struct hk_accounts *a, enum hk_acct_status st, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(a->err, sizeof(a->err), fmt, ap);
	va_end(ap);
	return st;
}

/* --- records: init, keys ----------------------------------------------------------------- */

void
hk_domain_init(struct hk_domain *d)
{
	memset(d, 0, sizeof(*d));
	snprintf(d->plan, sizeof(d->plan), "%s", HK_PLAN_DEFAULT);
}

void
hk_user_init(struct hk_user *u)
{
	memset(u, 0, sizeof(*u));
}

void
hk_alias_init(struct hk_alias *al)
{
	memset(al, 0, sizeof(*al));
}

static size_t
key2(char *out, size_t cap, char kind, const char *local, const char *domain)
{
	int n = snprintf(out, cap, "%c:%s/", kind, domain);
	if (n < 0 || (size_t)n >= cap)
		return 0;
	size_t o = (size_t)n;
	for (size_t i = 0; local[i] && o + 1 < cap; i++)
		out[o++] = ascii_lower(local[i]);
	out[o] = '\0';
	return o;
}

size_t
acct_key_domain(char *out, size_t cap, const char *domain)
{
	int n = snprintf(out, cap, "d:%s", domain);
	return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

size_t
acct_key_user(char *out, size_t cap, const char *local, const char *domain)
{
	return key2(out, cap, 'u', local, domain);
}

size_t
acct_key_alias(char *out, size_t cap, const char *local, const char *domain)
{
	return key2(out, cap, 'a', local, domain);
}

size_t
acct_key_plan(char *out, size_t cap, const char *name)
{
	int n = snprintf(out, cap, "p:%s", name);
	return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

static bool
key_is(const char *key, size_t klen, const char *prefix)
{
	size_t pl = strlen(prefix);
	return klen >= pl && memcmp(key, prefix, pl) == 0;
}

bool
acct_record_valid(const char *key, size_t klen, const uint8_t *val, size_t vlen, char *why, size_t whylen)
{
	char k[ACCT_KEY_MAX + 1];
	if (klen == 1 && key[0] == 'm') {
		struct acct_meta m;
		return acct_decode_meta(val, vlen, &m, why, whylen) == 0;
	}
	if (key_is(key, klen, "d:")) {
		struct hk_domain d;
		if (acct_decode_domain(val, vlen, &d, why, whylen) < 0)
			return false;
		size_t n = acct_key_domain(k, sizeof(k), d.name);
		if (n != klen || memcmp(k, key, n) != 0) {
			snprintf(why, whylen, "record does not match its key");
			return false;
		}
		return true;
	}
	if (key_is(key, klen, "u:")) {
		struct hk_user *u = xmalloc(sizeof(*u));
		bool ok = acct_decode_user(val, vlen, u, why, whylen) == 0;
		if (ok) {
			size_t n = acct_key_user(k, sizeof(k), u->local, u->domain);
			ok = n == klen && memcmp(k, key, n) == 0;
			if (!ok)
				snprintf(why, whylen, "record does not match its key");
		}
		OPENSSL_cleanse(u, sizeof(*u));
		free(u);
		return ok;
	}
	if (key_is(key, klen, "a:")) {
		struct hk_alias *al = xmalloc(sizeof(*al));
		bool ok = acct_decode_alias(val, vlen, al, why, whylen) == 0;
		if (ok) {
			size_t n = acct_key_alias(k, sizeof(k), al->local, al->domain);
			ok = n == klen && memcmp(k, key, n) == 0;
			if (!ok)
				snprintf(why, whylen, "record does not match its key");
		}
		free(al);
		return ok;
	}
	if (key_is(key, klen, "p:")) {
		struct hk_plan p;
		if (acct_decode_plan(val, vlen, &p, why, whylen) < 0)
			return false;
		size_t n = acct_key_plan(k, sizeof(k), p.name);
		if (n != klen || memcmp(k, key, n) != 0) {
			snprintf(why, whylen, "record does not match its key");
			return false;
		}
		return true;
	}
	snprintf(why, whylen, "unknown key");
	return false;
}

/* --- plans ------------------------------------------------------------------------------------ */

#define MiB (1024LL * 1024)
#define GiB (1024LL * MiB)

/*
 * The built-in plans, modelled on the reference service's levels: the
 * entry and light plans delete mail after the retention period even when
 * it is flagged (its "エントリー"/"ライト" note); every plan has 10 forward
 * targets per address, 5 mailing lists of 50 members (250 with the paid
 * option) and 8 MB list messages with attachments off by default.
 * Quotas and message sizes are our choice (the reference's table of them
 * is not in the text we have); see doc notes in the report.
 */
static const struct hk_plan builtin_plans[] = {
	{ "business", 100 * GiB, 100 * MiB, 0, false, 10, 5, 50, 250, 8 * MiB, false, true },
	{ "entry", 1 * GiB, 10 * MiB, 90, true, 10, 5, 50, 250, 8 * MiB, false, true },
	{ "light", 5 * GiB, 20 * MiB, 90, true, 10, 5, 50, 250, 8 * MiB, false, true },
	{ "standard", 20 * GiB, 50 * MiB, 365, false, 10, 5, 50, 250, 8 * MiB, false, true },
};

const struct hk_plan *
hk_plan_builtin(const char *name)
{
	for (size_t i = 0; i < HK_ARRAY_LEN(builtin_plans); i++)
		if (strcmp(builtin_plans[i].name, name) == 0)
			return &builtin_plans[i];
	return NULL;
}

/* --- opening ------------------------------------------------------------------------------------ */

static void
take_config(struct hk_accounts *a, const struct hk_accounts_config *cfg)
{
	if (cfg)
		a->cfg = *cfg;
	a->path = cfg && cfg->path ? xstrdup(cfg->path) : NULL;
	a->key_path = cfg && cfg->key_path ? xstrdup(cfg->key_path) : NULL;
	a->cfg.path = a->path;
	a->cfg.key_path = a->key_path;
	if (a->cfg.scram_iterations == 0)
		a->cfg.scram_iterations = HK_SCRAM_ITERATIONS_DEFAULT;
}

enum hk_acct_status
hk_accounts_open_gdbm(const struct hk_accounts_config *cfg, struct hk_accounts **a_r, char *err, size_t errlen)
{
	*a_r = NULL;
	if (cfg == NULL || cfg->path == NULL || cfg->path[0] == '\0') {
		snprintf(err, errlen, "no accounts file given");
		return HK_ACCT_INVALID;
	}
	if (cfg->scram_iterations && (cfg->scram_iterations < HK_SCRAM_ITER_MIN || cfg->scram_iterations > HK_SCRAM_ITER_MAX)) {
		snprintf(err, errlen, "SCRAM iteration count out of range (%u..%u)", HK_SCRAM_ITER_MIN, HK_SCRAM_ITER_MAX);
		return HK_ACCT_INVALID;
	}
	struct hk_accounts *a = acct_gdbm_new(cfg);
	take_config(a, cfg);
	*a_r = a;
	(void)err;
	return HK_ACCT_OK;
}

struct hk_accounts *
hk_accounts_open_mem(const struct hk_accounts_config *cfg)
{
	struct hk_accounts *a = acct_mem_new(cfg);
	take_config(a, cfg);
	return a;
}

void
hk_accounts_close(struct hk_accounts **ap)
{
	struct hk_accounts *a = *ap;
	if (a == NULL)
		return;
	if (a->in_txn)
		hk_accounts_abort(a);
	a->ops->close(a);
	hk_secretbox_free(&a->box);
	free(a->path);
	free(a->key_path);
	free(a);
	*ap = NULL;
}

/* Picks up a newer committed file before a read (not inside a transaction). */
static enum hk_acct_status
fresh(struct hk_accounts *a)
{
	a->err[0] = '\0';
	if (a->in_txn)
		return HK_ACCT_OK;
	return a->ops->refresh(a, NULL);
}

static enum hk_acct_status
read_meta(struct hk_accounts *a, struct acct_meta *m)
{
	struct hk_buf b;
	buf_init(&b);
	memset(m, 0, sizeof(*m));
	enum hk_acct_status st = a->ops->get(a, "m", 1, &b);
	if (st == HK_ACCT_OK) {
		char why[128];
		if (acct_decode_meta((const uint8_t *)b.data, b.len, m, why, sizeof(why)) < 0)
			st = fail(a, HK_ACCT_CORRUPT, "meta record: %s", why);
	}
	buf_fini(&b);
	return st;
}

uint64_t
hk_accounts_generation(struct hk_accounts *a)
{
	struct acct_meta m;
	if (fresh(a) != HK_ACCT_OK || read_meta(a, &m) != HK_ACCT_OK)
		return 0;
	return m.generation;
}

enum hk_acct_status
hk_accounts_refresh(struct hk_accounts *a, bool *changed_r)
{
	enum hk_acct_status st = fresh(a);
	if (st != HK_ACCT_OK)
		return st;
	struct acct_meta m;
	st = read_meta(a, &m);
	if (st == HK_ACCT_NOTFOUND) {
		m.generation = 0;
		st = HK_ACCT_OK;
	}
	if (changed_r)
		*changed_r = m.generation != a->seen_generation;
	a->seen_generation = m.generation;
	return st;
}

/* --- transactions ----------------------------------------------------------------------------------- */

enum hk_acct_status
hk_accounts_begin(struct hk_accounts *a)
{
	a->err[0] = '\0';
	if (a->in_txn)
		return fail(a, HK_ACCT_INVALID, "a transaction is already open");
	enum hk_acct_status st = a->ops->begin(a);
	if (st == HK_ACCT_OK)
		a->in_txn = true;
	return st;
}

enum hk_acct_status
hk_accounts_commit(struct hk_accounts *a)
{
	if (!a->in_txn)
		return fail(a, HK_ACCT_INVALID, "no transaction is open");
	struct acct_meta m;
	enum hk_acct_status st = read_meta(a, &m);
	if (st == HK_ACCT_NOTFOUND)
		m.generation = 0; /* the first commit */
	else if (st != HK_ACCT_OK)
		m.generation = (uint64_t)time(NULL); /* damaged: start again above any old value */
	m.schema = ACCT_SCHEMA_VERSION;
	m.generation++;
	struct hk_buf b;
	buf_init(&b);
	acct_encode_meta(&m, &b);
	st = a->ops->put(a, "m", 1, b.data, b.len);
	buf_fini(&b);
	if (st != HK_ACCT_OK) {
		hk_accounts_abort(a);
		return st;
	}
	st = a->ops->commit(a);
	a->in_txn = false;
	return st;
}

void
hk_accounts_abort(struct hk_accounts *a)
{
	if (!a->in_txn)
		return;
	a->ops->abort(a);
	a->in_txn = false;
}

/* A write outside a transaction gets its own. */
static enum hk_acct_status
wbegin(struct hk_accounts *a, bool *own)
{
	a->err[0] = '\0';
	*own = false;
	if (a->in_txn)
		return HK_ACCT_OK;
	enum hk_acct_status st = hk_accounts_begin(a);
	*own = st == HK_ACCT_OK;
	return st;
}

static enum hk_acct_status
wend(struct hk_accounts *a, bool own, enum hk_acct_status st)
{
	if (!own)
		return st;
	if (st == HK_ACCT_OK)
		return hk_accounts_commit(a);
	char keep[sizeof(a->err)];
	memcpy(keep, a->err, sizeof(keep));
	hk_accounts_abort(a);
	memcpy(a->err, keep, sizeof(keep));
	return st;
}

/* --- record access ----------------------------------------------------------------------------------- */

static enum hk_acct_status
put_record(struct hk_accounts *a, const char *key, size_t klen, const struct hk_buf *b)
{
	if (b->len > HK_ACCT_RECORD_MAX)
		return fail(a, HK_ACCT_LIMIT, "record %s is too large (%zu bytes)", key, b->len);
	return a->ops->put(a, key, klen, b->data, b->len);
}

static enum hk_acct_status
get_domain(struct hk_accounts *a, const char *name, struct hk_domain *out)
{
	char k[ACCT_KEY_MAX + 1];
	size_t kl = acct_key_domain(k, sizeof(k), name);
	struct hk_buf b;
	buf_init(&b);
	enum hk_acct_status st = a->ops->get(a, k, kl, &b);
	if (st == HK_ACCT_OK) {
		char why[128];
		if (acct_decode_domain((const uint8_t *)b.data, b.len, out, why, sizeof(why)) < 0 ||
		    strcmp(out->name, name) != 0)
			st = fail(a, HK_ACCT_CORRUPT, "damaged record %s: %s", k, why[0] ? why : "name mismatch");
	} else if (st == HK_ACCT_NOTFOUND) {
		fail(a, st, "domain %s is not hosted here", name);
	}
	buf_fini(&b);
	return st;
}

static enum hk_acct_status
get_user(struct hk_accounts *a, const char *local, const char *domain, struct hk_user *out)
{
	char k[ACCT_KEY_MAX + 1];
	size_t kl = acct_key_user(k, sizeof(k), local, domain);
	struct hk_buf b;
	buf_init(&b);
	enum hk_acct_status st = a->ops->get(a, k, kl, &b);
	if (st == HK_ACCT_OK) {
		char why[128] = "";
		char k2[ACCT_KEY_MAX + 1];
		if (acct_decode_user((const uint8_t *)b.data, b.len, out, why, sizeof(why)) < 0 ||
		    acct_key_user(k2, sizeof(k2), out->local, out->domain) != kl || memcmp(k, k2, kl) != 0)
			st = fail(a, HK_ACCT_CORRUPT, "damaged record %s: %s", k, why[0] ? why : "address mismatch");
	} else if (st == HK_ACCT_NOTFOUND) {
		fail(a, st, "no user %s@%s", local, domain);
	}
	OPENSSL_cleanse(b.data, b.len);
	buf_fini(&b);
	return st;
}

static enum hk_acct_status
get_alias(struct hk_accounts *a, const char *local, const char *domain, struct hk_alias *out)
{
	char k[ACCT_KEY_MAX + 1];
	size_t kl = acct_key_alias(k, sizeof(k), local, domain);
	struct hk_buf b;
	buf_init(&b);
	enum hk_acct_status st = a->ops->get(a, k, kl, &b);
	if (st == HK_ACCT_OK) {
		char why[128] = "";
		char k2[ACCT_KEY_MAX + 1];
		if (acct_decode_alias((const uint8_t *)b.data, b.len, out, why, sizeof(why)) < 0 ||
		    acct_key_alias(k2, sizeof(k2), out->local, out->domain) != kl || memcmp(k, k2, kl) != 0)
			st = fail(a, HK_ACCT_CORRUPT, "damaged record %s: %s", k, why[0] ? why : "address mismatch");
	} else if (st == HK_ACCT_NOTFOUND) {
		fail(a, st, "no alias %s@%s", local, domain);
	}
	buf_fini(&b);
	return st;
}

static enum hk_acct_status
exists(struct hk_accounts *a, const char *key, size_t klen)
{
	struct hk_buf b;
	buf_init(&b);
	enum hk_acct_status st = a->ops->get(a, key, klen, &b);
	buf_fini(&b);
	return st;
}

static enum hk_acct_status
put_user(struct hk_accounts *a, const struct hk_user *u)
{
	char k[ACCT_KEY_MAX + 1];
	size_t kl = acct_key_user(k, sizeof(k), u->local, u->domain);
	struct hk_buf b;
	buf_init(&b);
	acct_encode_user(u, &b);
	enum hk_acct_status st = put_record(a, k, kl, &b);
	OPENSSL_cleanse(b.data, b.len);
	buf_fini(&b);
	return st;
}

/* --- plans (continued) --------------------------------------------------------------------------- */

static enum hk_acct_status
get_plan(struct hk_accounts *a, const char *name, struct hk_plan *out)
{
	char k[ACCT_KEY_MAX + 1];
	if (!acct_valid_plan_name(name))
		return fail(a, HK_ACCT_INVALID, "invalid plan name '%.40s' (a-z, 0-9, - and _, at most 32)", name);
	size_t kl = acct_key_plan(k, sizeof(k), name);
	struct hk_buf b;
	buf_init(&b);
	enum hk_acct_status st = a->ops->get(a, k, kl, &b);
	if (st == HK_ACCT_OK) {
		char why[128] = "";
		if (acct_decode_plan((const uint8_t *)b.data, b.len, out, why, sizeof(why)) < 0 ||
		    strcmp(out->name, name) != 0)
			st = fail(a, HK_ACCT_CORRUPT, "damaged record %s: %s", k, why[0] ? why : "name mismatch");
	} else if (st == HK_ACCT_NOTFOUND) {
		const struct hk_plan *bp = hk_plan_builtin(name);
		if (bp) {
			*out = *bp;
			st = HK_ACCT_OK;
		} else {
			fail(a, st, "no plan '%s'", name);
		}
	}
	buf_fini(&b);
	return st;
}

enum hk_acct_status
hk_accounts_plan_get(struct hk_accounts *a, const char *name, struct hk_plan *out)
{
	enum hk_acct_status st = fresh(a);
	return st != HK_ACCT_OK ? st : get_plan(a, name, out);
}

enum hk_acct_status
hk_accounts_plan_put(struct hk_accounts *a, const struct hk_plan *p)
{
	if (!acct_valid_plan_name(p->name))
		return fail(a, HK_ACCT_INVALID, "invalid plan name '%.40s' (a-z, 0-9, - and _, at most 32)", p->name);
	if (p->quota < 0 || p->max_message_size <= 0 || p->list_max_message_size < 0)
		return fail(a, HK_ACCT_INVALID, "plan %s: sizes must be positive", p->name);
	if (p->retention_days < 0 || p->retention_days > 100000)
		return fail(a, HK_ACCT_INVALID, "plan %s: retention out of range (0..100000 days)", p->name);
	if (p->max_forward > HK_ALIAS_MAX_TARGETS)
		return fail(a, HK_ACCT_INVALID, "plan %s: at most %d forward targets", p->name, HK_ALIAS_MAX_TARGETS);
	if (p->list_members > p->list_members_max)
		return fail(a, HK_ACCT_INVALID, "plan %s: list members above the maximum", p->name);
	bool own;
	enum hk_acct_status st = wbegin(a, &own);
	if (st != HK_ACCT_OK)
		return st;
	char k[ACCT_KEY_MAX + 1];
	size_t kl = acct_key_plan(k, sizeof(k), p->name);
	struct hk_buf b;
	buf_init(&b);
	struct hk_plan copy = *p;
	copy.builtin = false;
	acct_encode_plan(&copy, &b);
	st = put_record(a, k, kl, &b);
	buf_fini(&b);
	return wend(a, own, st);
}

struct plan_use_ctx {
	const char *name;
	size_t uses;
	char first[HK_ADDRESS_MAX + 3];
};

static int
plan_use_domain(void *vctx, const char *key, size_t klen, const uint8_t *v, size_t vl)
{
	struct plan_use_ctx *c = vctx;
	struct hk_domain d;
	char why[64];
	(void)key;
	(void)klen;
	if (acct_decode_domain(v, vl, &d, why, sizeof(why)) == 0 && strcmp(d.plan, c->name) == 0) {
		if (c->uses++ == 0)
			snprintf(c->first, sizeof(c->first), "%s", d.name);
	}
	return 0;
}

static int
plan_use_user(void *vctx, const char *key, size_t klen, const uint8_t *v, size_t vl)
{
	struct plan_use_ctx *c = vctx;
	struct hk_user *u = xmalloc(sizeof(*u));
	char why[64];
	(void)key;
	(void)klen;
	if (acct_decode_user(v, vl, u, why, sizeof(why)) == 0 && strcmp(u->plan, c->name) == 0) {
		if (c->uses++ == 0)
			snprintf(c->first, sizeof(c->first), "%s", u->address);
	}
	OPENSSL_cleanse(u, sizeof(*u));
	free(u);
	return 0;
}

enum hk_acct_status
hk_accounts_plan_del(struct hk_accounts *a, const char *name)
{
	if (!acct_valid_plan_name(name))
		return fail(a, HK_ACCT_INVALID, "invalid plan name '%.40s'", name);
	bool own;
	enum hk_acct_status st = wbegin(a, &own);
	if (st != HK_ACCT_OK)
		return st;
	char k[ACCT_KEY_MAX + 1];
	size_t kl = acct_key_plan(k, sizeof(k), name);
	st = exists(a, k, kl);
	if (st == HK_ACCT_NOTFOUND) {
		st = fail(a, st, hk_plan_builtin(name) ? "plan %s has its built-in values already" : "no plan '%s'", name);
	} else if (st == HK_ACCT_OK && !hk_plan_builtin(name)) {
		struct plan_use_ctx c = { name, 0, "" };
		st = a->ops->scan(a, "d:", plan_use_domain, &c);
		if (st == HK_ACCT_OK)
			st = a->ops->scan(a, "u:", plan_use_user, &c);
		if (st == HK_ACCT_OK && c.uses)
			st = fail(a, HK_ACCT_NOTEMPTY, "plan %s is used by %zu domain(s)/user(s), e.g. %s", name, c.uses,
			    c.first);
	}
	if (st == HK_ACCT_OK)
		st = a->ops->del(a, k, kl);
	return wend(a, own, st);
}

struct collect {
	struct hk_accounts *a;
	void *v;
	size_t n, cap, elsize;
	size_t bad;
	char first_bad[128];
	int kind;
};

static void
collect_bad(struct collect *c, const char *key, size_t klen, const char *why)
{
	if (c->bad++ == 0) {
		char pk[96];
		acct_printable(pk, sizeof(pk), key, klen);
		acct_set_error(c->a, "damaged record %s: %s", pk, why);
	}
}

static int
collect_plan(void *vctx, const char *key, size_t klen, const uint8_t *v, size_t vl)
{
	struct collect *c = vctx;
	c->v = xgrow(c->v, &c->cap, c->n + 1, c->elsize);
	struct hk_plan *p = (struct hk_plan *)c->v + c->n;
	char why[128];
	if (acct_decode_plan(v, vl, p, why, sizeof(why)) < 0)
		collect_bad(c, key, klen, why);
	else
		c->n++;
	return 0;
}

static int
cmp_plan(const void *x, const void *y)
{
	return strcmp(((const struct hk_plan *)x)->name, ((const struct hk_plan *)y)->name);
}

enum hk_acct_status
hk_accounts_plan_list(struct hk_accounts *a, struct hk_plan **v_r, size_t *n_r)
{
	*v_r = NULL;
	*n_r = 0;
	enum hk_acct_status st = fresh(a);
	if (st != HK_ACCT_OK)
		return st;
	struct collect c = { .a = a, .elsize = sizeof(struct hk_plan) };
	st = a->ops->scan(a, "p:", collect_plan, &c);
	if (st != HK_ACCT_OK) {
		free(c.v);
		return st;
	}
	for (size_t i = 0; i < HK_ARRAY_LEN(builtin_plans); i++) {
		bool stored = false;
		for (size_t j = 0; j < c.n; j++)
			if (strcmp(((struct hk_plan *)c.v)[j].name, builtin_plans[i].name) == 0)
				stored = true;
		if (!stored) {
			c.v = xgrow(c.v, &c.cap, c.n + 1, c.elsize);
			((struct hk_plan *)c.v)[c.n++] = builtin_plans[i];
		}
	}
	if (c.n > 1)
		qsort(c.v, c.n, c.elsize, cmp_plan);
	*v_r = c.v;
	*n_r = c.n;
	return c.bad ? HK_ACCT_CORRUPT : HK_ACCT_OK;
}

/* --- domains ---------------------------------------------------------------------------------------- */

static enum hk_acct_status
check_domain_fields(struct hk_accounts *a, struct hk_domain *d)
{
	struct hk_plan p;
	enum hk_acct_status st = get_plan(a, d->plan, &p);
	if (st != HK_ACCT_OK)
		return st;
	if (d->max_message_size < 0)
		return fail(a, HK_ACCT_INVALID, "domain %s: negative message size", d->name);
	for (const char *s = d->cert_path; *s; s++)
		if ((unsigned char)*s < 0x20)
			return fail(a, HK_ACCT_INVALID, "domain %s: control characters in the certificate path", d->name);
	for (const char *s = d->key_path; *s; s++)
		if ((unsigned char)*s < 0x20)
			return fail(a, HK_ACCT_INVALID, "domain %s: control characters in the key path", d->name);
	if ((d->cert_path[0] != '\0') != (d->key_path[0] != '\0'))
		return fail(a, HK_ACCT_INVALID, "domain %s: give both a certificate and a key, or neither", d->name);
	if (d->catchall[0]) {
		char l[HK_LOCAL_MAX + 1], dom[HK_DOMAIN_MAX + 1];
		st = hk_address_normalize(d->catchall, false, l, dom, a->err, sizeof(a->err));
		if (st != HK_ACCT_OK)
			return st;
		acct_join_address(d->catchall, sizeof(d->catchall), l, dom);
	}
	return HK_ACCT_OK;
}

enum hk_acct_status
hk_accounts_domain_add(struct hk_accounts *a, struct hk_domain *d)
{
	a->err[0] = '\0';
	char name[HK_DOMAIN_MAX + 1];
	enum hk_acct_status st = hk_domain_normalize(d->name, name, a->err, sizeof(a->err));
	if (st != HK_ACCT_OK)
		return st;
	memcpy(d->name, name, sizeof(name));
	if (d->plan[0] == '\0')
		snprintf(d->plan, sizeof(d->plan), "%s", HK_PLAN_DEFAULT);
	bool own;
	st = wbegin(a, &own);
	if (st != HK_ACCT_OK)
		return st;
	char k[ACCT_KEY_MAX + 1];
	size_t kl = acct_key_domain(k, sizeof(k), d->name);
	st = exists(a, k, kl);
	if (st == HK_ACCT_OK)
		st = fail(a, HK_ACCT_EXISTS, "domain %s is already hosted", d->name);
	else if (st == HK_ACCT_NOTFOUND)
		st = check_domain_fields(a, d);
	if (st == HK_ACCT_OK) {
		if (d->created == 0)
			d->created = (int64_t)time(NULL);
		struct hk_buf b;
		buf_init(&b);
		acct_encode_domain(d, &b);
		st = put_record(a, k, kl, &b);
		buf_fini(&b);
	}
	return wend(a, own, st);
}

struct keys_ctx {
	char **keys;
	size_t n, cap;
};

static int
collect_key(void *vctx, const char *key, size_t klen, const uint8_t *v, size_t vl)
{
	struct keys_ctx *c = vctx;
	(void)v;
	(void)vl;
	c->keys = xgrow(c->keys, &c->cap, c->n + 1, sizeof(char *));
	c->keys[c->n++] = xstrndup(key, klen);
	return 0;
}

static void
keys_free(struct keys_ctx *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->keys[i]);
	free(c->keys);
}

static enum hk_acct_status
drop_legacy_secrets(struct hk_accounts *a, const char *domain)
{
	char prefix[ACCT_KEY_MAX + 1];
	snprintf(prefix, sizeof(prefix), "u:%s/", domain);
	struct keys_ctx c = { 0 };
	enum hk_acct_status st = a->ops->scan(a, prefix, collect_key, &c);
	struct hk_user *u = xmalloc(sizeof(*u));
	for (size_t i = 0; st == HK_ACCT_OK && i < c.n; i++) {
		const char *slash = strchr(c.keys[i], '/');
		st = get_user(a, slash + 1, domain, u);
		if (st == HK_ACCT_OK && u->legacy_len) {
			OPENSSL_cleanse(u->legacy, sizeof(u->legacy));
			u->legacy_len = 0;
			st = put_user(a, u);
		}
	}
	OPENSSL_cleanse(u, sizeof(*u));
	free(u);
	keys_free(&c);
	return st;
}

enum hk_acct_status
hk_accounts_domain_update(struct hk_accounts *a, const struct hk_domain *din)
{
	a->err[0] = '\0';
	struct hk_domain d = *din;
	enum hk_acct_status st = hk_domain_normalize(din->name, d.name, a->err, sizeof(a->err));
	if (st != HK_ACCT_OK)
		return st;
	bool own;
	st = wbegin(a, &own);
	if (st != HK_ACCT_OK)
		return st;
	struct hk_domain old;
	st = get_domain(a, d.name, &old);
	if (st == HK_ACCT_OK)
		st = check_domain_fields(a, &d);
	if (st == HK_ACCT_OK) {
		d.created = old.created;
		char k[ACCT_KEY_MAX + 1];
		size_t kl = acct_key_domain(k, sizeof(k), d.name);
		struct hk_buf b;
		buf_init(&b);
		acct_encode_domain(&d, &b);
		st = put_record(a, k, kl, &b);
		buf_fini(&b);
	}
	if (st == HK_ACCT_OK && (old.flags & HK_DOMAIN_LEGACY_AUTH) && !(d.flags & HK_DOMAIN_LEGACY_AUTH))
		st = drop_legacy_secrets(a, d.name);
	return wend(a, own, st);
}

enum hk_acct_status
hk_accounts_domain_get(struct hk_accounts *a, const char *name, struct hk_domain *out)
{
	char n[HK_DOMAIN_MAX + 1];
	enum hk_acct_status st = fresh(a);
	if (st != HK_ACCT_OK)
		return st;
	st = hk_domain_normalize(name, n, a->err, sizeof(a->err));
	return st != HK_ACCT_OK ? st : get_domain(a, n, out);
}

enum hk_acct_status
hk_accounts_is_hosted(struct hk_accounts *a, const char *domain)
{
	struct hk_domain d;
	enum hk_acct_status st = hk_accounts_domain_get(a, domain, &d);
	return st == HK_ACCT_INVALID ? HK_ACCT_NOTFOUND : st;
}

enum hk_acct_status
hk_accounts_domain_del(struct hk_accounts *a, const char *name, bool cascade)
{
	a->err[0] = '\0';
	char n[HK_DOMAIN_MAX + 1];
	enum hk_acct_status st = hk_domain_normalize(name, n, a->err, sizeof(a->err));
	if (st != HK_ACCT_OK)
		return st;
	bool own;
	st = wbegin(a, &own);
	if (st != HK_ACCT_OK)
		return st;
	struct hk_domain d;
	st = get_domain(a, n, &d);
	struct keys_ctx c = { 0 };
	if (st == HK_ACCT_OK) {
		char prefix[ACCT_KEY_MAX + 1];
		snprintf(prefix, sizeof(prefix), "u:%s/", n);
		st = a->ops->scan(a, prefix, collect_key, &c);
		snprintf(prefix, sizeof(prefix), "a:%s/", n);
		if (st == HK_ACCT_OK)
			st = a->ops->scan(a, prefix, collect_key, &c);
	}
	if (st == HK_ACCT_OK && c.n && !cascade)
		st = fail(a, HK_ACCT_NOTEMPTY, "domain %s still has %zu user(s)/alias(es); delete them first or force", n,
		    c.n);
	for (size_t i = 0; st == HK_ACCT_OK && i < c.n; i++)
		st = a->ops->del(a, c.keys[i], strlen(c.keys[i]));
	keys_free(&c);
	if (st == HK_ACCT_OK) {
		char k[ACCT_KEY_MAX + 1];
		size_t kl = acct_key_domain(k, sizeof(k), n);
		st = a->ops->del(a, k, kl);
	}
	return wend(a, own, st);
}

static int
collect_domain(void *vctx, const char *key, size_t klen, const uint8_t *v, size_t vl)
{
	struct collect *c = vctx;
	c->v = xgrow(c->v, &c->cap, c->n + 1, c->elsize);
	struct hk_domain *d = (struct hk_domain *)c->v + c->n;
	char why[128];
	if (acct_decode_domain(v, vl, d, why, sizeof(why)) < 0)
		collect_bad(c, key, klen, why);
	else
		c->n++;
	return 0;
}

static int
cmp_domain(const void *x, const void *y)
{
	return strcmp(((const struct hk_domain *)x)->name, ((const struct hk_domain *)y)->name);
}

/* Scans kind ("u" or "a") records of one domain, or kind ("d", "u", "a") records of all when domain is NULL. */
static enum hk_acct_status
scan_domain_records(struct hk_accounts *a, const char *kind, const char *domain, acct_scan_fn fn, struct collect *c)
{
	char prefix[ACCT_KEY_MAX + 1];
	enum hk_acct_status st = fresh(a);
	if (st != HK_ACCT_OK)
		return st;
	if (domain) {
		char n[HK_DOMAIN_MAX + 1];
		struct hk_domain d;
		st = hk_domain_normalize(domain, n, a->err, sizeof(a->err));
		if (st == HK_ACCT_OK)
			st = get_domain(a, n, &d);
		if (st != HK_ACCT_OK)
			return st;
		snprintf(prefix, sizeof(prefix), "%s:%s/", kind, n);
	} else {
		snprintf(prefix, sizeof(prefix), "%s:", kind);
	}
	return a->ops->scan(a, prefix, fn, c);
}

/* Collects, checks and sorts the records scan_domain_records() finds. */
static enum hk_acct_status
list_records(struct hk_accounts *a, const char *kind, const char *domain, acct_scan_fn fn, size_t elsize,
    int (*cmp)(const void *, const void *), void **v_r, size_t *n_r)
{
	*v_r = NULL;
	*n_r = 0;
	struct collect c = { .a = a, .elsize = elsize };
	enum hk_acct_status st = scan_domain_records(a, kind, domain, fn, &c);
	if (st != HK_ACCT_OK) {
		free(c.v);
		return st;
	}
	if (c.n > 1)
		qsort(c.v, c.n, c.elsize, cmp);
	*v_r = c.v;
	*n_r = c.n;
	return c.bad ? HK_ACCT_CORRUPT : HK_ACCT_OK;
}

enum hk_acct_status
hk_accounts_domain_list(struct hk_accounts *a, struct hk_domain **v_r, size_t *n_r)
{
	void *v;
	enum hk_acct_status st = list_records(a, "d", NULL, collect_domain, sizeof(struct hk_domain), cmp_domain, &v, n_r);
	*v_r = v;
	return st;
}

/* --- users ------------------------------------------------------------------------------------------ */

/* Parses a hosted address (local part ASCII) into local/domain. */
static enum hk_acct_status
parse_hosted(struct hk_accounts *a, const char *address, char local[HK_LOCAL_MAX + 1], char domain[HK_DOMAIN_MAX + 1])
{
	return hk_address_normalize(address, true, local, domain, a->err, sizeof(a->err));
}

enum hk_acct_status
hk_accounts_user_add(struct hk_accounts *a, struct hk_user *u)
{
	a->err[0] = '\0';
	char local[HK_LOCAL_MAX + 1], domain[HK_DOMAIN_MAX + 1];
	enum hk_acct_status st = parse_hosted(a, u->address, local, domain);
	if (st != HK_ACCT_OK)
		return st;
	memcpy(u->local, local, sizeof(local));
	memcpy(u->domain, domain, sizeof(domain));
	acct_join_address(u->address, sizeof(u->address), local, domain);
	if (u->quota < 0)
		return fail(a, HK_ACCT_INVALID, "user %s: negative quota", u->address);
	if (u->pw_hash[0] && (strchr(u->pw_hash, ':') || strchr(u->pw_hash, ' ') || strlen(u->pw_hash) > HK_PW_HASH_MAX))
		return fail(a, HK_ACCT_INVALID, "user %s: malformed password hash", u->address);
	bool own;
	st = wbegin(a, &own);
	if (st != HK_ACCT_OK)
		return st;
	struct hk_domain d;
	struct hk_plan p;
	char k[ACCT_KEY_MAX + 1];
	size_t kl = acct_key_alias(k, sizeof(k), local, domain);
	st = get_domain(a, domain, &d);
	if (st == HK_ACCT_NOTFOUND)
		st = fail(a, HK_ACCT_NODOMAIN, "domain %s is not hosted here (add it with `hikyaku domain add`)", domain);
	if (st == HK_ACCT_OK && u->plan[0])
		st = get_plan(a, u->plan, &p);
	if (st == HK_ACCT_OK) {
		st = exists(a, k, kl);
		if (st == HK_ACCT_OK)
			st = fail(a, HK_ACCT_EXISTS, "%s is an alias", u->address);
		else if (st == HK_ACCT_NOTFOUND)
			st = HK_ACCT_OK;
	}
	if (st == HK_ACCT_OK) {
		kl = acct_key_user(k, sizeof(k), local, domain);
		st = exists(a, k, kl);
		if (st == HK_ACCT_OK)
			st = fail(a, HK_ACCT_EXISTS, "user %s already exists", u->address);
		else if (st == HK_ACCT_NOTFOUND)
			st = HK_ACCT_OK;
	}
	if (st == HK_ACCT_OK) {
		if (u->created == 0)
			u->created = (int64_t)time(NULL);
		st = put_user(a, u);
	}
	return wend(a, own, st);
}

enum hk_acct_status
hk_accounts_user_update(struct hk_accounts *a, const struct hk_user *uin)
{
	a->err[0] = '\0';
	char local[HK_LOCAL_MAX + 1], domain[HK_DOMAIN_MAX + 1];
	enum hk_acct_status st = parse_hosted(a, uin->address, local, domain);
	if (st != HK_ACCT_OK)
		return st;
	if (uin->quota < 0)
		return fail(a, HK_ACCT_INVALID, "user %s: negative quota", uin->address);
	bool own;
	st = wbegin(a, &own);
	if (st != HK_ACCT_OK)
		return st;
	struct hk_user *old = xmalloc(sizeof(*old));
	struct hk_plan p;
	st = get_user(a, local, domain, old);
	if (st == HK_ACCT_OK && uin->plan[0])
		st = get_plan(a, uin->plan, &p);
	if (st == HK_ACCT_OK) {
		struct hk_user *u = xmalloc(sizeof(*u));
		*u = *uin;
		/* the identity stays as stored */
		memcpy(u->local, old->local, sizeof(u->local));
		memcpy(u->domain, old->domain, sizeof(u->domain));
		memcpy(u->address, old->address, sizeof(u->address));
		u->created = old->created;
		st = put_user(a, u);
		OPENSSL_cleanse(u, sizeof(*u));
		free(u);
	}
	OPENSSL_cleanse(old, sizeof(*old));
	free(old);
	return wend(a, own, st);
}

enum hk_acct_status
hk_accounts_user_get(struct hk_accounts *a, const char *address, struct hk_user *out)
{
	char local[HK_LOCAL_MAX + 1], domain[HK_DOMAIN_MAX + 1];
	enum hk_acct_status st = fresh(a);
	if (st != HK_ACCT_OK)
		return st;
	st = parse_hosted(a, address, local, domain);
	return st != HK_ACCT_OK ? st : get_user(a, local, domain, out);
}

/* Deletes the user or alias record ("what") of one hosted address. */
static enum hk_acct_status
del_addressed(struct hk_accounts *a, const char *address, const char *what,
    size_t (*key_fn)(char *, size_t, const char *, const char *))
{
	a->err[0] = '\0';
	char local[HK_LOCAL_MAX + 1], domain[HK_DOMAIN_MAX + 1];
	enum hk_acct_status st = parse_hosted(a, address, local, domain);
	if (st != HK_ACCT_OK)
		return st;
	bool own;
	st = wbegin(a, &own);
	if (st != HK_ACCT_OK)
		return st;
	char k[ACCT_KEY_MAX + 1];
	size_t kl = key_fn(k, sizeof(k), local, domain);
	st = a->ops->del(a, k, kl);
	if (st == HK_ACCT_NOTFOUND)
		fail(a, st, "no %s %s@%s", what, local, domain);
	return wend(a, own, st);
}

enum hk_acct_status
hk_accounts_user_del(struct hk_accounts *a, const char *address)
{
	return del_addressed(a, address, "user", acct_key_user);
}

static int
collect_user(void *vctx, const char *key, size_t klen, const uint8_t *v, size_t vl)
{
	struct collect *c = vctx;
	c->v = xgrow(c->v, &c->cap, c->n + 1, c->elsize);
	struct hk_user *u = (struct hk_user *)c->v + c->n;
	char why[128];
	char k2[ACCT_KEY_MAX + 1];
	if (acct_decode_user(v, vl, u, why, sizeof(why)) < 0)
		collect_bad(c, key, klen, why);
	else if (acct_key_user(k2, sizeof(k2), u->local, u->domain) != klen || memcmp(k2, key, klen) != 0)
		collect_bad(c, key, klen, "address mismatch");
	else
		c->n++;
	return 0;
}

static int
cmp_addr(const char *da, const char *la, const char *db, const char *lb)
{
	int r = strcmp(da, db);
	return r ? r : strcasecmp(la, lb);
}

static int
cmp_user(const void *x, const void *y)
{
	const struct hk_user *a = x, *b = y;
	return cmp_addr(a->domain, a->local, b->domain, b->local);
}

enum hk_acct_status
hk_accounts_user_list(struct hk_accounts *a, const char *domain, struct hk_user **v_r, size_t *n_r)
{
	void *v;
	enum hk_acct_status st = list_records(a, "u", domain, collect_user, sizeof(struct hk_user), cmp_user, &v, n_r);
	*v_r = v;
	return st;
}

/* --- credentials ------------------------------------------------------------------------------------ */

static enum hk_acct_status
need_box(struct hk_accounts *a, bool create)
{
	if (a->box)
		return HK_ACCT_OK;
	if (a->key_path == NULL)
		return fail(a, HK_ACCT_INVALID, "no key file configured for legacy (CRAM-MD5/APOP) secrets");
	char err[300];
	if (hk_secretbox_load(a->key_path, create, &a->box, err, sizeof(err)) < 0)
		return fail(a, errno == EPERM ? HK_ACCT_INSECURE : errno == ENOENT ? HK_ACCT_NOTFOUND : HK_ACCT_IO, "%s",
		    err);
	return HK_ACCT_OK;
}

/* The associated data of a user's legacy secret: its key. */
static size_t
legacy_aad(char *out, size_t cap, const struct hk_user *u)
{
	return acct_key_user(out, cap, u->local, u->domain);
}

struct new_creds {
	char hash[HK_PW_HASH_OUT];
	struct hk_scram_keys scram;
	bool has_scram;
	uint8_t legacy[HK_LEGACY_BLOB_MAX];
	size_t legacy_len;
};

/* The slow part, done before any lock is taken. */
static enum hk_acct_status
make_creds(struct hk_accounts *a, const char *password, bool want_hash, bool want_scram, struct new_creds *c)
{
	memset(c, 0, sizeof(*c));
	if (want_hash && hk_password_hash(password, a->cfg.pw_cost, c->hash, sizeof(c->hash)) < 0)
		return fail(a, HK_ACCT_IO, "cannot hash the password: %s", strerror(errno));
	if (want_scram && hk_scram_keys_new(password, a->cfg.scram_iterations, &c->scram) == 0)
		c->has_scram = true;
	return HK_ACCT_OK;
}

static enum hk_acct_status
seal_legacy(struct hk_accounts *a, const struct hk_user *u, const char *password, struct new_creds *c)
{
	enum hk_acct_status st = need_box(a, true);
	if (st != HK_ACCT_OK)
		return st;
	char aad[ACCT_KEY_MAX + 1];
	size_t al = legacy_aad(aad, sizeof(aad), u);
	if (hk_secretbox_seal(a->box, aad, al, password, strlen(password), c->legacy, sizeof(c->legacy), &c->legacy_len) <
	    0)
		return fail(a, HK_ACCT_IO, "cannot encrypt the legacy secret of %s: %s", u->address, strerror(errno));
	return HK_ACCT_OK;
}

enum hk_acct_status
hk_accounts_user_set_password(struct hk_accounts *a, const char *address, const char *password)
{
	a->err[0] = '\0';
	char local[HK_LOCAL_MAX + 1], domain[HK_DOMAIN_MAX + 1];
	enum hk_acct_status st = parse_hosted(a, address, local, domain);
	if (st != HK_ACCT_OK)
		return st;
	const char *why = hk_password_check(password);
	if (why)
		return fail(a, HK_ACCT_INVALID, "%s", why);
	struct new_creds *c = xmalloc(sizeof(*c));
	st = make_creds(a, password, true, true, c);
	if (st == HK_ACCT_OK && !c->has_scram)
		st = fail(a, HK_ACCT_INVALID, "cannot derive SCRAM keys for this password");
	bool own = false;
	if (st == HK_ACCT_OK)
		st = wbegin(a, &own);
	struct hk_user *u = xmalloc(sizeof(*u));
	struct hk_domain d;
	if (st == HK_ACCT_OK)
		st = get_user(a, local, domain, u);
	if (st == HK_ACCT_OK)
		st = get_domain(a, domain, &d);
	if (st == HK_ACCT_OK && (d.flags & HK_DOMAIN_LEGACY_AUTH))
		st = seal_legacy(a, u, password, c);
	if (st == HK_ACCT_OK) {
		snprintf(u->pw_hash, sizeof(u->pw_hash), "%s", c->hash);
		u->scram = c->scram;
		u->has_scram = true;
		OPENSSL_cleanse(u->legacy, sizeof(u->legacy));
		memcpy(u->legacy, c->legacy, c->legacy_len);
		u->legacy_len = (uint16_t)c->legacy_len;
		u->pw_changed = (int64_t)time(NULL);
		st = put_user(a, u);
	}
	st = wend(a, own, st);
	OPENSSL_cleanse(c, sizeof(*c));
	OPENSSL_cleanse(u, sizeof(*u));
	free(c);
	free(u);
	return st;
}

enum hk_acct_status
hk_accounts_user_set_hash(struct hk_accounts *a, const char *address, const char *hash)
{
	a->err[0] = '\0';
	char local[HK_LOCAL_MAX + 1], domain[HK_DOMAIN_MAX + 1];
	enum hk_acct_status st = parse_hosted(a, address, local, domain);
	if (st != HK_ACCT_OK)
		return st;
	size_t hl = strlen(hash);
	bool ok = hl > 3 && hl <= HK_PW_HASH_MAX && hash[0] == '$';
	for (size_t i = 0; ok && i < hl; i++)
		if ((unsigned char)hash[i] <= 0x20 || (unsigned char)hash[i] >= 0x7F || hash[i] == ':')
			ok = false;
	/* a hash libxcrypt cannot use would lock the user out: try it */
	if (ok && hk_password_verify("hikyaku probe", hash) == HK_PW_ERROR)
		ok = false;
	if (!ok)
		return fail(a, HK_ACCT_INVALID, "not a usable crypt(3) hash (expected $y$, $2b$, $6$, $5$ ...)");
	bool own;
	st = wbegin(a, &own);
	if (st != HK_ACCT_OK)
		return st;
	struct hk_user *u = xmalloc(sizeof(*u));
	st = get_user(a, local, domain, u);
	if (st == HK_ACCT_OK) {
		snprintf(u->pw_hash, sizeof(u->pw_hash), "%s", hash);
		u->has_scram = false;
		memset(&u->scram, 0, sizeof(u->scram));
		OPENSSL_cleanse(u->legacy, sizeof(u->legacy));
		u->legacy_len = 0;
		u->pw_changed = (int64_t)time(NULL);
		st = put_user(a, u);
	}
	OPENSSL_cleanse(u, sizeof(*u));
	free(u);
	return wend(a, own, st);
}

/* --- aliases ------------------------------------------------------------------------------------------ */

enum hk_acct_status
hk_accounts_alias_put(struct hk_accounts *a, struct hk_alias *al)
{
	a->err[0] = '\0';
	char local[HK_LOCAL_MAX + 1], domain[HK_DOMAIN_MAX + 1];
	enum hk_acct_status st = parse_hosted(a, al->address, local, domain);
	if (st != HK_ACCT_OK)
		return st;
	memcpy(al->local, local, sizeof(local));
	memcpy(al->domain, domain, sizeof(domain));
	acct_join_address(al->address, sizeof(al->address), local, domain);
	if (al->n_targets == 0)
		return fail(a, HK_ACCT_INVALID, "alias %s needs at least one target", al->address);
	if (al->n_targets > HK_ALIAS_MAX_TARGETS)
		return fail(a, HK_ACCT_LIMIT, "alias %s: at most %d targets", al->address, HK_ALIAS_MAX_TARGETS);
	/* normalise the targets, drop duplicates, refuse the alias itself */
	uint32_t n = 0;
	for (uint32_t i = 0; i < al->n_targets; i++) {
		char tl[HK_LOCAL_MAX + 1], td[HK_DOMAIN_MAX + 1];
		char msg[sizeof(a->err)];
		st = hk_address_normalize(al->targets[i], false, tl, td, msg, sizeof(msg));
		if (st != HK_ACCT_OK)
			return fail(a, st, "alias %s: target: %s", al->address, msg);
		char t[HK_ADDRESS_MAX + 1];
		acct_join_address(t, sizeof(t), tl, td);
		if (strcasecmp(t, al->address) == 0)
			return fail(a, HK_ACCT_INVALID, "alias %s cannot point to itself", al->address);
		bool dup = false;
		for (uint32_t j = 0; j < n; j++)
			if (strcasecmp(al->targets[j], t) == 0)
				dup = true;
		if (!dup)
			memcpy(al->targets[n++], t, sizeof(t));
	}
	al->n_targets = n;
	bool own;
	st = wbegin(a, &own);
	if (st != HK_ACCT_OK)
		return st;
	struct hk_limits lim;
	st = hk_accounts_domain_limits(a, domain, &lim);
	if (st == HK_ACCT_NOTFOUND)
		st = fail(a, HK_ACCT_NODOMAIN, "domain %s is not hosted here (add it with `hikyaku domain add`)", domain);
	if (st == HK_ACCT_OK && al->n_targets > lim.max_forward)
		st = fail(a, HK_ACCT_LIMIT, "alias %s: %u targets, the %s plan allows %u", al->address, al->n_targets,
		    lim.plan, lim.max_forward);
	char k[ACCT_KEY_MAX + 1];
	size_t kl;
	if (st == HK_ACCT_OK) {
		kl = acct_key_user(k, sizeof(k), local, domain);
		st = exists(a, k, kl);
		if (st == HK_ACCT_OK)
			st = fail(a, HK_ACCT_EXISTS, "%s is a user", al->address);
		else if (st == HK_ACCT_NOTFOUND)
			st = HK_ACCT_OK;
	}
	if (st == HK_ACCT_OK) {
		kl = acct_key_alias(k, sizeof(k), local, domain);
		struct hk_buf b;
		buf_init(&b);
		acct_encode_alias(al, &b);
		st = put_record(a, k, kl, &b);
		buf_fini(&b);
	}
	return wend(a, own, st);
}

enum hk_acct_status
hk_accounts_alias_get(struct hk_accounts *a, const char *address, struct hk_alias *out)
{
	char local[HK_LOCAL_MAX + 1], domain[HK_DOMAIN_MAX + 1];
	enum hk_acct_status st = fresh(a);
	if (st != HK_ACCT_OK)
		return st;
	st = parse_hosted(a, address, local, domain);
	return st != HK_ACCT_OK ? st : get_alias(a, local, domain, out);
}

enum hk_acct_status
hk_accounts_alias_del(struct hk_accounts *a, const char *address)
{
	return del_addressed(a, address, "alias", acct_key_alias);
}

static int
collect_alias(void *vctx, const char *key, size_t klen, const uint8_t *v, size_t vl)
{
	struct collect *c = vctx;
	c->v = xgrow(c->v, &c->cap, c->n + 1, c->elsize);
	struct hk_alias *al = (struct hk_alias *)c->v + c->n;
	char why[128];
	char k2[ACCT_KEY_MAX + 1];
	if (acct_decode_alias(v, vl, al, why, sizeof(why)) < 0)
		collect_bad(c, key, klen, why);
	else if (acct_key_alias(k2, sizeof(k2), al->local, al->domain) != klen || memcmp(k2, key, klen) != 0)
		collect_bad(c, key, klen, "address mismatch");
	else
		c->n++;
	return 0;
}

static int
cmp_alias(const void *x, const void *y)
{
	const struct hk_alias *a = x, *b = y;
	return cmp_addr(a->domain, a->local, b->domain, b->local);
}

enum hk_acct_status
hk_accounts_alias_list(struct hk_accounts *a, const char *domain, struct hk_alias **v_r, size_t *n_r)
{
	void *v;
	enum hk_acct_status st = list_records(a, "a", domain, collect_alias, sizeof(struct hk_alias), cmp_alias, &v, n_r);
	*v_r = v;
	return st;
}

/* --- limits ------------------------------------------------------------------------------------------- */

static void
limits_from(struct hk_limits *l, const struct hk_plan *p, const struct hk_domain *d)
{
	memset(l, 0, sizeof(*l));
	snprintf(l->plan, sizeof(l->plan), "%s", p->name);
	l->quota = p->quota;
	l->max_message_size = d->max_message_size ? d->max_message_size : p->max_message_size;
	l->retention = p->retention_days * 86400;
	l->strict_retention = p->strict_retention;
	l->max_forward = p->max_forward;
	l->max_lists = p->max_lists;
	l->list_members = p->list_members;
	l->list_members_max = p->list_members_max;
	l->list_max_message_size = p->list_max_message_size;
	l->list_attachments = p->list_attachments;
	l->legacy_auth = (d->flags & HK_DOMAIN_LEGACY_AUTH) != 0;
}

/* A plan that has gone missing falls back to the default, so mail flows. */
static enum hk_acct_status
plan_or_default(struct hk_accounts *a, const char *name, struct hk_plan *p)
{
	enum hk_acct_status st = get_plan(a, name, p);
	if (st == HK_ACCT_NOTFOUND || st == HK_ACCT_INVALID) {
		*p = *hk_plan_builtin(HK_PLAN_DEFAULT);
		st = HK_ACCT_OK;
	}
	return st;
}

static enum hk_acct_status
user_limits(struct hk_accounts *a, const struct hk_user *u, const struct hk_domain *d, struct hk_limits *out)
{
	struct hk_plan p;
	enum hk_acct_status st = plan_or_default(a, u->plan[0] ? u->plan : d->plan, &p);
	if (st != HK_ACCT_OK)
		return st;
	limits_from(out, &p, d);
	if (u->quota)
		out->quota = u->quota;
	return HK_ACCT_OK;
}

enum hk_acct_status
hk_accounts_limits(struct hk_accounts *a, const struct hk_user *u, struct hk_limits *out)
{
	enum hk_acct_status st = fresh(a);
	struct hk_domain d;
	if (st == HK_ACCT_OK)
		st = get_domain(a, u->domain, &d);
	return st != HK_ACCT_OK ? st : user_limits(a, u, &d, out);
}

enum hk_acct_status
hk_accounts_domain_limits(struct hk_accounts *a, const char *domain, struct hk_limits *out)
{
	struct hk_domain d;
	enum hk_acct_status st = hk_accounts_domain_get(a, domain, &d);
	if (st != HK_ACCT_OK)
		return st;
	struct hk_plan p;
	st = plan_or_default(a, d.plan, &p);
	if (st == HK_ACCT_OK)
		limits_from(out, &p, &d);
	return st;
}

/* --- what the servers ask ----------------------------------------------------------------------------- */

static enum hk_acct_status
resolve_parsed(struct hk_accounts *a, const char *local, const char *domain, struct hk_rcpt *out)
{
	struct hk_domain d;
	enum hk_acct_status st = get_domain(a, domain, &d);
	if (st == HK_ACCT_NOTFOUND) {
		out->kind = HK_RCPT_NOT_HOSTED;
		a->err[0] = '\0';
		return HK_ACCT_OK;
	}
	if (st != HK_ACCT_OK)
		return st;
	if (d.flags & HK_DOMAIN_DISABLED) {
		out->kind = HK_RCPT_DISABLED;
		return HK_ACCT_OK;
	}
	if (acct_valid_local(local, true)) {
		st = get_user(a, local, domain, &out->user);
		if (st == HK_ACCT_OK) {
			out->kind = HK_RCPT_USER;
			return user_limits(a, &out->user, &d, &out->limits);
		}
		if (st != HK_ACCT_NOTFOUND)
			return st;
		st = get_alias(a, local, domain, &out->alias);
		if (st == HK_ACCT_OK) {
			out->kind = HK_RCPT_ALIAS;
			return HK_ACCT_OK;
		}
		if (st != HK_ACCT_NOTFOUND)
			return st;
	}
	a->err[0] = '\0';
	if (d.catchall[0]) {
		out->kind = HK_RCPT_ALIAS;
		out->catchall = true;
		snprintf(out->alias.local, sizeof(out->alias.local), "%s", local);
		snprintf(out->alias.domain, sizeof(out->alias.domain), "%s", domain);
		acct_join_address(out->alias.address, sizeof(out->alias.address), local, domain);
		out->alias.n_targets = 1;
		snprintf(out->alias.targets[0], sizeof(out->alias.targets[0]), "%s", d.catchall);
		return HK_ACCT_OK;
	}
	out->kind = HK_RCPT_UNKNOWN;
	return HK_ACCT_OK;
}

enum hk_acct_status
hk_accounts_resolve(struct hk_accounts *a, const char *address, struct hk_rcpt *out)
{
	memset(out, 0, sizeof(*out));
	out->kind = HK_RCPT_UNKNOWN;
	enum hk_acct_status st = fresh(a);
	if (st != HK_ACCT_OK)
		return st;
	char local[HK_LOCAL_MAX + 1], domain[HK_DOMAIN_MAX + 1];
	st = hk_address_normalize(address, false, local, domain, a->err, sizeof(a->err));
	if (st != HK_ACCT_OK)
		return st;
	return resolve_parsed(a, local, domain, out);
}

static bool
expansion_has(const struct hk_expansion *e, const char *addr)
{
	for (size_t i = 0; i < e->n; i++)
		if (strcasecmp(e->v[i].address, addr) == 0)
			return true;
	return false;
}

static void
expansion_add(struct hk_expansion *e, const char *addr, bool local)
{
	if (expansion_has(e, addr))
		return;
	if (e->n >= HK_EXPAND_MAX) {
		e->truncated = true;
		return;
	}
	snprintf(e->v[e->n].address, sizeof(e->v[e->n].address), "%s", addr);
	e->v[e->n].local = local;
	e->n++;
}

struct seen_aliases {
	char v[64][HK_ADDRESS_MAX + 1];
	size_t n;
};

static enum hk_acct_status
expand_rec(struct hk_accounts *a, const char *address, int depth, struct hk_expansion *out, struct seen_aliases *seen,
    struct hk_rcpt *r)
{
	char local[HK_LOCAL_MAX + 1], domain[HK_DOMAIN_MAX + 1];
	char msg[sizeof(a->err)];
	if (hk_address_normalize(address, false, local, domain, msg, sizeof(msg)) != HK_ACCT_OK)
		return HK_ACCT_OK; /* stored targets are valid; skip anything else */
	enum hk_acct_status st = resolve_parsed(a, local, domain, r);
	if (st != HK_ACCT_OK)
		return st;
	switch (r->kind) {
	case HK_RCPT_NOT_HOSTED: {
		char t[HK_ADDRESS_MAX + 1];
		acct_join_address(t, sizeof(t), local, domain);
		expansion_add(out, t, false);
		return HK_ACCT_OK;
	}
	case HK_RCPT_USER:
		expansion_add(out, r->user.address, true);
		return HK_ACCT_OK;
	case HK_RCPT_UNKNOWN:
	case HK_RCPT_DISABLED:
		return HK_ACCT_OK;
	case HK_RCPT_ALIAS:
		break;
	}
	for (size_t i = 0; i < seen->n; i++)
		if (strcasecmp(seen->v[i], r->alias.address) == 0)
			return HK_ACCT_OK; /* a loop */
	if (depth >= HK_ALIAS_MAX_DEPTH || seen->n >= HK_ARRAY_LEN(seen->v)) {
		out->truncated = true;
		return HK_ACCT_OK;
	}
	snprintf(seen->v[seen->n++], sizeof(seen->v[0]), "%s", r->alias.address);
	struct hk_alias al = r->alias;
	for (uint32_t i = 0; i < al.n_targets && st == HK_ACCT_OK; i++)
		st = expand_rec(a, al.targets[i], depth + 1, out, seen, r);
	return st;
}

enum hk_acct_status
hk_accounts_expand(struct hk_accounts *a, const char *address, struct hk_expansion *out)
{
	memset(out, 0, sizeof(*out));
	enum hk_acct_status st = fresh(a);
	if (st != HK_ACCT_OK)
		return st;
	char local[HK_LOCAL_MAX + 1], domain[HK_DOMAIN_MAX + 1];
	st = hk_address_normalize(address, false, local, domain, a->err, sizeof(a->err));
	if (st != HK_ACCT_OK)
		return st;
	struct seen_aliases *seen = xcalloc(1, sizeof(*seen));
	struct hk_rcpt *r = xmalloc(sizeof(*r));
	st = expand_rec(a, address, 0, out, seen, r);
	OPENSSL_cleanse(r, sizeof(*r));
	free(r);
	free(seen);
	return st;
}

enum hk_acct_status
hk_accounts_may_send_as(struct hk_accounts *a, const char *user, const char *from)
{
	char ul[HK_LOCAL_MAX + 1], ud[HK_DOMAIN_MAX + 1], fl[HK_LOCAL_MAX + 1], fd[HK_DOMAIN_MAX + 1];
	enum hk_acct_status st = fresh(a);
	if (st != HK_ACCT_OK)
		return st;
	if (hk_address_normalize(user, true, ul, ud, a->err, sizeof(a->err)) != HK_ACCT_OK)
		return HK_ACCT_NOTFOUND;
	if (hk_address_normalize(from, false, fl, fd, a->err, sizeof(a->err)) != HK_ACCT_OK)
		return HK_ACCT_NOTFOUND;
	a->err[0] = '\0';
	if (strcmp(ud, fd) == 0 && strcasecmp(ul, fl) == 0)
		return HK_ACCT_OK;
	if (!acct_valid_local(fl, true))
		return HK_ACCT_NOTFOUND;
	struct hk_alias *al = xmalloc(sizeof(*al));
	st = get_alias(a, fl, fd, al);
	if (st == HK_ACCT_OK) {
		st = HK_ACCT_NOTFOUND;
		char me[HK_ADDRESS_MAX + 1];
		acct_join_address(me, sizeof(me), ul, ud);
		for (uint32_t i = 0; i < al->n_targets; i++)
			if (strcasecmp(al->targets[i], me) == 0)
				st = HK_ACCT_OK;
	}
	free(al);
	if (st == HK_ACCT_NOTFOUND)
		fail(a, st, "%s may not send as %s", user, from);
	return st;
}

/* --- authentication ---------------------------------------------------------------------------------- */

/* Adds what a successful plaintext login can add: a yescrypt hash in
 * place of an old one, SCRAM keys, the legacy secret. Best effort. */
static void
upgrade_credentials(struct hk_accounts *a, struct hk_user *u, const struct hk_domain *d, const char *password)
{
	bool rehash = hk_password_needs_rehash(u->pw_hash);
	bool scram = !u->has_scram && hk_password_check(password) == NULL;
	bool legacy = (d->flags & HK_DOMAIN_LEGACY_AUTH) && u->legacy_len == 0 && a->key_path &&
	    strlen(password) <= HK_SECRETBOX_PLAIN_MAX;
	if (!rehash && !scram && !legacy)
		return;
	struct new_creds *c = xmalloc(sizeof(*c));
	char keep[sizeof(a->err)];
	memcpy(keep, a->err, sizeof(keep));
	enum hk_acct_status st = make_creds(a, password, rehash, scram, c);
	if (st == HK_ACCT_OK && legacy)
		st = seal_legacy(a, u, password, c);
	bool own = false;
	if (st == HK_ACCT_OK)
		st = wbegin(a, &own);
	struct hk_user *cur = xmalloc(sizeof(*cur));
	if (st == HK_ACCT_OK)
		st = get_user(a, u->local, u->domain, cur);
	/* only if nobody changed the password meanwhile */
	if (st == HK_ACCT_OK && strcmp(cur->pw_hash, u->pw_hash) == 0) {
		if (rehash)
			snprintf(cur->pw_hash, sizeof(cur->pw_hash), "%s", c->hash);
		if (c->has_scram) {
			cur->scram = c->scram;
			cur->has_scram = true;
		}
		if (legacy) {
			memcpy(cur->legacy, c->legacy, c->legacy_len);
			cur->legacy_len = (uint16_t)c->legacy_len;
		}
		st = put_user(a, cur);
	}
	wend(a, own, st);
	OPENSSL_cleanse(cur, sizeof(*cur));
	OPENSSL_cleanse(c, sizeof(*c));
	free(cur);
	free(c);
	memcpy(a->err, keep, sizeof(keep));
}

/* Finds an enabled user for a login: OK, DISABLED (as AUTH codes) ... */
static enum hk_auth_result
login_user(struct hk_accounts *a, const char *address, struct hk_user *u, struct hk_domain *d)
{
	char local[HK_LOCAL_MAX + 1], domain[HK_DOMAIN_MAX + 1];
	if (fresh(a) != HK_ACCT_OK)
		return HK_AUTH_TEMPFAIL;
	if (parse_hosted(a, address, local, domain) != HK_ACCT_OK)
		return HK_AUTH_FAIL;
	enum hk_acct_status st = get_domain(a, domain, d);
	if (st == HK_ACCT_OK)
		st = get_user(a, local, domain, u);
	if (st == HK_ACCT_NOTFOUND)
		return HK_AUTH_FAIL;
	if (st != HK_ACCT_OK)
		return HK_AUTH_TEMPFAIL;
	return HK_AUTH_OK;
}

static bool
disabled(const struct hk_user *u, const struct hk_domain *d)
{
	return (u->flags & HK_USER_DISABLED) || (d->flags & HK_DOMAIN_DISABLED);
}

enum hk_auth_result
hk_accounts_auth_plain(struct hk_accounts *a, const char *address, const char *password, struct hk_user *user_r)
{
	struct hk_user *u = xmalloc(sizeof(*u));
	struct hk_domain d;
	enum hk_auth_result r = login_user(a, address, u, &d);
	if (r == HK_AUTH_OK && u->pw_hash[0] == '\0')
		r = HK_AUTH_FAIL;
	if (r != HK_AUTH_OK) {
		hk_password_burn(password, a->cfg.pw_cost);
	} else {
		enum hk_pw_verify v = hk_password_verify_cached(password, u->pw_hash);
		if (v != HK_PW_OK) {
			if (v == HK_PW_ERROR)
				fail(a, HK_ACCT_CORRUPT, "user %s: the stored hash cannot be used", u->address);
			r = HK_AUTH_FAIL;
		} else if (disabled(u, &d)) {
			r = HK_AUTH_DISABLED;
		} else {
			upgrade_credentials(a, u, &d, password);
		}
	}
	if (user_r && (r == HK_AUTH_OK || r == HK_AUTH_DISABLED))
		*user_r = *u;
	OPENSSL_cleanse(u, sizeof(*u));
	free(u);
	return r;
}

/* Decrypts the legacy secret of a user of a domain that allows it. */
static enum hk_auth_result
legacy_secret(struct hk_accounts *a, const struct hk_user *u, const struct hk_domain *d, uint8_t *out, size_t cap,
    size_t *len_r)
{
	if (!(d->flags & HK_DOMAIN_LEGACY_AUTH) || u->legacy_len == 0)
		return HK_AUTH_FAIL;
	enum hk_acct_status st = need_box(a, false);
	if (st == HK_ACCT_NOTFOUND)
		return HK_AUTH_FAIL;
	if (st != HK_ACCT_OK)
		return HK_AUTH_TEMPFAIL;
	char aad[ACCT_KEY_MAX + 1];
	size_t al = legacy_aad(aad, sizeof(aad), u);
	if (hk_secretbox_open(a->box, aad, al, u->legacy, u->legacy_len, out, cap, len_r) < 0) {
		fail(a, HK_ACCT_CORRUPT, "user %s: the legacy secret does not decrypt (%s)", u->address,
		    errno == ENOKEY ? "sealed with another key file" : "damaged");
		return HK_AUTH_FAIL;
	}
	return HK_AUTH_OK;
}

static enum hk_auth_result
legacy_auth(struct hk_accounts *a, const char *address, bool apop, const char *challenge, const char *digest,
    char address_r[HK_ADDRESS_MAX + 1])
{
	struct hk_user *u = xmalloc(sizeof(*u));
	struct hk_domain d;
	uint8_t secret[HK_SECRETBOX_PLAIN_MAX];
	size_t slen = 0;
	enum hk_auth_result r = login_user(a, address, u, &d);
	if (r == HK_AUTH_OK)
		r = legacy_secret(a, u, &d, secret, sizeof(secret), &slen);
	if (r == HK_AUTH_OK) {
		bool ok = apop ? hk_apop_verify(secret, slen, challenge, digest)
		               : hk_cram_md5_verify(secret, slen, challenge, digest);
		r = !ok ? HK_AUTH_FAIL : disabled(u, &d) ? HK_AUTH_DISABLED : HK_AUTH_OK;
	}
	if (address_r && (r == HK_AUTH_OK || r == HK_AUTH_DISABLED))
		snprintf(address_r, HK_ADDRESS_MAX + 1, "%s", u->address);
	OPENSSL_cleanse(secret, sizeof(secret));
	OPENSSL_cleanse(u, sizeof(*u));
	free(u);
	return r;
}

enum hk_auth_result
hk_accounts_auth_cram_md5(struct hk_accounts *a, const char *challenge, const char *response,
    char address_r[HK_ADDRESS_MAX + 1])
{
	char user[HK_ADDRESS_MAX + 1], digest[33];
	if (strlen(response) > 1024 || !hk_cram_md5_split(response, user, sizeof(user), digest))
		return HK_AUTH_FAIL;
	return legacy_auth(a, user, false, challenge, digest, address_r);
}

enum hk_auth_result
hk_accounts_auth_apop(struct hk_accounts *a, const char *address, const char *timestamp, const char *digest,
    char address_r[HK_ADDRESS_MAX + 1])
{
	return legacy_auth(a, address, true, timestamp, digest, address_r);
}

enum hk_acct_status
hk_accounts_scram_keys(struct hk_accounts *a, const char *address, struct hk_scram_keys *out,
    char address_r[HK_ADDRESS_MAX + 1])
{
	struct hk_user *u = xmalloc(sizeof(*u));
	struct hk_domain d;
	enum hk_auth_result r = login_user(a, address, u, &d);
	enum hk_acct_status st = r == HK_AUTH_TEMPFAIL ? HK_ACCT_IO : HK_ACCT_NOTFOUND;
	if (r == HK_AUTH_OK && u->has_scram && !disabled(u, &d)) {
		*out = u->scram;
		if (address_r)
			snprintf(address_r, HK_ADDRESS_MAX + 1, "%s", u->address);
		st = HK_ACCT_OK;
	}
	OPENSSL_cleanse(u, sizeof(*u));
	free(u);
	return st;
}

/* --- maintenance -------------------------------------------------------------------------------------- */

static int
check_one(void *vctx, const char *key, size_t klen, const uint8_t *v, size_t vl)
{
	struct hk_accounts_check *c = vctx;
	char why[128] = "";
	c->records++;
	if (!acct_record_valid(key, klen, v, vl, why, sizeof(why))) {
		if (c->bad++ == 0)
			acct_printable(c->first_bad, sizeof(c->first_bad), key, klen);
		return 0;
	}
	if (key_is(key, klen, "d:"))
		c->domains++;
	else if (key_is(key, klen, "u:"))
		c->users++;
	else if (key_is(key, klen, "a:"))
		c->aliases++;
	else if (key_is(key, klen, "p:"))
		c->plans++;
	return 0;
}

enum hk_acct_status
hk_accounts_verify(struct hk_accounts *a, struct hk_accounts_check *out)
{
	memset(out, 0, sizeof(*out));
	enum hk_acct_status st = fresh(a);
	if (st != HK_ACCT_OK)
		return st;
	st = a->ops->scan(a, "", check_one, out);
	if (st == HK_ACCT_OK && out->bad)
		st = fail(a, HK_ACCT_CORRUPT, "%zu damaged record(s), the first is %s", out->bad, out->first_bad);
	return st;
}

enum hk_acct_status
hk_accounts_repair(struct hk_accounts *a, struct hk_accounts_check *out)
{
	memset(out, 0, sizeof(*out));
	a->err[0] = '\0';
	if (a->in_txn)
		return fail(a, HK_ACCT_INVALID, "cannot repair inside a transaction");
	if (a->ops->repair == NULL)
		return fail(a, HK_ACCT_INVALID, "the %s back end cannot be repaired", a->ops->name);
	return a->ops->repair(a, out);
}
