/*
 * imapd_notify.c - telling sessions that their selected folder changed, so
 * IDLE wakes within a second of a delivery (RFC 2177) and others see the
 * change at their next command.
 *
 * Every selected session is watched: inotify on the folder's new/ and cur/
 * catches any change, whoever makes it (a delivery, another session, a CLI
 * command, another program); a session's own jobs also notify the others
 * directly. When inotify cannot watch (the kernel's watch limit), the
 * session falls back to a poll once a second while it idles.
 *
 * Loop thread only. The registry is a list: at 1,000 sessions a change
 * costs 1,000 string compares, far below the sync it triggers.
 */
#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "core/log.h"
#include "imapd_int.h"
#include "maildir.h"

#define NOTIFY_POLL_SECS 1

struct watch {
	struct imapd_session *s;
	char *root, *folder; /* loop-owned copies */
	int wd[2];           /* new/ and cur/, -1 when not watched */
	bool poll;           /* inotify failed: poll while idling */
	struct watch *next;
};

struct imapd_notify {
	struct imapd_server *srv;
	int fd;              /* inotify, -1 when unavailable */
	struct event *ev;
	struct event *poll_ev;
	struct watch *watches;
	bool warned;
};

static void
wake(struct watch *w)
{
	imapd_session_wake(w->s);
}

static void
on_inotify(evutil_socket_t fd, short what, void *arg)
{
	(void)what;
	struct imapd_notify *n = arg;
	char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	for (;;) {
		ssize_t len = read(fd, buf, sizeof(buf));
		if (len <= 0)
			break;
		for (char *p = buf; p < buf + len;) {
			const struct inotify_event *e = (const struct inotify_event *)(void *)p;
			if (e->mask & IN_Q_OVERFLOW) { /* events lost: everyone looks */
				for (struct watch *w = n->watches; w; w = w->next)
					wake(w);
			} else {
				for (struct watch *w = n->watches; w; w = w->next)
					if (w->wd[0] == e->wd || w->wd[1] == e->wd)
						wake(w);
			}
			p += sizeof(*e) + e->len;
		}
	}
}

static void
on_poll(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct imapd_notify *n = arg;
	for (struct watch *w = n->watches; w; w = w->next)
		if (w->poll)
			imapd_session_wake(w->s);
}

struct imapd_notify *
imapd_notify_new(struct imapd_server *srv)
{
	struct imapd_notify *n = xcalloc(1, sizeof(*n));
	n->srv = srv;
	n->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (n->fd >= 0) {
		n->ev = event_new(srv->base, n->fd, EV_READ | EV_PERSIST, on_inotify, n);
		event_add(n->ev, NULL);
	} else {
		log_warnx("imap", "inotify unavailable (%s): IDLE polls every %d s", strerror(errno), NOTIFY_POLL_SECS);
	}
	n->poll_ev = event_new(srv->base, -1, EV_PERSIST, on_poll, n);
	struct timeval tv = { NOTIFY_POLL_SECS, 0 };
	event_add(n->poll_ev, &tv);
	return n;
}

void
imapd_notify_free(struct imapd_notify **np)
{
	struct imapd_notify *n = *np;
	if (n == NULL)
		return;
	*np = NULL;
	while (n->watches) {
		struct watch *w = n->watches;
		n->watches = w->next;
		free(w->root);
		free(w->folder);
		free(w);
	}
	if (n->ev)
		event_free(n->ev);
	if (n->poll_ev)
		event_free(n->poll_ev);
	if (n->fd >= 0)
		close(n->fd);
	free(n);
}

/* Is wd still used by another watch? (inotify gives one wd per inode.) */
static bool
wd_shared(const struct imapd_notify *n, const struct watch *self, int wd)
{
	for (const struct watch *w = n->watches; w; w = w->next)
		if (w != self && (w->wd[0] == wd || w->wd[1] == wd))
			return true;
	return false;
}

void
imapd_notify_unwatch(struct imapd_notify *n, struct imapd_session *s)
{
	if (n == NULL)
		return;
	for (struct watch **pp = &n->watches; *pp; pp = &(*pp)->next) {
		struct watch *w = *pp;
		if (w->s != s)
			continue;
		*pp = w->next;
		for (int k = 0; k < 2; k++)
			if (w->wd[k] >= 0 && !wd_shared(n, w, w->wd[k]))
				inotify_rm_watch(n->fd, w->wd[k]);
		free(w->root);
		free(w->folder);
		free(w);
		return;
	}
}

void
imapd_notify_watch(struct imapd_notify *n, struct imapd_session *s)
{
	if (n == NULL || s->root == NULL || s->folder == NULL)
		return;
	imapd_notify_unwatch(n, s);
	struct watch *w = xcalloc(1, sizeof(*w));
	w->s = s;
	w->root = xstrdup(s->root);
	w->folder = xstrdup(s->folder);
	w->wd[0] = w->wd[1] = -1;
	struct hk_buf dir;
	buf_init(&dir);
	if (n->fd >= 0 && maildir_dir_from_name(s->folder, &dir) == 0) {
		static const char *const sub[2] = { "new", "cur" };
		for (int k = 0; k < 2; k++) {
			char *p = xasprintf("%s%s%s/%s", s->root, dir.len ? "/" : "", dir.len ? dir.data : "", sub[k]);
			w->wd[k] = inotify_add_watch(n->fd, p, IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ONLYDIR);
			if (w->wd[k] < 0 && !n->warned) {
				log_warnx("imap", "inotify_add_watch %s: %s (sessions poll instead; raise fs.inotify.max_user_watches)", p,
				    strerror(errno));
				n->warned = true;
			}
			free(p);
		}
	}
	buf_fini(&dir);
	w->poll = w->wd[0] < 0 || w->wd[1] < 0;
	w->next = n->watches;
	n->watches = w;
}

void
imapd_notify_changed(struct imapd_notify *n, const char *root, const char *folder, const struct imapd_session *except)
{
	if (n == NULL)
		return;
	for (struct watch *w = n->watches; w; w = w->next)
		if (w->s != except && strcmp(w->folder, folder) == 0 && strcmp(w->root, root) == 0)
			wake(w);
}
