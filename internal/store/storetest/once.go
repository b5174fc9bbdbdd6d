package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/issuer-oauth/issuer/internal/store"
)

var singleUseTests = []subtest{
	{"Until", testUseOnceUntil},
	{"UntilInThePast", testUseOncePast},
	{"Race", testUseOnceRace},
}

func useOnce(t *testing.T, e env, id string, until time.Time, want error) {
	t.Helper()
	checkErr(t, fmt.Sprintf("UseOnce(%q) at %v", id, e.clock.Now()), e.s.UseOnce(e.ctx, id, until), want)
}

// testUseOnceUntil uses values and presents them again while the clock
// moves past their end.
func testUseOnceUntil(t *testing.T, open opener) {
	e := open(t)
	until := e.clock.Now().Add(time.Minute)
	useOnce(t, e, "a", until, nil)
	useOnce(t, e, "b", until.Add(time.Minute), nil)
	useOnce(t, e, "a", until, store.ErrReplayed)
	useOnce(t, e, "a", until.Add(time.Hour), store.ErrReplayed) // a later end does not help

	e.clock.Advance(time.Minute - time.Millisecond)
	useOnce(t, e, "a", until, store.ErrReplayed)

	e.clock.Advance(time.Millisecond) // a's end: free again, b still used
	useOnce(t, e, "a", e.clock.Now().Add(time.Minute), nil)
	useOnce(t, e, "b", e.clock.Now().Add(time.Minute), store.ErrReplayed)
	useOnce(t, e, "a", e.clock.Now().Add(time.Minute), store.ErrReplayed)

	e.clock.Advance(time.Minute)
	useOnce(t, e, "b", e.clock.Now().Add(time.Minute), nil)
}

// testUseOncePast records a value whose end has passed: it counts for
// nothing, as it would an instant later.
func testUseOncePast(t *testing.T, open opener) {
	e := open(t)
	useOnce(t, e, "old", e.clock.Now().Add(-time.Second), nil)
	useOnce(t, e, "old", e.clock.Now().Add(time.Minute), nil)
	useOnce(t, e, "old", e.clock.Now().Add(time.Minute), store.ErrReplayed)
}

// testUseOnceRace uses one value 50 times at once: exactly one call wins.
func testUseOnceRace(t *testing.T, open opener) {
	e := open(t)
	const n = 50
	until := e.clock.Now().Add(time.Minute)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = e.s.UseOnce(e.ctx, "jti", until) })
	}
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, store.ErrReplayed):
			t.Errorf("UseOnce #%d: %v, want nil or ErrReplayed", i, err)
		}
	}
	if won != 1 {
		t.Errorf("%d of %d concurrent UseOnce calls succeeded, want exactly 1", won, n)
	}
}
