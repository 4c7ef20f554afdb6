package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// progress shows where the run is and how long it still has to go: one
// rewritten line on a terminal, one line per step otherwise (CI logs).
type progress struct {
	w          io.Writer
	tty        bool
	total      int
	done       int
	start      time.Time
	lastLen    int
	unitsDone  float64
	unitsTotal float64
}

func newProgress(w *os.File, total int, units float64) *progress {
	fi, err := w.Stat()
	return &progress{w: w, tty: err == nil && fi.Mode()&os.ModeCharDevice != 0, total: total,
		start: time.Now(), unitsTotal: units}
}

// step announces the next step; units is its share of the expected run time.
func (p *progress) step(units float64, format string, args ...any) {
	p.done++
	elapsed := time.Since(p.start)
	eta := "?"
	if p.unitsDone > 0 {
		left := time.Duration(float64(elapsed) * (p.unitsTotal - p.unitsDone) / p.unitsDone)
		eta = "~" + left.Round(time.Second).String()
	}
	p.unitsDone += units
	line := fmt.Sprintf("[%d/%d %3.0f%% %s elapsed, %s left] %s", p.done, p.total,
		100*float64(p.done-1)/float64(max(1, p.total)), elapsed.Round(time.Second), eta, fmt.Sprintf(format, args...))
	if p.tty {
		pad := max(0, p.lastLen-len(line))
		fmt.Fprintf(p.w, "\r%s%s", line, strings.Repeat(" ", pad))
		p.lastLen = len(line)
		return
	}
	fmt.Fprintln(p.w, line)
}

// note prints a line that stays (a result, a warning).
func (p *progress) note(format string, args ...any) {
	if p.tty && p.lastLen > 0 {
		fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", p.lastLen))
		p.lastLen = 0
	}
	fmt.Fprintf(p.w, format+"\n", args...)
}
