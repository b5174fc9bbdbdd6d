// Package config holds the issuer's settings: one flat Config struct, loaded
// from an optional YAML file (the documented config.yaml at the repository root)
// and the environment, and checked by Validate.
//
// Every setting has a YAML key and an environment variable, ISSUER_ followed by
// the key in upper case (ISSUER_ACCESS_TOKEN_TTL for access_token_ttl). The
// environment overrides the file, the file overrides the defaults. Bad
// configuration is reported all at once, one line per problem, each line naming
// the setting and saying what to fix.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Config is the issuer's configuration. The yaml tag of a field is its key in
// config.yaml, the env tag its environment variable.
type Config struct {
	// URL is the issuer identifier: the iss claim of every token and the base of
	// every URL advertised in the RFC 8414 metadata. It must be an absolute http
	// or https URL with a host and no query, fragment or user info, such as
	// https://auth.example.com; Load removes a trailing slash.
	// Default http://localhost:8080.
	URL string `yaml:"url" env:"ISSUER_URL"`

	// Addr is the listen address, host:port with a numeric port. When neither
	// ISSUER_ADDR nor the file sets it, Load uses ":$PORT" if PORT is set (as on
	// Heroku). Default :8080.
	Addr string `yaml:"addr" env:"ISSUER_ADDR"`

	// AdminToken is the bearer token of the admin API, at least 32 characters.
	// Empty, the default, turns the admin API off.
	AdminToken string `yaml:"admin_token" env:"ISSUER_ADMIN_TOKEN"`

	// AdminAddr, when not empty, is a second listen address (host:port with a
	// numeric port) that alone serves the admin API and /metrics (and
	// /healthz and /readyz); the listener on Addr then answers 404 for them.
	// It must differ from Addr. Empty, the default, serves everything on Addr.
	AdminAddr string `yaml:"admin_addr" env:"ISSUER_ADMIN_ADDR"`

	// AdminURL is the base URL at which admins reach the AdminAddr listener,
	// an absolute http or https URL like URL: the metadata's
	// registration_endpoint starts with it. Only with AdminAddr. Empty, the
	// default, means http:// and AdminAddr, with localhost for an empty or
	// unspecified host (see AdminBaseURL). Load removes a trailing slash.
	AdminURL string `yaml:"admin_url" env:"ISSUER_ADMIN_URL"`

	// RedisURL is one redis:// or rediss:// URL, or for Redis Cluster a
	// comma-separated list of seed-node URLs; with RedisSentinelMaster, the
	// URL or comma-separated URLs of the Sentinels. Empty, the default,
	// selects the embedded store in DataDir. Load removes spaces around the
	// commas.
	RedisURL string `yaml:"redis_url" env:"ISSUER_REDIS_URL"`

	// RedisSentinelMaster is the name of the master that Redis Sentinels
	// monitor (the name in their "sentinel monitor" line), without spaces or
	// control characters. When set, RedisURL names the Sentinels, and the
	// store asks them for the master and follows its failovers. Empty, the
	// default, means RedisURL names Redis itself.
	RedisSentinelMaster string `yaml:"redis_sentinel_master" env:"ISSUER_REDIS_SENTINEL_MASTER"`

	// RedisWaitReplicas is how many Redis replicas must acknowledge a change
	// that must survive a failover (a refresh-token rotation, a revocation,
	// a change of a client, user or signing key) before the request that
	// made it succeeds: the store sends WAIT after the write. When fewer
	// acknowledge within RedisWaitTimeout the request fails with 503 (the
	// change stands on the master). 0, the default, does not wait. 0 to
	// 100; more than 0 needs RedisURL.
	RedisWaitReplicas int64 `yaml:"redis_wait_replicas" env:"ISSUER_REDIS_WAIT_REPLICAS"`

	// RedisWaitTimeout is how long a change waits for RedisWaitReplicas
	// replicas, 10ms to 10s. Default 1s.
	RedisWaitTimeout time.Duration `yaml:"redis_wait_timeout" env:"ISSUER_REDIS_WAIT_TIMEOUT"`

	// DataDir is the directory of the embedded store. Default ./data.
	DataDir string `yaml:"data_dir" env:"ISSUER_DATA_DIR"`

	// SigningAlg is the JWS algorithm of new signing keys: ES256, EdDSA, RS256,
	// PS256 or HS256. Default ES256.
	SigningAlg string `yaml:"signing_alg" env:"ISSUER_SIGNING_ALG"`

	// RSAKeyBits is the size of new RS256 and PS256 keys: 2048, 3072 or
	// 4096. Default 2048.
	RSAKeyBits int64 `yaml:"rsa_key_bits" env:"ISSUER_RSA_KEY_BITS"`

	// KeyRotationPeriod is how long each generated signing key signs before
	// the next one takes over; 0 turns scheduled rotation off. When not 0,
	// longer than 4 × JWKSMaxAge + AccessTokenTTL. Ignored with KeysDir and
	// for HS256 keys. Default 720h.
	KeyRotationPeriod time.Duration `yaml:"key_rotation_period" env:"ISSUER_KEY_ROTATION_PERIOD"`

	// JWKSMaxAge is the Cache-Control max-age of the JWK Set, 1m to 24h;
	// twice it is how long a key is published before it signs. Default 5m.
	JWKSMaxAge time.Duration `yaml:"jwks_max_age" env:"ISSUER_JWKS_MAX_AGE"`

	// KeysDir, when not empty, is a directory of signing-key files (*.pem
	// private keys, *.key HS256 secrets) used instead of generated keys.
	// Default empty.
	KeysDir string `yaml:"keys_dir" env:"ISSUER_KEYS_DIR"`

	// AccessTokenTTL is the lifetime of access tokens, 1s to 24h. Default 5m.
	AccessTokenTTL time.Duration `yaml:"access_token_ttl" env:"ISSUER_ACCESS_TOKEN_TTL"`

	// RefreshTokenTTL is the lifetime of refresh tokens, longer than
	// AccessTokenTTL and at most 8760h. Default 24h.
	RefreshTokenTTL time.Duration `yaml:"refresh_token_ttl" env:"ISSUER_REFRESH_TOKEN_TTL"`

	// RefreshTokenMaxLifetime is the absolute end of a refresh-token
	// family, counted from its first token, however often it is refreshed;
	// 0 (the default) is none, else longer than AccessTokenTTL and at most
	// 87600h. A client's refresh_token_max_lifetime replaces it.
	RefreshTokenMaxLifetime time.Duration `yaml:"refresh_token_max_lifetime" env:"ISSUER_REFRESH_TOKEN_MAX_LIFETIME"`

	// Secret encrypts the private signing keys kept in the store; at least 32
	// characters, the same on every instance. Required with RedisURL; when empty,
	// the default, the embedded store generates one into DataDir.
	Secret string `yaml:"secret" env:"ISSUER_SECRET"`

	// MaxBodyBytes limits the size of a request body, 1024 to 10485760 bytes.
	// Default 65536.
	MaxBodyBytes int64 `yaml:"max_body_bytes" env:"ISSUER_MAX_BODY_BYTES"`

	// ReadHeaderTimeout is http.Server.ReadHeaderTimeout, more than 0.
	// Default 5s.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout" env:"ISSUER_READ_HEADER_TIMEOUT"`

	// ReadTimeout is http.Server.ReadTimeout, more than 0. Default 10s.
	ReadTimeout time.Duration `yaml:"read_timeout" env:"ISSUER_READ_TIMEOUT"`

	// WriteTimeout is http.Server.WriteTimeout, more than 0. Default 10s.
	WriteTimeout time.Duration `yaml:"write_timeout" env:"ISSUER_WRITE_TIMEOUT"`

	// IdleTimeout is http.Server.IdleTimeout, more than 0. Default 60s.
	IdleTimeout time.Duration `yaml:"idle_timeout" env:"ISSUER_IDLE_TIMEOUT"`

	// ShutdownTimeout is how long a graceful shutdown waits for requests in
	// flight after SIGTERM, more than 0. Default 15s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout" env:"ISSUER_SHUTDOWN_TIMEOUT"`

	// ShutdownDrainDelay is how long the server keeps serving after SIGTERM
	// with /readyz already answering 503, so that load balancers stop sending
	// requests before the listener closes; 0 to 5m. Default 5s.
	ShutdownDrainDelay time.Duration `yaml:"shutdown_drain_delay" env:"ISSUER_SHUTDOWN_DRAIN_DELAY"`

	// TrustedProxies is a comma-separated list of the networks (CIDRs such as
	// 10.0.0.0/8, or single addresses) of the reverse proxies in front of the
	// issuer. Only from a peer in them are X-Forwarded-For (the client address
	// is its rightmost address not in them) and X-Request-Id believed. Empty,
	// the default, trusts no proxy.
	TrustedProxies string `yaml:"trusted_proxies" env:"ISSUER_TRUSTED_PROXIES"`

	// TrustedProxyHops, when more than 0, trusts every direct peer as the
	// last of that many proxies, each of which appends to X-Forwarded-For the
	// address it received the request from: the client address is the entry
	// that many places from the right (the rightmost with 1). It is for
	// platforms whose instances can be reached only through proxies of
	// unknown addresses, such as Heroku's router (1). 0 to 10, and 0 when
	// TrustedProxies is set. Default 0.
	TrustedProxyHops int64 `yaml:"trusted_proxy_hops" env:"ISSUER_TRUSTED_PROXY_HOPS"`

	// AuthFailureWindow is the window in which failed client authentications
	// are counted, 1s to 24h. Default 1m.
	AuthFailureWindow time.Duration `yaml:"auth_failure_window" env:"ISSUER_AUTH_FAILURE_WINDOW"`

	// AuthFailuresPerAddress is how many failed client authentications one
	// source address may make per AuthFailureWindow before every client
	// authentication from it is refused (429) until the window ends; 0 turns
	// the limit off. 0 to 1000000. Default 20.
	AuthFailuresPerAddress int64 `yaml:"auth_failures_per_address" env:"ISSUER_AUTH_FAILURES_PER_ADDRESS"`

	// AuthFailuresPerClient is how many failed authentications one client id
	// may get per AuthFailureWindow before addresses that failed are refused
	// (429) for it until the window ends; addresses without failures are
	// still served. 0 turns the limit off. 0 to 1000000. Default 50.
	AuthFailuresPerClient int64 `yaml:"auth_failures_per_client" env:"ISSUER_AUTH_FAILURES_PER_CLIENT"`

	// AdminFailuresPerAddress is how many wrong admin tokens one source
	// address may present per AuthFailureWindow before every admin API call
	// from it is refused (429) until the window ends, the right token
	// included; 0 turns the limit off. 0 to 1000000. Default 10.
	AdminFailuresPerAddress int64 `yaml:"admin_failures_per_address" env:"ISSUER_ADMIN_FAILURES_PER_ADDRESS"`

	// TokenQuotaPerMinute is how many token requests one client may make per
	// minute (429 beyond); 0, the default, means no quota. 0 to 1000000.
	TokenQuotaPerMinute int64 `yaml:"token_quota_per_minute" env:"ISSUER_TOKEN_QUOTA_PER_MINUTE"`

	// LogLevel is the minimum level logged: debug, info, warn or error.
	// Default info.
	LogLevel string `yaml:"log_level" env:"ISSUER_LOG_LEVEL"`

	// PasswordGrant turns on the resource owner password credentials grant
	// (RFC 6749 §4.3) for clients registered with it. Default false.
	PasswordGrant bool `yaml:"password_grant" env:"ISSUER_PASSWORD_GRANT"`

	// PasswordHashMemoryKiB is the argon2id memory of new password hashes, in
	// KiB, 19456 (19 MiB) to 262144 (256 MiB), and at most 1 GiB times
	// PasswordHashIterations. Default 19456.
	PasswordHashMemoryKiB int64 `yaml:"password_hash_memory_kib" env:"ISSUER_PASSWORD_HASH_MEMORY_KIB"`

	// PasswordHashIterations is the argon2id time cost of new password
	// hashes, 2 to 10. Default 2.
	PasswordHashIterations int64 `yaml:"password_hash_iterations" env:"ISSUER_PASSWORD_HASH_ITERATIONS"`

	// PasswordHashParallelism is the argon2id parallelism of new password
	// hashes, 1 to 16. Default 1.
	PasswordHashParallelism int64 `yaml:"password_hash_parallelism" env:"ISSUER_PASSWORD_HASH_PARALLELISM"`

	// PasswordHashConcurrency bounds the password hashes computed at once;
	// a login that waits more than 2 s for a slot gets 503. 0, the default,
	// means the number of CPUs; at most 1024.
	PasswordHashConcurrency int64 `yaml:"password_hash_concurrency" env:"ISSUER_PASSWORD_HASH_CONCURRENCY"`

	// PasswordFailureWindow is the window in which failed password logins
	// are counted, 1m to 24h. Default 15m.
	PasswordFailureWindow time.Duration `yaml:"password_failure_window" env:"ISSUER_PASSWORD_FAILURE_WINDOW"`

	// PasswordFailuresPerUser is how many failed logins one username may get
	// per PasswordFailureWindow before it is locked for the rest of the
	// window; 0 turns the limit off. 0 to 1000000. Default 10.
	PasswordFailuresPerUser int64 `yaml:"password_failures_per_user" env:"ISSUER_PASSWORD_FAILURES_PER_USER"`

	// PasswordFailuresPerAddress is how many failed logins one source
	// address may make per PasswordFailureWindow before its password logins
	// are refused (429) for the rest of the window; 0 turns the limit off.
	// 0 to 1000000. Default 100.
	PasswordFailuresPerAddress int64 `yaml:"password_failures_per_address" env:"ISSUER_PASSWORD_FAILURES_PER_ADDRESS"`

	// SimpleJWTCompat serves the endpoints of Django REST framework
	// SimpleJWT under SimpleJWTPath. Default false.
	SimpleJWTCompat bool `yaml:"simplejwt_compat" env:"ISSUER_SIMPLEJWT_COMPAT"`

	// SimpleJWTPath is the path of the SimpleJWT-compatible endpoints,
	// starting and ending with a slash. Default /api/token/.
	SimpleJWTPath string `yaml:"simplejwt_path" env:"ISSUER_SIMPLEJWT_PATH"`

	// SimpleJWTClientID is the client whose audience and scope apply to
	// tokens minted through the SimpleJWT-compatible endpoints; required
	// with SimpleJWTCompat. Default empty.
	SimpleJWTClientID string `yaml:"simplejwt_client_id" env:"ISSUER_SIMPLEJWT_CLIENT_ID"`

	// SimpleJWTClaims adds SimpleJWT's claims (token_type and the user id
	// under SimpleJWTUserIDClaim) to access tokens of the password grant
	// too. Default false.
	SimpleJWTClaims bool `yaml:"simplejwt_claims" env:"ISSUER_SIMPLEJWT_CLAIMS"`

	// SimpleJWTUserIDClaim is the claim that carries the user id in
	// SimpleJWT-style tokens (SimpleJWT's USER_ID_CLAIM). Default user_id.
	SimpleJWTUserIDClaim string `yaml:"simplejwt_user_id_claim" env:"ISSUER_SIMPLEJWT_USER_ID_CLAIM"`

	// DPoPNonce makes the token endpoint require a server nonce in DPoP
	// proofs (RFC 9449 §8); the nonces are an HMAC of a time step under a
	// key derived from Secret, so every instance accepts every other's.
	// Default false.
	DPoPNonce bool `yaml:"dpop_nonce" env:"ISSUER_DPOP_NONCE"`

	// DPoPProofMaxAge is how old the iat of a DPoP proof may be at the
	// token endpoint, 10s to 1h; a proof's jti is remembered that long.
	// With DPoPNonce it is also the time step of the nonces. Default 5m.
	DPoPProofMaxAge time.Duration `yaml:"dpop_proof_max_age" env:"ISSUER_DPOP_PROOF_MAX_AGE"`

	// Clients without shared secrets (private_key_jwt, federated_jwt).

	// ClientAssertionLegacyAudience also accepts private_key_jwt assertions
	// whose aud contains the issuer identifier or the token endpoint URL
	// among other values (RFC 7523 as first published); by default aud must
	// be the issuer identifier alone (draft-ietf-oauth-rfc7523bis).
	// Default false.
	ClientAssertionLegacyAudience bool `yaml:"client_assertion_legacy_audience" env:"ISSUER_CLIENT_ASSERTION_LEGACY_AUDIENCE"`

	// ClientAssertionMaxLifetime bounds a private_key_jwt assertion's exp
	// after its iat (or after now without iat), 10s to 1h. Default 5m.
	ClientAssertionMaxLifetime time.Duration `yaml:"client_assertion_max_lifetime" env:"ISSUER_CLIENT_ASSERTION_MAX_LIFETIME"`

	// AllowInsecureJWKSURI lets clients register http:// jwks_uris, and
	// trusted issuers publish http:// keys; for development only.
	// Default false.
	AllowInsecureJWKSURI bool `yaml:"allow_insecure_jwks_uri" env:"ISSUER_ALLOW_INSECURE_JWKS_URI"`

	// JWKSURIAllowedHosts is a comma-separated list (in the file also a
	// YAML list) of the only hosts a client's jwks_uri may name; empty, the
	// default, allows any host, private and loopback addresses included.
	JWKSURIAllowedHosts string `yaml:"jwks_uri_allowed_hosts" env:"ISSUER_JWKS_URI_ALLOWED_HOSTS" list:"comma"`

	// TrustedIssuers are the external issuers of workload-identity tokens
	// that federated_jwt clients present: a JSON array (in the file also a
	// YAML list) of {"name","issuer","jwks_uri"?,"audience"?} objects; see
	// TrustedIssuer. Empty, the default, turns federated_jwt off.
	TrustedIssuers string `yaml:"trusted_issuers" env:"ISSUER_TRUSTED_ISSUERS" list:"json"`

	// FederatedAssertionMaxLifetime bounds a workload-identity token's exp
	// after its iat (or after now without iat), 1m to 168h. Default 24h.
	FederatedAssertionMaxLifetime time.Duration `yaml:"federated_assertion_max_lifetime" env:"ISSUER_FEDERATED_ASSERTION_MAX_LIFETIME"`

	// StatusList gives every access token a status claim and publishes
	// the Token Status Lists that resource APIs check for revocations
	// (docs/status-list.md). Default false.
	StatusList bool `yaml:"status_list" env:"ISSUER_STATUS_LIST"`

	// StatusListTTL is the ttl of the status lists: how long a resource
	// API may use a fetched list, so how long a revocation may take to
	// reach it. 1s to 1h. Default 30s.
	StatusListTTL time.Duration `yaml:"status_list_ttl" env:"ISSUER_STATUS_LIST_TTL"`
}

