/*
 * test_accounts.c - the accounts store (accounts*.c) against both back
 * ends (memory and GDBM), the GDBM concurrency and damage cases, the
 * record codec under random mutation, address normalisation, and the
 * failed-authentication counters (authfail.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gdbm.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "accounts.h"
#include "accounts_be.h"
#include "authfail.h"
#include "password.h"
#include "scram.h"

/* --- fixture ------------------------------------------------------------------------------------ */

struct fx {
	bool gdbm;
	char dir[64], path[128], key[128];
	struct hk_accounts_config cfg;
	struct hk_accounts *a;
};

static void
fx_config(struct fx *f)
{
	memset(&f->cfg, 0, sizeof(f->cfg));
	f->cfg.path = f->path;
	f->cfg.key_path = f->key;
	f->cfg.pw_cost = 1;          /* fast yescrypt for tests */
	f->cfg.scram_iterations = 4096;
	f->cfg.lock_timeout_ms = 5000;
}

static struct hk_accounts *
fx_open(struct fx *f)
{
	struct hk_accounts *a = NULL;
	char err[200];
	assert_int_equal(hk_accounts_open_gdbm(&f->cfg, &a, err, sizeof(err)), HK_ACCT_OK);
	return a;
}

static int
setup(void **state, bool gdbm)
{
	struct fx *f = calloc(1, sizeof(*f));
	f->gdbm = gdbm;
	snprintf(f->dir, sizeof(f->dir), "/tmp/hk-acct-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/accounts.gdbm", f->dir);
	snprintf(f->key, sizeof(f->key), "%s/keys/secret.key", f->dir);
	fx_config(f);
	if (gdbm)
		f->a = fx_open(f);
	else
		f->a = hk_accounts_open_mem(&f->cfg);
	*state = f;
	return 0;
}

static int
setup_mem(void **state)
{
	return setup(state, false);
}

static int
setup_gdbm(void **state)
{
	return setup(state, true);
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	hk_accounts_close(&f->a);
	char cmd[200];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

static void
add_domain(struct hk_accounts *a, const char *name, uint32_t flags)
{
	struct hk_domain d;
	hk_domain_init(&d);
	snprintf(d.name, sizeof(d.name), "%s", name);
	d.flags = flags;
	enum hk_acct_status st = hk_accounts_domain_add(a, &d);
	if (st != HK_ACCT_OK)
		fail_msg("domain add %s: %s", name, hk_accounts_error(a));
}

static void
add_user(struct hk_accounts *a, const char *address, const char *password)
{
	struct hk_user *u = calloc(1, sizeof(*u));
	hk_user_init(u);
	snprintf(u->address, sizeof(u->address), "%s", address);
	enum hk_acct_status st = hk_accounts_user_add(a, u);
	if (st != HK_ACCT_OK)
		fail_msg("user add %s: %s", address, hk_accounts_error(a));
	if (password && hk_accounts_user_set_password(a, address, password) != HK_ACCT_OK)
		fail_msg("passwd %s: %s", address, hk_accounts_error(a));
	free(u);
}

static enum hk_acct_status
put_alias(struct hk_accounts *a, const char *address, int n, ...)
{
	struct hk_alias *al = calloc(1, sizeof(*al));
	snprintf(al->address, sizeof(al->address), "%s", address);
	va_list ap;
	va_start(ap, n);
	for (int i = 0; i < n; i++)
		snprintf(al->targets[i], sizeof(al->targets[i]), "%s", va_arg(ap, const char *));
	va_end(ap);
	al->n_targets = (uint32_t)n;
	enum hk_acct_status st = hk_accounts_alias_put(a, al);
	free(al);
	return st;
}

/* --- both back ends ------------------------------------------------------------------------------------- */

static void
test_domain_add_get_list_del(void **state)
{
	struct fx *f = *state;
	struct hk_accounts *a = f->a;
	struct hk_domain d, *v;
	size_t n;
	assert_int_equal(hk_accounts_domain_list(a, &v, &n), HK_ACCT_OK);
	assert_int_equal(n, 0);
	free(v);
	assert_int_equal(hk_accounts_is_hosted(a, "example.jp"), HK_ACCT_NOTFOUND);
	add_domain(a, "Example.JP.", 0);
	add_domain(a, "例え.jp", HK_DOMAIN_LEGACY_AUTH);
	add_domain(a, "b.example", 0);
	hk_domain_init(&d);
	snprintf(d.name, sizeof(d.name), "EXAMPLE.jp");
	assert_int_equal(hk_accounts_domain_add(a, &d), HK_ACCT_EXISTS);
	snprintf(d.name, sizeof(d.name), "bad..name");
	assert_int_equal(hk_accounts_domain_add(a, &d), HK_ACCT_INVALID);
	assert_non_null(strstr(hk_accounts_error(a), "bad..name"));
	snprintf(d.name, sizeof(d.name), "c.example");
	snprintf(d.plan, sizeof(d.plan), "nosuchplan");
	assert_int_equal(hk_accounts_domain_add(a, &d), HK_ACCT_NOTFOUND);

	assert_int_equal(hk_accounts_domain_get(a, "EXAMPLE.JP", &d), HK_ACCT_OK);
	assert_string_equal(d.name, "example.jp");
	assert_string_equal(d.plan, "standard");
	assert_true(d.created > 0);
	assert_int_equal(hk_accounts_domain_get(a, "xn--r8jz45g.jp", &d), HK_ACCT_OK);
	assert_true(d.flags & HK_DOMAIN_LEGACY_AUTH);
	assert_int_equal(hk_accounts_is_hosted(a, "例え.JP"), HK_ACCT_OK);
	assert_int_equal(hk_accounts_is_hosted(a, "not a domain"), HK_ACCT_NOTFOUND);

	assert_int_equal(hk_accounts_domain_list(a, &v, &n), HK_ACCT_OK);
	assert_int_equal(n, 3);
	assert_string_equal(v[0].name, "b.example");
	assert_string_equal(v[1].name, "example.jp");
	assert_string_equal(v[2].name, "xn--r8jz45g.jp");
	free(v);

	/* update: options, catch-all normalised, cert and key together */
	assert_int_equal(hk_accounts_domain_get(a, "example.jp", &d), HK_ACCT_OK);
	d.max_message_size = 5 * 1024 * 1024;
	snprintf(d.catchall, sizeof(d.catchall), "Box@B.Example");
	snprintf(d.cert_path, sizeof(d.cert_path), "/etc/ssl/x.pem");
	assert_int_equal(hk_accounts_domain_update(a, &d), HK_ACCT_INVALID);
	snprintf(d.key_path, sizeof(d.key_path), "/etc/ssl/x.key");
	assert_int_equal(hk_accounts_domain_update(a, &d), HK_ACCT_OK);
	assert_int_equal(hk_accounts_domain_get(a, "example.jp", &d), HK_ACCT_OK);
	assert_string_equal(d.catchall, "Box@b.example");
	assert_int_equal(d.max_message_size, 5 * 1024 * 1024);
	snprintf(d.name, sizeof(d.name), "nothere.example");
	assert_int_equal(hk_accounts_domain_update(a, &d), HK_ACCT_NOTFOUND);

	assert_int_equal(hk_accounts_domain_del(a, "B.EXAMPLE", false), HK_ACCT_OK);
	assert_int_equal(hk_accounts_domain_del(a, "b.example", false), HK_ACCT_NOTFOUND);
	assert_int_equal(hk_accounts_is_hosted(a, "b.example"), HK_ACCT_NOTFOUND);
}

static void
test_domain_delete_cascade(void **state)
{
	struct fx *f = *state;
	struct hk_accounts *a = f->a;
	add_domain(a, "example.jp", 0);
	add_domain(a, "other.jp", 0);
	add_user(a, "taro@example.jp", NULL);
	add_user(a, "jiro@other.jp", NULL);
	assert_int_equal(put_alias(a, "info@example.jp", 1, "taro@example.jp"), HK_ACCT_OK);
	assert_int_equal(hk_accounts_domain_del(a, "example.jp", false), HK_ACCT_NOTEMPTY);
	assert_non_null(strstr(hk_accounts_error(a), "2 user(s)/alias(es)"));
	assert_int_equal(hk_accounts_domain_del(a, "example.jp", true), HK_ACCT_OK);
	struct hk_user u;
	struct hk_alias al;
	assert_int_equal(hk_accounts_user_get(a, "taro@example.jp", &u), HK_ACCT_NOTFOUND);
	assert_int_equal(hk_accounts_alias_get(a, "info@example.jp", &al), HK_ACCT_NOTFOUND);
	assert_int_equal(hk_accounts_user_get(a, "jiro@other.jp", &u), HK_ACCT_OK);
}

static void
test_user_add_errors(void **state)
{
	struct fx *f = *state;
	struct hk_accounts *a = f->a;
	struct hk_user u;
	hk_user_init(&u);
	snprintf(u.address, sizeof(u.address), "taro@example.jp");
	assert_int_equal(hk_accounts_user_add(a, &u), HK_ACCT_NODOMAIN);
	assert_non_null(strstr(hk_accounts_error(a), "not hosted"));
	add_domain(a, "example.jp", 0);
	add_user(a, "Taro@example.jp", NULL);
	hk_user_init(&u);
	snprintf(u.address, sizeof(u.address), "TARO@EXAMPLE.JP");
	assert_int_equal(hk_accounts_user_add(a, &u), HK_ACCT_EXISTS);
	static const char *bad[] = { "taro", "@example.jp", "ta ro@example.jp", "\"taro\"@example.jp", ".taro@example.jp",
		"ta..ro@example.jp", "taro.@example.jp", "tarō@example.jp", "taro@example", "taro@[127.0.0.1]",
		"taro@exa_mple.jp", "x\r\n@example.jp" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		hk_user_init(&u);
		snprintf(u.address, sizeof(u.address), "%s", bad[i]);
		if (hk_accounts_user_add(a, &u) != HK_ACCT_INVALID)
			fail_msg("accepted %s", bad[i]);
		assert_true(strlen(hk_accounts_error(a)) > 0);
	}
	char long_local[80];
	memset(long_local, 'a', 65);
	snprintf(long_local + 65, sizeof(long_local) - 65, "@example.jp");
	hk_user_init(&u);
	snprintf(u.address, sizeof(u.address), "%s", long_local);
	assert_int_equal(hk_accounts_user_add(a, &u), HK_ACCT_INVALID);
	/* 64 is fine */
	memmove(long_local + 64, long_local + 65, strlen(long_local + 65) + 1);
	add_user(a, long_local, NULL);
	/* an alias takes the name */
	assert_int_equal(put_alias(a, "info@example.jp", 1, "taro@example.jp"), HK_ACCT_OK);
	hk_user_init(&u);
	snprintf(u.address, sizeof(u.address), "Info@example.jp");
	assert_int_equal(hk_accounts_user_add(a, &u), HK_ACCT_EXISTS);
	assert_int_equal(put_alias(a, "taro@example.jp", 1, "x@y.example"), HK_ACCT_EXISTS);
	/* unknown plan, negative quota */
	hk_user_init(&u);
	snprintf(u.address, sizeof(u.address), "hanako@example.jp");
	snprintf(u.plan, sizeof(u.plan), "gold");
	assert_int_equal(hk_accounts_user_add(a, &u), HK_ACCT_NOTFOUND);
	hk_user_init(&u);
	snprintf(u.address, sizeof(u.address), "hanako@example.jp");
	u.quota = -1;
	assert_int_equal(hk_accounts_user_add(a, &u), HK_ACCT_INVALID);
	assert_int_equal(hk_accounts_user_del(a, "nobody@example.jp"), HK_ACCT_NOTFOUND);
	assert_int_equal(hk_accounts_user_del(a, "TARO@example.jp"), HK_ACCT_OK);
}

static void
test_user_lookup_case_and_idn(void **state)
{
	struct fx *f = *state;
	struct hk_accounts *a = f->a;
	add_domain(a, "例え.jp", 0);
	add_domain(a, "example.jp", 0);
	add_user(a, "Hanako.Yamada@例え.jp", NULL);
	add_user(a, "b@example.jp", NULL);
	add_user(a, "a@example.jp", NULL);
	struct hk_user u;
	const char *forms[] = { "hanako.yamada@例え.jp", "HANAKO.YAMADA@XN--R8JZ45G.JP", "Hanako.Yamada@xn--r8jz45g.jp." };
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(hk_accounts_user_get(a, forms[i], &u), HK_ACCT_OK);
		assert_string_equal(u.address, "Hanako.Yamada@xn--r8jz45g.jp"); /* the local part as created */
		assert_string_equal(u.local, "Hanako.Yamada");
		assert_string_equal(u.domain, "xn--r8jz45g.jp");
	}
	struct hk_user *v;
	size_t n;
	assert_int_equal(hk_accounts_user_list(a, NULL, &v, &n), HK_ACCT_OK);
	assert_int_equal(n, 3);
	assert_string_equal(v[0].address, "a@example.jp");
	assert_string_equal(v[1].address, "b@example.jp");
	free(v);
	assert_int_equal(hk_accounts_user_list(a, "EXAMPLE.JP", &v, &n), HK_ACCT_OK);
	assert_int_equal(n, 2);
	free(v);
	assert_int_equal(hk_accounts_user_list(a, "nothere.jp", &v, &n), HK_ACCT_NOTFOUND);
	assert_null(v);
	/* update keeps the identity, changes the rest */
	assert_int_equal(hk_accounts_user_get(a, "a@example.jp", &u), HK_ACCT_OK);
	u.flags |= HK_USER_DISABLED;
	u.quota = 1000;
	snprintf(u.plan, sizeof(u.plan), "light");
	assert_int_equal(hk_accounts_user_update(a, &u), HK_ACCT_OK);
	assert_int_equal(hk_accounts_user_get(a, "A@example.jp", &u), HK_ACCT_OK);
	assert_true(u.flags & HK_USER_DISABLED);
	assert_int_equal(u.quota, 1000);
	assert_string_equal(u.plan, "light");
}

