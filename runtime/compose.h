/*
 * compose.h - the messages the rule actions send: the "mail received"
 * notice of `notify` (受信通知: sender, subject, recipients), the
 * auto-reply of `reply` (RFC 3834: Auto-Submitted: auto-replied,
 * In-Reply-To/References), and the header copy that `reject` keeps in the
 * Rejected folder (拒否通知フォルダ). Shared by the dry-run tester and the
 * delivery code, so what `hikyaku test --mail` shows is what is sent.
 *
 * Output is an RFC 5322 message with CRLF line ends; non-ASCII header text
 * is RFC 2047 encoded (UTF-8, B); bodies are UTF-8, sent 8bit when not
 * ASCII (the SMTP client downgrades for peers without 8BITMIME).
 */
#ifndef HK_COMPOSE_H
#define HK_COMPOSE_H

#include "message.h"
#include "vm.h"

struct hk_compose_ctx {
	struct hk_str hostname; /* for Message-ID and the notice sender */
	int64_t now;            /* unix time for Date */
};

/* Appends "Name: value" folded at 78 columns, RFC 2047 encoded when the
 * value is not printable ASCII, ending in CRLF. CR and LF in the value
 * become spaces (no header injection). */
void hk_header_put(struct hk_buf *out, const char *name, struct hk_str value);

void hk_compose_notice(struct hk_message *msg, const struct hk_env *env, const struct hk_action *a,
    const struct hk_compose_ctx *c, struct hk_buf *out);
void hk_compose_reply(struct hk_message *msg, const struct hk_env *env, const struct hk_action *a,
    const struct hk_compose_ctx *c, struct hk_buf *out);
/* The original header block plus X-Hikyaku-Rejected (reason, rule). */
void hk_compose_rejected(struct hk_message *msg, const struct hk_env *env, const struct hk_action *a,
    const struct hk_compose_ctx *c, struct hk_buf *out);

#endif
