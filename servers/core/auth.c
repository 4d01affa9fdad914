/*
 * auth.c - the login service shared by the servers (see auth.h).
 */
#include "auth.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "accounts.h"
#include "authfail.h"
#include "config.h"
#include "log.h"
#include "util.h"

struct auth_service {
	char *acct_path, *key_path;
	pthread_key_t acct_key;
	struct hk_authfail *af;
};

static void
acct_close(void *p)
{
	struct hk_accounts *a = p;
	hk_accounts_close(&a);
}

struct auth_service *
auth_service_new(const struct hk_config *cfg)
{
	struct auth_service *a = xcalloc(1, sizeof(*a));
	a->acct_path = xasprintf("%s/accounts.gdbm", cfg->state_dir);
	a->key_path = xasprintf("%s/keys/secret.key", cfg->state_dir);
	pthread_key_create(&a->acct_key, acct_close);
	struct hk_authfail_config afc;
	hk_authfail_config_default(&afc);
	afc.base_delay_ms = cfg->auth_delay_ms;
	afc.max_delay_ms = cfg->auth_delay_ms * 16;
	afc.ip_block_after = cfg->auth_block_after;
	a->af = hk_authfail_new(&afc);
	return a;
}

void
auth_service_free(struct auth_service **ap)
{
	struct auth_service *a = *ap;
	if (a == NULL)
		return;
	*ap = NULL;
	hk_authfail_free(&a->af);
	pthread_key_delete(a->acct_key);
	free(a->acct_path);
	free(a->key_path);
	free(a);
}

struct hk_accounts *
auth_service_accounts(struct auth_service *s)
{
	struct hk_accounts *a = pthread_getspecific(s->acct_key);
	if (a)
		return a;
	struct hk_accounts_config c = { .path = s->acct_path, .key_path = s->key_path };
	char err[256];
	if (hk_accounts_open_gdbm(&c, &a, err, sizeof(err)) != HK_ACCT_OK) {
		log_error("accounts", "cannot open %s: %s", s->acct_path, err);
		return NULL;
	}
	pthread_setspecific(s->acct_key, a);
	return a;
}

bool
auth_service_blocked(struct auth_service *a, const char *client)
{
	struct hk_authfail_verdict v;
	hk_authfail_check(a->af, client, NULL, (int64_t)time(NULL), &v);
	return v.blocked;
}

unsigned
auth_service_record(struct auth_service *a, const char *client, const char *user, bool ok)
{
	const char *acct = user && *user ? user : NULL;
	if (ok) {
		hk_authfail_success(a->af, client, acct);
		return 0;
	}
	return hk_authfail_failure(a->af, client, acct, (int64_t)time(NULL));
}
