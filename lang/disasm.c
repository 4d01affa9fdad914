/*
 * disasm.c - the bytecode listing of `hikyaku disasm` (and the golden
 * tests of the code generator): one instruction per line with its operands
 * resolved to names, constants, rules and source lines.
 */
#include <inttypes.h>
#include <string.h>

#include "bytecode.h"
#include "fields.h"

static void
put_const(const struct hk_program *p, uint32_t k, struct hk_buf *out)
{
	const struct hk_const *c = &p->consts[k];
	switch (c->type) {
	case HKC_STR: {
		buf_addc(out, '"');
		for (uint32_t i = 0; i < c->len && i < 60; i++) {
			char ch = p->strpool[c->off + i];
			if (ch == '"' || ch == '\\')
				buf_addc(out, '\\');
			if (ch == '\n')
				buf_adds(out, "\\n");
			else
				buf_addc(out, ch);
		}
		buf_adds(out, c->len > 60 ? "...\"" : "\"");
		break;
	}
	case HKC_NUM: buf_printf(out, "%" PRId64, c->num); break;
	case HKC_BOOL: buf_adds(out, c->num ? "true" : "false"); break;
	case HKC_STRLIST:
	case HKC_NUMLIST:
		buf_addc(out, '[');
		for (uint32_t i = 0; i < c->count; i++) {
			if (i)
				buf_adds(out, ", ");
			if (i == 8) {
				buf_printf(out, "... %u more", c->count - 8);
				break;
			}
			put_const(p, c->first + i, out);
		}
		buf_addc(out, ']');
		break;
	default: buf_adds(out, "?"); break;
	}
}

void
hk_disasm(const struct hk_program *p, struct hk_buf *out)
{
	static const char *const parts[] = { "addr", "local", "domain", "name" };
	buf_printf(out, "; layer %s, %u bytes of code, %u constants, %u regexes, %u rules, max stack %u\n",
	    hk_layer_name(p->layer), p->code_len, p->nconsts, p->nregexes, p->nrules, p->max_stack);
	for (uint32_t pc = 0; pc < p->code_len;) {
		for (int st = 0; st < HK_STAGES; st++)
			if (p->entry[st] == pc)
				buf_printf(out, "\non %s:\n", ast_stage_name(st));
		unsigned op = p->code[pc];
		const uint8_t *o = p->code + pc + 1;
		const struct hk_line_info *li = hk_program_line(p, pc);
		size_t mark = out->len;
		buf_printf(out, "%6u  %-10s ", pc, hk_ops[op].name);
		switch ((enum hk_op)op) {
		case OP_CONST: put_const(p, bc_u16(o), out); break;
		case OP_FIELD: buf_adds(out, o[0] < FIELD_COUNT ? hk_fields[o[0]].name : "?"); break;
		case OP_HEADER:
		case OP_HAS_HEADER: put_const(p, bc_u16(o), out); break;
		case OP_PROP: buf_adds(out, o[0] < PART_COUNT ? parts[o[0]] : "?"); break;
		case OP_CMP: buf_printf(out, "%s%s", o[1] ? "not " : "", ast_cmp_name(o[0])); break;
		case OP_REGEX: {
			const struct hk_regex_info *r = &p->regexes[bc_u16(o)];
			buf_printf(out, "%s/%.*s/", o[2] ? "not " : "", (int)r->len, p->strpool + r->off);
			if (r->flags & HK_RE_CASELESS) buf_addc(out, 'i');
			if (r->flags & HK_RE_MULTILINE) buf_addc(out, 'm');
			if (r->flags & HK_RE_DOTALL) buf_addc(out, 's');
			if (r->flags & HK_RE_EXTENDED) buf_addc(out, 'x');
			break;
		}
		case OP_JMP:
		case OP_JF:
		case OP_JT: buf_printf(out, "-> %u", bc_u32(o)); break;
		case OP_CONCAT: buf_printf(out, "%u", o[0]); break;
		case OP_RULE: {
			const struct hk_rule_info *r = &p->rules[bc_u16(o)];
			buf_printf(out, "#%u \"%.*s\"", bc_u16(o), (int)r->name_len, p->strpool + r->name_off);
			break;
		}
		case OP_ACT: buf_printf(out, "%s argc=%u mask=%u", ast_action_name(o[0]), o[1], o[2]); break;
		default: break;
		}
		if (li && li->line) {
			size_t width = out->len - mark;
			while (width++ < 52)
				buf_addc(out, ' ');
			const struct hk_file_info *f = &p->files[li->file];
			buf_printf(out, " ; %.*s:%u:%u", (int)f->len, p->strpool + f->off, li->line, li->col);
		}
		buf_addc(out, '\n');
		pc += 1u + hk_ops[op].operands;
	}
}
