/*
 * fmt.c - `hikyaku fmt`: prints a parsed file in the canonical layout
 * (4-space indentation, one statement per line, single spaces around
 * operators, one blank line between blocks, """ blocks re-indented),
 * keeping every comment. Formatting twice changes nothing: the output is
 * a fixed point (tests/golden/fmt checks this).
 *
 * Works on the parse tree only (no sema), so it formats files whose names
 * do not resolve yet; it refuses files with syntax errors.
 */
#include <string.h>

#include "compile.h"
#include "parse.h"

#define FMT_WIDTH 100

struct fmt {
	struct hk_buf *out;
	const struct comment *comments;
	size_t ncomments, next;
	int indent;
	unsigned last_line;  /* last source line emitted */
	bool block_start;    /* just opened a block: no blank line here */
	int in_condition;    /* lists inside conditions stay on one line */
};

static unsigned last_line(const struct ast *n, int depth);

/* One blank line where the source had one or more between what was
 * emitted last and `line`, except right after an opening brace. */
static void
gap(struct fmt *f, unsigned line)
{
	if (f->last_line && !f->block_start && line > f->last_line + 1 && f->out->len >= 2 &&
	    !(f->out->data[f->out->len - 1] == '\n' && f->out->data[f->out->len - 2] == '\n'))
		buf_addc(f->out, '\n');
}

static void
emitted(struct fmt *f, unsigned line)
{
	if (line > f->last_line)
		f->last_line = line;
	f->block_start = false;
}

static void
put_indent(struct fmt *f)
{
	for (int i = 0; i < f->indent; i++)
		buf_adds(f->out, "    ");
}

/* Own-line comments that come before source line `line`. */
static void
flush_comments(struct fmt *f, unsigned line)
{
	while (f->next < f->ncomments && f->comments[f->next].line < line) {
		const struct comment *c = &f->comments[f->next++];
		gap(f, c->line);
		put_indent(f);
		buf_add(f->out, c->text.ptr, c->text.len);
		buf_addc(f->out, '\n');
		emitted(f, c->line);
	}
	if (line != UINT32_MAX)
		gap(f, line);
}

/* Ends an output line that came from source line `line`, keeping a
 * trailing comment written on that line. */
static void
end_line(struct fmt *f, unsigned line)
{
	if (f->next < f->ncomments && f->comments[f->next].line == line && !f->comments[f->next].own_line) {
		buf_adds(f->out, "  ");
		buf_add(f->out, f->comments[f->next].text.ptr, f->comments[f->next].text.len);
		f->next++;
	}
	buf_addc(f->out, '\n');
	emitted(f, line);
}

/* Ends a line that opens a block. */
static void
open_line(struct fmt *f, unsigned line)
{
	end_line(f, line);
	f->block_start = true;
}

static void put_value(struct fmt *f, const struct ast *n);
static void put_expr(struct fmt *f, const struct ast *n);

static void
put_string(struct fmt *f, const struct ast *n)
{
	struct hk_str sp = n->str2;
	if (sp.len >= 6 && memcmp(sp.ptr, "\"\"\"", 3) == 0) {
		struct hk_buf body;
		buf_init(&body);
		parse_strip_block(sp.ptr + 3, sp.len - 6, &body);
		buf_adds(f->out, "\"\"\"\n");
		f->indent++;
		const char *p = body.data ? body.data : "", *end = p + body.len;
		while (p < end) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			const char *le = nl ? nl : end;
			if (le > p) {
				put_indent(f);
				buf_add(f->out, p, (size_t)(le - p));
			}
			buf_addc(f->out, '\n');
			p = nl ? nl + 1 : end;
		}
		put_indent(f);
		buf_adds(f->out, "\"\"\"");
		f->indent--;
		buf_fini(&body);
		return;
	}
	buf_add(f->out, sp.ptr, sp.len);
}

