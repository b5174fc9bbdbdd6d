package redis

import (
	"context"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/issuer-oauth/issuer/internal/store"
)

// WithWaitReplicas makes every change that must survive a failover (see
// the package documentation) wait, with the Redis WAIT command, until n
// replicas have acknowledged it, for at most timeout; n 0 (the default)
// does not wait. When fewer acknowledge in time, the change stands on the
// master, and the call fails with store.ErrNotReplicated (wrapped with
// store.ErrUnavailable). A timeout of 0 or less means DefaultWaitTimeout:
// WAIT 0 would block until enough replicas come back.
func WithWaitReplicas(n int, timeout time.Duration) Option {
	return func(s *Store) {
		if timeout <= 0 {
			timeout = DefaultWaitTimeout
		}
		s.waitReplicas, s.waitTimeout = n, timeout
	}
}

// DefaultWaitTimeout is how long a change waits for its replicas when
// WithWaitReplicas is given no timeout.
const DefaultWaitTimeout = time.Second

// runDurably runs script on keys and, when the store waits for replicas and
// changed says that the script's reply reports a change, sends WAIT on the
// same connection: WAIT counts the replicas that have every write of its
// connection. It returns the script's command, whose error the caller
// reads as usual, and an error only when the WAIT failed or too few
// replicas acknowledged: the change then stands on the master.
func (s *Store) runDurably(ctx context.Context, op, id string, script *goredis.Script, changed func(*goredis.Cmd) bool,
	keys []string, args ...any) (*goredis.Cmd, error) {
	if s.waitReplicas <= 0 {
		return script.Run(ctx, s.client, keys, args...), nil
	}
	var node *goredis.Client
	switch c := s.client.(type) {
	case *goredis.Client: // a single server, or a failover client's master
		node = c
	case *goredis.ClusterClient:
		var err error
		if node, err = c.MasterForKey(ctx, keys[0]); err != nil {
			return nil, redisError(op, id, err)
		}
	default:
		return nil, opError(op, id, fmt.Errorf("waiting for replicas needs a single, Sentinel or Cluster client, not %T", s.client))
	}
	conn := node.Conn()
	defer conn.Close()
	cmd := script.Run(ctx, conn, keys, args...)
	if cmd.Err() != nil || !changed(cmd) {
		return cmd, nil
	}
	acked, err := conn.Wait(ctx, s.waitReplicas, s.waitTimeout).Result()
	if err != nil {
		s.logger.WarnContext(ctx, "redis: a change was made but WAIT for its replicas failed",
			"op", op, "replicas_wanted", s.waitReplicas, "err", err)
		return cmd, opError(op, id, fmt.Errorf("%w: %w: WAIT: %w", store.ErrUnavailable, store.ErrNotReplicated, err))
	}
	if int(acked) < s.waitReplicas {
		s.logger.WarnContext(ctx, "redis: a change was made but too few replicas acknowledged it; the request fails",
			"op", op, "replicas_wanted", s.waitReplicas, "replicas_acked", acked, "timeout", s.waitTimeout.String())
		return cmd, opError(op, id, fmt.Errorf("%w: %w: %d of %d replicas acknowledged within %s",
			store.ErrUnavailable, store.ErrNotReplicated, acked, s.waitReplicas, s.waitTimeout))
	}
	return cmd, nil
}

// changedOK reports a change when a script's status reply is OK.
func changedOK(cmd *goredis.Cmd) bool {
	code, err := cmd.Int()
	return err == nil && code == statusOK
}

// changedAlways reports a change whatever the reply: scripts that write
// whenever they succeed, or whose reply does not tell.
func changedAlways(*goredis.Cmd) bool { return true }

// changedRotation reports a change when a rotation succeeded or revoked
// its family (reuse).
func changedRotation(cmd *goredis.Cmd) bool {
	res, err := cmd.Slice()
	if err != nil || len(res) == 0 {
		return false
	}
	code, _ := res[0].(int64)
	return code == statusOK || code == statusReused
}

// changedUser reports a change when a user script returned the user
// (rather than a status code).
func changedUser(cmd *goredis.Cmd) bool {
	_, isList := cmd.Val().([]any)
	return isList
}
