// Package account is the aggregate of the people who use Presente: admins,
// coordinators, dispatchers and volunteers. Each account has one role, is
// active or deactivated, and may name the language its holder reads the
// app in; every change is an event.
//
// The email address is personal data of the account holder and is declared
// as such. Password hashes are credentials, not facts: they are kept out of
// the log (an immutable log would keep every old hash forever), and the log
// records only that a password changed.
package account

import (
	"errors"
	"fmt"
	"net/mail"
	"strings"

	"github.com/google/uuid"

	"github.com/presente-dispatch/presente/domain"
)

// StreamType names account streams.
const StreamType = "account"

// Role is what an account may do.
type Role string

// The roles, from DOMAIN.md.
const (
	Admin       Role = "admin"
	Coordinator Role = "coordinator"
	Dispatcher  Role = "dispatcher"
	Volunteer   Role = "volunteer"
)

// Roles lists every role.
var Roles = []Role{Admin, Coordinator, Dispatcher, Volunteer}

// Valid tells whether r is one of Roles.
func (r Role) Valid() bool {
	for _, known := range Roles {
		if r == known {
			return true
		}
	}
	return false
}

// Events.
type (
	// Registered opens an account.
	Registered struct {
		UserID uuid.UUID `json:"user_id"`
		Email  string    `json:"email" pii:"user_id"`
		Role   Role      `json:"role"`
	}
	// RoleChanged moves an account to another role.
	RoleChanged struct {
		UserID uuid.UUID `json:"user_id"`
		From   Role      `json:"from"`
		To     Role      `json:"to"`
	}
	// PasswordChanged records that a new password was set (its hash is
	// stored with the credentials, not here).
	PasswordChanged struct {
		UserID uuid.UUID `json:"user_id"`
	}
	// Deactivated closes an account: it can no longer sign in, and its
	// sessions are revoked.
	Deactivated struct {
		UserID uuid.UUID `json:"user_id"`
	}
	// Reactivated reopens a deactivated account.
	Reactivated struct {
		UserID uuid.UUID `json:"user_id"`
	}
	// LanguageChosen records the language the holder reads the app in, on
	// every device they sign in from: a tag such as es or en.
	LanguageChosen struct {
		UserID   uuid.UUID `json:"user_id"`
		Language string    `json:"language"`
	}
)

// EventType implements domain.Event.
func (Registered) EventType() string      { return "AccountRegistered" }
func (RoleChanged) EventType() string     { return "AccountRoleChanged" }
func (PasswordChanged) EventType() string { return "AccountPasswordChanged" }
func (Deactivated) EventType() string     { return "AccountDeactivated" }
func (Reactivated) EventType() string     { return "AccountReactivated" }
func (LanguageChosen) EventType() string  { return "AccountLanguageChosen" }

// Events lists a zero value of every event type, for registration.
var Events = []domain.Event{Registered{}, RoleChanged{}, PasswordChanged{}, Deactivated{}, Reactivated{}, LanguageChosen{}}

// Commands.
type (
	// Register opens an account for UserID.
	Register struct {
		UserID uuid.UUID
		Email  string
		Role   Role
	}
	// ChangeRole gives the account another role.
	ChangeRole struct{ Role Role }
	// RecordPasswordChange records that a new password was set.
	RecordPasswordChange struct{}
	// Deactivate closes the account.
	Deactivate struct{}
	// Reactivate reopens the account.
	Reactivate struct{}
	// ChooseLanguage sets the language the holder reads the app in. The
	// caller checks that the app has a catalog for it; the domain checks
	// only that it is a language tag.
	ChooseLanguage struct{ Language string }
)

// Command is any of the commands above.
type Command interface{ isCommand() }

func (Register) isCommand()             {}
func (ChangeRole) isCommand()           {}
func (RecordPasswordChange) isCommand() {}
func (Deactivate) isCommand()           {}
func (Reactivate) isCommand()           {}
func (ChooseLanguage) isCommand()       {}

// Errors.
var (
	ErrAlreadyRegistered = errors.New("this account already exists")
	ErrNotFound          = errors.New("no such account")
	ErrDeactivated       = errors.New("this account is deactivated: reactivate it first")
)

// InvalidError is a command field that does not hold what it must.
type InvalidError = domain.InvalidError

