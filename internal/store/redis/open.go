package redis

import (
	"context"
	"errors"
	"fmt"
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
// Errors never contain the password. An unreachable Redis gives an error
// wrapping store.ErrUnavailable that names the URL.
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
	client, err := connect(ctx, list)
	if err != nil {
		return nil, err
	}
	s := New(client, opts...)
	s.owned = true
	return s, nil
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
	opt.DialTimeout = orDefault(opt.DialTimeout, dialTimeout)
	opt.ReadTimeout = orDefault(opt.ReadTimeout, readTimeout)
	opt.WriteTimeout = orDefault(opt.WriteTimeout, writeTimeout)
	opt.PoolTimeout = orDefault(opt.PoolTimeout, poolTimeout)
	opt.MaxRetries = orDefault(opt.MaxRetries, maxRetries)
	opt.DialerRetries = orDefault(opt.DialerRetries, dialerRetries)
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
	opt.DialTimeout = orDefault(opt.DialTimeout, dialTimeout)
	opt.ReadTimeout = orDefault(opt.ReadTimeout, readTimeout)
	opt.WriteTimeout = orDefault(opt.WriteTimeout, writeTimeout)
	opt.PoolTimeout = orDefault(opt.PoolTimeout, poolTimeout)
	opt.MaxRetries = orDefault(opt.MaxRetries, maxRetries)
	opt.DialerRetries = orDefault(opt.DialerRetries, dialerRetries)
	c := goredis.NewClusterClient(opt)
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		return nil, unreachable(urls, err)
	}
	return c, nil
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

// redact returns u without its password.
func redact(u string) string {
	p, err := url.Parse(u)
	if err == nil {
		return p.Redacted()
	}
	// Unparsable: hide whatever is between the scheme and the last @.
	i, j := strings.Index(u, "://"), strings.LastIndex(u, "@")
	if i >= 0 && j > i {
		return u[:i+3] + "xxxxx" + u[j:]
	}
	if j >= 0 {
		return "xxxxx" + u[j:]
	}
	return u
}
