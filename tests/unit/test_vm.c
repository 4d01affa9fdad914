/*
 * test_vm.c - unit tests of the rule VM and the final decision
 * (runtime/vm.c, runtime/result.c): small scripts compiled from strings are
 * run against messages built in memory, then hk_result_finalize applies
 * implicit keep, duplicates, the forward cap and the auto-reply rules, and
 * the final actions are compared in their printed form (hk_action_format),
 * one per line, suppressed ones as "# suppressed: ACTION (REASON)" like
 * `hikyaku test` prints them.
 *
 * Run from the repository root (imports look in ./stdlib).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "compile.h"
#include "message.h"
#include "vm.h"

/* --- messages ------------------------------------------------------------------ */

static const char msg_invoice[] =
    "Return-Path: <hanako@friend.example.com>\r\n"
    "Received: from mx.friend.example.com by mx.example.jp; Mon, 2 Nov 2026 10:00:00 +0900\r\n"
    "Received: from client by mx.friend.example.com; Mon, 2 Nov 2026 09:59:58 +0900\r\n"
    "From: Hanako Yamada <hanako@friend.example.com>\r\n"
    "To: Taro <taro@example.jp>, team@lists.example.org\r\n"
    "Cc: Jiro <jiro@example.jp>\r\n"
    "Reply-To: hanako+reply@friend.example.com\r\n"
    "Subject: Invoice 2024-11 for Taro\r\n"
    "X-Spam-Score: 8.5\r\n"
    "X-Priority: 1\r\n"
    "Date: Mon, 2 Nov 2026 10:00:00 +0900\r\n"
    "Message-ID: <1@friend.example.com>\r\n"
    "\r\n"
    "Hello Taro, the invoice is attached.\r\n";

static const char msg_plain[] =
    "From: hanako@friend.example.com\n"
    "To: taro@example.jp\n"
    "Subject: lunch?\n"
    "\n"
    "Shall we?\n";

static const char msg_attachments[] =
    "From: =?UTF-8?B?5bGx55Sw6Iqx5a2Q?= <hanako@friend.example.com>\n"
    "To: Taro <taro@example.jp>\n"
    "Subject: files\n"
    "Importance: low\n"
    "MIME-Version: 1.0\n"
    "Content-Type: multipart/mixed; boundary=\"b1\"\n"
    "\n"
    "--b1\n"
    "Content-Type: text/plain; charset=utf-8\n"
    "\n"
    "See attached.\n"
    "--b1\n"
    "Content-Type: application/pdf; name=\"invoice.pdf\"\n"
    "Content-Disposition: attachment; filename=\"invoice.pdf\"\n"
    "Content-Transfer-Encoding: base64\n"
    "\n"
    "JVBERi0xLjQKJcOkw7zDtsOfCjIgMCBvYmoKPDwvTGVuZ3RoIDMgMCBSPj4Kc3RyZWFtCg==\n"
    "--b1\n"
    "Content-Type: application/octet-stream; name=\"setup.exe\"\n"
    "Content-Disposition: attachment; filename=\"setup.exe\"\n"
    "Content-Transfer-Encoding: base64\n"
    "\n"
    "TVqQAAMAAAAEAAAA\n"
    "--b1--\n";

/* --- fixture ---------------------------------------------------------------------- */

struct vt {
	struct hk_program *prog[4];
	size_t nprog;
	struct hk_message *msg;
	struct hk_env env;
	struct hk_str env_to[4];
	struct hk_result res;
	bool have_res;
	struct hk_final fin;
	enum hk_vm_status status[4];
	struct hk_buf out;
	/* the reply log the policy callback consults */
	const char *replied_sender;
	int policy_calls;
	struct hk_str policy_rcpt, policy_sender;
	int64_t policy_interval;
};

static int
setup(void **state)
{
	struct vt *t = calloc(1, sizeof(*t));
	hk_env_init(&t->env);
	t->env.stage = STAGE_DELIVER;
	t->env.env_from = HK_STR("hanako@friend.example.com");
	t->env.recipient = HK_STR("taro@example.jp");
	t->env_to[0] = t->env.recipient;
	t->env.env_to = t->env_to;
	t->env.n_env_to = 1;
	t->env.client_ip = HK_STR("192.0.2.25");
	t->env.client_helo = HK_STR("mx.friend.example.com");
	t->env.auth_user = HK_STR("");
	t->env.spf = SPF_PASS;
	t->env.now = 1790000000;
	buf_init(&t->out);
	*state = t;
	return 0;
}

static int
teardown(void **state)
{
	struct vt *t = *state;
	if (t->have_res)
		hk_result_fini(&t->res);
	hk_message_free(&t->msg);
	for (size_t i = 0; i < t->nprog; i++)
		hk_program_unref(&t->prog[i]);
	buf_fini(&t->out);
	free(t);
	return 0;
}

static struct hk_program *
compile_as(struct vt *t, const char *src, enum hk_layer layer)
{
	struct diag d;
	diag_init(&d);
	struct hk_compile_opts o = { .layer = layer, .stdlib_dir = "stdlib" };
	struct hk_unit *u = hk_unit_load_text("t.hk", src, strlen(src), &o, &d);
	struct hk_program *p = u && d.errors == 0 ? hk_unit_codegen(u) : NULL;
	if (p == NULL) {
		diag_print(&d, stdout, false);
		fail_msg("does not compile:\n%s", src);
	}
	hk_unit_free(&u);
	diag_fini(&d);
	t->prog[t->nprog++] = p;
	return p;
}

static void
set_message(struct vt *t, const char *raw)
{
	hk_message_free(&t->msg);
	t->msg = raw ? hk_message_new(raw, strlen(raw), NULL) : NULL;
}

static bool
replied_recently(void *ctx, struct hk_str recipient, struct hk_str sender, int64_t interval)
{
	struct vt *t = ctx;
	t->policy_calls++;
	t->policy_rcpt = recipient;
	t->policy_sender = sender;
	t->policy_interval = interval;
	return t->replied_sender && str_ieq_cstr(sender, t->replied_sender);
}

/* Runs the stage of every compiled program, in order, into one result. */
static void
run_all(struct vt *t, int stage)
{
	if (t->have_res)
		hk_result_fini(&t->res);
	hk_result_init(&t->res);
	t->have_res = true;
	t->env.stage = stage;
	for (size_t i = 0; i < t->nprog; i++) {
		struct hk_vm_limits lim;
		hk_vm_limits_for_layer(&lim, t->prog[i]->layer);
		t->status[i] = hk_vm_run(t->prog[i], stage, t->msg, &t->env, &t->res, &lim, NULL);
	}
}

/* Finalizes and prints the final actions, one per line. */
static const char *
finalize(struct vt *t)
{
	struct hk_policy pol = { t, replied_recently };
	hk_result_finalize(&t->res, t->msg, &t->env, &pol, &t->fin);
	buf_reset(&t->out);
	struct hk_buf b;
	buf_init(&b);
	for (size_t i = 0; i < t->fin.n; i++) {
		buf_reset(&b);
		hk_action_format(&t->fin.acts[i], &t->env, &b);
		if (t->fin.acts[i].suppressed)
			buf_printf(&t->out, "# suppressed: %s (%s)\n", b.data, t->fin.acts[i].suppressed);
		else
			buf_printf(&t->out, "%s\n", b.data);
	}
	buf_fini(&b);
	return t->out.data ? t->out.data : "";
}

/* Compiles `src` for `layer`, runs its deliver stage on `raw`, finalizes. */
static const char *
outcome(struct vt *t, const char *raw, const char *src, enum hk_layer layer)
{
	for (size_t i = 0; i < t->nprog; i++)
		hk_program_unref(&t->prog[i]);
	t->nprog = 0;
	compile_as(t, src, layer);
	set_message(t, raw);
	run_all(t, STAGE_DELIVER);
	return finalize(t);
}

/* --- comparisons ----------------------------------------------------------------------- */

struct cond_case {
	const char *cond;
	bool hit;
};

static void
check_conditions(struct vt *t, const char *raw, const struct cond_case *cases, size_t n)
{
	int failures = 0;
	for (size_t i = 0; i < n; i++) {
		char *src = xasprintf("on deliver {\n    rule \"r\" when %s {\n        fileinto \"Hit\"\n    }\n}\n", cases[i].cond);
		const char *got = outcome(t, raw, src, HK_LAYER_OPERATOR);
		const char *want = cases[i].hit ? "fileinto \"Hit\"\n" : "keep\n";
		if (strcmp(got, want) != 0 || t->status[0] != HK_VM_OK) {
			print_message("FAIL: when %s: want %s, got %s(status %d)\n", cases[i].cond, cases[i].hit ? "a hit" : "no hit", got,
			    (int)t->status[0]);
			failures++;
		}
		free(src);
	}
	assert_int_equal(failures, 0);
}

