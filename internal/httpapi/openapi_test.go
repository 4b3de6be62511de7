package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/jwtd/jwtd/internal/metrics"
)

// The OpenAPI Initiative's JSON Schema of OpenAPI 3.1 documents
// (https://spec.openapis.org/oas/3.1/schema/2022-10-07), kept in testdata so
// that the tests read no network.
const oas31SchemaFile = "testdata/oas-3.1-schema.json"

// openAPIDoc is /openapi.json as the tests check it: validated against the
// OpenAPI 3.1 schema, and able to check an answer against the operation it
// documents.
type openAPIDoc struct {
	doc      map[string]any
	compiler *jsonschema.Compiler
}

const openAPIURL = "https://jwtd.test/openapi.json"

// loadOpenAPI validates body as an OpenAPI 3.1 document and compiles every
// schema of its components (a schema that is not valid JSON Schema 2020-12
// fails here).
func loadOpenAPI(t *testing.T, body []byte) *openAPIDoc {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("/openapi.json is not JSON: %v", err)
	}
	root, ok := doc.(map[string]any)
	if !ok {
		t.Fatalf("/openapi.json is not an object")
	}
	if v := root["openapi"]; v != "3.1.0" {
		t.Errorf("OpenAPI version %q", v)
	}
	f, err := os.Open(oas31SchemaFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	meta, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	mc := jsonschema.NewCompiler()
	if err := mc.AddResource("https://spec.openapis.org/oas/3.1/schema/2022-10-07", meta); err != nil {
		t.Fatal(err)
	}
	oas, err := mc.Compile("https://spec.openapis.org/oas/3.1/schema/2022-10-07")
	if err != nil {
		t.Fatal(err)
	}
	if err := oas.Validate(doc); err != nil {
		t.Errorf("invalid OpenAPI 3.1: %v", err)
	}

	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource(openAPIURL, doc); err != nil {
		t.Fatal(err)
	}
	o := &openAPIDoc{doc: root, compiler: c}
	components, _ := root["components"].(map[string]any)
	schemas, _ := components["schemas"].(map[string]any)
	if len(schemas) == 0 {
		t.Errorf("/openapi.json has no component schemas")
	}
	for name := range schemas {
		if _, err := o.schema("/components/schemas/" + pointerEscape(name)); err != nil {
			t.Errorf("schema %s: %v", name, err)
		}
	}
	return o
}

func pointerEscape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

func (o *openAPIDoc) schema(pointer string) (*jsonschema.Schema, error) {
	return o.compiler.Compile(openAPIURL + "#" + pointer)
}

// operation finds the path template path matches (a literal segment before
// a {parameter}) and its operation for method; it returns the JSON pointer of
// the operation.
func (o *openAPIDoc) operation(method, path string) (string, map[string]any, error) {
	paths, _ := o.doc["paths"].(map[string]any)
	segs := strings.Split(path, "/")
	best, bestLiterals := "", -1
	for tmpl := range paths {
		tsegs := strings.Split(tmpl, "/")
		segs := segs
		if last := tsegs[len(tsegs)-1]; strings.HasPrefix(last, "{") && len(segs) > len(tsegs) {
			// a last {parameter} takes the rest of the path, as the
			// router's {rest...} does
			segs = append(segs[:len(tsegs)-1:len(tsegs)-1], strings.Join(segs[len(tsegs)-1:], "/"))
		}
		if len(tsegs) != len(segs) {
			continue
		}
		literals := 0
		for i, ts := range tsegs {
			if strings.HasPrefix(ts, "{") && strings.HasSuffix(ts, "}") {
				if segs[i] == "" {
					literals = -1
					break
				}
				continue
			}
			if ts != segs[i] {
				literals = -1
				break
			}
			literals++
		}
		if literals > bestLiterals {
			best, bestLiterals = tmpl, literals
		}
	}
	if best == "" {
		return "", nil, fmt.Errorf("no path in /openapi.json matches %s", path)
	}
	ops, _ := paths[best].(map[string]any)
	op, ok := ops[strings.ToLower(method)].(map[string]any)
	if !ok {
		return "", nil, fmt.Errorf("%s %s has no %s operation in /openapi.json", path, best, method)
	}
	return "/paths/" + pointerEscape(best) + "/" + strings.ToLower(method), op, nil
}

