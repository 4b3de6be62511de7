package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jwtd/jwtd/internal/apikey"
	"github.com/jwtd/jwtd/internal/testpki"
)

// TLS 1.0 and 1.1 are refused, 1.2 and 1.3 served; a certificate replaced
// on disk is served without a restart; with a client CA the admin and
// introspection routes refuse clients without a certificate from it.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "jwtd test CA")
	certFile, keyFile, sn1 := ca.WritePair(t, dir, "server", false)
	clientCA := testpki.NewCA(t, "client CA")
	cfg := writeFile(t, dir, "tls.yaml", fmt.Sprintf(`
tls: {cert_file: %q, key_file: %q, client_ca_file: %q}
api_keys:
  - {name: t, sha256: %q, scopes: [admin, issue, introspect]}
`, certFile, keyFile, clientCA.WriteCA(t, dir, "clientca"), apikey.Hash(testAdminKey)))
	base, _ := startServe(t, nil, "--config", cfg, "--data-dir", filepath.Join(dir, "data"))
	addr := strings.TrimPrefix(base, "http://")

	handshake := func(version uint16, certs ...tls.Certificate) (*tls.ConnectionState, error) {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{
			RootCAs: ca.Pool(), MinVersion: version, MaxVersion: version, Certificates: certs,
		})
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		st := conn.ConnectionState()
		return &st, nil
	}
	for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11} {
		if _, err := handshake(v); err == nil {
			t.Errorf("%s handshake accepted", tls.VersionName(v))
		}
	}
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		st, err := handshake(v)
		if err != nil || st.Version != v {
			t.Errorf("%s: %v", tls.VersionName(v), err)
		}
	}
	// TLS 1.2 with a CBC suite only: refused.
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{
		RootCAs: ca.Pool(), MaxVersion: tls.VersionTLS12,
		CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA},
	})
	if err == nil {
		conn.Close()
		t.Error("a CBC suite was accepted")
	}

	// Replace the certificate on disk: served without restart.
	_, _, sn2 := ca.WritePair(t, dir, "server", false)
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := handshake(tls.VersionTLS13)
		if err == nil && st.PeerCertificates[0].SerialNumber.Cmp(sn2) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still serving serial %v after the replacement (first %v, new %v): %v", st.PeerCertificates[0].SerialNumber, sn1, sn2, err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	client := func(certs ...tls.Certificate) *http.Client {
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), Certificates: certs}}}
	}
	get := func(c *http.Client, path string) (int, error) {
		req, _ := http.NewRequest("GET", "https://"+addr+path, nil)
		req.Header.Set("Authorization", "Bearer "+testAdminKey)
		resp, err := c.Do(req)
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	certPEM, keyPEM, _ := clientCA.Issue(t, "ops", true)
	good, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	otherPEM, otherKey, _ := testpki.NewCA(t, "stranger").Issue(t, "mallory", true)
	stranger, _ := tls.X509KeyPair(otherPEM, otherKey)

	if code, err := get(client(), "/v1/tokens/tx-1"); err != nil || code != 403 {
		t.Errorf("admin route without a client certificate: %d %v", code, err)
	}
	if code, err := get(client(good), "/v1/tokens/tx-1"); err != nil || code != 404 {
		t.Errorf("admin route with a client certificate: %d %v (want 404: no such XID)", code, err)
	}
	// Go's client sends no certificate the server's CA list does not name;
	// force it to, as an attacker would.
	forced := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: ca.Pool(),
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &stranger, nil
		},
	}}}
	if code, err := get(forced, "/v1/tokens/tx-1"); err == nil {
		t.Errorf("a certificate from another CA was accepted: %d", code)
	}
	if code, err := get(client(stranger), "/v1/tokens/tx-1"); err != nil || code != 403 {
		t.Errorf("a client holding only a stranger's certificate: %d %v", code, err)
	}
	// Public routes need no client certificate.
	if code, err := get(client(), "/v1/token/+14155552671/tx-1"); err != nil || code != 200 {
		t.Errorf("seed 000 route over TLS: %d %v", code, err)
	}
	// Plain HTTP to the TLS port gets nowhere.
	if resp, err := http.Get(base + "/healthz"); err == nil && resp.StatusCode == 200 {
		t.Error("plain HTTP served on the TLS listener")
	} else if err == nil {
		resp.Body.Close()
	}
}
