/*
 * vm.h - the rule VM: runs one stage of one compiled program against a
 * message view and the session/envelope facts, appending actions to a
 * result. Layers (operator, domain, panel, personal) are run one after the
 * other into the same result; hk_result_finalize then applies the
 * semantics (implicit keep, limits, RFC 3834 suppression) and yields the
 * final actions.
 *
 * Budgets: every run has an instruction budget and a memory budget (the
 * untrusted layers get small ones). A run that exceeds one ends with
 * HK_VM_BUDGET; the actions of that layer are dropped, so the message
 * falls back to implicit keep, and the reason is logged.
 */
#ifndef HK_VM_H
#define HK_VM_H

#include <stdbool.h>
#include <stdint.h>

#include "arena.h"
#include "message.h"
#include "program.h"

struct hk_env {
	int stage;                   /* the stage being run (STAGE_*) */
	struct hk_str env_from;      /* MAIL FROM address, "" for the null sender */
	const struct hk_str *env_to; /* RCPT TO addresses */
	size_t n_env_to;
	struct hk_str recipient;     /* the mailbox being delivered to */
	struct hk_str client_ip, client_helo, client_name, auth_user;
	bool tls;
	int spf;                     /* enum hk_spf; SPF_NONE when not checked */
	int64_t age;                 /* retention: seconds since delivery */
	bool seen, flagged;
	struct hk_str folder;
	struct hk_str plan_name;
	int64_t plan_retention, plan_max_size, plan_quota;
	int64_t now;                 /* unix time */
};

void hk_env_init(struct hk_env *e);

struct hk_vm_limits {
	uint64_t max_steps;      /* instructions per run */
	size_t max_memory;       /* bytes of scratch (strings built at run time) */
	uint32_t match_limit;    /* PCRE2 match limit per regex match */
};

void hk_vm_limits_for_layer(struct hk_vm_limits *l, int layer);

struct hk_action {
	uint8_t kind;      /* ACT_* */
	uint8_t layer;
	uint16_t rule;     /* index in the program's rule table, 0xFFFF: none */
	uint32_t pc;
	const struct hk_program *prog;
	struct hk_str arg[4]; /* per action: see vm.c act_* */
	int64_t num;
	uint32_t mask;
	const char *suppressed; /* set by finalize: why it will not happen */
};

struct hk_result {
	struct arena arena;  /* strings of the actions */
	struct hk_action *acts;
	size_t n, cap;
	bool stopped;        /* `stop` ran: later layers do not run */
	char *error;         /* last runtime error (budget), in arena */
};

void hk_result_init(struct hk_result *r);
void hk_result_fini(struct hk_result *r);

enum hk_vm_status { HK_VM_OK, HK_VM_SKIP, HK_VM_STOP, HK_VM_BUDGET, HK_VM_NOCODE };

/* Trace hooks for `hikyaku test --trace`; all optional. */
struct hk_trace {
	void *ctx;
	void (*rule)(void *ctx, const struct hk_program *p, unsigned rule);
	void (*test)(void *ctx, const struct hk_program *p, uint32_t pc, bool result);
	void (*action)(void *ctx, const struct hk_program *p, uint32_t pc, const struct hk_action *a);
};

enum hk_vm_status hk_vm_run(const struct hk_program *p, int stage, struct hk_message *msg, const struct hk_env *env,
    struct hk_result *res, const struct hk_vm_limits *lim, const struct hk_trace *trace);

/* Runs one stage of every layer in order (operator, domain, panel,
 * personal), each with its layer's budgets, into one result; a `stop`
 * (or refuse/tempfail) ends the remaining layers. Returns the status of
 * the last layer that ran. */
enum hk_vm_status hk_vm_run_layers(struct hk_program *const *progs, size_t n, int stage, struct hk_message *msg,
    const struct hk_env *env, struct hk_result *res, const struct hk_trace *trace);

/* The final decision for one recipient. */
struct hk_final {
	struct hk_action *acts; /* in arena of the result; suppressed ones have a reason */
	size_t n;
	bool keep_implicit;     /* the keep came from implicit keep */
	bool rejected;
};

/* Callbacks the server gives finalize (NULL members are treated as "no"). */
struct hk_policy {
	void *ctx;
	/* true when `sender` was answered by `recipient` less than `interval`
	 * seconds ago (the auto-reply log) */
	bool (*replied_recently)(void *ctx, struct hk_str recipient, struct hk_str sender, int64_t interval);
};

void hk_result_finalize(struct hk_result *r, struct hk_message *msg, const struct hk_env *env, const struct hk_policy *pol,
    struct hk_final *out);

/* One action in the language's words, e.g. `fileinto "Quotes"`,
 * `reply to hanako@friend.example.com`. */
void hk_action_format(const struct hk_action *a, const struct hk_env *env, struct hk_buf *out);

/* The reply target of an auto-reply (the envelope sender). */
struct hk_str hk_reply_target(const struct hk_env *env);

/* VM-private per-program data (constants as values). */
void vm_program_prepare(struct hk_program *p);
void vm_program_release(struct hk_program *p);

#endif
