/* The event loop: the one module that owns libevent's event_base.
 *
 * Everything else asks it for timers, idle tasks and signal callbacks.
 * Events run at three priorities: socket I/O and timers first, tasks
 * (compute steps, the coordinator's dispatcher) next, so a pending
 * request is always served before the next compute step; last, the
 * connections that read the user-facing API (see http.h), so that a
 * crowd of them cannot starve the pipeline. Tasks that keep themselves
 * busy let the background in at least every PN_LOOP_BACKGROUND_MS.
 */
#ifndef PN_LOOP_H
#define PN_LOOP_H

#include <stdint.h>

#define PN_LOOP_BACKGROUND_MS 50

struct pn_loop;
struct pn_timer;
struct pn_task;
struct event_base;

struct pn_loop *pn_loop_new(void);
void pn_loop_free(struct pn_loop *l); /* NULL is fine */
/* Runs until pn_loop_stop; 0, or -1 if the loop failed. */
int pn_loop_run(struct pn_loop *l);
/* Leaves pn_loop_run after `delay_ms` (0: at the end of this turn). */
void pn_loop_stop(struct pn_loop *l, int delay_ms);
/* Runs what is already due (tasks, deferred frees) without waiting;
 * for shutdown, after the modules have been freed. */
void pn_loop_flush(struct pn_loop *l);
/* Calls cb(signo, arg) from the loop (not from a signal handler) each time
 * the signal arrives. 0 or -1. */
int pn_loop_on_signal(struct pn_loop *l, int signo, void (*cb)(int signo, void *arg), void *arg);

/* A one-shot timer; arming an armed timer moves it. */
struct pn_timer *pn_timer_new(struct pn_loop *l, void (*cb)(void *arg), void *arg);
void pn_timer_arm(struct pn_timer *t, int64_t ms);
void pn_timer_cancel(struct pn_timer *t);
int pn_timer_armed(const struct pn_timer *t);
void pn_timer_free(struct pn_timer *t); /* NULL is fine */

/* A task runs once per pn_task_schedule, at idle priority. Scheduling a
 * scheduled task does nothing. */
struct pn_task *pn_task_new(struct pn_loop *l, void (*cb)(void *arg), void *arg);
void pn_task_schedule(struct pn_task *t);
void pn_task_cancel(struct pn_task *t);
void pn_task_free(struct pn_task *t); /* NULL is fine */

/* Monotonic clock in nanoseconds. */
uint64_t pn_now_ns(void);
/* CPU time this process has used (user and system), in nanoseconds. */
uint64_t pn_cpu_ns(void);

/* For the HTTP server and client modules only: the base, and the
 * priorities their events and connections take (see pn_http_tune). */
struct event_base *pn_loop_base(struct pn_loop *l);
enum pn_prio {
	PN_PRIO_IO = 0, /* node-to-node sockets, timers, signals */
	PN_PRIO_TASK = 1, /* tasks; libevent's default with three priorities */
	PN_PRIO_BACKGROUND = 2, /* connections reading the user-facing API */
};

#endif
