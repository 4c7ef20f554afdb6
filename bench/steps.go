package main

// The optimization log of issue 5: bench/STEPS.md is hand-written (what
// changed, figures before and after, the commands), and the page carries
// it verbatim as its last section, between markers of its own. Every write
// of the page — a whole run or a run of some sections alone — reads the
// file again and replaces that section, so the page never shows a stale
// log and the log is never edited in two places.

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// The markers around the copied log.
const (
	stepsBegin = "<!-- bench steps: copied verbatim from bench/STEPS.md by every run of the harness that writes this page -->"
	stepsEnd   = "<!-- /bench steps -->"
)

// stepsFile is where the log lives, under bench/.
const stepsFile = "STEPS.md"

// readSteps reads the log; its error goes to renderSteps, which says why
// the section is empty rather than failing the run.
func readSteps(path string) (string, error) {
	b, err := os.ReadFile(path)
	return string(b), err
}

// renderSteps is the section, markers included, for the log's text md or
// the error that reading it gave.
func renderSteps(md string, err error) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("%s", stepsBegin)
	p("## Optimization steps (issue 5)")
	p("")
	p("Copied verbatim from `bench/%s` whenever the harness writes this page; the only hand-written part of it (edit that file, not this section).", stepsFile)
	p("")
	switch {
	case errors.Is(err, os.ErrNotExist):
		p("`bench/%s` does not exist yet: no steps to show.", stepsFile)
		p("")
	case err != nil:
		p("`bench/%s` could not be read: %s.", stepsFile, err)
		p("")
	case strings.TrimSpace(md) == "":
		p("`bench/%s` is empty.", stepsFile)
		p("")
	default:
		b.WriteString(strings.TrimRight(md, "\n") + "\n")
	}
	p("%s", stepsEnd)
	return b.String()
}

// spliceSteps puts section (markers included, ending in a newline) into
// page in place of the previous one between the same markers; a page
// without them gets it at its end. Nothing else of the page changes.
func spliceSteps(page, section string) string {
	if out, ok := replaceBetween(page, stepsBegin, stepsEnd, section); ok {
		return out
	}
	return appendSection(page, section)
}
