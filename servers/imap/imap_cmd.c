/*
 * imap_cmd.c - the IMAP command parser (see imap_cmd.h): the tag, the
 * command name and the arguments of every command but FETCH
 * (imap_fetch.c) and SEARCH (imap_search.c).
 *
 * Grammar (RFC 3501 9 and the extensions' ABNF), one line per command
 * above its function. Strict about spaces: exactly one SP between
 * arguments, as the RFC says and every real client does.
 *
 * SECURITY: see imap_token.c; this file adds the per-command limits
 * (ENABLE names, ID pairs and their RFC 2971 sizes).
 */
#include "imap/imap_parse_int.h"

#include <string.h>
#include <strings.h>

#include "maildir.h"

static const struct {
	const char *name;
	unsigned states;
	bool uid_ok;
} commands[] = {
	[IMAP_CMD_NONE] = { "?", 0, false },
#define X(k, n, s, u) [IMAP_CMD_##k] = { n, s, u },
	IMAP_COMMANDS(X)
#undef X
};

const char *
imap_cmd_name(enum imap_cmd_kind k)
{
	return (size_t)k < HK_ARRAY_LEN(commands) ? commands[k].name : "?";
}

unsigned
imap_cmd_states(enum imap_cmd_kind k)
{
	return (size_t)k < HK_ARRAY_LEN(commands) ? commands[k].states : 0;
}

bool
imap_cmd_is_done(const char *line, size_t len)
{
	return len == 4 && strncasecmp(line, "DONE", 4) == 0;
}

static bool
tag_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && !strchr("(){%*\"\\+", c);
}

static char *
upper_dup(struct arena *a, struct hk_str s)
{
	char *d = arena_strndup(a, s.ptr, s.len);
	for (size_t i = 0; i < s.len; i++)
		if (d[i] >= 'a' && d[i] <= 'z')
			d[i] = (char)(d[i] - 32);
	return d;
}

/* select = "SELECT" SP mailbox [SP "(" select-param *(SP select-param) ")"]
 * (RFC 7162 3.1.8: the only parameter is CONDSTORE) */
static bool
p_select(struct imap_parser *P, struct imap_cmd *c)
{
	if (!imap_p_sp(P) || !imap_p_mailbox(P, &c->mailbox))
		return false;
	if (imap_p_at_end(P))
		return true;
	if (!imap_p_sp(P) || !imap_p_open(P))
		return false;
	do {
		if (!imap_p_keyword(P, "CONDSTORE"))
			return imap_p_fail(P, "Unknown SELECT parameter");
		c->condstore = true;
	} while (imap_p_accept(P, ' '));
	return imap_p_close(P);
}

/* list-mailbox = 1*list-char / string; list-char = ATOM-CHAR / "%" / "*" / "]" */
static bool
list_mailbox(struct imap_parser *P, const char **out)
{
	struct hk_str s;
	if (imap_p_peek(P, '"') || imap_p_peek(P, '{')) {
		if (!imap_p_astring(P, &s))
			return false;
	} else {
		const char *b = P->p;
		while (P->p < P->end && (unsigned char)*P->p > 0x20 && (unsigned char)*P->p < 0x7f &&
		       !strchr("(){\"\\", *P->p))
			P->p++;
		if (P->p == b)
			return imap_p_fail(P, "Invalid mailbox pattern");
		if (!imap_p_token(P))
			return false;
		s = (struct hk_str){ b, (size_t)(P->p - b) };
	}
	if (s.len > IMAP_MAX_MAILBOX)
		return imap_p_fail(P, "Mailbox pattern too long");
	struct hk_buf b;
	buf_init(&b);
	int rc = mutf7_decode(s.ptr, s.len, &b);
	if (rc == 0 && memchr(b.data ? b.data : "", '\0', b.len) != NULL)
		rc = -1; /* "&AAA-" decodes to U+0000 */
	if (rc == 0)
		*out = arena_strndup(P->a, b.data ? b.data : "", b.len);
	buf_fini(&b);
	if (rc != 0)
		return imap_p_fail(P, "Mailbox pattern is not valid modified UTF-7");
	return true;
}

/* list = "LIST" SP mailbox SP list-mailbox (the reference is not
 * INBOX-folded: it is a prefix) */
static bool
p_list(struct imap_parser *P, struct imap_cmd *c)
{
	return imap_p_sp(P) && list_mailbox(P, &c->list.reference) && imap_p_sp(P) &&
	    list_mailbox(P, &c->list.pattern);
}

