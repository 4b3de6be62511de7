package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/pflag"

	"github.com/jwtd/jwtd/internal/audit"
	"github.com/jwtd/jwtd/internal/keys"
	"github.com/jwtd/jwtd/internal/token"
)

const keysUsage = `Usage:
  jwtd keys list                                           every key: profile, kid, alg, state and times
  jwtd keys rotate --profile P                             start a rotation of a profile's managed keys now
  jwtd keys reseal                                         seal every managed key under the first master key
  jwtd keys show --profile P [--next]                      print a profile's key as its clients need it
  jwtd keys generate --alg ALG [--kid KID] [--out FILE]   make a new signing key
`

func cmdKeys(ctx context.Context, args []string, e env) error {
	sub, rest, err := subcommand(args, e, "keys", keysUsage, "generate", "show", "list", "rotate", "reseal")
	switch {
	case sub == "" || err != nil:
		return err
	case sub == "show":
		return cmdKeysShow(ctx, rest, e)
	case sub == "list":
		return cmdKeysList(ctx, rest, e)
	case sub == "rotate":
		return cmdKeysRotate(ctx, rest, e)
	case sub == "reseal":
		return cmdKeysReseal(ctx, rest, e)
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
			*kid = keys.SecretKid()
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
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s exists, and jwtd will not overwrite a key (the one there may still sign or verify tokens): "+
				"give another --out, or remove %s first if you are sure no configuration uses it", *out, *out)
		}
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
func cmdKeysShow(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("jwtd keys show", "jwtd keys show --profile P [--next]", e, "data_dir", "store.url")
	name := fs.String("profile", "", "the profile whose signing key to print")
	next := fs.Bool("next", false, "print the key published to sign next (a rotation under way), to hand to clients before it signs")
	if help, err := parseFlagsNoArgs(fs, args); help || err != nil {
		return err
	}
	c, p, err := loadProfile(ctx, fs, e, *name)
	if err != nil {
		return err
	}
	defer c.store.Close()
	k := p.Key
	if *next {
		i := slices.IndexFunc(p.VerifyKeys, (*keys.Key).PublishOnly)
		if i < 0 {
			list, err := listKeys(ctx, c.manager, c.svc)
			if err == nil && slices.Contains(keys.PendingRotations(list, time.Now()), p.Name) {
				return fmt.Errorf("profile %q: a rotation was started, and the servers make its next key at their next sync (within %s, key_store.sync_interval): run this again then",
					p.Name, c.cfg.KeyStore.SyncInterval)
			}
			return fmt.Errorf("profile %q has no next key: start a rotation with jwtd keys rotate --profile %s", p.Name, p.Name)
		}
		k = p.VerifyKeys[i]
	}
	secret := k.Secret()
	if secret != nil {
		// Recorded before the secret is printed: with audit.required, a
		// secret whose showing cannot be recorded is not shown.
		if err := cliAudit(ctx, c, e, audit.Entry{Action: audit.ActionKeyShow, Target: "profile:" + p.Name,
			Detail: "kid=" + k.Kid()}); err != nil {
			return err
		}
	}
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
			return fmt.Errorf("the secret of profile %q is not text, so a castlabs client cannot send it as Signing_key "+
				"(a key generated by a jwtd before 2026-11-26 is random bytes): configure a text secret for the profile "+
				"(keys: {secret: \"...\", encoding: raw}), or run jwtd keys rotate --profile %s so that jwtd makes a text one; "+
				"either way, castlabs tokens signed with the old key stop verifying once it is retired", p.Name, p.Name)
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

// cmdKeysList prints every key, never its material: the managed ones as
// the store holds them, and the configured ones.
func cmdKeysList(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("jwtd keys list", "jwtd keys list [--json]", e, "data_dir", "store.url")
	asJSON := fs.Bool("json", false, "print JSON, as GET /v1/keys answers")
	if help, err := parseFlagsNoArgs(fs, args); help || err != nil {
		return err
	}
	c, err := loadForCLI(ctx, fs, e)
	if err != nil {
		return err
	}
	defer c.store.Close()
	list, err := listKeys(ctx, c.manager, c.svc)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(e.stdout, map[string]any{"keys": list})
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PROFILE\tKID\tALG\tSTATE\tCREATED\tSIGNS FROM\tSIGNS UNTIL\tDELETED AFTER")
	at := func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return t.Format(time.RFC3339)
	}
	for _, k := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.Profile, k.Kid, k.Alg, k.State, at(k.Created), at(k.Activates), at(k.Retires), at(k.Deletes))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, name := range keys.PendingRotations(list, time.Now()) {
		fmt.Fprintf(e.stdout, "profile %s: rotation pending: the servers make its next key at their next sync (within %s, key_store.sync_interval), publish it at once, and it signs once verifiers can have it.\n",
			name, c.cfg.KeyStore.SyncInterval)
	}
	return nil
}

