// Package bolt is the embedded store.Store backend: one bbolt file on local
// disk, for a single issuer process.
//
// Each kind of record (clients, refresh-token families, revoked token ids,
// single-use values, signing keys) has its own bucket, keyed by id, with JSON values. Users are
// keyed by username, so that they list in username order, and a second
// bucket indexes them by user id (id → username); the methods that write
// users change both in the same transaction. Every method but UseOnce
// (see below) runs within one bbolt transaction, so it is atomic and
// isolated from every other, as store.Store requires. bbolt allows one
// writer at a time, which is what serialises concurrent refresh-token
// rotations.
//
// The writes of token requests (CreateFamily, RotateRefresh,
// RotateRefreshRetry, RevokeFamily, RevokeToken) are
// group-committed: calls that overlap run one after another
// in one shared transaction, which costs one commit (and its fdatasyncs)
// instead of one each. A call that finds no commit in progress is committed
// at once, without waiting for company; calls that arrive during a commit go
// together into the next. Durability is unchanged: a call returns only once
// the transaction that holds its change has committed to disk, and if that
// commit fails, every call in it fails. Once queued, a call waits for its
// transaction even if its context ends, so that what it returns is what was
// committed. The other writes, which are rare, have a transaction each.
//
// GetClient serves clients from an in-process cache. The cache is coherent
// because the file is locked by this process (see below), so this Store is
// the only writer, and its client writes invalidate the cache.
//
// The single-use values of UseOnce (the jti of client assertions and of
// DPoP proofs, each used for a few minutes) are kept in memory, not
// written per call: one process owns the file, so no other process needs
// to see them, and the request that records one pays no fsync for it.
// Close writes the live ones to the file in one transaction and Open reads
// them back (and empties their bucket), so a restart forgets none of them.
// A crash, unlike a restart, forgets them: a proof or assertion captured
// within its few minutes of life could then be presented once more.
//
// Records that expire are treated as absent as soon as the clock (time.Now,
// or the one given by WithNow) reaches their expiry, and are deleted from the
// file by a sweeper that runs every minute, or by Sweep.
//
// The file is locked while open: a second process opening it fails after a
// second instead of waiting for ever.
package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	bbolt "go.etcd.io/bbolt"
	bberrors "go.etcd.io/bbolt/errors"

	"github.com/issuer-oauth/issuer/internal/store"
)

const (
	// lockTimeout is how long Open waits for another process to release the
	// file before giving up.
	lockTimeout = time.Second
	// sweepInterval is how often the sweeper deletes expired records.
	sweepInterval = time.Minute
	// schemaVersion is the layout of the buckets this package writes.
	schemaVersion = "1"
)

var (
	bucketMeta     = []byte("meta")
	bucketClients  = []byte("clients")
	bucketFamilies = []byte("families")
	bucketRevoked  = []byte("revoked_tokens")
	bucketKeys     = []byte("keys")
	bucketUsers    = []byte("users")    // username → user (JSON)
	bucketUserIDs  = []byte("user_ids") // user id → username

	keySchemaVersion = []byte("schema_version")
)

// Store is a store.Store kept in a bbolt file. It is safe for concurrent use.
// Its token-request writes are group-committed, and GetClient is cached, as
// the package documentation describes.
type Store struct {
	db      *bbolt.DB
	now     func() time.Time
	logger  *slog.Logger
	commits *committer // nil when group commit is off (withoutGroupCommit)
	clients *clientCache
	once    singleUse // UseOnce's values, in memory while open

	// Tuning that only tests change.
	noGroupCommit   bool
	beforeTx        func(n int)
	clientCacheSize int

	stopSweeper context.CancelFunc
	sweeperDone chan struct{}
	closeOnce   sync.Once
	closeErr    error
}

var _ store.Store = (*Store)(nil)

// Option configures Open.
type Option func(*Store)

// WithNow sets the clock that decides when records expire and that stamps
// the UpdatedAt of a changed user. The default is time.Now; tests pass a
// fake clock.
func WithNow(now func() time.Time) Option {
	return func(s *Store) {
		if now != nil {
			s.now = now
		}
	}
}