/* status = "STATUS" SP mailbox SP "(" status-att *(SP status-att) ")" */
static bool
p_status(struct imap_parser *P, struct imap_cmd *c)
{
	static const struct {
		const char *name;
		uint32_t bit;
	} atts[] = {
		{ "MESSAGES", IMAP_STATUS_MESSAGES }, { "RECENT", IMAP_STATUS_RECENT },
		{ "UIDNEXT", IMAP_STATUS_UIDNEXT }, { "UIDVALIDITY", IMAP_STATUS_UIDVALIDITY },
		{ "UNSEEN", IMAP_STATUS_UNSEEN }, { "HIGHESTMODSEQ", IMAP_STATUS_HIGHESTMODSEQ },
	};
	if (!imap_p_sp(P) || !imap_p_mailbox(P, &c->mailbox) || !imap_p_sp(P) || !imap_p_open(P))
		return false;
	do {
		size_t i;
		for (i = 0; i < HK_ARRAY_LEN(atts); i++)
			if (imap_p_keyword(P, atts[i].name))
				break;
		if (i == HK_ARRAY_LEN(atts))
			return imap_p_fail(P, "Unknown STATUS item");
		c->status_items |= atts[i].bit;
	} while (imap_p_accept(P, ' '));
	return imap_p_close(P);
}

/* append = "APPEND" SP mailbox [SP flag-list] [SP date-time] SP literal */
static bool
p_append(struct imap_parser *P, struct imap_cmd *c)
{
	if (!imap_p_sp(P) || !imap_p_mailbox(P, &c->mailbox) || !imap_p_sp(P))
		return false;
	if (imap_p_peek(P, '(')) {
		if (!imap_p_flag_list(P, &c->append.flags) || !imap_p_sp(P))
			return false;
	}
	if (imap_p_peek(P, '"')) {
		if (!imap_p_datetime(P, &c->append.date, &c->append.tz_minutes) || !imap_p_sp(P))
			return false;
		c->append.has_date = true;
	}
	if (!imap_p_peek(P, '{'))
		return imap_p_fail(P, "Expected the message literal");
	struct imap_p_string st;
	if (!imap_p_string(P, true, &st))
		return false;
	c->append.streamed = st.streamed;
	c->append.message = st.s;
	c->append.size = st.streamed ? st.size : st.s.len;
	return true;
}

static bool
base64_or_eq(struct hk_str s)
{
	if (s.len == 1 && s.ptr[0] == '=')
		return true; /* RFC 4959: an empty initial response */
	size_t i = 0;
	for (; i < s.len; i++) {
		char ch = s.ptr[i];
		if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '+' ||
		        ch == '/'))
			break;
	}
	size_t pad = 0;
	while (i < s.len && s.ptr[i] == '=' && pad < 2)
		i++, pad++;
	return i == s.len && s.len % 4 == 0 && s.len > 0;
}

/* authenticate = "AUTHENTICATE" SP auth-type [SP (base64 / "=")] (RFC 4959) */
static bool
p_authenticate(struct imap_parser *P, struct imap_cmd *c)
{
	struct hk_str mech;
	if (!imap_p_sp(P) || !imap_p_atom(P, false, &mech))
		return false;
	c->auth.mechanism = upper_dup(P->a, mech);
	if (imap_p_at_end(P))
		return true;
	struct hk_str ir;
	if (!imap_p_sp(P) || !imap_p_atom(P, false, &ir))
		return false;
	if (!base64_or_eq(ir))
		return imap_p_fail(P, "Invalid base64 in initial response");
	c->auth.initial = arena_strndup(P->a, ir.ptr, ir.len);
	return true;
}

/* login = "LOGIN" SP userid SP password (both astring) */
static bool
p_login(struct imap_parser *P, struct imap_cmd *c)
{
	struct hk_str u, pw;
	if (!imap_p_sp(P) || !imap_p_astring(P, &u) || !imap_p_sp(P) || !imap_p_astring(P, &pw))
		return false;
	c->auth.user = u.ptr;
	c->auth.password = pw.ptr;
	return true;
}

/* enable = "ENABLE" 1*(SP capability) (RFC 5161) */
static bool
p_enable(struct imap_parser *P, struct imap_cmd *c)
{
	c->enable.names = arena_alloc(P->a, IMAP_MAX_ENABLE * sizeof(*c->enable.names));
	do {
		struct hk_str a;
		if (!imap_p_sp(P) || !imap_p_atom(P, false, &a))
			return false;
		if (c->enable.n >= IMAP_MAX_ENABLE)
			return imap_p_fail(P, "Too many capabilities");
		c->enable.names[c->enable.n++] = upper_dup(P->a, a);
	} while (!imap_p_at_end(P));
	return true;
}

