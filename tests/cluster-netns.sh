#!/bin/bash
# Three machines, simulated: the coordinator and two stages each in their
# own network namespace with an address of its own, joined by veth pairs
# to a bridge, every uplink limited to 100 Mbit/s (tc tbf, a Pi 3's
# Ethernet) but stage 2's, which carries only logits, at 5 Mbit/s. The
# run gives the same logits as on one host, the measured hop transfer
# times reflect the limit, and the link probes measure each hop the way
# its frames go; so do a run over a link that drops 5% of its packets and
# a run during which stage 2's link goes down and comes back.
. "${top_srcdir:-.}/tests/cluster-lib.sh"
need_cluster
RATE_MBIT=100
BACK_MBIT=5 # stage 2's uplink, to the coordinator
rate_of() { if [ "$1" = s2 ]; then echo ${BACK_MBIT}mbit; else echo ${RATE_MBIT}mbit; fi; }
tag=$$
ns_c=pnc$tag ns_s1=pns1$tag ns_s2=pns2$tag ns_br=pnbr$tag

cleanup_more() {
	local n
	for n in $ns_c $ns_s1 $ns_s2 $ns_br; do ip netns del "$n" 2>/dev/null; done
}
[ "$(id -u)" = 0 ] || skip_all "network namespaces need root"
need_tool ip iproute2
need_tool tc iproute2
need_tool iptables iptables
ip netns add $ns_br 2>/dev/null || skip_all "cannot create network namespaces here (ip netns add)"
set -e
ip -n $ns_br link add br0 type bridge
ip -n $ns_br link set br0 up
i=1
for n in c s1 s2; do
	eval "ns=\$ns_$n"
	ip netns add "$ns"
	ip link add "pn${tag}$n" type veth peer name "pb${tag}$n"
	ip link set "pn${tag}$n" netns "$ns"
	ip link set "pb${tag}$n" netns $ns_br
	ip -n $ns_br link set "pb${tag}$n" master br0 up
	ip -n "$ns" link set lo up
	ip -n "$ns" addr add "10.77.0.$i/24" dev "pn${tag}$n"
	ip -n "$ns" link set "pn${tag}$n" up
	ip netns exec "$ns" tc qdisc add dev "pn${tag}$n" root tbf rate "$(rate_of $n)" \
		burst 32kbit latency 400ms
	i=$((i + 1))
done
set +e
ok 0 "three namespaces on a bridge, each uplink shaped to $RATE_MBIT Mbit/s, stage 2's to $BACK_MBIT"

NSX=(ip netns exec $ns_s1)
start s1 --role stage --model "$MODEL32" --listen 10.77.0.2:0 || exit 1
NSX=(ip netns exec $ns_s2)
start s2 --role stage --model "$MODEL32" --listen 10.77.0.3:0 || exit 1
NSX=(ip netns exec $ns_c)
start c --role coordinator --model "$MODEL32" --listen 10.77.0.1:0 \
	--stages "10.77.0.2:$PORT_s1,10.77.0.3:$PORT_s2" || exit 1
C=10.77.0.1:$PORT_c

api GET 10.77.0.3:$PORT_s2 /api/v1/health
check "the coordinator's namespace reaches stage 2 at its own address" [ "$STATUS" = 200 ]
api GET 127.0.0.1:$PORT_s2 /api/v1/health
check "but not at 127.0.0.1: the namespaces are apart" [ "$STATUS" != 200 ]

N=200
$W "$PIPENET" classify --model "$MODEL32" --data "$DATA" --limit $N \
	--logits "$TMP/ref.f32" >/dev/null 2>&1
