package store_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/issuer-oauth/issuer/internal/store"
)

func TestUserLogValueLeavesOutPasswordHash(t *testing.T) {
	const hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$secret-hash"
	u := store.User{ID: "u1", Username: "alice", PasswordHash: hash, Generation: 3}
	for name, h := range map[string]func(*bytes.Buffer) slog.Handler{
		"json": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
		"text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
	} {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			slog.New(h(&buf)).Info("signed in", "user", u)
			got := buf.String()
			if strings.Contains(got, "secret-hash") || strings.Contains(got, "argon2id") {
				t.Errorf("log line %q contains the password hash", got)
			}
			for _, want := range []string{"u1", "alice"} {
				if !strings.Contains(got, want) {
					t.Errorf("log line %q lacks %q", got, want)
				}
			}
		})
	}
}
