package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/issuer-oauth/issuer/internal/store"
)

// clientCASTests check the client writes that never undo a concurrent
// change: UpdateClient's compare-and-set on Version, the field-scoped
// SetClientSecret, and GetClientFresh, the read they start from.
var clientCASTests = []subtest{
	{"FreshRead", testClientFreshRead},
	{"UpdateVersion", testClientUpdateVersion},
	{"SetSecret", testClientSetSecret},
	{"SetSecretUnknown", testClientSetSecretUnknown},
	{"StaleUpdateAfterSetSecret", testClientStaleUpdateAfterSetSecret},
	{"SecretAgainstUpdateRace", testClientSecretAgainstUpdateRace},
}

// freshClient reads a client with GetClientFresh or fails the test.
func freshClient(t *testing.T, e env, id string) store.Client {
	t.Helper()
	c, err := e.s.GetClientFresh(e.ctx, id)
	checkErr(t, fmt.Sprintf("GetClientFresh(%q)", id), err, nil)
	return c
}

func testClientFreshRead(t *testing.T, open opener) {
	e := open(t)
	c := newClient("a", e.clock.Now())
	checkErr(t, "CreateClient", e.s.CreateClient(e.ctx, c), nil)
	if got := freshClient(t, e, "a"); !clientEqual(got, c) || got.Version != 0 {
		t.Errorf("GetClientFresh = %+v, want %+v at version 0", got, c)
	}
	_, err := e.s.GetClientFresh(e.ctx, "nobody")
	checkErr(t, `GetClientFresh("nobody")`, err, store.ErrNotFound)
}

// testClientUpdateVersion: every UpdateClient stores the next version, and
// one over an old version fails with ErrConflict and writes nothing.
func testClientUpdateVersion(t *testing.T, open opener) {
	e := open(t)
	checkErr(t, "CreateClient", e.s.CreateClient(e.ctx, newClient("a", e.clock.Now())), nil)
	first := freshClient(t, e, "a")
	for i := range 3 {
		c := freshClient(t, e, "a")
		if c.Version != int64(i) {
			t.Fatalf("version after %d updates = %d, want %d", i, c.Version, i)
		}
		c.Name = fmt.Sprintf("name %d", i)
		checkErr(t, "UpdateClient", e.s.UpdateClient(e.ctx, c), nil)
	}
	want := freshClient(t, e, "a")
	if want.Version != 3 || want.Name != "name 2" {
		t.Fatalf("after 3 updates: %+v, want version 3 named \"name 2\"", want)
	}
	first.Name = "stale"
	checkErr(t, "UpdateClient(version 0 of 3)", e.s.UpdateClient(e.ctx, first), store.ErrConflict)
	if got := freshClient(t, e, "a"); !clientEqual(got, want) || got.Version != 3 {
		t.Errorf("after a refused update: %+v, want %+v", got, want)
	}
	checkClient(t, e, want)
}

func testClientSetSecret(t *testing.T, open opener) {
	e := open(t)
	orig := newClient("a", e.clock.Now())
	checkErr(t, "CreateClient", e.s.CreateClient(e.ctx, orig), nil)
	checkErr(t, "CreateClient", e.s.CreateClient(e.ctx, newClient("b", e.clock.Now())), nil)
	checkClient(t, e, orig) // a cache, if any, now holds the old hash

	e.clock.Advance(time.Minute)
	got, err := e.s.SetClientSecret(e.ctx, "a", []byte("new hash"))
	checkErr(t, "SetClientSecret", err, nil)
	want := orig
	want.SecretHash, want.UpdatedAt = []byte("new hash"), e.clock.Now()
	if !clientEqual(got, want) || got.Version != 1 {
		t.Errorf("SetClientSecret returned %+v, want %+v at version 1", got, want)
	}
	checkClient(t, e, want)
	if fresh := freshClient(t, e, "a"); !clientEqual(fresh, want) || fresh.Version != 1 {
		t.Errorf("GetClientFresh = %+v, want %+v at version 1", fresh, want)
	}
	checkClient(t, e, newClient("b", orig.CreatedAt))
}

func testClientSetSecretUnknown(t *testing.T, open opener) {
	e := open(t)
	_, err := e.s.SetClientSecret(e.ctx, "ghost", []byte("h"))
	checkErr(t, "SetClientSecret(unknown)", err, store.ErrNotFound)
	_, err = e.s.GetClient(e.ctx, "ghost")
	checkErr(t, "GetClient after SetClientSecret(unknown)", err, store.ErrNotFound)
}

// testClientStaleUpdateAfterSetSecret is the lost update: a client read
// before a secret rotation and written back after it must not bring the
// old hash back.
func testClientStaleUpdateAfterSetSecret(t *testing.T, open opener) {
	e := open(t)
	checkErr(t, "CreateClient", e.s.CreateClient(e.ctx, newClient("a", e.clock.Now())), nil)
	read := freshClient(t, e, "a")
	_, err := e.s.SetClientSecret(e.ctx, "a", []byte("rotated"))
	checkErr(t, "SetClientSecret", err, nil)
	read.Name = "renamed"
	checkErr(t, "UpdateClient(read before the rotation)", e.s.UpdateClient(e.ctx, read), store.ErrConflict)
	got, err := e.s.GetClient(e.ctx, "a")
	checkErr(t, "GetClient", err, nil)
	if !bytes.Equal(got.SecretHash, []byte("rotated")) || got.Name == "renamed" {
		t.Errorf("after a stale update: hash %q, name %q; want the rotated hash and the old name", got.SecretHash, got.Name)
	}
}

// testClientSecretAgainstUpdateRace runs secret changes and read-then-
// compare-and-set metadata updates (retrying on conflict, as the admin API
// does) of one client on 20 goroutines at once: every write is counted in
// the version, and the hash is the one of the secret change with the
// highest version, never the original.
func testClientSecretAgainstUpdateRace(t *testing.T, open opener) {
	e := open(t)
	checkErr(t, "CreateClient", e.s.CreateClient(e.ctx, newClient("a", e.clock.Now())), nil)
	const n = 20
	versions := make([]int64, n) // of the secret changes
	errs := race(n, func(i int) error {
		if i%2 == 0 {
			c, err := e.s.SetClientSecret(e.ctx, "a", fmt.Appendf(nil, "hash %d", i))
			versions[i] = c.Version
			return err
		}
		for {
			c, err := e.s.GetClientFresh(e.ctx, "a")
			if err != nil {
				return err
			}
			c.Name = fmt.Sprintf("update %d", i)
			err = e.s.UpdateClient(e.ctx, c)
			if !errors.Is(err, store.ErrConflict) {
				return err
			}
		}
	})
	for i, err := range errs {
		checkErr(t, fmt.Sprintf("writer %d", i), err, nil)
	}
	last, lastVersion := -1, int64(-1)
	for i := 0; i < n; i += 2 {
		if versions[i] > lastVersion {
			last, lastVersion = i, versions[i]
		}
	}
	got := freshClient(t, e, "a")
	if got.Version != n {
		t.Errorf("version after %d writes = %d, want %d: a write was lost", n, got.Version, n)
	}
	if want := fmt.Sprintf("hash %d", last); string(got.SecretHash) != want {
		t.Errorf("hash = %q, want %q (the secret change at version %d)", got.SecretHash, want, lastVersion)
	}
}