// WithLogger sets the logger that the sweeper reports failures to. The
// default discards everything.
func WithLogger(l *slog.Logger) Option {
	return func(s *Store) {
		if l != nil {
			s.logger = l
		}
	}
}

// withoutGroupCommit gives every write a transaction of its own, as before
// group commit; benchmarks measure against it.
func withoutGroupCommit() Option {
	return func(s *Store) { s.noGroupCommit = true }
}

// withBeforeTx has the committer call f before each transaction, with the
// number of calls the transaction runs; tests use it to hold the committer.
func withBeforeTx(f func(n int)) Option {
	return func(s *Store) { s.beforeTx = f }
}

// withClientCacheSize sets how many clients GetClient keeps; 0 disables the
// cache.
func withClientCacheSize(n int) Option {
	return func(s *Store) { s.clientCacheSize = n }
}

// Open opens the store in the bbolt file at path, creating the file (mode
// 0600) and its missing parent directories (mode 0700) if needed, and starts
// the sweeper. If another process holds the file, Open fails after about a
// second. Close the store when done.
func Open(path string, opts ...Option) (*Store, error) {
	s := &Store{
		now:             time.Now,
		logger:          slog.New(slog.DiscardHandler),
		clientCacheSize: clientCacheSize,
	}
	for _, opt := range opts {
		opt(s)
	}

	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("bolt: create data dir: %w", err)
	}
	// The freelist stays in the file (bbolt's default). NoFreelistSync would
	// save one page write of the five or so of a commit, but not the two
	// fdatasyncs that are its cost: it measured 1-3% faster per commit,
	// less once group commit shares the commit, and it would make every
	// Open scan the whole file to rebuild the freelist.
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: lockTimeout})
	if errors.Is(err, bberrors.ErrTimeout) {
		return nil, fmt.Errorf("bolt: open %s: data dir %s is in use by another issuer process (file still locked after %s): %w",
			path, dir, lockTimeout, err)
	}
	if err != nil {
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		if err := initBuckets(tx); err != nil {
			return err
		}
		return s.loadOnce(tx)
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	s.db = db
	s.clients = newClientCache(s.clientCacheSize)
	if !s.noGroupCommit {
		s.commits = newCommitter(db, s.beforeTx)
	}

	ctx, cancel := context.WithCancel(context.Background())
	s.stopSweeper = cancel
	s.sweeperDone = make(chan struct{})
	go s.sweepLoop(ctx)
	return s, nil
}

// initBuckets creates the buckets of a new file and checks the schema
// version of an existing one.
func initBuckets(tx *bbolt.Tx) error {
	// The version comes first: a file of a newer layout is not touched.
	if meta := tx.Bucket(bucketMeta); meta != nil {
		if v := meta.Get(keySchemaVersion); v != nil && string(v) != schemaVersion {
			return schemaError(string(v))
		}
	}
	// A file written before users existed gets their buckets here; the
	// layout of the others is unchanged, so the schema version stays.
	for _, name := range [][]byte{bucketMeta, bucketClients, bucketFamilies, bucketRevoked, bucketKeys, bucketUsers, bucketUserIDs, bucketOnce,
		bucketRetries, bucketStatusLists, bucketStatusBits, bucketStatusOwners} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	meta := tx.Bucket(bucketMeta)
	switch v := meta.Get(keySchemaVersion); {
	case v == nil:
		if err := meta.Put(keySchemaVersion, []byte(schemaVersion)); err != nil {
			return fmt.Errorf("write schema version: %w", err)
		}
	case string(v) != schemaVersion:
		return schemaError(string(v))
	}
	return nil
}