static void
test_password_auth_plain(void **state)
{
	struct fx *f = *state;
	struct hk_accounts *a = f->a;
	add_domain(a, "example.jp", 0);
	add_user(a, "taro@example.jp", "correct horse battery");
	add_user(a, "nopw@example.jp", NULL);
	struct hk_user u;
	assert_int_equal(hk_accounts_user_get(a, "taro@example.jp", &u), HK_ACCT_OK);
	assert_memory_equal(u.pw_hash, "$y$", 3);
	assert_true(u.has_scram);
	assert_int_equal(u.scram.iterations, 4096);
	assert_int_equal(u.legacy_len, 0); /* legacy mechanisms off for the domain */
	assert_true(u.pw_changed > 0);

	assert_int_equal(hk_accounts_auth_plain(a, "taro@example.jp", "correct horse battery", &u), HK_AUTH_OK);
	assert_string_equal(u.address, "taro@example.jp");
	assert_int_equal(hk_accounts_auth_plain(a, "TARO@Example.JP", "correct horse battery", NULL), HK_AUTH_OK);
	assert_int_equal(hk_accounts_auth_plain(a, "taro@example.jp", "correct horse batterY", NULL), HK_AUTH_FAIL);
	assert_int_equal(hk_accounts_auth_plain(a, "nobody@example.jp", "correct horse battery", NULL), HK_AUTH_FAIL);
	assert_int_equal(hk_accounts_auth_plain(a, "taro@nothere.jp", "correct horse battery", NULL), HK_AUTH_FAIL);
	assert_int_equal(hk_accounts_auth_plain(a, "not an address", "x", NULL), HK_AUTH_FAIL);
	assert_int_equal(hk_accounts_auth_plain(a, "nopw@example.jp", "", NULL), HK_AUTH_FAIL);

	/* policy */
	assert_int_equal(hk_accounts_user_set_password(a, "taro@example.jp", "short"), HK_ACCT_INVALID);
	assert_non_null(strstr(hk_accounts_error(a), "short"));
	assert_int_equal(hk_accounts_user_set_password(a, "nobody@example.jp", "long enough pw"), HK_ACCT_NOTFOUND);

	/* disabled user, then disabled domain: right password says DISABLED */
	assert_int_equal(hk_accounts_user_get(a, "taro@example.jp", &u), HK_ACCT_OK);
	u.flags |= HK_USER_DISABLED;
	assert_int_equal(hk_accounts_user_update(a, &u), HK_ACCT_OK);
	assert_int_equal(hk_accounts_auth_plain(a, "taro@example.jp", "correct horse battery", NULL), HK_AUTH_DISABLED);
	assert_int_equal(hk_accounts_auth_plain(a, "taro@example.jp", "wrong one!", NULL), HK_AUTH_FAIL);
	u.flags &= ~(uint32_t)HK_USER_DISABLED;
	assert_int_equal(hk_accounts_user_update(a, &u), HK_ACCT_OK);
	struct hk_domain d;
	assert_int_equal(hk_accounts_domain_get(a, "example.jp", &d), HK_ACCT_OK);
	d.flags |= HK_DOMAIN_DISABLED;
	assert_int_equal(hk_accounts_domain_update(a, &d), HK_ACCT_OK);
	assert_int_equal(hk_accounts_auth_plain(a, "taro@example.jp", "correct horse battery", NULL), HK_AUTH_DISABLED);

	/* a new password replaces the old one */
	d.flags = 0;
	assert_int_equal(hk_accounts_domain_update(a, &d), HK_ACCT_OK);
	assert_int_equal(hk_accounts_user_set_password(a, "taro@example.jp", "new password 2"), HK_ACCT_OK);
	assert_int_equal(hk_accounts_auth_plain(a, "taro@example.jp", "correct horse battery", NULL), HK_AUTH_FAIL);
	assert_int_equal(hk_accounts_auth_plain(a, "taro@example.jp", "new password 2", NULL), HK_AUTH_OK);
}

static void
test_import_hash_upgraded_at_login(void **state)
{
	struct fx *f = *state;
	struct hk_accounts *a = f->a;
	add_domain(a, "example.jp", HK_DOMAIN_LEGACY_AUTH);
	add_user(a, "old@example.jp", NULL);
	const char *h6 = "$6$saltsalt$VYcYnQQhjjyuR8fzll9KDk64MBjP/Id/TpCzliJdlYeqH8XF2m1KP7Bq7DO/F3RxtT0qvX9jWQi62c7oMuxmO/";
	assert_int_equal(hk_accounts_user_set_hash(a, "old@example.jp", "not a hash"), HK_ACCT_INVALID);
	assert_int_equal(hk_accounts_user_set_hash(a, "old@example.jp", "$zz$unknown$method"), HK_ACCT_INVALID);
	assert_int_equal(hk_accounts_user_set_hash(a, "old@example.jp", h6), HK_ACCT_OK);
	struct hk_user u;
	assert_int_equal(hk_accounts_user_get(a, "old@example.jp", &u), HK_ACCT_OK);
	assert_string_equal(u.pw_hash, h6);
	assert_false(u.has_scram);
	assert_int_equal(u.legacy_len, 0);
	struct hk_scram_keys k;
	assert_int_equal(hk_accounts_scram_keys(a, "old@example.jp", &k, NULL), HK_ACCT_NOTFOUND);
	assert_int_equal(hk_accounts_auth_plain(a, "old@example.jp", "wrong", NULL), HK_AUTH_FAIL);
	assert_int_equal(hk_accounts_auth_plain(a, "old@example.jp", "hikyaku-import-6", NULL), HK_AUTH_OK);
	/* now yescrypt, with SCRAM keys and the legacy secret */
	assert_int_equal(hk_accounts_user_get(a, "old@example.jp", &u), HK_ACCT_OK);
	assert_memory_equal(u.pw_hash, "$y$", 3);
	assert_true(u.has_scram);
	assert_true(u.legacy_len > 0);
	assert_int_equal(hk_accounts_scram_keys(a, "old@example.jp", &k, NULL), HK_ACCT_OK);
	assert_int_equal(hk_accounts_auth_plain(a, "old@example.jp", "hikyaku-import-6", NULL), HK_AUTH_OK);
}

