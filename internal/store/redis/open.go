package redis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/issuer-oauth/issuer/internal/store"
)

// Timeouts that Open sets unless the URL sets them (dial_timeout=…,
// read_timeout=…, and so on): a request should fail with
// store.ErrUnavailable within seconds, not hang, when Redis is away.
const (
	dialTimeout   = 2 * time.Second
	readTimeout   = time.Second
	writeTimeout  = time.Second
	poolTimeout   = time.Second
	maxRetries    = 1
	dialerRetries = 1
)

// sentinelPort is the port of a Sentinel URL that names none: the port
// Sentinels listen on by default.
const sentinelPort = "26379"

// WithSentinelMaster makes Open reach Redis through Redis Sentinel: urls
// then names the Sentinels, and name is the master they monitor (the name
// in their "sentinel monitor" line). It applies to Open only; New ignores
// it.
func WithSentinelMaster(name string) Option {
	return func(s *Store) { s.sentinelMaster = name }
}

// sentinelMaster returns the master name that opts give with
// WithSentinelMaster, or "".
func sentinelMaster(opts []Option) string {
	var probe Store
	for _, opt := range opts {
		opt(&probe)
	}
	return probe.sentinelMaster
}

// Open connects to Redis as ISSUER_REDIS_URL describes it, checks that it
// answers, and returns a store that closes the connection on Close.
//
// urls is one redis:// or rediss:// URL (as go-redis ParseURL reads it,
// with its query options), or a comma-separated list of seed URLs of a Redis
// Cluster. With a list, the credentials, TLS and options of the first URL
// apply to every node, and all URLs must use the same scheme. A single URL
// that points at a cluster node is detected (INFO cluster) and opened as a
// cluster too. With rediss:// on a cluster, every node's certificate is
// checked against the host name of the first URL (go-redis uses one TLS
// configuration for all nodes).
//
// With WithSentinelMaster, urls names Redis Sentinels instead: one URL or a
// comma-separated list, whose host:port are the Sentinels' addresses (port
// 26379 when the URL has none). The store asks them for the address of the
// named master and follows its failovers (a go-redis failover client). The
// user, password, database number, TLS (rediss://) and go-redis query
// options (dial_timeout=… and so on) of the first URL apply to the master
// connection; its query options sentinel_username and sentinel_password
// authenticate to the Sentinels (requirepass or an ACL user in
// sentinel.conf). The other URLs give addresses only, and all must use the
// same scheme. With rediss://, each connection checks the certificate
// against the host it dials: a Sentinel's host name, and the master address
// that the Sentinels announce.
//
// Errors never contain a password. An unreachable Redis (or Sentinel) gives
// an error wrapping store.ErrUnavailable that names the URL.
func Open(ctx context.Context, urls string, opts ...Option) (*Store, error) {
	var list []string
	for u := range strings.SplitSeq(urls, ",") {
		if u = strings.TrimSpace(u); u != "" {
			list = append(list, u)
		}
	}
	if len(list) == 0 {
		return nil, errors.New("redis: no Redis URL given")
	}
	var (
		client goredis.UniversalClient
		err    error
	)
	if master := sentinelMaster(opts); master != "" {
		client, err = connectSentinel(ctx, master, list)
	} else {
		client, err = connect(ctx, list)
	}
	if err != nil {
		return nil, err
	}
	s := New(client, opts...)
	s.owned = true
	if err := s.checkSchema(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// SchemaVersion is the layout of the keys this package writes, recorded
// under PREFIX:schema_version by the first issuer on a Redis.
const SchemaVersion = 1

// checkSchema records the schema version on a new Redis and refuses one
// written by a newer issuer (store.ErrNewerSchema), which this binary
// would misread.
func (s *Store) checkSchema(ctx context.Context) error {
	key := s.prefix + ":schema_version"
	v, err := s.client.Get(ctx, key).Int()
	switch {
	case errors.Is(err, goredis.Nil):
		// A new Redis, or one of a version before this key. A replica
		// (READONLY, during a failover) cannot record it: the next start
		// on the master will.
		if err := s.client.SetNX(ctx, key, SchemaVersion, 0).Err(); err != nil && !strings.HasPrefix(err.Error(), "READONLY") {
			return fmt.Errorf("redis: record the schema version: %w", err)
		}
		return nil
	case err != nil && strings.Contains(err.Error(), "strconv"):
		return fmt.Errorf("redis: %s is not a schema version: another program uses the key prefix %q; give this issuer its own", key, s.prefix)
	case err != nil:
		return fmt.Errorf("redis: read the schema version: %w", err)
	case v > SchemaVersion:
		return fmt.Errorf("redis: %w (schema version %d at %s; this binary reads version %d): run that issuer version or a later one "+
			"on every instance, or restore a backup taken before the upgrade; downgrading is not supported", store.ErrNewerSchema, v, key, SchemaVersion)
	}
	return nil
}

// connect returns a client that answered PING.
func connect(ctx context.Context, urls []string) (goredis.UniversalClient, error) {
	if len(urls) > 1 {
		return connectCluster(ctx, urls)
	}
	opt, err := goredis.ParseURL(urls[0])
	if err != nil {
		return nil, parseError(urls[0], err)
	}
	failFast(&opt.DialTimeout, &opt.ReadTimeout, &opt.WriteTimeout, &opt.PoolTimeout, &opt.MaxRetries, &opt.DialerRetries)
	c := goredis.NewClient(opt)
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		return nil, unreachable(urls, err)
	}
	info, err := c.Info(ctx, "cluster").Result()
	if err == nil && strings.Contains(info, "cluster_enabled:1") {
		_ = c.Close()
		return connectCluster(ctx, urls)
	}
	return c, nil
}

// connectCluster returns a cluster client on the seed URLs that answered
// PING.
func connectCluster(ctx context.Context, urls []string) (goredis.UniversalClient, error) {
	var opt *goredis.ClusterOptions
	for i, u := range urls {
		o, err := goredis.ParseClusterURL(u)
		if err != nil {
			return nil, parseError(u, err)
		}
		if i == 0 {
			opt = o
			continue
		}
		if (o.TLSConfig == nil) != (opt.TLSConfig == nil) {
			return nil, fmt.Errorf("redis: cluster seed URLs %s and %s mix redis:// and rediss://", redact(urls[0]), redact(u))
		}
		opt.Addrs = append(opt.Addrs, o.Addrs...)
	}
	failFast(&opt.DialTimeout, &opt.ReadTimeout, &opt.WriteTimeout, &opt.PoolTimeout, &opt.MaxRetries, &opt.DialerRetries)
	c := goredis.NewClusterClient(opt)
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		return nil, unreachable(urls, err)
	}
	return c, nil
}

