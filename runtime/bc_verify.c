/*
 * bc_verify.c - the bytecode verifier. A program is hostile until this
 * passes it: magic and version were checked by the reader; here every
 * table entry is checked against the string pool and the other tables,
 * every instruction's operands against their tables, every jump against
 * instruction boundaries, the stack depth along every path (consistent at
 * joins, never negative, never above HK_MAX_STACK), each action against
 * the stage its code belongs to and against the program's layer (an
 * untrusted layer cannot refuse mail, expunge or expand lists, and has no
 * code for SMTP stages).
 *
 * SECURITY: the VM relies on these checks and does not repeat them.
 */
#include <stdlib.h>
#include <string.h>

#include "bytecode.h"
#include "fields.h"

const struct hk_op_info hk_ops[OP_COUNT] = {
#define OP(name, operands, pops, pushes) { #name, operands, pops, pushes },
#include "opcodes.def"
#undef OP
};

static bool
in_pool(const struct hk_program *p, uint32_t off, uint32_t len)
{
	return off <= p->strpool_len && len <= p->strpool_len - off;
}

static int
fail(struct hk_buf *err, const char *what, uint32_t at)
{
	buf_printf(err, "invalid bytecode: %s (at %u)", what, at);
	return -1;
}

/* Arguments an action takes, from its operands; -1 when inconsistent. */
static int
action_args(unsigned act, unsigned argc, unsigned mask)
{
	switch (act) {
	case ACT_KEEP:
	case ACT_DISCARD:
	case ACT_SKIP:
	case ACT_STOP:
	case ACT_STRIP:
	case ACT_EXPUNGE:
		return argc == 0 && mask == 0 ? 0 : -1;
	case ACT_FILEINTO:
	case ACT_EXPAND:
	case ACT_REMOVE_HEADER:
	case ACT_FLAG:
	case ACT_LOG:
		return argc == 1 && mask == 0 ? 1 : -1;
	case ACT_ADD_HEADER:
		return argc == 2 && mask == 0 ? 2 : -1;
	case ACT_FORWARD:
		return argc >= 1 && mask == 0 ? (int)argc : -1;
	case ACT_NOTIFY:
		return mask <= 1 && argc >= 1 + mask ? (int)argc : -1;
	case ACT_REJECT:
		return mask <= 1 && argc == mask ? (int)argc : -1;
	case ACT_REPLY:
		return mask <= 15 && argc == (unsigned)__builtin_popcount(mask) ? (int)argc : -1;
	case ACT_REFUSE:
	case ACT_TEMPFAIL:
		return mask <= 3 && argc == (unsigned)__builtin_popcount(mask) ? (int)argc : -1;
	default:
		return -1;
	}
}

