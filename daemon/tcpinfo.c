/* A socket's acknowledged bytes, from linux/tcp.h's tcp_info: glibc's
 * netinet/tcp.h (which client.c needs) stops before tcpi_bytes_acked. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <linux/tcp.h>

#include "client.h"

int pn_tcp_bytes_acked(int fd, uint64_t *acked)
{
	struct tcp_info ti;
	socklen_t len = sizeof ti;
	memset(&ti, 0, sizeof ti);
	if (fd < 0 || getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
	    len < offsetof(struct tcp_info, tcpi_bytes_acked) + sizeof ti.tcpi_bytes_acked)
		return -1;
	*acked = ti.tcpi_bytes_acked;
	return 0;
}
