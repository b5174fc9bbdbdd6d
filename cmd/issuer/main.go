// Command issuer is a standalone OAuth 2.0 token issuer for machine-to-machine
// traffic. `issuer serve` runs the server; the other subcommands are clients
// of a running server's admin API, plus healthcheck and version.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = "dev"

const usage = `issuer: a standalone OAuth 2.0 token issuer

Usage:
  issuer serve [--config FILE]     run the server
  issuer clients SUBCOMMAND        manage clients through the admin API
                                   (create, list, get, update, rotate-secret, delete)
  issuer keys SUBCOMMAND           manage signing keys through the admin API
                                   (list, rotate, revoke, secret)
  issuer users SUBCOMMAND          manage password-grant users through the admin API
                                   (create, list, get, update, set-password, unlock,
                                   delete, import)
  issuer backup FILE               copy a running issuer's embedded store into FILE
  issuer healthcheck [--config F]  exit 0 when the local server is ready
  issuer version                   print the version

Admin subcommands take --url and --admin-token (or ISSUER_URL and
ISSUER_ADMIN_TOKEN; without either URL, the one "issuer serve" derives
from ISSUER_ADDR or PORT). They first check that the server there is the
issuer meant. Run 'issuer SUBCOMMAND --help' for its flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches a command line and returns the exit code. Only `issuer
// users` reads stdin (a password, a dump to import).
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return runServe(ctx, args[1:], getenv, stdout, stderr)
	case "clients":
		return runClients(ctx, args[1:], getenv, stdout, stderr)
	case "keys":
		return runKeys(ctx, args[1:], getenv, stdout, stderr)
	case "users":
		return runUsers(ctx, args[1:], getenv, stdin, stdout, stderr)
	case "backup":
		return runBackup(ctx, args[1:], getenv, stdout, stderr)
	case "healthcheck":
		return runHealthcheck(ctx, args[1:], getenv, stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "issuer", versionString())
		return 0
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "issuer: unknown command %q\n\n%s", args[0], usage)
	return 2
}

// versionString is the build's version plus its VCS revision when known.
func versionString() string {
	v := version
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " (" + s.Value[:12] + ")"
			}
		}
	}
	return v
}
