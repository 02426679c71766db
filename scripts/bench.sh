#!/usr/bin/env bash
# Runs the benchmark harness: installs what it needs (scripts/setup.sh), then
# `poolbench run` with the arguments given, for example:
#   scripts/bench.sh --suite quick --out bench/results/quick
# See README.md, Benchmarks.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
  export PATH=$PATH:/usr/local/go/bin
fi
exec go run ./bench/cmd/poolbench run "$@"
