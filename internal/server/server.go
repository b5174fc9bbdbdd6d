package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/issuer-oauth/issuer/internal/admin"
	"github.com/issuer-oauth/issuer/internal/config"
	"github.com/issuer-oauth/issuer/internal/grant"
	"github.com/issuer-oauth/issuer/internal/jwk"
	"github.com/issuer-oauth/issuer/internal/jwksfetch"
	"github.com/issuer-oauth/issuer/internal/keys"
	"github.com/issuer-oauth/issuer/internal/metrics"
	"github.com/issuer-oauth/issuer/internal/oauth"
	"github.com/issuer-oauth/issuer/internal/password"
	"github.com/issuer-oauth/issuer/internal/ratelimit"
	"github.com/issuer-oauth/issuer/internal/request"
	"github.com/issuer-oauth/issuer/internal/secret"
	"github.com/issuer-oauth/issuer/internal/statuslist"
	"github.com/issuer-oauth/issuer/internal/store"
	"github.com/issuer-oauth/issuer/internal/store/bolt"
	redisstore "github.com/issuer-oauth/issuer/internal/store/redis"
	"github.com/issuer-oauth/issuer/verify"
)

// Options are what the process gives the server besides its configuration.
type Options struct {
	// Logger receives the server's structured log; the request id is added
	// to every line written during a request. slog.Default() when nil.
	Logger *slog.Logger
	// Now is the clock of every component; time.Now when nil. Tests inject
	// one to move through token lifetimes and key rotations without sleeping.
	Now func() time.Time
	// Version is the build's version, reported in the metrics and in the
	// start-up log line.
	Version string
	// HTTPClient, when not nil, makes the requests for client jwks_uris
	// and trusted issuers' keys (tests give one that trusts their TLS
	// server); its Timeout and redirect policy are replaced by the
	// fetcher's limits.
	HTTPClient *http.Client
	// Reload, when not nil, makes the server reread its signing keys (the
	// files of keys_dir) each time it receives; cmd/issuer sends on it on
	// SIGHUP.
	Reload <-chan struct{}
}

// keyReloadInterval bounds how long an instance keeps signing with a key
// that another instance retired, should the store's change signal be lost.
const keyReloadInterval = 30 * time.Second

// Server is the assembled issuer: its HTTP handler and the components behind
// it. It is an http.Handler; Run serves it on the configured address.
type Server struct {
	cfg       config.Config
	log       *slog.Logger
	version   string
	handler   *Handler
	admin     *Handler    // the admin listener's (admin_addr); nil when there is none
	store     store.Store // instrumented with metrics
	keys      *keys.Keys
	storeName string // "embedded" or "redis", for the start-up line
	limiter   *ratelimit.Limiter
	counter   *ratelimit.Redis // the limiter's Redis counter; nil when it counts in memory
	stop      context.CancelFunc
	done      chan struct{} // closed when the background work has ended
}

