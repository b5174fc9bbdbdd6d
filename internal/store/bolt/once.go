package bolt

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	bbolt "go.etcd.io/bbolt"
	bberrors "go.etcd.io/bbolt/errors"

	"github.com/issuer-oauth/issuer/internal/store"
)

// bucketOnce holds the single-use values of UseOnce while the store is
// closed: id → revocation (the time until which the id counts as used).
// Close writes them, Open reads them back and empties it.
var bucketOnce = []byte("single_use")

// singleUse is the set of values UseOnce has recorded: id → the time until
// which the id counts as used. It lives in memory, as the package
// documentation explains; values is nil once the store is closed.
type singleUse struct {
	mu     sync.Mutex
	values map[string]time.Time
}

// UseOnce records id as used until the given time, or fails with
// store.ErrReplayed if it is already used. The record is kept in memory and
// reaches the file only at Close, so it costs no disk write.
func (s *Store) UseOnce(ctx context.Context, id string, until time.Time) error {
	const op = "use once"
	if err := ctx.Err(); err != nil {
		return opError(op, id, err)
	}
	s.once.mu.Lock()
	defer s.once.mu.Unlock()
	if s.once.values == nil {
		return opError(op, id, bberrors.ErrDatabaseNotOpen)
	}
	now := s.now()
	if old, ok := s.once.values[id]; ok && !expired(old, now) {
		return opError(op, id, store.ErrReplayed)
	}
	if expired(until, now) {
		// Used and free again at once: nothing to remember.
		delete(s.once.values, id)
		return nil
	}
	s.once.values[id] = until
	return nil
}

// sweepOnce forgets the single-use values that have expired at now and
// returns how many.
func (s *Store) sweepOnce(now time.Time) int {
	s.once.mu.Lock()
	defer s.once.mu.Unlock()
	n := 0
	for id, until := range s.once.values {
		if expired(until, now) {
			delete(s.once.values, id)
			n++
		}
	}
	return n
}

// loadOnce reads the single-use values that the last Close wrote, keeps the
// live ones in memory and empties the bucket, so that the file holds no
// copy that could go stale while the store is open. Open calls it in its
// first transaction.
func (s *Store) loadOnce(tx *bbolt.Tx) error {
	now := s.now()
	values := make(map[string]time.Time)
	err := tx.Bucket(bucketOnce).ForEach(func(k, v []byte) error {
		var r revocation
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("decode single-use value %q: %w", k, err)
		}
		if !expired(r.Until, now) {
			values[string(k)] = r.Until
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := tx.DeleteBucket(bucketOnce); err != nil {
		return fmt.Errorf("empty bucket %s: %w", bucketOnce, err)
	}
	if _, err := tx.CreateBucket(bucketOnce); err != nil {
		return fmt.Errorf("create bucket %s: %w", bucketOnce, err)
	}
	s.once.values = values
	return nil
}

// saveOnce writes the live single-use values to the file in one
// transaction and stops UseOnce: calls made afterwards fail. Close calls it
// once no other write is in progress.
func (s *Store) saveOnce() error {
	s.once.mu.Lock()
	values := s.once.values
	s.once.values = nil
	s.once.mu.Unlock()
	now := s.now()
	err := s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketOnce)
		for id, until := range values {
			if expired(until, now) {
				continue
			}
			if err := put(b, id, revocation{Until: until}); err != nil {
				return fmt.Errorf("%q: %w", id, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("bolt: save single-use values: %w", err)
	}
	return nil
}
