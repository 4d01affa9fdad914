/*
 * fuzz_spf.c - libFuzzer target for what attackers write into DNS: SPF
 * records (the whole record syntax, then every macro-string in it
 * expanded with a fixed environment) and DNS answer packets for every
 * query type the resolver makes. Any input must be refused cleanly or
 * give bounded output.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns/dns.h"
#include "spf/spf.h"

static void
on_answer(const struct dns_result *r, void *arg)
{
	(void)r;
	(void)arg;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 65536)
		return 0;
	unsigned mode = data[0];
	const char *p = (const char *)data + 1;
	size_t n = size - 1;
	if (mode & 1) {
		/* a DNS answer for each query type */
		static const enum dns_type types[] = { DNS_T_A, DNS_T_AAAA, DNS_T_MX, DNS_T_TXT, DNS_T_PTR };
		dns_parse_answer((const unsigned char *)p, n, types[(mode >> 1) % 5], "example.com", on_answer, NULL);
		return 0;
	}
	const char *why = NULL;
	(void)spf_record_check(p, n, &why);
	bool uses_p;
	for (int exp = 0; exp < 2; exp++) {
		if (!spf_macro_check(p, n, exp, &uses_p))
			continue;
		struct spf_macro_env env = { "user@example.com", "user", "example.com", "example.com", "mx.example.net",
			"receiver.example.org", NULL, AF_INET, { 192, 0, 2, 1 }, 1700000000 };
		struct hk_buf out;
		buf_init(&out);
		if (spf_macro_expand(&env, p, n, exp, &out)) {
			if (out.len > 65536)
				abort();
			(void)spf_domain_finish(&out);
		}
		buf_fini(&out);
	}
	return 0;
}
