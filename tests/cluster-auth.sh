#!/bin/bash
# Compute, memory and secrets only for the authorised (issue 14, points 6,
# 7, 9, 10), on real processes:
# - the token read from --token-file (never on the command line); a file
#   others can write or read is refused;
# - with a token, GET /api/v1/plan without it answers from cached block
#   times only (401 for a batch size not measured), and no stage profiles;
# - without a token, plan has a bounded number of batch sizes measured,
#   one at a time;
# - /v1/echo needs the token and reads one large body at a time: 20
#   clients that send part of 64 MiB and stall leave the stage's RSS
#   where it was, a second large echo meanwhile gets 503 from its head,
#   and the link probes still measure;
# - replies from a peer with a huge header or body are refused and the
#   coordinator keeps serving.
. "${top_srcdir:-.}/tests/cluster-lib.sh"
need_cluster
FAKE=$top_builddir/tests/fake-peer
[ -x "$FAKE" ] || skip_all "$FAKE is not built"

T=tok-$$-$RANDOM-secret
# code METHOD HOSTPORT PATH [curl args...]: the status; the body in $TMP/reply.
code() {
	local m=$1 hp=$2 p=$3
	shift 3
	curl -s -o "$TMP/reply" -w '%{http_code}' --max-time 60 -X "$m" "$@" "http://$hp$p"
}
auth=(-H "Authorization: Bearer $T")
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
profiled() { grep -c 'profiled batch' "$TMP/$1.log"; }

# ---- token_file ----
printf '  %s  \n\nsecond line\n' "$T" >"$TMP/token"
chmod 600 "$TMP/token"
for mode in 666 620 604; do
	cp "$TMP/token" "$TMP/token$mode"
	chmod "$mode" "$TMP/token$mode"
	out=$($PIPENETD --role stage --model "$MODEL32" --listen 127.0.0.1:0 \
		--token-file "$TMP/token$mode" 2>&1 </dev/null)
	rc=$?
	[ $rc != 0 ] && echo "$out" | grep -q "token file $TMP/token$mode: mode $mode"
	ok $? "a token file of mode $mode is refused, naming the file (rc $rc: $out)"
done
out=$($PIPENETD --role stage --model "$MODEL32" --listen 127.0.0.1:0 \
	--token-file "$TMP/missing" 2>&1 </dev/null)
[ $? != 0 ] && echo "$out" | grep -q "token file $TMP/missing"
ok $? "a missing token file is an error naming it ($out)"
out=$($PIPENETD --role stage --model "$MODEL32" --listen 127.0.0.1:0 --token x \
	--token-file "$TMP/token" 2>&1 </dev/null)
[ $? != 0 ] && echo "$out" | grep -q "both set"
ok $? "token and token_file together are refused ($out)"

cluster "$MODEL32" "--token-file $TMP/token" "--token-file $TMP/token"
ok $? "a coordinator and two stages start with --token-file"
C=127.0.0.1:$PORT_c
S=127.0.0.1:$PORT_s1
for n in c s1 s2; do
	pid=$(eval echo "\$PID_$n")
	! tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "$T"
	ok $? "$n: the token is not in /proc/$pid/cmdline"
done
s=$(code GET "$S" /v1/stage)
[ "$s" = 401 ]
ok $? "a stage refuses GET /v1/stage without the token ($s)"
s=$(code GET "$S" /v1/stage "${auth[@]}")
[ "$s" = 200 ]
ok $? "a stage takes the token read from the file ($s)"
timeout 20 "$PIPENETD" --role stage --model "$MODEL32" --listen 127.0.0.1:0 --api-token="$T" \
	--port-file "$TMP/warn.port" 2>"$TMP/warn.log" &
wpid=$!
wait_file "$TMP/warn.port" 30
kill "$wpid" 2>/dev/null
wait "$wpid" 2>/dev/null
grep -q -- '--token on the command line shows in ps' "$TMP/warn.log"
ok $? "--api-token= on the command line is warned about ($(grep -m1 -o -- '--token on the.*' "$TMP/warn.log" | head -c 60))"

# ---- plan: with a token, only the authorised start measuring ----
# The coordinator measures batch 8 at start; wait for it with the token.
for i in $(seq 600); do
	s=$(code GET "$C" "/api/v1/plan?batch_size=8" "${auth[@]}")
	[ "$s" = 200 ] && break
	sleep 0.1
done
ok $? "plan for batch 8 with the token: 200 once measured ($s)"
for i in $(seq 300); do
	code GET "$C" /api/v1/cluster >/dev/null
	[ "$(jget .links[0].state)" = measured ] && [ "$(jget .links[1].state)" = measured ] &&
		[ "$(jget .links[2].state)" = measured ] && break
	sleep 0.1
