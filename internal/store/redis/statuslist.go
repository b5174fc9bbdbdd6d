package redis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/issuer-oauth/issuer/internal/store"
)

// A Token Status List is three kinds of keys sharing the list id as hash
// tag, so that one script reaches them all on Redis Cluster:
//
//	prefix:sl:{id}             hash: next (indices handed out), exp (Unix ms), ver
//	prefix:sl:{id}:bits        string: the bits, in Redis's SETBIT order
//	prefix:sl:{id}:own:OWNER   list of "first:n" ranges leased to OWNER
//
// and prefix:{statuslists} is a sorted set of the list ids scored by their
// exp, for ListStatusLists and SetOwnerStatus. Every key expires at the
// list's exp (PEXPIREAT); reads compare exp with the store's clock.

func (s *Store) statusKey(id string) string     { return s.prefix + ":sl:{" + id + "}" }
func (s *Store) statusBitsKey(id string) string { return s.statusKey(id) + ":bits" }
func (s *Store) statusOwnerKey(id, owner string) string {
	return s.statusKey(id) + ":own:" + owner
}
func (s *Store) statusIndexKey() string { return s.prefix + ":{statuslists}" }

// off is the SETBIT offset of index i: Redis numbers the bits of a byte
// from the most significant, the draft from the least.
const redisBitLua = `local function off(i) return i - i % 8 + 7 - i % 8 end
`

// scriptLeaseStatus hands out a block of indices.
//
//	KEYS    list hash, bits, owner keys...
//	ARGV    now, n, capacity, until (Unix ms)
//	returns {first, exp changed (0/1)}, {-1} when full, {-2} when retired
var scriptLeaseStatus = goredis.NewScript(`
local now, n, cap, untl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local exp = tonumber(redis.call('HGET', KEYS[1], 'exp') or '0')
if exp ~= 0 and exp <= now then return {-2} end -- retired: its id is never used again
local nxt = tonumber(redis.call('HGET', KEYS[1], 'next') or '0')
if nxt + n > cap then return {-1} end
redis.call('HSET', KEYS[1], 'next', nxt + n)
local grew = 0
if untl > exp then
  exp = untl
  grew = 1
  redis.call('HSET', KEYS[1], 'exp', exp)
  redis.call('PEXPIREAT', KEYS[1], exp)
  redis.call('PEXPIREAT', KEYS[2], exp)
end
for i = 3, #KEYS do
  redis.call('RPUSH', KEYS[i], nxt .. ':' .. n)
  redis.call('PEXPIREAT', KEYS[i], exp)
end
return {nxt, grew}
`)

// scriptSetStatus sets bits of a live list.
//
//	KEYS    list hash, bits
//	ARGV    now, indices...
//	returns the number of bits changed, or -1 if the list is not live
var scriptSetStatus = goredis.NewScript(redisBitLua + `
local exp = tonumber(redis.call('HGET', KEYS[1], 'exp') or '0')
if exp <= tonumber(ARGV[1]) then return -1 end
local changed = 0
for i = 2, #ARGV do
  if redis.call('SETBIT', KEYS[2], off(tonumber(ARGV[i])), 1) == 0 then changed = changed + 1 end
end
if changed > 0 then
  redis.call('HINCRBY', KEYS[1], 'ver', 1)
  redis.call('PEXPIREAT', KEYS[2], exp)
end
return changed
`)

// scriptSetOwnerStatus sets the bits of every range leased to an owner in
// one live list.
//
//	KEYS    list hash, bits, owner key
//	ARGV    now
//	returns the number of bits changed
var scriptSetOwnerStatus = goredis.NewScript(redisBitLua + `
local exp = tonumber(redis.call('HGET', KEYS[1], 'exp') or '0')
if exp <= tonumber(ARGV[1]) then return 0 end
local changed = 0
for _, r in ipairs(redis.call('LRANGE', KEYS[3], 0, -1)) do
  local c = string.find(r, ':', 1, true)
  local first, n = tonumber(string.sub(r, 1, c - 1)), tonumber(string.sub(r, c + 1))
  for i = first, first + n - 1 do
    if redis.call('SETBIT', KEYS[2], off(i), 1) == 0 then changed = changed + 1 end
  end
end
if changed > 0 then
  redis.call('HINCRBY', KEYS[1], 'ver', 1)
  redis.call('PEXPIREAT', KEYS[2], exp)
end
return changed
`)

