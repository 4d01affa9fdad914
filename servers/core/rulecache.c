/*
 * rulecache.c - the compiled-program cache of the servers (see
 * rulecache.h).
 */
#include "rulecache.h"

#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compile.h"
#include "core/log.h"

#define RULECACHE_MAX 100000 /* entries kept; the oldest go first */

struct entry {
	struct entry *next; /* hash chain */
	char *path;
	int layer;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
	struct hk_program *prog; /* NULL: missing or broken */
	unsigned long used;
};

struct rulecache {
	pthread_mutex_t mu;
	char *cache_dir;
	char *stdlib_dir;
	struct entry **buckets; /* RULECACHE_BUCKETS chains */
	size_t n;
	unsigned long clock;
};

#define RULECACHE_BUCKETS 4096

static size_t
path_hash(const char *p, int layer)
{
	uint64_t h = 1469598103934665603ull ^ (unsigned)layer;
	for (; *p; p++) {
		h ^= (unsigned char)*p;
		h *= 1099511628211ull;
	}
	return (size_t)(h % RULECACHE_BUCKETS);
}

static void
entry_free(struct entry *e)
{
	free(e->path);
	hk_program_unref(&e->prog);
	free(e);
}

/* Drops the least recently used entry (only when the cache is full). */
static void
evict_one(struct rulecache *c)
{
	struct entry **victim = NULL;
	for (size_t b = 0; b < RULECACHE_BUCKETS; b++)
		for (struct entry **pe = &c->buckets[b]; *pe; pe = &(*pe)->next)
			if (victim == NULL || (*pe)->used < (*victim)->used)
				victim = pe;
	if (victim) {
		struct entry *e = *victim;
		*victim = e->next;
		entry_free(e);
		c->n--;
	}
}

struct rulecache *
rulecache_new(const char *cache_dir, const char *stdlib_dir)
{
	struct rulecache *c = xcalloc(1, sizeof(*c));
	pthread_mutex_init(&c->mu, NULL);
	c->buckets = xcalloc(RULECACHE_BUCKETS, sizeof(*c->buckets));
	c->cache_dir = cache_dir ? xstrdup(cache_dir) : NULL;
	c->stdlib_dir = stdlib_dir ? xstrdup(stdlib_dir) : NULL;
	return c;
}

void
rulecache_free(struct rulecache **cp)
{
	struct rulecache *c = *cp;
	*cp = NULL;
	if (c == NULL)
		return;
	for (size_t b = 0; b < RULECACHE_BUCKETS; b++)
		for (struct entry *e = c->buckets[b], *next; e; e = next) {
			next = e->next;
			entry_free(e);
		}
	free(c->buckets);
	free(c->cache_dir);
	free(c->stdlib_dir);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

/* The cache file name: SHA-256 over the compiler version, the layer and the
 * source bytes. (Imported libraries are part of the key through the
 * program's own source hash check below.) */
static char *
cache_name(const struct rulecache *c, const char *text, size_t len, int layer)
{
	unsigned char md[32];
	unsigned int n = 32;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	char ver[32];
	snprintf(ver, sizeof(ver), "hkbc%d/%d", HK_BC_VERSION, layer);
	EVP_DigestUpdate(ctx, ver, strlen(ver));
	EVP_DigestUpdate(ctx, text, len);
	EVP_DigestFinal_ex(ctx, md, &n);
	EVP_MD_CTX_free(ctx);
	char hex[65];
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return xasprintf("%s/%s.hkc", c->cache_dir, hex);
}

static struct hk_program *
compile_one(struct rulecache *c, const char *path, int layer, const char *owner)
{
	char *text;
	size_t len;
	if (read_file(path, HK_MAX_SOURCE_SIZE, &text, &len) < 0)
		return NULL;
	char *cfile = c->cache_dir ? cache_name(c, text, len, layer) : NULL;
	struct hk_program *p = NULL;
	if (cfile) {
		char *data;
		size_t dlen;
		if (read_file(cfile, HK_MAX_CODE * 4, &data, &dlen) == 0) {
			struct hk_buf err;
			buf_init(&err);
			if (hk_program_read(data, dlen, &p, &err) < 0 || p->layer != layer) {
				log_warnx("rules", "cache %s refused (%s); recompiling", cfile, err.data ? err.data : "layer");
				hk_program_unref(&p);
			}
			buf_fini(&err);
			free(data);
		}
	}
	if (p == NULL) {
		struct diag d;
		diag_init(&d);
		struct hk_compile_opts o = { (enum hk_layer)layer, c->stdlib_dir, owner, false };
		struct hk_unit *u = hk_unit_load_text(path, text, len, &o, &d);
		if (u && d.errors == 0)
			p = hk_unit_codegen(u);
		if (p == NULL) {
			struct hk_buf msg;
			buf_init(&msg);
			for (size_t i = 0; i < d.nmsgs && i < 3; i++)
				if (d.msgs[i].sev == DIAG_ERROR)
					diag_format(&d, &d.msgs[i], &msg, false);
			log_error("rules", "%s does not compile; its rules are not applied:\n%s", path, msg.data ? msg.data : "");
			buf_fini(&msg);
		}
		hk_unit_free(&u);
		diag_fini(&d);
		if (p && cfile) {
			struct hk_buf b;
			buf_init(&b);
			hk_program_write(p, &b);
			char *tmp = xasprintf("%s.%ld.tmp", cfile, (long)getpid());
			FILE *fp = fopen(tmp, "wb");
			if (fp && fwrite(b.data, 1, b.len, fp) == b.len && fclose(fp) == 0)
				rename(tmp, cfile);
			else if (fp)
				fclose(fp);
			unlink(tmp);
			free(tmp);
			buf_fini(&b);
		}
	}
	free(cfile);
	free(text);
	return p;
}

struct hk_program *
rulecache_get(struct rulecache *c, const char *path, int layer, const char *owner)
{
	struct stat st;
	bool exists = stat(path, &st) == 0 && S_ISREG(st.st_mode);
	pthread_mutex_lock(&c->mu);
	size_t b = path_hash(path, layer);
	struct entry *e = NULL;
	for (struct entry *x = c->buckets[b]; x; x = x->next)
		if (x->layer == layer && strcmp(x->path, path) == 0) {
			e = x;
			break;
		}
	if (e && (!exists || e->dev != st.st_dev || e->ino != st.st_ino || e->size != st.st_size ||
	              e->mtime.tv_sec != st.st_mtim.tv_sec || e->mtime.tv_nsec != st.st_mtim.tv_nsec)) {
		hk_program_unref(&e->prog);
		e->size = -1; /* stale */
	}
	if (!exists) {
		pthread_mutex_unlock(&c->mu);
		return NULL;
	}
	if (e == NULL) {
		if (c->n >= RULECACHE_MAX)
			evict_one(c);
		e = xcalloc(1, sizeof(*e));
		e->path = xstrdup(path);
		e->layer = layer;
		e->size = -1;
		e->next = c->buckets[b];
		c->buckets[b] = e;
		c->n++;
	}
	if (e->size < 0) {
		/* compiling under the lock keeps it simple; compiles are rare
		 * (a changed file) and take milliseconds */
		e->prog = compile_one(c, path, layer, owner);
		e->dev = st.st_dev;
		e->ino = st.st_ino;
		e->size = st.st_size;
		e->mtime = st.st_mtim;
	}
	e->used = ++c->clock;
	struct hk_program *p = e->prog ? hk_program_ref(e->prog) : NULL;
	pthread_mutex_unlock(&c->mu);
	return p;
}
