/*
 * session_list.h - the live sessions of one server (SMTP, POP3, IMAP):
 * counted for max_sessions and walked to close them all at shutdown. An
 * intrusive list: a session embeds a session_link, so joining and leaving
 * allocate nothing. Loop thread only.
 */
#ifndef HK_SESSION_LIST_H
#define HK_SESSION_LIST_H

#include <stddef.h>

struct session_link {
	struct session_link *prev, *next;
};

struct session_list {
	struct session_link *head;
	unsigned n;
};

/* The session that embeds `link` as `member`. */
#define SESSION_OF(link, type, member) ((type *)(void *)((char *)(link) - offsetof(type, member)))

static inline void
session_list_add(struct session_list *l, struct session_link *k)
{
	k->prev = NULL;
	k->next = l->head;
	if (l->head)
		l->head->prev = k;
	l->head = k;
	l->n++;
}

static inline void
session_list_remove(struct session_list *l, struct session_link *k)
{
	if (k->prev)
		k->prev->next = k->next;
	else if (l->head == k)
		l->head = k->next;
	if (k->next)
		k->next->prev = k->prev;
	k->prev = k->next = NULL;
	l->n--;
}

#endif
