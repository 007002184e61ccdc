package shift_test

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/presente-dispatch/presente/domain"
	"github.com/presente-dispatch/presente/domain/domaintest"
	"github.com/presente-dispatch/presente/domain/shift"
)

var (
	shiftID  = uuid.MustParse("0195a3b2-0000-7000-8000-0000000d0001")
	ana      = uuid.MustParse("0195a3b2-0000-7000-8000-0000000d00a1")
	beto     = uuid.MustParse("0195a3b2-0000-7000-8000-0000000d00b2")
	carla    = uuid.MustParse("0195a3b2-0000-7000-8000-0000000d00c3")
	thursday = time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	courtDay = domain.Window{Start: thursday, End: thursday.Add(4 * time.Hour)}
	cutoff   = 24 * time.Hour
	monday   = thursday.AddDate(0, 0, -3)
)

// scheduled is Thursday's court watch with room for capacity.
func scheduled(capacity int) shift.Scheduled {
	return shift.Scheduled{ShiftID: shiftID, Role: "court watch", Window: courtDay, Region: "East", Place: "Immigration court", Capacity: capacity}
}

func claimed(v uuid.UUID) shift.Claimed { return shift.Claimed{ShiftID: shiftID, VolunteerID: v} }
func waitlisted(v uuid.UUID) shift.Waitlisted {
	return shift.Waitlisted{ShiftID: shiftID, VolunteerID: v}
}

