/*
 * arena.h - bump allocator for data that dies together (a compile, a
 * message, one VM run). Memory is never freed piece by piece: a function that
 * takes a struct arena * allocates there and its caller never frees it.
 *
 * An arena may carry a byte budget (untrusted scripts, hostile messages):
 * arena_try_alloc returns NULL once the budget is spent, arena_alloc aborts
 * only on a real out-of-memory.
 */
#ifndef HK_ARENA_H
#define HK_ARENA_H

#include <stddef.h>

#include "util.h"

struct arena_block;

struct arena {
	struct arena_block *head;
	size_t used;   /* bytes handed out so far */
	size_t budget; /* 0: unlimited */
};

void arena_init(struct arena *a, size_t budget);
void arena_fini(struct arena *a);
/* Frees everything but keeps the first block for reuse. */
void arena_reset(struct arena *a);
void *arena_alloc(struct arena *a, size_t n);    /* aborts past the budget */
void *arena_try_alloc(struct arena *a, size_t n); /* NULL past the budget */
void *arena_calloc(struct arena *a, size_t n, size_t size);
char *arena_strndup(struct arena *a, const char *s, size_t n);
char *arena_strdup(struct arena *a, const char *s);
struct hk_str arena_str(struct arena *a, const char *s, size_t n);
char *arena_printf(struct arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
