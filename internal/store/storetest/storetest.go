// Package storetest is the conformance suite that every store.Store backend
// runs, in the manner of dex's storage/conformance and testing/slogtest.
//
// A backend's test file calls Run with a constructor for an empty store:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T, now func() time.Time) store.Store {
//			s, err := bolt.Open(filepath.Join(t.TempDir(), "issuer.db"), bolt.WithNow(now))
//			if err != nil {
//				t.Fatal(err)
//			}
//			return s
//		})
//	}
//
// The suite owns a fake clock and never sleeps: a backend must take every
// expiry decision from the now it is given. Backends may keep times with
// millisecond precision only (Redis expiries are in milliseconds), so every
// time the suite stores is a whole number of milliseconds, and the suite never
// asks what happens at the exact instant a record expires, only a millisecond
// before and after.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/issuer-oauth/issuer/internal/store"
	"github.com/issuer-oauth/issuer/internal/testutil"
)

// newStoreFunc is the signature of the constructor that Run is given.
type newStoreFunc = func(t *testing.T, now func() time.Time) store.Store

// Run runs the conformance suite against the backend that newStore builds.
//
// Every leaf subtest calls newStore once, with its own t and its own fake
// clock, and expects an empty store. Run closes the store when the subtest
// ends (and fails it if Close fails), so newStore must not close it itself;
// it may register other cleanup with t.Cleanup. Subtests run one at a time,
// so backends that share a server may empty it in newStore.
func Run(t *testing.T, newStore func(t *testing.T, now func() time.Time) store.Store) {
	groups := []struct {
		name  string
		tests []subtest
	}{
		{"Clients", clientTests},
		{"ClientCAS", clientCASTests},
		{"Families", familyTests},
		{"RevokedTokens", revokedTokenTests},
		{"SingleUse", singleUseTests},
		{"Keys", keyTests},
		{"Users", userTests},
		{"Ping", []subtest{{"OK", testPing}}},
		{"Context", []subtest{{"Canceled", testCanceledContext}}},
		{"Concurrency", concurrencyTests},
		{"Policy", policyTests},
		{"StatusLists", statusListTests},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, st := range g.tests {
				t.Run(st.name, func(t *testing.T) {
					st.run(t, func(t *testing.T) env { return setup(t, newStore) })
				})
			}
		})
	}
}

// subtest is one leaf test of the suite.
type subtest struct {
	name string
	run  func(t *testing.T, open opener)
}

// opener gives a test a fresh, empty store with its own clock, closed when t
// ends. A table test calls it once per case.
type opener = func(t *testing.T) env

// env is what a leaf test works with: a fresh store, its clock, and a
// context that ends with the test.
type env struct {
	ctx   context.Context
	s     store.Store
	clock *testutil.Clock
}

func setup(t *testing.T, newStore newStoreFunc) env {
	t.Helper()
	c := newClock()
	s := newStore(t, c.Now)
	if s == nil {
		t.Fatal("newStore returned a nil store")
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close() = %v, want nil", err)
		}
	})
	return env{ctx: t.Context(), s: s, clock: c}
}

// newClock returns the fake clock the suite owns. Its times are whole
// milliseconds (the suite advances it by whole milliseconds only), not
// whole seconds, so that a backend that truncates to seconds fails.
func newClock() *testutil.Clock {
	return testutil.NewClock(time.Date(2031, time.March, 4, 5, 6, 7, 890_000_000, time.UTC))
}

// checkErr fails the test unless err matches want (nil meaning success).
func checkErr(t *testing.T, call string, err, want error) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Fatalf("%s: got error %v, want nil", call, err)
	case want != nil && !errors.Is(err, want):
		t.Fatalf("%s: got error %v, want %v", call, err, want)
	}
}

// ---------------------------------------------------------------- clients

var clientTests = []subtest{
	{"CreateGet", testClientCreateGet},
	{"CreateDuplicate", testClientCreateDuplicate},
	{"GetUnknown", testClientGetUnknown},
	{"List", testClientList},
	{"Update", testClientUpdate},
	{"UpdateUnknown", testClientUpdateUnknown},
	{"Delete", testClientDelete},
}

func newClient(id string, now time.Time) store.Client {
	return store.Client{
		ID:         id,
		Name:       "Client " + id,
		SecretHash: []byte{0x00, 0x01, 0xfe, 0xff, 'h', 'a', 's', 'h'},
		GrantTypes: []string{"client_credentials", "refresh_token"},
		Scopes:     []string{"read", "write"},
		Audiences:  []string{"https://api.example.com"},
		AuthMethod: "client_secret_basic",
		CreatedAt:  now,
		UpdatedAt:  now,
	}
}

// clientEqual compares clients field by field; nil and empty slices are equal.
func clientEqual(a, b store.Client) bool {
	return a.ID == b.ID &&
		a.Name == b.Name &&
		bytes.Equal(a.SecretHash, b.SecretHash) &&
		slices.Equal(a.GrantTypes, b.GrantTypes) &&
		slices.Equal(a.Scopes, b.Scopes) &&
		slices.Equal(a.Audiences, b.Audiences) &&
		a.AuthMethod == b.AuthMethod &&
		a.CreatedAt.Equal(b.CreatedAt) &&
		a.UpdatedAt.Equal(b.UpdatedAt)
}

func checkClient(t *testing.T, e env, want store.Client) {
	t.Helper()
	got, err := e.s.GetClient(e.ctx, want.ID)
	checkErr(t, fmt.Sprintf("GetClient(%q)", want.ID), err, nil)
	if !clientEqual(got, want) {
		t.Errorf("GetClient(%q) = %+v, want %+v", want.ID, got, want)
	}
}

func testClientCreateGet(t *testing.T, open opener) {
	e := open(t)
	full := newClient("full", e.clock.Now())
	nilSlices := newClient("nil-slices", e.clock.Now())
	nilSlices.SecretHash, nilSlices.GrantTypes, nilSlices.Scopes, nilSlices.Audiences = nil, nil, nil, nil
	emptySlices := newClient("empty-slices", e.clock.Now())
	emptySlices.SecretHash, emptySlices.GrantTypes, emptySlices.Scopes, emptySlices.Audiences = []byte{}, []string{}, []string{}, []string{}
	zeroTimes := store.Client{ID: "zero"}

	tests := []struct {
		name string
		c    store.Client
	}{
		{"full", full},
		{"nil slices", nilSlices},
		{"empty slices", emptySlices},
		{"zero values", zeroTimes},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErr(t, "CreateClient", e.s.CreateClient(e.ctx, tt.c), nil)
			checkClient(t, e, tt.c)
		})
	}
}

func testClientCreateDuplicate(t *testing.T, open opener) {
	e := open(t)
	first := newClient("a", e.clock.Now())
	checkErr(t, "CreateClient", e.s.CreateClient(e.ctx, first), nil)
	second := newClient("a", e.clock.Now())
	second.Name = "Impostor"
	checkErr(t, "CreateClient(duplicate)", e.s.CreateClient(e.ctx, second), store.ErrExists)
	checkClient(t, e, first)
}

func testClientGetUnknown(t *testing.T, open opener) {
	e := open(t)
	_, err := e.s.GetClient(e.ctx, "nobody")
	checkErr(t, `GetClient("nobody")`, err, store.ErrNotFound)
}

func testClientList(t *testing.T, open opener) {
	e := open(t)
	got, err := e.s.ListClients(e.ctx)
	checkErr(t, "ListClients(empty store)", err, nil)
	if len(got) != 0 {
		t.Fatalf("ListClients(empty store) = %+v, want none", got)
	}

	var want []store.Client
	for _, id := range []string{"c", "a", "B", "b", "a2"} {
		c := newClient(id, e.clock.Now())
		checkErr(t, "CreateClient", e.s.CreateClient(e.ctx, c), nil)
		want = append(want, c)
	}
	slices.SortFunc(want, func(a, b store.Client) int { return strings.Compare(a.ID, b.ID) })

	got, err = e.s.ListClients(e.ctx)
	checkErr(t, "ListClients", err, nil)
	if !slices.EqualFunc(got, want, clientEqual) {
		t.Errorf("ListClients() = %+v, want %+v", got, want)
	}
}

