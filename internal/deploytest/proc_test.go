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
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// syncBuffer collects a process's output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// process is a server the test started.
type process struct {
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{} // closed when it has exited
}

// startProcess starts bin with args and exactly env (plus PATH and HOME).
func startProcess(name, bin string, args, env []string) (*process, error) {
	return startProcessIn("", name, bin, args, env)
}

// startProcessIn is startProcess in the working directory dir.
func startProcessIn(dir, name, bin string, args, env []string) (*process, error) {
	p := &process{name: name, out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Dir = dir
	p.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = sysProcAttr()
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends sig, waits up to 10 seconds, then kills the process.
func (p *process) stop(sig syscall.Signal) {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// tail returns the end of the process's output.
func (p *process) tail() string {
	s := p.out.String()
	const max = 8 << 10
	if len(s) > max {
		s = "…" + s[len(s)-max:]
	}
	return s
}

// waitFor polls ready every 50 ms until it returns nil, p exits, or
// timeout passes.
func waitFor(p *process, timeout time.Duration, ready func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := ready()
		if err == nil {
			return nil
		}
		if p != nil && p.exited() {
			return fmt.Errorf("%s exited (%v) before it was ready; last check: %v\n%s", p.name, p.cmd.ProcessState, err, p.tail())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %s: %v", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// freePort returns a loopback TCP port nobody listens on.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// freeAddr returns 127.0.0.1:port with a free port.
func freeAddr(t testing.TB) string {
	t.Helper()
	p, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	return "127.0.0.1:" + strconv.Itoa(p)
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
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// errAddrInUse marks a start that failed because another process took a
// port between freePort and the bind; the caller tries other ports.
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
func startIssuer(t *testing.T, env ...string) (base string, p *process) {
	t.Helper()
	bin := issuerBinary(t)
	for attempt := 0; ; attempt++ {
		addr := freeAddr(t)
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
		err = waitFor(p, 20*time.Second, func() error { return healthcheck(bin, full) })
		if err == nil {
			t.Cleanup(func() {
				p.stop(syscall.SIGTERM)
				if t.Failed() {
					t.Logf("issuer output:\n%s", p.tail())
				}
			})
			return "http://" + addr, p
		}
		p.stop(syscall.SIGKILL)
		if err = addrInUse(err, p.tail()); !errors.Is(err, errAddrInUse) || attempt == 2 {
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
