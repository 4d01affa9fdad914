/*
 * fuzz_srs.c - libFuzzer target for the Sender Rewriting Scheme
 * (servers/queue/srs.c): srs_reverse parses addresses anyone on the
 * Internet can send a bounce to, and srs_forward rewrites the envelope
 * sender of mail we forward (which came from anyone).
 * Input: the address (no NUL). Properties: what either writes fits its
 * buffer; an address forwarded with one '@' reverses to itself (a bounce
 * to any forward we made finds its way back).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "queue/srs.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 1024 || memchr(data, '\0', size) != NULL)
		return 0;
	static const unsigned char key[SRS_KEY_LEN] = "0123456789abcdef0123456789abcdef";
	const time_t now = 1796601600; /* 2026-12-07 */
	char *in = malloc(size + 1);
	memcpy(in, data, size);
	in[size] = '\0';
	char out[SRS_MAX_ADDRESS + 1], back[SRS_MAX_ADDRESS + 1];
	if (srs_reverse(key, in, now, out, sizeof(out)) == 0 && memchr(out, '\0', sizeof(out)) == NULL)
		abort();
	const char *at = strchr(in, '@');
	if (srs_forward(key, in, "fwd.example", now, out, sizeof(out)) == 0) {
		if (memchr(out, '\0', sizeof(out)) == NULL)
			abort();
		if (at && strchr(at + 1, '@') == NULL) {
			if (srs_reverse(key, out, now, back, sizeof(back)) != 0 || strcasecmp(back, in) != 0)
				abort();
		}
	}
	free(in);
	return 0;
}
