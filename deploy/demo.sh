#!/usr/bin/env bash
# Run the demo on a fresh Debian/Ubuntu machine: the simulated cement plant, a broker, the agent computing and
# grading KPIs, InfluxDB with the centre ingestor, and a live terminal view. Ctrl-C stops everything.
# Installs what it needs when missing (Debian's mosquitto and influxdb, python3-venv), then the agent in .venv.
# Extra arguments go to `energy-agent demo` (e.g. --duration 120, --keep to keep the work folder and its data).
# Offline on a fresh clone: ENERGY_AGENT_BUNDLE=FILE (made by deploy/bundle.sh on a connected machine) installs
# .venv from the bundle's wheels, with no network.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
command -v influxd >/dev/null || missing+=(influxdb)
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
command -v mosquitto_sub >/dev/null || missing+=(mosquitto-clients)  # the screen's `watch it` command
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# pip only when .venv does not already hold this checkout with every dependency (offline, pip would retry for a
# minute before the demo shows anything).
# the embedded broker (amqtt, the demo extra): only where there is no mosquitto, or when asked for
embedded=0
{ command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ]; } || embedded=1
case " $* " in *" --broker embedded "*|*" --broker=embedded "*) embedded=1 ;; esac
satisfied() {
  [ -x .venv/bin/python ] && DEMO_EMBEDDED="$embedded" .venv/bin/python - <<'PY' 2>/dev/null
import importlib.metadata as md
import os
import pathlib
import sys
import tomllib

try:
    from packaging.requirements import Requirement
except ImportError:
    from pip._vendor.packaging.requirements import Requirement

project = tomllib.loads(pathlib.Path("pyproject.toml").read_text())["project"]
if md.version(project["name"]) != project["version"]:
    sys.exit(1)
import agent  # noqa: E402  # the installed agent must be this checkout's (an editable install)

if pathlib.Path(agent.__file__).resolve().parent.parent != pathlib.Path.cwd().resolve():
    sys.exit(1)
embedded = project["optional-dependencies"]["demo"] if os.environ.get("DEMO_EMBEDDED") == "1" else []
for text in project["dependencies"] + embedded:  # amqtt (the demo extra) only where mosquitto is missing
    req = Requirement(text)
    if req.marker is None or req.marker.evaluate():
        if not req.specifier.contains(md.version(req.name), prereleases=True):
            sys.exit(1)
PY
}
if ! satisfied; then
  [ -x .venv/bin/python ] || python3 -m venv .venv
  if [ -n "${ENERGY_AGENT_BUNDLE-}" ]; then
    wheels="$(mktemp -d)"
    trap 'rm -rf "$wheels"' EXIT
    tar -C "$wheels" -xzf "$ENERGY_AGENT_BUNDLE" energy-agent-bundle/wheels
    PIP_NO_INDEX=1 .venv/bin/python -m pip install -q --no-compile --no-index --find-links "$wheels/energy-agent-bundle/wheels" -e .
  else
    extra=""; [ "$embedded" = 1 ] && extra="[demo]"
    source deploy/venv-install.sh
    venv_install -e ".$extra"
  fi
fi
exec .venv/bin/energy-agent demo "$@"
