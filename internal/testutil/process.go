package testutil

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"
)

const (
	// outputMax bounds what a Process keeps of its output.
	outputMax = 1 << 20
	// tailMax is how much of the output Tail returns.
	tailMax = 8 << 10
	// stopTimeout is how long Stop waits before it kills.
	stopTimeout = 20 * time.Second
	// readyPoll is the pause between two calls of WaitReady's check.
	readyPoll = 20 * time.Millisecond
)

// Process is a program that a test, or the load harness, started: a
// server such as the issuer, redis-server or Nginx. Its standard output and
// standard error are kept for failure messages (Output, Tail). The caller
// stops it, usually in t.Cleanup; on Linux the kernel also kills it if the
// test binary dies first (Pdeathsig), so that no server outlives a killed
// test run.
type Process struct {
	name       string
	cmd        *exec.Cmd
	out        Buffer
	stopSignal os.Signal
	done       chan struct{} // closed when the process has ended
	err        error         // how it ended (exec.Cmd.Wait), set before done is closed
}

// ProcessOption configures StartProcess.
type ProcessOption func(*Process)

// WithDir runs the process in dir instead of the caller's working
// directory.
func WithDir(dir string) ProcessOption {
	return func(p *Process) { p.cmd.Dir = dir }
}

// WithStdout sends the process's standard output to w instead of Output:
// for a program that writes much (a server's request log during a load
// run), or to keep its log in a file. Standard error still goes to Output.
func WithStdout(w io.Writer) ProcessOption {
	return func(p *Process) { p.cmd.Stdout = w }
}

// WithStopSignal makes Stop send sig instead of SIGTERM, for a program that
// stops gracefully on another signal (Nginx: SIGQUIT).
func WithStopSignal(sig os.Signal) ProcessOption {
	return func(p *Process) { p.stopSignal = sig }
}

// StartProcess starts bin with args and returns once it runs; it does not
// wait for it to be ready (see WaitReady). env is its whole environment, as
// in exec.Cmd: nil passes on the caller's. name names the process in
// errors.
func StartProcess(name, bin string, args, env []string, opts ...ProcessOption) (*Process, error) {
	p := &Process{
		name:       name,
		cmd:        exec.Command(bin, args...),
		out:        Buffer{Max: outputMax},
		stopSignal: syscall.SIGTERM,
		done:       make(chan struct{}),
	}
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	p.cmd.SysProcAttr = sysProcAttr()
	for _, opt := range opts {
		opt(p)
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Name returns the name the process was started with.
func (p *Process) Name() string { return p.name }

// PID returns the process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Output returns what the process has written to its standard output
// (unless WithStdout) and standard error: the last MiB of it.
func (p *Process) Output() string { return p.out.String() }

// Tail returns the last 8 KiB of Output, for a failure message.
func (p *Process) Tail() string {
	s := p.out.String()
	if len(s) > tailMax {
		s = "…" + s[len(s)-tailMax:]
	}
	return s
}

// Done returns a channel that is closed when the process has ended.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err returns how the process ended, as exec.Cmd.Wait reports it (nil
// for exit status 0), once Done is closed; nil before.
func (p *Process) Err() error {
	select {
	case <-p.done:
		return p.err
	default:
		return nil
	}
}

// Signal sends sig to the process.
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// WaitReady calls ready every 20 ms until it returns nil, and returns nil
// then. It returns an error if the process ends first, or if timeout passes
// or ctx ends first, with ready's last error and the end of the output
// (Tail). The context given to ready ends then too.
func (p *Process) WaitReady(ctx context.Context, timeout time.Duration, ready func(ctx context.Context) error) error {
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		err := ready(rctx)
		if err == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s ended (%v) before it was ready; last check: %v\n%s", p.name, p.cmd.ProcessState, err, p.Tail())
		case <-rctx.Done():
			if ctx.Err() != nil {
				return fmt.Errorf("%s not ready: %w; last check: %v\n%s", p.name, ctx.Err(), err, p.Tail())
			}
			return fmt.Errorf("%s not ready within %v: %v\n%s", p.name, timeout, err, p.Tail())
		case <-time.After(readyPoll):
		}
	}
}

// Stop sends the stop signal (SIGTERM, or WithStopSignal's), waits up to
// 20 seconds for the process to end, and kills it if it has not. It returns
// nil if the process ended with exit status 0, else an error saying how it
// ended. Stop on a process that has ended only says how it ended.
func (p *Process) Stop() error {
	select {
	case <-p.done:
		return p.ended()
	default:
	}
	_ = p.cmd.Process.Signal(p.stopSignal)
	select {
	case <-p.done:
		return p.ended()
	case <-time.After(stopTimeout):
		p.Kill()
		return fmt.Errorf("%s did not end within %v of %v: killed", p.name, stopTimeout, p.stopSignal)
	}
}

// ended returns nil if the process ended with exit status 0, else an error
// saying how it ended. Call it once done is closed.
func (p *Process) ended() error {
	if p.err != nil {
		return fmt.Errorf("%s: %w", p.name, p.err)
	}
	return nil
}

// Kill kills the process (SIGKILL, as a crash would) and waits for it to
// end. Kill on a process that has ended does nothing.
func (p *Process) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}
