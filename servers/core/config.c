/*
 * config.c - defaults and the etc/hikyaku.conf parser (see config.h).
 *
 * SECURITY: the file is the operator's, but errors are still reported with
 * file:line and nothing is guessed: an unknown key is an error.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dns/dns.h"

static const char *const kind_names[LISTEN_KIND_COUNT] = { "mx", "submission", "smtps", "pop3", "pop3s", "imap", "imaps" };

const char *
listener_kind_name(enum listener_kind k)
{
	return k < LISTEN_KIND_COUNT ? kind_names[k] : "?";
}

static void
add_listener(struct hk_config *c, enum listener_kind k, const char *addr, int port)
{
	if (c->nlisteners >= CONFIG_MAX_LISTENERS)
		return;
	struct listener_cfg *l = &c->listeners[c->nlisteners++];
	l->kind = k;
	snprintf(l->addr, sizeof(l->addr), "%s", addr);
	l->port = port;
}

void
config_defaults(struct hk_config *c)
{
	memset(c, 0, sizeof(*c));
	char host[256];
	if (gethostname(host, sizeof(host)) != 0 || strchr(host, '.') == NULL)
		snprintf(host, sizeof(host), "mail.hikyaku.test");
	c->hostname = xstrdup(host);
	c->state_dir = xstrdup("var");
	c->tls_cert = NULL; /* derived from state_dir: var/tls/default.crt */
	c->tls_key = NULL;
	/* unprivileged ports on loopback: what `make run` listens on */
	add_listener(c, LISTEN_MX, "127.0.0.1", 2525);
	add_listener(c, LISTEN_SUBMISSION, "127.0.0.1", 2587);
	add_listener(c, LISTEN_SMTPS, "127.0.0.1", 2465);
	add_listener(c, LISTEN_POP3, "127.0.0.1", 2110);
	add_listener(c, LISTEN_POP3S, "127.0.0.1", 2995);
	add_listener(c, LISTEN_IMAP, "127.0.0.1", 2143);
	add_listener(c, LISTEN_IMAPS, "127.0.0.1", 2993);
	c->max_message_size = 50u << 20;
	c->max_recipients = 100;
	c->max_errors = 10;
	c->timeout_command = 300;
	c->timeout_data = 600;
	c->timeout_pop3 = 600; /* RFC 1939 3: at least 10 minutes */
	c->max_sessions = 2000;
	c->auth_delay_ms = 1000;
	c->auth_block_after = 20;
	c->queue_interval = 30;
	c->retention_interval = 3600;
	c->retention_max_messages = 10000; /* RETENTION_MAX_PER_RUN */
	c->queue_retry = 300;
	c->queue_retry_max = 4 * 3600;
	c->queue_lifetime = 5 * 86400;
	c->queue_delay_warning = 4 * 3600;
	c->queue_concurrency = 20;
	c->queue_timeout = 0;
	c->dns_timeout_ms = DNS_DEFAULT_TIMEOUT_MS;
	c->dns_tries = DNS_DEFAULT_TRIES;
	c->dns_cache_size = DNS_CACHE_DEFAULT_SIZE;
	c->dns_cache_max_ttl = DNS_CACHE_DEFAULT_MAX_TTL;
}

void
config_fini(struct hk_config *c)
{
	free(c->hostname);
	free(c->state_dir);
	free(c->tls_cert);
	free(c->tls_key);
	free(c->user);
	free(c->group);
	free(c->dns_server);
	free(c->transport);
	memset(c, 0, sizeof(*c));
}

bool
config_valid_account_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > CONFIG_MAX_NAME_LEN || s[0] == '-')
		return false;
	bool digits_only = true;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (!isalnum(ch) && ch != '.' && ch != '_' && ch != '-')
			return false;
		if (!isdigit(ch))
			digits_only = false;
	}
	return !digits_only;
}

bool
net_cidr_parse(const char *s, struct net_cidr *out)
{
	char tmp[80];
	snprintf(tmp, sizeof(tmp), "%s", s);
	char *slash = strchr(tmp, '/');
	long bits = -1;
	if (slash) {
		*slash = '\0';
		char *end;
		bits = strtol(slash + 1, &end, 10);
		if (*end || end == slash + 1)
			return false;
	}
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, tmp, out->addr) == 1) {
		out->family = AF_INET;
		if (bits < 0)
			bits = 32;
		if (bits > 32)
			return false;
	} else if (inet_pton(AF_INET6, tmp, out->addr) == 1) {
		out->family = AF_INET6;
		if (bits < 0)
			bits = 128;
		if (bits > 128)
			return false;
	} else {
		return false;
	}
	out->bits = (unsigned)bits;
	return true;
}

