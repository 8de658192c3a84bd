#!/bin/bash
# tests/tcp-relay, the delaying relay other tests put between daemons:
# requests through it take at least the delay each way, large and many
# concurrent bodies arrive whole, a whole cluster run through two
# jittery relays gives the logits of `pipenet classify`, aborted clients
# leave no descriptors behind, and SIGTERM ends it with status 0.
. "${top_srcdir:-.}/tests/cluster-lib.sh"
need_cluster
RELAY=$top_builddir/tests/tcp-relay
[ -x "$RELAY" ] || skip_all "$RELAY is not built"

# relay NAME HOST:PORT ARGS...: a relay on 127.0.0.1 port 0 to HOST:PORT;
# sets PORT_NAME and PID_NAME, logs to $TMP/NAME.log.
relay() {
	local name=$1 to=$2
	shift 2
	spawn "$name" "$RELAY" --listen 127.0.0.1:0 --to "$to" "$@"
}
fds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
# seconds HOST:PORT PATH: curl's total time of one GET, in seconds.
seconds() { curl -s -o /dev/null --max-time 30 -w '%{time_total}' "http://$1$2"; }
at_least() { awk -v t="$1" -v m="$2" 'BEGIN { exit !(t >= m) }'; }

cluster "$MODEL32" || exit 1
S1=127.0.0.1:$PORT_s1
relay r0 $S1 || exit 1
relay r200 $S1 --delay-ms 200 || exit 1
relay rj $S1 --delay-ms 5 --jitter-ms 20 --seed 7 || exit 1

api GET 127.0.0.1:$PORT_r0 /api/v1/health
check "GET /api/v1/health through the relay ($STATUS)" [ "$STATUS" = 200 ]
got=$(jget .model_sha256)
api GET $S1 /api/v1/health
check "it is the stage's reply (model $got)" [ -n "$got" -a "$got" = "$(jget .model_sha256)" ]

t0=$(seconds 127.0.0.1:$PORT_r0 /api/v1/health)
t200=$(seconds 127.0.0.1:$PORT_r200 /api/v1/health)
diag "GET /api/v1/health: $t0 s through --delay-ms 0, $t200 s through --delay-ms 200"
check "a request and its reply are each held 200 ms ($t200 s >= 0.4 s)" at_least "$t200" 0.4
check "without a delay it is quicker ($t0 s < 0.2 s)" at_least 0.2 "$t0"

# 24 MiB: more than the relay holds (8 MiB) before it stops reading. The
# echo reads the body and answers its length.
BIG=$((24 << 20))
head -c $BIG /dev/zero >"$TMP/big"
for r in r0 rj; do
	eval "port=\$PORT_$r"
	got=$(curl -s --max-time 120 --data-binary @"$TMP/big" "http://127.0.0.1:$port/v1/echo")
	check "a $BIG-byte body through $r arrives whole ($got)" [ "$got" = "{\"bytes\":$BIG}" ]
done

base_fds=$(fds "$PID_rj")
head -c 1000000 /dev/zero >"$TMP/1mb"
par=()
# A node reads one large echo at a time (503 with Retry-After to the
# others, from their heads; retried): 20 connections through the relay at
# once, their bodies in turn.
for i in $(seq 20); do
	curl -s --max-time 120 --retry 100 --retry-all-errors --retry-max-time 110 \
		-o "$TMP/par.$i" --data-binary @"$TMP/1mb" "http://127.0.0.1:$PORT_rj/v1/echo" &
	par+=($!)
done
wait "${par[@]}"
bad=0
for i in $(seq 20); do
	[ "$(cat "$TMP/par.$i" 2>/dev/null)" = '{"bytes":1000000}' ] || bad=$((bad + 1))
done
check "20 concurrent 1 MB echoes through the jittery relay arrive whole ($bad bad)" [ $bad = 0 ]

# Clients that give up mid-body: the relay closes both sides.
for i in $(seq 10); do
	curl -s -o /dev/null --max-time 0.3 --data-binary @"$TMP/big" "http://127.0.0.1:$PORT_r200/v1/echo"
done
curl -s -o /dev/null --max-time 0.3 --data-binary @"$TMP/big" "http://127.0.0.1:$PORT_rj/v1/echo"
sleep 1
check "aborted clients leave no descriptors behind ($(fds "$PID_rj") now, $base_fds before)" \
	[ "$(fds "$PID_rj")" -le "$base_fds" ]
check "the relays are still running" alive "$PID_r200"

# A whole run with both stages behind jittery relays: frames go up and
# acknowledgements come back through them, and nothing is reordered.
relay q1 $S1 --delay-ms 2 --jitter-ms 8 --seed 1 || exit 1
relay q2 127.0.0.1:$PORT_s2 --delay-ms 2 --jitter-ms 8 --seed 2 || exit 1
start cr --role coordinator --model "$MODEL32" \
	--stages "127.0.0.1:$PORT_q1,127.0.0.1:$PORT_q2" || exit 1
N=200
$W "$PIPENET" classify --model "$MODEL32" --data "$DATA" --limit $N \
	--logits "$TMP/ref.f32" >/dev/null 2>&1
run 127.0.0.1:$PORT_cr "{\"dataset\": \"$DATA\", \"samples\": $N, \"split\": [8]}" 300
check "a run through two relays finishes ($RUN_STATE $(jget .error))" [ "$RUN_STATE" = done ]
logits 127.0.0.1:$PORT_cr "$RUN_ID" "$TMP/relay.f32"
check "its logits equal pipenet classify" cmp -s "$TMP/ref.f32" "$TMP/relay.f32"
diag "$(jget .throughput_img_s) img/s through relays holding 2..10 ms each way"

kill -TERM "$PID_rj"
wait "$PID_rj"
st=$?
check "SIGTERM ends the relay with status 0 ($st)" [ $st = 0 ]
tap_end
