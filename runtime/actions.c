/*
 * actions.c - which action may run in which stage and layer. One table,
 * used by the checker (lang/sema.c) for diagnostics and by the verifier
 * (bc_verify.c) for stored bytecode, so the two can never disagree.
 */
#include <string.h>
#include <strings.h>

#include "fields.h"

enum { AM_SMTP = 1, AM_DATA = 2, AM_DELIVER = 4, AM_RETENTION = 8 };

static const struct {
	unsigned stages; /* AM_* */
	bool untrusted;  /* allowed in panel and personal scripts */
} action_rules[ACT_COUNT] = {
	[ACT_KEEP] = { AM_DELIVER | AM_RETENTION, true },
	[ACT_FILEINTO] = { AM_DELIVER | AM_RETENTION, true },
	[ACT_FORWARD] = { AM_DELIVER, true },
	[ACT_NOTIFY] = { AM_DELIVER, true },
	[ACT_REPLY] = { AM_DELIVER, true },
	[ACT_REJECT] = { AM_DELIVER, true },
	[ACT_DISCARD] = { AM_DELIVER | AM_DATA, true },
	[ACT_SKIP] = { AM_SMTP | AM_DATA | AM_DELIVER | AM_RETENTION, true },
	[ACT_STOP] = { AM_SMTP | AM_DATA | AM_DELIVER | AM_RETENTION, true },
	[ACT_EXPAND] = { AM_DELIVER, false },
	[ACT_STRIP] = { AM_DELIVER | AM_DATA, true },
	[ACT_ADD_HEADER] = { AM_SMTP | AM_DATA | AM_DELIVER, true },
	[ACT_REMOVE_HEADER] = { AM_DATA | AM_DELIVER, true },
	[ACT_FLAG] = { AM_DELIVER | AM_RETENTION, true },
	[ACT_REFUSE] = { AM_SMTP | AM_DATA, false },
	[ACT_TEMPFAIL] = { AM_SMTP | AM_DATA, false },
	[ACT_EXPUNGE] = { AM_RETENTION, false },
	[ACT_LOG] = { AM_SMTP | AM_DATA | AM_DELIVER | AM_RETENTION, true },
};

static unsigned
stage_mask(int stage)
{
	switch (stage) {
	case STAGE_DATA: return AM_DATA;
	case STAGE_DELIVER: return AM_DELIVER;
	case STAGE_RETENTION: return AM_RETENTION;
	default: return AM_SMTP;
	}
}

bool
hk_action_stage_ok(int act, int stage)
{
	return act >= 0 && act < ACT_COUNT && stage >= 0 && stage < STAGE_COUNT && (action_rules[act].stages & stage_mask(stage));
}

bool
hk_action_untrusted_ok(int act)
{
	return act >= 0 && act < ACT_COUNT && action_rules[act].untrusted;
}

bool
hk_address_ok(struct hk_str a)
{
	const char *at = memchr(a.ptr, '@', a.len);
	if (at == NULL || at == a.ptr || at == a.ptr + a.len - 1 || a.len > 320)
		return false;
	for (size_t i = 0; i < a.len; i++) {
		unsigned char c = (unsigned char)a.ptr[i];
		if (c <= ' ' || c == '<' || c == '>' || c == ',' || c == '"' || c == 0x7f || c == '(' || c == ')' ||
		    c == ';' || c == '\\' || c == '[' || c == ']')
			return false;
	}
	return memchr(at + 1, '@', (size_t)(a.ptr + a.len - at - 1)) == NULL;
}

bool
hk_folder_name_ok(struct hk_str f)
{
	if (f.len == 0 || f.len > 255 || f.ptr[0] == '.' || f.ptr[0] == '/' || f.ptr[f.len - 1] == '/')
		return false;
	for (size_t i = 0; i < f.len; i++) {
		unsigned char c = (unsigned char)f.ptr[i];
		/* '*' and '%' are IMAP LIST wildcards: the store refuses them too */
		if (c < 0x20 || c == 0x7f || c == '\\' || c == '*' || c == '%')
			return false;
		/* no ".." anywhere, no empty path element, no element starting
		 * with a dot (Maildir++ uses '.' for its own hierarchy) */
		if (c == '.' && i + 1 < f.len && f.ptr[i + 1] == '.')
			return false;
		if (c == '/' && i + 1 < f.len && (f.ptr[i + 1] == '/' || f.ptr[i + 1] == '.'))
			return false;
	}
	return true;
}

bool
hk_flag_ok(struct hk_str f)
{
	static const char *const sys[] = { "\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft", NULL };
	if (f.len && f.ptr[0] == '\\') {
		for (int i = 0; sys[i]; i++)
			if (f.len == strlen(sys[i]) && strncasecmp(f.ptr, sys[i], f.len) == 0)
				return true;
		return false;
	}
	if (f.len == 0 || f.len > 64)
		return false;
	for (size_t i = 0; i < f.len; i++) {
		unsigned char c = (unsigned char)f.ptr[i];
		if (c <= ' ' || c >= 0x7f || strchr("(){%*\"\\]", c))
			return false;
	}
	return true;
}
