#!/bin/bash
# Groups (replicated pipelines in one run), with four real stages and a
# coordinator on loopback: bad "groups" bodies, groups [2, 2] and
# [1, 1, 1, 1] (each group does work), a live re-split of one group, one
# group re-split past the 32 epochs kept while the other keeps its plan, a
# stage of one group killed mid-run (only its group re-plans), and a stage
# killed and restarted at once (re-admitted once into its group), and a
# whole group lost (dropped, the other finishes the run). Every
# run completes with every image counted once and logits equal to
# `pipenet classify` on the same records, bit for bit.
. "${top_srcdir:-.}/tests/cluster-lib.sh"
need_cluster
N=3000 # long enough to lose a stage in the middle
if [ $SLOW = 1 ]; then N=1200; fi
CLUSTER_STAGES=4 cluster "$MODEL32" "--retry-s 5" "--stall-s 60 --batch-deadline-s 4" || exit 1
C=127.0.0.1:$PORT_c
S1=127.0.0.1:$PORT_s1 S2=127.0.0.1:$PORT_s2 S3=127.0.0.1:$PORT_s3 S4=127.0.0.1:$PORT_s4
D="\"dataset\": \"$DATA\", \"samples\": $N"

$W "$PIPENET" classify --model "$MODEL32" --data "$DATA" --limit $N \
	--logits "$TMP/ref.f32" >/dev/null 2>&1
check "pipenet classify wrote the reference logits" test -s "$TMP/ref.f32"

# bad BODY WORDS DESCRIPTION: POST /api/v1/runs answers 400 with WORDS in
# its detail.
bad() {
	api POST $C /api/v1/runs "{$D, $1}"
	local detail=$(jget .detail)
	check "$3: 400 ($detail)" [ "$STATUS" = 400 -a "${detail#*"$2"}" != "$detail" ]
}
bad '"groups": [2, 1]' "groups sum to 3" "groups not summing to the stages"
bad '"groups": [2, 0, 2]' "groups[1]" "a group of no stages"
bad '"groups": [5, -1]' "groups[1]" "a negative group"
bad '"groups": "two"' "groups must be" "groups not a list"
bad '"groups": [2, 2], "split": [8]' "split must be" "split not a list of lists"
bad '"groups": [2, 2], "split": [[8], 8]' "split[1] must be a list" "a group's cuts not a list"
bad '"groups": [2, 2], "split": [[8], [8, 12]]' "split[1] has 2 points" "too many cuts for a group"
bad '"groups": [2, 2], "split": [[8], []]' "split[1] has 0 points" "too few cuts for a group"
bad '"groups": [2, 2], "split": [[19], [8]]' "split[0][0] = 19 is out of range" "a cut out of range"
bad '"groups": [1, 1, 1, 1], "split": [[], [], [], [3]]' "split[3] has 1 points" \
	"a cut for a group of one stage"
bad '"groups": "auto", "split": [8]' 'with "groups": "auto" the planner splits' \
	"groups auto with a split given"

start_run() {
	api POST $C /api/v1/runs "{$D, $1}"
	RUN_ID=$(jget .id)
	[ "$STATUS" = 201 ] || diag "POST /api/v1/runs: $STATUS $(cat "$TMP/reply")"
}
# judge WHAT: the run completed, every image once, logits as classify
# (N images, REF the reference logits if not $TMP/ref.f32).
judge() {
	wait_run $C $RUN_ID 300
	diag "$1: $(jget .state) $(jget .error), $(jget .images_done) images in $(jget .elapsed_s) s, duplicates $(jget .duplicates), recovery $(jget .recovery)"
	diag "groups: $(jget .groups)"
	local state=$(jget .state) images=$(jget .images_done) batches=$(jget .batches_done)
	logits $C "$RUN_ID" "$TMP/run$RUN_ID.f32"
	check "$1: the run completes with all $N images, each counted once" \
		[ "$state" = done -a "$images" = $N -a "$batches" = $(((N + 7) / 8)) -a "$(jget .duplicates)" = 0 ]
	check "$1: logits equal pipenet classify bit for bit" \
		cmp -s "${REF:-$TMP/ref.f32}" "$TMP/run$RUN_ID.f32"
	api GET $C /api/v1/runs/$RUN_ID
}
# every_group_worked: each group's images above 0, summing to N.
every_group_worked() {
	local k sum=0 n=$(jget '.groups|length') i
	for k in $(seq 0 $((n - 1))); do
		i=$(jget .groups[$k].images)
		[ "$i" -gt 0 ] || return 1
		sum=$((sum + i))
	done
	[ $sum = $N ]
}
restart() { # NAME: the stage again, on its old port
	local port
	eval "port=\$PORT_$1"
	start "$1" --role stage --model "$MODEL32" --retry-s 5 --listen "127.0.0.1:$port"
}
wait_up() { # INDEX SECONDS
	local i
	for i in $(seq $(($2 * 10))); do
		api GET $C /api/v1/cluster
		[ "$(jget .stages[$1].state)" = up ] && return 0
		sleep 0.1
	done
	return 1
}

