/*
 * grammar.y - Lemon grammar of the rule language. Actions only build AST
 * nodes (ast.c); every check lives in sema.c. Lemon must report no
 * conflicts: fix the grammar, never silence it.
 *
 * Statements are separated by their keywords, so no terminator is needed,
 * except in `test` blocks, whose statements start with plain names: there
 * the driver (parse.c) feeds an NL token at each line end.
 */
%name hkParse
%token_prefix TK_
%extra_argument { struct parse_ctx *ctx }
%token_type { struct token }
%default_type { struct ast * }
%stack_size 200

%include {
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include "parse.h"

#define NODE(kind, tok) ast_new(ctx->arena, (kind), (tok).loc)
static struct hk_str tokstr(struct parse_ctx *ctx, struct token t)
{
	return arena_str(ctx->arena, t.ptr, t.len);
}
static struct ast *mk_action(struct parse_ctx *ctx, int act, struct token t)
{
	struct ast *n = NODE(AST_ACTION, t);
	n->op = act;
	n->end_line = t.loc.line;
	return n;
}
/* 'a or b or c' is one node with three operands, not a nested tree, so
 * a long chain costs no recursion depth anywhere downstream. */
static struct ast *mk_chain(struct parse_ctx *ctx, enum ast_kind k, struct ast *a, struct ast *b)
{
	if (a->kind == k)
		return ast_append(a, b);
	struct ast *n = ast_new(ctx->arena, k, a->loc);
	ast_append(n, a);
	ast_append(n, b);
	return n;
}
static struct ast *mk_cmp(struct parse_ctx *ctx, int op, struct ast *a, struct ast *b, struct token t, bool neg)
{
	struct ast *n = ast_new(ctx->arena, AST_CMP, t.loc);
	n->op = op;
	n->num = neg;
	n->a = a;
	n->b = b;
	return n;
}
}

%token_destructor { (void)yypminor; (void)ctx; }
%default_destructor { (void)yypminor; (void)ctx; }

%syntax_error {
	(void)yymajor;
	ctx->failed = true;
	if (TOKEN.type == 0) {
		if (ctx->nopen > 0)
			diag_error(ctx->diag, ctx->open[ctx->nopen > PARSE_MAX_OPEN ? PARSE_MAX_OPEN - 1 : ctx->nopen - 1], "syntax",
			    "this '{' is never closed (the file ends first)");
		else
			diag_error(ctx->diag, ctx->last.loc, "syntax", "unexpected end of file");
	} else if (TOKEN.type == TK_IDENT || (ctx->last.type == TK_IDENT && ctx->last.loc.line == TOKEN.loc.line &&
	    (TOKEN.type == TK_STRING || TOKEN.type == TK_NUMBER))) {
		/* a name where none can stand ('subject contians "x"'), or a name
		 * followed by a value ('hedaer "X"'): that name is the mistake */
		const struct token *w = TOKEN.type == TK_IDENT ? &TOKEN : &ctx->last;
		const char *sg = sema_suggest_word((struct hk_str){ w->ptr, w->len });
		if (sg)
			diag_error(ctx->diag, w->loc, "syntax", "unknown word '%.*s'; did you mean '%s'?", (int)w->len, w->ptr, sg);
		else
			diag_error(ctx->diag, w->loc, "syntax", "unknown word '%.*s' here", (int)w->len, w->ptr);
	} else if (TOKEN.type == TK_NL) {
		diag_error(ctx->diag, ctx->last.loc, "syntax", "unexpected end of line after '%.*s'",
		    (int)(ctx->last.len > 40 ? 40 : ctx->last.len), ctx->last.ptr);
	} else {
		const char *what = lexer_token_name(TOKEN.type);
		if (strncmp(what, TOKEN.ptr, TOKEN.len) == 0 || what[0] == '\'')
			diag_error(ctx->diag, TOKEN.loc, "syntax", "'%.*s' is not expected here", (int)(TOKEN.len > 40 ? 40 : TOKEN.len),
			    TOKEN.ptr);
		else
			diag_error(ctx->diag, TOKEN.loc, "syntax", "%s '%.*s' is not expected here", what,
			    (int)(TOKEN.len > 40 ? 40 : TOKEN.len), TOKEN.ptr);
	}
}
%stack_overflow {
	ctx->failed = true;
	diag_error(ctx->diag, ctx->last.loc, "nesting", "nested too deeply (brackets, 'not' or blocks more than about 100 levels)");
}

%left OR.
%left AND.
%right NOT.

file ::= items(L). { ctx->root = L; }

items(A) ::= . { A = ast_new(ctx->arena, AST_FILE, (struct loc){ ctx->file, 1, 1, 1 }); }
items(A) ::= items(B) item(C). { A = C ? ast_append(B, C) : B; }

