package redis

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/issuer-oauth/issuer/internal/store"
)

const (
	// DefaultPrefix starts every key and channel name.
	DefaultPrefix = "issuer"
	// DefaultClientCacheTTL is the longest GetClient serves a client from
	// its cache.
	DefaultClientCacheTTL = 5 * time.Second
)

// Store is a store.Store kept in Redis. It is safe for concurrent use.
type Store struct {
	client goredis.UniversalClient
	owned  bool // Close closes client: Open created it

	now            func() time.Time
	prefix         string
	logger         *slog.Logger
	sentinelMaster string // read by Open only

	clientsKey, keysKey   string
	clientsChan, keysChan string
	userIDsKey            string

	cache      *clientCache
	cacheTTL   time.Duration
	keyChanges chan struct{}

	waitReplicas int           // WithWaitReplicas; 0: no WAIT
	waitTimeout  time.Duration // of WAIT

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error

	stopSub context.CancelFunc
	subDone chan struct{} // closed when the subscriber has returned

	// indexedLists are the status lists (id and expiry) that this store
	// has added to the index of lists (see LeaseStatus).
	indexedLists sync.Map
	indexedCount atomic.Int64
}

var _ store.Store = (*Store)(nil)

// Option configures New and Open.
type Option func(*Store)

// WithNow sets the clock that decides when families and revoked token ids
// expire and that stamps the UpdatedAt of a changed user. The default is
// time.Now; tests pass a fake clock.
func WithNow(now func() time.Time) Option {
	return func(s *Store) {
		if now != nil {
			s.now = now
		}
	}
}

// WithPrefix sets the prefix of every key and channel name (default
// "issuer"), so that several issuers can share one Redis. It should not
// contain braces: they would make it the Redis Cluster hash tag of every
// key, which still works but puts all of them in one slot.
func WithPrefix(prefix string) Option {
	return func(s *Store) {
		if prefix != "" {
			s.prefix = prefix
		}
	}
}

// WithClientCacheTTL sets how long GetClient may serve a client from its
// in-process cache when an invalidation message is lost (default 5s).
// Zero or less turns the cache off.
func WithClientCacheTTL(d time.Duration) Option {
	return func(s *Store) { s.cacheTTL = d }
}

// WithLogger sets the logger of the background subscriber. The default
// discards everything.
func WithLogger(l *slog.Logger) Option {
	return func(s *Store) {
		if l != nil {
			s.logger = l
		}
	}
}

// New returns a store on client, which may be a *goredis.Client, a
// *goredis.ClusterClient or a failover client, and starts the subscriber
// that keeps the client cache coherent. Close stops it; Close leaves client
// open, as the caller owns it.
func New(client goredis.UniversalClient, opts ...Option) *Store {
	s := &Store{
		client:     client,
		now:        time.Now,
		prefix:     DefaultPrefix,
		logger:     slog.New(slog.DiscardHandler),
		cacheTTL:   DefaultClientCacheTTL,
		keyChanges: make(chan struct{}, 1),
	}
	for _, opt := range opts {
		opt(s)
	}
	s.clientsKey = s.prefix + ":{clients}"
	s.keysKey = s.prefix + ":{keys}"
	s.clientsChan = s.clientsKey + ":changed"
	s.keysChan = s.keysKey + ":changed"
	s.userIDsKey = s.prefix + ":{users}:ids"
	s.cache = newClientCache(s.cacheTTL)

	ctx, cancel := context.WithCancel(context.Background())
	s.stopSub = cancel
	s.subDone = make(chan struct{})
	go s.subscribe(ctx, subscriberPing)
	return s
}

// familyKey is the key of a refresh-token family.
func (s *Store) familyKey(id string) string { return s.prefix + ":fam:{" + id + "}" }

// revokedKey is the key of a revoked token id.
func (s *Store) revokedKey(jti string) string { return s.prefix + ":rev:{" + jti + "}" }

