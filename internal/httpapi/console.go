package httpapi

import (
	"embed"
	"io/fs"
	"net/http"
)

// The console is static: HTML, one script and one style sheet, embedded,
// talking only to this jwtd's API.
//
//go:embed console
var consoleFiles embed.FS

//go:embed openapi.json
var openAPIDocument []byte

// consolePolicy lets the console's page load only its own script and style,
// connect only to this origin, be framed by nobody, and submit nowhere.
const consolePolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// consoleHandler serves the console under /console/.
func consoleHandler() http.Handler {
	sub, err := fs.Sub(consoleFiles, "console")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.StripPrefix("/console/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", consolePolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}

// handleOpenAPI serves the API's OpenAPI 3.1 description.
func handleOpenAPI(w http.ResponseWriter, _ *http.Request) {
	writeBody(w, http.StatusOK, "application/json", openAPIDocument)
}

// handleWhoami is GET /v1/whoami: the name and scopes of the caller's key,
// so that the console shows what the key allows.
func (s *Server) handleWhoami(w http.ResponseWriter, r *http.Request) error {
	name, scopes, err := s.APIKeys().Identify(r.Header.Get("Authorization"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, struct {
		Name   string   `json:"name"`
		Scopes []string `json:"scopes"`
	}{name, scopes})
}

// handleActivity is GET /v1/activity: tokens issued by profile and requests
// refused by a rate limit, a minute at a time over the last hour, on this
// instance.
func (s *Server) handleActivity(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, struct {
		Minutes any `json:"minutes"`
	}{s.Metrics.Activity(s.Now())})
}