# 1. Two pipelines of two stages, each split at block 8.
start_run '"groups": [2, 2], "split": [[8], [8]]'
judge "groups [2, 2]"
check "both groups did work, their images summing to the run's" every_group_worked
check "the groups are stages 1-2 and 3-4, split [8] each, epochs 0 and 1" \
	[ "$(jget .groups[0].stages)" = "[\"$S1\",\"$S2\"]" -a "$(jget .groups[1].stages)" = "[\"$S3\",\"$S4\"]" -a \
	"$(jget .split)" = "[[8],[8]]" -a "$(jget .groups[0].epoch)" = 0 -a "$(jget .groups[1].epoch)" = 1 ]

# 2. Four pipelines of one stage each, every one computing all 19 blocks.
start_run '"groups": [1, 1, 1, 1], "split": [[], [], [], []]'
judge "groups [1, 1, 1, 1]"
check "all four groups did work" every_group_worked
whole=0
for k in 0 1 2 3; do
	[ "$(jget .stages[$k].first)-$(jget .stages[$k].last)" = 0-19 ] && whole=$((whole + 1))
done
check "each stage computes blocks [0, 19)" [ $whole = 4 -a "$(jget '.stages|length')" = 4 ]

# 5. "split": "auto" (no "groups"): the planner's verdict over the four
# stages' block times decides between one pipeline and groups, and the
# run has what it chose (the note gives both predictions).
start_run '"split": "auto"'
judge "split auto"
note=$(jget .split_note)
want=$(echo "$note" | sed -n 's/.*groups auto: \([0-9]*\) groups\{0,1\} predicted \([0-9.]*\) img\/s, one pipeline \([0-9.]*\).*/\1 \2 \3/p' |
	awk '{ print ($1 > 1 && $2 > $3) ? $1 : 1 }')
check "groups auto: the run has the $want group(s) the verdict chose ($note)" \
	[ -n "$want" -a "$(jget '.groups|length')" = "${want:-x}" -a "$(jget .split_source)" = planner ]
[ "${want:-1}" -gt 1 ] && check "groups auto: every group did work" every_group_worked

# 6. A live re-split of one group; the other keeps its plan.
start_run '"groups": [2, 2], "split": [[8], [8]]'
wait_images $C $RUN_ID $((N / 5))
api PUT $C /api/v1/split '{"split": [12]}'
check "PUT /api/v1/split without a group during a groups run: 400 ($(jget .detail))" \
	[ "$STATUS" = 400 -a "$(jget .detail | grep -c 'name the group')" = 1 ]
api PUT $C /api/v1/split '{"group": 2, "split": [12]}'
check "PUT /api/v1/split of a group the run does not have: 400 ($(jget .detail))" [ "$STATUS" = 400 ]
api PUT $C /api/v1/split '{"group": 1, "split": [12, 14]}'
check "PUT /api/v1/split with too many cuts for the group: 400 ($(jget .detail))" [ "$STATUS" = 400 ]
api PUT $C /api/v1/split '{"group": 1, "split": [12]}'
check "PUT /api/v1/split of group 1: 200 ($(cat "$TMP/reply"))" [ "$STATUS" = 200 -a "$(jget .group)" = 1 ]
judge "group 1 re-split live"
check "group 1 runs [12], group 0 still [8] under its first epoch" \
	[ "$(jget .groups[1].split)" = "[12]" -a "$(jget .groups[0].split)" = "[8]" -a "$(jget .groups[0].epoch)" = 0 ]

