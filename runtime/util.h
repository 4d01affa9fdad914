/*
 * util.h - the few helpers every module uses: string slices, aborting
 * allocation, a growable byte buffer.
 *
 * xmalloc and friends abort on failure. That is safe only because every size a
 * peer or a script influences is checked against a named limit before it is
 * allocated.
 */
#ifndef HK_UTIL_H
#define HK_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A slice of bytes owned by someone else; not NUL-terminated in general. */
struct hk_str {
	const char *ptr;
	size_t len;
};

#define HK_STR(lit) ((struct hk_str){ (lit), sizeof(lit) - 1 })
#define HK_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
/* Grows an array of elements of size `size` to hold at least `need`;
 * aborts on overflow. Returns the (possibly moved) array. */
void *xgrow(void *p, size_t *cap, size_t need, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Growable byte buffer; `data` is always NUL-terminated after any append. */
struct hk_buf {
	char *data;
	size_t len;
	size_t cap;
};

void buf_init(struct hk_buf *b);
void buf_fini(struct hk_buf *b);
void buf_reset(struct hk_buf *b);
void buf_reserve(struct hk_buf *b, size_t extra);
void buf_add(struct hk_buf *b, const void *data, size_t len);
void buf_addc(struct hk_buf *b, char c);
void buf_adds(struct hk_buf *b, const char *s);
void buf_printf(struct hk_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_vprintf(struct hk_buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Hands the data to the caller (free() it) and leaves b empty. */
char *buf_steal(struct hk_buf *b);

bool str_eq(struct hk_str a, struct hk_str b);
/* ASCII case-insensitive equality. */
bool str_ieq(struct hk_str a, struct hk_str b);
bool str_ieq_cstr(struct hk_str a, const char *s);
static inline char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c; }

/* Reads a whole file into a NUL-terminated heap buffer; -1 with errno on
 * failure, EFBIG when it exceeds max. */
int read_file(const char *path, size_t max, char **data_r, size_t *len_r);

#endif
