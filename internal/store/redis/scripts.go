package redis

import goredis "github.com/redis/go-redis/v9"

// Status codes that scripts return.
const (
	statusOK       = 1
	statusNotFound = 0
	statusExists   = 2
	statusRevoked  = 3
	statusReused   = 4
	statusConflict = 5
)

// Every script touches the keys it is given only, all in one hash slot:
// KEYS[1] alone, or a user hash and the user-id index, which share the hash
// tag {users}. Scripts compare expiries with ARGV now, the store's clock in
// Unix milliseconds. A family is live while now < expires_at.

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
//	ARGV    now, client_id, current, expires_at, scopes, audience, status
var scriptCreateFamily = goredis.NewScript(`
local exp = tonumber(redis.call('HGET', KEYS[1], 'expires_at'))
if exp then
	if tonumber(ARGV[1]) < exp then return 2 end
	redis.call('DEL', KEYS[1])
end
redis.call('HSET', KEYS[1], 'client_id', ARGV[2], 'current', ARGV[3],
	'expires_at', ARGV[4], 'scopes', ARGV[5], 'audience', ARGV[6])
if ARGV[7] ~= '' then redis.call('HSET', KEYS[1], 'status', ARGV[7]) end
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
return 1
`)

// scriptRotate replaces a family's current token. Checks, in order: a live
// family of this client (else not found), not revoked, the presented token
// is the current one (else the family is revoked: reuse). On success it
// returns {1, scopes, audience}. The family's status entries ("list:idx:exp"
// separated by spaces, see encodeStatus) lose those expired and gain the
// new token's.
//
//	KEYS[1] family hash
//	ARGV    now, client_id, old id, new id, new expires_at, new status entries
var scriptRotate = goredis.NewScript(`
local f = redis.call('HMGET', KEYS[1], 'client_id', 'current', 'revoked', 'expires_at', 'scopes', 'audience', 'status')
local exp = tonumber(f[4])
if not exp or tonumber(ARGV[1]) >= exp or f[1] ~= ARGV[2] then return {0} end
if f[3] == '1' then return {3} end
if f[2] ~= ARGV[3] then
	redis.call('HSET', KEYS[1], 'revoked', '1')
	return {4}
end
redis.call('HSET', KEYS[1], 'current', ARGV[4], 'expires_at', ARGV[5])
redis.call('PEXPIREAT', KEYS[1], ARGV[5])
if f[7] or ARGV[6] ~= '' then
	local st = {}
	for e in string.gmatch(f[7] or '', '%S+') do
		local x = tonumber(string.match(e, ':(%d+)$'))
		if x and x > tonumber(ARGV[1]) then st[#st + 1] = e end
	end
	if ARGV[6] ~= '' then st[#st + 1] = ARGV[6] end
	redis.call('HSET', KEYS[1], 'status', table.concat(st, ' '))
end
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

// The user scripts keep a user's hash and the user-id index in step: a user
// hash exists exactly when the index maps its id to its username. Both keys
// have the hash tag {users}, so a script may touch the two on Redis Cluster.
// Every writer of a user hash writes all of its fields, so a hash without
// an id field does not exist.

// scriptCreateUser stores a new user unless its username or its id is
// taken.
//
//	KEYS[1] user hash, KEYS[2] user-id index
//	ARGV    id, username, password_hash, disabled, scopes, claims,
//	        generation, created_at, updated_at
var scriptCreateUser = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 2 end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'username', ARGV[2], 'password_hash', ARGV[3],
	'disabled', ARGV[4], 'scopes', ARGV[5], 'claims', ARGV[6], 'generation', ARGV[7],
	'created_at', ARGV[8], 'updated_at', ARGV[9])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
`)

// scriptUpdateUser replaces a user's profile, incrementing its generation
// when it goes from enabled to disabled, and returns the user (HGETALL); 0
// if there is no such user. It never writes the password hash.
//
//	KEYS[1] user hash
//	ARGV    disabled ("1" or "0"), scopes, claims, updated_at
var scriptUpdateUser = goredis.NewScript(`
local was = redis.call('HGET', KEYS[1], 'disabled')
if not was then return 0 end
if was ~= '1' and ARGV[1] == '1' then redis.call('HINCRBY', KEYS[1], 'generation', 1) end
redis.call('HSET', KEYS[1], 'disabled', ARGV[1], 'scopes', ARGV[2], 'claims', ARGV[3], 'updated_at', ARGV[4])
return redis.call('HGETALL', KEYS[1])
`)

// scriptSetUserPassword replaces a user's password hash, increments its
// generation and returns the user (HGETALL); 0 if there is no such user.
//
//	KEYS[1] user hash
//	ARGV    password_hash, updated_at
var scriptSetUserPassword = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'password_hash', ARGV[1], 'updated_at', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'generation', 1)
return redis.call('HGETALL', KEYS[1])
`)

// scriptUpgradeUserPassword replaces a user's password hash only if it is
// still the old one (else {5}), and touches nothing else.
//
//	KEYS[1] user hash
//	ARGV    old password_hash, new password_hash
var scriptUpgradeUserPassword = goredis.NewScript(`
local h = redis.call('HGET', KEYS[1], 'password_hash')
if not h then return 0 end
if h ~= ARGV[1] then return 5 end
redis.call('HSET', KEYS[1], 'password_hash', ARGV[2])
return 1
`)

// scriptDeleteUser deletes a user and its id from the index.
//
//	KEYS[1] user hash, KEYS[2] user-id index
var scriptDeleteUser = goredis.NewScript(`
local id = redis.call('HGET', KEYS[1], 'id')
if not id then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HDEL', KEYS[2], id)
return 1
`)
