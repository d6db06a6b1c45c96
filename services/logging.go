package services

import (
	"context"
	"io"
	"log/slog"
)

// NewLogger returns the console's structured logger: JSON or text records at
// level, each carrying correlation_id and account_id taken from the context it
// is written with (use the *Context methods: InfoContext, ErrorContext...).
func NewLogger(w io.Writer, level slog.Level, format string) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	if format == "text" {
		h = slog.NewTextHandler(w, opts)
	} else {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(contextHandler{h})
}

// contextHandler adds the request-scoped attributes found in the context.
type contextHandler struct{ slog.Handler }

func (h contextHandler) Handle(ctx context.Context, r slog.Record) error {
	// Added in one call: the record grows once.
	var attrs [2]slog.Attr
	n := 0
	if id := CorrelationID(ctx); id != "" {
		attrs[n] = slog.String("correlation_id", id)
		n++
	}
	if id, ok := AccountID(ctx); ok {
		attrs[n] = slog.Int64("account_id", id)
		n++
	}
	r.AddAttrs(attrs[:n]...)
	return h.Handler.Handle(ctx, r)
}

func (h contextHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return contextHandler{h.Handler.WithAttrs(attrs)}
}

func (h contextHandler) WithGroup(name string) slog.Handler {
	return contextHandler{h.Handler.WithGroup(name)}
}
