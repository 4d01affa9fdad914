/*
 * siphash.h - SipHash-2-4: a keyed 64-bit hash for hash tables whose keys
 * come from the network (failed-login counters, the DNS cache). With a
 * random key per table, a peer cannot choose keys that share one chain.
 */
#ifndef HK_SIPHASH_H
#define HK_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t hk_siphash24(uint64_t k0, uint64_t k1, const uint8_t *in, size_t len);

#endif
