package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	goredis "github.com/redis/go-redis/v9"

	"github.com/issuer-oauth/issuer/internal/store"
)

// maxSecretAttempts bounds the compare-and-set attempts of modifyClient:
// each one fails only when another write of the same client landed between
// its read and its write, which admin calls do not do hundreds of times in a
// row.
const maxSecretAttempts = 32

// scriptUpdateClient replaces a client only if its stored version is the
// expected one ({5} otherwise, {0} if there is no such client), and
// publishes its id. A stored client without a version field has version 0.
//
//	KEYS[1] clients hash
//	ARGV    id, JSON (with the next version), channel, expected version
var scriptUpdateClient = goredis.NewScript(`
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then return 0 end
local ok, c = pcall(cjson.decode, cur)
if not ok or type(c) ~= 'table' then return redis.error_reply('stored client is not JSON') end
local v = c.version
if type(v) ~= 'number' then v = 0 end
if v ~= tonumber(ARGV[4]) then return 5 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[1])
return 1
`)

// UpdateClient replaces an existing client whose stored Version is still
// c.Version, storing Version c.Version+1, in one Lua script;
// store.ErrConflict if it is not, store.ErrNotFound if there is no such
// client. Every instance drops the client from its cache.
func (s *Store) UpdateClient(ctx context.Context, c store.Client) error {
	const op = "update client"
	if err := s.begin(ctx, op, c.ID); err != nil {
		return err
	}
	return s.casClient(ctx, op, c)
}

// casClient is UpdateClient after its checks.
func (s *Store) casClient(ctx context.Context, op string, c store.Client) error {
	expected := c.Version
	c.Version++
	data, err := json.Marshal(c)
	if err != nil {
		return opError(op, c.ID, fmt.Errorf("encode: %w", err))
	}
	cmd, werr := s.runDurably(ctx, op, c.ID, scriptUpdateClient, changedOK, []string{s.clientsKey}, c.ID, data, s.clientsChan, expected)
	s.cache.drop(c.ID)
	if werr != nil {
		return werr
	}
	code, err := cmd.Int()
	if err != nil {
		return redisError(op, c.ID, err)
	}
	return statusError(op, c.ID, code)
}

// GetClientFresh returns the client as Redis holds it, past the cache;
// store.ErrNotFound if there is none.
func (s *Store) GetClientFresh(ctx context.Context, id string) (store.Client, error) {
	const op = "get client"
	if err := s.begin(ctx, op, id); err != nil {
		return store.Client{}, err
	}
	return s.readClient(ctx, op, id)
}

// readClient reads a client from Redis.
func (s *Store) readClient(ctx context.Context, op, id string) (store.Client, error) {
	data, err := s.client.HGet(ctx, s.clientsKey, id).Bytes()
	if errors.Is(err, goredis.Nil) {
		return store.Client{}, opError(op, id, store.ErrNotFound)
	}
	if err != nil {
		return store.Client{}, redisError(op, id, err)
	}
	var c store.Client
	if err := json.Unmarshal(data, &c); err != nil {
		return store.Client{}, opError(op, id, fmt.Errorf("decode: %w", err))
	}
	return c, nil
}

// SetClientSecret replaces the client's secret hash, increments its Version
// and sets its UpdatedAt to the store's clock, and returns the client
// afterwards; store.ErrNotFound if there is none. See modifyClient.
func (s *Store) SetClientSecret(ctx context.Context, id string, hash []byte) (store.Client, error) {
	return s.modifyClient(ctx, "set client secret", id, func(c *store.Client) {
		c.SecretHash = slices.Clone(hash)
	})
}

// modifyClient applies change to the stored client, sets its UpdatedAt to
// the store's clock and increments its Version, and returns the client
// afterwards; store.ErrNotFound if there is none. It reads the client and
// writes it back with the compare-and-set of UpdateClient, again if another
// write came in between, so it never undoes a concurrent change nor is
// undone by one. change must depend only on the client it is given: it may
// run more than once.
func (s *Store) modifyClient(ctx context.Context, op, id string, change func(*store.Client)) (store.Client, error) {
	if err := s.begin(ctx, op, id); err != nil {
		return store.Client{}, err
	}
	for range maxSecretAttempts {
		c, err := s.readClient(ctx, op, id)
		if err != nil {
			return store.Client{}, err
		}
		change(&c)
		c.UpdatedAt = s.now().UTC()
		err = s.casClient(ctx, op, c)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return store.Client{}, err
		}
		c.Version++
		return c, nil
	}
	return store.Client{}, opError(op, id, fmt.Errorf("%w: the client changed %d times while it was being written", store.ErrConflict, maxSecretAttempts))
}
