package bolt_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"
	bberrors "go.etcd.io/bbolt/errors"

	"github.com/issuer-oauth/issuer/internal/store"
	"github.com/issuer-oauth/issuer/internal/store/bolt"
	"github.com/issuer-oauth/issuer/internal/store/storetest"
	"github.com/issuer-oauth/issuer/internal/testutil"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, now func() time.Time) store.Store {
		s, err := bolt.Open(filepath.Join(t.TempDir(), "issuer.db"), bolt.WithNow(now))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s
	})
}

// newClock returns a fake clock at a fixed time.
func newClock() *testutil.Clock {
	return testutil.NewClock(time.Date(2031, time.March, 4, 5, 6, 7, 0, time.UTC))
}

func open(t *testing.T, path string, clock *testutil.Clock) *bolt.Store {
	t.Helper()
	s, err := bolt.Open(path, bolt.WithNow(clock.Now))
	if err != nil {
		t.Fatalf("Open(%q): %v", path, err)
	}
	return s
}

func closeStore(t *testing.T, s *bolt.Store) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v, want nil", err)
	}
}

func TestOpenCreatesPrivateFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "issuer")
	path := filepath.Join(dir, "issuer.db")
	s := open(t, path, newClock())
	defer closeStore(t, s)

	for _, tt := range []struct {
		path string
		want fs.FileMode
	}{
		{filepath.Dir(dir), fs.ModeDir | 0o700},
		{dir, fs.ModeDir | 0o700},
		{path, 0o600},
	} {
		fi, err := os.Stat(tt.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode(); got != tt.want {
			t.Errorf("mode of %s = %v, want %v", tt.path, got, tt.want)
		}
	}
}

