package password

import (
	"context"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// newHasher returns a Hasher at the default parameters.
func newHasher(t testing.TB) *Hasher {
	t.Helper()
	h, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// small are Argon2 parameters far below the minimum, for tests that
// compute many hashes.
var small = Params{Memory: 64, Time: 2, Threads: 1}

// fastHasher returns a Hasher with target parameters below the minimum that
// New accepts, so that its dummy verifications are cheap.
func fastHasher(target Params) *Hasher {
	return &Hasher{
		params:  target,
		slots:   make(chan struct{}, 2),
		maxWait: MaxWait,
		dummy:   &argonHash{id: true, params: target, salt: random(saltLen), key: random(keyLen)},
	}
}

// Encoders for the formats Verify reads, independent of the parsers. The
// hashes Django itself writes are checked in django_test.go and
// vectors_test.go.

func argonPHC(t testing.TB, variant string, p Params, saltLen, keyLen int, password string) string {
	t.Helper()
	salt := []byte(strings.Repeat("s", saltLen))
	var key []byte
	switch variant {
	case "argon2id":
		key = argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, uint32(keyLen))
	case "argon2i":
		key = argon2.Key([]byte(password), salt, p.Time, p.Memory, p.Threads, uint32(keyLen))
	default:
		t.Fatalf("variant %q", variant)
	}
	return fmt.Sprintf("$%s$v=19$%s$%s$%s", variant, p,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

func djangoPBKDF2(t testing.TB, algorithm string, iter int, salt, password string) string {
	t.Helper()
	newHash := map[string]func() hash.Hash{"pbkdf2_sha256": sha256.New, "pbkdf2_sha1": sha1.New}[algorithm]
	key, err := pbkdf2.Key(newHash, password, []byte(salt), iter, newHash().Size())
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%s$%d$%s$%s", algorithm, iter, salt, base64.StdEncoding.EncodeToString(key))
}

func djangoBcryptSHA256(t testing.TB, cost int, password string) string {
	t.Helper()
	digest := sha256.Sum256([]byte(password))
	b, err := bcrypt.GenerateFromPassword([]byte(hex.EncodeToString(digest[:])), cost)
	if err != nil {
		t.Fatal(err)
	}
	return "bcrypt_sha256$" + string(b)
}

func TestHash(t *testing.T) {
	h := newHasher(t)
	ctx := t.Context()
	encoded, err := h.Hash(ctx, "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	phc := regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)
	if !phc.MatchString(encoded) {
		t.Errorf("Hash = %q, want a PHC string matching %s", encoded, phc)
	}
	if ok, rehash, err := h.Verify(ctx, encoded, "correct horse"); !ok || rehash || err != nil {
		t.Errorf("Verify = %v, %v, %v; want true, false, nil", ok, rehash, err)
	}
}

func TestHashVerify(t *testing.T) {
	h := fastHasher(small)
	ctx := t.Context()
	encoded, err := h.Hash(ctx, "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	again, err := h.Hash(ctx, "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if again == encoded {
		t.Error("two hashes of one password are equal: the salt is not random")
	}
	tests := []struct {
		password   string
		ok, rehash bool
	}{
		{"correct horse", true, false},
		{"correct horse ", false, false},
		{"Correct horse", false, false},
		{"", false, false},
	}
	for _, tc := range tests {
		ok, rehash, err := h.Verify(ctx, encoded, tc.password)
		if err != nil || ok != tc.ok || rehash != tc.rehash {
			t.Errorf("Verify(%q) = %v, %v, %v; want %v, %v, nil", tc.password, ok, rehash, err, tc.ok, tc.rehash)
		}
	}

	// A Hasher with higher parameters wants the hash replaced.
	for _, target := range []Params{
		{Memory: small.Memory + 8, Time: small.Time, Threads: small.Threads},
		{Memory: small.Memory, Time: small.Time + 1, Threads: small.Threads},
		{Memory: small.Memory, Time: small.Time, Threads: small.Threads + 1},
	} {
		stronger := fastHasher(target)
		if ok, rehash, err := stronger.Verify(ctx, encoded, "correct horse"); !ok || !rehash || err != nil {
			t.Errorf("Verify at %v = %v, %v, %v; want true, true, nil", target, ok, rehash, err)
		}
	}
}

func TestVerifyFormats(t *testing.T) {
	const pw = "pässwörd ✓"
	target := small
	tests := []struct {
		name    string
		encoded string
		rehash  bool
	}{
		{"argon2id at the target", argonPHC(t, "argon2id", target, 16, 32, pw), false},
		{"argon2id above the target", argonPHC(t, "argon2id", Params{Memory: 128, Time: 3, Threads: 2}, 32, 64, pw), false},
		{"argon2id memory below", argonPHC(t, "argon2id", Params{Memory: 56, Time: 2, Threads: 1}, 16, 32, pw), true},
		{"argon2id time below", argonPHC(t, "argon2id", Params{Memory: 64, Time: 1, Threads: 1}, 16, 32, pw), true},
		{"argon2id shorter salt", argonPHC(t, "argon2id", target, 8, 32, pw), true},
		{"argon2id shorter key", argonPHC(t, "argon2id", target, 16, 16, pw), true},
		{"argon2i", argonPHC(t, "argon2i", target, 16, 32, pw), true},
		{"Django argon2id", "argon2" + argonPHC(t, "argon2id", target, 16, 32, pw), true},
		{"Django argon2i", "argon2" + argonPHC(t, "argon2i", target, 16, 16, pw), true},
		{"Django pbkdf2_sha256", djangoPBKDF2(t, "pbkdf2_sha256", 1000, "saltsalt", pw), true},
		{"Django pbkdf2_sha1", djangoPBKDF2(t, "pbkdf2_sha1", 1000, "saltsalt", pw), true},
		{"Django pbkdf2 one iteration", djangoPBKDF2(t, "pbkdf2_sha256", 1, "s", pw), true},
		{"Django bcrypt_sha256 2a", djangoBcryptSHA256(t, bcrypt.MinCost, pw), true},
		{"Django bcrypt_sha256 2b", strings.Replace(djangoBcryptSHA256(t, bcrypt.MinCost, pw), "$2a$", "$2b$", 1), true},
		{"Django bcrypt_sha256 2y", strings.Replace(djangoBcryptSHA256(t, bcrypt.MinCost, pw), "$2a$", "$2y$", 1), true},
	}
	h := fastHasher(target)
	ctx := t.Context()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := Check(tc.encoded); err != nil {
				t.Errorf("Check = %v", err)
			}
			ok, rehash, err := h.Verify(ctx, tc.encoded, pw)
			if err != nil || !ok || rehash != tc.rehash {
				t.Errorf("Verify(right password) = %v, %v, %v; want true, %v, nil", ok, rehash, err, tc.rehash)
			}
			for _, wrong := range []string{"", "pässwörd", pw + " "} {
				ok, rehash, err := h.Verify(ctx, tc.encoded, wrong)
				if err != nil || ok || rehash {
					t.Errorf("Verify(%q) = %v, %v, %v; want false, false, nil", wrong, ok, rehash, err)
				}
			}
		})
	}
}

func TestBcryptSHA256LongPassword(t *testing.T) {
	// Plain bcrypt cuts passwords at 72 bytes; Django's bcrypt_sha256
	// hashes first, so the 73rd byte counts.
	long := strings.Repeat("a", 72)
	encoded := djangoBcryptSHA256(t, bcrypt.MinCost, long+"b")
	h := fastHasher(small)
	for _, tc := range []struct {
		password string
		want     bool
	}{{long + "b", true}, {long + "c", false}, {long, false}} {
		if ok, _, err := h.Verify(t.Context(), encoded, tc.password); ok != tc.want || err != nil {
			t.Errorf("Verify(%d bytes ending %q) = %v, %v; want %v", len(tc.password), tc.password[len(tc.password)-1:], ok, err, tc.want)
		}
	}
}

func TestUnusable(t *testing.T) {
	h := fastHasher(small)
	for _, encoded := range []string{"", "!", "!Yq7gsnf2Y8oQk0Q9e4e0m7QgHn5uC4DwYJ9yq6mN", "!" + argonPHC(t, "argon2id", DefaultParams(), 16, 32, "pw")} {
		if Usable(encoded) {
			t.Errorf("Usable(%q) = true", encoded)
		}
		if err := Check(encoded); err != nil {
			t.Errorf("Check(%q) = %v, want nil", encoded, err)
		}
		for _, pw := range []string{"", "pw", encoded} {
			if ok, rehash, err := h.Verify(t.Context(), encoded, pw); ok || rehash || err != nil {
				t.Errorf("Verify(%q, %q) = %v, %v, %v; want false, false, nil", encoded, pw, ok, rehash, err)
			}
		}
	}
	if !Usable("pbkdf2_sha256$1$s$x") {
		t.Error("Usable(pbkdf2_sha256…) = false")
	}
}

func TestCheckErrors(t *testing.T) {
	def := DefaultParams()
	good := argonPHC(t, "argon2id", def, 16, 32, "pw")
	salt := base64.RawStdEncoding.EncodeToString([]byte("saltsaltsaltsalt"))
	key := base64.RawStdEncoding.EncodeToString([]byte(strings.Repeat("k", 32)))
	phc := func(variant, version, params string) string {
		return "$" + variant + "$" + version + "$" + params + "$" + salt + "$" + key
	}
	pbkdf2Key := base64.StdEncoding.EncodeToString(make([]byte, 32))
	bcryptTail := "$abcdefghijklmnopqrstuvABCDEFGHIJKLMNOPQRSTUVWXYZ01234"
	tests := []struct {
		name    string
		encoded string
		want    error
	}{
		{"clear text", "hunter2 is my password", ErrUnknownFormat},
		{"Django md5", "md5$salt$0123456789abcdef0123456789abcdef", ErrUnknownFormat},
		{"Django scrypt", "scrypt$salt$16384$8$1$" + pbkdf2Key, ErrUnknownFormat},
		{"Django plain bcrypt", "bcrypt$$2b$12" + bcryptTail, ErrUnknownFormat},
		{"too long", "pbkdf2_sha256$1000$" + strings.Repeat("s", 1100) + "$" + pbkdf2Key, ErrMalformed},

		{"argon2d", phc("argon2d", "v=19", "m=19456,t=2,p=1"), ErrUnknownFormat},
		{"argon2 without version", "$argon2id$m=19456,t=2,p=1$" + salt + "$" + key, ErrMalformed},
		{"argon2 parameters where the version goes", phc("argon2id", "m=19456,t=2,p=1", "v=19"), ErrUnknownFormat},
		{"argon2 version 16", phc("argon2id", "v=16", "m=19456,t=2,p=1"), ErrUnknownFormat},
		{"argon2 parameters out of order", phc("argon2id", "v=19", "t=2,m=19456,p=1"), ErrMalformed},
		{"argon2 extra parameter", phc("argon2id", "v=19", "m=19456,t=2,p=1,keyid=x"), ErrMalformed},
		{"argon2 leading zero", phc("argon2id", "v=19", "m=019456,t=2,p=1"), ErrMalformed},
		{"argon2 sign", phc("argon2id", "v=19", "m=+19456,t=2,p=1"), ErrMalformed},
		{"argon2 memory past 32 bits", phc("argon2id", "v=19", "m=4294967296,t=2,p=1"), ErrMalformed},
		{"argon2 t=0", phc("argon2id", "v=19", "m=19456,t=0,p=1"), ErrMalformed},
		{"argon2 p=0", phc("argon2id", "v=19", "m=19456,t=2,p=0"), ErrMalformed},
		{"argon2 m below 8p", phc("argon2id", "v=19", "m=31,t=2,p=4"), ErrMalformed},
		{"argon2 memory above 256 MiB", phc("argon2id", "v=19", "m=262145,t=1,p=1"), ErrParams},
		{"argon2 time above 10", phc("argon2id", "v=19", "m=19456,t=11,p=1"), ErrParams},
		{"argon2 parallelism above 16", phc("argon2id", "v=19", "m=19456,t=2,p=17"), ErrParams},
		{"argon2 memory × time above 1 GiB", phc("argon2id", "v=19", "m=262144,t=5,p=1"), ErrParams},
		{"argon2 huge memory", phc("argon2id", "v=19", "m=4294967295,t=4294967295,p=255"), ErrParams},
		{"argon2 salt not base64", "$argon2id$v=19$m=19456,t=2,p=1$!!!!" + salt[4:] + "$" + key, ErrMalformed},
		{"argon2 padded salt", "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ=$" + key, ErrMalformed},
		{"argon2 salt below 8 bytes", "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$" + key, ErrMalformed},
		{"argon2 key below 16 bytes", "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$a2V5a2V5a2V5", ErrMalformed},
		{"argon2 missing field", "$argon2id$v=19$m=19456,t=2,p=1$" + salt, ErrMalformed},
		{"argon2 extra field", good + "$x", ErrMalformed},
		{"Django argon2 without its prefix $", "argon2argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + key, ErrUnknownFormat},

		{"pbkdf2 iterations above 10 million", "pbkdf2_sha256$10000001$salt$" + pbkdf2Key, ErrParams},
		{"pbkdf2 iterations past 64 bits", "pbkdf2_sha256$99999999999999999999$salt$" + pbkdf2Key, ErrMalformed},
		{"pbkdf2 zero iterations", "pbkdf2_sha256$0$salt$" + pbkdf2Key, ErrMalformed},
		{"pbkdf2 negative iterations", "pbkdf2_sha256$-1$salt$" + pbkdf2Key, ErrMalformed},
		{"pbkdf2 empty salt", "pbkdf2_sha256$1000$$" + pbkdf2Key, ErrMalformed},
		{"pbkdf2 key not base64", "pbkdf2_sha256$1000$salt$not base64", ErrMalformed},
		{"pbkdf2_sha256 key of 20 bytes", "pbkdf2_sha256$1000$salt$" + base64.StdEncoding.EncodeToString(make([]byte, 20)), ErrMalformed},
		{"pbkdf2_sha1 key of 32 bytes", "pbkdf2_sha1$1000$salt$" + pbkdf2Key, ErrMalformed},
		{"pbkdf2 extra field", "pbkdf2_sha256$1000$salt$" + pbkdf2Key + "$x", ErrMalformed},

		{"bcrypt cost above 15", "bcrypt_sha256$$2b$16" + bcryptTail, ErrParams},
		{"bcrypt cost below 4", "bcrypt_sha256$$2b$03" + bcryptTail, ErrMalformed},
		{"bcrypt 2x", "bcrypt_sha256$$2x$12" + bcryptTail, ErrUnknownFormat},
		{"bcrypt 1", "bcrypt_sha256$$1b$12" + bcryptTail, ErrMalformed},
		{"bcrypt cost not digits", "bcrypt_sha256$$2b$1a" + bcryptTail, ErrMalformed},
		{"bcrypt short", "bcrypt_sha256$$2b$12" + bcryptTail[:50], ErrMalformed},
		{"bcrypt long", "bcrypt_sha256$$2b$12" + bcryptTail + "x", ErrMalformed},
		{"bcrypt not bcrypt base64", "bcrypt_sha256$$2b$12" + strings.Replace(bcryptTail, "a", "+", 1), ErrMalformed},
		{"bcrypt without Django's $", "bcrypt_sha256$2b$12" + bcryptTail + "x", ErrMalformed},
	}
	h := fastHasher(small)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Check(tc.encoded)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Check = %v, want %v", err, tc.want)
			}
			for _, part := range []string{salt, key, pbkdf2Key, bcryptTail[1:20], good[len(good)-20:], "hunter2"} {
				if strings.Contains(err.Error(), part) {
					t.Errorf("error %q quotes the hash", err)
				}
			}
			ok, rehash, verr := h.Verify(t.Context(), tc.encoded, "pw")
			if ok || rehash || verr == nil || verr.Error() != err.Error() {
				t.Errorf("Verify = %v, %v, %v; want false, false, %v", ok, rehash, verr, err)
			}
		})
	}
}

