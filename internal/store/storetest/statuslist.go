package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/issuer-oauth/issuer/internal/store"
)

var statusListTests = []subtest{
	{"LeaseAndGet", testStatusLease},
	{"Full", testStatusFull},
	{"SetStatus", testStatusSet},
	{"SetOwnerStatus", testStatusOwner},
	{"Retire", testStatusRetire},
	{"LeaseRace", testStatusLeaseRace},
	{"FlipRace", testStatusFlipRace},
	{"FamilyEntries", testStatusFamily},
}

func lease(t *testing.T, e env, list string, n int64, until time.Time, owners ...string) int64 {
	t.Helper()
	first, err := e.s.LeaseStatus(e.ctx, store.StatusLease{List: list, N: n, Capacity: 1 << 20, Owners: owners, Until: until})
	checkErr(t, fmt.Sprintf("LeaseStatus(%q, %d)", list, n), err, nil)
	return first
}

// bit is the status of index i in l.
func bit(l store.StatusList, i int64) int {
	if int(i/8) >= len(l.Bits) {
		return 0
	}
	return int(l.Bits[i/8]>>(i%8)) & 1
}

// setBits are the indices whose bit is 1.
func setBits(l store.StatusList) []int64 {
	var out []int64
	for i := range int64(len(l.Bits)) * 8 {
		if bit(l, i) == 1 {
			out = append(out, i)
		}
	}
	return out
}

func getList(t *testing.T, e env, id string) store.StatusList {
	t.Helper()
	l, err := e.s.GetStatusList(e.ctx, id)
	checkErr(t, fmt.Sprintf("GetStatusList(%q)", id), err, nil)
	return l
}

// testStatusLease leases consecutive blocks and reads the list back.
func testStatusLease(t *testing.T, open opener) {
	e := open(t)
	until := e.clock.Now().Add(10 * time.Minute)
	if _, err := e.s.GetStatusList(e.ctx, "a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetStatusList of a list never leased: %v, want ErrNotFound", err)
	}
	if got := lease(t, e, "a", 16, until, "client:c1"); got != 0 {
		t.Errorf("first lease starts at %d, want 0", got)
	}
	if got := lease(t, e, "a", 4, until.Add(-time.Minute), "client:c2"); got != 16 {
		t.Errorf("second lease starts at %d, want 16", got)
	}
	if got := lease(t, e, "b", 1, until); got != 0 {
		t.Errorf("another list's first lease starts at %d, want 0", got)
	}
	l := getList(t, e, "a")
	if l.ID != "a" || l.Size != 20 || len(setBits(l)) != 0 || !l.ExpiresAt.Equal(until) {
		t.Errorf("list a = {%q size %d bits %v expires %v}, want {a 20 none %v}", l.ID, l.Size, setBits(l), l.ExpiresAt, until)
	}
	lists, err := e.s.ListStatusLists(e.ctx)
	checkErr(t, "ListStatusLists", err, nil)
	var ids []string
	for _, l := range lists {
		ids = append(ids, l.ID)
	}
	if !slices.Equal(ids, []string{"a", "b"}) {
		t.Errorf("ListStatusLists ids = %q, want [a b]", ids)
	}
}

// testStatusFull fills a list: the lease past its capacity fails and hands
// out nothing.
func testStatusFull(t *testing.T, open opener) {
	e := open(t)
	until := e.clock.Now().Add(time.Minute)
	l := store.StatusLease{List: "a", N: 6, Capacity: 10, Until: until}
	if _, err := e.s.LeaseStatus(e.ctx, l); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.LeaseStatus(e.ctx, l); !errors.Is(err, store.ErrFull) {
		t.Fatalf("lease past the capacity: %v, want ErrFull", err)
	}
	l.N = 4
	first, err := e.s.LeaseStatus(e.ctx, l)
	if err != nil || first != 6 {
		t.Fatalf("lease of the rest = %d, %v, want 6, nil", first, err)
	}
}

