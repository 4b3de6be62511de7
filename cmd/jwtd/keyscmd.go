package main

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"

	"github.com/jwtd/jwtd/internal/keys"
)

const keysUsage = `Usage:
  jwtd keys generate --alg ALG [--kid KID] [--out FILE]
`

func cmdKeys(args []string, e env) error {
	sub, rest, err := subcommand(args, e, "keys", keysUsage, "generate")
	if sub == "" || err != nil {
		return err
	}
	fs := newFlagSet("jwtd keys generate", "jwtd keys generate --alg ALG [--kid KID] [--out FILE]", e, false)
	alg := fs.String("alg", "", "HS256/384/512, RS256/384/512, PS256/384/512, ES256/384/512 or EdDSA")
	kid := fs.String("kid", "", "key id (default: the RFC 7638 thumbprint, or random for HS)")
	out := fs.String("out", "", "write the key to this file (0600, never overwritten) instead of stdout")
	if help, err := parseFlagsNoArgs(fs, rest); help || err != nil {
		return err
	}
	if !keys.Supported(*alg) {
		fmt.Fprintf(e.stderr, "jwtd keys generate: --alg %q is not supported\n", *alg)
		return exitCode(2)
	}
	material, err := keys.Generate(*alg)
	if err != nil {
		return err
	}
	k, err := keys.New(*kid, *alg, material)
	if err != nil {
		return err
	}
	var data []byte
	if secret, ok := material.([]byte); ok {
		data = []byte(base64.RawURLEncoding.EncodeToString(secret) + "\n")
		if *kid == "" {
			var b [6]byte
			_, _ = rand.Read(b[:])
			*kid = "hs-" + base64.RawURLEncoding.EncodeToString(b[:])
		}
	} else {
		if data, err = keys.MarshalPrivatePEM(material); err != nil {
			return err
		}
		if *kid == "" {
			if *kid, err = keys.Thumbprint(k.Public()); err != nil {
				return err
			}
		}
	}
	snippet := fmt.Sprintf("- {kid: %q, alg: %s, ", *kid, *alg)
	if k.Symmetric() {
		snippet += `secret: "<the secret above>", encoding: base64url}`
	} else {
		snippet += fmt.Sprintf("private_key_file: %q}", *out)
	}
	if *out == "" {
		if _, err := e.stdout.Write(data); err != nil {
			return err
		}
	} else {
		f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		if _, err := f.Write(data); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		if k.Symmetric() {
			snippet = fmt.Sprintf("- {kid: %q, alg: %s, secret_file: %q, encoding: base64url}", *kid, *alg, *out)
		}
	}
	fmt.Fprintf(e.stderr, "Add to the keys list of the configuration:\n  %s\n", snippet)
	return nil
}
