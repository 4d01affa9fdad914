/*
 * test_compile.c - unit tests of the compiler's diagnostics (parse.c,
 * grammar.y, sema.c through compile.h): a table of bad snippets, each with
 * the layer it is compiled for, the expected severity, a substring of the
 * first message and its line:col; then the nesting limits, several errors in
 * one run, the DIAG_MAX_ERRORS cap, and that good snippets compile to a
 * verified program.
 *
 * Run from the repository root: imports look in ./stdlib.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "compile.h"

/* --- helpers -------------------------------------------------------------------- */

struct compiled {
	struct diag d;
	struct hk_unit *u;
	struct hk_program *p;
};

static void
compile_text(struct compiled *c, const char *src, size_t len, enum hk_layer layer, const char *owner)
{
	memset(c, 0, sizeof(*c));
	diag_init(&c->d);
	struct hk_compile_opts o = { .layer = layer, .stdlib_dir = "stdlib", .owner = owner };
	c->u = hk_unit_load_text("t.hk", src, len, &o, &c->d);
	if (c->u && c->d.errors == 0)
		c->p = hk_unit_codegen(c->u);
}

static void
compiled_fini(struct compiled *c)
{
	hk_program_unref(&c->p);
	hk_unit_free(&c->u);
	diag_fini(&c->d);
}

static void
print_diags(const struct diag *d)
{
	struct hk_buf b;
	buf_init(&b);
	for (size_t i = 0; i < d->nmsgs; i++)
		diag_format(d, &d->msgs[i], &b, false);
	print_message("%s", b.data ? b.data : "(no messages)\n");
	buf_fini(&b);
}

static size_t
count_sev(const struct diag *d, enum diag_severity sev)
{
	size_t n = 0;
	for (size_t i = 0; i < d->nmsgs; i++)
		n += d->msgs[i].sev == sev;
	return n;
}

/* Index of the first message of severity `sev` containing `sub`, or -1. */
static long
find_msg(const struct diag *d, enum diag_severity sev, const char *sub)
{
	for (size_t i = 0; i < d->nmsgs; i++)
		if (d->msgs[i].sev == sev && strstr(d->msgs[i].text, sub))
			return (long)i;
	return -1;
}

/* --- the table of bad snippets ------------------------------------------------------ */

enum { O = HK_LAYER_OPERATOR, D = HK_LAYER_DOMAIN, N = HK_LAYER_PANEL, P = HK_LAYER_PERSONAL };
enum { E = DIAG_ERROR, W = DIAG_WARNING };

struct bad {
	const char *what;
	int layer;
	const char *src;
	int sev;          /* of the first message */
	const char *sub;  /* substring of the first message */
	unsigned line, col;
	const char *flag; /* the -W flag, NULL: don't check */
};

/* "    rule \"r\" when " is 18 columns: a condition starts at column 19;
 * "    rule \"r\" { " is 15: an action starts at column 16. */
#define DELIVER(body) "on deliver {\n" body "\n}\n"
#define RULE_WHEN(cond) DELIVER("    rule \"r\" when " cond " { keep }")
#define RULE_DO(action) DELIVER("    rule \"r\" { " action " }")

