package httpapi

import (
	"bytes"
	"errors"
	"fmt"

	"mime"
	"net/http"

	"github.com/jwtd/jwtd/internal/strictjson"
)

// Nesting bounds of request bodies: a seed 003 body has two flat members
// (a JWK object at most), a native one caller data that goes into a token,
// whose verifier allows 16.
const (
	seedBodyDepth   = 8
	nativeBodyDepth = 16
)

// readBody reads a request body of mediaType (parameters such as charset
// are fine) within the body limit.
func (s *Server) readBody(r *http.Request, mediaType string, wrongType *apiError) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != mediaType {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != mediaType {
			return nil, wrongType
		}
	}
	var buf bytes.Buffer
	if n := r.ContentLength; n > 0 && n <= s.opts.MaxBodyBytes {
		buf.Grow(int(n) + bytes.MinRead) // ReadFrom wants MinRead free to look for the end
	}
	if _, err := buf.ReadFrom(r.Body); err != nil {
		if isTooLarge(err) {
			return nil, &apiError{Status: http.StatusRequestEntityTooLarge, Title: "Request body too large",
				Detail: fmt.Sprintf("Request body is larger than %d bytes", s.opts.MaxBodyBytes)}
		}
		return nil, badRequest("Could not read the request body", "")
	}
	return buf.Bytes(), nil
}

// readJSON reads a native route's JSON body into the struct dst: one
// object, names exactly as documented, none unknown, none twice.
func (s *Server) readJSON(r *http.Request, dst any) error {
	body, err := s.readBody(r, "application/json", errContentType)
	if err != nil {
		return err
	}
	if err := strictjson.Unmarshal(body, dst, nativeBodyDepth); err != nil {
		return badRequest("Invalid request body", err.Error())
	}
	return nil
}

// isTooLarge reports whether err came from the body limit.
func isTooLarge(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}