static void
test_legacy_cram_md5_and_apop(void **state)
{
	struct fx *f = *state;
	struct hk_accounts *a = f->a;
	add_domain(a, "legacy.jp", HK_DOMAIN_LEGACY_AUTH);
	add_domain(a, "modern.jp", 0);
	add_user(a, "tim@legacy.jp", "tanstaaftanstaaf");
	add_user(a, "tim@modern.jp", "tanstaaftanstaaf");
	struct stat st;
	assert_int_equal(stat(f->key, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	const char *ch = "<1896.697170952@postoffice.reston.mci.net>";
	char addr[HK_ADDRESS_MAX + 1];
	uint8_t mac[16];
	unsigned int ml = 16;
	HMAC(EVP_md5(), "tanstaaftanstaaf", 16, (const unsigned char *)ch, strlen(ch), mac, &ml);
	char resp[200], hex[33];
	for (int i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", mac[i]);
	snprintf(resp, sizeof(resp), "TIM@legacy.jp %s", hex);
	assert_int_equal(hk_accounts_auth_cram_md5(a, ch, resp, addr), HK_AUTH_OK);
	assert_string_equal(addr, "tim@legacy.jp");
	snprintf(resp, sizeof(resp), "tim@modern.jp %s", hex);
	assert_int_equal(hk_accounts_auth_cram_md5(a, ch, resp, addr), HK_AUTH_FAIL);
	snprintf(resp, sizeof(resp), "nobody@legacy.jp %s", hex);
	assert_int_equal(hk_accounts_auth_cram_md5(a, ch, resp, addr), HK_AUTH_FAIL);
	assert_int_equal(hk_accounts_auth_cram_md5(a, ch, "garbage", addr), HK_AUTH_FAIL);
	assert_int_equal(hk_accounts_auth_cram_md5(a, "<other@challenge>", "tim@legacy.jp b913a602c7eda7a495b4e6e7334d3890", addr),
	    HK_AUTH_FAIL);

	const char *ts = "<1896.697170952@dbc.mtview.ca.us>";
	uint8_t md[16];
	unsigned int mdl = 16;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	EVP_DigestInit_ex(c, EVP_md5(), NULL);
	EVP_DigestUpdate(c, ts, strlen(ts));
	EVP_DigestUpdate(c, "tanstaaftanstaaf", 16);
	EVP_DigestFinal_ex(c, md, &mdl);
	EVP_MD_CTX_free(c);
	for (int i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	assert_int_equal(hk_accounts_auth_apop(a, "tim@legacy.jp", ts, hex, addr), HK_AUTH_OK);
	assert_int_equal(hk_accounts_auth_apop(a, "tim@modern.jp", ts, hex, addr), HK_AUTH_FAIL);
	assert_int_equal(hk_accounts_auth_apop(a, "tim@legacy.jp", ts, "c4c9334bac560ecc979e58001b3e22fb", addr), HK_AUTH_FAIL);

	/* turning legacy mechanisms off wipes the secrets */
	struct hk_domain d;
	assert_int_equal(hk_accounts_domain_get(a, "legacy.jp", &d), HK_ACCT_OK);
	d.flags &= ~(uint32_t)HK_DOMAIN_LEGACY_AUTH;
	assert_int_equal(hk_accounts_domain_update(a, &d), HK_ACCT_OK);
	struct hk_user u;
	assert_int_equal(hk_accounts_user_get(a, "tim@legacy.jp", &u), HK_ACCT_OK);
	assert_int_equal(u.legacy_len, 0);
	assert_int_equal(hk_accounts_auth_apop(a, "tim@legacy.jp", ts, hex, addr), HK_AUTH_FAIL);
	/* and back on: the secret returns with the next plaintext login */
	d.flags |= HK_DOMAIN_LEGACY_AUTH;
	assert_int_equal(hk_accounts_domain_update(a, &d), HK_ACCT_OK);
	assert_int_equal(hk_accounts_auth_apop(a, "tim@legacy.jp", ts, hex, addr), HK_AUTH_FAIL);
	assert_int_equal(hk_accounts_auth_plain(a, "tim@legacy.jp", "tanstaaftanstaaf", NULL), HK_AUTH_OK);
	assert_int_equal(hk_accounts_auth_apop(a, "tim@legacy.jp", ts, hex, addr), HK_AUTH_OK);

	/* a key file others can read: refused, APOP answers "try later" */
	hk_accounts_close(&f->a);
	chmod(f->key, 0644);
	a = f->a = f->gdbm ? fx_open(f) : NULL;
	if (a) {
		assert_int_equal(hk_accounts_auth_apop(a, "tim@legacy.jp", ts, hex, addr), HK_AUTH_TEMPFAIL);
		assert_int_equal(hk_accounts_user_set_password(a, "tim@legacy.jp", "another password"), HK_ACCT_INSECURE);
		assert_non_null(strstr(hk_accounts_error(a), "chmod 600"));
	} else {
		f->a = hk_accounts_open_mem(&f->cfg);
	}
}

/* SCRAM client side for the store test. */
static void
scram_login(struct hk_accounts *a, const char *user, const char *password, enum hk_scram_status want)
{
	struct hk_scram_server *s = hk_scram_server_new(NULL);
	char cf[320], bare[300], fin[600], auth[1500];
	snprintf(bare, sizeof(bare), "n=%s,r=abcdefgh", user);
	snprintf(cf, sizeof(cf), "n,,%s", bare);
	assert_int_equal(hk_scram_server_client_first(s, cf, strlen(cf)), HK_SCRAM_CONTINUE);
	struct hk_scram_keys k;
	bool known = hk_accounts_scram_keys(a, hk_scram_server_username(s), &k, NULL) == HK_ACCT_OK;
	struct hk_buf sf, out;
	buf_init(&sf);
	buf_init(&out);
	assert_int_equal(hk_scram_server_first(s, known ? &k : NULL, &sf), HK_SCRAM_CONTINUE);
	const char *sp = strstr(sf.data, ",s="), *ip = strstr(sf.data, ",i=");
	struct hk_buf salt;
	buf_init(&salt);
	assert_true(hk_b64_decode(sp + 3, (size_t)(ip - sp - 3), &salt));
	int iter = atoi(ip + 3);
	uint8_t salted[32], ckey[32], stored[32], sig[32], proof[32];
	unsigned int l = 32;
	PKCS5_PBKDF2_HMAC(password, (int)strlen(password), (const unsigned char *)salt.data, (int)salt.len, iter, EVP_sha256(),
	    32, salted);
	buf_fini(&salt);
	HMAC(EVP_sha256(), salted, 32, (const unsigned char *)"Client Key", 10, ckey, &l);
	SHA256(ckey, 32, stored);
	snprintf(fin, sizeof(fin), "c=biws,r=%.*s", (int)(sp - sf.data - 2), sf.data + 2);
	snprintf(auth, sizeof(auth), "%s,%s,%s", bare, sf.data, fin);
	HMAC(EVP_sha256(), stored, 32, (const unsigned char *)auth, strlen(auth), sig, &l);
	for (int i = 0; i < 32; i++)
		proof[i] = ckey[i] ^ sig[i];
	struct hk_buf p;
	buf_init(&p);
	hk_b64_encode(proof, 32, &p);
	size_t fl = strlen(fin);
	snprintf(fin + fl, sizeof(fin) - fl, ",p=%s", p.data);
	buf_fini(&p);
	assert_int_equal(hk_scram_server_final(s, fin, strlen(fin), &out), want);
	buf_fini(&sf);
	buf_fini(&out);
	hk_scram_server_free(&s);
}

static void
test_scram_with_store(void **state)
{
	struct fx *f = *state;
	struct hk_accounts *a = f->a;
	add_domain(a, "example.jp", 0);
	add_user(a, "taro@example.jp", "scram password");
	scram_login(a, "taro@example.jp", "scram password", HK_SCRAM_OK);
	scram_login(a, "Taro@EXAMPLE.jp", "scram password", HK_SCRAM_OK);
	scram_login(a, "taro@example.jp", "not the password", HK_SCRAM_FAIL);
	scram_login(a, "nobody@example.jp", "scram password", HK_SCRAM_FAIL);
	struct hk_user u;
	assert_int_equal(hk_accounts_user_get(a, "taro@example.jp", &u), HK_ACCT_OK);
	u.flags |= HK_USER_DISABLED;
	assert_int_equal(hk_accounts_user_update(a, &u), HK_ACCT_OK);
	scram_login(a, "taro@example.jp", "scram password", HK_SCRAM_FAIL);
}

static void
test_alias_rules(void **state)
{
	struct fx *f = *state;
	struct hk_accounts *a = f->a;
	add_domain(a, "example.jp", 0);
	add_user(a, "taro@example.jp", NULL);
	assert_int_equal(put_alias(a, "info@nothere.jp", 1, "taro@example.jp"), HK_ACCT_NODOMAIN);
	assert_int_equal(put_alias(a, "info@example.jp", 0), HK_ACCT_INVALID);
	assert_int_equal(put_alias(a, "info@example.jp", 1, "INFO@Example.JP"), HK_ACCT_INVALID); /* itself */
	assert_int_equal(put_alias(a, "info@example.jp", 1, "not an address"), HK_ACCT_INVALID);
	assert_non_null(strstr(hk_accounts_error(a), "target"));
	assert_int_equal(put_alias(a, "info@example.jp", 4, "Taro@Example.JP", "taro@example.jp", "Ext@例え.jp",
	                     "用户@example.cn"),
	    HK_ACCT_OK);
	struct hk_alias al;
	assert_int_equal(hk_accounts_alias_get(a, "INFO@example.jp", &al), HK_ACCT_OK);
	assert_string_equal(al.address, "info@example.jp");
	assert_int_equal(al.n_targets, 3); /* duplicate dropped */
	assert_string_equal(al.targets[0], "Taro@example.jp");
	assert_string_equal(al.targets[1], "Ext@xn--r8jz45g.jp");
	assert_string_equal(al.targets[2], "用户@example.cn"); /* UTF-8 remote local part (RFC 6531) */
	/* the plan allows 10 targets */
	struct hk_alias *big = calloc(1, sizeof(*big));
	snprintf(big->address, sizeof(big->address), "many@example.jp");
	for (int i = 0; i < 11; i++)
		snprintf(big->targets[i], sizeof(big->targets[i]), "t%d@remote.example", i);
	big->n_targets = 11;
	assert_int_equal(hk_accounts_alias_put(a, big), HK_ACCT_LIMIT);
	big->n_targets = 10;
	assert_int_equal(hk_accounts_alias_put(a, big), HK_ACCT_OK);
	big->n_targets = HK_ALIAS_MAX_TARGETS + 1;
	assert_int_equal(hk_accounts_alias_put(a, big), HK_ACCT_LIMIT);
	free(big);
	struct hk_alias *v;
	size_t n;
	assert_int_equal(hk_accounts_alias_list(a, "example.jp", &v, &n), HK_ACCT_OK);
	assert_int_equal(n, 2);
	assert_string_equal(v[0].address, "info@example.jp");
	assert_string_equal(v[1].address, "many@example.jp");
	free(v);
	assert_int_equal(hk_accounts_alias_del(a, "many@example.jp"), HK_ACCT_OK);
	assert_int_equal(hk_accounts_alias_del(a, "many@example.jp"), HK_ACCT_NOTFOUND);
}

static void
test_resolve_kinds(void **state)
{
	struct fx *f = *state;
	struct hk_accounts *a = f->a;
	add_domain(a, "example.jp", 0);
	add_domain(a, "catch.jp", 0);
	add_domain(a, "off.jp", HK_DOMAIN_DISABLED);
	add_user(a, "taro@example.jp", NULL);
	add_user(a, "box@catch.jp", NULL);
	assert_int_equal(put_alias(a, "info@example.jp", 2, "taro@example.jp", "x@remote.example"), HK_ACCT_OK);
	struct hk_domain d;
	assert_int_equal(hk_accounts_domain_get(a, "catch.jp", &d), HK_ACCT_OK);
	snprintf(d.catchall, sizeof(d.catchall), "box@catch.jp");
	assert_int_equal(hk_accounts_domain_update(a, &d), HK_ACCT_OK);

	struct hk_rcpt *r = calloc(1, sizeof(*r));
	assert_int_equal(hk_accounts_resolve(a, "someone@gmail.com", r), HK_ACCT_OK);
	assert_int_equal(r->kind, HK_RCPT_NOT_HOSTED);
	assert_int_equal(hk_accounts_resolve(a, "nobody@example.jp", r), HK_ACCT_OK);
	assert_int_equal(r->kind, HK_RCPT_UNKNOWN);
	assert_int_equal(hk_accounts_resolve(a, "用户@example.jp", r), HK_ACCT_OK); /* UTF-8 local: no such user */
	assert_int_equal(r->kind, HK_RCPT_UNKNOWN);
	assert_int_equal(hk_accounts_resolve(a, "TARO@Example.JP", r), HK_ACCT_OK);
	assert_int_equal(r->kind, HK_RCPT_USER);
	assert_string_equal(r->user.address, "taro@example.jp");
	assert_string_equal(r->limits.plan, "standard");
	assert_int_equal(r->limits.max_forward, 10);
	assert_int_equal(hk_accounts_resolve(a, "info@example.jp", r), HK_ACCT_OK);
	assert_int_equal(r->kind, HK_RCPT_ALIAS);
	assert_int_equal(r->alias.n_targets, 2);
	assert_false(r->catchall);
	assert_int_equal(hk_accounts_resolve(a, "anything@catch.jp", r), HK_ACCT_OK);
	assert_int_equal(r->kind, HK_RCPT_ALIAS);
	assert_true(r->catchall);
	assert_string_equal(r->alias.targets[0], "box@catch.jp");
	assert_int_equal(hk_accounts_resolve(a, "box@catch.jp", r), HK_ACCT_OK);
	assert_int_equal(r->kind, HK_RCPT_USER);
	assert_int_equal(hk_accounts_resolve(a, "x@off.jp", r), HK_ACCT_OK);
	assert_int_equal(r->kind, HK_RCPT_DISABLED);
	assert_int_equal(hk_accounts_resolve(a, "no at sign", r), HK_ACCT_INVALID);
	assert_int_equal(hk_accounts_resolve(a, "a@b@example.jp", r), HK_ACCT_INVALID);
	free(r);
}

static void
test_expand_chains(void **state)
{
	struct fx *f = *state;
	struct hk_accounts *a = f->a;
	add_domain(a, "example.jp", 0);
	add_user(a, "taro@example.jp", NULL);
	add_user(a, "jiro@example.jp", NULL);
	assert_int_equal(put_alias(a, "sales@example.jp", 2, "jiro@example.jp", "partner@remote.example"), HK_ACCT_OK);
	assert_int_equal(put_alias(a, "info@example.jp", 4, "taro@example.jp", "sales@example.jp", "ghost@example.jp",
	                     "JIRO@example.jp"),
	    HK_ACCT_OK);
	assert_int_equal(put_alias(a, "loop1@example.jp", 1, "loop2@example.jp"), HK_ACCT_OK);
	assert_int_equal(put_alias(a, "loop2@example.jp", 2, "loop1@example.jp", "taro@example.jp"), HK_ACCT_OK);
	struct hk_expansion *e = calloc(1, sizeof(*e));
	assert_int_equal(hk_accounts_expand(a, "info@example.jp", e), HK_ACCT_OK);
	assert_int_equal(e->n, 3);
	assert_string_equal(e->v[0].address, "taro@example.jp");
	assert_true(e->v[0].local);
	assert_string_equal(e->v[1].address, "jiro@example.jp");
	assert_string_equal(e->v[2].address, "partner@remote.example");
	assert_false(e->v[2].local);
	assert_false(e->truncated);
	assert_int_equal(hk_accounts_expand(a, "loop1@example.jp", e), HK_ACCT_OK);
	assert_int_equal(e->n, 1);
	assert_string_equal(e->v[0].address, "taro@example.jp");
	assert_int_equal(hk_accounts_expand(a, "taro@example.jp", e), HK_ACCT_OK);
	assert_int_equal(e->n, 1);
	assert_int_equal(hk_accounts_expand(a, "someone@remote.example", e), HK_ACCT_OK);
	assert_int_equal(e->n, 1);
	assert_false(e->v[0].local);
	/* deeper than HK_ALIAS_MAX_DEPTH */
	char name[64], target[64];
	for (int i = 0; i < HK_ALIAS_MAX_DEPTH + 2; i++) {
		snprintf(name, sizeof(name), "d%d@example.jp", i);
		snprintf(target, sizeof(target), "d%d@example.jp", i + 1);
		assert_int_equal(put_alias(a, name, 1, target), HK_ACCT_OK);
	}
	snprintf(name, sizeof(name), "d%d@example.jp", HK_ALIAS_MAX_DEPTH + 2);
	assert_int_equal(put_alias(a, name, 1, "taro@example.jp"), HK_ACCT_OK);
	assert_int_equal(hk_accounts_expand(a, "d0@example.jp", e), HK_ACCT_OK);
	assert_true(e->truncated);
	assert_int_equal(e->n, 0);
	free(e);
}

static void
test_may_send_as(void **state)
{
	struct fx *f = *state;
	struct hk_accounts *a = f->a;
	add_domain(a, "example.jp", 0);
	add_user(a, "taro@example.jp", NULL);
	add_user(a, "jiro@example.jp", NULL);
	assert_int_equal(put_alias(a, "info@example.jp", 2, "taro@example.jp", "x@remote.example"), HK_ACCT_OK);
	assert_int_equal(hk_accounts_may_send_as(a, "taro@example.jp", "Taro@EXAMPLE.JP"), HK_ACCT_OK);
	assert_int_equal(hk_accounts_may_send_as(a, "taro@example.jp", "info@example.jp"), HK_ACCT_OK);
	assert_int_equal(hk_accounts_may_send_as(a, "jiro@example.jp", "info@example.jp"), HK_ACCT_NOTFOUND);
	assert_int_equal(hk_accounts_may_send_as(a, "taro@example.jp", "jiro@example.jp"), HK_ACCT_NOTFOUND);
	assert_int_equal(hk_accounts_may_send_as(a, "taro@example.jp", "ceo@bank.example"), HK_ACCT_NOTFOUND);
	assert_int_equal(hk_accounts_may_send_as(a, "taro@example.jp", ""), HK_ACCT_NOTFOUND);
}

static void
test_limits_and_plans(void **state)
{
	struct fx *f = *state;
	struct hk_accounts *a = f->a;
	struct hk_plan *v;
	size_t n;
	assert_int_equal(hk_accounts_plan_list(a, &v, &n), HK_ACCT_OK);
	assert_int_equal(n, 4);
	assert_string_equal(v[0].name, "business");
	assert_string_equal(v[1].name, "entry");
	assert_true(v[1].strict_retention);
	assert_int_equal(v[1].list_members, 50);
	assert_int_equal(v[1].list_members_max, 250);
	assert_int_equal(v[1].max_lists, 5);
	assert_int_equal(v[1].list_max_message_size, 8 * 1024 * 1024);
	free(v);
	add_domain(a, "example.jp", 0);
	add_user(a, "taro@example.jp", NULL);
	struct hk_user u;
	struct hk_limits l;
	assert_int_equal(hk_accounts_user_get(a, "taro@example.jp", &u), HK_ACCT_OK);
	assert_int_equal(hk_accounts_limits(a, &u, &l), HK_ACCT_OK);
	assert_string_equal(l.plan, "standard");
	assert_int_equal(l.max_message_size, 50 * 1024 * 1024);
	assert_int_equal(l.retention, 365 * 86400);
	assert_false(l.legacy_auth);
	/* user's plan and quota, then the domain's size override */
	snprintf(u.plan, sizeof(u.plan), "light");
	u.quota = 123456789;
	assert_int_equal(hk_accounts_user_update(a, &u), HK_ACCT_OK);
	assert_int_equal(hk_accounts_limits(a, &u, &l), HK_ACCT_OK);
	assert_string_equal(l.plan, "light");
	assert_int_equal(l.quota, 123456789);
	assert_int_equal(l.retention, 90 * 86400);
	assert_true(l.strict_retention);
	struct hk_domain d;
	assert_int_equal(hk_accounts_domain_get(a, "example.jp", &d), HK_ACCT_OK);
	d.max_message_size = 1000;
	assert_int_equal(hk_accounts_domain_update(a, &d), HK_ACCT_OK);
	assert_int_equal(hk_accounts_limits(a, &u, &l), HK_ACCT_OK);
	assert_int_equal(l.max_message_size, 1000);
	assert_int_equal(hk_accounts_domain_limits(a, "EXAMPLE.jp", &l), HK_ACCT_OK);
	assert_string_equal(l.plan, "standard");
	assert_int_equal(l.max_message_size, 1000);
	assert_int_equal(hk_accounts_domain_limits(a, "nothere.jp", &l), HK_ACCT_NOTFOUND);
	/* a stored override of a built-in plan, a new plan, deleting them */
	struct hk_plan p;
	assert_int_equal(hk_accounts_plan_get(a, "light", &p), HK_ACCT_OK);
	assert_true(p.builtin);
	p.quota = 7;
	assert_int_equal(hk_accounts_plan_put(a, &p), HK_ACCT_OK);
	assert_int_equal(hk_accounts_plan_get(a, "light", &p), HK_ACCT_OK);
	assert_false(p.builtin);
	assert_int_equal(p.quota, 7);
	snprintf(p.name, sizeof(p.name), "gold");
	p.max_forward = 20;
	assert_int_equal(hk_accounts_plan_put(a, &p), HK_ACCT_OK);
	p.max_forward = HK_ALIAS_MAX_TARGETS + 1;
	assert_int_equal(hk_accounts_plan_put(a, &p), HK_ACCT_INVALID);
	snprintf(p.name, sizeof(p.name), "Bad Name");
	assert_int_equal(hk_accounts_plan_put(a, &p), HK_ACCT_INVALID);
	snprintf(u.plan, sizeof(u.plan), "gold");
	assert_int_equal(hk_accounts_user_update(a, &u), HK_ACCT_OK);
	assert_int_equal(hk_accounts_plan_del(a, "gold"), HK_ACCT_NOTEMPTY);
	assert_non_null(strstr(hk_accounts_error(a), "taro@example.jp"));
	assert_int_equal(hk_accounts_plan_list(a, &v, &n), HK_ACCT_OK);
	assert_int_equal(n, 5);
	free(v);
	u.plan[0] = '\0';
	assert_int_equal(hk_accounts_user_update(a, &u), HK_ACCT_OK);
	assert_int_equal(hk_accounts_plan_del(a, "gold"), HK_ACCT_OK);
	assert_int_equal(hk_accounts_plan_del(a, "light"), HK_ACCT_OK); /* back to the built-in */
	assert_int_equal(hk_accounts_plan_get(a, "light", &p), HK_ACCT_OK);
	assert_true(p.builtin);
	assert_int_equal(hk_accounts_plan_del(a, "light"), HK_ACCT_NOTFOUND);
	assert_int_equal(hk_accounts_plan_get(a, "gold", &p), HK_ACCT_NOTFOUND);
}

static void
test_transactions_and_generation(void **state)
{
	struct fx *f = *state;
	struct hk_accounts *a = f->a;
	bool changed;
	assert_int_equal(hk_accounts_refresh(a, &changed), HK_ACCT_OK);
	assert_false(changed);
	assert_int_equal(hk_accounts_generation(a), 0);
	add_domain(a, "example.jp", 0);
	uint64_t g1 = hk_accounts_generation(a);
	assert_true(g1 > 0);
	assert_int_equal(hk_accounts_refresh(a, &changed), HK_ACCT_OK);
	assert_true(changed);
	assert_int_equal(hk_accounts_refresh(a, &changed), HK_ACCT_OK);
	assert_false(changed);

	assert_int_equal(hk_accounts_begin(a), HK_ACCT_OK);
	assert_int_equal(hk_accounts_begin(a), HK_ACCT_INVALID);
	add_user(a, "a@example.jp", NULL);
	add_user(a, "b@example.jp", NULL);
	struct hk_user u;
	assert_int_equal(hk_accounts_user_get(a, "a@example.jp", &u), HK_ACCT_OK); /* the transaction sees itself */
	hk_accounts_abort(a);
	assert_int_equal(hk_accounts_user_get(a, "a@example.jp", &u), HK_ACCT_NOTFOUND);
	assert_int_equal(hk_accounts_generation(a), g1);

	assert_int_equal(hk_accounts_begin(a), HK_ACCT_OK);
	add_user(a, "a@example.jp", NULL);
	add_user(a, "b@example.jp", NULL);
	assert_int_equal(hk_accounts_commit(a), HK_ACCT_OK);
	assert_int_equal(hk_accounts_commit(a), HK_ACCT_INVALID);
	assert_int_equal(hk_accounts_generation(a), g1 + 1);
	assert_int_equal(hk_accounts_user_get(a, "b@example.jp", &u), HK_ACCT_OK);
	/* a failed write inside a transaction leaves it to the caller */
	assert_int_equal(hk_accounts_begin(a), HK_ACCT_OK);
	add_user(a, "c@example.jp", NULL);
	u.quota = -5;
	assert_int_equal(hk_accounts_user_update(a, &u), HK_ACCT_INVALID);
	assert_int_equal(hk_accounts_commit(a), HK_ACCT_OK);
	assert_int_equal(hk_accounts_user_get(a, "c@example.jp", &u), HK_ACCT_OK);
	/* records verify */
	struct hk_accounts_check c;
	assert_int_equal(hk_accounts_verify(a, &c), HK_ACCT_OK);
	assert_int_equal(c.domains, 1);
	assert_int_equal(c.users, 3);
	assert_int_equal(c.bad, 0);
	assert_int_equal(c.records, 5); /* + meta */
}

/* --- GDBM only ------------------------------------------------------------------------------------------------ */

/* A reader process checks that it only ever sees whole transactions
 * (users come in pairs) while the parent commits. */
static void
test_gdbm_reader_sees_whole_commits(void **state)
{
	struct fx *f = *state;
	add_domain(f->a, "example.jp", 0);
	char done[200];
	snprintf(done, sizeof(done), "%s/done", f->dir);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct hk_accounts *r = NULL;
		char err[200];
		if (hk_accounts_open_gdbm(&f->cfg, &r, err, sizeof(err)) != HK_ACCT_OK)
			_exit(10);
		uint64_t last_gen = 0;
		long rounds = 0, seen_max = 0;
		time_t until = time(NULL) + 20;
		while (time(NULL) < until) {
			bool finished = access(done, F_OK) == 0;
			struct hk_user *v;
			size_t n;
			enum hk_acct_status st = hk_accounts_user_list(r, "example.jp", &v, &n);
			if (st != HK_ACCT_OK)
				_exit(11);
			if (n % 2 != 0)
				_exit(12);
			for (size_t i = 0; i < n; i++) {
				if (v[i].address[0] == 'a') {
					char want[64];
					struct hk_user u;
					snprintf(want, sizeof(want), "b%s", v[i].address + 1);
					bool found = false;
					for (size_t j = 0; j < n; j++)
						found |= strcmp(v[j].address, want) == 0;
					if (!found)
						_exit(13);
					(void)u;
				}
			}
			free(v);
			uint64_t g = hk_accounts_generation(r);
			if (g < last_gen)
				_exit(14);
			last_gen = g;
			if ((long)n > seen_max)
				seen_max = (long)n;
			rounds++;
			if (finished)
				break;
		}
		hk_accounts_close(&r);
		/* it must have seen the end state */
		_exit(rounds > 0 && seen_max == 60 ? 0 : 15);
	}
	for (int i = 0; i < 30; i++) {
		char x[64], y[64];
		snprintf(x, sizeof(x), "a%02d@example.jp", i);
		snprintf(y, sizeof(y), "b%02d@example.jp", i);
		assert_int_equal(hk_accounts_begin(f->a), HK_ACCT_OK);
		add_user(f->a, x, NULL);
		add_user(f->a, y, NULL);
		assert_int_equal(hk_accounts_commit(f->a), HK_ACCT_OK);
	}
	int fd = open(done, O_CREAT | O_WRONLY, 0600);
	close(fd);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* Two writer processes: the lock serialises them, no update is lost. */
static void
test_gdbm_two_writers_serialise(void **state)
{
	struct fx *f = *state;
	add_domain(f->a, "example.jp", 0);
	pid_t pids[2];
	fflush(NULL);
	for (int w = 0; w < 2; w++) {
		pids[w] = fork();
		assert_true(pids[w] >= 0);
		if (pids[w] == 0) {
			struct hk_accounts *b = NULL;
			char err[200];
			if (hk_accounts_open_gdbm(&f->cfg, &b, err, sizeof(err)) != HK_ACCT_OK)
				_exit(10);
			for (int i = 0; i < 15; i++) {
				struct hk_user u;
				hk_user_init(&u);
				snprintf(u.address, sizeof(u.address), "w%d-%02d@example.jp", w, i);
				if (hk_accounts_user_add(b, &u) != HK_ACCT_OK)
					_exit(11);
			}
			hk_accounts_close(&b);
			_exit(0);
		}
	}
	for (int w = 0; w < 2; w++) {
		int status;
		assert_int_equal(waitpid(pids[w], &status, 0), pids[w]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	struct hk_user *v;
	size_t n;
	assert_int_equal(hk_accounts_user_list(f->a, NULL, &v, &n), HK_ACCT_OK);
	assert_int_equal(n, 30);
	free(v);
	assert_int_equal(hk_accounts_generation(f->a), 31);
}

static void
test_gdbm_busy_lock(void **state)
{
	struct fx *f = *state;
	add_domain(f->a, "example.jp", 0);
	char lock[200];
	snprintf(lock, sizeof(lock), "%s.lock", f->path);
	int fd = open(lock, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(flock(fd, LOCK_EX), 0);
	/* flock locks belong to the open file: a second handle in this process waits too */
	struct hk_accounts_config cfg = f->cfg;
	cfg.lock_timeout_ms = 50;
	struct hk_accounts *b = NULL;
	char err[200];
	assert_int_equal(hk_accounts_open_gdbm(&cfg, &b, err, sizeof(err)), HK_ACCT_OK);
	struct hk_user u;
	hk_user_init(&u);
	snprintf(u.address, sizeof(u.address), "taro@example.jp");
	assert_int_equal(hk_accounts_user_add(b, &u), HK_ACCT_BUSY);
	assert_non_null(strstr(hk_accounts_error(b), "locked"));
	/* readers are not affected */
	assert_int_equal(hk_accounts_is_hosted(b, "example.jp"), HK_ACCT_OK);
	flock(fd, LOCK_UN);
	close(fd);
	hk_user_init(&u);
	snprintf(u.address, sizeof(u.address), "taro@example.jp");
	assert_int_equal(hk_accounts_user_add(b, &u), HK_ACCT_OK);
	hk_accounts_close(&b);
}

static void
test_gdbm_missing_file_is_empty(void **state)
{
	struct fx *f = *state;
	struct hk_rcpt *r = calloc(1, sizeof(*r));
	assert_int_equal(hk_accounts_resolve(f->a, "a@example.jp", r), HK_ACCT_OK);
	assert_int_equal(r->kind, HK_RCPT_NOT_HOSTED);
	free(r);
	assert_int_equal(access(f->path, F_OK), -1);
	/* a reader keeps working when another process creates, replaces and removes the file */
	struct hk_accounts *w = fx_open(f);
	add_domain(w, "example.jp", 0);
	assert_int_equal(hk_accounts_is_hosted(f->a, "example.jp"), HK_ACCT_OK);
	add_domain(w, "second.jp", 0);
	assert_int_equal(hk_accounts_is_hosted(f->a, "second.jp"), HK_ACCT_OK);
	unlink(f->path);
	assert_int_equal(hk_accounts_is_hosted(f->a, "example.jp"), HK_ACCT_NOTFOUND);
	hk_accounts_close(&w);
	struct stat st;
	char newp[200];
	snprintf(newp, sizeof(newp), "%s.new", f->path);
	assert_int_equal(stat(newp, &st), -1); /* no temporary file left behind */
}

static void
write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static void
test_gdbm_truncated_and_garbage_file(void **state)
{
	struct fx *f = *state;
	add_domain(f->a, "example.jp", 0);
	for (int i = 0; i < 50; i++) {
		char addr[64];
		snprintf(addr, sizeof(addr), "user%02d@example.jp", i);
		add_user(f->a, addr, NULL);
	}
	hk_accounts_close(&f->a);
	struct stat st;
	assert_int_equal(stat(f->path, &st), 0);
	size_t sizes[] = { 0, 1, 100, 1000, (size_t)st.st_size / 2, (size_t)st.st_size - 1 };
	char *orig = malloc((size_t)st.st_size);
	FILE *in = fopen(f->path, "rb");
	assert_int_equal(fread(orig, 1, (size_t)st.st_size, in), (size_t)st.st_size);
	fclose(in);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		write_file(f->path, orig, sizes[i]);
		struct hk_accounts *a = fx_open(f);
		struct hk_user u;
		enum hk_acct_status s1 = hk_accounts_user_get(a, "user01@example.jp", &u);
		assert_true(s1 == HK_ACCT_CORRUPT || s1 == HK_ACCT_IO || s1 == HK_ACCT_OK);
		if (s1 != HK_ACCT_OK)
			assert_true(strlen(hk_accounts_error(a)) > 0);
		struct hk_user *v = NULL;
		size_t n;
		enum hk_acct_status s2 = hk_accounts_user_list(a, NULL, &v, &n);
		free(v);
		struct hk_accounts_check c;
		enum hk_acct_status s3 = hk_accounts_verify(a, &c);
		/* the truncated files are damaged: no list and no verify succeed silently */
		/* (losing the last byte loses nothing GDBM needs) */
		bool damaged = s2 != HK_ACCT_OK || s3 != HK_ACCT_OK;
		if (!damaged && sizes[i] + 1 < (size_t)st.st_size)
			fail_msg("a file of %zu bytes read as a good store", sizes[i]);
		/* writing on top of a damaged file is refused, and the lock is released */
		hk_user_init(&u);
		snprintf(u.address, sizeof(u.address), "new@example.jp");
		enum hk_acct_status s4 = hk_accounts_user_add(a, &u);
		assert_int_not_equal(s4, HK_ACCT_BUSY);
		if (damaged)
			assert_int_equal(s4, HK_ACCT_CORRUPT);
		hk_accounts_close(&a);
	}
	/* garbage */
	unsigned seed = 12345;
	for (long i = 0; i < st.st_size; i++) {
		seed = seed * 1103515245 + 12345;
		orig[i] = (char)(seed >> 16);
	}
	write_file(f->path, orig, (size_t)st.st_size);
	struct hk_accounts *a = fx_open(f);
	struct hk_rcpt *r = calloc(1, sizeof(*r));
	assert_int_equal(hk_accounts_resolve(a, "user01@example.jp", r), HK_ACCT_CORRUPT);
	assert_non_null(strstr(hk_accounts_error(a), "repair"));
	free(r);
	hk_accounts_close(&a);
	free(orig);
	f->a = fx_open(f);
}

/* Stores raw records with GDBM itself, as a damaged or foreign file would have them. */
static void
raw_store(const char *path, const char *key, const void *val, size_t vlen)
{
	GDBM_FILE g = gdbm_open(path, 0, GDBM_WRITER, 0600, NULL);
	assert_non_null(g);
	datum k = { (char *)(uintptr_t)key, (int)strlen(key) };
	datum v = { (char *)(uintptr_t)val, (int)vlen };
	assert_int_equal(gdbm_store(g, k, v, GDBM_REPLACE), 0);
	gdbm_close(g);
}

static void
test_gdbm_damaged_record_and_repair(void **state)
{
	struct fx *f = *state;
	add_domain(f->a, "example.jp", 0);
	add_user(f->a, "good1@example.jp", "good password 1");
	add_user(f->a, "good2@example.jp", NULL);
	assert_int_equal(put_alias(f->a, "info@example.jp", 1, "good1@example.jp"), HK_ACCT_OK);
	hk_accounts_close(&f->a);
	/* garbage in a user record; a valid record under the wrong key; an unknown key;
	 * an alias record with a field running past its end */
	raw_store(f->path, "u:example.jp/bad", "U\x01\x01\xff\xffxyz", 8);
	struct hk_buf b;
	buf_init(&b);
	struct hk_user u;
	hk_user_init(&u);
	snprintf(u.local, sizeof(u.local), "evil");
	snprintf(u.domain, sizeof(u.domain), "example.jp");
	acct_encode_user(&u, &b);
	raw_store(f->path, "u:example.jp/victim", b.data, b.len);
	buf_fini(&b);
	raw_store(f->path, "zz-unknown", "x", 1);
	raw_store(f->path, "a:example.jp/broken", "A\x01\x01\x00\x05in", 7);
	f->a = fx_open(f);
	struct hk_accounts *a = f->a;
	assert_int_equal(hk_accounts_user_get(a, "bad@example.jp", &u), HK_ACCT_CORRUPT);
	assert_non_null(strstr(hk_accounts_error(a), "u:example.jp/bad"));
	assert_int_equal(hk_accounts_user_get(a, "victim@example.jp", &u), HK_ACCT_CORRUPT);
	struct hk_alias al;
	assert_int_equal(hk_accounts_alias_get(a, "broken@example.jp", &al), HK_ACCT_CORRUPT);
	struct hk_rcpt *r = calloc(1, sizeof(*r));
	assert_int_equal(hk_accounts_resolve(a, "bad@example.jp", r), HK_ACCT_CORRUPT);
	assert_int_equal(hk_accounts_resolve(a, "good2@example.jp", r), HK_ACCT_OK);
	assert_int_equal(r->kind, HK_RCPT_USER);
	free(r);
	assert_int_equal(hk_accounts_auth_plain(a, "bad@example.jp", "whatever", NULL), HK_AUTH_TEMPFAIL);
	struct hk_user *v;
	size_t n;
	assert_int_equal(hk_accounts_user_list(a, "example.jp", &v, &n), HK_ACCT_CORRUPT);
	assert_int_equal(n, 2); /* the good ones still come */
	free(v);
	struct hk_accounts_check c;
	assert_int_equal(hk_accounts_verify(a, &c), HK_ACCT_CORRUPT);
	assert_int_equal(c.bad, 4);
	assert_int_equal(c.users, 2);

	assert_int_equal(hk_accounts_repair(a, &c), HK_ACCT_OK);
	assert_int_equal(c.bad, 4);
	assert_non_null(strstr(hk_accounts_error(a), "damaged-"));
	assert_int_equal(hk_accounts_verify(a, &c), HK_ACCT_OK);
	assert_int_equal(c.users, 2);
	assert_int_equal(c.aliases, 1);
	assert_int_equal(c.domains, 1);
	assert_int_equal(hk_accounts_auth_plain(a, "good1@example.jp", "good password 1", NULL), HK_AUTH_OK);
	assert_int_equal(hk_accounts_user_get(a, "bad@example.jp", &u), HK_ACCT_NOTFOUND);
}

static void
test_gdbm_random_damage_no_crash(void **state)
{
	struct fx *f = *state;
	add_domain(f->a, "example.jp", HK_DOMAIN_LEGACY_AUTH);
	add_domain(f->a, "other.jp", 0);
	add_user(f->a, "pw@example.jp", "password one");
	for (int i = 0; i < 40; i++) {
		char addr[64];
		snprintf(addr, sizeof(addr), "user%02d@%s", i, i % 2 ? "example.jp" : "other.jp");
		add_user(f->a, addr, NULL);
		snprintf(addr, sizeof(addr), "alias%02d@example.jp", i);
		assert_int_equal(put_alias(f->a, addr, 2, "user01@example.jp", "x@remote.example"), HK_ACCT_OK);
	}
	hk_accounts_close(&f->a);
	struct stat st;
	assert_int_equal(stat(f->path, &st), 0);
	size_t len = (size_t)st.st_size;
	uint8_t *orig = malloc(len), *buf = malloc(len);
	FILE *in = fopen(f->path, "rb");
	assert_int_equal(fread(orig, 1, len, in), len);
	fclose(in);
	uint64_t x = 88172645463325252ull;
	for (int round = 0; round < 40; round++) {
		memcpy(buf, orig, len);
		int flips = 1 + round % 20;
		for (int k = 0; k < flips; k++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			/* spare the header in half the rounds, so the damage reaches records and buckets */
			size_t off = round % 2 ? 512 + (size_t)(x % (len - 512)) : (size_t)(x % len);
			buf[off] = (uint8_t)(x >> 32);
		}
		write_file(f->path, buf, len);
		struct hk_accounts *a = fx_open(f);
		struct hk_accounts_check c;
		(void)hk_accounts_verify(a, &c);
		struct hk_user *uv = NULL;
		struct hk_alias *av = NULL;
		struct hk_domain *dv = NULL;
		size_t n;
		(void)hk_accounts_user_list(a, NULL, &uv, &n);
		(void)hk_accounts_alias_list(a, NULL, &av, &n);
		(void)hk_accounts_domain_list(a, &dv, &n);
		free(uv);
		free(av);
		free(dv);
		struct hk_rcpt *r = malloc(sizeof(*r));
		(void)hk_accounts_resolve(a, "user01@example.jp", r);
		(void)hk_accounts_resolve(a, "alias07@example.jp", r);
		free(r);
		struct hk_expansion *e = malloc(sizeof(*e));
		(void)hk_accounts_expand(a, "alias03@example.jp", e);
		free(e);
		char addr[HK_ADDRESS_MAX + 1];
		(void)hk_accounts_auth_apop(a, "pw@example.jp", "<1.2@x>", "00000000000000000000000000000000", addr);
		if (round % 8 == 0)
			(void)hk_accounts_repair(a, &c);
		hk_accounts_close(&a);
	}
	free(orig);
	free(buf);
	f->a = fx_open(f);
}

/* --- the record codec under mutation ------------------------------------------------------------------------------ */

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint64_t
next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void
test_codec_roundtrip_and_mutations(void **state)
{
	(void)state;
	struct hk_buf recs[5];
	struct hk_user u, u2;
	hk_user_init(&u);
	snprintf(u.local, sizeof(u.local), "Taro");
	snprintf(u.domain, sizeof(u.domain), "example.jp");
	snprintf(u.plan, sizeof(u.plan), "light");
	snprintf(u.pw_hash, sizeof(u.pw_hash), "$y$j9T$k2XAnEHBqQ1Ct2aMXFKNa/$36nx2icDsQehvDTTolBYF7rAsHqUbiKilIs5kfb./dC");
	u.quota = 5;
	u.created = 1700000000;
	assert_int_equal(hk_scram_keys_new("pencil pencil", 4096, &u.scram), 0);
	u.has_scram = true;
	u.legacy_len = 40;
	memset(u.legacy, 0xAB, 40);
	struct hk_domain d, d2;
	hk_domain_init(&d);
	snprintf(d.name, sizeof(d.name), "example.jp");
	snprintf(d.cert_path, sizeof(d.cert_path), "/etc/x.pem");
	snprintf(d.key_path, sizeof(d.key_path), "/etc/x.key");
	snprintf(d.catchall, sizeof(d.catchall), "box@example.jp");
	d.flags = HK_DOMAIN_LEGACY_AUTH;
	struct hk_alias al, al2;
	hk_alias_init(&al);
	snprintf(al.local, sizeof(al.local), "info");
	snprintf(al.domain, sizeof(al.domain), "example.jp");
	for (int i = 0; i < 10; i++)
		snprintf(al.targets[i], sizeof(al.targets[i]), "t%d@remote.example", i);
	al.n_targets = 10;
	struct hk_plan p = *hk_plan_builtin("entry"), p2;
	struct acct_meta m = { ACCT_SCHEMA_VERSION, 42 }, m2;
	for (int i = 0; i < 5; i++)
		buf_init(&recs[i]);
	acct_encode_user(&u, &recs[0]);
	acct_encode_domain(&d, &recs[1]);
	acct_encode_alias(&al, &recs[2]);
	acct_encode_plan(&p, &recs[3]);
	acct_encode_meta(&m, &recs[4]);
	char why[128];
	/* round trips */
	assert_int_equal(acct_decode_user((uint8_t *)recs[0].data, recs[0].len, &u2, why, sizeof(why)), 0);
	assert_string_equal(u2.address, "Taro@example.jp");
	assert_memory_equal(&u2.scram, &u.scram, sizeof(u.scram));
	assert_int_equal(u2.legacy_len, 40);
	assert_string_equal(u2.pw_hash, u.pw_hash);
	assert_int_equal(acct_decode_domain((uint8_t *)recs[1].data, recs[1].len, &d2, why, sizeof(why)), 0);
	assert_string_equal(d2.catchall, "box@example.jp");
	assert_int_equal(d2.flags, HK_DOMAIN_LEGACY_AUTH);
	assert_int_equal(acct_decode_alias((uint8_t *)recs[2].data, recs[2].len, &al2, why, sizeof(why)), 0);
	assert_int_equal(al2.n_targets, 10);
	assert_int_equal(acct_decode_plan((uint8_t *)recs[3].data, recs[3].len, &p2, why, sizeof(why)), 0);
	assert_int_equal(p2.quota, p.quota);
	assert_true(p2.strict_retention);
	assert_int_equal(acct_decode_meta((uint8_t *)recs[4].data, recs[4].len, &m2, why, sizeof(why)), 0);
	assert_int_equal(m2.generation, 42);
	/* wrong type, wrong version, an optional field from a newer writer, a critical unknown one */
	assert_int_equal(acct_decode_domain((uint8_t *)recs[0].data, recs[0].len, &d2, why, sizeof(why)), -1);
	recs[1].data[1] = 2;
	assert_int_equal(acct_decode_domain((uint8_t *)recs[1].data, recs[1].len, &d2, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "version"));
	recs[1].data[1] = ACCT_FORMAT_VERSION;
	size_t keep = recs[1].len;
	buf_add(&recs[1], "\x90\x00\x02zz", 5);
	assert_int_equal(acct_decode_domain((uint8_t *)recs[1].data, recs[1].len, &d2, why, sizeof(why)), 0);
	recs[1].data[keep] = 0x40;
	assert_int_equal(acct_decode_domain((uint8_t *)recs[1].data, recs[1].len, &d2, why, sizeof(why)), -1);
	recs[1].len = keep;
	/* mutations: decoders answer 0 or -1 and never read or write out of bounds (ASan) */
	uint8_t *buf = malloc(HK_ACCT_RECORD_MAX + 64);
	size_t accepted = 0;
	for (int round = 0; round < 20000; round++) {
		struct hk_buf *r = &recs[round % 5];
		size_t n = r->len;
		memcpy(buf, r->data, n);
		int kind = (int)(next_rand() % 4);
		if (kind == 0) {
			n = (size_t)(next_rand() % (n + 1)); /* truncate */
		} else if (kind == 1) {
			for (int k = 0; k < 1 + (int)(next_rand() % 4); k++)
				buf[next_rand() % n] = (uint8_t)next_rand();
		} else if (kind == 2) {
			size_t extra = (size_t)(next_rand() % 64);
			for (size_t k = 0; k < extra; k++)
				buf[n + k] = (uint8_t)next_rand();
			n += extra;
		} else {
			/* damage a length field at a field boundary */
			buf[2 + next_rand() % (n - 2)] = 0xFF;
		}
		/* shrink to the exact length so ASan sees reads past it */
		uint8_t *exact = malloc(n ? n : 1);
		memcpy(exact, buf, n);
		int rc;
		switch (round % 5) {
		case 0:
			rc = acct_decode_user(exact, n, &u2, why, sizeof(why));
			if (rc == 0)
				assert_true(strlen(u2.address) <= HK_ADDRESS_MAX && u2.legacy_len <= HK_LEGACY_BLOB_MAX);
			break;
		case 1:
			rc = acct_decode_domain(exact, n, &d2, why, sizeof(why));
			if (rc == 0)
				assert_true(strlen(d2.name) <= HK_DOMAIN_MAX);
			break;
		case 2:
			rc = acct_decode_alias(exact, n, &al2, why, sizeof(why));
			if (rc == 0)
				assert_true(al2.n_targets <= HK_ALIAS_MAX_TARGETS);
			break;
		case 3: rc = acct_decode_plan(exact, n, &p2, why, sizeof(why)); break;
		default: rc = acct_decode_meta(exact, n, &m2, why, sizeof(why)); break;
		}
		assert_true(rc == 0 || rc == -1);
		if (rc == 0)
			accepted++;
		else
			assert_true(strlen(why) > 0);
		free(exact);
	}
	/* some mutations hit values only (e.g. a byte of a key): those decode */
	assert_true(accepted > 0);
	assert_true(accepted < 20000);
	free(buf);
	for (int i = 0; i < 5; i++)
		buf_fini(&recs[i]);
}

/* --- normalisation ---------------------------------------------------------------------------------------------------- */

static void
test_domain_normalisation(void **state)
{
	(void)state;
	static const struct {
		const char *in, *out;
	} ok[] = {
		{ "Example.JP", "example.jp" }, { "example.jp.", "example.jp" }, { "例え.jp", "xn--r8jz45g.jp" },
		{ "XN--R8JZ45G.JP", "xn--r8jz45g.jp" }, { "ＥＸＡＭＰＬＥ.jp", "example.jp" }, /* fullwidth, nameprep */
		{ "a-b.c0.example", "a-b.c0.example" }, { "mail.xn--wgv71a119e.jp", "mail.xn--wgv71a119e.jp" },
	};
	char out[HK_DOMAIN_MAX + 1], err[300];
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		if (hk_domain_normalize(ok[i].in, out, err, sizeof(err)) != HK_ACCT_OK)
			fail_msg("%s: %s", ok[i].in, err);
		assert_string_equal(out, ok[i].out);
	}
	static const char *bad[] = { "", ".", "localhost", "a..b.jp", "-a.jp", "a-.jp", "a.-jp", "1.2.3.4", "a b.jp",
		"exa_mple.jp", "[127.0.0.1]", "example.jp..", "xn--a.jp", "xn--0.jp", "bad\xff.jp", "tab\t.jp",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.jp" /* 64-byte label */ };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (hk_domain_normalize(bad[i], out, err, sizeof(err)) != HK_ACCT_INVALID)
			fail_msg("accepted '%s' as %s", bad[i], out);
		assert_true(strlen(err) > 0);
		assert_string_equal(out, "");
	}
	/* 253 bytes is the limit */
	char d[300] = "";
	for (int i = 0; i < 4; i++)
		strcat(d, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.");
	strcat(d, "jp"); /* 4 * 63 + 2 = 254 */
	assert_int_equal(hk_domain_normalize(d, out, err, sizeof(err)), HK_ACCT_INVALID);
	d[0] = '\0';
	for (int i = 0; i < 4; i++)
		strcat(d, i ? "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
		            : "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.");
	strcat(d, "jp"); /* 253 */
	assert_int_equal(strlen(d), 253);
	assert_int_equal(hk_domain_normalize(d, out, err, sizeof(err)), HK_ACCT_OK);
	char disp[300];
	hk_domain_display("xn--r8jz45g.jp", disp, sizeof(disp));
	assert_string_equal(disp, "例え.jp");
	hk_domain_display("example.jp", disp, sizeof(disp));
	assert_string_equal(disp, "example.jp");
	hk_domain_display("xn--r8jz45g.jp", disp, 4); /* too small: truncated copy of the input */
	assert_string_equal(disp, "xn-");
}

static void
test_address_normalisation(void **state)
{
	(void)state;
	char l[HK_LOCAL_MAX + 1], d[HK_DOMAIN_MAX + 1], err[300];
	assert_int_equal(hk_address_normalize("Taro.Y+tag@Example.JP", true, l, d, err, sizeof(err)), HK_ACCT_OK);
	assert_string_equal(l, "Taro.Y+tag");
	assert_string_equal(d, "example.jp");
	assert_int_equal(hk_address_normalize("a!#$%&'*+-/=?^_`{|}~@example.jp", true, l, d, err, sizeof(err)), HK_ACCT_OK);
	assert_int_equal(hk_address_normalize("用户@例え.jp", false, l, d, err, sizeof(err)), HK_ACCT_OK);
	assert_string_equal(d, "xn--r8jz45g.jp");
	assert_int_equal(hk_address_normalize("用户@例え.jp", true, l, d, err, sizeof(err)), HK_ACCT_INVALID);
	static const char *bad[] = { "noat", "@example.jp", "a@", "a@b", "\"q\"@example.jp", "a b@example.jp",
		"a..b@example.jp", ".a@example.jp", "a.@example.jp", "a(b)@example.jp", "a\xff@example.jp", "a@@example.jp",
		"a,b@example.jp", "a\"@example.jp" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (hk_address_normalize(bad[i], false, l, d, err, sizeof(err)) != HK_ACCT_INVALID)
			fail_msg("accepted '%s'", bad[i]);
		assert_true(strlen(err) > 0);
	}
	/* the whole address is at most 254 bytes */
	char big[400];
	memset(big, 'a', 64);
	big[64] = '@';
	big[65] = '\0';
	for (int i = 0; i < 3; i++)
		strcat(big, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.");
	strcat(big, "jp");
	assert_int_equal(hk_address_normalize(big, true, l, d, err, sizeof(err)), HK_ACCT_INVALID);
	assert_non_null(strstr(err, "254"));
	/* control characters are shown escaped in the message */
	assert_int_equal(hk_address_normalize("a\r\n@example.jp", true, l, d, err, sizeof(err)), HK_ACCT_INVALID);
	assert_null(strchr(err, '\r'));
	assert_non_null(strstr(err, "\\x0d"));
}

/* --- authfail ---------------------------------------------------------------------------------------------------------- */

static void
test_authfail_backoff_and_block(void **state)
{
	(void)state;
	struct hk_authfail *af = hk_authfail_new(NULL);
	int64_t now = 1000000;
	unsigned want[] = { 0, 0, 0, 1000, 2000, 4000, 8000, 16000, 16000, 16000 };
	for (int i = 0; i < 10; i++)
		assert_int_equal(hk_authfail_failure(af, "192.0.2.1", NULL, now + i), want[i]);
	struct hk_authfail_verdict v;
	hk_authfail_check(af, "192.0.2.1", NULL, now + 10, &v);
	assert_false(v.blocked);
	assert_int_equal(v.delay_ms, 16000);
	hk_authfail_check(af, "192.0.2.2", NULL, now + 10, &v);
	assert_int_equal(v.delay_ms, 0);
	for (int i = 10; i < 20; i++)
		hk_authfail_failure(af, "192.0.2.1", NULL, now + i);
	hk_authfail_check(af, "192.0.2.1", "someone@example.jp", now + 20, &v);
	assert_true(v.blocked);
	assert_int_equal(v.retry_after, now + 19 + 900);
	hk_authfail_check(af, "192.0.2.1", NULL, now + 19 + 900, &v);
	assert_false(v.blocked);
	assert_int_equal(v.delay_ms, 0); /* the block ended: counting starts again */
	hk_authfail_free(&af);
	assert_null(af);
}

static void
test_authfail_accounts(void **state)
{
	(void)state;
	struct hk_authfail *af = hk_authfail_new(NULL);
	int64_t now = 5000;
	/* many clients against one account: delays, never a block (default) */
	for (int i = 0; i < 100; i++) {
		char ip[32];
		snprintf(ip, sizeof(ip), "198.51.100.%d", i);
		hk_authfail_failure(af, ip, "Taro@Example.jp", now);
	}
	struct hk_authfail_verdict v;
	hk_authfail_check(af, NULL, "taro@example.jp", now, &v); /* case-insensitive */
	assert_false(v.blocked);
	assert_int_equal(v.delay_ms, 16000);
	/* success clears the account, not the client */
	for (int i = 0; i < 5; i++)
		hk_authfail_failure(af, "203.0.113.9", "jiro@example.jp", now);
	hk_authfail_success(af, "203.0.113.9", "jiro@example.jp");
	hk_authfail_check(af, NULL, "jiro@example.jp", now, &v);
	assert_int_equal(v.delay_ms, 0);
	hk_authfail_check(af, "203.0.113.9", NULL, now, &v);
	assert_int_equal(v.delay_ms, 2000);
	/* forgotten after forget_seconds */
	hk_authfail_check(af, "203.0.113.9", "taro@example.jp", now + 3600, &v);
	assert_int_equal(v.delay_ms, 0);
	hk_authfail_free(&af);
	/* blocking accounts when configured */
	struct hk_authfail_config cfg;
	hk_authfail_config_default(&cfg);
	cfg.account_block_after = 5;
	cfg.ip_block_after = 0;
	af = hk_authfail_new(&cfg);
	for (int i = 0; i < 30; i++)
		hk_authfail_failure(af, "192.0.2.7", "hanako@example.jp", now);
	hk_authfail_check(af, "192.0.2.7", NULL, now, &v);
	assert_false(v.blocked); /* clients never blocked here */
	hk_authfail_check(af, NULL, "hanako@example.jp", now, &v);
	assert_true(v.blocked);
	hk_authfail_free(&af);
}

static void
test_authfail_bounded_lru(void **state)
{
	(void)state;
	struct hk_authfail_config cfg;
	hk_authfail_config_default(&cfg);
	cfg.max_entries = 64;
	struct hk_authfail *af = hk_authfail_new(&cfg);
	for (int i = 0; i < 5; i++)
		hk_authfail_failure(af, "192.0.2.1", NULL, 100);
	for (int i = 0; i < 5000; i++) {
		char acc[64];
		snprintf(acc, sizeof(acc), "user%d@example.jp", i);
		hk_authfail_failure(af, NULL, acc, 100);
		if (i % 10 == 0) { /* the attacker's own address stays recent */
			struct hk_authfail_verdict v;
			hk_authfail_check(af, "192.0.2.1", NULL, 100, &v);
			assert_int_equal(v.delay_ms, 2000);
		}
		assert_true(hk_authfail_size(af) <= 64);
	}
	assert_int_equal(hk_authfail_size(af), 64);
	struct hk_authfail_verdict v;
	hk_authfail_check(af, NULL, "user0@example.jp", 100, &v); /* long evicted */
	assert_int_equal(v.delay_ms, 0);
	/* very long keys are truncated, not trusted */
	char huge[2000];
	memset(huge, 'x', sizeof(huge) - 1);
	huge[sizeof(huge) - 1] = '\0';
	for (int i = 0; i < 4; i++)
		hk_authfail_failure(af, huge, huge, 100);
	hk_authfail_check(af, huge, NULL, 100, &v);
	assert_int_equal(v.delay_ms, 1000);
	hk_authfail_free(&af);
}

static void
test_authfail_client_key(void **state)
{
	(void)state;
	char k[HK_AUTHFAIL_KEY_MAX];
	struct sockaddr_in s4 = { .sin_family = AF_INET };
	inet_pton(AF_INET, "192.0.2.33", &s4.sin_addr);
	hk_authfail_client_key((struct sockaddr *)&s4, k);
	assert_string_equal(k, "192.0.2.33");
	struct sockaddr_in6 s6 = { .sin6_family = AF_INET6 };
	inet_pton(AF_INET6, "2001:db8:1:2:aaaa:bbbb:cccc:dddd", &s6.sin6_addr);
	hk_authfail_client_key((struct sockaddr *)&s6, k);
	assert_string_equal(k, "2001:db8:1:2::/64");
	inet_pton(AF_INET6, "::ffff:198.51.100.7", &s6.sin6_addr);
	hk_authfail_client_key((struct sockaddr *)&s6, k);
	assert_string_equal(k, "198.51.100.7");
	struct sockaddr other = { .sa_family = AF_UNIX };
	hk_authfail_client_key(&other, k);
	assert_string_equal(k, "");
	hk_authfail_client_key(NULL, k);
	assert_string_equal(k, "");
}

#define BOTH(t) cmocka_unit_test_setup_teardown(t, setup_mem, teardown), cmocka_unit_test_setup_teardown(t, setup_gdbm, teardown)
#define GDBM(t) cmocka_unit_test_setup_teardown(t, setup_gdbm, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		BOTH(test_domain_add_get_list_del),
		BOTH(test_domain_delete_cascade),
		BOTH(test_user_add_errors),
		BOTH(test_user_lookup_case_and_idn),
		BOTH(test_password_auth_plain),
		BOTH(test_import_hash_upgraded_at_login),
		BOTH(test_legacy_cram_md5_and_apop),
		BOTH(test_scram_with_store),
		BOTH(test_alias_rules),
		BOTH(test_resolve_kinds),
		BOTH(test_expand_chains),
		BOTH(test_may_send_as),
		BOTH(test_limits_and_plans),
		BOTH(test_transactions_and_generation),
		GDBM(test_gdbm_reader_sees_whole_commits),
		GDBM(test_gdbm_two_writers_serialise),
		GDBM(test_gdbm_busy_lock),
		GDBM(test_gdbm_missing_file_is_empty),
		GDBM(test_gdbm_truncated_and_garbage_file),
		GDBM(test_gdbm_damaged_record_and_repair),
		GDBM(test_gdbm_random_damage_no_crash),
		cmocka_unit_test(test_codec_roundtrip_and_mutations),
		cmocka_unit_test(test_domain_normalisation),
		cmocka_unit_test(test_address_normalisation),
		cmocka_unit_test(test_authfail_backoff_and_block),
		cmocka_unit_test(test_authfail_accounts),
		cmocka_unit_test(test_authfail_bounded_lru),
		cmocka_unit_test(test_authfail_client_key),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
