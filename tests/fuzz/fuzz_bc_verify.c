/*
 * fuzz_bc_verify.c - libFuzzer target: the input is a .hkc file, as read
 * back from the cache (GDBM) or disk. hk_program_read must either refuse it
 * or return a program the VM runs without any sanitizer report.
 *
 * A mutated file almost never keeps its SHA-256 trailer, so when the file
 * is refused as it is, the trailer is recomputed and it is read again:
 * that way the mutations reach the section reader and the verifier.
 *
 * SECURITY: stored bytecode is hostile until bc_verify.c passes it; the VM
 * trusts the verifier and checks nothing again.
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_vm.h"

static void
check_program(struct hk_program *p)
{
	struct hk_buf b, w, err;
	buf_init(&b);
	buf_init(&w);
	buf_init(&err);
	hk_disasm(p, &b);
	/* what was accepted once is accepted again, and writes the same */
	hk_program_write(p, &w);
	struct hk_program *q = NULL;
	if (hk_program_read(w.data, w.len, &q, &err) < 0) {
		fprintf(stderr, "fuzz_bc_verify: an accepted program is refused after a write: %s\n", err.data);
		abort();
	}
	struct hk_buf w2;
	buf_init(&w2);
	hk_program_write(q, &w2);
	if (w.len != w2.len || memcmp(w.data, w2.data, w.len) != 0) {
		fprintf(stderr, "fuzz_bc_verify: write(read(x)) is not a fixed point\n");
		abort();
	}
	hk_program_unref(&q);
	fuzz_run_program(p, false);
	fuzz_run_program(p, true);
	buf_fini(&b);
	buf_fini(&w);
	buf_fini(&w2);
	buf_fini(&err);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hk_buf err;
	buf_init(&err);
	struct hk_program *p = NULL;
	if (hk_program_read(data, size, &p, &err) == 0) {
		check_program(p);
		hk_program_unref(&p);
	} else if (size >= 48) {
		uint8_t *copy = malloc(size);
		memcpy(copy, data, size);
		unsigned int n = 32;
		EVP_Digest(copy, size - 32, copy + size - 32, &n, EVP_sha256(), NULL);
		buf_reset(&err);
		if (hk_program_read(copy, size, &p, &err) == 0) {
			check_program(p);
			hk_program_unref(&p);
		}
		free(copy);
	}
	buf_fini(&err);
	return 0;
}