static void
test_vm_compare_text_operators_case_insensitive(void **state)
{
	static const struct cond_case cases[] = {
		{ "subject is \"invoice 2024-11 FOR taro\"", true },
		{ "subject is \"Invoice\"", false },
		{ "subject is not \"Invoice\"", true },
		{ "subject is not \"INVOICE 2024-11 for taro\"", false },
		{ "subject contains \"INVOICE\"", true },
		{ "subject contains \"2024-12\"", false },
		{ "subject contains \"\"", true },
		{ "subject starts with \"invoice 20\"", true },
		{ "subject starts with \"for\"", false },
		{ "subject ends with \"TARO\"", true },
		{ "subject ends with \"Tar\"", false },
		{ "subject in [\"x\", \"INVOICE 2024-11 FOR TARO\"]", true },
		{ "subject in [\"x\", \"invoice\"]", false },
		{ "subject not in [\"x\", \"y\"]", true },
		{ "subject not in [\"invoice 2024-11 for taro\"]", false },
		/* a list on the right: any element */
		{ "subject contains [\"nope\", \"INVOICE\"]", true },
		{ "subject contains [\"nope\", \"nada\"]", false },
		{ "subject starts with [\"x\", \"inv\"]", true },
		{ "subject ends with [\"x\", \"y\"]", false },
		{ "subject matches [\"*x\", \"*taro\"]", true },
		{ "subject is [\"a\", \"invoice 2024-11 for taro\"]", true },
		{ "subject is not [\"a\", \"invoice 2024-11 for taro\"]", false },
		{ "body contains \"INVOICE IS ATTACHED\"", true },
		{ "body contains \"receipt\"", false },
	};
	check_conditions(*state, msg_invoice, cases, HK_ARRAY_LEN(cases));
}

static void
test_vm_compare_glob_matches(void **state)
{
	static const struct cond_case cases[] = {
		{ "subject matches \"invoice*taro\"", true },
		{ "subject matches \"INVOICE 20?\?-11 *\"", true },
		{ "subject matches \"invoice 20?-11*\"", false },
		{ "subject matches \"*2024*\"", true },
		{ "subject matches \"*\"", true },
		{ "subject matches \"invoice\"", false }, /* the whole value must match */
		{ "subject matches \"*for taro\"", true },
		{ "subject matches \"*for taro?\"", false },
		{ "subject matches \"i*o*o*o\"", true }, /* backtracking over several stars */
		{ "subject matches \"i*o*o*o*x\"", false },
		{ "from matches \"*@*.example.com\"", true },
		{ "from matches \"hanako@friend.example.???\"", true },
		{ "from matches \"hanako@friend.example.??\"", false },
	};
	check_conditions(*state, msg_invoice, cases, HK_ARRAY_LEN(cases));
}

static void
test_vm_compare_regex(void **state)
{
	static const struct cond_case cases[] = {
		{ "subject ~ /^invoice \\d{4}-\\d\\d/i", true },
		{ "subject ~ /^invoice/", false }, /* regexes are case-sensitive without i */
		{ "subject ~ /^Invoice/", true },
		{ "subject !~ /^invoice/", true },
		{ "subject !~ /Taro$/", false },
		{ "from ~ /@friend\\.example\\.com$/", true },
		{ "to ~ /^team@/", true }, /* any of the To addresses */
		{ "to !~ /^team@/", false },
		{ "body ~ /hello\\s+taro/i", true },
		{ "body ~ /^Hello/m", true },
		{ "header \"Message-ID\" ~ /<\\d+@friend\\.example\\.com>/", true },
		{ "header \"X-Spam-Score\" ~ /^9/", false },
		{ "subject ~ /a\\/b/", false },
	};
	check_conditions(*state, msg_invoice, cases, HK_ARRAY_LEN(cases));
}

static void
test_vm_compare_addresses_any_of(void **state)
{
	static const struct cond_case cases[] = {
		{ "to is \"team@lists.example.org\"", true }, /* the second To address */
		{ "to is \"TARO@EXAMPLE.JP\"", true },
		{ "to is \"Taro\"", false },                    /* an address is compared as addr */
		{ "to is not \"team@lists.example.org\"", false }, /* negation of any-of: none is */
		{ "to is not \"nobody@example.jp\"", true },
		{ "to contains \"lists.example\"", true },
		{ "to ends with \".org\"", true },
		{ "to in [\"a@b.example\", \"team@lists.example.org\"]", true },
		{ "to not in [\"team@lists.example.org\"]", false },
		{ "cc is \"jiro@example.jp\"", true },
		{ "bcc is \"jiro@example.jp\"", false },
		{ "bcc is not \"jiro@example.jp\"", true }, /* no Bcc at all */
		{ "reply_to is \"hanako+reply@friend.example.com\"", true },
		{ "from is \"HANAKO@friend.example.com\"", true },
		{ "sender is \"hanako@friend.example.com\"", false },
		{ "from in [\"a@b.example\", \"hanako@friend.example.com\"]", true },
	};
	check_conditions(*state, msg_invoice, cases, HK_ARRAY_LEN(cases));
}

static void
test_vm_address_parts(void **state)
{
	static const struct cond_case cases[] = {
		{ "from.addr is \"hanako@friend.example.com\"", true },
		{ "from.local is \"hanako\"", true },
		{ "from.local starts with \"HANA\"", true },
		{ "from.domain is \"friend.example.com\"", true },
		{ "from.domain ends with \".example.com\"", true },
		{ "from.domain is \"example.com\"", false },
		{ "from.name is \"hanako yamada\"", true },
		{ "from.name contains \"Yamada\"", true },
		{ "to.domain is \"example.jp\"", true },
		{ "to.local is \"team\"", true },
		{ "to.name is \"Taro\"", true },
		{ "to.name is \"\"", true }, /* team@lists.example.org has no display name */
		{ "cc.name is \"jiro\"", true },
		{ "to.domain not in [\"example.jp\"]", false },
		{ "to.domain not in [\"example.com\"]", true },
	};
	check_conditions(*state, msg_invoice, cases, HK_ARRAY_LEN(cases));
}

static void
test_vm_address_name_decoded(void **state)
{
	static const struct cond_case cases[] = {
		{ "from.name is \"山田花子\"", true },
		{ "from.name contains \"花子\"", true },
		{ "from.name starts with \"=?UTF-8?\"", false },
	};
	check_conditions(*state, msg_attachments, cases, HK_ARRAY_LEN(cases));
}

static void
test_vm_compare_headers_and_numbers(void **state)
{
	static const struct cond_case cases[] = {
		{ "header \"X-Spam-Score\" > 8", true }, /* "8.5" is read as a number */
		{ "header \"X-Spam-Score\" >= 9", false },
		{ "header \"X-Spam-Score\" < 9", true },
		{ "header \"X-Spam-Score\" <= 8", false },
		{ "header \"x-spam-score\" is \"8.5\"", true }, /* header names are case-insensitive */
		{ "header \"Subject\" > 1", false },            /* not a number: never compares */
		{ "header \"Subject\" < 1", false },
		{ "has header \"X-SPAM-SCORE\"", true },
		{ "has header \"X-Nope\"", false },
		{ "not has header \"X-Nope\"", true },
		{ "header \"X-Nope\" is \"\"", false },  /* an absent header has no value */
		{ "header \"X-Nope\" is not \"x\"", true },
		{ "header \"Received\" contains \"mx.friend.example.com\"", true },
		{ "headers \"Received\" contains \"by mx.example.jp\"", true },
		{ "header \"X-Priority\" <= 2", true }, /* "1" */
		{ "hops is 2", true },
		{ "hops > 2", false },
		{ "size > 100", true },
		{ "size < 1K", true },
		{ "size in [1, 2, 3]", false },
		{ "priority is high", true }, /* X-Priority: 1 */
		{ "priority is \"HIGH\"", true },
		{ "priority in [low, normal]", false },
		{ "has attachment", false },
		{ "attachments.count is 0", true },
		{ "attachments.count > 0", false },
	};
	check_conditions(*state, msg_invoice, cases, HK_ARRAY_LEN(cases));
}

static void
test_vm_attachments(void **state)
{
	static const struct cond_case cases[] = {
		{ "has attachment", true },
		{ "attachments.count is 2", true },
		{ "attachments.count > 2", false },
		{ "attachments.name is \"INVOICE.PDF\"", true },
		{ "attachments.name ~ /\\.exe$/", true },
		{ "attachments.name ends with \".zip\"", false },
		{ "attachments.name matches \"*.pdf\"", true },
		{ "attachments.type is \"application/pdf\"", true },
		{ "attachments.type in [\"application/zip\", \"application/x-7z-compressed\"]", false },
		{ "attachments.size > 50", true },   /* the PDF decodes to 52 bytes */
		{ "attachments.size > 52", false },
		{ "attachments.size is 12", true },  /* the .exe */
		{ "attachments.size in [1, 12]", true },
		{ "attachment.name is \"setup.exe\"", true }, /* the alias */
		{ "priority is low", true },                   /* Importance: low */
		{ "body contains \"see attached\"", true },
	};
	check_conditions(*state, msg_attachments, cases, HK_ARRAY_LEN(cases));
}

