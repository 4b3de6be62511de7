// Package mint is jwtd's issuing use case: it reads a request for a token
// (phone number, XID), applies the rate limits, signs the token with the
// profile and, when the profile records, commits the record before it
// returns, so that no token is handed out unrecorded. The HTTP routes and
// the CLI both mint through it.
package mint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/google/uuid"

	"github.com/jwtd/jwtd/internal/audit"
	"github.com/jwtd/jwtd/internal/metrics"
	"github.com/jwtd/jwtd/internal/phone"
	"github.com/jwtd/jwtd/internal/ratelimit"
	"github.com/jwtd/jwtd/internal/record"
	"github.com/jwtd/jwtd/internal/token"
)

// Minter mints and records tokens. Its fields are set once, before use; it
// is safe for concurrent use.
type Minter struct {
	// Tokens returns the current token service (a reload swaps it).
	Tokens func() *token.Service
	// Store records tokens; it may be nil only if no profile records.
	Store Store
	// Limiter applies the rate limits; nil means none. LimitBy maps
	// Request.Limits (token, issue, generate) to the rules that apply
	// (rule names: per_ip, per_phone).
	Limiter *ratelimit.Limiter
	LimitBy map[string][]string
	// Phones normalises phone numbers to E.164.
	Phones *phone.Normalizer
	// Metrics counts issued tokens; nil counts nothing.
	Metrics *metrics.Metrics
	// Audit is the trail a request's Audit entry is written to; nil
	// writes none.
	Audit *audit.Trail
}

// Store is what Mint needs of a record store (record.Store has it):
// Insert commits a recorded token's record before the token is handed
// out; ClosedAt says whether the transaction of an unrecorded token was
// closed by a revocation.
type Store interface {
	Insert(ctx context.Context, r *record.Record) error
	ClosedAt(ctx context.Context, xid string) (time.Time, error)
}

// Request is one request for a token.
type Request struct {
	Profile  string // "" is "default"
	Phone    string // as the caller wrote it; "" for none
	XID      string // "" for none; the appverify layout makes one
	Subject  string
	Audience string
	Data     json.RawMessage
	TTL      time.Duration // 0 is the profile's; may only shorten it
	// ClientIP is recorded, and limited by unless APIKey is set; the zero
	// Addr (the CLI) is neither.
	ClientIP netip.Addr
	// APIKey is the name of the API key the request authenticated with, if
	// any: an authenticated caller is limited by its key, not its address.
	APIKey string
	// Limits names the rate limits that apply: a key of Minter.LimitBy
	// (jwtd's are the kinds of minting: token, issue, generate); "" applies
	// none.
	Limits string
	// ReadData, when set, reads Data once the request has passed its rate
	// limits, whose decision it is given (for the RateLimit headers): a
	// caller the limits refuse costs no parsing, and a request whose data
	// cannot be read is counted all the same. Seed 003's /generateToken
	// reads its body so, as the seed did.
	ReadData func(limit ratelimit.Decision) (json.RawMessage, error)
	// Audit, for a mint that is audited (one with an API key), is its
	// entry's actor, request ID and client address; Mint sets the rest.
	// nil for anonymous mints, which their records account for.
	Audit *audit.Entry
}

// Minted is a token handed out, recorded when its profile records.
type Minted struct {
	*token.Issued
	Phone string // E.164, or ""
	XID   string
	// Limit is the tightest rate limit the request was counted against,
	// for the RateLimit headers; Limit.Remaining < 0 when none applied.
	Limit ratelimit.Decision
}

