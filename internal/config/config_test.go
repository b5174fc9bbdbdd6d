package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// env returns a getenv reading from m.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// writeFile writes content to a config file in a temporary directory.
func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// lines splits a joined error into its lines.
func lines(err error) []string {
	if err == nil {
		return nil
	}
	return strings.Split(err.Error(), "\n")
}

const (
	token  = "admin-token-0123456789abcdefghijklmnopqrstuvwxyz"
	secret = "key-secret-0123456789abcdefghijklmnopqrstuvwxyz"
	redisP = "redis-pass-s3cr3t"
)

func TestDefault(t *testing.T) {
	want := Config{
		URL:               "http://localhost:8080",
		Addr:              ":8080",
		DataDir:           "./data",
		SigningAlg:        "ES256",
		RSAKeyBits:        2048,
		KeyRotationPeriod: 720 * time.Hour,
		JWKSMaxAge:        5 * time.Minute,
		AccessTokenTTL:    5 * time.Minute,
		RefreshTokenTTL:   24 * time.Hour,
		MaxBodyBytes:      65536,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       60 * time.Second,
		ShutdownTimeout:   15 * time.Second,
		LogLevel:          "info",
		RedisWaitTimeout:  time.Second,

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
	if got := Default(); got != want {
		t.Errorf("Default() = %v, want %v", got, want)
	}
	if err := Default().Validate(); err != nil {
		t.Errorf("Default().Validate() = %v, want nil", err)
	}
	for name, getenv := range map[string]func(string) string{
		"nil getenv":   nil,
		"empty getenv": env(nil),
		"empty values": env(map[string]string{"ISSUER_URL": "", "ISSUER_ADDR": "", "PORT": "", "ISSUER_ACCESS_TOKEN_TTL": ""}),
	} {
		got, err := Load("", getenv)
		if err != nil || got != want {
			t.Errorf("%s: Load(\"\") = %v, %v; want %v, nil", name, got, err, want)
		}
	}
}

// TestSettings checks the struct tags every other part relies on.
func TestSettings(t *testing.T) {
	typ := reflect.TypeFor[Config]()
	seen := map[string]bool{}
	for i := range typ.NumField() {
		f := typ.Field(i)
		key, envName := f.Tag.Get("yaml"), f.Tag.Get("env")
		if key == "" || seen[key] {
			t.Errorf("field %s: yaml tag %q is empty or repeated", f.Name, key)
		}
		seen[key] = true
		if want := "ISSUER_" + strings.ToUpper(key); envName != want {
			t.Errorf("field %s: env tag %q, want %q", f.Name, envName, want)
		}
		switch f.Type {
		case reflect.TypeFor[string](), reflect.TypeFor[int64](), reflect.TypeFor[time.Duration](), reflect.TypeFor[bool]():
		default:
			t.Errorf("field %s: type %s is not handled by setting.set, LogValue and String", f.Name, f.Type)
		}
	}
}

func TestLoadFile(t *testing.T) {
	path := writeFile(t, `
url: https://auth.example.com/
addr: 127.0.0.1:9000
admin_token: `+token+`
redis_url: "redis://:`+redisP+`@r1:6379, rediss://r2:6380"
redis_sentinel_master: mymaster
data_dir: /var/lib/issuer
signing_alg: EdDSA
rsa_key_bits: 4096
key_rotation_period: 240h
jwks_max_age: 10m
keys_dir: /etc/issuer/keys
access_token_ttl: 10m
refresh_token_ttl: 720h
secret: `+secret+`
max_body_bytes: 1048576
read_header_timeout: 2s
read_timeout: 3s
write_timeout: 4s
idle_timeout: 2m
shutdown_timeout: 30s
shutdown_drain_delay: 0s
trusted_proxies: 10.0.0.0/8, fd00::/8
auth_failure_window: 10m
auth_failures_per_address: 5
auth_failures_per_client: 0
token_quota_per_minute: 120
log_level: debug
`)
	want := Config{
		URL:                 "https://auth.example.com",
		Addr:                "127.0.0.1:9000",
		AdminToken:          token,
		RedisURL:            "redis://:" + redisP + "@r1:6379,rediss://r2:6380",
		RedisSentinelMaster: "mymaster",
		RedisWaitTimeout:    time.Second,
		DataDir:             "/var/lib/issuer",
		SigningAlg:          "EdDSA",
		RSAKeyBits:          4096,
		KeyRotationPeriod:   240 * time.Hour,
		JWKSMaxAge:          10 * time.Minute,
		KeysDir:             "/etc/issuer/keys",
		AccessTokenTTL:      10 * time.Minute,
		RefreshTokenTTL:     720 * time.Hour,
		Secret:              secret,
		MaxBodyBytes:        1 << 20,
		ReadHeaderTimeout:   2 * time.Second,
		ReadTimeout:         3 * time.Second,
		WriteTimeout:        4 * time.Second,
		IdleTimeout:         2 * time.Minute,
		ShutdownTimeout:     30 * time.Second,
		LogLevel:            "debug",

		TrustedProxies:         "10.0.0.0/8, fd00::/8",
		AuthFailureWindow:      10 * time.Minute,
		AuthFailuresPerAddress: 5,
		TokenQuotaPerMinute:    120,

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
	got, err := Load(path, nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got != want {
		t.Errorf("Load = %#v\nwant %#v", got, want)
	}
}

func TestLoadFileEdgeCases(t *testing.T) {
	def := Default()
	with := func(change func(*Config)) Config {
		c := def
		change(&c)
		return c
	}
	tests := []struct {
		name, content string
		want          Config
	}{
		{"empty file", "", def},
		{"only comments", "# nothing here\n", def},
		{"key without value keeps default", "url:\naccess_token_ttl:\n", def},
		{"quoted duration", `access_token_ttl: "1m"`, with(func(c *Config) { c.AccessTokenTTL = time.Minute })},
		{"alias", "read_timeout: &t 1m\naccess_token_ttl: *t\n", with(func(c *Config) {
			c.ReadTimeout, c.AccessTokenTTL = time.Minute, time.Minute
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Load(writeFile(t, tt.content), nil)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if got != tt.want {
				t.Errorf("Load = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestEnvOverridesFile(t *testing.T) {
	path := writeFile(t, "url: https://file.example.com\nlog_level: warn\naccess_token_ttl: 10m\nmax_body_bytes: 2048\ndata_dir: /file\n")
	got, err := Load(path, env(map[string]string{
		"ISSUER_URL":              "https://env.example.com//",
		"ISSUER_ACCESS_TOKEN_TTL": "90s",
		"ISSUER_MAX_BODY_BYTES":   "4096",
		"ISSUER_DATA_DIR":         "", // empty counts as unset: the file wins
		"ISSUER_ADMIN_TOKEN":      token,
		"ISSUER_REDIS_URL":        "redis://r:6379",
		"ISSUER_SECRET":           secret,
		"ISSUER_SIGNING_ALG":      "PS256",
		"ISSUER_SHUTDOWN_TIMEOUT": "1m",
	}))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := Default()
	want.URL = "https://env.example.com"
	want.LogLevel = "warn"
	want.AccessTokenTTL = 90 * time.Second
	want.MaxBodyBytes = 4096
	want.DataDir = "/file"
	want.AdminToken = token
	want.RedisURL = "redis://r:6379"
	want.Secret = secret
	want.SigningAlg = "PS256"
	want.ShutdownTimeout = time.Minute
	if got != want {
		t.Errorf("Load = %v\nwant %v", got, want)
	}
}

// TestEveryEnvVar sets each variable alone and checks it reaches its field.
func TestEveryEnvVar(t *testing.T) {
	values := map[string]string{
		"url": "https://x.example.com", "addr": ":1", "admin_token": token,
		"admin_addr": "127.0.0.1:9090", "admin_url": "http://admin.internal:9090",
		"trusted_proxy_hops": "1", "admin_failures_per_address": "3",
		"redis_url": "redis://r:6379", "redis_sentinel_master": "mymaster",
		"data_dir": "/d", "signing_alg": "RS256",
		"rsa_key_bits": "3072", "key_rotation_period": "0s", "jwks_max_age": "1m", "keys_dir": "/keys",
		"access_token_ttl": "2m", "refresh_token_ttl": "48h", "refresh_token_max_lifetime": "720h", "secret": secret,
		"max_body_bytes": "2048", "read_header_timeout": "1s", "read_timeout": "2s",
		"write_timeout": "3s", "idle_timeout": "4s", "shutdown_timeout": "5s",
		"log_level":            "error",
		"shutdown_drain_delay": "0s", "trusted_proxies": "10.0.0.0/8,192.0.2.1", "auth_failure_window": "5m",
		"auth_failures_per_address": "0", "auth_failures_per_client": "7", "token_quota_per_minute": "600",
		"password_grant": "true", "password_hash_memory_kib": "65536", "password_hash_iterations": "3",
		"password_hash_parallelism": "2", "password_hash_concurrency": "8", "password_failure_window": "1h",
		"password_failures_per_user": "5", "password_failures_per_address": "0",
		"simplejwt_compat": "false", "simplejwt_path": "/auth/jwt/", "simplejwt_client_id": "c1",
		"simplejwt_claims": "true", "simplejwt_user_id_claim": "uid",
		"redis_wait_replicas": "1", "redis_wait_timeout": "250ms",
		"dpop_nonce": "true", "dpop_proof_max_age": "30s",
		"client_assertion_legacy_audience": "true", "client_assertion_max_lifetime": "1m",
		"allow_insecure_jwks_uri": "true", "jwks_uri_allowed_hosts": "keys.example.com,10.0.0.7",
		"trusted_issuers":                  `[{"name":"gh","issuer":"https://token.actions.githubusercontent.com","audience":"https://x.example.com"}]`,
		"federated_assertion_max_lifetime": "1h",
		"status_list":                      "true", "status_list_ttl": "10s",
	}
	for _, s := range settings {
		t.Run(s.env, func(t *testing.T) {
			raw, ok := values[s.key]
			if !ok {
				t.Fatalf("no test value for %s", s.key)
			}
			m := map[string]string{s.env: raw}
			needsRedis := s.key == "redis_url" || s.key == "redis_sentinel_master" || s.key == "redis_wait_replicas"
			if needsRedis {
				m["ISSUER_REDIS_URL"] = values["redis_url"]
				m["ISSUER_SECRET"] = secret
			}
			needsAdminAddr := s.key == "admin_url"
			if needsAdminAddr {
				m["ISSUER_ADMIN_ADDR"] = values["admin_addr"]
			}
			got, err := Load("", env(m))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			want := Default()
			if err := s.set(&want, raw); err != nil {
				t.Fatal(err)
			}
			if needsRedis {
				want.RedisURL = values["redis_url"]
				want.Secret = secret
			}
			if needsAdminAddr {
				want.AdminAddr = values["admin_addr"]
			}
			if s.key == "addr" {
				want.URL = "http://localhost" + raw // derived (TestURLFollowsAddr)
			}
			if got != want {
				t.Errorf("Load = %v, want %v", got, want)
			}
		})
	}
}

func TestPortFallback(t *testing.T) {
	tests := []struct {
		name, file string
		env        map[string]string
		want       string
	}{
		{"default", "", nil, ":8080"},
		{"PORT", "", map[string]string{"PORT": "5000"}, ":5000"},
		{"ISSUER_ADDR wins over PORT", "", map[string]string{"PORT": "5000", "ISSUER_ADDR": "127.0.0.1:7000"}, "127.0.0.1:7000"},
		{"file addr wins over PORT", "addr: :6000\n", map[string]string{"PORT": "5000"}, ":6000"},
		{"ISSUER_ADDR wins over file and PORT", "addr: :6000\n", map[string]string{"PORT": "5000", "ISSUER_ADDR": ":7000"}, ":7000"},
		{"empty PORT ignored", "", map[string]string{"PORT": ""}, ":8080"},
		{"empty file addr lets PORT through", "addr:\n", map[string]string{"PORT": "5000"}, ":5000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := ""
			if tt.file != "" {
				path = writeFile(t, tt.file)
			}
			got, err := Load(path, env(tt.env))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if got.Addr != tt.want {
				t.Errorf("Addr = %q, want %q", got.Addr, tt.want)
			}
		})
	}

	_, err := Load("", env(map[string]string{"PORT": "web"}))
	want := `ISSUER_ADDR (addr): ":web" has port "web"; use a number from 0 to 65535, such as :8080 (from PORT)`
	if got := fmt.Sprint(err); got != want {
		t.Errorf("bad PORT: error %q, want %q", got, want)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Config)
		want   string // the whole error; "" for valid
	}{
		// url
		{"url https with path", func(c *Config) { c.URL = "https://auth.example.com/tenant" }, ""},
		{"url with port", func(c *Config) { c.URL = "http://127.0.0.1:8080" }, ""},
		{"url empty", func(c *Config) { c.URL = "" }, `ISSUER_URL (url): is empty; set the public base URL of the issuer, such as https://auth.example.com`},
		{"url relative", func(c *Config) { c.URL = "auth.example.com" }, `ISSUER_URL (url): "auth.example.com" is not an absolute http or https URL; use one such as https://auth.example.com`},
		{"url scheme", func(c *Config) { c.URL = "ftp://auth.example.com" }, `ISSUER_URL (url): "ftp://auth.example.com" is not an absolute http or https URL; use one such as https://auth.example.com`},
		{"url no host", func(c *Config) { c.URL = "https:///x" }, `ISSUER_URL (url): "https:///x" has no host; use a URL such as https://auth.example.com`},
		{"url query", func(c *Config) { c.URL = "https://a.example.com?x=1" }, `ISSUER_URL (url): "https://a.example.com?x=1" has a query (?...); remove it`},
		{"url fragment", func(c *Config) { c.URL = "https://a.example.com#x" }, `ISSUER_URL (url): "https://a.example.com#x" has a fragment (#...); remove it`},
		{"url userinfo", func(c *Config) { c.URL = "https://u:" + redisP + "@a.example.com" }, `ISSUER_URL (url): "https://u:REDACTED@a.example.com" contains user info (user@); remove it`},
		{"url unparsable", func(c *Config) { c.URL = "https://a b.example.com" }, `ISSUER_URL (url): is not a valid URL; set the public base URL of the issuer, such as https://auth.example.com`},
		{"url bad port", func(c *Config) { c.URL = "https://a.example.com:99999" }, `ISSUER_URL (url): "https://a.example.com:99999" has port "99999"; use a number from 1 to 65535`},
		// admin_addr, admin_url
		{"admin addr", func(c *Config) { c.AdminAddr = "127.0.0.1:9090" }, ""},
		{"admin addr same host other port", func(c *Config) { c.Addr, c.AdminAddr = "127.0.0.1:8080", "127.0.0.1:9090" }, ""},
		{"admin addr other host same port", func(c *Config) { c.Addr, c.AdminAddr = "192.0.2.1:8080", "127.0.0.1:8080" }, ""},
		{"admin addr and url", func(c *Config) { c.AdminAddr, c.AdminURL = ":9090", "http://issuer-admin.issuer.svc:9090" }, ""},
		{"admin addr port 0", func(c *Config) { c.Addr, c.AdminAddr = ":0", ":0" }, ""},
		{"admin addr bad", func(c *Config) { c.AdminAddr = "9090" }, `ISSUER_ADMIN_ADDR (admin_addr): "9090" is not a listen address host:port such as :9090 or 127.0.0.1:9090`},
		{"admin addr bad port", func(c *Config) { c.AdminAddr = ":admin" }, `ISSUER_ADMIN_ADDR (admin_addr): ":admin" has port "admin"; use a number from 0 to 65535, such as :9090`},
		{"admin addr is addr", func(c *Config) { c.AdminAddr = "127.0.0.1:8080" }, `ISSUER_ADMIN_ADDR (admin_addr): "127.0.0.1:8080" is the listen address of ISSUER_ADDR (addr) too; give the admin listener its own port, such as 127.0.0.1:9090, or leave admin_addr empty to serve the admin API on addr`},
		{"admin url without addr", func(c *Config) { c.AdminURL = "http://admin.internal:9090" }, `ISSUER_ADMIN_URL (admin_url): is set but ISSUER_ADMIN_ADDR (admin_addr) is empty: the admin API is then served at ISSUER_URL (url); set admin_addr to give it a listener of its own, or leave admin_url empty`},
		{"admin url relative", func(c *Config) { c.AdminAddr, c.AdminURL = ":9090", "admin:9090" }, `ISSUER_ADMIN_URL (admin_url): "admin:9090" is not an absolute http or https URL; use one such as http://issuer-admin.internal:9090`},
		{"admin url query", func(c *Config) { c.AdminAddr, c.AdminURL = ":9090", "http://a:9090?x" }, `ISSUER_ADMIN_URL (admin_url): "http://a:9090?x" has a query (?...); remove it`},
		// trusted_proxy_hops
		{"proxy hops", func(c *Config) { c.TrustedProxyHops = 1 }, ""},
		{"proxy hops negative", func(c *Config) { c.TrustedProxyHops = -1 }, `ISSUER_TRUSTED_PROXY_HOPS (trusted_proxy_hops): -1 is out of range; use 0 (off) to 10, such as 1 behind Heroku's router`},
		{"proxy hops with proxies", func(c *Config) { c.TrustedProxyHops, c.TrustedProxies = 1, "10.0.0.0/8" }, `ISSUER_TRUSTED_PROXY_HOPS (trusted_proxy_hops): is 1 but ISSUER_TRUSTED_PROXIES (trusted_proxies) is set too; use trusted_proxies when you know your proxies' networks, trusted_proxy_hops only when every peer is a proxy of unknown address (Heroku), not both`},
		// admin_failures_per_address
		{"admin failures off", func(c *Config) { c.AdminFailuresPerAddress = 0 }, ""},
		{"admin failures negative", func(c *Config) { c.AdminFailuresPerAddress = -2 }, `ISSUER_ADMIN_FAILURES_PER_ADDRESS (admin_failures_per_address): -2 is out of range; use 0 (no limit) to 1000000`},
		// addr
		{"addr host", func(c *Config) { c.Addr = "0.0.0.0:80" }, ""},
		{"addr ipv6", func(c *Config) { c.Addr = "[::1]:80" }, ""},
		{"addr no port", func(c *Config) { c.Addr = "8080" }, `ISSUER_ADDR (addr): "8080" is not a listen address host:port such as :8080 or 127.0.0.1:8080`},
		{"addr named port", func(c *Config) { c.Addr = ":http" }, `ISSUER_ADDR (addr): ":http" has port "http"; use a number from 0 to 65535, such as :8080`},
		{"addr port range", func(c *Config) { c.Addr = ":70000" }, `ISSUER_ADDR (addr): ":70000" has port "70000"; use a number from 0 to 65535, such as :8080`},
		// admin_token
		{"admin token 32", func(c *Config) { c.AdminToken = "0123456789abcdefghijklmnopqrstuv" }, ""},
		{"admin token short", func(c *Config) { c.AdminToken = strings.Repeat("a", 31) }, `ISSUER_ADMIN_TOKEN (admin_token): is 31 characters long; use at least 32 random characters (for example from openssl rand -base64 32), or leave it empty to turn the admin API off`},
		// redis_url
		{"redis", func(c *Config) { c.RedisURL, c.Secret = "redis://:p@r:6379/0", secret }, ""},
		{"redis cluster", func(c *Config) { c.RedisURL, c.Secret = "rediss://a:1,rediss://b:2,redis://c", secret }, ""},
		{"redis scheme", func(c *Config) { c.RedisURL, c.Secret = "http://r:6379", secret }, `ISSUER_REDIS_URL (redis_url): the URL "http://r:6379" is not a redis:// or rediss:// URL; use redis://host:6379 or rediss:// for TLS`},
		{"redis bare host", func(c *Config) { c.RedisURL, c.Secret = "r:6379", secret }, `ISSUER_REDIS_URL (redis_url): the URL "r:6379" is not a redis:// or rediss:// URL; use redis://host:6379 or rediss:// for TLS`},
		{"redis no host", func(c *Config) { c.RedisURL, c.Secret = "redis://", secret }, `ISSUER_REDIS_URL (redis_url): the URL "redis:" has no host; use redis://host:6379`},
		{"redis cluster element", func(c *Config) { c.RedisURL, c.Secret = "redis://a:1,http://:"+redisP+"@b:2", secret }, `ISSUER_REDIS_URL (redis_url): URL 2 of 2 "http://:REDACTED@b:2" is not a redis:// or rediss:// URL; use redis://host:6379 or rediss:// for TLS`},
		{"redis empty element", func(c *Config) { c.RedisURL, c.Secret = "redis://a:1,", secret }, `ISSUER_REDIS_URL (redis_url): URL 2 of 2 is empty; separate the seed-node URLs of a cluster with single commas`},
		{"redis unparsable", func(c *Config) { c.RedisURL, c.Secret = "redis://:pa/"+redisP+"@r:6379", secret }, `ISSUER_REDIS_URL (redis_url): the URL is not a valid URL; use redis://[:password@]host:port[/db] or rediss:// for TLS, and percent-encode special characters in the password`},
		{"redis password with #", func(c *Config) { c.RedisURL, c.Secret = "redis://:12#"+redisP+"@r:6379", secret }, `ISSUER_REDIS_URL (redis_url): the URL is not a valid URL; use redis://[:password@]host:port[/db] or rediss:// for TLS, and percent-encode special characters in the password`},
		{"redis password with ?", func(c *Config) { c.RedisURL, c.Secret = "redis://:12?"+redisP+"@r:6379", secret }, `ISSUER_REDIS_URL (redis_url): the URL is not a valid URL; use redis://[:password@]host:port[/db] or rediss:// for TLS, and percent-encode special characters in the password`},
		{"redis user password with /", func(c *Config) { c.RedisURL, c.Secret = "redis://u:12/"+redisP+"@r:6379", secret }, `ISSUER_REDIS_URL (redis_url): the URL is not a valid URL; use redis://[:password@]host:port[/db] or rediss:// for TLS, and percent-encode special characters in the password`},
		{"redis encoded password", func(c *Config) { c.RedisURL, c.Secret = "redis://u:a%2Fb%40c@r:6379", secret }, ""},
		// redis_wait_replicas, redis_wait_timeout
		{"wait replicas", func(c *Config) { c.RedisURL, c.Secret, c.RedisWaitReplicas = "redis://r:6379", secret, 2 }, ""},
		{"wait replicas without redis_url", func(c *Config) { c.RedisWaitReplicas = 1 }, `ISSUER_REDIS_WAIT_REPLICAS (redis_wait_replicas): is 1 but ISSUER_REDIS_URL (redis_url) is empty: the embedded store has no replicas; set redis_url or leave redis_wait_replicas at 0`},
		{"wait replicas negative", func(c *Config) { c.RedisURL, c.Secret, c.RedisWaitReplicas = "redis://r:6379", secret, -1 }, `ISSUER_REDIS_WAIT_REPLICAS (redis_wait_replicas): -1 is out of range; use 0 (do not wait) to 100`},
		{"wait replicas too many", func(c *Config) { c.RedisURL, c.Secret, c.RedisWaitReplicas = "redis://r:6379", secret, 101 }, `ISSUER_REDIS_WAIT_REPLICAS (redis_wait_replicas): 101 is out of range; use 0 (do not wait) to 100`},
		{"wait timeout 0", func(c *Config) { c.RedisWaitTimeout = 0 }, `ISSUER_REDIS_WAIT_TIMEOUT (redis_wait_timeout): 0s is out of range; use 10ms to 10s, such as 1s`},
		{"wait timeout too long", func(c *Config) { c.RedisWaitTimeout = time.Minute }, `ISSUER_REDIS_WAIT_TIMEOUT (redis_wait_timeout): 1m is out of range; use 10ms to 10s, such as 1s`},
		// redis_sentinel_master
		{"sentinel", func(c *Config) {
			c.RedisURL, c.RedisSentinelMaster, c.Secret = "redis://:p@s1:26379,redis://s2,rediss://s3", "mymaster", secret
		}, ""},
		{"sentinel password option", func(c *Config) {
			c.RedisURL, c.RedisSentinelMaster, c.Secret = "redis://s1:26379?sentinel_password="+redisP, "m-1.x", secret
		}, ""},
		{"sentinel without redis_url", func(c *Config) { c.RedisSentinelMaster = "mymaster" }, `ISSUER_REDIS_SENTINEL_MASTER (redis_sentinel_master): is set but ISSUER_REDIS_URL (redis_url) is empty; set redis_url to the Sentinel URLs, such as redis://sentinel-1:26379,redis://sentinel-2:26379,redis://sentinel-3:26379, or leave redis_sentinel_master empty`},
		{"sentinel name with space", func(c *Config) { c.RedisURL, c.RedisSentinelMaster, c.Secret = "redis://s:26379", "my master", secret }, `ISSUER_REDIS_SENTINEL_MASTER (redis_sentinel_master): "my master" contains a space or a control character; use the master name of the Sentinels' "sentinel monitor" line, such as mymaster`},
		{"sentinel name only space", func(c *Config) { c.RedisURL, c.RedisSentinelMaster, c.Secret = "redis://s:26379", " ", secret }, `ISSUER_REDIS_SENTINEL_MASTER (redis_sentinel_master): " " contains a space or a control character; use the master name of the Sentinels' "sentinel monitor" line, such as mymaster`},
		{"sentinel name control", func(c *Config) { c.RedisURL, c.RedisSentinelMaster, c.Secret = "redis://s:26379", "m\n", secret }, `ISSUER_REDIS_SENTINEL_MASTER (redis_sentinel_master): "m\n" contains a space or a control character; use the master name of the Sentinels' "sentinel monitor" line, such as mymaster`},
		{"sentinel scheme", func(c *Config) {
			c.RedisURL, c.RedisSentinelMaster, c.Secret = "redis://s1:26379,sentinel://:"+redisP+"@s2:26379?sentinel_password="+redisP, "mymaster", secret
		}, `ISSUER_REDIS_URL (redis_url): URL 2 of 2 "sentinel://:REDACTED@s2:26379?sentinel_password=REDACTED" is not a redis:// or rediss:// URL; use redis://sentinel-host:26379 or rediss:// for TLS`},
		{"sentinel bare host", func(c *Config) { c.RedisURL, c.RedisSentinelMaster, c.Secret = "s1:26379", "mymaster", secret }, `ISSUER_REDIS_URL (redis_url): the URL "s1:26379" is not a redis:// or rediss:// URL; use redis://sentinel-host:26379 or rediss:// for TLS`},
		{"sentinel empty element", func(c *Config) {
			c.RedisURL, c.RedisSentinelMaster, c.Secret = "redis://s1:26379,,redis://s3:26379", "mymaster", secret
		}, `ISSUER_REDIS_URL (redis_url): URL 2 of 3 is empty; separate the Sentinel URLs with single commas`},
		{"sentinel bad name and no url", func(c *Config) { c.RedisSentinelMaster = "a b" }, `ISSUER_REDIS_SENTINEL_MASTER (redis_sentinel_master): "a b" contains a space or a control character; use the master name of the Sentinels' "sentinel monitor" line, such as mymaster`},
		// data_dir
		{"data dir empty", func(c *Config) { c.DataDir = "" }, `ISSUER_DATA_DIR (data_dir): is empty; set the directory of the embedded store, such as ./data`},
		// signing_alg
		{"alg HS256", func(c *Config) { c.SigningAlg = "HS256" }, ""},
		{"alg lower case", func(c *Config) { c.SigningAlg = "es256" }, `ISSUER_SIGNING_ALG (signing_alg): "es256" is not supported; use one of ES256, EdDSA, RS256, PS256, HS256`},
		{"alg none", func(c *Config) { c.SigningAlg = "none" }, `ISSUER_SIGNING_ALG (signing_alg): "none" is not supported; use one of ES256, EdDSA, RS256, PS256, HS256`},
		// rsa_key_bits, key_rotation_period, jwks_max_age, keys_dir
		{"rsa 3072", func(c *Config) { c.RSAKeyBits = 3072 }, ""},
		{"rsa 4096", func(c *Config) { c.RSAKeyBits = 4096 }, ""},
		{"rsa 1024", func(c *Config) { c.RSAKeyBits = 1024 }, `ISSUER_RSA_KEY_BITS (rsa_key_bits): 1024 is not supported; use 2048, 3072 or 4096`},
		{"rsa 8192", func(c *Config) { c.RSAKeyBits = 8192 }, `ISSUER_RSA_KEY_BITS (rsa_key_bits): 8192 is not supported; use 2048, 3072 or 4096`},
		{"rotation off", func(c *Config) { c.KeyRotationPeriod = 0 }, ""},
		{"rotation just long enough", func(c *Config) { c.KeyRotationPeriod = 25*time.Minute + time.Second }, ""},
		{"rotation too short", func(c *Config) { c.KeyRotationPeriod = 25 * time.Minute }, `ISSUER_KEY_ROTATION_PERIOD (key_rotation_period): 25m is too short: each key is published 2 × ISSUER_JWKS_MAX_AGE (jwks_max_age) before it signs and stays until its tokens expire, so the period must be longer than 4 × jwks_max_age + access_token_ttl = 25m; use 0 (no scheduled rotation) or a longer period such as 720h`},
		{"rotation too short for a long max-age", func(c *Config) { c.JWKSMaxAge = 12 * time.Hour; c.KeyRotationPeriod = 24 * time.Hour }, `ISSUER_KEY_ROTATION_PERIOD (key_rotation_period): 24h is too short: each key is published 2 × ISSUER_JWKS_MAX_AGE (jwks_max_age) before it signs and stays until its tokens expire, so the period must be longer than 4 × jwks_max_age + access_token_ttl = 48h5m; use 0 (no scheduled rotation) or a longer period such as 720h`},
		{"rotation negative", func(c *Config) { c.KeyRotationPeriod = -time.Hour }, `ISSUER_KEY_ROTATION_PERIOD (key_rotation_period): -1h must be 0 (no scheduled rotation) or more, such as 720h`},
		{"max-age 1m", func(c *Config) { c.JWKSMaxAge = time.Minute }, ""},
		{"max-age 24h", func(c *Config) { c.JWKSMaxAge = 24 * time.Hour }, ""},
		{"max-age short", func(c *Config) { c.JWKSMaxAge = 59 * time.Second }, `ISSUER_JWKS_MAX_AGE (jwks_max_age): 59s is out of range; use 1m to 24h, such as 5m`},
		{"max-age long", func(c *Config) { c.JWKSMaxAge = 25 * time.Hour; c.KeyRotationPeriod = 0 }, `ISSUER_JWKS_MAX_AGE (jwks_max_age): 25h is out of range; use 1m to 24h, such as 5m`},
		{"keys dir", func(c *Config) { c.KeysDir = "/etc/issuer/keys" }, ""},
		// access_token_ttl
		{"access ttl 1s", func(c *Config) { c.AccessTokenTTL = time.Second }, ""},
		{"access ttl 24h", func(c *Config) { c.AccessTokenTTL, c.RefreshTokenTTL = 24*time.Hour, 48*time.Hour }, ""},
		{"access ttl short", func(c *Config) { c.AccessTokenTTL = 500 * time.Millisecond }, `ISSUER_ACCESS_TOKEN_TTL (access_token_ttl): 500ms is out of range; use 1s to 24h`},
		{"access ttl long", func(c *Config) { c.AccessTokenTTL, c.RefreshTokenTTL = 25*time.Hour, 48*time.Hour }, `ISSUER_ACCESS_TOKEN_TTL (access_token_ttl): 25h is out of range; use 1s to 24h`},
		// refresh_token_ttl
		{"refresh ttl 8760h", func(c *Config) { c.RefreshTokenTTL = 8760 * time.Hour }, ""},
		{"refresh ttl equal", func(c *Config) { c.RefreshTokenTTL = 5 * time.Minute }, `ISSUER_REFRESH_TOKEN_TTL (refresh_token_ttl): 5m must be longer than ISSUER_ACCESS_TOKEN_TTL (access_token_ttl), which is 5m`},
		{"refresh ttl long", func(c *Config) { c.RefreshTokenTTL = 8761 * time.Hour }, `ISSUER_REFRESH_TOKEN_TTL (refresh_token_ttl): 8761h is too long; use at most 8760h (one year)`},
		// refresh_token_max_lifetime
		{"max lifetime negative", func(c *Config) { c.RefreshTokenMaxLifetime = -time.Hour }, `ISSUER_REFRESH_TOKEN_MAX_LIFETIME (refresh_token_max_lifetime): -1h is negative; use 0 (no end) or a duration such as 720h`},
		{"max lifetime long", func(c *Config) { c.RefreshTokenMaxLifetime = 87601 * time.Hour }, `ISSUER_REFRESH_TOKEN_MAX_LIFETIME (refresh_token_max_lifetime): 87601h is too long; use at most 87600h (ten years), or 0 for no end`},
		{"max lifetime within an access token", func(c *Config) { c.RefreshTokenMaxLifetime = 5 * time.Minute }, `ISSUER_REFRESH_TOKEN_MAX_LIFETIME (refresh_token_max_lifetime): 5m must be longer than ISSUER_ACCESS_TOKEN_TTL (access_token_ttl), which is 5m, or 0 for no end`},
		{"refresh ttl zero", func(c *Config) { c.AccessTokenTTL, c.RefreshTokenTTL = 0, 0 }, "ISSUER_ACCESS_TOKEN_TTL (access_token_ttl): 0s is out of range; use 1s to 24h\nISSUER_REFRESH_TOKEN_TTL (refresh_token_ttl): 0s must be more than 0, such as 24h"},
		// secret
		{"secret short", func(c *Config) { c.Secret = "0123456789" }, `ISSUER_SECRET (secret): is 10 characters long; use at least 32 random characters (for example from openssl rand -base64 32)`},
		{"secret counts characters", func(c *Config) { c.Secret = "éàüöäß" + "0123456789abcdefghijklmnop" }, ""},
		{"secret required with redis", func(c *Config) { c.RedisURL = "redis://r:6379" }, `ISSUER_SECRET (secret): is required when ISSUER_REDIS_URL (redis_url) is set: every instance must encrypt the signing keys with the same secret; set at least 32 random characters (for example from openssl rand -base64 32)`},
		// max_body_bytes
		{"body 1024", func(c *Config) { c.MaxBodyBytes = 1024 }, ""},
		{"body 10MiB", func(c *Config) { c.MaxBodyBytes = 10485760 }, ""},
		{"body small", func(c *Config) { c.MaxBodyBytes = 1023 }, `ISSUER_MAX_BODY_BYTES (max_body_bytes): 1023 is out of range; use 1024 to 10485760 (10 MiB)`},
		{"body large", func(c *Config) { c.MaxBodyBytes = 10485761 }, `ISSUER_MAX_BODY_BYTES (max_body_bytes): 10485761 is out of range; use 1024 to 10485760 (10 MiB)`},
		// timeouts
		{"read header timeout", func(c *Config) { c.ReadHeaderTimeout = 0 }, `ISSUER_READ_HEADER_TIMEOUT (read_header_timeout): 0s must be more than 0, such as 5s`},
		{"read timeout", func(c *Config) { c.ReadTimeout = -time.Second }, `ISSUER_READ_TIMEOUT (read_timeout): -1s must be more than 0, such as 10s`},
		{"write timeout", func(c *Config) { c.WriteTimeout = 0 }, `ISSUER_WRITE_TIMEOUT (write_timeout): 0s must be more than 0, such as 10s`},
		{"idle timeout", func(c *Config) { c.IdleTimeout = 0 }, `ISSUER_IDLE_TIMEOUT (idle_timeout): 0s must be more than 0, such as 1m`},
		{"shutdown timeout", func(c *Config) { c.ShutdownTimeout = 0 }, `ISSUER_SHUTDOWN_TIMEOUT (shutdown_timeout): 0s must be more than 0, such as 15s`},
		// shutdown_drain_delay, trusted_proxies, abuse limits
		{"drain delay 0", func(c *Config) { c.ShutdownDrainDelay = 0 }, ""},
		{"drain delay negative", func(c *Config) { c.ShutdownDrainDelay = -time.Second }, `ISSUER_SHUTDOWN_DRAIN_DELAY (shutdown_drain_delay): -1s is out of range; use 0 to 5m, such as 5s (0 closes the listener at once)`},
		{"drain delay long", func(c *Config) { c.ShutdownDrainDelay = 6 * time.Minute }, `ISSUER_SHUTDOWN_DRAIN_DELAY (shutdown_drain_delay): 6m is out of range; use 0 to 5m, such as 5s (0 closes the listener at once)`},
		{"proxies", func(c *Config) { c.TrustedProxies = "10.0.0.0/8, 172.16.0.0/12,fd00::/8, 127.0.0.1 ,::1" }, ""},
		{"proxies garbage", func(c *Config) { c.TrustedProxies = "10.0.0.0/8,nginx" }, `ISSUER_TRUSTED_PROXIES (trusted_proxies): "nginx" is not a network such as 10.0.0.0/8 or fd00::/8, nor an address such as 192.0.2.10`},
		{"proxies host bits", func(c *Config) { c.TrustedProxies = "10.1.2.3/8" }, `ISSUER_TRUSTED_PROXIES (trusted_proxies): "10.1.2.3/8" has host bits set; write the network as 10.0.0.0/8`},
		{"proxies empty entry", func(c *Config) { c.TrustedProxies = "10.0.0.0/8,,::1" }, `ISSUER_TRUSTED_PROXIES (trusted_proxies): has an empty entry; separate the networks with single commas`},
		{"proxies bad prefix", func(c *Config) { c.TrustedProxies = "10.0.0.0/33" }, `ISSUER_TRUSTED_PROXIES (trusted_proxies): "10.0.0.0/33" is not a network such as 10.0.0.0/8 or fd00::/8, nor an address such as 192.0.2.10`},
		{"window short", func(c *Config) { c.AuthFailureWindow = 0 }, `ISSUER_AUTH_FAILURE_WINDOW (auth_failure_window): 0s is out of range; use 1s to 24h, such as 1m`},
		{"limits off", func(c *Config) { c.AuthFailuresPerAddress, c.AuthFailuresPerClient, c.TokenQuotaPerMinute = 0, 0, 0 }, ""},
		{"address limit negative", func(c *Config) { c.AuthFailuresPerAddress = -1 }, `ISSUER_AUTH_FAILURES_PER_ADDRESS (auth_failures_per_address): -1 is out of range; use 0 (no limit) to 1000000`},
		{"client limit large", func(c *Config) { c.AuthFailuresPerClient = 1_000_001 }, `ISSUER_AUTH_FAILURES_PER_CLIENT (auth_failures_per_client): 1000001 is out of range; use 0 (no limit) to 1000000`},
		{"quota negative", func(c *Config) { c.TokenQuotaPerMinute = -5 }, `ISSUER_TOKEN_QUOTA_PER_MINUTE (token_quota_per_minute): -5 is out of range; use 0 (no limit) to 1000000`},
		// log_level
		{"log level warn", func(c *Config) { c.LogLevel = "warn" }, ""},
		{"log level", func(c *Config) { c.LogLevel = "verbose" }, `ISSUER_LOG_LEVEL (log_level): "verbose" is not a log level; use one of debug, info, warn, error`},
		{"password grant on", func(c *Config) { c.PasswordGrant = true }, ""},
		{"weak argon2 memory", func(c *Config) { c.PasswordHashMemoryKiB = 4096 }, `ISSUER_PASSWORD_HASH_MEMORY_KIB (password_hash_memory_kib): 4096 is out of range; use 19456 (19 MiB, the argon2id minimum) to 262144 (256 MiB)`},
		{"too much argon2 work", func(c *Config) { c.PasswordHashMemoryKiB, c.PasswordHashIterations = 200<<10, 8 }, `ISSUER_PASSWORD_HASH_ITERATIONS (password_hash_iterations): 8 passes over 204800 KiB are 1638400 KiB of work, above 1048576 (1 GiB): a login would take seconds; lower one of them`},
		{"one argon2 pass", func(c *Config) { c.PasswordHashIterations = 1 }, `ISSUER_PASSWORD_HASH_ITERATIONS (password_hash_iterations): 1 is out of range; use 2 to 10`},
		{"negative hash concurrency", func(c *Config) { c.PasswordHashConcurrency = -1 }, `ISSUER_PASSWORD_HASH_CONCURRENCY (password_hash_concurrency): -1 is out of range; use 0 (the number of CPUs) to 1024`},
		{"short password window", func(c *Config) { c.PasswordFailureWindow = time.Second }, `ISSUER_PASSWORD_FAILURE_WINDOW (password_failure_window): 1s is out of range; use 1m to 24h, such as 15m`},
		{"negative user failures", func(c *Config) { c.PasswordFailuresPerUser = -1 }, `ISSUER_PASSWORD_FAILURES_PER_USER (password_failures_per_user): -1 is out of range; use 0 (no limit) to 1000000`},
		{"compat without password grant", func(c *Config) { c.SimpleJWTCompat, c.SimpleJWTClientID = true, "c1" }, `ISSUER_SIMPLEJWT_COMPAT (simplejwt_compat): is true but ISSUER_PASSWORD_GRANT (password_grant) is false; the SimpleJWT-compatible endpoints log users in with their passwords: set password_grant: true too`},
		{"compat without client", func(c *Config) { c.SimpleJWTCompat, c.PasswordGrant = true, true }, `ISSUER_SIMPLEJWT_CLIENT_ID (simplejwt_client_id): is empty but ISSUER_SIMPLEJWT_COMPAT (simplejwt_compat) is true; set the id of the client whose audience and scope the SimpleJWT-compatible tokens get (register one with issuer clients create --grant-types password,refresh_token)`},
		{"compat with client", func(c *Config) { c.SimpleJWTCompat, c.SimpleJWTClientID, c.PasswordGrant = true, "c1", true }, ""},
		{"compat path without slash", func(c *Config) { c.SimpleJWTPath = "/api/token" }, `ISSUER_SIMPLEJWT_PATH (simplejwt_path): "/api/token" must start and end with a slash, such as /api/token/`},
		{"compat path in admin", func(c *Config) { c.SimpleJWTPath = "/admin/token/" }, `ISSUER_SIMPLEJWT_PATH (simplejwt_path): "/admin/token/" is inside the issuer's own endpoints; use another path, such as /api/token/`},
		{"compat path pattern", func(c *Config) { c.SimpleJWTPath = "/api/{x}/" }, `ISSUER_SIMPLEJWT_PATH (simplejwt_path): "/api/{x}/" is not a plain path; use letters, digits and slashes, such as /api/token/`},
		{"user id claim reserved", func(c *Config) { c.SimpleJWTUserIDClaim = "sub" }, `ISSUER_SIMPLEJWT_USER_ID_CLAIM (simplejwt_user_id_claim): "sub" is a claim the issuer sets itself; use another name, such as user_id`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.change(&c)
			err := c.Validate()
			if got := fmt.Sprint(err); tt.want == "" && err != nil || tt.want != "" && got != tt.want {
				t.Errorf("Validate() = %v\nwant %q", err, tt.want)
			}
			for _, s := range []string{redisP, token, secret} {
				if err != nil && strings.Contains(err.Error(), s) {
					t.Errorf("Validate() = %v: contains a secret", err)
				}
			}
		})
	}
}

func TestValidateReportsEverything(t *testing.T) {
	c := Config{} // every field wrong
	want := []string{
		"ISSUER_URL (url): ",
		"ISSUER_ADDR (addr): ",
		"ISSUER_REDIS_WAIT_TIMEOUT (redis_wait_timeout): ",
		"ISSUER_DATA_DIR (data_dir): ",
		"ISSUER_SIGNING_ALG (signing_alg): ",
		"ISSUER_RSA_KEY_BITS (rsa_key_bits): ",
		"ISSUER_JWKS_MAX_AGE (jwks_max_age): ",
		"ISSUER_ACCESS_TOKEN_TTL (access_token_ttl): ",
		"ISSUER_REFRESH_TOKEN_TTL (refresh_token_ttl): ",
		"ISSUER_MAX_BODY_BYTES (max_body_bytes): ",
		"ISSUER_READ_HEADER_TIMEOUT (read_header_timeout): ",
		"ISSUER_READ_TIMEOUT (read_timeout): ",
		"ISSUER_WRITE_TIMEOUT (write_timeout): ",
		"ISSUER_IDLE_TIMEOUT (idle_timeout): ",
		"ISSUER_SHUTDOWN_TIMEOUT (shutdown_timeout): ",
		"ISSUER_AUTH_FAILURE_WINDOW (auth_failure_window): ",
		"ISSUER_PASSWORD_HASH_MEMORY_KIB (password_hash_memory_kib): ",
		"ISSUER_PASSWORD_HASH_ITERATIONS (password_hash_iterations): ",
		"ISSUER_PASSWORD_HASH_PARALLELISM (password_hash_parallelism): ",
		"ISSUER_PASSWORD_FAILURE_WINDOW (password_failure_window): ",
		"ISSUER_SIMPLEJWT_PATH (simplejwt_path): ",
		"ISSUER_SIMPLEJWT_USER_ID_CLAIM (simplejwt_user_id_claim): ",
		"ISSUER_DPOP_PROOF_MAX_AGE (dpop_proof_max_age): ",
		"ISSUER_CLIENT_ASSERTION_MAX_LIFETIME (client_assertion_max_lifetime): ",
		"ISSUER_FEDERATED_ASSERTION_MAX_LIFETIME (federated_assertion_max_lifetime): ",
		"ISSUER_STATUS_LIST_TTL (status_list_ttl): ",
		"ISSUER_LOG_LEVEL (log_level): ",
	}
	got := lines(c.Validate())
	if len(got) != len(want) {
		t.Fatalf("Validate() gave %d lines, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("line %d = %q, want prefix %q", i, got[i], want[i])
		}
	}
}

// settingNames is how Load's error for an unknown setting lists them: every
// setting in the order of Config's fields. One per line, so that adding a
// setting changes one line.
var settingNames = strings.Join([]string{
	"url",
	"addr",
	"admin_token",
	"admin_addr",
	"admin_url",
	"redis_url",
	"redis_sentinel_master",
	"redis_wait_replicas",
	"redis_wait_timeout",
	"data_dir",
	"signing_alg",
	"rsa_key_bits",
	"key_rotation_period",
	"jwks_max_age",
	"keys_dir",
	"access_token_ttl",
	"refresh_token_ttl",
	"refresh_token_max_lifetime",
	"secret",
	"max_body_bytes",
	"read_header_timeout",
	"read_timeout",
	"write_timeout",
	"idle_timeout",
	"shutdown_timeout",
	"shutdown_drain_delay",
	"trusted_proxies",
	"trusted_proxy_hops",
	"auth_failure_window",
	"auth_failures_per_address",
	"auth_failures_per_client",
	"admin_failures_per_address",
	"token_quota_per_minute",
	"log_level",
	"password_grant",
	"password_hash_memory_kib",
	"password_hash_iterations",
	"password_hash_parallelism",
	"password_hash_concurrency",
	"password_failure_window",
	"password_failures_per_user",
	"password_failures_per_address",
	"simplejwt_compat",
	"simplejwt_path",
	"simplejwt_client_id",
	"simplejwt_claims",
	"simplejwt_user_id_claim",
	"dpop_nonce",
	"dpop_proof_max_age",
	"client_assertion_legacy_audience",
	"client_assertion_max_lifetime",
	"allow_insecure_jwks_uri",
	"jwks_uri_allowed_hosts",
	"trusted_issuers",
	"federated_assertion_max_lifetime",
	"status_list",
	"status_list_ttl",
}, ", ")

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		file string // content; "" for no file
		env  map[string]string
		want []string // every line of the error, {path} replaced by the file's path
	}{
		{
			name: "env duration",
			env:  map[string]string{"ISSUER_ACCESS_TOKEN_TTL": "5 minutes"},
			want: []string{`ISSUER_ACCESS_TOKEN_TTL (access_token_ttl): "5 minutes" is not a Go duration such as 5m or 300s`},
		},
		{
			name: "env number",
			env:  map[string]string{"ISSUER_MAX_BODY_BYTES": "64k"},
			want: []string{`ISSUER_MAX_BODY_BYTES (max_body_bytes): "64k" is not a whole number such as 65536`},
		},
		{
			name: "several env errors together",
			env: map[string]string{
				"ISSUER_ACCESS_TOKEN_TTL":  "5 minutes",
				"ISSUER_REFRESH_TOKEN_TTL": "1d",
				"ISSUER_SIGNING_ALG":       "HS512",
				"ISSUER_ADMIN_TOKEN":       "short",
				"ISSUER_REDIS_URL":         "redis://cache:6379",
				"ISSUER_IDLE_TIMEOUT":      "0s",
			},
			want: []string{
				`ISSUER_ACCESS_TOKEN_TTL (access_token_ttl): "5 minutes" is not a Go duration such as 5m or 300s`,
				`ISSUER_REFRESH_TOKEN_TTL (refresh_token_ttl): "1d" is not a Go duration such as 5m or 300s`,
				`ISSUER_ADMIN_TOKEN (admin_token): is 5 characters long; use at least 32 random characters (for example from openssl rand -base64 32), or leave it empty to turn the admin API off`,
				`ISSUER_SIGNING_ALG (signing_alg): "HS512" is not supported; use one of ES256, EdDSA, RS256, PS256, HS256`,
				`ISSUER_SECRET (secret): is required when ISSUER_REDIS_URL (redis_url) is set: every instance must encrypt the signing keys with the same secret; set at least 32 random characters (for example from openssl rand -base64 32)`,
				`ISSUER_IDLE_TIMEOUT (idle_timeout): 0s must be more than 0, such as 1m`,
			},
		},
		{
			name: "file values name their line",
			file: "url: https://a.example.com\naccess_token_ttl: 300\nlog_level: loud\nsigning_alg: [ES256]\n",
			want: []string{
				`ISSUER_SIGNING_ALG (signing_alg): must be a single value, not a list or mapping ({path} line 4)`,
				`ISSUER_ACCESS_TOKEN_TTL (access_token_ttl): "300" is not a Go duration such as 5m or 300s ({path} line 2)`,
				`ISSUER_LOG_LEVEL (log_level): "loud" is not a log level; use one of debug, info, warn, error ({path} line 3)`,
			},
		},
		{
			name: "env fixes nothing in a broken file, and its own error is reported too",
			file: "access_token_ttl: 5 minutes\n",
			env:  map[string]string{"ISSUER_ACCESS_TOKEN_TTL": "10m", "ISSUER_MAX_BODY_BYTES": "1"},
			want: []string{
				`ISSUER_ACCESS_TOKEN_TTL (access_token_ttl): "5 minutes" is not a Go duration such as 5m or 300s ({path} line 1)`,
				`ISSUER_MAX_BODY_BYTES (max_body_bytes): 1 is out of range; use 1024 to 10485760 (10 MiB)`,
			},
		},
		{
			name: "env value overrides the file value in messages",
			file: "log_level: debug\n",
			env:  map[string]string{"ISSUER_LOG_LEVEL": "trace"},
			want: []string{`ISSUER_LOG_LEVEL (log_level): "trace" is not a log level; use one of debug, info, warn, error`},
		},
		{
			name: "sentinel master without redis_url",
			file: "redis_sentinel_master: mymaster\n",
			want: []string{`ISSUER_REDIS_SENTINEL_MASTER (redis_sentinel_master): is set but ISSUER_REDIS_URL (redis_url) is empty; set redis_url to the Sentinel URLs, such as redis://sentinel-1:26379,redis://sentinel-2:26379,redis://sentinel-3:26379, or leave redis_sentinel_master empty ({path} line 1)`},
		},
		{
			name: "sentinel master name from the environment",
			env:  map[string]string{"ISSUER_REDIS_SENTINEL_MASTER": "my\tmaster", "ISSUER_REDIS_URL": "redis://s:26379", "ISSUER_SECRET": secret},
			want: []string{`ISSUER_REDIS_SENTINEL_MASTER (redis_sentinel_master): "my\tmaster" contains a space or a control character; use the master name of the Sentinels' "sentinel monitor" line, such as mymaster`},
		},
		{
			name: "unknown key with a suggestion",
			file: "url: https://a.example.com\nacess_token_ttl: 5m\n",
			want: []string{`config file {path} line 2: unknown setting "acess_token_ttl"; did you mean access_token_ttl?`},
		},
		{
			name: "unknown key listing the settings",
			file: "issuer:\n  url: https://a.example.com\n",
			want: []string{`config file {path} line 1: unknown setting "issuer"; the settings are ` + settingNames},
		},
		{
			name: "unknown keys and bad values together",
			file: "foo: 1\nbar: 2\nmax_body_bytes: lots\n",
			env:  map[string]string{"ISSUER_URL": "localhost"},
			want: []string{
				`config file {path} line 1: unknown setting "foo"; the settings are ` + settingNames,
				`config file {path} line 2: unknown setting "bar"; the settings are ` + settingNames,
				`ISSUER_MAX_BODY_BYTES (max_body_bytes): "lots" is not a whole number such as 65536 ({path} line 3)`,
				`ISSUER_URL (url): "localhost" is not an absolute http or https URL; use one such as https://auth.example.com`,
			},
		},
		{
			name: "duplicate key",
			file: "url: https://a.example.com\nurl: https://b.example.com\n",
			want: []string{`config file {path}: line 2: mapping key "url" already defined at line 1`},
		},
		{
			name: "not a mapping",
			file: "- url: https://a.example.com\n",
			want: []string{`config file {path} line 1: the file must hold settings as key: value lines, such as url: https://auth.example.com`},
		},
		{
			name: "two documents",
			file: "url: https://a.example.com\n---\nurl: https://b.example.com\n",
			want: []string{`config file {path}: holds more than one YAML document; keep the settings in one`},
		},
		{
			name: "syntax error",
			file: "url: [https://a.example.com\n",
			want: []string{`config file {path}: yaml: line 1: did not find expected ',' or ']'`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := ""
			if tt.file != "" {
				path = writeFile(t, tt.file)
			}
			got, err := Load(path, env(tt.env))
			if err == nil {
				t.Fatalf("Load = %v, nil; want an error", got)
			}
			if got != (Config{}) {
				t.Errorf("Load returned %v with the error, want the zero Config", got)
			}
			want := strings.ReplaceAll(strings.Join(tt.want, "\n"), "{path}", path)
			if err.Error() != want {
				t.Errorf("Load error:\n%v\nwant:\n%s", err, want)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.yaml")
	_, err := Load(path, nil)
	if err == nil {
		t.Fatal("Load of a missing file succeeded")
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name the path %s", err, path)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error %q is not fs.ErrNotExist", err)
	}

	_, err = Load(t.TempDir(), nil) // a directory is unreadable as a file
	if err == nil || !strings.Contains(err.Error(), "config file ") {
		t.Errorf("Load(directory) = %v, want an error naming the path", err)
	}
}

func TestRedaction(t *testing.T) {
	c := Default()
	c.AdminToken = token
	c.Secret = secret
	c.RedisURL = "redis://user:" + redisP + "@r1:6379/0,rediss://:" + redisP + "@r2:6380,redis://:pa/" + redisP + "@bad,redis://u:1/" + redisP + "@r3," +
		"redis://s1:26379?dial_timeout=3s&sentinel_password=" + redisP + "&sentinel_pasword=" + redisP + "&password=" + redisP + "&x=%zz" + redisP
	c.RedisSentinelMaster = "mymaster"

	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("starting", "config", c)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("starting", "config", c)
	outputs := map[string]string{
		"json log": buf.String(),
		"String":   c.String(),
		"%v":       fmt.Sprintf("%v", c),
		"%+v":      fmt.Sprintf("%+v", c),
		"%#v":      fmt.Sprintf("%#v", c),
		"pointer":  fmt.Sprint(&c),
	}
	for name, out := range outputs {
		for _, s := range []string{token, secret, redisP} {
			if strings.Contains(out, s) {
				t.Errorf("%s contains a secret: %s", name, out)
			}
		}
		if !strings.Contains(out, "REDACTED") {
			t.Errorf("%s has no REDACTED: %s", name, out)
		}
	}

	attrs := map[string]slog.Value{}
	for _, a := range c.LogValue().Group() {
		attrs[a.Key] = a.Value
	}
	for key, want := range map[string]string{
		"admin_token": "REDACTED",
		"secret":      "REDACTED",
		"redis_url": "redis://user:REDACTED@r1:6379/0,rediss://:REDACTED@r2:6380,REDACTED,REDACTED," +
			"redis://s1:26379?dial_timeout=3s&password=REDACTED&sentinel_password=REDACTED&sentinel_pasword=REDACTED",
		"redis_sentinel_master": "mymaster",
		"url":                   "http://localhost:8080",
		"addr":                  ":8080",
	} {
		if got := attrs[key].String(); got != want {
			t.Errorf("LogValue %s = %q, want %q", key, got, want)
		}
	}
	if got := attrs["access_token_ttl"].String(); got != "5m" {
		t.Errorf("LogValue access_token_ttl = %q, want 5m", got)
	}
	if got := attrs["max_body_bytes"].Int64(); got != 65536 {
		t.Errorf("LogValue max_body_bytes = %d, want 65536", got)
	}
	if got, want := len(attrs), reflect.TypeFor[Config]().NumField(); got != want {
		t.Errorf("LogValue has %d attributes, want one per field, %d", got, want)
	}

	// Empty secrets stay visible as empty: the log shows the admin API is off.
	d := Default()
	for _, a := range d.LogValue().Group() {
		if (a.Key == "admin_token" || a.Key == "secret" || a.Key == "redis_url") && a.Value.String() != "" {
			t.Errorf("LogValue of Default: %s = %q, want empty", a.Key, a.Value)
		}
	}
	want := strings.Join([]string{
		`url="http://localhost:8080"`,
		`addr=":8080"`,
		`admin_token=""`,
		`admin_addr=""`,
		`admin_url=""`,
		`redis_url=""`,
		`redis_sentinel_master=""`,
		`redis_wait_replicas=0`,
		`redis_wait_timeout=1s`,
		`data_dir="./data"`,
		`signing_alg="ES256"`,
		`rsa_key_bits=2048`,
		`key_rotation_period=720h`,
		`jwks_max_age=5m`,
		`keys_dir=""`,
		`access_token_ttl=5m`,
		`refresh_token_ttl=24h`,
		`refresh_token_max_lifetime=0s`,
		`secret=""`,
		`max_body_bytes=65536`,
		`read_header_timeout=5s`,
		`read_timeout=10s`,
		`write_timeout=10s`,
		`idle_timeout=1m`,
		`shutdown_timeout=15s`,
		`shutdown_drain_delay=5s`,
		`trusted_proxies=""`,
		`trusted_proxy_hops=0`,
		`auth_failure_window=1m`,
		`auth_failures_per_address=20`,
		`auth_failures_per_client=50`,
		`admin_failures_per_address=10`,
		`token_quota_per_minute=0`,
		`log_level="info"`,
		`password_grant=false`,
		`password_hash_memory_kib=19456`,
		`password_hash_iterations=2`,
		`password_hash_parallelism=1`,
		`password_hash_concurrency=0`,
		`password_failure_window=15m`,
		`password_failures_per_user=10`,
		`password_failures_per_address=100`,
		`simplejwt_compat=false`,
		`simplejwt_path="/api/token/"`,
		`simplejwt_client_id=""`,
		`simplejwt_claims=false`,
		`simplejwt_user_id_claim="user_id"`,
		`dpop_nonce=false`,
		`dpop_proof_max_age=5m`,
		`client_assertion_legacy_audience=false`,
		`client_assertion_max_lifetime=5m`,
		`allow_insecure_jwks_uri=false`,
		`jwks_uri_allowed_hosts=""`,
		`trusted_issuers=""`,
		`federated_assertion_max_lifetime=24h`,
		`status_list=false`,
		`status_list_ttl=30s`,
	}, " ")
	if got := d.String(); got != want {
		t.Errorf("Default().String() =\n%s\nwant\n%s", got, want)
	}
	if got := fmt.Sprintf("%#v", d); !strings.HasPrefix(got, `config.Config{URL:"http://localhost:8080", `) {
		t.Errorf("%%#v = %s, want config.Config{URL:...", got)
	}
}

// TestConfigYAML keeps the documented config.yaml at the repository root equal
// to the code: it loads to Default(), names every setting, and documents each
// with its environment variable and default.
func TestConfigYAML(t *testing.T) {
	const path = "../../config.yaml"
	got, err := Load(path, nil)
	if err != nil {
		t.Fatalf("Load(%s): %v", path, err)
	}
	if want := Default(); got != want {
		t.Errorf("Load(%s) = %v\nwant Default() = %v", path, got, want)
	}

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	root := doc.Content[0]
	type entry struct{ comment, value string }
	entries := map[string]entry{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k := root.Content[i]
		entries[k.Value] = entry{k.HeadComment, root.Content[i+1].Value}
	}
	def := reflect.ValueOf(Default())
	typ := def.Type()
	for i := range typ.NumField() {
		f := typ.Field(i)
		key, envName := f.Tag.Get("yaml"), f.Tag.Get("env")
		e, ok := entries[key]
		if !ok {
			t.Errorf("%s: field %s (yaml key %s) is missing", path, f.Name, key)
			continue
		}
		if !strings.Contains(e.comment, "Environment: "+envName) {
			t.Errorf("%s: the comment of %s does not say \"Environment: %s\"", path, key, envName)
		}
		if !strings.Contains(e.comment, "Default:") || !strings.Contains(e.comment, "Valid:") {
			t.Errorf("%s: the comment of %s does not give its default and valid values", path, key)
		}
		if v := def.Field(i); v.Kind() == reflect.String && v.String() != "" && !strings.Contains(e.comment, "Default:     "+v.String()) {
			t.Errorf("%s: the comment of %s does not give its default %q", path, key, v.String())
		}
	}
	if len(entries) != typ.NumField() {
		t.Errorf("%s has %d settings, Config has %d fields", path, len(entries), typ.NumField())
	}
	if !strings.Contains(doc.HeadComment+root.HeadComment, "issuer serve --config config.yaml") {
		t.Errorf("%s: the header comment does not say how to use it", path)
	}
}

func TestTrustedProxyNets(t *testing.T) {
	c := Default()
	if got := c.TrustedProxyNets(); got != nil {
		t.Errorf("default: %v, want none", got)
	}
	c.TrustedProxies = "10.0.0.0/8, 192.0.2.1,fd00::/8,::ffff:198.51.100.1"
	var got []string
	for _, p := range c.TrustedProxyNets() {
		got = append(got, p.String())
	}
	if want := "10.0.0.0/8 192.0.2.1/32 fd00::/8 198.51.100.1/32"; strings.Join(got, " ") != want {
		t.Errorf("TrustedProxyNets = %v, want %s", got, want)
	}
}

func TestEditDistance(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"abc", "", 3}, {"", "abc", 3}, {"url", "url", 0},
		{"acess_token_ttl", "access_token_ttl", 1}, {"kitten", "sitting", 3},
	} {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestWeakSecretsRefused(t *testing.T) {
	for _, tc := range []struct {
		name, key, value string
		weak             bool
	}{
		{"repeated admin token", "ISSUER_ADMIN_TOKEN", strings.Repeat("a", 40), true},
		{"patterned secret", "ISSUER_SECRET", strings.Repeat("changeme", 5), true},
		{"random admin token", "ISSUER_ADMIN_TOKEN", "q8Vb1yT0kR7mN2xZ4wP6sL9dF3gH5jC0aE1", false},
		{"random secret", "ISSUER_SECRET", "q8Vb1yT0kR7mN2xZ4wP6sL9dF3gH5jC0aE1", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{tc.key: tc.value}
			_, err := Load("", func(k string) string { return env[k] })
			if got := err != nil && strings.Contains(err.Error(), tc.key) && strings.Contains(err.Error(), "guessable"); got != tc.weak {
				t.Fatalf("Load with %s=%q: err = %v, want refused as guessable: %v", tc.key, tc.value, err, tc.weak)
			}
			if err != nil && strings.Contains(err.Error(), tc.value) {
				t.Errorf("the error repeats the secret: %v", err)
			}
		})
	}
}

func TestAdminBaseURL(t *testing.T) {
	for _, tc := range []struct{ addr, url, want string }{
		{"", "", "http://localhost:8080"},
		{":9090", "", "http://localhost:9090"},
		{"0.0.0.0:9090", "", "http://localhost:9090"},
		{"[::]:9090", "", "http://localhost:9090"},
		{"127.0.0.1:9090", "", "http://127.0.0.1:9090"},
		{"[::1]:9090", "", "http://[::1]:9090"},
		{"10.1.2.3:9090", "http://issuer-admin.issuer.svc:9090", "http://issuer-admin.issuer.svc:9090"},
	} {
		c := Default()
		c.AdminAddr, c.AdminURL = tc.addr, tc.url
		if got := c.AdminBaseURL(); got != tc.want {
			t.Errorf("admin_addr %q, admin_url %q: AdminBaseURL = %q, want %q", tc.addr, tc.url, got, tc.want)
		}
	}
}

// TestURLFollowsAddr: without ISSUER_URL or url in the file, the issuer URL
// is where the listen address is reached, so that changing the port alone
// does not leave the tokens' iss and the metadata pointing at port 8080.
func TestURLFollowsAddr(t *testing.T) {
	tests := []struct {
		name, file string
		env        map[string]string
		want       string
	}{
		{"default", "", nil, "http://localhost:8080"},
		{"PORT", "", map[string]string{"PORT": "5000"}, "http://localhost:5000"},
		{"ISSUER_ADDR port only", "", map[string]string{"ISSUER_ADDR": ":9090"}, "http://localhost:9090"},
		{"ISSUER_ADDR loopback", "", map[string]string{"ISSUER_ADDR": "127.0.0.1:9090"}, "http://127.0.0.1:9090"},
		{"ISSUER_ADDR unspecified IPv4", "", map[string]string{"ISSUER_ADDR": "0.0.0.0:9090"}, "http://localhost:9090"},
		{"ISSUER_ADDR unspecified IPv6", "", map[string]string{"ISSUER_ADDR": "[::]:9090"}, "http://localhost:9090"},
		{"ISSUER_ADDR IPv6 loopback", "", map[string]string{"ISSUER_ADDR": "[::1]:9090"}, "http://[::1]:9090"},
		{"file addr", "addr: 127.0.0.1:7000\n", nil, "http://127.0.0.1:7000"},
		{"ISSUER_URL wins", "", map[string]string{"ISSUER_ADDR": ":9090", "ISSUER_URL": "https://auth.example.com"}, "https://auth.example.com"},
		{"file url wins", "url: https://auth.example.com\n", map[string]string{"ISSUER_ADDR": ":9090"}, "https://auth.example.com"},
		{"empty file url derives", "url:\n", map[string]string{"ISSUER_ADDR": ":9090"}, "http://localhost:9090"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := ""
			if tt.file != "" {
				path = writeFile(t, tt.file)
			}
			got, err := Load(path, env(tt.env))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if got.URL != tt.want {
				t.Errorf("URL = %q, want %q", got.URL, tt.want)
			}
		})
	}

	// A bad address is reported once, without a second line about the URL
	// derived from it.
	_, err := Load("", env(map[string]string{"ISSUER_ADDR": "9090"}))
	if got := lines(err); len(got) != 1 || !strings.HasPrefix(got[0], "ISSUER_ADDR (addr): ") {
		t.Errorf("bad ISSUER_ADDR: %q, want one line about ISSUER_ADDR", got)
	}
}

// TestConfigYAMLIsLikeNoFile: the shipped config.yaml, which documents the
// defaults, changes nothing: with any environment, loading it gives what
// loading no file gives (PORT and the URL derived from addr included).
func TestConfigYAMLIsLikeNoFile(t *testing.T) {
	for _, e := range []map[string]string{
		nil,
		{"PORT": "5000"},
		{"ISSUER_ADDR": "127.0.0.1:9090"},
		{"PORT": "5000", "ISSUER_URL": "https://auth.example.com"},
		{"ISSUER_ACCESS_TOKEN_TTL": "1m", "ISSUER_ADMIN_TOKEN": token},
	} {
		want, err := Load("", env(e))
		if err != nil {
			t.Fatalf("%v: Load without a file: %v", e, err)
		}
		got, err := Load("../../config.yaml", env(e))
		if err != nil {
			t.Fatalf("%v: Load(config.yaml): %v", e, err)
		}
		if got != want {
			t.Errorf("%v: with config.yaml\n%v\nwithout a file\n%v", e, got, want)
		}
	}
}

// TestNoCascades: a value that failed (does not parse, or is out of range)
// gets its one line, and no cross-check blames another setting for it.
func TestNoCascades(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want []string // prefixes of the lines
	}{
		{"access TTL out of range", map[string]string{"ISSUER_ACCESS_TOKEN_TTL": "1000h"},
			[]string{"ISSUER_ACCESS_TOKEN_TTL (access_token_ttl): 1000h is out of range"}},
		{"access TTL does not parse", map[string]string{"ISSUER_ACCESS_TOKEN_TTL": "5 min", "ISSUER_REFRESH_TOKEN_TTL": "2m"},
			[]string{"ISSUER_ACCESS_TOKEN_TTL (access_token_ttl): \"5 min\" is not a Go duration"}},
		{"jwks max age out of range", map[string]string{"ISSUER_JWKS_MAX_AGE": "200h"},
			[]string{"ISSUER_JWKS_MAX_AGE (jwks_max_age): 200h is out of range"}},
		{"password grant does not parse", map[string]string{"ISSUER_PASSWORD_GRANT": "yes", "ISSUER_SIMPLEJWT_COMPAT": "true", "ISSUER_SIMPLEJWT_CLIENT_ID": "web"},
			[]string{"ISSUER_PASSWORD_GRANT (password_grant): \"yes\" is not true or false"}},
		{"compat does not parse", map[string]string{"ISSUER_SIMPLEJWT_COMPAT": "on"},
			[]string{"ISSUER_SIMPLEJWT_COMPAT (simplejwt_compat): \"on\" is not true or false"}},
		{"hash memory out of range", map[string]string{"ISSUER_PASSWORD_HASH_MEMORY_KIB": "1000000", "ISSUER_PASSWORD_HASH_ITERATIONS": "10"},
			[]string{"ISSUER_PASSWORD_HASH_MEMORY_KIB (password_hash_memory_kib): 1000000 is out of range"}},
		// Cross-checks between valid values still hold.
		{"refresh shorter than access", map[string]string{"ISSUER_ACCESS_TOKEN_TTL": "10m", "ISSUER_REFRESH_TOKEN_TTL": "5m"},
			[]string{"ISSUER_REFRESH_TOKEN_TTL (refresh_token_ttl): 5m must be longer than"}},
		{"rotation too short", map[string]string{"ISSUER_KEY_ROTATION_PERIOD": "10m"},
			[]string{"ISSUER_KEY_ROTATION_PERIOD (key_rotation_period): 10m is too short"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load("", env(tt.env))
			got := lines(err)
			if len(got) != len(tt.want) {
				t.Fatalf("Load gave %d lines, want %d:\n%s", len(got), len(tt.want), strings.Join(got, "\n"))
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tt.want[i]) {
					t.Errorf("line %d = %q, want prefix %q", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestUnknownEnv(t *testing.T) {
	environ := []string{
		"HOME=/root",
		"ISSUER_ACCESS_TOKEN_TTL=5m",
		"ISSUER_ACESS_TOKEN_TTL=1m",
		"ISSUER_ADMIN_TOKN=" + token,
		"ISSUER_SERVICE_HOST=10.0.0.1",
		"ISSUER_COLOUR=blue",
		"PORT=8080",
	}
	want := []string{
		"ISSUER_ACESS_TOKEN_TTL is not a setting and is ignored; did you mean ISSUER_ACCESS_TOKEN_TTL?",
		"ISSUER_ADMIN_TOKN is not a setting and is ignored; did you mean ISSUER_ADMIN_TOKEN?",
		"ISSUER_SERVICE_HOST is not a setting and is ignored; Kubernetes sets it for a Service named issuer: set enableServiceLinks: false in the pod spec",
		"ISSUER_COLOUR is not a setting and is ignored; config.yaml lists every setting with its variable",
	}
	got := UnknownEnv(environ)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("UnknownEnv =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if strings.Contains(strings.Join(got, ""), token) {
		t.Error("a warning shows a value")
	}
}
