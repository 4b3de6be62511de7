package record

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// Every TeleSign code the API documents maps to its status, given alone;
// with a status, they must agree.
func TestCheckOutcomeCodes(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	want := map[int]OutcomeStatus{
		2400: Pending, 2401: Verified, 2402: Failed, 2403: Failed, 2404: Failed, 2405: Failed,
		2407: Failed, 2408: Failed, 2409: Failed, 2410: Failed, 2411: Failed, 2429: Failed, 2430: Failed,
		-10004: Failed,
	}
	if len(want) != len(TeleSignCodes) {
		t.Errorf("%d codes known, %d listed here", len(TeleSignCodes), len(want))
	}
	for code, status := range want {
		o := Outcome{XID: "x", Code: code}
		if err := CheckOutcome(&o, now, 0); err != nil || o.Status != status || o.Description == "" {
			t.Errorf("code %d: %+v %v; want %s", code, o, err, status)
		}
		for _, other := range []OutcomeStatus{Pending, Verified, Failed} {
			o := Outcome{XID: "x", Code: code, Status: other}
			if err := CheckOutcome(&o, now, 0); (err == nil) != (other == status) {
				t.Errorf("code %d with status %s: %v", code, other, err)
			}
		}
	}
	o := Outcome{Code: 2406}
	if err := CheckOutcome(&o, now, 0); !errors.Is(err, ErrInvalidOutcome) || !strings.Contains(err.Error(), "-10004 (reference expired)") {
		t.Errorf("an unlisted code: %v", err)
	}
}

// updated_on may run ahead of jwtd's clock by the leeway, not more; when
// absent it is now, and Recorded is always now.
func TestCheckOutcomeTimes(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	for ahead, ok := range map[time.Duration]bool{0: true, 30 * time.Second: true, 31 * time.Second: false} {
		o := Outcome{Status: Verified, UpdatedOn: now.Add(ahead)}
		if err := CheckOutcome(&o, now, 30*time.Second); (err == nil) != ok {
			t.Errorf("%s ahead: %v", ahead, err)
		}
	}
	o := Outcome{Status: Pending}
	if err := CheckOutcome(&o, now, 0); err != nil || !o.UpdatedOn.Equal(now) || !o.Recorded.Equal(now) {
		t.Errorf("no updated_on: %+v %v", o, err)
	}
	// A time the stores' Unix nanoseconds cannot hold (before 1678) would
	// come back in the future, newest of all.
	for _, at := range []time.Time{time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(1999, 12, 31, 0, 0, 0, 0, time.UTC)} {
		o := Outcome{Status: Verified, UpdatedOn: at}
		if err := CheckOutcome(&o, now, 0); !errors.Is(err, ErrInvalidOutcome) {
			t.Errorf("updated_on %s: %v", at, err)
		}
	}
}
