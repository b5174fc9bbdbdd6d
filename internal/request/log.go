package request

import (
	"context"
	"log/slog"
)

// IDKey is the log attribute of the request id.
const IDKey = "request_id"

// NewLogHandler returns a handler that adds the request id carried by the
// context of each record, if any, as the attribute request_id, and passes the
// record on to h. Wrapping a handler it returned again returns it unchanged,
// so no line gets the attribute twice.
func NewLogHandler(h slog.Handler) slog.Handler {
	if _, ok := h.(logHandler); ok {
		return h
	}
	return logHandler{h}
}

type logHandler struct{ next slog.Handler }

func (h logHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h logHandler) Handle(ctx context.Context, r slog.Record) error {
	if ctx != nil {
		if id := ID(ctx); id != "" {
			r = r.Clone() // the caller may hand the same record to other handlers
			r.AddAttrs(slog.String(IDKey, id))
		}
	}
	return h.next.Handle(ctx, r)
}

func (h logHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return logHandler{h.next.WithAttrs(as)}
}

func (h logHandler) WithGroup(name string) slog.Handler {
	return logHandler{h.next.WithGroup(name)}
}
