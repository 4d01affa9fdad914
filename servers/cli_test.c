/*
 * cli_test.c - `hikyaku test`, the dry-run tester. Nothing is sent or
 * stored: the program runs exactly as the servers would run it, then the
 * final actions are printed in the language's own words, one per line.
 *
 *   hikyaku test FILE                  runs the file's `test` blocks,
 *                                      ends with "N passed, N failed"
 *   hikyaku test FILE MSG.eml...       what would happen to each message
 *        [--from A] [--to A]... [--spf R] [--stage S] [--trace] [--json]
 */
#include <errno.h>
#include <jansson.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "compose.h"
#include "message.h"
#include "vm.h"

#define HK_MAX_MESSAGE_FILE (64u << 20)

#define MAX_LAYERS 8

struct tester {
	struct hk_unit *u;       /* the file under test (the last layer) */
	struct hk_program *prog;
	/* layers run before it (--before FILE), then prog */
	struct hk_unit *units[MAX_LAYERS];
	struct diag diags[MAX_LAYERS];
	struct hk_program *progs[MAX_LAYERS];
	size_t nlayers;
	bool trace, json, mail;
	struct hk_buf tracebuf;   /* text trace of the current run */
	json_t *jtrace;           /* JSON trace of the current run */
	/* the reply log of the dry run: senders already answered */
	struct hk_str replied[16];
	size_t nreplied;
};

/* --- trace ------------------------------------------------------------------ */

/* The unit a program was compiled from (for source lines in traces). */
static const struct hk_unit *
unit_of(const struct tester *t, const struct hk_program *p)
{
	for (size_t i = 0; i < t->nlayers; i++)
		if (t->progs[i] == p)
			return t->units[i];
	return t->u;
}

static struct hk_str
source_line(const struct hk_unit *u, unsigned file, unsigned line)
{
	if (file >= u->diag->nfiles)
		return (struct hk_str){ "", 0 };
	const struct src_file *f = &u->diag->files[file];
	const char *p = f->text, *end = f->text + f->len;
	for (unsigned l = 1; l < line && p < end; l++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		p = nl ? nl + 1 : end;
	}
	const char *nl = memchr(p, '\n', (size_t)(end - p));
	const char *le = nl ? nl : end;
	while (p < le && (*p == ' ' || *p == '\t'))
		p++;
	while (le > p && (le[-1] == '\r' || le[-1] == ' '))
		le--;
	return (struct hk_str){ p, (size_t)(le - p) };
}

static void
tr_rule(void *ctx, const struct hk_program *p, unsigned rule)
{
	struct tester *t = ctx;
	const struct hk_rule_info *r = &p->rules[rule];
	const struct hk_file_info *f = &p->files[r->file];
	if (t->json) {
		json_array_append_new(t->jtrace, json_pack("{s:s, s:s%, s:s%, s:i}", "event", "rule", "rule",
		    p->strpool + r->name_off, (size_t)r->name_len, "file", p->strpool + f->off, (size_t)f->len, "line", (int)r->line));
		return;
	}
	buf_printf(&t->tracebuf, "#   rule \"%.*s\" (%.*s:%u)\n", (int)r->name_len, p->strpool + r->name_off, (int)f->len,
	    p->strpool + f->off, r->line);
}

static void
tr_test(void *ctx, const struct hk_program *p, uint32_t pc, bool result)
{
	struct tester *t = ctx;
	const struct hk_line_info *li = hk_program_line(p, pc);
	if (li == NULL)
		return;
	const struct hk_unit *u = unit_of(t, p);
	struct hk_str src = source_line(u, li->file, li->line);
	/* from the test's column to the end of the line */
	const char *line_start = src.ptr;
	if (li->file < u->diag->nfiles) {
		const struct src_file *sf = &u->diag->files[li->file];
		const char *q = src.ptr;
		while (q > sf->text && q[-1] != '\n')
			q--;
		line_start = q;
	}
	if (li->col >= 1 && line_start + li->col - 1 > src.ptr && line_start + li->col - 1 <= src.ptr + src.len) {
		size_t skip = (size_t)(line_start + li->col - 1 - src.ptr);
		src.ptr += skip;
		src.len -= skip;
	}
	/* a rule's condition line ends with its opening brace */
	while (src.len && (src.ptr[src.len - 1] == '{' || src.ptr[src.len - 1] == ' '))
		src.len--;
	const struct hk_file_info *f = &p->files[li->file];
	if (t->json) {
		json_array_append_new(t->jtrace, json_pack("{s:s, s:s%, s:i, s:i, s:s%, s:b}", "event", "test", "file",
		    p->strpool + f->off, (size_t)f->len, "line", (int)li->line, "col", (int)li->col, "source", src.ptr, src.len, "result",
		    result));
		return;
	}
	buf_printf(&t->tracebuf, "#     %.*s:%u:%u %s: %.*s\n", (int)f->len, p->strpool + f->off, li->line, li->col,
	    result ? "true " : "false", (int)src.len, src.ptr);
}