static void
put_num(struct fmt *f, const struct ast *n)
{
	/* "90   days" -> "90 days"; sizes and numbers as written */
	for (size_t i = 0; i < n->str.len; i++) {
		char c = n->str.ptr[i];
		if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
			while (i + 1 < n->str.len && (n->str.ptr[i + 1] == ' ' || n->str.ptr[i + 1] == '\t'))
				i++;
			buf_addc(f->out, ' ');
		} else {
			buf_addc(f->out, c);
		}
	}
}

static void
put_value(struct fmt *f, const struct ast *n)
{
	switch (n->kind) {
	case AST_STR: put_string(f, n); break;
	case AST_NUM: put_num(f, n); break;
	case AST_BOOL: buf_adds(f->out, n->num ? "true" : "false"); break;
	case AST_REGEX: buf_add(f->out, n->str2.ptr, n->str2.len); break;
	case AST_NAME:
		buf_add(f->out, n->str.ptr, n->str.len);
		for (const struct ast *c = n->list; c; c = c->next) {
			buf_addc(f->out, '.');
			buf_add(f->out, c->str.ptr, c->str.len);
		}
		break;
	case AST_LIST: {
		/* comments inside a list keep it one element per line, each
		 * comment where it was */
		bool commented = false;
		for (size_t i = f->next; i < f->ncomments && f->comments[i].line <= n->end_line; i++)
			if (f->comments[i].line >= n->loc.line)
				commented = true;
		if (commented && !f->in_condition && n->list) {
			buf_addc(f->out, '[');
			end_line(f, n->loc.line);
			f->block_start = true;
			f->indent++;
			for (const struct ast *e = n->list; e; e = e->next) {
				flush_comments(f, e->loc.line);
				put_indent(f);
				put_value(f, e);
				buf_addc(f->out, ',');
				end_line(f, e->loc.line);
			}
			flush_comments(f, n->end_line);
			f->indent--;
			put_indent(f);
			buf_addc(f->out, ']');
			break;
		}
		/* one line when it fits, else one element per line */
		size_t mark = f->out->len;
		buf_addc(f->out, '[');
		for (const struct ast *e = n->list; e; e = e->next) {
			put_value(f, e);
			if (e->next)
				buf_adds(f->out, ", ");
		}
		buf_addc(f->out, ']');
		const char *line_start = f->out->data + mark;
		while (line_start > f->out->data && line_start[-1] != '\n')
			line_start--;
		if ((size_t)(f->out->data + f->out->len - line_start) <= FMT_WIDTH || n->list == NULL || f->in_condition)
			break;
		f->out->len = mark;
		buf_adds(f->out, "[\n");
		f->indent++;
		for (const struct ast *e = n->list; e; e = e->next) {
			put_indent(f);
			put_value(f, e);
			buf_adds(f->out, ",\n");
		}
		f->indent--;
		put_indent(f);
		buf_addc(f->out, ']');
		break;
	}
	case AST_HEADER:
		buf_adds(f->out, n->op ? "headers " : "header ");
		put_value(f, n->a);
		break;
	case AST_HAS:
		buf_adds(f->out, "has ");
		put_value(f, n->a);
		break;
	case AST_PAREN:
		buf_addc(f->out, '(');
		put_expr(f, n->a);
		buf_addc(f->out, ')');
		break;
	default:
		put_expr(f, n);
		break;
	}
}

static void
put_expr(struct fmt *f, const struct ast *n)
{
	switch (n->kind) {
	case AST_AND:
	case AST_OR:
		for (const struct ast *op = n->list; op; op = op->next) {
			put_expr(f, op);
			if (op->next)
				buf_adds(f->out, n->kind == AST_AND ? " and " : " or ");
		}
		break;
	case AST_NOT:
		buf_adds(f->out, "not ");
		put_expr(f, n->a);
		break;
	case AST_CMP: {
		f->in_condition++;
		put_value(f, n->a);
		const char *op;
		switch (n->op) {
		case CMP_IS: op = n->num ? " is not " : " is "; break;
		case CMP_REGEX: op = n->num ? " !~ " : " ~ "; break;
		case CMP_IN: op = n->num ? " not in " : " in "; break;
		default: op = NULL; break;
		}
		if (op)
			buf_adds(f->out, op);
		else
			buf_printf(f->out, " %s ", ast_cmp_name(n->op));
		put_value(f, n->b);
		f->in_condition--;
		break;
	}
	default:
		put_value(f, n);
		break;
	}
}

