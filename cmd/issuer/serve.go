package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/issuer-oauth/issuer/internal/config"
	"github.com/issuer-oauth/issuer/internal/server"
)

func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("issuer serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "YAML configuration `file` (environment variables override it)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "issuer serve: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	warnUnknownEnv(getenv, stderr)
	cfg, err := config.Load(*path, getenv)
	if err != nil {
		fmt.Fprintf(stderr, "issuer: configuration: %v\n", err)
		return 1
	}
	log := newLogger(stdout, cfg.LogLevel)
	warnUntrustedPlatformProxy(log, cfg, getenv)
	if err := serve(ctx, cfg, log); err != nil {
		// One line, on stderr: not also a JSON log line on stdout.
		fmt.Fprintf(stderr, "issuer: %v\n", err)
		return 1
	}
	return 0
}

// warnUntrustedPlatformProxy logs one warning when PORT is set, as
// platforms that route every request through their own proxy (Heroku's
// router) do, and no proxy is trusted: every request then seems to come
// from the proxy, and one client's failed authentications get every client
// refused by the per-address limits.
func warnUntrustedPlatformProxy(log *slog.Logger, cfg config.Config, getenv func(string) string) {
	if getenv("PORT") == "" || cfg.TrustedProxies != "" || cfg.TrustedProxyHops > 0 {
		return
	}
	log.Warn("PORT is set, as on Heroku, but no proxy is trusted: every request seems to come from the platform's router, " +
		"so one client's failed authentications get every client refused (429); behind Heroku's router set " +
		"ISSUER_TRUSTED_PROXY_HOPS=1, behind proxies of known networks set ISSUER_TRUSTED_PROXIES")
}

// environ lists the process's environment variables; runServe warns about
// the ISSUER_ ones that are no setting.
var environ = os.Environ

// warnUnknownEnv prints a warning for each ISSUER_ variable that is set
// (not empty through getenv) but is no setting, such as a misspelling.
func warnUnknownEnv(getenv func(string) string, stderr io.Writer) {
	var set []string
	for _, kv := range environ() {
		name, _, _ := strings.Cut(kv, "=")
		if getenv(name) != "" {
			set = append(set, kv)
		}
	}
	for _, w := range config.UnknownEnv(set) {
		fmt.Fprintf(stderr, "issuer: warning: %s\n", w)
	}
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level)) // validated by config
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

// serve runs the server until ctx ends. SIGHUP rereads the signing keys
// (keys_dir).
func serve(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	srv, err := server.New(ctx, cfg, server.Options{Logger: log, Version: versionString(), Reload: onSignal(ctx, syscall.SIGHUP)})
	if err != nil {
		return err
	}
	defer srv.Close()
	return srv.Run(ctx)
}

// onSignal returns a channel that receives each time the process gets sig,
// until ctx ends. A signal that arrives while the last one is still
// unread is folded into it.
func onSignal(ctx context.Context, sig os.Signal) <-chan struct{} {
	out := make(chan struct{}, 1)
	in := make(chan os.Signal, 1)
	signal.Notify(in, sig)
	go func() {
		defer signal.Stop(in)
		for {
			select {
			case <-ctx.Done():
				return
			case <-in:
				select {
				case out <- struct{}{}:
				default:
				}
			}
		}
	}()
	return out
}

// runHealthcheck asks the local server's /readyz, on the admin listener
// too when admin_addr is set, and checks that the server there is the
// issuer configured (not another one on its address); exit 0 when all
// hold.
func runHealthcheck(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("issuer healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "YAML configuration `file` of the server")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := config.Load(*path, getenv)
	if err != nil {
		fmt.Fprintf(stderr, "issuer: configuration: %v\n", err)
		return 1
	}
	t := localServer(cfg)
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	addrs := []string{cfg.Addr}
	if cfg.AdminAddr != "" {
		addrs = append(addrs, cfg.AdminAddr)
	}
	for _, addr := range addrs {
		url := localURL(addr).JoinPath("/readyz").String()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			fmt.Fprintf(stderr, "issuer: healthcheck: %s is not reachable: %v\n", url, err)
			return 1
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			fmt.Fprintf(stderr, "issuer: healthcheck: %s answered %s\n", url, resp.Status)
			return 1
		}
	}
	if err := t.check(ctx, noRedirects, false); err != nil {
		fmt.Fprintf(stderr, "issuer: healthcheck: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, "ready")
	return 0
}