// userKey is the key of a user's hash. It has the hash tag of the user-id
// index, so that one script may write both.
func (s *Store) userKey(username string) string { return s.prefix + ":{users}:user:" + username }

// KeyChanges returns a channel that receives a value when the signing keys
// may have changed: another instance (or this one) added or deleted a key,
// or the subscription was (re)established and changes may have been missed.
// Its buffer holds one value and sends never block, so several changes may
// arrive as one. It is never closed.
func (s *Store) KeyChanges() <-chan struct{} { return s.keyChanges }

// Client returns the Redis client of the store, for other state that every
// instance must share (the rate-limit counters). It stays owned by the store:
// do not close it, and do not use it after Close.
func (s *Store) Client() goredis.UniversalClient { return s.client }

// Ping reports whether Redis answers; on Redis Cluster, whether every
// master answers.
func (s *Store) Ping(ctx context.Context) error {
	const op = "ping"
	if err := s.begin(ctx, op, ""); err != nil {
		return err
	}
	var err error
	if cc, ok := s.client.(*goredis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
			return c.Ping(ctx).Err()
		})
	} else {
		err = s.client.Ping(ctx).Err()
	}
	if err != nil {
		return redisError(op, "", err)
	}
	return nil
}

// Close stops the subscriber and, if Open created the client, closes it.
// Calling it again does nothing. The store fails every call afterwards.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.stopSub()
		<-s.subDone
		if s.owned {
			if err := s.client.Close(); err != nil {
				s.closeErr = fmt.Errorf("redis: close: %w", err)
			}
		}
	})
	return s.closeErr
}

// ---------------------------------------------------------------- clients

// CreateClient stores a new client; store.ErrExists if the id is taken.
func (s *Store) CreateClient(ctx context.Context, c store.Client) error {
	return s.putClient(ctx, "create client", "create", c)
}

func (s *Store) putClient(ctx context.Context, op, mode string, c store.Client) error {
	if err := s.begin(ctx, op, c.ID); err != nil {
		return err
	}
	data, err := json.Marshal(c)
	if err != nil {
		return opError(op, c.ID, fmt.Errorf("encode: %w", err))
	}
	cmd, werr := s.runDurably(ctx, op, c.ID, scriptPutClient, changedOK, []string{s.clientsKey}, c.ID, data, s.clientsChan, mode)
	if werr != nil && cmd == nil {
		return werr
	}
	s.cache.drop(c.ID)
	code, err := cmd.Int()
	if err != nil {
		return redisError(op, c.ID, err)
	}
	if werr != nil {
		return werr
	}
	return statusError(op, c.ID, code)
}

// GetClient returns a client or store.ErrNotFound, from the cache when it
// holds the client or knows that there is none (see the package
// documentation for how fresh it is).
func (s *Store) GetClient(ctx context.Context, id string) (store.Client, error) {
	const op = "get client"
	if err := s.begin(ctx, op, id); err != nil {
		return store.Client{}, err
	}
	if c, exists, ok := s.cache.get(id); ok {
		if !exists {
			return store.Client{}, opError(op, id, store.ErrNotFound)
		}
		return c, nil
	}
	gen, at := s.cache.generation(), time.Now()
	c, err := s.readClient(ctx, op, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		s.cache.putMissing(id, gen, at)
		return store.Client{}, err
	case err != nil:
		return store.Client{}, err
	}
	s.cache.put(c, gen, at)
	return c, nil
}

// ListClients returns every client ordered by id.
func (s *Store) ListClients(ctx context.Context) ([]store.Client, error) {
	const op = "list clients"
	if err := s.begin(ctx, op, ""); err != nil {
		return nil, err
	}
	vals, err := s.client.HVals(ctx, s.clientsKey).Result()
	if err != nil {
		return nil, redisError(op, "", err)
	}
	cs, err := decodeAll[store.Client](vals)
	if err != nil {
		return nil, opError(op, "", err)
	}
	slices.SortFunc(cs, func(a, b store.Client) int { return strings.Compare(a.ID, b.ID) })
	return cs, nil
}