done
[ "$(jget .links[1].state)" = measured ]
ok $? "the posted echo still measures every link (hop 1: $(jget .links[1].mbit_s) Mbit/s, $(jget .links[1].latency_ms) ms)"
p1=$(profiled s1) p2=$(profiled s2)
s=$(code GET "$C" "/api/v1/plan?batch_size=8")
[ "$s" = 200 ] && [ "$(jget .best.split)" != null ] && [ "$(jget .cached_batch_sizes[0])" = 8 ]
ok $? "plan for a measured batch size without the token: 200 from the cache ($s, cached $(jget .cached_batch_sizes))"
for b in 64 256 33; do
	s=$(code GET "$C" "/api/v1/plan?batch_size=$b")
	[ "$s" = 401 ] && [ "$(jget .cached_batch_sizes[0])" = 8 ]
	ok $? "plan for batch $b without the token: 401 with the cached sizes ($s: $(head -c 200 "$TMP/reply"))"
done
s=$(curl -s -o /dev/null -w '%{http_code}' --max-time 20 "http://$C/api/v1/plan?batch_size=128" \
	-H 'Authorization: Bearer wrong')
[ "$s" = 401 ]
ok $? "plan for batch 128 with a wrong token: 401 ($s)"
sleep 2
[ "$(profiled s1)" = "$p1" ] && [ "$(profiled s2)" = "$p2" ] &&
	! grep -q 'profiled batch \(64\|256\|33\|128\)' "$TMP/s1.log" "$TMP/s2.log"
ok $? "no stage profiled for them (profiles: s1 $p1 -> $(profiled s1), s2 $p2 -> $(profiled s2))"
# With the token, batch 48 starts measuring; meanwhile, without it, the
# same batch size is 503 (being measured), then 200 from the cache: never
# 401, as the work is not this request's.
s=$(code GET "$C" "/api/v1/plan?batch_size=48" "${auth[@]}")
seen=
for i in $(seq 600); do
	s2=$(code GET "$C" "/api/v1/plan?batch_size=48")
	seen="$seen $s2"
	[ "$s2" = 200 ] && break
	[ "$s2" = 401 ] && break
	sleep 0.05
done
[ "$s" = 503 ] && [ "$s2" = 200 ] && ! echo "$seen" | grep -q 401
ok $? "plan for batch 48 with the token starts measuring ($s); without it meanwhile: $(echo $seen | tr ' ' '\n' | uniq -c | tr -s ' \n' ' ')"
grep -q 'profiled batch 48:' "$TMP/s1.log" && grep -q 'profiled batch 48:' "$TMP/s2.log"
ok $? "the stages profiled batch 48 for the authorised request"

# ---- /v1/echo: token, one large body at a time, refused from its head ----
head -c 3000000 /dev/zero >"$TMP/3mb"
s=$(code POST "$S" /v1/echo --data-binary @"$TMP/3mb")
[ "$s" = 401 ]
ok $? "POST /v1/echo without the token: 401 ($s)"
s=$(code GET "$S" "/v1/echo?bytes=1000" "${auth[@]}")
[ "$s" = 405 ]
ok $? "GET /v1/echo: 405, the probe posts in the frames' direction ($s)"
# 20 clients each announce 64 MiB and send 4 MiB of it, then stall: one is
# read, the 19 others are refused from their heads, so the stage holds one
# body (4 MiB), not 80.
rss0=$(rss_kb "$PID_s1")
pids=()
for i in $(seq 20); do
	( printf 'POST /v1/echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: 67108864\r\n\r\n' "$T"
	  head -c 4194304 /dev/zero; sleep 30 ) >"/dev/tcp/127.0.0.1/$PORT_s1" 2>/dev/null &
	pids+=($!)
done
sleep 2
s=$(curl -s -o "$TMP/reply" -D "$TMP/headers" -w '%{http_code}' --max-time 20 \
	"${auth[@]}" --data-binary @"$TMP/3mb" "http://$S/v1/echo")
[ "$s" = 503 ] && grep -qi '^Retry-After:' "$TMP/headers"
ok $? "an echo of 3 MB while another is read: 503 with Retry-After ($s)"
s=$(code POST "$S" /v1/echo "${auth[@]}" --data-binary 12345)
[ "$s" = 200 ] && [ "$(jget .bytes)" = 5 ]
ok $? "a small echo meanwhile is answered: $s, $(cat "$TMP/reply")"
rss1=$(rss_kb "$PID_s1")
[ $((rss1 - rss0)) -lt 16384 ]
ok $? "20 clients sending 64 MiB echoes and stalling after 4 MiB: stage RSS $rss0 -> $rss1 kB (bound +16 MiB)"
s=$(code GET "$S" /api/v1/health)
[ "$s" = 200 ]
ok $? "the stage answers health meanwhile ($s)"
kill "${pids[@]}" 2>/dev/null
wait "${pids[@]}" 2>/dev/null
for i in $(seq 100); do
	s=$(code POST "$S" /v1/echo "${auth[@]}" --data-binary @"$TMP/3mb")
	[ "$s" = 200 ] && break
	sleep 0.1
