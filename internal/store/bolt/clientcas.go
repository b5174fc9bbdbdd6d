package bolt

import (
	"context"

	bbolt "go.etcd.io/bbolt"

	"github.com/issuer-oauth/issuer/internal/store"
)

// GetClientFresh returns the client as the file holds it, past the cache;
// store.ErrNotFound if there is none.
func (s *Store) GetClientFresh(ctx context.Context, id string) (store.Client, error) {
	var c store.Client
	err := s.view(ctx, "get client", id, func(tx *bbolt.Tx) error {
		return get(tx.Bucket(bucketClients), id, &c)
	})
	if err != nil {
		return store.Client{}, err
	}
	return c, nil
}

// SetClientSecret replaces the client's secret hash, increments its Version
// and sets its UpdatedAt to the store's clock, in one transaction, and
// returns the client afterwards; store.ErrNotFound if there is none.
func (s *Store) SetClientSecret(ctx context.Context, id string, hash []byte) (store.Client, error) {
	defer s.clients.invalidate(id)
	var c store.Client
	err := s.update(ctx, "set client secret", id, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketClients)
		if err := get(b, id, &c); err != nil {
			return err
		}
		c.SecretHash = append([]byte(nil), hash...)
		c.UpdatedAt = s.now().UTC()
		c.Version++
		return put(b, id, c)
	})
	if err != nil {
		return store.Client{}, err
	}
	return c, nil
}
