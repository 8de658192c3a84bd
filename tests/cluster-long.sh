#!/bin/bash
# The long run: 100,000 images (the CIFAR-10 test set ten times, as ten
# runs of 10,000: a run's samples cannot exceed the records) through a
# coordinator and two stages. Every image is counted once, every pass
# scores the accuracy of `pipenet classify` with the same logits, and
# from after a warm-up run to the end no daemon grows in resident memory
# (beyond what the coordinator keeps of each finished run) or in open
# descriptors. About 100 s on an idle two-core x86 machine, 3-4 minutes
# beside the rest of the suite: it runs with PIPENET_LONG=1
# (scripts/check sets it for the native build).
. "${top_srcdir:-.}/tests/cluster-lib.sh"
need_cluster
[ $SLOW = 0 ] || skip_all "qemu-user or a sanitizer build: 100,000 images would take hours (LeakSanitizer checks the daemons there)"
[ "${PIPENET_LONG:-0}" = 1 ] || skip_all "the long run (100,000 images, 2-4 minutes) runs with PIPENET_LONG=1"
PASSES=10
RECORDS=10000
CLASSES=10
BATCH=8
RSS_SLACK_KB=4096 # allocator noise, a few MB
FD_SLACK=2        # a keep-alive connection more or less at either moment

cluster "$MODEL32" || exit 1
C=127.0.0.1:$PORT_c

"$PIPENET" classify --model "$MODEL32" --data "$DATA" --logits "$TMP/ref.f32" >"$TMP/ref.txt" 2>&1
ref_correct=$(sed -n 's/^accuracy [0-9.]* (\([0-9]*\)\/.*/\1/p' "$TMP/ref.txt")
check "pipenet classify scored the $RECORDS records ($ref_correct correct)" [ -n "$ref_correct" ]

# rss PID: resident kB; fds PID: open descriptors.
rss() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$1/status"; }
fds() { ls "/proc/$1/fd" | wc -l; }
sample() { # NAME: RSS_NAME_0 FD_NAME_0 etc. for every daemon, suffix NAME
	local n pid
	for n in s1 s2 c; do
		eval "pid=\$PID_$n"
		eval "RSS_${n}_$1=$(rss "$pid") FD_${n}_$1=$(fds "$pid")"
	done
}

run $C "{\"dataset\": \"$DATA\", \"samples\": 1000, \"batch_size\": $BATCH, \"split\": \"auto\"}" 120
check "a warm-up run of 1000 images finishes ($RUN_STATE)" [ "$RUN_STATE" = done ]
sample start

t0=$SECONDS
bad=""
for p in $(seq $PASSES); do
	run $C "{\"dataset\": \"$DATA\", \"batch_size\": $BATCH, \"split\": \"auto\"}" 600
	if [ "$RUN_STATE" != done ] || [ "$(jget .images_done)" != $RECORDS ] ||
		[ "$(jget .batches_done)" != "$(jget .batches)" ] ||
		[ "$(jget .duplicates)" != 0 ] || [ "$(jget .correct)" != "$ref_correct" ]; then
		bad="$bad $p"
		diag "pass $p: $RUN_STATE $(jget .error), images_done $(jget .images_done)," \
			"duplicates $(jget .duplicates), correct $(jget .correct)"
	fi
	diag "pass $p: $(jget .throughput_img_s) img/s, split $(jget .split)," \
		"RSS $(rss "$PID_s1") $(rss "$PID_s2") $(rss "$PID_c") kB"
	if [ "$p" = 1 ] || [ "$p" = $PASSES ]; then
		logits $C "$RUN_ID" "$TMP/pass$p.f32"
		check "pass $p: the logits equal pipenet classify's" cmp -s "$TMP/ref.f32" "$TMP/pass$p.f32"
	fi
done
images=$((PASSES * RECORDS))
ok "$([ -z "$bad" ]; echo $?)" "$PASSES passes of $RECORDS: every image counted once, no duplicates, $ref_correct correct each${bad:+ (failed:$bad)}"
diag "$images images in $((SECONDS - t0)) s"
sample end

# The coordinator keeps each finished run's logits and labels (for GET
# /api/v1/runs/ID/logits, up to 64 runs) and a few bytes a batch.
kept_kb=$((PASSES * (RECORDS * (CLASSES + 1) * 4 + (RECORDS / BATCH + 1) * 32) / 1024))
for n in s1 s2 c; do
	eval "r0=\$RSS_${n}_start r1=\$RSS_${n}_end f0=\$FD_${n}_start f1=\$FD_${n}_end pid=\$PID_$n"
	allow=$RSS_SLACK_KB
	[ $n = c ] && allow=$((allow + kept_kb))
	check "$n: resident memory $r0 -> $r1 kB over $images images (at most +$allow kB)" \
		[ $((r1 - r0)) -le $allow ]
	check "$n: open descriptors $f0 -> $f1" [ "$f1" -le $((f0 + FD_SLACK)) ]
	check "$n is still running" alive "$pid"
done
tap_end