func TestReopenKeepsData(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "issuer.db")
	clock := newClock()
	now := clock.Now()

	client := store.Client{ID: "c", Name: "C", SecretHash: []byte{1, 2}, Scopes: []string{"read"}, CreatedAt: now}
	family := store.Family{ID: "f", ClientID: "c", Current: "jti-1", ExpiresAt: now.Add(time.Hour)}
	key := store.Key{ID: "k", Alg: "ES256", Private: []byte{0, 0xff}, NotBefore: now}

	s := open(t, path, clock)
	if err := s.CreateClient(ctx, client); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateFamily(ctx, family); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RotateRefresh(ctx, store.Rotation{FamilyID: "f", ClientID: "c", OldID: "jti-1", NewID: "jti-2", ExpiresAt: now.Add(2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeToken(ctx, "access-1", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.InitKeys(ctx, key); err != nil {
		t.Fatal(err)
	}
	closeStore(t, s)

	s = open(t, path, clock)
	defer closeStore(t, s)
	gotClient, err := s.GetClient(ctx, "c")
	if err != nil || gotClient.Name != "C" || !gotClient.CreatedAt.Equal(now) {
		t.Errorf("GetClient after reopen = %+v, %v; want %+v", gotClient, err, client)
	}
	gotFamily, err := s.GetFamily(ctx, "f")
	if err != nil || gotFamily.Current != "jti-2" || !gotFamily.ExpiresAt.Equal(now.Add(2*time.Hour)) {
		t.Errorf("GetFamily after reopen = %+v, %v; want current jti-2, expiring in 2h", gotFamily, err)
	}
	if revoked, err := s.IsRevoked(ctx, "access-1"); err != nil || !revoked {
		t.Errorf("IsRevoked after reopen = %t, %v; want true, nil", revoked, err)
	}
	keys, err := s.ListKeys(ctx)
	if err != nil || len(keys) != 1 || keys[0].ID != "k" || string(keys[0].Private) != string(key.Private) {
		t.Errorf("ListKeys after reopen = %+v, %v; want [%+v]", keys, err, key)
	}
}

func TestOpenInUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "issuer.db")
	s := open(t, path, newClock())
	defer s.Close() // closed again below; a second Close does nothing

	start := time.Now()
	s2, err := bolt.Open(path)
	elapsed := time.Since(start)
	if err == nil {
		s2.Close()
		t.Fatal("second Open of the same file succeeded, want an error")
	}
	if !strings.Contains(err.Error(), "is in use by another issuer process") {
		t.Errorf("second Open: error %q does not say the data dir is in use", err)
	}
	if !errors.Is(err, bberrors.ErrTimeout) {
		t.Errorf("second Open: got error %v, want it to wrap %v", err, bberrors.ErrTimeout)
	}
	if elapsed > 5*time.Second {
		t.Errorf("second Open took %v, want it to fail within seconds", elapsed)
	}

	// Once the first store is closed, the file opens again.
	closeStore(t, s)
	closeStore(t, open(t, path, newClock()))
}

// countKeys returns how many records each bucket of the file holds, reading
// the file directly.
func countKeys(t *testing.T, path string) map[string]int {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatalf("bbolt.Open(%q): %v", path, err)
	}
	defer db.Close()
	counts := map[string]int{}
	err = db.View(func(tx *bbolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bbolt.Bucket) error {
			return b.ForEach(func(_, _ []byte) error {
				counts[string(name)]++
				return nil
			})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return counts
}

func TestSweep(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "issuer.db")
	clock := newClock()
	now := clock.Now()

	s := open(t, path, clock)
	for _, f := range []store.Family{
		{ID: "short", ClientID: "c", Current: "a", ExpiresAt: now.Add(time.Hour)},
		{ID: "short-revoked", ClientID: "c", Current: "b", ExpiresAt: now.Add(time.Hour)},
		{ID: "long", ClientID: "c", Current: "c", ExpiresAt: now.Add(3 * time.Hour)},
	} {
		if err := s.CreateFamily(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RevokeFamily(ctx, "short-revoked"); err != nil {
		t.Fatal(err)
	}
	for jti, until := range map[string]time.Time{"short": now.Add(time.Hour), "long": now.Add(3 * time.Hour)} {
		if err := s.RevokeToken(ctx, jti, until); err != nil {
			t.Fatal(err)
		}
		if err := s.UseOnce(ctx, jti, until); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateClient(ctx, store.Client{ID: "c"}); err != nil {
		t.Fatal(err)
	}

	// Nothing has expired yet.
	if n, err := s.Sweep(ctx); err != nil || n != 0 {
		t.Errorf("Sweep() before expiry = %d, %v; want 0, nil", n, err)
	}

	// Expired records are absent at once, but still in the file until swept.
	clock.Advance(2 * time.Hour)
	if _, err := s.GetFamily(ctx, "short"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetFamily(expired): got error %v, want %v", err, store.ErrNotFound)
	}
	closeStore(t, s)
	before := countKeys(t, path)
	if got, want := before["families"], 3; got != want {
		t.Errorf("families in file before Sweep = %d, want %d", got, want)
	}
	if got, want := before["revoked_tokens"], 2; got != want {
		t.Errorf("revoked tokens in file before Sweep = %d, want %d", got, want)
	}
	// Single-use values reach the file only at Close, and only live ones:
	// "long" is written, the expired "short" is not.
	if got, want := before["single_use"], 1; got != want {
		t.Errorf("single-use values in file after Close = %d, want %d", got, want)
	}

	s = open(t, path, clock)
	n, err := s.Sweep(ctx)
	if err != nil {
		t.Fatalf("Sweep() = %v", err)
	}
	if got, want := n, 3; got != want { // 2 families, 1 revoked token id
		t.Errorf("Sweep() removed %d records, want %d", got, want)
	}
	closeStore(t, s)

	after := countKeys(t, path)
	for bucket, want := range map[string]int{"families": 1, "revoked_tokens": 1, "single_use": 1, "clients": 1} {
		if got := after[bucket]; got != want {
			t.Errorf("records in bucket %s after Sweep = %d, want %d", bucket, got, want)
		}
	}

	// The survivors are intact.
	s = open(t, path, clock)
	defer closeStore(t, s)
	if _, err := s.GetFamily(ctx, "long"); err != nil {
		t.Errorf("GetFamily(%q) after Sweep: %v", "long", err)
	}
	if revoked, err := s.IsRevoked(ctx, "long"); err != nil || !revoked {
		t.Errorf("IsRevoked(%q) after Sweep = %t, %v; want true, nil", "long", revoked, err)
	}
	if err := s.UseOnce(ctx, "long", now.Add(3*time.Hour)); !errors.Is(err, store.ErrReplayed) {
		t.Errorf("UseOnce(%q) after Sweep = %v, want %v", "long", err, store.ErrReplayed)
	}
}

// TestSweepForgetsSingleUse: Sweep counts the expired single-use values it
// forgets from memory, and keeps the live ones.
func TestSweepForgetsSingleUse(t *testing.T) {
	ctx := t.Context()
	clock := newClock()
	now := clock.Now()
	s := open(t, filepath.Join(t.TempDir(), "issuer.db"), clock)
	defer closeStore(t, s)
	for id, until := range map[string]time.Time{"short": now.Add(time.Hour), "long": now.Add(3 * time.Hour)} {
		if err := s.UseOnce(ctx, id, until); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(2 * time.Hour)
	if n, err := s.Sweep(ctx); err != nil || n != 1 {
		t.Errorf("Sweep() = %d, %v; want 1, nil", n, err)
	}
	if n, err := s.Sweep(ctx); err != nil || n != 0 {
		t.Errorf("second Sweep() = %d, %v; want 0, nil", n, err)
	}
	if err := s.UseOnce(ctx, "long", now.Add(3*time.Hour)); !errors.Is(err, store.ErrReplayed) {
		t.Errorf("UseOnce(%q) after Sweep = %v, want %v", "long", err, store.ErrReplayed)
	}
}

// TestUseOnceSurvivesReopen: a value used before Close is still refused
// after the same file is opened again, and again after a second restart,
// until its end.
func TestUseOnceSurvivesReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "issuer.db")
	clock := newClock()
	until := clock.Now().Add(5 * time.Minute)

	s := open(t, path, clock)
	if err := s.UseOnce(ctx, "jti", until); err != nil {
		t.Fatal(err)
	}
	closeStore(t, s)
	if err := s.UseOnce(ctx, "other", until); err == nil {
		t.Errorf("UseOnce after Close = nil, want an error")
	}

	for restart := 1; restart <= 2; restart++ {
		s = open(t, path, clock)
		if err := s.UseOnce(ctx, "jti", until); !errors.Is(err, store.ErrReplayed) {
			t.Errorf("UseOnce(%q) after restart %d = %v, want %v", "jti", restart, err, store.ErrReplayed)
		}
		closeStore(t, s)
	}

	clock.Advance(5 * time.Minute)
	s = open(t, path, clock)
	defer closeStore(t, s)
	if err := s.UseOnce(ctx, "jti", clock.Now().Add(time.Minute)); err != nil {
		t.Errorf("UseOnce(%q) at its end after restart = %v, want nil", "jti", err)
	}
}

func TestCloseTwice(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "issuer.db"), newClock())
	closeStore(t, s)
	closeStore(t, s)
	if err := s.Ping(t.Context()); err == nil {
		t.Error("Ping() after Close = nil, want an error")
	}
}
