/*
 * cli_admin.c - the administration commands on the accounts store:
 * `hikyaku domain`, `user`, `alias`, `plan` and `accounts`.
 *
 * The store is STATE/accounts.gdbm and the key of the legacy secrets
 * STATE/keys/secret.key, where STATE comes from cli_state_setup (--state,
 * the configuration of --config or $HIKYAKU_CONFIG, $HIKYAKU_STATE,
 * ./var); run as root on a configuration with `user`, every command works
 * as that user. Passwords never come from the command line: --password-file,
 * --stdin, or a prompt on the terminal (twice, echo off).
 *
 * Exit codes: 0 done; 1 refused (exists, not found, invalid input, limit);
 * 2 usage; 3 the store or a file is in trouble (busy, damaged, I/O,
 * insecure key file).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "accounts.h"
#include "cli.h"
#include "password.h"

enum { EXIT_REFUSED = 1, EXIT_USAGE = 2, EXIT_STORE = 3 };

/* --- options -------------------------------------------------------------------------------- */

struct opts {
	const char *state, *config;
	bool json, force, stdin_pw, no_password;
	const char *password_file, *hash_file;
	/* domain */
	const char *plan, *max_size, *cert, *key, *catchall;
	int legacy;         /* -1 unset, 0 off, 1 on */
	int enabled;        /* -1 unset, 0 disable, 1 enable */
	bool no_catchall, no_cert;
	/* user */
	const char *quota;
	/* plan */
	const char *retention, *forward, *lists, *list_members, *list_members_max, *list_max_size;
	int strict, list_attach;
	const char *args[HK_ALIAS_MAX_TARGETS + 8];
	int nargs;
};

struct optdef {
	const char *name;
	int kind; /* 0 flag (bool), 1 value (const char *), 2 tri-state on, 3 tri-state off */
	size_t off;
};

#define O(f) offsetof(struct opts, f)
static const struct optdef optdefs[] = {
	{ "--state", 1, O(state) },
	{ "--config", 1, O(config) },
	{ "--json", 0, O(json) },
	{ "--force", 0, O(force) },
	{ "--stdin", 0, O(stdin_pw) },
	{ "--no-password", 0, O(no_password) },
	{ "--password-file", 1, O(password_file) },
	{ "--hash-file", 1, O(hash_file) },
	{ "--plan", 1, O(plan) },
	{ "--max-size", 1, O(max_size) },
	{ "--cert", 1, O(cert) },
	{ "--key", 1, O(key) },
	{ "--catchall", 1, O(catchall) },
	{ "--no-catchall", 0, O(no_catchall) },
	{ "--no-cert", 0, O(no_cert) },
	{ "--legacy-auth", 2, O(legacy) },
	{ "--no-legacy-auth", 3, O(legacy) },
	{ "--enable", 2, O(enabled) },
	{ "--disable", 3, O(enabled) },
	{ "--quota", 1, O(quota) },
	{ "--retention", 1, O(retention) },
	{ "--forward", 1, O(forward) },
	{ "--lists", 1, O(lists) },
	{ "--list-members", 1, O(list_members) },
	{ "--list-members-max", 1, O(list_members_max) },
	{ "--list-max-size", 1, O(list_max_size) },
	{ "--strict-retention", 2, O(strict) },
	{ "--no-strict-retention", 3, O(strict) },
	{ "--list-attachments", 2, O(list_attach) },
	{ "--no-list-attachments", 3, O(list_attach) },
};
#undef O

/* Parses argv[from..]; allowed is a space-separated list of option names
 * valid for this command ("--state", "--config" and "--json" always are).
 * Then resolves the state directory into o->state, switching user if the
 * configuration says so (cli_state_setup). 0, or the exit code. */
static int
parse_opts(int argc, char **argv, int from, const char *allowed, struct opts *o)
{
	memset(o, 0, sizeof(*o));
	o->legacy = o->enabled = o->strict = o->list_attach = -1;
	bool only_args = false;
	for (int i = from; i < argc; i++) {
		const char *a = argv[i];
		if (!only_args && strcmp(a, "--") == 0) {
			only_args = true;
			continue;
		}
		if (only_args || a[0] != '-' || a[1] == '\0') {
			if (o->nargs >= (int)HK_ARRAY_LEN(o->args)) {
				cli_usage_error("too many arguments");
				return EXIT_USAGE;
			}
			o->args[o->nargs++] = a;
			continue;
		}
		const char *eq = strchr(a, '=');
		size_t nl = eq ? (size_t)(eq - a) : strlen(a);
		const struct optdef *d = NULL;
		for (size_t k = 0; k < HK_ARRAY_LEN(optdefs); k++)
			if (strlen(optdefs[k].name) == nl && strncmp(optdefs[k].name, a, nl) == 0)
				d = &optdefs[k];
		bool ok = d != NULL;
		if (ok && strcmp(d->name, "--state") != 0 && strcmp(d->name, "--config") != 0 && strcmp(d->name, "--json") != 0) {
			const char *p = strstr(allowed, d->name);
			ok = p && (p[nl] == ' ' || p[nl] == '\0') && (p == allowed || p[-1] == ' ');
		}
		if (!ok) {
			cli_usage_error("unknown option '%.*s' here", (int)nl, a);
			return EXIT_USAGE;
		}
		char *field = (char *)o + d->off;
		if (d->kind == 1) {
			const char *val = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
			if (val == NULL) {
				cli_usage_error("%s needs a value", d->name);
				return EXIT_USAGE;
			}
			memcpy(field, &val, sizeof(val));
		} else if (eq) {
			cli_usage_error("%s takes no value", d->name);
			return EXIT_USAGE;
		} else if (d->kind == 0) {
			*(bool *)(void *)field = true;
		} else {
			*(int *)(void *)field = d->kind == 2 ? 1 : 0;
		}
	}
	return cli_state_setup(o->config, o->state, &o->state);
}

/* --- helpers ----------------------------------------------------------------------------------- */

static int
exit_for(enum hk_acct_status st)
{
	switch (st) {
	case HK_ACCT_OK: return 0;
	case HK_ACCT_NOTFOUND:
	case HK_ACCT_EXISTS:
	case HK_ACCT_INVALID:
	case HK_ACCT_NODOMAIN:
	case HK_ACCT_NOTEMPTY:
	case HK_ACCT_LIMIT: return EXIT_REFUSED;
	case HK_ACCT_BUSY:
	case HK_ACCT_CORRUPT:
	case HK_ACCT_IO:
	case HK_ACCT_INSECURE: return EXIT_STORE;
	}
	return EXIT_STORE;
}