// schemaError explains a schema version other than this binary's.
func schemaError(v string) error {
	n, err := strconv.Atoi(v)
	if cur, _ := strconv.Atoi(schemaVersion); err == nil && n > cur {
		return fmt.Errorf("%w (schema version %d; this binary reads version %s): run that issuer version or a later one, "+
			"or restore a backup taken before the upgrade; downgrading is not supported", store.ErrNewerSchema, n, schemaVersion)
	}
	return fmt.Errorf("unsupported schema version %q (this binary reads version %s): the file is not an issuer store, or is damaged", v, schemaVersion)
}

// Close stops the sweeper, waits for the writes in progress to commit,
// writes the live single-use values to the file and closes it. Calls made
// after Close fail. Calling it again does nothing.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.stopSweeper()
		<-s.sweeperDone
		if s.commits != nil {
			s.commits.close()
		}
		s.clients.disable()
		saveErr := s.saveOnce()
		var closeErr error
		if err := s.db.Close(); err != nil {
			closeErr = fmt.Errorf("bolt: close: %w", err)
		}
		s.closeErr = errors.Join(saveErr, closeErr)
	})
	return s.closeErr
}

// Ping reports whether the file is open and readable.
func (s *Store) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bolt: ping: %w", err)
	}
	err := s.db.View(func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketMeta) == nil {
			return errors.New("meta bucket missing")
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("bolt: ping: %w", err)
	}
	return nil
}

// Backup writes a consistent copy of the whole store file to w, taken in
// one read transaction while the store keeps serving (bbolt's Tx.WriteTo),
// and returns its size. The copy is a store file: put it in place of
// issuer.db, with the same master secret, to restore it. size is called
// with the copy's size before the first byte is written.
func (s *Store) Backup(ctx context.Context, w io.Writer, size func(int64)) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bolt: backup: %w", err)
	}
	err := s.db.View(func(tx *bbolt.Tx) error {
		size(tx.Size())
		_, err := tx.WriteTo(w)
		return err
	})
	if err != nil {
		return fmt.Errorf("bolt: backup: %w", err)
	}
	return nil
}

// ---------------------------------------------------------------- clients

// CreateClient stores a new client; store.ErrExists if the id is taken.
func (s *Store) CreateClient(ctx context.Context, c store.Client) error {
	defer s.clients.invalidate(c.ID)
	return s.update(ctx, "create client", c.ID, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketClients)
		if b.Get([]byte(c.ID)) != nil {
			return store.ErrExists
		}
		return put(b, c.ID, c)
	})
}

// GetClient returns a client or store.ErrNotFound. It serves the clients it
// has read before from memory; the copy it returns is the caller's.
func (s *Store) GetClient(ctx context.Context, id string) (store.Client, error) {
	if err := ctx.Err(); err != nil {
		return store.Client{}, opError("get client", id, err)
	}
	if c, ok := s.clients.get(id); ok {
		return c, nil
	}
	gen := s.clients.generation()
	var c store.Client
	err := s.view(ctx, "get client", id, func(tx *bbolt.Tx) error {
		return get(tx.Bucket(bucketClients), id, &c)
	})
	if err != nil {
		return store.Client{}, err
	}
	s.clients.add(gen, c)
	return c, nil
}