item(A) ::= IMPORT(T) STRING(S). {
	A = NODE(AST_IMPORT, T);
	struct ast *s = parse_string(ctx, &S);
	A->str = s->str;
	A->a = s;
	A->end_line = S.loc.line;
}
item(A) ::= CONST(T) IDENT(N) ASSIGN expr(V). {
	A = NODE(AST_CONST, T);
	A->str = tokstr(ctx, N);
	A->str2 = A->str;
	A->a = V;
	A->b = NODE(AST_NAME, N);
	A->end_line = ctx->last.loc.line;
}
item(A) ::= ON(T) IDENT(S) LBRACE onbody(B) RBRACE(E). {
	A = B;
	A->loc = T.loc;
	A->str = tokstr(ctx, S);
	A->str2 = A->str;
	A->b = NODE(AST_NAME, S);
	A->end_line = E.loc.line;
}
item(A) ::= TEST(T) STRING(S) LBRACE tbody(B) RBRACE(E). {
	A = B;
	A->loc = T.loc;
	struct ast *s = parse_string(ctx, &S);
	A->str = s->str;
	A->a = s;
	A->end_line = E.loc.line;
}
item(A) ::= error. { A = NULL; }

onbody(A) ::= . { A = ast_new(ctx->arena, AST_ON, ctx->last.loc); }
onbody(A) ::= onbody(B) rule(R). { A = ast_append(B, R); }
onbody(A) ::= onbody(B) stmt(S). { A = ast_append(B, S); }

rule(A) ::= RULE(T) STRING(S) block(B). {
	A = B;
	A->kind = AST_RULE;
	A->loc = T.loc;
	struct ast *s = parse_string(ctx, &S);
	A->str = s->str;
	A->b = s;
}
rule(A) ::= RULE(T) STRING(S) WHEN expr(C) block(B). {
	A = B;
	A->kind = AST_RULE;
	A->loc = T.loc;
	struct ast *s = parse_string(ctx, &S);
	A->str = s->str;
	A->b = s;
	A->a = C;
}
rule(A) ::= RULE(T) error RBRACE(E). {
	A = NODE(AST_RULE, T);
	A->end_line = E.loc.line;
}

block(A) ::= LBRACE(T) stmts(L) RBRACE(E). {
	A = L;
	A->loc = T.loc;
	A->end_line = E.loc.line;
}

stmts(A) ::= . { A = ast_new(ctx->arena, AST_BLOCK, ctx->last.loc); }
stmts(A) ::= stmts(B) stmt(S). { A = ast_append(B, S); }

stmt(A) ::= action(X). { A = X; }
stmt(A) ::= ifstmt(X). { A = X; }

ifstmt(A) ::= IF(T) expr(C) block(B) elsepart(E). {
	A = NODE(AST_IF, T);
	A->a = C;
	A->list = B->list;
	A->list_tail = B->list_tail;
	A->end_line = E ? E->end_line : B->end_line;
	A->b = E;
	A->str2 = (struct hk_str){ NULL, B->end_line }; /* then-block closing line, for fmt */
}
elsepart(A) ::= . { A = NULL; }
elsepart(A) ::= ELSE block(B). { A = B; }
elsepart(A) ::= ELSE ifstmt(I). { A = I; }

action(A) ::= KEEP(T). { A = mk_action(ctx, ACT_KEEP, T); }
action(A) ::= FILEINTO(T) value(V). { A = mk_action(ctx, ACT_FILEINTO, T); ast_append(A, V); }
action(A) ::= FORWARD(T) values(L). { A = L; A->kind = AST_ACTION; A->op = ACT_FORWARD; A->loc = T.loc; }
action(A) ::= NOTIFY(T) values(L) opts(O). { A = L; A->kind = AST_ACTION; A->op = ACT_NOTIFY; A->loc = T.loc; A->opts = O->list; }
action(A) ::= REPLY(T) opts(O). { A = mk_action(ctx, ACT_REPLY, T); A->opts = O->list; }
action(A) ::= REJECT(T). { A = mk_action(ctx, ACT_REJECT, T); }
action(A) ::= REJECT(T) value(V). { A = mk_action(ctx, ACT_REJECT, T); ast_append(A, V); }
action(A) ::= DISCARD(T). { A = mk_action(ctx, ACT_DISCARD, T); }
action(A) ::= SKIP(T). { A = mk_action(ctx, ACT_SKIP, T); }
action(A) ::= STOP(T). { A = mk_action(ctx, ACT_STOP, T); }
action(A) ::= EXPAND(T) IDENT(W) value(V). {
	A = mk_action(ctx, ACT_EXPAND, T);
	A->str = tokstr(ctx, W);
	A->str2 = (struct hk_str){ NULL, 0 };
	A->b = NODE(AST_NAME, W);
	ast_append(A, V);
}
action(A) ::= STRIP(T) IDENT(W). {
	A = mk_action(ctx, ACT_STRIP, T);
	A->str = tokstr(ctx, W);
	A->b = NODE(AST_NAME, W);
}
action(A) ::= ADD(T) HEADER value(N) value(V). { A = mk_action(ctx, ACT_ADD_HEADER, T); ast_append(A, N); ast_append(A, V); }
action(A) ::= REMOVE(T) HEADER value(N). { A = mk_action(ctx, ACT_REMOVE_HEADER, T); ast_append(A, N); }
action(A) ::= FLAG(T) value(V). { A = mk_action(ctx, ACT_FLAG, T); ast_append(A, V); }
action(A) ::= REFUSE(T) code(C). { A = mk_action(ctx, ACT_REFUSE, T); A->a = C->a; A->list = C->list; A->list_tail = C->list_tail; }
action(A) ::= TEMPFAIL(T) code(C). { A = mk_action(ctx, ACT_TEMPFAIL, T); A->a = C->a; A->list = C->list; A->list_tail = C->list_tail; }
action(A) ::= EXPUNGE(T). { A = mk_action(ctx, ACT_EXPUNGE, T); }
action(A) ::= LOG(T) value(V). { A = mk_action(ctx, ACT_LOG, T); ast_append(A, V); }

