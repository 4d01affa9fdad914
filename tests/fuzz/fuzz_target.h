/*
 * fuzz_target.h - the libFuzzer entry points, declared for the replay build
 * (gcc with -Wmissing-prototypes: the Makefile and replay.sh pass
 * -include tests/fuzz/fuzz_target.h to every fuzz_*.c and replay_main.c).
 */
#ifndef HK_FUZZ_TARGET_H
#define HK_FUZZ_TARGET_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

#endif