// DeleteClient removes a client; store.ErrNotFound if there is none. Every
// instance drops the client from its cache.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	const op = "delete client"
	if err := s.begin(ctx, op, id); err != nil {
		return err
	}
	cmd, werr := s.runDurably(ctx, op, id, scriptDeleteField, changedOK, []string{s.clientsKey}, id, s.clientsChan)
	if werr != nil && cmd == nil {
		return werr
	}
	s.cache.drop(id)
	code, err := cmd.Int()
	if err != nil {
		return redisError(op, id, err)
	}
	if werr != nil {
		return werr
	}
	return statusError(op, id, code)
}

// ---------------------------------------------------------------- families

// CreateFamily stores a new refresh-token family; store.ErrExists if a live
// family has the id. An expired one is replaced. Redis deletes the family
// at its expiry.
func (s *Store) CreateFamily(ctx context.Context, f store.Family) error {
	const op = "create family"
	if err := s.begin(ctx, op, f.ID); err != nil {
		return err
	}
	scopes, err := json.Marshal(f.Scopes)
	if err != nil {
		return opError(op, f.ID, fmt.Errorf("encode scopes: %w", err))
	}
	audience, err := json.Marshal(f.Audience)
	if err != nil {
		return opError(op, f.ID, fmt.Errorf("encode audience: %w", err))
	}
	code, err := scriptCreateFamily.Run(ctx, s.client, []string{s.familyKey(f.ID)},
		s.now().UnixMilli(), f.ClientID, f.Current, f.ExpiresAt.UnixMilli(), scopes, audience, encodeStatus(f.Status)).Int()
	if err != nil {
		return redisError(op, f.ID, err)
	}
	return statusError(op, f.ID, code)
}

// GetFamily returns a live family, revoked or not, or store.ErrNotFound.
func (s *Store) GetFamily(ctx context.Context, id string) (store.Family, error) {
	const op = "get family"
	if err := s.begin(ctx, op, id); err != nil {
		return store.Family{}, err
	}
	h, err := s.client.HGetAll(ctx, s.familyKey(id)).Result()
	if err != nil {
		return store.Family{}, redisError(op, id, err)
	}
	if len(h) == 0 {
		return store.Family{}, opError(op, id, store.ErrNotFound)
	}
	exp, err := strconv.ParseInt(h["expires_at"], 10, 64)
	if err != nil {
		return store.Family{}, opError(op, id, fmt.Errorf("decode expires_at: %w", err))
	}
	if s.now().UnixMilli() >= exp {
		return store.Family{}, opError(op, id, store.ErrNotFound)
	}
	f := store.Family{
		ID:        id,
		ClientID:  h["client_id"],
		Current:   h["current"],
		ExpiresAt: time.UnixMilli(exp).UTC(),
		Revoked:   h["revoked"] == "1",
	}
	if f.Status, err = decodeStatus(h["status"]); err != nil {
		return store.Family{}, opError(op, id, err)
	}
	if err := decodeLists(&f, h["scopes"], h["audience"]); err != nil {
		return store.Family{}, opError(op, id, err)
	}
	return f, nil
}

