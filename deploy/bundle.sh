#!/usr/bin/env bash
# Build an offline install bundle on a machine with internet access, for gateways without it:
#
#   deploy/bundle.sh [--out FILE] [--python-version X.Y --platform TAG ...]
#
# The bundle (a .tar.gz) holds every wheel the agent needs (the agent's own wheel and all its dependencies), the
# device profile library, the JSON Schemas, the systemd units, install.sh/uninstall.sh, the example site file and
# the README, with SHA256SUMS inside; FILE.sha256 is written beside it. On the gateway:
#
#   sha256sum -c energy-agent-bundle.tar.gz.sha256      # optional: install.sh checks it too
#   sudo deploy/install.sh --bundle energy-agent-bundle.tar.gz --site site.yaml
#
# (install.sh from a checkout of the same version, or the copy inside the bundle: tar xzf FILE, then
# energy-agent-bundle/deploy/install.sh --bundle FILE). Nothing is downloaded during that install.
#
# --out FILE            where to write the bundle (default: energy-agent-<version>-py<X.Y>-<arch>.tar.gz here).
# --python-version X.Y  build for another Python than this one (with --platform; binary wheels only).
# --platform TAG        a pip platform tag of the gateway, e.g. manylinux2014_aarch64 (repeatable).
# -h, --help            print this text.
#
# Without --python-version/--platform the bundle is for this machine's Python and architecture: build it on a
# machine like the gateway (same Debian release and arch), or name the gateway's in both options.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }
value() {
  if [ -z "${2-}" ] || [ "${2#-}" != "$2" ]; then
    echo "bundle.sh: $1 needs a value (see bundle.sh --help)" >&2; exit 2
  fi
}
out=""; pyver=""; platforms=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out) value "$1" "${2-}"; out="$(realpath -m "$2")"; shift 2 ;;
    --python-version) value "$1" "${2-}"; pyver="$2"; shift 2 ;;
    --platform) value "$1" "${2-}"; platforms+=("$2"); shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bundle.sh: unknown option $1 (see bundle.sh --help)" >&2; exit 2 ;;
  esac
done
if { [ -n "$pyver" ] && [ ${#platforms[@]} -eq 0 ]; } || { [ -z "$pyver" ] && [ ${#platforms[@]} -gt 0 ]; }; then
  echo "bundle.sh: give --python-version and --platform together" >&2; exit 2
fi

python="${PYTHON:-python3}"
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$here/pyproject.toml" | head -1)"
target_py="${pyver:-$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')}"
arch="${platforms[0]:-$(uname -m)}"
[ -n "$out" ] || out="$PWD/energy-agent-$version-py$target_py-$arch.tar.gz"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
top="$work/energy-agent-bundle"
mkdir -p "$top/wheels" "$top/deploy"
tools="$work/tools"
"$python" -m venv "$tools"
"$tools/bin/python" -m pip install -q --no-compile --upgrade pip wheel setuptools >/dev/null  # a throw-away venv: no bytecode

echo "building the agent's wheel and collecting its dependencies for Python $target_py ($arch)"
"$tools/bin/python" -m pip wheel -q --no-deps -w "$top/wheels" "$here"
agent_wheel="$(ls "$top/wheels"/plant_energy_agent-*.whl)"
if [ -n "$pyver" ]; then
  plat_args=(); for p in "${platforms[@]}"; do plat_args+=(--platform "$p"); done
  "$tools/bin/python" -m pip download -q --only-binary=:all: --python-version "$pyver" "${plat_args[@]}" \
    -d "$top/wheels" "$agent_wheel"
  "$tools/bin/python" -m pip download -q --only-binary=:all: --python-version "$pyver" "${plat_args[@]}" \
    -d "$top/wheels" pip setuptools wheel
else
  # pip wheel builds a wheel for any dependency published only as source, so the gateway needs no compiler.
  "$tools/bin/python" -m pip wheel -q -w "$top/wheels" "$agent_wheel" pip setuptools wheel
fi

cp -r "$here/device_profiles" "$top/device_profiles"
cp -r "$here/deploy/systemd" "$here/deploy/center" "$top/deploy/"
cp "$here/deploy/install.sh" "$here/deploy/uninstall.sh" "$here/deploy/site.example.yaml" "$top/deploy/"
cp "$here/README.md" "$top/README.md"
mkdir -p "$top/schemas"
cp "$here/agent/data/"*.schema.json "$top/schemas/"
printf '%s\n' "$version" > "$top/VERSION"
printf '%s\n' "$target_py" > "$top/PYTHON"
(cd "$top" && find . -type f ! -name SHA256SUMS -printf '%P\n' | LC_ALL=C sort | xargs -d '\n' sha256sum > SHA256SUMS)

mkdir -p "$(dirname "$out")"
tar -C "$work" -czf "$out" energy-agent-bundle
(cd "$(dirname "$out")" && sha256sum "$(basename "$out")" > "$(basename "$out").sha256")
echo "wrote $out ($(ls "$top/wheels" | wc -l) wheels) and $out.sha256"