static const struct bad bad_snippets[] = {
	/* unknown names, with did-you-mean */
	{ "misspelled field", O, RULE_WHEN("subjct contains \"x\""), E, "unknown name 'subjct'; did you mean 'subject'?", 2, 19, "unknown-name" },
	{ "misspelled dotted field", O, RULE_WHEN("envelope.form is \"a@b.example\""), E, "unknown name 'envelope.form'; did you mean 'envelope.from'?", 2, 19, "unknown-name" },
	{ "misspelled address part", O, RULE_WHEN("from.domian is \"x\""), E, "'from' has no part 'domian' (parts: addr, local, domain, name)", 2, 24, "unknown-name" },
	{ "misspelled constant", O, "const spam_words = [\"a\", \"b\"]\n" RULE_WHEN("subject in spam_word"), E, "unknown name 'spam_word'; did you mean 'spam_words'?", 3, 30, "unknown-name" },
	{ "unknown name without a near word", O, RULE_WHEN("zzqqxx is \"x\""), E, "unknown name 'zzqqxx'", 2, 19, "unknown-name" },
	{ "misspelled stage", O, "on delivr {\n}\n", E, "unknown stage 'delivr'; did you mean 'deliver'?", 1, 4, "stage" },
	{ "unknown stage", O, "on receive {\n}\n", E, "unknown stage 'receive' (stages: connect, helo, mail, rcpt, data, deliver, retention)", 1, 4, "stage" },
	{ "misspelled reply option", O, RULE_DO("reply sujbect \"x\""), E, "'reply' has no option 'sujbect'; did you mean 'subject'?", 2, 22, "option" },
	{ "unknown notify option", O, RULE_DO("notify \"a@b.example\" zzz \"x\""), E, "'notify' has no option 'zzz' (options: subject)", 2, 37, "option" },
	{ "option given twice", O, RULE_DO("reply subject \"a\" subject \"b\""), E, "option 'subject' given twice", 2, 34, "option" },
	{ "misspelled test setting", O, DELIVER("") "test \"t\" {\n    mesage \"x\"\n}\n", E, "unknown test setting 'mesage'; did you mean 'message'?", 5, 5, "test" },
	{ "misspelled action word", O, RULE_DO("expand lst \"team\""), E, "write 'expand list \"name\"'", 2, 23, "syntax" },
	{ "misspelled strip word", O, RULE_DO("strip attachment"), E, "write 'strip attachments'", 2, 22, "syntax" },
	/* stage and field mismatches */
	{ "message field in an SMTP stage", O, "on mail {\n    rule \"r\" when subject contains \"x\" { skip }\n}\n", E, "'subject' has no value in the 'mail' stage", 2, 19, "stage" },
	{ "header in an SMTP stage", O, "on connect {\n    rule \"r\" when header \"X-A\" is \"y\" { skip }\n}\n", E, "headers have no value in the 'connect' stage (the message arrives in 'data')", 2, 19, "stage" },
	{ "retention field in deliver", O, RULE_WHEN("age > 30 days"), E, "'age' has no value in the 'deliver' stage", 2, 19, "stage" },
	{ "recipient before rcpt", O, "on mail {\n    rule \"r\" when recipient is \"a@b.example\" { skip }\n}\n", E, "'recipient' has no value in the 'mail' stage", 2, 19, "stage" },
	{ "constant reading the message in rcpt", O, "const big = size > 10M\non rcpt {\n    rule \"r\" when big { refuse 552 \"5.3.4 too big\" }\n}\n", E, "constant 'big' reads the message or session, which has no value in the 'rcpt' stage", 3, 19, "stage" },
	{ "helo before helo", O, "on connect {\n    rule \"r\" when client.helo is \"x\" { refuse }\n}\n", E, "'client.helo' has no value in the 'connect' stage", 2, 19, "stage" },
	{ "auth before mail", O, "on helo {\n    rule \"r\" when auth.user is \"x\" { refuse }\n}\n", E, "'auth.user' has no value in the 'helo' stage", 2, 19, "stage" },
	/* actions in the wrong stage */
	{ "refuse in deliver", O, RULE_DO("refuse 550 \"5.7.1 no\""), E, "'refuse' cannot be used in the 'deliver' stage (it works in: connect, helo, mail, rcpt, data)", 2, 16, "stage" },
	{ "keep in mail", O, "on mail {\n    rule \"r\" { keep }\n}\n", E, "'keep' cannot be used in the 'mail' stage (it works in: deliver, retention)", 2, 16, "stage" },
	{ "expunge in deliver", O, RULE_DO("expunge"), E, "'expunge' cannot be used in the 'deliver' stage (it works in: retention)", 2, 16, "stage" },
	{ "forward in retention", O, "on retention {\n    rule \"r\" { forward \"a@b.example\" }\n}\n", E, "'forward' cannot be used in the 'retention' stage (it works in: deliver)", 2, 16, "stage" },
	{ "remove header in helo", O, "on helo {\n    rule \"r\" { remove header \"X-A\" }\n}\n", E, "'remove' cannot be used in the 'helo' stage (it works in: data, deliver)", 2, 16, "stage" },
	/* what a personal script (and the control panel) may not do */
	{ "personal SMTP stage", P, "on rcpt {\n    rule \"r\" { skip }\n}\n", E, "personal scripts can only use the 'deliver' stage, not 'rcpt'", 1, 4, "permission" },
	{ "personal retention stage", P, "on retention {\n}\n", E, "personal scripts can only use the 'deliver' stage, not 'retention'", 1, 4, "permission" },
	{ "panel SMTP stage", N, "on mail {\n}\n", E, "control-panel settings can only use the 'deliver' stage, not 'mail'", 1, 4, "permission" },
	{ "personal refuse", P, RULE_DO("refuse 550 \"5.7.1 no\""), E, "'refuse' cannot be used in the 'deliver' stage", 2, 16, "stage" },
	{ "personal expand", P, RULE_DO("expand list \"team\""), E, "personal scripts cannot use 'expand'", 2, 16, "permission" },
	{ "panel expand", N, RULE_DO("expand list \"team\""), E, "control-panel settings cannot use 'expand'", 2, 16, "permission" },
	{ "personal computed forward", P, RULE_DO("forward from"), E, "personal scripts must name forward targets as constants", 2, 24, "permission" },
	{ "personal forward to a header", P, RULE_DO("forward header \"X-Forward-To\""), E, "personal scripts must name forward targets as constants", 2, 24, "permission" },
	{ "personal computed notify", P, RULE_DO("notify \"${from.addr}\""), E, "personal scripts must name notify targets as constants", 2, 23, "permission" },
	{ "personal computed reply sender", P, RULE_DO("reply from \"${to.addr}\""), E, "personal scripts must give the reply sender as a constant", 2, 27, "permission" },
	{ "personal import of a file", P, "import \"../lib/mine.hk\"\n", E, "personal scripts can only import libraries from the standard library", 1, 8, "permission" },
	{ "panel import of a file", N, "import \"/etc/x.hk\"\n", E, "control-panel settings can only import libraries", 1, 8, "permission" },
	{ "personal adds a trace header", P, RULE_DO("add header \"Received\" \"x\""), E, "'Received' is a trace header and cannot be added by this script", 2, 27, "header" },
	/* type errors */
	{ "string as a condition", O, RULE_WHEN("subject"), E, "this is a string, not a condition (did you mean '... contains \"...\"'?)", 2, 19, "type" },
	{ "number as a condition", O, RULE_WHEN("size"), E, "this is a number, not a condition", 2, 19, "type" },
	{ "number compared with text", O, RULE_WHEN("size is \"big\""), E, "is a number; compare it with a number", 2, 27, "type" },
	{ "ordering needs a number", O, RULE_WHEN("subject > \"x\""), E, "'>' needs a number on its right (e.g. 8M, 90 days, 5)", 2, 29, "type" },
	{ "ordering a condition", O, RULE_WHEN("tls < 5"), E, "'<' compares numbers, not a condition", 2, 19, "type" },
	{ "in without a list", O, RULE_WHEN("subject in \"x\""), E, "'in' needs a list on its right; did you mean 'contains'?", 2, 30, "type" },
	{ "number in a string list", O, RULE_WHEN("size in [\"a\"]"), E, "cannot look for a number in a list of strings", 2, 19, "type" },
	{ "contains with a regex", O, RULE_WHEN("subject contains /x/"), E, "use '~' to match a regex", 2, 36, "type" },
	{ "regex on a number", O, RULE_WHEN("size ~ /1/"), E, "'~' matches text, not a number", 2, 19, "type" },
	{ "tilde without a regex", O, RULE_WHEN("subject ~ \"x\""), E, "'~' needs a regex on its right, like /pattern/i", 2, 29, "type" },
	{ "condition compared with text", O, RULE_WHEN("tls is \"yes\""), E, "cannot compare a condition with a string", 2, 23, "type" },
	{ "mixed list", O, RULE_WHEN("subject is [\"a\", 1]"), E, "a list mixes strings and numbers", 2, 36, "type" },
	{ "nested list", O, "const a = [\"x\"]\nconst b = [a]\n", E, "lists cannot be nested", 2, 12, "type" },
	{ "computed list element", O, RULE_WHEN("subject in [from.addr]"), E, "list elements must be constants", 2, 31, "type" },
	{ "unknown enum word", O, RULE_WHEN("spf is maybe"), E, "'spf' is never 'maybe' (values: pass, fail, softfail, neutral, none, temperror, permerror)", 2, 26, "enum" },
	{ "unknown enum word from a constant", O, "const bad = [\"fail\", \"maybe\"]\n" RULE_WHEN("spf in bad"), E, "'spf' is never \"maybe\" (from constant 'bad'", 3, 26, "enum" },
	{ "unknown enum string", O, RULE_WHEN("priority is \"urgent\""), E, "'priority' is never \"urgent\" (values: high, normal, low)", 2, 31, "enum" },
	{ "enum with contains", O, RULE_WHEN("spf contains \"pass\""), E, "'spf' can only be compared with 'is' or 'in'", 2, 23, "type" },
	{ "and with a string", O, RULE_WHEN("subject and tls"), E, "'and' needs a condition; a string is not one", 2, 19, "type" },
	{ "not with a number", O, RULE_WHEN("not size"), E, "'not' needs a condition, not a number", 2, 23, "type" },
	{ "has something odd", O, RULE_WHEN("has body"), E, "'has' works with 'attachment' and 'header \"Name\"'", 2, 23, "type" },
	{ "computed header name", O, RULE_WHEN("header subject is \"x\""), E, "a header name must be a constant string", 2, 26, "type" },
	{ "bad header name", O, RULE_WHEN("header \"X Bad\" is \"x\""), E, "'X Bad' is not a valid header name", 2, 26, "header" },
	{ "folder is a number", O, RULE_DO("fileinto 5"), E, "a folder name must be a string, not a number", 2, 25, "type" },
	{ "reply every without a unit", O, RULE_DO("reply every 5"), E, "'every' needs a unit: 'every 5 days'", 2, 28, "type" },
	{ "reply every too often", O, RULE_DO("reply every 5 minutes"), E, "'every' must be at least 1 hour", 2, 28, "reply" },
	{ "notify subject is a number", O, RULE_DO("notify \"a@b.example\" subject 5"), E, "the notice subject must be a string, not a number", 2, 45, "type" },
	{ "forward to a number", O, RULE_DO("forward 5"), E, "'forward' needs addresses, not a number", 2, 24, "type" },
	{ "forward to a non-address", O, RULE_DO("forward \"not-an-address\""), E, "'not-an-address' is not an e-mail address", 2, 24, "address" },
	{ "bool in a string", O, RULE_DO("log \"tls: ${tls}\""), E, "cannot put a condition into a string", 2, 28, "type" },
	{ "bad interpolation", O, RULE_DO("log \"x ${1abc}\""), E, "bad interpolation '${1abc}' (write ${name} or ${name.part})", 2, 25, NULL },
	{ "multi-line header value", O, RULE_DO("add header \"X-A\" \"a\\nb\""), E, "a header value must be one line", 2, 33, "header" },
	{ "remove a trace header", O, RULE_DO("remove header \"Received\""), E, "'Received' is a trace header and cannot be removed", 2, 30, "header" },
	{ "bad escape", O, RULE_DO("log \"a\\qb\""), E, "unknown escape '\\q'", 2, 22, NULL },
	/* invalid regexes */
	{ "regex syntax", O, RULE_WHEN("subject ~ /a(b/"), E, "invalid regex: missing closing parenthesis", 2, 33, "regex" },
	{ "regex flag", O, RULE_WHEN("subject ~ /ab/iq"), E, "unknown regex flag 'q' (flags: i m s x)", 2, 34, "regex" },
	{ "regex quantifier", O, RULE_WHEN("subject ~ /*a/"), E, "invalid regex: quantifier does not follow a repeatable item", 2, 30, "regex" },
	/* folders and flags */
	{ "folder built from constants", O, "const dom = \"example.jp\"\n" RULE_DO("fileinto \"../${dom}\""), E, "'../example.jp' is not a valid folder name", 3, 25, "folder" },
	{ "folder with ..", O, RULE_DO("fileinto \"../etc\""), E, "'../etc' is not a valid folder name", 2, 25, "folder" },
	{ "folder with //", O, RULE_DO("fileinto \"Work//X\""), E, "'Work//X' is not a valid folder name", 2, 25, "folder" },
	{ "hidden folder", O, RULE_DO("fileinto \".hidden\""), E, "'.hidden' is not a valid folder name", 2, 25, "folder" },
	{ "empty folder", O, RULE_DO("fileinto \"\""), E, "'' is not a valid folder name", 2, 25, "folder" },
	{ "folder with a backslash", O, RULE_DO("fileinto \"a\\\\b\""), E, "is not a valid folder name", 2, 25, "folder" },
	{ "flag with a space", O, RULE_DO("flag \"bad flag\""), E, "'bad flag' is not a flag", 2, 21, "flag" },
	{ "unknown system flag", O, RULE_DO("flag \"\\\\Important\""), E, "'\\Important' is not a flag", 2, 21, "flag" },
	/* SMTP codes */
	{ "refuse with 4xx", O, "on mail {\n    rule \"r\" { refuse 450 \"x\" }\n}\n", E, "'refuse' needs a 5xx code, not 450 (use tempfail for 4xx)", 2, 23, "smtp-code" },
	{ "tempfail with 5xx", O, "on mail {\n    rule \"r\" { tempfail 550 \"x\" }\n}\n", E, "'tempfail' needs a 4xx code, not 550 (use refuse for 5xx)", 2, 25, "smtp-code" },
	{ "refuse with 2xx", O, "on rcpt {\n    rule \"r\" { refuse 250 }\n}\n", E, "'refuse' needs a 5xx code, not 250", 2, 23, "smtp-code" },
	{ "multi-line reply text", O, "on data {\n    rule \"r\" { refuse 550 \"a\\nb\" }\n}\n", E, "the reply text must be one line", 2, 27, "smtp-code" },
	{ "enhanced code of the wrong class", O, "on data {\n    rule \"r\" { refuse 554 \"4.7.1 no\" }\n}\n", W, "the enhanced status code should start with 5", 2, 27, "smtp-code" },
	/* constants */
	{ "constant defined twice", O, "const a = 1\nconst a = 2\n", E, "constant 'a' is already defined at t.hk:1", 2, 7, "const" },
	{ "constant named like a field", O, "const subject = \"x\"\n", E, "'subject' is a built-in name; choose another name for the constant", 1, 7, "const" },
	{ "constant named like a stage", O, "const deliver = 1\n", E, "'deliver' is a built-in name", 1, 7, "const" },
	{ "constant redefines a library name", O, "import \"lists\"\nconst list_max_size = 1M\n", E, "constant 'list_max_size' is already defined at lists.hk:", 2, 7, "const" },
	/* imports */
	{ "not a library name", O, "import \"Bad Name\"\n", E, "'Bad Name' is not a library name", 1, 8, "import" },
	{ "missing library", O, "import \"nosuchlib\"\n", E, "cannot import \"nosuchlib\"", 1, 8, "import" },
	/* syntax */
	{ "unclosed brace", O, "on deliver {\n    rule \"r\" when tls {\n        keep\n", E, "this '{' is never closed (the file ends first)", 2, 23, "syntax" },
	{ "misspelled action", O, DELIVER("    rule \"r\" { fileinot \"X\" }"), E, "unknown word 'fileinot'; did you mean 'fileinto'?", 2, 16, "syntax" },
	{ "misspelled operator", O, RULE_WHEN("subject startswith \"x\""), E, "unknown word 'startswith' here", 2, 27, "syntax" },
	{ "unexpected token", O, DELIVER("    rule \"r\" { keep ) }"), E, "')' is not expected here", 2, 21, "syntax" },
	{ "bad unicode escape", O, RULE_DO("log \"\\u{D800}\""), E, "bad \\u escape", 2, 21, NULL },
	{ "stray closing brace", O, "}\n", E, "'}' is not expected here", 1, 1, "syntax" },
	{ "invalid UTF-8", O, "# ok\nconst a = \"\xff\"\n", E, "invalid UTF-8 (byte 0xff); rule files are UTF-8", 2, 12, "encoding" },
	/* warnings */
	{ "shadowed rule", O, DELIVER("    rule \"a\" when subject contains \"x\" { discard stop }\n    rule \"b\" when subject contains \"x\" and tls { keep }"), W, "rule \"b\" never runs: rule \"a\" at line 2 matches the same mail first and ends with 'stop'", 3, 5, "shadowed" },
	{ "unreachable rule", O, DELIVER("    rule \"a\" { stop }\n    rule \"b\" { keep }"), W, "unreachable rule: 'stop' at line 2 always ends the 'deliver' rules before this", 3, 5, "unreachable" },
	{ "unreachable statement", O, DELIVER("    rule \"a\" {\n        skip\n        keep\n    }"), W, "unreachable: 'skip' at line 3 always ends the rules before this", 4, 9, "unreachable" },
	{ "unreachable after if/else", O, DELIVER("    rule \"a\" {\n        if tls { stop } else { skip }\n        keep\n    }"), W, "unreachable: 'stop' at line 3", 4, 9, "unreachable" },
	{ "condition always false", O, DELIVER("    rule \"f\" when false { keep }"), W, "rule \"f\" never runs: its condition is always false", 2, 19, "unreachable" },
	{ "constant condition always false", O, "const off = false\n" DELIVER("    rule \"f\" when off { keep }"), W, "rule \"f\" never runs: its condition is always false", 3, 19, "unreachable" },
	{ "discard after keep", O, RULE_DO("keep discard"), W, "'discard' after 'keep' (line 2) does not undo it: the message is still stored", 2, 21, "contradiction" },
	{ "fileinto after discard", O, RULE_DO("discard fileinto \"X\""), W, "'fileinto' contradicts the 'discard' at line 2: the message is stored anyway", 2, 24, "contradiction" },
	{ "forward after reject", O, RULE_DO("reject \"no\" forward \"a@b.example\""), W, "'forward' contradicts the 'reject' at line 2", 2, 28, "contradiction" },
	{ "reject after fileinto", O, RULE_DO("fileinto \"X\" reject"), W, "'reject' after 'fileinto' (line 2)", 2, 29, "contradiction" },
	{ "forward limit in one action", O, RULE_DO("forward [\"a1@x.example\", \"a2@x.example\", \"a3@x.example\", \"a4@x.example\", \"a5@x.example\", \"a6@x.example\", \"a7@x.example\", \"a8@x.example\", \"a9@x.example\", \"a10@x.example\", \"a11@x.example\"]"), W, "11 forward targets; at most 10 are used per address, the rest are dropped", 2, 16, "forward-limit" },
	{ "forward limit over several rules", O, DELIVER("    rule \"a\" { forward \"a1@x.example\", \"a2@x.example\", \"a3@x.example\", \"a4@x.example\", \"a5@x.example\", \"a6@x.example\" }\n    rule \"b\" when tls { forward [\"b1@x.example\", \"b2@x.example\", \"b3@x.example\", \"b4@x.example\", \"b5@x.example\"] }"), W, "this script forwards to 11 addresses; at most 10 are used per address", 2, 16, "forward-limit" },
	{ "forward to the recipient", O, RULE_DO("forward recipient"), W, "this forwards the message to the mailbox it is being delivered to", 2, 24, "forward-self" },
	{ "duplicate rule name", O, DELIVER("    rule \"c\" { keep }\n    rule \"c\" when tls { fileinto \"X\" }"), W, "another rule named \"c\" is at line 2", 3, 5, "duplicate-rule" },
	/* test blocks */
	{ "test: unknown setting", O, DELIVER("") "test \"t\" {\n    frobnicate 1\n}\n", E, "unknown test setting 'frobnicate' (settings: message, envelope,", 5, 5, "test" },
	{ "test: bad stage", O, DELIVER("") "test \"t\" {\n    stage foo\n}\n", E, "write 'stage NAME' with one of connect, helo, mail, rcpt, data, deliver, retention", 5, 5, "test" },
	{ "test: bad spf", O, DELIVER("") "test \"t\" {\n    spf maybe\n}\n", E, "write 'spf RESULT' with one of pass, fail", 5, 5, "test" },
	{ "test: bad expect word", O, DELIVER("") "test \"t\" {\n    expect bogus keep\n}\n", E, "write 'expect ACTION' or 'expect suppressed ACTION', not 'expect bogus'", 5, 5, "test" },
	{ "test: message without a value", O, DELIVER("") "test \"t\" {\n    message\n}\n", E, "write 'message file \"sample.eml\"' or 'message \"\"\"...\"\"\"'", 5, 5, "test" },
	{ "test: expected action names a constant", O, DELIVER("") "test \"t\" {\n    expect forward nosuch\n}\n", E, "unknown name 'nosuch'", 5, 20, "unknown-name" },
	{ "test: two statements on one line", O, DELIVER("") "test \"t\" {\n    spf pass expect keep\n}\n", E, "'expect' is not expected here", 5, 14, "syntax" },
};