func testClientUpdate(t *testing.T, open opener) {
	e := open(t)
	orig := newClient("a", e.clock.Now())
	checkErr(t, "CreateClient", e.s.CreateClient(e.ctx, orig), nil)
	other := newClient("b", e.clock.Now())
	checkErr(t, "CreateClient", e.s.CreateClient(e.ctx, other), nil)

	e.clock.Advance(time.Hour)
	updated := store.Client{
		ID:         "a",
		Name:       "Renamed",
		SecretHash: []byte("new hash"),
		GrantTypes: []string{"client_credentials"},
		Scopes:     nil,
		Audiences:  []string{"https://other.example.com", "https://api.example.com"},
		AuthMethod: "client_secret_post",
		CreatedAt:  orig.CreatedAt,
		UpdatedAt:  e.clock.Now(),
	}
	checkErr(t, "UpdateClient", e.s.UpdateClient(e.ctx, updated), nil)
	checkClient(t, e, updated)
	checkClient(t, e, other)
}

func testClientUpdateUnknown(t *testing.T, open opener) {
	e := open(t)
	c := newClient("ghost", e.clock.Now())
	checkErr(t, "UpdateClient(unknown)", e.s.UpdateClient(e.ctx, c), store.ErrNotFound)
	_, err := e.s.GetClient(e.ctx, "ghost")
	checkErr(t, "GetClient after UpdateClient(unknown)", err, store.ErrNotFound)
}

func testClientDelete(t *testing.T, open opener) {
	e := open(t)
	for _, id := range []string{"a", "b"} {
		checkErr(t, "CreateClient", e.s.CreateClient(e.ctx, newClient(id, e.clock.Now())), nil)
	}
	checkErr(t, `DeleteClient("a")`, e.s.DeleteClient(e.ctx, "a"), nil)
	_, err := e.s.GetClient(e.ctx, "a")
	checkErr(t, `GetClient("a") after delete`, err, store.ErrNotFound)
	checkErr(t, `DeleteClient("a") again`, e.s.DeleteClient(e.ctx, "a"), store.ErrNotFound)
	checkErr(t, `DeleteClient("nobody")`, e.s.DeleteClient(e.ctx, "nobody"), store.ErrNotFound)

	got, err := e.s.ListClients(e.ctx)
	checkErr(t, "ListClients", err, nil)
	if len(got) != 1 || got[0].ID != "b" {
		t.Errorf("ListClients() = %+v, want only client b", got)
	}
}

// ---------------------------------------------------------------- families

var familyTests = []subtest{
	{"CreateGet", testFamilyCreateGet},
	{"CreateDuplicate", testFamilyCreateDuplicate},
	{"GetUnknown", testFamilyGetUnknown},
	{"Rotate", testFamilyRotate},
	{"RotateErrors", testFamilyRotateErrors},
	{"RotateExtendsExpiry", testFamilyRotateExtendsExpiry},
	{"Expiry", testFamilyExpiry},
	{"Revoke", testFamilyRevoke},
	{"RevokeUnknown", testFamilyRevokeUnknown},
}

const familyTTL = time.Hour

func newFamily(id string, now time.Time) store.Family {
	return store.Family{
		ID:        id,
		ClientID:  "client-" + id,
		Scopes:    []string{"read", "offline_access"},
		Audience:  []string{"https://api.example.com"},
		Current:   id + "-jti-0",
		ExpiresAt: now.Add(familyTTL),
	}
}

// familyEqual compares families field by field; nil and empty slices are equal.
func familyEqual(a, b store.Family) bool {
	return a.ID == b.ID &&
		a.ClientID == b.ClientID &&
		slices.Equal(a.Scopes, b.Scopes) &&
		slices.Equal(a.Audience, b.Audience) &&
		a.Current == b.Current &&
		a.ExpiresAt.Equal(b.ExpiresAt) &&
		a.Revoked == b.Revoked
}

func createFamily(t *testing.T, e env, f store.Family) {
	t.Helper()
	checkErr(t, fmt.Sprintf("CreateFamily(%q)", f.ID), e.s.CreateFamily(e.ctx, f), nil)
}

func checkFamily(t *testing.T, e env, want store.Family) {
	t.Helper()
	got, err := e.s.GetFamily(e.ctx, want.ID)
	checkErr(t, fmt.Sprintf("GetFamily(%q)", want.ID), err, nil)
	if !familyEqual(got, want) {
		t.Errorf("GetFamily(%q) = %+v, want %+v", want.ID, got, want)
	}
}

// rotation returns the rotation of f's current token to newID.
func rotation(f store.Family, newID string, expiresAt time.Time) store.Rotation {
	return store.Rotation{
		FamilyID:  f.ID,
		ClientID:  f.ClientID,
		OldID:     f.Current,
		NewID:     newID,
		ExpiresAt: expiresAt,
	}
}

func testFamilyCreateGet(t *testing.T, open opener) {
	e := open(t)
	withSlices := newFamily("f1", e.clock.Now())
	nilSlices := newFamily("f2", e.clock.Now())
	nilSlices.Scopes, nilSlices.Audience = nil, nil
	emptySlices := newFamily("f3", e.clock.Now())
	emptySlices.Scopes, emptySlices.Audience = []string{}, []string{}

	for _, f := range []store.Family{withSlices, nilSlices, emptySlices} {
		createFamily(t, e, f)
	}
	for _, f := range []store.Family{withSlices, nilSlices, emptySlices} {
		checkFamily(t, e, f)
	}
}

func testFamilyCreateDuplicate(t *testing.T, open opener) {
	e := open(t)
	f := newFamily("f", e.clock.Now())
	createFamily(t, e, f)
	dup := newFamily("f", e.clock.Now())
	dup.ClientID = "someone-else"
	dup.Current = "other-jti"
	checkErr(t, "CreateFamily(duplicate)", e.s.CreateFamily(e.ctx, dup), store.ErrExists)
	checkFamily(t, e, f)
}

func testFamilyGetUnknown(t *testing.T, open opener) {
	e := open(t)
	_, err := e.s.GetFamily(e.ctx, "nothing")
	checkErr(t, `GetFamily("nothing")`, err, store.ErrNotFound)
}

func testFamilyRotate(t *testing.T, open opener) {
	e := open(t)
	f := newFamily("f", e.clock.Now())
	createFamily(t, e, f)
	other := newFamily("other", e.clock.Now())
	createFamily(t, e, other)

	e.clock.Advance(10 * time.Minute)
	r := rotation(f, "f-jti-1", e.clock.Now().Add(familyTTL))
	got, err := e.s.RotateRefresh(e.ctx, r)
	checkErr(t, "RotateRefresh", err, nil)
	want := f
	want.Current = r.NewID
	want.ExpiresAt = r.ExpiresAt
	if !familyEqual(got, want) {
		t.Errorf("RotateRefresh() = %+v, want %+v", got, want)
	}
	checkFamily(t, e, want)
	checkFamily(t, e, other)

	// The new token rotates in turn.
	r2 := rotation(want, "f-jti-2", e.clock.Now().Add(familyTTL))
	got, err = e.s.RotateRefresh(e.ctx, r2)
	checkErr(t, "RotateRefresh(second)", err, nil)
	want.Current = r2.NewID
	want.ExpiresAt = r2.ExpiresAt
	if !familyEqual(got, want) {
		t.Errorf("RotateRefresh(second) = %+v, want %+v", got, want)
	}
	checkFamily(t, e, want)
}

