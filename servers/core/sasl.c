/*
 * sasl.c - SASL mechanisms, server side (see sasl.h).
 *
 * Every mechanism fails the same way for an unknown user as for a wrong
 * password (SCRAM goes on to the proof with dummy keys; PLAIN hashes as
 * long), so the answers do not tell which accounts exist.
 */
#include "sasl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "accounts.h"
#include "scram.h"

#define SASL_LOGIN_FIELD_MAX 1024 /* LOGIN user name or password, decoded */

static const char *const mech_names[SASL_MECH_COUNT] = {
	[SASL_PLAIN] = "PLAIN",
	[SASL_LOGIN] = "LOGIN",
	[SASL_CRAM_MD5] = "CRAM-MD5",
	[SASL_SCRAM_SHA_256] = "SCRAM-SHA-256",
};

struct sasl_server {
	enum sasl_mech mech;
	int step;
	char user[HK_ADDRESS_MAX + 1];
	char challenge[HK_CHALLENGE_MAX]; /* CRAM-MD5 */
	struct hk_scram_server *scram;
	bool scram_proved;                /* waiting for the empty final response */
	const char *hostname;
};

bool
sasl_mech_parse(const char *name, size_t len, enum sasl_mech *m_r)
{
	for (int i = 0; i < SASL_MECH_COUNT; i++)
		if (strlen(mech_names[i]) == len && strncasecmp(mech_names[i], name, len) == 0) {
			*m_r = (enum sasl_mech)i;
			return true;
		}
	return false;
}

const char *
sasl_mech_name(enum sasl_mech m)
{
	return m < SASL_MECH_COUNT ? mech_names[m] : "?";
}

bool
sasl_mech_sends_password(enum sasl_mech m)
{
	return m == SASL_PLAIN || m == SASL_LOGIN;
}

bool
sasl_mech_legacy(enum sasl_mech m)
{
	return m == SASL_CRAM_MD5;
}

struct sasl_server *
sasl_server_new(enum sasl_mech m, const char *hostname)
{
	if (m >= SASL_MECH_COUNT)
		return NULL;
	struct sasl_server *s = xcalloc(1, sizeof(*s));
	s->mech = m;
	s->hostname = hostname;
	return s;
}

void
sasl_server_free(struct sasl_server **sp)
{
	struct sasl_server *s = *sp;
	if (s == NULL)
		return;
	*sp = NULL;
	hk_scram_server_free(&s->scram);
	explicit_bzero(s, sizeof(*s));
	free(s);
}

const char *
sasl_server_user(const struct sasl_server *s)
{
	return s->user;
}

bool
sasl_plain_split(const char *data, size_t len, struct hk_str *authcid, struct hk_str *passwd)
{
	const char *end = data + len;
	const char *n1 = memchr(data, '\0', len);
	const char *n2 = n1 ? memchr(n1 + 1, '\0', (size_t)(end - n1 - 1)) : NULL;
	if (n2 == NULL || memchr(n2 + 1, '\0', (size_t)(end - n2 - 1)))
		return false;
	*authcid = (struct hk_str){ n1 + 1, (size_t)(n2 - n1 - 1) };
	*passwd = (struct hk_str){ n2 + 1, (size_t)(end - n2 - 1) };
	size_t zl = (size_t)(n1 - data);
	if (authcid->len == 0 || authcid->len > HK_ADDRESS_MAX)
		return false;
	/* an authorization identity other than the user itself would be a
	 * proxy login, which nobody may do here */
	return zl == 0 || (zl == authcid->len && strncasecmp(data, authcid->ptr, zl) == 0);
}

static enum sasl_status
verify_password(struct sasl_server *s, struct hk_accounts *a, struct hk_str user, const char *pass)
{
	snprintf(s->user, sizeof(s->user), "%.*s", (int)user.len, user.ptr);
	struct hk_user *u = xmalloc(sizeof(*u));
	enum hk_auth_result r = hk_accounts_auth_plain(a, s->user, pass, u);
	if (r == HK_AUTH_OK)
		snprintf(s->user, sizeof(s->user), "%s", u->address);
	free(u);
	return r == HK_AUTH_OK ? SASL_OK : r == HK_AUTH_TEMPFAIL ? SASL_TEMPFAIL : SASL_FAIL;
}

static enum sasl_status
step_plain(struct sasl_server *s, struct hk_accounts *a, const char *data, size_t len)
{
	struct hk_str user, pass;
	if (!sasl_plain_split(data, len, &user, &pass))
		return SASL_MALFORMED;
	char *p = xstrndup(pass.ptr, pass.len);
	enum sasl_status st = verify_password(s, a, user, p);
	explicit_bzero(p, pass.len);
	free(p);
	return st;
}