static void
test_compile_bad_snippets(void **state)
{
	(void)state;
	int failures = 0;
	for (size_t i = 0; i < HK_ARRAY_LEN(bad_snippets); i++) {
		const struct bad *b = &bad_snippets[i];
		struct compiled c;
		compile_text(&c, b->src, strlen(b->src), (enum hk_layer)b->layer, NULL);
		const struct diag_msg *m = c.d.nmsgs ? &c.d.msgs[0] : NULL;
		bool ok = m && (int)m->sev == b->sev && strstr(m->text, b->sub) && m->has_loc && m->loc.line == b->line &&
		    m->loc.col == b->col && (b->flag == NULL || (m->flag && strcmp(m->flag, b->flag) == 0));
		/* an error means no program; a warning alone still compiles */
		if (ok && b->sev == E)
			ok = c.p == NULL && c.d.errors > 0;
		if (ok && b->sev == W)
			ok = c.p != NULL && c.d.errors == 0;
		if (!ok) {
			print_message("FAIL [%zu] %s (layer %s): want %s %u:%u \"%s\" [-W%s]; got:\n", i, b->what, hk_layer_name(b->layer),
			    b->sev == E ? "error" : "warning", b->line, b->col, b->sub, b->flag ? b->flag : "?");
			print_diags(&c.d);
			failures++;
		}
		compiled_fini(&c);
	}
	assert_int_equal(failures, 0);
}