// ListClients returns every client ordered by id.
func (s *Store) ListClients(ctx context.Context) ([]store.Client, error) {
	var cs []store.Client
	err := s.view(ctx, "list clients", "", func(tx *bbolt.Tx) error {
		// bbolt iterates in byte order of the keys, which is id order.
		return tx.Bucket(bucketClients).ForEach(func(k, v []byte) error {
			var c store.Client
			if err := json.Unmarshal(v, &c); err != nil {
				return fmt.Errorf("decode %q: %w", k, err)
			}
			cs = append(cs, c)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return cs, nil
}

// UpdateClient replaces an existing client whose stored Version is still
// c.Version, storing Version c.Version+1; store.ErrConflict if it is not,
// store.ErrNotFound if there is no such client.
func (s *Store) UpdateClient(ctx context.Context, c store.Client) error {
	defer s.clients.invalidate(c.ID)
	return s.update(ctx, "update client", c.ID, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketClients)
		var cur store.Client
		if err := get(b, c.ID, &cur); err != nil {
			return err
		}
		if cur.Version != c.Version {
			return store.ErrConflict
		}
		c.Version++
		return put(b, c.ID, c)
	})
}

// DeleteClient removes a client; store.ErrNotFound if there is none.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	defer s.clients.invalidate(id)
	return s.update(ctx, "delete client", id, func(tx *bbolt.Tx) error {
		return del(tx.Bucket(bucketClients), id)
	})
}

// ---------------------------------------------------------------- families

// CreateFamily stores a new refresh-token family; store.ErrExists if a live
// family has the id. An expired one is replaced.
func (s *Store) CreateFamily(ctx context.Context, f store.Family) error {
	var refused error // store.ErrExists, carried out so as not to fail the batch
	err := s.write(ctx, "create family", f.ID, func(tx *bbolt.Tx) error {
		refused = nil // the committer may run this more than once
		b := tx.Bucket(bucketFamilies)
		switch _, err := s.liveFamily(b, f.ID); {
		case err == nil:
			refused = store.ErrExists
			return nil
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		return put(b, f.ID, f)
	})
	if err == nil && refused != nil {
		err = opError("create family", f.ID, refused)
	}
	return err
}

// GetFamily returns a live family, revoked or not, or store.ErrNotFound.
func (s *Store) GetFamily(ctx context.Context, id string) (store.Family, error) {
	var f store.Family
	err := s.view(ctx, "get family", id, func(tx *bbolt.Tx) error {
		var err error
		f, err = s.liveFamily(tx.Bucket(bucketFamilies), id)
		return err
	})
	if err != nil {
		return store.Family{}, err
	}
	return f, nil
}

// RotateRefresh replaces the family's current token with r.NewID in one
// transaction. See store.Store for its errors; on store.ErrReused the
// revocation of the family is committed.
func (s *Store) RotateRefresh(ctx context.Context, r store.Rotation) (store.Family, error) {
	const op = "rotate refresh token of family"
	var (
		f store.Family
		// refused is the call's refusal: store.ErrNotFound, ErrRevoked or
		// ErrReused. It is carried out instead of returned, so that it does
		// not fail the batch (replayed tokens cannot make the others run
		// again) and so that the revocation of ErrReused commits.
		refused error
	)
	err := s.write(ctx, op, r.FamilyID, func(tx *bbolt.Tx) error {
		f, refused = store.Family{}, nil // the committer may run this more than once
		b := tx.Bucket(bucketFamilies)
		var err error
		f, err = s.liveFamily(b, r.FamilyID)
		switch {
		case errors.Is(err, store.ErrNotFound):
			refused = store.ErrNotFound
			return nil
		case err != nil:
			return err
		}
		switch {
		case f.ClientID != r.ClientID:
			// Another client's family: say nothing about it, change nothing.
			refused = store.ErrNotFound
			return nil
		case f.Revoked:
			refused = store.ErrRevoked
			return nil
		case f.Current != r.OldID:
			f.Revoked = true
			refused = store.ErrReused
		default:
			f.Current = r.NewID
			f.ExpiresAt = r.ExpiresAt
			f.Status = store.LiveStatus(f.Status, s.now(), r.Status...)
		}
		return put(b, f.ID, f)
	})
	if err == nil && refused != nil {
		err = opError(op, r.FamilyID, refused)
	}
	if err != nil {
		return store.Family{}, err
	}
	return f, nil
}

// RevokeFamily revokes a live family; store.ErrNotFound if there is none.
// Revoking a revoked family succeeds.
func (s *Store) RevokeFamily(ctx context.Context, id string) error {
	var refused error // store.ErrNotFound, carried out so as not to fail the batch
	err := s.write(ctx, "revoke family", id, func(tx *bbolt.Tx) error {
		refused = nil // the committer may run this more than once
		b := tx.Bucket(bucketFamilies)
		f, err := s.liveFamily(b, id)
		switch {
		case errors.Is(err, store.ErrNotFound):
			refused = store.ErrNotFound
			return nil
		case err != nil:
			return err
		case f.Revoked:
			return nil
		}
		f.Revoked = true
		return put(b, id, f)
	})
	if err == nil && refused != nil {
		err = opError("revoke family", id, refused)
	}
	return err
}

// liveFamily reads a family that has not expired, or returns store.ErrNotFound.
func (s *Store) liveFamily(b *bbolt.Bucket, id string) (store.Family, error) {
	var f store.Family
	if err := get(b, id, &f); err != nil {
		return store.Family{}, err
	}
	if expired(f.ExpiresAt, s.now()) {
		return store.Family{}, store.ErrNotFound
	}
	return f, nil
}

// ---------------------------------------------------------------- revoked tokens

// revocation is the value stored for a revoked token id.
type revocation struct {
	Until time.Time `json:"until"`
}

// revocationExpiry is the expiry of a stored revocation, for Sweep.
func revocationExpiry(v []byte) (time.Time, error) {
	var r revocation
	err := json.Unmarshal(v, &r)
	return r.Until, err
}

// RevokeToken records that the token id is revoked until the given time. If
// it is already revoked for longer, the later time is kept.
func (s *Store) RevokeToken(ctx context.Context, jti string, until time.Time) error {
	return s.write(ctx, "revoke token", jti, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketRevoked)
		var old revocation
		switch err := get(b, jti, &old); {
		case err == nil && old.Until.After(until):
			return nil
		case err != nil && !errors.Is(err, store.ErrNotFound):
			return err
		}
		return put(b, jti, revocation{Until: until})
	})
}

