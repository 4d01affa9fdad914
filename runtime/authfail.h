/*
 * authfail.h - failed-authentication counting with back-off, per client
 * and per account, in memory, bounded (LRU).
 *
 * The servers share one instance (it has its own mutex):
 *
 *   hk_authfail_check(af, client, NULL, now, &v)       at connect / AUTH start
 *     v.blocked: refuse ("454 4.7.0" / "NO [UNAVAILABLE]") until v.retry_after
 *   ... verify (worker thread) ...
 *   failure: delay = hk_authfail_failure(af, client, account, now);
 *            answer the failure after delay ms (an event-loop timer, never sleep)
 *   success: hk_authfail_success(af, client, account);
 *
 * Policy: the first `free_failures` failures cost nothing; after that the
 * delay doubles per failure from base_delay_ms up to max_delay_ms.
 * A client (IP address; IPv6 by /64, see hk_authfail_client_key) is blocked
 * for block_seconds after ip_block_after failures. Accounts only get the
 * delay by default (account_block_after = 0): blocking them would let
 * anyone lock a user out. Failures older than forget_seconds are
 * forgotten. A success clears the account's count, not the client's.
 *
 * Memory: at most max_entries entries (about 400 bytes each); the least
 * recently used one is dropped first. Keys are hashed with SipHash under
 * a random key, so attackers cannot aim at one hash chain.
 */
#ifndef HK_AUTHFAIL_H
#define HK_AUTHFAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sockaddr;

#define HK_AUTHFAIL_KEY_MAX 320    /* client key or account address */
#define HK_AUTHFAIL_ENTRIES_DEFAULT 65536

struct hk_authfail_config {
	size_t max_entries;          /* default HK_AUTHFAIL_ENTRIES_DEFAULT */
	unsigned free_failures;      /* default 3 */
	unsigned base_delay_ms;      /* default 1000 */
	unsigned max_delay_ms;       /* default 16000 */
	unsigned ip_block_after;     /* default 20; 0 = never block clients */
	unsigned account_block_after;/* default 0 = never block accounts */
	unsigned block_seconds;      /* default 900 */
	unsigned forget_seconds;     /* default 3600 */
};

/* The defaults above. */
void hk_authfail_config_default(struct hk_authfail_config *c);

struct hk_authfail;

/* cfg NULL: defaults; zero members of cfg mean "default" except the two
 * *_block_after, which are taken as given. */
struct hk_authfail *hk_authfail_new(const struct hk_authfail_config *cfg);
void hk_authfail_free(struct hk_authfail **af);

struct hk_authfail_verdict {
	bool blocked;
	int64_t retry_after;   /* unix time the block ends (when blocked) */
	unsigned delay_ms;     /* the larger of the client's and the account's delay */
};

/* client or account may be NULL (not known yet). */
void hk_authfail_check(struct hk_authfail *af, const char *client, const char *account, int64_t now,
    struct hk_authfail_verdict *v);
/* Counts one failure for both; returns the delay to impose on this reply. */
unsigned hk_authfail_failure(struct hk_authfail *af, const char *client, const char *account, int64_t now);
void hk_authfail_success(struct hk_authfail *af, const char *client, const char *account);
/* Entries in use (tests, statistics). */
size_t hk_authfail_size(struct hk_authfail *af);

/* The client key of an address: IPv4 as text, IPv4-mapped IPv6 as IPv4,
 * other IPv6 as its /64 prefix ("2001:db8:1:2::/64"). "" for other
 * families. */
void hk_authfail_client_key(const struct sockaddr *sa, char out[HK_AUTHFAIL_KEY_MAX]);

#endif