/* Regression (found in this review at 35aa793, fixed by f0b9752): a bare
 * `envelope` (which needs a part) suggested itself: "unknown name
 * 'envelope'; did you mean 'envelope'?" - the "needs a part, e.g.
 * envelope.from" branch of resolve_name was unreachable because "envelope"
 * (like client, auth and plan) is in the did-you-mean word list. */
static void
test_compile_bare_group_name_asks_for_a_part(void **state)
{
	(void)state;
	static const struct {
		const char *src, *want;
	} cases[] = {
		{ RULE_WHEN("envelope is \"a@b.example\""), "'envelope' needs a part, e.g. envelope.from" },
		{ RULE_WHEN("client is \"192.0.2.1\""), "'client' needs a part, e.g. client.ip" },
		{ RULE_WHEN("plan is \"light\""), "'plan' needs a part, e.g. plan.name" },
	};
	for (size_t i = 0; i < HK_ARRAY_LEN(cases); i++) {
		struct compiled c;
		compile_text(&c, cases[i].src, strlen(cases[i].src), HK_LAYER_OPERATOR, NULL);
		assert_true(c.d.errors >= 1);
		if (strstr(c.d.msgs[0].text, cases[i].want) == NULL) {
			print_diags(&c.d);
			fail_msg("want \"%s\"", cases[i].want);
		}
		compiled_fini(&c);
	}
}

