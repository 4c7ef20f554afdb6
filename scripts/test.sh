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

race_pkgs="./internal/raftnode/... ./internal/wal/... ./internal/snap/... ./internal/mvcc/... ./internal/apply/... ./internal/transport/... ./internal/watch/... ./internal/lease/... ./internal/server/... ./internal/auth/... ./internal/tlsconf/... ./internal/faults/..."
echo "== go test -race (core packages)"
go test -race -count=1 $race_pkgs

echo "== go test (everything else)"
others=$(go list ./... | grep -v -E '/internal/(raftnode|wal|snap|mvcc|apply|transport|watch|lease|server|auth|tlsconf|faults)($|/)')
go test -count=1 -timeout 15m $others

echo "== deterministic simulation: 500 seeds (a failure prints the seed and its replay command)"
go test -count=1 ./internal/sim -run '^TestSeeds$' -seeds=500

echo "== fuzz (short)"
# A count, not a duration: with a duration, Go's fuzz coordinator can fail a
# target with "context deadline exceeded" at the boundary without any
# crasher (a race in internal/fuzz between the -fuzztime deadline and its
# own cancellation). A count ends the run without a deadline.
fuzztime=${FUZZTIME:-100000x}
go test -run '^$' -fuzz '^FuzzDecodeRecord$' -fuzztime "$fuzztime" ./internal/wal
go test -run '^$' -fuzz '^FuzzApply$' -fuzztime "$fuzztime" ./internal/apply
go test -run '^$' -fuzz '^FuzzJWTVerify$' -fuzztime "$fuzztime" ./internal/auth
go test -run '^$' -fuzz '^FuzzParseSimpleToken$' -fuzztime "$fuzztime" ./internal/auth
go test -run '^$' -fuzz '^FuzzDecodeStore$' -fuzztime "$fuzztime" ./internal/auth

# bench/ is a module of its own (it builds etcd from its Go module), so
# `go vet ./...` above does not reach it.
echo "== benchmark harness: unit tests, then a smoke run (a second or so per workload)"
(cd bench && go vet ./... && go test -count=1 ./...)
systems=concord,etcd36,etcd34
if ! /usr/bin/etcd --version 2>/dev/null | grep -q 'Version: 3\.4\.'; then
	echo "etcd 3.4 is not installed (apt-get install -y etcd-server): smoke run without it"
	systems=concord,etcd36
fi
go -C bench run . --smoke --systems "$systems"
echo "== all tests passed"
