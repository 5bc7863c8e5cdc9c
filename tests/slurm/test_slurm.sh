#!/usr/bin/env bash
# Start a real single-node Slurm (munge, slurmctld and slurmd on this host,
# private config, ports and spool in a temp dir), submit
# jobs/slurm/campaign.sbatch with sbatch, wait for it, check the result.
# Skips (exit 77), saying why, only when Slurm cannot be started here.
set -uo pipefail
exe=${ENSFOLD_EXE:?}
src=${ENSFOLD_SOURCE_ROOT:?}
skip() { echo "SKIP: $*"; exit 77; }
for b in slurmctld slurmd sbatch squeue sacct scontrol munged; do
  command -v "$b" >/dev/null || skip "$b not installed (Debian: slurm-wlm, munge)"
done
[ "$(id -u)" -eq 0 ] || skip "starting slurmd needs root"
tmp=$(mktemp -d /tmp/ef-slurm-XXXXXX)
chmod 755 "$tmp"
host=$(hostname -s)
cpus=$(nproc)
mem=$(awk '/MemTotal/ {print int($2 / 1024 / 2)}' /proc/meminfo)
mkdir -p "$tmp"/{state,spool,log,munge}
pids=()
cleanup() {
  [ -n "${SLURM_CONF:-}" ] && scontrol shutdown >/dev/null 2>&1
  sleep 1
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  [ -f "$tmp/munge/munged.pid" ] && kill "$(cat "$tmp/munge/munged.pid")" 2>/dev/null
  if [ "${keep:-0}" = 1 ]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

# munge with a private socket and key
dd if=/dev/urandom of="$tmp/munge/munge.key" bs=1024 count=1 2>/dev/null
chmod 400 "$tmp/munge/munge.key"
munged --force --key-file="$tmp/munge/munge.key" --socket="$tmp/munge/socket" \
       --pid-file="$tmp/munge/munged.pid" --log-file="$tmp/munge/munged.log" \
       --seed-file="$tmp/munge/seed" || skip "munged does not start: $(tail -2 "$tmp/munge/munged.log" 2>/dev/null)"

port=$((20000 + RANDOM % 20000))
cat > "$tmp/slurm.conf" <<CONF
ClusterName=ensfoldtest
SlurmctldHost=$host
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$tmp/munge/socket,cred_expire=10
CredType=cred/munge
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool
SlurmctldPidFile=$tmp/slurmctld.pid
SlurmdPidFile=$tmp/slurmd.pid
SlurmctldLogFile=$tmp/log/slurmctld.log
SlurmdLogFile=$tmp/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
SlurmdTimeout=60
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$tmp/slurm.conf
slurmctld -f "$SLURM_CONF" -i || skip "slurmctld does not start: $(tail -3 "$tmp/log/slurmctld.log" 2>/dev/null)"
slurmd -f "$SLURM_CONF" || skip "slurmd does not start: $(tail -3 "$tmp/log/slurmd.log" 2>/dev/null)"
up=0
for _ in $(seq 1 60); do
  state=$(sinfo -h -N -o %t 2>/dev/null | head -1)
  case "$state" in idle*|mix*|alloc*) up=1; break ;; esac
  sleep 0.5
done
[ $up = 1 ] || skip "the Slurm node did not come up (state '$state'): $(tail -3 "$tmp/log/slurmd.log")"
echo "# slurm up: $(sinfo -h -o '%P %D %C %t')"

# the job: the small MPI test campaign, submitted as a user would
cp "$src/tests/mpi/small.yaml" "$tmp/campaign.yaml"
cd "$tmp"
export ENSFOLD=$exe OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
job=$(sbatch --parsable --export=ALL --chdir="$tmp" --nodes=1 --ntasks-per-node="$cpus" \
        "$src/jobs/slurm/campaign.sbatch" "$tmp/campaign.yaml" "$tmp/result.h5") || {
  keep=1; echo "sbatch failed"; exit 1; }
echo "# submitted job $job"
for _ in $(seq 1 240); do
  st=$(squeue -h -j "$job" -o %T 2>/dev/null)
  [ -z "$st" ] && break
  sleep 1
