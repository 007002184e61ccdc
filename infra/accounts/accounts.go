// Package accounts runs what people do with their accounts: signing in and
// out, accepting invitations, changing passwords, and what admins do to
// accounts. It joins the account and invitation aggregates in the event
// log with the two mutable tables beside it, credentials and sessions,
// and keeps them consistent when a step fails half-way.
//
// Nothing here decides who may call what: the web layer's permission table
// does, before any method runs. Methods that act on someone else's account
// take the acting Principal only to record who acted.
package accounts

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/presente-dispatch/presente/domain/account"
	"github.com/presente-dispatch/presente/domain/invitation"
	"github.com/presente-dispatch/presente/infra/credentials"
	"github.com/presente-dispatch/presente/infra/eventstore"
	"github.com/presente-dispatch/presente/infra/keyring"
	"github.com/presente-dispatch/presente/infra/password"
	"github.com/presente-dispatch/presente/infra/sessions"
)

// Errors a caller shows to the person acting.
var (
	// ErrBadCredentials answers every failed sign-in alike, whether the
	// address is unknown, the password wrong or the account deactivated,
	// so that sign-in never tells whether an address has an account.
	ErrBadCredentials = errors.New("the email address or password is not right")
	// ErrWrongPassword refuses a password change whose current password
	// is wrong.
	ErrWrongPassword = errors.New("the current password is not right")
	// ErrEmailTaken refuses a new account (from the command line or the
	// demo) whose address another account already uses.
	ErrEmailTaken = errors.New("an account already uses this email address: it needs no invitation")
	// ErrSelf refuses an admin's action on their own account that would
	// lock them out (deactivating or demoting themselves).
	ErrSelf = errors.New("you cannot do this to your own account: ask another admin")
)

// Principal is who is acting: a signed-in user and the session they use.
type Principal struct {
	SessionID uuid.UUID
	UserID    uuid.UUID
	Role      account.Role
	// Checked is when the session was confirmed live (just before it was
	// read): whatever ended it after that may not have been seen.
	Checked time.Time
}

// Actor is how the event log names the principal: by id, never by name.
func (p Principal) Actor() string { return "user:" + p.UserID.String() }

// Meta is the metadata of events the principal causes.
func (p Principal) Meta(reason string) eventstore.Metadata {
	return eventstore.Metadata{Actor: p.Actor(), Reason: reason}
}

// Options tune the service.
type Options struct {
	// Sessions are the session timeouts.
	Sessions sessions.Options
	// Clock gives the time; time.Now when nil.
	Clock func() time.Time
	// HashSlots bounds concurrent argon2id runs; GOMAXPROCS (at least 2)
	// when zero.
	HashSlots int
}

// Service is the accounts service.
type Service struct {
	pool     *pgxpool.Pool
	store    *eventstore.Store
	creds    *credentials.Store
	sessions *sessions.Store
	now      func() time.Time
	// dummyHash is verified against when an address has no account, so
	// an unknown address takes as long to refuse as a wrong password.
	dummyHash string
	// slots bounds concurrent password hashing (see slot).
	slots chan struct{}
	// tokenKey derives the invitation tokens of retried requests.
	tokenKey []byte
}

// New returns the accounts service. The store must have the account and
// invitation events registered and a keyring for their personal data.
func New(pool *pgxpool.Pool, store *eventstore.Store, master keyring.MasterKey, opts Options) (*Service, error) {
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Sessions.Clock == nil {
		opts.Sessions.Clock = opts.Clock
	}
	dummy, err := password.Hash(randomToken())
	if err != nil {
		return nil, err
	}
	slots := opts.HashSlots
	if slots <= 0 {
		slots = max(2, runtime.GOMAXPROCS(0))
	}
	return &Service{
		pool:      pool,
		store:     store,
		creds:     credentials.New(pool, master),
		sessions:  sessions.New(pool, opts.Sessions),
		now:       opts.Clock,
		dummyHash: dummy,
		slots:     make(chan struct{}, slots),
		tokenKey:  master.DeriveKey("invitation-token"),
	}, nil
}

// Sessions is the session store, for the web layer's periodic checks and
// clean-up.
func (s *Service) Sessions() *sessions.Store { return s.sessions }

