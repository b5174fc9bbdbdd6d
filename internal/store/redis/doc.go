// Package redis is the store.Store backend on Redis (a single server, a
// master found through Redis Sentinel, or Redis Cluster), shared by any
// number of issuer instances.
//
// # Keys
//
// Every key starts with the prefix (WithPrefix, default "issuer") and is
// derived from ids and usernames only, never from raw tokens or secrets:
//
//	issuer:{clients}        hash: client id → client (JSON)
//	issuer:{keys}           hash: kid → signing key (JSON, private key encrypted by the keys package)
//	issuer:fam:{<familyID>} hash: client_id, current, revoked ("1" once
//	                        revoked; absent or "0" before), expires_at
//	                        (Unix ms), scopes, audience (JSON, as
//	                        json.Marshal writes a []string)
//	issuer:famretry:{<familyID>}
//	                        hash: old, until (Unix ms), request, response:
//	                        the answer kept for a retry of the family's last
//	                        rotation (encrypted by the caller), in the
//	                        family's slot; it expires with its interval
//	issuer:rev:{<jti>}      string: revoked until (Unix ms)
//	issuer:{users}:user:<username>
//	                        hash: id, username, password_hash, disabled
//	                        ("1" or "0"), scopes and claims (JSON; scopes
//	                        null when the user has none, as distinct from
//	                        []), generation (integer), created_at and
//	                        updated_at (RFC 3339, as encoding/json writes a
//	                        time.Time)
//	issuer:{users}:ids      hash: user id → username, the index that keeps
//	                        user ids unique and lists the users
//
// Family and revoked-token keys carry a Redis expiry (PEXPIREAT) at their own
// expiry, so Redis frees them. The clients, keys and user keys never expire,
// and hold nothing but live records: the user-id index has one field per
// user, which DeleteUser removes with the user. The part in braces is the
// Redis Cluster hash tag. Every script touches one key, but the rotation
// that keeps an answer for a retry, which touches a family and its
// famretry key (both tagged with the family id), and the scripts that
// create or delete a user, which touch the user's hash and the user-id
// index: both have the tag {users}, so they are in one slot. ListUsers reads
// the index, then the user hashes in a pipeline. So every operation runs on
// Redis Cluster.
//
// # Atomicity
//
// Every operation that reads before it writes is one Lua script (run with
// EVALSHA, falling back to EVAL): creating a family only if no live one has
// the id, rotating a refresh token, revoking a family, keeping the later
// expiry of a revoked token, storing the first signing key, and every
// change of a user. A user's hash and the user-id index change in the same
// script, so the index never names a missing user nor misses one, and a
// script writes only the fields its operation changes, so no operation
// writes back a password hash it read earlier. Scripts report the outcomes
// that map to store's sentinel errors as status codes, not as Redis errors. Since a script runs alone on its node, concurrent rotations of one
// refresh token, from any number of instances, have exactly one winner.
//
// Expiry is decided by the clock of the store (time.Now, or WithNow), which
// scripts receive as an argument; Redis expiries only free memory. The
// clocks of the issuer instances should therefore agree to well within a
// token's lifetime, which NTP gives.
//
// # Client cache
//
// GetClient, which every token request calls, is served from an in-process
// cache. An entry is at most ClientCacheTTL old (WithClientCacheTTL, default
// 5s). CreateClient, UpdateClient and DeleteClient publish the client id on
// the channel "issuer:{clients}:changed" in the same script as the write, and
// every Store subscribes to it and drops the id at once, so that a deleted
// client, or one whose secret was rotated, stops working on every instance
// within a network round trip. If the message is lost (the subscription
// connection is down), a stale entry lives at most ClientCacheTTL; when the
// subscription is re-established, the whole cache is dropped.
//
// Ids that no client has are cached the same way (at most 10,000 of them, an
// arbitrary old one making room for a new one), so that after the first
// lookup a token request with an unknown client id costs no Redis round
// trip, as one with a known id costs none: the time of a failed
// authentication does not tell whether the id exists. CreateClient publishes
// the id it creates, so a new client works on every instance at once.
//
// Changes of signing keys are published on "issuer:{keys}:changed" and
// reported by KeyChanges, so that instances reload the key set at once.
//
// # Replicas
//
// Redis replicates asynchronously, so a failover can lose a change the store
// has reported done. With WithWaitReplicas(n, timeout), each change whose loss
// would make something work again that must not — a rotation, a revocation
// of a token or family, a change of a client, user or signing key — is
// followed by WAIT n timeout on the connection that made it (on Redis
// Cluster, the master of its key). When fewer than n replicas acknowledge
// it in time, the change stands on the master and the call fails with
// store.ErrNotReplicated and store.ErrUnavailable, so that the request is
// answered 503 and retried; a warning is logged. Changes whose loss fails
// closed do not wait: creating a family (a lost one makes its refresh token
// invalid), storing the first signing key, and the rehash of a user's
// password at login. docs/redis-durability.md has the reasoning.
//
// # Errors
//
// Errors are wrapped with the operation and id. An error that means Redis
// could not be reached or cannot serve now — a network error, a timeout, a
// closed client, or the replies LOADING, READONLY, CLUSTERDOWN, TRYAGAIN,
// MASTERDOWN, BUSY, MOVED and ASK (after go-redis gave up following them) —
// wraps store.ErrUnavailable, so that callers answer 503 and the request may
// be retried. Open sets short timeouts so that such failures come within
// seconds.
//
// The package needs Redis 6 or later; it is tested with Redis 7.
package redis