bool
net_cidr_contains(const struct net_cidr *n, int family, const void *addr)
{
	if (family != n->family)
		return false;
	const unsigned char *a = addr;
	unsigned full = n->bits / 8, rest = n->bits % 8;
	if (memcmp(a, n->addr, full) != 0)
		return false;
	if (rest == 0)
		return true;
	unsigned char mask = (unsigned char)(0xFF << (8 - rest));
	return (a[full] & mask) == (n->addr[full] & mask);
}

static uint64_t
parse_size(const char *s, bool *ok)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	uint64_t mult = 1;
	if (*end == 'K' || *end == 'k')
		mult = 1024, end++;
	else if (*end == 'M' || *end == 'm')
		mult = 1024 * 1024, end++;
	else if (*end == 'G' || *end == 'g')
		mult = 1024ull * 1024 * 1024, end++;
	*ok = errno == 0 && end != s && *end == '\0' && v <= UINT64_MAX / mult;
	return v * mult;
}

static bool
parse_hostport(const char *s, char *addr, size_t addrsz, int *port)
{
	const char *colon = strrchr(s, ':');
	if (colon == NULL)
		return false;
	size_t n = (size_t)(colon - s);
	if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
		s++;
		n -= 2;
	}
	if (n == 0 || n >= addrsz)
		return false;
	memcpy(addr, s, n);
	addr[n] = '\0';
	unsigned char tmp[16];
	if (inet_pton(AF_INET, addr, tmp) != 1 && inet_pton(AF_INET6, addr, tmp) != 1)
		return false;
	char *end;
	long p = strtol(colon + 1, &end, 10);
	if (*end || p <= 0 || p > 65535)
		return false;
	*port = (int)p;
	return true;
}

