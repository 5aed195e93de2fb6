#!/usr/bin/env bash
# Multi-node runs on one machine: each "node" is a network namespace with its own hostname (UTS
# namespace) and one veth link to a bridge in a switch namespace; OpenMPI runs over TCP between them
# (mpirun starts in node 0, and its rsh launch agent starts orted in the other nodes with
# `ip netns exec`). Checks: every built suite passes across nodes; the reports' nodes, hosts and
# rank_map metadata; node index, local rank and local size as the harness detects them (Runtime);
# a fault on a rank of the second node is reported with that rank and mapped to that node.
# Only addresses inside the namespaces this script creates are used; they are removed at the end.
source "$(dirname "$0")/../lib.sh"
HERE=$(cd "$(dirname "$0")/.." && pwd)
source "$HERE/faults/suites.sh"
CSV=(python3 "$HERE/faults/csvcheck.py")
ROOT=$(cd "$HERE/.." && pwd)

TAG=dtb$$
SUBNET=10.$((77 + $$ % 100)).$(($$ / 100 % 250)).0  # per-run subnet, private to our namespaces
NSLIST=()
cleanup() {
  local ns
  for ns in "${NSLIST[@]}"; do ip netns del "$ns" 2>/dev/null; done
  rm -rf "$TMP_ROOT"
}
trap cleanup EXIT
trap "exit 143" TERM INT

addr() { echo "${SUBNET%.0}.$(($1 + 1))"; }  # address of node i
node_ns() { echo "$TAG-n$1"; }

# make_cluster N: switch namespace with a bridge, N node namespaces each with lo and one veth.
make_cluster() {
  local n=$1 i sw=$TAG-sw
  ip netns add "$sw" 2>/dev/null || return 1
  NSLIST+=("$sw")
  ip -n "$sw" link add br0 type bridge && ip -n "$sw" link set br0 up && ip -n "$sw" link set lo up || return 1
  for ((i = 0; i < n; i++)); do
    local ns
    ns=$(node_ns $i)
    ip netns add "$ns" || return 1
    NSLIST+=("$ns")
    ip -n "$ns" link set lo up &&
      ip -n "$ns" link add eth0 type veth peer name "p$i" netns "$sw" &&
      ip -n "$sw" link set "p$i" master br0 && ip -n "$sw" link set "p$i" up &&
      ip -n "$ns" addr add "$(addr $i)/24" dev eth0 && ip -n "$ns" link set eth0 up || return 1
  done
}

if ! command -v ip >/dev/null || ! command -v unshare >/dev/null; then
  echo "SKIP multinode: ip (iproute2) or unshare (util-linux) not installed"; exit 0
fi
if [ "$(id -u)" != 0 ] || ! make_cluster 3; then
  echo "SKIP multinode: cannot create network namespaces here (needs root and CAP_NET_ADMIN)"; exit 0
fi

