// Package sessions keeps server-side sign-in sessions in PostgreSQL. A
// session is named by a random token that only the browser holds; the
// server stores its SHA-256, checks idle and absolute timeouts on every
// use, and can revoke one session or all of a user's at once.
package sessions

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrInvalid reports a token that names no live session: unknown, revoked,
// idle too long or past its absolute lifetime. Callers treat all alike.
var ErrInvalid = errors.New("the session is not valid: sign in again")

// Options are the session timeouts.
type Options struct {
	// Idle ends a session unused for this long; 8 hours when zero.
	Idle time.Duration
	// Absolute ends any session this long after sign-in; 14 days when zero.
	Absolute time.Duration
	// Clock gives the time; time.Now when nil.
	Clock func() time.Time
}

// Session is a live session.
type Session struct {
	ID        uuid.UUID
	UserID    uuid.UUID
	CreatedAt time.Time
	LastSeen  time.Time
}

// Store is the sessions table.
type Store struct {
	pool           *pgxpool.Pool
	idle, absolute time.Duration
	now            func() time.Time
}

// New returns a session store.
func New(pool *pgxpool.Pool, opts Options) *Store {
	s := &Store{pool: pool, idle: opts.Idle, absolute: opts.Absolute, now: opts.Clock}
	if s.idle <= 0 {
		s.idle = 8 * time.Hour
	}
	if s.absolute <= 0 {
		s.absolute = 14 * 24 * time.Hour
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// touchEvery bounds how often a session's last-seen time is written, so a
// busy page does not write on every request.
const touchEvery = time.Minute

func hashToken(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

// Create starts a session for userID and returns the token to hand to the
// browser. The token is 256 random bits; only its hash is stored.
func (s *Store) Create(ctx context.Context, userID uuid.UUID) (token string, sess Session, err error) {
	raw := make([]byte, 32)
	_, _ = rand.Read(raw) // crypto/rand.Read never fails on supported platforms
	token = base64.RawURLEncoding.EncodeToString(raw)
	id, err := uuid.NewV7()
	if err != nil {
		return "", Session{}, err
	}
	now := s.now().UTC()
	_, err = s.pool.Exec(ctx, `INSERT INTO sessions (session_id, token_hash, user_id, created_at, last_seen_at)
VALUES ($1, $2, $3, $4, $4)`, id, hashToken(token), userID, now)
	if err != nil {
		return "", Session{}, fmt.Errorf("create session: %w", err)
	}
	return token, Session{ID: id, UserID: userID, CreatedAt: now, LastSeen: now}, nil
}

// Lookup returns the live session a token names, and records the use.
func (s *Store) Lookup(ctx context.Context, token string) (Session, error) {
	if token == "" || len(token) > 128 {
		return Session{}, ErrInvalid
	}
	now := s.now().UTC()
	var sess Session
	err := s.pool.QueryRow(ctx, `SELECT session_id, user_id, created_at, last_seen_at FROM sessions
WHERE token_hash = $1 AND revoked_at IS NULL AND created_at > $2 AND last_seen_at > $3`,
		hashToken(token), now.Add(-s.absolute), now.Add(-s.idle)).Scan(&sess.ID, &sess.UserID, &sess.CreatedAt, &sess.LastSeen)
	if errors.Is(err, pgx.ErrNoRows) {
		return Session{}, ErrInvalid
	}
	if err != nil {
		return Session{}, fmt.Errorf("look up session: %w", err)
	}
	if now.Sub(sess.LastSeen) >= touchEvery {
		// GREATEST: concurrent requests never move last use backwards.
		if _, err := s.pool.Exec(ctx, `UPDATE sessions SET last_seen_at = GREATEST(last_seen_at, $2)
WHERE session_id = $1 AND revoked_at IS NULL`, sess.ID, now); err != nil {
			return Session{}, fmt.Errorf("touch session: %w", err)
		}
		sess.LastSeen = now
	}
	return sess, nil
}

// KeepAlive records a use of a live session by id and returns it; an open
// live connection (a websocket showing a board) counts as use, so a wall
// screen is not signed out for being watched rather than clicked.
func (s *Store) KeepAlive(ctx context.Context, sessionID uuid.UUID) (Session, error) {
	now := s.now().UTC()
	var sess Session
	err := s.pool.QueryRow(ctx, `UPDATE sessions SET last_seen_at = GREATEST(last_seen_at, $2)
WHERE session_id = $1 AND revoked_at IS NULL AND created_at > $3 AND last_seen_at > $4
RETURNING session_id, user_id, created_at, last_seen_at`,
		sessionID, now, now.Add(-s.absolute), now.Add(-s.idle)).Scan(&sess.ID, &sess.UserID, &sess.CreatedAt, &sess.LastSeen)
	if errors.Is(err, pgx.ErrNoRows) {
		return Session{}, ErrInvalid
	}
	if err != nil {
		return Session{}, fmt.Errorf("keep session %s alive: %w", sessionID, err)
	}
	return sess, nil
}

// Revoke ends one session (sign-out). Revoking twice is harmless.
func (s *Store) Revoke(ctx context.Context, sessionID uuid.UUID) error {
	if _, err := s.pool.Exec(ctx, `UPDATE sessions SET revoked_at = $2 WHERE session_id = $1 AND revoked_at IS NULL`,
		sessionID, s.now().UTC()); err != nil {
		return fmt.Errorf("revoke session: %w", err)
	}
	return nil
}

// RevokeUser ends every session of a user (an admin's revocation, or a
// deactivated account) and returns their ids, so that whatever holds them
// open (websockets) can be closed at once.
func (s *Store) RevokeUser(ctx context.Context, userID uuid.UUID) ([]uuid.UUID, error) {
	rows, err := s.pool.Query(ctx, `UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL RETURNING session_id`,
		userID, s.now().UTC())
	if err != nil {
		return nil, fmt.Errorf("revoke sessions of user %s: %w", userID, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return nil, fmt.Errorf("revoke sessions of user %s: %w", userID, err)
	}
	return ids, nil
}

// RevokeOthers ends every session of a user but keep (after a password
// change, the other devices must sign in again) and returns their ids.
func (s *Store) RevokeOthers(ctx context.Context, userID, keep uuid.UUID) ([]uuid.UUID, error) {
	rows, err := s.pool.Query(ctx, `UPDATE sessions SET revoked_at = $3
WHERE user_id = $1 AND session_id <> $2 AND revoked_at IS NULL RETURNING session_id`, userID, keep, s.now().UTC())
	if err != nil {
		return nil, fmt.Errorf("revoke other sessions of user %s: %w", userID, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return nil, fmt.Errorf("revoke other sessions of user %s: %w", userID, err)
	}
	return ids, nil
}

// DeleteUser removes every session of a user, for a forgotten person: no
// row may keep linking them to their use of the system.
func DeleteUser(ctx context.Context, pool *pgxpool.Pool, userID uuid.UUID) error {
	if _, err := pool.Exec(ctx, `DELETE FROM sessions WHERE user_id = $1`, userID); err != nil {
		return fmt.Errorf("delete sessions of user %s: %w", userID, err)
	}
	return nil
}

// DeleteExpired removes sessions that can no longer be used, so the table
// keeps no more than it must. It returns how many it removed.
func (s *Store) DeleteExpired(ctx context.Context) (int64, error) {
	now := s.now().UTC()
	tag, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE revoked_at IS NOT NULL OR created_at <= $1 OR last_seen_at <= $2`,
		now.Add(-s.absolute), now.Add(-s.idle))
	if err != nil {
		return 0, fmt.Errorf("delete expired sessions: %w", err)
	}
	return tag.RowsAffected(), nil
}
