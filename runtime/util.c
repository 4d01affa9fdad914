/*
 * util.c - aborting allocation, growable buffers, slice comparison, whole
 * file reads. See util.h.
 */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void
oom(size_t n)
{
	fprintf(stderr, "hikyaku: out of memory (%zu bytes)\n", n);
	abort();
}

void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (p == NULL)
		oom(n);
	return p;
}

void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (p == NULL)
		oom(n * size);
	return p;
}

void *
xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (q == NULL)
		oom(n);
	return q;
}

void *
xgrow(void *p, size_t *cap, size_t need, size_t size)
{
	if (need <= *cap)
		return p;
	size_t ncap = *cap ? *cap : 8;
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2)
			oom(SIZE_MAX);
		ncap *= 2;
	}
	if (ncap > SIZE_MAX / size)
		oom(SIZE_MAX);
	p = xrealloc(p, ncap * size);
	*cap = ncap;
	return p;
}

char *
xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *
xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *
xasprintf(const char *fmt, ...)
{
	struct hk_buf b;
	va_list ap;

	buf_init(&b);
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	return buf_steal(&b);
}

void
buf_init(struct hk_buf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void
buf_fini(struct hk_buf *b)
{
	free(b->data);
	buf_init(b);
}

void
buf_reset(struct hk_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void
buf_reserve(struct hk_buf *b, size_t extra)
{
	if (extra > SIZE_MAX - b->len - 1)
		oom(SIZE_MAX);
	b->data = xgrow(b->data, &b->cap, b->len + extra + 1, 1);
}

void
buf_add(struct hk_buf *b, const void *data, size_t len)
{
	buf_reserve(b, len);
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
}

void
buf_addc(struct hk_buf *b, char c)
{
	buf_add(b, &c, 1);
}

void
buf_adds(struct hk_buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

void
buf_vprintf(struct hk_buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return;
	buf_reserve(b, (size_t)n);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
}

void
buf_printf(struct hk_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(b, fmt, ap);
	va_end(ap);
}

char *
buf_steal(struct hk_buf *b)
{
	char *p = b->data ? b->data : xstrdup("");
	buf_init(b);
	return p;
}

bool
str_eq(struct hk_str a, struct hk_str b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

bool
str_ieq(struct hk_str a, struct hk_str b)
{
	if (a.len != b.len)
		return false;
	for (size_t i = 0; i < a.len; i++)
		if (ascii_lower(a.ptr[i]) != ascii_lower(b.ptr[i]))
			return false;
	return true;
}

bool
str_ieq_cstr(struct hk_str a, const char *s)
{
	return str_ieq(a, (struct hk_str){ s, strlen(s) });
}

int
read_file(const char *path, size_t max, char **data_r, size_t *len_r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	if (S_ISDIR(st.st_mode)) {
		close(fd);
		errno = EISDIR;
		return -1;
	}
	struct hk_buf b;
	buf_init(&b);
	buf_reserve(&b, st.st_size > 0 && (size_t)st.st_size <= max ? (size_t)st.st_size : 4096);
	for (;;) {
		if (b.len > max) {
			buf_fini(&b);
			close(fd);
			errno = EFBIG;
			return -1;
		}
		buf_reserve(&b, 65536);
		ssize_t n = read(fd, b.data + b.len, 65536);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			buf_fini(&b);
			close(fd);
			errno = e;
			return -1;
		}
		if (n == 0)
			break;
		b.len += (size_t)n;
	}
	close(fd);
	if (b.len > max) {
		buf_fini(&b);
		errno = EFBIG;
		return -1;
	}
	b.data[b.len] = '\0';
	*len_r = b.len;
	*data_r = buf_steal(&b);
	return 0;
}