// connectSentinel returns a failover client on the master that the
// Sentinels at urls name, after it answered PING.
func connectSentinel(ctx context.Context, master string, urls []string) (goredis.UniversalClient, error) {
	var opt *goredis.FailoverOptions
	for i, u := range urls {
		o, err := parseSentinelURL(u)
		if err != nil {
			return nil, err
		}
		if o.MasterName != "" && o.MasterName != master {
			return nil, fmt.Errorf("redis: Sentinel URL %s names master %q, but the master is %q; remove master_name from the URL",
				redact(u), o.MasterName, master)
		}
		if i == 0 {
			opt = o
			continue
		}
		if (o.TLSConfig == nil) != (opt.TLSConfig == nil) {
			return nil, fmt.Errorf("redis: Sentinel URLs %s and %s mix redis:// and rediss://", redact(urls[0]), redact(u))
		}
		opt.SentinelAddrs = append(opt.SentinelAddrs, o.SentinelAddrs...)
	}
	opt.MasterName = master
	failFast(&opt.DialTimeout, &opt.ReadTimeout, &opt.WriteTimeout, &opt.PoolTimeout, &opt.MaxRetries, &opt.DialerRetries)
	c := goredis.NewFailoverClient(opt)
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		return nil, sentinelError(ctx, opt, urls, err)
	}
	return c, nil
}

