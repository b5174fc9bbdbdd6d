//go:build unix

package testutil_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/issuer-oauth/issuer/internal/testutil"
)

// childEnv selects what the test binary does when it runs as a child.
const childEnv = "TESTUTIL_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		child(mode)
		return
	}
	os.Exit(m.Run())
}

// child writes a line to each output, then, as mode says, exits with
// status 3 or serves: it says "ready" and exits 0 on SIGTERM or SIGQUIT.
func child(mode string) {
	fmt.Println("out: " + os.Getenv("GREETING"))
	fmt.Fprintln(os.Stderr, "err: hello")
	switch mode {
	case "exit3":
		os.Exit(3)
	case "serve":
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGTERM, syscall.SIGQUIT)
		fmt.Println("ready")
		fmt.Println("got", <-sigs)
	}
}

// start starts the test binary as a child in mode.
func start(t *testing.T, mode string, opts ...testutil.ProcessOption) *testutil.Process {
	t.Helper()
	env := []string{childEnv + "=" + mode, "GREETING=hi"}
	p, err := testutil.StartProcess("child", os.Args[0], nil, env, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	return p
}

func outputHas(p *testutil.Process, s string) func(context.Context) error {
	return func(context.Context) error {
		if !strings.Contains(p.Output(), s) {
			return errors.New("no " + s)
		}
		return nil
	}
}

func TestProcessStop(t *testing.T) {
	p := start(t, "serve")
	if err := p.WaitReady(t.Context(), 10*time.Second, outputHas(p, "ready")); err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(); err != nil {
		t.Errorf("Stop() = %v, want nil", err)
	}
	for _, want := range []string{"out: hi", "err: hello", "got terminated"} {
		if !strings.Contains(p.Output(), want) {
			t.Errorf("Output() = %q, want it to contain %q", p.Output(), want)
		}
	}
	if err := p.Err(); err != nil {
		t.Errorf("Err() = %v, want nil", err)
	}
	if err := p.Stop(); err != nil {
		t.Errorf("second Stop() = %v, want nil", err)
	}
}

func TestProcessStopSignalAndStdout(t *testing.T) {
	var stdout testutil.Buffer
	p := start(t, "serve", testutil.WithStopSignal(syscall.SIGQUIT), testutil.WithStdout(&stdout))
	err := p.WaitReady(t.Context(), 10*time.Second, func(context.Context) error {
		if !strings.Contains(stdout.String(), "ready") {
			return errors.New("not ready")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(); err != nil {
		t.Errorf("Stop() = %v, want nil", err)
	}
	if got := stdout.String(); !strings.Contains(got, "got quit") {
		t.Errorf("stdout = %q, want the child to have got SIGQUIT", got)
	}
	if got := p.Output(); got != "err: hello\n" {
		t.Errorf("Output() = %q, want standard error only", got)
	}
}

func TestProcessEndsBeforeReady(t *testing.T) {
	p := start(t, "exit3")
	err := p.WaitReady(t.Context(), 10*time.Second, outputHas(p, "ready"))
	if err == nil || !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "err: hello") {
		t.Errorf("WaitReady() = %v, want the exit status and the output", err)
	}
	var exit *exec.ExitError
	if err := p.Stop(); !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Errorf("Stop() = %v, want exit status 3", err)
	}
	if !errors.As(p.Err(), &exit) {
		t.Errorf("Err() = %v, want an *exec.ExitError", p.Err())
	}
}

func TestProcessNotReady(t *testing.T) {
	p := start(t, "serve")
	err := p.WaitReady(t.Context(), 50*time.Millisecond, func(context.Context) error { return errors.New("never") })
	if err == nil || !strings.Contains(err.Error(), "not ready within 50ms: never") {
		t.Errorf("WaitReady() = %v, want not ready within 50ms", err)
	}
	p.Kill()
	select {
	case <-p.Done():
	default:
		t.Error("Done() not closed after Kill")
	}
	if p.Err() == nil {
		t.Error("Err() = nil after Kill, want signal: killed")
	}
}
