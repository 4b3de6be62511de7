package record

import (
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"
)

// ErrBadCursor is returned for a cursor no listing produced.
var ErrBadCursor = errors.New("invalid cursor")

// Cursor marks a position in a newest-first listing: the (Issued, JTI) of
// the last record of a page. Stores share this encoding.
type Cursor struct {
	Issued time.Time
	JTI    string
}

// Encode returns the cursor as an opaque URL-safe string.
func (c Cursor) Encode() string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.Issued.UnixNano(), 10) + ":" + c.JTI))
}

// DecodeCursor parses a cursor from Encode; the empty string is the start.
func DecodeCursor(s string) (Cursor, bool, error) {
	if s == "" {
		return Cursor{}, false, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(s) > 256 {
		return Cursor{}, false, ErrBadCursor
	}
	ns, jti, ok := strings.Cut(string(b), ":")
	n, err := strconv.ParseInt(ns, 10, 64)
	if !ok || err != nil || jti == "" {
		return Cursor{}, false, ErrBadCursor
	}
	return Cursor{Issued: time.Unix(0, n).UTC(), JTI: jti}, true, nil
}

// NewPage makes a page from up to limit+1 records fetched newest first: the
// extra record, when there is one, only says that a next page exists.
func NewPage(recs []Record, limit int) Page {
	if len(recs) <= limit {
		return Page{Records: recs}
	}
	recs = recs[:limit]
	last := recs[len(recs)-1]
	return Page{Records: recs, Next: Cursor{Issued: last.Issued, JTI: last.JTI}.Encode()}
}
