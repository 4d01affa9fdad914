/*
 * accounts.h - the accounts store: hosted domains, plans, users with their
 * credentials, aliases. The one interface the SMTP, POP3 and IMAP servers,
 * the web control panel and the administration commands use.
 *
 * Back ends sit behind a small key-value function table (accounts_be.h):
 * accounts_gdbm.c (var/accounts.gdbm) and accounts_mem.c (tests). Records,
 * validation, plans and credentials live here, above the back end, so a
 * PostgreSQL back end only has to store bytes.
 *
 * Threads: a `struct hk_accounts` is used by one thread at a time (GDBM
 * handles are per thread). Open one per worker thread. Every call may block
 * (file I/O; hk_accounts_user_set_password and hk_accounts_auth_* run
 * yescrypt, ~20 ms): call them from a worker thread, never on an event loop.
 *
 * Concurrency (GDBM): readers never block and never see half a write.
 * Writers take var/accounts.gdbm.lock, build a complete new file next to
 * the old one, fsync it and rename it over accounts.gdbm. A reader notices
 * the new file (inode changed) at its next lookup and reopens. See
 * accounts_gdbm.c for the details.
 *
 * Ownership: every record is a plain struct with fixed-size arrays; the
 * caller owns it (stack or heap), nothing inside needs freeing. _list
 * functions return a heap array: free() it.
 *
 * SECURITY: records come from disk and are parsed with bounds checks
 * (accounts_codec.c); a damaged record is HK_ACCT_CORRUPT, never a crash.
 * User input (addresses, domains) is normalised and validated before use.
 */
#ifndef HK_ACCOUNTS_H
#define HK_ACCOUNTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scram.h"

/* --- limits (also the limits of the on-disk format) --------------------- */
#define HK_DOMAIN_MAX 253          /* A-label form, RFC 1035 */
#define HK_LABEL_MAX 63
#define HK_LOCAL_MAX 64            /* RFC 5321 4.5.3.1.1 */
#define HK_ADDRESS_MAX 254         /* RFC 5321 path (256) minus the brackets */
#define HK_PLAN_NAME_MAX 32
#define HK_ACCT_PATH_MAX 1024      /* certificate and key paths */
#define HK_PW_HASH_MAX 255         /* crypt(3) strings we store */
#define HK_LEGACY_BLOB_MAX 600     /* encrypted legacy secret (secretbox.h) */
#define HK_ALIAS_MAX_TARGETS 50    /* storage cap; the plan's max_forward is the policy */
#define HK_ALIAS_MAX_DEPTH 4       /* alias -> alias -> ... when expanding */
#define HK_EXPAND_MAX 100          /* final recipients of one expansion */
#define HK_ACCT_RECORD_MAX 16384   /* bytes of one stored record */
#define HK_ACCT_LOCK_TIMEOUT_MS 5000

/* --- status --------------------------------------------------------------- */
enum hk_acct_status {
	HK_ACCT_OK = 0,
	HK_ACCT_NOTFOUND,   /* no such domain, user, alias or plan */
	HK_ACCT_EXISTS,     /* already there (or the name is taken by a user/alias) */
	HK_ACCT_INVALID,    /* bad address, domain, option or password; see error text */
	HK_ACCT_NODOMAIN,   /* the address's domain is not hosted */
	HK_ACCT_NOTEMPTY,   /* domain still has users or aliases */
	HK_ACCT_LIMIT,      /* a plan or format limit (alias targets ...) */
	HK_ACCT_BUSY,       /* another writer holds the lock (timeout) */
	HK_ACCT_CORRUPT,    /* damaged file or record */
	HK_ACCT_IO,         /* system error (errno in the error text) */
	HK_ACCT_INSECURE,   /* key file readable by others, wrong owner ... */
};

const char *hk_acct_status_str(enum hk_acct_status st);

/* --- records ---------------------------------------------------------------- */

/* A plan: the service levels of the reference service. The built-in ones
 * (entry, light, standard, business) can be overridden by stored records. */
