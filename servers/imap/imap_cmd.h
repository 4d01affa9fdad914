/*
 * imap_cmd.h - parses one complete IMAP command (as imap_reader returns
 * it: literals inline) into a typed struct: RFC 3501 section 6 and the
 * extensions Hikyaku announces (IDLE, NAMESPACE, UIDPLUS, MOVE, UNSELECT,
 * ID, ENABLE, LITERAL+, SPECIAL-USE, SASL-IR, CONDSTORE).
 *
 * No sockets, no store: bytes in, struct out. The session checks the
 * state (imap_cmd_allowed), resolves '*' in sequence sets, and does the
 * work.
 *
 * Ownership: everything the parsed command points to is allocated in the
 * arena passed in (the per-command "transaction" arena), except an inline
 * APPEND message, which points into the command text. Give it no budget
 * (arena_alloc aborts past one): what the parser allocates is bounded by
 * a small multiple of the command's size plus fixed arrays (64 FETCH
 * sections, 1024 SEARCH keys).
 *
 * Errors: imap_cmd_parse returns IMAP_PARSE_BAD with cmd->error the text
 * for "TAG BAD <error>", or IMAP_PARSE_BAD_TAG when the tag itself is
 * missing or malformed ("* BAD <error>"). It never aborts on input.
 *
 * SECURITY: input is untrusted and already bounded by imap_reader; the
 * parser bounds tokens, nesting, sequence ranges, flags, header fields,
 * SEARCH keys and ID pairs (imap_limits.h), and checks every literal
 * against the bytes actually present.
 */
#ifndef HK_IMAP_CMD_H
#define HK_IMAP_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "arena.h"
#include "imap/imap_limits.h"
#include "util.h"

/* Session states a command may be used in (RFC 3501 3). */
#define IMAP_ST_NOAUTH 0x1u
#define IMAP_ST_AUTH 0x2u
#define IMAP_ST_SELECTED 0x4u
#define IMAP_ST_ANY (IMAP_ST_NOAUTH | IMAP_ST_AUTH | IMAP_ST_SELECTED)
#define IMAP_ST_LOGGEDIN (IMAP_ST_AUTH | IMAP_ST_SELECTED)

/* X(kind, name, states, uid_ok) */
#define IMAP_COMMANDS(X) \
	X(CAPABILITY, "CAPABILITY", IMAP_ST_ANY, false) \
	X(NOOP, "NOOP", IMAP_ST_ANY, false) \
	X(LOGOUT, "LOGOUT", IMAP_ST_ANY, false) \
	X(ID, "ID", IMAP_ST_ANY, false) \
	X(STARTTLS, "STARTTLS", IMAP_ST_NOAUTH, false) \
	X(AUTHENTICATE, "AUTHENTICATE", IMAP_ST_NOAUTH, false) \
	X(LOGIN, "LOGIN", IMAP_ST_NOAUTH, false) \
	X(ENABLE, "ENABLE", IMAP_ST_AUTH, false) \
	X(SELECT, "SELECT", IMAP_ST_LOGGEDIN, false) \
	X(EXAMINE, "EXAMINE", IMAP_ST_LOGGEDIN, false) \
	X(CREATE, "CREATE", IMAP_ST_LOGGEDIN, false) \
	X(DELETE, "DELETE", IMAP_ST_LOGGEDIN, false) \
	X(RENAME, "RENAME", IMAP_ST_LOGGEDIN, false) \
	X(SUBSCRIBE, "SUBSCRIBE", IMAP_ST_LOGGEDIN, false) \
	X(UNSUBSCRIBE, "UNSUBSCRIBE", IMAP_ST_LOGGEDIN, false) \
	X(LIST, "LIST", IMAP_ST_LOGGEDIN, false) \
	X(LSUB, "LSUB", IMAP_ST_LOGGEDIN, false) \
	X(NAMESPACE, "NAMESPACE", IMAP_ST_LOGGEDIN, false) \
	X(STATUS, "STATUS", IMAP_ST_LOGGEDIN, false) \
	X(APPEND, "APPEND", IMAP_ST_LOGGEDIN, false) \
	X(IDLE, "IDLE", IMAP_ST_LOGGEDIN, false) \
	X(CHECK, "CHECK", IMAP_ST_SELECTED, false) \
	X(CLOSE, "CLOSE", IMAP_ST_SELECTED, false) \
	X(UNSELECT, "UNSELECT", IMAP_ST_SELECTED, false) \
	X(EXPUNGE, "EXPUNGE", IMAP_ST_SELECTED, true) \
	X(SEARCH, "SEARCH", IMAP_ST_SELECTED, true) \
	X(FETCH, "FETCH", IMAP_ST_SELECTED, true) \
	X(STORE, "STORE", IMAP_ST_SELECTED, true) \
	X(COPY, "COPY", IMAP_ST_SELECTED, true) \
	X(MOVE, "MOVE", IMAP_ST_SELECTED, true)

