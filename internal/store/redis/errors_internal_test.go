package redis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"

	goredis "github.com/redis/go-redis/v9"
)

// reply is a Redis error reply, as go-redis returns it.
type reply string

func (e reply) Error() string { return string(e) }
func (reply) RedisError()     {}

var _ goredis.Error = reply("")

func TestUnavailable(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, true},
		{io.EOF, true},
		{goredis.ErrClosed, true},
		{goredis.ErrPoolTimeout, true},
		{context.DeadlineExceeded, true},
		{reply("LOADING Redis is loading the dataset in memory"), true},
		{reply("READONLY You can't write against a read only replica."), true},
		{reply("CLUSTERDOWN The cluster is down"), true},
		{reply("TRYAGAIN Multiple keys request during rehashing of slot"), true},
		{reply("MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."), true},
		{reply("MOVED 3999 127.0.0.1:6381"), true},
		{reply("ASK 3999 127.0.0.1:6381"), true},
		{reply("BUSY Redis is busy running a script."), true},
		{reply("ERR max number of clients reached"), true},
		{fmt.Errorf("wrapped: %w", reply("LOADING Redis is loading")), true},
		{reply("ERR user_script:1: Script attempted to access nonexistent global variable"), false},
		{reply("WRONGPASS invalid username-password pair"), false},
		{reply("NOPERM this user has no permissions"), false},
		{reply("CROSSSLOT Keys in request don't hash to the same slot"), false},
		{reply("BUSYKEY Target key name already exists."), false},
	}
	for _, tt := range tests {
		if got := unavailable(tt.err); got != tt.want {
			t.Errorf("unavailable(%v) = %t, want %t", tt.err, got, tt.want)
		}
	}
}
