package request

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"testing/slogtest"
)

func TestClientAddr(t *testing.T) {
	proxies := Proxies{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	tests := []struct {
		name        string
		remote      string
		xff         []string
		want        string
		wantTrusted bool
	}{
		{"no proxy", "203.0.113.1:5000", nil, "203.0.113.1", false},
		{"untrusted peer's header ignored", "203.0.113.1:5000", []string{"198.51.100.7"}, "203.0.113.1", false},
		{"trusted peer without header", "10.1.2.3:5000", nil, "10.1.2.3", true},
		{"trusted peer", "10.1.2.3:5000", []string{"198.51.100.7"}, "198.51.100.7", true},
		{"rightmost untrusted hop", "10.1.2.3:5000", []string{"192.0.2.66, 198.51.100.7, 10.9.9.9"}, "198.51.100.7", true},
		{"spoofed leftmost entries", "10.1.2.3:5000", []string{"10.0.0.1, 198.51.100.7"}, "198.51.100.7", true},
		{"several headers", "10.1.2.3:5000", []string{"192.0.2.66", "198.51.100.7, 10.9.9.9"}, "198.51.100.7", true},
		{"all trusted", "10.1.2.3:5000", []string{"10.0.0.1, 10.0.0.2"}, "10.0.0.1", true},
		{"garbage stops the walk", "10.1.2.3:5000", []string{"198.51.100.7, unknown, 10.0.0.2"}, "10.0.0.2", true},
		{"garbage at the end", "10.1.2.3:5000", []string{"198.51.100.7, not-an-ip"}, "10.1.2.3", true},
		{"hop with port", "10.1.2.3:5000", []string{"198.51.100.7:1234"}, "198.51.100.7", true},
		{"ipv6 hop", "[fd00::1]:5000", []string{"2001:db8::5"}, "2001:db8::5", true},
		{"ipv6 hop with port", "[fd00::1]:5000", []string{"[2001:db8::5]:443"}, "2001:db8::5", true},
		{"ipv6 hop in brackets", "[fd00::1]:5000", []string{"[2001:db8::5]"}, "2001:db8::5", true},
		{"4in6 peer", "[::ffff:10.1.2.3]:5000", []string{"198.51.100.7"}, "198.51.100.7", true},
		{"empty entries", "10.1.2.3:5000", []string{" , 198.51.100.7 ,"}, "198.51.100.7", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			got, trusted := proxies.ClientAddr(r)
			if got.String() != tt.want || trusted != tt.wantTrusted {
				t.Errorf("ClientAddr = %v, %v; want %s, %v", got, trusted, tt.want, tt.wantTrusted)
			}
		})
	}
	t.Run("nobody trusted by default", func(t *testing.T) {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = "127.0.0.1:1"
		r.Header.Set("X-Forwarded-For", "198.51.100.7")
		if got, trusted := Proxies(nil).ClientAddr(r); got.String() != "127.0.0.1" || trusted {
			t.Errorf("ClientAddr = %v, %v; want 127.0.0.1, false", got, trusted)
		}
	})
}

// TestHops: behind n proxies of unknown addresses, the client is the entry
// n places from the right; whatever the client sent to the left of it is
// never used, and a request with too few entries falls back to the peer.
func TestHops(t *testing.T) {
	tests := []struct {
		name        string
		n           Hops
		xff         []string
		want        string
		wantTrusted bool
	}{
		{"one hop", 1, []string{"198.51.100.7"}, "198.51.100.7", true},
		{"one hop, client sent its own", 1, []string{"192.0.2.66, 203.0.113.9, 198.51.100.7"}, "198.51.100.7", true},
		{"one hop, client sent a header of its own", 1, []string{"192.0.2.66", "198.51.100.7"}, "198.51.100.7", true},
		{"one hop, private client address", 1, []string{"10.1.2.3"}, "10.1.2.3", true},
		{"two hops", 2, []string{"192.0.2.66, 198.51.100.7, 10.9.9.9"}, "198.51.100.7", true},
		{"no header", 1, nil, "10.0.0.1", false},
		{"too few entries", 2, []string{"198.51.100.7"}, "10.0.0.1", false},
		{"garbage entry", 1, []string{"198.51.100.7, nginx"}, "10.0.0.1", false},
		{"ipv6 with port", 1, []string{"[2001:db8::1]:443"}, "2001:db8::1", true},
		{"off", 0, []string{"198.51.100.7"}, "10.0.0.1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = "10.0.0.1:5000"
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			got, trusted := tt.n.ClientAddr(r)
			if got.String() != tt.want || trusted != tt.wantTrusted {
				t.Errorf("ClientAddr = %v, %v; want %s, %v", got, trusted, tt.want, tt.wantTrusted)
			}
		})
	}
}

