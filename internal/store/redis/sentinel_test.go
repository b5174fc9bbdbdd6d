package redis_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/issuer-oauth/issuer/internal/redistest"
	"github.com/issuer-oauth/issuer/internal/store"
	"github.com/issuer-oauth/issuer/internal/store/redis"
	"github.com/issuer-oauth/issuer/internal/store/storetest"
)

// TestSentinel runs the conformance suite on a store opened through a
// Redis Sentinel that monitors a password-protected master.
func TestSentinel(t *testing.T) {
	srv := redistest.Start(t, redistest.WithPassword("s3cret"))
	sen := redistest.StartSentinel(t, srv, "mymaster")
	admin := goredis.NewClient(&goredis.Options{Addr: srv.Addr(), Password: "s3cret"})
	t.Cleanup(func() { admin.Close() })

	t.Run("Conformance", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T, now func() time.Time) store.Store {
			if err := admin.FlushDB(t.Context()).Err(); err != nil {
				t.Fatalf("FLUSHDB: %v", err)
			}
			s, err := redis.Open(t.Context(), sen.URL(), redis.WithSentinelMaster("mymaster"), redis.WithNow(now))
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			return s
		})
	})

	t.Run("WritesReachTheMaster", func(t *testing.T) {
		s := open(t, sen.URL(), redis.WithSentinelMaster("mymaster"), redis.WithPrefix("via-sentinel"))
		if err := s.CreateClient(t.Context(), store.Client{ID: "c1", SecretHash: []byte("h"), CreatedAt: time.Now()}); err != nil {
			t.Fatalf("CreateClient: %v", err)
		}
		if got, err := srv.Do("HEXISTS", "via-sentinel:{clients}", "c1"); err != nil || got != "1" {
			t.Errorf("HEXISTS on the master = %q, %v; want 1", got, err)
		}
	})

	t.Run("SeveralSentinelsOneDown", func(t *testing.T) {
		// The first Sentinel does not answer; the second does. The first
		// URL's password is the master's.
		urls := "redis://:s3cret@127.0.0.1:1, redis://" + sen.Addr()
		s := open(t, urls, redis.WithSentinelMaster("mymaster"))
		if err := s.Ping(t.Context()); err != nil {
			t.Errorf("Ping() = %v, want nil", err)
		}
	})
}

// TestSentinelPassword opens a store through a Sentinel that requires a
// password of its own, given as sentinel_password.
func TestSentinelPassword(t *testing.T) {
	srv := redistest.Start(t)
	sen := redistest.StartSentinel(t, srv, "m-1", redistest.WithPassword("sentinel-s3cret"))
	if !strings.Contains(sen.URL(), "?sentinel_password=sentinel-s3cret") {
		t.Fatalf("URL() = %q, want the sentinel_password option", sen.URL())
	}
	s := open(t, sen.URL(), redis.WithSentinelMaster("m-1"))
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping() = %v, want nil", err)
	}

	noPassword := strings.Split(sen.URL(), "?")[0]
	_, err := redis.Open(t.Context(), noPassword, redis.WithSentinelMaster("m-1"))
	if err == nil || !strings.Contains(err.Error(), sen.Addr()) {
		t.Errorf("Open without sentinel_password = %v, want an error naming %s", err, sen.Addr())
	}
}

// TestSentinelErrors checks that a failure to open through Sentinels is
// quick, says what is wrong, names the Sentinel URLs and never shows a
// password.
func TestSentinelErrors(t *testing.T) {
	srv := redistest.Start(t, redistest.WithPassword("hunter2"))
	sen := redistest.StartSentinel(t, srv, "mymaster")
	senAddr := sen.Addr()
	tests := []struct {
		name            string
		urls, master    string
		wantUnavailable bool
		wantInMessage   []string
	}{
		{
			name: "unknown master", urls: sen.URL(), master: "nope",
			wantInMessage: []string{"redis://:xxxxx@" + senAddr, `monitors no master named "nope"`, `(it monitors "mymaster")`, "sentinel monitor"},
		},
		{
			name: "unknown master, several sentinels", urls: "redis://127.0.0.1:1," + sen.URL(), master: "nope",
			wantInMessage: []string{"Sentinels at any of redis://127.0.0.1:1, redis://:xxxxx@" + senAddr, `monitor no master named "nope" (they monitor "mymaster")`},
		},
		{
			name: "unreachable sentinel", urls: "redis://:hunter2@127.0.0.1:1/0?sentinel_password=hunter2", master: "mymaster",
			wantUnavailable: true,
			wantInMessage:   []string{`cannot reach Redis master "mymaster" through the Sentinel at redis://:xxxxx@127.0.0.1:1/0?sentinel_password=xxxxx`},
		},
		{
			name: "wrong master password", urls: "redis://:wrong-hunter2@" + senAddr, master: "mymaster",
			wantInMessage: []string{`connect to Redis master "mymaster" through the Sentinel at redis://:xxxxx@` + senAddr, "WRONGPASS"},
		},
		{
			name: "password option", urls: "redis://" + senAddr + "?password=hunter2", master: "mymaster",
			wantInMessage: []string{"the option password is not supported", "?password=xxxxx"},
		},
		{
			name: "conflicting master_name", urls: "redis://" + senAddr + "?master_name=other", master: "mymaster",
			wantInMessage: []string{`names master "other", but the master is "mymaster"`},
		},
		{
			name: "replica routing", urls: "redis://" + senAddr + "?route_randomly=true", master: "mymaster",
			wantInMessage: []string{"route_randomly", "not supported"},
		},
		{
			name: "mixed schemes", urls: "redis://127.0.0.1:1,rediss://:hunter2@127.0.0.1:2", master: "mymaster",
			wantInMessage: []string{"mix redis:// and rediss://"},
		},
		{
			name: "bad scheme", urls: "http://:hunter2@" + senAddr, master: "mymaster",
			wantInMessage: []string{"invalid URL scheme"},
		},
		{
			name: "unknown option", urls: "redis://" + senAddr + "?sentinel_pasword=hunter2", master: "mymaster",
			wantInMessage: []string{"?sentinel_pasword=xxxxx", "unexpected option: sentinel_pasword"},
		},
		{
			name: "unparsable", urls: "redis://:hunter2@127.0.0.1:port?sentinel_password=hunter2", master: "mymaster",
			wantInMessage: []string{"bad Redis URL redis://xxxxx@127.0.0.1:port?xxxxx"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			s, err := redis.Open(t.Context(), tt.urls, redis.WithSentinelMaster(tt.master))
			if err == nil {
				s.Close()
				t.Fatalf("Open(%q) succeeded, want an error", tt.urls)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("Open took %v, want under 3s", d)
			}
			msg := err.Error()
			if strings.Contains(msg, "hunter2") {
				t.Errorf("Open error %q contains a password", msg)
			}
			for _, want := range tt.wantInMessage {
				if !strings.Contains(msg, want) {
					t.Errorf("Open error %q does not contain %q", msg, want)
				}
			}
			if got := errors.Is(err, store.ErrUnavailable); got != tt.wantUnavailable {
				t.Errorf("Open error %q: errors.Is(err, ErrUnavailable) = %t, want %t", msg, got, tt.wantUnavailable)
			}
		})
	}
}