static void
test_vm_attachment_policy_from_stdlib(void **state)
{
	struct vt *t = *state;
	const char *src = "import \"attachments\"\n"
			  "on deliver {\n"
			  "    rule \"exe\" when dangerous_attachment { reject \"no executables\" }\n"
			  "    rule \"zip\" when archive_attachment { fileinto \"Quarantine\" }\n"
			  "}\n";
	assert_string_equal(outcome(t, msg_attachments, src, HK_LAYER_DOMAIN), "reject \"no executables\"\n");
	assert_true(t->fin.rejected);
	assert_false(t->fin.keep_implicit);
	assert_string_equal(outcome(t, msg_invoice, src, HK_LAYER_DOMAIN), "keep\n");
	assert_false(t->fin.rejected);
	assert_true(t->fin.keep_implicit);
}

static void
test_vm_priority_normal_without_headers(void **state)
{
	static const struct cond_case cases[] = {
		{ "priority is normal", true },
		{ "priority is not high", true },
		{ "hops is 0", true },
		{ "subject is \"LUNCH?\"", true },
		{ "cc is \"x@y.example\"", false },
		{ "to.name is \"\"", true },
	};
	check_conditions(*state, msg_plain, cases, HK_ARRAY_LEN(cases));
}

static void
test_vm_envelope_and_session_fields(void **state)
{
	struct vt *t = *state;
	t->env_to[0] = HK_STR("jiro@example.jp");
	t->env_to[1] = HK_STR("Taro@Example.JP");
	t->env.n_env_to = 2;
	t->env.auth_user = HK_STR("taro");
	t->env.tls = true;
	t->env.plan_name = HK_STR("light");
	t->env.plan_max_size = 10 << 20;
	static const struct cond_case cases[] = {
		{ "envelope.from is \"hanako@friend.example.com\"", true },
		{ "envelope.from.domain is \"FRIEND.example.com\"", true },
		{ "envelope.from.local is \"hanako\"", true },
		{ "envelope.to is \"taro@example.jp\"", true }, /* any of the RCPT TO */
		{ "envelope.to.local is \"jiro\"", true },
		{ "envelope.to is not \"jiro@example.jp\"", false },
		{ "recipient is \"taro@example.jp\"", true },
		{ "recipient.domain is \"example.jp\"", true },
		{ "recipient in [\"jiro@example.jp\"]", false },
		{ "client.ip is \"192.0.2.25\"", true },
		{ "client.ip starts with \"192.0.2.\"", true },
		{ "client.helo ends with \"friend.example.com\"", true },
		{ "auth.user is \"taro\"", true },
		{ "tls", true },
		{ "not tls", false },
		{ "tls is true", true },
		{ "spf is pass", true },
		{ "spf in [fail, softfail]", false },
		{ "plan.name is \"light\"", true },
		{ "plan.max_size is 10M", true },
		{ "plan.max_size > size", true },
		{ "plan.quota > 0", false },
	};
	check_conditions(t, msg_invoice, cases, HK_ARRAY_LEN(cases));
}

static void
test_vm_boolean_logic_and_constants(void **state)
{
	static const struct cond_case cases[] = {
		{ "subject contains \"invoice\" and from.domain is \"friend.example.com\"", true },
		{ "subject contains \"invoice\" and from.domain is \"other.example\"", false },
		{ "subject contains \"nope\" or to is \"team@lists.example.org\"", true },
		{ "subject contains \"nope\" or to is \"nope@x.example\"", false },
		{ "not (subject contains \"nope\" or cc is \"nope@x.example\")", true },
		{ "(subject contains \"invoice\" or tls) and not has attachment", true },
		{ "true", true },
		{ "false or not false", true },
		{ "subject contains \"a\" and subject contains \"b\" or subject contains \"2024\"", true },
	};
	check_conditions(*state, msg_invoice, cases, HK_ARRAY_LEN(cases));
}

static void
test_vm_constants_from_stdlib(void **state)
{
	struct vt *t = *state;
	const char *src = "import \"mailtypes\"\n"
			  "on deliver {\n"
			  "    rule \"l\" when is_list_mail { fileinto \"Lists\" }\n"
			  "    rule \"a\" when is_automated { flag \"$Auto\" }\n"
			  "}\n";
	static const char list_msg[] = "From: news@lists.example.org\nTo: taro@example.jp\nList-Id: <news.lists.example.org>\nSubject: news\n\nx\n";
	assert_string_equal(outcome(t, list_msg, src, HK_LAYER_OPERATOR), "fileinto \"Lists\"\nflag \"$Auto\"\n");
	assert_string_equal(outcome(t, msg_plain, src, HK_LAYER_OPERATOR), "keep\n");
	t->env.env_from = HK_STR("");
	assert_string_equal(outcome(t, msg_plain, src, HK_LAYER_OPERATOR), "flag \"$Auto\"\nkeep\n");
}

/* --- interpolation, if/else ---------------------------------------------------------- */

static void
test_vm_interpolation(void **state)
{
	struct vt *t = *state;
	/* a literal ${ is written \${ */
	const char *src2 = "const team = \"Team\"\n"
			   "on deliver {\n"
			   "    rule \"r\" {\n"
			   "        fileinto \"${team}/${from.domain}\"\n"
			   "        add header \"X-Info\" \"${subject} (${size} bytes, ${hops} hops, spf ${spf}, ${priority})\"\n"
			   "        notify \"phone@docomo.example\" subject \"Mail from ${from.name}: ${subject}\"\n"
			   "        log \"to=${to} rcpt=${recipient.local} env=${envelope.from.domain} \\${x}\"\n"
			   "    }\n"
			   "}\n";
	char want[512];
	snprintf(want, sizeof(want),
	    "fileinto \"Team/friend.example.com\"\n"
	    "add header \"X-Info\" \"Invoice 2024-11 for Taro (%zu bytes, 2 hops, spf pass, high)\"\n"
	    "notify to phone@docomo.example subject \"Mail from Hanako Yamada: Invoice 2024-11 for Taro\"\n"
	    "log \"to=taro@example.jp rcpt=taro env=friend.example.com ${x}\"\n",
	    strlen(msg_invoice));
	assert_string_equal(outcome(t, msg_invoice, src2, HK_LAYER_OPERATOR), want);
}

static void
test_vm_interpolated_header_and_subject_stay_one_line(void **state)
{
	struct vt *t = *state;
	/* the subject decodes to "a\r\nBcc: x@evil.example": a header built
	 * from it must not gain a line */
	static const char raw[] = "From: a@b.example\nTo: taro@example.jp\n"
				  "Subject: =?UTF-8?B?YQ0KQmNjOiB4QGV2aWwuZXhhbXBsZQ==?=\n\nx\n";
	const char *src = "on deliver {\n"
			  "    rule \"r\" {\n"
			  "        add header \"X-Subject\" \"S: ${subject}\"\n"
			  "        notify \"p@docomo.example\" subject \"${subject}\"\n"
			  "        reply subject \"Re: ${subject}\" body \"You wrote: ${subject}\"\n"
			  "    }\n"
			  "}\n";
	outcome(t, raw, src, HK_LAYER_OPERATOR);
	assert_true(t->fin.n >= 3);
	const struct hk_action *add = &t->fin.acts[0], *notify = &t->fin.acts[1], *reply = &t->fin.acts[2];
	assert_int_equal(add->kind, ACT_ADD_HEADER);
	assert_int_equal(add->arg[1].len, strlen("S: a  Bcc: x@evil.example"));
	assert_memory_equal(add->arg[1].ptr, "S: a  Bcc: x@evil.example", add->arg[1].len);
	assert_int_equal(notify->kind, ACT_NOTIFY);
	assert_null(memchr(notify->arg[1].ptr, '\n', notify->arg[1].len));
	assert_null(memchr(notify->arg[1].ptr, '\r', notify->arg[1].len));
	assert_int_equal(reply->kind, ACT_REPLY);
	assert_null(memchr(reply->arg[0].ptr, '\n', reply->arg[0].len)); /* subject: one line */
	assert_non_null(memchr(reply->arg[1].ptr, '\n', reply->arg[1].len)); /* the body may have lines */
}

/* BUG: an interpolated string of more than 255 parts is cut silently:
 * codegen emits CONCAT with at most 255 operands (its count is a u8) and
 * drops the rest, so `log` with 300 ${subject} writes the subject 255
 * times. It should be a compile error or be concatenated in steps. */
static void
test_vm_long_interpolation_keeps_every_part(void **state)
{
	struct vt *t = *state;
	struct hk_buf src;
	buf_init(&src);
	buf_adds(&src, "on deliver {\n    rule \"r\" { log \"");
	for (int i = 0; i < 300; i++)
		buf_adds(&src, "${subject}");
	buf_adds(&src, "\" }\n}\n");
	outcome(t, msg_plain, src.data, HK_LAYER_OPERATOR);
	buf_fini(&src);
	assert_int_equal(t->fin.acts[0].kind, ACT_LOG);
	size_t want = 300 * strlen("lunch?");
	if (t->fin.acts[0].arg[0].len != want)
		print_message("log text is %zu bytes, want %zu\n", t->fin.acts[0].arg[0].len, want);
	assert_int_equal(t->fin.acts[0].arg[0].len, want);
}

