/*
 * dns.h - asynchronous DNS lookups (A, AAAA, MX, TXT, PTR) on a libevent
 * loop, for the SMTP server's SPF checks (servers/spf/) and the outbound
 * queue's MX and address lookups. `hikyaku serve` makes one resolver and
 * hands it to both, so they share its cache.
 *
 * Place in the pipeline: a session (or spf.c on its behalf) asks
 * dns_query(); c-ares sends the query and its sockets and timers run on
 * the resolver's event_base; the answer is parsed here (not by c-ares'
 * ares_parse_* helpers) into plain C structs and handed to the callback.
 *
 * Threading: a resolver belongs to one event_base and is used only from
 * that loop's thread. One resolver per loop. Create and free resolvers
 * from one thread at a time (c-ares' library init is reference-counted
 * without a lock), e.g. all at startup.
 *
 * Timeouts: c-ares waits timeout_ms for the first try and doubles the
 * wait for each further round over the servers. The defaults (400 ms,
 * 3 tries) make one lost UDP packet cost 400 ms instead of c-ares' own
 * 2 s to 5 s; a dead server (one configured) costs 0.4+0.8+1.6 = 2.8 s,
 * with two servers 0.4+0.4+0.8 = 1.6 s. 400 ms is far above the answer
 * time of a working resolver nearby (cache hit: under 1 ms, a full
 * recursion: typically 20-300 ms); a retry that overlaps a slow recursion
 * is harmless, the resolver answers both. Servers are asked in
 * resolv.conf order (no ARES_OPT_ROTATE: the first one is usually the
 * local, preferred one; c-ares moves on to the next by itself on a
 * timeout, and "options rotate" in resolv.conf still works).
 *
 * Cache (dns_cache.c, when cache_size > 0): every outcome is kept for a
 * lifetime decided here (dns.c: cache_lifetime, see doc/performance.md):
 *   - DNS_OK: the smallest TTL of the records used (the CNAME links
 *     followed and the records kept), capped at cache_max_ttl;
 *   - DNS_NXDOMAIN, DNS_NODATA (RFC 2308): min(TTL, MINIMUM) of the SOA in
 *     the authority section, DNS_NEG_TTL_DEFAULT without one; capped at
 *     DNS_NEG_TTL_MAX and cache_max_ttl;
 *   - DNS_SERVFAIL, DNS_TIMEOUT: DNS_FAIL_TTL (RFC 9520: at least 1 s), so
 *     a burst of sessions does not queue up behind a dead server one by
 *     one, yet a passing failure costs only the messages of 2 seconds;
 *   - DNS_BADNAME, DNS_ERROR: never (local, not an answer).
 * A hit is delivered like an answer (from the loop, never inside
 * dns_query), with `ttl` the seconds left. Identical queries (same name,
 * ASCII case aside, and type) asked while one is in flight join it: one
 * packet, every asker gets the answer; cancelling one asker leaves the
 * others alone. Joining works with or without the cache.
 *
 * Ownership and lifetime:
 *   - dns_query() returns a handle that stays valid until the callback has
 *     returned or dns_cancel() was called, whichever comes first.
 *   - The callback is never called from inside dns_query(), dns_cancel() or
 *     dns_resolver_free(): always later, from the event loop.
 *   - dns_cancel() guarantees the callback will not run; it is the way for
 *     a session that closes while a query is pending (c-ares cannot drop a
 *     single query; the query finishes inside the resolver and is freed
 *     there). Cancelling a query inside its own callback is a no-op.
 *   - The result and everything it points to belong to the resolver and
 *     are valid only during the callback: copy what you keep.
 *   - dns_resolver_free() drops every pending query without calling its
 *     callback; never call it from inside a callback of the same resolver.
 *     c-ares reads /etc/resolv.conf once, in dns_resolver_new(): create the
 *     resolver before a chroot.
 *
 * Names are in presentation form without the trailing dot: labels joined
 * by '.', and inside a label a backslash escapes the next character
 * ("a\.b" is the one label "a.b", "\\" a backslash). Names in results use
 * the same form, and a byte outside 0x21..0x7e in a returned name is
 * written as \DDD (decimal), so result names never contain spaces or
 * control characters (c-ares 1.18 does not read \DDD back in a query, so
 * such a name is no host name to look up). ASCII case-insensitive.
 *
 * Limits: DNS_MAX_NAME_LEN (255 bytes on the wire); DNS_MAX_RECORDS records
 * are kept from one answer (more set `truncated`); a CNAME chain inside an
 * answer is followed for at most DNS_MAX_CNAME_CHAIN links.
 *
 * SECURITY: DNS answers are untrusted (any domain owner writes them, and
 * off-path spoofing is possible): every length, count and compression
 * pointer is bounds-checked in dns.c; TXT data is binary (may hold NUL and
 * 8-bit bytes) and is passed on with its length.
 */
