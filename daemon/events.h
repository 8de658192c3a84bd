/* Server-Sent Events: a hub of streaming clients that each get every
 * event. A client whose unsent output would pass the hub's bound (a slow
 * reader, or one that stopped reading) is dropped, so a client can neither
 * stall the loop nor grow the daemon's memory.
 */
#ifndef PN_EVENTS_H
#define PN_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct pn_loop;
struct pn_req;
struct pn_events;

/* At most `max_clients` at once, each with up to `max_buffered` bytes
 * waiting to be sent. */
struct pn_events *pn_events_new(struct pn_loop *l, int max_clients, size_t max_buffered);
void pn_events_free(struct pn_events *e); /* NULL is fine; closes every client */
/* Answers `r` with a text/event-stream and adds it as a client; `hello`
 * (taken, may be NULL) is its first event, named "hello". 503 when full. */
void pn_events_attach(struct pn_events *e, struct pn_req *r, json_t *hello);
/* Sends `event: NAME` with `data` (taken) as one JSON line to every client. */
void pn_events_emit(struct pn_events *e, const char *name, json_t *data);
int pn_events_clients(const struct pn_events *e);
/* Clients dropped for being too slow, since start. */
uint64_t pn_events_dropped(const struct pn_events *e);

#endif
