package agent

import (
	"context"
	"fmt"
	"log/slog"
)

// redactor removes secret values from text.
type redactor interface {
	Redact(s string) string
}

// redactHandler is the last line of defence for logs: every message and
// string-like attribute passes through the secret router's Redact, which
// replaces any value it has resolved recently. Code is written never to log
// secrets; this catches what slips through (an error from a library that
// quotes a credential, say).
type redactHandler struct {
	inner slog.Handler
	r     redactor
}

func newRedactHandler(inner slog.Handler, r redactor) slog.Handler {
	return &redactHandler{inner: inner, r: r}
}

func (h *redactHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h *redactHandler) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, h.r.Redact(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.inner.Handle(ctx, out)
}

func (h *redactHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	clean := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		clean[i] = h.attr(a)
	}
	return &redactHandler{inner: h.inner.WithAttrs(clean), r: h.r}
}

func (h *redactHandler) WithGroup(name string) slog.Handler {
	return &redactHandler{inner: h.inner.WithGroup(name), r: h.r}
}

func (h *redactHandler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, h.r.Redact(v.String()))
	case slog.KindGroup:
		group := v.Group()
		clean := make([]any, len(group))
		for i, g := range group {
			clean[i] = h.attr(g)
		}
		return slog.Group(a.Key, clean...)
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			return slog.String(a.Key, h.r.Redact(x.Error()))
		case fmt.Stringer:
			return slog.String(a.Key, h.r.Redact(x.String()))
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}