func TestCheckNamesDjangoHashers(t *testing.T) {
	err := Check("scrypt$salt$16384$8$1$aGFzaA==")
	if err == nil || !strings.Contains(err.Error(), "scrypt") {
		t.Errorf("Check(scrypt…) = %v, want an error naming scrypt", err)
	}
}

func TestNew(t *testing.T) {
	def := DefaultParams()
	tests := []struct {
		name    string
		cfg     Config
		want    Params
		wantErr bool
	}{
		{"zero", Config{}, def, false},
		{"higher", Config{Params: Params{Memory: 64 << 10, Time: 3, Threads: 4}}, Params{Memory: 64 << 10, Time: 3, Threads: 4}, false},
		{"memory below the minimum", Config{Params: Params{Memory: 19<<10 - 1, Time: 2, Threads: 1}}, Params{}, true},
		{"time below the minimum", Config{Params: Params{Memory: 64 << 10, Time: 1, Threads: 1}}, Params{}, true},
		{"only memory set", Config{Params: Params{Memory: 64 << 10}}, Params{}, true},
		{"above the verification bounds", Config{Params: Params{Memory: 512 << 10, Time: 2, Threads: 1}}, Params{}, true},
		{"negative concurrency", Config{Concurrency: -1}, Params{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := New(tc.cfg)
			if tc.wantErr {
				if err == nil {
					t.Fatal("New succeeded, want an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := h.Params(); got != tc.want {
				t.Errorf("Params() = %v, want %v", got, tc.want)
			}
		})
	}
	if _, err := New(Config{Params: Params{Memory: 1024, Time: 2, Threads: 1}}); !errors.Is(err, ErrParams) {
		t.Errorf("New below the minimum: %v, want ErrParams", err)
	}
	h, err := New(Config{Concurrency: 0})
	if err != nil {
		t.Fatal(err)
	}
	if cap(h.slots) != runtime.NumCPU() {
		t.Errorf("default concurrency = %d, want runtime.NumCPU() = %d", cap(h.slots), runtime.NumCPU())
	}
}

func TestBusy(t *testing.T) {
	h, err := New(Config{Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	h.maxWait = 10 * time.Millisecond
	ctx := t.Context()
	encoded := djangoPBKDF2(t, "pbkdf2_sha256", 1, "s", "pw")

	for range 2 {
		if err := h.acquire(ctx); err != nil {
			t.Fatalf("acquire with a free slot: %v", err)
		}
	}
	if _, err := h.Hash(ctx, "pw"); !errors.Is(err, ErrBusy) {
		t.Errorf("Hash with every slot taken: %v, want ErrBusy", err)
	}
	if ok, _, err := h.Verify(ctx, encoded, "pw"); ok || !errors.Is(err, ErrBusy) {
		t.Errorf("Verify with every slot taken: %v, %v, want false, ErrBusy", ok, err)
	}
	if err := h.DummyVerify(ctx, "pw"); !errors.Is(err, ErrBusy) {
		t.Errorf("DummyVerify with every slot taken: %v, want ErrBusy", err)
	}

	// A caller gone while waiting gets its context's error, not ErrBusy.
	h.maxWait = time.Hour
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() {
		_, _, err := h.Verify(cctx, encoded, "pw")
		done <- err
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Verify cancelled while waiting: %v, want context.Canceled", err)
	}
	if _, _, err := h.Verify(cctx, encoded, "pw"); !errors.Is(err, context.Canceled) {
		t.Errorf("Verify with a cancelled context: %v, want context.Canceled", err)
	}

	// A waiter gets the slot when it is released.
	go func() {
		ok, _, err := h.Verify(ctx, encoded, "pw")
		if err == nil && !ok {
			err = errors.New("no match")
		}
		done <- err
	}()
	h.release()
	if err := <-done; err != nil {
		t.Errorf("Verify after a release: %v", err)
	}
	h.release()
	if len(h.slots) != 0 {
		t.Errorf("%d slots still taken", len(h.slots))
	}
}

func TestConcurrentUse(t *testing.T) {
	h := fastHasher(small)
	h.maxWait = time.Minute // a loaded machine under -race is slow
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			pw := fmt.Sprint("password ", i)
			encoded, err := h.Hash(t.Context(), pw)
			if err != nil {
				t.Error(err)
				return
			}
			if ok, rehash, err := h.Verify(t.Context(), encoded, pw); !ok || rehash || err != nil {
				t.Errorf("Verify = %v, %v, %v", ok, rehash, err)
			}
		})
	}
	wg.Wait()
}

func TestDummy(t *testing.T) {
	params := Params{Memory: 20 << 10, Time: 3, Threads: 2}
	h, err := New(Config{Params: params})
	if err != nil {
		t.Fatal(err)
	}
	// The dummy costs what a current hash of a known user costs: Argon2id
	// at the target parameters, with the salt and key lengths of Hash.
	d := h.dummy
	if !d.id || d.django || d.params != params || len(d.salt) != saltLen || len(d.key) != keyLen || !d.current(params) {
		t.Errorf("dummy = %+v, want Argon2id at %v, salt %d, key %d", d, params, saltLen, keyLen)
	}
	if err := h.DummyVerify(t.Context(), "pw"); err != nil {
		t.Errorf("DummyVerify: %v", err)
	}
}