static enum sasl_status
step_login(struct sasl_server *s, struct hk_accounts *a, const char *data, size_t len, bool has_data, struct hk_buf *ch)
{
	if (has_data && (len > SASL_LOGIN_FIELD_MAX || memchr(data, '\0', len)))
		return SASL_MALFORMED;
	if (s->user[0] == '\0' && s->step < 2) {
		if (!has_data || (s->step == 0 && len == 0)) {
			if (s->step > 0)
				return SASL_MALFORMED;
			buf_adds(ch, "Username:");
			s->step = 1;
			return SASL_CONTINUE;
		}
		if (len == 0 || len > HK_ADDRESS_MAX)
			return SASL_MALFORMED;
		snprintf(s->user, sizeof(s->user), "%.*s", (int)len, data);
		s->step = 2;
		buf_adds(ch, "Password:");
		return SASL_CONTINUE;
	}
	if (!has_data)
		return SASL_MALFORMED;
	char *p = xstrndup(data, len);
	char user[HK_ADDRESS_MAX + 1];
	snprintf(user, sizeof(user), "%s", s->user);
	enum sasl_status st = verify_password(s, a, (struct hk_str){ user, strlen(user) }, p);
	explicit_bzero(p, len);
	free(p);
	return st;
}

static enum sasl_status
step_cram(struct sasl_server *s, struct hk_accounts *a, const char *data, size_t len, struct hk_buf *ch)
{
	if (s->step == 0) {
		/* a client that sends an initial response has it wrong: the
		 * server speaks first in CRAM-MD5 */
		if (len > 0)
			return SASL_MALFORMED;
		hk_auth_challenge(s->hostname, s->challenge);
		buf_adds(ch, s->challenge);
		s->step = 1;
		return SASL_CONTINUE;
	}
	if (len == 0 || len > HK_ADDRESS_MAX + 40 || memchr(data, '\0', len))
		return SASL_MALFORMED;
	char *resp = xstrndup(data, len);
	const char *sp = strrchr(resp, ' ');
	if (sp)
		snprintf(s->user, sizeof(s->user), "%.*s", (int)(sp - resp), resp);
	char addr[HK_ADDRESS_MAX + 1] = "";
	enum hk_auth_result r = hk_accounts_auth_cram_md5(a, s->challenge, resp, addr);
	free(resp);
	if (r == HK_AUTH_OK)
		snprintf(s->user, sizeof(s->user), "%s", addr);
	return r == HK_AUTH_OK ? SASL_OK : r == HK_AUTH_TEMPFAIL ? SASL_TEMPFAIL : SASL_FAIL;
}

static enum sasl_status
step_scram(struct sasl_server *s, struct hk_accounts *a, const char *data, size_t len, bool has_data, struct hk_buf *ch)
{
	if (s->scram_proved) /* RFC 5802: the client answers our server-final with an empty response */
		return len == 0 ? SASL_OK : SASL_MALFORMED;
	if (s->scram == NULL) {
		if (!has_data) {
			if (s->step > 0)
				return SASL_MALFORMED;
			s->step = 1;
			return SASL_CONTINUE; /* empty challenge: send client-first */
		}
		struct hk_scram_opts o = { false, NULL, 0 };
		s->scram = hk_scram_server_new(&o);
		if (hk_scram_server_client_first(s->scram, data, len) != HK_SCRAM_CONTINUE)
			return SASL_MALFORMED;
		struct hk_scram_keys keys;
		char addr[HK_ADDRESS_MAX + 1] = "";
		snprintf(s->user, sizeof(s->user), "%s", hk_scram_server_username(s->scram));
		enum hk_acct_status ks = hk_accounts_scram_keys(a, hk_scram_server_username(s->scram), &keys, addr);
		if (ks == HK_ACCT_OK)
			snprintf(s->user, sizeof(s->user), "%s", addr);
		else if (ks != HK_ACCT_NOTFOUND) {
			explicit_bzero(&keys, sizeof(keys));
			return SASL_TEMPFAIL;
		}
		enum hk_scram_status st = hk_scram_server_first(s->scram, ks == HK_ACCT_OK ? &keys : NULL, ch);
		explicit_bzero(&keys, sizeof(keys));
		s->step = 2;
		return st == HK_SCRAM_CONTINUE ? SASL_CONTINUE : SASL_MALFORMED;
	}
	enum hk_scram_status st = hk_scram_server_final(s->scram, data, len, ch);
	if (st != HK_SCRAM_OK)
		return SASL_FAIL;
	s->scram_proved = true;
	return SASL_CONTINUE; /* server-final "v=..." */
}

enum sasl_status
sasl_server_step(struct sasl_server *s, struct hk_accounts *a, const char *data, size_t len, bool has_data,
    struct hk_buf *challenge)
{
	if (data == NULL) {
		data = "";
		len = 0;
	}
	switch (s->mech) {
	case SASL_PLAIN:
		if (!has_data && s->step == 0) {
			s->step = 1;
			return SASL_CONTINUE; /* empty challenge: send the credentials */
		}
		return step_plain(s, a, data, len);
	case SASL_LOGIN:
		return step_login(s, a, data, len, has_data, challenge);
	case SASL_CRAM_MD5:
		return step_cram(s, a, data, len, challenge);
	case SASL_SCRAM_SHA_256:
		return step_scram(s, a, data, len, has_data, challenge);
	default:
		return SASL_MALFORMED;
	}
}
