/* systemd readiness and watchdog notifications (sd_notify protocol),
 * written without libsystemd: a datagram to $NOTIFY_SOCKET. Without that
 * variable every call does nothing, so the daemon runs the same anywhere. */
#ifndef PN_NOTIFY_H
#define PN_NOTIFY_H

#include <stdint.h>

/* Sends `state` (e.g. "READY=1", "STOPPING=1", "WATCHDOG=1"); 0 when sent
 * or not under systemd, -1 when the socket could not be written. */
int pn_notify(const char *state);

/* Microseconds between watchdog pings systemd expects ($WATCHDOG_USEC
 * for this process), or 0 when no watchdog is set. */
uint64_t pn_notify_watchdog_usec(void);

#endif