/* id = "ID" SP id-params-list; id-params-list = "(" #(string SP nstring) ")" / nil
 * (RFC 2971 3.3: at most 30 pairs, fields of 30 octets, values of 1024) */
static bool
p_id(struct imap_parser *P, struct imap_cmd *c)
{
	if (!imap_p_sp(P))
		return false;
	if (imap_p_keyword(P, "NIL"))
		return true;
	if (!imap_p_open(P))
		return imap_p_fail(P, "Expected NIL or a list");
	c->id.pairs = arena_alloc(P->a, IMAP_MAX_ID_PAIRS * sizeof(*c->id.pairs));
	if (imap_p_peek(P, ')'))
		return imap_p_close(P);
	do {
		struct imap_p_string f;
		struct hk_str field, value;
		if (!imap_p_string(P, false, &f))
			return false;
		if (f.literal && !(f.s.len <= IMAP_MAX_ID_FIELD && memchr(f.s.ptr, '\0', f.s.len) == NULL))
			return imap_p_fail(P, "Invalid ID field");
		field = f.literal ? arena_str(P->a, f.s.ptr, f.s.len) : f.s;
		if (field.len > IMAP_MAX_ID_FIELD)
			return imap_p_fail(P, "ID field name too long");
		if (!imap_p_sp(P) || !imap_p_nstring(P, &value))
			return false;
		if (value.len > IMAP_MAX_ID_VALUE)
			return imap_p_fail(P, "ID value too long");
		if (c->id.n >= IMAP_MAX_ID_PAIRS)
			return imap_p_fail(P, "Too many ID pairs");
		c->id.pairs[c->id.n++] = (struct imap_id_pair){ field.ptr, value.ptr };
	} while (imap_p_accept(P, ' '));
	return imap_p_close(P);
}

/* store = "STORE" SP sequence-set [SP "(" "UNCHANGEDSINCE" SP mod-sequence-value ")"]
 *         SP store-att-flags
 * store-att-flags = (["+" / "-"] "FLAGS" [".SILENT"]) SP (flag-list / (flag *(SP flag))) */
static bool
p_store(struct imap_parser *P, struct imap_cmd *c)
{
	struct imap_store *s = &c->store;
	if (!imap_p_sp(P) || !imap_p_seqset(P, &s->set) || !imap_p_sp(P))
		return false;
	if (imap_p_peek(P, '(')) {
		if (!imap_p_open(P) || !imap_p_keyword(P, "UNCHANGEDSINCE"))
			return imap_p_fail(P, "Unknown STORE modifier");
		if (!imap_p_sp(P) || !imap_p_number64(P, &s->unchangedsince) || !imap_p_close(P) || !imap_p_sp(P))
			return false;
		s->unchangedsince_set = true;
	}
	s->op = imap_p_accept(P, '+') ? IMAP_STORE_ADD : imap_p_accept(P, '-') ? IMAP_STORE_REMOVE : IMAP_STORE_SET;
	if (imap_p_keyword(P, "FLAGS.SILENT"))
		s->silent = true;
	else if (!imap_p_keyword(P, "FLAGS"))
		return imap_p_fail(P, "Expected FLAGS, +FLAGS or -FLAGS");
	if (!imap_p_sp(P))
		return false;
	if (imap_p_peek(P, '('))
		return imap_p_flag_list(P, &s->flags);
	return imap_p_flags_bare(P, &s->flags);
}

/* copy = "COPY" SP sequence-set SP mailbox; move (RFC 6851) likewise */
static bool
p_copy(struct imap_parser *P, struct imap_cmd *c)
{
	return imap_p_sp(P) && imap_p_seqset(P, &c->set) && imap_p_sp(P) && imap_p_mailbox(P, &c->mailbox);
}

