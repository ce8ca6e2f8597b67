#!/usr/bin/env bash
# Shared libraries for an image whose base is not the build machine's distribution (the CUDA image
# runs on NVIDIA's CUDA runtime image, which is Ubuntu; the binaries are built on Debian 12).
#
#   scripts/bundle_libs.sh collect DEST FILE...   copy into DEST every library the FILEs load
#                                                 (ldd's closure), except the C/C++ runtime the
#                                                 base image provides in a newer, compatible
#                                                 version, the GPU driver, and libraries under
#                                                 SKIP_PREFIX (default /opt/torch, copied whole
#                                                 with its relative RPATHs)
#   scripts/bundle_libs.sh prune DIR              in the runtime image: delete from DIR what the
#                                                 image's own loader already finds by soname, so
#                                                 the base's (newer) copies win and only what it
#                                                 lacks (gRPC, protobuf, Abseil, ...) is used
#
# Binaries built against glibc 2.36 and GCC 12's libstdc++ run on newer ones; the reverse does
# not hold, so the base image must be at least as new as Debian 12 (Ubuntu 24.04 is).
set -euo pipefail

# The toolchain's runtime: glibc, the dynamic loader, libstdc++, libgcc_s; and the driver's
# libraries, which the NVIDIA container toolkit mounts from the host.
BASE_RE='^(ld-linux[^ ]*|linux-vdso[^ ]*|libc|libm|libdl|libpthread|librt|libutil|libresolv|libstdc\+\+|libgcc_s|libcuda|libnvidia-[^ ]*)\.so'

case "${1:-}" in
  collect)
    dest=${2:?usage: bundle_libs.sh collect DEST FILE...}
    shift 2
    [ $# -gt 0 ] || { echo "bundle_libs.sh collect: no files" >&2; exit 2; }
    skip=${SKIP_PREFIX:-/opt/torch}
    mkdir -p "$dest"
    missing=$(ldd "$@" | awk '/=> not found/ {print $1}' | grep -vE "$BASE_RE" | sort -u || true)
    [ -z "$missing" ] || { echo "bundle_libs.sh: unresolved libraries: $missing" >&2; exit 1; }
    ldd "$@" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' | sort -u |
      while read -r soname path; do
        if grep -qE "$BASE_RE" <<< "$soname" || [[ "$path" == "$skip"/* ]]; then continue; fi
        cp -L "$path" "$dest/$soname"
      done
    ;;
  prune)
    dir=${2:?usage: bundle_libs.sh prune DIR}
    known=$(ldconfig -p | awk 'NR > 1 {print $1}' | sort -u)
    for lib in "$dir"/*; do
      [ -e "$lib" ] || continue
      if grep -qxF "$(basename "$lib")" <<< "$known"; then rm -f "$lib"; fi
    done
    ;;
  *)
    echo "usage: bundle_libs.sh collect DEST FILE... | prune DIR" >&2
    exit 2
    ;;
esac