// testStatusSet flips bits one by one: each is visible, the version moves
// only when a bit changes, and the draft's bit order is kept.
func testStatusSet(t *testing.T, open opener) {
	e := open(t)
	lease(t, e, "a", 100, e.clock.Now().Add(time.Minute))
	v0 := getList(t, e, "a").Version
	checkErr(t, "SetStatus", e.s.SetStatus(e.ctx, "a", []int64{0, 9, 99}), nil)
	l := getList(t, e, "a")
	if got := setBits(l); !slices.Equal(got, []int64{0, 9, 99}) {
		t.Errorf("bits set = %v, want [0 9 99]", got)
	}
	if len(l.Bits) < 2 || l.Bits[0] != 0x01 || l.Bits[1] != 0x02 {
		t.Errorf("first bytes = % x, want 01 02 (index 0 is the least significant bit of byte 0)", l.Bits[:min(2, len(l.Bits))])
	}
	if l.Version == v0 {
		t.Errorf("version unchanged at %d after a flip", v0)
	}
	checkErr(t, "SetStatus again", e.s.SetStatus(e.ctx, "a", []int64{9}), nil)
	if got := getList(t, e, "a").Version; got != l.Version {
		t.Errorf("version %d → %d when no bit changed", l.Version, got)
	}
	if err := e.s.SetStatus(e.ctx, "nope", []int64{1}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SetStatus of an unknown list: %v, want ErrNotFound", err)
	}
}

// testStatusOwner invalidates every index of one owner, in two lists, and
// nobody else's.
func testStatusOwner(t *testing.T, open opener) {
	e := open(t)
	until := e.clock.Now().Add(time.Minute)
	a1 := lease(t, e, "a", 3, until, "client:c1")
	lease(t, e, "a", 2, until, "client:c2", "user:u2")
	a3 := lease(t, e, "a", 2, until, "client:c1", "user:u1")
	b1 := lease(t, e, "b", 1, until, "client:c1")
	lease(t, e, "b", 1, until, "client:c2")

	n, err := e.s.SetOwnerStatus(e.ctx, "client:c1")
	checkErr(t, "SetOwnerStatus(client:c1)", err, nil)
	if n != 6 {
		t.Errorf("SetOwnerStatus(client:c1) changed %d bits, want 6", n)
	}
	want := []int64{a1, a1 + 1, a1 + 2, a3, a3 + 1}
	if got := setBits(getList(t, e, "a")); !slices.Equal(got, want) {
		t.Errorf("list a bits set = %v, want %v", got, want)
	}
	if got := setBits(getList(t, e, "b")); !slices.Equal(got, []int64{b1}) {
		t.Errorf("list b bits set = %v, want [%d]", got, b1)
	}
	n, err = e.s.SetOwnerStatus(e.ctx, "user:u2")
	checkErr(t, "SetOwnerStatus(user:u2)", err, nil)
	if n != 2 {
		t.Errorf("SetOwnerStatus(user:u2) changed %d bits, want 2", n)
	}
	if n, err := e.s.SetOwnerStatus(e.ctx, "client:nobody"); err != nil || n != 0 {
		t.Errorf("SetOwnerStatus of an owner without leases = %d, %v, want 0, nil", n, err)
	}
}

// testStatusRetire lets a list's last lease end: it is gone, it cannot be
// leased again, and a later lease extends a list.
func testStatusRetire(t *testing.T, open opener) {
	e := open(t)
	now := e.clock.Now()
	lease(t, e, "a", 1, now.Add(time.Minute), "client:c")
	lease(t, e, "b", 1, now.Add(time.Minute), "client:c")
	lease(t, e, "b", 1, now.Add(2*time.Minute), "client:c")

	e.clock.Advance(time.Minute - time.Millisecond)
	getList(t, e, "a")
	e.clock.Advance(time.Millisecond)
	if _, err := e.s.GetStatusList(e.ctx, "a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetStatusList of a retired list: %v, want ErrNotFound", err)
	}
	if err := e.s.SetStatus(e.ctx, "a", []int64{0}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SetStatus of a retired list: %v, want ErrNotFound", err)
	}
	lists, err := e.s.ListStatusLists(e.ctx)
	checkErr(t, "ListStatusLists", err, nil)
	if len(lists) != 1 || lists[0].ID != "b" {
		t.Errorf("live lists = %v, want only b", lists)
	}
	if n, err := e.s.SetOwnerStatus(e.ctx, "client:c"); err != nil || n != 2 {
		t.Errorf("SetOwnerStatus after a's end = %d, %v, want 2 (b's), nil", n, err)
	}
	_, err = e.s.LeaseStatus(e.ctx, store.StatusLease{List: "a", N: 1, Capacity: 10, Until: now.Add(time.Hour)})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Errorf("lease of a retired list: %v, want ErrNotFound (or a fresh list)", err)
	}
}

