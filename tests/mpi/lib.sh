# Shared by the MPI test scripts (sourced): Open MPI as root with more ranks
# than cores, and reading a campaign's progress.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1

# Units in the journal of result file $1, as `ensfold status` reports them
# (empty when there is no journal yet). Needs $exe.
done_units() {
  { "$exe" status "$1" 2>/dev/null || true; } | sed -n 's/^[^:]*: \([0-9]*\) of .*/\1/p'
}
