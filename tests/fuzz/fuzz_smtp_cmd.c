/*
 * fuzz_smtp_cmd.c - libFuzzer target for the SMTP command parser: any
 * line must parse or fail cleanly, and every slice the parser returns must
 * lie inside the line.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_cmd.h"

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
	}
	free(line);
	return 0;
}
