#!/usr/bin/env bash
# Remove the agent: stop and disable the unit, remove it, /opt/energy-agent and the /usr/local/bin links. The site file
# (/etc/energy-agent) and the spool (/var/lib/energy-agent) stay unless --purge is given: the spool may still
# hold messages the broker has not acknowledged.
#
#   sudo deploy/uninstall.sh [--purge] [--root DIR]
#
# --purge      also remove /etc/energy-agent (site file, certificates, credentials) and the spool.
# --root DIR   remove what install.sh --root DIR installed below DIR.
# -h, --help   print this text.
set -euo pipefail
usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }
root=""; purge=0
while [ $# -gt 0 ]; do
  case "$1" in
    --purge) purge=1; shift ;;
    --root)
      if [ -z "${2-}" ] || [ "${2#-}" != "$2" ]; then
        echo "uninstall.sh: --root needs a value (see uninstall.sh --help)" >&2; exit 2
      fi
      root="$(realpath -m "$2")"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "uninstall.sh: unknown option $1 (see uninstall.sh --help)" >&2; exit 2 ;;
  esac
done
[ -n "$root" ] || [ "$(id -u)" -eq 0 ] || { echo "uninstall.sh: run as root (or give --root DIR)" >&2; exit 1; }
if [ -z "$root" ] && [ -d /run/systemd/system ]; then
  systemctl disable --now energy-agent.service 2>/dev/null || true
fi
rm -rf "$root/etc/systemd/system/energy-agent.service" "$root/etc/systemd/system/energy-agent.service.d" \
       "$root/opt/energy-agent"
for cmd in energy-agent energy-center; do  # install.sh's links, only if they are still ours
  link="$root/usr/local/bin/$cmd"
  if [ -L "$link" ] && [ "$(readlink "$link")" = "/opt/energy-agent/venv/bin/$cmd" ]; then rm -f "$link"; fi
done
if [ "$purge" -eq 1 ]; then
  rm -rf "$root/etc/energy-agent" "$root/var/lib/energy-agent" "$root/var/lib/private/energy-agent"
fi
if [ -z "$root" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
echo "uninstalled"