// parseSentinelURL reads one Sentinel URL as go-redis ParseFailoverURL does,
// except that the user info is the master's (as in every other
// ISSUER_REDIS_URL) and the Sentinels' credentials are the query options
// sentinel_username and sentinel_password.
func parseSentinelURL(raw string) (*goredis.FailoverOptions, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, parseError(raw, err)
	}
	q := u.Query()
	for _, k := range []string{"username", "password"} {
		if q.Has(k) {
			return nil, fmt.Errorf("redis: bad Sentinel URL %s: the option %s is not supported; "+
				"give the master's credentials as user info (redis://user:password@host:26379) "+
				"and the Sentinels' as sentinel_username and sentinel_password", redact(raw), k)
		}
	}
	sentinelUser, sentinelPass := q.Get("sentinel_username"), q.Get("sentinel_password")
	q.Del("sentinel_username")
	q.Del("sentinel_password")
	user := u.User
	v := *u
	v.User = nil
	v.RawQuery = q.Encode()
	o, err := goredis.ParseFailoverURL(v.String())
	if err != nil {
		return nil, parseError(raw, err)
	}
	if o.RouteByLatency || o.RouteRandomly || o.ReplicaOnly {
		// NewFailoverClient panics on the first two; the third sends the
		// store's writes to read-only replicas.
		return nil, fmt.Errorf("redis: bad Sentinel URL %s: the options route_by_latency, route_randomly "+
			"and replica_only are not supported: the store reads and writes on the master", redact(raw))
	}
	if user != nil {
		o.Username = user.Username()
		o.Password, _ = user.Password()
	}
	o.SentinelUsername, o.SentinelPassword = sentinelUser, sentinelPass
	if u.Port() == "" {
		// ParseFailoverURL puts the URL's address first, with Redis's port.
		o.SentinelAddrs[0] = net.JoinHostPort(u.Hostname(), sentinelPort)
	}
	if o.TLSConfig != nil {
		// Check each certificate against the host dialed (go-redis's
		// tls.DialWithDialer fills it in), not the first Sentinel's name:
		// the master is somewhere else.
		o.TLSConfig.ServerName = ""
	}
	return o, nil
}