run $C "{\"dataset\": \"$DATA\", \"samples\": $N, \"split\": [8]}" 300
check "a run across the namespaces finishes ($RUN_STATE $(jget .error))" [ "$RUN_STATE" = done ]
logits $C "$RUN_ID" "$TMP/ns.f32"
check "its logits equal pipenet classify on one host" cmp -s "$TMP/ref.f32" "$TMP/ns.f32"
diag "$(jget .throughput_img_s) img/s over ${RATE_MBIT} Mbit/s links"
# The drift check reads a hop's frames by the sender's answered frames and
# their bytes (counting bytes sent, queued frames among them, made links
# look faster than they are).
api GET 10.77.0.2:$PORT_s1 /v1/stage
check "stage 1 counts the bytes of the frames answered: $(jget .out_acked_bytes) of $(jget .bytes_out) sent, $(jget .out_acked) frames" \
	[ "$(jget .out_acked_bytes)" -gt 0 -a "$(jget .out_acked_bytes)" = "$(jget .bytes_out)" ]

# The model on shaped links, with the run's own times (as cluster-plan.sh
# does on loopback): batch / the slowest of the stages' compute and frame
# handling and the hops' transfer per frame, against the steady rate of a
# run long enough to have one. The planner's prediction from the block
# times and links measured at the start is printed beside it.
run $C "{\"dataset\": \"$DATA\", \"samples\": 2000, \"split\": [8]}" 300
busy() { # STAGE: ms per batch in compute and frame handling
	awk -v c="$(jget ".stages[$1].compute_ms_per_batch")" \
		-v v="$(jget ".stages[$1].cpu.overhead_ms_per_batch.convert")" \
		-v r="$(jget ".stages[$1].cpu.overhead_ms_per_batch.crc")" \
		-v f="$(jget ".stages[$1].cpu.overhead_ms_per_batch.frame")" 'BEGIN { print c + v + r + f }'
}
parts="$(busy 0) $(busy 1) $(jget .input_hop.transfer_ms_per_frame) $(jget .stages[0].transfer_ms_per_frame) $(jget .stages[1].transfer_ms_per_frame)"
model=$(echo "$parts" | awk -v n="$(jget .batch_size)" '{ m = 0; for (i = 1; i <= NF; i++) if ($i > m) m = $i; print (m > 0 ? n * 1000 / m : 0) }')
meas=$(jget .steady_img_s)
diag "split [8] over ${RATE_MBIT} Mbit/s: stages and hops $parts ms a batch; the planner predicted $(jget .predicted_img_s) img/s before the run"
if [ $SLOW = 1 ]; then
	ok 0 "# SKIP the model on shaped links (no timing under a sanitizer or emulator)"
else
	check "split [8] on ${RATE_MBIT} Mbit/s links: measured $meas img/s within 15 % of the model on the run's own times, $model img/s" \
		awk -v p="$model" -v m="$meas" 'BEGIN { d = (m - p) / p; exit !(p > 0 && d <= 0.15 && d >= -0.15) }'
fi

# expected_ms BYTES FRAMES: the time one frame takes at the link rate.
expected_ms() { awk -v b="$1" -v f="$2" -v r=$RATE_MBIT 'BEGIN { printf "%.2f", b / f * 8 / (r * 1000) }'; }
# At least the time the link needs (unshaped, a veth moves these frames in
# well under a millisecond); above it, the receiver's loop turns add.
within() { awk -v m="$1" -v e="$2" 'BEGIN { exit !(m >= 0.8 * e) }'; }
m=$(jget .input_hop.transfer_ms_per_frame)
e=$(expected_ms "$(jget .input_hop.bytes)" "$(jget .input_hop.frames)")
check "coordinator -> stage 1: $m ms a frame, $e ms at the link rate" within "$m" "$e"
m=$(jget .stages[0].transfer_ms_per_frame)
e=$(expected_ms "$(jget .stages[0].bytes_out)" "$(jget .stages[0].frames)")
check "stage 1 -> stage 2: $m ms a frame, $e ms at the link rate" within "$m" "$e"

# The probes send their payload the way the frames go: hop 1 is stage 1's
# uplink (100 Mbit/s), not stage 2's (5), which carries hop 2.
api GET $C "/api/v1/plan?batch_size=8"
diag "hop 1 probe: $(jget .links[1])"
check "hop 1 is measured on stage 1's uplink: $(jget .links[1].mbit_s) Mbit/s (${RATE_MBIT}), not stage 2's (${BACK_MBIT})" \
	awk -v m="$(jget .links[1].mbit_s)" -v b=$BACK_MBIT 'BEGIN { exit !(m > 3 * b) }'
