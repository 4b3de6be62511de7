package httpapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/pb33f/libopenapi"
	openapivalidator "github.com/pb33f/libopenapi-validator"
	validator "github.com/pb33f/libopenapi-validator/schema_validation"

	"github.com/jwtd/jwtd/internal/metrics"
)

// /openapi.json is valid OpenAPI 3.1, describes every route of the router,
// and nothing the router does not serve.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	h, svc, store := testServerAt(t, nil)
	w := do(t, h, "GET", "/openapi.json", "", "")
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("GET /openapi.json: %d %s", w.Code, w.Header().Get("Content-Type"))
	}
	doc, err := libopenapi.NewDocument(w.Body.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if v := doc.GetVersion(); v != "3.1.0" {
		t.Errorf("OpenAPI version %q", v)
	}
	if ok, errs := validator.ValidateOpenAPIDocument(doc); !ok {
		for _, e := range errs {
			t.Errorf("invalid OpenAPI: %s (%s)", e.Message, e.Reason)
			for _, se := range e.SchemaValidationErrors {
				t.Errorf("  %s: %s", se.FieldPath, se.Reason)
			}
		}
	}

	var parsed struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &parsed); err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for path, ops := range parsed.Paths {
		for method := range ops {
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	// Every route, as its method and path: a pattern without a method
	// (seed 000, registered for all to answer 405 itself) is documented
	// as the GET it serves; /{$} is the path /.
	d := testDeps(t, svc, store, nil, nil)
	d.Metrics = metrics.New()
	s := &Server{Deps: d}
	routed := map[string]bool{}
	for _, r := range s.routeTable() {
		method, path, ok := strings.Cut(r.pattern, " ")
		if !ok {
			method, path = "GET", r.pattern
		}
		path = strings.TrimSuffix(path, "{$}")
		path = strings.ReplaceAll(path, "...}", "}") // {rest...} is an OpenAPI parameter like any other
		routed[method+" "+path] = true
	}
	for r := range routed {
		if !documented[r] {
			t.Errorf("%s is routed but not in /openapi.json", r)
		}
	}
	var extra []string
	for d := range documented {
		if !routed[d] {
			extra = append(extra, d)
		}
	}
	sort.Strings(extra)
	if len(extra) > 0 {
		t.Errorf("in /openapi.json but not routed: %v", extra)
	}
}

// The console is served with a policy that lets it load only its own files,
// connect only to this origin and be framed by nobody; / leads to it.
func TestConsoleServed(t *testing.T) {
	h, _ := testServer(t)
	w := do(t, h, "GET", "/", "", "")
	if w.Code != 302 || w.Header().Get("Location") != "/console/" {
		t.Errorf("GET /: %d %s", w.Code, w.Header().Get("Location"))
	}
	for path, ct := range map[string]string{"/console/": "text/html", "/console/console.js": "javascript", "/console/console.css": "text/css"} {
		w := do(t, h, "GET", path, "", "")
		csp := w.Header().Get("Content-Security-Policy")
		if w.Code != 200 || !strings.Contains(w.Header().Get("Content-Type"), ct) ||
			!strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "connect-src 'self'") ||
			!strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe") {
			t.Errorf("GET %s: %d %q %q", path, w.Code, w.Header().Get("Content-Type"), csp)
		}
	}
	// No inline script or style, nothing from another origin.
	page := do(t, h, "GET", "/console/", "", "").Body.String()
	for _, bad := range []string{"<script>", "style=", "onclick", "http://", "https://"} {
		if strings.Contains(page, bad) {
			t.Errorf("the page has %q", bad)
		}
	}
	if w := do(t, h, "GET", "/console/nothing.js", "", ""); w.Code != 404 {
		t.Errorf("a file the console does not have: %d", w.Code)
	}
}

