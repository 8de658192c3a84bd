#!/bin/bash
# Every daemon of a cluster (coordinator and two stages) under valgrind's
# memcheck: a short run gives the logits of `pipenet classify`, and after
# SIGTERM valgrind reports no errors and no definitely or indirectly lost
# bytes. Valgrind runs the kernels some 2000 times slower than natively
# (about 0.3 img/s for the 32x32 model), so the coordinator allows batches
# of one image only (--max-batch 1): its start-up profile (8 passes over
# every block at its largest batch up to 8) then takes some 30 s, not 4
# minutes. PIPENET_VALGRIND_SAMPLES sets the images of the run (12).
. "${top_srcdir:-.}/tests/cluster-lib.sh"
need_cluster
[ -z "$W" ] || skip_all "valgrind does not run under qemu-user"
[ $SLOW = 0 ] || skip_all "a sanitizer build: valgrind and ASan do not mix"
need_tool valgrind valgrind
N=${PIPENET_VALGRIND_SAMPLES:-12}
VG=(valgrind --tool=memcheck --leak-check=full --errors-for-leak-kinds=definite,indirect
	--error-exitcode=99 --child-silent-after-fork=yes)

# vstart NAME ARGS...: start, with pipenetd under valgrind (its report in
# $TMP/NAME.vg).
vstart() {
	local name=$1
	shift
	rm -f "$TMP/$name.port"
	"${VG[@]}" --log-file="$TMP/$name.vg" "$PIPENETD" --listen 127.0.0.1:0 \
		--data-dir "$DATADIR" --port-file "$TMP/$name.port" "$@" 2>"$TMP/$name.log" &
	local pid=$!
	PIDS+=("$pid")
	eval "PID_$name=$pid"
	if ! wait_file "$TMP/$name.port" 120; then
		diag "$name did not start:"
		sed 's/^/# /' "$TMP/$name.log" "$TMP/$name.vg"
		return 1
	fi
	eval "PORT_$name=$(cat "$TMP/$name.port")"
}
t0=$SECONDS
vstart s1 --role stage --model "$MODEL32" &&
	vstart s2 --role stage --model "$MODEL32" &&
	vstart c --role coordinator --model "$MODEL32" --max-batch 1 --batch-deadline-s 600 \
		--stages "127.0.0.1:$PORT_s1,127.0.0.1:$PORT_s2" || exit 1
C=127.0.0.1:$PORT_c
diag "three daemons under valgrind started in $((SECONDS - t0)) s"

# The block times first: a run that starts before them has no predicted
# latency to set its resend deadline by, and shares the stages with the
# profile. GET /api/v1/plan asks again for the times a slow stage did not
# answer in time, and is 503 until they are known.
t1=$SECONDS
profiled=0
for t in $(seq 240); do
	api GET $C '/api/v1/plan?batch_size=1'
	if [ "$STATUS" = 200 ]; then
		profiled=1
		break
	fi
	sleep 1
done
check "the stages measured their block times under valgrind ($((SECONDS - t1)) s)" \
	[ $profiled = 1 ]

isa=$(sed -n 's/.*kernels \([a-z0-9]*\)[,)].*/\1/p' "$TMP/c.log" | head -n1)
env ${isa:+PIPENET_ISA=$isa} "$PIPENET" classify --model "$MODEL32" --data "$DATA" --limit "$N" \
	--logits "$TMP/ref.f32" >/dev/null 2>&1
t1=$SECONDS
run $C "{\"dataset\": \"$DATA\", \"samples\": $N, \"batch_size\": 1, \"split\": [8]}" 300
check "a run of $N images finishes under valgrind in $((SECONDS - t1)) s ($RUN_STATE $(jget .error))" \
	[ "$RUN_STATE" = done ]
check "every image is counted once ($(jget .images_done) of $N, $(jget .duplicates) duplicates)" \
	[ "$(jget .images_done)" = "$N" ]
logits $C "$RUN_ID" "$TMP/vg.f32"
out=$("$top_builddir/tests/logits-cmp" "$TMP/ref.f32" "$TMP/vg.f32" 10)
diag "against pipenet classify (kernels $isa): $out"
check "the logits equal pipenet classify's with the same kernels" cmp -s "$TMP/ref.f32" "$TMP/vg.f32"

# SIGTERM, then valgrind's leak check on the way out.
t1=$SECONDS
for n in c s1 s2; do
	eval "pid=\$PID_$n"
	kill -TERM "$pid"
done
for n in c s1 s2; do
	eval "pid=\$PID_$n"
	for t in $(seq 600); do
		alive "$pid" || break
		sleep 0.1
	done
	if alive "$pid"; then
		ok 1 "$n exits after SIGTERM"
		continue
	fi
	wait "$pid"
	st=$?
	vg=$TMP/$n.vg
	errs=$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' "$vg")
	lost=$(grep -E '(definitely|indirectly) lost: [1-9]' "$vg")
	check "$n: exit status $st, $errs errors, no definitely or indirectly lost bytes" \
		[ "$st" = 0 -a "$errs" = 0 -a -z "$lost" ]
	if [ "$st" != 0 ] || [ "$errs" != 0 ] || [ -n "$lost" ]; then
		sed -n '/^==[0-9]*== [^ ]/,$p' "$vg" | head -80 | sed 's/^/# /'
	fi
	diag "$n: $(grep -h -E 'total heap usage|in use at exit' "$vg" | sed 's/^==[0-9]*== *//' | tr '\n' ' ')"
done
diag "stopped with the leak checks in $((SECONDS - t1)) s; $((SECONDS - t0)) s in all"
tap_end