static void
tr_action(void *ctx, const struct hk_program *p, uint32_t pc, const struct hk_action *a)
{
	struct tester *t = ctx;
	const struct hk_line_info *li = hk_program_line(p, pc);
	if (li == NULL || t->json)
		return;
	const struct hk_file_info *f = &p->files[li->file];
	struct hk_str src = source_line(unit_of(t, p), li->file, li->line);
	(void)a;
	buf_printf(&t->tracebuf, "#     %.*s:%u:%u action: %.*s\n", (int)f->len, p->strpool + f->off, li->line, li->col,
	    (int)src.len, src.ptr);
}

static bool
replied_recently(void *ctx, struct hk_str recipient, struct hk_str sender, int64_t interval)
{
	struct tester *t = ctx;
	(void)recipient;
	(void)interval;
	for (size_t i = 0; i < t->nreplied; i++)
		if (str_ieq(t->replied[i], sender))
			return true;
	return false;
}

/* Runs one stage for one recipient and finalizes. */
static enum hk_vm_status
run_stage(struct tester *t, int stage, struct hk_message *msg, struct hk_env *env, struct hk_result *res, struct hk_final *fin)
{
	struct hk_trace tr = { t, tr_rule, tr_test, tr_action };
	env->stage = stage;
	hk_result_init(res);
	buf_reset(&t->tracebuf);
	t->progs[t->nlayers] = t->prog;
	enum hk_vm_status st = hk_vm_run_layers(t->progs, t->nlayers + 1, stage, msg, env, res, t->trace ? &tr : NULL);
	struct hk_policy pol = { t, replied_recently };
	hk_result_finalize(res, msg, env, &pol, fin);
	return st;
}

static json_t *
action_json(const struct hk_program *p, const struct hk_action *a, const struct hk_env *env)
{
	struct hk_buf b;
	buf_init(&b);
	hk_action_format(a, env, &b);
	json_t *o = json_pack("{s:s}", "action", b.data);
	buf_fini(&b);
	if (a->rule != 0xFFFF && a->prog && a->rule < a->prog->nrules) {
		const struct hk_rule_info *r = &a->prog->rules[a->rule];
		json_object_set_new(o, "rule", json_stringn(a->prog->strpool + r->name_off, r->name_len));
		json_object_set_new(o, "line", json_integer(r->line));
	} else if (a->kind == ACT_KEEP && a->prog == NULL) {
		json_object_set_new(o, "implicit", json_true());
	}
	if (a->suppressed)
		json_object_set_new(o, "suppressed", json_string(a->suppressed));
	(void)p;
	return o;
}

/* With --mail: the message an action would send or store, as comment
 * lines under the action. */
static void
print_mail(struct hk_message *msg, const struct hk_env *env, const struct hk_action *a)
{
	struct hk_compose_ctx c = { HK_STR("mail.example.jp"), env->now };
	struct hk_buf m;
	buf_init(&m);
	if (a->kind == ACT_NOTIFY)
		hk_compose_notice(msg, env, a, &c, &m);
	else if (a->kind == ACT_REPLY)
		hk_compose_reply(msg, env, a, &c, &m);
	else if (a->kind == ACT_REJECT)
		hk_compose_rejected(msg, env, a, &c, &m);
	const char *p = m.data, *end = m.data + m.len;
	while (p && p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		size_t n = (size_t)(le - p);
		if (n && p[n - 1] == '\r')
			n--;
		printf("#   | %.*s\n", (int)n, p);
		p = nl ? nl + 1 : end;
	}
	buf_fini(&m);
}

