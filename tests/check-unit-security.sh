#!/bin/sh
# The hardened unit must keep an exposure level of 2.0 or lower in
# systemd-analyze security --offline (lower is better; 10 is unprotected).
set -eu
unit=$1
out=$(systemd-analyze security --offline=yes --no-pager "$unit" 2>&1) || true
level=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
if [ -z "$level" ]; then
        printf '%s\n' "$out"
        echo "no exposure level in the output of systemd-analyze" >&2
        exit 1
fi
echo "exposure level of $unit: $level (must be <= 2.0)"
awk -v l="$level" 'BEGIN { exit !(l <= 2.0) }'
