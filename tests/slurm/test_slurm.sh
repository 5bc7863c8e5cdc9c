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
# stop(PIDFILE NAME): end the daemon of this pid file (if it is still NAME),
# TERM first, KILL after 5 s
stop() {
  local p n
  [ -f "$1" ] || return 0
  p=$(cat "$1" 2>/dev/null)
  [ -n "$p" ] && [ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$2" ] || return 0
  kill "$p" 2>/dev/null
  for n in $(seq 1 50); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null
}
# On every way out (success, failure, skip, meson's timeout: TERM): cancel
# this cluster's jobs, stop slurmd, slurmctld (also when slurmd never came
# up: scontrol shutdown alone left slurmctld running then) and munged.
cleanup() {
  trap - EXIT TERM INT HUP
  if [ -n "${SLURM_CONF:-}" ]; then
    jobs_left=$(timeout 5 squeue -h -o %i 2>/dev/null)
    # shellcheck disable=SC2086
    [ -n "$jobs_left" ] && timeout 10 scancel --full $jobs_left 2>/dev/null
    timeout 10 scontrol shutdown >/dev/null 2>&1
  fi
  stop "$tmp/slurmd.pid" slurmd
  stop "$tmp/slurmctld.pid" slurmctld
  # what this cluster started and slurmd left behind (a slurmstepd whose
  # slurmd is gone waits for it for minutes, and its job's ranks): every
  # process that has this cluster's SLURM_CONF in its environment
  local p left=()
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    [ "$p" = $$ ] || [ "$p" = "$BASHPID" ] && continue
    tr '\0' '\n' 2>/dev/null < "/proc/$p/environ" | grep -qx "SLURM_CONF=$tmp/slurm.conf" && left+=("$p")
  done
  if ((${#left[@]})); then
    echo "# cleanup: ending ${#left[@]} leftover process(es) of this cluster: $(ps -o comm= -p "${left[*]// /,}" | tr '\n' ' ')"
    kill "${left[@]}" 2>/dev/null; sleep 1; kill -KILL "${left[@]}" 2>/dev/null
  fi
  stop "$tmp/munge/munged.pid" munged
  if [ "${keep:-0}" = 1 ]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 143' TERM INT HUP

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
grep -q "nothing to do" "$tmp"/ensfold-"$job2".log || { keep=1; echo "second job did not resume"; cat "$tmp"/ensfold-"$job2".log; exit 1; }
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

# The time limit. --time=2 with --signal=B:USR1@30: slurmctld checks limits
# every 30 s, so USR1 comes 60-90 s after the start. The script stops
# ensfold (SIGTERM), every finished unit is in the journal, the job requeues
# itself and the next start resumes; 82 units of 2.5 s on 2 ranks (~105 s)
# need a second allocation. Never TIMEOUT or FAILED, and the result equals
# the uninterrupted run above.
export ENSFOLD_TEST_UNIT_DELAY_MS=2500
t0=$(date +%s)
job4=$(sbatch --parsable --export=ALL --chdir="$tmp" --time=2 --signal=B:USR1@30 \
         "$src/jobs/slurm/campaign.sbatch" "$tmp/long.yaml" "$tmp/wall.h5")
log4=$tmp/ensfold-$job4.log
echo "# submitted job $job4 with --time=2 --signal=B:USR1@30"
until grep -q "finished with exit code" "$log4" 2>/dev/null &&
      [ -z "$(squeue -h -j "$job4" -o %T 2>/dev/null)" ]; do
  if [ $(( $(date +%s) - t0 )) -gt 420 ]; then keep=1; echo "job $job4 did not finish in 420 s"; cat "$log4"; exit 1; fi
  if grep -q "resume with:" "$log4" 2>/dev/null; then keep=1; echo "job $job4 was not requeued"; cat "$log4"; exit 1; fi
  sleep 1
done
unset ENSFOLD_TEST_UNIT_DELAY_MS
echo "# job $job4: done $(( $(date +%s) - t0 )) s after submission; its log:"
sed 's/^/#   /' "$log4"
stops=$(grep -c "stopped at the time limit" "$log4")
[ "$stops" -ge 1 ] || { keep=1; echo "job $job4 was never stopped at the time limit"; exit 1; }
grep -q "finished with exit code 0" "$log4" || { keep=1; echo "job $job4 did not finish with 0"; exit 1; }
# slurmstepd logs the requeue itself as "CANCELLED ... DUE TO JOB REQUEUE"
# (when it writes before the step ends): that one is the plan, any other
# cancellation is not
if grep -v "DUE TO JOB REQUEUE" "$log4" | grep -Eq "CANCELLED|DUE TO TIME LIMIT|finished with exit code [1-9]"; then
  keep=1; echo "job $job4 was killed or failed at its time limit"; exit 1
fi
# every unit that the stop reported in the journal is taken by the restart
saved=$(grep "stopped at the time limit" "$log4" | head -1 | sed -n 's/.*: \([0-9]*\) of 82 units done.*/\1/p')
resumed=$(grep "resuming:" "$log4" | head -1 | sed -n 's/.*resuming: \([0-9]*\) of 82.*/\1/p')
echo "# stopped $stops time(s); first stop: ${saved:-?} units in the journal, restart resumed ${resumed:-?}"
[ -n "$saved" ] && [ "$saved" -ge 1 ] && [ "$saved" = "$resumed" ] || {
  keep=1; echo "the restart did not resume every unit the stop had saved"; exit 1; }
/usr/bin/python3 "$src/tests/mpi/compare_results.py" "$tmp/long-ref.h5" "$tmp/wall.h5" || { keep=1; exit 1; }
echo "slurm test passed"