static void
test_vm_if_else_chain(void **state)
{
	struct vt *t = *state;
	const char *src = "on deliver {\n"
			  "    rule \"sort\" {\n"
			  "        if size > 1M {\n"
			  "            fileinto \"Big\"\n"
			  "        } else if has attachment {\n"
			  "            fileinto \"Attachments\"\n"
			  "        } else if from.domain is \"friend.example.com\" and subject contains \"lunch\" {\n"
			  "            fileinto \"Friends\"\n"
			  "            if priority is high {\n"
			  "                flag \"\\\\Flagged\"\n"
			  "            }\n"
			  "        } else {\n"
			  "            fileinto \"Other\"\n"
			  "        }\n"
			  "        log \"done\"\n"
			  "    }\n"
			  "}\n";
	assert_string_equal(outcome(t, msg_attachments, src, HK_LAYER_OPERATOR), "fileinto \"Attachments\"\nlog \"done\"\n");
	assert_string_equal(outcome(t, msg_plain, src, HK_LAYER_OPERATOR), "fileinto \"Friends\"\nlog \"done\"\n");
	assert_string_equal(outcome(t, msg_invoice, src, HK_LAYER_OPERATOR), "fileinto \"Other\"\nlog \"done\"\n");
}

/* --- layers: skip and stop ------------------------------------------------------------ */

static void
test_vm_skip_ends_only_its_layer(void **state)
{
	struct vt *t = *state;
	compile_as(t,
	    "on deliver {\n"
	    "    rule \"a\" when subject contains \"invoice\" { fileinto \"Invoices\" skip }\n"
	    "    rule \"b\" { fileinto \"Never\" }\n"
	    "}\n",
	    HK_LAYER_DOMAIN);
	compile_as(t, "on deliver {\n    rule \"p\" { flag \"$Seen\" }\n}\n", HK_LAYER_PERSONAL);
	set_message(t, msg_invoice);
	run_all(t, STAGE_DELIVER);
	assert_int_equal(t->status[0], HK_VM_SKIP);
	assert_int_equal(t->status[1], HK_VM_OK);
	assert_false(t->res.stopped);
	assert_string_equal(finalize(t), "fileinto \"Invoices\"\nflag \"$Seen\"\n");
	assert_int_equal(t->fin.acts[0].layer, HK_LAYER_DOMAIN);
	assert_int_equal(t->fin.acts[1].layer, HK_LAYER_PERSONAL);
	assert_int_equal(t->fin.acts[0].rule, 0);
}

static void
test_vm_stop_ends_later_layers(void **state)
{
	struct vt *t = *state;
	compile_as(t,
	    "on deliver {\n"
	    "    rule \"a\" when subject contains \"invoice\" { fileinto \"Invoices\" stop }\n"
	    "    rule \"b\" { fileinto \"Never\" }\n"
	    "}\n",
	    HK_LAYER_DOMAIN);
	compile_as(t, "on deliver {\n    rule \"p\" { flag \"$Seen\" discard }\n}\n", HK_LAYER_PERSONAL);
	set_message(t, msg_invoice);
	run_all(t, STAGE_DELIVER);
	assert_int_equal(t->status[0], HK_VM_STOP);
	assert_int_equal(t->status[1], HK_VM_STOP); /* not run at all */
	assert_true(t->res.stopped);
	assert_string_equal(finalize(t), "fileinto \"Invoices\"\n");
	/* without the stop condition both layers run */
	set_message(t, msg_plain);
	run_all(t, STAGE_DELIVER);
	assert_int_equal(t->status[0], HK_VM_OK);
	assert_int_equal(t->status[1], HK_VM_OK);
	assert_string_equal(finalize(t), "fileinto \"Never\"\nflag \"$Seen\"\ndiscard\n");
}

static void
test_vm_stage_without_code(void **state)
{
	struct vt *t = *state;
	compile_as(t, "on deliver {\n    rule \"p\" { keep }\n}\n", HK_LAYER_OPERATOR);
	set_message(t, msg_plain);
	run_all(t, STAGE_DATA);
	assert_int_equal(t->status[0], HK_VM_NOCODE);
	assert_int_equal(t->res.n, 0);
	assert_string_equal(finalize(t), ""); /* no implicit keep outside deliver/retention */
	run_all(t, 99);
	assert_int_equal(t->status[0], HK_VM_NOCODE);
}

static void
test_vm_smtp_stage_without_message(void **state)
{
	struct vt *t = *state;
	compile_as(t,
	    "on mail {\n"
	    "    rule \"spf\" when spf is fail { refuse 550 \"5.7.23 SPF failed for ${envelope.from.domain}\" }\n"
	    "    rule \"tmp\" when spf is temperror { tempfail }\n"
	    "}\n"
	    "on data {\n"
	    "    rule \"hops\" when hops > 1 { add header \"X-Loop-Check\" \"${hops}\" }\n"
	    "}\n",
	    HK_LAYER_OPERATOR);
	t->env.spf = SPF_FAIL;
	run_all(t, STAGE_MAIL); /* no message before data */
	assert_int_equal(t->status[0], HK_VM_STOP);
	assert_true(t->res.stopped);
	assert_string_equal(finalize(t), "refuse 550 \"5.7.23 SPF failed for friend.example.com\"\n");
	assert_false(t->fin.keep_implicit);
	t->env.spf = SPF_TEMPERROR;
	run_all(t, STAGE_MAIL);
	assert_string_equal(finalize(t), "tempfail 451\n");
	t->env.spf = SPF_PASS;
	run_all(t, STAGE_MAIL);
	assert_int_equal(t->status[0], HK_VM_OK);
	assert_string_equal(finalize(t), "");
	set_message(t, msg_invoice);
	run_all(t, STAGE_DATA);
	assert_string_equal(finalize(t), "add header \"X-Loop-Check\" \"2\"\n");
}

static void
test_vm_retention_stage(void **state)
{
	struct vt *t = *state;
	compile_as(t, "import \"retention\"\n", HK_LAYER_OPERATOR);
	set_message(t, msg_plain);
	t->env.plan_name = HK_STR("light");
	t->env.plan_retention = 90 * 86400;
	t->env.age = 120 * 86400;
	t->env.flagged = true;
	t->env.folder = HK_STR("INBOX");
	run_all(t, STAGE_RETENTION);
	assert_string_equal(finalize(t), "expunge\n");
	t->env.plan_name = HK_STR("standard");
	run_all(t, STAGE_RETENTION);
	assert_string_equal(finalize(t), "keep\n");
	assert_true(t->fin.keep_implicit);
	t->env.plan_retention = 0;
	t->env.age = 31 * 86400;
	t->env.folder = HK_STR("Trash");
	run_all(t, STAGE_RETENTION);
	assert_string_equal(finalize(t), "expunge\n");
}

/* --- the final decision ----------------------------------------------------------------- */

static void
test_vm_implicit_keep_rules(void **state)
{
	struct vt *t = *state;
	static const struct {
		const char *actions, *want;
		bool implicit;
	} cases[] = {
		{ "log \"x\"", "log \"x\"\nkeep\n", true },
		{ "forward \"a@x.example\"", "forward to a@x.example\nkeep\n", true },
		{ "notify \"a@x.example\"", "notify to a@x.example\nkeep\n", true },
		{ "flag \"$Label\"", "flag \"$Label\"\nkeep\n", true },
		{ "add header \"X-A\" \"1\" remove header \"X-B\"", "add header \"X-A\" \"1\"\nremove header \"X-B\"\nkeep\n", true },
		{ "strip attachments", "strip attachments\nkeep\n", true },
		{ "fileinto \"Work\"", "fileinto \"Work\"\n", false },
		{ "discard", "discard\n", false },
		{ "reject", "reject\n", false },
		{ "reject \"go away\"", "reject \"go away\"\n", false },
		{ "expand list \"team\"", "expand list \"team\"\n", false },
		{ "keep fileinto \"Work\"", "keep\nfileinto \"Work\"\n", false },
		{ "fileinto \"Work\" keep", "fileinto \"Work\"\nkeep\n", false },
		{ "skip", "keep\n", true },
		{ "stop", "keep\n", true },
	};
	for (size_t i = 0; i < HK_ARRAY_LEN(cases); i++) {
		char *src = xasprintf("on deliver {\n    rule \"r\" { %s }\n}\n", cases[i].actions);
		const char *got = outcome(t, msg_plain, src, HK_LAYER_OPERATOR);
		if (strcmp(got, cases[i].want) != 0 || t->fin.keep_implicit != cases[i].implicit)
			fail_msg("{ %s }: got\n%s(implicit %d), want\n%s(implicit %d)", cases[i].actions, got, t->fin.keep_implicit,
			    cases[i].want, cases[i].implicit);
		free(src);
	}
}

