package sim

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/cryptotest"
	"time"

	"github.com/concord-db/concord/internal/check"
)

var (
	flagSeeds    = flag.Int("seeds", 100, "number of seeds TestSeeds runs (CI runs 500)")
	flagSeed     = flag.Uint64("seed", 0, "run only this seed (TestSeeds), printing its trace with -v")
	flagFirst    = flag.Uint64("first-seed", 1, "first seed of the TestSeeds range")
	flagDuration = flag.Duration("sim-duration", 0, "virtual length of each run's fault phase (0: default)")
	flagTrace    = flag.String("sim-trace", "", "write the trace of a -seed run to this file")
	flagLocal    = flag.Bool("unsafe-local-reads", false, "TestSeeds: serve linearizable reads locally (expect violations)")
	flagNoFsync  = flag.Bool("unsafe-no-fsync", false, "TestSeeds: skip WAL fsyncs (expect violations)")
)

// seedConfig is the Config TestSeeds runs for seed under the flags.
func seedConfig(seed uint64) Config {
	return Config{Seed: seed, Duration: *flagDuration, UnsafeLocalReads: *flagLocal, UnsafeNoFsync: *flagNoFsync}
}

// runSeed runs one seed with crypto/rand made deterministic from it, so
// raft's randomized election timeouts replay too.
func runSeed(t *testing.T, cfg Config) *Result {
	t.Helper()
	cryptotest.SetGlobalRandom(t, cfg.Seed)
	res, err := Run(cfg)
	if err != nil {
		t.Fatalf("Run(seed %d) = %v", cfg.Seed, err)
	}
	return res
}

// replayCommand is the one line that reproduces a seed.
func replayCommand(cfg Config) string {
	cmd := fmt.Sprintf("go test ./internal/sim -run TestSeeds -seed=%d -v", cfg.Seed)
	if cfg.Duration != 0 {
		cmd += fmt.Sprintf(" -sim-duration=%v", cfg.Duration)
	}
	if cfg.UnsafeLocalReads {
		cmd += " -unsafe-local-reads"
	}
	if cfg.UnsafeNoFsync {
		cmd += " -unsafe-no-fsync"
	}
	return cmd
}

// report fails t with everything needed to understand and replay a seed.
func report(t *testing.T, cfg Config, res *Result) {
	t.Helper()
	path := filepath.Join(os.TempDir(), fmt.Sprintf("concord-sim-seed-%d.trace", cfg.Seed))
	werr := os.WriteFile(path, res.Trace, 0o644)
	lines := strings.Split(strings.TrimRight(string(res.Trace), "\n"), "\n")
	tail := lines
	if len(tail) > 120 {
		tail = tail[len(tail)-120:]
	}
	where := "full trace: " + path
	if werr != nil {
		where = "could not write the full trace: " + werr.Error()
	}
	if res.Has("linearizable") {
		html := filepath.Join(os.TempDir(), fmt.Sprintf("concord-sim-seed-%d.html", cfg.Seed))
		lin := check.Linearizable(res.Ops, DefaultCheckTimeout)
		if f, err := os.Create(html); err == nil {
			if err := lin.Visualize(f); err == nil {
				where += "\nporcupine visualization: " + html
			}
			f.Close()
		}
	}
	t.Errorf("seed %d FAILED\nreplay: %s\n%s\n%s\nlast %d trace lines:\n%s",
		cfg.Seed, replayCommand(cfg), res.Summary(), where, len(tail), strings.Join(tail, "\n"))
	for _, p := range res.Panics {
		t.Logf("panic stack:\n%s", p)
	}
}

