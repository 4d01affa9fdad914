/*
 * program.c - life cycle and the .hkc file format of compiled programs.
 *
 * Format (all integers little-endian):
 *   "HKBC" u16 version u8 layer u8 0 u32 nsections
 *   nsections x { u32 tag, u32 length, bytes }
 *   32-byte SHA-256 of everything before it
 * Sections: STRS strpool, CONS constants, REGX regexes, RULE rules,
 * FILE file names, ENTR stage entries, CODE bytecode, LINE line table,
 * HASH source hash. Unknown tags are refused (a newer compiler's file).
 *
 * SECURITY: a .hkc file is hostile until verified. The reader checks the
 * checksum, then every count and offset against the section sizes and the
 * HK_MAX_* limits before allocating, then hands the result to the verifier
 * (bc_verify.c). Nothing from a rejected file is ever executed.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "program.h"

#include <openssl/evp.h>
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "vm.h"

struct hk_program *
hk_program_new(void)
{
	struct hk_program *p = xcalloc(1, sizeof(*p));
	p->refs = 1;
	for (int i = 0; i < HK_STAGES; i++)
		p->entry[i] = HK_NO_ENTRY;
	return p;
}

/* Shared between server threads: the count is atomic. */
struct hk_program *
hk_program_ref(struct hk_program *p)
{
	__atomic_add_fetch(&p->refs, 1, __ATOMIC_RELAXED);
	return p;
}

