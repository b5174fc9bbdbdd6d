package keys

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/issuer-oauth/issuer/internal/testutil"
)

// writeKeyFile writes a key file with the given modification time.
func writeKeyFile(t testing.TB, dir, name string, data []byte, mtime time.Time) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	return path
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func pkcs8(t testing.TB, priv any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return pemBlock("PRIVATE KEY", der)
}

func fileConfig(alg, dir string, c *testutil.Clock) Config {
	cfg := scheduleConfig(alg, c)
	cfg.Dir = dir
	return cfg
}

// thumbprintOf is the RFC 7638 thumbprint of pub, computed by go-jose.
func thumbprintOf(t testing.TB, pub crypto.PublicKey) string {
	t.Helper()
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

func TestFileFormats(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	sec1, _ := x509.MarshalECPrivateKey(ec)
	ecParams := pemBlock("EC PARAMETERS", []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07})
	secret := bytes.Repeat([]byte{0x5a, 0xa5, 0x01}, 11) // 33 bytes

	tests := []struct {
		name, file string
		data       []byte
		signingAlg string // Config.Alg
		wantAlg    string
		pub        crypto.PublicKey
	}{
		{"PKCS #8 EC", "ec.pem", pkcs8(t, ec), "ES256", "ES256", &ec.PublicKey},
		{"SEC 1 EC with parameters", "ec1.pem", append(ecParams, pemBlock("EC PRIVATE KEY", sec1)...), "ES256", "ES256", &ec.PublicKey},
		{"PKCS #8 Ed25519", "ed.pem", pkcs8(t, ed), "ES256", "EdDSA", ed.Public()},
		{"PKCS #1 RSA", "rsa.pem", pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rk)), "ES256", "RS256", &rk.PublicKey},
		{"PKCS #8 RSA with PS256", "rsa8.pem", pkcs8(t, rk), "PS256", "PS256", &rk.PublicKey},
		{"HS256 secret, standard base64", "hs.key", []byte(base64.StdEncoding.EncodeToString(secret) + "\n"), "ES256", "HS256", nil},
		{"HS256 secret, base64url", "hs2.key", []byte(base64.RawURLEncoding.EncodeToString(secret)), "ES256", "HS256", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeKeyFile(t, dir, tc.file, tc.data, t0.Add(-time.Hour))
			c := testutil.NewClock(t0)
			k := mustNew(t, nil, fileConfig(tc.signingAlg, dir, c))
			infos := k.List()
			if len(infos) != 1 || infos[0].Alg != tc.wantAlg || infos[0].State != StateCurrent || infos[0].File != tc.file {
				t.Fatalf("List() = %+v, want one current %s key from %s", infos, tc.wantAlg, tc.file)
			}
			if !infos[0].NotBefore.Equal(t0) || !infos[0].CreatedAt.Equal(t0.Add(-time.Hour)) || !infos[0].RemovedAt.IsZero() {
				t.Errorf("dates = %+v, want not_before now (a lone file signs at once), created_at the mtime, no removed_at", infos[0])
			}
			tok, err := k.SignAccess(accessClaims(c.Now()))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := k.ParseAccess(tok); err != nil {
				t.Errorf("ParseAccess: %v", err)
			}
			body, _, _ := k.JWKS()
			if tc.pub == nil {
				if body := string(body); body != `{"keys":[]}` {
					t.Errorf("JWKS = %s, want no key", body)
				}
				sec, err := k.Secret(infos[0].ID)
				if err != nil || sec.K != base64.RawURLEncoding.EncodeToString(secret) {
					t.Errorf("Secret() = %+v, %v; want the file's secret", sec, err)
				}
				return
			}
			if got, want := infos[0].ID, thumbprintOf(t, tc.pub); got != want {
				t.Errorf("kid = %s, want the RFC 7638 thumbprint %s", got, want)
			}
			verifyWithJWKS(t, tok, body, jose.SignatureAlgorithm(tc.wantAlg))
		})
	}
}

