/* The event loop (see loop.h). */
#include <signal.h>
#include <stdlib.h>
#include <time.h>

#include <event2/event.h>

#include "log.h"
#include "loop.h"

enum {
	PRIO_IO = 1, /* libevent's default with three priorities */
	PRIO_TASK = 2, /* runs only when nothing else is active */
	PRIOS = 3,
};

struct sig {
	struct event *ev;
	void (*cb)(int, void *);
	void *arg;
	struct sig *next;
};

struct pn_loop {
	struct event_base *base;
	struct sig *sigs;
};

struct pn_timer {
	struct event *ev;
	void (*cb)(void *);
	void *arg;
};

struct pn_task {
	struct event *ev;
	void (*cb)(void *);
	void *arg;
};

static void log_cb(int severity, const char *msg)
{
	pn_log(severity >= EVENT_LOG_ERR    ? PN_LOG_ERROR
	       : severity == EVENT_LOG_WARN ? PN_LOG_WARN
					    : PN_LOG_DEBUG,
	       "libevent: %s", msg);
}

struct pn_loop *pn_loop_new(void)
{
	struct pn_loop *l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	event_set_log_callback(log_cb);
	/* A task that schedules itself again from its callback (a compute job
	 * stepping through a batch) is active again at once, and libevent
	 * would run it again in the same pass without polling the sockets:
	 * after one callback at task priority, look for I/O first. */
	struct event_config *cfg = event_config_new();
	if (cfg && event_config_set_max_dispatch_interval(cfg, NULL, 1, PRIO_TASK) == 0)
		l->base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	if (!l->base || event_base_priority_init(l->base, PRIOS) != 0) {
		pn_loop_free(l);
		return NULL;
	}
	return l;
}

void pn_loop_free(struct pn_loop *l)
{
	if (!l)
		return;
	while (l->sigs) {
		struct sig *s = l->sigs;
		l->sigs = s->next;
		event_free(s->ev);
		free(s);
	}
	if (l->base)
		event_base_free(l->base);
	free(l);
}

int pn_loop_run(struct pn_loop *l)
{
	return event_base_dispatch(l->base) < 0 ? -1 : 0;
}

void pn_loop_stop(struct pn_loop *l, int delay_ms)
{
	struct timeval tv = {delay_ms / 1000, (delay_ms % 1000) * 1000};
	event_base_loopexit(l->base, delay_ms > 0 ? &tv : NULL);
}

void pn_loop_flush(struct pn_loop *l)
{
	for (int i = 0; i < 16; i++)
		event_base_loop(l->base, EVLOOP_NONBLOCK);
}

static void sig_cb(evutil_socket_t signo, short what, void *arg)
{
	struct sig *s = arg;
	s->cb((int)signo, s->arg);
}

int pn_loop_on_signal(struct pn_loop *l, int signo, void (*cb)(int, void *), void *arg)
{
	struct sig *s = calloc(1, sizeof(*s));
	if (!s)
		return -1;
	s->cb = cb;
	s->arg = arg;
	s->ev = evsignal_new(l->base, signo, sig_cb, s);
	if (!s->ev || evsignal_add(s->ev, NULL) != 0) {
		if (s->ev)
			event_free(s->ev);
		free(s);
		return -1;
	}
	s->next = l->sigs;
	l->sigs = s;
	return 0;
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pn_timer *t = arg;
	t->cb(t->arg);
}

struct pn_timer *pn_timer_new(struct pn_loop *l, void (*cb)(void *), void *arg)
{
	struct pn_timer *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->cb = cb;
	t->arg = arg;
	t->ev = evtimer_new(l->base, timer_cb, t);
	if (!t->ev) {
		free(t);
		return NULL;
	}
	event_priority_set(t->ev, PRIO_IO);
	return t;
}

void pn_timer_arm(struct pn_timer *t, int64_t ms)
{
	if (ms < 0)
		ms = 0;
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
	evtimer_add(t->ev, &tv);
}

void pn_timer_cancel(struct pn_timer *t)
{
	evtimer_del(t->ev);
}

int pn_timer_armed(const struct pn_timer *t)
{
	return evtimer_pending(t->ev, NULL) != 0;
}

void pn_timer_free(struct pn_timer *t)
{
	if (!t)
		return;
	event_free(t->ev);
	free(t);
}

static void task_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pn_task *t = arg;
	t->cb(t->arg);
}

struct pn_task *pn_task_new(struct pn_loop *l, void (*cb)(void *), void *arg)
{
	struct pn_task *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->cb = cb;
	t->arg = arg;
	t->ev = event_new(l->base, -1, 0, task_cb, t);
	if (!t->ev) {
		free(t);
		return NULL;
	}
	event_priority_set(t->ev, PRIO_TASK);
	return t;
}

void pn_task_schedule(struct pn_task *t)
{
	event_active(t->ev, EV_TIMEOUT, 0); /* a no-op when already active */
}

void pn_task_cancel(struct pn_task *t)
{
	event_del(t->ev);
}

void pn_task_free(struct pn_task *t)
{
	if (!t)
		return;
	event_free(t->ev);
	free(t);
}

uint64_t pn_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct event_base *pn_loop_base(struct pn_loop *l)
{
	return l->base;
}