void
hk_program_unref(struct hk_program **pp)
{
	struct hk_program *p = *pp;
	*pp = NULL;
	if (p == NULL || __atomic_sub_fetch(&p->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	for (uint32_t i = 0; i < p->nregexes; i++)
		if (p->regexes[i].code)
			pcre2_code_free(p->regexes[i].code);
	vm_program_release(p);
	free(p->strpool);
	free(p->consts);
	free(p->regexes);
	free(p->rules);
	free(p->files);
	free(p->code);
	free(p->lines);
	free(p);
}

const char *
hk_layer_name(int layer)
{
	static const char *const names[] = { "operator", "domain", "panel", "personal" };
	return layer >= 0 && layer < HK_LAYER_COUNT ? names[layer] : "?";
}

const struct hk_line_info *
hk_program_line(const struct hk_program *p, uint32_t pc)
{
	/* last entry with entry.pc <= pc */
	uint32_t lo = 0, hi = p->nlines;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (p->lines[mid].pc <= pc)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo ? &p->lines[lo - 1] : NULL;
}

/* --- writing ------------------------------------------------------------- */

enum {
	SEC_STRS = 0x53525453, /* "STRS" */
	SEC_CONS = 0x534e4f43,
	SEC_REGX = 0x58474552,
	SEC_RULE = 0x454c5552,
	SEC_FILE = 0x454c4946,
	SEC_ENTR = 0x52544e45,
	SEC_CODE = 0x45444f43,
	SEC_LINE = 0x454e494c,
	SEC_HASH = 0x48534148
};

static void
put_u8(struct hk_buf *b, unsigned v)
{
	buf_addc(b, (char)(v & 0xFF));
}

static void
put_u16(struct hk_buf *b, unsigned v)
{
	put_u8(b, v);
	put_u8(b, v >> 8);
}

static void
put_u32(struct hk_buf *b, uint32_t v)
{
	put_u16(b, v & 0xFFFF);
	put_u16(b, v >> 16);
}

static void
put_i64(struct hk_buf *b, int64_t v)
{
	uint64_t u = (uint64_t)v;
	put_u32(b, (uint32_t)(u & 0xFFFFFFFFu));
	put_u32(b, (uint32_t)(u >> 32));
}

static size_t
section_begin(struct hk_buf *b, uint32_t tag)
{
	put_u32(b, tag);
	size_t at = b->len;
	put_u32(b, 0);
	return at;
}

static void
section_end(struct hk_buf *b, size_t at)
{
	uint32_t len = (uint32_t)(b->len - at - 4);
	unsigned char *p = (unsigned char *)b->data + at;
	p[0] = len & 0xFF;
	p[1] = (len >> 8) & 0xFF;
	p[2] = (len >> 16) & 0xFF;
	p[3] = (len >> 24) & 0xFF;
}

static void
sha256(const void *data, size_t len, unsigned char out[32])
{
	unsigned int n = 32;
	EVP_Digest(data, len, out, &n, EVP_sha256(), NULL);
}

void
hk_program_write(const struct hk_program *p, struct hk_buf *out)
{
	size_t start = out->len;
	buf_add(out, HK_BC_MAGIC, 4);
	put_u16(out, HK_BC_VERSION);
	put_u8(out, p->layer);
	put_u8(out, 0);
	put_u32(out, 9);

	size_t at = section_begin(out, SEC_STRS);
	buf_add(out, p->strpool, p->strpool_len);
	section_end(out, at);

	at = section_begin(out, SEC_CONS);
	put_u32(out, p->nconsts);
	for (uint32_t i = 0; i < p->nconsts; i++) {
		const struct hk_const *c = &p->consts[i];
		put_u8(out, c->type);
		put_u32(out, c->off);
		put_u32(out, c->len);
		put_i64(out, c->num);
		put_u32(out, c->first);
		put_u32(out, c->count);
	}
	section_end(out, at);

	at = section_begin(out, SEC_REGX);
	put_u32(out, p->nregexes);
	for (uint32_t i = 0; i < p->nregexes; i++) {
		put_u32(out, p->regexes[i].off);
		put_u32(out, p->regexes[i].len);
		put_u32(out, p->regexes[i].flags);
	}
	section_end(out, at);

	at = section_begin(out, SEC_RULE);
	put_u32(out, p->nrules);
	for (uint32_t i = 0; i < p->nrules; i++) {
		const struct hk_rule_info *r = &p->rules[i];
		put_u32(out, r->name_off);
		put_u32(out, r->name_len);
		put_u16(out, r->file);
		put_u8(out, r->stage);
		put_u32(out, r->line);
		put_u32(out, r->col);
	}
	section_end(out, at);

	at = section_begin(out, SEC_FILE);
	put_u32(out, p->nfiles);
	for (uint32_t i = 0; i < p->nfiles; i++) {
		put_u32(out, p->files[i].off);
		put_u32(out, p->files[i].len);
	}
	section_end(out, at);

	at = section_begin(out, SEC_ENTR);
	put_u32(out, HK_STAGES);
	for (int i = 0; i < HK_STAGES; i++)
		put_u32(out, p->entry[i]);
	section_end(out, at);

	at = section_begin(out, SEC_CODE);
	buf_add(out, p->code, p->code_len);
	section_end(out, at);

	at = section_begin(out, SEC_LINE);
	put_u32(out, p->nlines);
	for (uint32_t i = 0; i < p->nlines; i++) {
		put_u32(out, p->lines[i].pc);
		put_u32(out, p->lines[i].line);
		put_u16(out, p->lines[i].col);
		put_u16(out, p->lines[i].file);
	}
	section_end(out, at);

	at = section_begin(out, SEC_HASH);
	buf_add(out, p->source_hash, 32);
	section_end(out, at);

	unsigned char sum[32];
	sha256(out->data + start, out->len - start, sum);
	buf_add(out, sum, 32);
}

/* --- reading -------------------------------------------------------------- */

struct reader {
	const unsigned char *p, *end;
	bool bad;
};

/* The bit of a section in the reader's seen-set; 0 for an unknown tag. */
static unsigned
section_bit(uint32_t tag)
{
	static const uint32_t tags[] = { SEC_STRS, SEC_CONS, SEC_REGX, SEC_RULE, SEC_FILE, SEC_ENTR, SEC_CODE, SEC_LINE, SEC_HASH };
	for (unsigned i = 0; i < HK_ARRAY_LEN(tags); i++)
		if (tags[i] == tag)
			return 1u << i;
	return 0;
}

static unsigned
get_u8(struct reader *r)
{
	if (r->p >= r->end) {
		r->bad = true;
		return 0;
	}
	return *r->p++;
}

static unsigned
get_u16(struct reader *r)
{
	unsigned a = get_u8(r);
	return a | (get_u8(r) << 8);
}

static uint32_t
get_u32(struct reader *r)
{
	uint32_t a = get_u16(r);
	return a | ((uint32_t)get_u16(r) << 16);
}

static int64_t
get_i64(struct reader *r)
{
	uint64_t a = get_u32(r);
	return (int64_t)(a | ((uint64_t)get_u32(r) << 32));
}

/* Reads a count of records of `size` bytes each, refusing counts that the
 * remaining bytes cannot hold (never allocate what the file declares). */
static bool
get_count(struct reader *r, size_t size, uint32_t max, uint32_t *n_r)
{
	uint32_t n = get_u32(r);
	if (r->bad || n > max || (size_t)(r->end - r->p) / size < n)
		return false;
	*n_r = n;
	return true;
}

int
hk_program_read(const void *data, size_t len, struct hk_program **p_r, struct hk_buf *err)
{
	const unsigned char *d = data;
	*p_r = NULL;
	if (len < 16 + 32 || memcmp(d, HK_BC_MAGIC, 4) != 0) {
		buf_adds(err, "not a compiled Hikyaku script (bad magic)");
		return -1;
	}
	unsigned version = (unsigned)d[4] | ((unsigned)d[5] << 8);
	if (version != HK_BC_VERSION) {
		buf_printf(err, "compiled by another version of Hikyaku (format %u, this one reads %u); recompile it", version,
		    HK_BC_VERSION);
		return -1;
	}
	unsigned char sum[32];
	sha256(d, len - 32, sum);
	if (memcmp(sum, d + len - 32, 32) != 0) {
		buf_adds(err, "checksum mismatch: the file is corrupt");
		return -1;
	}
	struct hk_program *p = hk_program_new();
	p->layer = d[6];
	if (p->layer >= HK_LAYER_COUNT) {
		buf_adds(err, "unknown layer");
		goto fail;
	}
	struct reader r = { d + 8, d + len - 32, false };
	uint32_t nsec = get_u32(&r);
	unsigned seen = 0;
	for (uint32_t s = 0; s < nsec && !r.bad; s++) {
		uint32_t tag = get_u32(&r), slen = get_u32(&r);
		if (r.bad || slen > (size_t)(r.end - r.p)) {
			buf_adds(err, "truncated section");
			goto fail;
		}
		struct reader sr = { r.p, r.p + slen, false };
		r.p += slen;
		/* before anything is allocated: a second copy would leak the first */
		if (seen & section_bit(tag)) {
			buf_adds(err, "duplicate section");
			goto fail;
		}
		unsigned bit;
		switch (tag) {
		case SEC_STRS:
			bit = 1;
			if (slen > HK_MAX_STRPOOL)
				goto toobig;
			p->strpool = xmalloc(slen + 1);
			memcpy(p->strpool, sr.p, slen);
			p->strpool[slen] = '\0';
			p->strpool_len = slen;
			sr.p = sr.end;
			break;
		case SEC_CONS:
			bit = 2;
			if (!get_count(&sr, 25, HK_MAX_CONSTS, &p->nconsts))
				goto toobig;
			p->consts = xcalloc(p->nconsts ? p->nconsts : 1, sizeof(*p->consts));
			for (uint32_t i = 0; i < p->nconsts; i++) {
				struct hk_const *c = &p->consts[i];
				c->type = (uint8_t)get_u8(&sr);
				c->off = get_u32(&sr);
				c->len = get_u32(&sr);
				c->num = get_i64(&sr);
				c->first = get_u32(&sr);
				c->count = get_u32(&sr);
			}
			break;
		case SEC_REGX:
			bit = 4;
			if (!get_count(&sr, 12, HK_MAX_REGEXES, &p->nregexes))
				goto toobig;
			p->regexes = xcalloc(p->nregexes ? p->nregexes : 1, sizeof(*p->regexes));
			for (uint32_t i = 0; i < p->nregexes; i++) {
				p->regexes[i].off = get_u32(&sr);
				p->regexes[i].len = get_u32(&sr);
				p->regexes[i].flags = get_u32(&sr);
			}
			break;
		case SEC_RULE:
			bit = 8;
			if (!get_count(&sr, 19, HK_MAX_RULES, &p->nrules))
				goto toobig;
			p->rules = xcalloc(p->nrules ? p->nrules : 1, sizeof(*p->rules));
			for (uint32_t i = 0; i < p->nrules; i++) {
				struct hk_rule_info *ri = &p->rules[i];
				ri->name_off = get_u32(&sr);
				ri->name_len = get_u32(&sr);
				ri->file = (uint16_t)get_u16(&sr);
				ri->stage = (uint8_t)get_u8(&sr);
				ri->line = get_u32(&sr);
				ri->col = get_u32(&sr);
			}
			break;
		case SEC_FILE:
			bit = 16;
			if (!get_count(&sr, 8, HK_MAX_FILES, &p->nfiles))
				goto toobig;
			p->files = xcalloc(p->nfiles ? p->nfiles : 1, sizeof(*p->files));
			for (uint32_t i = 0; i < p->nfiles; i++) {
				p->files[i].off = get_u32(&sr);
				p->files[i].len = get_u32(&sr);
			}
			break;
		case SEC_ENTR: {
			bit = 32;
			uint32_t n = get_u32(&sr);
			if (n != HK_STAGES) {
				buf_adds(err, "wrong number of stages");
				goto fail;
			}
			for (int i = 0; i < HK_STAGES; i++)
				p->entry[i] = get_u32(&sr);
			break;
		}
		case SEC_CODE:
			bit = 64;
			if (slen > HK_MAX_CODE)
				goto toobig;
			p->code = xmalloc(slen ? slen : 1);
			memcpy(p->code, sr.p, slen);
			p->code_len = slen;
			sr.p = sr.end;
			break;
		case SEC_LINE:
			bit = 128;
			if (!get_count(&sr, 12, HK_MAX_CODE, &p->nlines))
				goto toobig;
			p->lines = xcalloc(p->nlines ? p->nlines : 1, sizeof(*p->lines));
			for (uint32_t i = 0; i < p->nlines; i++) {
				p->lines[i].pc = get_u32(&sr);
				p->lines[i].line = get_u32(&sr);
				p->lines[i].col = (uint16_t)get_u16(&sr);
				p->lines[i].file = (uint16_t)get_u16(&sr);
			}
			break;
		case SEC_HASH:
			bit = 256;
			if (slen != 32) {
				buf_adds(err, "bad source hash");
				goto fail;
			}
			memcpy(p->source_hash, sr.p, 32);
			sr.p = sr.end;
			break;
		default:
			buf_printf(err, "unknown section 0x%08x", tag);
			goto fail;
		}
		if (seen & bit) {
			buf_adds(err, "duplicate section");
			goto fail;
		}
		seen |= bit;
		if (sr.bad || sr.p != sr.end) {
			buf_adds(err, "malformed section");
			goto fail;
		}
	}
	if (r.bad || r.p != r.end || seen != 511) {
		buf_adds(err, "missing or truncated sections");
		goto fail;
	}
	if (hk_program_verify(p, err) < 0 || hk_program_prepare(p, err) < 0)
		goto fail;
	*p_r = p;
	return 0;
toobig:
	buf_adds(err, "a section is larger than its limit or than the file");
fail:
	hk_program_unref(&p);
	return -1;
}

int
hk_program_prepare(struct hk_program *p, struct hk_buf *err)
{
	if (p->prepared)
		return 0;
	for (uint32_t i = 0; i < p->nregexes; i++) {
		struct hk_regex_info *ri = &p->regexes[i];
		uint32_t opts = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF;
		if (ri->flags & HK_RE_CASELESS)
			opts |= PCRE2_CASELESS;
		if (ri->flags & HK_RE_MULTILINE)
			opts |= PCRE2_MULTILINE;
		if (ri->flags & HK_RE_DOTALL)
			opts |= PCRE2_DOTALL;
		if (ri->flags & HK_RE_EXTENDED)
			opts |= PCRE2_EXTENDED;
		int code;
		PCRE2_SIZE off;
		pcre2_code *re = pcre2_compile((PCRE2_SPTR)(p->strpool + ri->off), ri->len, opts, &code, &off, NULL);
		if (re == NULL) {
			PCRE2_UCHAR msg[256];
			pcre2_get_error_message(code, msg, sizeof(msg));
			buf_printf(err, "regex %u: %s", i, (const char *)msg);
			return -1;
		}
		/* JIT is an optimisation: without it (e.g. no executable memory)
		 * the interpreter runs with the same match limits. */
		(void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
		ri->code = re;
	}
	vm_program_prepare(p);
	p->prepared = true;
	return 0;
}
