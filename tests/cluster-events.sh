#!/bin/bash
# GET /api/v1/events: a client reading with curl -N gets hello, an event
# per batch and a summary a second during a run, with the fields of the
# dashboard's contract; a client that never reads is dropped once its
# unsent events pass the bound, the coordinator's memory stays bounded,
# and the run and the reading client carry on.
. "${top_srcdir:-.}/tests/cluster-lib.sh"
need_cluster
cluster "$MODEL32" "" "--events-buffer-bytes 32768" || exit 1
C=127.0.0.1:$PORT_c
N=$([ $SLOW = 1 ] && echo 600 || echo 3000)

rss() { awk '/^VmRSS/ { print $2 }' "/proc/$PID_c/status"; }
curl -s -N --max-time 300 "http://$C/api/v1/events" >"$TMP/events" 2>/dev/null &
reader=$!
# The client that never reads: it sends its request and sleeps, with a
# small receive buffer so that the kernel does not absorb megabytes.
need_tool perl perl-base # the client that does not read
perl -MSocket -e '
	socket(my $s, PF_INET, SOCK_STREAM, 0) or die "socket: $!";
	setsockopt($s, SOL_SOCKET, SO_RCVBUF, 4096) or die "setsockopt: $!";
	connect($s, sockaddr_in($ARGV[0], inet_aton("127.0.0.1"))) or die "connect: $!";
	syswrite($s, "GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
	sleep 600;' "$PORT_c" &
sleeper=$!
cleanup_more() { kill "$sleeper" 2>/dev/null; }
sleep 0.5
rss0=$(rss)
api GET $C /metrics
check "two event clients are connected" grep -q '^pipenet_event_clients 2$' "$TMP/reply"

run $C "{\"dataset\": \"$DATA\", \"samples\": $N, \"batch_size\": 1, \"split\": [8]}" 300
check "a run of $N batches of one image finishes ($RUN_STATE)" [ "$RUN_STATE" = done ]
sleep 1.5
rss1=$(rss)
api GET $C /metrics
check "the client that does not read was dropped" grep -q '^pipenet_errors_total{kind="events_client_dropped"} 1$' "$TMP/reply"
check "one event client is left" grep -q '^pipenet_event_clients 1$' "$TMP/reply"
diag "coordinator RSS ${rss0} kB before, ${rss1} kB after"
if [ $SLOW = 1 ]; then
	ok 0 "# SKIP memory bound: ASan's quarantine keeps freed memory (+$((rss1 - rss0)) kB)"
else
	check "the coordinator's memory stayed bounded (+$((rss1 - rss0)) kB)" [ $((rss1 - rss0)) -lt 40000 ]
fi
kill "$reader" 2>/dev/null
wait "$reader" 2>/dev/null
check "the reader got hello first" [ "$(head -c 20 "$TMP/events" | grep -c 'retry\|hello')" = 1 ]
check "the reader got a batch event per batch ($(grep -c '^event: batch' "$TMP/events"))" \
	[ "$(grep -c '^event: batch' "$TMP/events")" = $N ]
nsum=$(grep -c '^event: summary' "$TMP/events")
check "and summaries, one a second ($nsum)" [ "$nsum" -ge 2 ]
check "a run event when the run started and ended" [ "$(grep -c '^event: run' "$TMP/events")" -ge 2 ]
grep -A1 '^event: batch' "$TMP/events" | grep '^data:' | sed -n 10p | cut -c7- >"$TMP/reply"
check "batch event fields" [ "$(jget .run)" = "$RUN_ID" -a "$(jget .seq)" = 9 -a "$(jget .images)" = 1 -a \
	"$(jget .latency_ms)" != "" -a "$(jget .stages[1].address)" = "127.0.0.1:$PORT_s2" -a \
	"$(jget .stages[0].bytes_out)" = "$(jget .stages[1].bytes_in)" -a "$(jget .samples)" = $N ]
grep -A1 '^event: summary' "$TMP/events" | grep '^data:' | grep '"state":"running"' | tail -1 | cut -c7- >"$TMP/reply"
check "summary during the run: throughput, stages, hops, bottleneck" [ "$(jget .run)" = "$RUN_ID" -a \
	"$(jget .img_s_now)" != "" -a "$(jget .img_s_overall)" != "" -a "$(jget .split[0])" = 8 -a \
	"$(jget .stages[1].first)" = 8 -a "$(jget .stages[0].utilisation)" != "" -a \
	"$(jget .hops[2].to)" = coordinator -a "$(jget .bottleneck.kind)" = stage -a "$(jget .inflight)" != "" ]
diag "summary: $(cat "$TMP/reply" | head -c 600)"
api GET $C /api/v1/health
check "the coordinator still answers" [ "$STATUS" = 200 ]
tap_end
