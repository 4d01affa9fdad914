/*
 * worker.c - the thread pool of worker.h. Jobs go through a mutex-protected
 * queue to the threads; finished jobs go back through a second queue, and
 * a pipe wakes the event loop, which runs their done callbacks in order.
 */
#include "worker.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "charset.h"
#include "util.h"

struct job {
	worker_fn work, done;
	void *arg;
	struct job *next;
};

struct jobq {
	struct job *head, *tail;
};

struct worker_pool {
	struct event_base *base;
	pthread_t *threads;
	unsigned nthreads;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct jobq todo, finished;
	bool stopping;
	int wake[2];
	struct event *wake_ev;
	unsigned pending;
};

static void
q_push(struct jobq *q, struct job *j)
{
	j->next = NULL;
	if (q->tail)
		q->tail->next = j;
	else
		q->head = j;
	q->tail = j;
}

static struct job *
q_pop(struct jobq *q)
{
	struct job *j = q->head;
	if (j) {
		q->head = j->next;
		if (q->head == NULL)
			q->tail = NULL;
	}
	return j;
}

static void *
thread_main(void *arg)
{
	struct worker_pool *p = arg;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		struct job *j;
		while ((j = q_pop(&p->todo)) == NULL && !p->stopping)
			pthread_cond_wait(&p->cv, &p->mu);
		if (j == NULL)
			break;
		pthread_mutex_unlock(&p->mu);
		j->work(j->arg);
		pthread_mutex_lock(&p->mu);
		bool was_empty = p->finished.head == NULL;
		q_push(&p->finished, j);
		if (was_empty) {
			char c = 1;
			while (write(p->wake[1], &c, 1) < 0 && errno == EINTR)
				;
		}
	}
	pthread_mutex_unlock(&p->mu);
	/* per-thread caches of the runtime die with the thread */
	charset_cache_clear();
	return NULL;
}

static void
run_finished(struct worker_pool *p)
{
	pthread_mutex_lock(&p->mu);
	struct jobq done = p->finished;
	p->finished.head = p->finished.tail = NULL;
	char buf[64];
	while (read(p->wake[0], buf, sizeof(buf)) > 0)
		;
	pthread_mutex_unlock(&p->mu);
	struct job *j;
	while ((j = q_pop(&done)) != NULL) {
		p->pending--;
		if (j->done)
			j->done(j->arg);
		free(j);
	}
}

static void
on_wake(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	run_finished(arg);
}

struct worker_pool *
worker_pool_new(struct event_base *base, unsigned nthreads)
{
	if (nthreads == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		nthreads = n > 2 ? (unsigned)n : 2;
	}
	struct worker_pool *p = xcalloc(1, sizeof(*p));
	p->base = base;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	if (pipe2(p->wake, O_NONBLOCK | O_CLOEXEC) < 0) {
		free(p);
		return NULL;
	}
	p->wake_ev = event_new(base, p->wake[0], EV_READ | EV_PERSIST, on_wake, p);
	event_add(p->wake_ev, NULL);
	p->threads = xcalloc(nthreads, sizeof(*p->threads));
	for (unsigned i = 0; i < nthreads; i++)
		if (pthread_create(&p->threads[p->nthreads], NULL, thread_main, p) == 0)
			p->nthreads++;
	return p;
}

void
worker_submit(struct worker_pool *p, worker_fn work, worker_fn done, void *arg)
{
	struct job *j = xmalloc(sizeof(*j));
	j->work = work;
	j->done = done;
	j->arg = arg;
	pthread_mutex_lock(&p->mu);
	q_push(&p->todo, j);
	p->pending++;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

unsigned
worker_pending(const struct worker_pool *p)
{
	return p->pending;
}

void
worker_pool_free(struct worker_pool **pp)
{
	struct worker_pool *p = *pp;
	*pp = NULL;
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	p->stopping = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	run_finished(p);
	event_free(p->wake_ev);
	close(p->wake[0]);
	close(p->wake[1]);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p->threads);
	free(p);
}