func testFamilyRotateErrors(t *testing.T, open opener) {
	tests := []struct {
		name string
		// prepare creates the state and returns the failing rotation.
		prepare func(t *testing.T, e env) store.Rotation
		wantErr error
		// revokes means the failing call revoked the family; otherwise it
		// must not have changed anything.
		revokes bool
	}{
		{
			name: "unknown family",
			prepare: func(t *testing.T, e env) store.Rotation {
				return rotation(newFamily("f", e.clock.Now()), "new", e.clock.Now().Add(familyTTL))
			},
			wantErr: store.ErrNotFound,
		},
		{
			name: "other client",
			prepare: func(t *testing.T, e env) store.Rotation {
				f := newFamily("f", e.clock.Now())
				createFamily(t, e, f)
				r := rotation(f, "new", e.clock.Now().Add(familyTTL))
				r.ClientID = "intruder"
				return r
			},
			wantErr: store.ErrNotFound,
		},
		{
			name: "other client presenting a stale token",
			prepare: func(t *testing.T, e env) store.Rotation {
				f := newFamily("f", e.clock.Now())
				createFamily(t, e, f)
				r := rotation(f, "new", e.clock.Now().Add(familyTTL))
				r.ClientID = "intruder"
				r.OldID = "stale"
				return r
			},
			wantErr: store.ErrNotFound,
		},
		{
			name: "other client on a revoked family",
			prepare: func(t *testing.T, e env) store.Rotation {
				f := newFamily("f", e.clock.Now())
				createFamily(t, e, f)
				checkErr(t, "RevokeFamily", e.s.RevokeFamily(e.ctx, f.ID), nil)
				r := rotation(f, "new", e.clock.Now().Add(familyTTL))
				r.ClientID = "intruder"
				return r
			},
			wantErr: store.ErrNotFound,
		},
		{
			name: "stale token",
			prepare: func(t *testing.T, e env) store.Rotation {
				f := newFamily("f", e.clock.Now())
				createFamily(t, e, f)
				_, err := e.s.RotateRefresh(e.ctx, rotation(f, "f-jti-1", e.clock.Now().Add(familyTTL)))
				checkErr(t, "RotateRefresh", err, nil)
				return rotation(f, "f-jti-2", e.clock.Now().Add(familyTTL)) // presents f-jti-0 again
			},
			wantErr: store.ErrReused,
			revokes: true,
		},
		{
			name: "unknown token of the family",
			prepare: func(t *testing.T, e env) store.Rotation {
				f := newFamily("f", e.clock.Now())
				createFamily(t, e, f)
				r := rotation(f, "new", e.clock.Now().Add(familyTTL))
				r.OldID = "never-issued"
				return r
			},
			wantErr: store.ErrReused,
			revokes: true,
		},
		{
			name: "revoked family",
			prepare: func(t *testing.T, e env) store.Rotation {
				f := newFamily("f", e.clock.Now())
				createFamily(t, e, f)
				checkErr(t, "RevokeFamily", e.s.RevokeFamily(e.ctx, f.ID), nil)
				return rotation(f, "new", e.clock.Now().Add(familyTTL))
			},
			wantErr: store.ErrRevoked,
		},
		{
			name: "revoked family, stale token",
			prepare: func(t *testing.T, e env) store.Rotation {
				f := newFamily("f", e.clock.Now())
				createFamily(t, e, f)
				checkErr(t, "RevokeFamily", e.s.RevokeFamily(e.ctx, f.ID), nil)
				r := rotation(f, "new", e.clock.Now().Add(familyTTL))
				r.OldID = "stale"
				return r
			},
			wantErr: store.ErrRevoked,
		},
		{
			name: "expired family",
			prepare: func(t *testing.T, e env) store.Rotation {
				f := newFamily("f", e.clock.Now())
				createFamily(t, e, f)
				e.clock.Advance(familyTTL + time.Millisecond)
				return rotation(f, "new", e.clock.Now().Add(familyTTL))
			},
			wantErr: store.ErrNotFound,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := open(t)
			r := tt.prepare(t, e)
			before, beforeErr := e.s.GetFamily(e.ctx, r.FamilyID)

			got, err := e.s.RotateRefresh(e.ctx, r)
			checkErr(t, fmt.Sprintf("RotateRefresh(%+v)", r), err, tt.wantErr)
			if !familyEqual(got, store.Family{}) {
				t.Errorf("RotateRefresh() returned family %+v with error, want zero Family", got)
			}

			after, afterErr := e.s.GetFamily(e.ctx, r.FamilyID)
			switch {
			case beforeErr != nil:
				checkErr(t, "GetFamily after failed RotateRefresh", afterErr, store.ErrNotFound)
			case tt.revokes:
				checkErr(t, "GetFamily after reuse", afterErr, nil)
				want := before
				want.Revoked = true
				if !familyEqual(after, want) {
					t.Errorf("GetFamily after reuse = %+v, want %+v", after, want)
				}
				// Even the current token is now refused.
				_, err := e.s.RotateRefresh(e.ctx, rotation(before, "after-reuse", e.clock.Now().Add(familyTTL)))
				checkErr(t, "RotateRefresh(current token) after reuse", err, store.ErrRevoked)
			default:
				checkErr(t, "GetFamily after failed RotateRefresh", afterErr, nil)
				if !familyEqual(after, before) {
					t.Errorf("GetFamily after failed RotateRefresh = %+v, want unchanged %+v", after, before)
				}
				// The rightful client's current token still works as before.
				var want error
				if before.Revoked {
					want = store.ErrRevoked
				}
				_, err := e.s.RotateRefresh(e.ctx, rotation(before, "rightful", e.clock.Now().Add(familyTTL)))
				checkErr(t, "RotateRefresh(rightful client, current token)", err, want)
			}
		})
	}
}

func testFamilyRotateExtendsExpiry(t *testing.T, open opener) {
	e := open(t)
	f := newFamily("f", e.clock.Now())
	createFamily(t, e, f)

	e.clock.Advance(familyTTL - time.Minute)
	r := rotation(f, "f-jti-1", e.clock.Now().Add(familyTTL))
	rotated, err := e.s.RotateRefresh(e.ctx, r)
	checkErr(t, "RotateRefresh", err, nil)

	// Past the first token's expiry, the family lives on.
	e.clock.Advance(2 * time.Minute)
	if !e.clock.Now().After(f.ExpiresAt) {
		t.Fatalf("clock %v not past first expiry %v", e.clock.Now(), f.ExpiresAt)
	}
	checkFamily(t, e, rotated)
	_, err = e.s.RotateRefresh(e.ctx, rotation(rotated, "f-jti-2", e.clock.Now().Add(familyTTL)))
	checkErr(t, "RotateRefresh after first expiry", err, nil)
}

func testFamilyExpiry(t *testing.T, open opener) {
	e := open(t)
	f := newFamily("f", e.clock.Now())
	createFamily(t, e, f)
	revoked := newFamily("revoked", e.clock.Now())
	createFamily(t, e, revoked)
	checkErr(t, "RevokeFamily", e.s.RevokeFamily(e.ctx, revoked.ID), nil)
	revoked.Revoked = true

	e.clock.Advance(familyTTL - time.Millisecond)
	checkFamily(t, e, f)
	checkFamily(t, e, revoked)

	e.clock.Advance(2 * time.Millisecond)
	for _, id := range []string{f.ID, revoked.ID} {
		_, err := e.s.GetFamily(e.ctx, id)
		checkErr(t, fmt.Sprintf("GetFamily(%q) after expiry", id), err, store.ErrNotFound)
	}
	_, err := e.s.RotateRefresh(e.ctx, rotation(f, "new", e.clock.Now().Add(familyTTL)))
	checkErr(t, "RotateRefresh after expiry", err, store.ErrNotFound)
	checkErr(t, "RevokeFamily after expiry", e.s.RevokeFamily(e.ctx, f.ID), store.ErrNotFound)

	// An expired family is absent: its id can be used again, and nothing of
	// the old one (its revocation included) carries over.
	for _, id := range []string{f.ID, revoked.ID} {
		again := newFamily(id, e.clock.Now())
		again.Current = "fresh-jti"
		again.Scopes, again.Audience = nil, nil
		createFamily(t, e, again)
		checkFamily(t, e, again)
	}
}

func testFamilyRevoke(t *testing.T, open opener) {
	e := open(t)
	f := newFamily("f", e.clock.Now())
	createFamily(t, e, f)
	other := newFamily("other", e.clock.Now())
	createFamily(t, e, other)

	checkErr(t, "RevokeFamily", e.s.RevokeFamily(e.ctx, f.ID), nil)
	want := f
	want.Revoked = true
	checkFamily(t, e, want)
	checkFamily(t, e, other)

	checkErr(t, "RevokeFamily(already revoked)", e.s.RevokeFamily(e.ctx, f.ID), nil)
	checkFamily(t, e, want)

	_, err := e.s.RotateRefresh(e.ctx, rotation(f, "new", e.clock.Now().Add(familyTTL)))
	checkErr(t, "RotateRefresh after RevokeFamily", err, store.ErrRevoked)
	checkFamily(t, e, want)
}

func testFamilyRevokeUnknown(t *testing.T, open opener) {
	e := open(t)
	checkErr(t, `RevokeFamily("nothing")`, e.s.RevokeFamily(e.ctx, "nothing"), store.ErrNotFound)
	_, err := e.s.GetFamily(e.ctx, "nothing")
	checkErr(t, "GetFamily after RevokeFamily(unknown)", err, store.ErrNotFound)
}

// ---------------------------------------------------------------- revoked tokens

var revokedTokenTests = []subtest{
	{"RevokeUntil", testRevokeTokenUntil},
	{"UntilInThePast", testRevokeTokenPast},
}