func TestFileErrors(t *testing.T) {
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tests := []struct {
		name, file string
		data       []byte
		want       string
	}{
		{"P-384", "a.pem", pkcs8(t, p384), "P-384"},
		{"RSA 1024", "a.pem", pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(small)), "1024 bits"},
		{"encrypted", "a.pem", pemBlock("ENCRYPTED PRIVATE KEY", []byte{1, 2, 3}), "encrypted"},
		{"public key only", "a.pem", pemBlock("PUBLIC KEY", []byte{1, 2, 3}), "no PEM private key"},
		{"not PEM", "a.pem", []byte("hello"), "no PEM private key"},
		{"two keys", "a.pem", append(pkcs8(t, ec), pkcs8(t, ec)...), "more than one private key"},
		{"bad DER", "a.pem", pemBlock("PRIVATE KEY", []byte{1, 2, 3}), "PRIVATE KEY block"},
		{"short secret", "a.key", []byte(base64.StdEncoding.EncodeToString(make([]byte, 31))), "31 bytes"},
		{"secret not base64", "a.key", []byte("not base64!"), "not base64"},
		{"empty directory", "ignored.txt", []byte("x"), "holds no key file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeKeyFile(t, dir, tc.file, tc.data, t0)
			_, err := New(context.Background(), nil, fileConfig("ES256", dir, testutil.NewClock(t0)))
			if err == nil {
				t.Fatal("New succeeded, want an error")
			}
			if !errors.Is(err, ErrKeyDir) {
				t.Errorf("error %q is not ErrKeyDir", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			if tc.file != "ignored.txt" && !strings.Contains(err.Error(), tc.file) {
				t.Errorf("error %q does not name the file %s", err, tc.file)
			}
		})
	}
	_, err := New(context.Background(), nil, fileConfig("ES256", filepath.Join(t.TempDir(), "missing"), testutil.NewClock(t0)))
	if !errors.Is(err, ErrKeyDir) {
		t.Errorf("New(missing directory) = %v, want ErrKeyDir", err)
	}
}

// TestWatchReload: a reload request to Watch rereads the key files even when
// their listing looks unchanged (a file replaced in place with the same size
// and time), which the poll does not.
func TestWatchReload(t *testing.T) {
	dir := t.TempDir()
	a, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	b, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pemA, pemB := pkcs8(t, a), pkcs8(t, b)
	if len(pemA) != len(pemB) {
		t.Fatalf("PEM sizes %d and %d differ", len(pemA), len(pemB))
	}
	mtime := t0.Add(-time.Hour)
	writeKeyFile(t, dir, "a.pem", pemA, mtime)
	k := mustNew(t, nil, fileConfig("ES256", dir, testutil.NewClock(t0)))
	reload := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		k.Watch(ctx, time.Hour, nil, reload, discard)
		close(done)
	}()
	defer func() { cancel(); <-done }()

	writeKeyFile(t, dir, "a.pem", pemB, mtime)
	// Watch takes the second request only once it has handled the first.
	reload <- struct{}{}
	reload <- struct{}{}
	if got, want := k.current().kid, thumbprintOf(t, &b.PublicKey); got != want {
		t.Errorf("signer after the reload request = %s, want the replaced file's %s", got, want)
	}
}