static void
print_final(struct tester *t, const struct hk_final *fin, const struct hk_env *env, const struct hk_result *res,
    struct hk_message *msg)
{
	struct hk_buf b;
	buf_init(&b);
	for (size_t i = 0; i < fin->n; i++) {
		const struct hk_action *a = &fin->acts[i];
		buf_reset(&b);
		hk_action_format(a, env, &b);
		if (a->suppressed)
			printf("# suppressed: %s (%s)\n", b.data, a->suppressed);
		else
			printf("%s\n", b.data);
		if (t->mail && !a->suppressed && (a->kind == ACT_NOTIFY || a->kind == ACT_REPLY || a->kind == ACT_REJECT))
			print_mail(msg, env, a);
	}
	if (res->error)
		printf("# %s\n", res->error);
	buf_fini(&b);
	(void)t;
}

/* --- dry run of message files ------------------------------------------------ */

struct msg_opts {
	const char *from;
	const char **to;
	int nto;
	int spf;
	int stage; /* -1: the whole pipeline */
};

static void
addr_list_from_header(struct hk_message *m, const char *h, struct hk_str **out, size_t *n)
{
	const struct hk_address *a;
	size_t k = hk_message_addresses(m, h, strlen(h), &a);
	for (size_t i = 0; i < k && *n < 50; i++)
		if (a[i].addr.len)
			(*out)[(*n)++] = a[i].addr;
}

static int
dry_run(struct tester *t, const char *path, const struct msg_opts *mo, json_t *jall)
{
	char *raw;
	size_t len;
	if (read_file(path, HK_MAX_MESSAGE_FILE, &raw, &len) < 0) {
		fprintf(stderr, "hikyaku: cannot read %s: %s\n", path, errno == EFBIG ? "file too large" : strerror(errno));
		return 1;
	}
	struct hk_message_limits lim;
	hk_message_limits_default(&lim);
	struct hk_message *msg = hk_message_new(raw, len, &lim);

	struct hk_env env;
	hk_env_init(&env);
	env.now = (int64_t)time(NULL);
	env.client_ip = HK_STR("192.0.2.10");
	env.client_helo = HK_STR("client.example.net");
	env.spf = mo->spf;
	env.plan_name = HK_STR("standard");
	struct hk_str *rcpts = xcalloc(64, sizeof(*rcpts));
	size_t nrcpt = 0;
	for (int i = 0; i < mo->nto && nrcpt < 64; i++)
		rcpts[nrcpt++] = (struct hk_str){ mo->to[i], strlen(mo->to[i]) };
	if (nrcpt == 0) {
		addr_list_from_header(msg, "To", &rcpts, &nrcpt);
		addr_list_from_header(msg, "Cc", &rcpts, &nrcpt);
	}
	if (nrcpt == 0)
		rcpts[nrcpt++] = HK_STR("user@example.jp");
	if (mo->from) {
		env.env_from = (struct hk_str){ mo->from, strlen(mo->from) };
	} else {
		const struct hk_address *a;
		size_t k = hk_message_addresses(msg, "Return-Path", 11, &a);
		if (k == 0)
			k = hk_message_addresses(msg, "From", 4, &a);
		env.env_from = k ? a[0].addr : HK_STR("sender@example.org");
	}
	env.env_to = rcpts;
	env.n_env_to = nrcpt;

	if (!t->json)
		printf("# %s\n", path);
	bool refused = false;
	int first = mo->stage >= 0 ? mo->stage : STAGE_CONNECT;
	int last = mo->stage >= 0 ? mo->stage : STAGE_DELIVER;
	bool *rcpt_ok = xcalloc(nrcpt, sizeof(bool));
	for (size_t i = 0; i < nrcpt; i++)
		rcpt_ok[i] = true;
	for (int st = first; st <= last && !refused; st++) {
		bool any = false;
		for (size_t l = 0; l < t->nlayers; l++)
			any |= t->progs[l]->entry[st] != HK_NO_ENTRY;
		if (!any && t->prog->entry[st] == HK_NO_ENTRY && mo->stage < 0 && st != STAGE_DELIVER)
			continue;
		bool per_rcpt = st == STAGE_RCPT || st == STAGE_DELIVER || st == STAGE_RETENTION;
		size_t runs = per_rcpt ? nrcpt : 1;
		for (size_t i = 0; i < runs; i++) {
			if (per_rcpt && !rcpt_ok[i])
				continue;
			env.recipient = per_rcpt ? rcpts[i] : (struct hk_str){ "", 0 };
			struct hk_result res;
			struct hk_final fin;
			t->jtrace = json_array();
			bool needs_msg = st >= STAGE_DATA;
			run_stage(t, st, needs_msg ? msg : NULL, &env, &res, &fin);
			bool refusal = false;
			for (size_t k = 0; k < fin.n; k++)
				if ((fin.acts[k].kind == ACT_REFUSE || fin.acts[k].kind == ACT_TEMPFAIL) && !fin.acts[k].suppressed)
					refusal = true;
			bool show = st == STAGE_DELIVER || st == STAGE_RETENTION || mo->stage >= 0 || fin.n > 0 || t->trace;
			if (t->json) {
				json_t *o = json_pack("{s:s, s:s, s:s%}", "message", path, "stage", ast_stage_name(st), "recipient",
				    env.recipient.ptr ? env.recipient.ptr : "", env.recipient.len);
				json_t *acts = json_array();
				for (size_t k = 0; k < fin.n; k++)
					json_array_append_new(acts, action_json(t->prog, &fin.acts[k], &env));
				json_object_set_new(o, "actions", acts);
				if (res.error)
					json_object_set_new(o, "error", json_string(res.error));
				if (t->trace)
					json_object_set(o, "trace", t->jtrace);
				if (show)
					json_array_append(jall, o);
				json_decref(o);
			} else if (show) {
				if (per_rcpt)
					printf("# %s for %.*s\n", ast_stage_name(st), (int)env.recipient.len, env.recipient.ptr);
				else
					printf("# %s\n", ast_stage_name(st));
				if (t->trace)
					fputs(t->tracebuf.data ? t->tracebuf.data : "", stdout);
				print_final(t, &fin, &env, &res, needs_msg ? msg : NULL);
				if (st < STAGE_DELIVER && !refusal && fin.n == 0)
					printf("# accepted\n");
			}
			json_decref(t->jtrace);
			t->jtrace = NULL;
			if (refusal) {
				if (st == STAGE_RCPT)
					rcpt_ok[i] = false;
				else
					refused = true;
			}
			hk_result_fini(&res);
		}
	}
	free(rcpt_ok);
	free(rcpts);
	hk_message_free(&msg);
	free(raw);
	return 0;
}