/* Regression (found in this review at 35aa793, fixed in f0b9752): a
 * misspelled operator after a correct name blamed the correct name and
 * suggested it to itself: `when subject contians "x"` reported "unknown
 * word 'subject'; did you mean 'subject'?" at the column of 'subject'. */
static void
test_compile_misspelled_operator_names_the_bad_word(void **state)
{
	(void)state;
	const char *src = RULE_WHEN("subject contians \"x\"");
	struct compiled c;
	compile_text(&c, src, strlen(src), HK_LAYER_OPERATOR, NULL);
	assert_int_equal(c.d.errors, 1);
	const struct diag_msg *m = &c.d.msgs[0];
	if (strstr(m->text, "contians") == NULL)
		print_diags(&c.d);
	assert_null(strstr(m->text, "did you mean 'subject'"));
	assert_non_null(strstr(m->text, "contians"));
	assert_non_null(strstr(m->text, "did you mean 'contains'?"));
	assert_int_equal(m->loc.line, 2);
	assert_int_equal(m->loc.col, 27);
	compiled_fini(&c);
}

/* The owner's own address as a forward target is a warning when the owner
 * is known (hk_compile_opts.owner), case-insensitively. */
static void
test_compile_forward_to_owner_warns(void **state)
{
	(void)state;
	const char *src = RULE_DO("forward \"Taro@Example.JP\"");
	struct compiled c;
	compile_text(&c, src, strlen(src), HK_LAYER_PERSONAL, "taro@example.jp");
	assert_int_equal(c.d.errors, 0);
	assert_non_null(c.p);
	assert_int_equal(c.d.warnings, 1);
	assert_string_equal(c.d.msgs[0].text, "forwarding to taro@example.jp, the address this script belongs to, would loop; the copy is dropped");
	assert_string_equal(c.d.msgs[0].flag, "forward-self");
	assert_int_equal(c.d.msgs[0].loc.line, 2);
	assert_int_equal(c.d.msgs[0].loc.col, 24);
	compiled_fini(&c);
	/* without an owner there is nothing to compare with */
	compile_text(&c, src, strlen(src), HK_LAYER_PERSONAL, NULL);
	assert_int_equal(c.d.nmsgs, 0);
	assert_non_null(c.p);
	compiled_fini(&c);
}

/* What the personal layer may do compiles without a message. */
static void
test_compile_personal_allowed_actions(void **state)
{
	(void)state;
	const char *src = "import \"warpmail\"\n"
			  "const phone = \"taro.mobile@docomo.example\"\n"
			  "const home = \"home.example.net\"\n"
			  "on deliver {\n"
			  "    rule \"a\" when is_unsolicited_ad { discard }\n"
			  "    rule \"b\" when from is \"b@example.com\" { forward phone, \"taro@${home}\" }\n"
			  "    rule \"c\" when priority is high { notify phone subject \"Mail from ${from.name}: ${subject}\" }\n"
			  "    rule \"d\" when from.domain ends with \".kyohi.example.jp\" { reject \"no\" }\n"
			  "    rule \"e\" when has attachment { skip }\n"
			  "    rule \"f\" { reply subject \"Away\" body \"\"\"\n"
			  "        back soon\n"
			  "        \"\"\" every 7 days }\n"
			  "    rule \"g\" when subject contains \"[list]\" { fileinto \"Lists\" flag \"\\\\Seen\" stop }\n"
			  "}\n";
	struct compiled c;
	compile_text(&c, src, strlen(src), HK_LAYER_PERSONAL, "taro@example.jp");
	if (c.d.nmsgs)
		print_diags(&c.d);
	assert_int_equal(c.d.nmsgs, 0);
	assert_non_null(c.p);
	assert_int_equal(c.p->layer, HK_LAYER_PERSONAL);
	assert_int_equal(c.p->nrules, 7);
	assert_int_not_equal(c.p->entry[STAGE_DELIVER], HK_NO_ENTRY);
	for (int st = 0; st < STAGE_COUNT; st++)
		if (st != STAGE_DELIVER)
			assert_int_equal(c.p->entry[st], HK_NO_ENTRY);
	compiled_fini(&c);
}

/* --- several errors, the error cap ------------------------------------------------- */

static void
test_compile_reports_several_errors_in_one_run(void **state)
{
	(void)state;
	const char *src = "on deliver {\n"
			  "    rule \"a\" when subjct contains \"x\" { keep }\n"
			  "    rule \"b\" { fileinto \"../x\" }\n"
			  "    rule \"c\" when size > \"big\" { keep }\n"
			  "    rule \"d\" { expunge }\n"
			  "    rule \"e\" { keep @ }\n"
			  "}\n"
			  "on mail {\n"
			  "    rule \"f\" { refuse 450 }\n"
			  "}\n";
	struct compiled c;
	compile_text(&c, src, strlen(src), HK_LAYER_OPERATOR, NULL);
	assert_null(c.p);
	assert_int_equal(c.d.errors, 6);
	static const struct {
		const char *sub;
		unsigned line, col;
	} want[] = {
		{ "unknown name 'subjct'", 2, 19 },
		{ "'../x' is not a valid folder name", 3, 25 },
		{ "'>' needs a number", 4, 26 },
		{ "'expunge' cannot be used in the 'deliver' stage", 5, 16 },
		{ "unexpected character '@'", 6, 21 },
		{ "'refuse' needs a 5xx code, not 450", 9, 23 },
	};
	for (size_t i = 0; i < HK_ARRAY_LEN(want); i++) {
		long k = find_msg(&c.d, DIAG_ERROR, want[i].sub);
		if (k < 0) {
			print_diags(&c.d);
			fail_msg("missing \"%s\"", want[i].sub);
		}
		assert_int_equal(c.d.msgs[k].loc.line, want[i].line);
		assert_int_equal(c.d.msgs[k].loc.col, want[i].col);
	}
	/* diag_print renders them in source order with the source line */
	char *text = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&text, &len);
	diag_print(&c.d, fp, false);
	fclose(fp);
	const char *a = strstr(text, "t.hk:2:19: error: unknown name 'subjct'; did you mean 'subject'? [-Wunknown-name]\n"
				     "    2 |     rule \"a\" when subjct contains \"x\" { keep }\n"
				     "      |                   ^~~~~~\n");
	const char *b = strstr(text, "t.hk:6:21: error: unexpected character '@'");
	const char *e = strstr(text, "t.hk:9:23: error:");
	assert_non_null(a);
	assert_non_null(b);
	assert_non_null(e);
	assert_true(a < b && b < e);
	free(text);
	compiled_fini(&c);
}

