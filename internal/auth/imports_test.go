package auth

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoForbiddenImports fails when package auth (not its tests) reaches
// gRPC, net/http, etcd or another Concord package, directly or through a
// dependency.
func TestNoForbiddenImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	forbidden := []string{"google.golang.org/grpc", "net/http", "go.etcd.io/etcd/"}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if strings.HasPrefix(dep, f) {
				t.Errorf("package auth depends on %s", dep)
			}
		}
		if strings.HasPrefix(dep, "github.com/concord-db/concord/") && dep != "github.com/concord-db/concord/internal/auth" {
			t.Errorf("package auth depends on %s", dep)
		}
	}
}