done
[ "$s" = 200 ] && [ "$(jget .bytes)" = 3000000 ]
ok $? "once they are gone, an echo of 3000000 bytes is read whole: $s, $(cat "$TMP/reply")"
s=$(code POST "$S" /v1/echo "${auth[@]}" -H 'Content-Length: 0')
[ "$s" = 200 ] && [ "$(jget .bytes)" = 0 ]
ok $? "an echo of 0 bytes: $s, $(cat "$TMP/reply")"
exec 3<>"/dev/tcp/127.0.0.1/$PORT_s1"
printf 'POST /v1/echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: 67108865\r\n\r\n' "$T" >&3
reply=$(timeout 5 head -1 <&3 | tr -d '\r')
exec 3<&-
[ "$(echo "$reply" | cut -d' ' -f2)" = 413 ]
ok $? "an echo over 64 MiB is answered 413 before it is sent ($reply)"

# ---- plan without a token: bounded measuring ----
start s3 --role stage --model "$MODEL32" &&
	start c2 --role coordinator --model "$MODEL32" --stages "127.0.0.1:$PORT_s3"
ok $? "a coordinator and a stage without a token start"
C2=127.0.0.1:$PORT_c2
for i in $(seq 600); do
	s=$(code GET "$C2" "/api/v1/plan?batch_size=8")
	[ "$s" = 200 ] && break
	sleep 0.1
done
ok $? "its plan for batch 8: 200 ($s)"
s=$(code GET "$C2" "/api/v1/plan?batch_size=1")
s2=$(code GET "$C2" "/api/v1/plan?batch_size=2")
[ "$s" = 503 ] && [ "$s2" = 503 ] && grep -q 'measuring batch 1' "$TMP/reply"
ok $? "one batch size measured at a time: batch 2 while batch 1 is measured: $s2 ($(head -c 120 "$TMP/reply"))"
n=0
for b in 1 2 3 4 5 6 7 9; do
	for i in $(seq 600); do
		s=$(code GET "$C2" "/api/v1/plan?batch_size=$b")
		[ "$s" = 200 ] && break
		sleep 0.1
	done
	[ "$s" = 200 ] && n=$((n + 1))
done
[ $n = 8 ]
ok $? "eight more batch sizes measured ($n)"
s=$(curl -s -o "$TMP/reply" -D "$TMP/headers" -w '%{http_code}' --max-time 20 \
	"http://$C2/api/v1/plan?batch_size=10")
[ "$s" = 429 ] && grep -qi '^Retry-After: [1-9]' "$TMP/headers"
ok $? "the ninth: 429 with Retry-After ($s: $(head -c 160 "$TMP/reply"))"
s=$(code GET "$C2" "/api/v1/plan?batch_size=9")
[ "$s" = 200 ]
ok $? "a measured one (still in the cache of 4) answers ($s)"
sleep 1
! grep -q 'profiled batch 10:' "$TMP/s3.log"
ok $? "the stage did not profile batch 10"

# ---- replies from peers are bounded ----
for m in header length chunked; do
	spawn "f$m" "$FAKE" --mode "$m" || break
done
start c3 --role coordinator --model "$MODEL32" \
	--stages "127.0.0.1:$PORT_fheader,127.0.0.1:$PORT_flength,127.0.0.1:$PORT_fchunked"
ok $? "a coordinator of three hostile fake stages starts"
C3=127.0.0.1:$PORT_c3
for i in $(seq 300); do
	[ "$(grep -c 'closed after' "$TMP/fheader.log" "$TMP/flength.log" "$TMP/fchunked.log" |
		grep -c ':0$')" = 0 ] && break
	sleep 0.1
done
for m in header length chunked; do
	sent=$(grep -m1 -o 'closed after [0-9]*' "$TMP/f$m.log" | grep -o '[0-9]*$')
	[ -n "$sent" ] && [ "$sent" -lt $((64 << 20)) ]
	ok $? "a peer replying with a huge $m is cut off (after ${sent:-?} bytes of 1 GiB)"
done
grep -q 'reply over' "$TMP/c3.log"
ok $? "the coordinator logs why ($(grep -m1 -o 'reply over.*' "$TMP/c3.log"))"
rss=$(rss_kb "$PID_c3")
[ "$rss" -lt 262144 ]
ok $? "its RSS stays bounded ($rss kB)"
s=$(code GET "$C3" /api/v1/health)
[ "$s" = 200 ]
ok $? "and it still serves ($s)"
code GET "$C3" /api/v1/cluster >/dev/null
[ "$(jget .stages[0].state)" != up ]
ok $? "the hostile stage is not up ($(jget .stages[0].state): $(jget .stages[0].reason))"

# After all that, a valid run on the token cluster is exact.
s=$(code POST "$C" /api/v1/runs "${auth[@]}" -H 'Content-Type: application/json' \
	--data-binary "{\"dataset\": \"$DATA\", \"samples\": 32, \"batch_size\": 8}")
RUN_ID=$(jget .id)
[ "$s" = 201 ] && wait_run "$C" "$RUN_ID" 120 && [ "$RUN_STATE" = done ] &&
	[ "$(jget .images_done)" = 32 ]
ok $? "a run afterwards: $s, $RUN_STATE, $(jget .images_done) images"
tap_end
