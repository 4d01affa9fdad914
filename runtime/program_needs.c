/*
 * program_needs.c - which message facts one stage of a verified program
 * can read, found by walking the stage's reachable bytecode (the same walk
 * as bc_verify.c, without the checks). The retention runner uses it to
 * skip parsing stored messages when the rules only look at `age`, `seen`,
 * `flagged`, `folder` and `plan.*`: the common case, where a 100,000
 * message mailbox then costs a stat per file and no reads.
 *
 * The answer is an upper bound: a fact behind a condition that is never
 * true still counts. Only call it on a program that passed bc_verify
 * (every program the servers hold did): operands and jumps are trusted.
 */
#include <stdlib.h>

#include "bytecode.h"
#include "fields.h"
#include "program.h"

static enum hk_needs
field_needs(unsigned f)
{
	switch (f) {
	case FIELD_BODY:
	case FIELD_BODY_RAW:
	case FIELD_SIZE:
	case FIELD_ATT_COUNT:
	case FIELD_ATT_NAME:
	case FIELD_ATT_TYPE:
	case FIELD_ATT_SIZE:
		return HK_NEEDS_BODY;
	case FIELD_ENV_FROM:
	case FIELD_ENV_TO:
		/* for stored mail they come from Return-Path and Delivered-To */
		return HK_NEEDS_HEADER;
	default:
		if (f < FIELD_COUNT && (hk_fields[f].flags & FF_MSG))
			return HK_NEEDS_HEADER;
		return HK_NEEDS_NONE;
	}
}

enum hk_needs
hk_program_stage_needs(const struct hk_program *p, int stage)
{
	if (stage < 0 || stage >= HK_STAGES || p->entry[stage] == HK_NO_ENTRY || p->entry[stage] >= p->code_len)
		return HK_NEEDS_NONE;
	uint32_t n = p->code_len;
	unsigned char *seen = calloc(n, 1);
	uint32_t *work = malloc(((size_t)n + 1) * sizeof(*work));
	if (seen == NULL || work == NULL) {
		free(seen);
		free(work);
		return HK_NEEDS_BODY; /* cannot tell: assume the worst */
	}
	enum hk_needs needs = HK_NEEDS_NONE;
	size_t nwork = 0;
	work[nwork++] = p->entry[stage];
	seen[p->entry[stage]] = 1;
	while (nwork && needs != HK_NEEDS_BODY) {
		uint32_t pc = work[--nwork];
		unsigned op = p->code[pc];
		const uint8_t *o = p->code + pc + 1;
		enum hk_needs k = HK_NEEDS_NONE;
		if (op == OP_FIELD)
			k = field_needs(o[0]);
		else if (op == OP_HEADER || op == OP_HAS_HEADER)
			k = HK_NEEDS_HEADER;
		else if (op == OP_HAS_ATT)
			k = HK_NEEDS_BODY;
		if (k > needs)
			needs = k;
		uint32_t succ[2];
		int ns = 0;
		if (op == OP_END)
			continue;
		if (op == OP_JMP) {
			succ[ns++] = bc_u32(o);
		} else {
			succ[ns++] = pc + 1u + hk_ops[op].operands;
			if (op == OP_JF || op == OP_JT)
				succ[ns++] = bc_u32(o);
		}
		for (int i = 0; i < ns; i++)
			if (succ[i] < n && !seen[succ[i]]) {
				seen[succ[i]] = 1;
				work[nwork++] = succ[i];
			}
	}
	free(seen);
	free(work);
	return needs;
}
