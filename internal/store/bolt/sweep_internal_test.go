package bolt

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/issuer-oauth/issuer/internal/store"
)

// TestSweepInBatches: a sweep with more expired records than sweepBatch
// deletes them all in several small transactions and keeps the live ones
// wherever they sit between the dead.
func TestSweepInBatches(t *testing.T) {
	defer func(n int) { sweepBatch = n }(sweepBatch)
	sweepBatch = 3
	ctx := context.Background()
	s := openTest(t, filepath.Join(t.TempDir(), "issuer.db"))
	defer mustClose(t, s)

	var live []string
	for i := range 20 {
		f := family(fmt.Sprintf("f%02d", i))
		if i%4 == 0 {
			f.ExpiresAt = testNow.Add(time.Hour)
			live = append(live, f.ID)
		} else {
			f.ExpiresAt = testNow.Add(-time.Second) // written expired
		}
		if err := s.db.Update(func(tx *bbolt.Tx) error { return put(tx.Bucket(bucketFamilies), f.ID, f) }); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 7 {
		if err := s.RevokeToken(ctx, fmt.Sprintf("jti-%d", i), testNow.Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	before := txID(t, s)
	n, err := s.Sweep(ctx)
	if err != nil || n != 15+7 {
		t.Fatalf("Sweep() = %d, %v; want %d, nil", n, err, 15+7)
	}
	// 15 dead families in batches of 3, 7 revocations in batches of 3.
	if txs := txID(t, s) - before; txs != 5+3 {
		t.Errorf("Sweep committed %d transactions, want %d", txs, 5+3)
	}
	for _, id := range live {
		if _, err := s.GetFamily(ctx, id); err != nil {
			t.Errorf("GetFamily(%q) after Sweep: %v", id, err)
		}
	}
	if _, err := s.GetFamily(ctx, "f01"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetFamily(f01) after Sweep: %v, want not found", err)
	}
	if n, err := s.Sweep(ctx); err != nil || n != 0 {
		t.Errorf("second Sweep() = %d, %v; want 0, nil", n, err)
	}
}
