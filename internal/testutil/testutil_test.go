package testutil_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/issuer-oauth/issuer/internal/testutil"
)

func TestClock(t *testing.T) {
	t0 := time.Date(2031, time.March, 4, 5, 6, 7, 0, time.UTC)
	c := testutil.NewClock(t0)
	if got := c.Now(); !got.Equal(t0) {
		t.Fatalf("Now() = %v, want %v", got, t0)
	}
	c.Advance(time.Hour)
	if got, want := c.Now(), t0.Add(time.Hour); !got.Equal(want) {
		t.Errorf("after Advance(1h): Now() = %v, want %v", got, want)
	}
	c.Advance(-time.Minute)
	if got, want := c.Now(), t0.Add(59*time.Minute); !got.Equal(want) {
		t.Errorf("after Advance(-1m): Now() = %v, want %v", got, want)
	}
	c.Set(t0)
	if got := c.Now(); !got.Equal(t0) {
		t.Errorf("after Set: Now() = %v, want %v", got, t0)
	}
	var zero testutil.Clock
	if got := zero.Now(); !got.IsZero() {
		t.Errorf("zero Clock: Now() = %v, want the zero time", got)
	}
}

// TestClockConcurrent is for the race detector.
func TestClockConcurrent(t *testing.T) {
	c := testutil.NewClock(time.Unix(0, 0))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				c.Advance(time.Second)
				_ = c.Now()
			}
		})
	}
	wg.Go(func() { c.Set(time.Unix(0, 0)) })
	wg.Wait()
}

// recorder is a testing.TB whose Fatalf records its message.
type recorder struct {
	testing.TB
	fatal string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) { r.fatal = fmt.Sprintf(format, args...) }

func TestEventually(t *testing.T) {
	calls := 0
	testutil.Eventually(t, time.Second, func() bool {
		calls++
		return calls == 3
	})
	if calls != 3 {
		t.Errorf("cond called %d times, want 3", calls)
	}

	r := &recorder{TB: t}
	start := time.Now()
	testutil.Eventually(r, 30*time.Millisecond, func() bool { return false })
	if elapsed := time.Since(start); elapsed < 30*time.Millisecond {
		t.Errorf("gave up after %v, want at least 30ms", elapsed)
	}
	if want := "condition not met within 30ms"; r.fatal != want {
		t.Errorf("failure message %q, want %q", r.fatal, want)
	}
}

func TestFreePort(t *testing.T) {
	port := testutil.FreePort(t)
	if port <= 0 || port > 65535 {
		t.Errorf("FreePort() = %d, want a TCP port", port)
	}
	if addr := testutil.FreeAddr(t); !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Errorf("FreeAddr() = %q, want 127.0.0.1:port", addr)
	}
}

func TestBuffer(t *testing.T) {
	var b testutil.Buffer
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				fmt.Fprint(&b, "x")
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if got := len(b.String()); got != 400 {
		t.Errorf("len(String()) = %d, want 400", got)
	}

	bounded := testutil.Buffer{Max: 4}
	fmt.Fprint(&bounded, "abc")
	fmt.Fprint(&bounded, "defg")
	if got, want := bounded.String(), "defg"; got != want {
		t.Errorf("bounded String() = %q, want %q", got, want)
	}
}
