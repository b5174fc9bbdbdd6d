package bolt

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"
	bberrors "go.etcd.io/bbolt/errors"

	"github.com/issuer-oauth/issuer/internal/store"
	"github.com/issuer-oauth/issuer/internal/store/storetest"
	"github.com/issuer-oauth/issuer/internal/testutil"
)

// The conformance suite also passes with the tuning that benchmarks compare
// against, so that the comparison is between two correct stores.
func TestConformanceWithoutGroupCommitOrCache(t *testing.T) {
	storetest.Run(t, func(t *testing.T, now func() time.Time) store.Store {
		s, err := Open(filepath.Join(t.TempDir(), "issuer.db"), WithNow(now), withoutGroupCommit(), withClientCacheSize(0))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s
	})
}

var testNow = time.Date(2031, time.March, 4, 5, 6, 7, 0, time.UTC)

func openTest(t *testing.T, path string, opts ...Option) *Store {
	t.Helper()
	opts = append([]Option{WithNow(func() time.Time { return testNow })}, opts...)
	s, err := Open(path, opts...)
	if err != nil {
		t.Fatalf("Open(%q): %v", path, err)
	}
	return s
}

func mustClose(t *testing.T, s *Store) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v, want nil", err)
	}
}

func family(id string) store.Family {
	return store.Family{ID: id, ClientID: "c", Current: id + "-0", ExpiresAt: testNow.Add(time.Hour)}
}

func rotate(id string, from, to int) store.Rotation {
	return store.Rotation{
		FamilyID:  id,
		ClientID:  "c",
		OldID:     fmt.Sprintf("%s-%d", id, from),
		NewID:     fmt.Sprintf("%s-%d", id, to),
		ExpiresAt: testNow.Add(2 * time.Hour),
	}
}

// txID returns the id of the last committed transaction: it grows by one
// with every commit.
func txID(t *testing.T, s *Store) int {
	t.Helper()
	var id int
	if err := s.db.View(func(tx *bbolt.Tx) error { id = tx.ID(); return nil }); err != nil {
		t.Fatal(err)
	}
	return id
}

// gate holds the committer before every transaction until it is released,
// and records how many functions every transaction runs.
type gate struct {
	open    chan struct{}
	once    sync.Once
	mu      sync.Mutex
	batches []int
}

func newGate() *gate { return &gate{open: make(chan struct{})} }

func (g *gate) release() { g.once.Do(func() { close(g.open) }) }

func (g *gate) beforeTx(n int) {
	g.mu.Lock()
	g.batches = append(g.batches, n)
	g.mu.Unlock()
	<-g.open
}

func (g *gate) seen() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.batches)
}

// openHeld opens a store whose committer is held by a gate, busy with a
// first write, so that the calls enqueued next share the next batch. Release
// the gate to let them commit. The store is closed when the test ends, after
// the gate is released.
func openHeld(t *testing.T, path string) (*Store, *gate) {
	t.Helper()
	g := newGate()
	s := openTest(t, path, withBeforeTx(g.beforeTx))
	first := make(chan error, 1)
	go func() { first <- s.RevokeToken(context.Background(), "first", testNow.Add(time.Hour)) }()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
		if err := <-first; err != nil {
			t.Errorf("first write: %v", err)
		}
	})
	t.Cleanup(g.release) // first, should the test fail while holding
	testutil.Eventually(t, 10*time.Second, func() bool { return len(g.seen()) == 1 })
	return s, g
}

// enqueue starts call on a goroutine and waits until it has queued its
// transaction, so that calls queue in the order they are enqueued.
func enqueue(t *testing.T, s *Store, call func() error) <-chan error {
	t.Helper()
	n := s.commits.queued()
	errc := make(chan error, 1)
	go func() { errc <- call() }()
	testutil.Eventually(t, 10*time.Second, func() bool { return s.commits.queued() == n+1 })
	return errc
}

func TestGroupCommitConcurrentCallsAreDurable(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "issuer.db")
	s := openTest(t, path)
	const n = 200
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			id := fmt.Sprintf("f%d", i)
			if errs[i] = s.CreateFamily(ctx, family(id)); errs[i] != nil {
				return
			}
			for r := range 2 {
				if _, errs[i] = s.RotateRefresh(ctx, rotate(id, r, r+1)); errs[i] != nil {
					return
				}
			}
			errs[i] = s.RevokeToken(ctx, id, testNow.Add(time.Hour))
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("calls of goroutine %d: %v", i, err)
		}
	}
	mustClose(t, s)

	s = openTest(t, path)
	defer mustClose(t, s)
	for i := range n {
		id := fmt.Sprintf("f%d", i)
		f, err := s.GetFamily(ctx, id)
		if want := id + "-2"; err != nil || f.Current != want {
			t.Errorf("GetFamily(%q) after reopen = %+v, %v; want current %s", id, f, err, want)
		}
		if revoked, err := s.IsRevoked(ctx, id); err != nil || !revoked {
			t.Errorf("IsRevoked(%q) after reopen = %t, %v; want true, nil", id, revoked, err)
		}
	}
}

