package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// The binary under test is built once per test binary run by TestMain.
var (
	binPath  string
	buildErr error
	buildOut []byte
)

// TestMain builds the concord binary once for the whole package; a build
// failure is reported by every test that needs the binary.
func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "concord-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binPath = filepath.Join(dir, "concord")
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	build := exec.Command("go", "build", "-o", binPath, "./cmd/concord")
	build.Dir = root
	buildOut, buildErr = build.CombinedOutput()
	return m.Run()
}
