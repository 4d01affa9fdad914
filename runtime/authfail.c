/*
 * authfail.c - failed-authentication counters: a hash table of entries on
 * a doubly linked LRU list, under one mutex. See authfail.h.
 *
 * SECURITY: keys come from the network (client addresses, claimed user
 * names). They are truncated to HK_AUTHFAIL_KEY_MAX, hashed with SipHash-2-4
 * under a random key, and the table never grows past max_entries.
 */
#include "authfail.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/rand.h>

#include "siphash.h"
#include "util.h"

enum { KIND_CLIENT = 'c', KIND_ACCOUNT = 'a' };

struct entry {
	struct entry *hnext;          /* hash chain */
	struct entry *prev, *next;    /* LRU list, most recent first */
	uint64_t hash;
	unsigned failures;
	int64_t last_failure;
	int64_t blocked_until;
	size_t keylen;
	char key[HK_AUTHFAIL_KEY_MAX + 2]; /* kind byte + key */
};

struct hk_authfail {
	pthread_mutex_t mu;
	struct hk_authfail_config cfg;
	struct entry **buckets;
	size_t nbuckets, n;
	struct entry *head, *tail;
	uint64_t k0, k1;
};

/* --- table ------------------------------------------------------------------------------ */

void
hk_authfail_config_default(struct hk_authfail_config *c)
{
	c->max_entries = HK_AUTHFAIL_ENTRIES_DEFAULT;
	c->free_failures = 3;
	c->base_delay_ms = 1000;
	c->max_delay_ms = 16000;
	c->ip_block_after = 20;
	c->account_block_after = 0;
	c->block_seconds = 900;
	c->forget_seconds = 3600;
}

struct hk_authfail *
hk_authfail_new(const struct hk_authfail_config *cfg)
{
	struct hk_authfail *af = xcalloc(1, sizeof(*af));
	hk_authfail_config_default(&af->cfg);
	if (cfg) {
		if (cfg->max_entries)
			af->cfg.max_entries = cfg->max_entries;
		if (cfg->free_failures)
			af->cfg.free_failures = cfg->free_failures;
		if (cfg->base_delay_ms)
			af->cfg.base_delay_ms = cfg->base_delay_ms;
		if (cfg->max_delay_ms)
			af->cfg.max_delay_ms = cfg->max_delay_ms;
		if (cfg->block_seconds)
			af->cfg.block_seconds = cfg->block_seconds;
		if (cfg->forget_seconds)
			af->cfg.forget_seconds = cfg->forget_seconds;
		af->cfg.ip_block_after = cfg->ip_block_after;
		af->cfg.account_block_after = cfg->account_block_after;
	}
	af->nbuckets = 64;
	while (af->nbuckets < af->cfg.max_entries && af->nbuckets < ((size_t)1 << 24))
		af->nbuckets <<= 1;
	af->buckets = xcalloc(af->nbuckets, sizeof(*af->buckets));
	uint8_t k[16];
	if (RAND_bytes(k, sizeof(k)) != 1)
		for (size_t i = 0; i < sizeof(k); i++)
			k[i] = (uint8_t)rand();
	memcpy(&af->k0, k, 8);
	memcpy(&af->k1, k + 8, 8);
	pthread_mutex_init(&af->mu, NULL);
	return af;
}

void
hk_authfail_free(struct hk_authfail **afp)
{
	struct hk_authfail *af = *afp;
	if (af == NULL)
		return;
	for (struct entry *e = af->head, *next; e; e = next) {
		next = e->next;
		free(e);
	}
	free(af->buckets);
	pthread_mutex_destroy(&af->mu);
	free(af);
	*afp = NULL;
}

size_t
hk_authfail_size(struct hk_authfail *af)
{
	pthread_mutex_lock(&af->mu);
	size_t n = af->n;
	pthread_mutex_unlock(&af->mu);
	return n;
}

static void
lru_unlink(struct hk_authfail *af, struct entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		af->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		af->tail = e->prev;
	e->prev = e->next = NULL;
}

static void
lru_push(struct hk_authfail *af, struct entry *e)
{
	e->prev = NULL;
	e->next = af->head;
	if (af->head)
		af->head->prev = e;
	af->head = e;
	if (af->tail == NULL)
		af->tail = e;
}

static void
remove_entry(struct hk_authfail *af, struct entry *e)
{
	struct entry **pp = &af->buckets[e->hash & (af->nbuckets - 1)];
	while (*pp && *pp != e)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = e->hnext;
	lru_unlink(af, e);
	af->n--;
	free(e);
}

/* Builds "kind key" (truncated); returns its length. */
static size_t
make_key(char out[HK_AUTHFAIL_KEY_MAX + 2], int kind, const char *key)
{
	size_t n = strnlen(key, HK_AUTHFAIL_KEY_MAX);
	out[0] = (char)kind;
	memcpy(out + 1, key, n);
	/* accounts compare case-insensitively (ASCII): Taro@x and taro@x are one */
	if (kind == KIND_ACCOUNT)
		for (size_t i = 1; i <= n; i++)
			out[i] = ascii_lower(out[i]);
	out[n + 1] = '\0';
	return n + 1;
}