func checkRevoked(t *testing.T, e env, jti string, want bool) {
	t.Helper()
	got, err := e.s.IsRevoked(e.ctx, jti)
	checkErr(t, fmt.Sprintf("IsRevoked(%q)", jti), err, nil)
	if got != want {
		t.Errorf("IsRevoked(%q) at %v = %t, want %t", jti, e.clock.Now(), got, want)
	}
}

func testRevokeTokenUntil(t *testing.T, open opener) {
	e := open(t)
	until := e.clock.Now().Add(time.Hour)
	checkErr(t, "RevokeToken", e.s.RevokeToken(e.ctx, "a", until), nil)
	checkErr(t, "RevokeToken", e.s.RevokeToken(e.ctx, "long", until.Add(time.Hour)), nil)

	tests := []struct {
		name    string
		advance time.Duration
		want    map[string]bool
	}{
		{"at once", 0, map[string]bool{"a": true, "long": true, "unknown": false}},
		{"just before until", time.Hour - time.Millisecond, map[string]bool{"a": true, "long": true, "unknown": false}},
		{"just after until", 2 * time.Millisecond, map[string]bool{"a": false, "long": true, "unknown": false}},
		{"after both", time.Hour, map[string]bool{"a": false, "long": false, "unknown": false}},
	}
	for _, tt := range tests { // in order: each step advances the clock further
		t.Run(tt.name, func(t *testing.T) {
			e.clock.Advance(tt.advance)
			for jti, want := range tt.want {
				checkRevoked(t, e, jti, want)
			}
		})
	}
}

func testRevokeTokenPast(t *testing.T, open opener) {
	e := open(t)
	checkErr(t, "RevokeToken", e.s.RevokeToken(e.ctx, "old", e.clock.Now().Add(-time.Second)), nil)
	checkRevoked(t, e, "old", false)
}

// ---------------------------------------------------------------- keys

var keyTests = []subtest{
	{"InitKeysEmpty", testInitKeysEmpty},
	{"InitKeysExisting", testInitKeysExisting},
	{"ListOrder", testKeyListOrder},
	{"AddDuplicate", testKeyAddDuplicate},
	{"Delete", testKeyDelete},
	{"PrivateRoundTrip", testKeyPrivateRoundTrip},
	{"AddNextKey", testAddNextKey},
}

func newKey(id string, notBefore time.Time) store.Key {
	return store.Key{
		ID:        id,
		Alg:       "ES256",
		Private:   []byte("encrypted:" + id + "\x00\xff"),
		CreatedAt: notBefore.Add(-time.Hour),
		NotBefore: notBefore,
	}
}

func keyEqual(a, b store.Key) bool {
	return a.ID == b.ID &&
		a.Alg == b.Alg &&
		bytes.Equal(a.Private, b.Private) &&
		a.CreatedAt.Equal(b.CreatedAt) &&
		a.NotBefore.Equal(b.NotBefore)
}

func checkKeys(t *testing.T, call string, got []store.Key, err error, want []store.Key) {
	t.Helper()
	checkErr(t, call, err, nil)
	if !slices.EqualFunc(got, want, keyEqual) {
		t.Errorf("%s = %+v, want %+v", call, got, want)
	}
}

func testInitKeysEmpty(t *testing.T, open opener) {
	e := open(t)
	k1 := newKey("k1", e.clock.Now())
	got, err := e.s.InitKeys(e.ctx, k1)
	checkKeys(t, "InitKeys(k1) on empty store", got, err, []store.Key{k1})

	k2 := newKey("k2", e.clock.Now().Add(-time.Hour)) // would sort first if stored
	got, err = e.s.InitKeys(e.ctx, k2)
	checkKeys(t, "InitKeys(k2)", got, err, []store.Key{k1})

	got, err = e.s.ListKeys(e.ctx)
	checkKeys(t, "ListKeys", got, err, []store.Key{k1})
}

func testInitKeysExisting(t *testing.T, open opener) {
	e := open(t)
	now := e.clock.Now()
	older, newer := newKey("z-older", now), newKey("a-newer", now.Add(time.Hour))
	for _, k := range []store.Key{newer, older} {
		checkErr(t, "AddKey", e.s.AddKey(e.ctx, k), nil)
	}
	got, err := e.s.InitKeys(e.ctx, newKey("unused", now.Add(-time.Hour)))
	checkKeys(t, "InitKeys on a store with keys", got, err, []store.Key{older, newer})
	got, err = e.s.ListKeys(e.ctx)
	checkKeys(t, "ListKeys", got, err, []store.Key{older, newer})
}

func testKeyListOrder(t *testing.T, open opener) {
	e := open(t)
	got, err := e.s.ListKeys(e.ctx)
	checkErr(t, "ListKeys(empty store)", err, nil)
	if len(got) != 0 {
		t.Fatalf("ListKeys(empty store) = %+v, want none", got)
	}

	now := e.clock.Now()
	// Ids, insertion order and NotBefore order all differ.
	k1 := newKey("b", now.Add(-48*time.Hour))
	k2 := newKey("c", now.Add(-time.Millisecond))
	k3 := newKey("a", now)
	k4 := newKey("d", now.Add(24*time.Hour))
	for _, k := range []store.Key{k3, k4, k1, k2} {
		checkErr(t, fmt.Sprintf("AddKey(%q)", k.ID), e.s.AddKey(e.ctx, k), nil)
	}
	got, err = e.s.ListKeys(e.ctx)
	checkKeys(t, "ListKeys", got, err, []store.Key{k1, k2, k3, k4})
}

func testKeyAddDuplicate(t *testing.T, open opener) {
	e := open(t)
	k := newKey("k", e.clock.Now())
	checkErr(t, "AddKey", e.s.AddKey(e.ctx, k), nil)
	dup := newKey("k", e.clock.Now().Add(time.Hour))
	dup.Private = []byte("other")
	checkErr(t, "AddKey(duplicate)", e.s.AddKey(e.ctx, dup), store.ErrExists)
	got, err := e.s.ListKeys(e.ctx)
	checkKeys(t, "ListKeys", got, err, []store.Key{k})
}

func testKeyDelete(t *testing.T, open opener) {
	e := open(t)
	k1, k2 := newKey("k1", e.clock.Now()), newKey("k2", e.clock.Now().Add(time.Hour))
	for _, k := range []store.Key{k1, k2} {
		checkErr(t, "AddKey", e.s.AddKey(e.ctx, k), nil)
	}
	checkErr(t, `DeleteKey("k1")`, e.s.DeleteKey(e.ctx, "k1"), nil)
	got, err := e.s.ListKeys(e.ctx)
	checkKeys(t, "ListKeys after DeleteKey", got, err, []store.Key{k2})
	checkErr(t, `DeleteKey("k1") again`, e.s.DeleteKey(e.ctx, "k1"), store.ErrNotFound)
	checkErr(t, `DeleteKey("nothing")`, e.s.DeleteKey(e.ctx, "nothing"), store.ErrNotFound)
}

func testKeyPrivateRoundTrip(t *testing.T, open opener) {
	e := open(t)
	allBytes := make([]byte, 0, 512)
	for i := range 512 {
		allBytes = append(allBytes, byte(i), byte(255-i))
	}
	tests := []struct {
		name    string
		private []byte
	}{
		{"every byte value", allBytes},
		{"invalid UTF-8", []byte{0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28, 0xa1, 0x00}},
		{"single zero", []byte{0}},
		{"empty", nil},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := newKey(fmt.Sprintf("k%d", i), e.clock.Now().Add(time.Duration(i)*time.Hour))
			k.Private = tt.private
			checkErr(t, "AddKey", e.s.AddKey(e.ctx, k), nil)
			got, err := e.s.ListKeys(e.ctx)
			checkErr(t, "ListKeys", err, nil)
			idx := slices.IndexFunc(got, func(g store.Key) bool { return g.ID == k.ID })
			if idx < 0 {
				t.Fatalf("ListKeys() = %+v, want it to contain %q", got, k.ID)
			}
			if !bytes.Equal(got[idx].Private, tt.private) {
				t.Errorf("key %q Private = %x, want %x", k.ID, got[idx].Private, tt.private)
			}
		})
	}
}

