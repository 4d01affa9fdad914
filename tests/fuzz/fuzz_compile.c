/*
 * fuzz_compile.c - libFuzzer target: the input is a rule file. A first
 * byte below 4 picks the layer (operator, domain, panel, personal) and is
 * not part of the file; otherwise the file is compiled as operator.
 *
 * For a file that compiles: disassemble it, write it to .hkc, read it back
 * (it must be accepted and write back to the same bytes), and run every
 * stage with code on a fixed message with tight budgets.
 *
 * For a file without syntax errors (what `hikyaku fmt` accepts): format it;
 * the output must parse, formatting it again must give the same text, and
 * it must compile exactly when the original does, to the same program.
 * A difference aborts, so the fuzzer reports it.
 *
 * SECURITY: this is the path of a user's personal script through the
 * compiler, the verifier and the VM.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compile.h"
#include "fuzz_vm.h"
#include "parse.h"

static void
fuzz_fail(const char *what, const char *a, size_t alen, const char *b, size_t blen)
{
	fprintf(stderr, "fuzz_compile: %s\n", what);
	if (a)
		fprintf(stderr, "--- first (%zu bytes):\n%.*s\n", alen, (int)(alen > 4000 ? 4000 : alen), a);
	if (b)
		fprintf(stderr, "--- second (%zu bytes):\n%.*s\n", blen, (int)(blen > 4000 ? 4000 : blen), b);
	abort();
}

static struct hk_program *
compile_text(const char *text, size_t len, int layer, struct diag *d)
{
	struct hk_compile_opts o = { 0 };
	o.layer = (enum hk_layer)layer;
	o.want_comments = true;
	struct hk_unit *u = hk_unit_load_text("fuzz.hk", text, len, &o, d);
	struct hk_program *p = NULL;
	if (u && d->errors == 0)
		p = hk_unit_codegen(u);
	hk_unit_free(&u);
	/* render every diagnostic, as `hikyaku check` does */
	struct hk_buf b;
	buf_init(&b);
	for (size_t i = 0; i < d->nmsgs; i++)
		diag_format(d, &d->msgs[i], &b, i & 1);
	buf_fini(&b);
	return p;
}

/* The .hkc round trip: accepted, and written back to the same bytes. */
static void
roundtrip(const struct hk_program *p)
{
	struct hk_buf w1, w2, err, d1, d2;
	buf_init(&w1);
	buf_init(&w2);
	buf_init(&err);
	buf_init(&d1);
	buf_init(&d2);
	hk_program_write(p, &w1);
	struct hk_program *q = NULL;
	if (hk_program_read(w1.data, w1.len, &q, &err) < 0)
		fuzz_fail("a compiled program was refused when read back", err.data, err.len, NULL, 0);
	hk_program_write(q, &w2);
	if (w1.len != w2.len || memcmp(w1.data, w2.data, w1.len) != 0)
		fuzz_fail("write(read(write(p))) differs from write(p)", NULL, 0, NULL, 0);
	hk_disasm(p, &d1);
	hk_disasm(q, &d2);
	if (d1.len != d2.len || memcmp(d1.data, d2.data, d1.len) != 0)
		fuzz_fail("the program read back disassembles differently", d1.data, d1.len, d2.data, d2.len);
	fuzz_run_program(q, false);
	hk_program_unref(&q);
	buf_fini(&w1);
	buf_fini(&w2);
	buf_fini(&err);
	buf_fini(&d1);
	buf_fini(&d2);
}

static bool
same_str(const struct hk_program *a, uint32_t aoff, uint32_t alen, const struct hk_program *b, uint32_t boff, uint32_t blen)
{
	return alen == blen && memcmp(a->strpool + aoff, b->strpool + boff, alen) == 0;
}

/* Same meaning: code, constants, regexes, rules (names and stages) and
 * entries; not source positions. */
