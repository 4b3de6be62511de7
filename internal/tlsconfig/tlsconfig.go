// Package tlsconfig builds jwtd's server TLS configuration: TLS 1.2 at
// least, a certificate that is reloaded when its files change (no restart),
// and an optional client CA whose certificates the admin and introspection
// routes require.
package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/jwtd/jwtd/internal/secretfile"
)

// checkEvery bounds how often a handshake looks at the files.
const checkEvery = time.Second

// Reloader serves the certificate of a cert/key file pair, reloading it
// when either file changes. A pair that fails to load keeps the previous
// certificate in service, and the failure is logged.
type Reloader struct {
	certFile, keyFile string
	files             secretfile.Policy // how the key file is read
	log               *slog.Logger
	now               func() time.Time

	mu        sync.Mutex
	cert      *tls.Certificate
	stamp     string // the files' size and mtime when cert was loaded
	lastCheck time.Time
}

// NewReloader loads the pair, the key file under the policy; an error here
// stops the start.
func NewReloader(certFile, keyFile string, files secretfile.Policy, log *slog.Logger) (*Reloader, error) {
	r := &Reloader{certFile: certFile, keyFile: keyFile, files: files, log: log, now: time.Now}
	stamp, err := r.stampFiles()
	if err != nil {
		return nil, err
	}
	cert, err := r.load()
	if err != nil {
		return nil, err
	}
	r.cert, r.stamp, r.lastCheck = cert, stamp, r.now()
	return r, nil
}

// load reads the pair: the key file only if others cannot change it (nor
// read it, unless the policy allows).
func (r *Reloader) load() (*tls.Certificate, error) {
	certPEM, err := secretfile.Public.Read(r.certFile)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	keyPEM, err := r.files.Read(r.keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	return &cert, nil
}

func (r *Reloader) stampFiles() (string, error) {
	var stamp string
	for _, f := range []string{r.certFile, r.keyFile} {
		info, err := os.Stat(f)
		if err != nil {
			return "", fmt.Errorf("tls: %w", err)
		}
		stamp += fmt.Sprintf("%d:%d;", info.Size(), info.ModTime().UnixNano())
	}
	return stamp, nil
}

// GetCertificate is tls.Config.GetCertificate.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := r.now(); now.Sub(r.lastCheck) >= checkEvery {
		r.lastCheck = now
		r.reloadLocked()
	}
	return r.cert, nil
}

func (r *Reloader) reloadLocked() {
	stamp, err := r.stampFiles()
	if err != nil || stamp == r.stamp {
		if err != nil {
			r.log.Error("TLS certificate files unreadable; serving the loaded one", "err", err)
		}
		return
	}
	cert, err := r.load()
	if err != nil {
		// Often the cert is written before the key: try again next time.
		r.log.Error("TLS certificate changed but does not load; serving the previous one", "err", err)
		return
	}
	r.cert, r.stamp = cert, stamp
	r.log.Info("TLS certificate reloaded", "file", r.certFile)
}

// Server returns the server TLS configuration: TLS 1.2 or 1.3, the
// reloading certificate, and, with a client CA file, client certificates
// verified against it when given (routes that need one check for it).
func Server(certFile, keyFile, clientCAFile string, files secretfile.Policy, log *slog.Logger) (*tls.Config, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("tls: cert_file and key_file are both required")
	}
	r, err := NewReloader(certFile, keyFile, files, log)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.GetCertificate,
		// TLS 1.2 with AEAD ciphers only (TLS 1.3 has no others): no CBC
		// suites, with their history of padding oracles.
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		}}
	if clientCAFile != "" {
		// Whoever could change the client CA could let themselves in.
		pem, err := secretfile.Public.Read(clientCAFile)
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls: %s holds no PEM certificate", clientCAFile)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	}
	return cfg, nil
}