/* refuse [CODE] [TEXT]: the text is a string literal when no code is given. */
code(A) ::= . { A = ast_new(ctx->arena, AST_BLOCK, ctx->last.loc); }
code(A) ::= NUMBER(N). {
	A = ast_new(ctx->arena, AST_BLOCK, N.loc);
	A->a = NODE(AST_NUM, N);
	A->a->num = N.num;
	A->a->str = tokstr(ctx, N);
}
code(A) ::= NUMBER(N) value(V). {
	A = ast_new(ctx->arena, AST_BLOCK, N.loc);
	A->a = NODE(AST_NUM, N);
	A->a->num = N.num;
	A->a->str = tokstr(ctx, N);
	ast_append(A, V);
}
code(A) ::= STRING(S). {
	A = ast_new(ctx->arena, AST_BLOCK, S.loc);
	ast_append(A, parse_string(ctx, &S));
}

values(A) ::= value(V). { A = ast_new(ctx->arena, AST_ACTION, V->loc); ast_append(A, V); }
values(A) ::= values(B) COMMA value(V). { A = ast_append(B, V); }

opts(A) ::= . { A = ast_new(ctx->arena, AST_BLOCK, ctx->last.loc); }
opts(A) ::= opts(B) IDENT(W) value(V). {
	struct ast *o = NODE(AST_OPTION, W);
	o->str = tokstr(ctx, W);
	o->a = V;
	A = ast_append(B, o);
}

/* ---- expressions ---- */
expr(A) ::= expr(B) OR expr(C). { A = mk_chain(ctx, AST_OR, B, C); }
expr(A) ::= expr(B) AND expr(C). { A = mk_chain(ctx, AST_AND, B, C); }
expr(A) ::= NOT(T) expr(B). { A = NODE(AST_NOT, T); A->a = B; }
expr(A) ::= value(V). { A = V; }
expr(A) ::= value(B) IS(T) value(C). { A = mk_cmp(ctx, CMP_IS, B, C, T, false); }
expr(A) ::= value(B) IS(T) NOT value(C). { A = mk_cmp(ctx, CMP_IS, B, C, T, true); }
expr(A) ::= value(B) CONTAINS(T) value(C). { A = mk_cmp(ctx, CMP_CONTAINS, B, C, T, false); }
expr(A) ::= value(B) STARTS(T) WITH value(C). { A = mk_cmp(ctx, CMP_STARTS, B, C, T, false); }
expr(A) ::= value(B) ENDS(T) WITH value(C). { A = mk_cmp(ctx, CMP_ENDS, B, C, T, false); }
expr(A) ::= value(B) MATCHES(T) value(C). { A = mk_cmp(ctx, CMP_MATCHES, B, C, T, false); }
expr(A) ::= value(B) TILDE(T) value(C). { A = mk_cmp(ctx, CMP_REGEX, B, C, T, false); }
expr(A) ::= value(B) NTILDE(T) value(C). { A = mk_cmp(ctx, CMP_REGEX, B, C, T, true); }
expr(A) ::= value(B) IN(T) value(C). { A = mk_cmp(ctx, CMP_IN, B, C, T, false); }
expr(A) ::= value(B) NOT(T) IN value(C). { A = mk_cmp(ctx, CMP_IN, B, C, T, true); }
expr(A) ::= value(B) LT(T) value(C). { A = mk_cmp(ctx, CMP_LT, B, C, T, false); }
expr(A) ::= value(B) LE(T) value(C). { A = mk_cmp(ctx, CMP_LE, B, C, T, false); }
expr(A) ::= value(B) GT(T) value(C). { A = mk_cmp(ctx, CMP_GT, B, C, T, false); }
expr(A) ::= value(B) GE(T) value(C). { A = mk_cmp(ctx, CMP_GE, B, C, T, false); }

