/*
 * auth.h - what every server's logins share: the accounts store (one
 * GDBM handle per worker thread) and the failed-login accounting per
 * client address and per account (runtime/authfail.h), so a client
 * guessing passwords is slowed and blocked whichever protocol it uses.
 *
 * Threads: auth_service_accounts is for worker threads; the others run on
 * the event loop thread.
 */
#ifndef HK_AUTH_H
#define HK_AUTH_H

#include <stdbool.h>

struct hk_accounts;
struct hk_config;

struct auth_service;

struct auth_service *auth_service_new(const struct hk_config *cfg);
void auth_service_free(struct auth_service **a);

/* The calling thread's accounts handle, opened on first use; NULL (logged)
 * when the store cannot be opened. */
struct hk_accounts *auth_service_accounts(struct auth_service *a);

/* The client failed too often: refuse to try. */
bool auth_service_blocked(struct auth_service *a, const char *client);
/* Records the outcome; for a failure returns how long to wait before
 * answering (milliseconds, 0: at once). `user` may be NULL or "". */
unsigned auth_service_record(struct auth_service *a, const char *client, const char *user, bool ok);

#endif
