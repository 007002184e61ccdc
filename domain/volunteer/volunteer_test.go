package volunteer_test

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/presente-dispatch/presente/domain"
	"github.com/presente-dispatch/presente/domain/domaintest"
	"github.com/presente-dispatch/presente/domain/volunteer"
)

var (
	vol      = uuid.MustParse("0195a3b2-0000-7000-8000-0000000c0001")
	hearing  = uuid.MustParse("0195a3b2-0000-7000-8000-0000000c0002")
	shift    = uuid.MustParse("0195a3b2-0000-7000-8000-0000000c0003")
	thursday = time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
)

func at(h int) time.Time { return thursday.Add(time.Duration(h) * time.Hour) }

func window(from, to int) domain.Window { return domain.Window{Start: at(from), End: at(to)} }

var registered = volunteer.Registered{VolunteerID: vol, Name: "Marisol", Phone: "+1 555 0100",
	Languages: []volunteer.Language{{Code: "es", Level: volunteer.Native}, {Code: "en", Level: volunteer.Fluent}},
	Regions:   []string{"East"}}

func granted(c volunteer.Certification, until time.Time) volunteer.CertificationGranted {
	return volunteer.CertificationGranted{VolunteerID: vol, Certification: c, GrantedAt: thursday.AddDate(-1, 0, 0), ExpiresAt: until}
}

func committed(id uuid.UUID, kind volunteer.Kind, w domain.Window) volunteer.Committed {
	return volunteer.Committed{VolunteerID: vol, CommitmentID: id, Kind: kind, Window: w}
}

