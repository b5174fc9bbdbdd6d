package redis

import goredis "github.com/redis/go-redis/v9"

// Status codes that scripts return.
const (
	statusOK       = 1
	statusNotFound = 0
	statusExists   = 2
	statusRevoked  = 3
	statusReused   = 4
)

// Every script touches KEYS[1] only (one hash slot) and compares expiries
// with ARGV now, the store's clock in Unix milliseconds. A family is live
// while now < expires_at.

// scriptPutClient stores a client (create: only if absent; update: only if
// present) and publishes its id.
//
//	KEYS[1] clients hash
//	ARGV    id, JSON, channel, mode ("create" or "update")
var scriptPutClient = goredis.NewScript(`
local exists = redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1
if ARGV[4] == 'create' and exists then return 2 end
if ARGV[4] == 'update' and not exists then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[1])
return 1
`)

// scriptDeleteField deletes a hash field (a client, a key) and publishes its
// id.
//
//	KEYS[1] hash
//	ARGV    id, channel
var scriptDeleteField = goredis.NewScript(`
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('PUBLISH', ARGV[2], ARGV[1])
return 1
`)

// scriptAddKey stores a signing key unless its id is taken, and publishes
// its id.
//
//	KEYS[1] keys hash
//	ARGV    kid, JSON, channel
var scriptAddKey = goredis.NewScript(`
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 2 end
redis.call('PUBLISH', ARGV[3], ARGV[1])
return 1
`)

// scriptAddNextKey stores a signing key unless its id is taken ({2}) or a
// stored key has a not_before after now, and returns every key afterwards;
// it publishes the id when it stores the key. not_before is the RFC 3339
// time encoding/json writes for a time.Time; it is compared with now as
// (Unix seconds, nanoseconds), so that no precision is lost.
//
//	KEYS[1] keys hash
//	ARGV    kid, JSON, channel, now Unix seconds, now nanoseconds
var scriptAddNextKey = goredis.NewScript(`
local function unix(s)
	if type(s) ~= 'string' then return nil end
	local y, mo, d, h, mi, sec, frac, zone =
		string.match(s, '^(%d%d%d%d)-(%d%d)-(%d%d)T(%d%d):(%d%d):(%d%d)%.?(%d*)(.*)$')
	if not y then return nil end
	y, mo = tonumber(y), tonumber(mo)
	if mo <= 2 then y = y - 1 end
	local era = math.floor(y / 400)
	local yoe = y - era * 400
	local doy = math.floor((153 * ((mo + 9) % 12) + 2) / 5) + tonumber(d) - 1
	local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
	local t = (era * 146097 + doe - 719468) * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(sec)
	if zone ~= 'Z' then
		local sign, zh, zm = string.match(zone, '^([+-])(%d%d):(%d%d)$')
		if not sign then return nil end
		local off = tonumber(zh) * 3600 + tonumber(zm) * 60
		if sign == '+' then t = t - off else t = t + off end
	end
	return t, tonumber(string.sub(frac .. '000000000', 1, 9))
end
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return {2} end
local now_s, now_ns = tonumber(ARGV[4]), tonumber(ARGV[5])
local vals = redis.call('HVALS', KEYS[1])
for _, v in ipairs(vals) do
	local ok, k = pcall(cjson.decode, v)
	if not ok or type(k) ~= 'table' then return redis.error_reply('stored key is not JSON') end
	local s, ns = unix(k.not_before)
	if not s then return redis.error_reply('stored key has no RFC 3339 not_before') end
	if s > now_s or (s == now_s and ns > now_ns) then return vals end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[1])
return redis.call('HVALS', KEYS[1])
`)

// scriptInitKeys stores a signing key if there is none, and returns every
// key.
//
//	KEYS[1] keys hash
//	ARGV    kid, JSON, channel
var scriptInitKeys = goredis.NewScript(`
if redis.call('HLEN', KEYS[1]) == 0 then
	redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
	redis.call('PUBLISH', ARGV[3], ARGV[1])
end
return redis.call('HVALS', KEYS[1])
`)

// scriptCreateFamily stores a family unless a live one has the id; an
// expired one is replaced. Liveness is decided by expires_at and the store's
// clock, not by whether the key exists: the key outlives the family when the
// store's clock is ahead of Redis's. Every writer of a family sets
// expires_at, so a key without it does not exist and there is nothing to
// delete: the usual call is three commands, HGET, HSET and PEXPIREAT. A new
// family has no revoked field; absent means not revoked, as "0" did.
//
//	KEYS[1] family hash
//	ARGV    now, client_id, current, expires_at, scopes, audience
var scriptCreateFamily = goredis.NewScript(`
local exp = tonumber(redis.call('HGET', KEYS[1], 'expires_at'))
if exp then
	if tonumber(ARGV[1]) < exp then return 2 end
	redis.call('DEL', KEYS[1])
end
redis.call('HSET', KEYS[1], 'client_id', ARGV[2], 'current', ARGV[3],
	'expires_at', ARGV[4], 'scopes', ARGV[5], 'audience', ARGV[6])
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
return 1
`)

// scriptRotate replaces a family's current token. Checks, in order: a live
// family of this client (else not found), not revoked, the presented token
// is the current one (else the family is revoked: reuse). On success it
// returns {1, scopes, audience}.
//
//	KEYS[1] family hash
//	ARGV    now, client_id, old id, new id, new expires_at
var scriptRotate = goredis.NewScript(`
local f = redis.call('HMGET', KEYS[1], 'client_id', 'current', 'revoked', 'expires_at', 'scopes', 'audience')
local exp = tonumber(f[4])
if not exp or tonumber(ARGV[1]) >= exp or f[1] ~= ARGV[2] then return {0} end
if f[3] == '1' then return {3} end
if f[2] ~= ARGV[3] then
	redis.call('HSET', KEYS[1], 'revoked', '1')
	return {4}
end
redis.call('HSET', KEYS[1], 'current', ARGV[4], 'expires_at', ARGV[5])
redis.call('PEXPIREAT', KEYS[1], ARGV[5])
return {1, f[5], f[6]}
`)

// scriptRevokeFamily revokes a live family; revoking a revoked one succeeds.
//
//	KEYS[1] family hash
//	ARGV    now
var scriptRevokeFamily = goredis.NewScript(`
local exp = tonumber(redis.call('HGET', KEYS[1], 'expires_at'))
if not exp or tonumber(ARGV[1]) >= exp then return 0 end
redis.call('HSET', KEYS[1], 'revoked', '1')
return 1
`)

// scriptRevokeToken records a revoked token id until a time, keeping an
// existing later one.
//
//	KEYS[1] revoked-token key
//	ARGV    until
var scriptRevokeToken = goredis.NewScript(`
local old = tonumber(redis.call('GET', KEYS[1]))
if old and old >= tonumber(ARGV[1]) then return 1 end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('PEXPIREAT', KEYS[1], ARGV[1])
return 1
`)
