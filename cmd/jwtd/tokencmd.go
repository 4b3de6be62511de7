package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/jwtd/jwtd/internal/mint"
	phonenum "github.com/jwtd/jwtd/internal/phone"
	"github.com/jwtd/jwtd/internal/record"
	"github.com/jwtd/jwtd/internal/strictjson"
	"github.com/jwtd/jwtd/internal/token"
)

const tokenUsage = `Usage:
  jwtd token sign [--profile P] [flags]   mint a token with the configured keys, recorded as the server records
  jwtd token verify [flags] TOKEN|-       verify a token as the server introspects it, revocation included
  jwtd token decode TOKEN|-               show a token's header and claims, unverified
`

func cmdToken(ctx context.Context, args []string, e env) error {
	sub, rest, err := subcommand(args, e, "token", tokenUsage, "sign", "verify", "decode")
	switch {
	case sub == "" || err != nil:
		return err
	case sub == "sign":
		return cmdTokenSign(ctx, rest, e)
	case sub == "verify":
		return cmdTokenVerify(ctx, rest, e)
	}
	return cmdTokenDecode(rest, e)
}

// cmdTokenSign mints through the server's own path (mint.Minter), so a
// token of a recording profile is in the store before it is printed; no
// rate limit applies.
func cmdTokenSign(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("jwtd token sign", "jwtd token sign [--profile P] [flags]", e, "data_dir", "store.url", "phone.default_region")
	profile := fs.String("profile", "default", "profile to mint with")
	sub := fs.String("sub", "", "subject (default layout)")
	aud := fs.String("aud", "", "audience (default layout)")
	data := fs.String("data", "", "caller data: JSON, or else taken as a string")
	phone := fs.String("phone", "", "phone number, E.164 or national in phone.default_region (appverify layout)")
	xid := fs.String("xid", "", "transaction ID (appverify layout)")
	ttl := fs.Duration("ttl", 0, "lifetime, at most the profile's")
	if help, err := parseFlagsNoArgs(fs, args); help || err != nil {
		return err
	}
	c, err := loadForCLI(ctx, fs, e)
	if err != nil {
		return err
	}
	defer c.store.Close()
	phones, err := phonenum.NewNormalizer(c.cfg.Phone.DefaultRegion, 1)
	if err != nil {
		return err
	}
	m := &mint.Minter{Tokens: func() *token.Service { return c.svc }, Phones: phones}
	if p, ok := c.svc.Profile(*profile); !ok || p.Record { // unknown: Mint resolves or refuses it
		m.Store = c.store
	}
	req := mint.Request{Profile: *profile, Subject: *sub, Audience: *aud, Phone: *phone, XID: *xid, TTL: *ttl}
	if *data != "" {
		if json.Valid([]byte(*data)) {
			req.Data = json.RawMessage(*data)
		} else {
			req.Data, _ = json.Marshal(*data)
		}
	}
	minted, err := m.Mint(ctx, req)
	switch {
	case errors.Is(err, phonenum.ErrInvalid):
		return fmt.Errorf("--phone: %w", err)
	case errors.Is(err, record.ErrInvalidXID):
		return fmt.Errorf("--xid: %w", err)
	case err != nil:
		return err
	}
	fmt.Fprintln(e.stdout, minted.Token)
	return nil
}

// verifyOutput is what "jwtd token verify" prints.
type verifyOutput struct {
	Active bool            `json:"active"`
	Reason string          `json:"reason,omitempty"`
	Error  string          `json:"error,omitempty"`
	Kid    string          `json:"kid,omitempty"`
	Header json.RawMessage `json:"header,omitempty"`
	Claims json.RawMessage `json:"claims,omitempty"`
}

// cmdTokenVerify verifies as /v1/introspect does, revocation included: it
// reads the configured store, and fails with an error rather than answer
// "active" when the store cannot be read.
func cmdTokenVerify(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("jwtd token verify", "jwtd token verify [flags] TOKEN|-", e, "data_dir", "store.url", "leeway")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	tok, err := tokenArg(fs.Args(), e)
	if err != nil {
		return err
	}
	c, err := loadForCLI(ctx, fs, e)
	if err != nil {
		return err
	}
	defer c.store.Close()
	v, verr := c.svc.Introspect(ctx, tok, c.store.ByJTI)
	if verr != nil && !token.IsReason(verr) {
		return fmt.Errorf("checking revocation: %w", verr)
	}
	out := verifyOutput{Active: verr == nil}
	if verr != nil {
		out.Reason, out.Error = token.Reason(verr), verr.Error()
	} else {
		out.Kid, out.Header, out.Claims = v.Key.Kid(), v.JWS.RawHeader, v.Claims.Raw
	}
	if err := printJSON(e.stdout, out); err != nil {
		return err
	}
	if verr != nil {
		return exitCode(1)
	}
	return nil
}

func cmdTokenDecode(args []string, e env) error {
	fs := newFlagSet("jwtd token decode", "jwtd token decode TOKEN|-", e)
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	tok, err := tokenArg(fs.Args(), e)
	if err != nil {
		return err
	}
	j, err := token.Decode(tok)
	if err != nil {
		return err
	}
	out := struct {
		Header  json.RawMessage `json:"header"`
		Claims  json.RawMessage `json:"claims,omitempty"`
		Payload string          `json:"payload,omitempty"`
		Note    string          `json:"note"`
	}{Header: j.RawHeader, Note: "decoded only: the signature was not checked"}
	if strictjson.CheckObject(j.Payload, 16) == nil {
		out.Claims = j.Payload
	} else {
		out.Payload = string(j.Payload)
	}
	return printJSON(e.stdout, out)
}

// tokenArg takes the token from the one argument, or from stdin for "-".
func tokenArg(args []string, e env) (string, error) {
	if len(args) != 1 {
		return "", errors.New("give exactly one token, or - to read it from stdin")
	}
	if args[0] != "-" {
		return args[0], nil
	}
	line, err := bufio.NewReader(io.LimitReader(e.stdin, token.MaxTokenBytes+2)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	return strings.TrimSpace(line), nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