// randomToken returns 256 random bits, URL-safe.
func randomToken() string {
	raw := make([]byte, 32)
	_, _ = rand.Read(raw) // crypto/rand.Read never fails on supported platforms
	return base64.RawURLEncoding.EncodeToString(raw)
}

// NewAccount is an account to open.
type NewAccount struct {
	UserID   uuid.UUID // a new id when zero
	Email    string
	Role     account.Role
	Password string
}

// Create opens an account with a password: the first admin from the
// command line, the demo's accounts. It returns the account's id.
func (s *Service) Create(ctx context.Context, a NewAccount, meta eventstore.Metadata) (uuid.UUID, error) {
	email, hash, err := s.prepare(ctx, a.Email, a.Role, a.Password)
	if err != nil {
		return uuid.Nil, err
	}
	if a.UserID == uuid.Nil {
		if a.UserID, err = uuid.NewV7(); err != nil {
			return uuid.Nil, err
		}
	}
	return a.UserID, s.open(ctx, a.UserID, email, a.Role, hash, meta)
}

// prepare checks a new account's fields and hashes its password.
func (s *Service) prepare(ctx context.Context, email string, role account.Role, pw string) (string, string, error) {
	normalized, err := account.NormalizeEmail(email)
	if err != nil {
		return "", "", err
	}
	if !role.Valid() {
		return "", "", &account.InvalidError{Field: "role", Message: fmt.Sprintf("%q is not a role: use admin, coordinator, dispatcher or volunteer", role)}
	}
	hash, err := s.hash(ctx, pw)
	return normalized, hash, err
}

// ErrBusy refuses a request that found every password-hashing slot taken
// for too long: the server is flooded with sign-ins.
var ErrBusy = errors.New("the server is busy checking passwords: try again in a moment")

// hashWait is how long a request waits for a hashing slot before ErrBusy.
const hashWait = 5 * time.Second

// slot runs f holding one of the hashing slots. Each argon2id run takes
// 19 MiB and most of a core; without a bound, a burst of sign-ins could
// exhaust memory before any throttle counts them.
func (s *Service) slot(ctx context.Context, f func()) error {
	timer := time.NewTimer(hashWait)
	defer timer.Stop()
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return ErrBusy
	}
	defer func() { <-s.slots }()
	f()
	return nil
}

// hash validates and hashes a new password, naming the field.
func (s *Service) hash(ctx context.Context, pw string) (string, error) {
	if err := password.Validate(pw); err != nil {
		return "", &account.InvalidError{Field: "password", Message: err.Error()}
	}
	var (
		hash string
		err  error
	)
	if serr := s.slot(ctx, func() { hash, err = password.Hash(pw) }); serr != nil {
		return "", serr
	}
	return hash, err
}

// verify checks a password against a stored hash.
func (s *Service) verify(ctx context.Context, pw, hash string) (bool, error) {
	var (
		ok  bool
		err error
	)
	if serr := s.slot(ctx, func() { ok, _, err = password.Verify(pw, hash) }); serr != nil {
		return false, serr
	}
	return ok, err
}

// open stores credentials, then records the account. A failure after the
// credentials were stored removes them, so no address is left blocked by a
// half-made account.
func (s *Service) open(ctx context.Context, userID uuid.UUID, email string, role account.Role, hash string, meta eventstore.Metadata) error {
	err := s.creds.Create(ctx, userID, email, hash)
	if errors.Is(err, credentials.ErrEmailTaken) {
		// Credentials whose account was never recorded (a crash between
		// the steps below) must not block the address for good.
		if reclaimed, rerr := s.reclaimOrphan(ctx, email); rerr != nil {
			return rerr
		} else if reclaimed {
			err = s.creds.Create(ctx, userID, email, hash)
		}
	}
	if errors.Is(err, credentials.ErrEmailTaken) || errors.Is(err, credentials.ErrUserHasCredentials) {
		return ErrEmailTaken
	}
	if err != nil {
		return err
	}
	undo := func(err error) error {
		// Cleaning up must happen even when ctx was cancelled (Ctrl-C,
		// a client gone) during the append.
		if derr := credentials.Delete(context.WithoutCancel(ctx), s.pool, userID); derr != nil {
			return fmt.Errorf("%w (and removing the half-made credentials failed: %v)", err, derr)
		}
		return err
	}
	register := account.Command(account.Register{UserID: userID, Email: email, Role: role})
	if _, err := eventstore.Execute(ctx, s.store, account.Decider, userID, register, meta); err != nil {
		if errors.Is(err, eventstore.ErrOutcomeUnknown) {
			return err // the account may exist: keep its credentials
		}
		return undo(err)
	}
	return nil
}

