package record

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jwtd/jwtd/internal/plaintext"
)

// OutcomeStatus is how a transaction's verification ended, or that it has
// not yet.
type OutcomeStatus string

const (
	Pending  OutcomeStatus = "pending"
	Verified OutcomeStatus = "verified"
	Failed   OutcomeStatus = "failed"
)

// Outcome is what happened in a transaction after its token was handed
// out, as the customer's backend or a verification callback reports it.
// A transaction's outcomes are appended, never replaced: it can go from
// pending to verified.
type Outcome struct {
	XID         string
	Status      OutcomeStatus
	Code        int // TeleSign's status code; 0 when none was given
	Description string
	UpdatedOn   time.Time // when it happened, as reported
	Source      string    // who reported it (a callback receiver, a job)
	Recorded    time.Time // when jwtd stored it
}

// Limits of an outcome's free text, and of a transaction's outcomes: a
// leaked outcome key cannot fill the store.
const (
	MaxOutcomeDescription = 512
	MaxOutcomeSource      = 128
	MaxOutcomes           = 100
)

// ErrTooManyOutcomes is AddOutcome on a transaction that has MaxOutcomes.
var ErrTooManyOutcomes = fmt.Errorf("the transaction has %d outcomes, as many as one may have", MaxOutcomes)

// earliestOutcome is the earliest updated_on accepted: stores keep times
// as Unix nanoseconds, which reach back to 1677 only, and no App Verify
// transaction is older than this.
var earliestOutcome = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// TeleSignCodes are TeleSign's App Verify status codes, with the status each
// means and its description.
var TeleSignCodes = map[int]struct {
	Status      OutcomeStatus
	Description string
}{
	2400:   {Pending, "pending"},
	2401:   {Verified, "success"},
	2402:   {Failed, "failure"},
	2403:   {Failed, "not attempted"},
	2404:   {Failed, "invalid phone number"},
	2405:   {Failed, "not supported"},
	2407:   {Failed, "caller ID prefix mismatch"},
	2408:   {Failed, "unsupported phone type"},
	2409:   {Failed, "call not received"},
	2410:   {Failed, "retry"},
	2411:   {Failed, "call failed"},
	2429:   {Failed, "blocked"},
	2430:   {Failed, "blocked"},
	-10004: {Failed, "reference expired"},
}

// ErrInvalidOutcome wraps every reason CheckOutcome refuses one.
var ErrInvalidOutcome = errors.New("invalid outcome")

// CheckOutcome completes and checks an outcome as reported: a status, or a
// TeleSign code that gives it (both must agree), a description (the code's
// when none is given) and a source within their limits, and a time that is
// not after now plus leeway (the zero time is now). It sets Recorded to
// now. o.XID is checked by the caller.
func CheckOutcome(o *Outcome, now time.Time, leeway time.Duration) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidOutcome, fmt.Sprintf(format, args...))
	}
	switch o.Status {
	case "", Pending, Verified, Failed:
	default:
		return bad("status %q is not one of pending, verified, failed", o.Status)
	}
	if o.Code != 0 {
		known, ok := TeleSignCodes[o.Code]
		switch {
		case !ok:
			return bad("code %d is not a TeleSign App Verify status code; the known codes are %s", o.Code, knownCodes())
		case o.Status != "" && o.Status != known.Status:
			return bad("code %d means %s, not %s", o.Code, known.Status, o.Status)
		}
		o.Status = known.Status
		if o.Description == "" {
			o.Description = known.Description
		}
	}
	if o.Status == "" {
		return bad("give a status (pending, verified or failed) or a TeleSign code")
	}
	if n := utf8.RuneCountInString(o.Description); n > MaxOutcomeDescription {
		return bad("description is %d characters; at most %d", n, MaxOutcomeDescription)
	}
	if n := utf8.RuneCountInString(o.Source); n > MaxOutcomeSource {
		return bad("source is %d characters; at most %d", n, MaxOutcomeSource)
	}
	for _, f := range [...]struct{ name, text string }{{"description", o.Description}, {"source", o.Source}} {
		if err := plaintext.Check(f.name, f.text); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalidOutcome, err)
		}
	}
	switch {
	case o.UpdatedOn.IsZero():
		o.UpdatedOn = now
	case o.UpdatedOn.After(now.Add(leeway)):
		return bad("updated_on %s is in the future (now is %s)", o.UpdatedOn.Format(time.RFC3339), now.Format(time.RFC3339))
	case o.UpdatedOn.Before(earliestOutcome):
		return bad("updated_on %s is before %s", o.UpdatedOn.Format(time.RFC3339), earliestOutcome.Format(time.RFC3339))
	}
	o.UpdatedOn, o.Recorded = o.UpdatedOn.UTC(), now.UTC()
	return nil
}

// OutcomeAdder is what ReportOutcome needs of a Store.
type OutcomeAdder interface {
	AddOutcome(ctx context.Context, o *Outcome) error
}

// ReportOutcome appends an outcome, as reported, to its transaction o.XID,
// which must be one jwtd recorded a token for (expired or revoked ones
// included: an outcome comes after the token's short life). It completes
// and checks o as CheckOutcome does, at now with leeway. Errors:
// ErrInvalidXID, ErrInvalidOutcome, ErrUnknownXID when no token was
// recorded with the XID, ErrTooManyOutcomes; the store's (ErrUnavailable).
func ReportOutcome(ctx context.Context, s OutcomeAdder, o *Outcome, now time.Time, leeway time.Duration) error {
	if !ValidXID(o.XID) {
		return ErrInvalidXID
	}
	if err := CheckOutcome(o, now, leeway); err != nil {
		return err
	}
	err := s.AddOutcome(ctx, o)
	if errors.Is(err, ErrNotFound) {
		return ErrUnknownXID
	}
	return err
}

func knownCodes() string {
	codes := make([]int, 0, len(TeleSignCodes))
	for c := range TeleSignCodes {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	s := make([]string, len(codes))
	for i, c := range codes {
		s[i] = strconv.Itoa(c) + " (" + TeleSignCodes[c].Description + ")"
	}
	return strings.Join(s, ", ")
}

// SortOutcomes puts outcomes newest first: by UpdatedOn, then Recorded.
func SortOutcomes(outcomes []Outcome) {
	slices.SortStableFunc(outcomes, func(a, b Outcome) int {
		if c := b.UpdatedOn.Compare(a.UpdatedOn); c != 0 {
			return c
		}
		return b.Recorded.Compare(a.Recorded)
	})
}
