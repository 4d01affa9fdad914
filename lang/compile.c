/*
 * compile.c - the compiler driver, the only entry point into lang/:
 * read -> parse -> sema -> codegen -> verify + prepare.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "compile.h"
#include "parse.h"

#ifndef HK_STDLIB_DIR
#define HK_STDLIB_DIR "stdlib"
#endif

/* Where `import "name"` looks: $HIKYAKU_STDLIB, else next to the
 * program (an installed PREFIX/bin/hikyaku uses PREFIX/share/hikyaku/stdlib,
 * a build tree's build/<flavour>/hikyaku uses the source tree's stdlib/),
 * else the directory compiled in. */
const char *
hk_stdlib_dir(void)
{
	static char found[PATH_MAX];
	const char *e = getenv("HIKYAKU_STDLIB");
	if (e && *e)
		return e;
	if (found[0])
		return found;
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		char *slash = strrchr(exe, '/');
		if (slash) {
			*slash = '\0';
			static const char *const rel[] = { "../share/hikyaku/stdlib", "../../stdlib" };
			for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
				char *dir = xasprintf("%s/%s", exe, rel[i]);
				char *cand = xasprintf("%s/mailtypes.hk", dir);
				struct stat st;
				bool ok = stat(cand, &st) == 0 && strlen(dir) < sizeof(found);
				if (ok)
					memcpy(found, dir, strlen(dir) + 1);
				free(cand);
				free(dir);
				if (ok)
					return found;
			}
		}
	}
	return HK_STDLIB_DIR;
}

/* Offset of the first byte that is not part of well-formed UTF-8, or len. */
static size_t
utf8_first_invalid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	while (i < len) {
		unsigned c = p[i];
		size_t n;
		uint32_t cp, min;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xE0) == 0xC0) {
			n = 1; cp = c & 0x1F; min = 0x80;
		} else if ((c & 0xF0) == 0xE0) {
			n = 2; cp = c & 0x0F; min = 0x800;
		} else if ((c & 0xF8) == 0xF0) {
			n = 3; cp = c & 0x07; min = 0x10000;
		} else {
			return i;
		}
		if (len - i <= n)
			return i;
		for (size_t k = 1; k <= n; k++) {
			if ((p[i + k] & 0xC0) != 0x80)
				return i;
			cp = (cp << 6) | (p[i + k] & 0x3F);
		}
		if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return i;
		i += n + 1;
	}
	return len;
}

static struct hk_unit *
unit_from(unsigned file, const struct hk_compile_opts *opts, struct diag *d)
{
	struct hk_unit *u = xcalloc(1, sizeof(*u));
	arena_init(&u->arena, 0);
	u->diag = d;
	u->opts = *opts;
	u->main_file = file;
	const struct src_file *f = &d->files[file];
	size_t bad = utf8_first_invalid(f->text, f->len);
	if (bad < f->len) {
		struct loc l = { file, 1, 1, 1 };
		for (size_t i = 0; i < bad; i++) {
			if (f->text[i] == '\n') {
				l.line++;
				l.col = 1;
			} else {
				l.col++;
			}
		}
		diag_error(d, l, "encoding", "invalid UTF-8 (byte 0x%02x); rule files are UTF-8", (unsigned char)f->text[bad]);
		return u;
	}
	u->root = parse_file(&u->arena, d, file, opts->want_comments ? &u->comments : NULL, &u->ncomments);
	/* Sema runs after syntax errors too (error recovery left whole rules
	 * in the tree), so one run reports the mistakes of every rule. */
	if (!d->overflow)
		sema_check_unit(u);
	return u;
}

struct hk_unit *
hk_unit_load_text(const char *name, const char *text, size_t len, const struct hk_compile_opts *opts, struct diag *d)
{
	if (len > HK_MAX_SOURCE_SIZE) {
		diag_error_noloc(d, "%s: file too large (limit %u bytes)", name, HK_MAX_SOURCE_SIZE);
		return NULL;
	}
	unsigned f = diag_add_file(d, name, name, xstrndup(text, len), len);
	return unit_from(f, opts, d);
}

struct hk_unit *
hk_unit_load(const char *path, const struct hk_compile_opts *opts, struct diag *d)
{
	char *text;
	size_t len;
	if (read_file(path, HK_MAX_SOURCE_SIZE, &text, &len) < 0) {
		diag_error_noloc(d, "cannot read %s: %s", path, errno == EFBIG ? "file too large" : strerror(errno));
		return NULL;
	}
	unsigned f = diag_add_file(d, path, path, text, len);
	return unit_from(f, opts, d);
}

void
hk_unit_free(struct hk_unit **up)
{
	struct hk_unit *u = *up;
	*up = NULL;
	if (u == NULL)
		return;
	for (int i = 0; i < STAGE_COUNT; i++)
		free(u->stage[i].items);
	free(u->tests.items);
	free(u->comments);
	arena_fini(&u->arena);
	free(u);
}

struct hk_program *
hk_unit_codegen(struct hk_unit *u)
{
	if (u->diag->errors)
		return NULL;
	struct hk_program *p = codegen_unit(u);
	if (p == NULL)
		return NULL;
	/* the source hash: every file that went into the program */
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	for (size_t i = 0; i < u->diag->nfiles; i++)
		EVP_DigestUpdate(md, u->diag->files[i].text, u->diag->files[i].len);
	unsigned int n = 32;
	EVP_DigestFinal_ex(md, p->source_hash, &n);
	EVP_MD_CTX_free(md);

	struct hk_buf err;
	buf_init(&err);
	if (hk_program_verify(p, &err) < 0 || hk_program_prepare(p, &err) < 0) {
		diag_error_noloc(u->diag, "internal error: generated code rejected: %s", err.data);
		hk_program_unref(&p);
	}
	buf_fini(&err);
	return p;
}

struct hk_program *
hk_compile_file(const char *path, const struct hk_compile_opts *opts, struct diag *d)
{
	struct hk_unit *u = hk_unit_load(path, opts, d);
	if (u == NULL)
		return NULL;
	struct hk_program *p = hk_unit_codegen(u);
	hk_unit_free(&u);
	return p;
}
