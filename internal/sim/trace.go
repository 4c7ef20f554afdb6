package sim

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
)

// The trace is one line per event: the virtual time in seconds (to the
// microsecond), then what happened. It holds no pointers, wall times or map
// orders, so the same run yields the same bytes.

// lineStart returns a scratch buffer holding the line's time prefix.
func (s *simulation) lineStart() []byte {
	b := s.scratch[:0]
	sec, us := s.now/1e9, (s.now%1e9)/1e3
	str := strconv.AppendInt(nil, sec, 10)
	for i := len(str); i < 4; i++ {
		b = append(b, ' ')
	}
	b = append(b, str...)
	b = append(b, '.')
	frac := strconv.AppendInt(nil, us, 10)
	for i := len(frac); i < 6; i++ {
		b = append(b, '0')
	}
	b = append(b, frac...)
	return append(b, ' ')
}

func (s *simulation) lineEnd(b []byte) {
	b = append(b, '\n')
	s.trace.Write(b)
	s.scratch = b[:0]
}

// tracef writes one trace line.
func (s *simulation) tracef(format string, args ...any) {
	b := s.lineStart()
	b = fmt.Appendf(b, format, args...)
	s.lineEnd(b)
}

// traceHandler writes a member's raft and raftnode log records at info level
// and above into the trace ("became leader", "took snapshot", ...).
type traceHandler struct {
	s     *simulation
	m     *member
	attrs []slog.Attr
}

func (h *traceHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (h *traceHandler) Handle(_ context.Context, r slog.Record) error {
	b := h.s.lineStart()
	b = append(b, h.m.name...)
	b = append(b, " raft: "...)
	b = append(b, r.Message...)
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "raft_id" {
			return true
		}
		b = append(b, ' ')
		b = append(b, a.Key...)
		b = append(b, '=')
		b = append(b, a.Value.String()...)
		return true
	})
	h.s.lineEnd(b)
	return nil
}

func (h *traceHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &traceHandler{s: h.s, m: h.m, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}

func (h *traceHandler) WithGroup(string) slog.Handler { return h }
