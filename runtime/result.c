/*
 * result.c - from the actions the layers collected to the final decision
 * for one recipient, and the words each action is printed with.
 *
 * Semantics (doc/language.md, "What happens to a message"):
 *   - implicit keep: unless something discarded, rejected or filed the
 *     message, it is kept in INBOX; forward and notify never cancel it;
 *   - duplicates collapse (two fileinto "X" store one copy);
 *   - at most HK_MAX_FORWARDS forward targets per recipient; a forward to
 *     the recipient itself is dropped (it would loop);
 *   - one auto-reply per message, never to the null sender, automated
 *     senders, auto-submitted or mailing-list mail, not when the
 *     recipient is not among the message's To/Cc/Bcc, and at most once per
 *     interval per sender (RFC 3834, RFC 5230);
 *   - notices are not sent about bounces, auto-submitted or list mail.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fields.h"
#include "vm.h"

#define HK_MAX_FORWARDS_RT 10
#define HK_DEFAULT_REPLY_EVERY (7 * 86400)
#define HK_DEFAULT_REPLY_SUBJECT "Notification for your mail."

static bool
str_ieq_s(struct hk_str a, struct hk_str b)
{
	return str_ieq(a, b);
}

static bool
has_header(struct hk_message *m, const char *name)
{
	const struct hk_str *v;
	return m && hk_message_header(m, name, strlen(name), &v) > 0;
}

static struct hk_str
first_header(struct hk_message *m, const char *name)
{
	const struct hk_str *v;
	if (m && hk_message_header(m, name, strlen(name), &v) > 0)
		return v[0];
	return (struct hk_str){ "", 0 };
}

static struct hk_str
trim(struct hk_str s)
{
	while (s.len && (s.ptr[0] == ' ' || s.ptr[0] == '\t'))
		s.ptr++, s.len--;
	while (s.len && (s.ptr[s.len - 1] == ' ' || s.ptr[s.len - 1] == '\t' || s.ptr[s.len - 1] == '\r'))
		s.len--;
	return s;
}

/* Why this message must not be answered automatically; NULL when it may. */
static const char *
automated_reason(struct hk_message *m, const struct hk_env *env)
{
	struct hk_str from = env->env_from;
	if (from.len == 0)
		return "bounce or notification (empty return path)";
	const char *at = memchr(from.ptr, '@', from.len);
	struct hk_str local = { from.ptr, at ? (size_t)(at - from.ptr) : from.len };
	static const char *const robots[] = { "mailer-daemon", "postmaster", "listserv", "majordomo", "noreply", "no-reply",
		"do-not-reply", "donotreply", NULL };
	for (int i = 0; robots[i]; i++)
		if (str_ieq_cstr(local, robots[i]))
			return "automated sender";
	if ((local.len > 6 && strncasecmp(local.ptr, "owner-", 6) == 0) ||
	    (local.len > 8 && strncasecmp(local.ptr + local.len - 8, "-request", 8) == 0))
		return "mailing-list mail";
	struct hk_str as = trim(first_header(m, "Auto-Submitted"));
	if (as.len && !(as.len >= 2 && strncasecmp(as.ptr, "no", 2) == 0 && (as.len == 2 || as.ptr[2] == ';' || as.ptr[2] == ' ')))
		return "auto-submitted mail";
	if (has_header(m, "List-Id") || has_header(m, "List-Post") || has_header(m, "List-Unsubscribe"))
		return "mailing-list mail";
	struct hk_str prec = trim(first_header(m, "Precedence"));
	if (str_ieq_cstr(prec, "bulk") || str_ieq_cstr(prec, "list") || str_ieq_cstr(prec, "junk"))
		return "bulk or list mail (Precedence)";
	if (has_header(m, "X-Auto-Response-Suppress") || has_header(m, "X-Autoreply") || has_header(m, "X-Autorespond"))
		return "auto-submitted mail";
	return NULL;
}

static bool
recipient_addressed(struct hk_message *m, struct hk_str rcpt)
{
	static const char *const hdrs[] = { "To", "Cc", "Bcc", "Resent-To", "Resent-Cc", NULL };
	if (m == NULL || rcpt.len == 0)
		return true;
	for (int h = 0; hdrs[h]; h++) {
		const struct hk_address *a;
		size_t n = hk_message_addresses(m, hdrs[h], strlen(hdrs[h]), &a);
		for (size_t i = 0; i < n; i++)
			if (str_ieq_s(a[i].addr, rcpt))
				return true;
	}
	return false;
}

struct hk_str
hk_reply_target(const struct hk_env *env)
{
	return env->env_from;
}

