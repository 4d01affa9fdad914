/*
 * spf.h - Sender Policy Framework (RFC 7208): check_host() as an
 * asynchronous state machine on the dns module, plus the Received-SPF
 * (RFC 7208 9.1) and Authentication-Results "spf=" (RFC 8601) texts.
 *
 * Place in the pipeline: the SMTP session starts a check once it knows the
 * client address, the HELO name and MAIL FROM (spf_check), and carries on
 * reading commands while the check runs; the callback gives an
 * `enum hk_spf` (lang/fields.h, the order the rule VM expects) for the
 * `spf` field of the mail/rcpt stage rules, and the texts for the headers.
 *
 * Usage, on one event loop (error handling left out):
 *   dns = dns_resolver_new(base, NULL, &why);          before any chroot
 *   spf = spf_ctx_new(dns, &(struct spf_config){ .receiver = "mx.example.org" });
 *   sess->spf = spf_check(spf, peer, helo, "user@example.com", on_spf, sess);
 *   on_spf(res, sess): sess->spf = NULL; sess->spf_res = *res; resume the session
 *   session closes, RSET or a new MAIL FROM meanwhile: spf_cancel(&sess->spf);
 *   shutdown: spf_ctx_free(&spf); dns_resolver_free(&dns);
 * MAIL FROM is the bare reverse-path (no angle brackets; "" for <>); a
 * non-ASCII (SMTPUTF8) domain should be given as A-labels.
 *
 * Threading: a context belongs to one event loop, through its resolver;
 * all calls happen on that loop's thread.
 *
 * Ownership and lifetime:
 *   - struct spf_ctx holds the configuration and the resolver pointer (not
 *     owned: free the context first, then the resolver).
 *   - spf_check() returns a handle valid until the callback has started or
 *     spf_cancel() was called. The callback is never called from inside
 *     spf_check() or spf_cancel(); after it returns the check is freed, so
 *     clear your copy of the handle in the callback. spf_cancel() inside
 *     the check's own callback is a harmless no-op.
 *   - A session that closes while a check is pending calls spf_cancel():
 *     no callback follows, every DNS query of the check is cancelled.
 *   - struct spf_result is a plain value (fixed-size arrays, no pointers):
 *     copy it with `=` and keep it as long as you like.
 *   - spf_ctx_free() cancels the checks still running, without callbacks.
 *
 * Limits (RFC 7208 4.6.4 and our own; named below): 10 terms that cause
 * DNS lookups (include, a, mx, ptr, exists, redirect), 2 void lookups, 10
 * MX names per mx, 10 PTR names per ptr or %{p}, an overall deadline
 * (SPF_DEFAULT_TIMEOUT_MS, at least the 20 s RFC 7208 4.6.4 asks for),
 * macro expansions of at most SPF_MAX_EXPANSION bytes, identities of at
 * most SPF_MAX_SENDER_LEN / SPF_MAX_DOMAIN_LEN bytes (longer: "none").
 *
 * SECURITY: SPF records, explanation TXT records and everything else DNS
 * returns are written by whoever controls the sender's domain (untrusted);
 * so are the HELO name and MAIL FROM. Parsing is length-based (records may
 * hold NUL), each limit above is enforced before work is done, and the
 * texts in struct spf_result are printable ASCII only (no CR, LF or
 * control bytes) and bounded, so they can go into SMTP replies and
 * headers.
 */
#ifndef HK_SPF_H
#define HK_SPF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "fields.h" /* enum hk_spf: SPF_PASS .. SPF_PERMERROR */
#include "util.h"

#define SPF_MAX_DNS_TERMS 10	   /* RFC 7208 4.6.4: include a mx ptr exists redirect */
#define SPF_MAX_VOID_LOOKUPS 2	   /* RFC 7208 4.6.4 */
#define SPF_MAX_MX_NAMES 10	   /* RFC 7208 4.6.4: more -> permerror */
#define SPF_MAX_PTR_NAMES 10	   /* RFC 7208 4.6.4: the rest is ignored */
#define SPF_MAX_DOMAIN_LEN 253	   /* RFC 7208 4.3, 7.3 (text form) */
#define SPF_MAX_SENDER_LEN 320	   /* local-part 64 + "@" + domain 255 */
#define SPF_MAX_EXPANSION 4096	   /* one macro expansion, before truncation */
#define SPF_MAX_EXPLANATION 256	   /* bytes kept of an explanation */
#define SPF_MAX_MECHANISM 128	   /* bytes kept of the matching term */
#define SPF_MAX_PROBLEM 160	   /* bytes of the reason for an error */
#define SPF_DEFAULT_TIMEOUT_MS 20000 /* whole check; RFC 7208 4.6.4 wants >= 20 s */
#define SPF_DEFAULT_EXPLANATION "%{o} did not authorize %{c} to send mail (SPF)"

struct dns_resolver;
struct spf_ctx;
struct spf_check;

struct spf_config {
	/* Name of this host for %{r} and the Received-SPF receiver= key;
	 * NULL: "unknown" (RFC 7208 7.3). */
	const char *receiver;
	/* Explanation for a fail whose record has no usable exp=; it is
	 * macro-expanded like exp= text. NULL: SPF_DEFAULT_EXPLANATION. */
	const char *default_explanation;
	/* Deadline of one check, ms; 0: SPF_DEFAULT_TIMEOUT_MS. */
	int timeout_ms;
	/* For tests: the %{t} timestamp; 0: the current time. */
	time_t fixed_time;
};

