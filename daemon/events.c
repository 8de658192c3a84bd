/* The event stream hub (see events.h). Clients are dropped (marked, then
 * freed by a task on a later turn), never freed inside a send. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events.h"
#include "http.h"
#include "log.h"
#include "loop.h"

struct client {
	struct pn_events *e;
	struct pn_stream *st;
	int dead;
};

struct pn_events {
	struct client **clients;
	int n, max;
	size_t max_buffered;
	uint64_t dropped;
	struct pn_task *reaper;
};

static void reap(void *arg)
{
	struct pn_events *e = arg;
	int j = 0;
	for (int i = 0; i < e->n; i++) {
		struct client *cl = e->clients[i];
		if (cl->dead) {
			pn_stream_free(cl->st);
			free(cl);
		} else {
			e->clients[j++] = cl;
		}
	}
	e->n = j;
}

static void drop(struct client *cl, int slow)
{
	if (cl->dead)
		return;
	cl->dead = 1;
	if (slow) {
		cl->e->dropped++;
		pn_warn("event stream: dropped a client that does not keep up");
	}
	pn_task_schedule(cl->e->reaper);
}

static void closed(void *arg)
{
	drop(arg, 0);
}

struct pn_events *pn_events_new(struct pn_loop *l, int max_clients, size_t max_buffered)
{
	struct pn_events *e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->max = max_clients;
	e->max_buffered = max_buffered;
	e->clients = calloc((size_t)max_clients, sizeof(*e->clients));
	e->reaper = pn_task_new(l, reap, e);
	if (!e->clients || !e->reaper) {
		pn_events_free(e);
		return NULL;
	}
	return e;
}

void pn_events_free(struct pn_events *e)
{
	if (!e)
		return;
	for (int i = 0; i < e->n; i++) {
		pn_stream_free(e->clients[i]->st);
		free(e->clients[i]);
	}
	pn_task_free(e->reaper);
	free(e->clients);
	free(e);
}

/* "event: NAME\ndata: JSON\n\n" in a malloc'd string; takes `data`. */
static char *format(const char *name, json_t *data, size_t *len)
{
	char *text = json_dumps(data ? data : json_null(),
				JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(13));
	json_decref(data);
	if (!text)
		return NULL;
	size_t n = strlen(name) + strlen(text) + 20;
	char *msg = malloc(n);
	if (msg)
		*len = (size_t)snprintf(msg, n, "event: %s\ndata: %s\n\n", name, text);
	free(text);
	return msg;
}

static void send_one(struct client *cl, const char *msg, size_t len)
{
	if (!cl->dead && pn_stream_write(cl->st, msg, len) != 0)
		drop(cl, 1);
}

void pn_events_attach(struct pn_events *e, struct pn_req *r, json_t *hello)
{
	if (e->n == e->max) {
		json_decref(hello);
		pn_reply_header(r, "Retry-After", "5");
		pn_reply_error(r, 503, "too many clients", "%d event streams are open", e->max);
		return;
	}
	struct client *cl = calloc(1, sizeof(*cl));
	if (!cl) {
		json_decref(hello);
		pn_reply_error(r, 503, "out of memory", "cannot open an event stream");
		return;
	}
	cl->e = e;
	cl->st = pn_reply_stream(r, "text/event-stream", e->max_buffered, closed, cl);
	if (!cl->st) {
		json_decref(hello);
		free(cl);
		return;
	}
	e->clients[e->n++] = cl;
	/* Tells EventSource to reconnect after 2 s if the stream breaks. */
	send_one(cl, "retry: 2000\n\n", 13);
	size_t len;
	char *msg = format("hello", hello, &len);
	if (msg)
		send_one(cl, msg, len);
	free(msg);
}

void pn_events_emit(struct pn_events *e, const char *name, json_t *data)
{
	if (!e->n) {
		json_decref(data);
		return;
	}
	size_t len;
	char *msg = format(name, data, &len);
	if (!msg)
		return;
	for (int i = 0; i < e->n; i++)
		send_one(e->clients[i], msg, len);
	free(msg);
}

int pn_events_clients(const struct pn_events *e)
{
	int n = 0;
	for (int i = 0; i < e->n; i++)
		n += !e->clients[i]->dead;
	return n;
}

uint64_t pn_events_dropped(const struct pn_events *e)
{
	return e->dropped;
}