// RotateRefresh replaces the family's current token with r.NewID in one
// script. See store.Store for its errors; on store.ErrReused the revocation
// of the family is stored.
func (s *Store) RotateRefresh(ctx context.Context, r store.Rotation) (store.Family, error) {
	const op = "rotate refresh token of family"
	if err := s.begin(ctx, op, r.FamilyID); err != nil {
		return store.Family{}, err
	}
	cmd, werr := s.runDurably(ctx, op, r.FamilyID, scriptRotate, changedRotation, []string{s.familyKey(r.FamilyID)},
		s.now().UnixMilli(), r.ClientID, r.OldID, r.NewID, r.ExpiresAt.UnixMilli(), encodeStatus(r.Status))
	if werr != nil {
		// Unacknowledged: the caller must not hand out the new token (see
		// the package documentation).
		return store.Family{}, werr
	}
	res, err := cmd.Slice()
	if err != nil {
		return store.Family{}, redisError(op, r.FamilyID, err)
	}
	code, ok := res[0].(int64)
	if !ok {
		return store.Family{}, opError(op, r.FamilyID, fmt.Errorf("unexpected script reply %v", res))
	}
	if code != statusOK {
		return store.Family{}, statusError(op, r.FamilyID, int(code))
	}
	if len(res) != 3 {
		return store.Family{}, opError(op, r.FamilyID, fmt.Errorf("unexpected script reply %v", res))
	}
	scopes, _ := res[1].(string)
	audience, _ := res[2].(string)
	f := store.Family{
		ID:        r.FamilyID,
		ClientID:  r.ClientID,
		Current:   r.NewID,
		ExpiresAt: time.UnixMilli(r.ExpiresAt.UnixMilli()).UTC(),
	}
	if err := decodeLists(&f, scopes, audience); err != nil {
		return store.Family{}, opError(op, r.FamilyID, err)
	}
	return f, nil
}

// RevokeFamily revokes a live family; store.ErrNotFound if there is none.
// Revoking a revoked family succeeds.
func (s *Store) RevokeFamily(ctx context.Context, id string) error {
	const op = "revoke family"
	if err := s.begin(ctx, op, id); err != nil {
		return err
	}
	cmd, werr := s.runDurably(ctx, op, id, scriptRevokeFamily, changedOK, []string{s.familyKey(id)}, s.now().UnixMilli())
	if werr != nil {
		return werr
	}
	code, err := cmd.Int()
	if err != nil {
		return redisError(op, id, err)
	}
	return statusError(op, id, code)
}

// decodeLists decodes the scopes and audience of a family: JSON arrays of
// strings, or null, as json.Marshal writes a []string.
func decodeLists(f *store.Family, scopes, audience string) error {
	if err := json.Unmarshal([]byte(scopes), &f.Scopes); err != nil {
		return fmt.Errorf("decode scopes: %w", err)
	}
	if err := json.Unmarshal([]byte(audience), &f.Audience); err != nil {
		return fmt.Errorf("decode audience: %w", err)
	}
	return nil
}

// ---------------------------------------------------------------- revoked tokens

// RevokeToken records that the token id is revoked until the given time. If
// it is already revoked for longer, the later time is kept. Redis deletes
// the record at until.
func (s *Store) RevokeToken(ctx context.Context, jti string, until time.Time) error {
	const op = "revoke token"
	if err := s.begin(ctx, op, jti); err != nil {
		return err
	}
	if until.UnixMilli() <= s.now().UnixMilli() {
		// Already over: IsRevoked would ignore the record, and an existing
		// revocation lasts longer anyway.
		return nil
	}
	cmd, werr := s.runDurably(ctx, op, jti, scriptRevokeToken, changedAlways, []string{s.revokedKey(jti)}, until.UnixMilli())
	if werr != nil {
		return werr
	}
	if err := cmd.Err(); err != nil {
		return redisError(op, jti, err)
	}
	return nil
}

// IsRevoked reports whether the token id is revoked now.
func (s *Store) IsRevoked(ctx context.Context, jti string) (bool, error) {
	const op = "check revoked token"
	if err := s.begin(ctx, op, jti); err != nil {
		return false, err
	}
	until, err := s.client.Get(ctx, s.revokedKey(jti)).Int64()
	if errors.Is(err, goredis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, redisError(op, jti, err)
	}
	return s.now().UnixMilli() < until, nil
}

// ---------------------------------------------------------------- keys

