package bolt

import (
	"context"
	"errors"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/issuer-oauth/issuer/internal/store"
)

// bucketOnce holds the single-use values of UseOnce: id → revocation (the
// time until which the id counts as used), swept like revoked token ids.
var bucketOnce = []byte("single_use")

// UseOnce records id as used until the given time, or fails with
// store.ErrReplayed if it is already used. It is group-committed with the
// other token-request writes; a replay is carried out of the transaction in
// a variable, so that it costs the batch no rerun.
func (s *Store) UseOnce(ctx context.Context, id string, until time.Time) error {
	var replayed bool
	err := s.write(ctx, "use once", id, func(tx *bbolt.Tx) error {
		replayed = false
		b := tx.Bucket(bucketOnce)
		var old revocation
		switch err := get(b, id, &old); {
		case err == nil && !expired(old.Until, s.now()):
			replayed = true
			return nil
		case err != nil && !errors.Is(err, store.ErrNotFound):
			return err
		}
		return put(b, id, revocation{Until: until})
	})
	if err != nil {
		return err
	}
	if replayed {
		return opError("use once", id, store.ErrReplayed)
	}
	return nil
}