// orphanAge is how old credentials without an account must be before a
// new account may reclaim their address: far longer than creating an
// account takes, so a creation still under way is never undone.
const orphanAge = 10 * time.Minute

// reclaimOrphan deletes the credentials registered under email if their
// user has no account stream and they are older than orphanAge, and tells
// whether it did.
func (s *Service) reclaimOrphan(ctx context.Context, email string) (bool, error) {
	owner, _, err := s.creds.Lookup(ctx, email)
	if errors.Is(err, credentials.ErrNotFound) {
		return true, nil // deleted meanwhile: try again
	}
	if err != nil {
		return false, err
	}
	if _, version, err := s.store.Load(ctx, owner); err != nil || version > 0 {
		return false, err
	}
	return credentials.DeleteStale(ctx, s.pool, owner, time.Now().Add(-orphanAge))
}

// Account is an account as an admin sees it.
type Account struct {
	UserID uuid.UUID    `json:"user_id"`
	Email  string       `json:"email"`
	Role   account.Role `json:"role"`
	Active bool         `json:"active"`
	// Language is the language the holder chose to read the app in;
	// empty until they choose one.
	Language string `json:"language,omitempty"`
}

// Account returns one account; account.ErrNotFound when there is none.
func (s *Service) Account(ctx context.Context, userID uuid.UUID) (Account, error) {
	st, _, err := eventstore.LoadState(ctx, s.store, account.Decider, userID)
	if err != nil {
		return Account{}, err
	}
	if !st.Exists {
		return Account{}, account.ErrNotFound
	}
	return Account{UserID: st.UserID, Email: st.Email, Role: st.Role, Active: st.Active, Language: st.Language}, nil
}