// Default returns the configuration used when neither a file nor the
// environment sets anything: the embedded store under ./data, listening on :8080.
func Default() Config {
	return Config{
		URL:               "http://localhost:8080",
		Addr:              ":8080",
		DataDir:           "./data",
		SigningAlg:        "ES256",
		RSAKeyBits:        2048,
		KeyRotationPeriod: 720 * time.Hour,
		JWKSMaxAge:        5 * time.Minute,
		AccessTokenTTL:    5 * time.Minute,
		RefreshTokenTTL:   24 * time.Hour,
		RedisWaitTimeout:  time.Second,
		MaxBodyBytes:      64 << 10,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       60 * time.Second,
		ShutdownTimeout:   15 * time.Second,
		LogLevel:          "info",

		ShutdownDrainDelay:     5 * time.Second,
		AuthFailureWindow:      time.Minute,
		AuthFailuresPerAddress: 20,
		AuthFailuresPerClient:  50,

		AdminFailuresPerAddress: 10,

		PasswordHashMemoryKiB:      19456,
		PasswordHashIterations:     2,
		PasswordHashParallelism:    1,
		PasswordFailureWindow:      15 * time.Minute,
		PasswordFailuresPerUser:    10,
		PasswordFailuresPerAddress: 100,
		SimpleJWTPath:              "/api/token/",
		SimpleJWTUserIDClaim:       "user_id",
		DPoPProofMaxAge:            5 * time.Minute,

		ClientAssertionMaxLifetime:    5 * time.Minute,
		FederatedAssertionMaxLifetime: 24 * time.Hour,
		StatusListTTL:                 30 * time.Second,
	}
}

