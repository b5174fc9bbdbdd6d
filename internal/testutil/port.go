package testutil

import (
	"fmt"
	"net"
	"strconv"
	"testing"
)

// FreePort returns a loopback TCP port that was free a moment ago, or fails
// the test. Another process may take it before the caller binds it: a test
// that starts a server on it tries another port when the server reports
// "address already in use".
func FreePort(t testing.TB) int {
	t.Helper()
	port, err := PickPort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// FreeAddr returns "127.0.0.1:port" with a port from FreePort.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t)))
}

// PickPort is FreePort for code that has no testing.TB (the load harness):
// it returns an error instead of failing a test.
func PickPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("testutil: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