static void
test_vm_duplicates_collapse(void **state)
{
	struct vt *t = *state;
	const char *src = "on deliver {\n"
			  "    rule \"a\" { fileinto \"Work\" forward \"A@X.example\" discard flag \"$L\" }\n"
			  "    rule \"b\" { fileinto \"Work\" forward \"a@x.EXAMPLE\" discard flag \"$L\" }\n"
			  "    rule \"c\" { fileinto \"work\" forward \"b@x.example\" flag \"$l\" }\n"
			  "}\n";
	assert_string_equal(outcome(t, msg_plain, src, HK_LAYER_OPERATOR),
	    "fileinto \"Work\"\n"
	    "forward to A@X.example\n"
	    "discard\n"
	    "flag \"$L\"\n"
	    "fileinto \"work\"\n" /* folder names are case-sensitive */
	    "forward to b@x.example\n"
	    "flag \"$l\"\n");
	/* the duplicates are marked in the result, and left out of the final list */
	size_t dups = 0;
	for (size_t i = 0; i < t->res.n; i++)
		if (t->res.acts[i].suppressed && strcmp(t->res.acts[i].suppressed, "duplicate") == 0)
			dups++;
	assert_int_equal(dups, 4);
}

static void
test_vm_duplicates_collapse_across_layers(void **state)
{
	struct vt *t = *state;
	compile_as(t, "on deliver {\n    rule \"d\" { fileinto \"Spam\" }\n}\n", HK_LAYER_DOMAIN);
	compile_as(t, "on deliver {\n    rule \"p\" { fileinto \"Spam\" keep }\n}\n", HK_LAYER_PERSONAL);
	set_message(t, msg_plain);
	run_all(t, STAGE_DELIVER);
	assert_string_equal(finalize(t), "fileinto \"Spam\"\nkeep\n");
	assert_int_equal(t->fin.acts[0].layer, HK_LAYER_DOMAIN);
	assert_false(t->fin.keep_implicit);
}

/* Values computed at run time get the checks the compiler gives
 * constants (f0b9752): a message must not choose a folder like "../x", a
 * flag with blanks, or a forward/notify/reply-from that is not an address. */
static void
test_vm_computed_values_checked_at_run_time(void **state)
{
	struct vt *t = *state;
	const char *src = "on deliver {\n"
			  "    rule \"r\" {\n"
			  "        fileinto \"Lists/${subject}\"\n"
			  "        flag \"$${subject}\"\n"
			  "        forward \"${subject}\"\n"
			  "        notify \"${subject}@docomo.example\"\n"
			  "        reply from \"${subject}\"\n"
			  "    }\n"
			  "}\n";
	static const char evil[] = "From: a@b.example\nTo: taro@example.jp\nSubject: ../../other user\n\nx\n";
	assert_string_equal(outcome(t, evil, src, HK_LAYER_OPERATOR),
	    "# suppressed: fileinto \"Lists/../../other user\" (not a valid folder name)\n"
	    "# suppressed: flag \"$../../other user\" (not a valid flag)\n"
	    "# suppressed: forward to ../../other user (not an e-mail address)\n"
	    "# suppressed: notify to ../../other user@docomo.example (not an e-mail address)\n"
	    "# suppressed: reply to hanako@friend.example.com (the reply sender is not an e-mail address)\n"
	    "keep\n"); /* nothing was filed: the implicit keep applies */
	assert_true(t->fin.keep_implicit);
	static const char good[] = "From: a@b.example\nTo: taro@example.jp\nSubject: jiro@example.jp\n\nx\n";
	assert_string_equal(outcome(t, good, src, HK_LAYER_OPERATOR),
	    "fileinto \"Lists/jiro@example.jp\"\n"
	    "flag \"$jiro@example.jp\"\n"
	    "forward to jiro@example.jp\n"
	    "# suppressed: notify to jiro@example.jp@docomo.example (not an e-mail address)\n"
	    "reply to hanako@friend.example.com\n");
}

/* fileinto "INBOX" (any case) is the same as keep (f0b9752). */
static void
test_vm_fileinto_inbox_is_keep(void **state)
{
	struct vt *t = *state;
	assert_string_equal(outcome(t, msg_plain, "on deliver {\n    rule \"r\" { fileinto \"INBOX\" }\n}\n", HK_LAYER_PERSONAL),
	    "fileinto \"INBOX\"\n");
	assert_false(t->fin.keep_implicit);
	assert_string_equal(outcome(t, msg_plain, "on deliver {\n    rule \"r\" { keep fileinto \"Inbox\" fileinto \"Work\" }\n}\n",
				HK_LAYER_PERSONAL),
	    "keep\nfileinto \"Work\"\n");
}

static void
test_vm_forward_cap_at_ten(void **state)
{
	struct vt *t = *state;
	const char *src = "on deliver {\n"
			  "    rule \"r\" { forward [\"f1@x.example\", \"f2@x.example\", \"f3@x.example\", \"f4@x.example\", \"f5@x.example\","
			  " \"f6@x.example\", \"f7@x.example\", \"f8@x.example\", \"f9@x.example\", \"taro@example.jp\", \"f10@x.example\","
			  " \"f11@x.example\", \"f12@x.example\"] }\n"
			  "}\n";
	assert_string_equal(outcome(t, msg_plain, src, HK_LAYER_OPERATOR),
	    "forward to f1@x.example\n"
	    "forward to f2@x.example\n"
	    "forward to f3@x.example\n"
	    "forward to f4@x.example\n"
	    "forward to f5@x.example\n"
	    "forward to f6@x.example\n"
	    "forward to f7@x.example\n"
	    "forward to f8@x.example\n"
	    "forward to f9@x.example\n"
	    "# suppressed: forward to taro@example.jp (forward to the mailbox itself would loop)\n"
	    "forward to f10@x.example\n"
	    "# suppressed: forward to f11@x.example (more than 10 forward targets)\n"
	    "# suppressed: forward to f12@x.example (more than 10 forward targets)\n"
	    "keep\n");
}

static void
test_vm_forward_cap_counts_over_layers(void **state)
{
	struct vt *t = *state;
	compile_as(t, "on deliver {\n    rule \"d\" { forward \"d1@x.example\", \"d2@x.example\", \"d3@x.example\", \"d4@x.example\", \"d5@x.example\", \"d6@x.example\" }\n}\n",
	    HK_LAYER_DOMAIN);
	compile_as(t, "on deliver {\n    rule \"p\" { forward [\"p1@x.example\", \"D6@X.example\", \"p2@x.example\", \"p3@x.example\", \"p4@x.example\", \"p5@x.example\"] }\n}\n",
	    HK_LAYER_PERSONAL);
	set_message(t, msg_plain);
	run_all(t, STAGE_DELIVER);
	assert_string_equal(finalize(t),
	    "forward to d1@x.example\n"
	    "forward to d2@x.example\n"
	    "forward to d3@x.example\n"
	    "forward to d4@x.example\n"
	    "forward to d5@x.example\n"
	    "forward to d6@x.example\n"
	    "forward to p1@x.example\n" /* D6@X.example is a duplicate: left out, not counted */
	    "forward to p2@x.example\n"
	    "forward to p3@x.example\n"
	    "forward to p4@x.example\n"
	    "# suppressed: forward to p5@x.example (more than 10 forward targets)\n"
	    "keep\n");
}

static void
test_vm_forward_to_self_suppressed(void **state)
{
	struct vt *t = *state;
	/* also when the target is computed: a personal script cannot, an
	 * operator script can forward to the recipient */
	const char *src = "on deliver {\n    rule \"r\" { forward recipient, \"TARO@example.JP\", \"other@x.example\" }\n}\n";
	assert_string_equal(outcome(t, msg_plain, src, HK_LAYER_OPERATOR),
	    "# suppressed: forward to taro@example.jp (forward to the mailbox itself would loop)\n"
	    "# suppressed: forward to TARO@example.JP (forward to the mailbox itself would loop)\n"
	    "forward to other@x.example\n"
	    "keep\n");
}

/* --- auto-replies ------------------------------------------------------------------------ */

static const char *const reply_src = "on deliver {\n    rule \"away\" { reply subject \"Away\" body \"Back on Monday.\" }\n}\n";

static void
test_vm_reply_sent_to_envelope_sender(void **state)
{
	struct vt *t = *state;
	assert_string_equal(outcome(t, msg_plain, reply_src, HK_LAYER_PERSONAL), "reply to hanako@friend.example.com\nkeep\n");
	const struct hk_action *r = &t->fin.acts[0];
	assert_int_equal(r->kind, ACT_REPLY);
	assert_int_equal(r->arg[0].len, 4);
	assert_memory_equal(r->arg[0].ptr, "Away", 4);
	assert_int_equal(r->arg[1].len, strlen("Back on Monday."));
	assert_int_equal(r->num, 7 * 86400); /* the default interval */
	/* the reply log was asked about this recipient and sender */
	assert_int_equal(t->policy_calls, 1);
	assert_true(str_ieq_cstr(t->policy_rcpt, "taro@example.jp"));
	assert_true(str_ieq_cstr(t->policy_sender, "hanako@friend.example.com"));
	assert_int_equal(t->policy_interval, 7 * 86400);
}

