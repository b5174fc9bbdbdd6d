package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/issuer-oauth/issuer/internal/store"
)

// statusReplay is the status of scriptRotateRetry when it answers a retry.
const statusReplay = 6

// retryKey is the hash of the answer kept for the retry of a family's last
// rotation: fields old (the token it retired), until (Unix ms), request
// and response. It has the family's hash tag, so that one script touches
// both on Redis Cluster.
func (s *Store) retryKey(familyID string) string { return s.prefix + ":famretry:{" + familyID + "}" }

// scriptSetClientField replaces a client's JSON only if it is still what
// the caller read, and publishes its id.
//
//	KEYS[1] clients hash
//	ARGV    id, JSON read, new JSON, channel
var scriptSetClientField = goredis.NewScript(`
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then return 0 end
if cur ~= ARGV[2] then return 5 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[1])
return 1
`)

// maxClientCASAttempts bounds the compare-and-set attempts of
// SetClientDisabled under concurrent writes of one client.
const maxClientCASAttempts = 16

// SetClientDisabled sets the client's Disabled flag; see store.Store. The
// client is read, changed and written back only if nobody wrote it in
// between (a compare-and-set in one script), so the change is one atomic
// write, and a concurrent write of the client is never lost; every
// instance drops the client from its cache.
func (s *Store) SetClientDisabled(ctx context.Context, id string, disabled bool) (store.Client, error) {
	const op = "set client disabled"
	if err := s.begin(ctx, op, id); err != nil {
		return store.Client{}, err
	}
	for range maxClientCASAttempts {
		old, err := s.client.HGet(ctx, s.clientsKey, id).Bytes()
		if errors.Is(err, goredis.Nil) {
			return store.Client{}, opError(op, id, store.ErrNotFound)
		}
		if err != nil {
			return store.Client{}, redisError(op, id, err)
		}
		var c store.Client
		if err := json.Unmarshal(old, &c); err != nil {
			return store.Client{}, opError(op, id, fmt.Errorf("decode: %w", err))
		}
		if disabled && !c.Disabled {
			c.Generation++
		}
		c.Disabled = disabled
		c.UpdatedAt = s.now().UTC()
		data, err := json.Marshal(c)
		if err != nil {
			return store.Client{}, opError(op, id, fmt.Errorf("encode: %w", err))
		}
		code, err := scriptSetClientField.Run(ctx, s.client, []string{s.clientsKey}, id, old, data, s.clientsChan).Int()
		if err != nil {
			return store.Client{}, redisError(op, id, err)
		}
		s.cache.drop(id)
		if code == statusConflict {
			continue
		}
		return c, statusError(op, id, code)
	}
	return store.Client{}, opError(op, id, fmt.Errorf("%w: the client kept changing", store.ErrConflict))
}

// scriptRotateRetry rotates a family's current token and keeps the answer
// for a retry, or answers the retry, or revokes the family (reuse), as
// store.Store's RotateRefreshRetry says. The kept answer expires with its
// interval: the script compares until with now, and Redis frees the key
// after the interval (PEXPIRE, on Redis's clock, which only frees memory).
// Returns {1}, {6, response}, or {0}, {3}, {4}.
//
//	KEYS[1] family hash, KEYS[2] retry hash
//	ARGV    now, client_id, old id, new id, new expires_at, interval (ms),
//	        request, response
var scriptRotateRetry = goredis.NewScript(`
local now = tonumber(ARGV[1])
local f = redis.call('HMGET', KEYS[1], 'client_id', 'current', 'revoked', 'expires_at')
local exp = tonumber(f[4])
if not exp or now >= exp or f[1] ~= ARGV[2] then return {0} end
if f[3] == '1' then return {3} end
if f[2] ~= ARGV[3] then
	local r = redis.call('HMGET', KEYS[2], 'old', 'until', 'request', 'response')
	local till = tonumber(r[2])
	if r[1] == ARGV[3] and till and now < till and r[3] == ARGV[7] then return {6, r[4]} end
	redis.call('HSET', KEYS[1], 'revoked', '1')
	redis.call('DEL', KEYS[2])
	return {4}
end
redis.call('HSET', KEYS[1], 'current', ARGV[4], 'expires_at', ARGV[5])
redis.call('PEXPIREAT', KEYS[1], ARGV[5])
local interval = tonumber(ARGV[6])
if interval > 0 then
	redis.call('HSET', KEYS[2], 'old', ARGV[3], 'until', now + interval, 'request', ARGV[7], 'response', ARGV[8])
	redis.call('PEXPIRE', KEYS[2], interval)
else
	redis.call('DEL', KEYS[2])
end
return {1}
`)

// RotateRefreshRetry rotates or answers a retry in one script; see
// store.Store. On store.ErrReused the revocation of the family is stored.
func (s *Store) RotateRefreshRetry(ctx context.Context, r store.RetryRotation) ([]byte, error) {
	const op = "rotate refresh token of family"
	if err := s.begin(ctx, op, r.FamilyID); err != nil {
		return nil, err
	}
	res, err := scriptRotateRetry.Run(ctx, s.client, []string{s.familyKey(r.FamilyID), s.retryKey(r.FamilyID)},
		s.now().UnixMilli(), r.ClientID, r.OldID, r.NewID, r.ExpiresAt.UnixMilli(), r.Interval.Milliseconds(),
		r.Request, r.Response).Slice()
	if err != nil {
		return nil, redisError(op, r.FamilyID, err)
	}
	code, ok := res[0].(int64)
	if !ok {
		return nil, opError(op, r.FamilyID, fmt.Errorf("unexpected script reply %v", res))
	}
	if code != statusReplay {
		return nil, statusError(op, r.FamilyID, int(code))
	}
	kept, ok := res[1].(string)
	if len(res) != 2 || !ok {
		return nil, opError(op, r.FamilyID, fmt.Errorf("unexpected script reply %v", res))
	}
	return []byte(kept), nil
}