// scriptGetStatusList reads a live list.
//
//	KEYS    list hash, bits
//	ARGV    now
//	returns {next, exp, ver, bits} or {} if the list is not live
var scriptGetStatusList = goredis.NewScript(`
local h = redis.call('HMGET', KEYS[1], 'next', 'exp', 'ver')
local exp = tonumber(h[2] or '0')
if exp <= tonumber(ARGV[1]) then return {} end
return {h[1] or '0', h[2], h[3] or '0', redis.call('GET', KEYS[2]) or ''}
`)

// LeaseStatus hands out l.N indices of list l.List in one script, and
// records a new expiry of the list in the index of lists.
func (s *Store) LeaseStatus(ctx context.Context, l store.StatusLease) (int64, error) {
	const op = "lease status indices of list"
	if err := s.begin(ctx, op, l.List); err != nil {
		return 0, err
	}
	if l.N < 1 || l.List == "" {
		return 0, opError(op, l.List, errors.New("a lease needs a list id and at least one index"))
	}
	keys := []string{s.statusKey(l.List), s.statusBitsKey(l.List)}
	for _, o := range l.Owners {
		keys = append(keys, s.statusOwnerKey(l.List, o))
	}
	res, err := scriptLeaseStatus.Run(ctx, s.client, keys, s.now().UnixMilli(), l.N, l.Capacity, l.Until.UnixMilli()).Int64Slice()
	if err != nil {
		return 0, redisError(op, l.List, err)
	}
	if len(res) == 1 && res[0] == -1 {
		return 0, opError(op, l.List, store.ErrFull)
	}
	if len(res) == 1 {
		return 0, opError(op, l.List, store.ErrNotFound)
	}
	if len(res) != 2 {
		return 0, opError(op, l.List, fmt.Errorf("unexpected script reply %v", res))
	}
	// The index is the way to the list's owners (SetOwnerStatus) and to
	// the live lists: every instance adds the list to it, with this
	// expiry, before it hands out the first index of the list it leased,
	// so that no token's list is missing from it whatever failed before.
	// Once per list, expiry and store.
	indexed := l.List + " " + strconv.FormatInt(l.Until.UnixMilli(), 10)
	if res[1] == 1 || !s.statusIndexed(indexed) {
		err := s.client.ZAddGT(ctx, s.statusIndexKey(), goredis.Z{Score: float64(l.Until.UnixMilli()), Member: l.List}).Err()
		if err != nil {
			return 0, redisError(op, l.List, err)
		}
		s.markStatusIndexed(indexed)
	}
	return res[0], nil
}

// SetStatus sets bits of a live list in one script.
func (s *Store) SetStatus(ctx context.Context, list string, idx []int64) error {
	const op = "set status in list"
	if err := s.begin(ctx, op, list); err != nil {
		return err
	}
	args := make([]any, 0, len(idx)+1)
	args = append(args, s.now().UnixMilli())
	for _, i := range idx {
		if i < 0 {
			return opError(op, list, fmt.Errorf("negative index %d", i))
		}
		args = append(args, i)
	}
	n, err := scriptSetStatus.Run(ctx, s.client, []string{s.statusKey(list), s.statusBitsKey(list)}, args...).Int()
	if err != nil {
		return redisError(op, list, err)
	}
	if n < 0 {
		return opError(op, list, store.ErrNotFound)
	}
	return nil
}

// SetOwnerStatus sets the owner's bits in every live list, one script per
// list.
func (s *Store) SetOwnerStatus(ctx context.Context, owner string) (int, error) {
	const op = "set status of owner"
	if err := s.begin(ctx, op, owner); err != nil {
		return 0, err
	}
	ids, err := s.liveStatusLists(ctx)
	if err != nil {
		return 0, redisError(op, owner, err)
	}
	now, total := s.now().UnixMilli(), 0
	for _, id := range ids {
		n, err := scriptSetOwnerStatus.Run(ctx, s.client,
			[]string{s.statusKey(id), s.statusBitsKey(id), s.statusOwnerKey(id, owner)}, now).Int()
		if err != nil {
			return total, redisError(op, owner, err)
		}
		total += n
	}
	return total, nil
}