#ifndef HK_DNS_H
#define HK_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DNS_MAX_NAME_LEN 255	 /* wire-format name, RFC 1035 2.3.4 */
#define DNS_MAX_LABEL_LEN 63	 /* RFC 1035 2.3.4 */
#define DNS_MAX_RECORDS 512	 /* records kept per answer */
#define DNS_MAX_CNAME_CHAIN 16	 /* CNAME links followed inside one answer */
#define DNS_DEFAULT_TIMEOUT_MS 400
#define DNS_DEFAULT_TRIES 3
#define DNS_MAX_TIMEOUT_MS 30000
#define DNS_MAX_TRIES 10
#define DNS_CACHE_DEFAULT_SIZE 10000	 /* entries (config dns_cache_size) */
#define DNS_CACHE_DEFAULT_MAX_TTL 3600	 /* seconds (config dns_cache_max_ttl) */
#define DNS_NEG_TTL_DEFAULT 30		 /* NXDOMAIN/NODATA without an SOA */
#define DNS_NEG_TTL_MAX 900		 /* RFC 2308 5: 1-3 hours is usual; we are shorter */
#define DNS_FAIL_TTL 2			 /* SERVFAIL, timeout */

struct event_base;
struct dns_resolver;
struct dns_query;

enum dns_type { DNS_T_A, DNS_T_AAAA, DNS_T_MX, DNS_T_TXT, DNS_T_PTR };

/*
 * What became of a query. For SPF: DNS_OK, DNS_NODATA and DNS_NXDOMAIN are
 * answers (the last two are "void lookups", RFC 7208 4.6.4); DNS_SERVFAIL
 * and DNS_TIMEOUT are temporary errors (temperror); DNS_BADNAME means no
 * query could be formed (empty label, label over 63, name over 255).
 *
 * c-ares 1.18 treats a SERVFAIL or REFUSED answer as a dead server and
 * tries the next one; when none is left it reports ARES_ECONNREFUSED.
 * That, a real connection refusal, FORMERR, NOTIMP and REFUSED all map to
 * DNS_SERVFAIL.
 */
enum dns_status {
	DNS_OK,	      /* at least one record of the type */
	DNS_NODATA,   /* the name exists, no record of the type (RCODE 0) */
	DNS_NXDOMAIN, /* the name does not exist (RCODE 3) */
	DNS_SERVFAIL, /* server failure, refused, bad or unusable answer */
	DNS_TIMEOUT,  /* no answer within timeout x tries */
	DNS_BADNAME,  /* the name cannot be put in a query */
	DNS_ERROR,    /* local failure (no servers configured, out of memory) */
};

struct dns_addr {
	int family; /* AF_INET or AF_INET6 */
	union {
		uint8_t v4[4];
		uint8_t v6[16];
	} a;
};

struct dns_mx {
	unsigned pref;
	const char *host; /* "" for the null MX "." (RFC 7505) */
};