check "hop 2 (stage 2 -> coordinator) on stage 2's: $(jget .links[2].mbit_s) Mbit/s (${BACK_MBIT})" \
	awk -v m="$(jget .links[2].mbit_s)" -v b=$BACK_MBIT 'BEGIN { exit !(m > 0 && m < 1.5 * b) }'

# Lossy links: stage 1 drops 5% of its packets both ways (iptables; this
# kernel has no netem). TCP recovers; the logits are the same.
if ip netns exec $ns_s1 iptables -A INPUT -m statistic --mode random --probability 0.05 -j DROP &&
	ip netns exec $ns_s1 iptables -A OUTPUT -m statistic --mode random --probability 0.05 -j DROP; then
	run $C "{\"dataset\": \"$DATA\", \"samples\": $N, \"split\": [8]}" 300
	dropped=$(ip netns exec $ns_s1 iptables -L -v -x -n | awk '/DROP/ { s += $1 } END { print s + 0 }')
	diag "5% loss at stage 1: $RUN_STATE, $(jget .images_done) images, $(jget .throughput_img_s) img/s, $dropped packets dropped, recovery $(jget .recovery)"
	logits $C "$RUN_ID" "$TMP/loss.f32"
	check "a run over a link losing 5% of its packets completes, every image once" \
		[ "$RUN_STATE" = done -a "$(jget .images_done)" = $N -a "$dropped" -gt 0 ]
	check "its logits equal pipenet classify" cmp -s "$TMP/ref.f32" "$TMP/loss.f32"
	ip netns exec $ns_s1 iptables -F
else
	ok 0 "# SKIP iptables cannot drop packets in a namespace here"
fi

# A link that gets slower during a run is measured again during it: every
# uplink drops to 10 Mbit/s (3 under a sanitizer) while a slowed-down run
# goes on. Hop 0, the coordinator's own
# link, is judged on the frames the coordinator sends itself.
# A frame may wait for a compute step at either end, so the drift check
# allows for the longest steps: a sanitizer build's steps are long
# already (no slowdown), and its link drops to 3 Mbit/s so that the
# change stands out of them.
api GET $C "/api/v1/plan?batch_size=8"
before=$(jget .links[1].mbit_s) before0=$(jget .links[0].mbit_s)
probe_before="$(jget .links[1].probe_bytes) $(jget .links[1].probe_ms) $(jget .links[1].measured_at)"
drift_slowdown=$([ $SLOW = 1 ] && echo 1 || echo 5)
drift_rate=$([ $SLOW = 1 ] && echo 3mbit || echo 10mbit)
b0_before=$(jget .blocks[0].ms[0])
# plan_until TRIES COMMAND...: GET the plan every 0.2 s until COMMAND
# (which reads it) holds, at most TRIES times; the last plan is left in
# the reply.
plan_until() {
	local n=$1 i
	shift
	for i in $(seq "$n"); do
		api GET $C "/api/v1/plan?batch_size=8"
		"$@" && return 0
		sleep 0.2
	done
	return 1
}
slowed_times_in() {
	[ "$STATUS" = 200 ] && awk -v a="$(jget .blocks[0].ms[0])" -v b="$b0_before" \
		-v s="$drift_slowdown" 'BEGIN { exit !(a > b * s / 2) }'
}
for a in 10.77.0.2:$PORT_s1 10.77.0.3:$PORT_s2; do
	api PUT $a /v1/debug "{\"slowdown\": $drift_slowdown}"