// Mint checks the request, counts it against its rate limits, signs the
// token and, when the profile records, waits until the record is durable.
// Errors: phone.ErrInvalid, record.ErrInvalidXID, token.ErrUnknownProfile,
// token.ErrTTLTooLong and token.ErrInvalidRequest for the request itself;
// *ratelimit.LimitedError or ratelimit.ErrBackend from the limits;
// record.ErrXIDConflict (the XID belongs to another phone) and
// record.ErrUnavailable from the store; audit.ErrNotWritten when the
// trail is required and the request's entry could not be written. On any
// error no token is handed out.
//
// A request's audit entry is written in the commit of its record, so
// that it costs no write of its own; when the store wrote the record and
// not the entry, a trail that is not required writes the entry later.
// An unrecorded profile's entry goes through the trail.
func (m *Minter) Mint(ctx context.Context, req Request) (*Minted, error) {
	if req.Profile == "" {
		req.Profile = "default"
	}
	svc := m.Tokens()
	p, ok := svc.Profile(req.Profile)
	if !ok {
		return nil, svc.UnknownProfile(req.Profile)
	}
	out := &Minted{XID: req.XID}
	if req.Phone != "" {
		num, err := m.Phones.Normalize(req.Phone)
		if err != nil {
			return nil, err
		}
		out.Phone = num
	}
	switch {
	case out.XID == "" && p.Layout == token.LayoutAppVerify:
		out.XID = uuid.NewString()
	case out.XID != "" && !record.ValidXID(out.XID):
		return nil, record.ErrInvalidXID
	}
	if p.Record && m.Store == nil {
		return nil, fmt.Errorf("%w: profile %q records, and no store is open", record.ErrUnavailable, p.Name)
	}
	if !p.Record && out.XID != "" && m.Store != nil {
		// A recorded token's closed transaction is refused by the store's
		// commit; an unrecorded one is asked here.
		closed, err := m.Store.ClosedAt(ctx, out.XID)
		switch {
		case err != nil:
			return nil, err
		case !closed.IsZero():
			return nil, record.ErrXIDClosed
		}
	}
	limit := func() (err error) {
		out.Limit, err = m.Limiter.Check(ctx, m.LimitBy[req.Limits], ratelimit.Caller{IP: req.ClientIP, APIKey: req.APIKey}, out.Phone)
		return err
	}
	if req.ReadData != nil {
		if err := limit(); err != nil {
			return nil, err
		}
		data, err := req.ReadData(out.Limit)
		if err != nil {
			return nil, err
		}
		req.Data = data
	}
	treq := token.Request{
		Phone: out.Phone, XID: out.XID, Subject: req.Subject, Audience: req.Audience, Data: req.Data, TTL: req.TTL,
	}
	if err := p.Check(treq); err != nil {
		return nil, err
	}
	if req.ReadData == nil {
		// Counted once it is known good: a request refused above uses up
		// no limit.
		if err := limit(); err != nil {
			return nil, err
		}
	}
	var err error
	if out.Issued, err = svc.Issue(p.Name, treq); err != nil {
		return nil, err
	}
	var entry *audit.Entry
	if req.Audit != nil && m.Audit != nil {
		e := *req.Audit
		e.Action, e.Target, e.Detail = audit.ActionMint, audit.MintTarget(out.JTI, out.XID), "profile="+p.Name
		e = m.Audit.Stamp(e)
		entry = &e
	}
	if p.Record {
		rec := &record.Record{
			JTI: out.JTI, Profile: out.Profile, Kid: out.Kid, Alg: out.Alg,
			XID: out.XID, Phone: out.Phone, Subject: req.Subject,
			Issued: out.MintedAt, Expires: out.ExpiresAt,
			TokenSHA256: token.HashToken(out.Token),
		}
		if req.ClientIP.IsValid() {
			rec.ClientIP = req.ClientIP.String()
		}
		if p.StoreToken {
			rec.TokenText = out.Token
		}
		rec.Audit = entry
		err := m.Store.Insert(ctx, rec)
		switch {
		case err == nil && entry != nil:
			m.Audit.Committed(*entry)
			entry = nil
		case errors.Is(err, audit.ErrNotWritten) && !m.Audit.Required():
			// The record is written: the trail writes its entry later.
		case err != nil:
			return nil, err
		}
	}
	if entry != nil {
		if err := m.Audit.Record(ctx, *entry); err != nil {
			return nil, err
		}
	}
	m.Metrics.Issued(p.Name)
	return out, nil
}
