/*
 * dns_cache.h - the answers a resolver keeps (used by dns.c only): a hash
 * table of (name, type) -> outcome, with an expiry time per entry and an
 * LRU list that bounds it.
 *
 * What is stored is the outcome decided by dns.c: the status and, for
 * DNS_OK, the raw answer packet (dns.c parses it again on a hit, so the
 * cache knows nothing about record formats and a hit hands the caller
 * exactly what a fresh answer would). How long an outcome is kept is also
 * dns.c's decision (dns.c: cache_lifetime); the cache only enforces it.
 *
 * Keys are the lower-cased presentation-form name (dns.c: key_of) and
 * the type. Names come from the network (SPF records, MX hosts): the
 * table hashes them with SipHash under a random key per cache, and both
 * the number of entries and the bytes they hold are bounded; the least
 * recently used entry is dropped first.
 *
 * Time is the caller's monotonic clock in milliseconds, so tests and the
 * resolver agree on it. Not thread-safe: a cache belongs to one resolver,
 * which belongs to one event loop.
 */
#ifndef HK_DNS_CACHE_H
#define HK_DNS_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dns.h"

/* Bytes of all entries (packets, keys and bookkeeping): 10,000 entries of
 * a typical 200-byte answer need ~4 MiB; this caps hostile big answers. */
#define DNS_CACHE_MAX_BYTES ((size_t)32 << 20)
/* One answer larger than this is not kept (a TXT answer over TCP can be
 * 64 KiB; SPF records are far below this). */
#define DNS_CACHE_MAX_PACKET 16384

struct dns_cache;

struct dns_cache_hit {
	enum dns_status status;
	const unsigned char *pkt; /* DNS_OK: the answer; valid until the next put */
	size_t len;
	uint32_t ttl_left; /* whole seconds left, rounded up */
};

/* max_entries > 0; max_bytes 0: DNS_CACHE_MAX_BYTES. */
struct dns_cache *dns_cache_new(unsigned max_entries, size_t max_bytes);
void dns_cache_free(struct dns_cache **c);

/* True and *hit_r filled when a live entry exists (it becomes the most
 * recently used); an expired entry found on the way is dropped. */
bool dns_cache_get(struct dns_cache *c, const char *key, enum dns_type type, uint64_t now_ms,
		   struct dns_cache_hit *hit_r);

/* Keeps the outcome for ttl_s seconds, replacing an older entry of the
 * key; ttl_s 0 only drops the older entry. pkt/len: DNS_OK only (copied);
 * an answer over DNS_CACHE_MAX_PACKET is not kept. May evict others. */
void dns_cache_put(struct dns_cache *c, const char *key, enum dns_type type, enum dns_status status,
		   const unsigned char *pkt, size_t len, uint32_t ttl_s, uint64_t now_ms);

unsigned dns_cache_count(const struct dns_cache *c);
size_t dns_cache_bytes(const struct dns_cache *c);
uint64_t dns_cache_evictions(const struct dns_cache *c);

#endif