// TestSentinelMasterIgnoredByNew checks that WithSentinelMaster does not
// change a store that New makes on a client of its own.
func TestSentinelMasterIgnoredByNew(t *testing.T) {
	srv := redistest.Start(t)
	client := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { client.Close() })
	s := redis.New(client, redis.WithSentinelMaster("mymaster"))
	t.Cleanup(func() { s.Close() })
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping() = %v, want nil", err)
	}
}

// TestSentinelFailover crashes the master, has the Sentinel promote the
// replica, and checks that a store opened through the Sentinel follows: it
// keeps its data and writes again once the Sentinel announces the new
// master, failing with store.ErrUnavailable meanwhile.
func TestSentinelFailover(t *testing.T) {
	// No delay before the replica's first (diskless) synchronisation.
	master := redistest.Start(t, redistest.WithArgs("--repl-diskless-sync-delay", "0"))
	_, masterPort, _ := strings.Cut(master.Addr(), ":")
	replica := redistest.Start(t, redistest.WithArgs("--replicaof", "127.0.0.1", masterPort))
	sen := redistest.StartSentinel(t, master, "mymaster")
	s := open(t, sen.URL(), redis.WithSentinelMaster("mymaster"))
	ctx := t.Context()
	deadline := time.Now().Add(20 * time.Second)
	poll := func(what string, done func() (string, bool)) {
		t.Helper()
		for {
			got, ok := done()
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 20s; last: %s", what, got)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	if err := s.CreateClient(ctx, store.Client{ID: "before", SecretHash: []byte("h"), CreatedAt: time.Now()}); err != nil {
		t.Fatalf("CreateClient: %v", err)
	}
	// The replica holds the write, and the Sentinel knows the replica
	// (from the master's INFO), before the master goes.
	poll("the replica holds the write", func() (string, bool) {
		got, err := replica.Do("HEXISTS", "issuer:{clients}", "before")
		return fmt.Sprint(got, err), err == nil && got == "1"
	})
	poll("the Sentinel knows the replica", func() (string, bool) {
		got, err := sen.Do("SENTINEL", "MASTER", "mymaster")
		return fmt.Sprint(got, err), err == nil && strings.Contains(got, " num-slaves 1 ")
	})

	master.Stop()
	poll("SENTINEL FAILOVER", func() (string, bool) {
		got, err := sen.Do("SENTINEL", "FAILOVER", "mymaster")
		return fmt.Sprint(got, err), err == nil
	})
	poll("the Sentinel announces the replica", func() (string, bool) {
		got, err := sen.Do("SENTINEL", "get-master-addr-by-name", "mymaster")
		return fmt.Sprint(got, err), err == nil && got == strings.Replace(replica.Addr(), ":", " ", 1)
	})

	// Until the client has switched, calls fail with ErrUnavailable.
	poll("CreateClient after the failover", func() (string, bool) {
		err := s.CreateClient(ctx, store.Client{ID: "after", SecretHash: []byte("h"), CreatedAt: time.Now()})
		if err != nil && !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("CreateClient during the failover = %v, want nil or store.ErrUnavailable", err)
		}
		return fmt.Sprint(err), err == nil
	})
	for _, id := range []string{"before", "after"} {
		if got, err := replica.Do("HEXISTS", "issuer:{clients}", id); err != nil || got != "1" {
			t.Errorf("HEXISTS %s on the new master = %q, %v; want 1", id, got, err)
		}
	}
}
