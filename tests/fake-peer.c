/* A hostile HTTP peer for tests: answers every request with a reply
 * larger than any a node sends.
 *   fake-peer --mode header|length|chunked --port-file FILE
 * header:  a 1 MiB header line;
 * length:  Content-Length: 1 GiB, then zeros;
 * chunked: 64 KiB chunks of zeros, without end.
 * It listens on 127.0.0.1 (port 0), serves one connection at a time and,
 * when the client closes, prints "closed after N bytes" (N sent on that
 * connection, headers included) to stderr. Stops after 1 GiB a connection
 * or on SIGTERM. */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define LIMIT ((size_t)1 << 30)

static int send_all(int fd, const char *p, size_t n, size_t *sent)
{
	while (n) {
		ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		p += k;
		n -= (size_t)k;
		*sent += (size_t)k;
	}
	return 0;
}

/* Reads until the end of a request head; -1 when the client went. */
static int read_head(int fd)
{
	char buf[4096];
	size_t have = 0;
	for (;;) {
		ssize_t k = recv(fd, buf + have, sizeof(buf) - 1 - have, 0);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		have += (size_t)k;
		buf[have] = '\0';
		if (strstr(buf, "\r\n\r\n"))
			return 0;
		if (have == sizeof(buf) - 1) /* keep the tail for the match */
			have = (size_t)snprintf(buf, sizeof(buf), "%s", buf + have - 3);
	}
}

static void serve(int fd, const char *mode)
{
	static char zeros[65536];
	char chunk[32];
	size_t sent = 0;
	int k = snprintf(chunk, sizeof(chunk), "%x\r\n", (unsigned)sizeof(zeros));
	while (read_head(fd) == 0) {
		int bad = 0;
		if (strcmp(mode, "header") == 0) {
			const char *h = "HTTP/1.1 200 OK\r\nX-Big: ";
			bad = send_all(fd, h, strlen(h), &sent);
			for (int i = 0; !bad && i < 16; i++) {
				memset(zeros, 'a', sizeof(zeros));
				bad = send_all(fd, zeros, sizeof(zeros), &sent);
			}
			memset(zeros, 0, sizeof(zeros));
			const char *t = "\r\nContent-Length: 2\r\n\r\n{}";
			bad = bad || send_all(fd, t, strlen(t), &sent);
		} else if (strcmp(mode, "length") == 0) {
			const char *h = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
					"Content-Length: 1073741824\r\n\r\n";
			bad = send_all(fd, h, strlen(h), &sent);
			while (!bad && sent < LIMIT)
				bad = send_all(fd, zeros, sizeof(zeros), &sent);
		} else {
			const char *h = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
					"Transfer-Encoding: chunked\r\n\r\n";
			bad = send_all(fd, h, strlen(h), &sent);
			while (!bad && sent < LIMIT)
				bad = send_all(fd, chunk, (size_t)k, &sent) ||
				      send_all(fd, zeros, sizeof(zeros), &sent) ||
				      send_all(fd, "\r\n", 2, &sent);
		}
		if (bad)
			break;
	}
	fprintf(stderr, "closed after %zu bytes\n", sent);
	close(fd);
}

int main(int argc, char **argv)
{
	const char *mode = NULL, *port_file = NULL;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--mode") == 0)
			mode = argv[i + 1];
		else if (strcmp(argv[i], "--port-file") == 0)
			port_file = argv[i + 1];
	}
	if (!mode || !port_file ||
	    (strcmp(mode, "header") && strcmp(mode, "length") && strcmp(mode, "chunked"))) {
		fprintf(stderr, "usage: fake-peer --mode header|length|chunked --port-file FILE\n");
		return 2;
	}
	int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(s, 16) != 0 ||
	    getsockname(s, (struct sockaddr *)&a, &alen) != 0) {
		perror("fake-peer: listen");
		return 1;
	}
	FILE *f = fopen(port_file, "w");
	if (!f || fprintf(f, "%d\n", ntohs(a.sin_port)) < 0 || fclose(f) != 0) {
		perror(port_file);
		return 1;
	}
	for (;;) {
		int c = accept(s, NULL, NULL);
		if (c >= 0)
			serve(c, mode);
		else if (errno != EINTR)
			return 1;
	}
}
