/*
 * accounts_mem.c - an in-memory back end for the accounts store (unit
 * tests, and a model of the contract in accounts_be.h). Records are an
 * unsorted array; a transaction works on a copy that replaces the original
 * on commit.
 */
#include <stdlib.h>
#include <string.h>

#include "accounts_be.h"

struct rec {
	char *key;
	size_t klen;
	uint8_t *val;
	size_t vlen;
};

struct table {
	struct rec *v;
	size_t n, cap;
};

struct mem {
	struct table live, txn;
	uint64_t commits;
};

static void
table_free(struct table *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->v[i].key);
		free(t->v[i].val);
	}
	free(t->v);
	memset(t, 0, sizeof(*t));
}

static void
table_copy(struct table *dst, const struct table *src)
{
	memset(dst, 0, sizeof(*dst));
	dst->v = xgrow(NULL, &dst->cap, src->n, sizeof(*dst->v));
	for (size_t i = 0; i < src->n; i++) {
		struct rec *r = &dst->v[i];
		r->klen = src->v[i].klen;
		r->key = xmalloc(r->klen + 1);
		memcpy(r->key, src->v[i].key, r->klen + 1);
		r->vlen = src->v[i].vlen;
		r->val = xmalloc(r->vlen);
		memcpy(r->val, src->v[i].val, r->vlen);
	}
	dst->n = src->n;
}

static struct rec *
find(struct table *t, const char *key, size_t klen)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->v[i].klen == klen && memcmp(t->v[i].key, key, klen) == 0)
			return &t->v[i];
	return NULL;
}

static struct table *
current(struct hk_accounts *a)
{
	struct mem *m = a->be;
	return a->in_txn ? &m->txn : &m->live;
}

static enum hk_acct_status
mem_get(struct hk_accounts *a, const char *key, size_t klen, struct hk_buf *val)
{
	struct rec *r = find(current(a), key, klen);
	if (r == NULL)
		return HK_ACCT_NOTFOUND;
	buf_reset(val);
	buf_add(val, r->val, r->vlen);
	return HK_ACCT_OK;
}

static enum hk_acct_status
mem_put(struct hk_accounts *a, const char *key, size_t klen, const void *val, size_t vlen)
{
	struct table *t = current(a);
	struct rec *r = find(t, key, klen);
	if (r == NULL) {
		t->v = xgrow(t->v, &t->cap, t->n + 1, sizeof(*t->v));
		r = &t->v[t->n++];
		r->klen = klen;
		r->key = xmalloc(klen + 1);
		memcpy(r->key, key, klen);
		r->key[klen] = '\0';
	} else {
		free(r->val);
	}
	r->val = xmalloc(vlen);
	memcpy(r->val, val, vlen);
	r->vlen = vlen;
	return HK_ACCT_OK;
}

static enum hk_acct_status
mem_del(struct hk_accounts *a, const char *key, size_t klen)
{
	struct table *t = current(a);
	struct rec *r = find(t, key, klen);
	if (r == NULL)
		return HK_ACCT_NOTFOUND;
	free(r->key);
	free(r->val);
	*r = t->v[--t->n];
	return HK_ACCT_OK;
}

static enum hk_acct_status
mem_scan(struct hk_accounts *a, const char *prefix, acct_scan_fn fn, void *ctx)
{
	struct table *t = current(a);
	size_t pl = strlen(prefix);
	/* fn must not modify the table (accounts.c collects keys, then deletes) */
	for (size_t i = 0; i < t->n; i++) {
		struct rec *r = &t->v[i];
		if (r->klen < pl || memcmp(r->key, prefix, pl) != 0)
			continue;
		int rc = fn(ctx, r->key, r->klen, r->val, r->vlen);
		if (rc)
			return rc > 0 ? (enum hk_acct_status)rc : HK_ACCT_OK;
	}
	return HK_ACCT_OK;
}

static enum hk_acct_status
mem_begin(struct hk_accounts *a)
{
	struct mem *m = a->be;
	table_copy(&m->txn, &m->live);
	return HK_ACCT_OK;
}

static enum hk_acct_status
mem_commit(struct hk_accounts *a)
{
	struct mem *m = a->be;
	table_free(&m->live);
	m->live = m->txn;
	memset(&m->txn, 0, sizeof(m->txn));
	m->commits++;
	return HK_ACCT_OK;
}

static void
mem_abort(struct hk_accounts *a)
{
	struct mem *m = a->be;
	table_free(&m->txn);
}

static enum hk_acct_status
mem_refresh(struct hk_accounts *a, bool *changed_r)
{
	(void)a;
	if (changed_r)
		*changed_r = false;
	return HK_ACCT_OK;
}

static void
mem_close(struct hk_accounts *a)
{
	struct mem *m = a->be;
	table_free(&m->live);
	table_free(&m->txn);
	free(m);
	a->be = NULL;
}

static const struct hk_accounts_ops mem_ops = {
	.name = "mem",
	.get = mem_get,
	.put = mem_put,
	.del = mem_del,
	.scan = mem_scan,
	.begin = mem_begin,
	.commit = mem_commit,
	.abort = mem_abort,
	.refresh = mem_refresh,
	.repair = NULL,
	.close = mem_close,
};

struct hk_accounts *
acct_mem_new(const struct hk_accounts_config *cfg)
{
	(void)cfg;
	struct hk_accounts *a = xcalloc(1, sizeof(*a));
	a->ops = &mem_ops;
	a->be = xcalloc(1, sizeof(struct mem));
	return a;
}