done
# The slowdown changes the stages' block times, which the coordinator
# measures again, but not during a run: wait until it has them, or a
# health check between the slowdown and the run's start leaves it without
# any (its plan answering 503) for the whole run.
plan_until 150 slowed_times_in
diag "block 0 on stage 1: $b0_before ms a batch, $(jget .blocks[0].ms[0]) slowed down (plan $STATUS)"
# All 10,000 images: the run must outlast the re-measures (they serve it
# only, and it is cancelled below).
api POST $C /api/v1/runs "{\"dataset\": \"$DATA\", \"samples\": 10000, \"split\": [8]}"
id=$(jget .id)
wait_images $C $id 200
# A sanitizer build is slow enough to drift (and be re-probed) before the
# link changes: count only the re-probes after it.
api GET $C "/api/v1/plan?batch_size=8"
reprobes_before=$(jget .links[1].reprobes) reprobes0_before=$(jget .links[0].reprobes)
diag "re-probes before the links change: hop 0 $reprobes0_before, hop 1 $reprobes_before"
for n in c s1 s2; do
	eval "ns=\$ns_$n"
	ip netns exec "$ns" tc qdisc change dev "pn${tag}$n" root tbf rate $drift_rate burst 32kbit \
		latency 400ms
done
# remeasured_after HOP REPROBES_BEFORE: measured again since, for a
# slower link, at under 30 Mbit/s, and not measuring now. A link measured
# low at the start (a busy machine) may be measured again just before the
# change, and that figure is of the old link; the next one is of the new.
remeasured_after() {
	[ "$(jget .links[$1].reprobes)" -gt "$2" ] 2>/dev/null &&
		[ "$(jget .links[$1].reprobing)" = false ] &&
		awk -v m="$(jget .links[$1].mbit_s)" 'BEGIN { exit !(m < 30) }' &&
		case "$(jget .links[$1].drift)" in *slower) true ;; *) false ;; esac
}
both_remeasured() {
	remeasured_after 1 "$reprobes_before" && remeasured_after 0 "$reprobes0_before"
}
plan_until 300 both_remeasured
diag "link 1: $before Mbit/s at start; now $(jget .links[1].mbit_s) Mbit/s, measured $(jget .links[1].measured_s_ago) s ago after: $(jget .links[1].drift)"
remeasured_slower() { # reprobes before, reprobes now, Mbit/s now
	[ "$2" -gt "$1" ] && awk -v m="$3" 'BEGIN { exit !(m < 30) }'
}
check "the slower link is measured again during the run, at under 30 Mbit/s ($(jget .links[1].mbit_s))" \
	remeasured_slower "$reprobes_before" "$(jget .links[1].reprobes)" "$(jget .links[1].mbit_s)"
diag "link 0: $before0 Mbit/s at start; now $(jget .links[0].mbit_s) Mbit/s, measured $(jget .links[0].measured_s_ago) s ago after: $(jget .links[0].drift)"
check "so is the coordinator's own link, hop 0 ($(jget .links[0].mbit_s) Mbit/s)" \
	remeasured_slower "$reprobes0_before" "$(jget .links[0].reprobes)" "$(jget .links[0].mbit_s)"
diag "frame bytes beside the two timed transfers: hop 1 $(jget .links[1].beside_bytes), hop 0 $(jget .links[0].beside_bytes)"
# The probe shares the uplink with the run's frames; the frame bytes the
# receiver acknowledged meanwhile count with the probe's own, so the
# figure is the link's rate, not what the frames left free of it.
check "the re-measured hop 1 is the link's $drift_rate within 50 %, not what the frames left ($(jget .links[1].mbit_s) Mbit/s)" \
	awk -v m="$(jget .links[1].mbit_s)" -v r="${drift_rate%mbit}" 'BEGIN { exit !(m > r * 0.5 && m < r * 1.5) }'
check "the plan says when: a Unix time and an age" \
	awk -v t="$(jget .links[1].measured_at)" -v a="$(jget .links[1].measured_s_ago)" \
	'BEGIN { exit !(t > 1.7e9 && a >= 0 && a < 120) }'
