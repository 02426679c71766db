#!/usr/bin/env bash
# Runs the whole test suite: installs the servers and clients the tests drive (Debian
# packages, via scripts/setup.sh), then go vet and go test -race over every package.
# Extra arguments go to go test (e.g. scripts/test.sh -run Pgbench ./internal/pgpool/).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export PATH=$PATH:/usr/local/go/bin
# Ten thousand idle connections in the scale tests need descriptors.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
go vet ./...
if [ $# -eq 0 ]; then
  set -- ./...
fi
go test -race -count=1 -timeout 15m "$@"