// TestSeeds runs -seeds seeds (or the one -seed) with faults and checks
// every invariant and the client history.
func TestSeeds(t *testing.T) {
	if *flagSeed != 0 {
		cfg := seedConfig(*flagSeed)
		res := runSeed(t, cfg)
		if testing.Verbose() && *flagTrace == "" {
			t.Logf("trace:\n%s", res.Trace)
		}
		if *flagTrace != "" {
			if err := os.WriteFile(*flagTrace, res.Trace, 0o644); err != nil {
				t.Errorf("write trace: %v", err)
			}
		}
		t.Logf("%s\ntrace sha256 %s", res.Summary(), res.TraceHash)
		for _, r := range res.Reports {
			t.Logf("%s", r)
		}
		if res.Failed() {
			report(t, cfg, res)
		}
		return
	}
	start := time.Now()
	var (
		total       Stats
		failed      int
		slowest     time.Duration
		slowestSeed uint64
	)
	for i := range *flagSeeds {
		cfg := seedConfig(*flagFirst + uint64(i))
		t.Run(fmt.Sprint(cfg.Seed), func(t *testing.T) {
			began := time.Now()
			res := runSeed(t, cfg)
			if d := time.Since(began); d > slowest {
				slowest, slowestSeed = d, cfg.Seed
			}
			total.Ops += res.Stats.Ops
			total.Acknowledged += res.Stats.Acknowledged
			total.Faults += res.Stats.Faults
			total.Crashes += res.Stats.Crashes
			total.Events += res.Stats.Events
			total.LeasesGranted += res.Stats.LeasesGranted
			total.LeasesExpired += res.Stats.LeasesExpired
			total.DiskFaults += res.Stats.DiskFaults
			total.SlowReadies += res.Stats.SlowReadies
			total.BatchedProposals += res.Stats.BatchedProposals
			if res.Failed() {
				failed++
				report(t, cfg, res)
			}
		})
	}
	el := time.Since(start)
	t.Logf("%d seeds in %v (%.1f seeds/s, slowest: seed %d in %v): %d events, %d ops, %d acknowledged writes, %d faults, %d crashes, %d leases granted, %d expired, %d disk faults, %d slow-disk readies, %d batched proposals, %d failed seeds",
		*flagSeeds, el.Round(time.Millisecond), float64(*flagSeeds)/el.Seconds(), slowestSeed, slowest.Round(time.Millisecond),
		total.Events, total.Ops, total.Acknowledged, total.Faults, total.Crashes, total.LeasesGranted, total.LeasesExpired, total.DiskFaults, total.SlowReadies, total.BatchedProposals, failed)
}

// TestReplayIsExact runs seeds twice and compares their traces byte for
// byte (by hash): the replay command must reproduce a failure exactly.
func TestReplayIsExact(t *testing.T) {
	seen := map[string]uint64{}
	for _, seed := range []uint64{3, 4, 7} {
		var hashes []string
		for run := range 2 {
			t.Run(fmt.Sprintf("seed%d-run%d", seed, run), func(t *testing.T) {
				res := runSeed(t, Config{Seed: seed})
				hashes = append(hashes, res.TraceHash)
			})
		}
		if len(hashes) != 2 || hashes[0] != hashes[1] {
			t.Fatalf("seed %d: trace hashes differ between runs: %v", seed, hashes)
		}
		if other, ok := seen[hashes[0]]; ok {
			t.Errorf("seeds %d and %d produced the same trace", other, seed)
		}
		seen[hashes[0]] = seed
	}
}

// findAnomaly runs seeds from 1 until one reports a violation of kind,
// and fails if none of maxSeeds does: the checker must not be vacuous.
func findAnomaly(t *testing.T, kind string, maxSeeds int, cfg func(seed uint64) Config) {
	t.Helper()
	for seed := uint64(1); seed <= uint64(maxSeeds); seed++ {
		var res *Result
		t.Run(fmt.Sprint(seed), func(t *testing.T) { res = runSeed(t, cfg(seed)) })
		if res != nil && res.Has(kind) {
			for _, v := range res.Violations {
				if v.Kind == kind {
					t.Logf("seed %d found %s after %d seeds: %s", seed, kind, seed, firstLine(v.Detail))
					break
				}
			}
			return
		}
	}
	t.Fatalf("no %s violation in %d seeds: the checker cannot fail", kind, maxSeeds)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " ..."
	}
	return s
}

