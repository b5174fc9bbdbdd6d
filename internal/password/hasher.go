package password

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"runtime"
	"time"

	"golang.org/x/crypto/argon2"
)

// MaxWait is how long a computation waits for its turn before it gives up
// with ErrBusy.
const MaxWait = 2 * time.Second

// Config configures a Hasher.
type Config struct {
	// Params are the Argon2id parameters of new hashes; hashes below them
	// need rehashing. The zero value means DefaultParams.
	Params Params

	// Concurrency is the most hash computations that run at once
	// (password_hash_concurrency). Zero means runtime.NumCPU().
	Concurrency int
}

// Hasher hashes and verifies passwords, at most Config.Concurrency at a
// time. It is safe for concurrent use.
type Hasher struct {
	params  Params
	slots   chan struct{}
	maxWait time.Duration
	dummy   *argonHash
}

// New returns a Hasher for cfg, or an error if cfg cannot apply.
func New(cfg Config) (*Hasher, error) {
	params := cfg.Params
	if params == (Params{}) {
		params = DefaultParams()
	}
	if err := params.Validate(); err != nil {
		return nil, err
	}
	n := cfg.Concurrency
	switch {
	case n < 0:
		return nil, fmt.Errorf("password: concurrency %d is negative", n)
	case n == 0:
		n = runtime.NumCPU()
	}
	return &Hasher{
		params:  params,
		slots:   make(chan struct{}, n),
		maxWait: MaxWait,
		// A hash at the target parameters that no password matches:
		// its key is random rather than derived.
		dummy: &argonHash{id: true, params: params, salt: random(saltLen), key: random(keyLen)},
	}, nil
}

// Params returns the parameters of the hashes h makes.
func (h *Hasher) Params() Params { return h.params }

// Hash returns the Argon2id hash of password in PHC string form, with a new
// random salt. It fails only with ErrBusy or ctx's error.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	salt := random(saltLen)
	key := argon2.IDKey([]byte(password), salt, h.params.Time, h.params.Memory, h.params.Threads, keyLen)
	return fmt.Sprintf("$argon2id$v=%d$%s$%s$%s", argonVersion, h.params,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// Verify reports whether password matches the stored hash encoded, and,
// when it does, whether encoded should be replaced by a new Hash of the
// password: it is in a Django format, or Argon2id below h's parameters.
// rehash is false whenever ok is false.
//
// An unusable password (see Usable) does not match, and is no error. err is
// not nil when the password could not be checked: ErrBusy or ctx's error
// when no computation slot was had, or an error wrapping ErrUnknownFormat,
// ErrMalformed or ErrParams for a stored hash that cannot be checked.
//
// Unless it fails with ErrBusy or ctx's error, Verify computes one hash:
// encoded's own, at its cost, or, for an unusable or unreadable encoded,
// one at h's parameters like DummyVerify.
func (h *Hasher) Verify(ctx context.Context, encoded, password string) (ok, rehash bool, err error) {
	s, parseErr := parse(encoded)
	if s == nil {
		s = h.dummy
	}
	if err = h.acquire(ctx); err != nil {
		return false, false, err
	}
	defer h.release()
	match := s.verify(password)
	if parseErr != nil {
		return false, false, parseErr
	}
	if s == h.dummy {
		return false, false, nil
	}
	return match, match && !s.current(h.params), nil
}

// DummyVerify does the work of a Verify against a hash at h's parameters
// that no password matches, for a username that does not exist: the answer
// then takes as long as for a user who does. It fails only with ErrBusy or
// ctx's error.
func (h *Hasher) DummyVerify(ctx context.Context, password string) error {
	if err := h.acquire(ctx); err != nil {
		return err
	}
	defer h.release()
	h.dummy.verify(password)
	return nil
}

// acquire takes a computation slot, waiting at most h.maxWait.
func (h *Hasher) acquire(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("password: %w", err)
	}
	select {
	case h.slots <- struct{}{}:
		return nil
	default:
	}
	t := time.NewTimer(h.maxWait)
	defer t.Stop()
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-t.C:
		return ErrBusy
	case <-ctx.Done():
		return fmt.Errorf("password: waiting for a hashing slot: %w", ctx.Err())
	}
}

func (h *Hasher) release() { <-h.slots }

// random returns n bytes from crypto/rand.
func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b) // never returns an error (it crashes the program instead)
	return b
}
