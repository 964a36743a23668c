#!/usr/bin/env bash
# Run every test on a fresh Debian/Ubuntu machine. Installs what the tests need when it is missing:
# Debian's mosquitto, influxdb (1.x), victoria-metrics (InfluxDB v2 write API), socat, chromium, firefox-esr,
# python3-venv, fonts-wqy-microhei and poppler-utils (the centre's energy report);
# then the agent with its dev extras in .venv, then pytest on parallel workers (pytest-xdist). Extra arguments go
# to pytest. Most tests wait on sockets, timers and child processes rather than on a core, so the default is two
# workers per core and one more (on 2 cores, quiet: 5 workers ran the suite in 255 s, 4 in 293 s; three per core
# starved the timing-sensitive tests of CPU); TEST_WORKERS=N sets another number (TEST_WORKERS=0 runs everything
# in this one process).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
command -v influxd >/dev/null || missing+=(influxdb)
command -v victoria-metrics >/dev/null || missing+=(victoria-metrics)
command -v socat >/dev/null || missing+=(socat)
command -v ip >/dev/null || missing+=(iproute2)  # network namespaces for the offline-install tests
command -v chromium >/dev/null || missing+=(chromium)  # the web page's browser tests (tests/e2e/test_web_*.py)
command -v firefox-esr >/dev/null || command -v firefox >/dev/null || missing+=(firefox-esr)
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
# the centre's monthly energy report (PDF) needs a CJK font; pdftotext checks what the PDF says
[ -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || missing+=(fonts-wqy-microhei)
command -v pdftotext >/dev/null || missing+=(poppler-utils)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  # policy-rc.d keeps the packages' own services from starting: tests start their own instances.
  DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
source deploy/venv-install.sh
venv_install -e '.[dev]'
workers="${TEST_WORKERS:-$(( $(nproc) * 2 + 1 ))}"
exec .venv/bin/python -m pytest -n "$workers" "$@"
