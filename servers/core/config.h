/*
 * config.h - the server configuration: an embedded default (what
 * `make run` uses: unprivileged ports on 127.0.0.1, state under ./var,
 * a generated self-signed certificate) overridden by etc/hikyaku.conf.
 *
 * The file is "key value..." lines, '#' comments:
 *   hostname   mail.example.jp
 *   state_dir  /var/lib/hikyaku
 *   listen     mx 0.0.0.0:25
 *   listen     submission 0.0.0.0:587
 *   listen     smtps 0.0.0.0:465
 *   listen     pop3 0.0.0.0:110    (STLS)
 *   listen     pop3s 0.0.0.0:995   (implicit TLS)
 *   listen     imap 0.0.0.0:143    (STARTTLS)
 *   listen     imaps 0.0.0.0:993   (implicit TLS)
 *   tls_cert   /etc/hikyaku/tls/default.crt
 *   tls_key    /etc/hikyaku/tls/default.key
 *   relay_network 192.0.2.0/24        (none by default, not even loopback)
 *   dns_server 127.0.0.1:5353          (default: the system resolver)
 *   dns_timeout_ms 400     (first try; doubled per round over the servers)
 *   dns_tries 3            (rounds over the servers)
 *   dns_cache_size 10000   (answers kept, LRU; 0: no cache)
 *   dns_cache_max_ttl 3600 (seconds, caps every record's TTL)
 *   transport  127.0.0.1:2600          (send all outbound mail there: tests)
 *   queue_interval 30      (seconds between scans of the outbound queue)
 *   queue_retry 300        (first retry delay, doubling up to queue_retry_max)
 *   queue_retry_max 14400
 *   queue_lifetime 432000  (5 days, then the sender gets a bounce)
 *   queue_delay_warning 14400 (NOTIFY=DELAY: the delayed DSN after this long; 0: never)
 *   queue_concurrency 20   (parallel outbound deliveries)
 *   queue_timeout 0        (seconds; caps every SMTP client timeout; 0: RFC 5321)
 *   retention_interval 3600 (seconds between retention sweeps over every
 *                           mailbox; 0: no sweep, retention still runs at
 *                           POP3 login; at most 604800)
 *   retention_max_messages 10000 (messages evaluated per mailbox and run;
 *                           the next run resumes where this one stopped)
 *   max_message_size 50M
 *   max_recipients 100
 *   max_errors 10
 *   timeout_pop3 600       (seconds of silence before a POP3 session ends)
 *   allow_plaintext_auth no (USER/PASS, PLAIN, LOGIN, IMAP LOGIN before TLS)
 *   auth_delay_ms 1000     (back-off after failed logins, doubling to 16x)
 *   auth_block_after 20    (failed logins before a client is blocked 15 min)
 *   user  hikyaku          (started as root: the account to switch to once
 *   group hikyaku           listeners are bound and keys read; default: none,
 *                           stay who started it. See privdrop.h.)
 */
#ifndef HK_CONFIG_H
#define HK_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "util.h"

#define CONFIG_MAX_LISTENERS 16
#define CONFIG_MAX_NETWORKS 64
/* user and group names: what useradd accepts (32, Debian's limit) */
#define CONFIG_MAX_NAME_LEN 32

enum listener_kind { LISTEN_MX, LISTEN_SUBMISSION, LISTEN_SMTPS, LISTEN_POP3, LISTEN_POP3S, LISTEN_IMAP, LISTEN_IMAPS, LISTEN_KIND_COUNT };

struct listener_cfg {
	enum listener_kind kind;
	char addr[64];   /* numeric IPv4 or IPv6 */
	int port;
};

struct net_cidr {
	unsigned char addr[16];
	int family; /* AF_INET / AF_INET6 */
	unsigned bits;
};

struct hk_config {
	char *hostname;
	char *state_dir;
	char *tls_cert, *tls_key;
	char *user, *group;  /* NULL: keep the starting user (and its group) */
	struct listener_cfg listeners[CONFIG_MAX_LISTENERS];
	unsigned nlisteners;
	struct net_cidr relay_networks[CONFIG_MAX_NETWORKS];
	unsigned nrelay;
	char *dns_server;
	unsigned dns_timeout_ms, dns_tries, dns_cache_size, dns_cache_max_ttl;
	char *transport;
	uint64_t max_message_size;
	unsigned max_recipients;
	unsigned max_errors;
	unsigned timeout_command; /* seconds */
	unsigned timeout_data;
	unsigned timeout_pop3;
	bool allow_plaintext_auth; /* password logins without TLS (POP3, IMAP) */
	unsigned max_sessions;
	unsigned auth_delay_ms;   /* first back-off delay after failed logins */
	unsigned auth_block_after; /* failed logins before a client is blocked */
	/* the outbound queue (servers/queue/), all in seconds but concurrency */
	unsigned queue_interval, queue_retry, queue_retry_max, queue_lifetime, queue_concurrency, queue_timeout;
	unsigned queue_delay_warning; /* seconds; 0: no delayed DSNs */
	/* stored mail (core/retention.h): sweep period (0: off), bound per run */
	unsigned retention_interval, retention_max_messages;
};

void config_defaults(struct hk_config *c);
/* Reads a file over the defaults; -1 with "file:line: message" in err. */
int config_load(struct hk_config *c, const char *path, struct hk_buf *err);
void config_fini(struct hk_config *c);
const char *listener_kind_name(enum listener_kind k);
/* A user or group name as the `user`/`group` keys take it: 1..32 of
 * [A-Za-z0-9._-], not starting with '-', and not all digits (a number
 * would be ambiguous between a name and an id). */
bool config_valid_account_name(const char *s);
bool net_cidr_parse(const char *s, struct net_cidr *out);
bool net_cidr_contains(const struct net_cidr *n, int family, const void *addr);

#endif