// Limits checked by Validate.
const (
	minSecretLen       = 32
	minAccessTokenTTL  = time.Second
	maxAccessTokenTTL  = 24 * time.Hour
	maxRefreshTokenTTL = 8760 * time.Hour
	// MaxRefreshTokenMaxLifetime bounds refresh_token_max_lifetime, of the
	// server and of a client: ten years.
	MaxRefreshTokenMaxLifetime = 87600 * time.Hour
	minJWKSMaxAge              = time.Minute
	maxJWKSMaxAge              = 24 * time.Hour
	minMaxBodyBytes            = 1 << 10
	maxMaxBodyBytes            = 10 << 20

	maxRedisWaitReplicas = 100
	minRedisWaitTimeout  = 10 * time.Millisecond
	maxRedisWaitTimeout  = 10 * time.Second
)

var (
	signingAlgs = []string{"ES256", "EdDSA", "RS256", "PS256", "HS256"}
	logLevels   = []string{"debug", "info", "warn", "error"}
)

// setting describes one field of Config.
type setting struct {
	field int    // index in Config
	key   string // yaml key
	env   string // environment variable
	// list is how a YAML list is written into the string field: "comma"
	// (joined with commas) or "json" (a JSON array); "" takes no list.
	list string
}

// settings lists every field of Config in declaration order; byKey indexes it.
var (
	settings = settingsOf(reflect.TypeFor[Config]())
	byKey    = func() map[string]setting {
		m := make(map[string]setting, len(settings))
		for _, s := range settings {
			m[s.key] = s
		}
		return m
	}()
)