// New opens the store, loads (or creates) the signing keys and builds the
// handler. cfg must have passed config validation. The server's background
// work (key maintenance and reloads) runs until Close.
func New(ctx context.Context, cfg config.Config, opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	now := opts.Now
	log := slog.New(request.NewLogHandler(opts.Logger.Handler())) // request_id on every line of a request
	st, master, changes, err := openStore(ctx, cfg, log, now)
	if err != nil {
		return nil, err
	}
	m := metrics.New(opts.Version)
	s := &Server{cfg: cfg, log: log, version: opts.Version, store: m.Store(st), storeName: "embedded"}
	if cfg.RedisURL != "" {
		s.storeName = "redis"
	}
	var counter ratelimit.Counter = ratelimit.NewMemory(now, 0)
	if rs, ok := st.(*redisstore.Store); ok {
		// Every instance shares the failure counts and quotas.
		s.counter = ratelimit.NewRedis(rs.Client(), "", ratelimit.WithLogger(log))
		counter = s.counter
	}
	limiter := ratelimit.New(counter, ratelimit.Config{
		Window:                  cfg.AuthFailureWindow,
		AddressFailures:         cfg.AuthFailuresPerAddress,
		ClientFailures:          cfg.AuthFailuresPerClient,
		QuotaPerMinute:          cfg.TokenQuotaPerMinute,
		PasswordWindow:          cfg.PasswordFailureWindow,
		UserFailures:            cfg.PasswordFailuresPerUser,
		PasswordAddressFailures: cfg.PasswordFailuresPerAddress,
		AdminFailures:           cfg.AdminFailuresPerAddress,
		Now:                     now,
		OnLimited:               m.Limited,
		Logger:                  log,
	})
	s.limiter = limiter
	fail := func(err error) (*Server, error) {
		s.closeStore()
		return nil, err
	}
	s.keys, err = keys.New(ctx, s.store, keys.Config{
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
		return fail(keysSetting(err))
	}
	hasher := secret.NewHasher(secret.Derive(master, secret.PurposeClientSecrets))
	passwords, err := password.New(password.Config{
		Params: password.Params{
			Memory:  uint32(cfg.PasswordHashMemoryKiB),
			Time:    uint32(cfg.PasswordHashIterations),
			Threads: uint8(cfg.PasswordHashParallelism),
		},
		Concurrency: int(cfg.PasswordHashConcurrency),
	})
	if err != nil {
		return fail(fmt.Errorf("password hashing: %w", err))
	}
	policy := jwksfetch.Policy{AllowInsecure: cfg.AllowInsecureJWKSURI, AllowedHosts: cfg.JWKSURIAllowedHostList()}
	fetcher := jwksfetch.New(jwksfetch.Config{Policy: policy, Client: opts.HTTPClient, Now: now, Logger: log})
	authMethods := []string{oauth.AuthClientSecretBasic, oauth.AuthClientSecretPost, oauth.AuthPrivateKeyJWT}
	trusted := map[string]grant.TrustedIssuer{}
	var trustedNames []string
	for _, ti := range cfg.TrustedIssuerList() {
		trusted[ti.Name] = grant.TrustedIssuer{Issuer: ti.Issuer, JWKSURI: ti.JWKSURI, Audience: ti.Audience}
		trustedNames = append(trustedNames, ti.Name)
	}
	if len(trusted) > 0 {
		authMethods = append(authMethods, oauth.AuthFederatedJWT)
	}
	gc := grant.Config{
		Issuer:             cfg.URL,
		AccessTTL:          cfg.AccessTokenTTL,
		RefreshTTL:         cfg.RefreshTokenTTL,
		RefreshMaxLifetime: cfg.RefreshTokenMaxLifetime,
		RetryKey:           secret.Derive(master, secret.PurposeRefreshRetries),
		MaxBodyBytes:       cfg.MaxBodyBytes,
		Now:                now,
		Limiter:            limiter,
		Metrics:            m,
		// The public URL, never the Host header: behind a proxy the
		// request's own URL is not what the client signed.
		TokenURL:   strings.TrimSuffix(cfg.URL, "/") + PathToken,
		DPoPMaxAge: cfg.DPoPProofMaxAge,
		Assertions: grant.AssertionConfig{
			LegacyAudience:       cfg.ClientAssertionLegacyAudience,
			MaxLifetime:          cfg.ClientAssertionMaxLifetime,
			TokenEndpoint:        strings.TrimSuffix(cfg.URL, "/") + PathToken,
			Fetcher:              fetcher,
			TrustedIssuers:       trusted,
			FederatedMaxLifetime: cfg.FederatedAssertionMaxLifetime,
		},
	}
	if cfg.DPoPNonce {
		// One key on every instance: a nonce from any instance is good at
		// every other.
		if gc.DPoPNonces, err = verify.NewNonces(secret.Derive(master, secret.PurposeDPoPNonces), cfg.DPoPProofMaxAge); err != nil {
			return fail(fmt.Errorf("ISSUER_DPOP_PROOF_MAX_AGE (dpop_proof_max_age): %w", err))
		}
	}
	var lists *statuslist.Lists
	if cfg.StatusList {
		lists = statuslist.New(statuslist.Config{
			Issuer: cfg.URL, TTL: cfg.StatusListTTL, TokenTTL: cfg.AccessTokenTTL, Now: now,
		}, s.store, s.keys, log)
		gc.StatusLists = lists
	}
	grants := []string{oauth.GrantClientCredentials, oauth.GrantRefreshToken}
	if cfg.PasswordGrant {
		gc.Users, gc.Passwords, gc.PasswordLimiter = s.store, passwords, limiter
		gc.SimpleJWTClaims, gc.UserIDClaim = cfg.SimpleJWTClaims, cfg.SimpleJWTUserIDClaim
		grants = append(grants, oauth.GrantPassword)
	}
	tokens := grant.New(gc, s.store, s.keys, hasher, log)
	var compat http.Handler
	if cfg.SimpleJWTCompat {
		compat = tokens.SimpleJWT(cfg.SimpleJWTClientID, cfg.SimpleJWTPath)
	}
	var adm http.Handler
	if cfg.AdminToken != "" {
		adm = admin.New(admin.Config{
			Token:          cfg.AdminToken,
			MaxBodyBytes:   cfg.MaxBodyBytes,
			PasswordGrant:  cfg.PasswordGrant,
			Passwords:      passwords, // the grant's: one bound on concurrent hashing
			Lockouts:       limiter,   // the grant's per-username locks
			Limiter:        limiter,
			Backup:         backupOf(st),
			AccessTTL:      cfg.AccessTokenTTL,
			RefreshTTL:     cfg.RefreshTokenTTL,
			Now:            now,
			CheckJWKSURI:   policy.Check,
			TrustedIssuers: trustedNames,
			StatusLists:    statusRevoker(lists),
		}, s.store, s.keys, hasher, log)
	}
	hc := HandlerConfig{
		Issuer:           cfg.URL,
		GrantTypes:       grants,
		AuthMethods:      authMethods,
		AuthSigningAlgs:  jwk.Algorithms,
		SigningAlg:       s.keys.Alg(),
		DPoPAlgs:         verify.DPoPAlgorithms(),
		Token:            tokens,
		Introspect:       http.HandlerFunc(tokens.Introspection),
		Revoke:           http.HandlerFunc(tokens.Revocation),
		Admin:            adm,
		SimpleJWT:        compat,
		SimpleJWTPath:    cfg.SimpleJWTPath,
		Keys:             s.keys,
		Store:            s.store,
		Logger:           log,
		Metrics:          m,
		TrustedProxies:   cfg.TrustedProxyNets(),
		TrustedProxyHops: int(cfg.TrustedProxyHops),
		AdminURL:         cfg.AdminBaseURL(),
		StatusLists:      statusServer(lists),
	}
	if cfg.AdminAddr != "" {
		// The admin API and the metrics move to a listener of their own.
		hc.Listener = ListenerPublic
		ac := hc
		ac.Listener = ListenerAdmin
		if s.admin, err = NewHandler(ac); err != nil {
			return fail(err)
		}
	}
	s.handler, err = NewHandler(hc)
	if err != nil {
		return fail(err)
	}
	m.WatchKeys(func() []metrics.Key {
		infos := s.keys.List()
		ks := make([]metrics.Key, len(infos))
		for i, ki := range infos {
			ks[i] = metrics.Key{ID: ki.ID, Alg: ki.Alg, State: ki.State, CreatedAt: ki.CreatedAt, NotBefore: ki.NotBefore}
		}
		return ks
	}, now)

	bg, stop := context.WithCancel(context.Background())
	s.stop, s.done = stop, make(chan struct{})
	go func() {
		defer close(s.done)
		s.keys.Watch(bg, keyReloadInterval, changes, opts.Reload, log)
	}()
	return s, nil
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

// openStore opens the Redis store when a Redis URL is configured and the
// embedded one otherwise, and returns the master secret. changes tells of
// key changes made by other instances (nil for the embedded store).
func openStore(ctx context.Context, cfg config.Config, log *slog.Logger, now func() time.Time) (st store.Store, master []byte, changes <-chan struct{}, err error) {
	master = []byte(cfg.Secret)
	if cfg.RedisURL != "" {
		rl := &redisLogger{log: log}
		goredis.SetLogger(rl) // go-redis logs reconnects through its own global logger
		rs, err := redisstore.Open(ctx, cfg.RedisURL, redisstore.WithSentinelMaster(cfg.RedisSentinelMaster),
			redisstore.WithNow(now), redisstore.WithLogger(log),
			redisstore.WithWaitReplicas(int(cfg.RedisWaitReplicas), cfg.RedisWaitTimeout))
		if err != nil {
			return nil, nil, nil, fmt.Errorf("ISSUER_REDIS_URL (redis_url): %w", err)
		}
		rl.opened.Store(true)
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

// backupOf returns the backup function of the embedded store st, or nil
// for Redis, whose own persistence backs it up.
func backupOf(st store.Store) func(ctx context.Context, w io.Writer, size func(int64)) error {
	if b, ok := st.(*bolt.Store); ok {
		return b.Backup
	}
	return nil
}

// redisLogger sends go-redis's own messages (failed dials, reconnects) to
// the JSON log instead of plain lines on stderr, once the store is open:
// before, a failure is the one error that New returns, not also log lines.
type redisLogger struct {
	log    *slog.Logger
	opened atomic.Bool
}

func (r *redisLogger) Printf(ctx context.Context, format string, v ...any) {
	if r.opened.Load() {
		r.log.WarnContext(ctx, "redis client", "detail", fmt.Sprintf(format, v...))
	}
}

// ServeHTTP serves one request of the main listener (addr).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.handler.ServeHTTP(w, r)
}

// AdminHandler returns the handler of the admin listener (admin_addr): the
// admin API, the metrics and health. It is nil when admin_addr is empty:
// the main listener then serves them.
func (s *Server) AdminHandler() http.Handler {
	if s.admin == nil {
		return nil
	}
	return s.admin
}

// Close stops the background work, the limiter's subscription and the
// store. It does not stop a running Run: cancel Run's context for that.
func (s *Server) Close() error {
	s.stop()
	<-s.done
	return s.closeStore()
}

// closeStore closes the limiter's subscription, which uses the store's
// Redis client, then the store.
func (s *Server) closeStore() error {
	if s.counter != nil {
		s.counter.Close()
	}
	return s.store.Close()
}

// Run listens on the configured address, and on the admin address when
// one is configured, and serves until ctx ends, then shuts down
// gracefully: readiness fails first on both, the listeners stay open for
// the drain delay so that load balancers stop sending requests, and
// requests in flight get the shutdown timeout to finish.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("ISSUER_ADDR (addr): %w", err)
	}
	var adminLn net.Listener
	if s.admin != nil {
		if adminLn, err = net.Listen("tcp", s.cfg.AdminAddr); err != nil {
			ln.Close()
			return fmt.Errorf("ISSUER_ADMIN_ADDR (admin_addr): %w", err)
		}
	}
	return s.Serve(ctx, ln, adminLn)
}

// Serve is Run on listeners the caller opened: ln for the main listener,
// adminLn for the admin listener (nil without admin_addr). It closes them.
// Both get the same timeouts, limits and graceful shutdown; when either
// fails, both stop and Serve returns the error.
func (s *Server) Serve(ctx context.Context, ln, adminLn net.Listener) error {
	cfg := s.cfg
	if (s.admin != nil) != (adminLn != nil) {
		ln.Close()
		if adminLn != nil {
			adminLn.Close()
		}
		return errors.New("server: an admin listener is needed exactly when admin_addr is set")
	}
	newServer := func(h http.Handler) *http.Server {
		return &http.Server{
			Handler:           h,
			ReadHeaderTimeout: cfg.ReadHeaderTimeout,
			ReadTimeout:       cfg.ReadTimeout,
			WriteTimeout:      cfg.WriteTimeout,
			IdleTimeout:       cfg.IdleTimeout,
			MaxHeaderBytes:    16 << 10,
			ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		}
	}
	type listener struct {
		srv *http.Server
		ln  net.Listener
	}
	ls := []listener{{newServer(s.handler), ln}}
	attrs := []any{"addr", ln.Addr().String()}
	if adminLn != nil {
		ls = append(ls, listener{newServer(s.admin), adminLn})
		attrs = append(attrs, "admin_addr", adminLn.Addr().String(), "admin_url", cfg.AdminBaseURL())
	}
	errc := make(chan error, len(ls))
	for _, l := range ls {
		go func() { errc <- l.srv.Serve(l.ln) }()
	}
	s.log.Info("issuer started", append(attrs, "issuer", cfg.URL, "version", s.version,
		"store", s.storeName, "signing_alg", s.keys.Alg(), "admin_api", cfg.AdminToken != "")...)

	shutdown := func() error {
		sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		defer cancel()
		errs := make(chan error, len(ls))
		for _, l := range ls {
			go func() { errs <- l.srv.Shutdown(sctx) }()
		}
		var err error
		for range ls {
			err = errors.Join(err, <-errs)
		}
		return err
	}
	failed := func(err error) error {
		_ = shutdown() // one listener failed: the other stops too
		return err
	}

	select {
	case err := <-errc:
		return failed(err)
	case <-ctx.Done():
	}
	s.log.Info("shutting down", "drain_delay", cfg.ShutdownDrainDelay.String())
	s.handler.Drain()
	if s.admin != nil {
		s.admin.Drain()
	}
	if cfg.ShutdownDrainDelay > 0 {
		select {
		case <-time.After(cfg.ShutdownDrainDelay):
		case err := <-errc:
			return failed(err)
		}
	}
	if err := shutdown(); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	s.log.Info("stopped")
	return nil
}

// statusRevoker and statusServer return the lists as the admin API and the
// handler take them: a nil interface when status lists are off.
func statusRevoker(l *statuslist.Lists) admin.StatusLists {
	if l == nil {
		return nil
	}
	return l
}

func statusServer(l *statuslist.Lists) StatusLists {
	if l == nil {
		return nil
	}
	return l
}
