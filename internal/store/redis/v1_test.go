package redis_test

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strconv"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/issuer-oauth/issuer/internal/jsonenc"
	"github.com/issuer-oauth/issuer/internal/redistest"
	"github.com/issuer-oauth/issuer/internal/store"
	"github.com/issuer-oauth/issuer/internal/store/redis"
	"github.com/issuer-oauth/issuer/internal/testutil"
)

// scriptCreateFamilyV1 is the CreateFamily script of the first version,
// kept as the reference for BenchmarkCreateFamily and to write families in
// its format. It wrote revoked "0", and deleted the key before every write.
var scriptCreateFamilyV1 = goredis.NewScript(`
local exp = tonumber(redis.call('HGET', KEYS[1], 'expires_at'))
if exp and tonumber(ARGV[1]) < exp then return 2 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'client_id', ARGV[2], 'current', ARGV[3], 'revoked', '0',
	'expires_at', ARGV[4], 'scopes', ARGV[5], 'audience', ARGV[6])
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
return 1
`)

// createFamilyV1 is CreateFamily as the first version did it, on the store
// with the default prefix, with its errors reduced to store.ErrExists.
func createFamilyV1(ctx context.Context, c goredis.UniversalClient, now time.Time, f store.Family) error {
	scopes, err := json.Marshal(f.Scopes)
	if err != nil {
		return err
	}
	audience, err := json.Marshal(f.Audience)
	if err != nil {
		return err
	}
	code, err := scriptCreateFamilyV1.Run(ctx, c, []string{redis.DefaultPrefix + ":fam:{" + f.ID + "}"},
		now.UnixMilli(), f.ClientID, f.Current, f.ExpiresAt.UnixMilli(), scopes, audience).Int()
	switch {
	case err != nil:
		return err
	case code == 2:
		return store.ErrExists
	case code != 1:
		return errors.New("unexpected status " + strconv.Itoa(code))
	}
	return nil
}

