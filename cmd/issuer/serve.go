package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/issuer-oauth/issuer/internal/admin"
	"github.com/issuer-oauth/issuer/internal/config"
	"github.com/issuer-oauth/issuer/internal/grant"
	"github.com/issuer-oauth/issuer/internal/keys"
	"github.com/issuer-oauth/issuer/internal/request"
	"github.com/issuer-oauth/issuer/internal/secret"
	"github.com/issuer-oauth/issuer/internal/server"
	"github.com/issuer-oauth/issuer/internal/store"
	"github.com/issuer-oauth/issuer/internal/store/bolt"
	redisstore "github.com/issuer-oauth/issuer/internal/store/redis"
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
	cfg, err := config.Load(*path, getenv)
	if err != nil {
		fmt.Fprintf(stderr, "issuer: configuration: %v\n", err)
		return 1
	}
	log := newLogger(stdout, cfg.LogLevel)
	goredis.SetLogger(redisLogger{log}) // go-redis logs reconnects through its own global logger
	if err := serve(ctx, cfg, log, time.Now); err != nil {
		log.Error("server stopped", "err", err)
		fmt.Fprintf(stderr, "issuer: %v\n", err)
		return 1
	}
	return 0
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level)) // validated by config
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

// redisLogger sends go-redis's own messages (failed dials, reconnects) to
// the JSON log instead of plain lines on stderr.
type redisLogger struct{ log *slog.Logger }

func (r redisLogger) Printf(ctx context.Context, format string, v ...any) {
	r.log.WarnContext(ctx, "redis client", "detail", fmt.Sprintf(format, v...))
}

// app is the wired issuer: its HTTP handler and what must be closed.
type app struct {
	handler   *server.Server
	store     store.Store
	keys      *keys.Keys
	storeName string
	obs       *observability
	stop      context.CancelFunc // ends the background work
	done      chan struct{}
}

// Close stops the background work and closes the store.
func (a *app) Close() error {
	a.stop()
	<-a.done
	a.obs.Close()
	return a.store.Close()
}

// keyReloadInterval bounds how long an instance keeps signing with a key
// that another instance retired, should the store's change signal be lost.
const keyReloadInterval = 30 * time.Second

// openStore opens the Redis store when ISSUER_REDIS_URL is set and the
// embedded one otherwise, and returns the master secret. changes tells of
// key changes made by other instances (nil for the embedded store).
func openStore(ctx context.Context, cfg config.Config, log *slog.Logger, now func() time.Time) (st store.Store, master []byte, changes <-chan struct{}, err error) {
	master = []byte(cfg.Secret)
	if cfg.RedisURL != "" {
		rs, err := redisstore.Open(ctx, cfg.RedisURL, redisstore.WithSentinelMaster(cfg.RedisSentinelMaster),
			redisstore.WithNow(now), redisstore.WithLogger(log))
		if err != nil {
			return nil, nil, nil, fmt.Errorf("ISSUER_REDIS_URL (redis_url): %w", err)
		}
		return rs, master, rs.KeyChanges(), nil
	}
	if len(master) == 0 {
		if master, err = secret.LoadOrCreateMaster(filepath.Join(cfg.DataDir, "issuer.secret")); err != nil {
			return nil, nil, nil, fmt.Errorf("ISSUER_DATA_DIR (data_dir): %w", err)
		}
	}
	bs, err := bolt.Open(filepath.Join(cfg.DataDir, "issuer.db"), bolt.WithNow(now), bolt.WithLogger(log))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("ISSUER_DATA_DIR (data_dir): %w", err)
	}
	return bs, master, nil, nil
}