int
hk_program_verify(struct hk_program *p, struct hk_buf *err)
{
	bool untrusted = p->layer == HK_LAYER_PERSONAL || p->layer == HK_LAYER_PANEL;
	if (p->layer >= HK_LAYER_COUNT)
		return fail(err, "unknown layer", 0);
	/* tables */
	for (uint32_t i = 0; i < p->nconsts; i++) {
		const struct hk_const *c = &p->consts[i];
		switch (c->type) {
		case HKC_STR:
			if (!in_pool(p, c->off, c->len))
				return fail(err, "constant outside the string pool", i);
			break;
		case HKC_NUM:
			break;
		case HKC_BOOL:
			if (c->num != 0 && c->num != 1)
				return fail(err, "bad boolean constant", i);
			break;
		case HKC_STRLIST:
		case HKC_NUMLIST:
			if (c->first > p->nconsts || c->count > p->nconsts - c->first)
				return fail(err, "list outside the constants", i);
			for (uint32_t k = 0; k < c->count; k++)
				if (p->consts[c->first + k].type != (c->type == HKC_STRLIST ? HKC_STR : HKC_NUM))
					return fail(err, "list element of the wrong type", i);
			break;
		default:
			return fail(err, "unknown constant type", i);
		}
	}
	for (uint32_t i = 0; i < p->nregexes; i++)
		if (!in_pool(p, p->regexes[i].off, p->regexes[i].len) || p->regexes[i].flags > 15)
			return fail(err, "bad regex entry", i);
	for (uint32_t i = 0; i < p->nfiles; i++)
		if (!in_pool(p, p->files[i].off, p->files[i].len))
			return fail(err, "bad file entry", i);
	for (uint32_t i = 0; i < p->nrules; i++) {
		const struct hk_rule_info *r = &p->rules[i];
		if (!in_pool(p, r->name_off, r->name_len) || r->file >= p->nfiles || r->stage >= HK_STAGES)
			return fail(err, "bad rule entry", i);
	}
	for (uint32_t i = 0; i < p->nlines; i++) {
		if (p->lines[i].file >= p->nfiles || p->lines[i].pc > p->code_len || (i && p->lines[i].pc < p->lines[i - 1].pc))
			return fail(err, "bad line table", i);
	}

	/* decode: instruction starts */
	uint32_t n = p->code_len;
	uint8_t *start = xcalloc(n + 1, 1);
	int32_t *depth = xmalloc(((size_t)n + 1) * sizeof(*depth));
	int8_t *stage_of = xmalloc((size_t)n + 1);
	int rc = -1;
	for (uint32_t i = 0; i <= n; i++) {
		depth[i] = -1;
		stage_of[i] = -1;
	}
	for (uint32_t pc = 0; pc < n;) {
		unsigned op = p->code[pc];
		if (op >= OP_COUNT) {
			fail(err, "unknown opcode", pc);
			goto out;
		}
		if (hk_ops[op].operands > n - pc - 1) {
			fail(err, "truncated instruction", pc);
			goto out;
		}
		start[pc] = 1;
		pc += 1u + hk_ops[op].operands;
	}
	/* operands */
	for (uint32_t pc = 0; pc < n; pc += 1u + hk_ops[p->code[pc]].operands) {
		const uint8_t *o = p->code + pc + 1;
		switch ((enum hk_op)p->code[pc]) {
		case OP_CONST:
			if (bc_u16(o) >= p->nconsts) {
				fail(err, "constant index out of range", pc);
				goto out;
			}
			break;
		case OP_HEADER:
		case OP_HAS_HEADER:
			if (bc_u16(o) >= p->nconsts || p->consts[bc_u16(o)].type != HKC_STR) {
				fail(err, "header name is not a string constant", pc);
				goto out;
			}
			break;
		case OP_FIELD:
			if (o[0] >= FIELD_COUNT) {
				fail(err, "unknown field", pc);
				goto out;
			}
			break;
		case OP_PROP:
			if (o[0] >= PART_COUNT) {
				fail(err, "unknown address part", pc);
				goto out;
			}
			break;
		case OP_CMP:
			if (o[0] > CMP_GE || o[0] == CMP_REGEX || o[1] > 1) {
				fail(err, "bad comparison", pc);
				goto out;
			}
			break;
		case OP_REGEX:
			if (bc_u16(o) >= p->nregexes || o[2] > 1) {
				fail(err, "bad regex operand", pc);
				goto out;
			}
			break;
		case OP_JMP:
		case OP_JF:
		case OP_JT: {
			uint32_t t = bc_u32(o);
			if (t >= n || !start[t]) {
				fail(err, "jump into the middle of an instruction or out of the code", pc);
				goto out;
			}
			break;
		}
		case OP_RULE:
			if (bc_u16(o) >= p->nrules) {
				fail(err, "rule index out of range", pc);
				goto out;
			}
			break;
		case OP_ACT:
			if (o[0] >= ACT_COUNT || action_args(o[0], o[1], o[2]) < 0) {
				fail(err, "bad action operands", pc);
				goto out;
			}
			if (untrusted && !hk_action_untrusted_ok(o[0])) {
				fail(err, "action not allowed for this layer", pc);
				goto out;
			}
			break;
		default:
			break;
		}
	}
	/* paths from every entry: stack depths and stages */
	uint32_t *work = xmalloc(((size_t)n + 1) * sizeof(*work));
	size_t nwork;
	uint32_t max_depth = 0;
	for (int st = 0; st < HK_STAGES; st++) {
		uint32_t e = p->entry[st];
		if (e == HK_NO_ENTRY)
			continue;
		if (untrusted && st != STAGE_DELIVER) {
			free(work);
			fail(err, "untrusted layer with code for an SMTP or retention stage", e);
			goto out;
		}
		if (e >= n || !start[e] || stage_of[e] >= 0) {
			free(work);
			fail(err, "bad stage entry", e);
			goto out;
		}
		nwork = 0;
		depth[e] = 0;
		stage_of[e] = (int8_t)st;
		work[nwork++] = e;
		while (nwork) {
			uint32_t pc = work[--nwork];
			unsigned op = p->code[pc];
			const uint8_t *o = p->code + pc + 1;
			int pops = hk_ops[op].pops;
			if (op == OP_CONCAT)
				pops = o[0];
			else if (op == OP_ACT)
				pops = o[1];
			int d = depth[pc];
			if (pops > d) {
				free(work);
				fail(err, "stack underflow", pc);
				goto out;
			}
			d = d - pops + hk_ops[op].pushes;
			if (d > (int)HK_MAX_STACK) {
				free(work);
				fail(err, "stack overflow", pc);
				goto out;
			}
			if ((uint32_t)d > max_depth)
				max_depth = (uint32_t)d;
			if (op == OP_ACT && !hk_action_stage_ok(o[0], st)) {
				free(work);
				fail(err, "action not allowed in this stage", pc);
				goto out;
			}
			uint32_t succ[2];
			int ns = 0;
			uint32_t next = pc + 1u + hk_ops[op].operands;
			if (op == OP_END) {
				if (d != 0) {
					free(work);
					fail(err, "stack not empty at the end", pc);
					goto out;
				}
			} else if (op == OP_JMP) {
				succ[ns++] = bc_u32(o);
			} else {
				if (next >= n) {
					free(work);
					fail(err, "code runs off the end", pc);
					goto out;
				}
				succ[ns++] = next;
				if (op == OP_JF || op == OP_JT)
					succ[ns++] = bc_u32(o);
			}
			for (int k = 0; k < ns; k++) {
				uint32_t t = succ[k];
				if (stage_of[t] >= 0 && stage_of[t] != st) {
					free(work);
					fail(err, "code shared between stages", t);
					goto out;
				}
				if (depth[t] < 0) {
					depth[t] = d;
					stage_of[t] = (int8_t)st;
					work[nwork++] = t;
				} else if (depth[t] != d) {
					free(work);
					fail(err, "inconsistent stack depth at a join", t);
					goto out;
				}
			}
		}
	}
	free(work);
	p->max_stack = max_depth;
	rc = 0;
out:
	free(start);
	free(depth);
	free(stage_of);
	return rc;
}
