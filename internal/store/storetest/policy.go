package storetest

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/issuer-oauth/issuer/internal/store"
)

// Per-client policy: SetClientDisabled and RotateRefreshRetry.

var policyTests = []subtest{
	{"SetClientDisabled", testSetClientDisabled},
	{"SetClientDisabledUnknown", testSetClientDisabledUnknown},
	{"ClientPolicyRoundTrip", testClientPolicyRoundTrip},
	{"RetryRotate", testRetryRotate},
	{"RetryReplay", testRetryReplay},
	{"RetryReuse", testRetryReuse},
	{"RetryIntervalEnds", testRetryIntervalEnds},
	{"RetryZeroInterval", testRetryZeroInterval},
	{"RetryErrors", testRetryErrors},
	{"RetryRace", testRetryRace},
}

// testSetClientDisabled disables and enables a client: the flag follows,
// the generation moves only from enabled to disabled, UpdatedAt is the
// store's clock and every other field is kept.
func testSetClientDisabled(t *testing.T, open opener) {
	e := open(t)
	c := newClient("c", e.clock.Now())
	c.Generation = 4
	c.AccessTokenTTL = time.Minute
	checkErr(t, "CreateClient", e.s.CreateClient(e.ctx, c), nil)

	steps := []struct {
		disabled bool
		gen      int64
	}{
		{true, 5},  // enabled → disabled: ends the families
		{true, 5},  // disabled again: nothing more to end
		{false, 5}, // enabled: the families stay ended
		{true, 6},
	}
	for i, s := range steps {
		e.clock.Advance(time.Millisecond)
		got, err := e.s.SetClientDisabled(e.ctx, c.ID, s.disabled)
		checkErr(t, fmt.Sprintf("step %d: SetClientDisabled(%t)", i, s.disabled), err, nil)
		want := c
		want.Disabled, want.Generation, want.UpdatedAt = s.disabled, s.gen, e.clock.Now()
		if !clientEqual(got, want) || got.Disabled != want.Disabled || got.Generation != want.Generation {
			t.Fatalf("step %d: SetClientDisabled(%t) = %+v, want %+v", i, s.disabled, got, want)
		}
		stored, err := e.s.GetClient(e.ctx, c.ID)
		checkErr(t, "GetClient", err, nil)
		if !clientEqual(stored, want) || stored.Disabled != want.Disabled || stored.Generation != want.Generation ||
			stored.AccessTokenTTL != time.Minute {
			t.Fatalf("step %d: GetClient = %+v, want %+v", i, stored, want)
		}
	}
}

func testSetClientDisabledUnknown(t *testing.T, open opener) {
	e := open(t)
	_, err := e.s.SetClientDisabled(e.ctx, "nobody", true)
	checkErr(t, "SetClientDisabled(unknown)", err, store.ErrNotFound)
}

// testClientPolicyRoundTrip stores and reads back every policy field.
func testClientPolicyRoundTrip(t *testing.T, open opener) {
	e := open(t)
	c := newClient("p", e.clock.Now())
	c.Disabled, c.Generation = true, 3
	c.AccessTokenTTL, c.RefreshTokenTTL = 90*time.Second, 36*time.Hour
	c.RefreshTokenMaxLifetime, c.RefreshTokenReuseInterval = 72*time.Hour, 15*time.Second
	c.TokenQuotaPerMinute = 7
	checkErr(t, "CreateClient", e.s.CreateClient(e.ctx, c), nil)
	got, err := e.s.GetClient(e.ctx, c.ID)
	checkErr(t, "GetClient", err, nil)
	gotPolicy := []any{got.Disabled, got.Generation, got.AccessTokenTTL, got.RefreshTokenTTL, got.RefreshTokenMaxLifetime, got.RefreshTokenReuseInterval, got.TokenQuotaPerMinute}
	wantPolicy := []any{c.Disabled, c.Generation, c.AccessTokenTTL, c.RefreshTokenTTL, c.RefreshTokenMaxLifetime, c.RefreshTokenReuseInterval, c.TokenQuotaPerMinute}
	if fmt.Sprint(gotPolicy) != fmt.Sprint(wantPolicy) {
		t.Errorf("GetClient policy = %v, want %v", gotPolicy, wantPolicy)
	}
}

