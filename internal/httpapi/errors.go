package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"

	"github.com/jwtd/jwtd/internal/strictjson"
)

// writeJSON writes v as compact JSON, without HTML escaping, so that the
// token's own JSON (kept as json.RawMessage) passes through as sent.
func writeJSON(w http.ResponseWriter, status int, contentType string, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// problem is an RFC 9457 problem details body, for the native routes.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
}

func writeProblem(w http.ResponseWriter, status int, title, detail string) {
	writeJSON(w, status, "application/problem+json", problem{Type: "about:blank", Title: title, Status: status, Detail: detail})
}

// seedError is seed 003's error body. Status is the seed's own code (202,
// 203, 204 or the HTTP status); the HTTP status is a proper error status,
// since HTTP 204 cannot carry a body.
type seedError struct {
	HTTPStatus  int    `json:"-"`
	Status      int    `json:"status"`
	Description string `json:"description"`
}

func (e *seedError) Error() string { return e.Description }

func writeSeedError(w http.ResponseWriter, e *seedError) {
	writeJSON(w, e.HTTPStatus, "application/json", e)
}

// The seed's errors. The spelling "singing" is the seed's, kept for its
// clients.
var (
	errSeedContentType  = &seedError{http.StatusUnsupportedMediaType, 202, "Invalid content type"}
	errSeedMissingToken = &seedError{http.StatusBadRequest, 203, "Missing token in GET request body"}
	errSeedMissingKey   = &seedError{http.StatusBadRequest, 204, "Missing singing key in GET request body"}
)

func seedBadRequest(description string) *seedError {
	return &seedError{http.StatusBadRequest, http.StatusBadRequest, description}
}

// bodyError is why a JSON request body was refused: the HTTP status and a
// message safe for the client. Each route family writes it in its own shape.
type bodyError struct {
	status int
	msg    string
}

// readJSONBody reads a JSON request body: Content-Type application/json
// (parameters such as charset are fine), within the body limit, one object
// of valid UTF-8 at most maxDepth deep without duplicate keys.
func (s *Server) readJSONBody(r *http.Request, maxDepth int) ([]byte, *bodyError) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return nil, &bodyError{http.StatusUnsupportedMediaType, "Invalid content type"}
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		if isTooLarge(err) {
			return nil, &bodyError{http.StatusRequestEntityTooLarge, fmt.Sprintf("Request body is larger than %d bytes", s.opts.MaxBodyBytes)}
		}
		return nil, &bodyError{http.StatusBadRequest, "Could not read the request body"}
	}
	if err := strictjson.CheckObject(body, maxDepth); err != nil {
		return nil, &bodyError{http.StatusBadRequest, "Malformed JSON body: " + err.Error()}
	}
	return body, nil
}
