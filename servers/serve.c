/*
 * serve.c - `hikyaku serve`: reads the configuration (embedded defaults,
 * then --config FILE or $HIKYAKU_CONFIG), prepares the state directory and the
 * TLS certificate, opens every listener and runs the event loop until
 * SIGINT or SIGTERM. Prints what listens where, so `make run` shows it.
 * Started as root, it gives up root once listeners and keys are ready
 * (see cmd_serve and core/privdrop.h).
 */
#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "accounts.h"
#include "cli.h"
#include "core/auth.h"
#include "core/config.h"
#include "core/log.h"
#include "core/privdrop.h"
#include "core/retention_sweep.h"
#include "core/tls.h"
#include "core/worker.h"
#include "dns/dns.h"
#include "imap/imapd_server.h"
#include "pop3/pop3_server.h"
#include "queue/queue.h"
#include "smtp/smtp_mailsys.h"
#include "smtp/smtp_server.h"

struct listener {
	struct evconnlistener *l;
	struct smtp_server *srv;
	struct pop3_server *pop3;
	struct imapd_server *imap;
	enum listener_kind kind;
};

static void
on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	(void)l;
	struct listener *ls = arg;
	evutil_make_socket_nonblocking(fd);
	if (ls->kind == LISTEN_POP3 || ls->kind == LISTEN_POP3S)
		pop3_session_start(ls->pop3, fd, sa, ls->kind);
	else if (ls->kind == LISTEN_IMAP || ls->kind == LISTEN_IMAPS)
		imapd_session_start(ls->imap, fd, sa, ls->kind);
	else
		smtp_session_start(ls->srv, fd, sa, (socklen_t)salen, ls->kind);
}

static const char *
listener_desc(enum listener_kind k)
{
	switch (k) {
	case LISTEN_MX: return "  (SMTP, STARTTLS)";
	case LISTEN_SUBMISSION: return "  (submission, STARTTLS + AUTH)";
	case LISTEN_SMTPS: return "  (SMTPS, implicit TLS + AUTH)";
	case LISTEN_POP3: return "  (POP3, STLS)";
	case LISTEN_POP3S: return "  (POP3S, implicit TLS)";
	case LISTEN_IMAP: return "  (IMAP4rev1, STARTTLS)";
	case LISTEN_IMAPS: return "  (IMAPS, implicit TLS)";
	default: return "";
	}
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	log_info("serve", "signal %d: shutting down", (int)sig);
	event_base_loopexit(arg, NULL);
}

static int
mkdirs(const char *path, mode_t mode)
{
	char *p = xstrdup(path);
	for (char *q = p + 1; *q; q++) {
		if (*q != '/')
			continue;
		*q = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST) {
			free(p);
			return -1;
		}
		*q = '/';
	}
	int rc = mkdir(p, mode) < 0 && errno != EEXIST ? -1 : 0;
	free(p);
	return rc;
}

/* Binds one listener; prints what it is. -1 with errno. */
static int
listener_bind(struct event_base *base, struct listener *ls, struct smtp_server *srv, struct pop3_server *pop3,
    struct imapd_server *imap, const struct listener_cfg *lc)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	socklen_t sl;
	if (strchr(lc->addr, ':')) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)lc->port);
		inet_pton(AF_INET6, lc->addr, &in6->sin6_addr);
		sl = sizeof(*in6);
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)lc->port);
		inet_pton(AF_INET, lc->addr, &in->sin_addr);
		sl = sizeof(*in);
	}
	ls->srv = srv;
	ls->pop3 = pop3;
	ls->imap = imap;
	ls->kind = lc->kind;
	ls->l = evconnlistener_new_bind(base, on_accept, ls, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC, 1024,
	    (struct sockaddr *)&ss, (int)sl);
	if (ls->l == NULL)
		return -1;
	printf("  %-10s %s:%d%s\n", listener_kind_name(lc->kind), lc->addr, lc->port, listener_desc(lc->kind));
	return 0;
}

/* Per-domain certificates, chosen by SNI: the domain and its subdomains
 * (mail.example.jp) get the domain's certificate. Read before giving up
 * root, like the default key. */