func settingsOf(t reflect.Type) []setting {
	s := make([]setting, t.NumField())
	for i := range s {
		f := t.Field(i)
		s[i] = setting{field: i, key: f.Tag.Get("yaml"), env: f.Tag.Get("env"), list: f.Tag.Get("list")}
	}
	return s
}

// set parses raw as the value of s and stores it in c.
func (s setting) set(c *Config, raw string) error {
	f := reflect.ValueOf(c).Elem().Field(s.field)
	switch f.Interface().(type) {
	case time.Duration:
		d, err := time.ParseDuration(raw)
		if err != nil {
			return fmt.Errorf("%q is not a Go duration such as 5m or 300s", raw)
		}
		f.SetInt(int64(d))
	case int64:
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			def := reflect.ValueOf(Default()).Field(s.field).Int()
			return fmt.Errorf("%q is not a whole number such as %d", raw, def)
		}
		f.SetInt(n)
	case bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return fmt.Errorf("%q is not true or false", raw)
		}
		f.SetBool(b)
	default:
		f.SetString(raw)
	}
	return nil
}

// problem is one thing wrong with a setting.
type problem struct {
	key string // yaml key of the setting
	msg string // what is wrong and what to do
	// needs, for a check across settings, lists the other settings it
	// compares key with. The problem is left out when one of them has a
	// problem of its own: a value that already failed would only make
	// the cross-check blame a setting that is fine.
	needs []string
}

