package redistest_test

import (
	"strings"
	"testing"

	"github.com/issuer-oauth/issuer/internal/redistest"
)

func TestStartStopRestart(t *testing.T) {
	s := redistest.Start(t)
	if got, err := s.Do("SET", "k", "v"); err != nil || got != "OK" {
		t.Fatalf("SET = %q, %v; want OK", got, err)
	}
	if !strings.HasPrefix(s.URL(), "redis://127.0.0.1:") {
		t.Errorf("URL() = %q, want redis://127.0.0.1:port/0", s.URL())
	}
	s.Stop()
	if _, err := s.Do("PING"); err == nil {
		t.Fatal("PING after Stop succeeded, want an error")
	}
	s.Stop() // twice is fine
	s.Restart()
	// Without AOF, the data is gone.
	if got, err := s.Do("EXISTS", "k"); err != nil || got != "0" {
		t.Errorf("EXISTS k after Restart = %q, %v; want 0", got, err)
	}
}

func TestAOFSurvivesRestart(t *testing.T) {
	s := redistest.Start(t, redistest.WithAOF())
	if _, err := s.Do("SET", "k", "v"); err != nil {
		t.Fatal(err)
	}
	s.Restart()
	if got, err := s.Do("GET", "k"); err != nil || got != "v" {
		t.Errorf("GET k after Restart = %q, %v; want v", got, err)
	}
}

func TestPassword(t *testing.T) {
	s := redistest.Start(t, redistest.WithPassword("s3cret"))
	if got, err := s.Do("PING"); err != nil || got != "PONG" {
		t.Errorf("PING = %q, %v; want PONG", got, err)
	}
	if !strings.Contains(s.URL(), ":s3cret@") {
		t.Errorf("URL() = %q, want the password in it", s.URL())
	}
}

func TestCluster(t *testing.T) {
	c := redistest.StartCluster(t, 3)
	if got := len(c.Addrs()); got != 3 {
		t.Fatalf("len(Addrs()) = %d, want 3", got)
	}
	if got := strings.Count(c.URL(), ","); got != 2 {
		t.Errorf("URL() = %q, want 3 comma-separated URLs", c.URL())
	}
	for _, n := range c.Nodes {
		info, err := n.Do("CLUSTER", "INFO")
		if err != nil || !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_known_nodes:3") {
			t.Errorf("CLUSTER INFO on %s = %q, %v; want state ok with 3 nodes", n.Addr(), info, err)
		}
	}
}