func TestVolunteerRules(t *testing.T) {
	var (
		invalid *volunteer.InvalidError
		overlap *volunteer.OverlapError
		cert    *volunteer.CertificationError
	)
	court := volunteer.Certification("court_accompaniment")
	tests := []struct {
		name    string
		given   []domain.Event
		when    volunteer.Command
		then    []domain.Event
		wantErr error
		wantAs  any
	}{
		{name: "registering opens an active record with normalized languages",
			when: volunteer.Register{VolunteerID: vol, Name: " Marisol ", Phone: "+1 555 0100",
				Languages: []volunteer.Language{{Code: "ES", Level: volunteer.Native}, {Code: "en", Level: volunteer.Fluent}}, Regions: []string{"East", "East"}},
			then: []domain.Event{registered}},
		{name: "a volunteer needs a name",
			when: volunteer.Register{VolunteerID: vol, Phone: "+1 555 0100"}, wantAs: &invalid},
		{name: "a volunteer needs a way to be reached",
			when: volunteer.Register{VolunteerID: vol, Name: "Marisol"}, wantAs: &invalid},
		{name: "a language level must be one of the four",
			when:   volunteer.Register{VolunteerID: vol, Name: "Marisol", Phone: "555", Languages: []volunteer.Language{{Code: "es", Level: "good"}}},
			wantAs: &invalid},
		{name: "a volunteer cannot be registered twice",
			given: []domain.Event{registered}, when: volunteer.Register{VolunteerID: vol, Name: "M", Phone: "5"}, wantErr: volunteer.ErrAlreadyRegistered},
		{name: "commands on an unknown volunteer are refused",
			when: volunteer.SetOnCall{OnCall: true}, wantErr: volunteer.ErrNotFound},
		{name: "an active volunteer goes on call",
			given: []domain.Event{registered}, when: volunteer.SetOnCall{OnCall: true},
			then: []domain.Event{volunteer.OnCallChanged{VolunteerID: vol, OnCall: true}}},
		{name: "going on call twice records nothing more",
			given: []domain.Event{registered, volunteer.OnCallChanged{VolunteerID: vol, OnCall: true}}, when: volunteer.SetOnCall{OnCall: true}},
		{name: "a deactivated volunteer cannot go on call",
			given: []domain.Event{registered, volunteer.Deactivated{VolunteerID: vol}}, when: volunteer.SetOnCall{OnCall: true},
			wantErr: volunteer.ErrInactive},
		{name: "a volunteer holding future work cannot be deactivated",
			given: []domain.Event{registered, committed(shift, volunteer.ShiftSlot, window(9, 13))},
			when:  volunteer.Deactivate{Now: at(8)}, wantErr: volunteer.ErrHasCommitments},
		{name: "a volunteer whose work is over can be deactivated",
			given: []domain.Event{registered, committed(shift, volunteer.ShiftSlot, window(9, 13))},
			when:  volunteer.Deactivate{Now: at(14)}, then: []domain.Event{volunteer.Deactivated{VolunteerID: vol}}},
		{name: "a certification is granted with its expiry",
			given: []domain.Event{registered},
			when:  volunteer.Grant{Certification: court, GrantedAt: thursday.AddDate(-1, 0, 0), ExpiresAt: thursday.AddDate(1, 0, 0)},
			then:  []domain.Event{granted(court, thursday.AddDate(1, 0, 0))}},
		{name: "a certification cannot expire before it is granted",
			given: []domain.Event{registered},
			when:  volunteer.Grant{Certification: court, GrantedAt: thursday, ExpiresAt: thursday.AddDate(0, 0, -1)}, wantAs: &invalid},
		{name: "a certification not held cannot be revoked",
			given: []domain.Event{registered}, when: volunteer.Revoke{Certification: court}, wantErr: volunteer.ErrNotCertified},
		{name: "a free, certified volunteer takes work",
			given: []domain.Event{registered, granted(court, time.Time{})},
			when:  volunteer.Commit{CommitmentID: hearing, Kind: volunteer.Assignment, Window: window(9, 11), Requires: []volunteer.Certification{court}},
			then:  []domain.Event{committed(hearing, volunteer.Assignment, window(9, 11))}},
		{name: "work overlapping work already held is refused, naming it",
			given: []domain.Event{registered, committed(shift, volunteer.ShiftSlot, window(8, 12))},
			when:  volunteer.Commit{CommitmentID: hearing, Kind: volunteer.Assignment, Window: window(9, 11)}, wantAs: &overlap},
		{name: "an on-call responder is dispatched from the shift they are working",
			given: []domain.Event{registered, committed(shift, volunteer.ShiftSlot, window(8, 12))},
			when:  volunteer.Commit{CommitmentID: hearing, Kind: volunteer.Assignment, Window: window(9, 11), FromShift: true},
			then:  []domain.Event{committed(hearing, volunteer.Assignment, window(9, 11))}},
		{name: "being dispatched from a shift never overlaps another assignment",
			given: []domain.Event{registered, committed(shift, volunteer.Assignment, window(8, 12))},
			when:  volunteer.Commit{CommitmentID: hearing, Kind: volunteer.Assignment, Window: window(9, 11), FromShift: true}, wantAs: &overlap},
		{name: "work starting as other work ends does not overlap",
			given: []domain.Event{registered, committed(shift, volunteer.ShiftSlot, window(8, 9))},
			when:  volunteer.Commit{CommitmentID: hearing, Kind: volunteer.Assignment, Window: window(9, 11)},
			then:  []domain.Event{committed(hearing, volunteer.Assignment, window(9, 11))}},
		{name: "released work no longer blocks its window",
			given: []domain.Event{registered, committed(shift, volunteer.ShiftSlot, window(8, 12)), volunteer.Released{VolunteerID: vol, CommitmentID: shift}},
			when:  volunteer.Commit{CommitmentID: hearing, Kind: volunteer.Assignment, Window: window(9, 11)},
			then:  []domain.Event{committed(hearing, volunteer.Assignment, window(9, 11))}},
		{name: "work needing a certification the volunteer lacks is refused, naming it",
			given:  []domain.Event{registered},
			when:   volunteer.Commit{CommitmentID: hearing, Kind: volunteer.Assignment, Window: window(9, 11), Requires: []volunteer.Certification{court}},
			wantAs: &cert},
		{name: "a certification expiring before the work ends does not count",
			given:  []domain.Event{registered, granted(court, at(10))},
			when:   volunteer.Commit{CommitmentID: hearing, Kind: volunteer.Assignment, Window: window(9, 11), Requires: []volunteer.Certification{court}},
			wantAs: &cert},
		{name: "a revoked certification does not count",
			given:  []domain.Event{registered, granted(court, time.Time{}), volunteer.CertificationRevoked{VolunteerID: vol, Certification: court}},
			when:   volunteer.Commit{CommitmentID: hearing, Kind: volunteer.Assignment, Window: window(9, 11), Requires: []volunteer.Certification{court}},
			wantAs: &cert},
		{name: "a deactivated volunteer takes no work",
			given: []domain.Event{registered, volunteer.Deactivated{VolunteerID: vol}},
			when:  volunteer.Commit{CommitmentID: hearing, Kind: volunteer.Assignment, Window: window(9, 11)}, wantErr: volunteer.ErrInactive},
		{name: "work that ends before it starts is refused",
			given: []domain.Event{registered},
			when:  volunteer.Commit{CommitmentID: hearing, Kind: volunteer.Assignment, Window: window(11, 9)}, wantAs: &invalid},
		{name: "committing again to the same work records nothing more",
			given: []domain.Event{registered, committed(hearing, volunteer.Assignment, window(9, 11))},
			when:  volunteer.Commit{CommitmentID: hearing, Kind: volunteer.Assignment, Window: window(9, 11)}},
		{name: "work not held cannot be released",
			given: []domain.Event{registered}, when: volunteer.Release{CommitmentID: hearing}, wantErr: volunteer.ErrNoSuchCommitment},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := volunteer.Decider.Decide(volunteer.Decider.Fold(tt.given), tt.when)
			domaintest.Then(t, got, err, tt.then, tt.wantErr, tt.wantAs)
		})
	}
}

func TestTheStateAnswersWhatMatchingAsks(t *testing.T) {
	s := volunteer.Decider.Fold([]domain.Event{registered, granted("rapid_response", at(48)),
		committed(shift, volunteer.ShiftSlot, window(9, 13))})
	if got := s.Speaks("es"); got != volunteer.Native || !got.AtLeast(volunteer.Fluent) {
		t.Errorf("Spanish = %q, want native, at least fluent", got)
	}
	if s.Speaks("mam") != "" || volunteer.Level("").AtLeast(volunteer.Basic) {
		t.Error("an unspoken language has a level")
	}
	if !s.InRegion("East") || s.InRegion("West") {
		t.Error("regions are wrong")
	}
	if !s.Certified("rapid_response", window(20, 22)) || s.Certified("rapid_response", window(47, 49)) {
		t.Error("certification validity ignores the expiry")
	}
	if s.Load(at(8)) != 1 || s.Load(at(14)) != 0 {
		t.Errorf("load = %d before and %d after the shift, want 1 and 0", s.Load(at(8)), s.Load(at(14)))
	}
}
