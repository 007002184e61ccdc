// Package credentials keeps what accounts sign in with: a password hash
// per user, found by a blind index of the email address. It is a mutable
// table beside the event log, because secrets must be replaceable and
// deletable and the log is neither.
package credentials

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/presente-dispatch/presente/infra/keyring"
)

// ErrEmailTaken reports an email address another account already uses.
var ErrEmailTaken = errors.New("another account already uses this email address")

// ErrUserHasCredentials reports a user who already has credentials.
var ErrUserHasCredentials = errors.New("this account already has credentials")

// ErrNotFound reports that no account signs in with that email.
var ErrNotFound = errors.New("no account signs in with that email address")

// emailPurpose names the blind index of sign-in emails.
const emailPurpose = "sign-in-email"

// Store is the credentials table.
type Store struct {
	pool   *pgxpool.Pool
	master keyring.MasterKey
}

// New returns the credentials store.
func New(pool *pgxpool.Pool, master keyring.MasterKey) *Store {
	return &Store{pool: pool, master: master}
}

// Create stores a user's credentials. email must be normalized
// (account.NormalizeEmail); passwordHash comes from infra/password.
func (s *Store) Create(ctx context.Context, userID uuid.UUID, email, passwordHash string) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO credentials (user_id, email_index, password_hash, updated_at) VALUES ($1, $2, $3, $4)`,
		userID, s.master.BlindIndex(emailPurpose, email), passwordHash, time.Now().UTC())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		switch pgErr.ConstraintName {
		case "credentials_email_index_key":
			return ErrEmailTaken
		case "credentials_pkey":
			return ErrUserHasCredentials
		}
	}
	if err != nil {
		return fmt.Errorf("store credentials of user %s: %w", userID, err)
	}
	return nil
}

// Lookup returns the user who signs in with email, and their password hash.
func (s *Store) Lookup(ctx context.Context, email string) (uuid.UUID, string, error) {
	var (
		id   uuid.UUID
		hash string
	)
	err := s.pool.QueryRow(ctx, `SELECT user_id, password_hash FROM credentials WHERE email_index = $1`,
		s.master.BlindIndex(emailPurpose, email)).Scan(&id, &hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return uuid.Nil, "", ErrNotFound
	}
	if err != nil {
		return uuid.Nil, "", fmt.Errorf("look up credentials: %w", err)
	}
	return id, hash, nil
}

// LookupUser returns a user's password hash and when it was last set.
func (s *Store) LookupUser(ctx context.Context, userID uuid.UUID) (string, time.Time, error) {
	var (
		hash    string
		updated time.Time
	)
	err := s.pool.QueryRow(ctx, `SELECT password_hash, updated_at FROM credentials WHERE user_id = $1`, userID).Scan(&hash, &updated)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", time.Time{}, ErrNotFound
	}
	if err != nil {
		return "", time.Time{}, fmt.Errorf("look up credentials of user %s: %w", userID, err)
	}
	return hash, updated, nil
}

// SetPassword replaces a user's password hash.
func (s *Store) SetPassword(ctx context.Context, userID uuid.UUID, passwordHash string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE credentials SET password_hash = $2, updated_at = $3 WHERE user_id = $1`,
		userID, passwordHash, time.Now().UTC())
	if err != nil {
		return fmt.Errorf("set password of user %s: %w", userID, err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// DeleteStale removes a user's credentials if they were last set before
// cutoff, and tells whether it did. It reclaims the credentials of an
// account whose creation crashed half-way, without racing a creation that
// is still under way.
func DeleteStale(ctx context.Context, pool *pgxpool.Pool, userID uuid.UUID, cutoff time.Time) (bool, error) {
	tag, err := pool.Exec(ctx, `DELETE FROM credentials WHERE user_id = $1 AND updated_at < $2`, userID, cutoff)
	if err != nil {
		return false, fmt.Errorf("delete stale credentials of user %s: %w", userID, err)
	}
	return tag.RowsAffected() > 0, nil
}

// Delete removes a user's credentials: the account can no longer sign in,
// and nothing links its email to it any more.
func Delete(ctx context.Context, pool *pgxpool.Pool, userID uuid.UUID) error {
	if _, err := pool.Exec(ctx, `DELETE FROM credentials WHERE user_id = $1`, userID); err != nil {
		return fmt.Errorf("delete credentials of user %s: %w", userID, err)
	}
	return nil
}