// sentinelError is the error of a PING through the Sentinels that failed.
func sentinelError(ctx context.Context, opt *goredis.FailoverOptions, urls []string, err error) error {
	redacted := make([]string, len(urls))
	for i, u := range urls {
		redacted[i] = redact(u)
	}
	at := "Sentinel at " + redacted[0]
	if len(urls) > 1 {
		at = "Sentinels at any of " + strings.Join(redacted, ", ")
	}
	if errors.Is(err, goredis.Nil) {
		// A Sentinel answered get-master-addr-by-name with nil.
		verb, they := "monitor", "they monitor"
		if len(urls) == 1 {
			verb, they = "monitors", "it monitors"
		}
		msg := fmt.Sprintf("redis: %s %s no master named %q", at, verb, opt.MasterName)
		if names := sentinelMasters(ctx, opt); len(names) > 0 {
			msg += fmt.Sprintf(" (%s %s)", they, strings.Join(names, ", "))
		}
		return errors.New(msg + "; use the master name of their \"sentinel monitor\" line")
	}
	verb := "connect to"
	if unavailable(err) {
		verb = "cannot reach"
		err = fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	return fmt.Errorf("redis: %s Redis master %q through the %s: %w", verb, opt.MasterName, at, err)
}

// sentinelMasters returns the quoted names of the masters that the first
// Sentinel that answers monitors, or nil.
func sentinelMasters(ctx context.Context, opt *goredis.FailoverOptions) []string {
	for _, addr := range opt.SentinelAddrs {
		c := goredis.NewSentinelClient(&goredis.Options{
			Addr:         addr,
			Username:     opt.SentinelUsername,
			Password:     opt.SentinelPassword,
			TLSConfig:    opt.TLSConfig,
			DialTimeout:  opt.DialTimeout,
			ReadTimeout:  opt.ReadTimeout,
			WriteTimeout: opt.WriteTimeout,
			PoolTimeout:  opt.PoolTimeout,
			MaxRetries:   -1,
		})
		masters, err := c.Masters(ctx).Result()
		_ = c.Close()
		if err != nil {
			continue
		}
		var names []string
		for _, m := range masters {
			if name := masterName(m); name != "" {
				names = append(names, fmt.Sprintf("%q", name))
			}
		}
		return names
	}
	return nil
}

// masterName returns the name field of one entry of SENTINEL MASTERS: a map
// in RESP3, a flat list of field names and values in RESP2.
func masterName(entry any) string {
	switch e := entry.(type) {
	case map[any]any:
		name, _ := e["name"].(string)
		return name
	case []any:
		for i := 0; i+1 < len(e); i += 2 {
			if e[i] == "name" {
				name, _ := e[i+1].(string)
				return name
			}
		}
	}
	return ""
}

// failFast sets the fail-fast timeouts and retries that the URL left
// unset; every kind of client (single, cluster, sentinel) gets the same.
func failFast(dial, read, write, pool *time.Duration, retries, dialerRetriesOpt *int) {
	*dial = orDefault(*dial, dialTimeout)
	*read = orDefault(*read, readTimeout)
	*write = orDefault(*write, writeTimeout)
	*pool = orDefault(*pool, poolTimeout)
	*retries = orDefault(*retries, maxRetries)
	*dialerRetriesOpt = orDefault(*dialerRetriesOpt, dialerRetries)
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// unreachable is the error of a PING that failed.
func unreachable(urls []string, err error) error {
	redacted := make([]string, len(urls))
	for i, u := range urls {
		redacted[i] = redact(u)
	}
	verb := "connect to"
	if unavailable(err) {
		verb = "cannot reach"
		err = fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	if len(urls) == 1 {
		return fmt.Errorf("redis: %s Redis at %s: %w", verb, redacted[0], err)
	}
	return fmt.Errorf("redis: %s Redis Cluster at any of %s: %w", verb, strings.Join(redacted, ", "), err)
}

// parseError reports a URL that go-redis cannot read, without the password,
// which url.Parse errors would quote.
func parseError(u string, err error) error {
	if uerr, ok := errors.AsType[*url.Error](err); ok {
		err = uerr.Err
	}
	return fmt.Errorf("redis: bad Redis URL %s: %w", redact(u), err)
}

// plainOptions are the go-redis URL query options whose values are not
// secret; redact hides the values of all others (password,
// sentinel_password, and misspellings of them).
var plainOptions = map[string]bool{
	"addr": true, "client_name": true, "conn_max_idle_time": true, "conn_max_lifetime": true,
	"conn_max_lifetime_jitter": true, "context_timeout_enabled": true, "db": true,
	"dial_timeout": true, "dialer_retries": true, "dialer_retry_timeout": true,
	"disableIdentity": true, "failing_timeout_seconds": true, "identitySuffix": true,
	"idle_timeout": true, "master_name": true, "max_active_conns": true,
	"max_concurrent_dials": true, "max_conn_age": true, "max_idle_conns": true,
	"max_redirects": true, "max_retries": true, "max_retry_backoff": true,
	"min_idle_conns": true, "min_retry_backoff": true, "pipeline_pool_size": true,
	"pipeline_read_buffer_size": true, "pipeline_write_buffer_size": true, "pool_fifo": true,
	"pool_size": true, "pool_timeout": true, "protocol": true, "read_only": true,
	"read_timeout": true, "replica_only": true, "route_by_latency": true,
	"route_by_latency_tolerance": true, "route_randomly": true, "sentinel_username": true,
	"skip_verify": true, "unstable_resp3": true, "use_disconnected_replicas": true,
	"username": true, "write_timeout": true,
}

// redact returns u without its passwords: the user info's, and the value of
// every query option that is not in plainOptions.
func redact(u string) string {
	p, err := url.Parse(u)
	if err == nil {
		if p.RawQuery != "" {
			q := p.Query()
			for k := range q {
				if !plainOptions[k] {
					q.Set(k, "xxxxx")
				}
			}
			p.RawQuery = q.Encode()
		}
		return p.Redacted()
	}
	// Unparsable: hide whatever is between the scheme and the last @, and
	// the query.
	head, tail := "", u
	if i := strings.Index(u, "://"); i >= 0 {
		head, tail = u[:i+3], u[i+3:]
	}
	if j := strings.LastIndex(tail, "@"); j >= 0 {
		head, tail = head+"xxxxx", tail[j:]
	}
	if k := strings.Index(tail, "?"); k >= 0 {
		tail = tail[:k+1] + "xxxxx"
	}
	return head + tail
}