/* --- test blocks ------------------------------------------------------------------ */

static const struct ast *
deref(const struct ast *v)
{
	while (v && ((v->kind == AST_NAME && v->resolved) || v->kind == AST_PAREN))
		v = v->kind == AST_PAREN ? v->a : v->resolved;
	return v;
}

/* Appends the constant strings of a value (string or list) to out. */
static void
strings_of(const struct ast *v, struct hk_str *out, size_t *n, size_t cap)
{
	v = deref(v);
	if (v == NULL)
		return;
	if (v->kind == AST_LIST) {
		for (const struct ast *e = v->list; e; e = e->next)
			strings_of(e, out, n, cap);
		return;
	}
	if ((v->kind == AST_STR || v->kind == AST_NAME) && *n < cap)
		out[(*n)++] = v->str;
}

struct expect_item {
	int kind;
	struct hk_str key;
	int64_t num;
	bool suppressed;
	bool matched;
};

static bool
action_matches(const struct hk_action *a, const struct expect_item *e, const struct hk_env *env)
{
	if (a->kind != e->kind)
		return false;
	switch (a->kind) {
	case ACT_FILEINTO:
	case ACT_EXPAND:
	case ACT_FLAG:
	case ACT_ADD_HEADER:
	case ACT_REMOVE_HEADER:
	case ACT_LOG:
		return e->key.ptr == NULL || str_eq(a->arg[0], e->key);
	case ACT_FORWARD:
	case ACT_NOTIFY:
		return e->key.ptr == NULL || str_ieq(a->arg[0], e->key);
	case ACT_REPLY:
		return e->key.ptr == NULL || str_ieq(hk_reply_target(env), e->key);
	case ACT_REFUSE:
	case ACT_TEMPFAIL:
		return e->num == 0 || a->num == e->num;
	default:
		return true;
	}
}