static void
load_sni_certs(struct tls_server *tls, const char *state_dir)
{
	char *ap = xasprintf("%s/accounts.gdbm", state_dir);
	struct hk_accounts_config ac = { .path = ap };
	struct hk_accounts *acc = NULL;
	char aerr[256];
	if (hk_accounts_open_gdbm(&ac, &acc, aerr, sizeof(aerr)) == HK_ACCT_OK) {
		struct hk_domain *doms = NULL;
		size_t nd = 0;
		if (hk_accounts_domain_list(acc, &doms, &nd) == HK_ACCT_OK) {
			for (size_t i = 0; i < nd; i++) {
				if (doms[i].cert_path[0] == '\0' || doms[i].key_path[0] == '\0')
					continue;
				struct hk_buf e2;
				buf_init(&e2);
				char *wild = xasprintf("*.%s", doms[i].name);
				if (tls_server_add_sni(tls, doms[i].name, doms[i].cert_path, doms[i].key_path, &e2) < 0 ||
				    tls_server_add_sni(tls, wild, doms[i].cert_path, doms[i].key_path, &e2) < 0)
					log_error("tls", "%s: %s", doms[i].name, e2.data);
				else
					printf("  TLS certificate for %s and *.%s: %s\n", doms[i].name, doms[i].name, doms[i].cert_path);
				free(wild);
				buf_fini(&e2);
			}
			free(doms);
		}
		hk_accounts_close(&acc);
	}
	free(ap);
}

/*
 * The order matters when started as root (doc/admin.md, privdrop.h):
 * decide who to become, then as root the state directories, the
 * self-signed certificate (so its key is root's, 0600), every key and
 * certificate and every listener; then hand the state directory over and
 * switch user; only then start threads (worker pool, store committer) and
 * open anything under the state directory (rules cache, queue, accounts).
 */