// testStatusLeaseRace leases from 50 goroutines at once: the blocks are
// disjoint and cover the list without a gap.
func testStatusLeaseRace(t *testing.T, open opener) {
	e := open(t)
	const n, size = 50, 7
	until := e.clock.Now().Add(time.Minute)
	firsts := make([]int64, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			firsts[i], errs[i] = e.s.LeaseStatus(e.ctx, store.StatusLease{
				List: "a", N: size, Capacity: 1 << 20, Until: until, Owners: []string{fmt.Sprintf("client:%d", i)},
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("lease #%d: %v", i, err)
		}
	}
	slices.Sort(firsts)
	for i, f := range firsts {
		if f != int64(i*size) {
			t.Fatalf("sorted block starts %v: want multiples of %d without gap or overlap", firsts, size)
		}
	}
	if l := getList(t, e, "a"); l.Size != n*size {
		t.Errorf("size = %d, want %d", l.Size, n*size)
	}
}

// testStatusFlipRace flips 50 bits from 50 goroutines while owners are
// invalidated: no flip is lost.
func testStatusFlipRace(t *testing.T, open opener) {
	e := open(t)
	until := e.clock.Now().Add(time.Minute)
	lease(t, e, "a", 50, until)
	lease(t, e, "a", 10, until, "client:x")
	var wg sync.WaitGroup
	for i := range int64(50) {
		wg.Go(func() {
			if err := e.s.SetStatus(e.ctx, "a", []int64{i}); err != nil {
				t.Errorf("SetStatus(%d): %v", i, err)
			}
		})
	}
	wg.Go(func() {
		if _, err := e.s.SetOwnerStatus(e.ctx, "client:x"); err != nil {
			t.Errorf("SetOwnerStatus: %v", err)
		}
	})
	wg.Wait()
	if got := len(setBits(getList(t, e, "a"))); got != 60 {
		t.Errorf("%d bits set, want 60", got)
	}
}

// testStatusFamily keeps the status entries of a family's live access
// tokens through rotations, dropping those that have expired.
func testStatusFamily(t *testing.T, open opener) {
	e := open(t)
	now := e.clock.Now()
	ref := func(i int64, exp time.Duration) store.StatusRef {
		return store.StatusRef{List: "100-0", Idx: i, Exp: now.Add(exp)}
	}
	f := store.Family{ID: "f", ClientID: "c", Current: "r0", ExpiresAt: now.Add(time.Hour), Status: []store.StatusRef{ref(1, time.Minute)}}
	checkErr(t, "CreateFamily", e.s.CreateFamily(e.ctx, f), nil)
	_, err := e.s.RotateRefresh(e.ctx, store.Rotation{FamilyID: "f", ClientID: "c", OldID: "r0", NewID: "r1",
		ExpiresAt: now.Add(time.Hour), Status: []store.StatusRef{ref(7, 2*time.Minute)}})
	checkErr(t, "RotateRefresh", err, nil)
	got, err := e.s.GetFamily(e.ctx, "f")
	checkErr(t, "GetFamily", err, nil)
	if want := []store.StatusRef{ref(1, time.Minute), ref(7, 2*time.Minute)}; !statusEqual(got.Status, want) {
		t.Fatalf("status after a rotation = %v, want %v", got.Status, want)
	}
	e.clock.Advance(time.Minute) // the first token expires
	_, err = e.s.RotateRefresh(e.ctx, store.Rotation{FamilyID: "f", ClientID: "c", OldID: "r1", NewID: "r2",
		ExpiresAt: now.Add(time.Hour), Status: []store.StatusRef{ref(9, 3*time.Minute)}})
	checkErr(t, "RotateRefresh", err, nil)
	got, err = e.s.GetFamily(e.ctx, "f")
	checkErr(t, "GetFamily", err, nil)
	if want := []store.StatusRef{ref(7, 2*time.Minute), ref(9, 3*time.Minute)}; !statusEqual(got.Status, want) {
		t.Fatalf("status after the first token expired = %v, want %v", got.Status, want)
	}
	// Reuse revokes the family and keeps its entries for the caller.
	_, err = e.s.RotateRefresh(e.ctx, store.Rotation{FamilyID: "f", ClientID: "c", OldID: "r0", NewID: "r3", ExpiresAt: now.Add(time.Hour)})
	checkErr(t, "RotateRefresh of a retired token", err, store.ErrReused)
	got, err = e.s.GetFamily(e.ctx, "f")
	checkErr(t, "GetFamily", err, nil)
	if len(got.Status) != 2 || !got.Revoked {
		t.Errorf("after reuse: revoked %v, %d entries, want true, 2", got.Revoked, len(got.Status))
	}
}

func statusEqual(a, b []store.StatusRef) bool {
	return slices.EqualFunc(a, b, func(x, y store.StatusRef) bool {
		return x.List == y.List && x.Idx == y.Idx && x.Exp.Equal(y.Exp)
	})
}
