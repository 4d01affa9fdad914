/*
 * spool.c - a message as it arrives, in memory or written by workers
 * (spool.h says why and who may touch what when).
 */
#include "spool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"
#include "worker.h"

/* The file and the chunk a write job works on. While the job runs only
 * the job touches it; `sp` is NULL once the spool was freed meanwhile. */
struct spool_file {
	struct spool *sp;
	char *path;
	int fd;
	struct hk_buf chunk;
	int err;
};

struct spool {
	struct worker_pool *wp;
	struct hk_buf mem;       /* bytes not yet handed to a write */
	struct spool_file *file; /* made at the first write */
	bool inflight;
	int err;
	uint64_t size;
	uint64_t on_disk;        /* bytes in the file */
	void (*wake)(void *);
	void *arg;
};

struct spool *
spool_new(struct worker_pool *wp, const char *dir, const char *prefix, void (*wake)(void *arg), void *arg)
{
	struct spool *sp = xcalloc(1, sizeof(*sp));
	sp->wp = wp;
	buf_init(&sp->mem);
	sp->file = xcalloc(1, sizeof(*sp->file));
	sp->file->sp = sp;
	sp->file->fd = -1;
	sp->file->path = xasprintf("%s/%s.XXXXXX", dir, prefix);
	buf_init(&sp->file->chunk);
	sp->wake = wake;
	sp->arg = arg;
	return sp;
}

static void
file_free(struct spool_file *f)
{
	if (f->fd >= 0) {
		close(f->fd);
		(void)unlink(f->path);
	}
	free(f->path);
	buf_fini(&f->chunk);
	free(f);
}

void
spool_free(struct spool **spp)
{
	struct spool *sp = *spp;
	if (sp == NULL)
		return;
	if (sp->inflight)
		sp->file->sp = NULL; /* the write's done removes the file */
	else
		file_free(sp->file);
	buf_fini(&sp->mem);
	free(sp);
	*spp = NULL;
}

/* Worker: create the file at the first write, then append the chunk. */
static void
write_work(void *arg)
{
	struct spool_file *f = arg;
	if (f->fd < 0 && (f->fd = mkostemp(f->path, O_CLOEXEC)) < 0) {
		f->err = errno ? errno : EIO;
		return;
	}
	const char *p = f->chunk.data;
	size_t n = f->chunk.len;
	while (n > 0) {
		ssize_t w = write(f->fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			f->err = w < 0 ? errno : EIO;
			return;
		}
		p += w;
		n -= (size_t)w;
	}
}

static void start_write(struct spool *sp);

/* Loop. */
static void
write_done(void *arg)
{
	struct spool_file *f = arg;
	struct spool *sp = f->sp;
	if (sp == NULL) {
		file_free(f);
		return;
	}
	sp->inflight = false;
	if (f->err && !sp->err)
		sp->err = f->err;
	if (!f->err)
		sp->on_disk += f->chunk.len;
	f->chunk.len = 0;
	if (!sp->err && sp->mem.len >= SPOOL_MEM_MAX)
		start_write(sp);
	if (sp->wake)
		sp->wake(sp->arg);
}

static void
start_write(struct spool *sp)
{
	struct hk_buf t = sp->file->chunk; /* empty; keeps its allocation */
	sp->file->chunk = sp->mem;
	sp->mem = t;
	sp->inflight = true;
	worker_submit(sp->wp, write_work, write_done, sp->file);
}

void
spool_add(struct spool *sp, const void *data, size_t len)
{
	sp->size += len;
	if (sp->err)
		return; /* counted and dropped: the message will be refused */
	buf_add(&sp->mem, data, len);
	if (!sp->inflight && sp->mem.len >= SPOOL_MEM_MAX)
		start_write(sp);
}

bool
spool_busy(const struct spool *sp)
{
	return sp->inflight;
}

bool
spool_blocked(const struct spool *sp)
{
	return sp->inflight && sp->mem.len >= SPOOL_HIGH;
}

int
spool_error(const struct spool *sp)
{
	return sp->err;
}

uint64_t
spool_size(const struct spool *sp)
{
	return sp->size;
}

int
spool_read_all(const struct spool *sp, size_t max, char **data_r, size_t *len_r)
{
	uint64_t total = sp->on_disk + sp->mem.len;
	if (total > max) {
		errno = EFBIG;
		return -1;
	}
	char *d = xmalloc((size_t)total + 1);
	size_t got = 0;
	while (got < sp->on_disk) {
		ssize_t r = pread(sp->file->fd, d + got, (size_t)sp->on_disk - got, (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			int e = r < 0 ? errno : EIO;
			free(d);
			errno = e;
			return -1;
		}
		got += (size_t)r;
	}
	if (sp->mem.len)
		memcpy(d + got, sp->mem.data, sp->mem.len);
	d[total] = '\0';
	*data_r = d;
	*len_r = (size_t)total;
	return 0;
}

size_t
spool_parts(const struct spool *sp, struct hk_store_part parts[2])
{
	size_t n = 0;
	if (sp->on_disk)
		parts[n++] = (struct hk_store_part){ NULL, sp->file->fd, 0, (size_t)sp->on_disk };
	if (sp->mem.len || n == 0)
		parts[n++] = (struct hk_store_part){ sp->mem.data ? sp->mem.data : "", -1, 0, sp->mem.len };
	return n;
}
