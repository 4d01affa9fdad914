/*
 * dns_cache.c - the answer cache of dns_cache.h: a chained hash table
 * (power-of-two buckets, SipHash-2-4 with a random key) whose entries are
 * also on one doubly linked LRU list, most recently used first. Eviction
 * takes the tail until both bounds (entries, bytes) hold again. Expired
 * entries are dropped when looked up or when they reach the tail; no
 * timer walks the table.
 *
 * Ownership: the cache owns its entries (key and packet copied in).
 */
#include "dns_cache.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "siphash.h"
#include "util.h"

#define MAX_BUCKETS ((size_t)1 << 20)

struct entry {
	struct entry *hnext;	   /* hash chain */
	struct entry *prev, *next; /* LRU list, most recent first */
	uint64_t hash;
	uint64_t expires_ms;
	enum dns_type type;
	enum dns_status status;
	size_t keylen, len;
	unsigned char *pkt;
	char key[]; /* NUL-terminated */
};

struct dns_cache {
	struct entry **buckets;
	size_t nbuckets;
	struct entry *head, *tail;
	unsigned count, max_entries;
	size_t bytes, max_bytes;
	uint64_t evictions;
	uint64_t k0, k1;
};

static size_t
entry_bytes(const struct entry *e)
{
	return sizeof(*e) + e->keylen + 1 + e->len;
}

static uint64_t
key_hash(const struct dns_cache *c, const char *key, size_t keylen, enum dns_type type)
{
	/* the type is mixed in by the key: the same name's A and MX differ */
	return hk_siphash24(c->k0, c->k1 ^ ((uint64_t)type + 1), (const uint8_t *)key, keylen);
}

struct dns_cache *
dns_cache_new(unsigned max_entries, size_t max_bytes)
{
	struct dns_cache *c = xcalloc(1, sizeof(*c));
	c->max_entries = max_entries ? max_entries : 1;
	c->max_bytes = max_bytes ? max_bytes : DNS_CACHE_MAX_BYTES;
	c->nbuckets = 64;
	while (c->nbuckets < c->max_entries && c->nbuckets < MAX_BUCKETS)
		c->nbuckets <<= 1;
	c->buckets = xcalloc(c->nbuckets, sizeof(*c->buckets));
	uint8_t k[16];
	if (getrandom(k, sizeof(k), GRND_NONBLOCK) != (ssize_t)sizeof(k))
		for (size_t i = 0; i < sizeof(k); i++)
			k[i] = (uint8_t)rand(); /* early boot only; still a working table */
	memcpy(&c->k0, k, 8);
	memcpy(&c->k1, k + 8, 8);
	return c;
}

static void
lru_unlink(struct dns_cache *c, struct entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		c->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		c->tail = e->prev;
	e->prev = e->next = NULL;
}

static void
lru_push(struct dns_cache *c, struct entry *e)
{
	e->prev = NULL;
	e->next = c->head;
	if (c->head)
		c->head->prev = e;
	c->head = e;
	if (!c->tail)
		c->tail = e;
}

static void
entry_drop(struct dns_cache *c, struct entry *e)
{
	struct entry **pp = &c->buckets[e->hash & (c->nbuckets - 1)];
	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	lru_unlink(c, e);
	c->count--;
	c->bytes -= entry_bytes(e);
	free(e->pkt);
	free(e);
}

void
dns_cache_free(struct dns_cache **cp)
{
	struct dns_cache *c = *cp;
	if (!c)
		return;
	*cp = NULL;
	for (struct entry *e = c->head, *next; e; e = next) {
		next = e->next;
		free(e->pkt);
		free(e);
	}
	free(c->buckets);
	free(c);
}

static struct entry *
find(struct dns_cache *c, const char *key, size_t keylen, enum dns_type type, uint64_t h)
{
	struct entry *e = c->buckets[h & (c->nbuckets - 1)];
	while (e && !(e->hash == h && e->type == type && e->keylen == keylen && memcmp(e->key, key, keylen) == 0))
		e = e->hnext;
	return e;
}

bool
dns_cache_get(struct dns_cache *c, const char *key, enum dns_type type, uint64_t now_ms, struct dns_cache_hit *hit_r)
{
	size_t keylen = strlen(key);
	uint64_t h = key_hash(c, key, keylen, type);
	struct entry *e = find(c, key, keylen, type, h);
	if (!e)
		return false;
	if (e->expires_ms <= now_ms) {
		entry_drop(c, e);
		return false;
	}
	lru_unlink(c, e);
	lru_push(c, e);
	hit_r->status = e->status;
	hit_r->pkt = e->pkt;
	hit_r->len = e->len;
	hit_r->ttl_left = (uint32_t)((e->expires_ms - now_ms + 999) / 1000);
	return true;
}

void
dns_cache_put(struct dns_cache *c, const char *key, enum dns_type type, enum dns_status status,
	      const unsigned char *pkt, size_t len, uint32_t ttl_s, uint64_t now_ms)
{
	size_t keylen = strlen(key);
	uint64_t h = key_hash(c, key, keylen, type);
	struct entry *old = find(c, key, keylen, type, h);
	if (old)
		entry_drop(c, old);
	if (ttl_s == 0 || keylen > DNS_MAX_NAME_LEN * 4 || (status == DNS_OK && len > DNS_CACHE_MAX_PACKET))
		return;
	if (status != DNS_OK)
		len = 0;
	struct entry *e = xcalloc(1, sizeof(*e) + keylen + 1);
	e->hash = h;
	e->type = type;
	e->status = status;
	e->expires_ms = now_ms + (uint64_t)ttl_s * 1000;
	e->keylen = keylen;
	memcpy(e->key, key, keylen + 1);
	if (len) {
		e->pkt = xmalloc(len);
		memcpy(e->pkt, pkt, len);
		e->len = len;
	}
	struct entry **b = &c->buckets[h & (c->nbuckets - 1)];
	e->hnext = *b;
	*b = e;
	lru_push(c, e);
	c->count++;
	c->bytes += entry_bytes(e);
	/* the new entry is at the head: it is never the one evicted unless
	 * it alone breaks the byte bound, which it cannot (max_bytes is far
	 * above DNS_CACHE_MAX_PACKET) */
	while ((c->count > c->max_entries || c->bytes > c->max_bytes) && c->tail != e) {
		entry_drop(c, c->tail);
		c->evictions++;
	}
}

unsigned
dns_cache_count(const struct dns_cache *c)
{
	return c->count;
}

size_t
dns_cache_bytes(const struct dns_cache *c)
{
	return c->bytes;
}

uint64_t
dns_cache_evictions(const struct dns_cache *c)
{
	return c->evictions;
}
