#!/bin/bash
# Hostile HTTP against every kind of route of the coordinator and a stage:
# wrong methods, giant headers, giant and truncated bodies, a slowloris
# client, invalid UTF-8, deep JSON nesting, negative and huge numbers,
# wrong content types. Each gets a 4xx (or the connection closed) and the
# daemons still serve the next valid request and finish a valid run.
# Then the limits: max_connections, max_header_bytes, idle_timeout_s,
# api_reads_per_s.
. "${top_srcdir:-.}/tests/cluster-lib.sh"
need_cluster
cluster "$MODEL32"
ok $? "a coordinator and two stages start"
C=127.0.0.1:$PORT_c
S=127.0.0.1:$PORT_s1

# code METHOD HOSTPORT PATH [curl args...]: the status only.
code() {
	local m=$1 hp=$2 p=$3
	shift 3
	curl -s -o "$TMP/reply" -w '%{http_code}' --max-time 20 -X "$m" "$@" "http://$hp$p"
}
is4xx() { case $1 in 4??) return 0 ;; esac; return 1; }
still_serving() {
	[ "$(code GET "$C" /api/v1/health)" = 200 ] && [ "$(code GET "$S" /api/v1/health)" = 200 ]
}

big=$(head -c 20000 /dev/zero | tr '\0' a)
for target in "$C /api/v1/runs" "$C /api/v1/split" "$S /v1/frames" "$S /v1/stage"; do
	set -- $target
	hp=$1 path=$2
	s=$(code GET "$hp" "$path" -H "X-Big: $big")
	is4xx "$s" || [ "$s" = 000 ]
	ok $? "$path with a 20 kB header: $s"
	s=$(code PATCH "$hp" "$path")
	is4xx "$s"
	ok $? "$path with PATCH: $s"
	s=$(code POST "$hp" "$path" -H 'Content-Type: text/plain' --data-binary $'\xff\xfe\xfd')
	is4xx "$s"
	ok $? "$path with invalid UTF-8 as text/plain: $s"
done

deep=$(printf '%.0s[' $(seq 5000))
s=$(code POST "$C" /api/v1/runs -H 'Content-Type: application/json' --data-binary "$deep")
[ "$s" = 400 ]
ok $? "5000-deep JSON nesting: $s"
s=$(code POST "$C" /api/v1/runs -H 'Content-Type: application/json' \
	--data-binary '{"dataset": "x\udcff", "samples": 8}')
is4xx "$s"
ok $? "a lone surrogate in a string: $s"
for bad in '"samples": -5' '"samples": 1e300' '"batch_size": 99999999999999999999' \
	'"offset": -1' '"stride": 0' '"max_inflight": -3' '"batch_size": 0' '"split": [-4]' \
	'"split": [99]' '"split": [12, 3]' '"wire": 16' '"mode": ["pipelined"]'; do
	s=$(code POST "$C" /api/v1/runs -H 'Content-Type: application/json' \
		--data-binary "{\"dataset\": \"$DATA\", $bad}")
	[ "$s" = 400 ]
	ok $? "run with $bad: $s $(head -c 120 "$TMP/reply")"
done
s=$(code PUT "$C" /api/v1/split -H 'Content-Type: application/json' --data-binary '{"split": [1e99]}')
[ "$s" = 400 ]
ok $? "split [1e99]: $s"

# A body that promises more than it sends: the server waits, then gives up;
# meanwhile everyone else is served.
exec 3<>"/dev/tcp/127.0.0.1/$PORT_c"
printf 'POST /api/v1/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n{"dataset": ' >&3
check "a truncated body does not block other clients" still_serving
exec 3>&-

# Slowloris: several connections that trickle a header byte at a time.
pids=()
for i in 1 2 3 4 5; do
	(
		exec 4<>"/dev/tcp/127.0.0.1/$PORT_c" || exit 0
		printf 'GET /api/v1/health HTTP/1.1\r\n' >&4
		for j in $(seq 20); do
			printf 'X-%d: y\r\n' "$j" >&4 2>/dev/null || exit 0
			sleep 0.2
		done
	) &
	pids+=($!)
done
sleep 1
check "slowloris clients do not block others" still_serving
for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done

# Garbage instead of HTTP.
head -c 4096 /dev/urandom >"$TMP/garbage"
(exec 5<>"/dev/tcp/127.0.0.1/$PORT_s1" && cat "$TMP/garbage" >&5) 2>/dev/null
check "random bytes on a stage's socket leave it serving" still_serving

# The connection limits. A stage that takes 4 connections at once and
# 2 kB of headers: a fifth connection is answered 503 (a node-to-node
# path under /v1/ still gets in), and it serves again once they close.
start lim --role stage --model "$MODEL32" --max-connections 4 --max-header-bytes 2048
ok $? "a stage with max_connections 4 and max_header_bytes 2048 starts"
L=127.0.0.1:$PORT_lim
# Each has had a request answered and stays open: connections still
# without a request head would make room for new ones (slowloris).
for fd in 6 7 8 9; do
	eval "exec $fd<>/dev/tcp/127.0.0.1/$PORT_lim"
	printf 'GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n' >&$fd