static void
test_vm_reply_defaults_and_every(void **state)
{
	struct vt *t = *state;
	outcome(t, msg_plain, "on deliver {\n    rule \"r\" { reply every 2 days }\n}\n", HK_LAYER_PERSONAL);
	assert_int_equal(t->fin.acts[0].kind, ACT_REPLY);
	assert_null(t->fin.acts[0].suppressed);
	assert_int_equal(t->fin.acts[0].num, 2 * 86400);
	assert_int_equal(t->policy_interval, 2 * 86400);
	assert_int_equal(t->fin.acts[0].arg[0].len, strlen("Notification for your mail."));
	assert_memory_equal(t->fin.acts[0].arg[0].ptr, "Notification for your mail.", t->fin.acts[0].arg[0].len);
}

static void
test_vm_reply_suppression_rules(void **state)
{
	struct vt *t = *state;
	static const struct {
		const char *what, *env_from, *raw, *want;
	} cases[] = {
		{ "null sender", "", "From: a@b.example\nTo: taro@example.jp\nSubject: x\n\nx\n",
		    "# suppressed: reply to <> (bounce or notification (empty return path))\nkeep\n" },
		{ "MAILER-DAEMON", "MAILER-DAEMON@mx.b.example", "From: MAILER-DAEMON@mx.b.example\nTo: taro@example.jp\nSubject: failure\n\nx\n",
		    "# suppressed: reply to MAILER-DAEMON@mx.b.example (automated sender)\nkeep\n" },
		{ "noreply", "no-reply@shop.example", "From: shop@shop.example\nTo: taro@example.jp\nSubject: x\n\nx\n",
		    "# suppressed: reply to no-reply@shop.example (automated sender)\nkeep\n" },
		{ "list owner", "owner-news@lists.example.org", "From: a@b.example\nTo: taro@example.jp\nSubject: x\n\nx\n",
		    "# suppressed: reply to owner-news@lists.example.org (mailing-list mail)\nkeep\n" },
		{ "list request", "news-request@lists.example.org", "From: a@b.example\nTo: taro@example.jp\nSubject: x\n\nx\n",
		    "# suppressed: reply to news-request@lists.example.org (mailing-list mail)\nkeep\n" },
		{ "Auto-Submitted", "robot@monitor.example.com", "From: robot@monitor.example.com\nTo: taro@example.jp\nAuto-Submitted: auto-generated\nSubject: x\n\nx\n",
		    "# suppressed: reply to robot@monitor.example.com (auto-submitted mail)\nkeep\n" },
		{ "Auto-Submitted: auto-replied", "a@b.example", "From: a@b.example\nTo: taro@example.jp\nAuto-Submitted: auto-replied\nSubject: x\n\nx\n",
		    "# suppressed: reply to a@b.example (auto-submitted mail)\nkeep\n" },
		{ "List-Id", "a@b.example", "From: a@b.example\nTo: taro@example.jp\nList-Id: News <news.lists.example.org>\nSubject: x\n\nx\n",
		    "# suppressed: reply to a@b.example (mailing-list mail)\nkeep\n" },
		{ "List-Unsubscribe", "a@b.example", "From: a@b.example\nTo: taro@example.jp\nList-Unsubscribe: <mailto:u@b.example>\nSubject: x\n\nx\n",
		    "# suppressed: reply to a@b.example (mailing-list mail)\nkeep\n" },
		{ "Precedence bulk", "a@b.example", "From: a@b.example\nTo: taro@example.jp\nPrecedence: bulk\nSubject: x\n\nx\n",
		    "# suppressed: reply to a@b.example (bulk or list mail (Precedence))\nkeep\n" },
		{ "Precedence junk", "a@b.example", "From: a@b.example\nTo: taro@example.jp\nPrecedence: Junk \nSubject: x\n\nx\n",
		    "# suppressed: reply to a@b.example (bulk or list mail (Precedence))\nkeep\n" },
		{ "recipient not addressed", "a@b.example", "From: a@b.example\nTo: someone@example.jp\nCc: other@example.jp\nSubject: x\n\nx\n",
		    "# suppressed: reply to a@b.example (the recipient is not in To, Cc or Bcc)\nkeep\n" },
		{ "from the recipient", "Taro@example.jp", "From: taro@example.jp\nTo: taro@example.jp\nSubject: x\n\nx\n",
		    "# suppressed: reply to Taro@example.jp (the message comes from the recipient itself)\nkeep\n" },
		{ "X-Auto-Response-Suppress", "a@b.example", "From: a@b.example\nTo: taro@example.jp\nX-Auto-Response-Suppress: All\nSubject: x\n\nx\n",
		    "# suppressed: reply to a@b.example (auto-submitted mail)\nkeep\n" },
		{ "List-Post", "a@b.example", "From: a@b.example\nTo: taro@example.jp\nList-Post: <mailto:l@b.example>\nSubject: x\n\nx\n",
		    "# suppressed: reply to a@b.example (mailing-list mail)\nkeep\n" },
		{ "postmaster", "Postmaster@b.example", "From: a@b.example\nTo: taro@example.jp\nSubject: x\n\nx\n",
		    "# suppressed: reply to Postmaster@b.example (automated sender)\nkeep\n" },
		/* and what is not a reason */
		{ "Auto-Submitted: no", "a@b.example", "From: a@b.example\nTo: taro@example.jp\nAuto-Submitted: no\nSubject: x\n\nx\n",
		    "reply to a@b.example\nkeep\n" },
		{ "Precedence first-class", "a@b.example", "From: a@b.example\nTo: taro@example.jp\nPrecedence: first-class\nSubject: x\n\nx\n",
		    "reply to a@b.example\nkeep\n" },
		{ "addressed in Cc, case-insensitive", "a@b.example", "From: a@b.example\nTo: x@example.jp\nCc: TARO@Example.JP\nSubject: x\n\nx\n",
		    "reply to a@b.example\nkeep\n" },
		{ "addressed in Resent-To", "a@b.example", "From: a@b.example\nTo: x@example.jp\nResent-To: taro@example.jp\nSubject: x\n\nx\n",
		    "reply to a@b.example\nkeep\n" },
		{ "addressed through a group", "a@b.example", "From: a@b.example\nTo: friends: x@example.jp, taro@example.jp;\nSubject: x\n\nx\n",
		    "reply to a@b.example\nkeep\n" },
	};
	int failures = 0;
	for (size_t i = 0; i < HK_ARRAY_LEN(cases); i++) {
		t->env.env_from = (struct hk_str){ cases[i].env_from, strlen(cases[i].env_from) };
		const char *got = outcome(t, cases[i].raw, reply_src, HK_LAYER_PERSONAL);
		if (strcmp(got, cases[i].want) != 0) {
			print_message("FAIL: %s: got\n%swant\n%s", cases[i].what, got, cases[i].want);
			failures++;
		}
	}
	assert_int_equal(failures, 0);
}

static void
test_vm_reply_replied_recently(void **state)
{
	struct vt *t = *state;
	t->replied_sender = "HANAKO@friend.example.com";
	assert_string_equal(outcome(t, msg_plain, reply_src, HK_LAYER_PERSONAL),
	    "# suppressed: reply to hanako@friend.example.com (already answered recently)\nkeep\n");
	assert_int_equal(t->policy_calls, 1);
	/* a NULL policy means nothing was answered */
	hk_result_fini(&t->res);
	t->have_res = false;
	run_all(t, STAGE_DELIVER);
	hk_result_finalize(&t->res, t->msg, &t->env, NULL, &t->fin);
	assert_int_equal(t->fin.acts[0].kind, ACT_REPLY);
	assert_null(t->fin.acts[0].suppressed);
}

static void
test_vm_reply_only_one_per_message(void **state)
{
	struct vt *t = *state;
	compile_as(t, "on deliver {\n    rule \"d\" { reply subject \"Domain\" }\n}\n", HK_LAYER_DOMAIN);
	compile_as(t, "on deliver {\n    rule \"a\" { reply subject \"One\" }\n    rule \"b\" { reply subject \"Two\" }\n}\n",
	    HK_LAYER_PERSONAL);
	set_message(t, msg_plain);
	run_all(t, STAGE_DELIVER);
	assert_string_equal(finalize(t),
	    "reply to hanako@friend.example.com\n"
	    "# suppressed: reply to hanako@friend.example.com (only one auto-reply per message)\n"
	    "# suppressed: reply to hanako@friend.example.com (only one auto-reply per message)\n"
	    "keep\n");
	assert_memory_equal(t->fin.acts[0].arg[0].ptr, "Domain", 6);
	/* the reply log is asked once, for the reply that is sent */
	assert_int_equal(t->policy_calls, 1);
}