struct hk_plan {
	char name[HK_PLAN_NAME_MAX + 1];
	int64_t quota;               /* bytes per mailbox, 0 = unlimited */
	int64_t max_message_size;    /* bytes per message */
	int64_t retention_days;      /* days mail is kept on the server, 0 = forever */
	bool strict_retention;       /* delete after the period even if flagged */
	uint32_t max_forward;        /* forward targets per address (and per alias) */
	uint32_t max_lists;          /* mailing lists per domain */
	uint32_t list_members;       /* members per list included in the plan */
	uint32_t list_members_max;   /* members per list with the paid option */
	int64_t list_max_message_size;
	bool list_attachments;       /* lists deliver attachments by default */
	bool builtin;                /* (not stored) came from the built-in table */
};

enum {
	HK_DOMAIN_LEGACY_AUTH = 1u << 0, /* CRAM-MD5 and APOP allowed (off by default) */
	HK_DOMAIN_DISABLED = 1u << 1,    /* keep the data, refuse mail and logins */
};

struct hk_domain {
	char name[HK_DOMAIN_MAX + 1];  /* A-label, lower case, no trailing dot */
	char plan[HK_PLAN_NAME_MAX + 1];
	uint32_t flags;                /* HK_DOMAIN_* */
	int64_t max_message_size;      /* 0 = the plan's */
	char cert_path[HK_ACCT_PATH_MAX + 1]; /* SNI certificate chain (PEM), "" = default */
	char key_path[HK_ACCT_PATH_MAX + 1];
	char catchall[HK_ADDRESS_MAX + 1];    /* unknown local parts go here, "" = none */
	int64_t created;               /* unix time */
};

enum {
	HK_USER_DISABLED = 1u << 0,    /* no logins, mail refused */
};

struct hk_user {
	char address[HK_ADDRESS_MAX + 1]; /* local@domain: local part as created, domain A-label */
	char local[HK_LOCAL_MAX + 1];
	char domain[HK_DOMAIN_MAX + 1];
	char plan[HK_PLAN_NAME_MAX + 1];  /* "" = the domain's plan */
	int64_t quota;                    /* 0 = the plan's */
	uint32_t flags;                   /* HK_USER_* */
	int64_t created, pw_changed;      /* unix time */
	char pw_hash[HK_PW_HASH_MAX + 1]; /* crypt(3) string, "" = no password (no login) */
	bool has_scram;
	struct hk_scram_keys scram;       /* SCRAM-SHA-256, set with the password */
	uint16_t legacy_len;              /* encrypted CRAM-MD5/APOP secret, 0 = none */
	uint8_t legacy[HK_LEGACY_BLOB_MAX];
};

struct hk_alias {
	char address[HK_ADDRESS_MAX + 1];
	char local[HK_LOCAL_MAX + 1];
	char domain[HK_DOMAIN_MAX + 1];
	uint32_t n_targets;
	char targets[HK_ALIAS_MAX_TARGETS][HK_ADDRESS_MAX + 1]; /* local or remote addresses */
};

/* What applies to one user: plan values after the domain's and the user's
 * overrides. */
struct hk_limits {
	char plan[HK_PLAN_NAME_MAX + 1];
	int64_t quota;               /* bytes, 0 = unlimited */
	int64_t max_message_size;    /* bytes */
	int64_t retention;           /* seconds (as plan.retention in rules), 0 = forever */
	bool strict_retention;
	uint32_t max_forward;
	uint32_t max_lists, list_members, list_members_max;
	int64_t list_max_message_size;
	bool list_attachments;
	bool legacy_auth;            /* the domain allows CRAM-MD5/APOP */
};

void hk_domain_init(struct hk_domain *d);
void hk_user_init(struct hk_user *u);
void hk_alias_init(struct hk_alias *al);

/* --- opening ------------------------------------------------------------------ */
struct hk_accounts;

struct hk_accounts_config {
	const char *path;      /* accounts.gdbm (GDBM back end) */
	const char *key_path;  /* secret.key for legacy secrets; NULL: legacy secrets unavailable.
	                        * Created (0600) on first need; refused if others can read it. */
	unsigned lock_timeout_ms; /* 0 = HK_ACCT_LOCK_TIMEOUT_MS */
	uint32_t scram_iterations; /* 0 = HK_SCRAM_ITERATIONS_DEFAULT */
	unsigned long pw_cost;     /* yescrypt cost, 0 = libxcrypt's default */
};

