/*
 * test_program.c - unit tests of the .hkc format and the bytecode verifier
 * (runtime/program.c, runtime/bc_verify.c): write/read round trips give the
 * same disassembly and the same bytes; corrupt files (a flipped byte, a
 * wrong magic or version, truncation, unknown or duplicate sections) are
 * refused with a clear message; and programs that are invalid but carry a
 * correct SHA-256 trailer are refused by the verifier.
 *
 * File format (program.c): "HKBC" u16 version, u8 layer, u8 0, u32
 * nsections, then nsections x { u32 tag, u32 length, bytes }, then the
 * SHA-256 of everything before it. Files are edited section by section here
 * and the trailer is recomputed with OpenSSL, as an attacker would.
 *
 * Run from the repository root (examples/ and stdlib/ are compiled).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "bytecode.h"
#include "compile.h"
#include "fields.h"
#include "message.h"
#include "vm.h"

/* --- helpers ---------------------------------------------------------------------- */

static struct hk_program *
compile_src(const char *src, enum hk_layer layer)
{
	struct diag d;
	diag_init(&d);
	struct hk_compile_opts o = { .layer = layer, .stdlib_dir = "stdlib" };
	struct hk_unit *u = hk_unit_load_text("t.hk", src, strlen(src), &o, &d);
	struct hk_program *p = u && d.errors == 0 ? hk_unit_codegen(u) : NULL;
	if (p == NULL) {
		diag_print(&d, stdout, false);
		fail_msg("does not compile:\n%s", src);
	}
	hk_unit_free(&u);
	diag_fini(&d);
	return p;
}

static void
disasm(const struct hk_program *p, struct hk_buf *out)
{
	buf_reset(out);
	hk_disasm(p, out);
}

/* Reads bytes and returns the error message ("" when accepted). */
static char *
read_error(const void *data, size_t len)
{
	struct hk_buf err;
	buf_init(&err);
	struct hk_program *p = NULL;
	int rc = hk_program_read(data, len, &p, &err);
	char *msg;
	if (rc == 0) {
		assert_non_null(p);
		hk_program_unref(&p);
		msg = xstrdup("");
	} else {
		assert_null(p);
		msg = xstrdup(err.data ? err.data : "(refused without a message)");
	}
	buf_fini(&err);
	return msg;
}

#define assert_refused_with(data, len, sub)                                               \
	do {                                                                                  \
		char *m_ = read_error((data), (len));                                             \
		if (strstr(m_, (sub)) == NULL || m_[0] == '\0')                                   \
			fail_msg("want refusal containing \"%s\", got \"%s\"", (sub), m_[0] ? m_ : "(accepted)"); \
		free(m_);                                                                         \
	} while (0)

static void
sha256(const void *data, size_t len, unsigned char out[32])
{
	unsigned int n = 32;
	assert_int_equal(EVP_Digest(data, len, out, &n, EVP_sha256(), NULL), 1);
}

