package keys

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/jwtd/jwtd/internal/secretfile"
)

// Spec is one entry of the configuration's keys list. Exactly one of Secret,
// SecretFile, PrivateKeyFile or PrivateKey gives the material.
type Spec struct {
	Kid            string
	Alg            string
	Secret         string
	Encoding       string // raw (default), base64, base64url, hex
	SecretFile     string
	PrivateKeyFile string
	PrivateKey     string // inline PEM
	PublishOnly    bool
}

// ManagedSpec is a profile's managed setting, in place of a configured
// key: jwtd makes the profile's keys, keeps them sealed in the record
// store, and rotates them.
type ManagedSpec struct {
	Alg string
	// RotateEvery is how long a key signs (default 720h).
	RotateEvery time.Duration
}

// Load builds a key from its Spec. Relative file names are resolved against
// dir (the configuration file's directory); files are read under the
// policy (secretfile: others may not change them, nor read them unless the
// policy allows). Errors name the kid and say why.
func Load(s Spec, dir string, files secretfile.Policy) (*Key, error) {
	k, err := load(s, dir, files)
	if err != nil {
		return nil, fmt.Errorf("key %q: %w", s.Kid, err)
	}
	return k, nil
}

func load(s Spec, dir string, files secretfile.Policy) (*Key, error) {
	if s.Kid == "" {
		return nil, errors.New("kid is required")
	}
	if !Supported(s.Alg) {
		return nil, fmt.Errorf("alg %q is not one of HS256/384/512, RS256/384/512, PS256/384/512, ES256/384/512, EdDSA", s.Alg)
	}
	sources := 0
	for _, v := range []string{s.Secret, s.SecretFile, s.PrivateKeyFile, s.PrivateKey} {
		if v != "" {
			sources++
		}
	}
	if sources != 1 {
		return nil, errors.New("give exactly one of secret, secret_file, private_key_file, private_key")
	}
	var material any
	switch {
	case s.Secret != "" || s.SecretFile != "":
		if !IsHMAC(s.Alg) {
			return nil, fmt.Errorf("%s takes private_key_file, not a secret", s.Alg)
		}
		text := s.Secret
		if s.SecretFile != "" {
			b, err := files.Read(resolve(dir, s.SecretFile))
			if err != nil {
				return nil, err
			}
			text = strings.TrimRight(string(b), "\r\n")
		}
		secret, err := DecodeSecret(text, s.Encoding)
		if err != nil {
			return nil, err
		}
		material = secret
	default:
		if IsHMAC(s.Alg) {
			return nil, fmt.Errorf("%s takes a secret, not a private key", s.Alg)
		}
		data := []byte(s.PrivateKey)
		if s.PrivateKeyFile != "" {
			b, err := files.Read(resolve(dir, s.PrivateKeyFile))
			if err != nil {
				return nil, err
			}
			data = b
		}
		priv, err := ParsePrivatePEM(data)
		if err != nil {
			return nil, err
		}
		material = priv
	}
	k, err := New(s.Kid, s.Alg, material)
	if err != nil {
		return nil, err
	}
	k.publishOnly = s.PublishOnly
	return k, nil
}

func resolve(dir, name string) string {
	if filepath.IsAbs(name) || dir == "" {
		return name
	}
	return filepath.Join(dir, name)
}

// DecodeSecret turns a configured secret into its bytes. The default
// encoding, raw, takes the string's UTF-8 bytes as they are.
func DecodeSecret(text, encoding string) ([]byte, error) {
	switch strings.ToLower(encoding) {
	case "", "raw":
		return []byte(text), nil
	case "base64":
		// Accept padded and unpadded standard base64, as API keys come both ways.
		b, err := base64.StdEncoding.DecodeString(text)
		if err != nil {
			b, err = base64.RawStdEncoding.DecodeString(text)
		}
		if err != nil {
			return nil, errors.New("secret is not valid base64")
		}
		return b, nil
	case "base64url":
		b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(text, "="))
		if err != nil {
			return nil, errors.New("secret is not valid base64url")
		}
		return b, nil
	case "hex":
		b, err := hex.DecodeString(text)
		if err != nil {
			return nil, errors.New("secret is not valid hex")
		}
		return b, nil
	}
	return nil, fmt.Errorf("encoding %q is not one of raw, base64, base64url, hex", encoding)
}

// ParsePrivatePEM reads the first PEM block of data as an RSA, EC or Ed25519
// private key (PKCS #8, PKCS #1 or SEC 1).
func ParsePrivatePEM(data []byte) (any, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	switch block.Type {
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, err
		}
		return k, nil
	case "RSA PRIVATE KEY":
		return x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		return x509.ParseECPrivateKey(block.Bytes)
	}
	return nil, fmt.Errorf("PEM block %q is not a private key", block.Type)
}

// ParsePublicPEM reads the first PEM block of data as a public key: PKIX
// ("PUBLIC KEY"), PKCS #1 ("RSA PUBLIC KEY") or the key of a certificate.
func ParsePublicPEM(data []byte) (any, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	switch block.Type {
	case "PUBLIC KEY":
		return x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		return x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		return c.PublicKey, nil
	case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY":
		return nil, errors.New("a private key was given; send only the public key")
	}
	return nil, fmt.Errorf("PEM block %q is not a public key", block.Type)
}

// MarshalPrivatePEM encodes a private key as a PKCS #8 PEM block.
func MarshalPrivatePEM(priv any) ([]byte, error) {
	switch priv.(type) {
	case *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey:
	default:
		return nil, fmt.Errorf("unsupported private key type %T", priv)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// MarshalPublicPEM encodes a key's public half as a PKIX PEM block.
func MarshalPublicPEM(pub any) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}
