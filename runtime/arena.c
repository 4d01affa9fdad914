/*
 * arena.c - bump allocator; see arena.h for the ownership rule.
 */
#include "arena.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_BLOCK_MIN 4096

struct arena_block {
	struct arena_block *next;
	size_t size; /* usable bytes in data */
	size_t off;
	max_align_t data[];
};

void
arena_init(struct arena *a, size_t budget)
{
	a->head = NULL;
	a->used = 0;
	a->budget = budget;
}

void
arena_fini(struct arena *a)
{
	struct arena_block *b = a->head;
	while (b) {
		struct arena_block *next = b->next;
		free(b);
		b = next;
	}
	a->head = NULL;
	a->used = 0;
}

void
arena_reset(struct arena *a)
{
	struct arena_block *keep = NULL, *b = a->head;
	while (b) {
		struct arena_block *next = b->next;
		if (next == NULL)
			keep = b; /* the first (oldest) block */
		else
			free(b);
		b = next;
	}
	if (keep) {
		keep->off = 0;
		keep->next = NULL;
	}
	a->head = keep;
	a->used = 0;
}

void *
arena_try_alloc(struct arena *a, size_t n)
{
	const size_t align = _Alignof(max_align_t);
	if (n > SIZE_MAX / 2)
		return NULL;
	n = (n + align - 1) & ~(align - 1);
	if (n == 0)
		n = align;
	if (a->budget && (a->used + n > a->budget))
		return NULL;
	struct arena_block *b = a->head;
	if (b == NULL || b->size - b->off < n) {
		size_t size = n > ARENA_BLOCK_MIN ? n : ARENA_BLOCK_MIN;
		if (b && b->size * 2 > size && b->size < (1u << 20))
			size = b->size * 2;
		b = xmalloc(sizeof(*b) + size);
		b->size = size;
		b->off = 0;
		b->next = a->head;
		a->head = b;
	}
	void *p = (char *)b->data + b->off;
	b->off += n;
	a->used += n;
	return p;
}

void *
arena_alloc(struct arena *a, size_t n)
{
	void *p = arena_try_alloc(a, n);
	if (p == NULL) {
		fprintf(stderr, "hikyaku: arena budget of %zu bytes exhausted\n", a->budget);
		abort();
	}
	return p;
}

void *
arena_calloc(struct arena *a, size_t n, size_t size)
{
	if (size && n > SIZE_MAX / size)
		abort();
	void *p = arena_alloc(a, n * size);
	memset(p, 0, n * size);
	return p;
}

char *
arena_strndup(struct arena *a, const char *s, size_t n)
{
	char *p = arena_alloc(a, n + 1);
	if (n)
		memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *
arena_strdup(struct arena *a, const char *s)
{
	return arena_strndup(a, s, strlen(s));
}

struct hk_str
arena_str(struct arena *a, const char *s, size_t n)
{
	return (struct hk_str){ arena_strndup(a, s, n), n };
}

char *
arena_printf(struct arena *a, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return arena_strdup(a, "");
	char *p = arena_alloc(a, (size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return p;
}