// InitKeys stores k only if the store holds no key yet, and returns the keys
// it holds afterwards, ordered by NotBefore.
func (s *Store) InitKeys(ctx context.Context, k store.Key) ([]store.Key, error) {
	const op = "init keys"
	if err := s.begin(ctx, op, k.ID); err != nil {
		return nil, err
	}
	data, err := json.Marshal(k)
	if err != nil {
		return nil, opError(op, k.ID, fmt.Errorf("encode: %w", err))
	}
	vals, err := scriptInitKeys.Run(ctx, s.client, []string{s.keysKey}, k.ID, data, s.keysChan).StringSlice()
	if err != nil {
		return nil, redisError(op, k.ID, err)
	}
	return sortedKeys(op, k.ID, vals)
}

// ListKeys returns every signing key ordered by NotBefore, oldest first.
func (s *Store) ListKeys(ctx context.Context) ([]store.Key, error) {
	const op = "list keys"
	if err := s.begin(ctx, op, ""); err != nil {
		return nil, err
	}
	vals, err := s.client.HVals(ctx, s.keysKey).Result()
	if err != nil {
		return nil, redisError(op, "", err)
	}
	return sortedKeys(op, "", vals)
}

// AddKey stores a new key; store.ErrExists if the id is taken.
func (s *Store) AddKey(ctx context.Context, k store.Key) error {
	const op = "add key"
	if err := s.begin(ctx, op, k.ID); err != nil {
		return err
	}
	data, err := json.Marshal(k)
	if err != nil {
		return opError(op, k.ID, fmt.Errorf("encode: %w", err))
	}
	cmd, werr := s.runDurably(ctx, op, k.ID, scriptAddKey, changedOK, []string{s.keysKey}, k.ID, data, s.keysChan)
	if werr != nil {
		return werr
	}
	code, err := cmd.Int()
	if err != nil {
		return redisError(op, k.ID, err)
	}
	return statusError(op, k.ID, code)
}

// AddNextKey stores k only if no stored key has a NotBefore after now, and
// returns the keys it holds afterwards, ordered by NotBefore;
// store.ErrExists if the id is taken. It is one Lua script.
func (s *Store) AddNextKey(ctx context.Context, k store.Key, now time.Time) ([]store.Key, error) {
	const op = "add next key"
	if err := s.begin(ctx, op, k.ID); err != nil {
		return nil, err
	}
	data, err := json.Marshal(k)
	if err != nil {
		return nil, opError(op, k.ID, fmt.Errorf("encode: %w", err))
	}
	cmd, werr := s.runDurably(ctx, op, k.ID, scriptAddNextKey, changedAlways, []string{s.keysKey}, k.ID, data, s.keysChan, now.Unix(), now.Nanosecond())
	if werr != nil {
		return nil, werr
	}
	res, err := cmd.Slice()
	if err != nil {
		return nil, redisError(op, k.ID, err)
	}
	vals := make([]string, 0, len(res))
	for _, v := range res {
		switch v := v.(type) {
		case string:
			vals = append(vals, v)
		case int64:
			return nil, statusError(op, k.ID, int(v))
		default:
			return nil, opError(op, k.ID, fmt.Errorf("unexpected script reply %T", v))
		}
	}
	return sortedKeys(op, k.ID, vals)
}

// DeleteKey removes a key; store.ErrNotFound if there is none.
func (s *Store) DeleteKey(ctx context.Context, id string) error {
	const op = "delete key"
	if err := s.begin(ctx, op, id); err != nil {
		return err
	}
	cmd, werr := s.runDurably(ctx, op, id, scriptDeleteField, changedOK, []string{s.keysKey}, id, s.keysChan)
	if werr != nil {
		return werr
	}
	code, err := cmd.Int()
	if err != nil {
		return redisError(op, id, err)
	}
	return statusError(op, id, code)
}

// sortedKeys decodes keys and orders them by NotBefore, then id.
func sortedKeys(op, id string, vals []string) ([]store.Key, error) {
	keys, err := decodeAll[store.Key](vals)
	if err != nil {
		return nil, opError(op, id, err)
	}
	slices.SortFunc(keys, func(a, b store.Key) int {
		return cmp.Or(a.NotBefore.Compare(b.NotBefore), strings.Compare(a.ID, b.ID))
	})
	return keys, nil
}

