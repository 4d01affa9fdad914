/*
 * fuzz_sasl.c - libFuzzer target for what a client sends to log in, before
 * it is anyone (SMTP AUTH, POP3 AUTH/APOP, IMAP AUTHENTICATE): the
 * SCRAM-SHA-256 exchange (client-first, then client-final against a fixed
 * user's keys, with and without channel binding), PLAIN's message,
 * CRAM-MD5's response, base64 and SASLprep.
 *
 * Input: a mode byte, then the data. Mode 0-3: SCRAM (bit 0: the client
 * picked -PLUS, bit 1: binding data offered); the data is split at its
 * first LF into client-first and client-final. 4: PLAIN. 5: CRAM-MD5.
 * 6: base64. 7: SASLprep.
 * Properties beyond "no crash, no leak": PLAIN's slices lie in the input;
 * CRAM-MD5's user fits its buffer; base64 decodes its own encoding back
 * to the same bytes; SASLprep of its own output gives it again.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/sasl.h"
#include "scram.h"

static struct hk_scram_keys keys;
static bool have_keys;

static void
inside(struct hk_str s, const char *p, size_t n)
{
	if (s.len && (s.ptr < p || s.ptr + s.len > p + n))
		abort();
}

static void
scram(unsigned mode, const char *p, size_t n)
{
	if (!have_keys) {
		static const uint8_t salt[16] = "fuzz-salt-16byte";
		if (hk_scram_keys_derive("pencil", salt, sizeof(salt), HK_SCRAM_ITER_MIN, &keys) != 0)
			abort();
		have_keys = true;
	}
	const char *lf = memchr(p, '\n', n);
	size_t n1 = lf ? (size_t)(lf - p) : n;
	static const uint8_t cbdata[32] = "channel-binding-data-for-fuzzing";
	struct hk_scram_cb cb = { "tls-exporter", cbdata, sizeof(cbdata) };
	struct hk_scram_opts opts = { .plus = mode & 1, .cb = (mode & 2) ? &cb : NULL, .fake_iterations = HK_SCRAM_ITER_MIN };
	struct hk_scram_server *s = hk_scram_server_new(&opts);
	struct hk_buf out;
	buf_init(&out);
	if (hk_scram_server_client_first(s, p, n1) == HK_SCRAM_CONTINUE) {
		const char *user = hk_scram_server_username(s);
		if (user == NULL || hk_scram_server_authzid(s) == NULL)
			abort();
		/* a fixed server nonce, so the fuzzer can learn the final message */
		hk_scram_server_set_nonce(s, "fuzznonce");
		bool known = strcmp(user, "user") == 0;
		if (hk_scram_server_first(s, known ? &keys : NULL, &out) == HK_SCRAM_CONTINUE && lf) {
			buf_reset(&out);
			(void)hk_scram_server_final(s, lf + 1, n - n1 - 1, &out);
		}
	}
	buf_fini(&out);
	hk_scram_server_free(&s);
	if (s != NULL)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 8192)
		return 0;
	unsigned mode = data[0] & 7;
	size_t n = size - 1;
	char *p = malloc(n + 1); /* NUL-terminated copy: some parsers want a C string */
	memcpy(p, data + 1, n);
	p[n] = '\0';
	switch (mode) {
	case 0: case 1: case 2: case 3:
		scram(mode, p, n);
		break;
	case 4: {
		struct hk_str authcid, passwd;
		if (sasl_plain_split(p, n, &authcid, &passwd)) {
			inside(authcid, p, n);
			inside(passwd, p, n);
		}
		break;
	}
	case 5: {
		char user[256], digest[33];
		if (hk_cram_md5_split(p, user, sizeof(user), digest) &&
		    (memchr(user, '\0', sizeof(user)) == NULL || memchr(digest, '\0', sizeof(digest)) == NULL))
			abort();
		break;
	}
	case 6: {
		struct hk_buf d, e, d2;
		buf_init(&d);
		buf_init(&e);
		buf_init(&d2);
		if (hk_b64_decode(p, n, &d)) {
			hk_b64_encode(d.data ? d.data : "", d.len, &e);
			if (!hk_b64_decode(e.data ? e.data : "", e.len, &d2) || d2.len != d.len ||
			    (d.len && memcmp(d.data, d2.data, d.len) != 0))
				abort();
		}
		buf_fini(&d);
		buf_fini(&e);
		buf_fini(&d2);
		break;
	}
	case 7: {
		char *o1 = NULL, *o2 = NULL;
		if (strlen(p) == n && hk_saslprep(p, &o1) == 0) {
			if (hk_saslprep(o1, &o2) != 0 || strcmp(o1, o2) != 0)
				abort();
		}
		free(o1);
		free(o2);
		break;
	}
	}
	free(p);
	return 0;
}