// Real requests and their answers, each validated against /openapi.json:
// the document says what the handlers do, bodies and statuses included.
func TestOpenAPIMatchesAnswers(t *testing.T) {
	h, _ := testServer(t)
	v := openAPIValidator(t, h)
	mint := do(t, h, "GET", "/v1/token/+14155552671/tx-oa", "", "")
	token := strings.TrimSpace(mint.Body.String())
	for _, c := range []struct{ method, path, key, ct, body string }{
		{"GET", "/v1/token/+14155552671/tx-oa", "", "", ""},
		{"GET", "/v1/token/nonsense", "", "", ""},
		{"POST", "/generateToken", "", "application/json", `{"user_data":"x"}`},
		{"POST", "/verifyToken", "", "application/json", `{"Token":"` + token + `","Signing_key":"k"}`},
		{"POST", "/verifyToken", "", "application/json", `{"Signing_key":"k"}`},
		{"POST", "/v1/tokens", issuerKey, "application/json", `{"profile":"default","sub":"a"}`},
		{"POST", "/v1/tokens", "", "application/json", `{"profile":"default"}`},
		{"POST", "/v1/tokens", issuerKey, "application/json", `{"profile":"nope"}`},
		{"GET", "/v1/tokens/tx-oa", adminKey, "", ""},
		{"GET", "/v1/tokens/tx-none", adminKey, "", ""},
		{"GET", "/v1/tokens?phone=%2B14155552671&limit=1", adminKey, "", ""},
		{"POST", "/v1/introspect", introspectKey, "application/x-www-form-urlencoded", "token=" + token},
		{"POST", "/v1/transactions/tx-oa/outcome", outcomeKey, "application/json", `{"code":2401,"source":"t"}`},
		{"POST", "/v1/transactions/tx-oa/outcome", outcomeKey, "application/json", `{"code":1}`},
		{"POST", "/v1/revoke", adminKey, "application/json", `{"xid":"tx-oa"}`},
		{"GET", "/v1/whoami", introspectKey, "", ""},
		{"GET", "/v1/activity", adminKey, "", ""},
		{"GET", "/v1/activity", introspectKey, "", ""},
		{"GET", "/v1/keys", adminKey, "", ""},
		{"GET", "/v1/audit?limit=2", adminKey, "", ""},
		{"GET", "/v1/audit?action=token.revoke&since=2026-01-01T00:00:00Z", adminKey, "", ""},
		{"GET", "/v1/audit?cursor=nonsense", adminKey, "", ""},
		{"GET", "/v1/audit?since=yesterday", adminKey, "", ""},
		{"POST", "/v1/keys/rotate", adminKey, "application/json", `{"profile":"default"}`},
		{"POST", "/v1/keys/rotate", adminKey, "application/json", `{"profile":"busy"}`},
		{"POST", "/v1/keys/rotate", adminKey, "application/json", `{"profile":"appverify"}`},
		{"POST", "/v1/keys/rotate", adminKey, "application/json", `{"profile":"nope"}`},
		{"POST", "/v1/keys/rotate", adminKey, "application/json", `{}`},
		{"POST", "/v1/keys/rotate", issuerKey, "application/json", `{"profile":"default"}`},
		{"GET", "/.well-known/jwks.json", "", "", ""},
		{"GET", "/.well-known/openid-configuration", "", "", ""},
		{"GET", "/.well-known/oauth-authorization-server", "", "", ""},
		{"GET", "/.well-known/openid-configuration/nobody", "", "", ""},
		{"GET", "/.well-known/oauth-authorization-server/nobody", "", "", ""},
		{"GET", "/healthz", "", "", ""},
		{"GET", "/readyz", "", "", ""},
	} {
		w := doAuth(t, h, c.method, c.path, c.key, c.ct, c.body)
		req := httptest.NewRequest(c.method, c.path, strings.NewReader(c.body))
		if c.ct != "" {
			req.Header.Set("Content-Type", c.ct)
		}
		if c.key != "" {
			req.Header.Set("Authorization", "Bearer "+c.key)
		}
		if ok, errs := v.ValidateHttpResponse(req, w.Result()); !ok {
			for _, e := range errs {
				t.Errorf("%s %s → %d: %s (%s)\n%s", c.method, c.path, w.Code, e.Message, e.Reason, w.Body)
			}
		}
	}
}

// whoami answers any valid key with its name and scopes; activity needs
// admin.
func TestWhoamiAndActivityScopes(t *testing.T) {
	h, _ := testServer(t)
	if w := doAuth(t, h, "GET", "/v1/whoami", outcomeKey, "", ""); w.Code != 200 || !strings.Contains(w.Body.String(), `"scopes":["outcome"]`) {
		t.Errorf("whoami: %d %s", w.Code, w.Body)
	}
	for key, want := range map[string]int{"": 401, "wrong": 401, introspectKey: 403, adminKey: 200} {
		if w := doAuth(t, h, "GET", "/v1/activity", key, "", ""); w.Code != want {
			t.Errorf("activity with %q: %d, want %d", key, w.Code, want)
		}
	}
	if w := doAuth(t, h, "GET", "/v1/whoami", "wrong", "", ""); w.Code != 401 {
		t.Errorf("whoami with a wrong key: %d", w.Code)
	}
}

// openAPIValidator checks requests and answers against h's /openapi.json.
func openAPIValidator(t *testing.T, h http.Handler) openapivalidator.Validator {
	t.Helper()
	doc, err := libopenapi.NewDocument(do(t, h, "GET", "/openapi.json", "", "").Body.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	v, errs := openapivalidator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return v
}