// ---------------------------------------------------------------- users

// CreateUser stores a new user; store.ErrExists if its username or its id is
// taken. It is one Lua script.
func (s *Store) CreateUser(ctx context.Context, u store.User) error {
	const op = "create user"
	if err := s.begin(ctx, op, u.Username); err != nil {
		return err
	}
	if u.ID == "" || u.Username == "" {
		return opError(op, u.Username, errors.New("a user needs an id and a username"))
	}
	scopes, claims, err := encodeProfile(u)
	if err != nil {
		return opError(op, u.Username, err)
	}
	cmd, werr := s.runDurably(ctx, op, u.Username, scriptCreateUser, changedOK, []string{s.userKey(u.Username), s.userIDsKey},
		u.ID, u.Username, u.PasswordHash, flag(u.Disabled), scopes, claims,
		u.Generation, formatTime(u.CreatedAt), formatTime(u.UpdatedAt))
	if werr != nil {
		return werr
	}
	code, err := cmd.Int()
	if err != nil {
		return redisError(op, u.Username, err)
	}
	return statusError(op, u.Username, code)
}

// GetUser returns the user with the username, or store.ErrNotFound.
func (s *Store) GetUser(ctx context.Context, username string) (store.User, error) {
	const op = "get user"
	if err := s.begin(ctx, op, username); err != nil {
		return store.User{}, err
	}
	h, err := s.client.HGetAll(ctx, s.userKey(username)).Result()
	if err != nil {
		return store.User{}, redisError(op, username, err)
	}
	if len(h) == 0 {
		return store.User{}, opError(op, username, store.ErrNotFound)
	}
	u, err := decodeUser(h)
	if err != nil {
		return store.User{}, opError(op, username, err)
	}
	return u, nil
}

// ListUsers returns every user ordered by username. It reads the user-id
// index, then every user it names in one pipeline: a user created or
// deleted during the call may be listed or not, but every user listed is
// whole.
func (s *Store) ListUsers(ctx context.Context) ([]store.User, error) {
	const op = "list users"
	if err := s.begin(ctx, op, ""); err != nil {
		return nil, err
	}
	names, err := s.client.HVals(ctx, s.userIDsKey).Result()
	if err != nil {
		return nil, redisError(op, "", err)
	}
	if len(names) == 0 {
		return nil, nil
	}
	slices.Sort(names)
	names = slices.Compact(names)
	cmds := make([]*goredis.MapStringStringCmd, len(names))
	_, err = s.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, name := range names {
			cmds[i] = p.HGetAll(ctx, s.userKey(name))
		}
		return nil
	})
	if err != nil {
		return nil, redisError(op, "", err)
	}
	users := make([]store.User, 0, len(names))
	for i, cmd := range cmds {
		h := cmd.Val()
		if len(h) == 0 {
			continue // deleted since the index was read
		}
		u, err := decodeUser(h)
		if err != nil {
			return nil, opError(op, "", fmt.Errorf("user %q: %w", names[i], err))
		}
		users = append(users, u)
	}
	return users, nil
}

// UpdateUser replaces the profile (Disabled, Scopes, Claims) of an existing
// user in one Lua script, as store.Store describes; store.ErrNotFound if
// there is none.
func (s *Store) UpdateUser(ctx context.Context, u store.User) (store.User, error) {
	const op = "update user"
	if err := s.begin(ctx, op, u.Username); err != nil {
		return store.User{}, err
	}
	scopes, claims, err := encodeProfile(u)
	if err != nil {
		return store.User{}, opError(op, u.Username, err)
	}
	cmd, werr := s.runDurably(ctx, op, u.Username, scriptUpdateUser, changedUser, []string{s.userKey(u.Username)},
		flag(u.Disabled), scopes, claims, formatTime(s.now()))
	if werr != nil {
		return store.User{}, werr
	}
	res, err := cmd.Result()
	if err != nil {
		return store.User{}, redisError(op, u.Username, err)
	}
	return userReply(op, u.Username, res)
}

