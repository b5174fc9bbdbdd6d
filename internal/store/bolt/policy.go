package bolt

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/issuer-oauth/issuer/internal/store"
)

// bucketRetries holds the answer kept for the retry of a family's last
// rotation: family id → retry (JSON), until the rotation's interval ends
// (then the sweeper deletes it).
var bucketRetries = []byte("refresh_retries")

// retry is the value stored in bucketRetries.
type retry struct {
	// Old is the token the rotation retired.
	Old string `json:"old"`
	// Until is when the interval ends.
	Until    time.Time `json:"until"`
	Request  string    `json:"request"`
	Response []byte    `json:"response"`
}

// SetClientDisabled sets the client's Disabled flag in one transaction; see
// store.Store.
func (s *Store) SetClientDisabled(ctx context.Context, id string, disabled bool) (store.Client, error) {
	defer s.clients.invalidate(id)
	var c store.Client
	err := s.update(ctx, "set client disabled", id, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketClients)
		c = store.Client{}
		if err := get(b, id, &c); err != nil {
			return err
		}
		if disabled && !c.Disabled {
			c.Generation++
		}
		c.Disabled = disabled
		c.UpdatedAt = s.now().UTC()
		c.Version++
		return put(b, id, c)
	})
	if err != nil {
		return store.Client{}, err
	}
	return c, nil
}

// RotateRefreshRetry rotates or answers a retry in one group-committed
// transaction; see store.Store. On store.ErrReused the revocation of the
// family is committed.
func (s *Store) RotateRefreshRetry(ctx context.Context, r store.RetryRotation) ([]byte, error) {
	const op = "rotate refresh token of family"
	var (
		replay []byte
		// refused is carried out instead of returned, as in RotateRefresh.
		refused error
	)
	err := s.write(ctx, op, r.FamilyID, func(tx *bbolt.Tx) error {
		replay, refused = nil, nil // the committer may run this more than once
		fams, retries := tx.Bucket(bucketFamilies), tx.Bucket(bucketRetries)
		now := s.now()
		f, err := s.liveFamily(fams, r.FamilyID)
		switch {
		case errors.Is(err, store.ErrNotFound) || err == nil && f.ClientID != r.ClientID:
			refused = store.ErrNotFound
			return nil
		case err != nil:
			return err
		case f.Revoked:
			refused = store.ErrRevoked
			return nil
		case f.Current != r.OldID:
			var kept retry
			switch err := get(retries, r.FamilyID, &kept); {
			case err == nil && kept.Old == r.OldID && !expired(kept.Until, now) && kept.Request == r.Request:
				replay = kept.Response
				return nil
			case err != nil && !errors.Is(err, store.ErrNotFound):
				return err
			}
			f.Revoked = true
			refused = store.ErrReused
			if err := retries.Delete([]byte(r.FamilyID)); err != nil {
				return err
			}
			return put(fams, f.ID, f)
		}
		f.Current, f.ExpiresAt = r.NewID, r.ExpiresAt
		f.Status = store.LiveStatus(f.Status, now, r.Status...)
		if err := put(fams, f.ID, f); err != nil {
			return err
		}
		if r.Interval <= 0 {
			return retries.Delete([]byte(r.FamilyID))
		}
		return put(retries, r.FamilyID, retry{Old: r.OldID, Until: now.Add(r.Interval), Request: r.Request, Response: r.Response})
	})
	if err == nil && refused != nil {
		err = opError(op, r.FamilyID, refused)
	}
	if err != nil {
		return nil, err
	}
	return replay, nil
}

// retryExpiry is the expiry of a bucketRetries value, for Sweep.
func retryExpiry(v []byte) (time.Time, error) {
	var r retry
	err := json.Unmarshal(v, &r)
	return r.Until, err
}
