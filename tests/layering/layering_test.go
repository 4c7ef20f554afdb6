package layering

import (
	"os/exec"
	"strings"
	"testing"
)

// core lists the packages that must stay free of protocol and network-API
// dependencies.
const module = "github.com/concord-db/concord"

var core = []string{
	"internal/server",
	"internal/raftnode",
	"internal/transport",
	"internal/faults",
	"internal/sim",
	"internal/check",
	"internal/apply",
	"internal/command",
	"internal/mvcc",
	"internal/wal",
	"internal/snap",
	"internal/durable",
	"internal/lease",
	"internal/watch",
	"internal/auth",
	"internal/tlsconf",
	"internal/protofield",
}

// forbidden are import path prefixes that no Concord package reachable from
// a core package may import. Third-party libraries are not judged (pebble's
// error package pulls in net/http for crash reporting we never enable).
var forbidden = []string{
	"google.golang.org/grpc",
	"net/http",
	"go.etcd.io/etcd/api",
	"go.etcd.io/etcd/client",
	"github.com/concord-db/concord/internal/frontend",
	"github.com/concord-db/concord/cmd",
}

func TestCoreDoesNotImportFrontEnds(t *testing.T) {
	for _, pkg := range core {
		path := module + "/" + pkg
		out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", path).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", path, err, out)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			fields := strings.Fields(line)
			if len(fields) == 0 || !strings.HasPrefix(fields[0], module+"/") {
				continue
			}
			for _, imp := range fields[1:] {
				for _, f := range forbidden {
					if imp == f || strings.HasPrefix(imp, f+"/") {
						t.Errorf("%s (reached from %s) imports %s", fields[0], pkg, imp)
					}
				}
			}
		}
	}
}