func TestShiftRules(t *testing.T) {
	var invalid *shift.InvalidError
	tests := []struct {
		name    string
		given   []domain.Event
		when    shift.Command
		then    []domain.Event
		wantErr error
		wantAs  any
	}{
		{name: "a shift is scheduled with its capacity",
			when: shift.Schedule{ShiftID: shiftID, Role: " court watch ", Window: courtDay, Region: "East", Place: "Immigration court", Capacity: 2},
			then: []domain.Event{scheduled(2)}},
		{name: "a shift needs at least one slot",
			when: shift.Schedule{ShiftID: shiftID, Role: "court watch", Window: courtDay, Region: "East"}, wantAs: &invalid},
		{name: "a shift cannot end before it starts",
			when:   shift.Schedule{ShiftID: shiftID, Role: "court watch", Window: domain.Window{Start: courtDay.End, End: courtDay.Start}, Region: "East", Capacity: 1},
			wantAs: &invalid},
		{name: "a volunteer claims an open slot",
			given: []domain.Event{scheduled(2)}, when: shift.Claim{VolunteerID: ana, Now: monday},
			then: []domain.Event{claimed(ana)}},
		{name: "a volunteer who claims a full shift joins the waitlist",
			given: []domain.Event{scheduled(1), claimed(ana)}, when: shift.Claim{VolunteerID: beto, Now: monday},
			then: []domain.Event{waitlisted(beto)}},
		{name: "a volunteer cannot claim twice",
			given: []domain.Event{scheduled(2), claimed(ana)}, when: shift.Claim{VolunteerID: ana, Now: monday}, wantErr: shift.ErrAlreadyClaimed},
		{name: "a volunteer cannot join the waitlist twice",
			given: []domain.Event{scheduled(1), claimed(ana), waitlisted(beto)}, when: shift.Claim{VolunteerID: beto, Now: monday},
			wantErr: shift.ErrAlreadyWaitlisted},
		{name: "a shift that is over takes no claims",
			given: []domain.Event{scheduled(2)}, when: shift.Claim{VolunteerID: ana, Now: courtDay.End}, wantErr: shift.ErrOver},
		{name: "a cancelled shift takes no claims",
			given: []domain.Event{scheduled(2), shift.Cancelled{ShiftID: shiftID}}, when: shift.Claim{VolunteerID: ana, Now: monday},
			wantErr: shift.ErrCancelled},
		{name: "releasing a slot promotes the first on the waitlist",
			given: []domain.Event{scheduled(1), claimed(ana), waitlisted(beto), waitlisted(carla)},
			when:  shift.Release{VolunteerID: ana, Now: monday, Cutoff: cutoff},
			then:  []domain.Event{shift.Released{ShiftID: shiftID, VolunteerID: ana}, shift.Promoted{ShiftID: shiftID, VolunteerID: beto}}},
		{name: "a waitlisted volunteer who cannot take the slot is passed over, not removed",
			given: []domain.Event{scheduled(1), claimed(ana), waitlisted(beto), waitlisted(carla)},
			when:  shift.Release{VolunteerID: ana, Now: monday, Cutoff: cutoff, Skip: []uuid.UUID{beto}},
			then:  []domain.Event{shift.Released{ShiftID: shiftID, VolunteerID: ana}, shift.Promoted{ShiftID: shiftID, VolunteerID: carla}}},
		{name: "a release after the cutoff needs a reason",
			given: []domain.Event{scheduled(1), claimed(ana)}, when: shift.Release{VolunteerID: ana, Now: thursday.Add(-time.Hour), Cutoff: cutoff},
			wantErr: shift.ErrLateRelease},
		{name: "a late release with a reason is marked late",
			given: []domain.Event{scheduled(1), claimed(ana)},
			when:  shift.Release{VolunteerID: ana, Now: thursday.Add(-time.Hour), Cutoff: cutoff, Reason: "sick"},
			then:  []domain.Event{shift.Released{ShiftID: shiftID, VolunteerID: ana, Late: true}}},
		{name: "a waitlisted volunteer leaves the waitlist by releasing",
			given: []domain.Event{scheduled(1), claimed(ana), waitlisted(beto)}, when: shift.Release{VolunteerID: beto, Now: monday, Cutoff: cutoff},
			then: []domain.Event{shift.LeftWaitlist{ShiftID: shiftID, VolunteerID: beto}}},
		{name: "a volunteer without a slot cannot release one",
			given: []domain.Event{scheduled(1)}, when: shift.Release{VolunteerID: ana, Now: monday}, wantErr: shift.ErrNotClaimed},
		{name: "a claimant checks in late with the actual time",
			given: []domain.Event{scheduled(1), claimed(ana)},
			when:  shift.CheckIn{VolunteerID: ana, At: thursday.Add(20 * time.Minute), Now: thursday.Add(time.Hour)},
			then:  []domain.Event{shift.CheckedIn{ShiftID: shiftID, VolunteerID: ana, At: thursday.Add(20 * time.Minute)}}},
		{name: "a check-in cannot be in the future",
			given: []domain.Event{scheduled(1), claimed(ana)},
			when:  shift.CheckIn{VolunteerID: ana, At: thursday.Add(time.Hour), Now: thursday}, wantAs: &invalid},
		{name: "someone without a slot cannot check in",
			given: []domain.Event{scheduled(1)}, when: shift.CheckIn{VolunteerID: ana, At: thursday, Now: thursday}, wantErr: shift.ErrNotClaimed},
		{name: "checking out records the minutes served",
			given: []domain.Event{scheduled(1), claimed(ana), shift.CheckedIn{ShiftID: shiftID, VolunteerID: ana, At: thursday}},
			when:  shift.CheckOut{VolunteerID: ana, At: thursday.Add(3*time.Hour + 30*time.Minute), Now: thursday.Add(4 * time.Hour)},
			then:  []domain.Event{shift.CheckedOut{ShiftID: shiftID, VolunteerID: ana, At: thursday.Add(3*time.Hour + 30*time.Minute), Minutes: 210}}},
		{name: "checking out needs a check-in",
			given: []domain.Event{scheduled(1), claimed(ana)},
			when:  shift.CheckOut{VolunteerID: ana, At: thursday.Add(time.Hour), Now: thursday.Add(time.Hour)}, wantErr: shift.ErrNotCheckedIn},
		{name: "cancelling needs a reason for the claimants",
			given: []domain.Event{scheduled(1), claimed(ana)}, when: shift.Cancel{}, wantErr: shift.ErrReasonRequired},
		{name: "a shift is cancelled with a reason, naming whom it lets go",
			given: []domain.Event{scheduled(1), claimed(ana), shift.Waitlisted{ShiftID: shiftID, VolunteerID: beto}}, when: shift.Cancel{Reason: "court closed"},
			then: []domain.Event{shift.Cancelled{ShiftID: shiftID, Claimants: []uuid.UUID{ana}, Waitlisted: []uuid.UUID{beto}}}},
		{name: "a claimant offers their slot to another volunteer",
			given: []domain.Event{scheduled(1), claimed(ana)}, when: shift.OfferSwap{From: ana, To: beto},
			then: []domain.Event{shift.SwapOffered{ShiftID: shiftID, From: ana, To: beto}}},
		{name: "only a claimant can offer a swap",
			given: []domain.Event{scheduled(1)}, when: shift.OfferSwap{From: ana, To: beto}, wantErr: shift.ErrNotClaimed},
		{name: "a slot cannot be offered to someone who holds one",
			given: []domain.Event{scheduled(2), claimed(ana), claimed(beto)}, when: shift.OfferSwap{From: ana, To: beto}, wantErr: shift.ErrAlreadyClaimed},
		{name: "the volunteer offered a swap declines it",
			given: []domain.Event{scheduled(1), claimed(ana), shift.SwapOffered{ShiftID: shiftID, From: ana, To: beto}},
			when:  shift.DeclineSwap{To: beto},
			then:  []domain.Event{shift.SwapWithdrawn{ShiftID: shiftID, From: ana, To: beto}}},
		{name: "only a volunteer offered a swap can decline one",
			given: []domain.Event{scheduled(1), claimed(ana), shift.SwapOffered{ShiftID: shiftID, From: ana, To: beto}},
			when:  shift.DeclineSwap{To: ana}, wantErr: shift.ErrNoSwap},
		{name: "the volunteer offered a swap accepts it",
			given: []domain.Event{scheduled(1), claimed(ana), shift.SwapOffered{ShiftID: shiftID, From: ana, To: beto}},
			when:  shift.AcceptSwap{To: beto},
			then:  []domain.Event{shift.SwapAccepted{ShiftID: shiftID, From: ana, To: beto}}},
		{name: "a volunteer who holds a slot cannot take another by swap",
			given: []domain.Event{scheduled(2), claimed(ana), claimed(beto), shift.SwapOffered{ShiftID: shiftID, From: ana, To: carla},
				claimed(carla)},
			when: shift.AcceptSwap{To: carla}, wantErr: shift.ErrAlreadyClaimed},
		{name: "nobody accepts a swap never offered to them",
			given: []domain.Event{scheduled(1), claimed(ana)}, when: shift.AcceptSwap{To: beto}, wantErr: shift.ErrNoSwap},
		{name: "commands on an unknown shift are refused",
			when: shift.Claim{VolunteerID: ana, Now: monday}, wantErr: shift.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := shift.Decider.Decide(shift.Decider.Fold(tt.given), tt.when)
			domaintest.Then(t, got, err, tt.then, tt.wantErr, tt.wantAs)
		})
	}
}

