package invitation_test

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/presente-dispatch/presente/domain"
	"github.com/presente-dispatch/presente/domain/account"
	"github.com/presente-dispatch/presente/domain/domaintest"
	"github.com/presente-dispatch/presente/domain/invitation"
)

var (
	inviteID = uuid.MustParse("0195a3b2-0000-7000-8000-0000000b0001")
	userID   = uuid.MustParse("0195a3b2-0000-7000-8000-0000000b0002")
	now      = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
)

func created(role account.Role) invitation.Created {
	return invitation.Created{InvitationID: inviteID, UserID: userID, Email: "rosa@example.org", Role: role, ExpiresAt: now.Add(invitation.DefaultTTL)}
}

func create(inviter, role account.Role) invitation.Create {
	return invitation.Create{InvitationID: inviteID, UserID: userID, Email: " Rosa@Example.org", Role: role, InviterRole: inviter, Now: now}
}

func TestInvitationRules(t *testing.T) {
	var invalid *account.InvalidError
	withTTL := create(account.Admin, account.Volunteer)
	withTTL.TTL = 48 * time.Hour
	tooLong := create(account.Admin, account.Volunteer)
	tooLong.TTL = 31 * 24 * time.Hour
	tests := []struct {
		name    string
		given   []domain.Event
		when    invitation.Command
		then    []domain.Event
		wantErr error
		wantAs  any
	}{
		{name: "an admin invites a volunteer for a week by default",
			when: create(account.Admin, account.Volunteer),
			then: []domain.Event{created(account.Volunteer)}},
		{name: "an invitation may be given a shorter life",
			when: withTTL,
			then: []domain.Event{invitation.Created{InvitationID: inviteID, UserID: userID, Email: "rosa@example.org", Role: account.Volunteer, ExpiresAt: now.Add(48 * time.Hour)}}},
		{name: "an invitation may not outlive thirty days",
			when: tooLong, wantAs: &invalid},
		{name: "an admin may invite a coordinator",
			when: create(account.Admin, account.Coordinator),
			then: []domain.Event{created(account.Coordinator)}},
		{name: "a coordinator may invite a dispatcher",
			when: create(account.Coordinator, account.Dispatcher),
			then: []domain.Event{created(account.Dispatcher)}},
		{name: "a coordinator may not invite an admin",
			when: create(account.Coordinator, account.Admin), wantErr: invitation.ErrNotGrantable},
		{name: "a coordinator may not invite another coordinator",
			when: create(account.Coordinator, account.Coordinator), wantErr: invitation.ErrNotGrantable},
		{name: "a dispatcher may not invite anyone",
			when: create(account.Dispatcher, account.Volunteer), wantErr: invitation.ErrNotGrantable},
		{name: "an invitation to an unknown role is refused",
			when: create(account.Admin, "root"), wantAs: &invalid},
		{name: "an invitation to a malformed email is refused",
			when:   invitation.Create{InvitationID: inviteID, UserID: userID, Email: "rosa", Role: account.Volunteer, InviterRole: account.Admin, Now: now},
			wantAs: &invalid},
		{name: "an invitation cannot be created twice",
			given: []domain.Event{created(account.Volunteer)},
			when:  create(account.Admin, account.Volunteer), wantErr: invitation.ErrExists},
		{name: "a pending invitation is accepted once",
			given: []domain.Event{created(account.Volunteer)},
			when:  invitation.Accept{Now: now.Add(time.Hour)},
			then:  []domain.Event{invitation.Accepted{InvitationID: inviteID, UserID: userID}}},
		{name: "a used invitation cannot be used again",
			given:   []domain.Event{created(account.Volunteer), invitation.Accepted{InvitationID: inviteID, UserID: userID}},
			when:    invitation.Accept{Now: now.Add(time.Hour)},
			wantErr: invitation.ErrUsed},
		{name: "an expired invitation cannot be used",
			given:   []domain.Event{created(account.Volunteer)},
			when:    invitation.Accept{Now: now.Add(invitation.DefaultTTL)},
			wantErr: invitation.ErrExpired},
		{name: "a withdrawn invitation cannot be used",
			given:   []domain.Event{created(account.Volunteer), invitation.Revoked{InvitationID: inviteID}},
			when:    invitation.Accept{Now: now.Add(time.Hour)},
			wantErr: invitation.ErrRevoked},
		{name: "an unknown invitation cannot be used",
			when: invitation.Accept{Now: now}, wantErr: invitation.ErrNotFound},
		{name: "a pending invitation can be withdrawn",
			given: []domain.Event{created(account.Volunteer)},
			when:  invitation.Revoke{},
			then:  []domain.Event{invitation.Revoked{InvitationID: inviteID}}},
		{name: "withdrawing twice records nothing more",
			given: []domain.Event{created(account.Volunteer), invitation.Revoked{InvitationID: inviteID}},
			when:  invitation.Revoke{}},
		{name: "a used invitation cannot be withdrawn",
			given:   []domain.Event{created(account.Volunteer), invitation.Accepted{InvitationID: inviteID, UserID: userID}},
			when:    invitation.Revoke{},
			wantErr: invitation.ErrAlreadyClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			state := invitation.Decider.Fold(tt.given)
			got, err := invitation.Decider.Decide(state, tt.when)
			domaintest.Then(t, got, err, tt.then, tt.wantErr, tt.wantAs)
		})
	}
}

func TestStatusCountsExpiry(t *testing.T) {
	s := invitation.Decider.Fold([]domain.Event{created(account.Volunteer)})
	if got, want := s.StatusAt(now), invitation.Pending; got != want {
		t.Errorf("status now = %s, want %s", got, want)
	}
	if got, want := s.StatusAt(now.Add(invitation.DefaultTTL)), invitation.ExpiredState; got != want {
		t.Errorf("status at expiry = %s, want %s", got, want)
	}
}

func TestStreamIDDependsOnTheToken(t *testing.T) {
	a, b := invitation.StreamID("token-a"), invitation.StreamID("token-b")
	if a == b || a != invitation.StreamID("token-a") {
		t.Errorf("stream ids %s and %s: want distinct per token and stable", a, b)
	}
}
