#!/usr/bin/env bash
# No Docker engine runs where the tests do, so the Dockerfile is checked as text:
#  - every COPY source from the build context and every script it runs exists;
#  - what the build stage copies out of the build tree exists after a build;
#  - deploy/docker/runtime-packages.txt is exactly the set of Debian packages providing the
#    libraries the shipped binaries link directly (readelf NEEDED), plus the documented
#    non-linked extras.
# Usage: check_dockerfile.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
SRC=$1 BUILD=$2
cd "$SRC"
fail() { echo "FAIL (Dockerfile): $*"; exit 1; }

# COPY sources from the context (not --from=build).
grep -E '^COPY ' Dockerfile | grep -v -- '--from=' | while read -r _ src _; do
  [ -e "$src" ] || fail "COPY source $src does not exist"
done
for script in $(grep -oE 'scripts/[a-z_]+\.sh' Dockerfile | sort -u); do
  [ -f "$script" ] || fail "$script does not exist"
done
# Build-tree paths the build stage copies (relative to build/).
for path in server/mswa-server client/mswa-client model/mswa-model model/mswa-train lib/libmswa_spm.so; do
  grep -q "$path" Dockerfile || fail "Dockerfile no longer copies $path (update this check)"
  [ -e "$BUILD/$path" ] || fail "the build produces no $path"
done

# The packages of directly linked libraries.
needed=$(for b in server/mswa-server client/mswa-client model/mswa-model model/mswa-train lib/libmswa_spm.so; do
  readelf -d "$BUILD/$b" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'
done | sort -u | while read -r lib; do
  path=$(ldconfig -p | awk -v l="$lib" '$1 == l {print $NF; exit}')
  [ -n "$path" ] || { echo "MISSING:$lib"; continue; }
  dpkg -S "$(readlink -f "$path")" 2>/dev/null | head -1 | cut -d: -f1
done | sort -u)
grep -q MISSING <<< "$needed" && fail "libraries not found: $(grep MISSING <<< "$needed")"
# libc6 and libgcc-s1 are in every Debian image (essential); the list names the rest.
needed=$(grep -vxE 'libc6|libgcc-s1' <<< "$needed")
listed=$(grep -vE '^\s*(#|$)' deploy/docker/runtime-packages.txt | sort -u)
extras="libopenblas0-openmp"
missing=$(comm -23 <(echo "$needed") <(echo "$listed"))
[ -z "$missing" ] || fail "runtime-packages.txt lacks: $missing"
unused=$(comm -13 <(echo "$needed") <(echo "$listed") | grep -vxF "$extras" || true)
[ -z "$unused" ] || fail "runtime-packages.txt lists packages no binary links: $unused"
echo "Dockerfile: ok"
