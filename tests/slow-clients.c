/* Hostile HTTP clients for tests, bounded in count and time:
 *   slow-clients --to HOST:PORT --count N --seconds S [--from ADDR]
 *                [--head FILE [--body BYTES]]
 * opens N connections (from source address ADDR if given: any of
 * 127.0.0.0/8 on loopback) and holds them for S seconds. Without --head
 * each trickles a request head that never ends, one byte a second (a
 * slowloris); with --head each sends FILE at once, then up to BYTES of
 * zeros as fast as the socket takes them, and never the rest (a withheld
 * body). Prints one line: how many connected, how many the daemon closed,
 * the status of the replies read, and how many were still open at the
 * end. Exits 0, or 2 on bad arguments. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_COUNT 5000
#define MAX_SECONDS 120

struct client {
	int fd;
	int connected;
	int closed; /* by the daemon (or an error) */
	size_t head_sent;
	long long body_left;
	char reply[16]; /* the start of the reply */
	size_t reply_len;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int parse_to(const char *s, struct sockaddr_in *sa)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	if (!colon || (size_t)(colon - s) >= sizeof(host))
		return -1;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((unsigned short)atoi(colon + 1));
	return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

static void close_client(struct client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->closed = 1;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"to", required_argument, 0, 't'},
					     {"count", required_argument, 0, 'n'},
					     {"seconds", required_argument, 0, 's'},
					     {"from", required_argument, 0, 'f'},
					     {"head", required_argument, 0, 'h'},
					     {"body", required_argument, 0, 'b'},
					     {0, 0, 0, 0}};
	struct sockaddr_in to, from;
	int have_to = 0, have_from = 0, count = 0, seconds = 0;
	const char *head_file = NULL;
	long long body = 0;
	int o;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 't':
			have_to = parse_to(optarg, &to) == 0;
			break;
		case 'n':
			count = atoi(optarg);
			break;
		case 's':
			seconds = atoi(optarg);
			break;
		case 'f':
			memset(&from, 0, sizeof(from));
			from.sin_family = AF_INET;
			have_from = inet_pton(AF_INET, optarg, &from.sin_addr) == 1;
			if (!have_from) {
				fprintf(stderr, "slow-clients: --from %s is not an IPv4 address\n",
					optarg);
				return 2;
			}
			break;
		case 'h':
			head_file = optarg;
			break;
		case 'b':
			body = atoll(optarg);
			break;
		default:
			return 2;
		}
	}
	if (!have_to || count < 1 || count > MAX_COUNT || seconds < 1 || seconds > MAX_SECONDS ||
	    body < 0) {
		fprintf(stderr,
			"usage: slow-clients --to IPV4:PORT --count 1..%d --seconds 1..%d "
			"[--from ADDR] [--head FILE [--body BYTES]]\n",
			MAX_COUNT, MAX_SECONDS);
		return 2;
	}
	char head[16384];
	size_t head_len = 0;
	if (head_file) {
		FILE *f = fopen(head_file, "rb");
		if (!f) {
			fprintf(stderr, "slow-clients: cannot open %s: %s\n", head_file,
				strerror(errno));
			return 2;
		}
		head_len = fread(head, 1, sizeof(head), f);
		fclose(f);
	} else {
		head_len = (size_t)snprintf(
			head, sizeof(head),
			"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: ");
	}
	signal(SIGPIPE, SIG_IGN);
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	struct client *cl = calloc((size_t)count, sizeof(*cl));
	struct pollfd *pf = calloc((size_t)count, sizeof(*pf));
	if (!cl || !pf)
		return 1;
	int failed = 0;
	for (int i = 0; i < count; i++) {
		cl[i].fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		cl[i].body_left = body;
		if (cl[i].fd < 0 ||
		    (have_from && bind(cl[i].fd, (struct sockaddr *)&from, sizeof(from)) != 0) ||
		    (connect(cl[i].fd, (struct sockaddr *)&to, sizeof(to)) != 0 &&
		     errno != EINPROGRESS)) {
			failed++;
			if (cl[i].fd >= 0)
				close(cl[i].fd);
			cl[i].fd = -1;
		}
	}
	static char zeros[65536];
	double start = now_s(), next_byte = start;
	int ever_connected = 0, closed_by_daemon = 0;
	while (now_s() - start < seconds) {
		int trickle = 0;
		if (!head_file && now_s() >= next_byte) {
			trickle = 1;
			next_byte += 1.0;
		}
		for (int i = 0; i < count; i++) {
			struct client *c = &cl[i];
			pf[i].fd = c->fd;
			pf[i].events = POLLIN;
			if (c->fd < 0)
				continue;
			if (!c->connected) {
				pf[i].events |= POLLOUT;
				continue;
			}
			if (head_file && (c->head_sent < head_len || c->body_left > 0))
				pf[i].events |= POLLOUT;
			if (trickle) {
				/* One byte of the head, then padding forever. */
				char b = c->head_sent < head_len ? head[c->head_sent] : 'a';
				if (send(c->fd, &b, 1, MSG_NOSIGNAL) == 1)
					c->head_sent++;
				else if (errno != EAGAIN) {
					closed_by_daemon++;
					close_client(c);
					pf[i].fd = -1;
				}
			}
		}
		if (poll(pf, (nfds_t)count, 100) < 0 && errno != EINTR)
			break;
		for (int i = 0; i < count; i++) {
			struct client *c = &cl[i];
			if (c->fd < 0 || pf[i].fd < 0 || !pf[i].revents)
				continue;
			if (!c->connected && (pf[i].revents & (POLLOUT | POLLERR | POLLHUP))) {
				int err = 0;
				socklen_t l = sizeof(err);
				getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
				if (err) {
					failed++;
					close(c->fd);
					c->fd = -1;
					continue;
				}
				c->connected = 1;
				ever_connected++;
				continue;
			}
			if (pf[i].revents & POLLIN) {
				char buf[4096];
				ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
				if (n > 0) {
					size_t k = sizeof(c->reply) - 1 - c->reply_len;
					memcpy(c->reply + c->reply_len, buf,
					       (size_t)n < k ? (size_t)n : k);
					c->reply_len += (size_t)n < k ? (size_t)n : k;
				} else if (n == 0 || errno != EAGAIN) {
					closed_by_daemon++;
					close_client(c);
					continue;
				}
			}
			if (head_file && (pf[i].revents & POLLOUT)) {
				ssize_t n;
				if (c->head_sent < head_len)
					n = send(c->fd, head + c->head_sent,
						 head_len - c->head_sent, MSG_NOSIGNAL);
				else
					n = send(c->fd, zeros,
						 c->body_left < (long long)sizeof(zeros)
							 ? (size_t)c->body_left
							 : sizeof(zeros),
						 MSG_NOSIGNAL);
				if (n < 0 && errno != EAGAIN) {
					closed_by_daemon++;
					close_client(c);
				} else if (n > 0 && c->head_sent < head_len) {
					c->head_sent += (size_t)n;
				} else if (n > 0) {
					c->body_left -= n;
				}
			}
			if (c->fd >= 0 && (pf[i].revents & (POLLERR | POLLHUP))) {
				closed_by_daemon++;
				close_client(c);
			}
		}
	}
	/* The replies' status codes, counted. */
	int open = 0;
	char statuses[1024] = "";
	int counted[1000] = {0};
	for (int i = 0; i < count; i++) {
		int st = 0;
		open += cl[i].fd >= 0;
		if (cl[i].reply_len >= 12 && sscanf(cl[i].reply, "HTTP/1.%*d %d", &st) == 1 &&
		    st > 0 && st < 1000)
			counted[st]++;
	}
	for (int s = 0; s < 1000; s++)
		if (counted[s])
			snprintf(statuses + strlen(statuses), sizeof(statuses) - strlen(statuses),
				 " %d:%d", s, counted[s]);
	printf("connected %d failed %d closed %d open %d replies%s\n", ever_connected, failed,
	       closed_by_daemon, open, statuses[0] ? statuses : " none");
	for (int i = 0; i < count; i++)
		if (cl[i].fd >= 0)
			close(cl[i].fd);
	free(cl);
	free(pf);
	return 0;
}
