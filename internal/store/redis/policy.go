package redis

import (
	"context"
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

// SetClientDisabled sets the client's Disabled flag; see store.Store. It is
// one compare-and-set write of the client (modifyClient), so it never undoes
// a concurrent change of the client nor is undone by one, and every
// instance drops the client from its cache.
func (s *Store) SetClientDisabled(ctx context.Context, id string, disabled bool) (store.Client, error) {
	return s.modifyClient(ctx, "set client disabled", id, func(c *store.Client) {
		if disabled && !c.Disabled {
			c.Generation++
		}
		c.Disabled = disabled
	})
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
//	        request, response, new status entries (as scriptRotate's)
var scriptRotateRetry = goredis.NewScript(`
local now = tonumber(ARGV[1])
local f = redis.call('HMGET', KEYS[1], 'client_id', 'current', 'revoked', 'expires_at', 'status')
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
if f[5] or ARGV[9] ~= '' then
	local st = {}
	for e in string.gmatch(f[5] or '', '%S+') do
		local x = tonumber(string.match(e, ':(%d+)$'))
		if x and x > now then st[#st + 1] = e end
	end
	if ARGV[9] ~= '' then st[#st + 1] = ARGV[9] end
	redis.call('HSET', KEYS[1], 'status', table.concat(st, ' '))
end
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
	cmd, werr := s.runDurably(ctx, op, r.FamilyID, scriptRotateRetry, changedRotation, []string{s.familyKey(r.FamilyID), s.retryKey(r.FamilyID)},
		s.now().UnixMilli(), r.ClientID, r.OldID, r.NewID, r.ExpiresAt.UnixMilli(), r.Interval.Milliseconds(),
		r.Request, r.Response, encodeStatus(r.Status))
	if werr != nil {
		// Unacknowledged: the caller must not hand out the new token (see
		// the package documentation).
		return nil, werr
	}
	res, err := cmd.Slice()
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
