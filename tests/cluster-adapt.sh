#!/bin/bash
# Adapt: a run with "adapt": true on even stages; in the middle of it the
# second stage is made three times as slow (PUT /v1/debug). The
# coordinator sees the stage compute off its profile, plans again and
# re-splits live exactly once (a "resplit" event with the reason); every
# image is counted once and the logits equal `pipenet classify`.
# Under a sanitizer or an emulator (SLOW=1) the block times are too noisy
# to say where blocks belong: there adapt must re-split and say why; on a
# loaded machine, one re-split must move blocks to the fast stage naming
# the slow one; otherwise exactly one re-split, that one.
. "${top_srcdir:-.}/tests/cluster-lib.sh"
need_cluster
N=$([ $SLOW = 1 ] && echo 240 || echo 1600)
OFF=500

# First, so that it does not load the CPU while the stages measure.
$W "$PIPENET" classify --model "$MODEL224" --data "$DATA" --offset $OFF --limit $N \
	--logits "$TMP/ref.f32" >/dev/null 2>&1
check "pipenet classify wrote the reference logits" test -s "$TMP/ref.f32"
# The highest 1-minute load average seen: at the start, when the stages
# profile, at the slowdown and at the end.
peak_load=0
sample_load() {
	peak_load=$(awk -v p="$peak_load" '{print ($1 > p) ? $1 : p}' /proc/loadavg)
}
sample_load
cluster "$MODEL224" || exit 1
sample_load
C=127.0.0.1:$PORT_c
S2=127.0.0.1:$PORT_s2

curl -s -N --max-time 300 "http://$C/api/v1/events" >"$TMP/events" 2>/dev/null &
ev=$!
sleep 0.3
api POST $C /api/v1/runs "{\"dataset\": \"$DATA\", \"offset\": $OFF, \"samples\": $N, \"groups\": [2], \"split\": \"auto\", \"adapt\": true, \"auto_wait_s\": 60}"
check "the adapt run starts" [ "$STATUS" = 201 -a "$(jget .adapt)" = true ]
id=$(jget .id)
for i in $(seq 600); do
	api GET $C /api/v1/runs/$id
	[ "$(jget .images_done)" -gt $((N / 5)) ] && break
	sleep 0.05
done
first=$(jget .split[0])
before=$(jget .adapt_resplits)
sample_load
api PUT $S2 /v1/debug '{"slowdown": 3}'
check "PUT /v1/debug on the second stage: slowdown 3 (at $(jget .slowdown))" [ "$STATUS" = 200 ]
wait_run $C $id 180
check "the run finishes ($(jget .state) $(jget .error))" [ "$(jget .state)" = done ]
check "every image counted once: $(jget .images_done) of $N" \
	[ "$(jget .images_done)" = $N -a "$(jget .duplicates)" = 0 ]
diag "epochs: [$first] $(jget .epochs[0].images) images at $(jget .epochs[0].img_s) img/s; [$(jget .epochs[1].split[0])] $(jget .epochs[1].images) at $(jget .epochs[1].img_s) (predicted $(jget .epochs[1].predicted_img_s)); ratios $(jget .adapt_ratio[0]) $(jget .adapt_ratio[1])"
n=$(jget .adapt_resplits)
first=$(jget .epochs[0].split[0]) # the planner's choice before any re-split
# Under load both stages run off their profiles, and adapt may also move
# blocks back when the fast stage, given more, is slow too: then what must
# hold is that some re-split moved blocks to the fast stage and named the
# slow one (the run's epochs, which no slow event reader can miss).
moved_for_slow=0
prev=$first
for e in $(seq 1 $((n < 31 ? n : 31))); do
	s=$(jget .epochs[$e].split[0])
	[ -n "$s" ] && [ "$s" != null ] || break
	if [[ "$(jget .epochs[$e].reason)" == adapt:*"stage 1"* ]] && [ "$s" -gt "$prev" ]; then
		moved_for_slow=1
		break
	fi
	prev=$s
done
# A machine busier than its cores (other tests beside this one) at any
# time from the profile to the end moves the measured block times as much
# as the slowdown does: a stage profiled under load and run without it
# computes off its profile, and adapt rightly reacts. Then only "at least
# once, towards the fast stage" holds.
sample_load
loaded=$(awk -v p="$peak_load" -v n="$(nproc)" 'BEGIN {print (p > n) ? 1 : 0}')
diag "re-splits before the slowdown: $before; highest load average seen: $peak_load"
if [ $SLOW = 1 ]; then
	# A sanitizer slows each kind of kernel by its own factor, so the
	# profiles say little about where blocks belong: that adapt reacts
	# is checked here, where it moves them in the native suite.
	ok 0 "# SKIP re-split exactly once: $n re-splits, [$first] -> [$(jget .split[0])] (timing under a sanitizer or an emulator)"
	check "re-split at least once" [ "$n" -ge 1 -a "$(jget .epoch)" = "$n" ]
elif [ "$loaded" = 1 ]; then
	ok 0 "# SKIP re-split exactly once: $n re-splits, [$first] -> [$(jget .split[0])] (load up to $peak_load)"
	check "re-split at least once, once towards the fast stage naming the slow one" \
		[ "$n" -ge 1 -a "$(jget .epoch)" = "$n" -a "$moved_for_slow" = 1 ]
else
	check "re-split exactly once, after the slowdown, towards the fast stage: [$first] -> [$(jget .split[0])]" \
		[ "$n" = 1 -a "$before" = 0 -a "$(jget .epoch)" = 1 -a "$(jget .split[0])" -gt "$first" ]
fi
logits $C "$id" "$TMP/run.f32"
check "logits across the re-split equal pipenet classify bit for bit" cmp -s "$TMP/ref.f32" "$TMP/run.f32"
sleep 1.2
kill "$ev" 2>/dev/null
wait "$ev" 2>/dev/null
events=$(grep -c '^event: resplit' "$TMP/events")
if [ "$loaded" = 1 ]; then
	# under load the stream reader may be slower than the bounded buffer
	check "resplit events seen ($events for $n re-splits)" [ "$events" -ge 1 -a "$events" -le "$n" ]
else
	check "a resplit event per re-split ($events for $n)" [ "$events" = "$n" ]
fi
grep -A1 '^event: resplit' "$TMP/events" | grep '^data:' | tail -1 | cut -c7- >"$TMP/reply"
diag "reason: $(jget .reason)"
if [ $SLOW = 1 ]; then
	check "the last re-split says which stage and by how much" \
		eval '[[ "$(jget .reason)" == "adapt: stage "[01]" "*"x its profile"* ]]'
elif [ "$loaded" = 1 ]; then
	check "a re-split towards the fast stage names the slow stage (checked above)" [ "$moved_for_slow" = 1 ]
else
	check "its reason names the slow stage" eval '[[ "$(jget .reason)" == adapt:*"stage 1"* ]]'
fi
tap_end