// withoutCascades returns ps without the cross-check problems whose needs
// include a setting that failed or has a problem of its own.
func withoutCascades(ps []problem, failed map[string]bool) []problem {
	bad := make(map[string]bool, len(failed)+len(ps))
	for k := range failed {
		bad[k] = true
	}
	for _, p := range ps {
		if len(p.needs) == 0 {
			bad[p.key] = true
		}
	}
	out := ps[:0:0]
	for _, p := range ps {
		if !slices.ContainsFunc(p.needs, func(k string) bool { return bad[k] }) {
			out = append(out, p)
		}
	}
	return out
}

// line formats p as one line naming the setting; where, when not empty, says
// where the value came from.
func (p problem) line(where string) error {
	s := byKey[p.key]
	if where != "" {
		return fmt.Errorf("%s (%s): %s (%s)", s.env, s.key, p.msg, where)
	}
	return fmt.Errorf("%s (%s): %s", s.env, s.key, p.msg)
}

// Validate reports every problem of c, one line each naming the setting as
// "ISSUER_X (x)" and saying what to fix, joined with errors.Join; it returns nil
// when c is valid. Messages never contain AdminToken, Secret or a Redis password.
func (c Config) Validate() error {
	var errs []error
	for _, p := range withoutCascades(c.problems(), nil) {
		errs = append(errs, p.line(""))
	}
	return errors.Join(errs...)
}