/* One TXT record: its character-strings joined with nothing in between
 * (RFC 7208 3.3). data[len] is a NUL for convenience; data may hold NULs. */
struct dns_txt {
	const char *data;
	size_t len;
};

struct dns_result {
	enum dns_status status;
	enum dns_type type;
	const char *name; /* the name asked for */
	size_t count;	  /* records in the array for `type` */
	bool truncated;	  /* more than DNS_MAX_RECORDS in the answer */
	uint32_t ttl;	  /* smallest TTL of the records kept (DNS_OK) */
	const struct dns_addr *addrs; /* A, AAAA */
	const struct dns_mx *mx;      /* MX, in answer order */
	const struct dns_txt *txt;    /* TXT, in answer order */
	const char *const *names;     /* PTR, in answer order */
};

struct dns_config {
	/* c-ares server list, e.g. "127.0.0.1:5353" or "192.0.2.1,[::1]:53";
	 * NULL: the nameservers of /etc/resolv.conf (its timeout: and
	 * attempts: options are overridden by the two fields below). */
	const char *servers;
	int timeout_ms; /* first try; 0: DNS_DEFAULT_TIMEOUT_MS */
	int tries;	/* rounds over the servers; 0: DNS_DEFAULT_TRIES */
	unsigned cache_size;	 /* entries kept; 0: no cache (joining still works) */
	unsigned cache_max_ttl;	 /* seconds; 0: DNS_CACHE_DEFAULT_MAX_TTL */
};

/* Counters since dns_resolver_new. asked = cache_hits + joined + sent +
 * refused early (DNS_BADNAME). */
struct dns_stats {
	uint64_t asked;	     /* dns_query calls */
	uint64_t cache_hits; /* answered from the cache */
	uint64_t joined;     /* joined an identical query in flight */
	uint64_t sent;	     /* handed to c-ares (one or more packets each) */
	unsigned cache_entries;
	uint64_t cache_evictions;
};

typedef void (*dns_cb)(const struct dns_result *res, void *arg);

/* NULL on failure (bad server list, c-ares init error); `why_r`, when not
 * NULL, then points at a static message. */
struct dns_resolver *dns_resolver_new(struct event_base *base, const struct dns_config *cfg,
				      const char **why_r);
void dns_resolver_free(struct dns_resolver **r);

/* Never NULL; errors (DNS_BADNAME, DNS_ERROR) also arrive through the
 * callback, from the loop. */
struct dns_query *dns_query(struct dns_resolver *r, const char *name, enum dns_type type, dns_cb cb,
			    void *arg);
/* Clears *q. Safe on NULL and on a query that already finished inside the
 * resolver but whose callback has not run yet. */
void dns_cancel(struct dns_query **q);

/* Queries started and not yet delivered or cancelled. */
unsigned dns_pending(const struct dns_resolver *r);
/* The loop the resolver runs on. */
struct event_base *dns_base(const struct dns_resolver *r);
void dns_get_stats(const struct dns_resolver *r, struct dns_stats *out);

/* The reverse-lookup name of an address: "4.3.2.1.in-addr.arpa" or 32
 * nibbles + ".ip6.arpa" (lower case). `out` needs DNS_PTR_NAME_SIZE bytes.
 * family AF_INET (4 bytes at addr) or AF_INET6 (16 bytes). */
#define DNS_PTR_NAME_SIZE 73
void dns_ptr_name(int family, const void *addr, char *out);

const char *dns_status_str(enum dns_status s);
const char *dns_type_str(enum dns_type t);

/* Parses a DNS answer (for tests and fuzzing; dns_query uses it). Calls
 * `cb` with the result unless the packet is unusable, in which case the
 * result has status DNS_SERVFAIL. Exposed for test_dns.c. */
void dns_parse_answer(const unsigned char *pkt, size_t len, enum dns_type type, const char *name,
		      dns_cb cb, void *arg);

#endif