# The launch agent: called like ssh (`agent [opts] HOST CMD...`); runs CMD in HOST's namespace with
# the node's own hostname.
AGENT=$TMP_ROOT/netns-agent.sh
cat >"$AGENT" <<EOF
#!/bin/bash
while [[ \$1 == -* ]]; do shift; done
host=\$1; shift
i=\$(( \${host##*.} - 1 ))
exec ip netns exec $TAG-n\$i unshare --uts -- bash -c 'hostname node\$0; eval "\$1"' "\$i" "\$*"
EOF
chmod +x "$AGENT"

# The links, from node 0 to every other node: a TCP connect to a closed port is refused (a reply)
# when the link works and times out when it does not (no ping needed).
for i in 1 2; do
  probe=$(ip netns exec "$(node_ns 0)" timeout 3 bash -c "exec 3<>/dev/tcp/$(addr $i)/9" 2>&1)
  if ! grep -q "refused" <<<"$probe"; then fail "multinode link node0 -> node$i" "no answer from $(addr $i)"; exit 0; fi
done

# run_nodes NODES SLOTS NP LOG MAP EXE ARGS...: mpirun in node 0 over NODES nodes of SLOTS slots each.
run_nodes() {
  local nodes=$1 slots=$2 np=$3 log=$4 map=$5 i hf=$TMP_ROOT/hosts.$1.$2
  shift 5
  : >"$hf"
  for ((i = 0; i < nodes; i++)); do echo "$(addr $i) slots=$slots" >>"$hf"; done
  timeout -k 5 120 ip netns exec "$(node_ns 0)" unshare --uts -- bash -c 'hostname node0; exec "$@"' _ \
    mpirun --hostfile "$hf" -np "$np" --map-by "$map" --bind-to none --oversubscribe \
    --mca plm_rsh_agent "$AGENT" --mca pml ob1 --mca btl self,vader,tcp \
    --mca btl_tcp_if_include "$SUBNET/24" --mca oob_tcp_if_include "$SUBNET/24" \
    --wdir "$ROOT" -x OMPI_MCA_mpi_yield_when_idle "$@" >"$log" 2>&1
  RC=$?
  LOG=$log
}

# 1. Where each rank sits, as the harness's Runtime detects it, against OpenMPI's own view.
PROBE=$TMP_ROOT/probe
cat >"$PROBE.cpp" <<'EOF'
#include <cstdio>
#include <cstdlib>
#include "core/runtime.h"
int main(int argc, char** argv) {
  dtbench::Runtime rt(&argc, &argv);
  const auto& i = rt.info();
  const char* lr = std::getenv("OMPI_COMM_WORLD_LOCAL_RANK");
  const char* ls = std::getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
  std::printf("probe rank=%d host=%s node=%d/%d local=%d/%d ompi_local=%s/%s\n", i.rank, i.hostname.c_str(),
              i.node_index, i.num_nodes, i.local_rank, i.local_size, lr ? lr : "?", ls ? ls : "?");
  return 0;
}
EOF
if mpicxx -std=c++17 -O1 -I"$ROOT/src" -DOMPI_SKIP_MPICXX=1 "$PROBE.cpp" "$ROOT/src/core/runtime.cpp" -ldl -o "$PROBE" \
  >"$TMP_ROOT/probe-build.log" 2>&1; then
  # 3 nodes, 5 ranks round-robin: node0 {0,3}, node1 {1,4}, node2 {2}.
  run_nodes 3 2 5 "$TMP_ROOT/probe.log" node "$PROBE"
  expect "multinode runtime: 3 nodes, round-robin ranks, local ranks" \
    "rank r on node r%3 (hostname node<r%3>), node index r%3 of 3, local rank r/3, local size 2,2,1" \
    eval '[ $RC = 0 ] && [ "$(grep -c "^probe " $LOG)" = 5 ] && for r in 0 1 2 3 4; do
            n=$((r % 3)); lr=$((r / 3)); ls=$([ $n = 2 ] && echo 1 || echo 2)
            grep -q "^probe rank=$r host=node$n node=$n/3 local=$lr/$ls ompi_local=$lr/$ls$" $LOG || exit 1; done'
else
  fail "multinode runtime probe" "could not build ($(tail -c 300 "$TMP_ROOT/probe-build.log" | tr '\n' '|'))"
fi

# 2. Every built suite across 2 nodes x 2 ranks (by slot) and 3 nodes round-robin (5 ranks).
for suite in "${ALL_SUITES[@]}"; do
  exe=$BIN/dtbench-$suite
  [ -x "$exe" ] || { echo "SKIP multinode $suite: $exe not built"; continue; }
  read -r -a Q <<<"$(quick_args "$suite")"
  for cfg in "2 2 4 slot node0:0-1;node1:2-3" "3 2 5 node node0:0-0;node1:1-1;node2:2-2;node0:3-3;node1:4-4"; do
    read -r nodes slots np map rmap <<<"$cfg"
    out=$TMP_ROOT/$suite-$nodes
    run_nodes "$nodes" "$slots" "$np" "$TMP_ROOT/$suite-$nodes.log" "$map" "$exe" "${Q[@]}" --out "$out"
    f=$(checks_csv "$out")
    hosts=$(seq -s';' -f 'node%g' 0 $((nodes - 1)))
    expect "multinode $suite on $nodes nodes ($np ranks by $map)" \
      "exit 0, only PASS rows; nodes=$nodes hosts=$hosts rank_map=$rmap world_size=$np" \
      eval '[ $RC = 0 ] && all_pass $out &&
            [ "$("${CSV[@]}" meta $f nodes)" = $nodes ] && [ "$("${CSV[@]}" meta $f hosts)" = "$hosts" ] &&
            [ "$("${CSV[@]}" meta $f rank_map)" = "$rmap" ] && [ "$("${CSV[@]}" meta $f world_size)" = $np ] &&
            [ "$("${CSV[@]}" meta $(perf_csv $out) rank_map)" = "$rmap" ] &&
            grep -q "mpi_transport=.*btl=self,vader,tcp" $f'
  done
done

# 3. A corrupted element on rank 3 (node1 in the 2x2 layout): the FAIL row names rank 3, and the
#    rank_map maps it to node1 (what dtbench-accept prints per node).
out=$TMP_ROOT/fault
run_nodes 2 2 4 "$TMP_ROOT/fault.log" slot "$BIN/dtbench-coll" -b 4K -e 4K -n 1 -w 0 -q --ops all_reduce \
  --out "$out" --inject-fault flip,rank=3,op=all_reduce,index=3
f=$(checks_csv "$out")
expect "multinode fault on rank 3 is reported on node1" "exit 1, FAIL rows naming rank 3 only; rank_map puts 3 on node1" \
  eval '[ $RC = 1 ] && fail_names_rank $f 3 && no_rows $f status=FAIL failing_ranks!=3 &&
        "${CSV[@]}" meta $f rank_map | tr ";" "\n" | grep -qx "node1:2-3"'
if [ -x "$BIN/dtbench-accept" ] && [ -e "$ROOT/tools/thresholds-host.csv" ]; then
  timeout 30 "$BIN/dtbench-accept" -t "$ROOT/tools/thresholds-host.csv" --allow-missing "$out" >"$TMP_ROOT/accept.log" 2>&1
  RC=$? LOG=$TMP_ROOT/accept.log
  # (Its per-node verdict also fails node0: perf rows with n_wrong carry no rank, so they count for
  # every node; the check rows name the node.)
  expect "multinode dtbench-accept names node1 for the fault" "exit 1, the failing check rows name rank 3 on node1" \
    eval '[ $RC = 1 ] && grep -q "FAIL, 1 wrong, ranks 3 \[node node1\]" $LOG && ! grep "checks.csv.*FAIL" $LOG | grep -q node0'
fi

# 4. The watchdog across nodes: a rank on node1 skips a collective; rank 0 on node0 names it.
start=$SECONDS
run_nodes 2 2 4 "$TMP_ROOT/hang.log" slot "$BIN/dtbench-coll" --ops all_reduce -b 1K -e 1K -n 3 -w 1 -q --timeout 5 \
  --out "$TMP_ROOT/hang" --test-skip-collective 3:0
took=$((SECONDS - start))
expect "multinode watchdog names the rank on the other node" "exit 3 in <= 20 s, 'did not arrive: 3'" \
  eval '[ $RC = 3 ] && [ $took -le 20 ] && grep -q "watchdog.*all_reduce.*ranks that did not arrive: 3" $LOG'

# 5. A slow link: node2's veth shaped to 200 Mbit/s both ways (tc tbf), 3 nodes of one rank. The
#    pairwise matrix names node2's rank and no other, at rank and at node level (--fail-slow: FAIL
#    rows on rank 2 only); then a misrouted payload from node1 is a FAIL naming node1's rank as the
#    culprit on the other nodes.
P2P=$BIN/dtbench-p2p
if [ -x "$P2P" ] && command -v tc >/dev/null; then
  if ip netns exec "$(node_ns 2)" tc qdisc replace dev eth0 root tbf rate 200mbit burst 64kb latency 500ms &&
     ip netns exec "$TAG-sw" tc qdisc replace dev p2 root tbf rate 200mbit burst 64kb latency 500ms; then
    for level in rank node; do
      out=$TMP_ROOT/slowlink-$level
      want=$([ $level = rank ] && echo "slow rank 2 (node node2)" || echo "slow node node2")
      expect_within_tries 3 "multinode slow link on node2 ($level level)" "exit 1, '$want', FAIL rows on rank 2 only" \
        'rm -rf $out; run_nodes 3 1 3 "$TMP_ROOT/slowlink-$level.log" node "$P2P" -b 256K -e 256K -n 5 -w 1 --patterns pairs \
           --direction uni --level $level --fail-slow --out "$out"' \
        '[ $RC = 1 ] && grep -qF "p2p_pairs.uni$([ $level = node ] && echo .node) 262144B: $want:" $LOG &&
         ! grep -E "slow (rank [01]|node node[01])" $LOG && f=$(checks_csv $out) &&
         csvq $f --where status=FAIL failing_ranks=2 && no_rows $f status=FAIL failing_ranks!=2'
    done
    ip netns exec "$(node_ns 2)" tc qdisc del dev eth0 root
    ip netns exec "$TAG-sw" tc qdisc del dev p2 root
  else
    fail "multinode slow link" "tc tbf on node2's veth failed"
  fi
  out=$TMP_ROOT/misroute
  run_nodes 3 1 3 "$TMP_ROOT/misroute.log" node "$P2P" -b 4K -e 4K -n 2 -w 1 -q --patterns pairs --out "$out" \
    --inject-fault misroute,rank=1
  expect "multinode p2p misrouted payload from node1" "exit 1, culprit 1 (node1), receivers 0 and 2" \
    eval '[ $RC = 1 ] && grep -q "culprit 1 (node1)" $LOG && f=$(checks_csv $out) &&
          no_rows $f status=FAIL culprit!=1 && no_rows $f status=FAIL failing_ranks@=1'
else
  echo "SKIP multinode slow link: $P2P not built or tc (iproute2) missing"
fi

# 6. Isolation (what slurm/dtbench-isolate.sbatch runs, by hand on the namespaces): each node's own
#    collectives, the node-pair matrix and the whole-job all-reduce, then dtbench-isolate. 3 nodes of
#    2 ranks: a shaped link on node2 -> node2 SLOW (the pair matrix) and a slowed rank in node0's
#    own run -> node0 SLOW (its collectives against the other nodes' median), node1 PASS, drain list
#    "node0 node2"; a flipped element on node1's intra-node run -> node1 CORRUPT with its rank; a
#    node whose run left nothing -> MISSING; a payload misrouted by node1's rank -> node1 CORRUPT
#    with the sender. The nodes' own runs go one after the other here (on a
#    cluster they run at once, on separate machines; here they would share two cores) and
#    dtbench-isolate gets --slow-factor 0.25 for this shared machine's noise.
ISO=$BIN/dtbench-isolate
# run_on NODE LOG EXE ARGS...: 2 ranks on that one node (mpirun in node0; ranks started by the agent).
run_on() {
  local node=$1 log=$2 hf=$TMP_ROOT/hosts.on$1
  shift 2
  echo "$(addr "$node") slots=2" >"$hf"
  timeout -k 5 120 ip netns exec "$(node_ns 0)" unshare --uts -- bash -c 'hostname node0; exec "$@"' _ \
    mpirun --hostfile "$hf" -np 2 --bind-to none --oversubscribe \
    --mca plm_rsh_agent "$AGENT" --mca pml ob1 --mca btl self,vader,tcp \
    --mca btl_tcp_if_include "$SUBNET/24" --mca oob_tcp_if_include "$SUBNET/24" \
    --wdir "$ROOT" -x OMPI_MCA_mpi_yield_when_idle "$@" >"$log" 2>&1
}
if [ -x "$ISO" ] && [ -x "$P2P" ] && command -v tc >/dev/null; then
  isolate_job() {  # isolate_job DIR SHAPE(0|1) INTRA_FAULT_NODE(-1: none) SKIP_NODE(-1: none) SLOW_NODE(-1: none) [PAIRS_ARGS...]
    local dir=$1 shape=$2 fault_node=$3 skip=$4 slow=$5 n extra
    shift 5
    mkdir -p "$dir"
    printf 'node0\nnode1\nnode2\n' >"$dir/nodes.txt"
    for n in 0 1 2; do
      [ "$n" = "$skip" ] && continue
      extra=()
      [ "$n" = "$fault_node" ] && extra=(--inject-fault flip,rank=1,op=all_reduce,index=5)
      [ "$n" = "$slow" ] && extra=(--test-slow-rank 0:8)
      run_on $n "$dir/intra-$n.log" "$BIN/dtbench-coll" --ops all_reduce,all_gather -b 64K -e 256K -f 4 -n 5 -w 1 -q \
        --out "$dir/intra/node$n" "${extra[@]}"
    done
    if [ "$shape" = 1 ]; then
      ip netns exec "$(node_ns 2)" tc qdisc replace dev eth0 root tbf rate 200mbit burst 64kb latency 500ms
      ip netns exec "$TAG-sw" tc qdisc replace dev p2 root tbf rate 200mbit burst 64kb latency 500ms
    fi
    # One rank per node for the whole-job steps: six ranks on this machine's two cores make the
    # node-pair matrix too noisy to judge (on a cluster each node has its own cores and NICs).
    run_nodes 3 1 3 "$dir/pairs.log" node "$P2P" -b 256K -e 256K -n 5 -w 1 --level node --patterns pairs --direction uni \
      --fail-slow --slow-factor 0.25 --out "$dir/pairs" "$@"
    run_nodes 3 1 3 "$dir/world.log" node "$BIN/dtbench-coll" --ops all_reduce -b 64K -e 64K -n 2 -w 1 -q --out "$dir/world"
    if [ "$shape" = 1 ]; then
      ip netns exec "$(node_ns 2)" tc qdisc del dev eth0 root
      ip netns exec "$TAG-sw" tc qdisc del dev p2 root
    fi
    timeout 60 "$ISO" "$dir" --nodes-file "$dir/nodes.txt" --drain "$dir/drain.txt" --slow-factor 0.25 >"$dir/isolate.txt" 2>&1
    RC=$? LOG=$dir/isolate.txt
  }
  expect_within_tries 3 "isolate: shaped link on node2, slowed node0 -> both SLOW, node1 PASS" \
    "exit 1, node2: SLOW (node pairs), node0: SLOW (intra-node), drain.txt = node0 node2" \
    'rm -rf $TMP_ROOT/iso-slow; isolate_job $TMP_ROOT/iso-slow 1 -1 -1 0' \
    '[ $RC = 1 ] && grep -q "^node node0: SLOW (SLOW: intra-node all_" $LOG && ! grep "^node node0:" $LOG | grep -q "node pairs" &&
          grep -q "^node node1: PASS$" $LOG && grep -q "^node node2: SLOW (SLOW: node pairs p2p_pairs.uni.node.bandwidth" $LOG &&
          ! grep "^node node2:" $LOG | grep -q "intra-node" && [ "$(paste -sd" " $TMP_ROOT/iso-slow/drain.txt)" = "node0 node2" ]'
  expect_within_tries 3 "isolate: flipped element on node1 -> node1 CORRUPT with its rank" "exit 1, node1: CORRUPT ... ranks 1, others PASS" \
    'rm -rf $TMP_ROOT/iso-corrupt; isolate_job $TMP_ROOT/iso-corrupt 0 1 -1 -1' \
    '[ $RC = 1 ] && grep -q "^node node1: CORRUPT (CORRUPT: intra-node all_reduce.* wrong on ranks 1" $LOG &&
     grep -q "^node node0: PASS$" $LOG && grep -q "^node node2: PASS$" $LOG && [ "$(cat $TMP_ROOT/iso-corrupt/drain.txt)" = node1 ]'
  expect_within_tries 3 "isolate: a node whose run wrote nothing -> MISSING" "exit 1, node0: MISSING, node1/node2 PASS" \
    'rm -rf $TMP_ROOT/iso-missing; isolate_job $TMP_ROOT/iso-missing 0 -1 0 -1' \
    '[ $RC = 1 ] && grep -q "^node node0: MISSING (MISSING: intra-node run: .*no such directory" $LOG &&
     grep -q "^node node1: PASS$" $LOG && grep -q "^node node2: PASS$" $LOG'
  # A misrouted payload sent by rank 1 (node1, one rank per node in the whole-job steps): the
  # receivers are on other nodes, the sender's node is the one to drain.
  expect_within_tries 3 "isolate: wrong payload sent from node1 -> node1 CORRUPT with the sender, receivers' nodes PASS" \
    "exit 1, 'node node1: CORRUPT (... culprit rank 1 (sender)', node0/node2 PASS, drain.txt = node1" \
    'rm -rf $TMP_ROOT/iso-sender; isolate_job $TMP_ROOT/iso-sender 0 -1 -1 -1 --inject-fault misroute,rank=1' \
    '[ $RC = 1 ] && grep -q "^node node1: CORRUPT (CORRUPT: node pairs p2p_pairs.uni.node \[262144B\]: [0-9]* wrong, culprit rank 1 (sender)" $LOG &&
     grep -q "^node node0: PASS$" $LOG && grep -q "^node node2: PASS$" $LOG && [ "$(cat $TMP_ROOT/iso-sender/drain.txt)" = node1 ]'
else
  echo "SKIP multinode isolation: $ISO or $P2P not built, or tc missing"
fi
