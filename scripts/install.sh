#!/usr/bin/env bash
# Installs what Madoguchi needs into .venv (and, with --test, what its tests need from Debian).
# Idempotent: a second run with nothing changed does no network work.
set -euo pipefail
cd "$(dirname "$0")/.."
want_test=0
[ "${1:-}" = "--test" ] && want_test=1

apt_need=()
need_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed" || apt_need+=("$1"); }
need_pkg python3-venv
if [ "$want_test" = 1 ]; then
  # chromium + a Japanese font for browser tests; postgresql for the DB tests; redis for scale tests
  for p in chromium fonts-ipafont-gothic postgresql redis-server iproute2 janus; do need_pkg "$p"; done
fi
if [ "${#apt_need[@]}" -gt 0 ]; then
  sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${apt_need[@]}"
fi

py=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$py" -m venv .venv
extra=""; [ "$want_test" = 1 ] && extra="[test]"
stamp=".venv/.madoguchi-installed${extra}"
sum=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$sum" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".${extra}"
  echo "$sum" > "$stamp"
fi