# 6b. Group 1 re-split more times than the coordinator keeps epochs (32)
# while group 0 never re-plans: group 0's plan is still there, under its
# epoch 0, and still computes. The stages sleep in their steps so that
# the run outlasts the re-splits. A sanitizer build skips it: a re-split
# takes over a second there, and 34 of them in a run long enough would
# add minutes for code with no memory of its own to get wrong (a ring
# index and a JSON loop over the ring).
if [ $SLOW = 1 ]; then
	ok 0 "# SKIP 34 live re-splits in one run: minutes under a sanitizer"
else
	# 8000 images: the run outlasts the re-splits about four times over
	# (in 3000, the 34 took some 60 % of it), and ends at full speed.
	NB=8000
	$W "$PIPENET" classify --model "$MODEL32" --data "$DATA" --limit $NB \
		--logits "$TMP/ref$NB.f32" >/dev/null 2>&1
	for p in $PORT_s1 $PORT_s2 $PORT_s3 $PORT_s4; do
		api PUT 127.0.0.1:$p /v1/debug '{"slowdown": 20}'
	done
	api POST $C /api/v1/runs "{\"dataset\": \"$DATA\", \"samples\": $NB, \"groups\": [2, 2], \"split\": [[8], [8]]}"
	RUN_ID=$(jget .id)
	wait_images $C $RUN_ID 80
	resplits=0
	for i in $(seq 34); do
		api GET $C /api/v1/runs/$RUN_ID
		[ "$(jget .state)" = running ] || break
		was=$(jget .groups[1].epoch)
		api PUT $C /api/v1/split "{\"group\": 1, \"split\": [$((10 + 2 * (i % 2)))]}"
		[ "$STATUS" = 200 ] || break
		for t in $(seq 200); do
			api GET $C /api/v1/runs/$RUN_ID
			[ "$(jget .groups[1].epoch)" != "$was" -o "$(jget .state)" != running ] && break
			sleep 0.05
		done
		[ "$(jget .groups[1].epoch)" != "$was" ] && resplits=$((resplits + 1))
	done
	api GET $C /api/v1/runs/$RUN_ID
	diag "after $resplits re-splits of group 1: groups $(jget .groups), epochs listed $(jget '.epochs|length')"
	check "group 1 re-split 34 times, to epoch $(jget .groups[1].epoch)" [ $resplits = 34 ]
	check "group 0 keeps split [8] on stages 1 and 2 under epoch 0" \
		[ "$(jget .groups[0].epoch)" = 0 -a "$(jget .groups[0].split)" = "[8]" -a \
		"$(jget .groups[0].stages)" = "[\"$S1\",\"$S2\"]" ]
	check "the run's epochs list it, in order, beside group 1's latest" \
		[ "$(jget .epochs[0].epoch)-$(jget .epochs[0].group)" = 0-0 -a \
		"$(jget '.epochs[-1].epoch')" = "$(jget .groups[1].epoch)" ]
	for p in $PORT_s1 $PORT_s2 $PORT_s3 $PORT_s4; do api PUT 127.0.0.1:$p /v1/debug '{"slowdown": 1}'; done
	N=$NB REF="$TMP/ref$NB.f32" judge "34 re-splits of group 1"
	N=$NB check "both groups did work" every_group_worked
fi

# 3. SIGKILL stage 4 (group 1) a fifth of the way in: group 1 re-plans
# onto stage 3 alone, group 0 is left alone.
start_run '"groups": [2, 2], "split": [[8], [8]]'
wait_images $C $RUN_ID $((N / 5))
kill -KILL "$PID_s4"
wait "$PID_s4" 2>/dev/null
judge "stage 4 killed"
check "one failover; group 1 re-planned onto stage 3, group 0 kept epoch 0" \
	[ "$(jget .recovery.failovers)" = 1 -a "$(jget .groups[1].stages)" = "[\"$S3\"]" -a \
	"$(jget .groups[0].epoch)" = 0 -a "$(jget .groups[0].stages)" = "[\"$S1\",\"$S2\"]" ]
check "both groups did work" every_group_worked

