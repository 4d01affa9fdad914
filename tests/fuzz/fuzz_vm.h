/*
 * fuzz_vm.h - shared by fuzz_compile.c and fuzz_bc_verify.c: runs every
 * stage of a program that has code on a small fixed message, with tight
 * budgets, the way the servers do (no message before 'data'), then
 * finalizes and prints every action. Any sanitizer report here is a bug in
 * the verifier or the VM: a program that got this far was accepted.
 */
#ifndef HK_FUZZ_VM_H
#define HK_FUZZ_VM_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ast.h"
#include "bytecode.h"
#include "message.h"
#include "program.h"
#include "vm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fuzz_message[] =
    "Return-Path: <hanako@friend.example.com>\r\n"
    "Received: from mx.friend.example.com by mx.example.jp; Mon, 2 Nov 2026 10:00:00 +0900\r\n"
    "Received: from client by mx.friend.example.com; Mon, 2 Nov 2026 09:59:58 +0900\r\n"
    "From: =?UTF-8?B?6Iqx5a2Q?= <hanako@friend.example.com>\r\n"
    "To: Taro <taro@example.jp>, team@lists.example.org\r\n"
    "Cc: jiro@example.jp\r\n"
    "Reply-To: hanako+reply@friend.example.com\r\n"
    "Subject: =?ISO-2022-JP?B?GyRCJDMkcyRLJEEkTxsoQg==?= invoice [URGENT]\r\n"
    "X-Priority: 1\r\n"
    "X-Spam-Flag: YES\r\n"
    "List-Id: Team <team.lists.example.org>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=\"b1\"\r\n"
    "\r\n"
    "--b1\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "\r\n"
    "Hello Taro, the invoice is attached. aaaaaaaaaaaaaaaaaaaaaaaaaaaaaab =E3=81=82\r\n"
    "--b1\r\n"
    "Content-Type: application/pdf; name=\"invoice.pdf\"\r\n"
    "Content-Disposition: attachment; filename*=UTF-8''%E8%AB%8B%E6%B1%82.pdf\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "JVBERi0xLjQKJcOkw7zDtsOfCjIgMCBvYmoKPDwvTGVuZ3RoIDMgMCBSPj4Kc3RyZWFtCg==\r\n"
    "--b1--\r\n";

static bool
fuzz_replied(void *ctx, struct hk_str recipient, struct hk_str sender, int64_t interval)
{
	(void)ctx;
	(void)recipient;
	return interval > 86400 && sender.len % 2 == 0;
}

/* Trace hooks that look things up the way `hikyaku test --trace` does. */
static void
fuzz_tr_rule(void *ctx, const struct hk_program *p, unsigned rule)
{
	size_t *sum = ctx;
	const struct hk_rule_info *r = &p->rules[rule];
	*sum += r->name_len + r->line;
	if (r->name_len)
		*sum += (unsigned char)p->strpool[r->name_off];
	const struct hk_file_info *f = &p->files[r->file];
	if (f->len)
		*sum += (unsigned char)p->strpool[f->off + f->len - 1];
}

static void
fuzz_tr_pc(size_t *sum, const struct hk_program *p, uint32_t pc)
{
	const struct hk_line_info *li = hk_program_line(p, pc);
	if (li == NULL)
		return;
	const struct hk_file_info *f = &p->files[li->file];
	*sum += li->line + li->col + f->len;
}

static void
fuzz_tr_test(void *ctx, const struct hk_program *p, uint32_t pc, bool result)
{
	fuzz_tr_pc(ctx, p, pc);
	*(size_t *)ctx += result;
}

static void
fuzz_tr_action(void *ctx, const struct hk_program *p, uint32_t pc, const struct hk_action *a)
{
	fuzz_tr_pc(ctx, p, pc);
	*(size_t *)ctx += a->kind;
}

/* Runs every stage with code; `empty` uses an empty message instead. */
static void
fuzz_run_program(const struct hk_program *p, bool empty)
{
	struct hk_message *msg = empty ? hk_message_new("", 0, NULL)
	                               : hk_message_new(fuzz_message, sizeof(fuzz_message) - 1, NULL);
	static const struct hk_str rcpts[] = { HK_STR("taro@example.jp"), HK_STR("jiro@example.jp") };
	struct hk_env env;
	hk_env_init(&env);
	env.env_from = HK_STR("hanako@friend.example.com");
	env.env_to = rcpts;
	env.n_env_to = 2;
	env.recipient = rcpts[0];
	env.client_ip = HK_STR("192.0.2.10");
	env.client_helo = HK_STR("mx.friend.example.com");
	env.client_name = HK_STR("mx.friend.example.com");
	env.auth_user = HK_STR("");
	env.tls = true;
	env.spf = 1; /* fail */
	env.age = 100 * 86400;
	env.seen = true;
	env.folder = HK_STR("INBOX/Old");
	env.plan_name = HK_STR("standard");
	env.plan_retention = 90 * 86400;
	env.plan_max_size = 25 << 20;
	env.plan_quota = 1 << 30;
	env.now = 1793000000;

	struct hk_vm_limits lim;
	hk_vm_limits_for_layer(&lim, p->layer);
	/* tight budgets: the fuzzer must stay fast, and the budget paths
	 * are exercised too */
	lim.max_steps = 20000;
	lim.max_memory = 64 * 1024;
	lim.match_limit = 20000;

	size_t sum = 0;
	struct hk_trace tr = { &sum, fuzz_tr_rule, fuzz_tr_test, fuzz_tr_action };
	struct hk_policy pol = { NULL, fuzz_replied };
	for (int st = 0; st < HK_STAGES; st++) {
		if (p->entry[st] == HK_NO_ENTRY)
			continue;
		env.stage = st;
		struct hk_result res;
		hk_result_init(&res);
		struct hk_message *m = st >= STAGE_DATA ? msg : NULL;
		(void)hk_vm_run(p, st, m, &env, &res, &lim, (st & 1) ? &tr : NULL);
		struct hk_final fin;
		hk_result_finalize(&res, m, &env, &pol, &fin);
		struct hk_buf b;
		buf_init(&b);
		for (size_t i = 0; i < fin.n; i++) {
			hk_action_format(&fin.acts[i], &env, &b);
			buf_addc(&b, '\n');
		}
		buf_fini(&b);
		hk_result_fini(&res);
	}
	hk_message_free(&msg);
	if (sum == (size_t)-1)
		abort(); /* keeps the trace sums alive */
}

#endif
