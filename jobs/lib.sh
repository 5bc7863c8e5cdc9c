# Sourced by jobs/demo.sh and jobs/local.sh. (jobs/slurm/campaign.sbatch and
# jobs/pbs/campaign.pbs keep their own copy of the same check: a scheduler
# runs a copy of the script, away from this directory.)

# mpirun_explained WHO N HINT CMD...: run CMD (an mpirun of N ranks), its
# stderr shown as it comes. Open MPI exits 1 when it cannot start the ranks
# ("not enough slots"), the code ensfold uses for "some units failed": then
# say so, with HINT, set mpirun_slot_error=1 and return 3. Otherwise return
# CMD's code.
mpirun_explained() {
  local who=$1 n=$2 hint=$3 rc=0 errlog
  shift 3
  mpirun_slot_error=0
  errlog=$(mktemp "${TMPDIR:-/tmp}/ensfold-mpirun-XXXXXX")
  "$@" 2> >(tee -a "$errlog" >&2) || rc=$?
  if [ "$rc" -ne 0 ]; then
    # tee may still be writing: give it a moment
    for _ in 1 2 3 4 5; do grep -q "not enough slots" "$errlog" && break; sleep 0.2; done
    if grep -q "not enough slots" "$errlog"; then
      echo "$who: mpirun could not start $n ranks: Open MPI counts fewer slots here" \
           "(physical cores, or a hostfile) than $n; $hint. No unit ran: exit 3, not 1" >&2
      rc=3
      mpirun_slot_error=1
    fi
  fi
  rm -f "$errlog"
  return "$rc"
}