# The links are restored, then the run ends. Figures taken during a run
# are of its busy loops as much as of the link: they serve that run, and
# once it ends the figures from before it come back.
for n in c s1 s2; do
	eval "ns=\$ns_$n"
	ip netns exec "$ns" tc qdisc change dev "pn${tag}$n" root tbf rate "$(rate_of $n)" \
		burst 32kbit latency 400ms
done
api DELETE $C /api/v1/runs/$id
for a in 10.77.0.2:$PORT_s1 10.77.0.3:$PORT_s2; do api PUT $a /v1/debug '{"slowdown": 1}'; done
wait_run $C $id 60
links_in() { [ "$STATUS" = 200 ] && [ -n "$(jget .links[1].mbit_s)" ]; }
plan_until 100 links_in
diag "the plan after the run: status $STATUS"
check "after the run, hop 1 is back to its figure from before it: $(jget .links[1].mbit_s) Mbit/s ($before)" \
	awk -v m="$(jget .links[1].mbit_s)" -v b="$before" 'BEGIN { exit !(m == b) }'
check "and so is hop 0: $(jget .links[0].mbit_s) Mbit/s ($before0)" \
	awk -v m="$(jget .links[0].mbit_s)" -v b="$before0" 'BEGIN { exit !(m == b) }'
probe_after="$(jget .links[1].probe_bytes) $(jget .links[1].probe_ms) $(jget .links[1].measured_at)"
check "with the probe that measured it (sizes, times, when): $probe_after" \
	[ "$probe_after" = "$probe_before" ]
grep "link 1" "$TMP/c.log" | tail -n 3 | sed 's/^/# /'

# Stage 2's link goes down in the middle of a run and comes back: the run
# goes on with stage 1, re-admits stage 2 once it answers again, and ends
# with the same logits. The stages compute 10x slower for a longer run
# (3x in a sanitizer build, slow enough already), until stage 2 is back.
N=3000
slow=$([ $SLOW = 1 ] && echo 3 || echo 10)
$W "$PIPENET" classify --model "$MODEL32" --data "$DATA" --limit $N \
	--logits "$TMP/ref3000.f32" >/dev/null 2>&1
for a in 10.77.0.2:$PORT_s1 10.77.0.3:$PORT_s2; do api PUT $a /v1/debug "{\"slowdown\": $slow}"; done
api POST $C /api/v1/runs "{\"dataset\": \"$DATA\", \"samples\": $N, \"split\": [8]}"
id=$(jget .id)
wait_images $C $id $((N / 20))
ip -n $ns_s2 link set "pn${tag}s2" down
for i in $(seq 300); do
	api GET $C /api/v1/cluster
	[ "$(jget .stages[1].state)" = down ] && break
	sleep 0.1
done
check "stage 2 is marked down once its link is ($(jget .stages[1].reason))" [ "$(jget .stages[1].state)" = down ]
ip -n $ns_s2 link set "pn${tag}s2" up
for i in $(seq 3000); do
	api GET $C /api/v1/runs/$id
	[ "$(jget .state)" != running ] || [ "$(jget .recovery.readmits)" -ge 1 ] && break
	sleep 0.2
done
# Re-admitted: the rest of the run may go at full speed.
for a in 10.77.0.2:$PORT_s1 10.77.0.3:$PORT_s2; do api PUT $a /v1/debug '{"slowdown": 1}'; done
wait_run $C $id 600
diag "link down and up: $(jget .state) $(jget .error), $(jget .images_done) images, recovery $(jget .recovery)"
diag "epochs: $(jget .epochs[0].stages) $(jget .epochs[1].stages) $(jget .epochs[2].stages)"
logits $C "$id" "$TMP/link.f32"
check "the run completes with every image once" [ "$(jget .state)" = done -a "$(jget .images_done)" = $N ]
check "its logits equal pipenet classify" cmp -s "$TMP/ref3000.f32" "$TMP/link.f32"
check "it went on without stage 2 and re-admitted it when the link came back" \
	[ "$(jget .recovery.failovers)" -ge 1 -a "$(jget .recovery.readmits)" -ge 1 ]
tap_end
