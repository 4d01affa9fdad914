/*
 * replay_main.c - a main() for the fuzz targets without libFuzzer: runs
 * LLVMFuzzerTestOneInput on every file named on the command line, so
 * tests/fuzz/replay.sh (make check) can replay stored crashes and corpora
 * with gcc against the normal library. A crash or abort ends the process;
 * "replayed N files" on stdout means every file ran.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_target.h"
#include "util.h"

int
main(int argc, char **argv)
{
	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	int n = 0;
	for (int i = 1; i < argc; i++) {
		char *data;
		size_t len;
		/* 64 MiB: more than any target's -max_len */
		if (read_file(argv[i], 64u << 20, &data, &len) < 0) {
			fprintf(stderr, "replay: cannot read %s: %s\n", argv[i], strerror(errno));
			return 2;
		}
		if (getenv("REPLAY_VERBOSE"))
			fprintf(stderr, "replay: %s\n", argv[i]);
		/* a copy of exactly len bytes, so reading past the input is caught */
		unsigned char *copy = malloc(len ? len : 1);
		memcpy(copy, data, len);
		free(data);
		LLVMFuzzerTestOneInput(copy, len);
		free(copy);
		n++;
	}
	printf("replayed %d files\n", n);
	return 0;
}
