#!/usr/bin/env bash
# No Docker engine runs where the tests do, so the Dockerfile is checked as text:
#  - every COPY source from the build context and every script it runs exists;
#  - what the build stage copies out of the build tree exists after a build;
#  - scripts/bundle_libs.sh, which gives both images their libraries, bundles the whole closure:
#    with only the bundle on the library path, every library the binaries load comes from the
#    bundle or from the toolchain runtime every base image has (BLAS included, which LibTorch
#    finds through Debian's alternatives); and its prune step drops what the image already has
#    and keeps what it lacks.
# tests/deploy/image_test.sh builds and runs the CPU image where podman can.
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
# Every RUN instruction is valid /bin/sh (what Docker runs them with).
runs=$(awk '/^RUN / {on=1; sub(/^RUN /, "")} on {print; if ($0 !~ /\\$/) {on=0; print "#--"}}' Dockerfile)
[ -n "$runs" ] || fail "no RUN instructions found"
while IFS= read -r -d $'\x1e' cmd; do
  [ -z "${cmd//[[:space:]]/}" ] && continue
  sh -n -c "$cmd" 2>/dev/null || fail "RUN is not valid sh: $cmd"
done < <(sed 's/^#--$/\x1e/' <<< "$runs" | tr -d '\r'; printf '\x1e')
# Each variant is a stage of its own that --target names (no FROM with a variable stage name,
# which buildah does not resolve), the CPU image last so that it is the default target, and the
# two images end alike: the same user, files, ports and entry point.
for stage in build-cpu build-cuda cuda cpu; do
  grep -qE "^FROM [^ ]+ AS $stage\$" Dockerfile || fail "no $stage stage"
done
[ "$(grep -E '^FROM ' Dockerfile | tail -1 | awk '{print $NF}')" = cpu ] ||
  fail "the last stage (the default target) is not cpu"
grep -E '^FROM ' Dockerfile | grep -vE '^FROM \$\{[A-Z_]*IMAGE\} AS ' | grep -F '$' >/dev/null &&
  fail "a FROM names a stage through a variable"
tail_of() {  # the image stage's lines from its useradd on, with the build stage's name removed
  awk -v s="$1" '$1 == "FROM" {on = ($NF == s)} on' Dockerfile |
    sed -n '/useradd/,$p' | grep -vE '^(CMD|#)' | sed 's/--from=build-[a-z]*//; s/^ *&& *//'
}
[ "$(tail_of cuda)" = "$(tail_of cpu)" ] || fail "the cuda and cpu images end differently"

# Build-tree paths the build stage copies (relative to build/), in scripts/docker_build.sh.
for path in server/mswa-server client/mswa-client model/mswa-model model/mswa-train lib/libmswa_spm.so; do
  grep -q "$path" scripts/docker_build.sh || fail "scripts/docker_build.sh no longer copies $path (update this check)"
  [ -e "$BUILD/$path" ] || fail "the build produces no $path"
done

# The images' bundle, collected from this build.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
files=()
for b in server/mswa-server client/mswa-client model/mswa-model model/mswa-train lib/libmswa_spm.so; do
  files+=("$BUILD/$b")
done
bash scripts/bundle_libs.sh collect "$tmp/deps" "${files[@]}"
[ -e "$tmp/deps/libgrpc++.so.1.51" ] || fail "bundle_libs.sh collected no libgrpc++ (got: $(ls "$tmp/deps"))"
[ -e "$tmp/deps/libsentencepiece.so.0" ] || fail "bundle_libs.sh missed libmswa_spm.so's libsentencepiece"
# LibTorch's BLAS is Debian's alternative: the bundle must hold the OpenBLAS (OpenMP) behind it,
# not the reference BLAS (~25x slower matrix products).
blas=$(readlink -f "$(ldconfig -p | awk '$1 == "libblas.so.3" {print $NF; exit}')")
[[ "$blas" == *openblas* ]] || fail "this machine's libblas.so.3 is not OpenBLAS ($blas): install libopenblas0-openmp"
cmp -s "$blas" "$tmp/deps/libblas.so.3" || fail "the bundled libblas.so.3 is not $blas"
for base in libc.so.6 libstdc++.so.6 libgcc_s.so.1; do
  [ ! -e "$tmp/deps/$base" ] || fail "bundle_libs.sh bundled the toolchain runtime $base"
done
outside=$(LD_LIBRARY_PATH="$tmp/deps" ldd "${files[@]}" | awk '$2 == "=>" {print $1, $3}' |
  grep -vE "^(ld-linux[^ ]*|libc|libm|libdl|libpthread|librt|libutil|libresolv|libstdc\+\+|libgcc_s)\.so" |
  awk -v d="$tmp/deps/" 'index($2, d) != 1' | sort -u || true)
[ -z "$outside" ] || fail "libraries loaded from outside the bundle: $outside"
cp "$tmp/deps/libgrpc++.so.1.51" "$tmp/deps/libmswa-not-on-this-system.so.7"
bash scripts/bundle_libs.sh prune "$tmp/deps"
[ ! -e "$tmp/deps/libgrpc++.so.1.51" ] || fail "prune kept a library the system has"
[ -e "$tmp/deps/libmswa-not-on-this-system.so.7" ] || fail "prune removed a library the system lacks"
if bash scripts/bundle_libs.sh collect "$tmp/x" 2>/dev/null; then fail "bundle_libs.sh collect without files succeeded"; fi
grep -q 'bundle_libs.sh" collect /out/deps' scripts/docker_build.sh || fail "scripts/docker_build.sh no longer bundles /out/deps"
grep -q 'strip --strip-unneeded /out/bin' scripts/docker_build.sh || fail "scripts/docker_build.sh no longer strips the binaries"
for stage in cuda cpu; do
  awk -v s="$stage" '$1 == "FROM" {on = ($NF == s)} on' Dockerfile |
    grep -q 'bundle_libs.sh prune /usr/local/lib/mswa-deps' || fail "the $stage stage no longer prunes its bundle"
done
echo "Dockerfile: ok"
