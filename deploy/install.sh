#!/usr/bin/env bash
# Install the agent on a gateway: a venv under /opt/energy-agent, the device profile library, the site file under
# /etc/energy-agent, and the hardened systemd unit (DynamicUser, StateDirectory=/var/lib/energy-agent).
#
#   sudo deploy/install.sh [--site SITE.yaml] [--bundle FILE] [--root DIR] [--no-start]
#
# --site FILE    the gateway's site file, validated by the newly installed agent before it is copied: a refused
#                site (exit 78) leaves the installed site file, the unit and a running service as they were (the
#                venv is already the new one). Without it an example is copied (or, on an upgrade, the installed
#                one is kept) and a new install is not started.
# --bundle FILE  install from an offline bundle made by deploy/bundle.sh on a connected machine: nothing is
#                downloaded (checksums are verified first: FILE.sha256 beside it when present, and the bundle's own).
# --root DIR     install below DIR instead of / (packaging and tests); implies --no-start.
# --no-start     install, but do not enable and (re)start the service.
# -h, --help     print this text.
#
# `energy-agent` and `energy-center` are linked into /usr/local/bin. Running install.sh again upgrades in place:
# the venv, profile library and schemas are replaced; /etc/energy-agent (site file, credentials), the spool and
# the KPI state in /var/lib/energy-agent are kept, and a running service is restarted. deploy/uninstall.sh
# removes the agent (keeping config and spool unless --purge).
#
# Serial ports named in the site file's buses are granted with a drop-in (DeviceAllow, SupplementaryGroups=dialout).
# Each file in /etc/energy-agent/credentials/ (mode 0700, root only) is passed to the service as a systemd
# credential of the same name: the site file names it /run/credentials/energy-agent.service/NAME (e.g.
# mqtt.password_file: .../mqtt-password, an OPC UA device's auth.password_file: .../opcua-kiln1-password).
# The installed `energy-agent` finds the profile library in /opt/energy-agent/device_profiles by itself (beside
# its venv), so `energy-agent validate|plan|probe /etc/energy-agent/site.yaml` work as they do in the repository.
# JSON Schemas for editors go to /opt/energy-agent/schemas: a site file whose first line is
# `# yaml-language-server: $schema=/opt/energy-agent/schemas/site.schema.json` gets completion and checks.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }
# An option's value: present, and not the next option (`--site --no-start` is a missing value, not a file).
value() {
  if [ -z "${2-}" ] || [ "${2#-}" != "$2" ]; then
    echo "install.sh: $1 needs a value (see install.sh --help)" >&2; exit 2
  fi
}
root=""; site=""; start=1; bundle=""
while [ $# -gt 0 ]; do
  case "$1" in
    --site) value "$1" "${2-}"; site="$(realpath "$2")"; shift 2 ;;
    --bundle) value "$1" "${2-}"; bundle="$(realpath "$2")"; shift 2 ;;
    --root) value "$1" "${2-}"; root="$(realpath -m "$2")"; start=0; shift 2 ;;
    --no-start) start=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see install.sh --help)" >&2; exit 2 ;;
  esac
done
[ -z "$site" ] || [ -f "$site" ] || { echo "install.sh: no site file $site" >&2; exit 2; }
[ -n "$root" ] || [ "$(id -u)" -eq 0 ] || { echo "install.sh: run as root (or give --root DIR)" >&2; exit 1; }

if [ -n "$bundle" ]; then
  [ -f "$bundle" ] || { echo "install.sh: no bundle $bundle" >&2; exit 2; }
  if [ -f "$bundle.sha256" ]; then
    (cd "$(dirname "$bundle")" && sha256sum --quiet -c "$(basename "$bundle").sha256") \
      || { echo "install.sh: $bundle does not match $bundle.sha256 (copied incompletely?)" >&2; exit 1; }
  fi
  unpacked="$(mktemp -d)"
  trap 'rm -rf "$unpacked"' EXIT
  tar -C "$unpacked" -xzf "$bundle" || { echo "install.sh: cannot unpack $bundle" >&2; exit 1; }
  here="$unpacked/energy-agent-bundle"
  (cd "$here" && sha256sum --quiet -c SHA256SUMS) || { echo "install.sh: $bundle is damaged (SHA256SUMS)" >&2; exit 1; }
  want="$(cat "$here/PYTHON")"
  have="$(python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
  [ "$want" = "$have" ] || {
    echo "install.sh: the bundle is for Python $want, this machine has $have: build it with bundle.sh --python-version $have" >&2
    exit 1
  }
