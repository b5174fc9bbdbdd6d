package redissub_test

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/issuer-oauth/issuer/internal/redissub"
	"github.com/issuer-oauth/issuer/internal/redistest"
	"github.com/issuer-oauth/issuer/internal/testutil"
)

// events records what Run reports, in order.
type events struct {
	mu   sync.Mutex
	list []string
}

func (e *events) add(s string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.list = append(e.list, s)
}

// take returns the events since its last call.
func (e *events) take() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	l := e.list
	e.list = nil
	return l
}

// count returns how many of the events not taken yet are s.
func (e *events) count(s string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, v := range e.list {
		if v == s {
			n++
		}
	}
	return n
}

// sub is a Run in the background.
type sub struct {
	events events
	logs   testutil.Buffer
	stop   func()
}

// run starts Run on client and stops it when t ends.
func run(t *testing.T, client goredis.UniversalClient, pingIdle time.Duration, channels ...string) *sub {
	t.Helper()
	s := &sub{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		redissub.Run(ctx, client, slog.New(slog.NewTextHandler(&s.logs, nil)), redissub.Config{
			Channels:   channels,
			Message:    func(ch, payload string) { s.events.add(ch + " " + payload) },
			Subscribed: func() { s.events.add("subscribed") },
			Down:       func() { s.events.add("down") },
			Name:       "test subscription",
			WhileDown:  "retrying",
			PingIdle:   pingIdle,
		})
	}()
	s.stop = func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return within 5s of its context ending")
		}
	}
	t.Cleanup(s.stop)
	return s
}

func newClient(t *testing.T, opt *goredis.Options) *goredis.Client {
	c := goredis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	return c
}

func TestMessagesAndResubscription(t *testing.T) {
	srv := redistest.Start(t)
	client := newClient(t, &goredis.Options{Addr: srv.Addr()})
	s := run(t, client, 0, "a", "b")
	testutil.Eventually(t, 5*time.Second, func() bool { return s.events.count("subscribed") == 1 })

	for _, m := range [][2]string{{"a", "1"}, {"b", "2"}, {"c", "ignored"}, {"a", "3"}} {
		srv.Do("PUBLISH", m[0], m[1])
	}
	testutil.Eventually(t, 5*time.Second, func() bool { return s.events.count("a 3") == 1 })
	if got, want := s.events.take(), []string{"subscribed", "a 1", "b 2", "a 3"}; !slices.Equal(got, want) {
		t.Errorf("events = %q, want %q", got, want)
	}

	// A killed connection: down, then subscribed again on a new one.
	if _, err := srv.Do("CLIENT", "KILL", "TYPE", "pubsub"); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, func() bool { return s.events.count("subscribed") == 1 })
	srv.Do("PUBLISH", "b", "4")
	testutil.Eventually(t, 5*time.Second, func() bool { return s.events.count("b 4") == 1 })
	if got, want := s.events.take(), []string{"down", "subscribed", "b 4"}; !slices.Equal(got, want) {
		t.Errorf("events after CLIENT KILL = %q, want %q", got, want)
	}
	logs := s.logs.String()
	for _, want := range []string{`level=WARN msg="test subscription lost; retrying"`, `level=INFO msg="test subscription re-established"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs do not contain %s:\n%s", want, logs)
		}
	}

	// Redis restarted: the same.
	srv.Restart()
	testutil.Eventually(t, 10*time.Second, func() bool { return s.events.count("subscribed") == 1 })
	if got := s.events.take(); got[0] != "down" || got[len(got)-1] != "subscribed" {
		t.Errorf("events after a restart = %q, want down first and subscribed last", got)
	}

	s.stop()
	if got, want := s.events.take(), []string{"down"}; !slices.Equal(got, want) {
		t.Errorf("events after the context ended = %q, want %q", got, want)
	}
}

// TestSilentSubscription: an idle subscription that answers its pings is
// kept; one that stops answering is replaced.
func TestSilentSubscription(t *testing.T) {
	const ping = 50 * time.Millisecond
	srv := redistest.Start(t)
	s := run(t, newClient(t, &goredis.Options{Addr: srv.Addr()}), ping, "a")
	testutil.Eventually(t, 5*time.Second, func() bool { return s.events.count("subscribed") == 1 })
	time.Sleep(10 * ping) // several ping rounds
	if got, want := s.events.take(), []string{"subscribed"}; !slices.Equal(got, want) {
		t.Errorf("events while idle = %q, want %q", got, want)
	}
	if l := s.logs.String(); l != "" {
		t.Errorf("logged while idle:\n%s", l)
	}

	// The server stops answering, the connection stays up.
	if _, err := srv.Do("CLIENT", "PAUSE", "1000", "ALL"); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, func() bool { return s.events.count("down") > 0 })
	testutil.Eventually(t, 5*time.Second, func() bool { return s.events.count("subscribed") == 1 })
	if l := s.logs.String(); !strings.Contains(l, "no answer to PING") {
		t.Errorf("logs do not say why:\n%s", l)
	}
}

// TestSubscribeForbidden: a user that may not subscribe keeps failing; the
// outage is logged once.
func TestSubscribeForbidden(t *testing.T) {
	srv := redistest.Start(t)
	if _, err := srv.Do("ACL", "SETUSER", "nopubsub", "on", ">pw", "~*", "+@all", "resetchannels"); err != nil {
		t.Fatal(err)
	}
	client := newClient(t, &goredis.Options{Addr: srv.Addr(), Username: "nopubsub", Password: "pw"})
	s := run(t, client, 0, "a")
	testutil.Eventually(t, 5*time.Second, func() bool { return s.events.count("down") >= 3 })
	if n := s.events.count("subscribed"); n != 0 {
		t.Errorf("subscribed %d times without the right to", n)
	}
	if l := s.logs.String(); strings.Count(l, "test subscription failed; retrying") != 1 || !strings.Contains(l, "NOPERM") {
		t.Errorf("logs = %s, want one warning with the NOPERM error", l)
	}
}
