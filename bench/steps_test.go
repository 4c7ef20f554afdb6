package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRenderStepsMissingFile(t *testing.T) {
	md, err := readSteps(filepath.Join(t.TempDir(), stepsFile))
	s := renderSteps(md, err)
	for _, want := range []string{stepsBegin, "## Optimization steps (issue 5)", "Copied verbatim from `bench/STEPS.md`",
		"`bench/STEPS.md` does not exist yet", stepsEnd + "\n"} {
		if !strings.Contains(s, want) {
			t.Errorf("section for a missing file lacks %q:\n%s", want, s)
		}
	}
}

func TestRenderStepsPresentFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), stepsFile)
	md := "Intro.\n\n### 1. A step\n\n| before | after |\n|---|---|\n| 1 | 2 |\n\n```\ngo test -bench .\n```\n\n\n"
	if err := os.WriteFile(path, []byte(md), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := readSteps(path)
	if err != nil {
		t.Fatal(err)
	}
	s := renderSteps(got, err)
	if !strings.Contains(s, strings.TrimRight(md, "\n")+"\n"+stepsEnd+"\n") {
		t.Errorf("section does not carry the file verbatim:\n%s", s)
	}
	if strings.Contains(s, "does not exist") {
		t.Error("section for a present file says it is missing")
	}
}

func TestSpliceSteps(t *testing.T) {
	old := renderSteps("old step\n", nil)
	nw := renderSteps("new step\n", nil)
	tests := []struct {
		name, page, want string
	}{
		{"empty page", "", "# Benchmarks\n\n" + nw},
		{"page without the section: appended", "# Benchmarks\n\n## Runs\n\nx\n\n\n", "# Benchmarks\n\n## Runs\n\nx\n\n" + nw},
		{"section at the end: replaced", "# Benchmarks\n\n" + old, "# Benchmarks\n\n" + nw},
		{"section in the middle: replaced, the rest kept", "head\n\n" + old + "\n## After\n\ntail\n", "head\n\n" + nw + "\n## After\n\ntail\n"},
		{"end marker missing: appended, old text kept", "head\n" + stepsBegin + "\nold\n", "head\n" + stepsBegin + "\nold\n\n" + nw},
	}
	for _, tc := range tests {
		if got := spliceSteps(tc.page, nw); got != tc.want {
			t.Errorf("%s: spliceSteps(%q) = %q, want %q", tc.name, tc.page, got, tc.want)
		}
	}
	// Splicing twice is splicing once.
	once := spliceSteps("# Benchmarks\n\n## Runs\n", nw)
	if twice := spliceSteps(once, nw); twice != once {
		t.Errorf("second splice changed the page:\n%s\nvs\n%s", once, twice)
	}
}
