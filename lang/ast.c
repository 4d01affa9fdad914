/*
 * ast.c - node construction, names of enums, and the debug dump used by
 * the golden tests (tests/golden/lang/ok/NAME.ast).
 */
#include "ast.h"

#include <string.h>

struct ast *
ast_new(struct arena *a, enum ast_kind kind, struct loc loc)
{
	struct ast *n = arena_calloc(a, 1, sizeof(*n));
	n->kind = kind;
	n->loc = loc;
	n->end_line = loc.line;
	return n;
}

struct ast *
ast_append(struct ast *parent, struct ast *child)
{
	if (child == NULL)
		return parent;
	child->next = NULL;
	if (parent->list_tail)
		parent->list_tail->next = child;
	else
		parent->list = child;
	parent->list_tail = child;
	return parent;
}

size_t
ast_list_len(const struct ast *parent)
{
	size_t n = 0;
	for (const struct ast *c = parent->list; c; c = c->next)
		n++;
	return n;
}

static const char *const stage_names[STAGE_COUNT] = {
	"connect", "helo", "mail", "rcpt", "data", "deliver", "retention"
};

const char *
ast_stage_name(int stage)
{
	return stage >= 0 && stage < STAGE_COUNT ? stage_names[stage] : "?";
}

int
ast_stage_lookup(struct hk_str name)
{
	for (int i = 0; i < STAGE_COUNT; i++)
		if (name.len == strlen(stage_names[i]) && memcmp(name.ptr, stage_names[i], name.len) == 0)
			return i;
	return -1;
}

static const char *const action_names[ACT_COUNT] = {
#define X(id, word) word,
	HK_ACTIONS(X)
#undef X
};

const char *
ast_action_name(int act)
{
	return act >= 0 && act < ACT_COUNT ? action_names[act] : "?";
}

const char *
ast_cmp_name(int cmp)
{
	static const char *const names[] = { "is", "contains", "starts with", "ends with", "matches", "~",
		"in", "<", "<=", ">", ">=" };
	return cmp >= 0 && cmp < (int)HK_ARRAY_LEN(names) ? names[cmp] : "?";
}

static const char *const kind_names[] = {
	"file", "import", "const", "on", "test", "rule", "if", "block", "action", "option",
	"tstmt", "expect", "str", "num", "bool", "list", "regex", "name", "header", "has",
	"and", "or", "not", "cmp", "paren"
};

static void
dump_str(struct hk_buf *out, struct hk_str s)
{
	buf_addc(out, '"');
	for (size_t i = 0; i < s.len; i++) {
		unsigned char c = (unsigned char)s.ptr[i];
		if (c == '"' || c == '\\')
			buf_printf(out, "\\%c", c);
		else if (c == '\n')
			buf_adds(out, "\\n");
		else if (c < 0x20)
			buf_printf(out, "\\x%02x", c);
		else
			buf_addc(out, (char)c);
	}
	buf_addc(out, '"');
}

static void
dump(const struct ast *n, struct hk_buf *out, int depth)
{
	if (depth > 200) {
		buf_adds(out, "...\n");
		return;
	}
	for (int i = 0; i < depth; i++)
		buf_adds(out, "  ");
	buf_printf(out, "%s", kind_names[n->kind]);
	switch (n->kind) {
	case AST_ON: buf_printf(out, " %.*s", (int)n->str.len, n->str.ptr); break;
	case AST_ACTION: buf_printf(out, " %s", ast_action_name(n->op)); break;
	case AST_CMP: buf_printf(out, " %s%s", n->num ? "not " : "", ast_cmp_name(n->op)); break;
	case AST_NUM: buf_printf(out, " %lld", (long long)n->num); break;
	case AST_BOOL: buf_adds(out, n->num ? " true" : " false"); break;
	case AST_HEADER: buf_adds(out, n->op ? " (all)" : ""); break;
	case AST_EXPECT: if (n->str.len) buf_printf(out, " %.*s", (int)n->str.len, n->str.ptr); break;
	default:
		if (n->str.len || n->kind == AST_STR) {
			buf_addc(out, ' ');
			dump_str(out, n->str);
		}
		break;
	}
	if (n->kind == AST_REGEX) {
		buf_adds(out, " flags=");
		dump_str(out, (struct hk_str){ n->str2.ptr + n->num, n->str2.len - (size_t)n->num });
	}
	buf_printf(out, " @%u:%u\n", n->loc.line, n->loc.col);
	if (n->a)
		dump(n->a, out, depth + 1);
	if (n->b && n->kind != AST_CONST && n->kind != AST_ON && n->kind != AST_RULE && n->kind != AST_ACTION)
		dump(n->b, out, depth + 1);
	for (const struct ast *c = n->list; c; c = c->next)
		dump(c, out, depth + 1);
	for (const struct ast *c = n->opts; c; c = c->next)
		dump(c, out, depth + 1);
}

void
ast_dump(const struct ast *n, struct hk_buf *out)
{
	dump(n, out, 0);
}
