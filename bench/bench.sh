#!/usr/bin/env bash
# Entry point of `npm run bench` (bench/run.ts, Parley alone) and `npm run bench:compare`
# (bench/compare.ts, Parley beside Prosody and ejabberd). It raises the open-files limit to the
# hard limit first: 10,000 connections need 10,000 descriptors in the server and as many in the
# generator, and both inherit this shell's limit (Prosody and ejabberd keep it too, being started
# with setpriv rather than su).
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n "$(ulimit -Hn)"
command=${1:-run}
shift || true
case "$command" in
  run) exec node --import tsx bench/run.ts "$@" ;;
  compare) exec node --import tsx bench/compare.ts "$@" ;;
  *) echo "usage: bench/bench.sh run|compare [options]" >&2; exit 2 ;;
esac