// cmdKeysRotate starts a rotation of a managed profile's keys in the
// store: the next key is published now and signs once verifiers have it.
// Running servers see it within key_store.sync_interval.
func cmdKeysRotate(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("jwtd keys rotate", "jwtd keys rotate --profile P", e, "data_dir", "store.url")
	name := fs.String("profile", "", "the managed profile whose keys to rotate")
	if help, err := parseFlagsNoArgs(fs, args); help || err != nil {
		return err
	}
	c, p, err := loadProfile(ctx, fs, e, *name)
	if err != nil {
		return err
	}
	defer c.store.Close()
	if _, err := c.manager.Rotate(ctx, *name, time.Now()); err != nil {
		return err
	}
	if err := cliAudit(ctx, c, e, audit.Entry{Action: audit.ActionKeyRotate, Target: "profile:" + *name}); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "profile %s: rotation started. The servers make the next key at their next sync (within %s), publish it at once, "+
		"and it signs once verifiers caching the JWKS can have it: jwtd keys list shows when.\n", *name, c.cfg.KeyStore.SyncInterval)
	if p.Key.Symmetric() {
		fmt.Fprintf(e.stdout, "Its key is a secret: give it to the profile's clients before it signs (jwtd keys show --profile %s --next).\n", *name)
	}
	return nil
}

// cmdKeysReseal seals every managed key under the first master key, so
// that the others can be dropped (master-key rotation).
func cmdKeysReseal(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("jwtd keys reseal", "JWTD_MASTER_KEY=NEW,OLD jwtd keys reseal", e, "data_dir", "store.url")
	if help, err := parseFlagsNoArgs(fs, args); help || err != nil {
		return err
	}
	c, err := loadForCLI(ctx, fs, e)
	if err != nil {
		return err
	}
	defer c.store.Close()
	if c.manager.Sealer == nil {
		return fmt.Errorf("no profile has managed keys, so there is nothing to reseal")
	}
	n, err := c.manager.Reseal(ctx, time.Now())
	if err != nil {
		return err
	}
	if err := cliAudit(ctx, c, e, audit.Entry{Action: audit.ActionKeyReseal, Target: "key_store", Detail: fmt.Sprintf("count=%d", n)}); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "resealed %d keys under the first master key; once every instance has it first, the others can be dropped.\n", n)
	return nil
}

// cliAudit records an action of a jwtd command in the instance's chain
// (actor cli) and waits for it. Not written: a warning, or with
// audit.required an error.
func cliAudit(ctx context.Context, c *cliKeys, e env, entry audit.Entry) error {
	t := audit.NewTrail(c.store, audit.Options{Chain: c.cfg.AuditInstance(), Timeout: c.cfg.Store.Timeout})
	defer t.Close()
	entry.Actor = audit.ActorCLI
	err := t.Commit(ctx, entry)
	switch {
	case err == nil:
		return nil
	case c.cfg.Audit.Required:
		return fmt.Errorf("audit.required is set and the audit entry of this action could not be written: %w", err)
	}
	fmt.Fprintf(e.stderr, "jwtd: warning: the audit entry of this action could not be written: %v\n", err)
	return nil
}

// loadProfile is loadForCLI for a command about one profile (--profile,
// required); the caller closes c.store.
func loadProfile(ctx context.Context, fs *pflag.FlagSet, e env, name string) (*cliKeys, *token.Profile, error) {
	if name == "" {
		return nil, nil, usageError(fs, "--profile is required")
	}
	c, err := loadForCLI(ctx, fs, e)
	if err != nil {
		return nil, nil, err
	}
	p, ok := c.svc.Profile(name)
	if !ok {
		c.store.Close()
		return nil, nil, c.svc.UnknownProfile(name)
	}
	return c, p, nil
}