static void
test_compile_syntax_error_does_not_hide_later_rules(void **state)
{
	(void)state;
	const char *src = "on deliver {\n"
			  "    rule \"a\" when { keep }\n"
			  "    rule \"b\" when frm is \"x\" { keep }\n"
			  "}\n";
	struct compiled c;
	compile_text(&c, src, strlen(src), HK_LAYER_OPERATOR, NULL);
	assert_int_equal(c.d.errors, 2);
	long s = find_msg(&c.d, DIAG_ERROR, "is not expected here");
	long n = find_msg(&c.d, DIAG_ERROR, "unknown name 'frm'; did you mean 'from'?");
	if (s < 0 || n < 0)
		print_diags(&c.d);
	assert_true(s >= 0);
	assert_true(n >= 0);
	assert_int_equal(c.d.msgs[s].loc.line, 2);
	assert_int_equal(c.d.msgs[n].loc.line, 3);
	assert_int_equal(c.d.msgs[n].loc.col, 19);
	compiled_fini(&c);
}

static void
test_compile_error_count_stops_at_max_errors_in_sema(void **state)
{
	(void)state;
	struct hk_buf src;
	buf_init(&src);
	buf_adds(&src, "on deliver {\n");
	for (int i = 0; i < DIAG_MAX_ERRORS + 30; i++)
		buf_printf(&src, "    rule \"r%d\" when nosuchfield%d is \"x\" { keep }\n", i, i);
	buf_adds(&src, "}\n");
	struct compiled c;
	compile_text(&c, src.data, src.len, HK_LAYER_OPERATOR, NULL);
	assert_null(c.p);
	assert_true(c.d.overflow);
	assert_int_equal(count_sev(&c.d, DIAG_ERROR), DIAG_MAX_ERRORS);
	assert_true(c.d.errors > DIAG_MAX_ERRORS);
	/* the recorded ones are the first ones */
	assert_non_null(strstr(c.d.msgs[0].text, "'nosuchfield0'"));
	assert_int_equal(c.d.msgs[DIAG_MAX_ERRORS - 1].loc.line, DIAG_MAX_ERRORS + 1);
	char *text = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&text, &len);
	diag_print(&c.d, fp, false);
	fclose(fp);
	char tail[128];
	snprintf(tail, sizeof(tail), "hikyaku: too many errors; stopped after %d\n", DIAG_MAX_ERRORS);
	assert_true(len >= strlen(tail));
	assert_string_equal(text + len - strlen(tail), tail);
	free(text);
	compiled_fini(&c);
	buf_fini(&src);
}

static void
test_compile_error_count_stops_at_max_errors_in_lexer(void **state)
{
	(void)state;
	/* 1000 bad bytes in a row: only the first DIAG_MAX_ERRORS are kept */
	struct hk_buf src;
	buf_init(&src);
	buf_adds(&src, "on deliver {\n");
	for (int i = 0; i < 1000; i++)
		buf_adds(&src, "@ ");
	buf_adds(&src, "\n}\n");
	struct compiled c;
	compile_text(&c, src.data, src.len, HK_LAYER_OPERATOR, NULL);
	assert_null(c.p);
	assert_true(c.d.overflow);
	assert_int_equal(count_sev(&c.d, DIAG_ERROR), DIAG_MAX_ERRORS);
	/* the count goes on (for the summary line), the messages stop */
	assert_int_equal(c.d.errors, 1000);
	assert_int_equal(c.d.nmsgs, DIAG_MAX_ERRORS);
	compiled_fini(&c);
	buf_fini(&src);
}

static void
test_compile_warnings_are_capped_too(void **state)
{
	(void)state;
	struct hk_buf src;
	buf_init(&src);
	buf_adds(&src, "on deliver {\n");
	for (int i = 0; i < DIAG_MAX_ERRORS + 20; i++)
		buf_printf(&src, "    rule \"r%d\" when false { keep }\n", i);
	buf_adds(&src, "}\n");
	struct compiled c;
	compile_text(&c, src.data, src.len, HK_LAYER_OPERATOR, NULL);
	assert_int_equal(c.d.errors, 0);
	assert_non_null(c.p);
	assert_int_equal(c.d.warnings, DIAG_MAX_ERRORS + 20);
	assert_int_equal(count_sev(&c.d, DIAG_WARNING), DIAG_MAX_ERRORS);
	compiled_fini(&c);
	buf_fini(&src);
}

/* --- nesting limits ------------------------------------------------------------------ */

static char *
nested_parens(int depth)
{
	struct hk_buf b;
	buf_init(&b);
	buf_adds(&b, "on deliver {\n    rule \"r\" when ");
	for (int i = 0; i < depth; i++)
		buf_addc(&b, '(');
	buf_adds(&b, "tls");
	for (int i = 0; i < depth; i++)
		buf_addc(&b, ')');
	buf_adds(&b, " { keep }\n}\n");
	return buf_steal(&b);
}

static void
test_compile_expression_nesting_limit(void **state)
{
	(void)state;
	/* 60 parentheses are fine, 70 are too deep: one error, no crash */
	char *ok = nested_parens(60);
	struct compiled c;
	compile_text(&c, ok, strlen(ok), HK_LAYER_OPERATOR, NULL);
	if (c.d.nmsgs)
		print_diags(&c.d);
	assert_int_equal(c.d.errors, 0);
	assert_non_null(c.p);
	compiled_fini(&c);
	free(ok);

	char *deep = nested_parens(70);
	compile_text(&c, deep, strlen(deep), HK_LAYER_OPERATOR, NULL);
	assert_null(c.p);
	assert_int_equal(c.d.errors, 1);
	assert_string_equal(c.d.msgs[0].text, "expression nested too deeply (more than 64 levels)");
	assert_string_equal(c.d.msgs[0].flag, "nesting");
	assert_int_equal(c.d.msgs[0].loc.line, 2);
	compiled_fini(&c);
	free(deep);
}

static void
test_compile_not_chain_nesting_limit(void **state)
{
	(void)state;
	struct hk_buf b;
	buf_init(&b);
	buf_adds(&b, "on deliver {\n    rule \"r\" when ");
	for (int i = 0; i < 100; i++)
		buf_adds(&b, "not ");
	buf_adds(&b, "tls { keep }\n}\n");
	struct compiled c;
	compile_text(&c, b.data, b.len, HK_LAYER_OPERATOR, NULL);
	assert_null(c.p);
	assert_int_equal(c.d.errors, 1);
	assert_non_null(strstr(c.d.msgs[0].text, "nested too deeply"));
	compiled_fini(&c);
	buf_fini(&b);
}

static char *
nested_ifs(int depth)
{
	struct hk_buf b;
	buf_init(&b);
	buf_adds(&b, "on deliver {\n    rule \"r\" {\n");
	for (int i = 0; i < depth; i++)
		buf_adds(&b, "if tls {\n");
	buf_adds(&b, "fileinto \"Deep\"\n");
	for (int i = 0; i < depth; i++)
		buf_adds(&b, "}\n");
	buf_adds(&b, "    }\n}\n");
	return buf_steal(&b);
}

