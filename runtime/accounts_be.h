/*
 * accounts_be.h - the back-end function table of the accounts store
 * (internal to runtime/accounts*.c). A back end stores opaque records
 * under byte-string keys; accounts.c gives them meaning.
 *
 * Keys (ASCII, no NUL):
 *   "m"                    meta record (schema version, generation)
 *   "d:<domain>"           a domain (A-label, lower case)
 *   "u:<domain>/<local>"   a user (local part lower-cased)
 *   "a:<domain>/<local>"   an alias (idem)
 *   "p:<plan>"             a stored plan
 * Values are records of accounts_codec.c, at most HK_ACCT_RECORD_MAX bytes.
 *
 * Contract: get/scan outside a transaction read the latest committed
 * state (the back end refreshes itself); put/del only inside a transaction
 * (accounts.c wraps single writes in one). Errors set a message with
 * acct_set_error.
 */
#ifndef HK_ACCOUNTS_BE_H
#define HK_ACCOUNTS_BE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "accounts.h"
#include "util.h"

struct hk_secretbox;

/* Called for each record of a scan: return 0 to go on, an hk_acct_status
 * to stop with that result, or -1 to stop with OK. It must not modify the
 * store. */
typedef int (*acct_scan_fn)(void *ctx, const char *key, size_t klen, const uint8_t *val, size_t vlen);

struct hk_accounts_ops {
	const char *name;
	/* NOTFOUND, OK with the value in val (reset first), or an error */
	enum hk_acct_status (*get)(struct hk_accounts *a, const char *key, size_t klen, struct hk_buf *val);
	enum hk_acct_status (*put)(struct hk_accounts *a, const char *key, size_t klen, const void *val, size_t vlen);
	/* NOTFOUND when absent */
	enum hk_acct_status (*del)(struct hk_accounts *a, const char *key, size_t klen);
	/* every record whose key starts with prefix, in no particular order */
	enum hk_acct_status (*scan)(struct hk_accounts *a, const char *prefix, acct_scan_fn fn, void *ctx);
	enum hk_acct_status (*begin)(struct hk_accounts *a);
	enum hk_acct_status (*commit)(struct hk_accounts *a);
	void (*abort)(struct hk_accounts *a);
	/* reopen if another process replaced the store; *changed_r when it did */
	enum hk_acct_status (*refresh)(struct hk_accounts *a, bool *changed_r);
	/* salvage into a fresh store (NULL: not supported) */
	enum hk_acct_status (*repair)(struct hk_accounts *a, struct hk_accounts_check *out);
	void (*close)(struct hk_accounts *a);
};

struct hk_accounts {
	const struct hk_accounts_ops *ops;
	void *be;                   /* back-end state */
	bool in_txn;
	struct hk_accounts_config cfg;
	char *path, *key_path;      /* copies of cfg strings */
	struct hk_secretbox *box;   /* loaded on first need */
	uint64_t seen_generation;   /* for hk_accounts_refresh */
	char err[512];
};

void acct_set_error(struct hk_accounts *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Copies a key for messages, replacing unprintable bytes. */
void acct_printable(char *out, size_t cap, const char *key, size_t klen);

/* Back ends. */
struct hk_accounts *acct_gdbm_new(const struct hk_accounts_config *cfg);
struct hk_accounts *acct_mem_new(const struct hk_accounts_config *cfg);

/* --- records (accounts_codec.c) --------------------------------------------------------- */
#define ACCT_FORMAT_VERSION 1
#define ACCT_SCHEMA_VERSION 1

struct acct_meta {
	uint32_t schema;
	uint64_t generation;
};

void acct_encode_domain(const struct hk_domain *d, struct hk_buf *out);
void acct_encode_user(const struct hk_user *u, struct hk_buf *out);
void acct_encode_alias(const struct hk_alias *al, struct hk_buf *out);
void acct_encode_plan(const struct hk_plan *p, struct hk_buf *out);
void acct_encode_meta(const struct acct_meta *m, struct hk_buf *out);
/* Decoders: 0, or -1 with a reason in why (a damaged record). They check
 * the type byte, the version, every length and every field's syntax. */
int acct_decode_domain(const uint8_t *p, size_t n, struct hk_domain *d, char *why, size_t whylen);
int acct_decode_user(const uint8_t *p, size_t n, struct hk_user *u, char *why, size_t whylen);
int acct_decode_alias(const uint8_t *p, size_t n, struct hk_alias *al, char *why, size_t whylen);
int acct_decode_plan(const uint8_t *p, size_t n, struct hk_plan *pl, char *why, size_t whylen);
int acct_decode_meta(const uint8_t *p, size_t n, struct acct_meta *m, char *why, size_t whylen);

/* Whether a record decodes and matches its key (verify, repair). */
bool acct_record_valid(const char *key, size_t klen, const uint8_t *val, size_t vlen, char *why, size_t whylen);

/* Key builders (accounts.c); return the length. */
size_t acct_key_domain(char *out, size_t cap, const char *domain);
size_t acct_key_user(char *out, size_t cap, const char *local, const char *domain);
size_t acct_key_alias(char *out, size_t cap, const char *local, const char *domain);
size_t acct_key_plan(char *out, size_t cap, const char *name);
#define ACCT_KEY_MAX (2 + HK_DOMAIN_MAX + 1 + HK_LOCAL_MAX + 1)

/* Address syntax (accounts_addr.c) shared with the codec. */
bool acct_valid_domain(const char *d);
bool acct_valid_local(const char *l, bool hosted);
bool acct_valid_plan_name(const char *name);
bool acct_valid_address(const char *addr);
/* out = local "@" domain, or "" when it does not fit in cap. */
void acct_join_address(char *out, size_t cap, const char *local, const char *domain);

#endif
