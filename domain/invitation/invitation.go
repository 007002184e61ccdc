// Package invitation is how people join Presente: an admin or coordinator
// invites an email address to a role, and the invitee sets a password
// through a single-use link that expires.
//
// The link carries a random token that only the invitee holds. The
// invitation's stream id is derived from the token (StreamID), so the log
// stores no token and the server finds an invitation from its link alone.
// The invitee's email is personal data of the account the invitation will
// open (UserID), declared as such.
package invitation

import (
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/presente-dispatch/presente/domain"
	"github.com/presente-dispatch/presente/domain/account"
)

// StreamType names invitation streams.
const StreamType = "invitation"

// Lifetimes an invitation may be given.
const (
	DefaultTTL = 7 * 24 * time.Hour
	MinTTL     = time.Hour
	MaxTTL     = 30 * 24 * time.Hour
)

// namespace derives invitation stream ids from tokens.
var namespace = uuid.MustParse("9f3c6a1e-2b7d-4e58-a0c4-6d1e8f2b7a93")

// StreamID returns the id of the invitation a link's token opens. The
// token cannot be recovered from it.
func StreamID(token string) uuid.UUID { return uuid.NewSHA1(namespace, []byte(token)) }

// Events.
type (
	// Created opens an invitation for Email to join as Role; accepting it
	// opens the account UserID.
	Created struct {
		InvitationID uuid.UUID    `json:"invitation_id"`
		UserID       uuid.UUID    `json:"user_id"`
		Email        string       `json:"email" pii:"user_id"`
		Role         account.Role `json:"role"`
		ExpiresAt    time.Time    `json:"expires_at"`
	}
	// Accepted records that the invitee set a password and the account
	// was opened. The invitation cannot be used again.
	Accepted struct {
		InvitationID uuid.UUID `json:"invitation_id"`
		UserID       uuid.UUID `json:"user_id"`
	}
	// Revoked withdraws an unused invitation.
	Revoked struct {
		InvitationID uuid.UUID `json:"invitation_id"`
	}
)

// EventType implements domain.Event.
func (Created) EventType() string  { return "InvitationCreated" }
func (Accepted) EventType() string { return "InvitationAccepted" }
func (Revoked) EventType() string  { return "InvitationRevoked" }

// Events lists a zero value of every event type, for registration.
var Events = []domain.Event{Created{}, Accepted{}, Revoked{}}

// Commands.
type (
	// Create invites Email to Role. InviterRole is the role of whoever
	// invites: only an admin may invite admins and coordinators.
	Create struct {
		InvitationID uuid.UUID
		UserID       uuid.UUID
		Email        string
		Role         account.Role
		InviterRole  account.Role
		Now          time.Time
		TTL          time.Duration // DefaultTTL when zero
	}
	// Accept uses the invitation at Now.
	Accept struct{ Now time.Time }
	// Revoke withdraws the invitation.
	Revoke struct{}
)

// Command is any of the commands above.
type Command interface{ isCommand() }

func (Create) isCommand() {}
func (Accept) isCommand() {}
func (Revoke) isCommand() {}

// Errors.
var (
	ErrNotFound      = errors.New("no such invitation: check the link, or ask for a new one")
	ErrExists        = errors.New("this invitation already exists")
	ErrUsed          = errors.New("this invitation has already been used: sign in, or ask for a new one")
	ErrExpired       = errors.New("this invitation has expired: ask for a new one")
	ErrRevoked       = errors.New("this invitation was withdrawn: ask for a new one")
	ErrNotGrantable  = errors.New("only an admin may invite admins and coordinators")
	ErrAlreadyClosed = errors.New("this invitation is no longer open: it was used or withdrawn")
)

// Status is where an invitation stands.
type Status string

// Statuses.
const (
	Pending       Status = "pending"
	AcceptedState Status = "accepted"
	RevokedState  Status = "revoked"
	ExpiredState  Status = "expired" // never stored: a pending invitation past its expiry
)

// State is an invitation as its events leave it.
type State struct {
	Exists       bool
	InvitationID uuid.UUID
	UserID       uuid.UUID
	Role         account.Role
	ExpiresAt    time.Time
	Status       Status
}

// StatusAt is the invitation's status at now, counting expiry.
func (s State) StatusAt(now time.Time) Status {
	if s.Status == Pending && !now.Before(s.ExpiresAt) {
		return ExpiredState
	}
	return s.Status
}

// Decider is the invitation aggregate.
var Decider = domain.Decider[State, Command]{
	StreamType: StreamType,
	Initial:    func() State { return State{} },
	Evolve:     evolve,
	Decide:     decide,
}

func evolve(s State, e domain.Event) State {
	switch e := e.(type) {
	case Created:
		return State{Exists: true, InvitationID: e.InvitationID, UserID: e.UserID, Role: e.Role, ExpiresAt: e.ExpiresAt, Status: Pending}
	case Accepted:
		s.Status = AcceptedState
	case Revoked:
		s.Status = RevokedState
	}
	return s
}

func decide(s State, c Command) ([]domain.Event, error) {
	if _, ok := c.(Create); !ok && !s.Exists {
		return nil, ErrNotFound
	}
	switch c := c.(type) {
	case Create:
		return create(s, c)
	case Accept:
		switch s.StatusAt(c.Now) {
		case AcceptedState:
			return nil, ErrUsed
		case RevokedState:
			return nil, ErrRevoked
		case ExpiredState:
			return nil, ErrExpired
		}
		return []domain.Event{Accepted{InvitationID: s.InvitationID, UserID: s.UserID}}, nil
	case Revoke:
		switch s.Status {
		case RevokedState:
			return nil, nil
		case AcceptedState:
			return nil, ErrAlreadyClosed
		}
		return []domain.Event{Revoked{InvitationID: s.InvitationID}}, nil
	}
	return nil, fmt.Errorf("invitation: unknown command %T", c)
}

func create(s State, c Create) ([]domain.Event, error) {
	if s.Exists {
		return nil, ErrExists
	}
	if c.InvitationID == uuid.Nil || c.UserID == uuid.Nil {
		return nil, &account.InvalidError{Field: "invitation_id", Message: "is required"}
	}
	email, err := account.NormalizeEmail(c.Email)
	if err != nil {
		return nil, err
	}
	if !c.Role.Valid() {
		return nil, &account.InvalidError{Field: "role", Message: fmt.Sprintf("%q is not a role: use admin, coordinator, dispatcher or volunteer", c.Role)}
	}
	if !MayInvite(c.InviterRole, c.Role) {
		return nil, ErrNotGrantable
	}
	ttl := c.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	if ttl < MinTTL || ttl > MaxTTL {
		return nil, &account.InvalidError{Field: "expires_in_hours",
			Message: fmt.Sprintf("must be between %d and %d hours", int(MinTTL.Hours()), int(MaxTTL.Hours()))}
	}
	return []domain.Event{Created{InvitationID: c.InvitationID, UserID: c.UserID, Email: email, Role: c.Role,
		ExpiresAt: c.Now.Add(ttl).UTC().Truncate(time.Second)}}, nil
}

// MayInvite tells whether someone with role inviter may invite people to
// role: admins to any role, coordinators to dispatcher and volunteer.
func MayInvite(inviter, role account.Role) bool {
	switch inviter {
	case account.Admin:
		return true
	case account.Coordinator:
		return role == account.Dispatcher || role == account.Volunteer
	}
	return false
}