// With linearizable reads served from local state, a member cut off from
// the leader answers stale values: porcupine must catch it.
func TestUnsafeLocalReadsIsCaught(t *testing.T) {
	findAnomaly(t, "linearizable", 20, func(seed uint64) Config {
		return Config{Seed: seed, UnsafeLocalReads: true}
	})
}

// With fsync skipped, a crash takes back acknowledged writes: the
// durability checker must catch it.
func TestUnsafeNoFsyncIsCaught(t *testing.T) {
	findAnomaly(t, "durability", 30, func(seed uint64) Config {
		return Config{Seed: seed, UnsafeNoFsync: true}
	})
}

// A duplicated forwarded proposal is applied twice (apply does not
// deduplicate command ids); the history checkers must notice. This is why
// the simulated network never duplicates MsgProp by default.
func TestDuplicatedProposalsAreCaught(t *testing.T) {
	findAnomaly(t, "applied-once", 40, func(seed uint64) Config {
		return Config{Seed: seed, dupProposals: true}
	})
}

// With the lease clock running 30% fast, leases expire before their TTL
// has passed since the grant: the lease invariant must catch it.
func TestEarlyLeaseExpiryIsCaught(t *testing.T) {
	findAnomaly(t, KindLease, 10, func(seed uint64) Config {
		return Config{Seed: seed, leaseClockRate: 1.3}
	})
}

// The disk faults of the nemesis fire: within a few seeds a failing disk
// stops a member (which restarts from its disk), a slow disk delays Readies,
// and every guarantee still holds.
func TestDiskFaultsFire(t *testing.T) {
	var failed, slow bool
	for seed := uint64(1); seed <= 30 && !(failed && slow); seed++ {
		var res *Result
		t.Run(fmt.Sprint(seed), func(t *testing.T) { res = runSeed(t, Config{Seed: seed}) })
		if res == nil {
			continue
		}
		if res.Failed() {
			report(t, Config{Seed: seed}, res)
		}
		if res.Stats.DiskFaults > 0 && !failed {
			failed = true
			t.Logf("seed %d: %d members stopped by a disk fault", seed, res.Stats.DiskFaults)
		}
		if res.Stats.SlowReadies > 0 && !slow {
			slow = true
			t.Logf("seed %d: %d readies on a slow disk", seed, res.Stats.SlowReadies)
		}
	}
	if !failed || !slow {
		t.Fatalf("in 30 seeds: a disk fault stopped a member: %t; a slow disk delayed a ready: %t", failed, slow)
	}
}

// Without faults every operation after the first election succeeds and the
// cluster makes steady progress: the simulation itself works.
func TestFaultFree(t *testing.T) {
	res := runSeed(t, Config{Seed: 11, NoFaults: true})
	if res.Failed() {
		report(t, Config{Seed: 11, NoFaults: true}, res)
	}
	st := res.Stats
	if st.Acknowledged < 500 || st.OpsUnknown > DefaultClients || st.Crashes != 0 || st.Dropped != 0 {
		t.Errorf("fault-free run: %s", res.Summary())
	}
	t.Logf("%s", res.Summary())
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		cfg Config
		ok  bool
	}{
		{Config{}, true},
		{Config{Members: 5, Duration: 3 * time.Second, Clients: 2, Keys: 1}, true},
		{Config{Members: 4}, false},
		{Config{Duration: time.Second}, false},
		{Config{Clients: 100}, false},
		{Config{Keys: -1}, false},
		{Config{CheckTimeout: -1}, false},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		if (err == nil) != tt.ok {
			t.Errorf("Validate(%+v) = %v, want ok=%t", tt.cfg, err, tt.ok)
		}
		if tt.ok {
			continue
		}
		if _, rerr := Run(tt.cfg); !errors.Is(rerr, ErrInvalidConfig) {
			t.Errorf("Run(%+v) = %v, want ErrInvalidConfig", tt.cfg, rerr)
		}
	}
}
