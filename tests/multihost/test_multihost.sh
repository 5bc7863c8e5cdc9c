#!/usr/bin/env bash
# A campaign across 3 "hosts" made on this machine: network namespaces
# joined by veth pairs on a bridge, each with its own hostname (UTS
# namespace). Open MPI runs over TCP between them (btl tcp,self) and starts
# its daemons with `ip netns exec` in place of ssh. The result must be
# identical to the one-host run. Skips (77) only where namespaces cannot
# be made.
set -uo pipefail
exe=${ENSFOLD_EXE:?}
src=${ENSFOLD_SOURCE_ROOT:?}
skip() { echo "SKIP: $*"; exit 77; }
command -v ip >/dev/null || skip "ip (iproute2) not installed"
command -v unshare >/dev/null || skip "unshare (util-linux) not installed"
[ "$(id -u)" -eq 0 ] || skip "network namespaces need root"
tag=ef$$
tmp=$(mktemp -d /tmp/ef-multihost-XXXXXX)
chmod 755 "$tmp"
hosts=(10.77.$((RANDOM % 200)).1 10.77.0.2 10.77.0.3)
net=${hosts[0]%.*}
hosts=($net.1 $net.2 $net.3)
cleanup() {
  for i in 1 2 3; do ip netns del "$tag-h$i" 2>/dev/null; done
  ip link del "$tag-br" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
ip link add "$tag-br" type bridge 2>/dev/null || skip "cannot create a bridge: $(ip link add "$tag-x" type bridge 2>&1)"
ip link set "$tag-br" up
for i in 1 2 3; do
  ns=$tag-h$i
  ip netns add "$ns" || skip "cannot create network namespace $ns"
  ip link add "$tag-v$i" type veth peer name eth0 netns "$ns" || skip "cannot create a veth pair"
  ip link set "$tag-v$i" master "$tag-br" up
  ip -n "$ns" addr add "${hosts[$((i - 1))]}/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
done
# every host reaches every other over the bridge
for i in 1 2 3; do
  for h in "${hosts[@]}"; do
    ip netns exec "$tag-h$i" ping -c 1 -W 2 "$h" >/dev/null || skip "namespace $i cannot reach $h"
  done
done
echo "# 3 hosts: ${hosts[*]}"

# the launcher agent: "agent [options] HOST command..." runs the command in
# HOST's namespace with its own hostname, as ssh would on a real host
cat > "$tmp/agent" <<AGENT
#!/bin/bash
while [ "\${1#-}" != "\$1" ]; do shift; done   # ignore ssh-style options
host=\$1; shift
case "\$host" in
  ${hosts[0]}) i=1 ;; ${hosts[1]}) i=2 ;; ${hosts[2]}) i=3 ;;
  *) echo "agent: unknown host \$host" >&2; exit 255 ;;
esac
echo "host \$host -> namespace $tag-h\$i: \$*" >> $tmp/agent.log
exec ip netns exec $tag-h\$i unshare --uts /bin/sh -c "hostname node\$i; exec \$*"
AGENT
chmod +x "$tmp/agent"
printf '%s slots=1\n' "${hosts[@]}" > "$tmp/hostfile"

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cfg=$src/tests/mpi/small.yaml
# one host, the reference
mpirun -n 1 "$exe" run "$cfg" -o "$tmp/one.h5" --quiet || exit 1
# three hosts: mpirun itself runs on host 1
start=$(date +%s%N)
ip netns exec "$tag-h1" unshare --uts /bin/sh -c "hostname node1; exec mpirun -n 3 \
  --hostfile $tmp/hostfile --mca plm_rsh_agent $tmp/agent \
  --mca btl tcp,self --mca btl_tcp_if_include $net.0/24 --mca oob_tcp_if_include $net.0/24 \
  --mca plm_rsh_no_tree_spawn 1 \
  $exe run $cfg -o $tmp/three.h5 --quiet" || { echo "the 3-host run failed"; exit 1; }
echo "# 3-host run: $(( ($(date +%s%N) - start) / 1000000 )) ms"
/usr/bin/python3 - "$tmp/three.h5" <<'PY' || exit 1
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    ranks = f["units/rank"][()]
    print("# units per rank over the 3 hosts:", {int(r): int((ranks == r).sum()) for r in sorted(set(ranks))})
    assert f.attrs["n_ranks"] == 3 and len(set(ranks)) >= 2
PY
# the daemons really were started in the other hosts' namespaces
for h in "${hosts[1]}" "${hosts[2]}"; do
  grep -q "^host $h -> namespace" "$tmp/agent.log" || { echo "no daemon started on $h"; cat "$tmp/agent.log"; exit 1; }
done
echo "# agent: $(wc -l < "$tmp/agent.log") daemon launches ($(cut -d: -f1 "$tmp/agent.log" | sort -u | tr '\n' ';'))"
/usr/bin/python3 "$src/tests/mpi/compare_results.py" "$tmp/one.h5" "$tmp/three.h5" || exit 1
echo "multihost test passed"
