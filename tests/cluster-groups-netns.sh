#!/bin/bash
# Replicated pipelines across Pi-like hosts, simulated: two "hosts", each a
# network namespace with an address of its own and two stages in it (as a
# Pi runs several pipenetd@ instances), and the coordinator in a third,
# joined by veth pairs to a bridge, each host's link shaped to 1 Gbit/s
# (tc tbf, a Pi 4's Ethernet). A run with groups [2, 2] puts one pipeline
# on each host, so activations stay inside a host and only images and
# logits cross the links. It completes with every image once and logits
# equal to `pipenet classify`, also when a stage of the second host is
# SIGKILLed mid-run (only its group re-plans).
. "${top_srcdir:-.}/tests/cluster-lib.sh"
need_cluster
RATE_MBIT=1000
tag=$$
ns_c=pgc$tag ns_a=pga$tag ns_b=pgb$tag ns_br=pgbr$tag

cleanup_more() {
	local n
	for n in $ns_c $ns_a $ns_b $ns_br; do ip netns del "$n" 2>/dev/null; done
}
[ "$(id -u)" = 0 ] || skip_all "network namespaces need root"
need_tool ip iproute2
need_tool tc iproute2
ip netns add $ns_br 2>/dev/null || skip_all "cannot create network namespaces here (ip netns add)"
set -e
ip -n $ns_br link add br0 type bridge
ip -n $ns_br link set br0 up
i=1
for n in c a b; do
	eval "ns=\$ns_$n"
	ip netns add "$ns"
	ip link add "pg${tag}$n" type veth peer name "pq${tag}$n"
	ip link set "pg${tag}$n" netns "$ns"
	ip link set "pq${tag}$n" netns $ns_br
	ip -n $ns_br link set "pq${tag}$n" master br0 up
	ip -n "$ns" link set lo up
	ip -n "$ns" addr add "10.78.0.$i/24" dev "pg${tag}$n"
	ip -n "$ns" link set "pg${tag}$n" up
	ip netns exec "$ns" tc qdisc add dev "pg${tag}$n" root tbf rate ${RATE_MBIT}mbit \
		burst 256kbit latency 100ms
	i=$((i + 1))
done
set +e
ok 0 "a coordinator and two hosts on a bridge, each link shaped to $RATE_MBIT Mbit/s"

NSX=(ip netns exec $ns_a)
start s1 --role stage --model "$MODEL32" --retry-s 5 --listen 10.78.0.2:0 || exit 1
start s2 --role stage --model "$MODEL32" --retry-s 5 --listen 10.78.0.2:0 || exit 1
NSX=(ip netns exec $ns_b)
start s3 --role stage --model "$MODEL32" --retry-s 5 --listen 10.78.0.3:0 || exit 1
start s4 --role stage --model "$MODEL32" --retry-s 5 --listen 10.78.0.3:0 || exit 1
NSX=(ip netns exec $ns_c)
start c --role coordinator --model "$MODEL32" --listen 10.78.0.1:0 --stall-s 60 \
	--batch-deadline-s 4 \
	--stages "10.78.0.2:$PORT_s1,10.78.0.2:$PORT_s2,10.78.0.3:$PORT_s3,10.78.0.3:$PORT_s4" || exit 1
C=10.78.0.1:$PORT_c
api GET 10.78.0.3:$PORT_s4 /api/v1/health
check "the coordinator's namespace reaches host B's second stage at its address" [ "$STATUS" = 200 ]

N=1600
[ "$SLOW" = 1 ] && N=400
$W "$PIPENET" classify --model "$MODEL32" --data "$DATA" --limit $N \
	--logits "$TMP/ref.f32" >/dev/null 2>&1
# judge WHAT: done, every image once, logits as classify, each group worked.
judge() {
	wait_run $C $RUN_ID 300
	diag "$1: $(jget .state) $(jget .error), $(jget .throughput_img_s) img/s; groups $(jget .groups)"
	logits $C "$RUN_ID" "$TMP/run$RUN_ID.f32"
	check "$1: all $N images, each once ($(jget .state), $(jget .images_done), duplicates $(jget .duplicates))" \
		[ "$(jget .state)" = done -a "$(jget .images_done)" = $N -a "$(jget .duplicates)" = 0 ]
	check "$1: logits equal pipenet classify bit for bit" cmp -s "$TMP/ref.f32" "$TMP/run$RUN_ID.f32"
	check "$1: both hosts' groups did work ($(jget .groups[0].images) and $(jget .groups[1].images) images)" \
		[ "$(jget .groups[0].images)" -gt 0 -a "$(jget .groups[1].images)" -gt 0 ]
}
body="{\"dataset\": \"$DATA\", \"samples\": $N, \"groups\": [2, 2], \"split\": [[8], [8]]}"
api POST $C /api/v1/runs "$body"
RUN_ID=$(jget .id)
judge "groups [2, 2] on two hosts"

# A stage of host B dies mid-run: group 1 re-plans onto the other stage of
# its host, group 0 keeps its first plan.
api POST $C /api/v1/runs "$body"
RUN_ID=$(jget .id)
wait_images $C $RUN_ID $((N / 5))
kill -KILL "$PID_s4"
judge "host B's second stage killed"
check "one failover, and only group 1 re-planned (epochs $(jget .groups[0].epoch) and $(jget .groups[1].epoch))" \
	[ "$(jget .recovery.failovers)" = 1 -a "$(jget .groups[0].epoch)" = 0 -a "$(jget .groups[1].epoch)" -ge 2 ]
tap_end