static void
test_compile_block_nesting_limit(void **state)
{
	(void)state;
	char *ok = nested_ifs(30);
	struct compiled c;
	compile_text(&c, ok, strlen(ok), HK_LAYER_OPERATOR, NULL);
	if (c.d.nmsgs)
		print_diags(&c.d);
	assert_int_equal(c.d.errors, 0);
	assert_non_null(c.p);
	compiled_fini(&c);
	free(ok);

	char *deep = nested_ifs(200);
	compile_text(&c, deep, strlen(deep), HK_LAYER_OPERATOR, NULL);
	assert_null(c.p);
	assert_true(c.d.errors >= 1);
	long k = find_msg(&c.d, DIAG_ERROR, "nested too deeply");
	if (k < 0)
		print_diags(&c.d);
	assert_true(k >= 0);
	assert_string_equal(c.d.msgs[k].flag, "nesting");
	compiled_fini(&c);
	free(deep);
}

/* Regression (found in this review at 35aa793, fixed in f0b9752): one
 * over-deep expression reported "expression nested too deeply" twice when a
 * comparison sat exactly at the limit (check_expr's "report once" test
 * `nest == HK_MAX_NESTING + 1` was true for both operands): 63 parentheses
 * around `subject is "x"` gave two errors. */
static void
test_compile_nesting_error_reported_once_per_expression(void **state)
{
	(void)state;
	struct hk_buf b;
	buf_init(&b);
	buf_adds(&b, "on deliver {\n    rule \"r\" when ");
	for (int i = 0; i < 63; i++)
		buf_addc(&b, '(');
	buf_adds(&b, "subject is \"x\"");
	for (int i = 0; i < 63; i++)
		buf_addc(&b, ')');
	buf_adds(&b, " { keep }\n}\n");
	struct compiled c;
	compile_text(&c, b.data, b.len, HK_LAYER_OPERATOR, NULL);
	assert_null(c.p);
	if (c.d.errors != 1)
		print_diags(&c.d);
	assert_int_equal(c.d.errors, 1);
	assert_int_equal(c.d.nmsgs, 1);
	compiled_fini(&c);
	buf_fini(&b);
}

/* A long left-deep 'and' chain is one source line the parser accepts
 * without growing its stack; everything that walks it afterwards must be
 * bounded too. Runs in a child process on an 8 MiB thread stack (the Linux
 * default for a main thread) so a crash fails this test instead of killing
 * the test binary. */
struct deep_job {
	const char *src;
	size_t len;
};

static void *
deep_compile_thread(void *arg)
{
	struct deep_job *j = arg;
	struct compiled c;
	compile_text(&c, j->src, j->len, HK_LAYER_OPERATOR, NULL);
	int errors = (int)c.d.errors;
	compiled_fini(&c);
	return (void *)(intptr_t)errors;
}

static int
run_in_child_with_stack(void *(*fn)(void *), void *arg, size_t stack)
{
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid == 0) {
		pthread_attr_t at;
		pthread_attr_init(&at);
		pthread_attr_setstacksize(&at, stack);
		pthread_t th;
		void *ret = NULL;
		if (pthread_create(&th, &at, fn, arg) != 0)
			_exit(3);
		pthread_join(th, &ret);
		_exit(ret ? 1 : 0);
	}
	int status = 0;
	waitpid(pid, &status, 0);
	return status;
}

/* Regression (crashed before 133c710, "and/or chains are flat n-ary
 * nodes"): a rule whose condition is a 400000-operand 'and' chain (2.8 MB,
 * under HK_MAX_SOURCE_SIZE), after a rule that ends with stop, overflowed
 * the stack in sema.c implies()/same_expr() in the shadowing check. Now the
 * chain is one flat node: it compiles, on an 8 MiB stack. */
static void
test_compile_long_and_chain_after_stop_rule_no_crash(void **state)
{
	(void)state;
	struct hk_buf b;
	buf_init(&b);
	buf_adds(&b, "const t = tls\non deliver {\n    rule \"a\" when t { stop }\n    rule \"b\" when t");
	for (int i = 0; i < 400000; i++)
		buf_adds(&b, " and t");
	buf_adds(&b, " { keep }\n}\n");
	assert_true(b.len < HK_MAX_SOURCE_SIZE);
	struct deep_job j = { b.data, b.len };
	int status = run_in_child_with_stack(deep_compile_thread, &j, 8u << 20);
	if (!WIFEXITED(status))
		print_message("compile child killed by signal %d\n", WIFSIGNALED(status) ? WTERMSIG(status) : -1);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0); /* no errors */
	buf_fini(&b);
}

/* BUG: codegen does not bound the number of values an action pushes. A
 * notify with 300 constant targets gives "internal error: generated code
 * rejected: invalid bytecode: stack overflow" (the verifier catches the
 * 300-deep stack), and one with 255 targets and a subject gives "internal
 * error: ... bad action operands" (argc is a u8 and wraps to 0). The
 * checker should report a located error (or codegen should pass lists),
 * never an internal error. (forward silently drops targets after the
 * 255th: harmless, since only 10 are used.) */
static void
test_compile_many_notify_targets_no_internal_error(void **state)
{
	(void)state;
	static const struct {
		int targets;
		bool subject;
	} cases[] = { { 300, false }, { 255, true } };
	for (size_t i = 0; i < HK_ARRAY_LEN(cases); i++) {
		struct hk_buf b;
		buf_init(&b);
		buf_adds(&b, "on deliver {\n    rule \"r\" { notify ");
		for (int k = 0; k < cases[i].targets; k++)
			buf_printf(&b, "%s\"n%d@x.example\"", k ? ", " : "", k);
		buf_adds(&b, cases[i].subject ? " subject \"s\" }\n}\n" : " }\n}\n");
		struct compiled c;
		compile_text(&c, b.data, b.len, HK_LAYER_OPERATOR, NULL);
		bool internal = find_msg(&c.d, DIAG_ERROR, "internal error") >= 0;
		/* either it compiles, or a located error says why not */
		bool explained = c.p != NULL || (c.d.errors > 0 && c.d.msgs[0].has_loc);
		if (internal || !explained)
			print_diags(&c.d);
		compiled_fini(&c);
		buf_fini(&b);
		assert_false(internal);
		assert_true(explained);
	}
}

/* BUG: a constant list is copied into the constant pool once per use (codegen
 * list_const() adds its elements again for every reference), so a
 * 20000-address list used in four rules needs 80000 constants and the
 * script is refused as "too large to compile (limits: 65535 constants...)"
 * although one copy would do. */