// SetUserPassword replaces the user's password hash and increments its
// Generation in one Lua script; store.ErrNotFound if there is no such user.
func (s *Store) SetUserPassword(ctx context.Context, username, hash string) (store.User, error) {
	const op = "set user password"
	if err := s.begin(ctx, op, username); err != nil {
		return store.User{}, err
	}
	cmd, werr := s.runDurably(ctx, op, username, scriptSetUserPassword, changedUser, []string{s.userKey(username)},
		hash, formatTime(s.now()))
	if werr != nil {
		return store.User{}, werr
	}
	res, err := cmd.Result()
	if err != nil {
		return store.User{}, redisError(op, username, err)
	}
	return userReply(op, username, res)
}

// UpgradeUserPassword replaces the user's password hash with newHash only
// if it is still oldHash, in one Lua script; store.ErrConflict if it is
// not, store.ErrNotFound if there is no such user.
func (s *Store) UpgradeUserPassword(ctx context.Context, username, oldHash, newHash string) error {
	const op = "upgrade user password"
	if err := s.begin(ctx, op, username); err != nil {
		return err
	}
	code, err := scriptUpgradeUserPassword.Run(ctx, s.client, []string{s.userKey(username)}, oldHash, newHash).Int()
	if err != nil {
		return redisError(op, username, err)
	}
	return statusError(op, username, code)
}

// DeleteUser removes a user and its id from the index in one Lua script;
// store.ErrNotFound if there is none.
func (s *Store) DeleteUser(ctx context.Context, username string) error {
	const op = "delete user"
	if err := s.begin(ctx, op, username); err != nil {
		return err
	}
	cmd, werr := s.runDurably(ctx, op, username, scriptDeleteUser, changedOK, []string{s.userKey(username), s.userIDsKey})
	if werr != nil {
		return werr
	}
	code, err := cmd.Int()
	if err != nil {
		return redisError(op, username, err)
	}
	return statusError(op, username, code)
}

// encodeProfile encodes the user's scopes and claims as JSON: null for nil,
// so that a user without scopes stays distinct from one with an empty list.
func encodeProfile(u store.User) (scopes, claims []byte, err error) {
	if scopes, err = json.Marshal(u.Scopes); err != nil {
		return nil, nil, fmt.Errorf("encode scopes: %w", err)
	}
	if claims, err = json.Marshal(u.Claims); err != nil {
		return nil, nil, fmt.Errorf("encode claims: %w", err)
	}
	return scopes, claims, nil
}

// userReply reads the reply of a script that returns a user (HGETALL) or
// a status code.
func userReply(op, username string, res any) (store.User, error) {
	switch v := res.(type) {
	case int64:
		return store.User{}, statusError(op, username, int(v))
	case []any:
		if len(v)%2 != 0 {
			return store.User{}, opError(op, username, fmt.Errorf("odd-length script reply of %d elements", len(v)))
		}
		h := make(map[string]string, len(v)/2)
		for i := 0; i < len(v); i += 2 {
			field, ok1 := v[i].(string)
			value, ok2 := v[i+1].(string)
			if !ok1 || !ok2 {
				return store.User{}, opError(op, username, fmt.Errorf("unexpected script reply elements %T, %T", v[i], v[i+1]))
			}
			h[field] = value
		}
		u, err := decodeUser(h)
		if err != nil {
			return store.User{}, opError(op, username, err)
		}
		return u, nil
	default:
		return store.User{}, opError(op, username, fmt.Errorf("unexpected script reply %T", res))
	}
}

