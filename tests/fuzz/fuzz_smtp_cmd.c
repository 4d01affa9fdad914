/*
 * fuzz_smtp_cmd.c - libFuzzer target for the SMTP command parser: any
 * line must parse or fail cleanly, and every slice the parser returns must
 * lie inside the line. The DSN parameters (RET, ENVID, NOTIFY, ORCPT) go
 * through their validators, and a valid xtext must survive decode and
 * encode unchanged.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_cmd.h"
#include "smtp/smtp_dsn.h"

/* Every validator on every parameter value; xtext round trip. */
static void
dsn_params(const struct smtp_cmd *c)
{
	for (unsigned i = 0; i < c->nparams; i++) {
		struct hk_str v = c->params[i].value;
		unsigned n;
		enum smtp_dsn_ret r;
		char out[SMTP_DSN_MAX_ORCPT + 1], nb[32];
		if (smtp_dsn_notify_parse(v, &n) && smtp_dsn_notify_str(n, nb)[0] == '\0')
			abort();
		(void)smtp_dsn_ret_parse(v, &r);
		(void)smtp_dsn_envid_ok(v);
		if (smtp_dsn_orcpt_ok(v) && !smtp_dsn_orcpt_decode(v, out, sizeof(out)))
			abort();
		if (v.ptr && v.len <= SMTP_DSN_MAX_ORCPT && smtp_dsn_xtext_decode(v, out, sizeof(out))) {
			if (strlen(out) > v.len)
				abort();
			struct hk_buf b;
			buf_init(&b);
			smtp_dsn_xtext_encode(&b, out);
			char back[SMTP_DSN_MAX_ORCPT * 3 + 1];
			if (b.len >= sizeof(back) || !smtp_dsn_xtext_decode((struct hk_str){ b.data, b.len }, back, sizeof(back)) ||
			    strcmp(back, out) != 0)
				abort();
			buf_fini(&b);
		}
	}
}

static void
inside(const struct hk_str *s, const char *line, size_t len)
{
	if (s->ptr == NULL || s->len == 0)
		return;
	if (s->ptr < line || s->ptr + s->len > line + len)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > SMTP_MAX_LINE)
		return 0;
	char *line = malloc(size ? size : 1);
	memcpy(line, data, size);
	struct smtp_cmd c;
	enum smtp_parse_error e = smtp_cmd_parse(line, size, &c);
	if (e == SMTP_PARSE_OK) {
		inside(&c.arg, line, size);
		inside(&c.path, line, size);
		inside(&c.local, line, size);
		inside(&c.domain, line, size);
		if (c.nparams > SMTP_MAX_PARAMS)
			abort();
		for (unsigned i = 0; i < c.nparams; i++) {
			inside(&c.params[i].key, line, size);
			inside(&c.params[i].value, line, size);
		}
		(void)smtp_cmd_param(&c, "SIZE");
		dsn_params(&c);
	}
	free(line);
	return 0;
}