// testAddNextKey checks that AddNextKey stores its key only while no stored
// key has a NotBefore after now, whatever time zone the stored times are in.
func testAddNextKey(t *testing.T, open opener) {
	east := time.FixedZone("UTC+05:30", 5*3600+30*60)
	west := time.FixedZone("UTC-07:00", -7*3600)
	tests := []struct {
		name   string
		have   func(now time.Time) []store.Key
		stored bool
	}{
		{"empty store", func(time.Time) []store.Key { return nil }, true},
		{"only a current key", func(now time.Time) []store.Key {
			return []store.Key{newKey("cur", now.Add(-time.Hour))}
		}, true},
		{"current and retired keys", func(now time.Time) []store.Key {
			return []store.Key{newKey("old", now.Add(-48*time.Hour)), newKey("cur", now.Add(-time.Millisecond))}
		}, true},
		{"a next key one millisecond ahead", func(now time.Time) []store.Key {
			return []store.Key{newKey("cur", now.Add(-time.Hour)), newKey("next", now.Add(time.Millisecond))}
		}, false},
		{"a next key a day ahead", func(now time.Time) []store.Key {
			return []store.Key{newKey("cur", now.Add(-time.Hour)), newKey("next", now.Add(24*time.Hour))}
		}, false},
		{"a past key whose local time reads later than now", func(now time.Time) []store.Key {
			return []store.Key{newKey("cur", now.Add(-time.Hour).In(east))}
		}, true},
		{"a next key whose local time reads earlier than now", func(now time.Time) []store.Key {
			return []store.Key{newKey("cur", now.Add(-time.Hour)), newKey("next", now.Add(time.Hour).In(west))}
		}, false},
		{"a next key with sub-millisecond digits", func(now time.Time) []store.Key {
			return []store.Key{newKey("next", now.Add(1500*time.Microsecond))}
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := open(t)
			now := e.clock.Now()
			have := tt.have(now)
			for _, k := range have {
				checkErr(t, fmt.Sprintf("AddKey(%q)", k.ID), e.s.AddKey(e.ctx, k), nil)
			}
			k := newKey("new", now.Add(2*time.Hour))
			want := slices.Clone(have)
			if tt.stored {
				want = append(want, k)
			}
			got, err := e.s.AddNextKey(e.ctx, k, now)
			checkKeys(t, "AddNextKey", got, err, want)
			got, err = e.s.ListKeys(e.ctx)
			checkKeys(t, "ListKeys", got, err, want)
		})
	}

	t.Run("id taken", func(t *testing.T) {
		e := open(t)
		now := e.clock.Now()
		k := newKey("k", now.Add(-time.Hour))
		checkErr(t, "AddKey", e.s.AddKey(e.ctx, k), nil)
		dup := newKey("k", now.Add(time.Hour))
		_, err := e.s.AddNextKey(e.ctx, dup, now)
		checkErr(t, "AddNextKey(duplicate)", err, store.ErrExists)
		got, err := e.s.ListKeys(e.ctx)
		checkKeys(t, "ListKeys", got, err, []store.Key{k})
	})
}

// ---------------------------------------------------------------- users

var userTests = []subtest{
	{"CreateGet", testUserCreateGet},
	{"CreateInvalid", testUserCreateInvalid},
	{"CreateUsernameTaken", testUserCreateUsernameTaken},
	{"CreateIDTaken", testUserCreateIDTaken},
	{"GetUnknown", testUserGetUnknown},
	{"List", testUserList},
	{"Update", testUserUpdate},
	{"UpdateGeneration", testUserUpdateGeneration},
	{"UpdateUnknown", testUserUpdateUnknown},
	{"SetPassword", testUserSetPassword},
	{"UpgradePassword", testUserUpgradePassword},
	{"Delete", testUserDelete},
	{"CreateRace", testUserCreateRace},
	{"CreateIDRace", testUserCreateIDRace},
	{"UpgradePasswordRace", testUserUpgradePasswordRace},
	{"UpgradeAgainstSetPasswordRace", testUserUpgradeAgainstSetPasswordRace},
	{"UpdateAgainstSetPasswordRace", testUserUpdateAgainstSetPasswordRace},
	{"DisableRace", testUserDisableRace},
}

func newUser(username string, now time.Time) store.User {
	return store.User{
		ID:           "uid-" + username,
		Username:     username,
		PasswordHash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$" + username,
		Scopes:       []string{"read", "write"},
		Claims:       map[string]string{"department": "sales", "locale": "fr-CH"},
		Generation:   1,
		CreatedAt:    now,
		UpdatedAt:    now,
	}
}

// userEqual compares users field by field. A nil Scopes (only the client
// limits the scopes) differs from an empty one (no scope at all); nil and
// empty Claims are equal.
func userEqual(a, b store.User) bool {
	return a.ID == b.ID &&
		a.Username == b.Username &&
		a.PasswordHash == b.PasswordHash &&
		a.Disabled == b.Disabled &&
		slices.Equal(a.Scopes, b.Scopes) && (a.Scopes == nil) == (b.Scopes == nil) &&
		maps.Equal(a.Claims, b.Claims) &&
		a.Generation == b.Generation &&
		a.CreatedAt.Equal(b.CreatedAt) &&
		a.UpdatedAt.Equal(b.UpdatedAt)
}

func createUser(t *testing.T, e env, u store.User) {
	t.Helper()
	checkErr(t, fmt.Sprintf("CreateUser(%q)", u.Username), e.s.CreateUser(e.ctx, u), nil)
}

func checkUser(t *testing.T, e env, want store.User) {
	t.Helper()
	got, err := e.s.GetUser(e.ctx, want.Username)
	checkErr(t, fmt.Sprintf("GetUser(%q)", want.Username), err, nil)
	if !userEqual(got, want) {
		t.Errorf("GetUser(%q) = %+v, want %+v", want.Username, got, want)
	}
}

func checkNoUser(t *testing.T, e env, username string) {
	t.Helper()
	_, err := e.s.GetUser(e.ctx, username)
	checkErr(t, fmt.Sprintf("GetUser(%q)", username), err, store.ErrNotFound)
}

func checkUsers(t *testing.T, e env, want ...store.User) {
	t.Helper()
	got, err := e.s.ListUsers(e.ctx)
	checkErr(t, "ListUsers", err, nil)
	if !slices.EqualFunc(got, want, userEqual) {
		t.Errorf("ListUsers() = %+v, want %+v", got, want)
	}
}

func testUserCreateGet(t *testing.T, open opener) {
	e := open(t)
	now := e.clock.Now()
	nilLists := newUser("nil-lists", now)
	nilLists.Scopes, nilLists.Claims = nil, nil
	emptyLists := newUser("empty-lists", now)
	emptyLists.Scopes, emptyLists.Claims = []string{}, map[string]string{}
	disabled := newUser("disabled", now)
	disabled.Disabled = true
	bigGeneration := newUser("big-generation", now)
	bigGeneration.Generation = 1<<62 + 1 // exact only as an integer, not as a float64
	oddName := newUser(`zoë.o'brien+{users}:x "y"@example.com`, now)
	escapes := newUser("escapes", now)
	escapes.Scopes = []string{"a b", `quote"`, `back\slash`, "é", ""}
	escapes.Claims = map[string]string{"nl": "a\nb", `quote"`: `back\slash`, "empty": "", "é": "日本"}
	zone := newUser("zone", now.In(time.FixedZone("UTC+05:30", 5*3600+30*60)))

	tests := []struct {
		name string
		u    store.User
	}{
		{"full", newUser("full", now)},
		{"nil scopes and claims", nilLists},
		{"empty scopes and claims", emptyLists},
		{"disabled", disabled},
		{"large generation", bigGeneration},
		{"punctuation in the username", oddName},
		{"strings that need escaping", escapes},
		{"times in another zone", zone},
		{"zero values", store.User{ID: "zero-id", Username: "zero"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			createUser(t, e, tt.u)
			checkUser(t, e, tt.u)
		})
	}
}

// testUserCreateInvalid checks that a user without an id or a username is
// refused: its id is the sub of its tokens, its username the name it signs
// in with.
func testUserCreateInvalid(t *testing.T, open opener) {
	e := open(t)
	noID := newUser("no-id", e.clock.Now())
	noID.ID = ""
	noName := newUser("x", e.clock.Now())
	noName.Username = ""
	for _, u := range []store.User{noID, noName} {
		if err := e.s.CreateUser(e.ctx, u); err == nil {
			t.Errorf("CreateUser(id %q, username %q) = nil, want an error", u.ID, u.Username)
		}
	}
	checkUsers(t, e)
}