// State is an account as its events leave it.
type State struct {
	Exists bool
	UserID uuid.UUID
	Email  string // a marker, not the address, once the holder is forgotten
	Role   Role
	Active bool
	// Language is the holder's chosen language tag; empty until chosen.
	Language string
}

// Decider is the account aggregate.
var Decider = domain.Decider[State, Command]{
	StreamType: StreamType,
	Initial:    func() State { return State{} },
	Evolve:     evolve,
	Decide:     decide,
}

func evolve(s State, e domain.Event) State {
	switch e := e.(type) {
	case Registered:
		return State{Exists: true, UserID: e.UserID, Email: e.Email, Role: e.Role, Active: true}
	case RoleChanged:
		s.Role = e.To
	case Deactivated:
		s.Active = false
	case Reactivated:
		s.Active = true
	case LanguageChosen:
		s.Language = e.Language
	}
	return s
}

func decide(s State, c Command) ([]domain.Event, error) {
	if _, ok := c.(Register); !ok && !s.Exists {
		return nil, ErrNotFound
	}
	switch c := c.(type) {
	case Register:
		if s.Exists {
			return nil, ErrAlreadyRegistered
		}
		if c.UserID == uuid.Nil {
			return nil, &InvalidError{Field: "user_id", Message: "is required"}
		}
		email, err := NormalizeEmail(c.Email)
		if err != nil {
			return nil, err
		}
		if !c.Role.Valid() {
			return nil, invalidRole(c.Role)
		}
		return []domain.Event{Registered{UserID: c.UserID, Email: email, Role: c.Role}}, nil
	case ChangeRole:
		if !c.Role.Valid() {
			return nil, invalidRole(c.Role)
		}
		if !s.Active {
			return nil, ErrDeactivated
		}
		if c.Role == s.Role {
			return nil, nil
		}
		return []domain.Event{RoleChanged{UserID: s.UserID, From: s.Role, To: c.Role}}, nil
	case RecordPasswordChange:
		if !s.Active {
			return nil, ErrDeactivated
		}
		return []domain.Event{PasswordChanged{UserID: s.UserID}}, nil
	case Deactivate:
		if !s.Active {
			return nil, nil
		}
		return []domain.Event{Deactivated{UserID: s.UserID}}, nil
	case Reactivate:
		if s.Active {
			return nil, nil
		}
		return []domain.Event{Reactivated{UserID: s.UserID}}, nil
	case ChooseLanguage:
		lang, err := NormalizeLanguage(c.Language)
		if err != nil {
			return nil, err
		}
		if !s.Active {
			return nil, ErrDeactivated
		}
		if lang == s.Language {
			return nil, nil
		}
		return []domain.Event{LanguageChosen{UserID: s.UserID, Language: lang}}, nil
	}
	return nil, fmt.Errorf("account: unknown command %T", c)
}

func invalidRole(r Role) error {
	return &InvalidError{Field: "role", Message: fmt.Sprintf("%q is not a role: use admin, coordinator, dispatcher or volunteer", r)}
}

// NormalizeEmail checks an email address and returns it in the one form
// accounts are looked up by: trimmed and lower-cased.
func NormalizeEmail(email string) (string, error) {
	e := strings.ToLower(strings.TrimSpace(email))
	if len(e) > 254 {
		return "", &InvalidError{Field: "email", Message: "is longer than 254 characters"}
	}
	addr, err := mail.ParseAddress(e)
	if err != nil || addr.Address != e || !strings.Contains(e[strings.LastIndex(e, "@")+1:], ".") {
		return "", &InvalidError{Field: "email", Message: "is not an email address such as name@example.org"}
	}
	return e, nil
}

// NormalizeLanguage checks a language tag (es, en, ht, pt-br) and returns
// it trimmed and lower-cased, the form catalogs are named in.
func NormalizeLanguage(tag string) (string, error) {
	l := strings.ToLower(strings.TrimSpace(tag))
	if l == "" || len(l) > 16 || strings.Trim(l, "abcdefghijklmnopqrstuvwxyz-") != "" || l[0] == '-' || l[len(l)-1] == '-' {
		return "", &InvalidError{Field: "language", Message: fmt.Sprintf("%q is not a language tag such as en or es", tag)}
	}
	return l, nil
}
