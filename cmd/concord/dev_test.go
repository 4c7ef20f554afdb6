package main

import (
	"errors"
	"os/exec"
	"testing"
)

// TestKilledExit runs real short processes: dev restarts only what a kill
// rule (exit 137) or SIGKILL ended.
func TestKilledExit(t *testing.T) {
	tests := []struct {
		script string
		want   bool
	}{
		{"exit 137", true},
		{"kill -9 $$", true},
		{"exit 1", false},
		{"kill -15 $$", false},
		{"exit 0", false},
	}
	for _, tt := range tests {
		err := exec.Command("/bin/sh", "-c", tt.script).Run()
		if tt.script != "exit 0" && !errors.As(err, new(*exec.ExitError)) {
			t.Fatalf("sh -c %q: %v, want an exit error", tt.script, err)
		}
		if got := killedExit(err); got != tt.want {
			t.Errorf("killedExit(sh -c %q: %v) = %v, want %v", tt.script, err, got, tt.want)
		}
	}
	if killedExit(errors.New("start failed")) {
		t.Error("killedExit(non-exit error) = true")
	}
}