# 4. Stage 4 killed and restarted on its port at once: its group goes on
# without it, then takes it back once; nothing is counted twice.
restart s4 || exit 1
wait_up 3 20
check "the restarted stage is up again" [ $? = 0 ]
for p in $PORT_s1 $PORT_s2 $PORT_s3 $PORT_s4; do
	api PUT 127.0.0.1:$p /v1/debug '{"slowdown": 3}' # a run long enough to re-admit
done
start_run '"groups": [2, 2], "split": [[8], [8]]'
wait_images $C $RUN_ID $((N / 5))
kill -KILL "$PID_s4"
wait "$PID_s4" 2>/dev/null
restart s4 || exit 1
judge "stage 4 restarted at once"
check "one failover and one re-admission, into group 1; group 0 kept epoch 0" \
	[ "$(jget .recovery.failovers)" = 1 -a "$(jget .recovery.readmits)" = 1 -a \
	"$(jget .groups[1].stages)" = "[\"$S3\",\"$S4\"]" -a "$(jget .groups[0].epoch)" = 0 ]
api GET $C /api/v1/cluster
up=0
for k in 0 1 2 3; do [ "$(jget .stages[$k].state)" = up ] && up=$((up + 1)); done
check "still four stages, all up (no ghost entry)" [ "$(jget '.stages|length')" = 4 -a $up = 4 ]

# 8. The replicated prediction where the cores are not the limit: every
# stage at --slowdown 6 (its compute stretched by sleeping; its block
# times measured again), "split": "auto". The run's throughput is checked
# against the planner's model evaluated on the run's own stage times (the
# sum over groups of batch / the group's slowest stage's time per batch),
# which other work on the machine stretches as it stretches the run; the
# prediction from the block times measured before the run is printed
# (tests/bench-groups compares it, on a quiet machine).
for p in $PORT_s1 $PORT_s2 $PORT_s3 $PORT_s4; do
	api PUT 127.0.0.1:$p /v1/debug '{"slowdown": 6}'
done
start_run '"split": "auto", "auto_wait_s": 120'
judge "split auto, stages slowed 6x"
for k in $(seq 0 $(($(jget '.stages|length') - 1))); do
	echo "$(jget ".stages[$k].group") $(busy $k)"
done >"$TMP/busy"
model=$(awk -v n="$(jget .batch_size)" '{ if ($2 > m[$1]) m[$1] = $2 }
	END { for (g in m) if (m[g] > 0) s += n * 1000 / m[g]; print s + 0 }' "$TMP/busy")
meas=$(jget .steady_img_s)
pred=$(jget .predicted_img_s)
tol=${PIPENET_PLAN_TOLERANCE:-0.15}
diag "split auto at 6x: $(jget '.groups|length') group(s), split $(jget .split); predicted $pred img/s before the run, measured $meas, the model on the run's stage times $model ($(tr '\n' ' ' <"$TMP/busy")); load $(cut -d' ' -f1 /proc/loadavg)"
within=$(awk -v p="$model" -v m="$meas" -v t="$tol" 'BEGIN { if (p <= 0 || m <= 0) { print 1; exit } d = (m - p) / p; print (d < 0 ? -d : d) <= t ? 0 : 1 }')
if [ $SLOW = 1 ]; then
	ok 0 "# SKIP the groups' model on the run's own stage times vs measured (no timing under a sanitizer or emulator)"
else
	ok "$within" "split auto at 6x: measured $meas img/s within $(awk -v t="$tol" 'BEGIN { print t * 100 }') % of the model on the run's own stage times, $model img/s"
fi

# 7. Both stages of group 1 killed mid-run: the group is dropped and its
# batches go to group 0, which keeps its plan.
for p in $PORT_s1 $PORT_s2; do api PUT 127.0.0.1:$p /v1/debug '{"slowdown": 1}'; done # and 3, 4 are killed
start_run '"groups": [2, 2], "split": [[8], [8]]'
wait_images $C $RUN_ID $((N / 5))
kill -KILL "$PID_s3" "$PID_s4"
wait "$PID_s3" "$PID_s4" 2>/dev/null
judge "group 1 lost"
check "group 1 dropped, group 0 finished the run under epoch 0" \
	[ "$(jget .groups[1].state)" = dropped -a "$(jget .groups[1].stages)" = "[]" -a \
	"$(jget .groups[0].epoch)" = 0 -a "$(jget .split)" = "[[8],null]" ]
tap_end