// TestGroupCommitBatches holds the committer while calls queue up, and
// checks that they commit together, maxBatch at a time.
func TestGroupCommitBatches(t *testing.T) {
	for _, tt := range []struct {
		calls int
		want  []int // batch sizes after the first write, which is alone
	}{
		{calls: 1, want: []int{1}},
		{calls: 50, want: []int{50}},
		{calls: maxBatch + 3, want: []int{maxBatch, 3}},
	} {
		t.Run(fmt.Sprint(tt.calls), func(t *testing.T) {
			ctx := t.Context()
			path := filepath.Join(t.TempDir(), "issuer.db")
			s, g := openHeld(t, path)
			before := txID(t, s)

			errs := make([]<-chan error, tt.calls)
			for i := range tt.calls {
				errs[i] = enqueue(t, s, func() error { return s.CreateFamily(ctx, family(fmt.Sprint(i))) })
			}
			g.release()
			for i, errc := range errs {
				if err := <-errc; err != nil {
					t.Errorf("CreateFamily %d: %v", i, err)
				}
			}
			if got, want := g.seen(), append([]int{1}, tt.want...); !slices.Equal(got, want) {
				t.Errorf("transaction sizes = %v, want %v", got, want)
			}
			if got, want := txID(t, s)-before, 1+len(tt.want); got != want {
				t.Errorf("%d writes took %d commits, want %d", 1+tt.calls, got, want)
			}
			mustClose(t, s)

			s = openTest(t, path)
			defer mustClose(t, s)
			for i := range tt.calls {
				if _, err := s.GetFamily(ctx, fmt.Sprint(i)); err != nil {
					t.Errorf("GetFamily(%d) after reopen: %v", i, err)
				}
			}
		})
	}
}