static void
expect_format(const struct expect_item *e, struct hk_buf *b)
{
	struct hk_action a;
	memset(&a, 0, sizeof(a));
	a.kind = (uint8_t)e->kind;
	a.arg[0] = e->key.ptr ? e->key : HK_STR("");
	a.num = e->num;
	if (e->kind == ACT_REPLY) {
		buf_adds(b, e->key.ptr ? "reply to " : "reply");
		if (e->key.ptr)
			buf_add(b, e->key.ptr, e->key.len);
		return;
	}
	if (e->kind == ACT_REFUSE || e->kind == ACT_TEMPFAIL) {
		buf_adds(b, ast_action_name(e->kind));
		if (e->num)
			buf_printf(b, " %lld", (long long)e->num);
		return;
	}
	struct hk_env env;
	hk_env_init(&env);
	hk_action_format(&a, &env, b);
}

static int
run_test_block(struct tester *t, const struct ast *test, const char *dir)
{
	struct hk_env env;
	hk_env_init(&env);
	env.now = (int64_t)time(NULL);
	env.client_ip = HK_STR("192.0.2.10");
	env.client_helo = HK_STR("client.example.net");
	env.plan_name = HK_STR("standard");
	int stage = STAGE_DELIVER;
	struct hk_str to[64];
	size_t nto = 0;
	char *raw = NULL;
	size_t rawlen = 0;
	struct expect_item ex[64];
	size_t nex = 0;
	t->nreplied = 0;
	const char *fail = NULL;
	struct hk_buf why;
	buf_init(&why);

	for (const struct ast *s = test->list; s; s = s->next) {
		if (s->kind == AST_EXPECT) {
			if (nex >= HK_ARRAY_LEN(ex))
				continue;
			const struct ast *a = s->a;
			struct hk_str vals[32];
			size_t nv = 0;
			for (const struct ast *v = a->list; v; v = v->next)
				strings_of(v, vals, &nv, 32);
			struct expect_item base = { a->op, { NULL, 0 }, 0, s->op == 1, false };
			if (a->op == ACT_REFUSE || a->op == ACT_TEMPFAIL) {
				if (a->a)
					base.num = a->a->num;
				nv = 0;
			}
			if (a->op == ACT_REPLY) {
				nv = 0; /* reply options are not compared */
			}
			if (nv == 0) {
				ex[nex++] = base;
			} else if (a->op == ACT_FORWARD || a->op == ACT_NOTIFY) {
				for (size_t i = 0; i < nv && nex < HK_ARRAY_LEN(ex); i++) {
					ex[nex] = base;
					ex[nex++].key = vals[i];
				}
			} else {
				ex[nex] = base;
				ex[nex++].key = vals[0];
			}
			continue;
		}
		struct hk_str verb = s->str;
		const struct ast *a1 = s->list ? deref(s->list) : NULL;
		if (str_ieq_cstr(verb, "message")) {
			if (a1 && a1->kind == AST_NAME && str_ieq_cstr(a1->str, "file") && s->list->next) {
				const struct ast *pv = deref(s->list->next);
				char *p = pv->str.ptr[0] == '/' ? xasprintf("%.*s", (int)pv->str.len, pv->str.ptr)
				    : xasprintf("%s/%.*s", dir, (int)pv->str.len, pv->str.ptr);
				free(raw);
				raw = NULL;
				if (read_file(p, HK_MAX_MESSAGE_FILE, &raw, &rawlen) < 0) {
					buf_printf(&why, "cannot read message %s: %s", p, strerror(errno));
					fail = "setup";
				}
				free(p);
			} else if (a1 && a1->kind == AST_STR) {
				free(raw);
				/* inline messages are written with LF; mail has CRLF */
				struct hk_buf m;
				buf_init(&m);
				for (size_t i = 0; i < a1->str.len; i++) {
					if (a1->str.ptr[i] == '\n' && (i == 0 || a1->str.ptr[i - 1] != '\r'))
						buf_addc(&m, '\r');
					buf_addc(&m, a1->str.ptr[i]);
				}
				if (m.len < 2 || m.data[m.len - 1] != '\n')
					buf_add(&m, "\r\n", 2);
				rawlen = m.len;
				raw = buf_steal(&m);
			}
		} else if (str_ieq_cstr(verb, "envelope")) {
			for (const struct ast *v = s->list; v; v = v->next) {
				const struct ast *w = deref(v);
				if (w->kind == AST_NAME && str_ieq_cstr(w->str, "from") && v->next) {
					v = v->next;
					env.env_from = deref(v)->str;
				} else if (w->kind == AST_NAME && str_ieq_cstr(w->str, "to") && v->next) {
					v = v->next;
					strings_of(v, to, &nto, 64);
				}
			}
		} else if (str_ieq_cstr(verb, "recipient") && a1) {
			env.recipient = a1->str;
		} else if (str_ieq_cstr(verb, "spf") && a1) {
			static const char *const w[] = { "pass", "fail", "softfail", "neutral", "none", "temperror", "permerror" };
			for (int i = 0; i < SPF_COUNT; i++)
				if (str_ieq_cstr(a1->str, w[i]))
					env.spf = i;
		} else if (str_ieq_cstr(verb, "client") || str_ieq_cstr(verb, "auth") || str_ieq_cstr(verb, "plan")) {
			for (const struct ast *v = s->list; v && v->next; v = v->next->next) {
				struct hk_str k = deref(v)->str;
				const struct ast *val = deref(v->next);
				if (str_ieq_cstr(verb, "client") && str_ieq_cstr(k, "ip")) env.client_ip = val->str;
				else if (str_ieq_cstr(verb, "client") && str_ieq_cstr(k, "helo")) env.client_helo = val->str;
				else if (str_ieq_cstr(verb, "client") && str_ieq_cstr(k, "name")) env.client_name = val->str;
				else if (str_ieq_cstr(verb, "auth") && str_ieq_cstr(k, "user")) env.auth_user = val->str;
				else if (str_ieq_cstr(verb, "plan") && str_ieq_cstr(k, "name")) env.plan_name = val->str;
				else if (str_ieq_cstr(verb, "plan") && str_ieq_cstr(k, "retention")) env.plan_retention = val->num;
				else if (str_ieq_cstr(verb, "plan") && str_ieq_cstr(k, "max_size")) env.plan_max_size = val->num;
				else if (str_ieq_cstr(verb, "plan") && str_ieq_cstr(k, "quota")) env.plan_quota = val->num;
			}
		} else if (str_ieq_cstr(verb, "tls")) {
			env.tls = a1 == NULL || a1->num != 0;
		} else if (str_ieq_cstr(verb, "stage") && a1) {
			stage = ast_stage_lookup(a1->str);
		} else if (str_ieq_cstr(verb, "age") && a1) {
			env.age = a1->num;
		} else if (str_ieq_cstr(verb, "seen")) {
			env.seen = a1 == NULL || a1->num != 0;
		} else if (str_ieq_cstr(verb, "flagged")) {
			env.flagged = a1 == NULL || a1->num != 0;
		} else if (str_ieq_cstr(verb, "folder") && a1) {
			env.folder = a1->str;
		} else if (str_ieq_cstr(verb, "replied")) {
			for (const struct ast *v = s->list; v && t->nreplied < HK_ARRAY_LEN(t->replied); v = v->next)
				t->replied[t->nreplied++] = deref(v)->str;
		}
	}
	if (env.env_from.ptr == NULL)
		env.env_from = HK_STR("sender@example.org");
	if (nto == 0)
		to[nto++] = env.recipient.len ? env.recipient : HK_STR("user@example.jp");
	env.env_to = to;
	env.n_env_to = nto;
	if (env.recipient.len == 0 && (stage == STAGE_RCPT || stage == STAGE_DELIVER || stage == STAGE_RETENTION))
		env.recipient = to[0];

	struct hk_message *msg = NULL;
	if (raw) {
		struct hk_message_limits lim;
		hk_message_limits_default(&lim);
		msg = hk_message_new(raw, rawlen, &lim);
	} else if (stage >= STAGE_DATA && !fail) {
		buf_adds(&why, "no message: add 'message file \"sample.eml\"' or 'message \"\"\"...\"\"\"'");
		fail = "setup";
	}

	struct hk_result res;
	struct hk_final fin;
	memset(&fin, 0, sizeof(fin));
	hk_result_init(&res);
	if (!fail) {
		hk_result_fini(&res);
		run_stage(t, stage, msg, &env, &res, &fin);
		/* every final action must be expected, every expectation met */
		for (size_t i = 0; i < fin.n; i++) {
			const struct hk_action *a = &fin.acts[i];
			bool found = false;
			for (size_t k = 0; k < nex; k++)
				if (!ex[k].matched && ex[k].suppressed == (a->suppressed != NULL) && action_matches(a, &ex[k], &env)) {
					ex[k].matched = true;
					found = true;
					break;
				}
			if (!found && !a->suppressed && a->kind != ACT_LOG) {
				struct hk_buf b;
				buf_init(&b);
				hk_action_format(a, &env, &b);
				buf_printf(&why, "%s    unexpected: %s", why.len ? "\n" : "", b.data);
				buf_fini(&b);
				fail = "mismatch";
			}
		}
		for (size_t k = 0; k < nex; k++)
			if (!ex[k].matched) {
				struct hk_buf b;
				buf_init(&b);
				expect_format(&ex[k], &b);
				buf_printf(&why, "%s    missing:    %s%s", why.len ? "\n" : "", ex[k].suppressed ? "suppressed " : "", b.data);
				buf_fini(&b);
				fail = "mismatch";
			}
		if (res.error) {
			buf_printf(&why, "%s    %s", why.len ? "\n" : "", res.error);
		}
	}
	const char *fname = t->u->diag->files[test->loc.file].name;
	if (fail) {
		printf("FAIL: test \"%.*s\" (%s:%u)\n", (int)test->str.len, test->str.ptr, fname, test->loc.line);
		if (why.len)
			printf("%s%s\n", strcmp(fail, "setup") == 0 ? "    " : "", why.data);
		if (fin.n) {
			printf("    got:\n");
			struct hk_buf b;
			buf_init(&b);
			for (size_t i = 0; i < fin.n; i++) {
				buf_reset(&b);
				hk_action_format(&fin.acts[i], &env, &b);
				printf("      %s%s%s%s\n", b.data, fin.acts[i].suppressed ? "  # suppressed: " : "",
				    fin.acts[i].suppressed ? fin.acts[i].suppressed : "", "");
			}
			buf_fini(&b);
		}
		if (t->trace)
			fputs(t->tracebuf.data ? t->tracebuf.data : "", stdout);
	} else {
		printf("PASS: test \"%.*s\"\n", (int)test->str.len, test->str.ptr);
		if (t->trace)
			fputs(t->tracebuf.data ? t->tracebuf.data : "", stdout);
	}
	hk_result_fini(&res);
	hk_message_free(&msg);
	free(raw);
	buf_fini(&why);
	return fail ? 1 : 0;
}

