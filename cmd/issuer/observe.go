package main

import (
	"log/slog"
	"net/netip"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/issuer-oauth/issuer/internal/config"
	"github.com/issuer-oauth/issuer/internal/keys"
	"github.com/issuer-oauth/issuer/internal/metrics"
	"github.com/issuer-oauth/issuer/internal/ratelimit"
	"github.com/issuer-oauth/issuer/internal/store"
)

// observability is what every request goes through besides its handler:
// the metrics, the abuse limits, the trusted proxies, and the instrumented
// store.
type observability struct {
	metrics *metrics.Metrics
	limiter *ratelimit.Limiter
	proxies []netip.Prefix
	// store is the store the components use: st with metrics.
	store store.Store
	// counter is the limiter's Redis counter, nil when it counts in memory.
	counter *ratelimit.Redis
}

// redisBacked is a store on Redis (redisstore.Store).
type redisBacked interface {
	Client() goredis.UniversalClient
}

// newObservability builds the metrics and the limiter for the store st. The
// limiter counts in Redis when st is the Redis store (every instance shares
// the counts), in memory otherwise.
func newObservability(cfg config.Config, st store.Store, log *slog.Logger, now func() time.Time) *observability {
	m := metrics.New(versionString())
	o := &observability{metrics: m, proxies: cfg.TrustedProxyNets(), store: m.Store(st)}
	var counter ratelimit.Counter = ratelimit.NewMemory(now, 0)
	if rs, ok := st.(redisBacked); ok {
		o.counter = ratelimit.NewRedis(rs.Client(), "", ratelimit.WithLogger(log))
		counter = o.counter
	}
	o.limiter = ratelimit.New(counter, ratelimit.Config{
		Window:          cfg.AuthFailureWindow,
		AddressFailures: cfg.AuthFailuresPerAddress,
		ClientFailures:  cfg.AuthFailuresPerClient,
		QuotaPerMinute:  cfg.TokenQuotaPerMinute,
		OnLimited:       m.Limited,
		Logger:          log,
	})
	return o
}

// Close stops the limiter's subscription to Redis, if any; call it before
// closing the store, which owns the Redis client.
func (o *observability) Close() error {
	if o.counter == nil {
		return nil
	}
	return o.counter.Close()
}

// watchKeys exports the ages of k's signing keys.
func (o *observability) watchKeys(k *keys.Keys, now func() time.Time) {
	o.metrics.WatchKeys(func() []metrics.Key {
		infos := k.List()
		ks := make([]metrics.Key, len(infos))
		for i, ki := range infos {
			ks[i] = metrics.Key{ID: ki.ID, Alg: ki.Alg, State: ki.State, CreatedAt: ki.CreatedAt, NotBefore: ki.NotBefore}
		}
		return ks
	}, now)
}
