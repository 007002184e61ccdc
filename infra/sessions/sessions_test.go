package sessions_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/presente-dispatch/presente/infra/postgres/pgtest"
	"github.com/presente-dispatch/presente/infra/sessions"
	"github.com/presente-dispatch/presente/infra/testclock"
)

func newStore(t *testing.T) (*sessions.Store, *testclock.Clock) {
	t.Helper()
	c := testclock.New(time.Date(2026, 11, 23, 6, 40, 0, 0, time.UTC))
	return sessions.New(pgtest.NewPool(t), sessions.Options{Idle: 30 * time.Minute, Absolute: 12 * time.Hour, Clock: c.Now}), c
}

func TestASessionLivesWhileUsedAndDiesWhenIdle(t *testing.T) {
	s, c := newStore(t)
	ctx := context.Background()
	user := uuid.New()
	token, created, err := s.Create(ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 { // used every 20 minutes: stays alive past the idle limit
		c.Advance(20 * time.Minute)
		sess, err := s.Lookup(ctx, token)
		if err != nil || sess.UserID != user || sess.ID != created.ID {
			t.Fatalf("Lookup = %+v, %v", sess, err)
		}
	}
	c.Advance(31 * time.Minute)
	if _, err := s.Lookup(ctx, token); !errors.Is(err, sessions.ErrInvalid) {
		t.Errorf("after 31 idle minutes: err = %v, want ErrInvalid", err)
	}
}

func TestASessionEndsAtItsAbsoluteLifetimeHoweverBusy(t *testing.T) {
	s, c := newStore(t)
	ctx := context.Background()
	token, _, _ := s.Create(ctx, uuid.New())
	for range 71 { // used every 10 minutes up to 11h50m: alive
		c.Advance(10 * time.Minute)
		if _, err := s.Lookup(ctx, token); err != nil {
			t.Fatalf("session ended before its 12h lifetime: %v", err)
		}
	}
	c.Advance(10 * time.Minute) // 12h after sign-in
	if _, err := s.Lookup(ctx, token); !errors.Is(err, sessions.ErrInvalid) {
		t.Errorf("at the absolute lifetime: err = %v, want ErrInvalid", err)
	}
}

func TestRevokingEndsOneSessionOrAllOfAUsers(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	user, other := uuid.New(), uuid.New()
	t1, s1, _ := s.Create(ctx, user)
	t2, s2, _ := s.Create(ctx, user)
	t3, _, _ := s.Create(ctx, other)

	if err := s.Revoke(ctx, s1.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lookup(ctx, t1); !errors.Is(err, sessions.ErrInvalid) {
		t.Errorf("revoked session still works: %v", err)
	}
	ids, err := s.RevokeUser(ctx, user)
	if err != nil || len(ids) != 1 || ids[0] != s2.ID {
		t.Fatalf("RevokeUser = %v, %v; want the one still-live session %s", ids, err, s2.ID)
	}
	if _, err := s.Lookup(ctx, t2); !errors.Is(err, sessions.ErrInvalid) {
		t.Errorf("session of a revoked user still works: %v", err)
	}
	if _, err := s.Lookup(ctx, t3); err != nil {
		t.Errorf("another user's session ended: %v", err)
	}
}

func TestTokensAreUnguessableAndStoredOnlyAsHashes(t *testing.T) {
	pool := pgtest.NewPool(t)
	s := sessions.New(pool, sessions.Options{})
	ctx := context.Background()
	token, _, err := s.Create(ctx, uuid.New())
	if err != nil {
		t.Fatal(err)
	}
	if len(token) < 43 {
		t.Errorf("token %q is shorter than 256 bits of base64", token)
	}
	seen := map[string]bool{token: true}
	for range 50 {
		another, _, err := s.Create(ctx, uuid.New())
		if err != nil {
			t.Fatal(err)
		}
		if seen[another] {
			t.Fatalf("token %q was handed out twice", another)
		}
		seen[another] = true
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM sessions WHERE token_hash = convert_to($1, 'UTF8') OR encode(token_hash, 'escape') LIKE '%' || $1 || '%'`, token).Scan(&n); err != nil || n != 0 {
		t.Errorf("the token itself is stored (%d rows, %v)", n, err)
	}
	for _, bad := range []string{"", "nope", token + "x", string(make([]byte, 500))} {
		if _, err := s.Lookup(ctx, bad); !errors.Is(err, sessions.ErrInvalid) {
			t.Errorf("Lookup(%.10q) = %v, want ErrInvalid", bad, err)
		}
	}
}

func TestDeleteExpiredKeepsOnlyLiveSessions(t *testing.T) {
	s, c := newStore(t)
	ctx := context.Background()
	live, _, _ := s.Create(ctx, uuid.New())
	_, revoked, _ := s.Create(ctx, uuid.New())
	if err := s.Revoke(ctx, revoked.ID); err != nil {
		t.Fatal(err)
	}
	c.Advance(20 * time.Minute)
	idle, _, _ := s.Create(ctx, uuid.New())
	_ = idle
	if _, err := s.Lookup(ctx, live); err != nil {
		t.Fatal(err)
	}
	c.Advance(25 * time.Minute) // the first session was seen 25 min ago, the third created 25 min ago
	if _, err := s.Lookup(ctx, live); err != nil {
		t.Fatal(err)
	}
	c.Advance(10 * time.Minute) // now the third is 35 min idle
	n, err := s.DeleteExpired(ctx)
	if err != nil || n != 2 {
		t.Errorf("DeleteExpired = %d, %v; want the revoked and the idle session", n, err)
	}
	if _, err := s.Lookup(ctx, live); err != nil {
		t.Errorf("the live session was deleted: %v", err)
	}
}

func TestDeleteUserRemovesEverySessionOfThatUserOnly(t *testing.T) {
	pool := pgtest.NewPool(t)
	s := sessions.New(pool, sessions.Options{})
	ctx := context.Background()
	user, other := uuid.New(), uuid.New()
	t1, _, _ := s.Create(ctx, user)
	t2, _, _ := s.Create(ctx, user)
	t3, _, _ := s.Create(ctx, other)
	if err := sessions.DeleteUser(ctx, pool, user); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{t1, t2} {
		if _, err := s.Lookup(ctx, tok); !errors.Is(err, sessions.ErrInvalid) {
			t.Errorf("a deleted user's session still works: %v", err)
		}
	}
	if _, err := s.Lookup(ctx, t3); err != nil {
		t.Errorf("another user's session ended: %v", err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM sessions WHERE user_id = $1`, user).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d rows still name the user (%v)", n, err)
	}
}

func TestRevokeOthersKeepsOnlyTheCurrentSession(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	user, other := uuid.New(), uuid.New()
	keepToken, keep, _ := s.Create(ctx, user)
	phoneToken, phone, _ := s.Create(ctx, user)
	otherToken, _, _ := s.Create(ctx, other)

	ids, err := s.RevokeOthers(ctx, user, keep.ID)
	if err != nil || len(ids) != 1 || ids[0] != phone.ID {
		t.Fatalf("RevokeOthers = %v, %v; want only %s", ids, err, phone.ID)
	}
	if _, err := s.Lookup(ctx, phoneToken); !errors.Is(err, sessions.ErrInvalid) {
		t.Errorf("the other device's session still works: %v", err)
	}
	for name, token := range map[string]string{"the kept session": keepToken, "another user's session": otherToken} {
		if _, err := s.Lookup(ctx, token); err != nil {
			t.Errorf("%s ended: %v", name, err)
		}
	}
}

func TestKeepAliveExtendsALiveSessionAndRefusesAnEndedOne(t *testing.T) {
	s, c := newStore(t)
	ctx := context.Background()
	user := uuid.New()
	token, sess, _ := s.Create(ctx, user)
	for range 3 { // a board watched for 75 minutes with no request
		c.Advance(25 * time.Minute)
		if got, err := s.KeepAlive(ctx, sess.ID); err != nil || got.UserID != user {
			t.Fatalf("KeepAlive = %+v, %v", got, err)
		}
	}
	if _, err := s.Lookup(ctx, token); err != nil {
		t.Fatalf("a session kept alive by its connection ended: %v", err)
	}
	if err := s.Revoke(ctx, sess.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.KeepAlive(ctx, sess.ID); !errors.Is(err, sessions.ErrInvalid) {
		t.Errorf("KeepAlive of a revoked session = %v, want ErrInvalid", err)
	}
	if _, err := s.KeepAlive(ctx, uuid.New()); !errors.Is(err, sessions.ErrInvalid) {
		t.Errorf("KeepAlive of an unknown session = %v, want ErrInvalid", err)
	}
}
