#!/bin/bash
# Three machines, simulated: the coordinator and two stages each in their
# own network namespace with an address of its own, joined by veth pairs
# to a bridge, every link limited to 100 Mbit/s (tc tbf, a Pi 3's
# Ethernet). The run gives the same logits as on one host, and the
# measured hop transfer times reflect the limit.
. "${top_srcdir:-.}/tests/cluster-lib.sh"
need_cluster
RATE_MBIT=100
tag=$$
ns_c=pnc$tag ns_s1=pns1$tag ns_s2=pns2$tag ns_br=pnbr$tag

cleanup_more() {
	local n
	for n in $ns_c $ns_s1 $ns_s2 $ns_br; do ip netns del "$n" 2>/dev/null; done
}
if [ "$(id -u)" != 0 ] || ! ip netns add $ns_br 2>/dev/null; then
	skip_all "cannot create network namespaces here (needs root and ip netns)"
fi
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
	ip netns exec "$ns" tc qdisc add dev "pn${tag}$n" root tbf rate ${RATE_MBIT}mbit \
		burst 32kbit latency 400ms
	i=$((i + 1))
done
set +e
ok 0 "three namespaces on a bridge, each link shaped to $RATE_MBIT Mbit/s"

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
tap_end