static void
test_compile_const_list_stored_once(void **state)
{
	(void)state;
	struct hk_buf b;
	buf_init(&b);
	buf_adds(&b, "const members = [");
	for (int i = 0; i < 20000; i++)
		buf_printf(&b, "%s\"m%d@x.example\"", i ? ", " : "", i);
	buf_adds(&b, "]\non deliver {\n"
		     "    rule \"a\" when from in members { fileinto \"A\" }\n"
		     "    rule \"b\" when to in members { fileinto \"B\" }\n"
		     "    rule \"c\" when cc in members { fileinto \"C\" }\n"
		     "    rule \"d\" when reply_to in members { fileinto \"D\" }\n"
		     "}\n");
	struct compiled c;
	compile_text(&c, b.data, b.len, HK_LAYER_OPERATOR, NULL);
	if (c.p == NULL)
		print_diags(&c.d);
	bool compiled = c.p != NULL;
	uint32_t nconsts = c.p ? c.p->nconsts : 0;
	compiled_fini(&c);
	buf_fini(&b);
	assert_true(compiled);
	assert_true(nconsts < 2 * 20000);
}

/* --- good input ----------------------------------------------------------------------- */

static void
test_compile_examples_and_stdlib_without_messages(void **state)
{
	(void)state;
	static const struct {
		const char *path;
		int layer;
	} files[] = {
		{ "examples/attachment-policy/domain.hk", D }, { "examples/autoreply/personal.hk", P },
		{ "examples/forwarding/personal.hk", P }, { "examples/mailing-list/domain.hk", D },
		{ "examples/retention/global.hk", O }, { "examples/smtp-policy/global.hk", O },
		{ "examples/warpmail-discard/personal.hk", P }, { "examples/warpmail-forward/personal.hk", P },
		{ "examples/warpmail-notify/personal.hk", P }, { "examples/warpmail-reject/personal.hk", P },
		{ "examples/warpmail-skip/personal.hk", P }, { "stdlib/attachments.hk", O }, { "stdlib/autoreply.hk", O },
		{ "stdlib/forwarding.hk", O }, { "stdlib/lists.hk", O }, { "stdlib/mailtypes.hk", O },
		{ "stdlib/retention.hk", O }, { "stdlib/warpmail.hk", O },
	};
	for (size_t i = 0; i < HK_ARRAY_LEN(files); i++) {
		struct diag d;
		diag_init(&d);
		struct hk_compile_opts o = { .layer = (enum hk_layer)files[i].layer, .stdlib_dir = "stdlib" };
		struct hk_program *p = hk_compile_file(files[i].path, &o, &d);
		if (p == NULL || d.nmsgs) {
			print_message("%s:\n", files[i].path);
			print_diags(&d);
		}
		assert_non_null(p);
		assert_int_equal(d.nmsgs, 0);
		assert_int_equal(p->layer, files[i].layer);
		hk_program_unref(&p);
		diag_fini(&d);
	}
}

static void
test_compile_missing_file_is_an_error_without_location(void **state)
{
	(void)state;
	struct diag d;
	diag_init(&d);
	struct hk_compile_opts o = { .layer = HK_LAYER_OPERATOR, .stdlib_dir = "stdlib" };
	struct hk_program *p = hk_compile_file("tests/unit/no-such-file.hk", &o, &d);
	assert_null(p);
	assert_int_equal(d.errors, 1);
	assert_false(d.msgs[0].has_loc);
	assert_non_null(strstr(d.msgs[0].text, "cannot read tests/unit/no-such-file.hk"));
	diag_fini(&d);
}

static void
test_compile_source_size_limit(void **state)
{
	(void)state;
	size_t n = HK_MAX_SOURCE_SIZE + 1;
	char *src = malloc(n);
	memset(src, '\n', n);
	struct diag d;
	diag_init(&d);
	struct hk_compile_opts o = { .layer = HK_LAYER_PERSONAL };
	struct hk_unit *u = hk_unit_load_text("big.hk", src, n, &o, &d);
	assert_null(u);
	assert_int_equal(d.errors, 1);
	assert_non_null(strstr(d.msgs[0].text, "big.hk: file too large (limit 4194304 bytes)"));
	diag_fini(&d);
	free(src);
}

static void
test_compile_import_loop_is_an_error(void **state)
{
	(void)state;
	/* a library that imports itself, through a file the test writes */
	char dir[] = "/tmp/hk-test-compile-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char *a = xasprintf("%s/loopa.hk", dir), *b = xasprintf("%s/loopb.hk", dir);
	FILE *fp = fopen(a, "w");
	fputs("import \"loopb\"\nconst from_a = 1\n", fp);
	fclose(fp);
	fp = fopen(b, "w");
	fputs("import \"loopa\"\nconst from_b = 2\n", fp);
	fclose(fp);
	const char *src = "import \"loopa\"\n" RULE_WHEN("size > from_b");
	struct diag d;
	diag_init(&d);
	struct hk_compile_opts o = { .layer = HK_LAYER_OPERATOR, .stdlib_dir = dir };
	struct hk_unit *u = hk_unit_load_text("t.hk", src, strlen(src), &o, &d);
	assert_non_null(u);
	long k = find_msg(&d, DIAG_ERROR, "import loop: \"loopa\" imports itself");
	if (k < 0)
		print_diags(&d);
	assert_true(k >= 0);
	assert_int_equal(d.errors, 1);
	hk_unit_free(&u);
	diag_fini(&d);
	unlink(a);
	unlink(b);
	rmdir(dir);
	free(a);
	free(b);
}

int
main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_compile_bad_snippets),
		cmocka_unit_test(test_compile_bare_group_name_asks_for_a_part),
		cmocka_unit_test(test_compile_misspelled_operator_names_the_bad_word),
		cmocka_unit_test(test_compile_forward_to_owner_warns),
		cmocka_unit_test(test_compile_personal_allowed_actions),
		cmocka_unit_test(test_compile_reports_several_errors_in_one_run),
		cmocka_unit_test(test_compile_syntax_error_does_not_hide_later_rules),
		cmocka_unit_test(test_compile_error_count_stops_at_max_errors_in_sema),
		cmocka_unit_test(test_compile_error_count_stops_at_max_errors_in_lexer),
		cmocka_unit_test(test_compile_warnings_are_capped_too),
		cmocka_unit_test(test_compile_expression_nesting_limit),
		cmocka_unit_test(test_compile_not_chain_nesting_limit),
		cmocka_unit_test(test_compile_block_nesting_limit),
		cmocka_unit_test(test_compile_nesting_error_reported_once_per_expression),
		cmocka_unit_test(test_compile_long_and_chain_after_stop_rule_no_crash),
		cmocka_unit_test(test_compile_many_notify_targets_no_internal_error),
		cmocka_unit_test(test_compile_const_list_stored_once),
		cmocka_unit_test(test_compile_examples_and_stdlib_without_messages),
		cmocka_unit_test(test_compile_missing_file_is_an_error_without_location),
		cmocka_unit_test(test_compile_source_size_limit),
		cmocka_unit_test(test_compile_import_loop_is_an_error),
	};
	return cmocka_run_group_tests_name("compile", tests, NULL, NULL);
}