static void
put_opts(struct fmt *f, const struct ast *opts)
{
	for (const struct ast *o = opts; o; o = o->next) {
		buf_addc(f->out, ' ');
		buf_add(f->out, o->str.ptr, o->str.len);
		buf_addc(f->out, ' ');
		put_value(f, o->a);
	}
}

static void
put_action(struct fmt *f, const struct ast *n)
{
	buf_adds(f->out, ast_action_name(n->op));
	switch (n->op) {
	case ACT_FORWARD:
	case ACT_NOTIFY:
		for (const struct ast *v = n->list; v; v = v->next) {
			buf_adds(f->out, v == n->list ? " " : ", ");
			put_value(f, v);
		}
		put_opts(f, n->opts);
		break;
	case ACT_REPLY:
		put_opts(f, n->opts);
		break;
	case ACT_EXPAND:
	case ACT_STRIP:
		buf_addc(f->out, ' ');
		buf_add(f->out, n->str.ptr, n->str.len);
		for (const struct ast *v = n->list; v; v = v->next) {
			buf_addc(f->out, ' ');
			put_value(f, v);
		}
		break;
	case ACT_ADD_HEADER:
	case ACT_REMOVE_HEADER:
		buf_adds(f->out, " header");
		for (const struct ast *v = n->list; v; v = v->next) {
			buf_addc(f->out, ' ');
			put_value(f, v);
		}
		break;
	case ACT_REFUSE:
	case ACT_TEMPFAIL:
		if (n->a) {
			buf_addc(f->out, ' ');
			put_num(f, n->a);
		}
		for (const struct ast *v = n->list; v; v = v->next) {
			buf_addc(f->out, ' ');
			put_value(f, v);
		}
		break;
	default:
		for (const struct ast *v = n->list; v; v = v->next) {
			buf_addc(f->out, ' ');
			put_value(f, v);
		}
		break;
	}
}

static void put_stmts(struct fmt *f, const struct ast *list, unsigned parent_line);

static void
put_if(struct fmt *f, const struct ast *n)
{
	buf_adds(f->out, "if ");
	put_expr(f, n->a);
	buf_adds(f->out, " {");
	open_line(f, n->loc.line);
	f->indent++;
	put_stmts(f, n->list, n->loc.line);
	unsigned then_end = (unsigned)n->str2.len;
	flush_comments(f, then_end);
	f->indent--;
	put_indent(f);
	buf_addc(f->out, '}');
	if (n->b == NULL) {
		end_line(f, then_end);
		return;
	}
	buf_adds(f->out, " else ");
	if (n->b->kind == AST_IF) {
		put_if(f, n->b);
		return;
	}
	buf_addc(f->out, '{');
	open_line(f, n->b->loc.line);
	f->indent++;
	put_stmts(f, n->b->list, n->b->loc.line);
	flush_comments(f, n->b->end_line);
	f->indent--;
	put_indent(f);
	buf_addc(f->out, '}');
	end_line(f, n->b->end_line);
}

static void
put_stmt(struct fmt *f, const struct ast *n)
{
	flush_comments(f, n->loc.line);
	put_indent(f);
	if (n->kind == AST_IF) {
		put_if(f, n);
		return;
	}
	put_action(f, n);
	end_line(f, n->loc.line);
	emitted(f, last_line(n, 0));
}

/* The last source line a node spans (multi-line strings included). */
static unsigned
last_line(const struct ast *n, int depth)
{
	unsigned l = n->end_line > n->loc.line ? n->end_line : n->loc.line;
	if (depth > 64)
		return l;
	const struct ast *kids[] = { n->a, n->b };
	for (int i = 0; i < 2; i++)
		if (kids[i]) {
			unsigned k = last_line(kids[i], depth + 1);
			if (k > l)
				l = k;
		}
	for (const struct ast *c = n->list; c; c = c->next) {
		unsigned k = last_line(c, depth + 1);
		if (k > l)
			l = k;
	}
	for (const struct ast *c = n->opts; c; c = c->next) {
		unsigned k = last_line(c, depth + 1);
		if (k > l)
			l = k;
	}
	return l;
}