func testUserCreateUsernameTaken(t *testing.T, open opener) {
	e := open(t)
	first := newUser("Alice", e.clock.Now())
	createUser(t, e, first)
	second := newUser("Alice", e.clock.Now())
	second.ID = "other-id"
	second.PasswordHash = "impostor"
	checkErr(t, "CreateUser(username taken)", e.s.CreateUser(e.ctx, second), store.ErrExists)
	checkUser(t, e, first)

	// Usernames are case-sensitive: alice is another user.
	lower := newUser("alice", e.clock.Now())
	createUser(t, e, lower)
	checkUser(t, e, first)
	checkUser(t, e, lower)
	// The refused user's id was not taken.
	createUser(t, e, store.User{ID: "other-id", Username: "bob"})
}

func testUserCreateIDTaken(t *testing.T, open opener) {
	e := open(t)
	alice := newUser("alice", e.clock.Now())
	createUser(t, e, alice)
	bob := newUser("bob", e.clock.Now())
	bob.ID = alice.ID
	checkErr(t, "CreateUser(id taken)", e.s.CreateUser(e.ctx, bob), store.ErrExists)
	checkNoUser(t, e, "bob")
	checkUser(t, e, alice)
	checkUsers(t, e, alice)
}

func testUserGetUnknown(t *testing.T, open opener) {
	e := open(t)
	checkNoUser(t, e, "nobody")
	createUser(t, e, newUser("alice", e.clock.Now()))
	for _, name := range []string{"Alice", "alice ", "alic", "uid-alice", ""} {
		checkNoUser(t, e, name)
	}
}

func testUserList(t *testing.T, open opener) {
	e := open(t)
	checkUsers(t, e)

	var want []store.User
	for _, name := range []string{"c", "a", "B", "b", "a2", "é", "A"} {
		u := newUser(name, e.clock.Now())
		createUser(t, e, u)
		want = append(want, u)
	}
	slices.SortFunc(want, func(a, b store.User) int { return strings.Compare(a.Username, b.Username) })
	checkUsers(t, e, want...)
}

// testUserUpdate checks that UpdateUser writes the profile fields and
// UpdatedAt only: not the password hash, the id, the generation (while the
// user stays enabled) nor CreatedAt, whatever the caller passes.
func testUserUpdate(t *testing.T, open opener) {
	e := open(t)
	now := e.clock.Now()
	orig := newUser("alice", now)
	other := newUser("bob", now)
	createUser(t, e, orig)
	createUser(t, e, other)

	tests := []struct {
		name   string
		scopes []string
		claims map[string]string
	}{
		{"new lists", []string{"read"}, map[string]string{"department": "support"}},
		{"no scopes: only the client limits them", nil, nil},
		{"empty scopes: none allowed", []string{}, map[string]string{}},
	}
	for _, tt := range tests { // in order, on the same user
		t.Run(tt.name, func(t *testing.T) {
			e.clock.Advance(time.Hour)
			in := store.User{
				ID:           "forged-id",
				Username:     "alice",
				PasswordHash: "stale hash",
				Scopes:       tt.scopes,
				Claims:       tt.claims,
				Generation:   99,
				CreatedAt:    now.Add(-48 * time.Hour),
				UpdatedAt:    now.Add(-24 * time.Hour),
			}
			got, err := e.s.UpdateUser(e.ctx, in)
			checkErr(t, "UpdateUser", err, nil)
			want := orig
			want.Scopes = tt.scopes
			want.Claims = tt.claims
			want.UpdatedAt = e.clock.Now()
			if !userEqual(got, want) {
				t.Errorf("UpdateUser() = %+v, want %+v", got, want)
			}
			checkUser(t, e, want)
			checkUser(t, e, other)
		})
	}
}

// testUserUpdateGeneration checks that UpdateUser increments Generation
// when, and only when, it disables an enabled user.
func testUserUpdateGeneration(t *testing.T, open opener) {
	tests := []struct {
		name     string
		from, to bool // Disabled before and after
		want     int64
	}{
		{"enabled to disabled", false, true, 6},
		{"disabled to disabled", true, true, 5},
		{"disabled to enabled", true, false, 5},
		{"enabled to enabled", false, false, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := open(t)
			u := newUser("alice", e.clock.Now())
			u.Disabled, u.Generation = tt.from, 5
			createUser(t, e, u)
			in := u
			in.Disabled = tt.to
			got, err := e.s.UpdateUser(e.ctx, in)
			checkErr(t, "UpdateUser", err, nil)
			want := u
			want.Disabled, want.Generation = tt.to, tt.want
			if !userEqual(got, want) {
				t.Errorf("UpdateUser() = %+v, want %+v", got, want)
			}
			checkUser(t, e, want)
		})
	}

	t.Run("disabled again after enabling", func(t *testing.T) {
		e := open(t)
		u := newUser("alice", e.clock.Now())
		createUser(t, e, u)
		for i, step := range []struct {
			disabled bool
			want     int64
		}{{true, 2}, {false, 2}, {true, 3}} {
			u.Disabled = step.disabled
			got, err := e.s.UpdateUser(e.ctx, u)
			checkErr(t, fmt.Sprintf("UpdateUser %d", i), err, nil)
			if got.Generation != step.want {
				t.Errorf("UpdateUser %d (disabled %t): Generation = %d, want %d", i, step.disabled, got.Generation, step.want)
			}
		}
	})
}

func testUserUpdateUnknown(t *testing.T, open opener) {
	e := open(t)
	_, err := e.s.UpdateUser(e.ctx, newUser("ghost", e.clock.Now()))
	checkErr(t, "UpdateUser(unknown)", err, store.ErrNotFound)
	checkNoUser(t, e, "ghost")
	checkUsers(t, e)
}

// testUserSetPassword checks that SetUserPassword writes the hash, the
// generation and UpdatedAt, and keeps the profile.
func testUserSetPassword(t *testing.T, open opener) {
	e := open(t)
	orig := newUser("alice", e.clock.Now())
	orig.Disabled = true
	other := newUser("bob", e.clock.Now())
	createUser(t, e, orig)
	createUser(t, e, other)

	want := orig
	for i, hash := range []string{"new hash", "new hash", "newer hash"} {
		e.clock.Advance(time.Minute)
		got, err := e.s.SetUserPassword(e.ctx, "alice", hash)
		checkErr(t, fmt.Sprintf("SetUserPassword %d", i), err, nil)
		// Setting the same hash again still ends the user's tokens.
		want.PasswordHash = hash
		want.Generation++
		want.UpdatedAt = e.clock.Now()
		if !userEqual(got, want) {
			t.Errorf("SetUserPassword %d = %+v, want %+v", i, got, want)
		}
		checkUser(t, e, want)
	}
	checkUser(t, e, other)

	_, err := e.s.SetUserPassword(e.ctx, "ghost", "hash")
	checkErr(t, "SetUserPassword(unknown)", err, store.ErrNotFound)
	checkNoUser(t, e, "ghost")
}

// testUserUpgradePassword checks the compare-and-set of UpgradeUserPassword:
// it writes the new hash only over the old one, and nothing else.
func testUserUpgradePassword(t *testing.T, open opener) {
	e := open(t)
	orig := newUser("alice", e.clock.Now())
	orig.PasswordHash = "pbkdf2_sha256$870000$salt$old"
	other := newUser("bob", e.clock.Now())
	createUser(t, e, orig)
	createUser(t, e, other)
	e.clock.Advance(time.Hour)

	want := orig
	want.PasswordHash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$new"
	checkErr(t, "UpgradeUserPassword", e.s.UpgradeUserPassword(e.ctx, "alice", orig.PasswordHash, want.PasswordHash), nil)
	checkUser(t, e, want) // same generation and UpdatedAt

	checkErr(t, "UpgradeUserPassword(old hash again)",
		e.s.UpgradeUserPassword(e.ctx, "alice", orig.PasswordHash, "other"), store.ErrConflict)
	checkUser(t, e, want)

	// A password set in between wins over an upgrade of the hash before it.
	set, err := e.s.SetUserPassword(e.ctx, "alice", "set by the admin")
	checkErr(t, "SetUserPassword", err, nil)
	checkErr(t, "UpgradeUserPassword(after SetUserPassword)",
		e.s.UpgradeUserPassword(e.ctx, "alice", want.PasswordHash, "upgraded"), store.ErrConflict)
	checkUser(t, e, set)

	checkErr(t, "UpgradeUserPassword(unknown)",
		e.s.UpgradeUserPassword(e.ctx, "ghost", "a", "b"), store.ErrNotFound)
	checkNoUser(t, e, "ghost")
	checkUser(t, e, other)
}

