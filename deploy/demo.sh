#!/usr/bin/env bash
# Run the demo on a fresh Debian/Ubuntu machine: the simulated cement plant, a broker, the agent computing and
# grading KPIs, InfluxDB with the centre ingestor, and a live terminal view. Ctrl-C stops everything.
# Installs what it needs when missing (Debian's mosquitto and influxdb, python3-venv), then the agent in .venv.
# Extra arguments go to `energy-agent demo` (e.g. --duration 120, --keep to keep the work folder and its data).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
command -v influxd >/dev/null || missing+=(influxdb)
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[demo]'
exec .venv/bin/energy-agent demo "$@"