const retryInterval = 30 * time.Second

// retryRotation is the rotation of f's current token to newID that keeps
// response for retryInterval.
func retryRotation(f store.Family, old, newID, request string, response []byte, now time.Time) store.RetryRotation {
	r := rotation(f, newID, now.Add(familyTTL))
	r.OldID = old
	return store.RetryRotation{Rotation: r, Interval: retryInterval, Request: request, Response: response}
}

// retry presents r and checks the answer: the kept response (nil when the
// call rotated) or the error.
func retry(t *testing.T, e env, call string, r store.RetryRotation, wantReplay []byte, wantErr error) {
	t.Helper()
	got, err := e.s.RotateRefreshRetry(e.ctx, r)
	checkErr(t, call, err, wantErr)
	if !bytes.Equal(got, wantReplay) {
		t.Fatalf("%s = %q, want %q", call, got, wantReplay)
	}
}

// testRetryRotate rotates as RotateRefresh does.
func testRetryRotate(t *testing.T, open opener) {
	e := open(t)
	f := newFamily("f", e.clock.Now())
	createFamily(t, e, f)
	e.clock.Advance(time.Second)
	retry(t, e, "RotateRefreshRetry", retryRotation(f, f.Current, "f-1", "req", []byte("answer 1"), e.clock.Now()), nil, nil)
	want := f
	want.Current, want.ExpiresAt = "f-1", e.clock.Now().Add(familyTTL)
	checkFamily(t, e, want)
}

// testRetryReplay presents the retired token again within the interval,
// with the same request: the first answer, every time, and nothing
// changes; then the new token rotates as usual.
func testRetryReplay(t *testing.T, open opener) {
	e := open(t)
	f := newFamily("f", e.clock.Now())
	createFamily(t, e, f)
	answer := []byte{0, 1, 2, 0xff, 'a'} // any bytes
	retry(t, e, "first", retryRotation(f, f.Current, "f-1", "req", answer, e.clock.Now()), nil, nil)
	want := f
	want.Current, want.ExpiresAt = "f-1", e.clock.Now().Add(familyTTL)
	for i := range 3 {
		e.clock.Advance(retryInterval / 4)
		retry(t, e, fmt.Sprintf("retry %d", i), retryRotation(f, f.Current, fmt.Sprintf("f-retry-%d", i), "req", []byte("another"), e.clock.Now()), answer, nil)
	}
	checkFamily(t, e, want)
	retry(t, e, "next", retryRotation(f, "f-1", "f-2", "req2", []byte("answer 2"), e.clock.Now()), nil, nil)
	want.Current, want.ExpiresAt = "f-2", e.clock.Now().Add(familyTTL)
	checkFamily(t, e, want)
}

// testRetryReuse: anything but the same request with the just-retired
// token within the interval revokes the family, and the kept answer is
// gone with it.
func testRetryReuse(t *testing.T, open opener) {
	tests := []struct {
		name    string
		present func(f store.Family, now time.Time) store.RetryRotation
	}{
		{"another request", func(f store.Family, now time.Time) store.RetryRotation {
			return retryRotation(f, f.Current, "x", "other req", nil, now)
		}},
		{"the grandparent", func(f store.Family, now time.Time) store.RetryRotation {
			return retryRotation(f, "f-0", "x", "req", nil, now)
		}},
		{"a token never issued", func(f store.Family, now time.Time) store.RetryRotation {
			return retryRotation(f, "forged", "x", "req", nil, now)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := open(t)
			f := newFamily("f", e.clock.Now())
			f.Current = "f-0"
			createFamily(t, e, f)
			retry(t, e, "rotate 1", retryRotation(f, "f-0", "f-1", "req", []byte("a1"), e.clock.Now()), nil, nil)
			retry(t, e, "rotate 2", retryRotation(f, "f-1", "f-2", "req", []byte("a2"), e.clock.Now()), nil, nil)
			f.Current = "f-1" // the just-retired token
			retry(t, e, tt.name, tt.present(f, e.clock.Now()), nil, store.ErrReused)
			want := f
			want.Current, want.ExpiresAt, want.Revoked = "f-2", e.clock.Now().Add(familyTTL), true
			checkFamily(t, e, want)
			// The family is revoked: the true retry gets no answer now.
			retry(t, e, "retry after reuse", retryRotation(f, "f-1", "y", "req", nil, e.clock.Now()), nil, store.ErrRevoked)
		})
	}
}

