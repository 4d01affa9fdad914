/*
 * rulecache.h - compiled rule programs for the servers: each rule file
 * (etc/rules/global.hk, var/domains/<d>/domain.hk, .../settings.hk,
 * .../personal.hk) is compiled once, verified, and shared by every session
 * until the file changes (size, mtime or inode), when the next lookup
 * compiles it again; a changed file never needs a restart.
 *
 * The bytecode is also written to the cache directory (var/cache/<sha256
 * of the source and compiler version>.hkc) so a restart loads instead of
 * compiling; a damaged cache file is refused by the verifier and simply
 * recompiled.
 *
 * A file that does not compile is logged once per change and treated as
 * absent (its layer does nothing): one user's broken personal script must
 * not stop mail for anyone, including that user (implicit keep).
 *
 * Threads: lookups may come from the event loop and from workers; the
 * cache has a mutex. Programs are reference-counted (hk_program_ref):
 * the caller unrefs what it got.
 */
#ifndef HK_RULECACHE_H
#define HK_RULECACHE_H

#include "program.h"

struct rulecache;

struct rulecache *rulecache_new(const char *cache_dir, const char *stdlib_dir);
void rulecache_free(struct rulecache **c);
/* The program of `path` for `layer`, or NULL when the file is missing or
 * does not compile. `owner` is the mailbox of a personal script (for the
 * checker's self-forward warning); may be NULL. */
struct hk_program *rulecache_get(struct rulecache *c, const char *path, int layer, const char *owner);

#endif