func testUserDelete(t *testing.T, open opener) {
	e := open(t)
	alice, bob := newUser("alice", e.clock.Now()), newUser("bob", e.clock.Now())
	createUser(t, e, alice)
	createUser(t, e, bob)
	checkErr(t, `DeleteUser("alice")`, e.s.DeleteUser(e.ctx, "alice"), nil)
	checkNoUser(t, e, "alice")
	checkErr(t, `DeleteUser("alice") again`, e.s.DeleteUser(e.ctx, "alice"), store.ErrNotFound)
	checkErr(t, `DeleteUser("nobody")`, e.s.DeleteUser(e.ctx, "nobody"), store.ErrNotFound)
	checkUsers(t, e, bob)
	_, err := e.s.UpdateUser(e.ctx, alice)
	checkErr(t, "UpdateUser of a deleted user", err, store.ErrNotFound)
	_, err = e.s.SetUserPassword(e.ctx, "alice", "h")
	checkErr(t, "SetUserPassword of a deleted user", err, store.ErrNotFound)
	err = e.s.UpgradeUserPassword(e.ctx, "alice", alice.PasswordHash, "h")
	checkErr(t, "UpgradeUserPassword of a deleted user", err, store.ErrNotFound)
	checkNoUser(t, e, "alice")

	// The username is free again, for a new user with a new id.
	again := newUser("alice", e.clock.Now())
	again.ID = "uid-alice-2"
	createUser(t, e, again)
	checkUser(t, e, again)
	// The deleted user's id left the index with it: the store keeps only
	// live users, so that nothing grows without bound. (Callers assign
	// random ids, so they never offer one again.)
	carol := newUser("carol", e.clock.Now())
	carol.ID = alice.ID
	createUser(t, e, carol)
	checkUsers(t, e, again, bob, carol)
}

// race runs f(i) for i in [0, n) on n goroutines that start at once, and
// returns their errors.
func race(n int, f func(i int) error) []error {
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = f(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// oneWinner checks that exactly one error is nil and every other one is
// lose, and returns the index of the winner.
func oneWinner(t *testing.T, call string, errs []error, lose error) int {
	t.Helper()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("%s %d and %d both succeeded, want exactly one", call, winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, lose):
			t.Errorf("%s %d: got error %v, want nil or %v", call, i, err, lose)
		}
	}
	if winner < 0 {
		t.Fatalf("no %s succeeded, want exactly one", call)
	}
	return winner
}

// testUserCreateRace creates one username on 2, then 20, goroutines at once,
// each user with an id of its own: exactly one is stored, and the losers'
// ids stay free.
func testUserCreateRace(t *testing.T, open opener) {
	for _, n := range []int{2, 20} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			e := open(t)
			user := func(i int) store.User {
				u := newUser("alice", e.clock.Now())
				u.ID = fmt.Sprintf("uid-%02d", i)
				u.PasswordHash = fmt.Sprintf("hash-%02d", i)
				return u
			}
			errs := race(n, func(i int) error { return e.s.CreateUser(e.ctx, user(i)) })
			winner := oneWinner(t, "CreateUser", errs, store.ErrExists)
			checkUsers(t, e, user(winner))
			loser := (winner + 1) % n
			bob := user(loser)
			bob.Username = "bob"
			createUser(t, e, bob)
		})
	}
}

// testUserCreateIDRace creates 20 users with one id at once: exactly one is
// stored.
func testUserCreateIDRace(t *testing.T, open opener) {
	const n = 20
	e := open(t)
	user := func(i int) store.User {
		u := newUser(fmt.Sprintf("user-%02d", i), e.clock.Now())
		u.ID = "the-id"
		return u
	}
	errs := race(n, func(i int) error { return e.s.CreateUser(e.ctx, user(i)) })
	winner := oneWinner(t, "CreateUser", errs, store.ErrExists)
	checkUsers(t, e, user(winner))
}

// testUserUpgradePasswordRace has 50 logins upgrade one hash at once:
// exactly one upgrade is written.
func testUserUpgradePasswordRace(t *testing.T, open opener) {
	const n = 50
	e := open(t)
	u := newUser("alice", e.clock.Now())
	createUser(t, e, u)
	upgraded := func(i int) string { return fmt.Sprintf("upgraded-%02d", i) }
	errs := race(n, func(i int) error {
		return e.s.UpgradeUserPassword(e.ctx, "alice", u.PasswordHash, upgraded(i))
	})
	winner := oneWinner(t, "UpgradeUserPassword", errs, store.ErrConflict)
	u.PasswordHash = upgraded(winner)
	checkUser(t, e, u)
}

// testUserUpgradeAgainstSetPasswordRace has 50 logins upgrade the hash while
// an administrator sets a new password: the password set survives, whatever
// the order. At most one upgrade is written, before it.
func testUserUpgradeAgainstSetPasswordRace(t *testing.T, open opener) {
	const n = 50
	e := open(t)
	u := newUser("alice", e.clock.Now())
	createUser(t, e, u)
	var set store.User
	errs := race(n+1, func(i int) error {
		if i == n/2 {
			var err error
			set, err = e.s.SetUserPassword(e.ctx, "alice", "set by the admin")
			return err
		}
		return e.s.UpgradeUserPassword(e.ctx, "alice", u.PasswordHash, fmt.Sprintf("upgraded-%02d", i))
	})
	checkErr(t, "SetUserPassword", errs[n/2], nil)
	upgrades := 0
	for i, err := range errs {
		switch {
		case i == n/2:
		case err == nil:
			upgrades++
		case !errors.Is(err, store.ErrConflict):
			t.Errorf("UpgradeUserPassword %d: got error %v, want nil or %v", i, err, store.ErrConflict)
		}
	}
	if upgrades > 1 {
		t.Errorf("%d upgrades succeeded, want at most one", upgrades)
	}
	want := u
	want.PasswordHash = "set by the admin"
	want.Generation = u.Generation + 1
	if !userEqual(set, want) {
		t.Errorf("SetUserPassword() = %+v, want %+v", set, want)
	}
	checkUser(t, e, want)
}

// testUserUpdateAgainstSetPasswordRace has 20 profile updates, each carrying
// the hash read before, race a password change: the new hash survives (no
// lost update).
func testUserUpdateAgainstSetPasswordRace(t *testing.T, open opener) {
	const n = 20
	e := open(t)
	u := newUser("alice", e.clock.Now())
	createUser(t, e, u)
	stale := u
	stale.Claims = map[string]string{"department": "support"}
	errs := race(n+1, func(i int) error {
		if i == n/2 {
			_, err := e.s.SetUserPassword(e.ctx, "alice", "set by the admin")
			return err
		}
		_, err := e.s.UpdateUser(e.ctx, stale)
		return err
	})
	for i, err := range errs {
		checkErr(t, fmt.Sprintf("call %d", i), err, nil)
	}
	want := stale
	want.PasswordHash = "set by the admin"
	want.Generation = u.Generation + 1
	checkUser(t, e, want)
}

// testUserDisableRace has 20 administrators disable one user at once: the
// generation moves once.
func testUserDisableRace(t *testing.T, open opener) {
	const n = 20
	e := open(t)
	u := newUser("alice", e.clock.Now())
	createUser(t, e, u)
	u.Disabled = true
	errs := race(n, func(int) error { _, err := e.s.UpdateUser(e.ctx, u); return err })
	for i, err := range errs {
		checkErr(t, fmt.Sprintf("UpdateUser %d", i), err, nil)
	}
	u.Generation++
	checkUser(t, e, u)
}

// ---------------------------------------------------------------- ping, context

func testPing(t *testing.T, open opener) {
	e := open(t)
	checkErr(t, "Ping", e.s.Ping(e.ctx), nil)
}