static void
test_vm_reply_suppressed_first_lets_second_through(void **state)
{
	struct vt *t = *state;
	/* a reply suppressed because it was answered recently does not count
	 * as "the" reply; the next one is asked about again */
	t->replied_sender = "hanako@friend.example.com";
	outcome(t, msg_plain, "on deliver {\n    rule \"a\" { reply every 1 hour }\n    rule \"b\" { reply every 30 days }\n}\n",
	    HK_LAYER_PERSONAL);
	assert_int_equal(t->policy_calls, 2);
	assert_string_equal(t->fin.acts[0].suppressed, "already answered recently");
	assert_string_equal(t->fin.acts[1].suppressed, "already answered recently");
}

static void
test_vm_notify_suppressed_for_list_mail(void **state)
{
	struct vt *t = *state;
	const char *src = "on deliver {\n    rule \"n\" { notify \"phone@docomo.example\" subject \"${subject}\" }\n}\n";
	static const char list_msg[] = "From: a@b.example\nTo: taro@example.jp\nList-Id: <n.lists.example.org>\nSubject: news\n\nx\n";
	assert_string_equal(outcome(t, list_msg, src, HK_LAYER_PERSONAL),
	    "# suppressed: notify to phone@docomo.example subject \"news\" (mailing-list mail)\nkeep\n");
	assert_string_equal(outcome(t, msg_plain, src, HK_LAYER_PERSONAL), "notify to phone@docomo.example subject \"lunch?\"\nkeep\n");
}

/* --- budgets ------------------------------------------------------------------------------ */

/* A personal script with 150000 statements of 4 instructions each runs past
 * the personal instruction budget (500000): the run ends with
 * HK_VM_BUDGET, the layer's actions (and the earlier ones of the same run)
 * are dropped and the message falls back to implicit keep. The same
 * program as an operator script finishes. */
static void
test_vm_instruction_budget_personal(void **state)
{
	struct vt *t = *state;
	struct hk_buf src;
	buf_init(&src);
	buf_adds(&src, "on deliver {\n    rule \"first\" { fileinto \"Work\" forward \"a@x.example\" }\n");
	for (int i = 0; i < 150000; i++)
		buf_adds(&src, "    if subject is \"x\" { }\n");
	buf_adds(&src, "    rule \"last\" { flag \"$Done\" }\n}\n");
	compile_as(t, "on deliver {\n    rule \"d\" { add header \"X-Domain\" \"1\" }\n}\n", HK_LAYER_DOMAIN);
	compile_as(t, src.data, HK_LAYER_PERSONAL);
	set_message(t, msg_invoice);
	run_all(t, STAGE_DELIVER);
	assert_int_equal(t->status[0], HK_VM_OK);
	assert_int_equal(t->status[1], HK_VM_BUDGET);
	assert_non_null(t->res.error);
	assert_string_equal(t->res.error, "personal script stopped: instruction budget exhausted");
	/* only the domain layer's action is left, plus implicit keep */
	assert_string_equal(finalize(t), "add header \"X-Domain\" \"1\"\nkeep\n");
	assert_true(t->fin.keep_implicit);

	for (size_t i = 0; i < t->nprog; i++)
		hk_program_unref(&t->prog[i]);
	t->nprog = 0;
	compile_as(t, src.data, HK_LAYER_OPERATOR);
	run_all(t, STAGE_DELIVER);
	assert_int_equal(t->status[0], HK_VM_OK);
	assert_null(t->res.error);
	assert_string_equal(finalize(t), "fileinto \"Work\"\nforward to a@x.example\nflag \"$Done\"\n");
	buf_fini(&src);
}

/* A personal script that forwards to a huge list (2000 constant targets)
 * produces more actions than one run may: the run ends with HK_VM_BUDGET
 * and none of its forwards happen. */
static void
test_vm_action_budget_personal_huge_list(void **state)
{
	struct vt *t = *state;
	struct hk_buf src;
	buf_init(&src);
	buf_adds(&src, "const everyone = [");
	for (int i = 0; i < 2000; i++)
		buf_printf(&src, "%s\"user%d@list.example\"", i ? ", " : "", i);
	buf_adds(&src, "]\non deliver {\n    rule \"r\" { fileinto \"Sent\" forward everyone }\n}\n");
	compile_as(t, src.data, HK_LAYER_PERSONAL);
	set_message(t, msg_plain);
	run_all(t, STAGE_DELIVER);
	assert_int_equal(t->status[0], HK_VM_BUDGET);
	assert_non_null(t->res.error);
	assert_string_equal(t->res.error, "personal script stopped: more than 1000 actions");
	assert_int_equal(t->res.n, 0);
	assert_string_equal(finalize(t), "keep\n");
	buf_fini(&src);
}

static double
now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* /^(a+)+$/ on "aaa...ab" backtracks exponentially; the PCRE2 match limit
 * ends it quickly. A match that gave up counts as neither matching nor not
 * matching (f0b9752: a crafted subject must not make `!~` true), and the
 * result says so. */
static void
test_vm_catastrophic_regex_hits_match_limit(void **state)
{
	struct vt *t = *state;
	static const char raw[] = "From: a@b.example\nTo: taro@example.jp\nSubject: aaaaaaaaaaaaaaaaaaaaaaaaaaaaab\n\nx\n";
	const char *src = "on deliver {\n"
			  "    rule \"r\" when subject ~ /^(a+)+$/ { fileinto \"Match\" }\n"
			  "    rule \"n\" when subject !~ /^(a+)+$/ { fileinto \"NoMatch\" }\n"
			  "    rule \"s\" { flag \"$Ran\" }\n"
			  "}\n";
	static const enum hk_layer layers[] = { HK_LAYER_PERSONAL, HK_LAYER_OPERATOR };
	for (size_t i = 0; i < HK_ARRAY_LEN(layers); i++) {
		double t0 = now_seconds();
		const char *got = outcome(t, raw, src, layers[i]);
		double dt = now_seconds() - t0;
		assert_int_equal(t->status[0], HK_VM_OK);
		assert_string_equal(got, "flag \"$Ran\"\nkeep\n");
		assert_non_null(t->res.error);
		assert_non_null(strstr(t->res.error, "a regex gave up at its match limit"));
		if (dt > 1.0)
			fail_msg("layer %s: took %.3f s", hk_layer_name(layers[i]), dt);
	}
}

/* BUG (DoS): the instruction budget does not bound the time of a run. Each
 * REGEX instruction may spend up to the match limit (about 0.4 ms for the
 * personal limit of 100000 on /^(a+)+$/ against a 30-byte subject), so a
 * personal script of ~50000 such tests (1.5 MB) costs ~18 s of CPU per
 * delivered message within its 200000-instruction budget. Here 2000 tests
 * (~1.3 s): the run must either be stopped by a budget or finish in under
 * half a second. A run-wide regex budget (e.g. the total match
 * steps, or treating PCRE2_ERROR_MATCHLIMIT as HK_VM_BUDGET) would fix it. */
static void
test_vm_many_catastrophic_regexes_bounded_by_budget(void **state)
{
	struct vt *t = *state;
	static const char raw[] = "From: a@b.example\nTo: taro@example.jp\nSubject: aaaaaaaaaaaaaaaaaaaaaaaaaaaaab\n\nx\n";
	struct hk_buf src;
	buf_init(&src);
	buf_adds(&src, "on deliver {\n    rule \"r\" { fileinto \"Work\" }\n");
	for (int i = 0; i < 2000; i++)
		buf_adds(&src, "    if subject ~ /^(a+)+$/ { }\n");
	buf_adds(&src, "}\n");
	compile_as(t, src.data, HK_LAYER_PERSONAL);
	set_message(t, raw);
	double t0 = now_seconds();
	run_all(t, STAGE_DELIVER);
	double dt = now_seconds() - t0;
	print_message("2000 catastrophic regex tests: status %d in %.3f s\n", (int)t->status[0], dt);
	assert_true(t->status[0] == HK_VM_BUDGET || dt < 0.5);
	buf_fini(&src);
}

/* --- trace hooks --------------------------------------------------------------------------- */

struct trace_log {
	int rules, tests, actions;
	unsigned last_rule;
	bool results[16];
};

static void
tr_rule(void *ctx, const struct hk_program *p, unsigned rule)
{
	struct trace_log *l = ctx;
	(void)p;
	l->rules++;
	l->last_rule = rule;
}

static void
tr_test(void *ctx, const struct hk_program *p, uint32_t pc, bool result)
{
	struct trace_log *l = ctx;
	(void)p;
	(void)pc;
	if (l->tests < 16)
		l->results[l->tests] = result;
	l->tests++;
}

static void
tr_action(void *ctx, const struct hk_program *p, uint32_t pc, const struct hk_action *a)
{
	struct trace_log *l = ctx;
	const struct hk_line_info *li = hk_program_line(p, pc);
	assert_non_null(li);
	assert_int_equal(li->line, 3);
	assert_int_equal(a->kind, ACT_FILEINTO);
	l->actions++;
}

