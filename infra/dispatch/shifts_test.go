package dispatch_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/presente-dispatch/presente/domain"
	"github.com/presente-dispatch/presente/domain/request"
	"github.com/presente-dispatch/presente/domain/shift"
	"github.com/presente-dispatch/presente/domain/training"
	"github.com/presente-dispatch/presente/domain/volunteer"
	"github.com/presente-dispatch/presente/infra/dispatch"
	"github.com/presente-dispatch/presente/infra/eventstore"
	"github.com/presente-dispatch/presente/infra/keyring"
	"github.com/presente-dispatch/presente/infra/postgres/pgtest"
	"github.com/presente-dispatch/presente/infra/testclock"
)

var (
	monday   = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	thursday = domain.Window{Start: time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC), End: time.Date(2026, 11, 26, 13, 0, 0, 0, time.UTC)}
	meta     = eventstore.Metadata{Actor: "user:test"}
)

type fixture struct {
	store *eventstore.Store
	svc   *dispatch.Service
	clock *testclock.Clock
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	pool := pgtest.NewPool(t)
	master, err := keyring.ParseMasterKey(keyring.GenerateMasterKey())
	if err != nil {
		t.Fatal(err)
	}
	keys, err := keyring.New(pool, master)
	if err != nil {
		t.Fatal(err)
	}
	registry := eventstore.NewRegistry()
	for _, e := range slices.Concat(volunteer.Events, shift.Events, request.Events, training.Events) {
		if err := registry.Register(e); err != nil {
			t.Fatal(err)
		}
	}
	store, err := eventstore.New(pool, registry, eventstore.Options{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	c := testclock.New(monday)
	return fixture{store: store, svc: dispatch.New(store, dispatch.Options{Clock: c.Now}), clock: c}
}

func (f fixture) volunteer(t *testing.T, certs ...volunteer.Certification) uuid.UUID {
	t.Helper()
	return f.register(t, 0, certs...)
}

// veteran registers a volunteer with assignments done before Presente.
func (f fixture) veteran(t *testing.T, certs ...volunteer.Certification) uuid.UUID {
	t.Helper()
	return f.register(t, 12, certs...)
}

func (f fixture) register(t *testing.T, prior int, certs ...volunteer.Certification) uuid.UUID {
	t.Helper()
	id := uuid.New()
	ctx := context.Background()
	if err := f.svc.RegisterVolunteer(ctx, meta, volunteer.Register{VolunteerID: id, Name: "Volunteer " + id.String()[:4], Phone: "+1 555 0100",
		Languages: []volunteer.Language{{Code: "es", Level: volunteer.Fluent}}, Regions: []string{"East"}, PriorAssignments: prior}); err != nil {
		t.Fatal(err)
	}
	for _, c := range certs {
		if err := f.svc.Volunteer(ctx, meta, id, volunteer.Grant{Certification: c, GrantedAt: monday.AddDate(-1, 0, 0)}); err != nil {
			t.Fatal(err)
		}
	}
	return id
}

func (f fixture) shift(t *testing.T, capacity int, w domain.Window, requires ...volunteer.Certification) uuid.UUID {
	t.Helper()
	id := uuid.New()
	if err := f.svc.ScheduleShift(context.Background(), meta, shift.Schedule{ShiftID: id, Role: "court watch", Window: w,
		Region: "East", Capacity: capacity, Requires: requires}); err != nil {
		t.Fatal(err)
	}
	return id
}

func (f fixture) shiftState(t *testing.T, id uuid.UUID) shift.State {
	t.Helper()
	st, _, err := eventstore.LoadState(context.Background(), f.store, shift.Decider, id)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (f fixture) holds(t *testing.T, v, shiftID uuid.UUID) bool {
	t.Helper()
	st, _, err := eventstore.LoadState(context.Background(), f.store, volunteer.Decider, volunteer.StreamID(v))
	if err != nil {
		t.Fatal(err)
	}
	_, ok := st.Commitments[dispatch.SlotCommitment(shiftID, v)]
	return ok
}

// TestTwoHundredClaimsOnFiveSlots is the Saturday-shift storm: exactly five
// claim a slot, the other 195 are waitlisted in the order their claims were
// served, and every claim is recorded exactly once.
func TestTwoHundredClaimsOnFiveSlots(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	sh := f.shift(t, 5, thursday)
	const n = 200
	vols := make([]uuid.UUID, n)
	for i := range vols {
		vols[i] = f.volunteer(t)
	}
	results := make([]dispatch.Claim, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { results[i], errs[i] = f.svc.ClaimShift(ctx, meta, sh, vols[i]) })
	}
	wg.Wait()

	claimed, positions := 0, map[int]bool{}
	for i := range n {
		switch {
		case errs[i] != nil:
			t.Fatalf("claim %d: %v", i, errs[i])
		case results[i].Claimed:
			claimed++
			if !f.holds(t, vols[i], sh) {
				t.Errorf("volunteer %d claimed a slot their record does not hold", i)
			}
		default:
			positions[results[i].Position] = true
			if f.holds(t, vols[i], sh) {
				t.Errorf("waitlisted volunteer %d holds the slot in their record", i)
			}
		}
	}
	st := f.shiftState(t, sh)
	if claimed != 5 || len(st.Claimants) != 5 || len(st.Waitlist) != n-5 {
		t.Fatalf("claimed %d, shift holds %d with %d waitlisted; want 5, 5 and %d", claimed, len(st.Claimants), len(st.Waitlist), n-5)
	}
	for p := 1; p <= n-5; p++ {
		if !positions[p] {
			t.Fatalf("no claimant was told waitlist position %d: positions must be 1..%d, each once", p, n-5)
		}
	}
	_, version, err := f.store.Load(ctx, sh)
	if err != nil || version != n+1 {
		t.Errorf("shift stream version %d, %v; want %d (scheduled + one event per claim)", version, err, n+1)
	}
}

func TestReleasingPromotesTheFirstWaitlistedWhoCanTakeTheSlot(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	sh := f.shift(t, 1, thursday)
	ana, beto, carla := f.volunteer(t), f.volunteer(t), f.volunteer(t)
	for _, v := range []uuid.UUID{ana, beto, carla} {
		if _, err := f.svc.ClaimShift(ctx, meta, sh, v); err != nil {
			t.Fatal(err)
		}
	}
	// Beto took another shift at the same time meanwhile: he is passed over.
	other := f.shift(t, 1, domain.Window{Start: thursday.Start.Add(time.Hour), End: thursday.End})
	if c, err := f.svc.ClaimShift(ctx, meta, other, beto); err != nil || !c.Claimed {
		t.Fatalf("beto's other claim: %+v, %v", c, err)
	}
	if err := f.svc.ReleaseShift(ctx, meta, sh, ana); err != nil {
		t.Fatal(err)
	}
	st := f.shiftState(t, sh)
	if !st.Holds(carla) || st.WaitlistPosition(beto) != 1 {
		t.Errorf("after the release: carla holds %v, beto's position %d; want carla promoted and beto still first in line", st.Holds(carla), st.WaitlistPosition(beto))
	}
	if f.holds(t, ana, sh) || !f.holds(t, carla, sh) {
		t.Error("the volunteers' records do not follow the shift")
	}
}

func TestAClaimNeedsACertificationValidForTheWholeShift(t *testing.T) {
	f := newFixture(t)
	sh := f.shift(t, 2, thursday, "court_accompaniment")
	untrained := f.volunteer(t)
	_, err := f.svc.ClaimShift(context.Background(), meta, sh, untrained)
	var cert *volunteer.CertificationError
	if !errors.As(err, &cert) || cert.Certification != "court_accompaniment" {
		t.Fatalf("claim without the certification: %v, want a CertificationError naming it", err)
	}
	if st := f.shiftState(t, sh); len(st.Claimants)+len(st.Waitlist) != 0 {
		t.Error("the refused claim left a trace on the shift")
	}
	trained := f.volunteer(t, "court_accompaniment")
	if c, err := f.svc.ClaimShift(context.Background(), meta, sh, trained); err != nil || !c.Claimed {
		t.Errorf("claim with the certification: %+v, %v", c, err)
	}
}

func TestALateReleaseNeedsAReason(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	sh := f.shift(t, 1, thursday)
	v := f.volunteer(t)
	if _, err := f.svc.ClaimShift(ctx, meta, sh, v); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(thursday.Start.Sub(monday) - time.Hour)
	if err := f.svc.ReleaseShift(ctx, meta, sh, v); !errors.Is(err, shift.ErrLateRelease) {
		t.Fatalf("a late release without a reason: %v", err)
	}
	withReason := meta
	withReason.Reason = "sick"
	if err := f.svc.ReleaseShift(ctx, withReason, sh, v); err != nil {
		t.Fatal(err)
	}
	if f.holds(t, v, sh) {
		t.Error("the volunteer still holds the released slot")
	}
}

func ExampleSlotCommitment() {
	a := uuid.MustParse("00000000-0000-0000-0000-00000000000a")
	b := uuid.MustParse("00000000-0000-0000-0000-00000000000b")
	fmt.Println(dispatch.SlotCommitment(a, b) == dispatch.SlotCommitment(a, b), dispatch.SlotCommitment(a, b) == dispatch.SlotCommitment(b, a))
	// Output: true false
}

func TestASwapHandsTheSlotToAnEligibleVolunteer(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	sh := f.shift(t, 1, thursday, "court_accompaniment")
	giver, taker, untrained := f.volunteer(t, "court_accompaniment"), f.volunteer(t, "court_accompaniment"), f.volunteer(t)
	if _, err := f.svc.ClaimShift(ctx, meta, sh, giver); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Shift(ctx, meta, sh, shift.OfferSwap{From: giver, To: untrained}); err != nil {
		t.Fatal(err)
	}
	var cert *volunteer.CertificationError
	if err := f.svc.AcceptSwap(ctx, meta, sh, untrained); !errors.As(err, &cert) {
		t.Fatalf("an uncertified taker: %v, want a CertificationError", err)
	}
	if err := f.svc.Shift(ctx, meta, sh, shift.WithdrawSwap{From: giver}); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Shift(ctx, meta, sh, shift.OfferSwap{From: giver, To: taker}); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.AcceptSwap(ctx, meta, sh, taker); err != nil {
		t.Fatal(err)
	}
	if st := f.shiftState(t, sh); !st.Holds(taker) || st.Holds(giver) || !f.holds(t, taker, sh) || f.holds(t, giver, sh) {
		t.Error("the slot and the volunteers' records did not move together")
	}
}

func TestCancellingAShiftFreesEveryClaimant(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	sh := f.shift(t, 3, thursday)
	vols := []uuid.UUID{f.volunteer(t), f.volunteer(t)}
	for _, v := range vols {
		if _, err := f.svc.ClaimShift(ctx, meta, sh, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.svc.CancelShift(ctx, meta, sh); !errors.Is(err, shift.ErrReasonRequired) {
		t.Fatalf("cancelling without a reason: %v", err)
	}
	withReason := meta
	withReason.Reason = "the court is closed"
	if err := f.svc.CancelShift(ctx, withReason, sh); err != nil {
		t.Fatal(err)
	}
	for _, v := range vols {
		if f.holds(t, v, sh) {
			t.Error("a claimant still holds the cancelled shift's window")
		}
	}
}

func TestCheckingInAndOutRecordsTheHours(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	sh := f.shift(t, 1, thursday)
	v := f.volunteer(t)
	if _, err := f.svc.ClaimShift(ctx, meta, sh, v); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(thursday.Start.Sub(monday) + 10*time.Minute)
	if err := f.svc.Shift(ctx, meta, sh, shift.CheckIn{VolunteerID: v}); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(3 * time.Hour)
	if err := f.svc.Shift(ctx, meta, sh, shift.CheckOut{VolunteerID: v}); err != nil {
		t.Fatal(err)
	}
	if out := f.shiftState(t, sh).CheckedOut[v]; out.Minutes != 180 {
		t.Errorf("minutes served = %d, want 180", out.Minutes)
	}
}
