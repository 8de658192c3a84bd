/* A delaying TCP relay for tests (this kernel has no netem):
 *   tcp-relay --listen HOST:PORT --to HOST:PORT [--port-file FILE]
 *             [--delay-ms D] [--jitter-ms J] [--seed N]
 * Every accepted connection gets one of its own to --to; each chunk read
 * from one side is held D ms plus a uniform 0..J ms before it is written
 * to the other, and never overtakes the chunk before it (its release time
 * is max(previous release, now + delay)). A side is no longer read while
 * more than HOLD_MAX bytes wait for its peer. An end of stream is passed
 * on (shutdown SHUT_WR) once everything before it is written; a reset or
 * error on either side closes both. SIGTERM and SIGINT exit cleanly. */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#define HOLD_MAX (8u << 20)

struct chunk {
	struct chunk *next;
	uint64_t release_us;
	size_t len;
};

/* One direction: bytes read from src wait in held, then go to dst. */
struct dir {
	struct conn *c;
	struct bufferevent *src, *dst;
	struct evbuffer *held;
	struct chunk *head, *tail;
	uint64_t last_release_us;
	struct event *timer;
	int eof, shut, paused;
};

/* a: the accepted side; b: the side we connect to --to. */
struct conn {
	struct relay *r;
	struct conn *prev, *next;
	struct bufferevent *a, *b;
	struct dir up, down; /* a -> b, b -> a */
	struct event *reap;
	int b_connected, closing;
};

struct relay {
	struct event_base *base;
	struct sockaddr_storage to;
	socklen_t to_len;
	uint64_t delay_us, jitter_us, rng;
	struct conn *conns;
};

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* splitmix64: the jitter is reproducible for a given --seed. */
static uint64_t rng_next(struct relay *r)
{
	uint64_t z = (r->rng += 0x9e3779b97f4a7c15u);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

static size_t held_bytes(const struct dir *d)
{
	return evbuffer_get_length(d->held) + evbuffer_get_length(bufferevent_get_output(d->dst));
}

/* Marks the connection for freeing when the loop comes back. */
static void conn_close(struct conn *c)
{
	if (c->closing)
		return;
	c->closing = 1;
	bufferevent_disable(c->a, EV_READ | EV_WRITE);
	bufferevent_disable(c->b, EV_READ | EV_WRITE);
	event_active(c->reap, EV_TIMEOUT, 0);
}

static void dir_free(struct dir *d)
{
	while (d->head) {
		struct chunk *k = d->head;
		d->head = k->next;
		free(k);
	}
	if (d->timer)
		event_free(d->timer);
	if (d->held)
		evbuffer_free(d->held);
}

static void conn_free(struct conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		c->r->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	dir_free(&c->up);
	dir_free(&c->down);
	if (c->reap)
		event_free(c->reap);
	if (c->a)
		bufferevent_free(c->a);
	if (c->b)
		bufferevent_free(c->b);
	free(c);
}

static void reap_cb(evutil_socket_t fd, short what, void *arg)
{
	conn_free(arg);
}

/* Passes the end of stream on once everything before it is written. */
static void dir_try_finish(struct dir *d)
{
	struct conn *c = d->c;
	if (c->closing || !d->eof || d->shut || d->head || held_bytes(d) ||
	    (d->dst == c->b && !c->b_connected))
		return;
	d->shut = 1;
	if (shutdown(bufferevent_getfd(d->dst), SHUT_WR) != 0 && errno != ENOTCONN) {
		conn_close(c);
		return;
	}
	if (c->up.shut && c->down.shut)
		conn_close(c);
}

static void dir_schedule(struct dir *d, uint64_t now)
{
	uint64_t wait = d->head->release_us > now ? d->head->release_us - now : 0;
	struct timeval tv = {.tv_sec = (time_t)(wait / 1000000u),
			     .tv_usec = (suseconds_t)(wait % 1000000u)};
	evtimer_add(d->timer, &tv);
}

static void dir_resume(struct dir *d)
{
	if (d->paused && !d->eof && held_bytes(d) <= HOLD_MAX) {
		d->paused = 0;
		bufferevent_enable(d->src, EV_READ);
	}
}

static void release_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dir *d = arg;
	if (d->c->closing)
		return;
	uint64_t now = now_us();
	while (d->head && d->head->release_us <= now) {
		struct chunk *k = d->head;
		evbuffer_remove_buffer(d->held, bufferevent_get_output(d->dst), k->len);
		d->head = k->next;
		free(k);
	}
	if (!d->head)
		d->tail = NULL;
	else
		dir_schedule(d, now);
	dir_try_finish(d);
}

