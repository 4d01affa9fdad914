/*
 * fields.h - the field ids (from fields.def) shared by the compiler and
 * the runtime, and the address parts a field can be split into.
 */
#ifndef HK_FIELDS_H
#define HK_FIELDS_H

#include "ast.h"

#define FF_MSG 1
#define FF_ENV 2

enum hk_field {
#define F(id, name, type, stages, flags) FIELD_##id,
#include "fields.def"
#undef F
	FIELD_COUNT
};

struct field_info {
	const char *name;
	enum sem_type type;
	unsigned stages;
	unsigned flags;
};
extern const struct field_info hk_fields[FIELD_COUNT];

enum hk_addr_part { PART_ADDR, PART_LOCAL, PART_DOMAIN, PART_NAME, PART_COUNT };

enum hk_spf { SPF_PASS, SPF_FAIL, SPF_SOFTFAIL, SPF_NEUTRAL, SPF_NONE, SPF_TEMPERROR, SPF_PERMERROR, SPF_COUNT };

/* Which actions may run in which stage, and in which layers (shared by
 * sema.c for diagnostics and bc_verify.c for stored bytecode). */
bool hk_action_stage_ok(int act, int stage);
bool hk_action_untrusted_ok(int act);

/* Syntax checks shared by the checker (constants) and the VM (values
 * computed at run time): a mail address local@domain, a folder name
 * ("Work/Reports": no "..", no leading dot or slash, no control
 * characters), an IMAP flag (a system flag or a keyword atom). */
bool hk_address_ok(struct hk_str a);
bool hk_folder_name_ok(struct hk_str f);
bool hk_flag_ok(struct hk_str f);

#endif