int
cmd_serve(int argc, char **argv)
{
	struct hk_config cfg;
	config_defaults(&cfg);
	const char *conf = getenv("HIKYAKU_CONFIG"), *state = NULL;
	bool allow_root = false;
	for (int i = 1; i < argc; i++) {
		if ((strcmp(argv[i], "--config") == 0 || strcmp(argv[i], "-c") == 0) && i + 1 < argc)
			conf = argv[++i];
		else if (strcmp(argv[i], "--state") == 0 && i + 1 < argc)
			state = argv[++i];
		else if (strcmp(argv[i], "--debug") == 0)
			log_set_level(LOG_L_DEBUG);
		else if (strcmp(argv[i], "--allow-root") == 0)
			allow_root = true;
		else {
			cli_usage_error("serve: unknown argument '%s'", argv[i]);
			config_fini(&cfg);
			return 2;
		}
	}
	struct hk_buf err;
	buf_init(&err);
	if (conf && *conf && config_load(&cfg, conf, &err) < 0) {
		fprintf(stderr, "hikyaku: %s\n", err.data);
		config_fini(&cfg);
		buf_fini(&err);
		return 1;
	}
	if (state) {
		free(cfg.state_dir);
		cfg.state_dir = xstrdup(state);
	}
	struct privdrop pd;
	if (privdrop_plan(&cfg, geteuid(), allow_root ? PRIVDROP_ALLOW_ROOT : 0, &pd, &err) < 0) {
		fprintf(stderr, "hikyaku: %s\n", err.data);
		config_fini(&cfg);
		buf_fini(&err);
		return 1;
	}
	if (geteuid() == 0 && !pd.active)
		fprintf(stderr, "hikyaku: warning: running as root (--allow-root); set `user` in the configuration\n");
	if (cfg.tls_cert == NULL)
		cfg.tls_cert = xasprintf("%s/tls/default.crt", cfg.state_dir);
	if (cfg.tls_key == NULL)
		cfg.tls_key = xasprintf("%s/tls/default.key", cfg.state_dir);
	char *spool = xasprintf("%s/spool/incoming", cfg.state_dir);
	char *tlsdir = xasprintf("%s/tls", cfg.state_dir);
	int rc = 1;
	struct event_base *base = NULL;
	struct mailsys *mail = NULL;
	struct queue *queue = NULL;
	struct dns_resolver *dns = NULL;
	struct retention_sweep *retention = NULL;
	struct listener ls[CONFIG_MAX_LISTENERS];
	unsigned nls = 0;
	struct smtp_server srv;
	memset(&srv, 0, sizeof(srv));
	struct pop3_server pop3 = { .cfg = &cfg };
	struct imapd_server imap = { .cfg = &cfg };
	/* as root, these are root's (0700); prepare_state gives the state
	 * directory and spool to the user below and leaves tls/ to root */
	if (mkdirs(spool, 0700) < 0 || mkdirs(tlsdir, 0700) < 0) {
		fprintf(stderr, "hikyaku: cannot create %s: %s\n", cfg.state_dir, strerror(errno));
		goto out_dirs;
	}
	if (tls_selfsigned_ensure(cfg.tls_cert, cfg.tls_key, cfg.hostname, &err) < 0) {
		fprintf(stderr, "hikyaku: %s\n", err.data);
		goto out_dirs;
	}
	evthread_use_pthreads();
	signal(SIGPIPE, SIG_IGN);
	signal(SIGXFSZ, SIG_IGN); /* an oversized file is EFBIG, not death */
	base = event_base_new();
	srv.base = base;
	srv.cfg = &cfg;
	srv.tls = tls_server_new(cfg.tls_cert, cfg.tls_key, &err);
	if (srv.tls == NULL) {
		fprintf(stderr, "hikyaku: TLS: %s\n", err.data);
		goto out_listeners;
	}
	load_sni_certs(srv.tls, cfg.state_dir);
	printf("Hikyaku serving as %s, state in %s\n", cfg.hostname, cfg.state_dir);
	for (unsigned i = 0; i < cfg.nlisteners; i++) {
		const struct listener_cfg *lc = &cfg.listeners[i];
		if (listener_bind(base, &ls[nls], &srv, &pop3, &imap, lc) < 0) {
			fprintf(stderr, "hikyaku: cannot listen on %s:%d (%s): %s\n", lc->addr, lc->port, listener_kind_name(lc->kind),
			    strerror(errno));
			goto out_listeners;
		}
		nls++;
	}
	printf("  TLS certificate %s\n", cfg.tls_cert);
	if (privdrop_prepare_state(cfg.state_dir, &pd, &err) < 0 || privdrop_switch(&pd, &err) < 0) {
		fprintf(stderr, "hikyaku: %s\n", err.data);
		goto out_listeners;
	}
	if (pd.active)
		printf("  running as %s:%s (uid %u, gid %u)\n", pd.user, pd.group, (unsigned)pd.uid, (unsigned)pd.gid);
	fflush(stdout);
	srv.workers = worker_pool_new(base, 0);
	srv.auth = auth_service_new(&cfg);
	/* one resolver for SPF and the queue: one cache, one set of sockets */
	struct dns_config dc = {
		.servers = cfg.dns_server,
		.timeout_ms = (int)cfg.dns_timeout_ms,
		.tries = (int)cfg.dns_tries,
		.cache_size = cfg.dns_cache_size,
		.cache_max_ttl = cfg.dns_cache_max_ttl,
	};
	const char *why = NULL;
	dns = dns_resolver_new(base, &dc, &why);
	if (dns == NULL)
		log_error("dns", "no resolver: %s", why ? why : "?");
	mail = mailsys_new(&srv, dns, &err);
	if (mail == NULL) {
		fprintf(stderr, "hikyaku: %s\n", err.data);
		goto out_listeners;
	}
	srv.hooks = mailsys_hooks();
	pop3.base = base;
	pop3.tls = srv.tls;
	pop3.workers = srv.workers;
	pop3.auth = srv.auth;
	/* retention on stored mail: at POP3 login and in the periodic sweep */
	retention = retention_sweep_new(base, &cfg, srv.workers, srv.auth);
	pop3.retention = retention_sweep_ctx(retention);
	imap.base = base;
	imap.tls = srv.tls;
	imap.workers = srv.workers;
	imap.auth = srv.auth;
	imap.retention = pop3.retention;
	imapd_server_init(&imap);
	queue = queue_new(base, &cfg, srv.workers, dns, &err); /* outbound delivery */
	if (queue == NULL)
		fprintf(stderr, "hikyaku: queue: %s (nothing will be sent)\n", err.data);
	else
		mailsys_set_queue(mail, queue);
	struct event *sigint = evsignal_new(base, SIGINT, on_signal, base);
	struct event *sigterm = evsignal_new(base, SIGTERM, on_signal, base);
	event_add(sigint, NULL);
	event_add(sigterm, NULL);
	event_base_dispatch(base);
	event_free(sigint);
	event_free(sigterm);
	rc = 0;
out_listeners:
	for (unsigned i = 0; i < nls; i++)
		evconnlistener_free(ls[i].l);
	smtp_server_close_all(&srv);
	pop3_server_close_all(&pop3);
	imapd_server_close_all(&imap);
	retention_sweep_stop(retention);
	worker_pool_free(&srv.workers);
	retention_sweep_free(&retention);
	auth_service_free(&srv.auth);
	imapd_server_fini(&imap);
	queue_free(&queue);
	mailsys_free(&mail);
	if (dns) {
		struct dns_stats ds;
		dns_get_stats(dns, &ds);
		log_info("dns", "lookups %llu: %llu from the cache, %llu joined one in flight, %llu sent; %u cached",
		    (unsigned long long)ds.asked, (unsigned long long)ds.cache_hits, (unsigned long long)ds.joined,
		    (unsigned long long)ds.sent, ds.cache_entries);
	}
	dns_resolver_free(&dns);
	tls_server_free(&srv.tls);
	if (base)
		event_base_free(base);
out_dirs:
	free(spool);
	free(tlsdir);
	buf_fini(&err);
	config_fini(&cfg);
	return rc;
}