// TestFamiliesOfV1 checks an upgrade: families that the first version wrote
// (revoked "0", lists by json.Marshal) are read, rotated, revoked, refused
// as duplicates while live and replaced once expired.
func TestFamiliesOfV1(t *testing.T) {
	srv := redistest.Start(t)
	clock := testutil.NewClock(time.Now().Truncate(time.Millisecond))
	s := open(t, srv.URL(), redis.WithNow(clock.Now))
	ctx := t.Context()
	c := s.Client()
	t0 := clock.Now()

	fams := []store.Family{
		{ID: "lists", ClientID: "c", Scopes: []string{"read", "offline_access"},
			Audience: []string{"https://api.example.com/?a=1&b=<2>"}, Current: "lists-0", ExpiresAt: t0.Add(time.Hour)},
		{ID: "nil-lists", ClientID: "c", Current: "nil-lists-0", ExpiresAt: t0.Add(time.Hour)},
		{ID: "empty-lists", ClientID: "c", Scopes: []string{}, Audience: []string{}, Current: "empty-lists-0", ExpiresAt: t0.Add(time.Hour)},
		{ID: "unicode", ClientID: "c", Scopes: []string{"é", "\u2028", `q"b\`}, Audience: []string{"\x00"}, Current: "unicode-0", ExpiresAt: t0.Add(time.Hour)},
	}
	for _, f := range fams {
		if err := createFamilyV1(ctx, c, t0, f); err != nil {
			t.Fatalf("createFamilyV1(%q): %v", f.ID, err)
		}
	}
	for _, f := range fams {
		got, err := s.GetFamily(ctx, f.ID)
		if err != nil || !familyEqual(got, f) {
			t.Errorf("GetFamily(%q) = %+v, %v; want %+v", f.ID, got, err, f)
		}
		dup := f
		dup.Current = "other"
		if err := s.CreateFamily(ctx, dup); !errors.Is(err, store.ErrExists) {
			t.Errorf("CreateFamily(live %q): got error %v, want %v", f.ID, err, store.ErrExists)
		}
		r := store.Rotation{FamilyID: f.ID, ClientID: f.ClientID, OldID: f.Current, NewID: f.ID + "-1", ExpiresAt: t0.Add(2 * time.Hour)}
		want := f
		want.Current, want.ExpiresAt = r.NewID, r.ExpiresAt
		got, err = s.RotateRefresh(ctx, r)
		if err != nil || !familyEqual(got, want) {
			t.Errorf("RotateRefresh(%q) = %+v, %v; want %+v", f.ID, got, err, want)
		}
		if got, err := s.GetFamily(ctx, f.ID); err != nil || !familyEqual(got, want) {
			t.Errorf("GetFamily(%q) after rotation = %+v, %v; want %+v", f.ID, got, err, want)
		}
	}

	// Reuse revokes a family of the first version.
	_, err := s.RotateRefresh(ctx, store.Rotation{FamilyID: "lists", ClientID: "c", OldID: "lists-0", NewID: "x", ExpiresAt: t0.Add(time.Hour)})
	if !errors.Is(err, store.ErrReused) {
		t.Fatalf("RotateRefresh(stale): got error %v, want %v", err, store.ErrReused)
	}
	if got, err := s.GetFamily(ctx, "lists"); err != nil || !got.Revoked {
		t.Fatalf("GetFamily after reuse = %+v, %v; want revoked", got, err)
	}
	if err := s.RevokeFamily(ctx, "nil-lists"); err != nil {
		t.Fatalf("RevokeFamily(v1 family): %v", err)
	}

	// Once expired by the store's clock (Redis still holds the keys), the
	// ids can be used again, and nothing of the old family, its revocation
	// least of all, survives.
	clock.Advance(2*time.Hour + time.Millisecond)
	for _, id := range []string{"lists", "nil-lists"} {
		f := store.Family{ID: id, ClientID: "d", Scopes: []string{"new"}, Current: id + "-new", ExpiresAt: clock.Now().Add(time.Hour)}
		if err := s.CreateFamily(ctx, f); err != nil {
			t.Fatalf("CreateFamily(expired %q): %v", id, err)
		}
		if got, err := s.GetFamily(ctx, id); err != nil || !familyEqual(got, f) {
			t.Errorf("GetFamily(%q) after re-creation = %+v, %v; want %+v", id, got, err, f)
		}
	}
}

// TestFamiliesOfAppendedLists checks that families written while the lists
// were encoded with jsonenc.AppendStrings (no revoked field; lists byte for
// byte as json.Marshal writes them, which jsonenc's tests check) read and
// rotate as they were written.
func TestFamiliesOfAppendedLists(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv.URL())
	ctx := t.Context()
	exp := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	for _, f := range []store.Family{
		{ID: "lists", ClientID: "c", Scopes: []string{"read", "offline_access"}, Audience: []string{"https://api.example.com/?a=1&b=<2>"}},
		{ID: "nil-lists", ClientID: "c"},
		{ID: "empty-lists", ClientID: "c", Scopes: []string{}, Audience: []string{}},
		{ID: "escaped", ClientID: "c", Scopes: []string{"é", "\u2028", `q"b\`, "\xff"}, Audience: []string{"\x00", "a,b"}},
	} {
		f.Current, f.ExpiresAt = f.ID+"-0", exp
		key := redis.DefaultPrefix + ":fam:{" + f.ID + "}"
		err := s.Client().HSet(ctx, key, "client_id", f.ClientID, "current", f.Current,
			"expires_at", exp.UnixMilli(), "scopes", jsonenc.AppendStrings(nil, f.Scopes),
			"audience", jsonenc.AppendStrings(nil, f.Audience)).Err()
		if err != nil {
			t.Fatal(err)
		}
		want := f
		if f.ID == "escaped" { // invalid UTF-8 is stored as U+FFFD
			want.Scopes = []string{"é", "\u2028", `q"b\`, "\ufffd"}
		}
		if got, err := s.GetFamily(ctx, f.ID); err != nil || !familyEqual(got, want) {
			t.Errorf("GetFamily(%q) = %+v, %v; want %+v", f.ID, got, err, want)
		}
		r := store.Rotation{FamilyID: f.ID, ClientID: f.ClientID, OldID: f.Current, NewID: f.ID + "-1", ExpiresAt: exp}
		want.Current = r.NewID
		if got, err := s.RotateRefresh(ctx, r); err != nil || !familyEqual(got, want) {
			t.Errorf("RotateRefresh(%q) = %+v, %v; want %+v", f.ID, got, err, want)
		}
	}
}

// TestFamilyFormat pins the stored fields of a new family to what the
// first version reads (revoked absent reads as "not revoked"; lists are
// json.Marshal's bytes), so that instances of both can run side by side
// during a rolling upgrade.
func TestFamilyFormat(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv.URL())
	ctx := t.Context()
	exp := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	f := store.Family{ID: "f", ClientID: "c", Scopes: []string{"read", "a&b"}, Audience: nil, Current: "f-0", ExpiresAt: exp}
	if err := s.CreateFamily(ctx, f); err != nil {
		t.Fatal(err)
	}
	got, err := s.Client().HGetAll(ctx, "issuer:fam:{f}").Result()
	if err != nil {
		t.Fatal(err)
	}
	scopes, _ := json.Marshal(f.Scopes)
	want := map[string]string{
		"client_id":  "c",
		"current":    "f-0",
		"expires_at": strconv.FormatInt(exp.UnixMilli(), 10),
		"scopes":     string(scopes),
		"audience":   "null",
	}
	if !maps.Equal(got, want) {
		t.Errorf("stored family = %q, want %q", got, want)
	}
}

// familyEqual compares families field by field; nil and empty slices
// differ, as a store must return what it was given.
func familyEqual(a, b store.Family) bool {
	return a.ID == b.ID && a.ClientID == b.ClientID && a.Current == b.Current &&
		a.ExpiresAt.Equal(b.ExpiresAt) && a.Revoked == b.Revoked &&
		slices.Equal(a.Scopes, b.Scopes) && (a.Scopes == nil) == (b.Scopes == nil) &&
		slices.Equal(a.Audience, b.Audience) && (a.Audience == nil) == (b.Audience == nil)
}