static struct dir *dir_from(struct conn *c, struct bufferevent *src)
{
	return src == c->a ? &c->up : &c->down;
}

static void read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct dir *d = dir_from(c, bev);
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t n = evbuffer_get_length(in);
	if (c->closing || n == 0)
		return;
	struct chunk *k = malloc(sizeof(*k));
	if (!k) {
		conn_close(c);
		return;
	}
	struct relay *r = c->r;
	uint64_t now = now_us();
	uint64_t t = now + r->delay_us + (r->jitter_us ? rng_next(r) % (r->jitter_us + 1) : 0);
	if (t < d->last_release_us)
		t = d->last_release_us;
	d->last_release_us = t;
	*k = (struct chunk){.release_us = t, .len = n};
	evbuffer_add_buffer(d->held, in);
	if (d->tail)
		d->tail->next = k;
	else {
		d->head = k;
		dir_schedule(d, now);
	}
	d->tail = k;
	if (held_bytes(d) > HOLD_MAX) {
		d->paused = 1;
		bufferevent_disable(bev, EV_READ);
	}
}

/* The output of bev is written out: its peer may read again, and an end
 * of stream waiting for it may go. */
static void write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct dir *d = bev == c->b ? &c->up : &c->down;
	if (c->closing)
		return;
	dir_resume(d);
	dir_try_finish(d);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	if (c->closing)
		return;
	if (what & BEV_EVENT_CONNECTED) {
		int one = 1;
		setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->b_connected = 1;
		dir_try_finish(&c->up);
		return;
	}
	if ((what & BEV_EVENT_EOF) && (what & BEV_EVENT_READING) && !(what & BEV_EVENT_ERROR)) {
		struct dir *d = dir_from(c, bev);
		d->eof = 1;
		dir_try_finish(d);
		return;
	}
	conn_close(c); /* a reset, a refused connect, a write error */
}

static int dir_init(struct dir *d, struct conn *c, struct bufferevent *src, struct bufferevent *dst)
{
	d->c = c;
	d->src = src;
	d->dst = dst;
	d->held = evbuffer_new();
	d->timer = evtimer_new(c->r->base, release_cb, d);
	return d->held && d->timer ? 0 : -1;
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
		      void *arg)
{
	struct relay *r = arg;
	struct conn *c = calloc(1, sizeof(*c));
	if (!c) {
		evutil_closesocket(fd);
		return;
	}
	c->r = r;
	c->next = r->conns;
	if (r->conns)
		r->conns->prev = c;
	r->conns = c;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->a = bufferevent_socket_new(r->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!c->a) {
		evutil_closesocket(fd);
		goto fail;
	}
	c->b = bufferevent_socket_new(r->base, -1, BEV_OPT_CLOSE_ON_FREE);
	c->reap = event_new(r->base, -1, 0, reap_cb, c);
	if (!c->b || !c->reap || dir_init(&c->up, c, c->a, c->b) != 0 ||
	    dir_init(&c->down, c, c->b, c->a) != 0)
		goto fail;
	bufferevent_setcb(c->a, read_cb, write_cb, event_cb, c);
	bufferevent_setcb(c->b, read_cb, write_cb, event_cb, c);
	if (bufferevent_socket_connect(c->b, (struct sockaddr *)&r->to, (int)r->to_len) != 0)
		goto fail;
	bufferevent_enable(c->a, EV_READ | EV_WRITE);
	bufferevent_enable(c->b, EV_READ | EV_WRITE);
	return;
fail:
	fprintf(stderr, "tcp-relay: cannot relay a connection\n");
	conn_free(c);
}

static void stop_cb(evutil_socket_t sig, short what, void *arg)
{
	event_base_loopexit(arg, NULL);
}