func (c Config) problems() []problem {
	var ps []problem
	add := func(key, format string, args ...any) {
		ps = append(ps, problem{key: key, msg: fmt.Sprintf(format, args...)})
	}
	cross := func(needs []string, key, format string, args ...any) {
		ps = append(ps, problem{key: key, msg: fmt.Sprintf(format, args...), needs: needs})
	}

	if msg := checkIssuerURL(c.URL); msg != "" {
		add("url", "%s", msg)
	}
	if msg := checkAddr(c.Addr); msg != "" {
		add("addr", "%s", msg)
	}
	ps = append(ps, c.adminListenerProblems()...)
	if n := utf8.RuneCountInString(c.AdminToken); n > 0 && n < minSecretLen {
		add("admin_token", "is %d characters long; use at least %d random characters "+
			"(for example from openssl rand -base64 32), or leave it empty to turn the admin API off",
			n, minSecretLen)
	}
	if utf8.RuneCountInString(c.AdminToken) >= minSecretLen && weak(c.AdminToken) {
		add("admin_token", "looks guessable (too few different characters); use random characters "+
			"(for example from openssl rand -base64 32)")
	}
	sentinel := c.RedisSentinelMaster != ""
	for _, msg := range checkRedisURL(c.RedisURL, sentinel) {
		add("redis_url", "%s", msg)
	}
	switch {
	case sentinel && !printableWord(c.RedisSentinelMaster):
		add("redis_sentinel_master", "%q contains a space or a control character; use the master name of "+
			"the Sentinels' \"sentinel monitor\" line, such as mymaster", c.RedisSentinelMaster)
	case sentinel && c.RedisURL == "":
		cross([]string{"redis_url"}, "redis_sentinel_master", "is set but ISSUER_REDIS_URL (redis_url) is empty; set redis_url to "+
			"the Sentinel URLs, such as redis://sentinel-1:26379,redis://sentinel-2:26379,redis://sentinel-3:26379, "+
			"or leave redis_sentinel_master empty")
	}
	switch {
	case c.RedisWaitReplicas < 0 || c.RedisWaitReplicas > maxRedisWaitReplicas:
		add("redis_wait_replicas", "%d is out of range; use 0 (do not wait) to %d", c.RedisWaitReplicas, maxRedisWaitReplicas)
	case c.RedisWaitReplicas > 0 && c.RedisURL == "":
		add("redis_wait_replicas", "is %d but ISSUER_REDIS_URL (redis_url) is empty: the embedded store has no replicas; "+
			"set redis_url or leave redis_wait_replicas at 0", c.RedisWaitReplicas)
	}
	if c.RedisWaitTimeout < minRedisWaitTimeout || c.RedisWaitTimeout > maxRedisWaitTimeout {
		add("redis_wait_timeout", "%s is out of range; use %s to %s, such as 1s",
			formatDuration(c.RedisWaitTimeout), formatDuration(minRedisWaitTimeout), formatDuration(maxRedisWaitTimeout))
	}
	if c.DataDir == "" {
		add("data_dir", "is empty; set the directory of the embedded store, such as ./data")
	}
	if !slices.Contains(signingAlgs, c.SigningAlg) {
		add("signing_alg", "%q is not supported; use one of %s", c.SigningAlg, strings.Join(signingAlgs, ", "))
	}
	ps = append(ps, c.keyProblems()...)
	accessOK := c.AccessTokenTTL >= minAccessTokenTTL && c.AccessTokenTTL <= maxAccessTokenTTL
	if !accessOK {
		add("access_token_ttl", "%s is out of range; use %s to %s",
			formatDuration(c.AccessTokenTTL), formatDuration(minAccessTokenTTL), formatDuration(maxAccessTokenTTL))
	}
	switch {
	case c.RefreshTokenTTL > maxRefreshTokenTTL:
		add("refresh_token_ttl", "%s is too long; use at most %s (one year)",
			formatDuration(c.RefreshTokenTTL), formatDuration(maxRefreshTokenTTL))
	case c.RefreshTokenTTL <= c.AccessTokenTTL && c.RefreshTokenTTL > 0:
		cross([]string{"access_token_ttl"}, "refresh_token_ttl", "%s must be longer than ISSUER_ACCESS_TOKEN_TTL (access_token_ttl), which is %s",
			formatDuration(c.RefreshTokenTTL), formatDuration(c.AccessTokenTTL))
	case c.RefreshTokenTTL <= 0:
		add("refresh_token_ttl", "%s must be more than 0, such as 24h", formatDuration(c.RefreshTokenTTL))
	}
	switch m := c.RefreshTokenMaxLifetime; {
	case m < 0:
		add("refresh_token_max_lifetime", "%s is negative; use 0 (no end) or a duration such as 720h", formatDuration(m))
	case m > MaxRefreshTokenMaxLifetime:
		add("refresh_token_max_lifetime", "%s is too long; use at most %s (ten years), or 0 for no end",
			formatDuration(m), formatDuration(MaxRefreshTokenMaxLifetime))
	case m > 0 && accessOK && m <= c.AccessTokenTTL:
		add("refresh_token_max_lifetime", "%s must be longer than ISSUER_ACCESS_TOKEN_TTL (access_token_ttl), which is %s, or 0 for no end",
			formatDuration(m), formatDuration(c.AccessTokenTTL))
	}
	switch n := utf8.RuneCountInString(c.Secret); {
	case n > 0 && n < minSecretLen:
		add("secret", "is %d characters long; use at least %d random characters "+
			"(for example from openssl rand -base64 32)", n, minSecretLen)
	case n > 0 && weak(c.Secret):
		add("secret", "looks guessable (too few different characters); use random characters "+
			"(for example from openssl rand -base64 32)")
	case n == 0 && c.RedisURL != "":
		add("secret", "is required when ISSUER_REDIS_URL (redis_url) is set: every instance must "+
			"encrypt the signing keys with the same secret; set at least %d random characters "+
			"(for example from openssl rand -base64 32)", minSecretLen)
	}
	if c.MaxBodyBytes < minMaxBodyBytes || c.MaxBodyBytes > maxMaxBodyBytes {
		add("max_body_bytes", "%d is out of range; use %d to %d (10 MiB)",
			c.MaxBodyBytes, minMaxBodyBytes, maxMaxBodyBytes)
	}
	for _, t := range []struct {
		key   string
		d, eg time.Duration
	}{
		{"read_header_timeout", c.ReadHeaderTimeout, 5 * time.Second},
		{"read_timeout", c.ReadTimeout, 10 * time.Second},
		{"write_timeout", c.WriteTimeout, 10 * time.Second},
		{"idle_timeout", c.IdleTimeout, 60 * time.Second},
		{"shutdown_timeout", c.ShutdownTimeout, 15 * time.Second},
	} {
		if t.d <= 0 {
			add(t.key, "%s must be more than 0, such as %s", formatDuration(t.d), formatDuration(t.eg))
		}
	}
	ps = append(ps, c.serverProblems()...)
	ps = append(ps, c.userProblems()...)
	ps = append(ps, c.dpopProblems()...)
	ps = append(ps, c.clientAuthProblems()...)
	ps = append(ps, c.statusListProblems()...)
	if !slices.Contains(logLevels, c.LogLevel) {
		add("log_level", "%q is not a log level; use one of %s", c.LogLevel, strings.Join(logLevels, ", "))
	}
	return ps
}

