package httpapi

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/jwtd/jwtd/internal/keys"
	"github.com/jwtd/jwtd/internal/token"
)

// discoveryServer serves, on a real listener, a default profile whose
// issuer is the server's own URL and a "tenant" profile whose issuer is
// that URL with the path /tenant, each with its own ES256 key.
func discoveryServer(t *testing.T) (base string, svc *token.Service, h http.Handler) {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	base = "http://" + ts.Listener.Addr().String()
	var ks []*keys.Key
	for _, kid := range []string{"es-root", "es-tenant"} {
		ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		k, err := keys.New(kid, "ES256", ec)
		if err != nil {
			t.Fatal(err)
		}
		ks = append(ks, k)
	}
	av, _ := keys.New("av1", "HS256", []byte("appverify-secret-0123456789abcdef"))
	set, err := keys.NewSet(append(ks, av)...)
	if err != nil {
		t.Fatal(err)
	}
	svc, err = token.NewService(set, map[string]token.ProfileSpec{
		"default":   {Key: "es-root", Issuer: base, TTL: time.Minute},
		"tenant":    {Key: "es-tenant", Issuer: base + "/tenant", TTL: time.Minute},
		"appverify": {Key: "av1", Layout: token.LayoutAppVerify, Issuer: "cust", TTL: 90 * time.Second},
	}, token.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h = NewServer(testDeps(t, svc, testStore(t), nil, nil), Options{})
	ts.Config.Handler = h
	ts.Start()
	t.Cleanup(ts.Close)
	return base, svc, h
}

// A verifier that knows only the issuer finds jwtd's keys: go-oidc reads
// /.well-known/openid-configuration under the issuer, checks that it names
// that issuer, fetches jwks_uri and verifies a jwtd token with it. A
// profile whose issuer has a path is found through RFC 8414's location.
func TestDiscoveryWithGoOIDC(t *testing.T) {
	base, svc, _ := discoveryServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	provider, err := oidc.NewProvider(ctx, base)
	if err != nil {
		t.Fatalf("go-oidc discovering %s: %v", base, err)
	}
	verifier := provider.Verifier(&oidc.Config{ClientID: "client-a"})
	issued, err := svc.Issue("default", token.Request{Subject: "alice", Audience: "client-a"})
	if err != nil {
		t.Fatal(err)
	}
	idt, err := verifier.Verify(ctx, issued.Token)
	if err != nil {
		t.Fatalf("go-oidc verifying a jwtd token: %v", err)
	}
	if idt.Issuer != base || idt.Subject != "alice" {
		t.Errorf("verified iss %q sub %q", idt.Issuer, idt.Subject)
	}

	// The tenant's issuer: its RFC 8414 document, read into go-oidc's
	// provider configuration.
	var cfg oidc.ProviderConfig
	resp, err := http.Get(base + "/.well-known/oauth-authorization-server/tenant")
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(resp.Body).Decode(&cfg)
	resp.Body.Close()
	if err != nil || cfg.IssuerURL != base+"/tenant" || cfg.JWKSURL != base+"/.well-known/jwks.json" {
		t.Fatalf("the tenant's metadata: %+v %v", cfg, err)
	}
	tenantVerifier := cfg.NewProvider(ctx).Verifier(&oidc.Config{ClientID: "client-b"})
	tenantToken, err := svc.Issue("tenant", token.Request{Subject: "bob", Audience: "client-b"})
	if err != nil {
		t.Fatal(err)
	}
	if idt, err := tenantVerifier.Verify(ctx, tenantToken.Token); err != nil || idt.Subject != "bob" {
		t.Errorf("the tenant's token: %v", err)
	}
	// Each verifier holds its issuer: the other's token is refused.
	if _, err := verifier.Verify(ctx, tenantToken.Token); err == nil || !strings.Contains(err.Error(), "issued by a different provider") {
		t.Errorf("the tenant's token through the root issuer's verifier: %v", err)
	}
	if _, err := tenantVerifier.Verify(ctx, issued.Token); err == nil {
		t.Error("the root issuer's token through the tenant's verifier was accepted")
	}
	// A token signed by another key with the same kid is refused.
	forged := issued.Token[:strings.LastIndexByte(issued.Token, '.')+1] + strings.Repeat("A", 86)
	if _, err := verifier.Verify(ctx, forged); err == nil {
		t.Error("a token with a wrong signature verified")
	}
}

// Both well-known names, at the root and after them the issuer's path,
// answer the same document, valid against /openapi.json; a path no issuer
// has is a 404 naming the paths there are.
func TestDiscoveryDocuments(t *testing.T) {
	base, _, h := discoveryServer(t)
	v := openAPIValidator(t, h)
	for path, want := range map[string]string{
		"/.well-known/openid-configuration":                 base,
		"/.well-known/oauth-authorization-server":           base,
		"/.well-known/openid-configuration/tenant":          base + "/tenant",
		"/.well-known/oauth-authorization-server/tenant":    base + "/tenant",
		"/.well-known/oauth-authorization-server/tenant/":   base + "/tenant",
		"/.well-known/oauth-authorization-server/elsewhere": "",
	} {
		req := httptest.NewRequest("GET", path, nil)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if err := v.checkAnswer("GET", path, w); err != nil {
			t.Errorf("%s → %d: %v", path, w.Code, err)
		}
		if want == "" {
			if w.Code != 404 || !strings.Contains(w.Body.String(), "the issuer paths are /tenant") {
				t.Errorf("%s: %d %s", path, w.Code, w.Body)
			}
			continue
		}
		var got discoveryDocument
		if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || w.Code != 200 {
			t.Fatalf("%s: %d %s", path, w.Code, w.Body)
		}
		if got.Issuer != want || got.JWKSURI != base+"/.well-known/jwks.json" || strings.Join(got.SigningAlgs, ",") != "ES256" {
			t.Errorf("%s: %+v", path, got)
		}
	}
}

// Without an issuer URL the root document names the issuer the tokens
// carry and the JWKS of the host asked; without any issuer it says how to
// set one.
func TestDiscoveryWithoutIssuerURL(t *testing.T) {
	h, _ := testServer(t) // its default profile sets no issuer
	w := do(t, h, "GET", "/.well-known/openid-configuration", "", "")
	if w.Code != 404 || !strings.Contains(w.Body.String(), "set profiles.default.issuer") {
		t.Errorf("no issuer: %d %s", w.Code, w.Body)
	}
	es, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k, _ := keys.New("es1", "ES256", es)
	set, _ := keys.NewSet(k)
	svc, err := token.NewService(set, map[string]token.ProfileSpec{"default": {Key: "es1", Issuer: "jwtd"}}, token.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h = NewServer(testDeps(t, svc, nil, nil, nil), Options{})
	req := httptest.NewRequest("GET", "/.well-known/openid-configuration", nil)
	req.Host = "jwtd.internal:8080"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var got discoveryDocument
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || got.Issuer != "jwtd" || got.JWKSURI != "http://jwtd.internal:8080/.well-known/jwks.json" {
		t.Errorf("%d %s", rec.Code, rec.Body)
	}
}