// IsRevoked reports whether the token id is revoked now.
func (s *Store) IsRevoked(ctx context.Context, jti string) (bool, error) {
	var revoked bool
	err := s.view(ctx, "check revoked token", jti, func(tx *bbolt.Tx) error {
		var r revocation
		switch err := get(tx.Bucket(bucketRevoked), jti, &r); {
		case errors.Is(err, store.ErrNotFound):
			return nil
		case err != nil:
			return err
		}
		revoked = !expired(r.Until, s.now())
		return nil
	})
	if err != nil {
		return false, err
	}
	return revoked, nil
}

// ---------------------------------------------------------------- keys

// InitKeys stores k only if the store holds no key yet, and returns the keys
// it holds afterwards, ordered by NotBefore.
func (s *Store) InitKeys(ctx context.Context, k store.Key) ([]store.Key, error) {
	var keys []store.Key
	err := s.update(ctx, "init keys", k.ID, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketKeys)
		if first, _ := b.Cursor().First(); first == nil {
			if err := put(b, k.ID, k); err != nil {
				return err
			}
		}
		var err error
		keys, err = allKeys(b)
		return err
	})
	if err != nil {
		return nil, err
	}
	return keys, nil
}

// ListKeys returns every signing key ordered by NotBefore, oldest first.
func (s *Store) ListKeys(ctx context.Context) ([]store.Key, error) {
	var keys []store.Key
	err := s.view(ctx, "list keys", "", func(tx *bbolt.Tx) error {
		var err error
		keys, err = allKeys(tx.Bucket(bucketKeys))
		return err
	})
	if err != nil {
		return nil, err
	}
	return keys, nil
}

// AddKey stores a new key; store.ErrExists if the id is taken.
func (s *Store) AddKey(ctx context.Context, k store.Key) error {
	return s.update(ctx, "add key", k.ID, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketKeys)
		if b.Get([]byte(k.ID)) != nil {
			return store.ErrExists
		}
		return put(b, k.ID, k)
	})
}

// AddNextKey stores k only if no stored key has a NotBefore after now, and
// returns the keys it holds afterwards, ordered by NotBefore; store.ErrExists
// if the id is taken. It is one transaction.
func (s *Store) AddNextKey(ctx context.Context, k store.Key, now time.Time) ([]store.Key, error) {
	var keys []store.Key
	err := s.update(ctx, "add next key", k.ID, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketKeys)
		if b.Get([]byte(k.ID)) != nil {
			return store.ErrExists
		}
		have, err := allKeys(b)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(have, func(h store.Key) bool { return h.NotBefore.After(now) }) {
			if err := put(b, k.ID, k); err != nil {
				return err
			}
		}
		keys, err = allKeys(b)
		return err
	})
	if err != nil {
		return nil, err
	}
	return keys, nil
}

