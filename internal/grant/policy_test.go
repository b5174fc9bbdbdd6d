package grant

import (
	"bytes"
	"errors"
	"testing"
)

// TestRetrySealer: a kept answer opens, under the same key, for the same
// family and token only, and unaltered; sealing it twice gives different
// bytes (a fresh nonce).
func TestRetrySealer(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	s := newRetrySealer(key)
	resp := &tokenResponse{AccessToken: "a.b.c", TokenType: "Bearer", ExpiresIn: 300, RefreshToken: "r.s.t", Scope: "read <&>"}
	sealed := s.seal(resp, "fam", "jti")
	if bytes.Contains(sealed, []byte("a.b.c")) || bytes.Contains(sealed, []byte("r.s.t")) {
		t.Fatalf("sealed answer holds a token in the clear: %q", sealed)
	}
	if bytes.Equal(sealed, s.seal(resp, "fam", "jti")) {
		t.Errorf("two seals of one answer are equal: the nonce repeats")
	}
	got, err := s.open(sealed, "fam", "jti")
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	if string(appendToken(nil, got)) != string(appendToken(nil, resp)) {
		t.Errorf("opened %+v, want %+v", got, resp)
	}
	flipped := bytes.Clone(sealed)
	flipped[len(flipped)-1] ^= 1
	for name, tc := range map[string]struct {
		s           *retrySealer
		sealed      []byte
		family, jti string
	}{
		"another family": {s, sealed, "other", "jti"},
		"another token":  {s, sealed, "fam", "other"},
		"altered":        {s, flipped, "fam", "jti"},
		"truncated":      {s, sealed[:5], "fam", "jti"},
		"another key":    {newRetrySealer(bytes.Repeat([]byte{8}, 32)), sealed, "fam", "jti"},
		"a hashed key":   {newRetrySealer([]byte("not 32 bytes")), sealed, "fam", "jti"},
	} {
		if _, err := tc.s.open(tc.sealed, tc.family, tc.jti); !errors.Is(err, errRetryOpen) {
			t.Errorf("%s: open = %v, want %v", name, err, errRetryOpen)
		}
	}
}
