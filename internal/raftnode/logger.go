package raftnode

import (
	"context"
	"fmt"
	"log/slog"

	"go.etcd.io/raft/v3"
)

// raftLogger adapts an injected *slog.Logger to raft.Logger, so raft never
// falls back to its package-global logger for this member.
type raftLogger struct{ l *slog.Logger }

var _ raft.Logger = raftLogger{}

func (r raftLogger) logf(lvl slog.Level, format string, v []any) {
	if !r.l.Enabled(context.Background(), lvl) {
		return // skip formatting: raft logs a lot at debug level
	}
	r.l.Log(context.Background(), lvl, fmt.Sprintf(format, v...))
}

func (r raftLogger) log(lvl slog.Level, v []any) {
	if !r.l.Enabled(context.Background(), lvl) {
		return
	}
	r.l.Log(context.Background(), lvl, fmt.Sprint(v...))
}

func (r raftLogger) Debug(v ...any)                 { r.log(slog.LevelDebug, v) }
func (r raftLogger) Debugf(format string, v ...any) { r.logf(slog.LevelDebug, format, v) }
func (r raftLogger) Info(v ...any)                  { r.log(slog.LevelInfo, v) }
func (r raftLogger) Infof(format string, v ...any)  { r.logf(slog.LevelInfo, format, v) }
func (r raftLogger) Warning(v ...any)               { r.log(slog.LevelWarn, v) }
func (r raftLogger) Warningf(format string, v ...any) {
	r.logf(slog.LevelWarn, format, v)
}
func (r raftLogger) Error(v ...any)                 { r.log(slog.LevelError, v) }
func (r raftLogger) Errorf(format string, v ...any) { r.logf(slog.LevelError, format, v) }

// Fatal and Panic mark raft invariant violations. A library must not
// os.Exit under its host, so both panic; NewCore turns a panic during
// construction into an error, and at run time the invariant is broken anyway.
func (r raftLogger) Fatal(v ...any) { r.Panic(v...) }
func (r raftLogger) Fatalf(format string, v ...any) {
	r.Panicf(format, v...)
}

func (r raftLogger) Panic(v ...any) {
	msg := fmt.Sprint(v...)
	r.l.Error(msg)
	panic(msg)
}

func (r raftLogger) Panicf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	r.l.Error(msg)
	panic(msg)
}
