package main

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/jwtd/jwtd/internal/config"
	"github.com/jwtd/jwtd/internal/keys"
	"github.com/jwtd/jwtd/internal/token"
)

const keysUsage = `Usage:
  jwtd keys generate --alg ALG [--kid KID] [--out FILE]   make a new signing key
  jwtd keys show --profile P                               print a profile's key as its clients need it
`

func cmdKeys(args []string, e env) error {
	sub, rest, err := subcommand(args, e, "keys", keysUsage, "generate", "show")
	switch {
	case sub == "" || err != nil:
		return err
	case sub == "show":
		return cmdKeysShow(rest, e)
	}
	fs := newFlagSet("jwtd keys generate", "jwtd keys generate --alg ALG [--kid KID] [--out FILE]", e)
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

// cmdKeysShow prints the key of a profile in the form the other side
// needs: a castlabs client's Signing_key (the secret's text), a TeleSign
// backend's API key (base64), the base64url secret of another HMAC
// profile, or the public key of an asymmetric one. A secret goes to stdout
// alone, so that it can be piped, and a warning to stderr.
func cmdKeysShow(args []string, e env) error {
	fs := newFlagSet("jwtd keys show", "jwtd keys show --profile P", e, "data_dir")
	name := fs.String("profile", "", "the profile whose signing key to print")
	if help, err := parseFlagsNoArgs(fs, args); help || err != nil {
		return err
	}
	if *name == "" {
		return usageError(fs, "--profile is required")
	}
	cfg, err := config.Load(fs, e.getenv)
	if err != nil {
		return err
	}
	svc, err := buildService(cfg, false)
	if err != nil {
		return err
	}
	p, ok := svc.Profile(*name)
	if !ok {
		var names []string
		for _, p := range svc.Profiles() {
			names = append(names, p.Name)
		}
		return fmt.Errorf("no profile %q; the profiles are %s", *name, strings.Join(names, ", "))
	}
	k := p.Key
	secret := k.Secret()
	if secret == nil {
		pemData, err := keys.MarshalPublicPEM(k.Public())
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "The public key of profile %q (kid %q, %s): verifiers may have it; it is also in /.well-known/jwks.json.\n", p.Name, k.Kid(), k.Alg())
		_, err = e.stdout.Write(pemData)
		return err
	}
	var text, form string
	switch p.Layout {
	case token.LayoutCastlabs:
		if !utf8.Valid(secret) || strings.ContainsFunc(string(secret), unicode.IsControl) {
			return fmt.Errorf("the secret of profile %q is not text, so a castlabs client cannot send it as Signing_key; "+
				"configure a text secret (keys: {secret: \"...\", encoding: raw}) for this profile", p.Name)
		}
		text, form = string(secret), "the castlabs clients' Signing_key (its text is the key)"
	case token.LayoutAppVerify:
		text, form = base64.StdEncoding.EncodeToString(secret), "the TeleSign API key form (base64), for the backend that verifies these tokens"
	default:
		text, form = base64.RawURLEncoding.EncodeToString(secret), "base64url"
	}
	fmt.Fprintf(e.stderr, "WARNING: this is the signing secret of profile %q (kid %q, %s), as %s.\n"+
		"Whoever has it can mint tokens jwtd accepts. Hand it over a secure channel only.\n", p.Name, k.Kid(), k.Alg(), form)
	_, err = fmt.Fprintln(e.stdout, text)
	return err
}
