#!/usr/bin/env bash
# The images' base, made from Debian's packages because no image registry is reachable here: debootstrap (the
# machine's own Debian release and mirror) a minimal root with Python 3 and venv, and import it into the engine.
# The machine's own certificate authorities go in too. Usage: sudo bash scripts/base_image.sh [TAG]   (default coalesce-base:<release>; kept when it already exists)
set -euo pipefail
release=$(. /etc/os-release && echo "$VERSION_CODENAME")
tag=${1:-coalesce-base:$release}
if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "$tag: already there"
  exit 0
fi
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
[ -n "$mirror" ] || mirror=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list)
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates "$release" "$root" "$mirror" >/dev/null
# the machine's own certificate authorities (a machine behind a TLS-inspecting proxy installs packages through it)
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
  chroot "$root" update-ca-certificates >/dev/null
fi
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb
tar -C "$root" -c . | docker import --change 'CMD ["/bin/bash"]' - "$tag" >/dev/null
echo "$tag: $(docker image inspect --format '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1 / 1e6}')"
