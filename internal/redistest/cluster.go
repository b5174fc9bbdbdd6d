package redistest

import (
	"context"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/issuer-oauth/issuer/internal/testutil"
)

// clusterBusOffset is the distance between a node's port and its cluster
// bus port, fixed by Redis.
const clusterBusOffset = 10000

// Cluster is a Redis Cluster of masters without replicas, owned by a test.
type Cluster struct {
	// Nodes are the masters, in the order of Addrs.
	Nodes []*Server
}

// StartCluster starts n masters with cluster mode on (at least 3, as
// redis-cli requires), joins them with `redis-cli --cluster create`, which
// spreads the 16384 slots over them, and waits until every node reports
// cluster_state:ok. The nodes are stopped in t.Cleanup.
func StartCluster(t testing.TB, n int, opts ...Option) *Cluster {
	t.Helper()
	if n < 3 {
		t.Fatalf("redistest: StartCluster(%d): a cluster needs at least 3 masters", n)
	}
	cli := lookPath(t, "redis-cli")
	var c config
	for _, opt := range opts {
		opt(&c)
	}
	extra := []string{
		"--cluster-enabled", "yes",
		"--cluster-config-file", "nodes.conf",
		"--cluster-node-timeout", "5000",
	}
	cl := &Cluster{}
	for range n {
		cl.Nodes = append(cl.Nodes, start(t, c, extra, clusterPort))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := append([]string{"--cluster", "create"}, cl.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if c.password != "" {
		args = append(args, "-a", c.password, "--no-auth-warning")
	}
	out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("redistest: redis-cli %s: %v\n%s", strings.Join(args, " "), err, out)
	}

	deadline := time.Now().Add(readyTimeout)
	for _, node := range cl.Nodes {
		for {
			info, err := node.Do("CLUSTER", "INFO")
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("redistest: cluster node %s not ok after %s: %v\n%s\nredis-cli output:\n%s",
					node.Addr(), readyTimeout, err, info, out)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return cl
}

// Addrs returns the host:port of every master.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		addrs[i] = n.Addr()
	}
	return addrs
}

// URL returns the comma-separated redis:// seed URLs of every master, the
// form ISSUER_REDIS_URL takes for a cluster.
func (c *Cluster) URL() string {
	urls := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		urls[i] = strings.TrimSuffix(n.URL(), "/0")
	}
	return strings.Join(urls, ",")
}

// clusterPort returns a free port whose cluster bus port (port+10000) is a
// valid port and free as well.
func clusterPort(t testing.TB) int {
	t.Helper()
	for range 100 {
		p := testutil.FreePort(t)
		if p+clusterBusOffset > 65535 {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p+clusterBusOffset)))
		if err != nil {
			continue
		}
		l.Close()
		return p
	}
	t.Fatal("redistest: no free port pair for a cluster node")
	return 0
}
