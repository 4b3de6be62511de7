package httpapi

import (
	"bytes"
	"errors"
	"fmt"
	"io"

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

// tokenBodyBytes bounds the bodies that carry a token and at most a key
// (seed 003's routes, introspection): a token is at most 8 KiB, an RSA-8192
// public key in PEM under 2 KiB. An unauthenticated caller cannot make jwtd
// read more than this.
const tokenBodyBytes = 16 << 10

// readBody reads a request body of mediaType (parameters such as charset
// are fine) of at most limit bytes (and never more than
// http.max_body_bytes).
func (s *Server) readBody(r *http.Request, mediaType string, wrongType error, limit int64) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != mediaType {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != mediaType {
			return nil, wrongType
		}
	}
	limit = min(limit, s.opts.MaxBodyBytes)
	tooLarge := func() error {
		return withDetail(errBodyTooLarge, fmt.Sprintf("Request body is larger than %d bytes", limit))
	}
	if r.ContentLength > limit {
		return nil, tooLarge() // refused before a byte of it is read
	}
	var buf bytes.Buffer
	if n := r.ContentLength; n > 0 {
		buf.Grow(int(n) + bytes.MinRead) // ReadFrom wants MinRead free to look for the end
	}
	lr := io.LimitedReader{R: r.Body, N: limit + 1}
	_, err := buf.ReadFrom(&lr)
	switch {
	case int64(buf.Len()) > limit || err != nil && isTooLarge(err):
		return nil, tooLarge()
	case err != nil:
		return nil, errBodyUnread
	}
	return buf.Bytes(), nil
}

// readJSON reads a native route's JSON body into the struct dst: one
// object, names exactly as documented, none unknown, none twice.
func (s *Server) readJSON(r *http.Request, dst any) error {
	body, err := s.readBody(r, "application/json", errContentType, s.opts.MaxBodyBytes)
	if err != nil {
		return err
	}
	if err := strictjson.Unmarshal(body, dst, nativeBodyDepth); err != nil {
		return withDetail(errInvalidBody, err.Error())
	}
	return nil
}

// isTooLarge reports whether err came from the body limit.
func isTooLarge(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}