enum imap_cmd_kind {
	IMAP_CMD_NONE,
#define X(k, n, s, u) IMAP_CMD_##k,
	IMAP_COMMANDS(X)
#undef X
};

/* '*' in a sequence set: the largest number in use, resolved by the session. */
#define IMAP_SEQ_STAR UINT32_MAX

/* A range as written: "5:2" stays {5, 2}; "*" is {STAR, STAR}. */
struct imap_seq_range {
	uint32_t lo, hi;
};
struct imap_seqset {
	struct imap_seq_range *r;
	unsigned n;
};

/* A mailbox argument: modified UTF-7 decoded; "INBOX" in any case is "INBOX". */
struct imap_mailbox {
	const char *name; /* UTF-8, NUL-terminated */
	bool inbox;
};

/* System flags (bits) and keywords of a flag list. */
#define IMAP_FLAG_SEEN 0x01u
#define IMAP_FLAG_ANSWERED 0x02u
#define IMAP_FLAG_FLAGGED 0x04u
#define IMAP_FLAG_DELETED 0x08u
#define IMAP_FLAG_DRAFT 0x10u
#define IMAP_FLAG_RECENT 0x20u /* only in SEARCH and responses; never settable */
struct imap_flags {
	uint32_t system;
	const char **keywords;
	unsigned nkeywords;
};

/* FETCH items (bits of imap_fetch.items); the macros ALL, FAST and FULL
 * are expanded into them. */
#define IMAP_FETCH_ENVELOPE 0x001u
#define IMAP_FETCH_FLAGS 0x002u
#define IMAP_FETCH_INTERNALDATE 0x004u
#define IMAP_FETCH_RFC822 0x008u        /* like BODY[]: sets \Seen */
#define IMAP_FETCH_RFC822_HEADER 0x010u /* like BODY.PEEK[HEADER] */
#define IMAP_FETCH_RFC822_SIZE 0x020u
#define IMAP_FETCH_RFC822_TEXT 0x040u   /* like BODY[TEXT]: sets \Seen */
#define IMAP_FETCH_BODY 0x080u          /* non-extensible BODYSTRUCTURE */
#define IMAP_FETCH_BODYSTRUCTURE 0x100u
#define IMAP_FETCH_UID 0x200u
#define IMAP_FETCH_MODSEQ 0x400u

enum imap_section_spec {
	IMAP_SPEC_ALL,               /* BODY[] or BODY[1.2] */
	IMAP_SPEC_HEADER,
	IMAP_SPEC_HEADER_FIELDS,
	IMAP_SPEC_HEADER_FIELDS_NOT,
	IMAP_SPEC_TEXT,
	IMAP_SPEC_MIME,
};

struct imap_fetch_section {
	bool peek;                /* BODY.PEEK: do not set \Seen */
	uint32_t *parts;          /* "1.2.3": {1, 2, 3} */
	unsigned nparts;
	enum imap_section_spec spec;
	const char **fields;      /* HEADER.FIELDS names, as sent */
	unsigned nfields;
	bool partial;             /* <offset.count> */
	uint32_t offset, count;
	const char *text;         /* the section normalised for the reply: "1.HEADER.FIELDS (FROM TO)" */
};

struct imap_fetch {
	struct imap_seqset set;
	uint32_t items;
	struct imap_fetch_section *sections;
	unsigned nsections;
	bool changedsince_set;    /* CONDSTORE (CHANGEDSINCE n); implies MODSEQ */
	uint64_t changedsince;
};

enum imap_store_op { IMAP_STORE_SET, IMAP_STORE_ADD, IMAP_STORE_REMOVE };
struct imap_store {
	struct imap_seqset set;
	enum imap_store_op op;
	bool silent;
	struct imap_flags flags;
	bool unchangedsince_set;  /* CONDSTORE (UNCHANGEDSINCE n) */
	uint64_t unchangedsince;
};

/* SEARCH keys: X(name, argument kind). */
#define IMAP_SEARCH_KEYS(X) \
	X(ALL, NONE) X(ANSWERED, NONE) X(BCC, STRING) X(BEFORE, DATE) X(BODY, STRING) X(CC, STRING) \
	X(DELETED, NONE) X(DRAFT, NONE) X(FLAGGED, NONE) X(FROM, STRING) X(HEADER, HEADER) \
	X(KEYWORD, KEYWORD) X(LARGER, NUMBER) X(NEW, NONE) X(NOT, NOT) X(OLD, NONE) X(ON, DATE) \
	X(OR, OR) X(RECENT, NONE) X(SEEN, NONE) X(SENTBEFORE, DATE) X(SENTON, DATE) \
	X(SENTSINCE, DATE) X(SINCE, DATE) X(SMALLER, NUMBER) X(SUBJECT, STRING) X(TEXT, STRING) \
	X(TO, STRING) X(UID, SEQSET) X(UNANSWERED, NONE) X(UNDELETED, NONE) X(UNDRAFT, NONE) \
	X(UNFLAGGED, NONE) X(UNKEYWORD, KEYWORD) X(UNSEEN, NONE) X(MODSEQ, MODSEQ)