// newApp opens the store, loads the keys and builds the handler; now is the
// clock of every component (tests inject one).
func newApp(ctx context.Context, cfg config.Config, log *slog.Logger, now func() time.Time) (*app, error) {
	log = slog.New(request.NewLogHandler(log.Handler())) // request_id on every line of a request
	st, master, changes, err := openStore(ctx, cfg, log, now)
	if err != nil {
		return nil, err
	}
	obs := newObservability(cfg, st, log, now)
	st = obs.store
	k, err := keys.New(ctx, st, keys.Config{
		Issuer:         cfg.URL,
		Alg:            cfg.SigningAlg,
		RSAKeyBits:     int(cfg.RSAKeyBits),
		EncryptionKey:  secret.Derive(master, secret.PurposeKeyEncryption),
		RefreshKey:     secret.Derive(master, secret.PurposeRefreshTokens),
		JWKSMaxAge:     cfg.JWKSMaxAge,
		AccessTTL:      cfg.AccessTokenTTL,
		RotationPeriod: cfg.KeyRotationPeriod,
		Dir:            cfg.KeysDir,
		Now:            now,
	})
	if err != nil {
		obs.Close()
		st.Close()
		return nil, keysSetting(err)
	}
	hasher := secret.NewHasher(secret.Derive(master, secret.PurposeClientSecrets))
	tokens := grant.New(grant.Config{
		Issuer:       cfg.URL,
		AccessTTL:    cfg.AccessTokenTTL,
		RefreshTTL:   cfg.RefreshTokenTTL,
		MaxBodyBytes: cfg.MaxBodyBytes,
		Now:          now,
		Limiter:      obs.limiter,
		Metrics:      obs.metrics,
	}, st, k, hasher, log)
	var adm http.Handler
	if cfg.AdminToken != "" {
		adm = admin.New(admin.Config{Token: cfg.AdminToken, MaxBodyBytes: cfg.MaxBodyBytes, Now: now}, st, k, hasher, log)
	}
	h, err := server.New(server.Config{
		Issuer:     cfg.URL,
		SigningAlg: k.Alg(),
		Token:      tokens,
		Introspect: http.HandlerFunc(tokens.Introspection),
		Revoke:     http.HandlerFunc(tokens.Revocation),
		Admin:      adm,
		Keys:       k,
		Store:      st,
		Logger:     log,

		Metrics:        obs.metrics,
		TrustedProxies: obs.proxies,
	})
	if err != nil {
		obs.Close()
		st.Close()
		return nil, err
	}
	obs.watchKeys(k, now)
	bg, stop := context.WithCancel(context.Background())
	a := &app{handler: h, store: st, keys: k, storeName: "embedded", obs: obs, stop: stop, done: make(chan struct{})}
	if cfg.RedisURL != "" {
		a.storeName = "redis"
	}
	hup := make(chan os.Signal, 1) // SIGHUP rereads the keys (keys_dir)
	signal.Notify(hup, syscall.SIGHUP)
	reload := make(chan struct{}, 1)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-hup:
				select {
				case reload <- struct{}{}:
				default: // a reload is already pending
				}
			case <-bg.Done():
				return
			}
		}
	}()
	go func() {
		defer close(a.done)
		k.Watch(bg, keyReloadInterval, changes, reload, log)
	}()
	return a, nil
}

// keysSetting names the setting behind a keys.New error about a value.
func keysSetting(err error) error {
	switch {
	case errors.Is(err, keys.ErrKeyDir):
		return fmt.Errorf("ISSUER_KEYS_DIR (keys_dir): %w", err)
	case errors.Is(err, keys.ErrWrongEncryptionKey):
		return fmt.Errorf("ISSUER_SECRET (secret): %w: set the secret the keys were created with", err)
	case errors.Is(err, keys.ErrUnsupportedAlg):
		return fmt.Errorf("ISSUER_SIGNING_ALG (signing_alg): %w", err)
	case errors.Is(err, keys.ErrRSAKeyBits):
		return fmt.Errorf("ISSUER_RSA_KEY_BITS (rsa_key_bits): %w", err)
	}
	return err
}

// serve runs the server until ctx ends, then shuts down gracefully.
func serve(ctx context.Context, cfg config.Config, log *slog.Logger, now func() time.Time) error {
	a, err := newApp(ctx, cfg, log, now)
	if err != nil {
		return err
	}
	defer a.Close()

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("ISSUER_ADDR (addr): %w", err)
	}
	srv := &http.Server{
		Handler:           a.handler,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("issuer started", "addr", ln.Addr().String(), "issuer", cfg.URL, "version", versionString(),
		"store", a.storeName, "signing_alg", a.keys.Alg(), "admin_api", cfg.AdminToken != "")

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// Readiness fails first; the listener stays open for the drain delay, so
	// that load balancers stop sending requests before it closes.
	log.Info("shutting down", "drain_delay", cfg.ShutdownDrainDelay.String())
	a.handler.Drain()
	if cfg.ShutdownDrainDelay > 0 {
		select {
		case <-time.After(cfg.ShutdownDrainDelay):
		case err := <-errc:
			return err
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

// runHealthcheck asks the local server's /readyz; exit 0 when ready.
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
	host, port, _ := net.SplitHostPort(cfg.Addr)
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	url := "http://" + net.JoinHostPort(host, port) + "/readyz"
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
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
	fmt.Fprintln(stdout, "ready")
	return 0
}