static const char *
same_program(const struct hk_program *a, const struct hk_program *b)
{
	if (a->layer != b->layer)
		return "layer";
	if (a->code_len != b->code_len || memcmp(a->code, b->code, a->code_len) != 0)
		return "code";
	if (memcmp(a->entry, b->entry, sizeof(a->entry)) != 0)
		return "stage entries";
	if (a->nconsts != b->nconsts)
		return "number of constants";
	for (uint32_t i = 0; i < a->nconsts; i++) {
		const struct hk_const *x = &a->consts[i], *y = &b->consts[i];
		if (x->type != y->type)
			return "constant type";
		if (x->type == HKC_STR ? !same_str(a, x->off, x->len, b, y->off, y->len)
		    : x->type == HKC_NUM || x->type == HKC_BOOL ? x->num != y->num
		    : x->first != y->first || x->count != y->count)
			return "constant value";
	}
	if (a->nregexes != b->nregexes)
		return "number of regexes";
	for (uint32_t i = 0; i < a->nregexes; i++)
		if (a->regexes[i].flags != b->regexes[i].flags ||
		    !same_str(a, a->regexes[i].off, a->regexes[i].len, b, b->regexes[i].off, b->regexes[i].len))
			return "regex";
	if (a->nrules != b->nrules)
		return "number of rules";
	for (uint32_t i = 0; i < a->nrules; i++)
		if (a->rules[i].stage != b->rules[i].stage ||
		    !same_str(a, a->rules[i].name_off, a->rules[i].name_len, b, b->rules[i].name_off, b->rules[i].name_len))
			return "rule";
	return NULL;
}

/* What `hikyaku fmt` does: parse only, refuse syntax errors, format. */
static bool
fmt_text(const char *text, size_t len, struct hk_buf *out)
{
	struct diag d;
	diag_init(&d);
	struct hk_unit u;
	memset(&u, 0, sizeof(u));
	arena_init(&u.arena, 0);
	u.diag = &d;
	u.main_file = diag_add_file(&d, "fuzz.hk", "fuzz.hk", xstrndup(text, len), len);
	u.root = parse_file(&u.arena, &d, u.main_file, &u.comments, &u.ncomments);
	bool ok = d.errors == 0;
	if (ok)
		fmt_unit(&u, out);
	free(u.comments);
	arena_fini(&u.arena);
	diag_fini(&d);
	return ok;
}

static void
check_fmt(const char *text, size_t len, int layer, const struct hk_program *orig)
{
	struct hk_buf f1, f2;
	buf_init(&f1);
	buf_init(&f2);
	if (!fmt_text(text, len, &f1))
		goto out;
	const char *t1 = f1.data ? f1.data : "";
	if (!fmt_text(t1, f1.len, &f2))
		fuzz_fail("the formatted text has syntax errors", text, len, t1, f1.len);
	if (f1.len != f2.len || memcmp(t1, f2.data ? f2.data : "", f1.len) != 0)
		fuzz_fail("fmt is not idempotent", t1, f1.len, f2.data, f2.len);
	struct diag d;
	diag_init(&d);
	struct hk_program *p = compile_text(t1, f1.len, layer, &d);
	diag_fini(&d);
	if ((p == NULL) != (orig == NULL))
		fuzz_fail(orig ? "the formatted text does not compile, the original does"
		               : "the formatted text compiles, the original does not",
		    text, len, t1, f1.len);
	if (p) {
		const char *diff = same_program(orig, p);
		if (diff) {
			fprintf(stderr, "fuzz_compile: fmt changes the program: %s\n", diff);
			fuzz_fail("fmt changes the program", text, len, t1, f1.len);
		}
	}
	hk_program_unref(&p);
out:
	buf_fini(&f1);
	buf_fini(&f2);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int layer = HK_LAYER_OPERATOR;
	if (size > 0 && data[0] < HK_LAYER_COUNT) {
		layer = data[0];
		data++;
		size--;
	}
	const char *text = (const char *)data;

	struct diag d;
	diag_init(&d);
	struct hk_program *p = compile_text(text, size, layer, &d);
	diag_fini(&d);
	if (p) {
		struct hk_buf dis;
		buf_init(&dis);
		hk_disasm(p, &dis);
		buf_fini(&dis);
		fuzz_run_program(p, false);
		fuzz_run_program(p, true);
		roundtrip(p);
	}
	check_fmt(text, size, layer, p);
	hk_program_unref(&p);
	return 0;
}