enum spf_identity { SPF_ID_MAILFROM, SPF_ID_HELO };

struct spf_result {
	enum hk_spf result;
	enum spf_identity identity; /* HELO when MAIL FROM was empty */
	char domain[SPF_MAX_DOMAIN_LEN + 1];  /* the <domain> first checked */
	char sender[SPF_MAX_SENDER_LEN + 1];  /* <sender>: postmaster@helo if empty */
	char helo[SPF_MAX_DOMAIN_LEN + 1];    /* printable copy of the HELO name */
	char client_ip[46];		      /* text form; v4 for v4-mapped v6 */
	char receiver[SPF_MAX_DOMAIN_LEN + 1];
	/* The directive that decided, as written ("-all", "+include:x.org"),
	 * "default" when none matched, "" for none/temperror/permerror. */
	char mechanism[SPF_MAX_MECHANISM + 1];
	/* SPF_FAIL: the expanded exp= text or the default; else "". */
	char explanation[SPF_MAX_EXPLANATION + 1];
	/* temperror, permerror, none: why, in our words (may quote a DNS name). */
	char problem[SPF_MAX_PROBLEM + 1];
	unsigned dns_terms;    /* terms that cost a lookup */
	unsigned void_lookups; /* NODATA or NXDOMAIN answers */
};

typedef void (*spf_cb)(const struct spf_result *res, void *arg);

struct spf_ctx *spf_ctx_new(struct dns_resolver *dns, const struct spf_config *cfg);
void spf_ctx_free(struct spf_ctx **ctx);

/*
 * Starts check_host() for the MAIL FROM identity (RFC 7208 2.4): <sender>
 * is mail_from, or "postmaster@" helo when mail_from is NULL or "" (then
 * the identity is HELO). `ip` is the client address (AF_INET or AF_INET6;
 * an IPv4-mapped IPv6 address counts as IPv4). helo may be NULL.
 * Never returns NULL; bad input arrives through the callback as a result
 * ("none" for a malformed identity, "permerror" for an unsupported
 * address family).
 */
struct spf_check *spf_check(struct spf_ctx *ctx, const struct sockaddr *ip, const char *helo,
			    const char *mail_from, spf_cb cb, void *arg);
/* check_host() for the HELO identity alone (RFC 7208 2.3). */
struct spf_check *spf_check_helo(struct spf_ctx *ctx, const struct sockaddr *ip, const char *helo,
				 spf_cb cb, void *arg);
/* Clears *h; NULL-safe. */
void spf_cancel(struct spf_check **h);
/* Checks started and not yet finished or cancelled. */
unsigned spf_running(const struct spf_ctx *ctx);

const char *spf_result_str(enum hk_spf r); /* "pass", "fail", ... (RFC 7208 8) */

/*
 * The value of a Received-SPF header field (RFC 7208 9.1), without the
 * field name and unfolded, e.g.
 *   pass (mx.example.org: domain of a@example.com designates 192.0.2.1 as
 *   permitted sender) receiver=mx.example.org; client-ip=192.0.2.1;
 *   envelope-from="a@example.com"; helo=mail.example.com;
 *   identity=mailfrom; mechanism="ip4:192.0.2.0/24"
 * Hand it to hk_header_put(out, "Received-SPF", ...) to fold it.
 */
void spf_received_spf(const struct spf_result *r, struct hk_buf *out);

/* The resinfo for Authentication-Results (RFC 8601 2.7.2), e.g.
 * "spf=pass smtp.mailfrom=example.com" or "spf=none smtp.helo=foo.example". */
void spf_auth_results(const struct spf_result *r, struct hk_buf *out);

/* --- exposed for the unit tests ------------------------------------------ */

/* What the macros of RFC 7208 7 expand to. */
struct spf_macro_env {
	const char *sender;	 /* s */
	const char *local;	 /* l */
	const char *sender_domain; /* o */
	const char *domain;	 /* d */
	const char *helo;	 /* h */
	const char *receiver;	 /* r */
	const char *validated;	 /* p (already chosen), NULL: "unknown" */
	int family;		 /* AF_INET or AF_INET6 (i, c, v) */
	uint8_t addr[16];	 /* 4 or 16 bytes */
	time_t now;		 /* t */
};

/* Checks a macro-string (RFC 7208 7.1): `exp` allows the letters c, r, t
 * and spaces (explain-string). *uses_p_r (may be NULL) tells whether the
 * letter p occurs. */
bool spf_macro_check(const char *s, size_t len, bool exp, bool *uses_p_r);
/* Expands a macro-string already checked; false if the result would pass
 * SPF_MAX_EXPANSION bytes. Appends to out. */
bool spf_macro_expand(const struct spf_macro_env *env, const char *s, size_t len, bool exp,
		      struct hk_buf *out);
/* RFC 7208 7.3 on an expanded domain: drops one trailing dot, then whole
 * labels on the left until it fits 253 bytes; false if it has an empty
 * label or one over 63 bytes (no DNS query can be made of it). */
bool spf_domain_finish(struct hk_buf *name);
/* Does addr (family AF_INET/AF_INET6, 4/16 bytes) lie in net/prefix? */
bool spf_cidr_match(int family, const uint8_t *addr, const uint8_t *net, unsigned prefix);
/* Syntax-checks a record ("v=spf1 ..."): true if check_host() would
 * accept it; *why_r gets a static reason otherwise. */
bool spf_record_check(const char *rec, size_t len, const char **why_r);

#endif