// TestGroupCommitRefusals has calls refused by the store share a batch with
// calls that succeed: the refusals do not fail the batch.
func TestGroupCommitRefusals(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "issuer.db")
	s := openTest(t, path)
	for _, f := range []store.Family{family("exists"), family("revoked"), family("rotated")} {
		if err := s.CreateFamily(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RevokeFamily(ctx, "revoked"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RotateRefresh(ctx, rotate("rotated", 0, 1)); err != nil {
		t.Fatal(err)
	}
	mustClose(t, s)

	s, g := openHeld(t, path)
	before := txID(t, s)

	rotation := func(r store.Rotation) func() error {
		return func() error { _, err := s.RotateRefresh(ctx, r); return err }
	}
	calls := []struct {
		name string
		call func() error
		want error
	}{
		{"CreateFamily(new)", func() error { return s.CreateFamily(ctx, family("new")) }, nil},
		{"CreateFamily(exists)", func() error { return s.CreateFamily(ctx, family("exists")) }, store.ErrExists},
		{"RotateRefresh(unknown)", rotation(rotate("unknown", 0, 1)), store.ErrNotFound},
		{"RotateRefresh(other client)", rotation(store.Rotation{FamilyID: "exists", ClientID: "other", OldID: "exists-0"}), store.ErrNotFound},
		{"RotateRefresh(revoked)", rotation(rotate("revoked", 0, 1)), store.ErrRevoked},
		{"RotateRefresh(reused)", rotation(rotate("rotated", 0, 2)), store.ErrReused},
		{"RotateRefresh(exists)", rotation(rotate("exists", 0, 1)), nil},
		{"RevokeFamily(unknown)", func() error { return s.RevokeFamily(ctx, "unknown") }, store.ErrNotFound},
		{"RevokeFamily(revoked)", func() error { return s.RevokeFamily(ctx, "revoked") }, nil},
		{"RevokeToken", func() error { return s.RevokeToken(ctx, "jti", testNow.Add(time.Hour)) }, nil},
	}
	errs := make([]<-chan error, len(calls))
	for i, c := range calls {
		errs[i] = enqueue(t, s, c.call)
	}
	g.release()
	for i, c := range calls {
		if err := <-errs[i]; !errors.Is(err, c.want) || (err == nil) != (c.want == nil) {
			t.Errorf("%s: got error %v, want %v", c.name, err, c.want)
		}
	}
	if got, want := g.seen(), []int{1, len(calls)}; !slices.Equal(got, want) {
		t.Errorf("transaction sizes = %v, want %v: a refusal made the batch run again", got, want)
	}
	if got := txID(t, s) - before; got != 2 {
		t.Errorf("the held write and the batch took %d commits, want 2", got)
	}

	for id, want := range map[string]store.Family{
		"new":     family("new"),
		"exists":  {ID: "exists", ClientID: "c", Current: "exists-1", ExpiresAt: testNow.Add(2 * time.Hour)},
		"rotated": {ID: "rotated", ClientID: "c", Current: "rotated-1", ExpiresAt: testNow.Add(2 * time.Hour), Revoked: true},
	} {
		got, err := s.GetFamily(ctx, id)
		if err != nil || got.Current != want.Current || got.Revoked != want.Revoked || !got.ExpiresAt.Equal(want.ExpiresAt) {
			t.Errorf("GetFamily(%q) = %+v, %v; want %+v", id, got, err, want)
		}
	}
}

var errBoom = errors.New("boom")

// TestGroupCommitFailingCall puts a function that fails, or panics, into a
// batch: it alone gets an error and the others commit.
func TestGroupCommitFailingCall(t *testing.T) {
	for _, tt := range []struct {
		name    string
		fail    func()
		wantErr string
	}{
		{"error", func() {}, errBoom.Error()},
		{"panic", func() { panic("bug") }, "panic in transaction: bug"},
	} {
		for _, pos := range []int{0, 2, 4} {
			t.Run(fmt.Sprintf("%s/at%d", tt.name, pos), func(t *testing.T) {
				ctx := t.Context()
				path := filepath.Join(t.TempDir(), "issuer.db")
				s, g := openHeld(t, path)
				before := txID(t, s)

				var mu sync.Mutex
				runs := map[string]int{}
				// fn writes key, counting its runs, then fails if told to.
				fn := func(key string, fail bool) func() error {
					return func() error {
						return s.write(ctx, "test", key, func(tx *bbolt.Tx) error {
							mu.Lock()
							runs[key]++
							mu.Unlock()
							if err := tx.Bucket(bucketMeta).Put([]byte(key), []byte("x")); err != nil {
								return err
							}
							if fail {
								tt.fail()
								return errBoom
							}
							return nil
						})
					}
				}
				var errs []<-chan error
				for i := range 5 {
					errs = append(errs, enqueue(t, s, fn(fmt.Sprint(i), i == pos)))
				}
				g.release()
				for i, errc := range errs {
					err := <-errc
					switch {
					case i == pos && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
						t.Errorf("failing call %d: got error %v, want one saying %q", i, err, tt.wantErr)
					case i != pos && err != nil:
						t.Errorf("call %d: %v", i, err)
					}
				}

				// The calls before the failing one ran twice, the others
				// once after it; it ran again alone unless it ran first.
				for i := range 5 {
					want := 1
					if i < pos || (i == pos && pos > 0) {
						want = 2
					}
					if got := runs[fmt.Sprint(i)]; got != want {
						t.Errorf("call %d ran %d times, want %d", i, got, want)
					}
				}
				// The batch failed, ran again without the failing call, which
				// then ran alone, unless it was first and so already alone.
				wantTxs := []int{1, 5, 4, 1}
				if pos == 0 {
					wantTxs = []int{1, 5, 4}
				}
				if got := g.seen(); !slices.Equal(got, wantTxs) {
					t.Errorf("transaction sizes = %v, want %v", got, wantTxs)
				}
				if got := txID(t, s) - before; got != 2 {
					t.Errorf("the held write and the batch took %d commits, want 2", got)
				}

				// The store still works, and only the failing write is missing.
				if err := s.CreateFamily(ctx, family("after")); err != nil {
					t.Errorf("CreateFamily after the failure: %v", err)
				}
				mustClose(t, s)
				s = openTest(t, path)
				defer mustClose(t, s)
				err := s.db.View(func(tx *bbolt.Tx) error {
					for i := range 5 {
						if got, want := tx.Bucket(bucketMeta).Get([]byte(fmt.Sprint(i))) != nil, i != pos; got != want {
							t.Errorf("write of call %d in the file: %t, want %t", i, got, want)
						}
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

// A lone call that panics gets an error and leaves the committer working.
func TestGroupCommitLonePanic(t *testing.T) {
	ctx := t.Context()
	s := openTest(t, filepath.Join(t.TempDir(), "issuer.db"))
	defer mustClose(t, s)
	err := s.write(ctx, "test", "", func(*bbolt.Tx) error { panic("bug") })
	if err == nil || !strings.Contains(err.Error(), "panic in transaction: bug") {
		t.Errorf("write that panics: got error %v, want a panic in transaction", err)
	}
	if err := s.CreateFamily(ctx, family("f")); err != nil {
		t.Errorf("CreateFamily after a panic: %v", err)
	}
}

// A call whose context ends while it is queued is still committed, and says
// so.
func TestGroupCommitContextEndsWhileQueued(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	s, g := openHeld(t, filepath.Join(t.TempDir(), "issuer.db"))
	errc := enqueue(t, s, func() error { return s.CreateFamily(ctx, family("f")) })
	cancel()
	g.release()
	if err := <-errc; err != nil {
		t.Errorf("CreateFamily whose context ended while queued = %v, want nil (it was committed)", err)
	}
	if _, err := s.GetFamily(t.Context(), "f"); err != nil {
		t.Errorf("GetFamily: %v", err)
	}
}

// Close commits the calls already queued; calls made once Close has begun
// fail.
func TestGroupCommitClosePending(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "issuer.db")
	s, g := openHeld(t, path)
	const n = 10
	var errs []<-chan error
	for i := range n {
		errs = append(errs, enqueue(t, s, func() error { return s.CreateFamily(ctx, family(fmt.Sprint(i))) }))
	}
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	testutil.Eventually(t, 10*time.Second, func() bool {
		s.commits.mu.Lock()
		defer s.commits.mu.Unlock()
		return s.commits.closed
	})
	if err := s.CreateFamily(ctx, family("late")); !errors.Is(err, bberrors.ErrDatabaseNotOpen) {
		t.Errorf("CreateFamily during Close: got error %v, want %v", err, bberrors.ErrDatabaseNotOpen)
	}
	g.release()
	if err := <-closed; err != nil {
		t.Errorf("Close() = %v", err)
	}
	for i, errc := range errs {
		if err := <-errc; err != nil {
			t.Errorf("CreateFamily %d queued before Close: %v", i, err)
		}
	}

	s = openTest(t, path)
	defer mustClose(t, s)
	for i := range n {
		if _, err := s.GetFamily(ctx, fmt.Sprint(i)); err != nil {
			t.Errorf("GetFamily(%d) after reopen: %v", i, err)
		}
	}
	if _, err := s.GetFamily(ctx, "late"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetFamily(late): got error %v, want %v", err, store.ErrNotFound)
	}
}

func TestCallsAfterClose(t *testing.T) {
	ctx := t.Context()
	s := openTest(t, filepath.Join(t.TempDir(), "issuer.db"))
	if err := s.CreateClient(ctx, store.Client{ID: "c"}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateFamily(ctx, family("f")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetClient(ctx, "c"); err != nil { // cached
		t.Fatal(err)
	}
	mustClose(t, s)

	for name, call := range map[string]func() error{
		"CreateFamily":  func() error { return s.CreateFamily(ctx, family("g")) },
		"RotateRefresh": func() error { _, err := s.RotateRefresh(ctx, rotate("f", 0, 1)); return err },
		"RevokeFamily":  func() error { return s.RevokeFamily(ctx, "f") },
		"RevokeToken":   func() error { return s.RevokeToken(ctx, "jti", testNow.Add(time.Hour)) },
		"GetClient":     func() error { _, err := s.GetClient(ctx, "c"); return err },
		"UpdateClient":  func() error { return s.UpdateClient(ctx, store.Client{ID: "c"}) },
		"GetFamily":     func() error { _, err := s.GetFamily(ctx, "f"); return err },
	} {
		if err := call(); !errors.Is(err, bberrors.ErrDatabaseNotOpen) {
			t.Errorf("%s after Close: got error %v, want %v", name, err, bberrors.ErrDatabaseNotOpen)
		}
	}
}

// ---------------------------------------------------------------- client cache

func testClient(id, name string) store.Client {
	return store.Client{
		ID:         id,
		Name:       name,
		SecretHash: []byte{1, 2, 3},
		GrantTypes: []string{"client_credentials"},
		Scopes:     []string{"read", "write"},
		Audiences:  []string{"https://api.example.com"},
		CreatedAt:  testNow,
	}
}

func checkGetClient(t *testing.T, s *Store, id string, want store.Client, wantErr error) {
	t.Helper()
	got, err := s.GetClient(t.Context(), id)
	if !errors.Is(err, wantErr) || (err == nil) != (wantErr == nil) {
		t.Fatalf("GetClient(%q): got error %v, want %v", id, err, wantErr)
	}
	if err == nil && !clientsEqual(got, want) {
		t.Errorf("GetClient(%q) = %+v, want %+v", id, got, want)
	}
}

func clientsEqual(a, b store.Client) bool {
	return a.ID == b.ID && a.Name == b.Name && string(a.SecretHash) == string(b.SecretHash) &&
		slices.Equal(a.GrantTypes, b.GrantTypes) && slices.Equal(a.Scopes, b.Scopes) &&
		slices.Equal(a.Audiences, b.Audiences) && a.CreatedAt.Equal(b.CreatedAt)
}

func TestClientCacheSeesWrites(t *testing.T) {
	ctx := t.Context()
	s := openTest(t, filepath.Join(t.TempDir(), "issuer.db"))
	defer mustClose(t, s)

	v1, v2, v3 := testClient("c", "one"), testClient("c", "two"), testClient("c", "three")
	if err := s.CreateClient(ctx, v1); err != nil {
		t.Fatal(err)
	}
	checkGetClient(t, s, "c", v1, nil)
	if got := s.clients.len(); got != 1 {
		t.Fatalf("cached clients = %d, want 1", got)
	}
	if err := s.UpdateClient(ctx, v2); err != nil {
		t.Fatal(err)
	}
	checkGetClient(t, s, "c", v2, nil)
	if err := s.DeleteClient(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	checkGetClient(t, s, "c", store.Client{}, store.ErrNotFound)
	if err := s.CreateClient(ctx, v3); err != nil {
		t.Fatal(err)
	}
	checkGetClient(t, s, "c", v3, nil)
}

// TestClientCacheServesFromMemory changes a client behind the store's back:
// only an uncached store sees it, which shows that the cache is used.
func TestClientCacheServesFromMemory(t *testing.T) {
	for _, tt := range []struct {
		name string
		size int
		want string
	}{
		{"cached", clientCacheSize, "old"},
		{"uncached", 0, "new"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := openTest(t, filepath.Join(t.TempDir(), "issuer.db"), withClientCacheSize(tt.size))
			defer mustClose(t, s)
			if err := s.CreateClient(t.Context(), testClient("c", "old")); err != nil {
				t.Fatal(err)
			}
			checkGetClient(t, s, "c", testClient("c", "old"), nil)
			err := s.db.Update(func(tx *bbolt.Tx) error { return put(tx.Bucket(bucketClients), "c", testClient("c", "new")) })
			if err != nil {
				t.Fatal(err)
			}
			checkGetClient(t, s, "c", testClient("c", tt.want), nil)
		})
	}
}

func TestClientCacheReturnsCopies(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "issuer.db"))
	defer mustClose(t, s)
	want := testClient("c", "C")
	if err := s.CreateClient(t.Context(), want); err != nil {
		t.Fatal(err)
	}
	// The first GetClient fills the cache, the second reads it.
	for range 2 {
		got, err := s.GetClient(t.Context(), "c")
		if err != nil {
			t.Fatal(err)
		}
		got.Name = "changed"
		got.SecretHash[0] = 0xff
		got.GrantTypes[0] = "changed"
		got.Scopes[0] = "changed"
		got.Audiences[0] = "changed"
		checkGetClient(t, s, "c", want, nil)
	}
}

func TestClientCacheBounded(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "issuer.db"), withClientCacheSize(3))
	defer mustClose(t, s)
	for i := range 10 {
		if err := s.CreateClient(t.Context(), testClient(fmt.Sprint(i), fmt.Sprint("client ", i))); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		for i := range 10 {
			checkGetClient(t, s, fmt.Sprint(i), testClient(fmt.Sprint(i), fmt.Sprint("client ", i)), nil)
			if got := s.clients.len(); got > 3 {
				t.Fatalf("cached clients = %d, want at most 3", got)
			}
		}
	}
	if got := s.clients.len(); got != 3 {
		t.Errorf("cached clients = %d, want 3", got)
	}
}

// A client read before a write of a client finishes is not cached after it.
func TestClientCacheStaleRead(t *testing.T) {
	c := newClientCache(10)
	gen := c.generation()
	c.invalidate("c") // a write, between the read of the file and add
	c.add(gen, testClient("c", "stale"))
	if got, ok := c.get("c"); ok {
		t.Errorf("get after a stale add = %+v, want nothing cached", got)
	}
	c.add(c.generation(), testClient("c", "fresh"))
	if got, ok := c.get("c"); !ok || got.Name != "fresh" {
		t.Errorf("get = %+v, %t; want the fresh client", got, ok)
	}
}