int
cmd_test(int argc, char **argv)
{
	struct hk_compile_opts o = { 0 };
	bool layer_set = false;
	struct tester t;
	memset(&t, 0, sizeof(t));
	buf_init(&t.tracebuf);
	struct msg_opts mo = { NULL, NULL, 0, SPF_NONE, -1 };
	mo.to = calloc((size_t)argc + 1, sizeof(char *));
	const char *file = NULL;
	const char **msgs = calloc((size_t)argc + 1, sizeof(char *));
	int nmsgs = 0, rc = 2;
	for (int i = 1; i < argc; i++) {
		int err = 0;
		const char *a = argv[i];
		if (cli_common_option(argc, argv, &i, &o, &layer_set, &err)) {
			if (err)
				goto out;
			continue;
		}
		if (strcmp(a, "--trace") == 0) {
			t.trace = true;
		} else if (strcmp(a, "--mail") == 0) {
			t.mail = true;
		} else if (strcmp(a, "--json") == 0) {
			t.json = true;
		} else if (strcmp(a, "--before") == 0) {
			if (i + 1 >= argc) {
				cli_usage_error("--before needs a rule FILE");
				goto out;
			}
			if (t.nlayers >= MAX_LAYERS - 1) {
				cli_usage_error("at most %d --before files", MAX_LAYERS - 1);
				goto out;
			}
			const char *lf = argv[++i];
			struct hk_compile_opts lo = o;
			lo.layer = cli_layer_for_path(lf);
			size_t k = t.nlayers++;
			diag_init(&t.diags[k]);
			t.units[k] = hk_unit_load(lf, &lo, &t.diags[k]);
			if (t.units[k] && t.diags[k].errors == 0)
				t.progs[k] = hk_unit_codegen(t.units[k]);
			if (t.diags[k].errors || t.progs[k] == NULL) {
				diag_print(&t.diags[k], stderr, cli_color());
				rc = 1;
				goto out;
			}
		} else if ((strcmp(a, "--from") == 0 || strcmp(a, "--to") == 0 || strcmp(a, "--spf") == 0 || strcmp(a, "--stage") == 0)) {
			if (i + 1 >= argc) {
				cli_usage_error("%s needs a value", a);
				goto out;
			}
			const char *v = argv[++i];
			if (strcmp(a, "--from") == 0) {
				mo.from = v;
			} else if (strcmp(a, "--to") == 0) {
				mo.to[mo.nto++] = v;
			} else if (strcmp(a, "--spf") == 0) {
				const char *const *w = sema_enum_words(FIELD_SPF);
				mo.spf = -1;
				for (int k = 0; w[k]; k++)
					if (strcmp(v, w[k]) == 0)
						mo.spf = k;
				if (mo.spf < 0) {
					cli_usage_error("--spf: unknown result '%s' (pass, fail, softfail, neutral, none, temperror, permerror)", v);
					goto out;
				}
			} else {
				mo.stage = ast_stage_lookup((struct hk_str){ v, strlen(v) });
				if (mo.stage < 0) {
					cli_usage_error("--stage: unknown stage '%s'", v);
					goto out;
				}
			}
		} else if (a[0] == '-' && a[1]) {
			cli_usage_error("unknown option '%s'", a);
			goto out;
		} else if (file == NULL) {
			file = a;
		} else {
			msgs[nmsgs++] = a;
		}
	}
	if (file == NULL) {
		cli_usage_error("test needs a FILE");
		goto out;
	}
	if (!layer_set)
		o.layer = cli_layer_for_path(file);
	struct diag d;
	diag_init(&d);
	t.u = hk_unit_load(file, &o, &d);
	if (t.u && d.errors == 0)
		t.prog = hk_unit_codegen(t.u);
	if (d.errors || t.prog == NULL) {
		diag_print(&d, stderr, cli_color());
		rc = 1;
		goto done;
	}
	if (d.warnings && !t.json)
		diag_print(&d, stderr, cli_color());
	if (nmsgs == 0) {
		if (t.u->tests.n == 0) {
			fprintf(stderr, "hikyaku: %s has no test blocks; give message files to dry-run\n", file);
			printf("0 passed, 0 failed\n");
			rc = 0;
			goto done;
		}
		char *dcopy = xstrdup(file);
		const char *dir = dirname(dcopy);
		unsigned passed = 0, failed = 0;
		for (size_t i = 0; i < t.u->tests.n; i++) {
			if (run_test_block(&t, t.u->tests.items[i], dir))
				failed++;
			else
				passed++;
		}
		free(dcopy);
		printf("%u passed, %u failed\n", passed, failed);
		rc = failed ? 1 : 0;
	} else {
		json_t *all = t.json ? json_array() : NULL;
		rc = 0;
		for (int i = 0; i < nmsgs; i++) {
			if (dry_run(&t, msgs[i], &mo, all))
				rc = 1;
		}
		if (t.json) {
			char *s = json_dumps(all, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
			printf("%s\n", s);
			free(s);
			json_decref(all);
		}
	}
done:
	hk_program_unref(&t.prog);
	hk_unit_free(&t.u);
	diag_fini(&d);
out:
	for (size_t k = 0; k < t.nlayers; k++) {
		hk_program_unref(&t.progs[k]);
		hk_unit_free(&t.units[k]);
		diag_fini(&t.diags[k]);
	}
	buf_fini(&t.tracebuf);
	free(mo.to);
	free(msgs);
	return rc;
}
