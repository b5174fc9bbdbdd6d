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
		{"Families", familyTests},
		{"RevokedTokens", revokedTokenTests},
		{"Keys", keyTests},
		{"Ping", []subtest{{"OK", testPing}}},
		{"Context", []subtest{{"Canceled", testCanceledContext}}},
		{"Concurrency", concurrencyTests},
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