/* Opens the GDBM store. Nothing is read yet: a missing file is an empty
 * store until the first write creates it. */
enum hk_acct_status hk_accounts_open_gdbm(const struct hk_accounts_config *cfg, struct hk_accounts **a_r,
    char *err, size_t errlen);
/* A private in-memory store (tests); cfg may be NULL. */
struct hk_accounts *hk_accounts_open_mem(const struct hk_accounts_config *cfg);
void hk_accounts_close(struct hk_accounts **a);

/* The text of the last error on this handle ("" when none): what failed,
 * with the address or record concerned. */
const char *hk_accounts_error(const struct hk_accounts *a);

/* Picks up a file another process replaced. Lookups do this themselves;
 * servers may call it to learn whether anything changed: *changed_r is
 * true when the store is a different version than at the previous call. */
enum hk_acct_status hk_accounts_refresh(struct hk_accounts *a, bool *changed_r);
/* A number that grows with every committed write (0 for an empty store). */
uint64_t hk_accounts_generation(struct hk_accounts *a);

/* --- transactions -----------------------------------------------------------------
 * Writes outside a transaction commit one by one. Inside, nothing is seen
 * by other processes before commit; reads on this handle see the
 * transaction. BUSY when another writer holds the lock longer than the
 * timeout. */
enum hk_acct_status hk_accounts_begin(struct hk_accounts *a);
enum hk_acct_status hk_accounts_commit(struct hk_accounts *a);
void hk_accounts_abort(struct hk_accounts *a);

/* --- normalisation ---------------------------------------------------------------
 * Domains: trailing dot dropped, IDN (UTF-8) converted to the A-label form
 * with libidn (IDNA2003), lower-cased, LDH labels checked. Local parts: an
 * RFC 5321 dot-string (quoted local parts are refused), at most 64 bytes;
 * hosted local parts are ASCII, remote ones (alias targets) may be UTF-8
 * (RFC 6531). Errors explain themselves in err. */
enum hk_acct_status hk_domain_normalize(const char *in, char out[HK_DOMAIN_MAX + 1], char *err, size_t errlen);
enum hk_acct_status hk_address_normalize(const char *in, bool hosted, char local[HK_LOCAL_MAX + 1],
    char domain[HK_DOMAIN_MAX + 1], char *err, size_t errlen);
/* The U-label (Unicode) form of an A-label domain for display; out gets a
 * copy of the input when it has no xn-- labels or cannot be converted. */
void hk_domain_display(const char *alabel, char *out, size_t outlen);

/* --- plans -------------------------------------------------------------------------- */
enum hk_acct_status hk_accounts_plan_get(struct hk_accounts *a, const char *name, struct hk_plan *out);
/* Stores an override (or a new plan). */
enum hk_acct_status hk_accounts_plan_put(struct hk_accounts *a, const struct hk_plan *p);
/* Removes a stored plan (a built-in one falls back to its defaults);
 * EXISTS-like refusal (NOTEMPTY) when a domain or user still uses a
 * non-built-in plan. */
enum hk_acct_status hk_accounts_plan_del(struct hk_accounts *a, const char *name);
/* Built-ins and stored plans, sorted by name. */
enum hk_acct_status hk_accounts_plan_list(struct hk_accounts *a, struct hk_plan **v_r, size_t *n_r);
/* The built-in defaults (NULL when name is not one). */
const struct hk_plan *hk_plan_builtin(const char *name);
#define HK_PLAN_DEFAULT "standard"

/* --- domains -------------------------------------------------------------------------- */
/* d->name is normalised in place; plan must exist; EXISTS when hosted. */
enum hk_acct_status hk_accounts_domain_add(struct hk_accounts *a, struct hk_domain *d);
/* Replaces the record of an existing domain (NOTFOUND otherwise). Turning
 * HK_DOMAIN_LEGACY_AUTH off erases the legacy secrets of its users. */
enum hk_acct_status hk_accounts_domain_update(struct hk_accounts *a, const struct hk_domain *d);
enum hk_acct_status hk_accounts_domain_get(struct hk_accounts *a, const char *name, struct hk_domain *out);
/* NOTEMPTY when users or aliases remain, unless cascade (then they go too). */
enum hk_acct_status hk_accounts_domain_del(struct hk_accounts *a, const char *name, bool cascade);
/* OK when the domain is hosted (disabled ones too: they are still ours,
 * never relayed), NOTFOUND when not, or an error. */
