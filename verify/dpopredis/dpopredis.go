// Package dpopredis is a verify.ReplayCache in Redis, for a resource API
// that runs several replicas: a DPoP proof (RFC 9449 §11.1) accepted by
// one replica is refused by every other. It is a module of its own
// (github.com/issuer-oauth/issuer/verify/dpopredis) so that APIs without
// Redis do not require go-redis.
//
//	rdb := redis.NewClient(&redis.Options{Addr: "redis:6379"})
//	d, err := verify.NewDPoPVerifier(v, verify.DPoPConfig{
//		BaseURL: "https://api.example.com",
//		Replay:  dpopredis.New(rdb, ""),
//	})
package dpopredis

import (
	"context"
	"errors"
	"fmt"

	"time"

	"github.com/redis/go-redis/v9"

	"github.com/issuer-oauth/issuer/verify"
)

// DefaultPrefix is the prefix of the keys Cache writes when New is given
// none.
const DefaultPrefix = "dpop-jti:"

// Cache is a verify.ReplayCache in Redis: one SET NX with an absolute
// expiry per proof, atomic across any number of replicas.
type Cache struct {
	rdb    redis.UniversalClient
	prefix string
}

var _ verify.ReplayCache = (*Cache)(nil)

// New returns a Cache that writes keys under prefix (DefaultPrefix when
// empty) through rdb: a client, a cluster client or a failover client.
func New(rdb redis.UniversalClient, prefix string) *Cache {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return &Cache{rdb: rdb, prefix: prefix}
}

// Use records id as used until the given time (Redis expires the key
// then), and fails with an error wrapping verify.ErrDPoPReplay when the
// key exists. Redis errors are returned as they are: the request cannot
// be checked for replay, and DPoPVerifier refuses it (503).
func (c *Cache) Use(ctx context.Context, id string, until time.Time) error {
	err := c.rdb.SetArgs(ctx, c.prefix+id, 1, redis.SetArgs{Mode: "NX", ExpireAt: until}).Err()
	switch {
	case errors.Is(err, redis.Nil):
		return fmt.Errorf("%w: jti already used", verify.ErrDPoPReplay)
	case err != nil:
		return fmt.Errorf("dpopredis: %w", err)
	}
	return nil
}