static void
test_vm_trace_hooks(void **state)
{
	struct vt *t = *state;
	struct hk_program *p = compile_as(t,
	    "on deliver {\n"
	    "    rule \"a\" when subject contains \"nope\" { keep }\n"
	    "    rule \"b\" when has header \"X-Priority\" and to is \"taro@example.jp\" { fileinto \"T\" }\n"
	    "}\n",
	    HK_LAYER_OPERATOR);
	set_message(t, msg_invoice);
	struct trace_log log = { 0 };
	struct hk_trace tr = { &log, tr_rule, tr_test, tr_action };
	struct hk_vm_limits lim;
	hk_vm_limits_for_layer(&lim, HK_LAYER_OPERATOR);
	hk_result_init(&t->res);
	t->have_res = true;
	assert_int_equal(hk_vm_run(p, STAGE_DELIVER, t->msg, &t->env, &t->res, &lim, &tr), HK_VM_OK);
	assert_int_equal(log.rules, 2);
	assert_int_equal(log.last_rule, 1);
	assert_int_equal(log.tests, 3);
	assert_false(log.results[0]);
	assert_true(log.results[1]);
	assert_true(log.results[2]);
	assert_int_equal(log.actions, 1);
}

/* --- hk_action_format ----------------------------------------------------------------------- */

static void
test_vm_action_format_every_action(void **state)
{
	struct vt *t = *state;
	static const struct {
		int kind;
		const char *a0, *a1;
		int64_t num;
		uint32_t mask;
		const char *want;
	} cases[] = {
		{ ACT_KEEP, NULL, NULL, 0, 0, "keep" },
		{ ACT_FILEINTO, "Work/Reports", NULL, 0, 0, "fileinto \"Work/Reports\"" },
		{ ACT_FILEINTO, "a\"b\\c\nd\te\rf", NULL, 0, 0, "fileinto \"a\\\"b\\\\c\\nd\\te\\rf\"" },
		{ ACT_FORWARD, "hanako@friend.example.com", NULL, 0, 0, "forward to hanako@friend.example.com" },
		{ ACT_NOTIFY, "phone@docomo.example", NULL, 0, 0, "notify to phone@docomo.example" },
		{ ACT_NOTIFY, "phone@docomo.example", "Mail: \"hi\"", 0, 1, "notify to phone@docomo.example subject \"Mail: \\\"hi\\\"\"" },
		{ ACT_REPLY, "Away", "body", 604800, 11, "reply to hanako@friend.example.com" },
		{ ACT_REJECT, NULL, NULL, 0, 0, "reject" },
		{ ACT_REJECT, "not here", NULL, 0, 1, "reject \"not here\"" },
		{ ACT_DISCARD, NULL, NULL, 0, 0, "discard" },
		{ ACT_SKIP, NULL, NULL, 0, 0, "skip" },
		{ ACT_STOP, NULL, NULL, 0, 0, "stop" },
		{ ACT_EXPAND, "team", NULL, 0, 0, "expand list \"team\"" },
		{ ACT_STRIP, NULL, NULL, 0, 0, "strip attachments" },
		{ ACT_ADD_HEADER, "X-Spam", "yes", 0, 0, "add header \"X-Spam\" \"yes\"" },
		{ ACT_REMOVE_HEADER, "X-Spam", NULL, 0, 0, "remove header \"X-Spam\"" },
		{ ACT_FLAG, "\\Seen", NULL, 0, 0, "flag \"\\\\Seen\"" },
		{ ACT_REFUSE, NULL, NULL, 550, 0, "refuse 550" },
		{ ACT_REFUSE, "5.7.1 no", NULL, 554, 3, "refuse 554 \"5.7.1 no\"" },
		{ ACT_TEMPFAIL, NULL, NULL, 451, 0, "tempfail 451" },
		{ ACT_TEMPFAIL, "4.7.1 later", NULL, 421, 3, "tempfail 421 \"4.7.1 later\"" },
		{ ACT_EXPUNGE, NULL, NULL, 0, 0, "expunge" },
		{ ACT_LOG, "line1\nline2", NULL, 0, 0, "log \"line1\\nline2\"" },
	};
	bool seen[ACT_COUNT] = { false };
	struct hk_buf b;
	buf_init(&b);
	for (size_t i = 0; i < HK_ARRAY_LEN(cases); i++) {
		struct hk_action a;
		memset(&a, 0, sizeof(a));
		a.kind = (uint8_t)cases[i].kind;
		if (cases[i].a0)
			a.arg[0] = (struct hk_str){ cases[i].a0, strlen(cases[i].a0) };
		if (cases[i].a1)
			a.arg[1] = (struct hk_str){ cases[i].a1, strlen(cases[i].a1) };
		a.num = cases[i].num;
		a.mask = cases[i].mask;
		buf_reset(&b);
		hk_action_format(&a, &t->env, &b);
		assert_string_equal(b.data, cases[i].want);
		seen[cases[i].kind] = true;
	}
	for (int k = 0; k < ACT_COUNT; k++)
		if (!seen[k])
			fail_msg("action %s has no format case", ast_action_name(k));
	/* a reply to the null sender */
	struct hk_action r;
	memset(&r, 0, sizeof(r));
	r.kind = ACT_REPLY;
	t->env.env_from = HK_STR("");
	buf_reset(&b);
	hk_action_format(&r, &t->env, &b);
	assert_string_equal(b.data, "reply to <>");
	/* an unknown kind does not crash */
	r.kind = ACT_COUNT;
	buf_reset(&b);
	hk_action_format(&r, &t->env, &b);
	assert_string_equal(b.data, "?");
	buf_fini(&b);
}

static void
test_vm_action_format_from_real_runs(void **state)
{
	struct vt *t = *state;
	compile_as(t,
	    "on rcpt {\n"
	    "    rule \"a\" when recipient.local is \"nobody\" { refuse 550 \"5.1.1 no such user\" }\n"
	    "}\n"
	    "on data {\n"
	    "    rule \"b\" { add header \"X-Scanned\" \"yes\" remove header \"X-Spam\" strip attachments log \"data\" }\n"
	    "    rule \"c\" when size > 1M { tempfail 452 \"4.3.1 later\" }\n"
	    "}\n"
	    "on deliver {\n"
	    "    rule \"d\" { expand list \"team\" flag \"\\\\Seen\" }\n"
	    "}\n",
	    HK_LAYER_OPERATOR);
	t->env.recipient = HK_STR("nobody@example.jp");
	run_all(t, STAGE_RCPT);
	assert_string_equal(finalize(t), "refuse 550 \"5.1.1 no such user\"\n");
	set_message(t, msg_attachments);
	run_all(t, STAGE_DATA);
	assert_string_equal(finalize(t), "add header \"X-Scanned\" \"yes\"\nremove header \"X-Spam\"\nstrip attachments\nlog \"data\"\n");
	run_all(t, STAGE_DELIVER);
	assert_string_equal(finalize(t), "expand list \"team\"\nflag \"\\\\Seen\"\n");
}

int
main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_vm_compare_text_operators_case_insensitive),
		T(test_vm_compare_glob_matches),
		T(test_vm_compare_regex),
		T(test_vm_compare_addresses_any_of),
		T(test_vm_address_parts),
		T(test_vm_address_name_decoded),
		T(test_vm_compare_headers_and_numbers),
		T(test_vm_attachments),
		T(test_vm_attachment_policy_from_stdlib),
		T(test_vm_priority_normal_without_headers),
		T(test_vm_envelope_and_session_fields),
		T(test_vm_boolean_logic_and_constants),
		T(test_vm_constants_from_stdlib),
		T(test_vm_interpolation),
		T(test_vm_interpolated_header_and_subject_stay_one_line),
		T(test_vm_long_interpolation_keeps_every_part),
		T(test_vm_if_else_chain),
		T(test_vm_skip_ends_only_its_layer),
		T(test_vm_stop_ends_later_layers),
		T(test_vm_stage_without_code),
		T(test_vm_smtp_stage_without_message),
		T(test_vm_retention_stage),
		T(test_vm_implicit_keep_rules),
		T(test_vm_duplicates_collapse),
		T(test_vm_duplicates_collapse_across_layers),
		T(test_vm_computed_values_checked_at_run_time),
		T(test_vm_fileinto_inbox_is_keep),
		T(test_vm_forward_cap_at_ten),
		T(test_vm_forward_cap_counts_over_layers),
		T(test_vm_forward_to_self_suppressed),
		T(test_vm_reply_sent_to_envelope_sender),
		T(test_vm_reply_defaults_and_every),
		T(test_vm_reply_suppression_rules),
		T(test_vm_reply_replied_recently),
		T(test_vm_reply_only_one_per_message),
		T(test_vm_reply_suppressed_first_lets_second_through),
		T(test_vm_notify_suppressed_for_list_mail),
		T(test_vm_instruction_budget_personal),
		T(test_vm_action_budget_personal_huge_list),
		T(test_vm_catastrophic_regex_hits_match_limit),
		T(test_vm_many_catastrophic_regexes_bounded_by_budget),
		T(test_vm_trace_hooks),
		T(test_vm_action_format_every_action),
		T(test_vm_action_format_from_real_runs),
	};
	return cmocka_run_group_tests_name("vm", tests, NULL, NULL);
}