static int
report(struct hk_accounts *a, enum hk_acct_status st)
{
	if (st == HK_ACCT_OK)
		return 0;
	const char *msg = a ? hk_accounts_error(a) : "";
	fprintf(stderr, "hikyaku: %s\n", msg && *msg ? msg : hk_acct_status_str(st));
	return exit_for(st);
}

/* the directory cli_state_setup resolved in parse_opts */
static const char *
state_dir(const struct opts *o)
{
	return o->state;
}

static int
open_store(const struct opts *o, bool for_write, struct hk_accounts **a_r)
{
	const char *dir = state_dir(o);
	struct stat st;
	if (stat(dir, &st) < 0) {
		if (errno != ENOENT || !for_write || mkdir(dir, 0750) < 0) {
			fprintf(stderr, "hikyaku: state directory %s: %s\n", dir, strerror(errno));
			return EXIT_STORE;
		}
	} else if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "hikyaku: state directory %s: not a directory\n", dir);
		return EXIT_STORE;
	}
	char *path = xasprintf("%s/accounts.gdbm", dir);
	char *key = xasprintf("%s/keys/secret.key", dir);
	struct hk_accounts_config cfg = { .path = path, .key_path = key };
	char err[256];
	enum hk_acct_status s = hk_accounts_open_gdbm(&cfg, a_r, err, sizeof(err));
	free(path);
	free(key);
	if (s != HK_ACCT_OK) {
		fprintf(stderr, "hikyaku: %s\n", err);
		return exit_for(s);
	}
	return 0;
}

/* "10M", "1G", "512K", "1048576" -> bytes. */
static int
parse_size(const char *s, const char *what, int64_t *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	int64_t mul = 1;
	if (end == s || v < 0 || errno) {
		cli_usage_error("%s: '%s' is not a size (e.g. 20M, 1G, 0)", what, s);
		return -1;
	}
	if (*end) {
		char u = (char)(*end | 0x20);
		mul = u == 'k' ? 1024 : u == 'm' ? 1024 * 1024 : u == 'g' ? 1024LL * 1024 * 1024 : u == 't' ? 1024LL * 1024 * 1024 * 1024 : 0;
		end++;
		if (*end == 'B' || *end == 'b' || *end == 'i')
			end += *end == 'i' && (end[1] == 'B' || end[1] == 'b') ? 2 : 1;
		if (mul == 0 || *end) {
			cli_usage_error("%s: '%s' is not a size (e.g. 20M, 1G, 0)", what, s);
			return -1;
		}
	}
	if (v > INT64_MAX / mul) {
		cli_usage_error("%s: '%s' is too large", what, s);
		return -1;
	}
	*out = v * mul;
	return 0;
}

static int
parse_count(const char *s, const char *what, uint32_t max, uint32_t *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (end == s || *end || errno || v > max || s[0] == '-') {
		cli_usage_error("%s: '%s' is not a number from 0 to %u", what, s, max);
		return -1;
	}
	*out = (uint32_t)v;
	return 0;
}

static const char *
fmt_size(int64_t v, char *buf, size_t cap)
{
	static const struct {
		int64_t mul;
		const char *unit;
	} u[] = { { 1024LL * 1024 * 1024 * 1024, "T" }, { 1024LL * 1024 * 1024, "G" }, { 1024 * 1024, "M" }, { 1024, "K" } };
	if (v == 0) {
		snprintf(buf, cap, "0");
		return buf;
	}
	for (size_t i = 0; i < HK_ARRAY_LEN(u); i++)
		if (v % u[i].mul == 0) {
			snprintf(buf, cap, "%lld%s", (long long)(v / u[i].mul), u[i].unit);
			return buf;
		}
	snprintf(buf, cap, "%lld", (long long)v);
	return buf;
}