// Accounts lists every account, oldest first.
func (s *Service) Accounts(ctx context.Context) ([]Account, error) {
	ids, err := s.store.StreamIDs(ctx, account.StreamType)
	if err != nil {
		return nil, err
	}
	out := make([]Account, 0, len(ids))
	for _, id := range ids {
		a, err := s.Account(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// SignIn checks an email address and password and starts a session. Every
// refusal is ErrBadCredentials and takes as long as a wrong password.
func (s *Service) SignIn(ctx context.Context, email, pw string) (string, Principal, error) {
	normalized, err := account.NormalizeEmail(email)
	if err != nil {
		return "", Principal{}, err // a typo, not a probe: say what to fix
	}
	userID, hash, err := s.creds.Lookup(ctx, normalized)
	if errors.Is(err, credentials.ErrNotFound) {
		if _, err := s.verify(ctx, pw, s.dummyHash); err != nil {
			return "", Principal{}, err
		}
		return "", Principal{}, ErrBadCredentials
	}
	if err != nil {
		return "", Principal{}, err
	}
	ok, err := s.verify(ctx, pw, hash)
	if err != nil {
		return "", Principal{}, fmt.Errorf("verify the password of user %s: %w", userID, err)
	}
	if !ok {
		return "", Principal{}, ErrBadCredentials
	}
	st, _, err := eventstore.LoadSealedState(ctx, s.store, account.Decider, userID)
	if err != nil {
		return "", Principal{}, err
	}
	if !st.Exists || !st.Active {
		return "", Principal{}, ErrBadCredentials
	}
	token, sess, err := s.sessions.Create(ctx, userID)
	if err != nil {
		return "", Principal{}, err
	}
	return token, Principal{SessionID: sess.ID, UserID: userID, Role: st.Role}, nil
}

// Authenticate returns who holds a session token: sessions.ErrInvalid
// when the session has ended or the account is no longer active.
func (s *Service) Authenticate(ctx context.Context, token string) (Principal, error) {
	checked := time.Now()
	sess, err := s.sessions.Lookup(ctx, token)
	if err != nil {
		return Principal{}, err
	}
	st, _, err := eventstore.LoadSealedState(ctx, s.store, account.Decider, sess.UserID)
	if err != nil {
		return Principal{}, err
	}
	if !st.Exists || !st.Active {
		return Principal{}, sessions.ErrInvalid
	}
	return Principal{SessionID: sess.ID, UserID: sess.UserID, Role: st.Role, Checked: checked}, nil
}

// Revalidate tells whether a session is still live and its account
// active, and the account's role now, for connections that outlive a
// request (websockets); it records the connection as a use of the session.
func (s *Service) Revalidate(ctx context.Context, sessionID uuid.UUID) (account.Role, error) {
	sess, err := s.sessions.KeepAlive(ctx, sessionID)
	if err != nil {
		return "", err
	}
	st, _, err := eventstore.LoadSealedState(ctx, s.store, account.Decider, sess.UserID)
	if err != nil {
		return "", err
	}
	if !st.Exists || !st.Active {
		return "", sessions.ErrInvalid
	}
	return st.Role, nil
}

// SignOut ends the principal's session.
func (s *Service) SignOut(ctx context.Context, p Principal) error {
	return s.sessions.Revoke(ctx, p.SessionID)
}

// ChangePassword sets the principal's password after checking the current
// one, ends the principal's other sessions (whose ids it returns) and
// records the change. Sessions end first, so a thief's session is gone
// even if a later step fails; the hash is replaced last, so until it is the
// current password still works and a retry completes the change.
func (s *Service) ChangePassword(ctx context.Context, p Principal, current, next string) ([]uuid.UUID, error) {
	hash, _, err := s.creds.LookupUser(ctx, p.UserID)
	if err != nil {
		return nil, err
	}
	ok, err := s.verify(ctx, current, hash)
	if err != nil {
		return nil, fmt.Errorf("verify the password of user %s: %w", p.UserID, err)
	}
	if !ok {
		return nil, ErrWrongPassword
	}
	newHash, err := s.hash(ctx, next)
	if err != nil {
		return nil, err
	}
	revoked, err := s.sessions.RevokeOthers(ctx, p.UserID, p.SessionID)
	if err != nil {
		return nil, err
	}
	if _, err := eventstore.Execute(ctx, s.store, account.Decider, p.UserID, account.Command(account.RecordPasswordChange{}), p.Meta("")); err != nil {
		return revoked, err
	}
	return revoked, s.creds.SetPassword(ctx, p.UserID, newHash)
}

// ChooseLanguage records the language the principal reads the app in, so
// that every device they sign in from shows it. The caller checks that the
// app has a catalog for it.
func (s *Service) ChooseLanguage(ctx context.Context, p Principal, language string) error {
	_, err := eventstore.Execute(ctx, s.store, account.Decider, p.UserID, account.Command(account.ChooseLanguage{Language: language}), p.Meta(""))
	return err
}

// ChangeRole gives an account another role.
func (s *Service) ChangeRole(ctx context.Context, by Principal, userID uuid.UUID, role account.Role, reason string) error {
	if userID == by.UserID {
		return ErrSelf
	}
	_, err := eventstore.Execute(ctx, s.store, account.Decider, userID, account.Command(account.ChangeRole{Role: role}), by.Meta(reason))
	return err
}

// Deactivate closes an account and ends all its sessions, whose ids it
// returns so that their open connections can be closed at once.
func (s *Service) Deactivate(ctx context.Context, by Principal, userID uuid.UUID, reason string) ([]uuid.UUID, error) {
	if userID == by.UserID {
		return nil, ErrSelf
	}
	if _, err := eventstore.Execute(ctx, s.store, account.Decider, userID, account.Command(account.Deactivate{}), by.Meta(reason)); err != nil {
		return nil, err
	}
	return s.sessions.RevokeUser(ctx, userID)
}

// Reactivate reopens a deactivated account.
func (s *Service) Reactivate(ctx context.Context, by Principal, userID uuid.UUID, reason string) error {
	_, err := eventstore.Execute(ctx, s.store, account.Decider, userID, account.Command(account.Reactivate{}), by.Meta(reason))
	return err
}

// RevokeSessions ends every session of an account (a lost phone) and
// returns their ids.
func (s *Service) RevokeSessions(ctx context.Context, userID uuid.UUID) ([]uuid.UUID, error) {
	if _, err := s.Account(ctx, userID); err != nil {
		return nil, err
	}
	return s.sessions.RevokeUser(ctx, userID)
}

// Invitation is an invitation as staff and its invitee see it.
type Invitation struct {
	InvitationID uuid.UUID         `json:"invitation_id"`
	Email        string            `json:"email"`
	Role         account.Role      `json:"role"`
	ExpiresAt    time.Time         `json:"expires_at"`
	Status       invitation.Status `json:"status"`
}

// Invite creates an invitation for email to join as role and returns the
// token for its link, which only the invitee should see.
//
// retry names the request when its client may retry it (a hash of its
// Idempotency-Key and who sent it); nil when it cannot. With it the token
// is derived from it under a server secret instead of drawn at random, so
// a retry whose first try committed unseen finds the same invitation and
// returns it rather than making a second.
func (s *Service) Invite(ctx context.Context, by Principal, email string, role account.Role, ttl time.Duration, retry []byte) (string, Invitation, error) {
	normalized, err := account.NormalizeEmail(email)
	if err != nil {
		return "", Invitation{}, err
	}
	// Whether the address already has an account is not checked here:
	// the answer would tell a coordinator, who may not list accounts,
	// which addresses do. The invitee learns it on accepting.
	userID, err := uuid.NewV7()
	if err != nil {
		return "", Invitation{}, err
	}
	token := randomToken()
	if retry != nil {
		mac := hmac.New(sha256.New, s.tokenKey)
		mac.Write(retry)
		token = base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
	}
	id := invitation.StreamID(token)
	create := invitation.Command(invitation.Create{InvitationID: id, UserID: userID, Email: normalized, Role: role,
		InviterRole: by.Role, Now: s.now(), TTL: ttl})
	recorded, err := eventstore.Execute(ctx, s.store, invitation.Decider, id, create, by.Meta(""))
	if errors.Is(err, invitation.ErrExists) && retry != nil {
		_, inv, lerr := s.invitation(ctx, id)
		return token, inv, lerr
	}
	if err != nil {
		return "", Invitation{}, err
	}
	c := recorded[0].Event.(invitation.Created)
	return token, Invitation{InvitationID: id, Email: c.Email, Role: c.Role, ExpiresAt: c.ExpiresAt, Status: invitation.Pending}, nil
}

// invitation loads one invitation with its invitee's email.
func (s *Service) invitation(ctx context.Context, id uuid.UUID) (invitation.State, Invitation, error) {
	history, _, err := s.store.Load(ctx, id)
	if err != nil {
		return invitation.State{}, Invitation{}, err
	}
	var st = invitation.Decider.Initial()
	var email string
	for _, r := range history {
		if r.StreamType != invitation.StreamType {
			return invitation.State{}, Invitation{}, invitation.ErrNotFound
		}
		if c, ok := r.Event.(invitation.Created); ok {
			email = c.Email
		}
		st = invitation.Decider.Evolve(st, r.Event)
	}
	if !st.Exists {
		return invitation.State{}, Invitation{}, invitation.ErrNotFound
	}
	return st, Invitation{InvitationID: id, Email: email, Role: st.Role, ExpiresAt: st.ExpiresAt, Status: st.StatusAt(s.now())}, nil
}

// InvitationByToken returns the invitation a link opens.
func (s *Service) InvitationByToken(ctx context.Context, token string) (Invitation, error) {
	if !validToken(token) {
		return Invitation{}, invitation.ErrNotFound
	}
	_, inv, err := s.invitation(ctx, invitation.StreamID(token))
	return inv, err
}

// validToken tells whether token could be one randomToken made.
func validToken(token string) bool {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	return err == nil && len(raw) == 32
}

// Invitations lists the invitations that are still pending, oldest first.
func (s *Service) Invitations(ctx context.Context) ([]Invitation, error) {
	ids, err := s.store.StreamIDs(ctx, invitation.StreamType)
	if err != nil {
		return nil, err
	}
	var out []Invitation
	for _, id := range ids {
		_, inv, err := s.invitation(ctx, id)
		if err != nil {
			return nil, err
		}
		if inv.Status == invitation.Pending {
			out = append(out, inv)
		}
	}
	return out, nil
}

// RevokeInvitation withdraws a pending invitation.
func (s *Service) RevokeInvitation(ctx context.Context, by Principal, id uuid.UUID, reason string) error {
	if _, _, err := s.invitation(ctx, id); err != nil {
		return err
	}
	_, err := eventstore.Execute(ctx, s.store, invitation.Decider, id, invitation.Command(invitation.Revoke{}), by.Meta(reason))
	return err
}

// ErrAddressHasAccount refuses an invitation whose address already has an
// account; only the invitee, who holds the link, sees it.
var ErrAddressHasAccount = errors.New("an account already uses this email address: sign in with it instead")

// AcceptInvitation sets the invitee's password and opens their account. It
// returns the new account's id; the invitee then signs in.
//
// The account is recorded before the invitation is marked used, so a
// failure in between leaves an account and a pending invitation, never a
// spent invitation without an account; a retry with the link then only
// marks it used (the password set the first time stands).
func (s *Service) AcceptInvitation(ctx context.Context, token, pw string) (uuid.UUID, error) {
	if !validToken(token) {
		return uuid.Nil, invitation.ErrNotFound
	}
	id := invitation.StreamID(token)
	st, inv, err := s.invitation(ctx, id)
	if err != nil {
		return uuid.Nil, err
	}
	accept := invitation.Command(invitation.Accept{Now: s.now()})
	if _, err := invitation.Decider.Decide(st, accept); err != nil {
		return uuid.Nil, err // used, expired or withdrawn: say so before hashing anything
	}
	if inv.Email == eventstore.Forgotten {
		return uuid.Nil, invitation.ErrExpired
	}
	meta := eventstore.Metadata{Actor: "user:" + st.UserID.String()}
	markUsed := func() (uuid.UUID, error) {
		if _, err := eventstore.Execute(ctx, s.store, invitation.Decider, id, accept, meta); err != nil {
			return uuid.Nil, err
		}
		return st.UserID, nil
	}
	opened, _, err := eventstore.LoadSealedState(ctx, s.store, account.Decider, st.UserID)
	if err != nil {
		return uuid.Nil, err
	}
	if opened.Exists {
		return markUsed() // an earlier attempt opened the account and failed after
	}
	hash, err := s.hash(ctx, pw)
	if err != nil {
		return uuid.Nil, err
	}
	err = s.open(ctx, st.UserID, inv.Email, st.Role, hash, meta)
	if errors.Is(err, ErrEmailTaken) {
		if _, _, lerr := s.creds.LookupUser(ctx, st.UserID); lerr == nil {
			return uuid.Nil, invitation.ErrUsed // this invitation is being accepted at this moment
		}
		return uuid.Nil, ErrAddressHasAccount
	}
	if err != nil {
		return uuid.Nil, err
	}
	return markUsed()
}

// LapsedInvitees lists the people invited who never joined: invitations
// that expired or were withdrawn before cutoff. It is a retention source
// (infra/privacy): their email address is forgotten once the retention
// period has passed.
func (s *Service) LapsedInvitees(ctx context.Context, cutoff time.Time) ([]uuid.UUID, error) {
	ids, err := s.store.StreamIDs(ctx, invitation.StreamType)
	if err != nil {
		return nil, err
	}
	var due []uuid.UUID
	for _, id := range ids {
		history, _, err := s.store.Load(ctx, id)
		if err != nil {
			return nil, err
		}
		st := invitation.Decider.Initial()
		var ended time.Time
		for _, r := range history {
			st = invitation.Decider.Evolve(st, r.Event)
			if _, ok := r.Event.(invitation.Revoked); ok {
				ended = r.RecordedAt
			}
		}
		switch st.Status {
		case invitation.Pending:
			ended = st.ExpiresAt
		case invitation.AcceptedState:
			continue // the invitee is an account holder now
		}
		if opened, _, err := eventstore.LoadSealedState(ctx, s.store, account.Decider, st.UserID); err != nil {
			return nil, err
		} else if opened.Exists {
			continue // opened, though the invitation was never marked used
		}
		if !ended.IsZero() && ended.Before(cutoff) {
			due = append(due, st.UserID)
		}
	}
	return due, nil
}
