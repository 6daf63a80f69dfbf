// Package logging sets up NetAuto's structured JSON logs (log/slog) and carries request, job and
// device identifiers through a context so every line written under it names them.
package logging

import (
	"context"
	"io"
	"log/slog"
	"time"
)

type ctxKey struct{}

// With returns a context whose log lines carry the given attributes (e.g. "job_id", id) in
// addition to any the parent context carries.
func With(ctx context.Context, args ...any) context.Context {
	prev, _ := ctx.Value(ctxKey{}).([]slog.Attr)
	attrs := append([]slog.Attr(nil), prev...)
	attrs = append(attrs, argsToAttrs(args)...)
	return context.WithValue(ctx, ctxKey{}, attrs)
}

func argsToAttrs(args []any) []slog.Attr {
	r := slog.NewRecord(time.Time{}, 0, "", 0)
	r.Add(args...)
	var out []slog.Attr
	r.Attrs(func(a slog.Attr) bool {
		out = append(out, a)
		return true
	})
	return out
}

// New returns a JSON logger writing to w at the given level, adding the context's attributes to
// every record logged with a context.
func New(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(contextHandler{slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})})
}

type contextHandler struct{ slog.Handler }

func (h contextHandler) Handle(ctx context.Context, r slog.Record) error {
	if attrs, ok := ctx.Value(ctxKey{}).([]slog.Attr); ok {
		r.AddAttrs(attrs...)
	}
	return h.Handler.Handle(ctx, r)
}

func (h contextHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return contextHandler{h.Handler.WithAttrs(attrs)}
}

func (h contextHandler) WithGroup(name string) slog.Handler {
	return contextHandler{h.Handler.WithGroup(name)}
}