fi

opt="$root/opt/energy-agent"; etc="$root/etc/energy-agent"; units="$root/etc/systemd/system"
mkdir -p "$opt" "$etc/credentials" "$units/energy-agent.service.d"
chmod 0750 "$etc"; chmod 0700 "$etc/credentials"

echo "installing the agent into $opt/venv"
[ -x "$opt/venv/bin/python" ] || python3 -m venv "$opt/venv"
if [ -n "$bundle" ]; then
  wheel="$(ls "$here"/wheels/plant_energy_agent-*.whl)"
  PIP_NO_INDEX=1 "$opt/venv/bin/python" -m pip install -q --no-index --find-links "$here/wheels" --upgrade "$wheel"
  # the same version number may carry newer code (an upgrade between releases): replace the agent itself
  PIP_NO_INDEX=1 "$opt/venv/bin/python" -m pip install -q --no-index --no-deps --force-reinstall "$wheel"
else
  "$opt/venv/bin/python" -m pip install -q --upgrade pip >/dev/null
  "$opt/venv/bin/python" -m pip install -q "$here"
fi
# On PATH for operators (sudo's secure_path and login shells include /usr/local/bin).
mkdir -p "$root/usr/local/bin"
for cmd in energy-agent energy-center; do
  link="$root/usr/local/bin/$cmd"
  if [ -e "$link" ] && [ ! -L "$link" ]; then
    echo "install.sh: $link exists and is not our link; left as it is" >&2
  else
    ln -sfn "/opt/energy-agent/venv/bin/$cmd" "$link"
  fi
done
rm -rf "$opt/device_profiles"; cp -r "$here/device_profiles" "$opt/device_profiles"
"$opt/venv/bin/energy-agent" schema --out "$opt/schemas"   # for editors: energy-agent schema --path
cp "$here/README.md" "$opt/README.md"

if [ -n "$site" ]; then
  "$opt/venv/bin/energy-agent" validate --quiet "$site"
  install -m 0640 "$site" "$etc/site.yaml"
elif [ ! -f "$etc/site.yaml" ]; then
  install -m 0640 "$here/deploy/site.example.yaml" "$etc/site.yaml"
  start=0
  echo "no --site given: installed an example at $etc/site.yaml; edit it, then: systemctl enable --now energy-agent"
fi

install -m 0644 "$here/deploy/systemd/energy-agent.service" "$units/energy-agent.service"
# Serial ports: DevicePolicy=closed in the unit; grant exactly the configured ports.
ports="$("$opt/venv/bin/python" - "$etc/site.yaml" <<'PY'
import sys
from pathlib import Path
from agent.config.load import load_site
from agent.config.site import SerialBusConfig
loaded = load_site(Path(sys.argv[1]))
print(" ".join(b.port for b in loaded.site.buses if isinstance(b, SerialBusConfig)))
PY
)"
dropin="$units/energy-agent.service.d/serial.conf"
if [ -n "$ports" ]; then
  {
    echo "# Written by install.sh from the site file's serial buses."
    echo "[Service]"
    echo "SupplementaryGroups=dialout"
    # The serial device's group (dialout) must stay effective, which a private user namespace would hide.
    echo "PrivateUsers=no"
    for p in $ports; do echo "DeviceAllow=$p rw"; done
  } > "$dropin"
else
  rm -f "$dropin"
fi
cred="$units/energy-agent.service.d/credentials.conf"
creds="$(find "$etc/credentials" -mindepth 1 -maxdepth 1 -type f -printf '%f\n' | LC_ALL=C sort)"
if [ -n "$creds" ]; then
  {
    echo "# Written by install.sh: one credential per file in /etc/energy-agent/credentials/."
    echo "[Service]"
    while IFS= read -r name; do echo "LoadCredential=$name:/etc/energy-agent/credentials/$name"; done <<<"$creds"
  } > "$cred"
else
  rm -f "$cred"
fi

if [ -z "$root" ] && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  if [ "$start" -eq 1 ]; then systemctl enable energy-agent.service; systemctl restart energy-agent.service; fi
  systemd-analyze security energy-agent.service --no-pager | tail -1 || true
fi
echo "installed"