// checkAnswer reports how an answer to method path differs from what
// /openapi.json documents: an undocumented status, a content type the
// status does not list, or a body its schema does not accept (JSON bodies as
// JSON, other bodies as a string).
func (o *openAPIDoc) checkAnswer(method, path string, w *httptest.ResponseRecorder) error {
	ptr, op, err := o.operation(method, path)
	if err != nil {
		return err
	}
	responses, _ := op["responses"].(map[string]any)
	code := strconv.Itoa(w.Code)
	key := code
	if _, ok := responses[key]; !ok {
		key = code[:1] + "XX"
		if _, ok := responses[key]; !ok {
			key = "default"
		}
	}
	resp, ok := responses[key].(map[string]any)
	if !ok {
		return fmt.Errorf("status %d is not documented for %s %s", w.Code, method, path)
	}
	content, _ := resp["content"].(map[string]any)
	if len(content) == 0 {
		return nil
	}
	ct := w.Header().Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return fmt.Errorf("content type %q: %v", ct, err)
	}
	media, ok := content[mt].(map[string]any)
	if !ok {
		return fmt.Errorf("content type %s is not documented for %d", mt, w.Code)
	}
	if _, ok := media["schema"]; !ok {
		return nil
	}
	sch, err := o.schema(ptr + "/responses/" + pointerEscape(key) + "/content/" + pointerEscape(mt) + "/schema")
	if err != nil {
		return err
	}
	var body any = w.Body.String()
	if mt == "application/json" || strings.HasSuffix(mt, "+json") {
		if body, err = jsonschema.UnmarshalJSON(bytes.NewReader(w.Body.Bytes())); err != nil {
			return fmt.Errorf("a %s body that is not JSON: %v", mt, err)
		}
	}
	if err := sch.Validate(body); err != nil {
		var ve *jsonschema.ValidationError
		if errors.As(err, &ve) {
			return fmt.Errorf("%d %s body: %v", w.Code, mt, ve)
		}
		return err
	}
	return nil
}

// /openapi.json is valid OpenAPI 3.1, describes every route of the router,
// and nothing the router does not serve.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	h, svc, store := testServerAt(t, nil)
	w := do(t, h, "GET", "/openapi.json", "", "")
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("GET /openapi.json: %d %s", w.Code, w.Header().Get("Content-Type"))
	}
	loadOpenAPI(t, w.Body.Bytes())

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

// The answer check fails answers the document does not describe: a status
// it does not list, a content type the status does not list, a body its
// schema refuses, a path or method it does not have.
func TestOpenAPICheckRefusesUndocumentedAnswers(t *testing.T) {
	h, _ := testServer(t)
	doc := loadOpenAPI(t, do(t, h, "GET", "/openapi.json", "", "").Body.Bytes())
	answer := func(code int, ct, body string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		w.Header().Set("Content-Type", ct)
		w.WriteHeader(code)
		w.WriteString(body)
		return w
	}
	if err := doc.checkAnswer("GET", "/healthz", answer(200, "application/json", `{"status":"ok"}`)); err != nil {
		t.Errorf("a documented answer: %v", err)
	}
	for _, c := range []struct {
		method, path string
		w            *httptest.ResponseRecorder
	}{
		{"GET", "/healthz", answer(418, "application/json", `{"status":"ok"}`)},
		{"GET", "/healthz", answer(200, "text/plain", `ok`)},
		{"GET", "/healthz", answer(200, "application/json", `{"status":"dead"}`)},
		{"GET", "/healthz", answer(200, "application/json", `not json`)},
		{"GET", "/v1/tokens/tx-1", answer(200, "application/json", `{}`)},
		{"GET", "/v1/tokens/tx-1", answer(404, "application/problem+json", `{"status":"404"}`)},
		{"DELETE", "/healthz", answer(200, "application/json", `{"status":"ok"}`)},
		{"GET", "/nowhere", answer(200, "application/json", `{}`)},
	} {
		if err := doc.checkAnswer(c.method, c.path, c.w); err == nil {
			t.Errorf("%s %s → %d %s %s passed the check", c.method, c.path, c.w.Code, c.w.Header().Get("Content-Type"), c.w.Body)
		}
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
	doc := openAPIValidator(t, h)
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
		path, _, _ := strings.Cut(c.path, "?")
		if err := doc.checkAnswer(c.method, path, w); err != nil {
			t.Errorf("%s %s → %d: %v\n%s", c.method, c.path, w.Code, err, w.Body)
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

// openAPIValidator is h's /openapi.json, validated, to check answers with.
func openAPIValidator(t *testing.T, h http.Handler) *openAPIDoc {
	t.Helper()
	return loadOpenAPI(t, do(t, h, "GET", "/openapi.json", "", "").Body.Bytes())
}