static bool
p_args(struct imap_parser *P, struct imap_cmd *c)
{
	switch (c->kind) {
	case IMAP_CMD_CAPABILITY:
	case IMAP_CMD_NOOP:
	case IMAP_CMD_LOGOUT:
	case IMAP_CMD_STARTTLS:
	case IMAP_CMD_NAMESPACE:
	case IMAP_CMD_IDLE:
	case IMAP_CMD_CHECK:
	case IMAP_CMD_CLOSE:
	case IMAP_CMD_UNSELECT:
		return true;
	case IMAP_CMD_EXPUNGE: /* uid-expunge = "UID EXPUNGE" SP sequence-set (RFC 4315) */
		return !c->uid || (imap_p_sp(P) && imap_p_seqset(P, &c->set));
	case IMAP_CMD_ID:
		return p_id(P, c);
	case IMAP_CMD_AUTHENTICATE:
		return p_authenticate(P, c);
	case IMAP_CMD_LOGIN:
		return p_login(P, c);
	case IMAP_CMD_ENABLE:
		return p_enable(P, c);
	case IMAP_CMD_SELECT:
	case IMAP_CMD_EXAMINE:
		return p_select(P, c);
	case IMAP_CMD_CREATE:
	case IMAP_CMD_DELETE:
	case IMAP_CMD_SUBSCRIBE:
	case IMAP_CMD_UNSUBSCRIBE:
		return imap_p_sp(P) && imap_p_mailbox(P, &c->mailbox);
	case IMAP_CMD_RENAME:
		return imap_p_sp(P) && imap_p_mailbox(P, &c->mailbox) && imap_p_sp(P) && imap_p_mailbox(P, &c->mailbox2);
	case IMAP_CMD_LIST:
	case IMAP_CMD_LSUB:
		return p_list(P, c);
	case IMAP_CMD_STATUS:
		return p_status(P, c);
	case IMAP_CMD_APPEND:
		return p_append(P, c);
	case IMAP_CMD_SEARCH:
		return imap_p_search(P, &c->search);
	case IMAP_CMD_FETCH:
		return imap_p_sp(P) && imap_p_fetch(P, &c->fetch);
	case IMAP_CMD_STORE:
		return p_store(P, c);
	case IMAP_CMD_COPY:
	case IMAP_CMD_MOVE:
		return p_copy(P, c);
	case IMAP_CMD_NONE:
		break;
	}
	return imap_p_fail(P, "Unknown command");
}

static enum imap_cmd_kind
lookup(struct hk_str name)
{
	for (size_t k = 1; k < HK_ARRAY_LEN(commands); k++)
		if (str_ieq_cstr(name, commands[k].name))
			return (enum imap_cmd_kind)k;
	return IMAP_CMD_NONE;
}

/* command = tag SP (command-any / command-auth / command-nonauth / command-select) */
enum imap_parse_status
imap_cmd_parse(const char *text, size_t len, size_t streamed_at, struct arena *a, struct imap_cmd *cmd)
{
	memset(cmd, 0, sizeof(*cmd));
	struct imap_parser P = { .base = text, .p = text, .end = text + len, .streamed_at = streamed_at, .a = a };
	size_t t = 0;
	while (t < len && tag_char((unsigned char)text[t]))
		t++;
	if (t == 0 || t > IMAP_MAX_TAG || t >= len || text[t] != ' ') {
		cmd->error = t == 0 || t > IMAP_MAX_TAG ? "Invalid tag" : t >= len ? "Missing command" : "Invalid tag";
		if (t > 0 && t <= IMAP_MAX_TAG && t >= len)
			cmd->tag = arena_strndup(a, text, t); /* "a1" alone: a tagged BAD is possible */
		return cmd->tag != NULL ? IMAP_PARSE_BAD : IMAP_PARSE_BAD_TAG;
	}
	cmd->tag = arena_strndup(a, text, t);
	P.p = text + t + 1;
	struct hk_str name;
	if (!imap_p_atom(&P, false, &name)) {
		cmd->error = "Missing or invalid command";
		return IMAP_PARSE_BAD;
	}
	if (str_ieq_cstr(name, "UID")) {
		cmd->uid = true;
		if (!imap_p_sp(&P) || !imap_p_atom(&P, false, &name)) {
			cmd->error = "Missing command after UID";
			return IMAP_PARSE_BAD;
		}
	}
	cmd->kind = lookup(name);
	if (cmd->kind == IMAP_CMD_NONE || (cmd->uid && !commands[cmd->kind].uid_ok)) {
		cmd->error = cmd->uid ? "Unknown UID command" : "Unknown command";
		cmd->kind = IMAP_CMD_NONE;
		return IMAP_PARSE_BAD;
	}
	bool ok = p_args(&P, cmd);
	if (ok && !imap_p_at_end(&P))
		ok = imap_p_fail(&P, "Unexpected characters after the arguments");
	if (!ok) {
		cmd->error = arena_printf(a, "%s: %s", commands[cmd->kind].name, P.error ? P.error : "Syntax error");
		return IMAP_PARSE_BAD;
	}
	return IMAP_PARSE_OK;
}
