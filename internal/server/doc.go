// Package server assembles the issuer. New is given a validated
// configuration and returns a runnable Server: it opens the store (Redis
// when a Redis URL is configured, the embedded bbolt store otherwise), loads
// or creates the signing keys, builds the limiter, the metrics, the token
// endpoint (internal/grant) and the admin API (internal/admin), and mounts
// them on one HTTP handler. Run serves it until its context ends, then shuts
// down gracefully.
//
// The HTTP interface itself is Handler: the routes, the RFC 8414
// authorization-server metadata, the RFC 7517 JWK Set endpoint, health
// checks, the Prometheus metrics endpoint, and what every request goes
// through: a request id (X-Request-Id), the client address behind trusted
// proxies, structured request logging and latency metrics.
//
// The import graph runs one way: cmd/issuer → server → grant, admin →
// keys, store. Nothing below this package knows about files, flags or the
// environment.
package server