enum hk_acct_status hk_accounts_is_hosted(struct hk_accounts *a, const char *domain);
enum hk_acct_status hk_accounts_domain_list(struct hk_accounts *a, struct hk_domain **v_r, size_t *n_r);

/* --- users ------------------------------------------------------------------------------ */
/* u->address is normalised (local, domain and address filled in); the
 * domain must be hosted; EXISTS when a user or alias has the address. The
 * password fields are stored as given (use set_password after, or fill
 * pw_hash from an import). */
enum hk_acct_status hk_accounts_user_add(struct hk_accounts *a, struct hk_user *u);
/* Replaces plan, quota, flags (and credentials) of an existing user. */
enum hk_acct_status hk_accounts_user_update(struct hk_accounts *a, const struct hk_user *u);
/* Finds a user by address: the domain case-insensitively (and in U-label
 * or A-label form), the local part case-insensitively (ASCII). */
enum hk_acct_status hk_accounts_user_get(struct hk_accounts *a, const char *address, struct hk_user *out);
enum hk_acct_status hk_accounts_user_del(struct hk_accounts *a, const char *address);
/* Users of one domain (domain != NULL) or of all, sorted by address. */
enum hk_acct_status hk_accounts_user_list(struct hk_accounts *a, const char *domain, struct hk_user **v_r,
    size_t *n_r);
/* Sets the password: yescrypt hash, SCRAM-SHA-256 keys, and the encrypted
 * legacy secret when the domain allows CRAM-MD5/APOP. INVALID (with the
 * reason) when the password breaks the policy (hk_password_check). Slow
 * (~25 ms): worker thread. */
enum hk_acct_status hk_accounts_user_set_password(struct hk_accounts *a, const char *address, const char *password);
/* Sets an imported crypt(3) hash ($y$, $2b$, $6$, $5$); SCRAM keys and the
 * legacy secret are dropped until the next successful PLAIN/LOGIN login
 * (hk_accounts_auth_plain adds them). */
enum hk_acct_status hk_accounts_user_set_hash(struct hk_accounts *a, const char *address, const char *hash);

/* --- aliases ---------------------------------------------------------------------------- */
/* Creates or replaces. Address normalised in place, targets validated and
 * normalised (duplicates dropped); the domain must be hosted; EXISTS when
 * a user has the address; LIMIT when more targets than the plan's
 * max_forward. */
enum hk_acct_status hk_accounts_alias_put(struct hk_accounts *a, struct hk_alias *al);
enum hk_acct_status hk_accounts_alias_get(struct hk_accounts *a, const char *address, struct hk_alias *out);
enum hk_acct_status hk_accounts_alias_del(struct hk_accounts *a, const char *address);
enum hk_acct_status hk_accounts_alias_list(struct hk_accounts *a, const char *domain, struct hk_alias **v_r,
    size_t *n_r);

/* --- what the servers ask ------------------------------------------------------------------ */
enum hk_rcpt_kind {
	HK_RCPT_NOT_HOSTED, /* domain not ours (relay question for the caller) */
	HK_RCPT_UNKNOWN,    /* hosted domain, no such user or alias: 550 5.1.1 */
	HK_RCPT_USER,       /* a mailbox (check user.flags for HK_USER_DISABLED) */
	HK_RCPT_ALIAS,      /* an alias, or the domain's catch-all (alias.targets) */
	HK_RCPT_DISABLED,   /* the domain is disabled */
};

struct hk_rcpt {
	enum hk_rcpt_kind kind;
	bool catchall;            /* ALIAS came from the domain's catch-all */
	struct hk_user user;      /* USER */
	struct hk_limits limits;  /* USER */
	struct hk_alias alias;    /* ALIAS */
};

/* Resolves one recipient address (syntax errors: INVALID). One level:
 * alias targets are not expanded (see hk_accounts_expand). */
enum hk_acct_status hk_accounts_resolve(struct hk_accounts *a, const char *address, struct hk_rcpt *out);

