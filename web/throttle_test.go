package web

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/presente-dispatch/presente/infra/testclock"
)

var office = netip.MustParsePrefix("198.51.100.7/32")

func newTestThrottle() (*throttle, *testclock.Clock) {
	c := testclock.New(time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC))
	return newThrottle(ThrottleOptions{Clock: c.Now}), c
}

func TestSuccessfulSignInsFromOneAddressAreNeverCharged(t *testing.T) {
	th, c := newTestThrottle()
	for i := range 100 { // a training session behind one NAT
		a, wait := th.begin(fmt.Sprintf("volunteer%d@example.org", i), office)
		if a == nil {
			t.Fatalf("sign-in %d from the office was throttled (wait %s)", i+1, wait)
		}
		c.Advance(80 * time.Millisecond) // the password check takes time
		a.succeeded()
	}
}

func TestAttemptsBeingCheckedCountAgainstTheBurst(t *testing.T) {
	th, _ := newTestThrottle()
	var open []*attempt
	for i := range 5 {
		a, _ := th.begin("ana@example.org", office)
		if a == nil {
			t.Fatalf("attempt %d refused, want the burst of 5", i+1)
		}
		open = append(open, a)
	}
	if a, wait := th.begin("ana@example.org", office); a != nil || wait <= 0 {
		t.Fatalf("a sixth concurrent attempt was let through (wait %s)", wait)
	}
	for _, a := range open {
		a.failed()
	}
	if a, wait := th.begin("ana@example.org", office); a != nil || wait != time.Minute {
		t.Errorf("after five failures: attempt %v wait %s, want a minute's wait", a != nil, wait)
	}
}

func TestAnAbandonedAttemptChargesNothing(t *testing.T) {
	th, _ := newTestThrottle()
	for range 50 {
		a, wait := th.begin("ana@example.org", office)
		if a == nil {
			t.Fatalf("throttled after abandoned attempts (wait %s)", wait)
		}
		a.abandoned()
	}
}

func TestAFloodOfNewKeysWaitsRatherThanGoUnthrottled(t *testing.T) {
	th, _ := newTestThrottle()
	for i := range maxTracked {
		th.accounts[accountKey(fmt.Sprint(i))] = &bucket{lim: newBucketLimiter(time.Minute, 5), inflight: 1}
	}
	if a, wait := th.begin("newcomer@example.org", office); a != nil || wait != sweepEvery {
		t.Errorf("a new key with the map full of live buckets: attempt %v wait %s, want %s", a != nil, wait, sweepEvery)
	}
}
