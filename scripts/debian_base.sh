#!/usr/bin/env bash
# A Debian 12 (bookworm) base image for podman where no registry is reachable: debootstrap's
# minbase variant, packed and imported. The packed root is cached for a week under
# MSWA_CACHE_DIR (default ~/.cache/mswa-serve), and debootstrap keeps its downloads in the apt
# archive, so a later run imports in seconds. Nothing is done when podman already has the image.
#   scripts/debian_base.sh [NAME]      (default localhost/debian:bookworm-slim; needs root)
set -euo pipefail
name=${1:-localhost/debian:bookworm-slim}
if podman image exists "$name"; then exit 0; fi
cache=${MSWA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mswa-serve}
tarball=$cache/debian-bookworm-minbase.tar
mkdir -p "$cache"
if [ ! -s "$tarball" ] || [ -n "$(find "$tarball" -mtime +7)" ]; then
  root=$(mktemp -d)
  trap 'rm -rf "$root"' EXIT
  # The mirror the machine's own apt uses (the same packages, perhaps a local mirror).
  mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  debootstrap --variant=minbase --cache-dir=/var/cache/apt/archives bookworm "$root" \
    "${mirror:-http://deb.debian.org/debian}" > "$cache/debootstrap.log" 2>&1 ||
    { tail -n 20 "$cache/debootstrap.log"; echo "debian_base.sh: debootstrap failed" >&2; exit 1; }
  # As Debian's own images: no package lists or downloaded packages inside.
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb
  tar -C "$root" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
fi
podman import --quiet --change 'CMD ["bash"]' "$tarball" "$name" > /dev/null
