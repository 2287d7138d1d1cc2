#!/bin/bash
# Lint the carddaemon unit: `make systemd` and tests/test_systemd.py run this.
#
#   systemd/check.sh [UNIT] [CARDDAEMON_BINARY]
#
# 1. `systemd-analyze verify` exits 0 on unknown keys (a `WatchdogSecs=` typo only warns), so
#    ANY output fails the check.
# 2. `systemd-analyze security --offline=yes`: the overall exposure must be <= 1.5.
#
# verify refuses a unit whose ExecStart binary does not exist, and /usr/bin/carddaemon exists
# only on a store PC: the check runs on a copy of the unit whose ExecStart names
# CARDDAEMON_BINARY (default: the venv's .venv/bin/carddaemon). Only that one path differs
# from the file that is installed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
unit=${1:-$here/carddaemon.service}
binary=${2:-$here/../.venv/bin/carddaemon}
max_exposure=1.5

[ -x "$binary" ] || { echo "systemd check: $binary is not an executable" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
copy=$work/$(basename "$unit")
sed "s|^ExecStart=/usr/bin/carddaemon |ExecStart=$(realpath "$binary") |" "$unit" > "$copy"

out=$(cd "$work" && systemd-analyze verify --man=no "$copy" 2>&1) || {
    echo "systemd-analyze verify failed:"; echo "$out"; exit 1; } >&2
if [ -n "$out" ]; then
    { echo "systemd-analyze verify warned (a warning fails the check):"; echo "$out"; } >&2
    exit 1
fi
echo "systemd-analyze verify $(basename "$unit"): no warnings"

report=$(cd "$work" && systemd-analyze security --offline=yes "$copy" 2>&1) || true
exposure=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' <<<"$report")
if [ -z "$exposure" ]; then
    { echo "systemd-analyze security printed no overall exposure:"; echo "$report"; } >&2
    exit 1
fi
echo "systemd-analyze security $(basename "$unit"): exposure $exposure (max $max_exposure)"
if awk -v e="$exposure" -v m="$max_exposure" 'BEGIN { exit !(e > m) }'; then
    grep -E '^✗' <<<"$report" >&2 || true
    echo "systemd-analyze security: exposure $exposure is above $max_exposure" >&2
    exit 1
fi