static void
put_rule(struct fmt *f, const struct ast *r)
{
	flush_comments(f, r->loc.line);
	put_indent(f);
	buf_adds(f->out, "rule ");
	if (r->b)
		put_string(f, r->b);
	else
		buf_adds(f->out, "\"\"");
	if (r->a) {
		buf_adds(f->out, " when ");
		put_expr(f, r->a);
	}
	if (r->list == NULL && (f->next >= f->ncomments || f->comments[f->next].line > r->end_line)) {
		buf_adds(f->out, " { }");
		end_line(f, r->end_line);
		return;
	}
	buf_adds(f->out, " {");
	open_line(f, r->loc.line);
	f->indent++;
	put_stmts(f, r->list, r->loc.line);
	flush_comments(f, r->end_line);
	f->indent--;
	put_indent(f);
	buf_addc(f->out, '}');
	end_line(f, r->end_line);
}

static void
put_stmts(struct fmt *f, const struct ast *list, unsigned parent_line)
{
	(void)parent_line;
	for (const struct ast *n = list; n; n = n->next) {
		if (n->kind == AST_RULE)
			put_rule(f, n);
		else
			put_stmt(f, n);
	}
}

static void
put_test(struct fmt *f, const struct ast *t)
{
	buf_adds(f->out, "test ");
	put_string(f, t->a);
	buf_adds(f->out, " {");
	open_line(f, t->loc.line);
	f->indent++;
	for (const struct ast *s = t->list; s; s = s->next) {
		flush_comments(f, s->loc.line);
		put_indent(f);
		if (s->kind == AST_EXPECT) {
			buf_adds(f->out, "expect ");
			if (s->str.len) {
				buf_add(f->out, s->str.ptr, s->str.len);
				buf_addc(f->out, ' ');
			}
			put_action(f, s->a);
		} else {
			buf_add(f->out, s->str.ptr, s->str.len);
			for (const struct ast *v = s->list; v; v = v->next) {
				buf_addc(f->out, ' ');
				put_value(f, v);
			}
		}
		end_line(f, s->loc.line);
		emitted(f, last_line(s, 0));
	}
	flush_comments(f, t->end_line);
	f->indent--;
	buf_addc(f->out, '}');
	end_line(f, t->end_line);
}

void
fmt_unit(const struct hk_unit *u, struct hk_buf *out)
{
	struct fmt f = { out, u->comments, u->ncomments, 0, 0, 0, false, 0 };
	const struct ast *prev = NULL;
	for (const struct ast *it = u->root->list; it; it = it->next) {
		/* blocks and groups of imports and consts are set apart */
		if (prev && !((prev->kind == AST_IMPORT || prev->kind == AST_CONST) && prev->kind == it->kind))
			f.last_line = 0, buf_addc(out, '\n');
		flush_comments(&f, it->loc.line);
		switch (it->kind) {
		case AST_IMPORT:
			buf_adds(out, "import ");
			put_string(&f, it->a);
			end_line(&f, it->loc.line);
			break;
		case AST_CONST:
			buf_adds(out, "const ");
			buf_add(out, it->str.ptr, it->str.len);
			buf_adds(out, " = ");
			put_expr(&f, it->a);
			end_line(&f, it->loc.line);
			emitted(&f, last_line(it->a, 0));
			break;
		case AST_ON:
			buf_adds(out, "on ");
			buf_add(out, it->str.ptr, it->str.len);
			buf_adds(out, " {");
			open_line(&f, it->loc.line);
			f.indent++;
			put_stmts(&f, it->list, it->loc.line);
			flush_comments(&f, it->end_line);
			f.indent--;
			buf_addc(out, '}');
			end_line(&f, it->end_line);
			break;
		case AST_TEST:
			put_test(&f, it);
			break;
		default:
			break;
		}
		prev = it;
	}
	flush_comments(&f, UINT32_MAX);
}
