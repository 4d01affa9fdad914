/*
 * bytecode.h - opcode numbers and operand helpers shared by the code
 * generator, the disassembler, the verifier and the VM (from opcodes.def).
 */
#ifndef HK_BYTECODE_H
#define HK_BYTECODE_H

#include <stdint.h>

#include "program.h"
#include "util.h"

enum hk_op {
#define OP(name, operands, pops, pushes) OP_##name,
#include "opcodes.def"
#undef OP
	OP_COUNT
};

struct hk_op_info {
	const char *name;
	uint8_t operands;
	int8_t pops;
	uint8_t pushes;
};

extern const struct hk_op_info hk_ops[OP_COUNT];

static inline unsigned
bc_u16(const uint8_t *p)
{
	return (unsigned)p[0] | ((unsigned)p[1] << 8);
}

static inline uint32_t
bc_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* Writes a human-readable listing (hikyaku disasm, golden tests). */
void hk_disasm(const struct hk_program *p, struct hk_buf *out);

#endif
