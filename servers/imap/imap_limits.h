/*
 * imap_limits.h - every bound the IMAP command reader and parser put on
 * what a client sends. Each one has a unit test at the limit
 * (tests/unit/test_imap_parse.c). Literal sizes are not here: the session
 * passes them to the reader (struct imap_reader_limits), because they
 * differ before and after login and follow the account's message size.
 */
#ifndef HK_IMAP_LIMITS_H
#define HK_IMAP_LIMITS_H

#define IMAP_MAX_LINE (64 * 1024)    /* non-literal text of one command, all its lines */
#define IMAP_MAX_LITERALS 64         /* literals in one command */
#define IMAP_MAX_TAG 64              /* a tag longer than this is answered untagged */
#define IMAP_MAX_TOKENS 4096         /* atoms, strings, numbers and parentheses in one command */
#define IMAP_MAX_DEPTH 16            /* nested parentheses (SEARCH groups, ID, flag lists) */
#define IMAP_MAX_SEQ_RANGES 10000    /* ranges in one sequence set ("1,3,5:7" is 3) */
#define IMAP_MAX_MAILBOX 1024        /* a mailbox name or LIST pattern, as sent (mUTF-7) */
#define IMAP_MAX_FLAGS 64            /* flags in one flag list (STORE, APPEND) */
#define IMAP_MAX_KEYWORD 64          /* a keyword; as HK_STORE_KEYWORD_LEN_MAX */
#define IMAP_MAX_FETCH_SECTIONS 64   /* BODY[...] items in one FETCH */
#define IMAP_MAX_SECTION_PARTS 32    /* "1.2.3" part numbers in one section */
#define IMAP_MAX_HEADER_FIELDS 128   /* names in one HEADER.FIELDS list */
#define IMAP_MAX_SEARCH_KEYS 1024    /* keys in one SEARCH, all levels */
#define IMAP_MAX_SEARCH_DEPTH 64     /* NOT, OR and groups nested (clients chain ORs) */
#define IMAP_MAX_ENABLE 32           /* capabilities in one ENABLE */
#define IMAP_MAX_ID_PAIRS 30         /* RFC 2971 3.3 */
#define IMAP_MAX_ID_FIELD 30         /* RFC 2971 3.3: field name octets */
#define IMAP_MAX_ID_VALUE 1024       /* RFC 2971 3.3: value octets */
#define IMAP_MAX_ERROR 200           /* the text of a BAD reply we build */

#endif
