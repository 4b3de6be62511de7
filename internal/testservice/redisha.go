package testservice

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisSentinelBin is redis-sentinel (Debian's redis-sentinel package).
func RedisSentinelBin(t testing.TB) string { return needBin(t, "JWTD_TEST_REDIS_SENTINEL_BIN") }

// RedisCLIBin is redis-cli, which creates Redis Clusters.
func RedisCLIBin(t testing.TB) string { return needBin(t, "JWTD_TEST_REDIS_CLI_BIN") }

// needBin is a binary named by an environment variable, which must exist.
func needBin(t testing.TB, name string) string {
	t.Helper()
	bin := need(t, name)
	if _, err := os.Stat(bin); err != nil {
		missing(t, fmt.Sprintf("%s=%s: %v", name, bin, err))
	}
	return bin
}

// haTimeout bounds the setting up of a Sentinel set or a Cluster.
const haTimeout = 60 * time.Second

// startRedis runs one redis-server on a free loopback port with no
// persistence, plus extra arguments.
func startRedis(t testing.TB, dir string, extra ...string) *Process {
	t.Helper()
	addr := Addr(FreePort(t))
	port := addr[strings.LastIndex(addr, ":")+1:]
	args := append([]string{"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir}, extra...)
	return Start(t, addr, RedisBin(t), args...)
}

// Sentinel is a Redis primary, its replica and three Sentinels watching
// them, on loopback ports, as production runs them (a quorum of two).
type Sentinel struct {
	Master    string // the name the Sentinels know the primary by
	Primary   *Process
	Replica   *Process
	Sentinels []*Process
	// URL is the ratelimit.url: redis-sentinel://s1,s2,s3/master.
	URL string
}

// RedisSentinel starts a Sentinel set that fails over within seconds
// (down-after-milliseconds 1000), and returns once every Sentinel knows
// the replica and the other Sentinels, so that a failover can happen.
func RedisSentinel(t testing.TB) *Sentinel {
	t.Helper()
	sentinelBin := RedisSentinelBin(t)
	dir := t.TempDir()
	s := &Sentinel{Master: "jwtdmaster"}
	s.Primary = startRedis(t, dir)
	s.Replica = startRedis(t, dir, "--replicaof", "127.0.0.1", port(s.Primary.addr))
	var addrs []string
	for i := range 3 {
		addr := Addr(FreePort(t))
		conf := filepath.Join(dir, fmt.Sprintf("sentinel-%d.conf", i))
		text := fmt.Sprintf("port %s\nbind 127.0.0.1\ndir %s\n"+
			"sentinel monitor %s 127.0.0.1 %s 2\n"+
			"sentinel down-after-milliseconds %[3]s 1000\n"+
			"sentinel failover-timeout %[3]s 10000\n"+
			"sentinel parallel-syncs %[3]s 1\n", port(addr), dir, s.Master, port(s.Primary.addr))
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		s.Sentinels = append(s.Sentinels, Start(t, addr, sentinelBin, conf))
		addrs = append(addrs, addr)
	}
	s.URL = "redis-sentinel://" + strings.Join(addrs, ",") + "/" + s.Master
	ctx, cancel := context.WithTimeout(context.Background(), haTimeout)
	defer cancel()
	for _, addr := range addrs {
		c := redis.NewSentinelClient(&redis.Options{Addr: addr})
		defer c.Close()
		poll(t, ctx, "Sentinel "+addr+" knowing the replica and two other Sentinels", func() bool {
			replicas, err := c.Replicas(ctx, s.Master).Result()
			if err != nil || len(replicas) != 1 || !strings.Contains(replicas[0]["flags"], "slave") || strings.Contains(replicas[0]["flags"], "down") {
				return false
			}
			others, err := c.Sentinels(ctx, s.Master).Result()
			return err == nil && len(others) == 2
		})
	}
	waitInSync(t, ctx, s.Replica.addr)
	return s
}

// PrimaryAddr is the primary's address as the first Sentinel says it.
func (s *Sentinel) PrimaryAddr(ctx context.Context) (string, error) {
	c := redis.NewSentinelClient(&redis.Options{Addr: s.Sentinels[0].addr})
	defer c.Close()
	hp, err := c.GetMasterAddrByName(ctx, s.Master).Result()
	if err != nil {
		return "", err
	}
	return strings.Join(hp, ":"), nil
}

// Cluster is a Redis Cluster of three masters with a replica each.
type Cluster struct {
	Nodes []*Process
	// URL is the ratelimit.url: redis-cluster://n1,n2,... (every node).
	URL string
}

// RedisCluster starts six cluster nodes, makes them a cluster of three
// masters and three replicas with redis-cli (cluster-node-timeout 1000
// ms: a master that stops answering fails over within seconds), and
// returns once the cluster is up and every replica in sync.
func RedisCluster(t testing.TB) *Cluster {
	t.Helper()
	cli := RedisCLIBin(t)
	dir := t.TempDir()
	c := &Cluster{}
	var addrs []string
	for range 6 {
		n := len(c.Nodes)
		p := startRedis(t, dir, "--cluster-enabled", "yes", "--cluster-node-timeout", "1000",
			"--cluster-config-file", filepath.Join(dir, fmt.Sprintf("nodes-%d.conf", n)))
		c.Nodes = append(c.Nodes, p)
		addrs = append(addrs, p.addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), haTimeout)
	defer cancel()
	args := append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", "1", "--cluster-yes")
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	c.URL = "redis-cluster://" + strings.Join(addrs, ",")
	for _, addr := range addrs {
		n := redis.NewClient(&redis.Options{Addr: addr})
		defer n.Close()
		poll(t, ctx, "cluster node "+addr+" up", func() bool {
			info, err := n.ClusterInfo(ctx).Result()
			return err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, "cluster_known_nodes:6")
		})
		if role, _ := n.Do(ctx, "ROLE").Slice(); len(role) > 0 && role[0] == "slave" {
			waitInSync(t, ctx, addr)
		}
	}
	return c
}

// Masters returns the nodes that are masters now, as the first live node
// sees them.
func (c *Cluster) Masters(ctx context.Context) ([]*Process, error) {
	var lastErr error
	for _, p := range c.Nodes {
		if p.cmd == nil {
			continue
		}
		n := redis.NewClient(&redis.Options{Addr: p.addr})
		nodes, err := n.ClusterNodes(ctx).Result()
		n.Close()
		if err != nil {
			lastErr = err
			continue
		}
		var out []*Process
		for line := range strings.Lines(nodes) {
			f := strings.Fields(line)
			if len(f) < 3 || !strings.Contains(f[2], "master") || strings.Contains(f[2], "fail") {
				continue
			}
			addr, _, _ := strings.Cut(f[1], "@")
			for _, q := range c.Nodes {
				if q.addr == addr {
					out = append(out, q)
				}
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("no cluster node answers: %v", lastErr)
}

// Addr is the address the process listens on.
func (p *Process) Addr() string { return p.addr }

// waitInSync waits until the replica at addr has its master's data.
func waitInSync(t testing.TB, ctx context.Context, addr string) {
	t.Helper()
	n := redis.NewClient(&redis.Options{Addr: addr})
	defer n.Close()
	poll(t, ctx, "replica "+addr+" in sync", func() bool {
		info, err := n.Info(ctx, "replication").Result()
		return err == nil && strings.Contains(info, "master_link_status:up") && !strings.Contains(info, "master_sync_in_progress:1")
	})
}

// poll checks cond every 100 ms until it holds, and fails the test when
// ctx ends first.
func poll(t testing.TB, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func port(addr string) string {
	p := addr[strings.LastIndex(addr, ":")+1:]
	if _, err := strconv.Atoi(p); err != nil {
		panic("no port in " + addr)
	}
	return p
}
