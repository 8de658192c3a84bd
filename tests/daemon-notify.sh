#!/bin/bash
# systemd integration without systemd: pipenetd under a NOTIFY_SOCKET
# sends READY=1 once it serves, WATCHDOG=1 at half of WATCHDOG_USEC, and
# STOPPING=1 on SIGTERM; /api/v1/ready is 503 on a stage until a
# coordinator configures it.
. "${top_srcdir:-.}/tests/cluster-lib.sh"
[ -x "$PIPENETD" ] || skip_all "$PIPENETD is not built"
need_tool curl curl
sock=$TMP/notify.sock
$W "$top_builddir/tests/notify-listen" "$sock" 20 >"$TMP/notify.out" &
listener=$!
for i in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
export NOTIFY_SOCKET=$sock WATCHDOG_USEC=400000
start s1 --role stage --model "$MODEL32"
ok $? "a stage starts under NOTIFY_SOCKET"
unset NOTIFY_SOCKET WATCHDOG_USEC
sleep 1
grep -qx 'READY=1' "$TMP/notify.out"
ok $? "it said READY=1"
[ "$(grep -cx 'WATCHDOG=1' "$TMP/notify.out")" -ge 2 ]
ok $? "it pings the watchdog at half the interval ($(grep -cx 'WATCHDOG=1' "$TMP/notify.out") pings in 1 s at 400 ms)"
api GET "127.0.0.1:$PORT_s1" /api/v1/ready
[ "$STATUS" = 503 ] && grep -q 'not configured' "$TMP/reply"
ok $? "an unconfigured stage is not ready: $STATUS $(cat "$TMP/reply")"
api GET "127.0.0.1:$PORT_s1" /api/v1/health
[ "$STATUS" = 200 ]
ok $? "but it is alive (health 200)"
kill -TERM "$PID_s1"
wait "$listener"
grep -qx 'STOPPING=1' "$TMP/notify.out"
ok $? "SIGTERM: it said STOPPING=1"
sed 's/^/# notify: /' "$TMP/notify.out" | sort | uniq -c | sed 's/^ *//;s/^/# /'
tap_end
