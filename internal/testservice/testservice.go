// Package testservice gives tests the real servers that `make test` starts
// (FerretDB for MongoDB, Redis), through environment variables. Under plain
// `go test` a test that needs a missing service is skipped; with
// JWTD_TEST_REQUIRE_SERVICES=1 (set by `make test`) it fails instead.
package testservice

import (
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

func need(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		missing(t, name+" is not set (make test starts the test services)")
	}
	return v
}

// missing skips the test for want of something, or fails it under
// JWTD_TEST_REQUIRE_SERVICES=1.
func missing(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("JWTD_TEST_REQUIRE_SERVICES") == "1" {
		t.Fatalf("%s, and JWTD_TEST_REQUIRE_SERVICES=1", why)
	}
	t.Skip(why)
}

// Root is for fault tests that mount file systems or make network
// namespaces: they need root and the named commands (mount, ip, tc).
func Root(t testing.TB, commands ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		missing(t, "this fault test needs root (it mounts a tmpfs or makes network namespaces)")
	}
	for _, c := range commands {
		if _, err := exec.LookPath(c); err != nil {
			missing(t, "this fault test needs "+c)
		}
	}
}

// MongoURL is the shared MongoDB-protocol server (FerretDB), as mongodb://host:port.
func MongoURL(t testing.TB) string { return need(t, "JWTD_TEST_MONGO_URL") }

// RedisURL is the shared Redis, as redis://host:port.
func RedisURL(t testing.TB) string { return need(t, "JWTD_TEST_REDIS_URL") }

// FerretDBBin is the FerretDB binary, for tests that start and stop their own.
func FerretDBBin(t testing.TB) string { return need(t, "JWTD_TEST_FERRETDB_BIN") }

// RedisBin is redis-server, for tests that start and stop their own.
func RedisBin(t testing.TB) string { return need(t, "JWTD_TEST_REDIS_BIN") }

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Process is a server the test started itself.
type Process struct {
	t    testing.TB
	args []string
	addr string
	cmd  *exec.Cmd
	done chan struct{}
}

// Start runs bin with args until Stop or the end of the test, and waits
// until addr accepts connections.
func Start(t testing.TB, addr, bin string, args ...string) *Process {
	t.Helper()
	p := &Process{t: t, args: append([]string{bin}, args...), addr: addr}
	p.Restart()
	t.Cleanup(p.Stop)
	return p
}

// Restart starts the process again (after Stop) with the same arguments.
func (p *Process) Restart() {
	p.t.Helper()
	p.cmd = exec.Command(p.args[0], p.args[1:]...)
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(p.cmd, p.done)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", p.addr); err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.t.Fatalf("%s did not listen on %s", p.args[0], p.addr)
}

// Stop kills the process and waits for it.
func (p *Process) Stop() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	p.cmd = nil
}

// Signal sends sig to the process: SIGSTOP freezes a server, SIGCONT
// thaws it.
func (p *Process) Signal(sig os.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
}

// Addr is "127.0.0.1:port".
func Addr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }
