package raftnode

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps the package a leaf below the server: it declares
// the interfaces it needs instead of importing their implementations, and
// never reaches a network front-end.
func TestDependencies(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not available")
	}
	out, err := exec.Command(goBin, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	const self = "github.com/concord-db/concord/internal/raftnode"
	forbidden := []string{
		"net/http",
		"google.golang.org/grpc",
		"go.etcd.io/etcd/",
		"github.com/concord-db/concord/",
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep == self {
			continue
		}
		for _, f := range forbidden {
			if dep == f || strings.HasPrefix(dep, f) {
				t.Errorf("raftnode depends on %s (forbidden: %s)", dep, f)
			}
		}
	}
}