// GetStatusList reads a live list in one script.
func (s *Store) GetStatusList(ctx context.Context, id string) (store.StatusList, error) {
	const op = "get status list"
	if err := s.begin(ctx, op, id); err != nil {
		return store.StatusList{}, err
	}
	res, err := scriptGetStatusList.Run(ctx, s.client, []string{s.statusKey(id), s.statusBitsKey(id)}, s.now().UnixMilli()).StringSlice()
	if err != nil {
		return store.StatusList{}, redisError(op, id, err)
	}
	if len(res) == 0 {
		return store.StatusList{}, opError(op, id, store.ErrNotFound)
	}
	if len(res) != 4 {
		return store.StatusList{}, opError(op, id, fmt.Errorf("unexpected script reply of %d elements", len(res)))
	}
	var nums [3]int64
	for i := range nums {
		if nums[i], err = strconv.ParseInt(res[i], 10, 64); err != nil {
			return store.StatusList{}, opError(op, id, fmt.Errorf("decode: %w", err))
		}
	}
	// The SETBIT offsets (off) put index i at bit i%8 from the least
	// significant of byte i/8: the draft's order, as it is.
	b := []byte(res[3])
	return store.StatusList{ID: id, Size: nums[0], ExpiresAt: msTime(nums[1]), Version: nums[2], Bits: b}, nil
}

// ListStatusLists returns the live lists, read from the index and then
// each list's hash in one pipeline.
func (s *Store) ListStatusLists(ctx context.Context) ([]store.StatusList, error) {
	const op = "list status lists"
	if err := s.begin(ctx, op, ""); err != nil {
		return nil, err
	}
	ids, err := s.liveStatusLists(ctx)
	if err != nil {
		return nil, redisError(op, "", err)
	}
	cmds := make([]*goredis.SliceCmd, len(ids))
	_, err = s.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HMGet(ctx, s.statusKey(id), "next", "exp", "ver")
		}
		return nil
	})
	if err != nil {
		return nil, redisError(op, "", err)
	}
	now := s.now().UnixMilli()
	out := make([]store.StatusList, 0, len(ids))
	for i, cmd := range cmds {
		var nums [3]int64
		for j, v := range cmd.Val() {
			str, _ := v.(string)
			nums[j], _ = strconv.ParseInt(str, 10, 64)
		}
		if nums[1] <= now {
			continue // retired since the index was read
		}
		out = append(out, store.StatusList{ID: ids[i], Size: nums[0], ExpiresAt: msTime(nums[1]), Version: nums[2]})
	}
	return out, nil
}

// liveStatusLists returns the ids of the lists the index holds as live,
// ordered by id, and drops the retired ones from it.
func (s *Store) liveStatusLists(ctx context.Context) ([]string, error) {
	now := s.now().UnixMilli()
	key := s.statusIndexKey()
	if err := s.client.ZRemRangeByScore(ctx, key, "-inf", strconv.FormatInt(now, 10)).Err(); err != nil {
		return nil, err
	}
	ids, err := s.client.ZRangeByScore(ctx, key, &goredis.ZRangeBy{Min: "(" + strconv.FormatInt(now, 10), Max: "+inf"}).Result()
	if err != nil {
		return nil, err
	}
	slices.SortFunc(ids, strings.Compare)
	return ids, nil
}

// msTime is the time of Unix milliseconds, in UTC.
func msTime(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// encodeStatus encodes a family's status entries as the family hash keeps
// them: "list:idx:exp" (exp in Unix ms), separated by spaces. List ids
// hold neither.
func encodeStatus(refs []store.StatusRef) string {
	var b strings.Builder
	for i, r := range refs {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s:%d:%d", r.List, r.Idx, r.Exp.UnixMilli())
	}
	return b.String()
}

// decodeStatus decodes what encodeStatus encoded.
func decodeStatus(v string) ([]store.StatusRef, error) {
	var out []store.StatusRef
	for _, e := range strings.Fields(v) {
		rest, exp, ok1 := strings.Cut(e[strings.IndexByte(e, ':')+1:], ":")
		list, _, _ := strings.Cut(e, ":")
		idx, err1 := strconv.ParseInt(rest, 10, 64)
		ms, err2 := strconv.ParseInt(exp, 10, 64)
		if !ok1 || err1 != nil || err2 != nil {
			return nil, fmt.Errorf("decode status entry %q", e)
		}
		out = append(out, store.StatusRef{List: list, Idx: idx, Exp: msTime(ms)})
	}
	return out, nil
}

// statusIndexed reports whether this store added list and expiry (as
// LeaseStatus spells them) to the index of lists.
func (s *Store) statusIndexed(key string) bool {
	_, ok := s.indexedLists.Load(key)
	return ok
}

// markStatusIndexed records that key is in the index, forgetting the
// older records once there are many (lists retire; a forgotten one is
// only added again).
func (s *Store) markStatusIndexed(key string) {
	if s.indexedCount.Add(1) > 1024 {
		s.indexedLists.Clear()
		s.indexedCount.Store(0)
	}
	s.indexedLists.Store(key, struct{}{})
}