// keyProblems checks the signing-key settings.
func (c Config) keyProblems() []problem {
	var ps []problem
	add := func(key, format string, args ...any) {
		ps = append(ps, problem{key: key, msg: fmt.Sprintf(format, args...)})
	}
	cross := func(needs []string, key, format string, args ...any) {
		ps = append(ps, problem{key: key, msg: fmt.Sprintf(format, args...), needs: needs})
	}
	switch c.RSAKeyBits {
	case 2048, 3072, 4096:
	default:
		add("rsa_key_bits", "%d is not supported; use 2048, 3072 or 4096", c.RSAKeyBits)
	}
	maxAgeOK := c.JWKSMaxAge >= minJWKSMaxAge && c.JWKSMaxAge <= maxJWKSMaxAge
	if !maxAgeOK {
		add("jwks_max_age", "%s is out of range; use %s to %s, such as 5m",
			formatDuration(c.JWKSMaxAge), formatDuration(minJWKSMaxAge), formatDuration(maxJWKSMaxAge))
	}
	minPeriod := 4*c.JWKSMaxAge + c.AccessTokenTTL
	switch {
	case c.KeyRotationPeriod < 0:
		add("key_rotation_period", "%s must be 0 (no scheduled rotation) or more, such as 720h", formatDuration(c.KeyRotationPeriod))
	case c.KeyRotationPeriod > 0 && c.KeyRotationPeriod <= minPeriod:
		cross([]string{"jwks_max_age", "access_token_ttl"}, "key_rotation_period", "%s is too short: each key is published 2 × ISSUER_JWKS_MAX_AGE (jwks_max_age) before it signs "+
			"and stays until its tokens expire, so the period must be longer than 4 × jwks_max_age + access_token_ttl = %s; "+
			"use 0 (no scheduled rotation) or a longer period such as 720h", formatDuration(c.KeyRotationPeriod), formatDuration(minPeriod))
	}
	return ps
}

// weak reports whether a long secret is still guessable: repeated or
// patterned text such as "aaaa…" or "changemechangeme…" has few different
// characters, where 32 random base64 characters have about 25.
func weak(secret string) bool {
	seen := map[rune]bool{}
	for _, r := range secret {
		seen[r] = true
	}
	return len(seen) < 12
}

// checkIssuerURL returns what is wrong with the issuer URL raw, or "".
func checkIssuerURL(raw string) string {
	const eg = "such as https://auth.example.com"
	if raw == "" {
		return "is empty; set the public base URL of the issuer, " + eg
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Sprintf("is not a valid URL; set the public base URL of the issuer, %s", eg)
	}
	shown := strconv.Quote(redactURL(u))
	switch {
	case u.Scheme != "http" && u.Scheme != "https" || u.Opaque != "":
		return fmt.Sprintf("%s is not an absolute http or https URL; use one %s", shown, eg)
	case u.Hostname() == "":
		return fmt.Sprintf("%s has no host; use a URL %s", shown, eg)
	case u.User != nil:
		return fmt.Sprintf("%s contains user info (user@); remove it", shown)
	case u.RawQuery != "" || u.ForceQuery:
		return fmt.Sprintf("%s has a query (?...); remove it", shown)
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return fmt.Sprintf("%s has a fragment (#...); remove it", shown)
	}
	if p := u.Port(); p != "" {
		if _, err := strconv.ParseUint(p, 10, 16); err != nil {
			return fmt.Sprintf("%s has port %q; use a number from 1 to 65535", shown, p)
		}
	}
	return ""
}

// checkAddr returns what is wrong with the listen address addr, or "".
func checkAddr(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Sprintf("%q is not a listen address host:port such as :8080 or 127.0.0.1:8080", addr)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Sprintf("%q has port %q; use a number from 0 to 65535, such as :8080", addr, port)
	}
	return ""
}

// printableWord reports whether s is made of printable characters other
// than spaces.
func printableWord(s string) bool {
	for _, r := range s {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return false
		}
	}
	return true
}

// checkRedisURL returns what is wrong with each element of the
// comma-separated list of Redis URLs raw, which are the URLs of Sentinels
// when sentinel is true. A message never shows a password.
func checkRedisURL(raw string, sentinel bool) []string {
	if raw == "" {
		return nil
	}
	list := "the seed-node URLs of a cluster"
	if sentinel {
		list = "the Sentinel URLs"
	}
	elems := strings.Split(raw, ",")
	var msgs []string
	for i, e := range elems {
		name := "the URL"
		if len(elems) > 1 {
			name = fmt.Sprintf("URL %d of %d", i+1, len(elems))
		}
		e = strings.TrimSpace(e)
		if e == "" {
			msgs = append(msgs, fmt.Sprintf("%s is empty; separate %s with single commas", name, list))
			continue
		}
		u, ok := parseRedisURL(e)
		if !ok {
			// The parse error may quote part of the password: do not show it.
			msgs = append(msgs, fmt.Sprintf("%s is not a valid URL; use redis://[:password@]host:port[/db] "+
				"or rediss:// for TLS, and percent-encode special characters in the password", name))
			continue
		}
		shown := strconv.Quote(redactRedis(u))
		eg := "redis://host:6379"
		if sentinel {
			eg = "redis://sentinel-host:26379"
		}
		switch {
		case u.Scheme != "redis" && u.Scheme != "rediss" || u.Opaque != "":
			msgs = append(msgs, fmt.Sprintf("%s %s is not a redis:// or rediss:// URL; use %s or rediss:// for TLS", name, shown, eg))
		case u.Hostname() == "":
			msgs = append(msgs, fmt.Sprintf("%s %s has no host; use %s", name, shown, eg))
		}
	}
	return msgs
}

