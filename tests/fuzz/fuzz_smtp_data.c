/*
 * fuzz_smtp_data.c - libFuzzer target for the DATA parser: the first byte
 * picks a chunk size; feeding the rest in chunks must give exactly what
 * feeding it at once gives (end position, content, flags), and the end is
 * only ever found right after a real <CRLF>.<CRLF>.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_data.h"
#include "util.h"

static void
sink(void *ctx, const char *p, size_t n)
{
	buf_add(ctx, p, n);
}

static size_t
feed(const char *p, size_t n, size_t chunk, struct smtp_data *d, struct hk_buf *out)
{
	smtp_data_init(d, 1u << 20, sink, out);
	size_t used = 0;
	while (used < n && !smtp_data_done(d)) {
		size_t k = chunk ? (n - used < chunk ? n - used : chunk) : n - used;
		size_t u = smtp_data_push(d, p + used, k);
		if (u > k)
			abort();
		used += u;
	}
	return used;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t chunk = data[0] % 17;
	const char *p = (const char *)data + 1;
	size_t n = size - 1;
	struct smtp_data a, b;
	struct hk_buf oa, ob;
	buf_init(&oa);
	buf_init(&ob);
	size_t ua = feed(p, n, 0, &a, &oa);
	size_t ub = feed(p, n, chunk, &b, &ob);
	if (ua != ub || smtp_data_done(&a) != smtp_data_done(&b) || a.bare_cr != b.bare_cr || a.bare_lf != b.bare_lf ||
	    oa.len != ob.len || (oa.len && memcmp(oa.data, ob.data, oa.len) != 0))
		abort();
	/* the end marker: the 5 bytes before the end are CRLF.CRLF, or the
	 * data began with ".\r\n" */
	if (smtp_data_done(&a)) {
		bool at_start = ua == 3 && memcmp(p, ".\r\n", 3) == 0;
		if (!at_start && (ua < 5 || memcmp(p + ua - 5, "\r\n.\r\n", 5) != 0))
			abort();
	}
	buf_fini(&oa);
	buf_fini(&ob);
	return 0;
}
