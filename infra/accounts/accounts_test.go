package accounts_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/presente-dispatch/presente/domain/account"
	"github.com/presente-dispatch/presente/domain/invitation"
	"github.com/presente-dispatch/presente/infra/accounts"
	"github.com/presente-dispatch/presente/infra/eventstore"
	"github.com/presente-dispatch/presente/infra/keyring"
	"github.com/presente-dispatch/presente/infra/postgres/pgtest"
	"github.com/presente-dispatch/presente/infra/sessions"
)

const pw = "correct horse battery staple"

func newService(t *testing.T) (*accounts.Service, *eventstore.Store) {
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
	for _, e := range slices.Concat(account.Events, invitation.Events) {
		if err := registry.Register(e); err != nil {
			t.Fatal(err)
		}
	}
	store, err := eventstore.New(pool, registry, eventstore.Options{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	s, err := accounts.New(pool, store, master, accounts.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s, store
}

func admin(t *testing.T, s *accounts.Service) accounts.Principal {
	t.Helper()
	id, err := s.Create(context.Background(), accounts.NewAccount{Email: "admin@example.org", Role: account.Admin, Password: pw},
		eventstore.Metadata{Actor: "system:test"})
	if err != nil {
		t.Fatal(err)
	}
	return accounts.Principal{UserID: id, Role: account.Admin}
}

func TestTenConcurrentAcceptancesOpenOneAccount(t *testing.T) {
	s, store := newService(t)
	ctx := context.Background()
	token, _, err := s.Invite(ctx, admin(t, s), "rosa@example.org", account.Volunteer, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	const n = 10
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			// ErrBusy asks the client to come back: on a loaded machine
			// ten hashes at once may not all find a slot in time.
			for range 20 {
				if _, errs[i] = s.AcceptInvitation(ctx, token, pw); !errors.Is(errs[i], accounts.ErrBusy) {
					return
				}
				time.Sleep(200 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case errors.Is(err, invitation.ErrUsed):
		default:
			t.Errorf("an acceptance failed with %v, want success or ErrUsed", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d acceptances succeeded, want exactly 1", won)
	}
	ids, err := store.StreamIDs(ctx, account.StreamType)
	if err != nil || len(ids) != 2 { // the admin and Rosa
		t.Errorf("accounts = %d, %v; want 2", len(ids), err)
	}
	if _, _, err := s.SignIn(ctx, "rosa@example.org", pw); err != nil {
		t.Errorf("Rosa cannot sign in: %v", err)
	}
}

func TestChangingThePasswordEndsTheOtherSessionsAndNeedsTheCurrentOne(t *testing.T) {
	s, _ := newService(t)
	ctx := context.Background()
	a := admin(t, s)
	_, desk, err := s.SignIn(ctx, "admin@example.org", pw)
	if err != nil {
		t.Fatal(err)
	}
	phoneToken, phone, err := s.SignIn(ctx, "admin@example.org", pw)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ChangePassword(ctx, desk, "not the password at all", "a brand new password"); !errors.Is(err, accounts.ErrWrongPassword) {
		t.Fatalf("a wrong current password: %v, want ErrWrongPassword", err)
	}
	revoked, err := s.ChangePassword(ctx, desk, pw, "a brand new password")
	if err != nil || len(revoked) != 1 || revoked[0] != phone.SessionID {
		t.Fatalf("ChangePassword = %v, %v; want the phone's session %s ended", revoked, err, phone.SessionID)
	}
	if _, err := s.Authenticate(ctx, phoneToken); !errors.Is(err, sessions.ErrInvalid) {
		t.Errorf("the phone's session still works: %v", err)
	}
	if _, _, err := s.SignIn(ctx, "admin@example.org", pw); !errors.Is(err, accounts.ErrBadCredentials) {
		t.Errorf("the old password still signs in: %v", err)
	}
	if _, p, err := s.SignIn(ctx, "admin@example.org", "a brand new password"); err != nil || p.UserID != a.UserID {
		t.Errorf("the new password: %+v, %v", p, err)
	}
}

func TestAnAdminCannotLockThemselvesOut(t *testing.T) {
	s, _ := newService(t)
	ctx := context.Background()
	a := admin(t, s)
	if _, err := s.Deactivate(ctx, a, a.UserID, ""); !errors.Is(err, accounts.ErrSelf) {
		t.Errorf("deactivating oneself: %v, want ErrSelf", err)
	}
	if err := s.ChangeRole(ctx, a, a.UserID, account.Volunteer, ""); !errors.Is(err, accounts.ErrSelf) {
		t.Errorf("demoting oneself: %v, want ErrSelf", err)
	}
	if err := s.ChangeRole(ctx, a, uuid.New(), account.Volunteer, ""); !errors.Is(err, account.ErrNotFound) {
		t.Errorf("changing the role of nobody: %v, want account.ErrNotFound", err)
	}
}

func TestTheChosenLanguageIsKeptOnTheAccountAcrossSessions(t *testing.T) {
	s, store := newService(t)
	ctx := context.Background()
	a := admin(t, s)
	if got, err := s.Account(ctx, a.UserID); err != nil || got.Language != "" {
		t.Fatalf("before choosing: %+v, %v; want no language", got, err)
	}
	_, desk, err := s.SignIn(ctx, "admin@example.org", pw)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ChooseLanguage(ctx, desk, "ES"); err != nil {
		t.Fatal(err)
	}
	if err := s.ChooseLanguage(ctx, desk, "es"); err != nil { // the same again records nothing
		t.Fatal(err)
	}
	var invalid *account.InvalidError
	if err := s.ChooseLanguage(ctx, desk, "<b>"); !errors.As(err, &invalid) || invalid.Field != "language" {
		t.Errorf("a malformed tag: %v, want an InvalidError on language", err)
	}
	// Another session, another device: the account says Spanish.
	_, phone, err := s.SignIn(ctx, "admin@example.org", pw)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Account(ctx, phone.UserID); err != nil || got.Language != "es" {
		t.Errorf("from another session: %+v, %v; want language es", got, err)
	}
	history, _, err := store.Load(ctx, a.UserID)
	if err != nil {
		t.Fatal(err)
	}
	var chosen []string
	for _, r := range history {
		if e, ok := r.Event.(account.LanguageChosen); ok {
			chosen = append(chosen, e.Language)
			if r.Metadata.Actor != desk.Actor() {
				t.Errorf("the choice is recorded as made by %q, want %q", r.Metadata.Actor, desk.Actor())
			}
		}
	}
	if !slices.Equal(chosen, []string{"es"}) {
		t.Errorf("the log records languages %v, want [es] once", chosen)
	}
}
