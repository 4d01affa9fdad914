/*
 * fuzz_lexer.c - libFuzzer target: the re2c lexer alone over arbitrary
 * bytes (NUL, bad UTF-8, unterminated literals, huge numbers). Every token
 * must lie inside the input, the lexer must always make progress and end,
 * and every diagnostic must render.
 *
 * SECURITY: the first code a user's script reaches.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "lexer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct diag d;
	diag_init(&d);
	/* the sink owns the text; the lexer relies on its terminating NUL */
	char *text = xstrndup((const char *)data, size);
	unsigned file = diag_add_file(&d, "fuzz.hk", "fuzz.hk", text, size);
	struct lexer lx;
	lexer_init(&lx, &d, file, text, size);
	lx.keep_comments = size & 1;
	struct token t;
	size_t ntok = 0;
	unsigned last_line = 1;
	for (;;) {
		const char *before = lx.cur;
		lexer_next(&lx, &t);
		if (lx.cur < text || lx.cur > text + size) {
			fprintf(stderr, "fuzz_lexer: cursor outside the input\n");
			abort();
		}
		if (t.type == 0)
			break;
		if (t.ptr < text || t.len > size || t.ptr + t.len > text + size || t.len == 0) {
			fprintf(stderr, "fuzz_lexer: token outside the input or empty\n");
			abort();
		}
		if (lx.cur <= before || t.loc.line < last_line || t.loc.col == 0) {
			fprintf(stderr, "fuzz_lexer: no progress or bad location\n");
			abort();
		}
		last_line = t.loc.line;
		(void)lexer_token_name(t.type);
		if (++ntok > size + 1) {
			fprintf(stderr, "fuzz_lexer: more tokens than bytes\n");
			abort();
		}
	}
	for (size_t i = 0; i < lx.ncomments; i++)
		if (lx.comments[i].text.ptr < text || lx.comments[i].text.ptr + lx.comments[i].text.len > text + size) {
			fprintf(stderr, "fuzz_lexer: comment outside the input\n");
			abort();
		}
	lexer_fini(&lx);
	struct hk_buf b;
	buf_init(&b);
	for (size_t i = 0; i < d.nmsgs; i++)
		diag_format(&d, &d.msgs[i], &b, i & 1);
	buf_fini(&b);
	diag_fini(&d);
	return 0;
}
