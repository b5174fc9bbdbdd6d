package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/issuer-oauth/issuer/internal/password"
	"github.com/issuer-oauth/issuer/internal/store"
	"github.com/issuer-oauth/issuer/internal/store/bolt"
	redisstore "github.com/issuer-oauth/issuer/internal/store/redis"
)

// benchUser is a user of the password scenario: its password and the
// Argon2id hash of it, at the issuer's default parameters.
type benchUser struct {
	ID, Username, Password, Hash string
}

// userPool is the users of the password scenario, hashed once per
// invocation and given to every server of it. Requests take the users in
// turn, so that the logins in flight are of different users when there are
// at least as many users as connections.
type userPool struct {
	users []benchUser
	next  atomic.Uint64
}

// newUserPool makes n users with random passwords, hashing them with the
// issuer's own hasher (internal/password) at its default parameters, as
// many at once as there are CPUs.
func newUserPool(ctx context.Context, n int) (*userPool, error) {
	h, err := password.New(password.Config{})
	if err != nil {
		return nil, err
	}
	p := &userPool{users: make([]benchUser, n)}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for i := range p.users {
		wg.Go(func() {
			u := benchUser{ID: randomString(16), Username: fmt.Sprintf("bench-user-%05d", i), Password: randomString(12)}
			hash, err := h.Hash(ctx, u.Password)
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				return
			}
			u.Hash = hash
			p.users[i] = u
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return nil, fmt.Errorf("hashing the users' passwords: %w", errs[0])
	}
	return p, nil
}

// take returns the next user in turn.
func (p *userPool) take() benchUser {
	return p.users[(p.next.Add(1)-1)%uint64(len(p.users))]
}

// passwordBody is the form of a password-grant request (RFC 6749 §4.3.2).
func passwordBody(u benchUser) []byte {
	return []byte("grant_type=password&username=" + url.QueryEscape(u.Username) + "&password=" + url.QueryEscape(u.Password))
}

// seedUsers writes the users into the issuer's store before the issuer
// starts: the embedded store's file in dataDir, or Redis at redisURL. The
// admin API of this issuer has no users calls, and the embedded store's
// file can be opened by one process at a time, so this is done while no
// issuer runs.
func seedUsers(ctx context.Context, dataDir, redisURL string, users []benchUser) error {
	var st interface {
		CreateUser(ctx context.Context, u store.User) error
		Close() error
	}
	var err error
	if redisURL != "" {
		st, err = redisstore.Open(ctx, redisURL)
	} else {
		st, err = bolt.Open(filepath.Join(dataDir, "issuer.db"))
	}
	if err != nil {
		return fmt.Errorf("seed users: %w", err)
	}
	now := time.Now().UTC()
	for _, u := range users {
		err = st.CreateUser(ctx, store.User{ID: u.ID, Username: u.Username, PasswordHash: u.Hash, CreatedAt: now, UpdatedAt: now})
		if err != nil {
			break
		}
	}
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("seed users: %w", err)
	}
	return nil
}

// writeBaselineUsers writes the users as the baseline reads them
// (-users-file): username and hash only.
func writeBaselineUsers(path string, users []benchUser) error {
	type userConfig struct {
		Username     string `json:"username"`
		PasswordHash string `json:"password_hash"`
	}
	cfgs := make([]userConfig, len(users))
	for i, u := range users {
		cfgs[i] = userConfig{u.Username, u.Hash}
	}
	b, err := json.Marshal(cfgs)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}