done
[ -z "$st" ] || { keep=1; echo "job $job still $st after 240 s"; exit 1; }
echo "# job log:"; sed 's/^/#   /' "$tmp"/ensfold-"$job".log
grep -q "finished with exit code 0" "$tmp"/ensfold-"$job".log || { keep=1; echo "job failed"; exit 1; }
[ -f "$tmp/result.h5" ] || { keep=1; echo "no result file"; exit 1; }
"$exe" summary "$tmp/result.h5" || { keep=1; exit 1; }
# a requeued job resumes: submitting again finds the result complete
job2=$(sbatch --parsable --export=ALL --chdir="$tmp" "$src/jobs/slurm/campaign.sbatch" \
         "$tmp/campaign.yaml" "$tmp/result.h5")
for _ in $(seq 1 120); do [ -z "$(squeue -h -j "$job2" -o %T 2>/dev/null)" ] && break; sleep 1; done
grep -q "nothing to resume" "$tmp"/ensfold-"$job2".log || { keep=1; echo "second job did not resume"; cat "$tmp"/ensfold-"$job2".log; exit 1; }
# requeue in the middle of a campaign: the job is killed, runs again and
# resumes from its journal; the result equals an uninterrupted run
cp "$src/tests/mpi/small.yaml" "$tmp/long.yaml"
printf 'campaign: {methods: [ibu], fill_models: [PS, M2], replicas: 40}\n' >> "$tmp/long.yaml"
sed -i '/^campaign:$/,/^  replicas: 6$/d' "$tmp/long.yaml"
export ENSFOLD_TEST_UNIT_DELAY_MS=100
job3=$(sbatch --parsable --export=ALL --chdir="$tmp" "$src/jobs/slurm/campaign.sbatch" \
         "$tmp/long.yaml" "$tmp/long.h5")
for _ in $(seq 1 600); do
  d=$("$exe" status "$tmp/long.h5" 2>/dev/null | sed -n 's/^[^:]*: \([0-9]*\) of .*/\1/p')
  [ "${d:-0}" -ge 10 ] && break
  sleep 0.1
done
scontrol requeue "$job3" || { keep=1; echo "requeue failed"; exit 1; }
echo "# requeued job $job3 after $d units"
# a requeued job may start again once its old credential expired
# (cred_expire above: 10 s instead of the default 120 s)
echo "# after requeue: $(squeue -h -j "$job3" -o "%T %r %S")"
# wait for the second run of the job to finish (squeue alone can be empty
# for a moment while the job is requeued)
t0=$(date +%s)
until grep -q "restart 1" "$tmp"/ensfold-"$job3".log 2>/dev/null &&
      [ "$(grep -c "finished with exit code" "$tmp"/ensfold-"$job3".log)" -ge 1 ] &&
      [ -z "$(squeue -h -j "$job3" -o %T 2>/dev/null)" ]; do
  if [ $(( $(date +%s) - t0 )) -gt 400 ]; then keep=1; echo "requeued job $job3 did not finish"; exit 1; fi
  sleep 1
done
echo "# the requeued job restarted and finished $(( $(date +%s) - t0 )) s after the requeue"
echo "# requeued job log:"; sed 's/^/#   /' "$tmp"/ensfold-"$job3".log
grep -q "restart 1" "$tmp"/ensfold-"$job3".log || { keep=1; echo "the job did not restart"; exit 1; }
grep -Eq "resuming: [1-9][0-9]* of 82 units already done" "$tmp"/ensfold-"$job3".log || {
  keep=1; echo "the restarted job did not resume"; exit 1; }
unset ENSFOLD_TEST_UNIT_DELAY_MS
mpirun -n 2 "$exe" run "$tmp/long.yaml" -o "$tmp/long-ref.h5" --quiet
/usr/bin/python3 "$src/tests/mpi/compare_results.py" "$tmp/long-ref.h5" "$tmp/long.h5" || { keep=1; exit 1; }
echo "slurm test passed"