// parseRedisURL parses one Redis URL. It reports false when raw does not parse
// or has an @ after the host: a password with an unencoded / ? or # in it, part
// of which would show in the path, query or fragment.
func parseRedisURL(raw string) (*url.URL, bool) {
	u, err := url.Parse(raw)
	if err != nil || strings.Contains(u.Opaque+u.Path+u.RawQuery+u.Fragment, "@") {
		return nil, false
	}
	return u, true
}

// formatDuration formats d without zero trailing units: 24h, not 24h0m0s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// redacted stands in for secrets in String, GoString, LogValue and errors.
const redacted = "REDACTED"

// plainOption reports whether the value of the URL query option key is not
// secret: go-redis's timeouts, sizes, switches and names. The values of all
// other options (password and sentinel_password of a Sentinel URL, a
// misspelling of them) are redacted.
func plainOption(key string) bool {
	switch key {
	case "db", "addr", "protocol", "client_name", "master_name", "username", "sentinel_username",
		"skip_verify", "read_only", "replica_only", "route_by_latency", "route_randomly",
		"pool_fifo", "context_timeout_enabled", "use_disconnected_replicas", "unstable_resp3":
		return true
	}
	for _, suffix := range []string{"_timeout", "_tolerance", "_retries", "_backoff", "_size", "_conns",
		"_dials", "_lifetime", "_jitter", "_idle_time", "_age", "_redirects", "_seconds"} {
		if strings.HasSuffix(key, suffix) {
			return true
		}
	}
	return false
}

// redactURL returns u as a string with its password, if any, replaced by
// REDACTED.
func redactURL(u *url.URL) string {
	if u.User == nil {
		return u.String()
	}
	if _, ok := u.User.Password(); !ok {
		return u.String()
	}
	v := *u
	v.User = url.UserPassword(u.User.Username(), redacted)
	return v.String()
}

// redactRedis returns the Redis URL u as a string with its password, if any,
// and the values of query options that may be secret (see plainOption)
// replaced by REDACTED.
func redactRedis(u *url.URL) string {
	if u.RawQuery == "" {
		return redactURL(u)
	}
	v := *u
	// Pairs that do not parse are left out.
	q, _ := url.ParseQuery(u.RawQuery)
	for k := range q {
		if !plainOption(k) {
			q.Set(k, redacted)
		}
	}
	v.RawQuery = q.Encode()
	return redactURL(&v)
}

// redactRedisURL replaces the password in each URL of the list raw by
// REDACTED; an element that does not parse is replaced as a whole.
func redactRedisURL(raw string) string {
	if raw == "" {
		return ""
	}
	elems := strings.Split(raw, ",")
	for i, e := range elems {
		u, ok := parseRedisURL(strings.TrimSpace(e))
		if !ok {
			elems[i] = redacted
			continue
		}
		elems[i] = redactRedis(u)
	}
	return strings.Join(elems, ",")
}

// redactedCopy returns c with its secrets replaced by REDACTED. Empty secrets
// stay empty, so that a log shows which features are off.
func (c Config) redactedCopy() Config {
	if c.AdminToken != "" {
		c.AdminToken = redacted
	}
	if c.Secret != "" {
		c.Secret = redacted
	}
	c.RedisURL = redactRedisURL(c.RedisURL)
	return c
}

// LogValue implements slog.LogValuer: a group of every setting under its yaml
// key, durations written as in config.yaml (5m), with AdminToken, Secret and
// any password in RedisURL shown as REDACTED. Empty secrets stay empty, so the
// log shows which features are off.
func (c Config) LogValue() slog.Value {
	r := reflect.ValueOf(c.redactedCopy())
	attrs := make([]slog.Attr, len(settings))
	for i, s := range settings {
		switch v := r.Field(s.field).Interface().(type) {
		case time.Duration:
			attrs[i] = slog.String(s.key, formatDuration(v)) // as in config.yaml, not nanoseconds
		case int64:
			attrs[i] = slog.Int64(s.key, v)
		case bool:
			attrs[i] = slog.Bool(s.key, v)
		case string:
			attrs[i] = slog.String(s.key, v)
		}
	}
	return slog.GroupValue(attrs...)
}

// String returns every setting as key=value pairs separated by spaces, with
// AdminToken, Secret and any password in RedisURL shown as REDACTED.
func (c Config) String() string {
	r := reflect.ValueOf(c.redactedCopy())
	var b strings.Builder
	for i, s := range settings {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s.key)
		b.WriteByte('=')
		switch v := r.Field(s.field).Interface().(type) {
		case time.Duration:
			b.WriteString(formatDuration(v))
		case int64:
			b.WriteString(strconv.FormatInt(v, 10))
		case bool:
			b.WriteString(strconv.FormatBool(v))
		case string:
			b.WriteString(strconv.Quote(v))
		}
	}
	return b.String()
}

// GoString implements fmt.GoStringer so that %#v, too, shows the secrets as
// REDACTED.
func (c Config) GoString() string {
	type plain Config // without methods, so %#v prints the fields
	s := fmt.Sprintf("%#v", plain(c.redactedCopy()))
	return "config.Config" + strings.TrimPrefix(s, "config.plain")
}