int
config_load(struct hk_config *c, const char *path, struct hk_buf *err)
{
	FILE *fp = fopen(path, "r");
	if (fp == NULL) {
		buf_printf(err, "%s: %s", path, strerror(errno));
		return -1;
	}
	char line[1024];
	unsigned lineno = 0;
	bool listeners_reset = false;
	int rc = 0;
	while (fgets(line, sizeof(line), fp)) {
		lineno++;
		char *hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		char *words[8];
		int nw = 0;
		for (char *tok = strtok(line, " \t\r\n"); tok && nw < 8; tok = strtok(NULL, " \t\r\n"))
			words[nw++] = tok;
		if (nw == 0)
			continue;
		const char *k = words[0];
		bool ok = true;
		if (strcmp(k, "hostname") == 0 && nw == 2) {
			free(c->hostname);
			c->hostname = xstrdup(words[1]);
		} else if (strcmp(k, "state_dir") == 0 && nw == 2) {
			free(c->state_dir);
			c->state_dir = xstrdup(words[1]);
		} else if (strcmp(k, "tls_cert") == 0 && nw == 2) {
			free(c->tls_cert);
			c->tls_cert = xstrdup(words[1]);
		} else if (strcmp(k, "tls_key") == 0 && nw == 2) {
			free(c->tls_key);
			c->tls_key = xstrdup(words[1]);
		} else if ((strcmp(k, "user") == 0 || strcmp(k, "group") == 0) && nw == 2) {
			ok = config_valid_account_name(words[1]);
			if (ok) {
				char **dst = k[0] == 'u' ? &c->user : &c->group;
				free(*dst);
				*dst = xstrdup(words[1]);
			}
		} else if (strcmp(k, "listen") == 0 && nw == 3) {
			if (!listeners_reset) {
				c->nlisteners = 0; /* the file's listeners replace the defaults */
				listeners_reset = true;
			}
			int kind = -1;
			for (int i = 0; i < LISTEN_KIND_COUNT; i++)
				if (strcmp(words[1], kind_names[i]) == 0)
					kind = i;
			char addr[64];
			int port;
			ok = kind >= 0 && c->nlisteners < CONFIG_MAX_LISTENERS && parse_hostport(words[2], addr, sizeof(addr), &port);
			if (ok)
				add_listener(c, (enum listener_kind)kind, addr, port);
		} else if (strcmp(k, "relay_network") == 0 && nw == 2) {
			ok = c->nrelay < CONFIG_MAX_NETWORKS && net_cidr_parse(words[1], &c->relay_networks[c->nrelay]);
			if (ok)
				c->nrelay++;
		} else if (strcmp(k, "dns_server") == 0 && nw == 2) {
			free(c->dns_server);
			c->dns_server = xstrdup(words[1]);
		} else if (strncmp(k, "dns_", 4) == 0 && strcmp(k, "dns_server") != 0 && nw == 2) {
			static const struct {
				const char *key;
				uint64_t min, max;
			} dk[] = {
				{ "dns_timeout_ms", 10, DNS_MAX_TIMEOUT_MS },
				{ "dns_tries", 1, DNS_MAX_TRIES },
				{ "dns_cache_size", 0, 1000000 }, /* 0: no cache */
				{ "dns_cache_max_ttl", 1, 86400 },
			};
			unsigned *dd[] = { &c->dns_timeout_ms, &c->dns_tries, &c->dns_cache_size, &c->dns_cache_max_ttl };
			size_t di = 0;
			while (di < 4 && strcmp(k, dk[di].key) != 0)
				di++;
			if (di == 4) {
				buf_printf(err, "%s:%u: unknown setting or wrong number of values: %s", path, lineno, k);
				rc = -1;
				break;
			}
			uint64_t v = parse_size(words[1], &ok);
			ok = ok && v >= dk[di].min && v <= dk[di].max;
			if (ok)
				*dd[di] = (unsigned)v;
		} else if (strcmp(k, "transport") == 0 && nw == 2) {
			free(c->transport);
			c->transport = xstrdup(words[1]);
		} else if (strcmp(k, "max_message_size") == 0 && nw == 2) {
			c->max_message_size = parse_size(words[1], &ok);
		} else if ((strcmp(k, "auth_delay_ms") == 0 || strcmp(k, "auth_block_after") == 0) && nw == 2) {
			uint64_t v = parse_size(words[1], &ok);
			ok = ok && v < 1000000;
			if (ok)
				*(strcmp(k, "auth_delay_ms") == 0 ? &c->auth_delay_ms : &c->auth_block_after) = (unsigned)v;
		} else if (strcmp(k, "allow_plaintext_auth") == 0 && nw == 2) {
			ok = strcmp(words[1], "yes") == 0 || strcmp(words[1], "no") == 0;
			c->allow_plaintext_auth = strcmp(words[1], "yes") == 0;
		} else if ((strcmp(k, "max_recipients") == 0 || strcmp(k, "max_errors") == 0 || strcmp(k, "timeout_command") == 0 ||
		               strcmp(k, "timeout_data") == 0 || strcmp(k, "timeout_pop3") == 0 || strcmp(k, "max_sessions") == 0) && nw == 2) {
			uint64_t v = parse_size(words[1], &ok);
			ok = ok && v > 0 && v < 1000000;
			unsigned *dst = strcmp(k, "max_recipients") == 0 ? &c->max_recipients : strcmp(k, "max_errors") == 0 ? &c->max_errors
			    : strcmp(k, "timeout_command") == 0 ? &c->timeout_command : strcmp(k, "timeout_data") == 0 ? &c->timeout_data
			    : strcmp(k, "timeout_pop3") == 0 ? &c->timeout_pop3 : &c->max_sessions;
			if (ok)
				*dst = (unsigned)v;
		} else if (strncmp(k, "queue_", 6) == 0 && nw == 2) {
			static const char *const qk[] = { "queue_interval", "queue_retry", "queue_retry_max", "queue_lifetime",
				"queue_concurrency", "queue_timeout", "queue_delay_warning" };
			unsigned *qd[] = { &c->queue_interval, &c->queue_retry, &c->queue_retry_max, &c->queue_lifetime,
				&c->queue_concurrency, &c->queue_timeout, &c->queue_delay_warning };
			uint64_t v = parse_size(words[1], &ok);
			size_t qi = 0;
			while (qi < HK_ARRAY_LEN(qk) && strcmp(k, qk[qi]) != 0)
				qi++;
			if (qi == HK_ARRAY_LEN(qk)) {
				buf_printf(err, "%s:%u: unknown setting or wrong number of values: %s", path, lineno, k);
				rc = -1;
				break;
			}
			/* 0 is allowed for queue_timeout (RFC values) and queue_delay_warning (never) */
			ok = ok && v < 100000000 && (v > 0 || qi >= 5);
			if (ok)
				*qd[qi] = (unsigned)v;
		} else if ((strcmp(k, "retention_interval") == 0 || strcmp(k, "retention_max_messages") == 0) && nw == 2) {
			/* interval: seconds, 0 = no sweep (at most a week);
			 * max_messages: per mailbox and run, 1..10,000,000 */
			bool iv = strcmp(k, "retention_interval") == 0;
			uint64_t v = parse_size(words[1], &ok);
			ok = ok && (iv ? v <= 7 * 86400 : v >= 1 && v <= 10000000);
			if (ok)
				*(iv ? &c->retention_interval : &c->retention_max_messages) = (unsigned)v;
		} else {
			buf_printf(err, "%s:%u: unknown setting or wrong number of values: %s", path, lineno, k);
			rc = -1;
			break;
		}
		if (!ok) {
			buf_printf(err, "%s:%u: bad value for %s", path, lineno, k);
			rc = -1;
			break;
		}
	}
	fclose(fp);
	return rc;
}