func TestTheWaitlistKeepsItsOrderAndASwapMovesTheSlot(t *testing.T) {
	s := shift.Decider.Fold([]domain.Event{scheduled(1), claimed(ana), waitlisted(beto), waitlisted(carla),
		shift.SwapOffered{ShiftID: shiftID, From: ana, To: carla}, shift.SwapAccepted{ShiftID: shiftID, From: ana, To: carla}})
	if !s.Holds(carla) || s.Holds(ana) || s.Open() != 0 {
		t.Errorf("after the swap: carla holds %v, ana holds %v, open %d", s.Holds(carla), s.Holds(ana), s.Open())
	}
	if s.WaitlistPosition(beto) != 1 || s.WaitlistPosition(carla) != 0 {
		t.Errorf("waitlist positions: beto %d carla %d, want 1 and 0", s.WaitlistPosition(beto), s.WaitlistPosition(carla))
	}
}

// Found by FuzzDecodeEvent: evolve must read any log, even one holding a
// swap the decider would never have accepted, without panicking.
func TestASwapAcceptedFromSomeoneHoldingNoSlotChangesNoSlot(t *testing.T) {
	s := shift.Decider.Fold([]domain.Event{scheduled(1), claimed(beto), shift.SwapAccepted{ShiftID: shiftID, From: ana, To: carla}})
	if !s.Holds(beto) || s.Holds(carla) || s.Holds(ana) {
		t.Errorf("claimants after a swap from a non-claimant: %v", s.Claimants)
	}
}