// DeleteKey removes a key; store.ErrNotFound if there is none.
func (s *Store) DeleteKey(ctx context.Context, id string) error {
	return s.update(ctx, "delete key", id, func(tx *bbolt.Tx) error {
		return del(tx.Bucket(bucketKeys), id)
	})
}

// allKeys decodes every key in b, ordered by NotBefore then id.
func allKeys(b *bbolt.Bucket) ([]store.Key, error) {
	var keys []store.Key
	err := b.ForEach(func(id, v []byte) error {
		var k store.Key
		if err := json.Unmarshal(v, &k); err != nil {
			return fmt.Errorf("decode %q: %w", id, err)
		}
		keys = append(keys, k)
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(keys, func(a, b store.Key) int {
		if c := a.NotBefore.Compare(b.NotBefore); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return keys, nil
}

// ---------------------------------------------------------------- users

// CreateUser stores a new user; store.ErrExists if its username or its id is
// taken.
func (s *Store) CreateUser(ctx context.Context, u store.User) error {
	const op = "create user"
	if u.ID == "" || u.Username == "" {
		return opError(op, u.Username, errors.New("a user needs an id and a username"))
	}
	return s.update(ctx, op, u.Username, func(tx *bbolt.Tx) error {
		users, ids := tx.Bucket(bucketUsers), tx.Bucket(bucketUserIDs)
		if users.Get([]byte(u.Username)) != nil || ids.Get([]byte(u.ID)) != nil {
			return store.ErrExists
		}
		if err := ids.Put([]byte(u.ID), []byte(u.Username)); err != nil {
			return fmt.Errorf("write id: %w", err)
		}
		return put(users, u.Username, u)
	})
}

// GetUser returns the user with the username, or store.ErrNotFound.
func (s *Store) GetUser(ctx context.Context, username string) (store.User, error) {
	var u store.User
	err := s.view(ctx, "get user", username, func(tx *bbolt.Tx) error {
		return get(tx.Bucket(bucketUsers), username, &u)
	})
	if err != nil {
		return store.User{}, err
	}
	return u, nil
}

// ListUsers returns every user ordered by username: the order of the
// bucket's keys.
func (s *Store) ListUsers(ctx context.Context) ([]store.User, error) {
	var users []store.User
	err := s.view(ctx, "list users", "", func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketUsers).ForEach(func(name, v []byte) error {
			var u store.User
			if err := json.Unmarshal(v, &u); err != nil {
				return fmt.Errorf("decode %q: %w", name, err)
			}
			users = append(users, u)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return users, nil
}

// UpdateUser replaces the profile (Disabled, Scopes, Claims) of an existing
// user in one transaction, as store.Store describes; store.ErrNotFound if
// there is none.
func (s *Store) UpdateUser(ctx context.Context, u store.User) (store.User, error) {
	return s.changeUser(ctx, "update user", u.Username, func(stored *store.User) error {
		if u.Disabled && !stored.Disabled {
			stored.Generation++
		}
		stored.Disabled = u.Disabled
		stored.Scopes = u.Scopes
		stored.Claims = u.Claims
		stored.UpdatedAt = s.now()
		return nil
	})
}

// SetUserPassword replaces the user's password hash and increments its
// Generation; store.ErrNotFound if there is no such user.
func (s *Store) SetUserPassword(ctx context.Context, username, hash string) (store.User, error) {
	return s.changeUser(ctx, "set user password", username, func(stored *store.User) error {
		stored.PasswordHash = hash
		stored.Generation++
		stored.UpdatedAt = s.now()
		return nil
	})
}

// UpgradeUserPassword replaces the user's password hash with newHash only
// if it is still oldHash; store.ErrConflict if it is not,
// store.ErrNotFound if there is no such user.
func (s *Store) UpgradeUserPassword(ctx context.Context, username, oldHash, newHash string) error {
	_, err := s.changeUser(ctx, "upgrade user password", username, func(stored *store.User) error {
		if stored.PasswordHash != oldHash {
			return store.ErrConflict
		}
		stored.PasswordHash = newHash
		return nil
	})
	return err
}

// changeUser applies change to the stored user in one transaction and
// returns the user afterwards; store.ErrNotFound if there is no such user.
// If change fails, the transaction is rolled back and its error returned.
func (s *Store) changeUser(ctx context.Context, op, username string, change func(*store.User) error) (store.User, error) {
	var u store.User
	err := s.update(ctx, op, username, func(tx *bbolt.Tx) error {
		u = store.User{}
		b := tx.Bucket(bucketUsers)
		if err := get(b, username, &u); err != nil {
			return err
		}
		if err := change(&u); err != nil {
			return err
		}
		return put(b, username, u)
	})
	if err != nil {
		return store.User{}, err
	}
	return u, nil
}

// DeleteUser removes a user and its id from the index; store.ErrNotFound
// if there is none.
func (s *Store) DeleteUser(ctx context.Context, username string) error {
	return s.update(ctx, "delete user", username, func(tx *bbolt.Tx) error {
		users := tx.Bucket(bucketUsers)
		var u store.User
		if err := get(users, username, &u); err != nil {
			return err
		}
		if err := tx.Bucket(bucketUserIDs).Delete([]byte(u.ID)); err != nil {
			return fmt.Errorf("delete id: %w", err)
		}
		return del(users, username)
	})
}

// ---------------------------------------------------------------- sweeping

// Sweep deletes every expired family and revoked token id from the file, in
// transactions of at most sweepBatch deletions, forgets the expired
// single-use values (which are in memory), and returns how many records it
// deleted in all. A read-only scan finds the expired records and a short write
// transaction deletes them (checking each again), so a large sweep neither
// holds the whole set of dirty pages in memory at once nor stops the token
// writes for its whole length.
func (s *Store) Sweep(ctx context.Context) (removed int, err error) {
	for _, b := range []struct {
		name   string
		bucket []byte
		expiry func(v []byte) (time.Time, error)
	}{
		{"families", bucketFamilies, func(v []byte) (time.Time, error) {
			var f store.Family
			err := json.Unmarshal(v, &f)
			return f.ExpiresAt, err
		}},
		{"revoked tokens", bucketRevoked, revocationExpiry},
		{"refresh retries", bucketRetries, retryExpiry},
		{"status lists", bucketStatusLists, statusExpiry},
		{"status bits", bucketStatusBits, statusBitsExpiry},
		{"status list owners", bucketStatusOwners, statusExpiry},
	} {
		var after []byte // the scan resumes after the last key it read
		for {
			now := s.now()
			var dead [][]byte
			err := s.view(ctx, "sweep", b.name, func(tx *bbolt.Tx) error {
				var err error
				dead, after, err = expiredKeys(ctx, tx.Bucket(b.bucket), after, now, b.expiry)
				return err
			})
			if err != nil {
				return removed, err
			}
			if len(dead) > 0 {
				var n int
				err = s.update(ctx, "sweep", b.name, func(tx *bbolt.Tx) error {
					n = 0
					bk := tx.Bucket(b.bucket)
					for _, k := range dead {
						v := bk.Get(k)
						if v == nil {
							continue
						}
						if exp, err := b.expiry(v); err != nil || !expired(exp, now) {
							continue // replaced since the scan
						}
						if err := bk.Delete(k); err != nil {
							return fmt.Errorf("delete %q: %w", k, err)
						}
						n++
					}
					return nil
				})
				removed += n
				if err != nil {
					return removed, err
				}
			}
			if after == nil {
				break
			}
		}
	}
	removed += s.sweepOnce(s.now())
	return removed, nil
}

// sweepBatch is the most records one sweep transaction deletes.
var sweepBatch = 10_000 // a variable for the tests

// expiredKeys scans b from the key after `after` (from the start when nil)
// and returns the keys of records that expire before now, at most
// sweepBatch of them, and the last key it read, or nil when it reached the
// end of the bucket.
func expiredKeys(ctx context.Context, b *bbolt.Bucket, after []byte, now time.Time, expiry func(v []byte) (time.Time, error)) (dead [][]byte, last []byte, err error) {
	c := b.Cursor()
	k, v := c.First()
	if after != nil {
		k, v = c.Seek(after)
		if k != nil && bytes.Equal(k, after) {
			k, v = c.Next()
		}
	}
	for ; k != nil; k, v = c.Next() {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		exp, err := expiry(v)
		if err != nil {
			return nil, nil, fmt.Errorf("decode %q: %w", k, err)
		}
		if expired(exp, now) {
			dead = append(dead, bytes.Clone(k)) // k is only valid during the transaction
			if len(dead) == sweepBatch {
				return dead, bytes.Clone(k), nil
			}
		}
	}
	return dead, nil, nil
}

// sweepLoop runs Sweep every sweepInterval until ctx ends.
func (s *Store) sweepLoop(ctx context.Context) {
	defer close(s.sweeperDone)
	tick := time.NewTicker(sweepInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			n, err := s.Sweep(ctx)
			switch {
			case err != nil && ctx.Err() == nil:
				s.logger.Warn("sweep expired records", "err", err)
			case n > 0:
				s.logger.Debug("swept expired records", "removed", n)
			}
		}
	}
}

// ---------------------------------------------------------------- helpers

// expired reports whether a record expiring at exp is gone at now. A token
// is not accepted at its exp (RFC 7519, section 4.1.4), so neither is the
// record.
func expired(exp, now time.Time) bool {
	return !now.Before(exp)
}

// update runs fn in a read-write transaction, after checking ctx. Errors are
// wrapped as "bolt: <op> <id>: ...".
func (s *Store) update(ctx context.Context, op, id string, fn func(*bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return opError(op, id, err)
	}
	if err := s.db.Update(fn); err != nil {
		return opError(op, id, err)
	}
	return nil
}

// write runs fn in a group-committed read-write transaction, after checking
// ctx, and returns once that transaction has committed or failed; see
// committer for what fn must allow for. Once fn is queued the call no longer
// heeds ctx: it waits to learn whether its change was committed. Errors are
// wrapped as "bolt: <op> <id>: ...".
func (s *Store) write(ctx context.Context, op, id string, fn func(*bbolt.Tx) error) error {
	if s.commits == nil {
		return s.update(ctx, op, id, fn)
	}
	if err := ctx.Err(); err != nil {
		return opError(op, id, err)
	}
	if err := s.commits.do(fn); err != nil {
		return opError(op, id, err)
	}
	return nil
}

// view runs fn in a read-only transaction, after checking ctx.
func (s *Store) view(ctx context.Context, op, id string, fn func(*bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return opError(op, id, err)
	}
	if err := s.db.View(fn); err != nil {
		return opError(op, id, err)
	}
	return nil
}

func opError(op, id string, err error) error {
	if id == "" {
		return fmt.Errorf("bolt: %s: %w", op, err)
	}
	return fmt.Errorf("bolt: %s %q: %w", op, id, err)
}

// get decodes the record id of b into v, or returns store.ErrNotFound.
func get(b *bbolt.Bucket, id string, v any) error {
	data := b.Get([]byte(id))
	if data == nil {
		return store.ErrNotFound
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	return nil
}

// put encodes v as the record id of b.
func put(b *bbolt.Bucket, id string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	if err := b.Put([]byte(id), data); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// del deletes the record id of b, or returns store.ErrNotFound.
func del(b *bbolt.Bucket, id string) error {
	if b.Get([]byte(id)) == nil {
		return store.ErrNotFound
	}
	if err := b.Delete([]byte(id)); err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	return nil
}