struct hk_expansion {
	size_t n;
	struct {
		char address[HK_ADDRESS_MAX + 1];
		bool local;           /* a hosted mailbox (address is the user's) */
	} v[HK_EXPAND_MAX];
	bool truncated;           /* more than HK_EXPAND_MAX, or deeper than HK_ALIAS_MAX_DEPTH */
};

/* Expands aliases to mailboxes and remote addresses, HK_ALIAS_MAX_DEPTH
 * levels deep, without duplicates; unknown local targets are skipped.
 * out may be large: allocate it on the heap. */
enum hk_acct_status hk_accounts_expand(struct hk_accounts *a, const char *address, struct hk_expansion *out);

/* May the authenticated user `user` use `from` as MAIL FROM? Yes for the
 * user's own address and for aliases that have the user among their
 * direct targets. OK = yes, NOTFOUND = no. */
enum hk_acct_status hk_accounts_may_send_as(struct hk_accounts *a, const char *user, const char *from);

enum hk_acct_status hk_accounts_limits(struct hk_accounts *a, const struct hk_user *u, struct hk_limits *out);
/* The limits of a domain's plan with its overrides (no user yet: SIZE
 * after SNI, RCPT of an alias). */
enum hk_acct_status hk_accounts_domain_limits(struct hk_accounts *a, const char *domain, struct hk_limits *out);

/* --- authentication (blocking: worker thread) ----------------------------------------------- */
enum hk_auth_result {
	HK_AUTH_OK,
	HK_AUTH_FAIL,      /* wrong password, unknown user, or mechanism unavailable for the user */
	HK_AUTH_DISABLED,  /* right password, but the user or domain is disabled */
	HK_AUTH_TEMPFAIL,  /* store error: answer 454/NO [UNAVAILABLE] */
};

/* PLAIN, LOGIN, USER/PASS. Takes as long for unknown users as for known
 * ones. On success, if the hash needs an upgrade (crypt_checksalt, or not
 * yescrypt) or the SCRAM keys / legacy secret are missing, they are
 * written (a BUSY lock is ignored: the next login tries again).
 * user_r (may be NULL) receives the record on OK/DISABLED. */
enum hk_auth_result hk_accounts_auth_plain(struct hk_accounts *a, const char *address, const char *password,
    struct hk_user *user_r);
/* CRAM-MD5 (RFC 2195): challenge as sent (without base64), response the
 * decoded client line "user hexdigest". FAIL unless the domain enables
 * legacy mechanisms and the user has a secret. address_r (may be NULL)
 * receives the user's address. */
enum hk_auth_result hk_accounts_auth_cram_md5(struct hk_accounts *a, const char *challenge, const char *response,
    char address_r[HK_ADDRESS_MAX + 1]);
/* APOP (RFC 1939): timestamp as in the greeting ("<...>"), digest the
 * 32 hex digits the client sent. */
enum hk_auth_result hk_accounts_auth_apop(struct hk_accounts *a, const char *address, const char *timestamp,
    const char *digest, char address_r[HK_ADDRESS_MAX + 1]);
/* SCRAM: the keys of a user for hk_scram_server_first. NOTFOUND for an
 * unknown user, a user without keys (imported hash, never logged in with
 * PLAIN) or a disabled user/domain: pass NULL keys to the state machine
 * then, so the exchange fails only at the proof. */
enum hk_acct_status hk_accounts_scram_keys(struct hk_accounts *a, const char *address, struct hk_scram_keys *out,
    char address_r[HK_ADDRESS_MAX + 1]);

/* --- maintenance ------------------------------------------------------------------------------ */
struct hk_accounts_check {
	size_t records, domains, users, aliases, plans;
	size_t bad;            /* records that do not decode or do not match their key */
	char first_bad[128];   /* key of the first bad record (printable) */
};
/* Reads and decodes every record. OK when all are good, CORRUPT otherwise. */
enum hk_acct_status hk_accounts_verify(struct hk_accounts *a, struct hk_accounts_check *out);
/* GDBM: salvages what gdbm_recover and the record decoder accept into a
 * fresh file; the damaged one is kept as accounts.gdbm.damaged-<time>.
 * out counts what was kept and dropped. */
enum hk_acct_status hk_accounts_repair(struct hk_accounts *a, struct hk_accounts_check *out);

#endif