// testCanceledContext checks that every method honours its context: a
// canceled context fails the call with an error wrapping context.Canceled and
// changes nothing.
func testCanceledContext(t *testing.T, open opener) {
	e := open(t)
	now := e.clock.Now()
	f := newFamily("f", now)
	createFamily(t, e, f)
	checkErr(t, "CreateClient", e.s.CreateClient(e.ctx, newClient("c", now)), nil)
	checkErr(t, "AddKey", e.s.AddKey(e.ctx, newKey("k", now)), nil)
	u := newUser("u", now)
	createUser(t, e, u)

	ctx, cancel := context.WithCancel(e.ctx)
	cancel()
	calls := []struct {
		name string
		call func() error
	}{
		{"CreateClient", func() error { return e.s.CreateClient(ctx, newClient("new", now)) }},
		{"GetClient", func() error { _, err := e.s.GetClient(ctx, "c"); return err }},
		{"ListClients", func() error { _, err := e.s.ListClients(ctx); return err }},
		{"UpdateClient", func() error { return e.s.UpdateClient(ctx, newClient("c", now.Add(time.Hour))) }},
		{"DeleteClient", func() error { return e.s.DeleteClient(ctx, "c") }},
		{"CreateFamily", func() error { return e.s.CreateFamily(ctx, newFamily("new", now)) }},
		{"GetFamily", func() error { _, err := e.s.GetFamily(ctx, "f"); return err }},
		{"RotateRefresh", func() error {
			_, err := e.s.RotateRefresh(ctx, rotation(f, "new", now.Add(familyTTL)))
			return err
		}},
		{"RevokeFamily", func() error { return e.s.RevokeFamily(ctx, "f") }},
		{"RevokeToken", func() error { return e.s.RevokeToken(ctx, "jti", now.Add(time.Hour)) }},
		{"IsRevoked", func() error { _, err := e.s.IsRevoked(ctx, "jti"); return err }},
		{"InitKeys", func() error { _, err := e.s.InitKeys(ctx, newKey("new", now)); return err }},
		{"ListKeys", func() error { _, err := e.s.ListKeys(ctx); return err }},
		{"AddKey", func() error { return e.s.AddKey(ctx, newKey("new", now)) }},
		{"AddNextKey", func() error { _, err := e.s.AddNextKey(ctx, newKey("new", now.Add(time.Hour)), now); return err }},
		{"DeleteKey", func() error { return e.s.DeleteKey(ctx, "k") }},
		{"CreateUser", func() error { return e.s.CreateUser(ctx, newUser("new", now)) }},
		{"GetUser", func() error { _, err := e.s.GetUser(ctx, "u"); return err }},
		{"ListUsers", func() error { _, err := e.s.ListUsers(ctx); return err }},
		{"UpdateUser", func() error {
			d := u
			d.Disabled = true
			_, err := e.s.UpdateUser(ctx, d)
			return err
		}},
		{"SetUserPassword", func() error { _, err := e.s.SetUserPassword(ctx, "u", "new"); return err }},
		{"UpgradeUserPassword", func() error { return e.s.UpgradeUserPassword(ctx, "u", u.PasswordHash, "new") }},
		{"DeleteUser", func() error { return e.s.DeleteUser(ctx, "u") }},
		{"Ping", func() error { return e.s.Ping(ctx) }},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			checkErr(t, c.name+" with canceled context", c.call(), context.Canceled)
		})
	}

	// Nothing changed.
	checkClient(t, e, newClient("c", now))
	checkFamily(t, e, f)
	checkRevoked(t, e, "jti", false)
	got, err := e.s.ListKeys(e.ctx)
	checkKeys(t, "ListKeys", got, err, []store.Key{newKey("k", now)})
	clients, err := e.s.ListClients(e.ctx)
	checkErr(t, "ListClients", err, nil)
	if len(clients) != 1 {
		t.Errorf("ListClients() = %+v, want only client c", clients)
	}
	_, err = e.s.GetFamily(e.ctx, "new")
	checkErr(t, `GetFamily("new")`, err, store.ErrNotFound)
	checkUsers(t, e, u)
}

// ---------------------------------------------------------------- concurrency

var concurrencyTests = []subtest{
	{"RotateRace", testRotateRace},
	{"InitKeysRace", testInitKeysRace},
	{"AddNextKeyRace", testAddNextKeyRace},
}

// testRotateRace presents one refresh token 50 times at once: exactly one
// rotation wins, every other one is refused, and the reuse revokes the family.
func testRotateRace(t *testing.T, open opener) {
	e := open(t)
	const n = 50
	f := newFamily("f", e.clock.Now())
	createFamily(t, e, f)

	start := make(chan struct{})
	var wg sync.WaitGroup
	fams := make([]store.Family, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			<-start
			fams[i], errs[i] = e.s.RotateRefresh(e.ctx, rotation(f, fmt.Sprintf("new-%d", i), e.clock.Now().Add(familyTTL)))
		})
	}
	close(start)
	wg.Wait()

	winner, reused := -1, 0
	for i, err := range errs {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Errorf("RotateRefresh %d and %d both succeeded, want exactly one", winner, i)
			}
			winner = i
		case errors.Is(err, store.ErrReused):
			reused++
		case errors.Is(err, store.ErrRevoked):
		default:
			t.Errorf("RotateRefresh %d: got error %v, want nil, %v or %v", i, err, store.ErrReused, store.ErrRevoked)
		}
	}
	if winner < 0 {
		t.Fatalf("no RotateRefresh succeeded, want exactly one")
	}
	if reused == 0 {
		t.Errorf("no RotateRefresh failed with %v, want at least one", store.ErrReused)
	}
	want := f
	want.Current = fmt.Sprintf("new-%d", winner)
	want.ExpiresAt = e.clock.Now().Add(familyTTL)
	if got := fams[winner]; !familyEqual(got, want) {
		t.Errorf("winning RotateRefresh() = %+v, want %+v", got, want)
	}
	want.Revoked = true
	checkFamily(t, e, want)
}

// testInitKeysRace has 20 instances initialise an empty store at once: they
// all end up with the same single key.
func testInitKeysRace(t *testing.T, open opener) {
	e := open(t)
	const n = 20
	start := make(chan struct{})
	var wg sync.WaitGroup
	results := make([][]store.Key, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			<-start
			results[i], errs[i] = e.s.InitKeys(e.ctx, newKey(fmt.Sprintf("k%02d", i), e.clock.Now()))
		})
	}
	close(start)
	wg.Wait()

	for i, err := range errs {
		checkErr(t, fmt.Sprintf("InitKeys %d", i), err, nil)
	}
	if len(results[0]) != 1 {
		t.Fatalf("InitKeys 0 = %+v, want one key", results[0])
	}
	want := results[0]
	var offered bool
	for i := range n {
		offered = offered || keyEqual(want[0], newKey(fmt.Sprintf("k%02d", i), e.clock.Now()))
	}
	if !offered {
		t.Fatalf("InitKeys 0 = %+v, want one of the offered keys", want)
	}
	for i, got := range results[1:] {
		if !slices.EqualFunc(got, want, keyEqual) {
			t.Errorf("InitKeys %d = %+v, want %+v (as InitKeys 0)", i+1, got, want)
		}
	}
	got, err := e.s.ListKeys(e.ctx)
	checkKeys(t, "ListKeys", got, err, want)
}

// testAddNextKeyRace has 20 instances add a next key at once, as scheduled
// rotation does: exactly one key is stored, and every call returns the same
// keys.
func testAddNextKeyRace(t *testing.T, open opener) {
	e := open(t)
	const n = 20
	now := e.clock.Now()
	cur := newKey("current", now.Add(-time.Hour))
	checkErr(t, "AddKey", e.s.AddKey(e.ctx, cur), nil)

	start := make(chan struct{})
	var wg sync.WaitGroup
	results := make([][]store.Key, n)
	errs := make([]error, n)
	next := func(i int) store.Key { return newKey(fmt.Sprintf("next-%02d", i), now.Add(time.Hour)) }
	for i := range n {
		wg.Go(func() {
			<-start
			results[i], errs[i] = e.s.AddNextKey(e.ctx, next(i), now)
		})
	}
	close(start)
	wg.Wait()

	for i, err := range errs {
		checkErr(t, fmt.Sprintf("AddNextKey %d", i), err, nil)
	}
	got, err := e.s.ListKeys(e.ctx)
	checkErr(t, "ListKeys", err, nil)
	if len(got) != 2 || !keyEqual(got[0], cur) {
		t.Fatalf("ListKeys() = %+v, want the current key and one next key", got)
	}
	offered := false
	for i := range n {
		offered = offered || keyEqual(got[1], next(i))
	}
	if !offered {
		t.Fatalf("stored next key %+v is none of the offered keys", got[1])
	}
	for i, r := range results {
		if !slices.EqualFunc(r, got, keyEqual) {
			t.Errorf("AddNextKey %d = %+v, want %+v", i, r, got)
		}
	}
}
