package redis

import (
	"context"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/issuer-oauth/issuer/internal/store"
)

// onceKey is the key of a single-use value. The id is its own hash tag, as
// a revoked token id is, so that the keys spread over a cluster's slots.
func (s *Store) onceKey(id string) string { return s.prefix + ":once:{" + id + "}" }

// scriptUseOnce records a single-use value until a time unless it is
// already recorded until a later time than now. It compares with the
// caller's clock rather than relying on SET NX and the key's TTL alone, so
// that the store's clock (WithNow) decides, as it does for revoked tokens.
//
//	KEYS[1] single-use key
//	ARGV    now, until (Unix milliseconds)
//	returns 1 if recorded, 0 if already used
var scriptUseOnce = goredis.NewScript(`
local old = tonumber(redis.call('GET', KEYS[1]))
if old and old > tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PXAT', ARGV[2])
return 1
`)

// UseOnce records id as used until the given time, or fails with
// store.ErrReplayed if it is already used. Redis deletes the record at
// until. It does not wait for replicas (WithWaitReplicas): a failover may
// forget a value used in its last moments, so that a captured assertion or
// proof could be presented once more within its few minutes of life, and
// waiting would put a replica round trip on every such token request.
func (s *Store) UseOnce(ctx context.Context, id string, until time.Time) error {
	const op = "use once"
	if err := s.begin(ctx, op, id); err != nil {
		return err
	}
	if until.UnixMilli() <= s.now().UnixMilli() {
		// Already over: a record would count for nothing, and PXAT in the
		// past would delete it at once anyway.
		return nil
	}
	ok, err := scriptUseOnce.Run(ctx, s.client, []string{s.onceKey(id)}, s.now().UnixMilli(), until.UnixMilli()).Int()
	if err != nil {
		return redisError(op, id, err)
	}
	if ok == 0 {
		return opError(op, id, store.ErrReplayed)
	}
	return nil
}