static uint32_t
get32(const unsigned char *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static void
put32(struct hk_buf *b, uint32_t v)
{
	char c[4] = { (char)(v & 0xFF), (char)((v >> 8) & 0xFF), (char)((v >> 16) & 0xFF), (char)((v >> 24) & 0xFF) };
	buf_add(b, c, 4);
}

static uint32_t
tag_of(const char name[4])
{
	return get32((const unsigned char *)name);
}

/* A .hkc file taken apart: header, section list (in file order). */
struct hkc {
	unsigned char head[8]; /* magic, version, layer, reserved */
	uint32_t nsections;    /* as written in the header */
	struct {
		uint32_t tag;
		struct hk_buf data;
	} sec[16];
	size_t n;
};

static void
hkc_parse(const struct hk_buf *file, struct hkc *f)
{
	memset(f, 0, sizeof(*f));
	const unsigned char *p = (const unsigned char *)file->data, *end = p + file->len - 32;
	assert_true(file->len >= 12 + 32);
	memcpy(f->head, p, 8);
	f->nsections = get32(p + 8);
	p += 12;
	while (p < end) {
		assert_true(f->n < 16);
		uint32_t tag = get32(p), len = get32(p + 4);
		p += 8;
		assert_true(len <= (size_t)(end - p));
		f->sec[f->n].tag = tag;
		buf_init(&f->sec[f->n].data);
		buf_add(&f->sec[f->n].data, p, len);
		f->n++;
		p += len;
	}
	assert_int_equal(f->n, f->nsections);
}

/* Serializes with the section lengths and the SHA-256 trailer recomputed. */
static void
hkc_write(const struct hkc *f, struct hk_buf *out)
{
	buf_reset(out);
	buf_add(out, f->head, 8);
	put32(out, f->nsections);
	for (size_t i = 0; i < f->n; i++) {
		put32(out, f->sec[i].tag);
		put32(out, (uint32_t)f->sec[i].data.len);
		buf_add(out, f->sec[i].data.data ? f->sec[i].data.data : "", f->sec[i].data.len);
	}
	unsigned char sum[32];
	sha256(out->data, out->len, sum);
	buf_add(out, sum, 32);
}

static void
hkc_fini(struct hkc *f)
{
	for (size_t i = 0; i < f->n; i++)
		buf_fini(&f->sec[i].data);
}

static struct hk_buf *
hkc_section(struct hkc *f, const char name[4])
{
	for (size_t i = 0; i < f->n; i++)
		if (f->sec[i].tag == tag_of(name))
			return &f->sec[i].data;
	fail_msg("no section %.4s", name);
	return NULL;
}

/* Recomputes the trailer of a file edited in place. */
static void
fix_trailer(unsigned char *data, size_t len)
{
	sha256(data, len - 32, data + len - 32);
}

static const char *const sample_src =
    "import \"mailtypes\"\n"
    "const vip = [\"boss@example.jp\", \"ceo@example.jp\"]\n"
    "const limits = [1K, 8M]\n"
    "on mail {\n"
    "    rule \"spf\" when spf in [fail, permerror] { refuse 550 \"5.7.23 SPF failed for ${envelope.from.domain}\" }\n"
    "}\n"
    "on data {\n"
    "    rule \"mark\" when not tls { add header \"X-TLS\" \"no\" }\n"
    "}\n"
    "on deliver {\n"
    "    rule \"vip\" when from in vip or subject ~ /^\\[urgent\\]/i { flag \"\\\\Flagged\" }\n"
    "    rule \"lists\" when is_list_mail { fileinto \"Lists/${from.domain}\" skip }\n"
    "    rule \"big\" when size in limits or attachments.size > 8M {\n"
    "        if has attachment { notify \"p@docomo.example\" subject \"big: ${subject}\" } else { log \"big\" }\n"
    "    }\n"
    "    rule \"away\" { reply subject \"Away\" every 3 days }\n"
    "}\n"
    "on retention {\n"
    "    rule \"old\" when age > 365 days and not flagged { expunge }\n"
    "}\n";

/* --- round trips --------------------------------------------------------------------- */

static void
test_program_round_trip_same_disassembly(void **state)
{
	(void)state;
	struct hk_program *p = compile_src(sample_src, HK_LAYER_OPERATOR);
	struct hk_buf file, file2, d1, d2, err;
	buf_init(&file);
	buf_init(&file2);
	buf_init(&d1);
	buf_init(&d2);
	buf_init(&err);
	hk_program_write(p, &file);
	assert_memory_equal(file.data, HK_BC_MAGIC, 4);
	struct hk_program *q = NULL;
	if (hk_program_read(file.data, file.len, &q, &err) < 0)
		fail_msg("refused: %s", err.data);
	disasm(p, &d1);
	disasm(q, &d2);
	assert_string_equal(d1.data, d2.data);
	assert_non_null(strstr(d1.data, "on deliver:"));
	assert_non_null(strstr(d1.data, "on retention:"));
	/* the tables came back too */
	assert_int_equal(q->layer, p->layer);
	assert_int_equal(q->nconsts, p->nconsts);
	assert_int_equal(q->nregexes, p->nregexes);
	assert_int_equal(q->nrules, p->nrules);
	assert_int_equal(q->nfiles, p->nfiles);
	assert_int_equal(q->nlines, p->nlines);
	assert_int_equal(q->max_stack, p->max_stack);
	assert_memory_equal(q->entry, p->entry, sizeof(p->entry));
	assert_memory_equal(q->source_hash, p->source_hash, 32);
	/* writing what was read gives the same bytes */
	hk_program_write(q, &file2);
	assert_int_equal(file2.len, file.len);
	assert_memory_equal(file2.data, file.data, file.len);
	hk_program_unref(&q);
	hk_program_unref(&p);
	buf_fini(&file);
	buf_fini(&file2);
	buf_fini(&d1);
	buf_fini(&d2);
	buf_fini(&err);
}

static void
test_program_round_trip_every_example(void **state)
{
	(void)state;
	static const char *const files[] = {
		"examples/attachment-policy/domain.hk", "examples/autoreply/personal.hk", "examples/forwarding/personal.hk",
		"examples/mailing-list/domain.hk", "examples/retention/global.hk", "examples/smtp-policy/global.hk",
		"examples/warpmail-discard/personal.hk", "examples/warpmail-forward/personal.hk",
		"examples/warpmail-notify/personal.hk", "examples/warpmail-reject/personal.hk", "examples/warpmail-skip/personal.hk",
	};
	for (size_t i = 0; i < HK_ARRAY_LEN(files); i++) {
		struct diag d;
		diag_init(&d);
		const char *base = strrchr(files[i], '/') + 1;
		enum hk_layer layer = strcmp(base, "personal.hk") == 0 ? HK_LAYER_PERSONAL
		    : strcmp(base, "domain.hk") == 0 ? HK_LAYER_DOMAIN : HK_LAYER_OPERATOR;
		struct hk_compile_opts o = { .layer = layer, .stdlib_dir = "stdlib" };
		struct hk_program *p = hk_compile_file(files[i], &o, &d);
		if (p == NULL) {
			diag_print(&d, stdout, false);
			fail_msg("%s does not compile", files[i]);
		}
		struct hk_buf file, d1, d2, err;
		buf_init(&file);
		buf_init(&d1);
		buf_init(&d2);
		buf_init(&err);
		hk_program_write(p, &file);
		struct hk_program *q = NULL;
		if (hk_program_read(file.data, file.len, &q, &err) < 0)
			fail_msg("%s: refused: %s", files[i], err.data);
		disasm(p, &d1);
		disasm(q, &d2);
		assert_string_equal(d1.data, d2.data);
		assert_int_equal(q->layer, layer);
		hk_program_unref(&q);
		hk_program_unref(&p);
		buf_fini(&file);
		buf_fini(&d1);
		buf_fini(&d2);
		buf_fini(&err);
		diag_fini(&d);
	}
}

/* The program read back decides the same as the compiled one. */
static void
test_program_read_back_runs_the_same(void **state)
{
	(void)state;
	static const char raw[] = "From: Boss <boss@example.jp>\nTo: taro@example.jp\nSubject: [URGENT] call me\n\nx\n";
	struct hk_program *p = compile_src(sample_src, HK_LAYER_OPERATOR);
	struct hk_buf file, err, out[2];
	buf_init(&file);
	buf_init(&err);
	hk_program_write(p, &file);
	struct hk_program *q = NULL;
	assert_int_equal(hk_program_read(file.data, file.len, &q, &err), 0);
	struct hk_program *progs[2] = { p, q };
	for (int k = 0; k < 2; k++) {
		struct hk_message *m = hk_message_new(raw, strlen(raw), NULL);
		struct hk_env env;
		hk_env_init(&env);
		env.stage = STAGE_DELIVER;
		env.env_from = HK_STR("boss@example.jp");
		env.recipient = HK_STR("taro@example.jp");
		struct hk_result res;
		hk_result_init(&res);
		struct hk_vm_limits lim;
		hk_vm_limits_for_layer(&lim, progs[k]->layer);
		assert_int_equal(hk_vm_run(progs[k], STAGE_DELIVER, m, &env, &res, &lim, NULL), HK_VM_OK);
		struct hk_final fin;
		hk_result_finalize(&res, m, &env, NULL, &fin);
		buf_init(&out[k]);
		for (size_t i = 0; i < fin.n; i++) {
			hk_action_format(&fin.acts[i], &env, &out[k]);
			buf_addc(&out[k], '\n');
		}
		hk_result_fini(&res);
		hk_message_free(&m);
	}
	assert_string_equal(out[0].data, "flag \"\\\\Flagged\"\nreply to boss@example.jp\nkeep\n");
	assert_string_equal(out[1].data, out[0].data);
	buf_fini(&out[0]);
	buf_fini(&out[1]);
	hk_program_unref(&q);
	hk_program_unref(&p);
	buf_fini(&file);
	buf_fini(&err);
}

/* --- corrupt files ------------------------------------------------------------------------ */

static void
test_program_flipped_byte_anywhere_is_refused(void **state)
{
	(void)state;
	struct hk_program *p = compile_src(sample_src, HK_LAYER_OPERATOR);
	struct hk_buf file;
	buf_init(&file);
	hk_program_write(p, &file);
	unsigned char *copy = malloc(file.len);
	for (size_t i = 0; i < file.len; i++) {
		static const unsigned char flips[] = { 0x01, 0x80, 0xFF };
		for (size_t f = 0; f < sizeof(flips); f++) {
			memcpy(copy, file.data, file.len);
			copy[i] ^= flips[f];
			char *m = read_error(copy, file.len);
			const char *want = i < 4 ? "bad magic" : i < 6 ? "compiled by another version" : "checksum mismatch: the file is corrupt";
			if (strstr(m, want) == NULL)
				fail_msg("byte %zu ^ 0x%02x of %zu: want \"%s\", got \"%s\"", i, flips[f], file.len, want, m[0] ? m : "(accepted)");
			free(m);
		}
	}
	free(copy);
	hk_program_unref(&p);
	buf_fini(&file);
}

static void
test_program_wrong_magic_is_refused(void **state)
{
	(void)state;
	struct hk_program *p = compile_src(sample_src, HK_LAYER_OPERATOR);
	struct hk_buf file;
	buf_init(&file);
	hk_program_write(p, &file);
	unsigned char *copy = malloc(file.len);
	memcpy(copy, file.data, file.len);
	memcpy(copy, "HKBD", 4);
	fix_trailer(copy, file.len);
	assert_refused_with(copy, file.len, "not a compiled Hikyaku script (bad magic)");
	memcpy(copy, "\x7f" "ELF", 4);
	fix_trailer(copy, file.len);
	assert_refused_with(copy, file.len, "not a compiled Hikyaku script (bad magic)");
	/* a text file, a .hk source */
	static const char src[] = "on deliver {\n    rule \"r\" { keep }\n}\n# padding padding padding padding\n";
	assert_refused_with(src, sizeof(src) - 1, "bad magic");
	free(copy);
	hk_program_unref(&p);
	buf_fini(&file);
}

static void
test_program_wrong_version_is_refused(void **state)
{
	(void)state;
	struct hk_program *p = compile_src(sample_src, HK_LAYER_OPERATOR);
	struct hk_buf file;
	buf_init(&file);
	hk_program_write(p, &file);
	unsigned char *copy = malloc(file.len);
	memcpy(copy, file.data, file.len);
	assert_int_equal(copy[4] | (copy[5] << 8), HK_BC_VERSION);
	copy[4] = 2;
	fix_trailer(copy, file.len);
	assert_refused_with(copy, file.len, "compiled by another version of Hikyaku (format 2, this one reads 1); recompile it");
	copy[4] = 0;
	copy[5] = 1;
	fix_trailer(copy, file.len);
	assert_refused_with(copy, file.len, "(format 256, this one reads 1)");
	copy[4] = 0;
	copy[5] = 0;
	fix_trailer(copy, file.len);
	assert_refused_with(copy, file.len, "(format 0, this one reads 1)");
	free(copy);
	hk_program_unref(&p);
	buf_fini(&file);
}

static void
test_program_truncated_files_are_refused(void **state)
{
	(void)state;
	struct hk_program *p = compile_src(sample_src, HK_LAYER_OPERATOR);
	struct hk_buf file;
	buf_init(&file);
	hk_program_write(p, &file);
	/* every prefix, as it is */
	for (size_t n = 0; n < file.len; n++) {
		char *m = read_error(file.data, n);
		if (m[0] == '\0' || (strstr(m, "bad magic") == NULL && strstr(m, "checksum mismatch") == NULL))
			fail_msg("prefix of %zu bytes: got \"%s\"", n, m[0] ? m : "(accepted)");
		free(m);
	}
	/* every prefix of the body, with a valid trailer for it */
	unsigned char *copy = malloc(file.len);
	size_t body = file.len - 32;
	for (size_t n = 16; n < body; n++) {
		memcpy(copy, file.data, n);
		sha256(copy, n, copy + n);
		char *m = read_error(copy, n + 32);
		if (m[0] == '\0' || (strstr(m, "truncated") == NULL && strstr(m, "malformed section") == NULL))
			fail_msg("body cut at %zu of %zu: got \"%s\"", n, body, m[0] ? m : "(accepted)");
		free(m);
	}
	/* a section cut short inside, with its length and the trailer fixed */
	struct hkc f;
	hkc_parse(&file, &f);
	struct hk_buf out;
	buf_init(&out);
	struct hk_buf *cons = hkc_section(&f, "CONS");
	cons->len -= 3;
	hkc_write(&f, &out);
	assert_refused_with(out.data, out.len, "a section is larger than its limit or than the file");
	hkc_fini(&f);
	/* a missing section, with the count fixed */
	hkc_parse(&file, &f);
	buf_fini(&f.sec[f.n - 1].data);
	f.n--;
	f.nsections--;
	hkc_write(&f, &out);
	assert_refused_with(out.data, out.len, "missing or truncated sections");
	/* a missing section, with the count not fixed */
	f.nsections++;
	hkc_write(&f, &out);
	assert_refused_with(out.data, out.len, "truncated section");
	hkc_fini(&f);
	free(copy);
	buf_fini(&out);
	hk_program_unref(&p);
	buf_fini(&file);
}

static void
test_program_unknown_and_duplicate_sections_are_refused(void **state)
{
	(void)state;
	struct hk_program *p = compile_src(sample_src, HK_LAYER_OPERATOR);
	struct hk_buf file, out;
	buf_init(&file);
	buf_init(&out);
	hk_program_write(p, &file);
	struct hkc f;
	hkc_parse(&file, &f);
	assert_int_equal(f.n, 9);
	/* a section from a newer compiler */
	f.sec[f.n].tag = tag_of("XTRA");
	buf_init(&f.sec[f.n].data);
	buf_adds(&f.sec[f.n].data, "future");
	f.n++;
	f.nsections++;
	hkc_write(&f, &out);
	assert_refused_with(out.data, out.len, "unknown section 0x41525458");
	/* the same before the known ones */
	f.sec[f.n - 1].tag = tag_of("STRS");
	hkc_write(&f, &out);
	assert_refused_with(out.data, out.len, "duplicate section");
	hkc_fini(&f);
	/* extra bytes inside a known section */
	hkc_parse(&file, &f);
	buf_adds(hkc_section(&f, "ENTR"), "xx");
	hkc_write(&f, &out);
	assert_refused_with(out.data, out.len, "malformed section");
	hkc_fini(&f);
	/* a bad source hash length */
	hkc_parse(&file, &f);
	hkc_section(&f, "HASH")->len = 16;
	hkc_write(&f, &out);
	assert_refused_with(out.data, out.len, "bad source hash");
	hkc_fini(&f);
	/* a wrong stage count */
	hkc_parse(&file, &f);
	struct hk_buf *entr = hkc_section(&f, "ENTR");
	entr->data[0] = 6;
	hkc_write(&f, &out);
	assert_refused_with(out.data, out.len, "wrong number of stages");
	hkc_fini(&f);
	/* counts larger than the section */
	hkc_parse(&file, &f);
	struct hk_buf *rule = hkc_section(&f, "RULE");
	rule->data[3] = 0x7f;
	hkc_write(&f, &out);
	assert_refused_with(out.data, out.len, "a section is larger than its limit or than the file");
	hkc_fini(&f);
	/* an unknown layer */
	hkc_parse(&file, &f);
	f.head[6] = HK_LAYER_COUNT;
	hkc_write(&f, &out);
	assert_refused_with(out.data, out.len, "unknown layer");
	hkc_fini(&f);
	/* the unmodified file still reads */
	hkc_parse(&file, &f);
	hkc_write(&f, &out);
	assert_int_equal(out.len, file.len);
	assert_memory_equal(out.data, file.data, file.len);
	char *m = read_error(out.data, out.len);
	assert_string_equal(m, "");
	free(m);
	hkc_fini(&f);
	hk_program_unref(&p);
	buf_fini(&file);
	buf_fini(&out);
}

/* --- the verifier: programs built by hand ----------------------------------------------- */

/* A program with a small fixed set of tables and the given code; entry
 * points for the stages in `entries` (HK_NO_ENTRY elsewhere). Tables:
 *   consts  0 "X-Spam" (str), 1 5 (num), 2 "Work" (str), 3 ["a","b"] (list of 4,5),
 *           4 "a", 5 "b", 6 true (bool)
 *   regexes 0 /spam/i
 *   rules   0 "r" (file 0, deliver)
 *   files   0 "t.hk" */
static struct hk_program *
build(int layer, const uint8_t *code, size_t n, const uint32_t entries[HK_STAGES])
{
	struct hk_program *p = hk_program_new();
	p->layer = (uint8_t)layer;
	static const char pool[] = "X-SpamWorkabspamrt.hk";
	p->strpool_len = sizeof(pool) - 1;
	p->strpool = xmalloc(sizeof(pool));
	memcpy(p->strpool, pool, sizeof(pool));
	p->nconsts = 7;
	p->consts = xcalloc(7, sizeof(*p->consts));
	p->consts[0] = (struct hk_const){ .type = HKC_STR, .off = 0, .len = 6 };
	p->consts[1] = (struct hk_const){ .type = HKC_NUM, .num = 5 };
	p->consts[2] = (struct hk_const){ .type = HKC_STR, .off = 6, .len = 4 };
	p->consts[3] = (struct hk_const){ .type = HKC_STRLIST, .first = 4, .count = 2 };
	p->consts[4] = (struct hk_const){ .type = HKC_STR, .off = 10, .len = 1 };
	p->consts[5] = (struct hk_const){ .type = HKC_STR, .off = 11, .len = 1 };
	p->consts[6] = (struct hk_const){ .type = HKC_BOOL, .num = 1 };
	p->nregexes = 1;
	p->regexes = xcalloc(1, sizeof(*p->regexes));
	p->regexes[0] = (struct hk_regex_info){ .off = 12, .len = 4, .flags = HK_RE_CASELESS };
	p->nrules = 1;
	p->rules = xcalloc(1, sizeof(*p->rules));
	p->rules[0] = (struct hk_rule_info){ .name_off = 16, .name_len = 1, .file = 0, .stage = STAGE_DELIVER, .line = 1, .col = 1 };
	p->nfiles = 1;
	p->files = xcalloc(1, sizeof(*p->files));
	p->files[0] = (struct hk_file_info){ .off = 17, .len = 4 };
	p->code_len = (uint32_t)n;
	p->code = xmalloc(n ? n : 1);
	memcpy(p->code, code, n);
	for (int i = 0; i < HK_STAGES; i++)
		p->entry[i] = entries ? entries[i] : HK_NO_ENTRY;
	return p;
}

static const uint32_t deliver_only[HK_STAGES] = { HK_NO_ENTRY, HK_NO_ENTRY, HK_NO_ENTRY, HK_NO_ENTRY, HK_NO_ENTRY, 0, HK_NO_ENTRY };

/* Writes the hand-built program (the writer computes a correct trailer) and
 * reads it back: the verifier is the only thing that can refuse it. */
static char *
verify_error(int layer, const uint8_t *code, size_t n, const uint32_t *entries)
{
	struct hk_program *p = build(layer, code, n, entries ? entries : deliver_only);
	struct hk_buf file;
	buf_init(&file);
	hk_program_write(p, &file);
	hk_program_unref(&p);
	char *m = read_error(file.data, file.len);
	buf_fini(&file);
	return m;
}

#define U16(v) (uint8_t)((v) & 0xFF), (uint8_t)(((v) >> 8) & 0xFF)
#define U32(v) (uint8_t)((v) & 0xFF), (uint8_t)(((v) >> 8) & 0xFF), (uint8_t)(((v) >> 16) & 0xFF), (uint8_t)(((unsigned)(v) >> 24) & 0xFF)

struct vcase {
	const char *what;
	int layer;
	uint8_t code[40];
	size_t n;
	uint32_t entries[HK_STAGES];
	const char *want; /* "" = accepted */
};

#define NOE HK_NO_ENTRY
#define DELIVER_AT0 { NOE, NOE, NOE, NOE, NOE, 0, NOE }
#define RCPT_AT0 { NOE, NOE, NOE, 0, NOE, NOE, NOE }
#define MAIL_AT0 { NOE, NOE, 0, NOE, NOE, NOE, NOE }

static const struct vcase verifier_cases[] = {
	/* the builder itself makes valid programs */
	{ "valid: if tls { fileinto \"Work\" }", HK_LAYER_PERSONAL,
	    { OP_RULE, U16(0), OP_FIELD, FIELD_TLS, OP_JF, U32(17), OP_CONST, U16(2), OP_ACT, ACT_FILEINTO, 1, 0, OP_END }, 18, DELIVER_AT0, "" },
	{ "valid: header in list, regex, forward", HK_LAYER_OPERATOR,
	    { OP_HEADER, U16(0), OP_CONST, U16(3), OP_CMP, CMP_IN, 0, OP_JF, U32(29), OP_FIELD, FIELD_SUBJECT, OP_REGEX, U16(0), 0, OP_JF, U32(29),
		OP_ACT, ACT_DISCARD, 0, 0, OP_END }, 30, DELIVER_AT0, "" },
	/* jumps */
	{ "jump into the middle of an instruction", HK_LAYER_OPERATOR,
	    { OP_CONST, U16(6), OP_JF, U32(1), OP_END }, 9, DELIVER_AT0, "invalid bytecode: jump into the middle of an instruction or out of the code (at 3)" },
	{ "jump into the middle of a jump's operand", HK_LAYER_OPERATOR,
	    { OP_JMP, U32(2), OP_END }, 6, DELIVER_AT0, "jump into the middle of an instruction or out of the code (at 0)" },
	{ "jump past the end", HK_LAYER_OPERATOR,
	    { OP_JMP, U32(6), OP_END }, 6, DELIVER_AT0, "jump into the middle of an instruction or out of the code (at 0)" },
	{ "jump far out", HK_LAYER_OPERATOR,
	    { OP_CONST, U16(6), OP_JT, U32(0xFFFFFFF0u), OP_END }, 9, DELIVER_AT0, "jump into the middle of an instruction or out of the code (at 3)" },
	/* the stack */
	{ "stack underflow on CMP", HK_LAYER_OPERATOR,
	    { OP_CONST, U16(0), OP_CMP, CMP_IS, 0, OP_END }, 7, DELIVER_AT0, "invalid bytecode: stack underflow (at 3)" },
	{ "stack underflow on JF", HK_LAYER_OPERATOR,
	    { OP_JF, U32(5), OP_END }, 6, DELIVER_AT0, "stack underflow (at 0)" },
	{ "stack underflow on ACT", HK_LAYER_OPERATOR,
	    { OP_CONST, U16(2), OP_ACT, ACT_ADD_HEADER, 2, 0, OP_END }, 8, DELIVER_AT0, "stack underflow (at 3)" },
	{ "stack underflow on CONCAT", HK_LAYER_OPERATOR,
	    { OP_CONCAT, 1, OP_ACT, ACT_LOG, 1, 0, OP_END }, 7, DELIVER_AT0, "stack underflow (at 0)" },
	{ "stack not empty at the end", HK_LAYER_OPERATOR,
	    { OP_CONST, U16(1), OP_END }, 4, DELIVER_AT0, "stack not empty at the end (at 3)" },
	{ "inconsistent stack depth at a join", HK_LAYER_OPERATOR,
	    { OP_FIELD, FIELD_TLS, OP_JF, U32(10), OP_CONST, U16(1), OP_END }, 11, DELIVER_AT0, "inconsistent stack depth at a join (at 10)" },
	{ "inconsistent depth at a backward join", HK_LAYER_OPERATOR,
	    { OP_CONST, U16(6), OP_JMP, U32(0) }, 8, DELIVER_AT0, "inconsistent stack depth at a join (at 0)" },
	/* operands */
	{ "constant index out of range", HK_LAYER_OPERATOR,
	    { OP_CONST, U16(7), OP_ACT, ACT_LOG, 1, 0, OP_END }, 8, DELIVER_AT0, "invalid bytecode: constant index out of range (at 0)" },
	{ "header name not a string", HK_LAYER_OPERATOR,
	    { OP_HAS_HEADER, U16(1), OP_JF, U32(8), OP_END }, 9, DELIVER_AT0, "header name is not a string constant (at 0)" },
	{ "header name out of range", HK_LAYER_OPERATOR,
	    { OP_HEADER, U16(999), OP_TRUTH, OP_JF, U32(9), OP_END }, 10, DELIVER_AT0, "header name is not a string constant (at 0)" },
	{ "unknown field", HK_LAYER_OPERATOR,
	    { OP_FIELD, FIELD_COUNT, OP_TRUTH, OP_JF, U32(8), OP_END }, 9, DELIVER_AT0, "unknown field (at 0)" },
	{ "unknown address part", HK_LAYER_OPERATOR,
	    { OP_FIELD, FIELD_FROM, OP_PROP, PART_COUNT, OP_TRUTH, OP_JF, U32(10), OP_END }, 11, DELIVER_AT0, "unknown address part (at 2)" },
	{ "bad comparison", HK_LAYER_OPERATOR,
	    { OP_CONST, U16(0), OP_CONST, U16(0), OP_CMP, CMP_GE + 1, 0, OP_JF, U32(14), OP_END }, 15, DELIVER_AT0, "bad comparison (at 6)" },
	{ "comparison with the regex op", HK_LAYER_OPERATOR,
	    { OP_CONST, U16(0), OP_CONST, U16(0), OP_CMP, CMP_REGEX, 0, OP_JF, U32(14), OP_END }, 15, DELIVER_AT0, "bad comparison (at 6)" },
	{ "regex index out of range", HK_LAYER_OPERATOR,
	    { OP_FIELD, FIELD_SUBJECT, OP_REGEX, U16(1), 0, OP_JF, U32(11), OP_END }, 12, DELIVER_AT0, "bad regex operand (at 2)" },
	{ "rule index out of range", HK_LAYER_OPERATOR,
	    { OP_RULE, U16(1), OP_END }, 4, DELIVER_AT0, "rule index out of range (at 0)" },
	{ "unknown opcode", HK_LAYER_OPERATOR,
	    { OP_NOP, OP_COUNT, OP_END }, 3, DELIVER_AT0, "unknown opcode (at 1)" },
	{ "truncated instruction", HK_LAYER_OPERATOR,
	    { OP_NOP, OP_JMP, U16(0) }, 4, DELIVER_AT0, "truncated instruction (at 1)" },
	{ "code runs off the end", HK_LAYER_OPERATOR,
	    { OP_NOP, OP_NOP }, 2, DELIVER_AT0, "code runs off the end (at 1)" },
	{ "action argument count", HK_LAYER_OPERATOR,
	    { OP_CONST, U16(2), OP_CONST, U16(2), OP_ACT, ACT_FILEINTO, 2, 0, OP_END }, 11, DELIVER_AT0, "bad action operands (at 6)" },
	{ "action mask", HK_LAYER_OPERATOR,
	    { OP_ACT, ACT_KEEP, 0, 1, OP_END }, 5, DELIVER_AT0, "bad action operands (at 0)" },
	{ "unknown action", HK_LAYER_OPERATOR,
	    { OP_ACT, ACT_COUNT, 0, 0, OP_END }, 5, DELIVER_AT0, "bad action operands (at 0)" },
	/* stages and layers */
	{ "action in the wrong stage", HK_LAYER_OPERATOR,
	    { OP_ACT, ACT_KEEP, 0, 0, OP_END }, 5, MAIL_AT0, "action not allowed in this stage (at 0)" },
	{ "refuse in deliver", HK_LAYER_OPERATOR,
	    { OP_ACT, ACT_REFUSE, 0, 0, OP_END }, 5, DELIVER_AT0, "action not allowed in this stage (at 0)" },
	{ "personal program with ACT refuse", HK_LAYER_PERSONAL,
	    { OP_ACT, ACT_REFUSE, 0, 0, OP_END }, 5, DELIVER_AT0, "invalid bytecode: action not allowed for this layer (at 0)" },
	{ "personal program with ACT expunge", HK_LAYER_PERSONAL,
	    { OP_ACT, ACT_EXPUNGE, 0, 0, OP_END }, 5, DELIVER_AT0, "action not allowed for this layer (at 0)" },
	{ "panel program with ACT expand", HK_LAYER_PANEL,
	    { OP_CONST, U16(2), OP_ACT, ACT_EXPAND, 1, 0, OP_END }, 8, DELIVER_AT0, "action not allowed for this layer (at 3)" },
	{ "personal program with code for rcpt", HK_LAYER_PERSONAL,
	    { OP_ACT, ACT_SKIP, 0, 0, OP_END }, 5, RCPT_AT0, "invalid bytecode: untrusted layer with code for an SMTP or retention stage (at 0)" },
	{ "operator program with code for rcpt", HK_LAYER_OPERATOR,
	    { OP_ACT, ACT_SKIP, 0, 0, OP_END }, 5, RCPT_AT0, "" },
	{ "stage entry out of the code", HK_LAYER_OPERATOR,
	    { OP_END }, 1, { NOE, NOE, NOE, NOE, NOE, 1, NOE }, "bad stage entry (at 1)" },
	{ "stage entry inside an instruction", HK_LAYER_OPERATOR,
	    { OP_RULE, U16(0), OP_END }, 4, { NOE, NOE, NOE, NOE, NOE, 1, NOE }, "bad stage entry (at 1)" },
	{ "two stages, one entry", HK_LAYER_OPERATOR,
	    { OP_END }, 1, { NOE, NOE, NOE, NOE, 0, 0, NOE }, "bad stage entry (at 0)" },
	{ "code shared between stages", HK_LAYER_OPERATOR,
	    { OP_JMP, U32(6), OP_NOP, OP_END }, 7, { NOE, NOE, NOE, NOE, 0, 5, NOE }, "code shared between stages (at 6)" },
};

static void
test_program_verifier_refuses_invalid_code(void **state)
{
	(void)state;
	int failures = 0;
	for (size_t i = 0; i < HK_ARRAY_LEN(verifier_cases); i++) {
		const struct vcase *c = &verifier_cases[i];
		char *m = verify_error(c->layer, c->code, c->n, c->entries);
		bool ok = c->want[0] == '\0' ? m[0] == '\0' : strstr(m, c->want) != NULL;
		if (!ok) {
			print_message("FAIL [%zu] %s: want %s%s%s, got %s%s%s\n", i, c->what, c->want[0] ? "\"" : "", c->want[0] ? c->want : "accepted",
			    c->want[0] ? "\"" : "", m[0] ? "\"" : "", m[0] ? m : "accepted", m[0] ? "\"" : "");
			failures++;
		}
		free(m);
	}
	assert_int_equal(failures, 0);
}

static void
test_program_verifier_stack_limit(void **state)
{
	(void)state;
	/* HK_MAX_STACK values on the stack are fine, one more is not */
	for (unsigned extra = 0; extra < 2; extra++) {
		unsigned n = HK_MAX_STACK + extra;
		struct hk_buf code;
		buf_init(&code);
		for (unsigned i = 0; i < n; i++) {
			uint8_t ins[] = { OP_CONST, U16(2) };
			buf_add(&code, ins, sizeof(ins));
		}
		/* then one log per value empties the stack again */
		for (unsigned i = 0; i < n; i++) {
			uint8_t ins[] = { OP_ACT, ACT_LOG, 1, 0 };
			buf_add(&code, ins, sizeof(ins));
		}
		buf_addc(&code, OP_END);
		char *m = verify_error(HK_LAYER_OPERATOR, (const uint8_t *)code.data, code.len, deliver_only);
		if (extra == 0)
			assert_string_equal(m, "");
		else
			assert_non_null(strstr(m, "invalid bytecode: stack overflow (at 768)"));
		free(m);
		buf_fini(&code);
	}
}

static void
test_program_verifier_refuses_bad_tables(void **state)
{
	(void)state;
	static const uint8_t code[] = { OP_END };
	size_t n = 0;
#define EDIT(w, body)                                 \
	do {                                              \
		struct hk_program *p = build(HK_LAYER_OPERATOR, code, 1, deliver_only); \
		body;                                          \
		struct hk_buf file;                            \
		buf_init(&file);                               \
		hk_program_write(p, &file);                    \
		hk_program_unref(&p);                          \
		assert_refused_with(file.data, file.len, (w)); \
		buf_fini(&file);                               \
		n++;                                           \
	} while (0)
	EDIT("constant outside the string pool (at 2)", p->consts[2].len = 100);
	EDIT("constant outside the string pool (at 0)", p->consts[0].off = 0xFFFFFFF0u);
	EDIT("bad boolean constant (at 6)", p->consts[6].num = 2);
	EDIT("list outside the constants (at 3)", p->consts[3].count = 10);
	EDIT("list element of the wrong type (at 3)", p->consts[3].first = 1);
	EDIT("unknown constant type (at 1)", p->consts[1].type = 9);
	EDIT("bad regex entry (at 0)", p->regexes[0].flags = 16);
	EDIT("bad regex entry (at 0)", p->regexes[0].len = 1000);
	EDIT("bad file entry (at 0)", p->files[0].off = 22);
	EDIT("bad rule entry (at 0)", p->rules[0].file = 1);
	EDIT("bad rule entry (at 0)", p->rules[0].stage = HK_STAGES);
	EDIT("regex 0: missing closing parenthesis", memcpy(p->strpool + 12, "sp(m", 4));
	{
		struct hk_program *p = build(HK_LAYER_OPERATOR, code, 1, deliver_only);
		p->nlines = 2;
		p->lines = xcalloc(2, sizeof(*p->lines));
		p->lines[0] = (struct hk_line_info){ .pc = 1, .line = 1 };
		p->lines[1] = (struct hk_line_info){ .pc = 0, .line = 2 };
		struct hk_buf file;
		buf_init(&file);
		hk_program_write(p, &file);
		hk_program_unref(&p);
		assert_refused_with(file.data, file.len, "bad line table (at 1)");
		buf_fini(&file);
	}
	assert_int_equal(n, 12);
#undef EDIT
}

/* The verifier accepts loops (the VM's instruction budget ends them): a
 * hand-built personal program that jumps back forever runs out of budget
 * and its actions are dropped. */
static void
test_program_endless_loop_ends_with_budget(void **state)
{
	(void)state;
	static const uint8_t code[] = { OP_CONST, U16(2), OP_ACT, ACT_FILEINTO, 1, 0, OP_NOP, OP_JMP, U32(7) };
	struct hk_program *p = build(HK_LAYER_PERSONAL, code, sizeof(code), deliver_only);
	struct hk_buf file, err;
	buf_init(&file);
	buf_init(&err);
	hk_program_write(p, &file);
	hk_program_unref(&p);
	struct hk_program *q = NULL;
	if (hk_program_read(file.data, file.len, &q, &err) < 0)
		fail_msg("refused: %s", err.data);
	struct hk_env env;
	hk_env_init(&env);
	env.stage = STAGE_DELIVER;
	struct hk_result res;
	hk_result_init(&res);
	struct hk_vm_limits lim;
	hk_vm_limits_for_layer(&lim, HK_LAYER_PERSONAL);
	assert_int_equal(hk_vm_run(q, STAGE_DELIVER, NULL, &env, &res, &lim, NULL), HK_VM_BUDGET);
	assert_int_equal(res.n, 0);
	assert_string_equal(res.error, "personal script stopped: instruction budget exhausted");
	hk_result_fini(&res);
	hk_program_unref(&q);
	buf_fini(&file);
	buf_fini(&err);
}

/* Layer changes by editing the header byte of a compiled file and
 * recomputing the trailer: a tampered operator program cannot become a
 * personal one that keeps operator powers. */
static void
test_program_tampered_layer_is_verified(void **state)
{
	(void)state;
	static const struct {
		const char *src, *want;
	} cases[] = {
		{ "on data {\n    rule \"r\" when size > 10M { refuse 552 \"5.3.4 too big\" }\n}\n", "action not allowed for this layer" },
		{ "on rcpt {\n    rule \"r\" when recipient.local is \"x\" { skip }\n}\n", "untrusted layer with code for an SMTP or retention stage" },
		{ "on deliver {\n    rule \"r\" { expand list \"team\" }\n}\n", "action not allowed for this layer" },
		{ "on retention {\n    rule \"r\" when age > 30 days { expunge }\n}\n", "action not allowed for this layer" },
		{ "on deliver {\n    rule \"r\" when subject contains \"x\" { fileinto \"X\" }\n}\n", "" },
	};
	for (size_t i = 0; i < HK_ARRAY_LEN(cases); i++) {
		struct hk_program *p = compile_src(cases[i].src, HK_LAYER_OPERATOR);
		struct hk_buf file;
		buf_init(&file);
		hk_program_write(p, &file);
		unsigned char *d = (unsigned char *)file.data;
		assert_int_equal(d[6], HK_LAYER_OPERATOR);
		char *m = read_error(d, file.len);
		assert_string_equal(m, "");
		free(m);
		static const int untrusted[] = { HK_LAYER_PANEL, HK_LAYER_PERSONAL };
		for (size_t k = 0; k < 2; k++) {
			d[6] = (unsigned char)untrusted[k];
			fix_trailer(d, file.len);
			m = read_error(d, file.len);
			if (cases[i].want[0] ? strstr(m, cases[i].want) == NULL : m[0] != '\0')
				fail_msg("case %zu as %s: want \"%s\", got \"%s\"", i, hk_layer_name(untrusted[k]), cases[i].want, m);
			free(m);
		}
		/* the domain layer may do what the operator may */
		d[6] = HK_LAYER_DOMAIN;
		fix_trailer(d, file.len);
		m = read_error(d, file.len);
		assert_string_equal(m, "");
		free(m);
		hk_program_unref(&p);
		buf_fini(&file);
	}
}

/* The code of a compiled program, patched by hand: a jump retargeted into
 * the middle of the instruction before it. */
static void
test_program_patched_jump_is_refused(void **state)
{
	(void)state;
	struct hk_program *p = compile_src("on deliver {\n    rule \"r\" when tls { fileinto \"X\" }\n}\n", HK_LAYER_OPERATOR);
	struct hk_buf file, out;
	buf_init(&file);
	buf_init(&out);
	hk_program_write(p, &file);
	struct hkc f;
	hkc_parse(&file, &f);
	struct hk_buf *code = hkc_section(&f, "CODE");
	/* RULE #0; FIELD tls; [TRUTH;] JF -> END; CONST "X"; ACT fileinto; END */
	unsigned char *c = (unsigned char *)code->data;
	uint32_t field = UINT32_MAX, jf = UINT32_MAX, act = UINT32_MAX;
	for (uint32_t pc = 0; pc < code->len; pc += 1u + hk_ops[c[pc]].operands) {
		assert_true(c[pc] < OP_COUNT);
		if (c[pc] == OP_FIELD && field == UINT32_MAX)
			field = pc;
		if (c[pc] == OP_JF && jf == UINT32_MAX)
			jf = pc;
		if (c[pc] == OP_ACT && act == UINT32_MAX)
			act = pc;
	}
	assert_true(field < jf && jf < act);
	assert_int_equal(get32(c + jf + 1), code->len - 1);
	char want[128];
	c[jf + 1] = (unsigned char)(field + 1); /* the operand byte of FIELD */
	hkc_write(&f, &out);
	snprintf(want, sizeof(want), "invalid bytecode: jump into the middle of an instruction or out of the code (at %u)", jf);
	assert_refused_with(out.data, out.len, want);
	c[jf + 1] = (unsigned char)act; /* the ACT, skipping the CONST it needs */
	hkc_write(&f, &out);
	snprintf(want, sizeof(want), "invalid bytecode: stack underflow (at %u)", act);
	assert_refused_with(out.data, out.len, want);
	c[jf + 1] = (unsigned char)field; /* back to the FIELD: a loop, which is allowed (the budget ends it) */
	hkc_write(&f, &out);
	char *m = read_error(out.data, out.len);
	assert_string_equal(m, "");
	free(m);
	hkc_fini(&f);
	hk_program_unref(&p);
	buf_fini(&file);
	buf_fini(&out);
}

int
main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_program_round_trip_same_disassembly),
		cmocka_unit_test(test_program_round_trip_every_example),
		cmocka_unit_test(test_program_read_back_runs_the_same),
		cmocka_unit_test(test_program_flipped_byte_anywhere_is_refused),
		cmocka_unit_test(test_program_wrong_magic_is_refused),
		cmocka_unit_test(test_program_wrong_version_is_refused),
		cmocka_unit_test(test_program_truncated_files_are_refused),
		cmocka_unit_test(test_program_unknown_and_duplicate_sections_are_refused),
		cmocka_unit_test(test_program_verifier_refuses_invalid_code),
		cmocka_unit_test(test_program_verifier_stack_limit),
		cmocka_unit_test(test_program_verifier_refuses_bad_tables),
		cmocka_unit_test(test_program_endless_loop_ends_with_budget),
		cmocka_unit_test(test_program_tampered_layer_is_verified),
		cmocka_unit_test(test_program_patched_jump_is_refused),
	};
	return cmocka_run_group_tests_name("program", tests, NULL, NULL);
}