// decodeUser decodes the fields of a user's hash.
func decodeUser(h map[string]string) (store.User, error) {
	u := store.User{
		ID:           h["id"],
		Username:     h["username"],
		PasswordHash: h["password_hash"],
		Disabled:     h["disabled"] == "1",
	}
	var err error
	if u.Generation, err = strconv.ParseInt(h["generation"], 10, 64); err != nil {
		return store.User{}, fmt.Errorf("decode generation: %w", err)
	}
	if err := json.Unmarshal([]byte(h["scopes"]), &u.Scopes); err != nil {
		return store.User{}, fmt.Errorf("decode scopes: %w", err)
	}
	if err := json.Unmarshal([]byte(h["claims"]), &u.Claims); err != nil {
		return store.User{}, fmt.Errorf("decode claims: %w", err)
	}
	if u.CreatedAt, err = time.Parse(time.RFC3339Nano, h["created_at"]); err != nil {
		return store.User{}, fmt.Errorf("decode created_at: %w", err)
	}
	if u.UpdatedAt, err = time.Parse(time.RFC3339Nano, h["updated_at"]); err != nil {
		return store.User{}, fmt.Errorf("decode updated_at: %w", err)
	}
	return u, nil
}

// flag encodes a boolean field as "1" or "0".
func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// formatTime encodes a time field as RFC 3339 with every digit of its
// nanoseconds, as encoding/json writes a time.Time.
func formatTime(t time.Time) string { return t.Format(time.RFC3339Nano) }

// ---------------------------------------------------------------- helpers

// begin checks, before any I/O, that the call may proceed.
func (s *Store) begin(ctx context.Context, op, id string) error {
	if err := ctx.Err(); err != nil {
		return opError(op, id, err)
	}
	if s.closed.Load() {
		return opError(op, id, errClosed)
	}
	return nil
}

// errClosed is the error of calls after Close.
var errClosed = fmt.Errorf("%w: store closed", store.ErrUnavailable)

// decodeAll decodes JSON values.
func decodeAll[T any](vals []string) ([]T, error) {
	out := make([]T, 0, len(vals))
	for _, v := range vals {
		var x T
		if err := json.Unmarshal([]byte(v), &x); err != nil {
			return nil, fmt.Errorf("decode: %w", err)
		}
		out = append(out, x)
	}
	return out, nil
}

// statusError turns a script's status code into nil or a sentinel error.
func statusError(op, id string, code int) error {
	switch code {
	case statusOK:
		return nil
	case statusNotFound:
		return opError(op, id, store.ErrNotFound)
	case statusExists:
		return opError(op, id, store.ErrExists)
	case statusRevoked:
		return opError(op, id, store.ErrRevoked)
	case statusReused:
		return opError(op, id, store.ErrReused)
	case statusConflict:
		return opError(op, id, store.ErrConflict)
	default:
		return opError(op, id, fmt.Errorf("unexpected script status %d", code))
	}
}

func opError(op, id string, err error) error {
	if id == "" {
		return fmt.Errorf("redis: %s: %w", op, err)
	}
	return fmt.Errorf("redis: %s %q: %w", op, id, err)
}

// redisError wraps an error of a go-redis call, adding store.ErrUnavailable
// when Redis could not serve the call (see unavailable).
func redisError(op, id string, err error) error {
	if unavailable(err) {
		err = fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	return opError(op, id, err)
}

// transientReplies are the Redis error replies that mean the server cannot
// serve now but may soon: a replica being promoted, a dataset loading, a
// cluster resharding or failing over, a long script.
var transientReplies = []string{
	"LOADING", "READONLY", "CLUSTERDOWN", "TRYAGAIN", "MASTERDOWN",
	"MOVED", "ASK", "BUSY ", "NOREPLICAS",
	"max number of clients reached",
}

// unavailable reports whether err means that Redis could not be reached or
// cannot serve now: any error that is not a Redis reply (network errors,
// timeouts, a closed client, context errors), or a transient reply.
func unavailable(err error) bool {
	var reply goredis.Error
	if !errors.As(err, &reply) {
		return true
	}
	for _, p := range transientReplies {
		if goredis.HasErrorPrefix(err, p) {
			return true
		}
	}
	return false
}