/* `fileinto "INBOX"` is `keep` (IMAP: INBOX is case-insensitive). */
static bool
is_inbox(const struct hk_action *a)
{
	return a->kind == ACT_KEEP || (a->kind == ACT_FILEINTO && str_ieq_cstr(a->arg[0], "INBOX"));
}

static bool
same_action(const struct hk_action *a, const struct hk_action *b)
{
	if (is_inbox(a) && is_inbox(b))
		return true;
	if (a->kind != b->kind)
		return false;
	switch (a->kind) {
	case ACT_KEEP:
	case ACT_DISCARD:
	case ACT_STRIP:
	case ACT_EXPUNGE:
	case ACT_REJECT:
		return true;
	case ACT_FILEINTO:
	case ACT_EXPAND:
	case ACT_FLAG:
		return str_eq(a->arg[0], b->arg[0]);
	case ACT_FORWARD:
	case ACT_NOTIFY:
		return str_ieq(a->arg[0], b->arg[0]);
	default:
		return false;
	}
}

void
hk_result_finalize(struct hk_result *r, struct hk_message *msg, const struct hk_env *env, const struct hk_policy *pol,
    struct hk_final *out)
{
	bool cancel_keep = false, explicit_keep = false, rejected = false;
	unsigned forwards = 0;
	bool replied = false;
	const char *automated = NULL;
	bool automated_done = false;

	for (size_t i = 0; i < r->n; i++) {
		struct hk_action *a = &r->acts[i];
		if (a->suppressed)
			continue;
		/* values computed at run time get the checks the compiler gives
		 * constants: a message must not choose a folder like "../x" */
		if (a->kind == ACT_FILEINTO && !hk_folder_name_ok(a->arg[0]))
			a->suppressed = "not a valid folder name";
		else if (a->kind == ACT_FLAG && !hk_flag_ok(a->arg[0]))
			a->suppressed = "not a valid flag";
		else if ((a->kind == ACT_FORWARD || a->kind == ACT_NOTIFY) && !hk_address_ok(a->arg[0]))
			a->suppressed = "not an e-mail address";
		else if (a->kind == ACT_REPLY && (a->mask & 4) && !hk_address_ok(a->arg[2]))
			a->suppressed = "the reply sender is not an e-mail address";
		if (a->suppressed)
			continue;
		for (size_t k = 0; k < i; k++)
			if (!r->acts[k].suppressed && same_action(&r->acts[k], a)) {
				a->suppressed = "duplicate";
				break;
			}
		if (a->suppressed)
			continue;
		switch (a->kind) {
		case ACT_KEEP:
			explicit_keep = true;
			break;
		case ACT_FILEINTO:
			if (is_inbox(a))
				explicit_keep = true;
			else
				cancel_keep = true;
			break;
		case ACT_DISCARD:
		case ACT_EXPAND: /* a list address has no mailbox of its own */
			cancel_keep = true;
			break;
		case ACT_REJECT:
			cancel_keep = true;
			rejected = true;
			break;
		case ACT_FORWARD:
			if (env->recipient.len && str_ieq(a->arg[0], env->recipient))
				a->suppressed = "forward to the mailbox itself would loop";
			else if (forwards >= HK_MAX_FORWARDS_RT)
				a->suppressed = "more than 10 forward targets";
			else
				forwards++;
			break;
		case ACT_NOTIFY:
			if (!automated_done) {
				automated = automated_reason(msg, env);
				automated_done = true;
			}
			if (automated)
				a->suppressed = automated;
			break;
		case ACT_REPLY: {
			if (!automated_done) {
				automated = automated_reason(msg, env);
				automated_done = true;
			}
			if (a->arg[0].ptr == NULL)
				a->arg[0] = HK_STR(HK_DEFAULT_REPLY_SUBJECT);
			if (!(a->mask & 8) || a->num <= 0)
				a->num = HK_DEFAULT_REPLY_EVERY;
			struct hk_str to = hk_reply_target(env);
			if (replied)
				a->suppressed = "only one auto-reply per message";
			else if (automated)
				a->suppressed = automated;
			else if (env->recipient.len && str_ieq(to, env->recipient))
				a->suppressed = "the message comes from the recipient itself";
			else if (!recipient_addressed(msg, env->recipient))
				a->suppressed = "the recipient is not in To, Cc or Bcc";
			else if (pol && pol->replied_recently && pol->replied_recently(pol->ctx, env->recipient, to, a->num))
				a->suppressed = "already answered recently";
			if (!a->suppressed)
				replied = true;
			break;
		}
		default:
			break;
		}
	}
	out->acts = NULL;
	out->n = 0;
	out->keep_implicit = false;
	out->rejected = rejected;
	/* the final list: the actions in order, plus the implicit keep */
	size_t cap = r->n + 1;
	struct hk_action *list = arena_calloc(&r->arena, cap, sizeof(*list));
	size_t n = 0;
	bool keep_listed = false;
	for (size_t i = 0; i < r->n; i++) {
		const struct hk_action *a = &r->acts[i];
		if (a->kind == ACT_SKIP || a->kind == ACT_STOP)
			continue;
		if (a->kind == ACT_KEEP && !a->suppressed)
			keep_listed = true;
		if (a->suppressed && strcmp(a->suppressed, "duplicate") == 0)
			continue;
		list[n++] = *a;
	}
	bool smtp_stage_refusal = false;
	for (size_t i = 0; i < n; i++)
		if (list[i].kind == ACT_REFUSE || list[i].kind == ACT_TEMPFAIL || list[i].kind == ACT_EXPUNGE)
			smtp_stage_refusal = true;
	if (!cancel_keep && !explicit_keep && !keep_listed && !smtp_stage_refusal &&
	    (env->stage == STAGE_DELIVER || env->stage == STAGE_RETENTION)) {
		memset(&list[n], 0, sizeof(list[n]));
		list[n].kind = ACT_KEEP;
		list[n].rule = 0xFFFF;
		n++;
		out->keep_implicit = true;
	}
	out->acts = list;
	out->n = n;
}

