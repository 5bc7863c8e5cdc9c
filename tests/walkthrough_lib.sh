# Shared by the user guide's walkthrough tests (sourced): a temporary
# directory with ensfold, ensfold-convert and ensfold-plot on PATH, and the
# guide's fenced bash block after a marker, run as written in a clean
# environment (env -i: no Open MPI variables, as for a user who just opened
# a terminal, root included; only PATH, HOME and OPENBLAS_* pass).
exe=${ENSFOLD_EXE:?}
src=${ENSFOLD_SOURCE_ROOT:?}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/bin"
ln -s "$exe" "$tmp/bin/ensfold"
ln -s "$src/tools/ensfold-convert" "$tmp/bin/ensfold-convert"
ln -s "$src/tools/ensfold-plot" "$tmp/bin/ensfold-plot"
export PATH="$tmp/bin:$PATH"
cd "$tmp"

# run_walkthrough MARKER LOG: the block after <!-- MARKER ... --> into LOG
# (stdout and stderr); fails with the log shown.
run_walkthrough() {
  awk -v m="$1" '$0 ~ m {found=1; next} found && /^```bash/ {inblock=1; next}
       inblock && /^```/ {exit} inblock {print}' "$src/docs/user-guide.md" > walkthrough.sh
  [ "$(wc -l < walkthrough.sh)" -gt 10 ] || { echo "walkthrough block $1 not found"; return 1; }
  local blas
  mapfile -t blas < <(env | grep '^OPENBLAS_' || true)
  env -i HOME="$tmp" PATH="$tmp/bin:/usr/local/bin:/usr/bin:/bin" "${blas[@]}" \
    bash -euo pipefail walkthrough.sh > "$2" 2>&1 || { cat "$2"; return 1; }
}