// TestFileRotation rotates keys by adding and removing files: a new file is
// published at once and signs once it has been published for the lead; a
// file that does not load leaves the keys as they were; a removed file is
// gone at once.
func TestFileRotation(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	c := testutil.NewClock(t0)
	a, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, b, _ := ed25519.GenerateKey(rand.Reader)
	writeKeyFile(t, dir, "a.pem", pkcs8(t, a), t0.Add(-48*time.Hour))
	writeKeyFile(t, dir, "notes.txt", []byte("ignored"), t0)
	k := mustNew(t, nil, fileConfig("ES256", dir, c))
	kidA, kidB := thumbprintOf(t, &a.PublicKey), thumbprintOf(t, b.Public())
	signer := func() string {
		tok, err := k.SignAccess(accessClaims(c.Now()))
		if err != nil {
			t.Fatal(err)
		}
		return decodeSegment(t, tok, 0)["kid"].(string)
	}
	if got := signer(); got != kidA {
		t.Fatalf("signer = %s, want a.pem's %s", got, kidA)
	}

	// The operator adds b.pem; the poll finds it.
	c.Advance(time.Minute)
	writeKeyFile(t, dir, "b.pem", pkcs8(t, b), c.Now())
	if err := k.Maintain(ctx, discard); err != nil {
		t.Fatal(err)
	}
	body, _, _ := k.JWKS()
	if set, _ := parseJWKS(t, body); len(set.Key(kidB)) != 1 || len(set.Key(kidA)) != 1 {
		t.Fatalf("JWKS = %s, want both keys", body)
	}
	infos := k.List()
	if infos[1].ID != kidB || infos[1].State != StateNext || !infos[1].NotBefore.Equal(c.Now().Add(k.PublishLead())) {
		t.Errorf("b.pem = %+v, want next, not_before now + lead", infos[1])
	}
	if infos[0].State != StateCurrent || !infos[0].RetiresAt.Equal(infos[1].NotBefore) {
		t.Errorf("a.pem = %+v, want current, retiring at b's not_before", infos[0])
	}
	published := c.Now()
	c.Set(published.Add(k.PublishLead() - time.Second))
	if got := signer(); got != kidA {
		t.Errorf("signer before the lead = %s, want a.pem's", got)
	}
	c.Set(published.Add(k.PublishLead()))
	if got := signer(); got != kidB {
		t.Errorf("signer after the lead = %s, want b.pem's", got)
	}
	if infos := k.List(); infos[0].State != StateRetired || infos[1].State != StateCurrent {
		t.Errorf("states = %+v, want a retired, b current", infos)
	}

	// A broken file: the reload fails and names it; the keys stay.
	writeKeyFile(t, dir, "c.pem", []byte("garbage"), c.Now())
	err := k.Reload(ctx)
	if err == nil || !strings.Contains(err.Error(), "c.pem") {
		t.Errorf("Reload with a broken file = %v, want an error naming c.pem", err)
	}
	if err := k.Maintain(ctx, discard); err == nil {
		t.Errorf("Maintain with a broken file succeeded")
	}
	if got := len(k.List()); got != 2 {
		t.Errorf("%d keys after a failed reload, want the 2 loaded before", got)
	}
	if err := os.Remove(filepath.Join(dir, "c.pem")); err != nil {
		t.Fatal(err)
	}

	// The operator removes a.pem: it is gone at the next poll.
	if err := os.Remove(filepath.Join(dir, "a.pem")); err != nil {
		t.Fatal(err)
	}
	if err := k.Maintain(ctx, discard); err != nil {
		t.Fatal(err)
	}
	if infos := k.List(); len(infos) != 1 || infos[0].ID != kidB {
		t.Errorf("List() = %+v, want only b.pem", infos)
	}
	body, _, _ = k.JWKS()
	if bytes.Contains(body, []byte(kidA)) {
		t.Errorf("removed key still in the JWKS")
	}

	// Keys in files cannot be changed through the issuer.
	if _, err := k.Rotate(ctx); !errors.Is(err, ErrFileKeys) {
		t.Errorf("Rotate = %v, want ErrFileKeys", err)
	}
	if _, _, err := k.Revoke(ctx, kidB); !errors.Is(err, ErrFileKeys) {
		t.Errorf("Revoke = %v, want ErrFileKeys", err)
	}
	if _, err := k.Schedule(ctx, c.Now().Add(24*time.Hour)); !errors.Is(err, ErrFileKeys) {
		t.Errorf("Schedule = %v, want ErrFileKeys", err)
	}
}

// TestFileReplace: replacing the only file (emergency rotation with files)
// makes the new key sign at once, as there is no other.
func TestFileReplace(t *testing.T) {
	dir := t.TempDir()
	c := testutil.NewClock(t0)
	a, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	b, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	writeKeyFile(t, dir, "key.pem", pkcs8(t, a), t0)
	k := mustNew(t, nil, fileConfig("ES256", dir, c))
	c.Advance(time.Minute)
	writeKeyFile(t, dir, "key.pem", pkcs8(t, b), c.Now())
	if err := k.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if infos := k.List(); len(infos) != 1 || infos[0].ID != thumbprintOf(t, &b.PublicKey) || infos[0].State != StateCurrent {
		t.Errorf("List() = %+v, want only the new key, current", infos)
	}
}

// TestFileStartTwoKeys: at start-up nothing has been published by this
// process yet, so the oldest file signs until the newer one has been
// published for the lead.
func TestFileStartTwoKeys(t *testing.T) {
	dir := t.TempDir()
	c := testutil.NewClock(t0)
	a, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	b, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	writeKeyFile(t, dir, "z-old.pem", pkcs8(t, a), t0.Add(-2*time.Hour))
	writeKeyFile(t, dir, "a-new.pem", pkcs8(t, b), t0.Add(-time.Hour))
	k := mustNew(t, nil, fileConfig("ES256", dir, c))
	if got, want := k.current().kid, thumbprintOf(t, &a.PublicKey); got != want {
		t.Errorf("signer = %s, want the older file's key %s", got, want)
	}
	c.Advance(k.PublishLead())
	if got, want := k.current().kid, thumbprintOf(t, &b.PublicKey); got != want {
		t.Errorf("signer after the lead = %s, want the newer file's key %s", got, want)
	}
}
