package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jwtd/jwtd/internal/apikey"
)

// An unauthenticated attacker sends what costs jwtd the most, from 32
// clients at once, against a real process. Each attack gets its expected
// answer, costs at most its CPU budget per request, and, while it runs,
// /healthz stays fast and the process's memory bounded. Before the cost
// budget (no caller-key semaphore, 1 MiB bodies read and decoded into maps)
// 32 such clients took the process to 455 MB and /healthz p50 to 258 ms.
//
// Under plain go test it asserts the answers (against the race-built test
// binary, for a short while); the budgets, several times what the attacks
// cost on an idle machine and far below what they cost without the
// defences, are asserted with -budgets (make bench), against a binary
// built with go build. Run with -v for the figures.
func TestExpensiveRequestsStayBounded(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads the process's memory and CPU time from /proc")
	}
	dir := t.TempDir()
	cfg := writeFile(t, dir, "c.yaml", `
ratelimit: {per_ip: "1000000 per second", per_ip_verify: "1000000 per second"}
`)
	cmd, base, _, _ := startProcess(t, "--config", cfg, "--data-dir", filepath.Join(dir, "data"))
	pid := cmd.Process.Pid

	type attack struct {
		name     string
		body     []byte
		want     []int         // the answers it may get
		cpuPerOK time.Duration // CPU per request answered with want[0]
	}
	rsaBody := func(e int) []byte { return verifyBody(t, rsaPublicPEM(t, 8192, e)) }
	attacks := []attack{
		// The costliest verification a caller can ask for: an 8192-bit key.
		// Past the caller-key slots the answer is 503 with Retry-After.
		{"RSA-8192 caller key", rsaBody(65537), []int{200, 503}, 20 * time.Millisecond},
		{"RSA-8192, e = 2^31-1", rsaBody(1<<31 - 1), []int{200, 503}, 30 * time.Millisecond},
		// 1 MiB of distinct members: refused by its Content-Length, unread.
		{"1 MiB of distinct members", manyMembers(1 << 20), []int{413}, 2 * time.Millisecond},
		// Just under the 16 KiB a token body may have: read, and refused.
		{"16 KiB of distinct members", manyMembers(16<<10 - 64), []int{400}, 2 * time.Millisecond},
		{"16 KiB of nesting", []byte(strings.Repeat("[", 16<<10-64)), []int{400}, 2 * time.Millisecond},
		{"16 KiB of nesting in a member", []byte(`{"Signing_key":` + strings.Repeat("[", 16<<10-64)), []int{400}, 2 * time.Millisecond},
	}

	health := func(n int) time.Duration {
		var lat []time.Duration
		for range n {
			start := time.Now()
			resp, err := http.Get(base + "/healthz")
			if err != nil {
				t.Fatalf("healthz: %v", err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			lat = append(lat, time.Since(start))
			time.Sleep(10 * time.Millisecond)
		}
		slices.Sort(lat)
		return lat[len(lat)/2]
	}
	baseRSS, baseP50 := processRSS(t, pid), health(30)
	t.Logf("at rest: RSS %d MB, /healthz p50 %s", baseRSS>>20, baseP50.Round(time.Microsecond))

	const clients = 32
	duration := 500 * time.Millisecond
	if *budgets {
		duration = 2 * time.Second
	}
	const maxRSS, maxHealthP50 = 256 << 20, 150 * time.Millisecond
	for _, a := range attacks {
		client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
		var mu sync.Mutex
		answers := map[int]int{}
		var clientErrors atomic.Int64
		cpuBefore := processCPU(t, pid)
		stop := time.Now().Add(duration)
		var wg sync.WaitGroup
		for range clients {
			wg.Go(func() {
				for time.Now().Before(stop) {
					req, _ := http.NewRequest("POST", base+"/verifyToken", bytes.NewReader(a.body))
					req.Header.Set("Content-Type", "application/json")
					resp, err := client.Do(req)
					if err != nil {
						// The 413 closes the connection while a 1 MiB body
						// is still being written.
						clientErrors.Add(1)
						continue
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					code := resp.StatusCode
					if code == 503 && resp.Header.Get("Retry-After") == "" {
						code = -503 // a 503 must say when to come back
					}
					mu.Lock()
					answers[code]++
					mu.Unlock()
				}
			})
		}
		var peakRSS int64
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			for time.Now().Before(stop) {
				peakRSS = max(peakRSS, processRSS(t, pid))
				time.Sleep(50 * time.Millisecond)
			}
		}()
		p50 := health(max(1, int(duration/(30*time.Millisecond))))
		wg.Wait()
		<-sampled
		cpu := processCPU(t, pid) - cpuBefore
		client.CloseIdleConnections()

		total := 0
		for code, n := range answers {
			total += n
			if !slices.Contains(a.want, code) {
				t.Errorf("%s: %d answered %d; want one of %v", a.name, n, code, a.want)
			}
		}
		ok := answers[a.want[0]]
		if ok == 0 {
			t.Errorf("%s: no request answered %d (%v, %d client errors)", a.name, a.want[0], answers, clientErrors.Load())
			continue
		}
		perOK := cpu / time.Duration(ok)
		t.Logf("%-28s %6d answered %v, %d client errors; CPU %s per %d; /healthz p50 %s; peak RSS %d MB",
			a.name, total, answers, clientErrors.Load(), perOK.Round(10*time.Microsecond), a.want[0],
			p50.Round(time.Microsecond), peakRSS>>20)
		if !*budgets {
			continue
		}
		if perOK > a.cpuPerOK {
			t.Errorf("%s: %s of CPU per request, over its budget of %s", a.name, perOK, a.cpuPerOK)
		}
		if p50 > maxHealthP50 {
			t.Errorf("%s: /healthz p50 %s under attack, over %s", a.name, p50, maxHealthP50)
		}
		if peakRSS > maxRSS {
			t.Errorf("%s: the process reached %d MB, over %d MB", a.name, peakRSS>>20, maxRSS>>20)
		}
	}
}

// verifyBody is a /verifyToken body: an RS256 token whose signature has the
// key's length (so that the verifier does the whole RSA operation) and the
// key.
func verifyBody(t *testing.T, keyPEM string) []byte {
	t.Helper()
	b64 := base64.RawURLEncoding.EncodeToString
	sig := make([]byte, 1024)
	_, _ = rand.Read(sig[1:]) // a leading zero keeps it under the modulus
	tok := b64([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." + b64([]byte(`{"sub":"x"}`)) + "." + b64(sig)
	body, err := json.Marshal(map[string]string{"Token": tok, "Signing_key": keyPEM})
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// rsaPublicPEM is a PEM public key with a modulus of the given size: any
// odd number of that size serves for verification cost, and making one
// takes no key generation.
func rsaPublicPEM(t *testing.T, bits, e int) string {
	t.Helper()
	buf := make([]byte, bits/8)
	_, _ = rand.Read(buf)
	buf[0] |= 0x80
	buf[len(buf)-1] |= 1
	der, err := x509.MarshalPKIXPublicKey(&rsa.PublicKey{N: new(big.Int).SetBytes(buf), E: e})
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// manyMembers is a JSON object of about size bytes, every member distinct.
func manyMembers(size int) []byte {
	b := []byte{'{'}
	for i := 0; len(b) < size-16; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		b = fmt.Appendf(b, `"k%d":0`, i)
	}
	return append(b, '}')
}

// processRSS is a process's resident memory in bytes.
func processRSS(t *testing.T, pid int) int64 {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(status)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// processCPU is a process's user and system CPU time so far.
func processCPU(t *testing.T, pid int) time.Duration {
	t.Helper()
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// The fields after the command's closing parenthesis; utime and stime
	// are the 14th and 15th of the line, in clock ticks (100 a second).
	_, rest, _ := strings.Cut(string(stat), ") ")
	f := strings.Fields(rest)
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// The hardening list, each attack over HTTP against a real process with
// its expected answer: a revoked castlabs token does not verify; a public
// key in any common encoding is never an HMAC secret; anonymous callers
// cannot use up what an API key's holder behind the same address may
// mint; tokens the verifier would refuse, or that are born expired, are
// not minted; names differing only in case are not one name.
func TestAttacksOverHTTP(t *testing.T) {
	dir := t.TempDir()
	const castlabsKey = "castlabs-key-0123456789abcdef-0123456789abcdef-0123456789abcdef-0123456789"
	cfg := writeFile(t, dir, "c.yaml", fmt.Sprintf(`
ratelimit: {per_ip: "5 per hour"}
keys:
  - {kid: cl1, alg: HS512, secret: %q, encoding: raw}
profiles:
  castlabs: {key: cl1}
api_keys:
  - {name: ops, sha256: %q, scopes: [admin, issue, introspect]}
`, castlabsKey, apikey.Hash(testAdminKey)))
	base, _ := startServe(t, nil, "--config", cfg, "--data-dir", filepath.Join(dir, "data"))
	verify := func(t *testing.T, body any) (ok bool, reason string) {
		t.Helper()
		b, _ := json.Marshal(body)
		code, out := httpDo(t, "POST", base+"/verifyToken", "", "application/json", string(b))
		var got struct {
			Verified bool   `json:"Signature Verification"`
			Error    string `json:"Error"`
		}
		if code != 200 || json.Unmarshal([]byte(out), &got) != nil {
			t.Fatalf("verifyToken: %d %s", code, out)
		}
		return got.Verified, got.Error
	}

	t.Run("revoked castlabs token", func(t *testing.T) {
		code, out := httpDo(t, "POST", base+"/v1/tokens", testAdminKey, "application/json", `{"profile":"castlabs"}`)
		var minted struct{ Token string }
		if code != 201 || json.Unmarshal([]byte(out), &minted) != nil {
			t.Fatalf("mint: %d %s", code, out)
		}
		key := castlabsKey
		if ok, reason := verify(t, map[string]string{"Token": minted.Token, "Signing_key": key}); !ok {
			t.Fatalf("before revocation: %v %s", ok, reason)
		}
		if code, out := httpDo(t, "POST", base+"/v1/revoke", testAdminKey, "application/json",
			fmt.Sprintf(`{"jti":%q}`, jtiOf(t, minted.Token))); code != 200 {
			t.Fatalf("revoke: %d %s", code, out)
		}
		if ok, reason := verify(t, map[string]string{"Token": minted.Token, "Signing_key": key}); ok || !strings.Contains(reason, "revoked") {
			t.Errorf("after revocation: verified %v, %q; want false, revoked", ok, reason)
		}
	})

	t.Run("public key as an HMAC secret", func(t *testing.T) {
		ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		der, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
		pemText := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
		for name, keyText := range map[string]string{
			"bare base64 DER":   base64.StdEncoding.EncodeToString(der),
			"PEM after a BOM":   "\ufeff" + pemText,
			"PEM after a label": "my key:\n" + pemText,
		} {
			// The attacker signs HS256 with the public key's text, as a
			// verifier that took it for a secret would check it.
			b64 := base64.RawURLEncoding.EncodeToString
			input := b64([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + b64([]byte(`{"sub":"x"}`))
			mac := hmac.New(sha256.New, []byte(keyText))
			mac.Write([]byte(input))
			tok := input + "." + b64(mac.Sum(nil))
			if ok, reason := verify(t, map[string]string{"Token": tok, "Signing_key": keyText}); ok {
				t.Errorf("%s: an HS256 token keyed with a public key verified (%s)", name, reason)
			}
		}
	})

	t.Run("user_data past the token cap", func(t *testing.T) {
		code, out := httpDo(t, "POST", base+"/generateToken", "", "application/json", `{"user_data":"`+strings.Repeat("x", 6000)+`"}`)
		if code != 400 || !strings.Contains(out, "8192") {
			t.Errorf("%d %s; want 400 naming the 8192-byte cap", code, out)
		}
	})

	t.Run("anonymous callers and an API key behind one address", func(t *testing.T) {
		for range 6 {
			httpDo(t, "POST", base+"/generateToken", "", "application/json", `{"user_data":"u"}`)
		}
		if code, _ := httpDo(t, "POST", base+"/generateToken", "", "application/json", `{"user_data":"u"}`); code != 429 {
			t.Fatalf("the anonymous bucket was not used up: %d", code)
		}
		if code, out := httpDo(t, "POST", base+"/v1/tokens", testAdminKey, "application/json", `{"profile":"default"}`); code != 201 {
			t.Errorf("the API key's holder: %d %s", code, out)
		}
	})

	for _, tc := range []struct{ name, body, want string }{
		{"a token over 8 KiB", `{"profile":"default","data":{"d":"` + strings.Repeat("x", 9000) + `"}}`, "8192"},
		{"ttl under a second", `{"profile":"default","ttl":"500ms"}`, "ttl"},
		{"ttl at the backdate", `{"profile":"appverify","phone":"+14155552671","ttl":"10s"}`, "ttl"},
		{"names differing in case", `{"PROFILE":"castlabs","profile":"default"}`, "PROFILE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out := httpDo(t, "POST", base+"/v1/tokens", testAdminKey, "application/json", tc.body)
			if code != 400 || !strings.Contains(out, tc.want) {
				t.Errorf("%d %s; want 400 saying %q", code, out, tc.want)
			}
		})
	}
}
