#!/bin/bash
# Allocation failures end in a clean error, never a crash: with an
# allocator that fails the N-th allocation (tests/failalloc.c, preloaded),
# N swept over pipenet classify, a stage's start-up, and a coordinator's
# start-up plus a short run. Every process must exit with a status (no
# signal) or keep serving; nothing may hang.
. "${top_srcdir:-.}/tests/cluster-lib.sh"
need_cluster
[ -z "$W" ] || skip_all "LD_PRELOAD does not reach a program under qemu-user"
[ "$SLOW" = 0 ] || skip_all "the sanitizers bring their own allocator"
shim=$top_builddir/tests/failalloc.so
[ -f "$shim" ] || skip_all "$shim is not built"

# N values: every one up to 64, then a spread of the rest up to TOTAL.
points() {
	local total=$1 count=$2 i
	seq 1 64
	for i in $(seq 1 "$count"); do echo $((64 + (total - 64) * i / count)); done
}
crashed() { [ "$1" -ge 128 ]; } # killed by a signal (SIGSEGV, SIGABRT, ...)
# wait_port FILE PID: until the daemon wrote its port or exited (5 s at most).
wait_port() {
	local i
	for i in $(seq 100); do
		[ -s "$1" ] && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}
# stop PID WHAT N LOG: SIGTERM, then count a death by any other signal.
stop() {
	kill -TERM "$1" 2>/dev/null
	wait "$1"
	local rc=$?
	tried=$((tried + 1))
	if crashed $rc && [ $rc != 143 ]; then
		bad=$((bad + 1))
		[ $bad -le 3 ] && diag "$2, allocation $3: status $rc: $(tail -1 "$4")"
	fi
}

# 1. pipenet classify: every 5th allocation of a 16-image run.
cmd=("$PIPENET" classify --model "$MODEL32" --data "$DATA" --limit 16 --quiet)
total=$(PN_FAIL_ALLOC_COUNT=1 LD_PRELOAD=$shim "${cmd[@]}" 2>&1 >/dev/null | sed -n 's/failalloc: \([0-9]*\) calls/\1/p')
bad=0
tried=0
for n in $(seq 1 5 "$total"); do
	PN_FAIL_ALLOC_AT=$n LD_PRELOAD=$shim timeout 60 "${cmd[@]}" >"$TMP/fa.out" 2>&1
	rc=$?
	tried=$((tried + 1))
	if crashed $rc; then
		bad=$((bad + 1))
		[ $bad -le 3 ] && diag "classify, allocation $n: status $rc: $(tail -1 "$TMP/fa.out")"
	fi
done
ok $bad "pipenet classify: no crash with allocation N failing, $tried values of N up to $total"

# 2. A stage's start-up (model load, packing, listening) and stop.
bad=0
tried=0
for n in $(points 3000 60); do
	rm -f "$TMP/fs.port"
	PN_FAIL_ALLOC_AT=$n LD_PRELOAD=$shim "$PIPENETD" --role stage --model "$MODEL32" \
		--listen 127.0.0.1:0 --port-file "$TMP/fs.port" 2>"$TMP/fs.log" &
	pid=$!
	wait_port "$TMP/fs.port" $pid
	stop $pid stage "$n" "$TMP/fs.log"
done
ok $bad "pipenetd stage: start-up and stop survive allocation N failing ($tried values)"

# 3. A coordinator's start-up and a 16-image run through one real stage.
start s1 --role stage --model "$MODEL32"
body="{\"dataset\": \"$DATA\", \"samples\": 16, \"split\": []}"
bad=0
tried=0
for n in $(points 7000 60); do
	rm -f "$TMP/fc.port"
	PN_FAIL_ALLOC_AT=$n LD_PRELOAD=$shim "$PIPENETD" --role coordinator --model "$MODEL32" \
		--listen 127.0.0.1:0 --port-file "$TMP/fc.port" --stages "127.0.0.1:$PORT_s1" \
		--data-dir "$DATADIR" \
		--stall-s 5 2>"$TMP/fc.log" &
	pid=$!
	if wait_port "$TMP/fc.port" $pid; then
		c=127.0.0.1:$(cat "$TMP/fc.port")
		curl -s -m 5 -o /dev/null -X POST "http://$c/api/v1/runs" -H 'Content-Type: application/json' -d "$body"
		for i in $(seq 40); do
			state=$(curl -s -m 2 "http://$c/api/v1/runs/1" | "$JGET" .state 2>/dev/null)
			case $state in done | failed | cancelled) break ;; esac
			kill -0 $pid 2>/dev/null || break
			sleep 0.1
		done
	fi
	stop $pid coordinator "$n" "$TMP/fc.log"
done
ok $bad "pipenetd coordinator: start-up, a run and stop survive allocation N failing ($tried values)"
check "the stage it used is still serving" alive "$PID_s1"
tap_end