static void
put_quoted(struct hk_buf *out, struct hk_str s)
{
	buf_addc(out, '"');
	for (size_t i = 0; i < s.len; i++) {
		char c = s.ptr[i];
		if (c == '"' || c == '\\')
			buf_addc(out, '\\');
		if (c == '\n')
			buf_adds(out, "\\n");
		else if (c == '\r')
			buf_adds(out, "\\r");
		else if (c == '\t')
			buf_adds(out, "\\t");
		else
			buf_addc(out, c);
	}
	buf_addc(out, '"');
}

void
hk_action_format(const struct hk_action *a, const struct hk_env *env, struct hk_buf *out)
{
	switch (a->kind) {
	case ACT_KEEP: buf_adds(out, "keep"); break;
	case ACT_FILEINTO: buf_adds(out, "fileinto "); put_quoted(out, a->arg[0]); break;
	case ACT_FORWARD: buf_printf(out, "forward to %.*s", (int)a->arg[0].len, a->arg[0].ptr); break;
	case ACT_NOTIFY:
		buf_printf(out, "notify to %.*s", (int)a->arg[0].len, a->arg[0].ptr);
		if (a->mask & 1) {
			buf_adds(out, " subject ");
			put_quoted(out, a->arg[1]);
		}
		break;
	case ACT_REPLY: {
		struct hk_str to = hk_reply_target(env);
		buf_printf(out, "reply to %.*s", (int)(to.len ? to.len : 2), to.len ? to.ptr : "<>");
		break;
	}
	case ACT_REJECT:
		buf_adds(out, "reject");
		if (a->mask & 1) {
			buf_addc(out, ' ');
			put_quoted(out, a->arg[0]);
		}
		break;
	case ACT_DISCARD: buf_adds(out, "discard"); break;
	case ACT_SKIP: buf_adds(out, "skip"); break;
	case ACT_STOP: buf_adds(out, "stop"); break;
	case ACT_EXPAND: buf_adds(out, "expand list "); put_quoted(out, a->arg[0]); break;
	case ACT_STRIP: buf_adds(out, "strip attachments"); break;
	case ACT_ADD_HEADER:
		buf_adds(out, "add header ");
		put_quoted(out, a->arg[0]);
		buf_addc(out, ' ');
		put_quoted(out, a->arg[1]);
		break;
	case ACT_REMOVE_HEADER: buf_adds(out, "remove header "); put_quoted(out, a->arg[0]); break;
	case ACT_FLAG: buf_adds(out, "flag "); put_quoted(out, a->arg[0]); break;
	case ACT_REFUSE:
	case ACT_TEMPFAIL:
		buf_printf(out, "%s %lld", a->kind == ACT_REFUSE ? "refuse" : "tempfail", (long long)a->num);
		if (a->mask & 2) {
			buf_addc(out, ' ');
			put_quoted(out, a->arg[0]);
		}
		break;
	case ACT_EXPUNGE: buf_adds(out, "expunge"); break;
	case ACT_LOG: buf_adds(out, "log "); put_quoted(out, a->arg[0]); break;
	default: buf_adds(out, "?"); break;
	}
}
