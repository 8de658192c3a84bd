/* The event loop (see loop.h). */
#include <signal.h>
#include <stdlib.h>
#include <time.h>

#include <event2/event.h>
#include <event2/event_compat.h>

#include "log.h"
#include "loop.h"

enum {
	PRIOS = 3, /* see enum pn_prio */
	TASK_SLICE_US = 500,
	TASK_SLICE_MAX = 64, /* callbacks */
};

struct sig {
	struct event *ev;
	void (*cb)(int, void *);
	void *arg;
	struct sig *next;
};

struct pn_loop {
	struct event_base *base;
	struct event_base *current; /* see pn_loop_new */
	struct sig *sigs;
	uint64_t yielded_ns; /* when a task last waited behind the background */
};

struct pn_timer {
	struct event *ev;
	void (*cb)(void *);
	void *arg;
};

struct pn_task {
	struct pn_loop *l;
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
	/* libevent 2.1.12 frees a half-made evhttp connection (when one of
	 * its allocations fails) through the global "current" base, which
	 * only the old event_init() sets: without one that out-of-memory
	 * path crashes instead of returning NULL (found by
	 * tests/failalloc.sh). */
	if (!(l->current = event_init())) {
		free(l);
		return NULL;
	}
	/* A task that schedules itself again from its callback (a compute job
	 * stepping through a batch) is active again at once, and libevent
	 * would run it again in the same pass without polling the sockets:
	 * after TASK_SLICE_US of callbacks at task priority or below (one
	 * step of compute usually takes longer), look for I/O first. Not
	 * after every callback: with hundreds of background connections
	 * queued, a poll per callback costs more than the callbacks. */
	struct event_config *cfg = event_config_new();
	struct timeval slice = {0, TASK_SLICE_US};
	if (cfg &&
	    event_config_set_max_dispatch_interval(cfg, &slice, TASK_SLICE_MAX, PN_PRIO_TASK) == 0)
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
	if (l->current)
		event_base_free(l->current); /* and libevent forgets it */
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
	if (!s->ev || event_priority_set(s->ev, PN_PRIO_IO) != 0 ||
	    evsignal_add(s->ev, NULL) != 0) {
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
	event_priority_set(t->ev, PN_PRIO_IO);
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
	t->l = l;
	t->cb = cb;
	t->arg = arg;
	t->ev = event_new(l->base, -1, 0, task_cb, t);
	if (!t->ev) {
		free(t);
		return NULL;
	}
	event_priority_set(t->ev, PN_PRIO_TASK);
	return t;
}

void pn_task_schedule(struct pn_task *t)
{
	if (event_pending(t->ev, EV_TIMEOUT, NULL))
		return; /* already scheduled */
	/* Now and then a task waits its turn behind the background, which
	 * would otherwise wait for as long as tasks keep coming. */
	uint64_t now = pn_now_ns();
	int yield = now - t->l->yielded_ns > (uint64_t)PN_LOOP_BACKGROUND_MS * 1000000u;
	if (yield)
		t->l->yielded_ns = now;
	event_priority_set(t->ev, yield ? PN_PRIO_BACKGROUND : PN_PRIO_TASK);
	event_active(t->ev, EV_TIMEOUT, 0);
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

uint64_t pn_cpu_ns(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct event_base *pn_loop_base(struct pn_loop *l)
{
	return l->base;
}