// testRetryIntervalEnds presents the retired token at the end of the
// interval: reuse.
func testRetryIntervalEnds(t *testing.T, open opener) {
	e := open(t)
	f := newFamily("f", e.clock.Now())
	createFamily(t, e, f)
	retry(t, e, "first", retryRotation(f, f.Current, "f-1", "req", []byte("a"), e.clock.Now()), nil, nil)
	e.clock.Advance(retryInterval - time.Millisecond)
	retry(t, e, "last moment", retryRotation(f, f.Current, "x", "req", nil, e.clock.Now()), []byte("a"), nil)
	e.clock.Advance(time.Millisecond)
	retry(t, e, "interval over", retryRotation(f, f.Current, "x", "req", nil, e.clock.Now()), nil, store.ErrReused)
}

// testRetryZeroInterval keeps nothing: a retry is reuse, as with
// RotateRefresh.
func testRetryZeroInterval(t *testing.T, open opener) {
	e := open(t)
	f := newFamily("f", e.clock.Now())
	createFamily(t, e, f)
	r := retryRotation(f, f.Current, "f-1", "req", []byte("a"), e.clock.Now())
	r.Interval = 0
	retry(t, e, "first", r, nil, nil)
	r.NewID = "f-x"
	retry(t, e, "retry", r, nil, store.ErrReused)
}

// testRetryErrors: an unknown, expired or another client's family is not
// found and changes nothing.
func testRetryErrors(t *testing.T, open opener) {
	e := open(t)
	f := newFamily("f", e.clock.Now())
	createFamily(t, e, f)
	other := retryRotation(f, f.Current, "x", "req", nil, e.clock.Now())
	other.ClientID = "someone else"
	retry(t, e, "another client", other, nil, store.ErrNotFound)
	checkFamily(t, e, f)
	unknown := retryRotation(f, f.Current, "x", "req", nil, e.clock.Now())
	unknown.FamilyID = "nope"
	retry(t, e, "unknown family", unknown, nil, store.ErrNotFound)
	e.clock.Advance(familyTTL)
	retry(t, e, "expired family", retryRotation(f, f.Current, "x", "req", nil, e.clock.Now()), nil, store.ErrNotFound)
}

// testRetryRace presents one refresh token 50 times at once, each with the
// same request and an answer of its own: exactly one rotates, and all 50
// get the winner's answer.
func testRetryRace(t *testing.T, open opener) {
	e := open(t)
	const n = 50
	f := newFamily("f", e.clock.Now())
	createFamily(t, e, f)
	answers := make([][]byte, n)
	errs := race(n, func(i int) error {
		mine := []byte(fmt.Sprintf("answer %d", i))
		replay, err := e.s.RotateRefreshRetry(e.ctx, retryRotation(f, f.Current, fmt.Sprintf("new-%d", i), "req", mine, e.clock.Now()))
		answers[i] = replay
		if err == nil && replay == nil {
			answers[i] = mine
			return nil
		}
		if err == nil {
			return store.ErrExists // a replay: the loser's answer
		}
		return err
	})
	winner := oneWinner(t, "RotateRefreshRetry", errs, store.ErrExists)
	for i, a := range answers {
		if !bytes.Equal(a, answers[winner]) {
			t.Errorf("presentation %d got %q, want the winner's %q", i, a, answers[winner])
		}
	}
	want := f
	want.Current, want.ExpiresAt = fmt.Sprintf("new-%d", winner), e.clock.Now().Add(familyTTL)
	checkFamily(t, e, want)
}