value(A) ::= STRING(S). { A = parse_string(ctx, &S); }
value(A) ::= NUMBER(N). { A = NODE(AST_NUM, N); A->num = N.num; A->str = tokstr(ctx, N); }
value(A) ::= SIZE(N). { A = NODE(AST_NUM, N); A->num = N.num; A->str = tokstr(ctx, N); A->op = 1; }
value(A) ::= DURATION(N). { A = NODE(AST_NUM, N); A->num = N.num; A->str = tokstr(ctx, N); A->op = 2; }
value(A) ::= TRUE(T). { A = NODE(AST_BOOL, T); A->num = 1; }
value(A) ::= FALSE(T). { A = NODE(AST_BOOL, T); A->num = 0; }
value(A) ::= REGEX(R). { A = parse_regex(ctx, &R); }
value(A) ::= LBRACKET(T) elems(L) RBRACKET(E). { A = L; A->loc = T.loc; A->end_line = E.loc.line; }
value(A) ::= LBRACKET(T) elems(L) COMMA RBRACKET(E). { A = L; A->loc = T.loc; A->end_line = E.loc.line; }
value(A) ::= LBRACKET(T) RBRACKET(E). { A = NODE(AST_LIST, T); A->end_line = E.loc.line; }
value(A) ::= path(P). { A = P; }
value(A) ::= HEADER(T) value(N). { A = NODE(AST_HEADER, T); A->op = 0; A->a = N; }
value(A) ::= HEADERS(T) value(N). { A = NODE(AST_HEADER, T); A->op = 1; A->a = N; }
value(A) ::= HAS(T) path(P). { A = NODE(AST_HAS, T); A->a = P; }
value(A) ::= HAS(T) HEADER(H) value(N). {
	A = NODE(AST_HAS, T);
	A->a = NODE(AST_HEADER, H);
	A->a->a = N;
}
value(A) ::= LPAREN(T) expr(E) RPAREN. { A = NODE(AST_PAREN, T); A->a = E; }

elems(A) ::= value(V). { A = ast_new(ctx->arena, AST_LIST, V->loc); ast_append(A, V); }
elems(A) ::= elems(B) COMMA value(V). { A = ast_append(B, V); }

path(A) ::= IDENT(N). { A = NODE(AST_NAME, N); A->str = tokstr(ctx, N); }
path(A) ::= path(B) DOT IDENT(N). {
	struct ast *p = NODE(AST_NAME, N);
	p->str = tokstr(ctx, N);
	A = ast_append(B, p);
}

/* ---- test blocks ---- */
tbody(A) ::= . { A = ast_new(ctx->arena, AST_TEST, ctx->last.loc); }
tbody(A) ::= tbody(B) NL. { A = B; }
tbody(A) ::= tbody(B) tstmt(S) NL. { A = ast_append(B, S); }
tbody(A) ::= tbody(B) error NL. { A = B; }

tstmt(A) ::= IDENT(V) atoms(L). { A = L; A->loc = V.loc; A->str = tokstr(ctx, V); }
tstmt(A) ::= EXPECT(T) action(X). { A = NODE(AST_EXPECT, T); A->a = X; }
tstmt(A) ::= EXPECT(T) IDENT(W) action(X). {
	A = NODE(AST_EXPECT, T);
	A->a = X;
	A->str = tokstr(ctx, W);
	A->op = -1; /* resolved by sema: suppressed / no */
}

atoms(A) ::= . { A = ast_new(ctx->arena, AST_TSTMT, ctx->last.loc); }
atoms(A) ::= atoms(B) atom(X). { A = ast_append(B, X); }
atom(A) ::= STRING(S). { A = parse_string(ctx, &S); }
atom(A) ::= NUMBER(N). { A = NODE(AST_NUM, N); A->num = N.num; A->str = tokstr(ctx, N); }
atom(A) ::= SIZE(N). { A = NODE(AST_NUM, N); A->num = N.num; A->str = tokstr(ctx, N); A->op = 1; }
atom(A) ::= DURATION(N). { A = NODE(AST_NUM, N); A->num = N.num; A->str = tokstr(ctx, N); A->op = 2; }
atom(A) ::= IDENT(N). { A = NODE(AST_NAME, N); A->str = tokstr(ctx, N); }
atom(A) ::= TRUE(T). { A = NODE(AST_BOOL, T); A->num = 1; }
atom(A) ::= FALSE(T). { A = NODE(AST_BOOL, T); A->num = 0; }
atom(A) ::= LBRACKET(T) elems(L) RBRACKET(E). { A = L; A->loc = T.loc; A->end_line = E.loc.line; }