static const char *
fmt_time(int64_t t, char *buf, size_t cap)
{
	if (t <= 0) {
		snprintf(buf, cap, "-");
		return buf;
	}
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

static void
json_print(json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (s) {
		puts(s);
		free(s);
	}
	json_decref(j);
}

/* --- passwords ------------------------------------------------------------------------------------ */

static char *
read_line_fd(FILE *f, size_t max)
{
	char *buf = xcalloc(1, max + 3);
	if (fgets(buf, (int)max + 2, f) == NULL) {
		free(buf);
		return NULL;
	}
	size_t n = strlen(buf);
	if (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	if (n > 0 && buf[n - 1] == '\r')
		buf[--n] = '\0';
	return buf;
}

static void
wipe_free(char *s)
{
	if (s) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

static char *
prompt_tty(const char *prompt)
{
	FILE *tty = fopen("/dev/tty", "r+");
	if (tty == NULL)
		return NULL;
	struct termios old, quiet;
	int fd = fileno(tty);
	bool restore = tcgetattr(fd, &old) == 0;
	if (restore) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
		quiet.c_lflag |= ICANON;
		tcsetattr(fd, TCSAFLUSH, &quiet);
	}
	fputs(prompt, tty);
	fflush(tty);
	char *pw = read_line_fd(tty, HK_PASSWORD_MAX);
	if (restore)
		tcsetattr(fd, TCSAFLUSH, &old);
	fputs("\n", tty);
	fclose(tty);
	return pw;
}

/* The new password from --password-file, --stdin or the terminal. NULL
 * after printing why. */
static char *
get_password(const struct opts *o, const char *address, bool new_password)
{
	char *pw = NULL;
	if (o->password_file) {
		FILE *f = fopen(o->password_file, "r");
		if (f == NULL) {
			fprintf(stderr, "hikyaku: %s: %s\n", o->password_file, strerror(errno));
			return NULL;
		}
		pw = read_line_fd(f, HK_PASSWORD_MAX);
		fclose(f);
		if (pw == NULL) {
			fprintf(stderr, "hikyaku: %s is empty\n", o->password_file);
			return NULL;
		}
	} else if (o->stdin_pw) {
		pw = read_line_fd(stdin, HK_PASSWORD_MAX);
		if (pw == NULL) {
			fprintf(stderr, "hikyaku: no password on standard input\n");
			return NULL;
		}
	} else if (isatty(0)) {
		char prompt[HK_ADDRESS_MAX + 40];
		snprintf(prompt, sizeof(prompt), "%s for %s: ", new_password ? "New password" : "Password", address);
		pw = prompt_tty(prompt);
		if (!new_password)
			return pw;
		char *again = pw ? prompt_tty("Again: ") : NULL;
		if (pw == NULL || again == NULL || strcmp(pw, again) != 0) {
			fprintf(stderr, "hikyaku: %s\n", pw && again ? "the passwords differ" : "cannot read the terminal");
			wipe_free(pw);
			wipe_free(again);
			return NULL;
		}
		wipe_free(again);
	} else {
		fprintf(stderr, "hikyaku: no password given: use --password-file FILE or --stdin, or run on a terminal\n");
		return NULL;
	}
	if (strlen(pw) > HK_PASSWORD_MAX) {
		fprintf(stderr, "hikyaku: password too long (at most %d bytes)\n", HK_PASSWORD_MAX);
		wipe_free(pw);
		return NULL;
	}
	const char *why = new_password ? hk_password_check(pw) : NULL;
	if (why) {
		fprintf(stderr, "hikyaku: %s\n", why);
		wipe_free(pw);
		return NULL;
	}
	return pw;
}

static char *
get_hash(const char *file)
{
	FILE *f = fopen(file, "r");
	if (f == NULL) {
		fprintf(stderr, "hikyaku: %s: %s\n", file, strerror(errno));
		return NULL;
	}
	char *h = read_line_fd(f, HK_PW_HASH_MAX);
	fclose(f);
	if (h == NULL || h[0] == '\0') {
		fprintf(stderr, "hikyaku: %s holds no hash\n", file);
		free(h);
		return NULL;
	}
	return h;
}

static int
count_password_sources(const struct opts *o)
{
	return (o->password_file != NULL) + o->stdin_pw + (o->hash_file != NULL) + o->no_password;
}

/* --- domain ---------------------------------------------------------------------------------------- */

static int
domain_apply_opts(const struct opts *o, struct hk_domain *d)
{
	if (o->plan)
		snprintf(d->plan, sizeof(d->plan), "%s", o->plan);
	if (o->max_size && parse_size(o->max_size, "--max-size", &d->max_message_size) < 0)
		return -1;
	if (o->legacy >= 0)
		d->flags = o->legacy ? d->flags | HK_DOMAIN_LEGACY_AUTH : d->flags & ~(uint32_t)HK_DOMAIN_LEGACY_AUTH;
	if (o->enabled >= 0)
		d->flags = o->enabled ? d->flags & ~(uint32_t)HK_DOMAIN_DISABLED : d->flags | HK_DOMAIN_DISABLED;
	if (o->no_cert)
		d->cert_path[0] = d->key_path[0] = '\0';
	if ((o->cert != NULL) != (o->key != NULL)) {
		cli_usage_error("--cert and --key go together");
		return -1;
	}
	if (o->cert) {
		if (strlen(o->cert) > HK_ACCT_PATH_MAX || strlen(o->key) > HK_ACCT_PATH_MAX) {
			cli_usage_error("certificate path too long");
			return -1;
		}
		snprintf(d->cert_path, sizeof(d->cert_path), "%s", o->cert);
		snprintf(d->key_path, sizeof(d->key_path), "%s", o->key);
	}
	if (o->no_catchall)
		d->catchall[0] = '\0';
	if (o->catchall) {
		if (strlen(o->catchall) > HK_ADDRESS_MAX) {
			cli_usage_error("--catchall: address too long");
			return -1;
		}
		snprintf(d->catchall, sizeof(d->catchall), "%s", o->catchall);
	}
	return 0;
}

struct counts {
	size_t users, aliases;
};

static void
count_domain(struct hk_accounts *a, const char *domain, struct counts *c)
{
	struct hk_user *u;
	struct hk_alias *al;
	size_t n;
	c->users = c->aliases = 0;
	if (hk_accounts_user_list(a, domain, &u, &n) == HK_ACCT_OK)
		c->users = n;
	free(u);
	if (hk_accounts_alias_list(a, domain, &al, &n) == HK_ACCT_OK)
		c->aliases = n;
	free(al);
}

static json_t *
domain_json(const struct hk_domain *d, const struct counts *c)
{
	char uni[512], t[32];
	hk_domain_display(d->name, uni, sizeof(uni));
	json_t *j = json_object();
	json_object_set_new(j, "name", json_string(d->name));
	if (strcmp(uni, d->name) != 0)
		json_object_set_new(j, "unicode", json_string(uni));
	json_object_set_new(j, "plan", json_string(d->plan));
	json_object_set_new(j, "legacy_auth", json_boolean(d->flags & HK_DOMAIN_LEGACY_AUTH));
	json_object_set_new(j, "disabled", json_boolean(d->flags & HK_DOMAIN_DISABLED));
	json_object_set_new(j, "max_message_size", json_integer(d->max_message_size));
	json_object_set_new(j, "cert", d->cert_path[0] ? json_string(d->cert_path) : json_null());
	json_object_set_new(j, "key", d->key_path[0] ? json_string(d->key_path) : json_null());
	json_object_set_new(j, "catchall", d->catchall[0] ? json_string(d->catchall) : json_null());
	json_object_set_new(j, "created", json_string(fmt_time(d->created, t, sizeof(t))));
	if (c) {
		json_object_set_new(j, "users", json_integer((json_int_t)c->users));
		json_object_set_new(j, "aliases", json_integer((json_int_t)c->aliases));
	}
	return j;
}

static int
domain_cmd(int argc, char **argv)
{
	if (argc < 2 || argv[1][0] == '-') {
		cli_usage_error("domain needs a command: add, set, del, list, show");
		return EXIT_USAGE;
	}
	const char *sub = argv[1];
	struct opts o;
	struct hk_accounts *a = NULL;
	int rc;
	const char *opts_for = strcmp(sub, "add") == 0 || strcmp(sub, "set") == 0
	    ? "--plan --max-size --cert --key --catchall --no-catchall --no-cert --legacy-auth --no-legacy-auth --enable --disable"
	    : strcmp(sub, "del") == 0 ? "--force" : "";
	int prc = parse_opts(argc, argv, 2, opts_for, &o);
	if (prc != 0)
		return prc;
	bool write = strcmp(sub, "add") == 0 || strcmp(sub, "set") == 0 || strcmp(sub, "del") == 0;
	int want = strcmp(sub, "list") == 0 ? 0 : 1;
	if (!write && strcmp(sub, "list") != 0 && strcmp(sub, "show") != 0) {
		cli_usage_error("unknown domain command '%s' (add, set, del, list, show)", sub);
		return EXIT_USAGE;
	}
	if (o.nargs != want) {
		cli_usage_error(want ? "domain %s needs one DOMAIN" : "domain %s takes no arguments", sub);
		return EXIT_USAGE;
	}
	if ((rc = open_store(&o, write, &a)) != 0)
		return rc;
	enum hk_acct_status st = HK_ACCT_OK;
	struct hk_domain d;
	if (strcmp(sub, "add") == 0) {
		hk_domain_init(&d);
		/* an IDN can be longer in UTF-8 than in A-labels: normalise first */
		char err[300];
		st = hk_domain_normalize(o.args[0], d.name, err, sizeof(err));
		if (st != HK_ACCT_OK) {
			fprintf(stderr, "hikyaku: %s\n", err);
			rc = exit_for(st);
			goto out;
		}
		if (domain_apply_opts(&o, &d) < 0) {
			rc = EXIT_USAGE;
			goto out;
		}
		st = hk_accounts_domain_add(a, &d);
		if (st == HK_ACCT_OK)
			printf("added domain %s (plan %s)\n", d.name, d.plan);
	} else if (strcmp(sub, "set") == 0) {
		st = hk_accounts_domain_get(a, o.args[0], &d);
		if (st == HK_ACCT_OK) {
			if (domain_apply_opts(&o, &d) < 0) {
				rc = EXIT_USAGE;
				goto out;
			}
			st = hk_accounts_domain_update(a, &d);
		}
		if (st == HK_ACCT_OK)
			printf("updated domain %s\n", d.name);
	} else if (strcmp(sub, "del") == 0) {
		char name[HK_DOMAIN_MAX + 1];
		(void)hk_domain_normalize(o.args[0], name, NULL, 0);
		st = hk_accounts_domain_del(a, o.args[0], o.force);
		if (st == HK_ACCT_OK)
			printf("deleted domain %s\n", name);
	} else if (strcmp(sub, "show") == 0) {
		st = hk_accounts_domain_get(a, o.args[0], &d);
		if (st == HK_ACCT_OK) {
			struct counts c;
			count_domain(a, d.name, &c);
			struct hk_limits l;
			if (o.json) {
				json_t *j = domain_json(&d, &c);
				if (hk_accounts_domain_limits(a, d.name, &l) == HK_ACCT_OK)
					json_object_set_new(j, "effective_max_message_size", json_integer(l.max_message_size));
				json_print(j);
			} else {
				char uni[512], s1[32], t[32];
				hk_domain_display(d.name, uni, sizeof(uni));
				printf("domain       %s", d.name);
				if (strcmp(uni, d.name) != 0)
					printf(" (%s)", uni);
				printf("\nplan         %s\n", d.plan);
				if (hk_accounts_domain_limits(a, d.name, &l) == HK_ACCT_OK)
					printf("max size     %s%s\n", fmt_size(l.max_message_size, s1, sizeof(s1)),
					    d.max_message_size ? " (domain override)" : " (plan)");
				printf("legacy auth  %s (CRAM-MD5, APOP)\n", d.flags & HK_DOMAIN_LEGACY_AUTH ? "on" : "off");
				printf("status       %s\n", d.flags & HK_DOMAIN_DISABLED ? "disabled" : "enabled");
				printf("certificate  %s\n", d.cert_path[0] ? d.cert_path : "(default)");
				if (d.key_path[0])
					printf("key          %s\n", d.key_path);
				printf("catch-all    %s\n", d.catchall[0] ? d.catchall : "(none)");
				printf("users        %zu\naliases      %zu\n", c.users, c.aliases);
				printf("created      %s\n", fmt_time(d.created, t, sizeof(t)));
			}
		}
	} else {
		struct hk_domain *v;
		size_t n;
		st = hk_accounts_domain_list(a, &v, &n);
		if (st == HK_ACCT_OK || st == HK_ACCT_CORRUPT) {
			json_t *arr = o.json ? json_array() : NULL;
			if (!o.json && n)
				printf("%-32s %-10s %6s %7s  %s\n", "DOMAIN", "PLAN", "USERS", "ALIASES", "OPTIONS");
			for (size_t i = 0; i < n; i++) {
				struct counts c;
				count_domain(a, v[i].name, &c);
				if (o.json) {
					json_array_append_new(arr, domain_json(&v[i], &c));
					continue;
				}
				char flags[128] = "";
				if (v[i].flags & HK_DOMAIN_LEGACY_AUTH)
					strcat(flags, "legacy-auth ");
				if (v[i].flags & HK_DOMAIN_DISABLED)
					strcat(flags, "disabled ");
				if (v[i].catchall[0])
					strcat(flags, "catch-all ");
				if (v[i].cert_path[0])
					strcat(flags, "cert ");
				printf("%-32s %-10s %6zu %7zu  %s\n", v[i].name, v[i].plan, c.users, c.aliases, flags);
			}
			if (o.json)
				json_print(arr);
			free(v);
		}
	}
	rc = report(a, st);
out:
	hk_accounts_close(&a);
	return rc;
}

/* --- user ---------------------------------------------------------------------------------------------- */

static const char *
auth_summary(const struct hk_user *u, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s%s%s", u->pw_hash[0] ? hk_password_method(u->pw_hash) : "no-password",
	    u->has_scram ? "+scram" : "", u->legacy_len ? "+legacy" : "");
	return buf;
}

static json_t *
user_json(struct hk_accounts *a, const struct hk_user *u)
{
	char t[32];
	json_t *j = json_object();
	json_object_set_new(j, "address", json_string(u->address));
	json_object_set_new(j, "domain", json_string(u->domain));
	json_object_set_new(j, "plan", u->plan[0] ? json_string(u->plan) : json_null());
	json_object_set_new(j, "quota", json_integer(u->quota));
	json_object_set_new(j, "disabled", json_boolean(u->flags & HK_USER_DISABLED));
	json_object_set_new(j, "password", u->pw_hash[0] ? json_string(hk_password_method(u->pw_hash)) : json_null());
	json_object_set_new(j, "scram", json_boolean(u->has_scram));
	json_object_set_new(j, "legacy_secret", json_boolean(u->legacy_len != 0));
	json_object_set_new(j, "created", json_string(fmt_time(u->created, t, sizeof(t))));
	json_object_set_new(j, "password_changed", json_string(fmt_time(u->pw_changed, t, sizeof(t))));
	struct hk_limits l;
	if (hk_accounts_limits(a, u, &l) == HK_ACCT_OK) {
		json_t *lj = json_object();
		json_object_set_new(lj, "plan", json_string(l.plan));
		json_object_set_new(lj, "quota", json_integer(l.quota));
		json_object_set_new(lj, "max_message_size", json_integer(l.max_message_size));
		json_object_set_new(lj, "retention_seconds", json_integer(l.retention));
		json_object_set_new(lj, "strict_retention", json_boolean(l.strict_retention));
		json_object_set_new(lj, "max_forward", json_integer(l.max_forward));
		json_object_set_new(j, "limits", lj);
	}
	return j;
}

static int
user_apply_opts(const struct opts *o, struct hk_user *u)
{
	if (o->plan)
		snprintf(u->plan, sizeof(u->plan), "%s", o->plan);
	if (o->quota && parse_size(o->quota, "--quota", &u->quota) < 0)
		return -1;
	if (o->enabled >= 0)
		u->flags = o->enabled ? u->flags & ~(uint32_t)HK_USER_DISABLED : u->flags | HK_USER_DISABLED;
	return 0;
}

static int
user_cmd(int argc, char **argv)
{
	if (argc < 2 || argv[1][0] == '-') {
		cli_usage_error("user needs a command: add, set, passwd, check, del, list, show");
		return EXIT_USAGE;
	}
	const char *sub = argv[1];
	struct opts o;
	const char *opts_for = strcmp(sub, "add") == 0
	    ? "--plan --quota --enable --disable --password-file --stdin --hash-file --no-password"
	    : strcmp(sub, "set") == 0   ? "--plan --quota --enable --disable"
	    : strcmp(sub, "passwd") == 0 ? "--password-file --stdin --hash-file"
	    : strcmp(sub, "check") == 0  ? "--password-file --stdin"
	                                 : "";
	int prc = parse_opts(argc, argv, 2, opts_for, &o);
	if (prc != 0)
		return prc;
	/* check may write too: a login upgrades old hashes */
	bool write = strcmp(sub, "add") == 0 || strcmp(sub, "set") == 0 || strcmp(sub, "passwd") == 0 ||
	    strcmp(sub, "del") == 0 || strcmp(sub, "check") == 0;
	bool list = strcmp(sub, "list") == 0;
	if (!write && !list && strcmp(sub, "show") != 0) {
		cli_usage_error("unknown user command '%s' (add, set, passwd, check, del, list, show)", sub);
		return EXIT_USAGE;
	}
	if ((list && o.nargs > 1) || (!list && o.nargs != 1)) {
		cli_usage_error(list ? "user list takes at most one DOMAIN" : "user %s needs one ADDRESS", sub);
		return EXIT_USAGE;
	}
	if (count_password_sources(&o) > 1) {
		cli_usage_error("give only one of --password-file, --stdin, --hash-file, --no-password");
		return EXIT_USAGE;
	}
	if (o.nargs && strlen(o.args[0]) > 1024) {
		cli_usage_error("address too long");
		return EXIT_USAGE;
	}
	struct hk_accounts *a = NULL;
	int rc;
	char *pw = NULL, *hash = NULL;
	/* read the password before touching the store: a typo costs nothing */
	bool check = strcmp(sub, "check") == 0;
	bool wants_pw = (strcmp(sub, "add") == 0 && !o.no_password) || strcmp(sub, "passwd") == 0 || check;
	if (wants_pw && o.hash_file && (hash = get_hash(o.hash_file)) == NULL)
		return EXIT_REFUSED;
	if (wants_pw && !o.hash_file && (pw = get_password(&o, o.args[0], !check)) == NULL)
		return EXIT_REFUSED;
	if ((rc = open_store(&o, write, &a)) != 0)
		goto done;
	enum hk_acct_status st = HK_ACCT_OK;
	struct hk_user *u = xcalloc(1, sizeof(*u));
	if (strcmp(sub, "add") == 0) {
		hk_user_init(u);
		snprintf(u->address, sizeof(u->address), "%.*s", HK_ADDRESS_MAX, o.args[0]);
		if (strlen(o.args[0]) > HK_ADDRESS_MAX) {
			char l[HK_LOCAL_MAX + 1], d[HK_DOMAIN_MAX + 1], err[300];
			if (hk_address_normalize(o.args[0], true, l, d, err, sizeof(err)) != HK_ACCT_OK) {
				fprintf(stderr, "hikyaku: %s\n", err);
				rc = EXIT_REFUSED;
				goto out;
			}
			size_t ll = strlen(l), dl = strlen(d); /* ll + 1 + dl <= HK_ADDRESS_MAX after normalising */
			memcpy(u->address, l, ll);
			u->address[ll] = '@';
			memcpy(u->address + ll + 1, d, dl + 1);
		}
		if (user_apply_opts(&o, u) < 0) {
			rc = EXIT_USAGE;
			goto out;
		}
		st = hk_accounts_begin(a);
		if (st == HK_ACCT_OK)
			st = hk_accounts_user_add(a, u);
		if (st == HK_ACCT_OK && pw)
			st = hk_accounts_user_set_password(a, u->address, pw);
		if (st == HK_ACCT_OK && hash)
			st = hk_accounts_user_set_hash(a, u->address, hash);
		if (st == HK_ACCT_OK)
			st = hk_accounts_commit(a);
		else {
			char keep[512];
			snprintf(keep, sizeof(keep), "%s", hk_accounts_error(a));
			hk_accounts_abort(a);
			fprintf(stderr, "hikyaku: %s\n", keep[0] ? keep : hk_acct_status_str(st));
			rc = exit_for(st);
			goto out;
		}
		if (st == HK_ACCT_OK)
			printf("added user %s%s\n", u->address, pw || hash ? "" : " (no password: cannot log in yet)");
	} else if (strcmp(sub, "set") == 0) {
		st = hk_accounts_user_get(a, o.args[0], u);
		if (st == HK_ACCT_OK) {
			if (user_apply_opts(&o, u) < 0) {
				rc = EXIT_USAGE;
				goto out;
			}
			st = hk_accounts_user_update(a, u);
		}
		if (st == HK_ACCT_OK)
			printf("updated user %s\n", u->address);
	} else if (strcmp(sub, "passwd") == 0) {
		st = hk_accounts_user_get(a, o.args[0], u);
		if (st == HK_ACCT_OK)
			st = pw ? hk_accounts_user_set_password(a, u->address, pw) : hk_accounts_user_set_hash(a, u->address, hash);
		if (st == HK_ACCT_OK)
			printf("changed the password of %s\n", u->address);
	} else if (check) {
		enum hk_auth_result r = hk_accounts_auth_plain(a, o.args[0], pw, u);
		if (r == HK_AUTH_OK) {
			printf("password accepted for %s\n", u->address);
		} else {
			const char *why = hk_accounts_error(a);
			fprintf(stderr, "hikyaku: %s\n",
			    r == HK_AUTH_DISABLED ? "password right, but the user or domain is disabled"
			    : r == HK_AUTH_FAIL   ? "wrong password or unknown user"
			    : why[0]              ? why
			                          : "the store cannot answer now");
			rc = r == HK_AUTH_TEMPFAIL ? EXIT_STORE : EXIT_REFUSED;
			goto out;
		}
	} else if (strcmp(sub, "del") == 0) {
		st = hk_accounts_user_get(a, o.args[0], u);
		if (st == HK_ACCT_OK)
			st = hk_accounts_user_del(a, u->address);
		if (st == HK_ACCT_OK)
			printf("deleted user %s (its mail under %s/domains/ is left alone)\n", u->address, state_dir(&o));
	} else if (strcmp(sub, "show") == 0) {
		st = hk_accounts_user_get(a, o.args[0], u);
		if (st == HK_ACCT_OK && o.json) {
			json_print(user_json(a, u));
		} else if (st == HK_ACCT_OK) {
			struct hk_limits l;
			char s1[32], s2[32], t[32], au[64];
			bool lim = hk_accounts_limits(a, u, &l) == HK_ACCT_OK;
			printf("user         %s\n", u->address);
			printf("status       %s\n", u->flags & HK_USER_DISABLED ? "disabled" : "enabled");
			printf("plan         %s%s\n", lim ? l.plan : u->plan, u->plan[0] ? " (user override)" : " (domain's)");
			if (lim) {
				printf("quota        %s%s\n", l.quota ? fmt_size(l.quota, s1, sizeof(s1)) : "unlimited",
				    u->quota ? " (user override)" : "");
				printf("max size     %s\n", fmt_size(l.max_message_size, s2, sizeof(s2)));
				if (l.retention)
					printf("retention    %lld days%s\n", (long long)(l.retention / 86400),
					    l.strict_retention ? " (strict: flagged mail too)" : "");
				else
					printf("retention    forever\n");
			}
			printf("credentials  %s\n", auth_summary(u, au, sizeof(au)));
			if (u->pw_hash[0] && hk_password_needs_rehash(u->pw_hash))
				printf("             (rehashed to yescrypt at the next login)\n");
			printf("created      %s\n", fmt_time(u->created, t, sizeof(t)));
			printf("password set %s\n", fmt_time(u->pw_changed, t, sizeof(t)));
		}
	} else {
		struct hk_user *v;
		size_t n;
		st = hk_accounts_user_list(a, o.nargs ? o.args[0] : NULL, &v, &n);
		if (st == HK_ACCT_OK || st == HK_ACCT_CORRUPT) {
			json_t *arr = o.json ? json_array() : NULL;
			if (!o.json && n)
				printf("%-40s %-10s %8s %-9s %s\n", "ADDRESS", "PLAN", "QUOTA", "STATUS", "CREDENTIALS");
			for (size_t i = 0; i < n; i++) {
				if (o.json) {
					json_array_append_new(arr, user_json(a, &v[i]));
					continue;
				}
				struct hk_limits l;
				char s1[32], au[64];
				bool lim = hk_accounts_limits(a, &v[i], &l) == HK_ACCT_OK;
				printf("%-40s %-10s %8s %-9s %s\n", v[i].address, lim ? l.plan : v[i].plan,
				    !lim ? "?" : l.quota ? fmt_size(l.quota, s1, sizeof(s1)) : "-",
				    v[i].flags & HK_USER_DISABLED ? "disabled" : "enabled", auth_summary(&v[i], au, sizeof(au)));
			}
			if (o.json)
				json_print(arr);
			OPENSSL_cleanse(v, n * sizeof(*v));
			free(v);
		}
	}
	rc = report(a, st);
out:
	OPENSSL_cleanse(u, sizeof(*u));
	free(u);
	hk_accounts_close(&a);
done:
	wipe_free(pw);
	free(hash);
	return rc;
}

/* --- alias ------------------------------------------------------------------------------------------------ */

static json_t *
alias_json(const struct hk_alias *al)
{
	json_t *j = json_object();
	json_object_set_new(j, "address", json_string(al->address));
	json_t *t = json_array();
	for (uint32_t i = 0; i < al->n_targets; i++)
		json_array_append_new(t, json_string(al->targets[i]));
	json_object_set_new(j, "targets", t);
	return j;
}

static void
alias_print(const struct hk_alias *al)
{
	printf("%-40s ->", al->address);
	for (uint32_t i = 0; i < al->n_targets; i++)
		printf(" %s", al->targets[i]);
	printf("\n");
}

static int
alias_cmd(int argc, char **argv)
{
	if (argc < 2 || argv[1][0] == '-') {
		cli_usage_error("alias needs a command: add, del, list, show");
		return EXIT_USAGE;
	}
	const char *sub = argv[1];
	struct opts o;
	int prc = parse_opts(argc, argv, 2, "", &o);
	if (prc != 0)
		return prc;
	bool add = strcmp(sub, "add") == 0, del = strcmp(sub, "del") == 0, list = strcmp(sub, "list") == 0,
	     show = strcmp(sub, "show") == 0;
	if (!add && !del && !list && !show) {
		cli_usage_error("unknown alias command '%s' (add, del, list, show)", sub);
		return EXIT_USAGE;
	}
	if ((add && o.nargs < 2) || ((del || show) && o.nargs < 1) || (show && o.nargs != 1) || (list && o.nargs > 1)) {
		cli_usage_error(add ? "alias add needs ADDRESS TARGET..." : list ? "alias list takes at most one DOMAIN"
		                                                               : "alias %s needs ADDRESS", sub);
		return EXIT_USAGE;
	}
	for (int i = 0; i < o.nargs; i++)
		if (strlen(o.args[i]) > HK_ADDRESS_MAX) {
			cli_usage_error("address too long: %.60s...", o.args[i]);
			return EXIT_USAGE;
		}
	struct hk_accounts *a = NULL;
	int rc;
	if ((rc = open_store(&o, add || del, &a)) != 0)
		return rc;
	enum hk_acct_status st = HK_ACCT_OK;
	struct hk_alias *al = xcalloc(1, sizeof(*al));
	if (add || (del && o.nargs > 1)) {
		st = hk_accounts_begin(a);
		if (st == HK_ACCT_OK) {
			st = hk_accounts_alias_get(a, o.args[0], al);
			if (st == HK_ACCT_NOTFOUND && add) {
				hk_alias_init(al);
				snprintf(al->address, sizeof(al->address), "%s", o.args[0]);
				st = HK_ACCT_OK;
			}
		}
		for (int i = 1; st == HK_ACCT_OK && i < o.nargs; i++) {
			if (add) {
				if (al->n_targets >= HK_ALIAS_MAX_TARGETS) {
					st = HK_ACCT_LIMIT;
					fprintf(stderr, "hikyaku: alias %s: at most %d targets\n", al->address, HK_ALIAS_MAX_TARGETS);
					break;
				}
				snprintf(al->targets[al->n_targets++], sizeof(al->targets[0]), "%s", o.args[i]);
				continue;
			}
			bool found = false;
			for (uint32_t k = 0; k < al->n_targets; k++)
				if (strcasecmp(al->targets[k], o.args[i]) == 0) {
					memmove(al->targets[k], al->targets[k + 1], (al->n_targets - k - 1) * sizeof(al->targets[0]));
					al->n_targets--;
					found = true;
					break;
				}
			if (!found) {
				st = HK_ACCT_NOTFOUND;
				fprintf(stderr, "hikyaku: %s is not a target of %s\n", o.args[i], al->address);
			}
		}
		if (st == HK_ACCT_OK)
			st = al->n_targets ? hk_accounts_alias_put(a, al) : hk_accounts_alias_del(a, al->address);
		if (st == HK_ACCT_OK) {
			st = hk_accounts_commit(a);
		} else {
			char keep[512];
			snprintf(keep, sizeof(keep), "%s", hk_accounts_error(a));
			hk_accounts_abort(a);
			if (keep[0])
				fprintf(stderr, "hikyaku: %s\n", keep);
			rc = exit_for(st);
			goto out;
		}
		if (st == HK_ACCT_OK && al->n_targets)
			alias_print(al);
		else if (st == HK_ACCT_OK)
			printf("deleted alias %s (no targets left)\n", al->address);
	} else if (del) {
		st = hk_accounts_alias_get(a, o.args[0], al);
		if (st == HK_ACCT_OK)
			st = hk_accounts_alias_del(a, al->address);
		if (st == HK_ACCT_OK)
			printf("deleted alias %s\n", al->address);
	} else if (show) {
		st = hk_accounts_alias_get(a, o.args[0], al);
		if (st == HK_ACCT_OK) {
			if (o.json)
				json_print(alias_json(al));
			else
				alias_print(al);
		}
	} else {
		struct hk_alias *v;
		size_t n;
		st = hk_accounts_alias_list(a, o.nargs ? o.args[0] : NULL, &v, &n);
		if (st == HK_ACCT_OK || st == HK_ACCT_CORRUPT) {
			json_t *arr = o.json ? json_array() : NULL;
			for (size_t i = 0; i < n; i++) {
				if (o.json)
					json_array_append_new(arr, alias_json(&v[i]));
				else
					alias_print(&v[i]);
			}
			if (o.json)
				json_print(arr);
			free(v);
		}
	}
	rc = report(a, st);
out:
	free(al);
	hk_accounts_close(&a);
	return rc;
}

/* --- plan --------------------------------------------------------------------------------------------------- */

static json_t *
plan_json(const struct hk_plan *p)
{
	json_t *j = json_object();
	json_object_set_new(j, "name", json_string(p->name));
	json_object_set_new(j, "builtin", json_boolean(p->builtin));
	json_object_set_new(j, "quota", json_integer(p->quota));
	json_object_set_new(j, "max_message_size", json_integer(p->max_message_size));
	json_object_set_new(j, "retention_days", json_integer(p->retention_days));
	json_object_set_new(j, "strict_retention", json_boolean(p->strict_retention));
	json_object_set_new(j, "max_forward", json_integer(p->max_forward));
	json_object_set_new(j, "max_lists", json_integer(p->max_lists));
	json_object_set_new(j, "list_members", json_integer(p->list_members));
	json_object_set_new(j, "list_members_max", json_integer(p->list_members_max));
	json_object_set_new(j, "list_max_message_size", json_integer(p->list_max_message_size));
	json_object_set_new(j, "list_attachments", json_boolean(p->list_attachments));
	return j;
}

static void
plan_print_row(const struct hk_plan *p)
{
	char q[32], m[32], lm[32], r[32];
	snprintf(r, sizeof(r), "%s", p->retention_days ? "" : "forever");
	if (p->retention_days)
		snprintf(r, sizeof(r), "%lldd%s", (long long)p->retention_days, p->strict_retention ? " strict" : "");
	printf("%-12s %8s %8s %-14s %7u %5u %4u/%-4u %8s %s\n", p->name,
	    p->quota ? fmt_size(p->quota, q, sizeof(q)) : "-", fmt_size(p->max_message_size, m, sizeof(m)), r,
	    p->max_forward, p->max_lists, p->list_members, p->list_members_max,
	    fmt_size(p->list_max_message_size, lm, sizeof(lm)), p->builtin ? "built-in" : "stored");
}

static int
plan_apply_opts(const struct opts *o, struct hk_plan *p)
{
	uint32_t v;
	if (o->quota && parse_size(o->quota, "--quota", &p->quota) < 0)
		return -1;
	if (o->max_size && parse_size(o->max_size, "--max-size", &p->max_message_size) < 0)
		return -1;
	if (o->list_max_size && parse_size(o->list_max_size, "--list-max-size", &p->list_max_message_size) < 0)
		return -1;
	if (o->retention) {
		if (parse_count(o->retention, "--retention", 100000, &v) < 0)
			return -1;
		p->retention_days = v;
	}
	if (o->forward && parse_count(o->forward, "--forward", HK_ALIAS_MAX_TARGETS, &p->max_forward) < 0)
		return -1;
	if (o->lists && parse_count(o->lists, "--lists", 1000, &p->max_lists) < 0)
		return -1;
	if (o->list_members && parse_count(o->list_members, "--list-members", 100000, &p->list_members) < 0)
		return -1;
	if (o->list_members_max && parse_count(o->list_members_max, "--list-members-max", 100000, &p->list_members_max) < 0)
		return -1;
	if (o->strict >= 0)
		p->strict_retention = o->strict;
	if (o->list_attach >= 0)
		p->list_attachments = o->list_attach;
	return 0;
}

static int
plan_cmd(int argc, char **argv)
{
	if (argc < 2 || argv[1][0] == '-') {
		cli_usage_error("plan needs a command: list, show, set, reset");
		return EXIT_USAGE;
	}
	const char *sub = argv[1];
	struct opts o;
	const char *opts_for = strcmp(sub, "set") == 0
	    ? "--quota --max-size --retention --strict-retention --no-strict-retention --forward --lists --list-members "
	      "--list-members-max --list-max-size --list-attachments --no-list-attachments"
	    : "";
	int prc = parse_opts(argc, argv, 2, opts_for, &o);
	if (prc != 0)
		return prc;
	bool list = strcmp(sub, "list") == 0, show = strcmp(sub, "show") == 0, set = strcmp(sub, "set") == 0,
	     reset = strcmp(sub, "reset") == 0;
	if (!list && !show && !set && !reset) {
		cli_usage_error("unknown plan command '%s' (list, show, set, reset)", sub);
		return EXIT_USAGE;
	}
	if (o.nargs != (list ? 0 : 1)) {
		cli_usage_error(list ? "plan list takes no arguments" : "plan %s needs a NAME", sub);
		return EXIT_USAGE;
	}
	struct hk_accounts *a = NULL;
	int rc;
	if ((rc = open_store(&o, set || reset, &a)) != 0)
		return rc;
	enum hk_acct_status st;
	struct hk_plan p;
	if (list) {
		struct hk_plan *v;
		size_t n;
		st = hk_accounts_plan_list(a, &v, &n);
		if (st == HK_ACCT_OK || st == HK_ACCT_CORRUPT) {
			json_t *arr = o.json ? json_array() : NULL;
			if (!o.json)
				printf("%-12s %8s %8s %-14s %7s %5s %9s %8s\n", "PLAN", "QUOTA", "MAXSIZE", "RETENTION", "FORWARD",
				    "LISTS", "MEMBERS", "LISTSIZE");
			for (size_t i = 0; i < n; i++) {
				if (o.json)
					json_array_append_new(arr, plan_json(&v[i]));
				else
					plan_print_row(&v[i]);
			}
			if (o.json)
				json_print(arr);
			free(v);
		}
	} else if (show) {
		st = hk_accounts_plan_get(a, o.args[0], &p);
		if (st == HK_ACCT_OK && o.json) {
			json_print(plan_json(&p));
		} else if (st == HK_ACCT_OK) {
			printf("%-12s %8s %8s %-14s %7s %5s %9s %8s\n", "PLAN", "QUOTA", "MAXSIZE", "RETENTION", "FORWARD", "LISTS",
			    "MEMBERS", "LISTSIZE");
			plan_print_row(&p);
		}
	} else if (set) {
		st = hk_accounts_plan_get(a, o.args[0], &p);
		if (st == HK_ACCT_NOTFOUND) {
			/* a new plan starts from the default one */
			p = *hk_plan_builtin(HK_PLAN_DEFAULT);
			snprintf(p.name, sizeof(p.name), "%s", o.args[0]);
			st = HK_ACCT_OK;
		}
		if (st == HK_ACCT_OK) {
			if (plan_apply_opts(&o, &p) < 0) {
				rc = EXIT_USAGE;
				goto out;
			}
			st = hk_accounts_plan_put(a, &p);
		}
		if (st == HK_ACCT_OK)
			printf("stored plan %s\n", p.name);
	} else {
		st = hk_accounts_plan_del(a, o.args[0]);
		if (st == HK_ACCT_OK)
			printf("%s plan %s\n", hk_plan_builtin(o.args[0]) ? "reset" : "deleted", o.args[0]);
	}
	rc = report(a, st);
out:
	hk_accounts_close(&a);
	return rc;
}

/* --- accounts check | repair ---------------------------------------------------------------------------------- */

static int
accounts_cmd(int argc, char **argv)
{
	if (argc < 2 || argv[1][0] == '-') {
		cli_usage_error("accounts needs a command: check, repair");
		return EXIT_USAGE;
	}
	const char *sub = argv[1];
	struct opts o;
	int prc = parse_opts(argc, argv, 2, "", &o);
	if (prc != 0)
		return prc;
	bool check = strcmp(sub, "check") == 0, repair = strcmp(sub, "repair") == 0;
	if ((!check && !repair) || o.nargs) {
		cli_usage_error("accounts check | accounts repair (no arguments)");
		return EXIT_USAGE;
	}
	struct hk_accounts *a = NULL;
	int rc;
	if ((rc = open_store(&o, repair, &a)) != 0)
		return rc;
	struct hk_accounts_check c;
	enum hk_acct_status st = check ? hk_accounts_verify(a, &c) : hk_accounts_repair(a, &c);
	if (o.json) {
		json_t *j = json_object();
		json_object_set_new(j, "status", json_string(hk_acct_status_str(st)));
		json_object_set_new(j, "records", json_integer((json_int_t)c.records));
		json_object_set_new(j, "domains", json_integer((json_int_t)c.domains));
		json_object_set_new(j, "users", json_integer((json_int_t)c.users));
		json_object_set_new(j, "aliases", json_integer((json_int_t)c.aliases));
		json_object_set_new(j, "plans", json_integer((json_int_t)c.plans));
		json_object_set_new(j, "bad", json_integer((json_int_t)c.bad));
		json_print(j);
	} else if (check && (st == HK_ACCT_OK || st == HK_ACCT_CORRUPT)) {
		printf("%zu records: %zu domains, %zu users, %zu aliases, %zu plans, %zu damaged\n", c.records, c.domains,
		    c.users, c.aliases, c.plans, c.bad);
	} else if (repair && st == HK_ACCT_OK) {
		printf("repaired: kept %zu of %zu records; %s\n", c.records - c.bad, c.records, hk_accounts_error(a));
	}
	rc = report(a, st);
	hk_accounts_close(&a);
	return rc;
}

/* --- entry points -------------------------------------------------------------------------------------------- */

/* Lets options come before the subcommand (`hikyaku user --state DIR list`):
 * moves the first word that is neither an option nor the value of
 * --state or --config to argv[1]. */
static void
subcommand_first(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--state") == 0 || strcmp(argv[i], "--config") == 0) {
			i++;
			continue;
		}
		if (argv[i][0] == '-')
			continue;
		char *sub = argv[i];
		memmove(argv + 2, argv + 1, (size_t)(i - 1) * sizeof(char *));
		argv[1] = sub;
		return;
	}
}

int
cmd_domain(int argc, char **argv)
{
	subcommand_first(argc, argv);
	return domain_cmd(argc, argv);
}

int
cmd_user(int argc, char **argv)
{
	subcommand_first(argc, argv);
	return user_cmd(argc, argv);
}

int
cmd_alias(int argc, char **argv)
{
	subcommand_first(argc, argv);
	return alias_cmd(argc, argv);
}

int
cmd_plan(int argc, char **argv)
{
	subcommand_first(argc, argv);
	return plan_cmd(argc, argv);
}

int
cmd_accounts(int argc, char **argv)
{
	subcommand_first(argc, argv);
	return accounts_cmd(argc, argv);
}