/* HOST:PORT or [HOST]:PORT into an address; -1 with a message. */
static int resolve(const char *spec, int passive, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[256];
	const char *colon = strrchr(spec, ':');
	size_t hl = colon ? (size_t)(colon - spec) : 0;
	if (hl >= 2 && spec[0] == '[' && spec[hl - 1] == ']') {
		spec++;
		hl -= 2;
	}
	if (!colon || hl == 0 || hl >= sizeof(host) || !colon[1]) {
		fprintf(stderr, "tcp-relay: %s: expected HOST:PORT\n", spec);
		return -1;
	}
	memcpy(host, spec, hl);
	host[hl] = 0;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = passive ? AI_PASSIVE : 0};
	struct addrinfo *ai;
	int e = getaddrinfo(host, colon + 1, &hints, &ai);
	if (e != 0) {
		fprintf(stderr, "tcp-relay: %s: %s\n", spec, gai_strerror(e));
		return -1;
	}
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*len = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

static int write_port_file(const char *path, int port)
{
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (!f || fprintf(f, "%d\n", port) < 0 || fclose(f) != 0 || rename(tmp, path) != 0) {
		fprintf(stderr, "tcp-relay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

static int parse_ms(const char *s, uint64_t *us)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v > 86400000u)
		return -1;
	*us = v * 1000u;
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: tcp-relay --listen HOST:PORT --to HOST:PORT [--port-file FILE] "
			"[--delay-ms D] [--jitter-ms J] [--seed N]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"listen", required_argument, NULL, 'l'},
					     {"to", required_argument, NULL, 't'},
					     {"port-file", required_argument, NULL, 'p'},
					     {"delay-ms", required_argument, NULL, 'd'},
					     {"jitter-ms", required_argument, NULL, 'j'},
					     {"seed", required_argument, NULL, 's'},
					     {NULL, 0, NULL, 0}};
	struct relay r = {.rng = 1};
	const char *listen = NULL, *to = NULL, *port_file = NULL;
	int o;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'l':
			listen = optarg;
			break;
		case 't':
			to = optarg;
			break;
		case 'p':
			port_file = optarg;
			break;
		case 'd':
			if (parse_ms(optarg, &r.delay_us) != 0)
				usage();
			break;
		case 'j':
			if (parse_ms(optarg, &r.jitter_us) != 0)
				usage();
			break;
		case 's':
			r.rng = strtoull(optarg, NULL, 10);
			break;
		default:
			usage();
		}
	}
	if (!listen || !to || optind != argc)
		usage();
	struct sockaddr_storage la;
	socklen_t la_len;
	if (resolve(listen, 1, &la, &la_len) != 0 || resolve(to, 0, &r.to, &r.to_len) != 0)
		return 1;
	signal(SIGPIPE, SIG_IGN);

	int status = 1;
	struct evconnlistener *l = NULL;
	struct event *term = NULL, *intr = NULL;
	r.base = event_base_new();
	if (!r.base)
		goto fail;
	l = evconnlistener_new_bind(r.base, accept_cb, &r,
				    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
					    LEV_OPT_CLOSE_ON_EXEC,
				    128, (struct sockaddr *)&la, (int)la_len);
	if (!l) {
		fprintf(stderr, "tcp-relay: cannot listen on %s: %s\n", listen, strerror(errno));
		goto fail;
	}
	struct sockaddr_storage bound;
	socklen_t blen = sizeof(bound);
	getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&bound, &blen);
	int port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
						     : ((struct sockaddr_in *)&bound)->sin_port);
	term = evsignal_new(r.base, SIGTERM, stop_cb, r.base);
	intr = evsignal_new(r.base, SIGINT, stop_cb, r.base);
	if (!term || !intr || evsignal_add(term, NULL) != 0 || evsignal_add(intr, NULL) != 0)
		goto fail;
	if (port_file && write_port_file(port_file, port) != 0)
		goto fail;
	fprintf(stderr, "tcp-relay: %s (port %d) -> %s, delay %llu ms, jitter %llu ms\n", listen,
		port, to, (unsigned long long)(r.delay_us / 1000),
		(unsigned long long)(r.jitter_us / 1000));
	if (event_base_dispatch(r.base) == 0)
		status = 0;
fail:
	while (r.conns)
		conn_free(r.conns);
	if (term)
		event_free(term);
	if (intr)
		event_free(intr);
	if (l)
		evconnlistener_free(l);
	if (r.base)
		event_base_free(r.base);
	return status;
}