static struct entry *
lookup(struct hk_authfail *af, int kind, const char *key, bool create, int64_t now)
{
	char k[HK_AUTHFAIL_KEY_MAX + 2];
	size_t kl = make_key(k, kind, key);
	uint64_t h = hk_siphash24(af->k0, af->k1, (const uint8_t *)k, kl);
	struct entry *e = af->buckets[h & (af->nbuckets - 1)];
	while (e && !(e->hash == h && e->keylen == kl && memcmp(e->key, k, kl) == 0))
		e = e->hnext;
	if (e) {
		if (e->blocked_until && now >= e->blocked_until) {
			e->blocked_until = 0;
			e->failures = 0;
		}
		if (e->failures && now - e->last_failure >= (int64_t)af->cfg.forget_seconds && e->blocked_until == 0)
			e->failures = 0;
		lru_unlink(af, e);
		lru_push(af, e);
		return e;
	}
	if (!create)
		return NULL;
	while (af->n >= af->cfg.max_entries && af->tail)
		remove_entry(af, af->tail);
	e = xcalloc(1, sizeof(*e));
	e->hash = h;
	e->keylen = kl;
	memcpy(e->key, k, kl + 1);
	size_t b = h & (af->nbuckets - 1);
	e->hnext = af->buckets[b];
	af->buckets[b] = e;
	lru_push(af, e);
	af->n++;
	return e;
}

static unsigned
delay_for(const struct hk_authfail_config *c, unsigned failures)
{
	if (failures <= c->free_failures)
		return 0;
	unsigned steps = failures - c->free_failures - 1;
	uint64_t d = c->base_delay_ms;
	while (steps-- > 0 && d < c->max_delay_ms)
		d *= 2;
	return d > c->max_delay_ms ? c->max_delay_ms : (unsigned)d;
}

static void
verdict_add(const struct hk_authfail_config *c, const struct entry *e, struct hk_authfail_verdict *v, int64_t now)
{
	if (e == NULL)
		return;
	if (e->blocked_until > now) {
		v->blocked = true;
		if (e->blocked_until > v->retry_after)
			v->retry_after = e->blocked_until;
	}
	unsigned d = delay_for(c, e->failures);
	if (d > v->delay_ms)
		v->delay_ms = d;
}

void
hk_authfail_check(struct hk_authfail *af, const char *client, const char *account, int64_t now,
    struct hk_authfail_verdict *v)
{
	memset(v, 0, sizeof(*v));
	pthread_mutex_lock(&af->mu);
	if (client && *client)
		verdict_add(&af->cfg, lookup(af, KIND_CLIENT, client, false, now), v, now);
	if (account && *account)
		verdict_add(&af->cfg, lookup(af, KIND_ACCOUNT, account, false, now), v, now);
	pthread_mutex_unlock(&af->mu);
}

static void
count(struct hk_authfail *af, struct entry *e, unsigned block_after, int64_t now)
{
	if (e->failures < UINT32_MAX)
		e->failures++;
	e->last_failure = now;
	if (block_after && e->failures >= block_after && e->blocked_until <= now)
		e->blocked_until = now + af->cfg.block_seconds;
}

unsigned
hk_authfail_failure(struct hk_authfail *af, const char *client, const char *account, int64_t now)
{
	struct hk_authfail_verdict v = { 0 };
	pthread_mutex_lock(&af->mu);
	if (client && *client) {
		struct entry *e = lookup(af, KIND_CLIENT, client, true, now);
		count(af, e, af->cfg.ip_block_after, now);
		verdict_add(&af->cfg, e, &v, now);
	}
	if (account && *account) {
		struct entry *e = lookup(af, KIND_ACCOUNT, account, true, now);
		count(af, e, af->cfg.account_block_after, now);
		verdict_add(&af->cfg, e, &v, now);
	}
	pthread_mutex_unlock(&af->mu);
	return v.delay_ms;
}

void
hk_authfail_success(struct hk_authfail *af, const char *client, const char *account)
{
	(void)client;
	pthread_mutex_lock(&af->mu);
	if (account && *account) {
		struct entry *e = lookup(af, KIND_ACCOUNT, account, false, 0);
		if (e)
			remove_entry(af, e);
	}
	pthread_mutex_unlock(&af->mu);
}

void
hk_authfail_client_key(const struct sockaddr *sa, char out[HK_AUTHFAIL_KEY_MAX])
{
	out[0] = '\0';
	if (sa == NULL)
		return;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)sa;
		inet_ntop(AF_INET, &s4->sin_addr, out, HK_AUTHFAIL_KEY_MAX);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)sa;
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], out, HK_AUTHFAIL_KEY_MAX);
			return;
		}
		struct in6_addr p = s6->sin6_addr;
		memset(&p.s6_addr[8], 0, 8);
		char buf[INET6_ADDRSTRLEN];
		inet_ntop(AF_INET6, &p, buf, sizeof(buf));
		snprintf(out, HK_AUTHFAIL_KEY_MAX, "%s/64", buf);
	}
}