func TestClientAddrFromContext(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "192.0.2.1:80"
	if got := ClientAddr(r); got.String() != "192.0.2.1" {
		t.Errorf("without context value: %v, want the peer", got)
	}
	r = r.WithContext(WithClientAddr(r.Context(), netip.MustParseAddr("198.51.100.7")))
	if got := ClientAddr(r); got.String() != "198.51.100.7" {
		t.Errorf("with context value: %v", got)
	}
	r.RemoteAddr = "@"
	if got := PeerAddr(r); got.IsValid() {
		t.Errorf("PeerAddr of %q = %v, want invalid", r.RemoteAddr, got)
	}
}

func TestValidID(t *testing.T) {
	for id, want := range map[string]bool{
		"":                                     false,
		"abc":                                  true,
		"0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0": true,
		"Root=1-63441c4a-abcdef012345678912345678;Parent=1": false, // ';' not allowed
		"a b":                           false,
		"a\nb":                          false,
		"a\"b":                          false,
		"x@host:1/path+=._-":            true,
		strings.Repeat("a", MaxIDLen):   true,
		strings.Repeat("a", MaxIDLen+1): false,
		"é":                             false,
	} {
		if got := ValidID(id); got != want {
			t.Errorf("ValidID(%q) = %v, want %v", id, got, want)
		}
	}
	a, b := NewID(), NewID()
	if a == b || len(a) != 32 || !ValidID(a) {
		t.Errorf("NewID gave %q and %q", a, b)
	}
}

func TestLogHandler(t *testing.T) {
	var buf bytes.Buffer
	h := NewLogHandler(slog.NewJSONHandler(&buf, nil))
	if NewLogHandler(h) != h {
		t.Error("NewLogHandler wrapped its own handler again")
	}
	log := slog.New(h).With("component", "test")
	ctx := WithID(context.Background(), "req-1")
	log.InfoContext(ctx, "with id", "k", "v")
	log.Info("without id")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines: %s", len(lines), buf.String())
	}
	var first, second map[string]any
	json.Unmarshal([]byte(lines[0]), &first)
	json.Unmarshal([]byte(lines[1]), &second)
	if first[IDKey] != "req-1" || first["component"] != "test" || first["k"] != "v" {
		t.Errorf("line with context = %v", first)
	}
	if _, ok := second[IDKey]; ok {
		t.Errorf("line without context = %v, want no %s", second, IDKey)
	}
}

// TestLogHandlerConformance runs the standard library's handler test suite
// on the wrapped JSON handler.
func TestLogHandlerConformance(t *testing.T) {
	var buf bytes.Buffer
	results := func() []map[string]any {
		var ms []map[string]any
		for line := range bytes.SplitSeq(buf.Bytes(), []byte("\n")) {
			if len(line) == 0 {
				continue
			}
			var m map[string]any
			if err := json.Unmarshal(line, &m); err != nil {
				t.Fatal(err)
			}
			ms = append(ms, m)
		}
		return ms
	}
	if err := slogtest.TestHandler(NewLogHandler(slog.NewJSONHandler(&buf, nil)), results); err != nil {
		t.Error(err)
	}
}

func TestNewIDUnique(t *testing.T) {
	seen := make(map[string]bool)
	for range 10000 {
		id := NewID()
		if seen[id] || len(id) != 32 || !ValidID(id) || strings.Trim(id, "0123456789abcdef") != "" {
			t.Fatalf("NewID gave %q (seen before: %v)", id, seen[id])
		}
		seen[id] = true
	}
}
