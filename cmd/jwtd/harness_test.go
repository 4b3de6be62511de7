package main

// The one harness of jwtd's end-to-end tests. A server runs in-process by
// default (startServe: run() on 127.0.0.1:0, stopped when the test ends);
// a test that needs a process of its own, for signals, exit statuses or
// the process's memory and CPU, starts jwtdBinary (startProcess). runCLI
// runs one command in-process; httpDo, get and status ask a server.

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// logSink collects a server's stderr and reports the address it listens on.
type logSink struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	addrs chan string
}

func newLogSink() *logSink { return &logSink{addrs: make(chan string, 1)} }

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	for _, line := range strings.Split(string(p), "\n") {
		var rec struct{ Msg, Addr string }
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "listening" {
			select {
			case l.addrs <- rec.Addr:
			default:
			}
		}
	}
	return len(p), nil
}

// Reset forgets what was logged so far.
func (l *logSink) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Reset()
}

func (l *logSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// waitAddr waits for the listening line, then for /healthz to answer (any
// answer: a TLS listener answers plain HTTP with 400).
func (l *logSink) waitAddr(t *testing.T, done <-chan error) string {
	t.Helper()
	select {
	case addr := <-l.addrs:
		base := "http://" + addr
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if resp, err := http.Get(base + "/healthz"); err == nil {
				resp.Body.Close()
				return base
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("/healthz never answered\n%s", l)
	case err := <-done:
		t.Fatalf("server exited: %v\n%s", err, l)
	case <-time.After(20 * time.Second):
		t.Fatalf("server did not start\n%s", l)
	}
	return ""
}

// startServe runs "jwtd serve" in-process on 127.0.0.1:0 and stops it when
// the test ends.
func startServe(t *testing.T, env map[string]string, args ...string) (base string, logs *logSink) {
	t.Helper()
	base, logs, _ = startServeFull(t, env, args...)
	return base, logs
}

// startServeStoppable is startServe with a stop function to call mid-test.
func startServeStoppable(t *testing.T, env map[string]string, args ...string) (base string, stop func()) {
	t.Helper()
	base, _, stop = startServeFull(t, env, args...)
	return base, stop
}

func startServeFull(t *testing.T, env map[string]string, args ...string) (string, *logSink, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := newLogSink()
	done := make(chan error, 1)
	argv := append([]string{"jwtd", "serve", "--listen", "127.0.0.1:0"}, args...)
	go func() {
		done <- run(ctx, argv, environ(env), strings.NewReader(""), io.Discard, logs)
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("serve returned %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Error("serve did not stop")
			}
		})
	}
	t.Cleanup(stop)
	return logs.waitAddr(t, done), logs, stop
}

// firstStart starts the server once and stops it: the keys it keeps are
// made, as the CLI expects to find them.
func firstStart(t *testing.T, env map[string]string, args ...string) {
	t.Helper()
	_, stop := startServeStoppable(t, env, args...)
	stop()
}

// runCLI runs one jwtd command in-process.
func runCLI(t *testing.T, env map[string]string, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	err = run(context.Background(), append([]string{"jwtd"}, args...), environ(env), strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), err
}

// environ is env as run takes it: "NAME=value" pairs.
func environ(env map[string]string) []string {
	var out []string
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// jwtdBinary is jwtd built with go build, for the tests that need a
// process of its own (signals, exit statuses, the process's memory and
// CPU). It is built once per run, by the first such test: call
// processBinary, which waits for it.
var jwtdBinary string

var (
	buildOnce sync.Once
	buildErr  error
)

// budgets turns on the CPU, memory and latency budgets of the exhaustion
// test (make bench): under plain go test it asserts behaviour only.
var budgets = flag.Bool("budgets", false, "assert the CPU, memory and latency budgets (make bench)")

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "jwtd-bin-")
	if err != nil {
		panic(err)
	}
	jwtdBinary = filepath.Join(dir, "jwtd")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// processBinary builds jwtdBinary on its first call and returns its path.
func processBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		// Built as make build builds it (and make lint vets), so that
		// from a fresh clone the three compile jwtd's dependencies once.
		cmd := exec.Command("go", "build", "-trimpath", "-o", jwtdBinary, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("building jwtd: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return jwtdBinary
}

// startProcess runs jwtdBinary's serve on 127.0.0.1:0.
func startProcess(t *testing.T, args ...string) (*exec.Cmd, string, *logSink, chan error) {
	t.Helper()
	return startProcessEnv(t, nil, args...)
}

// startProcessEnv is startProcess with environment variables ("K=V").
func startProcessEnv(t *testing.T, env []string, args ...string) (*exec.Cmd, string, *logSink, chan error) {
	t.Helper()
	logs := newLogSink()
	cmd := exec.Command(processBinary(t), append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)...)
	cmd.Stderr = logs
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1) // the exit status, for whoever waits on it
	exited := make(chan struct{})
	go func() { done <- cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	return cmd, logs.waitAddr(t, done), logs, done
}

// runProcess runs one jwtd command as a process of jwtdBinary, with the
// environment env (and PATH), for at most a minute.
func runProcess(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, processBinary(t), args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return out.String(), errb.String(), err
}

func waitLog(t *testing.T, logs *logSink, text string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if strings.Contains(logs.String(), text) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("log never said %q\n%s", text, logs)
}

func httpDo(t *testing.T, method, u, key, contentType, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, u, strings.NewReader(body))
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func status(url string) int {
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}
