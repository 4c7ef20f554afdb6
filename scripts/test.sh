#!/usr/bin/env bash
# The whole test suite: static checks, race-checked unit tests of the core,
# every other package (including the real-process cluster tests in tests/e2e
# and the etcdctl compatibility tests, which run when etcdctl is on PATH),
# and short fuzz runs of the decoders.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== gofmt / go vet"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change: $unformatted" >&2
	exit 1
fi
go vet ./...

race_pkgs="./internal/raftnode/... ./internal/wal/... ./internal/snap/... ./internal/mvcc/... ./internal/apply/... ./internal/transport/... ./internal/watch/... ./internal/lease/... ./internal/server/..."
echo "== go test -race (core packages)"
go test -race -count=1 $race_pkgs

echo "== go test (everything else)"
others=$(go list ./... | grep -v -E '/internal/(raftnode|wal|snap|mvcc|apply|transport|watch|lease|server)($|/)')
go test -count=1 -timeout 15m $others

echo "== fuzz (short)"
fuzztime=${FUZZTIME:-10s}
go test -run '^$' -fuzz '^FuzzDecodeRecord$' -fuzztime "$fuzztime" ./internal/wal
go test -run '^$' -fuzz '^FuzzApply$' -fuzztime "$fuzztime" ./internal/apply
echo "== all tests passed"
