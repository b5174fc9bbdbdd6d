package deploytest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/issuer-oauth/issuer/internal/testutil"
)

// startProcess starts bin with args and exactly env (plus PATH and HOME).
func startProcess(name, bin string, args, env []string, opts ...testutil.ProcessOption) (*testutil.Process, error) {
	env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	return testutil.StartProcess(name, bin, args, env, opts...)
}

// ready adapts a check that needs no context to Process.WaitReady.
func ready(check func() error) func(context.Context) error {
	return func(context.Context) error { return check() }
}

// randomHex returns n random bytes in hex: a secret the issuer accepts.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// selfSigned writes a self-signed ECDSA certificate for 127.0.0.1 and
// localhost, valid for two hours, and its key, as PEM files into dir.
func selfSigned(dir string) (certFile, keyFile string, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return "", "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "deploytest"},
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(2 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", err
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", err
	}
	certFile, keyFile = filepath.Join(dir, "issuer.crt"), filepath.Join(dir, "issuer.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), 0o600); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}

// httpGetStatus returns the status of GET url with a short timeout.
func httpGetStatus(url string) (int, error) {
	return httpGetStatusWith(url, nil)
}

// getWithHeader sends GET url with one request header set; any answer will
// do, only a failed exchange is an error.
func getWithHeader(url, name, value string) error {
	_, err := httpGetStatusWith(url, http.Header{name: {value}})
	return err
}

// httpGetStatusWith is httpGetStatus with request headers.
func httpGetStatusWith(url string, h http.Header) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// errAddrInUse marks a start that failed because another process took a
// port between finding it free and binding it; the caller tries other ports.
var errAddrInUse = errors.New("address already in use")

// addrInUse wraps err with errAddrInUse when the output says so.
func addrInUse(err error, output string) error {
	if strings.Contains(strings.ToLower(output), "address already in use") {
		return fmt.Errorf("%w: %w", errAddrInUse, err)
	}
	return err
}

// startIssuer runs the built issuer on the embedded store in a temporary
// directory with the given extra environment, waits until `issuer
// healthcheck` (the image's HEALTHCHECK) passes, and returns its base URL.
func startIssuer(t *testing.T, env ...string) (base string, p *testutil.Process) {
	t.Helper()
	bin := issuerBinary(t)
	for attempt := 0; ; attempt++ {
		addr := testutil.FreeAddr(t)
		full := append([]string{
			"ISSUER_ADDR=" + addr,
			"ISSUER_URL=http://" + addr,
			"ISSUER_DATA_DIR=" + t.TempDir(),
			"ISSUER_SHUTDOWN_DRAIN_DELAY=0s", // nothing to drain in a test
		}, env...)
		var err error
		p, err = startProcess("issuer", bin, []string{"serve"}, full)
		if err != nil {
			t.Fatal(err)
		}
		err = p.WaitReady(t.Context(), 20*time.Second, ready(func() error { return healthcheck(bin, full) }))
		if err == nil {
			t.Cleanup(func() {
				_ = p.Stop()
				if t.Failed() {
					t.Logf("issuer output:\n%s", p.Tail())
				}
			})
			return "http://" + addr, p
		}
		p.Kill()
		if err = addrInUse(err, p.Tail()); !errors.Is(err, errAddrInUse) || attempt == 2 {
			t.Fatalf("starting the issuer: %v", err)
		}
	}
}

// healthcheck runs `issuer healthcheck` with env, as the image's
// HEALTHCHECK does.
func healthcheck(bin string, env []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "healthcheck")
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("issuer healthcheck: %v: %s", err, bytes.TrimSpace(out))
	}
	return nil
}