enum imap_search_op {
	IMAP_SEARCH_SEQSET = 0, /* a bare sequence set */
	IMAP_SEARCH_AND,        /* a parenthesised group: every child */
#define X(k, a) IMAP_SEARCH_##k,
	IMAP_SEARCH_KEYS(X)
#undef X
};

struct imap_day {
	int year, mon, day; /* mon 1-12 */
};

struct imap_search_key {
	enum imap_search_op op;
	struct imap_search_key *next;  /* the next key of the same AND list */
	struct imap_search_key *child; /* AND: first child; NOT: its key; OR: first operand */
	struct imap_search_key *child2; /* OR: second operand */
	const char *header;            /* HEADER field name */
	struct hk_str str;             /* string argument (NUL-terminated copy) */
	uint64_t num;                  /* LARGER, SMALLER, MODSEQ */
	struct imap_day date;
	struct imap_seqset set;        /* SEQSET, UID */
};

struct imap_search {
	const char *charset;           /* as sent, or NULL */
	bool bad_charset;              /* not UTF-8 or US-ASCII: reply NO [BADCHARSET (UTF-8 US-ASCII)] */
	struct imap_search_key *keys;  /* AND list */
	unsigned nkeys;
};

#define IMAP_STATUS_MESSAGES 0x01u
#define IMAP_STATUS_RECENT 0x02u
#define IMAP_STATUS_UIDNEXT 0x04u
#define IMAP_STATUS_UIDVALIDITY 0x08u
#define IMAP_STATUS_UNSEEN 0x10u
#define IMAP_STATUS_HIGHESTMODSEQ 0x20u

struct imap_id_pair {
	const char *field;
	const char *value; /* NULL for NIL */
};

struct imap_cmd {
	const char *tag;
	enum imap_cmd_kind kind;
	bool uid;                     /* UID FETCH/SEARCH/STORE/COPY/MOVE/EXPUNGE */
	const char *error;            /* IMAP_PARSE_BAD*: the reply text */
	/* by command; only the members of `kind` are set */
	struct imap_mailbox mailbox;  /* SELECT EXAMINE CREATE DELETE RENAME (from) SUBSCRIBE
	                               * UNSUBSCRIBE STATUS APPEND COPY MOVE (destination) */
	struct imap_mailbox mailbox2; /* RENAME: the new name */
	bool condstore;               /* SELECT/EXAMINE (CONDSTORE) */
	struct {                      /* LIST, LSUB: UTF-8, '*' and '%' kept */
		const char *reference, *pattern;
	} list;
	uint32_t status_items;        /* STATUS */
	struct {                      /* LOGIN, AUTHENTICATE */
		const char *user, *password;
		const char *mechanism;    /* upper-cased */
		const char *initial;      /* SASL-IR: base64 or "=" as sent; NULL if none */
	} auth;
	struct {                      /* APPEND */
		struct imap_flags flags;
		bool has_date;
		time_t date;              /* UTC seconds */
		int tz_minutes;           /* the zone as sent, for INTERNALDATE */
		bool streamed;            /* the message went to the sink */
		struct hk_str message;    /* else: the literal, inside the command text */
		uint64_t size;
	} append;
	struct imap_seqset set;       /* COPY MOVE UID EXPUNGE */
	struct imap_fetch fetch;
	struct imap_store store;
	struct imap_search search;
	struct {                      /* ID; nil: ID NIL */
		struct imap_id_pair *pairs;
		unsigned n;
	} id;
	struct {                      /* ENABLE: upper-cased capability names */
		const char **names;
		unsigned n;
	} enable;
};

enum imap_parse_status {
	IMAP_PARSE_OK,
	IMAP_PARSE_BAD,     /* reply "<tag> BAD <cmd->error>" */
	IMAP_PARSE_BAD_TAG, /* reply "* BAD <cmd->error>" */
};

/* Parses `len` bytes of command text; `streamed_at` is the offset of the
 * literal that imap_reader streamed to the sink (ev.streamed_at), SIZE_MAX
 * if none. */
enum imap_parse_status imap_cmd_parse(const char *text, size_t len, size_t streamed_at,
    struct arena *a, struct imap_cmd *cmd);
const char *imap_cmd_name(enum imap_cmd_kind k);
/* The states (IMAP_ST_*) the command is allowed in. */
unsigned imap_cmd_states(enum imap_cmd_kind k);
/* The line ends IDLE: "DONE", any case (RFC 2177). */
bool imap_cmd_is_done(const char *line, size_t len);
/* Does n (1..max) belong to the set, '*' meaning max? */
bool imap_seqset_contains(const struct imap_seqset *s, uint32_t n, uint32_t max);
const char *imap_search_key_name(enum imap_search_op op);

#endif