done
sleep 0.5
s=$(code GET "$L" /api/v1/health)
[ "$s" = 503 ] && grep -q 'too many connections' "$TMP/reply"
ok $? "a fifth connection is refused: $s $(head -c 100 "$TMP/reply")"
s=$(code GET "$L" /v1/stage)
[ "$s" != 503 ] && [ "$s" != 000 ]
ok $? "node-to-node routes have a reserve past the limit: $s"
for fd in 6 7 8 9; do eval "exec $fd>&-"; done
sleep 0.5
s=$(code GET "$L" /api/v1/health)
[ "$s" = 200 ]
ok $? "once they close it serves again: $s"
s=$(code GET "$L" /api/v1/health -H "X-Big: $(head -c 4000 /dev/zero | tr '\0' a)")
case $s in 400 | 413 | 431) true ;; *) false ;; esac
ok $? "a 4 kB header over max_header_bytes 2048: $s"
s=$(code GET "$L" /api/v1/health -H "X-Small: $(head -c 1000 /dev/zero | tr '\0' a)")
[ "$s" = 200 ]
ok $? "a 1 kB header under it: $s"

# idle_timeout_s: a connection that sends nothing is closed after it.
start idle --role stage --model "$MODEL32" --idle-timeout-s 1
ok $? "a stage with idle_timeout_s 1 starts"
t0=$(date +%s%N)
exec 6<>"/dev/tcp/127.0.0.1/$PORT_idle"
timeout 15 cat <&6 >/dev/null
exec 6>&-
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$ms" -ge 500 ] && [ "$ms" -lt 10000 ]
ok $? "an idle connection is closed after about 1 s ($ms ms)"
s=$(code GET "127.0.0.1:$PORT_idle" /api/v1/health)
[ "$s" = 200 ]
ok $? "and the stage still serves: $s"

# api_reads_per_s: a coordinator serving 10 API reads a second. 30
# clients at once all get their answer, in order, taking about 3 s; the
# health check does not wait behind them; clients that give up while
# waiting are let go; SIGTERM answers those still waiting with 503.
start rl --role coordinator --model "$MODEL32" --api-reads-per-s 10
ok $? "a coordinator with api_reads_per_s 10 starts"
R=127.0.0.1:$PORT_rl
for i in $(seq 10); do
	curl -s -o /dev/null --max-time 0.3 "http://$R/api/v1/runs" &
done
t0=$(date +%s%N)
waiting=()
for i in $(seq 30); do
	curl -s -o "$TMP/rl.$i" -w '%{http_code}\n' --max-time 60 "http://$R/api/v1/runs" >"$TMP/rl.$i.code" &
	waiting+=($!)
done
sleep 0.5
th=$(date +%s%N)
s=$(code GET "$R" /api/v1/health)
hms=$((($(date +%s%N) - th) / 1000000))
[ "$s" = 200 ] && [ "$hms" -lt 1500 ]
ok $? "the health check does not wait for the read budget: $s in $hms ms"
wait "${waiting[@]}"
ms=$((($(date +%s%N) - t0) / 1000000))
n200=$(cat "$TMP"/rl.*.code | grep -c '^200$')
[ "$n200" = 30 ] && [ "$ms" -ge 2500 ]
ok $? "30 reads at once all answered 200 ($n200), over $ms ms (at least 2.9 s at 10 a second)"
s=$(code GET "$R" /metrics)
delayed=$(awk '$1 == "pipenet_http_reads_delayed_total" {print $2}' "$TMP/reply")
[ "$s" = 200 ] && [ "${delayed:-0}" -ge 29 ] && grep -q '^pipenet_http_reads_waiting 0$' "$TMP/reply"
ok $? "/metrics counts the reads that waited ($delayed) and none waits now"
waiting=()
for i in $(seq 20); do
	curl -s -o /dev/null -w '%{http_code}\n' --max-time 60 "http://$R/api/v1/runs" >"$TMP/term.$i.code" &
	waiting+=($!)
done
sleep 0.5
kill -TERM "$PID_rl"
wait "${waiting[@]}"
wait "$PID_rl"
rc=$?
n503=$(cat "$TMP"/term.*.code | grep -c '^503$')
[ "$rc" = 0 ] && [ "$n503" -ge 10 ]
ok $? "SIGTERM with reads waiting: they get 503 ($n503 of 20) and the coordinator exits $rc"

"$PIPENET" classify --model "$MODEL32" --data "$DATA" --limit 40 --quiet --logits "$TMP/want.f32" >/dev/null
run "$C" "{\"dataset\": \"$DATA\", \"samples\": 40, \"split\": [8]}"
[ "$RUN_STATE" = done ]
ok $? "a valid run afterwards finishes ($RUN_STATE)"
logits "$C" "$RUN_ID" "$TMP/got.f32" && cmp -s "$TMP/want.f32" "$TMP/got.f32"
ok $? "with logits equal to pipenet classify"
check "s1 is still running" alive "$PID_s1"
check "s2 is still running" alive "$PID_s2"
check "c is still running" alive "$PID_c"
tap_end
