// Package idempotency is the server side of the Idempotency-Key header: a
// retry from a phone on a bad network replays the answer to the first try
// instead of acting twice. A request claims its (scope, key) before it runs
// and stores its response when done; a retry of it gets that response, a
// retry that arrives while it still runs is told so, and a key reused for
// another request is refused.
//
// The table keeps nothing a copy of the database could read: the key and
// the request fingerprint are stored as keyed hashes, and the response,
// which may hold personal data or secrets such as an invitation link, is
// sealed under a key derived from the master key.
package idempotency

import (
	"bytes"
	"context"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/presente-dispatch/presente/infra/keyring"
)

// ErrInProgress reports a key whose first request is still running. The
// client should wait a moment and retry with the same key.
var ErrInProgress = errors.New("a request with this Idempotency-Key is still being processed: retry in a moment with the same key")

// ErrMismatch reports a key already used for another request (another
// method, route or body). The client must use a new key for a new request.
var ErrMismatch = errors.New("this Idempotency-Key was already used for a different request: send a new key with each new request")

// ErrInvalidKey reports an Idempotency-Key header value that cannot be
// used; ValidateKey's error wraps it and says what to fix.
var ErrInvalidKey = errors.New("invalid Idempotency-Key header")

// ErrNotClaimed reports a Complete with no claim to complete: the claim
// was released, or expired and was deleted, or another request took it
// over after its lease ran out and completed first.
var ErrNotClaimed = errors.New("idempotency: no claim in progress for this key")

// MaxKeyLength is the longest Idempotency-Key accepted.
const MaxKeyLength = 255

// Purposes of the keys derived from the master key. Changing one makes
// every stored row unusable (harmlessly: retries simply run again).
const (
	responsePurpose    = "idempotency-response"
	keyIndexPurpose    = "idempotency-key"
	fingerprintPurpose = "idempotency-fingerprint"
)

// Row states, as the idempotency_keys.state column spells them.
const (
	stateInProgress = "in_progress"
	stateCompleted  = "completed"
)

// Options tune how long claims and responses are kept.
type Options struct {
	// TTL is how long a completed response is kept for replay; 24 hours
	// when zero. A key used again after it counts as a new key.
	TTL time.Duration
	// Lease is how long an in-progress claim blocks retries before it is
	// taken to belong to a request whose server died, and a retry may run
	// the request again; 30 seconds when zero. It must be longer than any
	// request takes, or a slow request and its retry both act.
	Lease time.Duration
	// Clock gives the time; time.Now when nil.
	Clock func() time.Time
}

// Response is what a completed request answered, as replayed to retries.
type Response struct {
	// Status is the HTTP status code.
	Status int
	// Header holds the headers worth replaying: Complete keeps only
	// Cache-Control, Content-Encoding, Content-Language, Content-Type,
	// ETag, Last-Modified, Location and Retry-After, and drops the rest.
	Header http.Header
	// Body is the response body.
	Body []byte
}

// Store is the idempotency_keys table. It is safe for concurrent use.
type Store struct {
	pool   *pgxpool.Pool
	master keyring.MasterKey
	aead   cipher.AEAD
	// err is returned by every method of a store made without a usable
	// master key: New cannot fail, and a store must not then seal under no key.
	err        error
	ttl, lease time.Duration
	now        func() time.Time
}

// New returns the idempotency store. A store made without a master key
// fails every call.
func New(pool *pgxpool.Pool, master keyring.MasterKey, opts Options) *Store {
	s := &Store{pool: pool, master: master, ttl: opts.TTL, lease: opts.Lease, now: opts.Clock}
	if s.ttl <= 0 {
		s.ttl = 24 * time.Hour
	}
	if s.lease <= 0 {
		s.lease = 30 * time.Second
	}
	if s.now == nil {
		s.now = time.Now
	}
	aead, err := chacha20poly1305.NewX(master.DeriveKey(responsePurpose))
	if err != nil {
		s.err = errors.New("idempotency: no master key given")
	}
	s.aead = aead
	return s
}

// ValidateKey checks an Idempotency-Key header value: 1 to 255 visible
// ASCII characters (! through ~). Its error wraps ErrInvalidKey and says
// what to fix; it never repeats the key.
func ValidateKey(key string) error {
	const advice = "send 1 to 255 visible ASCII characters, such as a random UUID"
	switch {
	case key == "":
		return fmt.Errorf("%w: it is empty; %s", ErrInvalidKey, advice)
	case len(key) > MaxKeyLength:
		return fmt.Errorf("%w: it is %d bytes long; %s", ErrInvalidKey, len(key), advice)
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c < '!' || c > '~' {
			return fmt.Errorf("%w: character %d is a space, a control character or not ASCII; %s", ErrInvalidKey, i+1, advice)
		}
	}
	return nil
}

// claimSQL claims a key in one statement, so that of concurrent claims
// exactly one succeeds: the insert of a new row, or the update of a row
// that counts as absent (expired) or whose claim may be taken over (in
// progress for the same request, past its lease). Any other existing row
// is left alone and the statement affects no row. $4 is now.
const claimSQL = `INSERT INTO idempotency_keys AS k
    (scope, key_hash, fingerprint, state, lease_until, response, created_at, expires_at)
VALUES ($1, $2, $3, 'in_progress', $5, NULL, $4, $6)
ON CONFLICT (scope, key_hash) DO UPDATE
    SET fingerprint = EXCLUDED.fingerprint, state = 'in_progress', lease_until = EXCLUDED.lease_until,
        response = NULL, created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at
    WHERE k.expires_at <= $4
       OR (k.state = 'in_progress' AND k.lease_until <= $4 AND k.fingerprint = EXCLUDED.fingerprint)`

// lookupSQL reads the row that stopped a claim.
const lookupSQL = `SELECT fingerprint, state, lease_until, response, expires_at
FROM idempotency_keys WHERE scope = $1 AND key_hash = $2`

// claimAttempts bounds Begin's retries when the row it found changes
// under it (released or taken over between its two statements).
const claimAttempts = 3

// Begin claims (scope, key) for a request with the given fingerprint, a
// hash of its method, route and body computed by the caller. scope names
// whose keys these are, such as "user:<uuid>": keys of different scopes
// never meet.
//
//   - First use of the key (or reuse after it expired): (nil, nil). The
//     caller runs the request, then calls Complete, or Release if it failed
//     in a way a retry should run again.
//   - Completed before with the same fingerprint: the stored response, to
//     replay instead of running the request.
//   - Completed or in progress with another fingerprint: ErrMismatch.
//   - In progress with the same fingerprint, within its lease: ErrInProgress.
//   - In progress past its lease (the server died mid-request): the claim
//     is taken over, (nil, nil).
func (s *Store) Begin(ctx context.Context, scope, key string, fingerprint []byte) (*Response, error) {
	if s.err != nil {
		return nil, s.err
	}
	if err := ValidateKey(key); err != nil {
		return nil, err
	}
	if scope == "" {
		return nil, errors.New("idempotency: Begin needs a scope")
	}
	if len(fingerprint) == 0 {
		return nil, errors.New("idempotency: Begin needs the request's fingerprint")
	}
	keyHash := s.keyHash(scope, key)
	fp := s.master.BlindIndex(fingerprintPurpose, string(fingerprint))
	now := s.now().UTC()
	leaseUntil := now.Add(s.lease)
	// An abandoned claim is deleted with the expired responses, but never
	// before its lease ends, whatever the options.
	expiresAt := now.Add(max(s.ttl, s.lease))

	for range claimAttempts {
		tag, err := s.pool.Exec(ctx, claimSQL, scope, keyHash, fp, now, leaseUntil, expiresAt)
		if err != nil {
			return nil, fmt.Errorf("claim idempotency key: %w", err)
		}
		if tag.RowsAffected() == 1 {
			return nil, nil
		}

		var (
			storedFP, sealed []byte
			state            string
			storedLease      *time.Time
			storedExpiry     time.Time
		)
		err = s.pool.QueryRow(ctx, lookupSQL, scope, keyHash).Scan(&storedFP, &state, &storedLease, &sealed, &storedExpiry)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			continue // released or deleted since the claim: claim again
		case err != nil:
			return nil, fmt.Errorf("read idempotency key: %w", err)
		case !storedExpiry.After(now):
			continue // replaced since by a claim that has expired too: claim again
		case !bytes.Equal(storedFP, fp):
			return nil, ErrMismatch
		case state == stateCompleted:
			resp, err := s.open(scope, keyHash, sealed)
			if err != nil {
				return nil, err
			}
			return resp, nil
		case storedLease != nil && storedLease.After(now):
			return nil, ErrInProgress
		}
		// In progress past its lease, yet the claim did not take it over:
		// it changed hands between the two statements. Claim again.
	}
	return nil, fmt.Errorf("claim idempotency key: it changed hands %d times while claiming it; retry the request", claimAttempts)
}

// completeSQL stores the sealed response of a claim still in progress.
const completeSQL = `UPDATE idempotency_keys
SET state = 'completed', response = $3, lease_until = NULL, expires_at = $4
WHERE scope = $1 AND key_hash = $2 AND state = 'in_progress'`

// Complete stores the response of the request that claimed (scope, key),
// sealed, for TTL from now. Only the headers listed at Response.Header
// are kept: never Set-Cookie, so a session token never rests here and a retry from
// elsewhere never receives one. It returns ErrNotClaimed if there is no
// claim in progress for the key; the request has run all the same.
func (s *Store) Complete(ctx context.Context, scope, key string, resp Response) error {
	if s.err != nil {
		return s.err
	}
	if resp.Status < 200 || resp.Status > 599 {
		return fmt.Errorf("idempotency: Complete needs a final HTTP status (200 to 599), not %d", resp.Status)
	}
	keyHash := s.keyHash(scope, key)
	sealed, err := s.seal(scope, keyHash, resp)
	if err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, completeSQL, scope, keyHash, sealed, s.now().UTC().Add(s.ttl))
	if err != nil {
		return fmt.Errorf("store idempotent response: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotClaimed
	}
	return nil
}

// releaseSQL drops a claim; a completed response is never dropped by it.
const releaseSQL = `DELETE FROM idempotency_keys WHERE scope = $1 AND key_hash = $2 AND state = 'in_progress'`

// Release drops the claim on (scope, key) of a request that failed in a
// way worth retrying (a 5xx), so that a retry runs it again. Releasing
// twice, or a completed key, is harmless.
func (s *Store) Release(ctx context.Context, scope, key string) error {
	if s.err != nil {
		return s.err
	}
	if _, err := s.pool.Exec(ctx, releaseSQL, scope, s.keyHash(scope, key)); err != nil {
		return fmt.Errorf("release idempotency key: %w", err)
	}
	return nil
}

// deleteExpiredSQL removes the rows that Begin already treats as absent.
const deleteExpiredSQL = `DELETE FROM idempotency_keys WHERE expires_at <= $1`

// DeleteExpired removes expired responses and abandoned claims, so the
// table keeps no more than it must. It returns how many it removed.
func (s *Store) DeleteExpired(ctx context.Context) (int64, error) {
	tag, err := s.pool.Exec(ctx, deleteExpiredSQL, s.now().UTC())
	if err != nil {
		return 0, fmt.Errorf("delete expired idempotency keys: %w", err)
	}
	return tag.RowsAffected(), nil
}

// UserScope is the scope of a signed-in user's keys: one user's keys never
// collide with another's, and forgetting a user deletes their scope.
func UserScope(userID uuid.UUID) string { return "user:" + userID.String() }

// deleteScopeSQL removes every row of a scope.
const deleteScopeSQL = `DELETE FROM idempotency_keys WHERE scope = $1`

// DeleteScope removes every key and stored response of a scope, for a
// forgotten person: the responses are sealed under the master key, not
// under the person's data key, so forgetting them does not reach these
// rows by itself. It needs no master key.
func DeleteScope(ctx context.Context, pool *pgxpool.Pool, scope string) error {
	if _, err := pool.Exec(ctx, deleteScopeSQL, scope); err != nil {
		return fmt.Errorf("delete idempotency keys of a scope: %w", err)
	}
	return nil
}

// keyHash names (scope, key) in the table. It is keyed, not a plain
// SHA-256: a client may derive its keys from the request, and a plain hash
// of a guessable key could be tested against guesses. The scope is length
// prefixed so that no two (scope, key) pairs share a hash input.
func (s *Store) keyHash(scope, key string) []byte {
	in := binary.AppendUvarint(nil, uint64(len(scope)))
	in = append(in, scope...)
	in = append(in, key...)
	return s.master.BlindIndex(keyIndexPurpose, string(in))
}

// replayed tells whether a response header is worth replaying: those that
// describe the body or tell the client what to do next. Everything else is
// dropped, above all Set-Cookie, and those the server sets on every
// response anyway (Date, Content-Length).
func replayed(canonicalName string) bool {
	switch canonicalName {
	case "Cache-Control", "Content-Encoding", "Content-Language", "Content-Type",
		"Etag", "Last-Modified", "Location", "Retry-After":
		return true
	}
	return false
}

// sealVersion is the first byte of every sealed response's plaintext.
const sealVersion = 1

// seal encrypts a response. The plaintext is a version byte, the status as
// two bytes, the length-prefixed JSON of the replayed headers, then the
// body. The associated data binds it to its row, so that a sealed response
// moved to another row does not open.
func (s *Store) seal(scope string, keyHash []byte, resp Response) ([]byte, error) {
	kept := http.Header{}
	for name, values := range resp.Header {
		if name = http.CanonicalHeaderKey(name); replayed(name) {
			kept[name] = append(kept[name], values...)
		}
	}
	header, err := json.Marshal(kept)
	if err != nil {
		return nil, fmt.Errorf("seal idempotent response: %w", err)
	}
	plain := make([]byte, 0, 3+binary.MaxVarintLen64+len(header)+len(resp.Body))
	plain = append(plain, sealVersion)
	plain = binary.BigEndian.AppendUint16(plain, uint16(resp.Status))
	plain = binary.AppendUvarint(plain, uint64(len(header)))
	plain = append(plain, header...)
	plain = append(plain, resp.Body...)

	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	_, _ = rand.Read(nonce) // crypto/rand.Read never fails on supported platforms
	return s.aead.Seal(nonce, nonce, plain, sealAD(scope, keyHash)), nil
}

// open decrypts a response sealed by seal for the same row.
func (s *Store) open(scope string, keyHash, sealed []byte) (*Response, error) {
	if len(sealed) < s.aead.NonceSize() {
		return nil, errors.New("idempotency: a stored response is damaged")
	}
	n := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, sealed[:n], sealed[n:], sealAD(scope, keyHash))
	if err != nil {
		return nil, errors.New("idempotency: a stored response does not open: it was altered or moved to another row")
	}
	if len(plain) < 3 || plain[0] != sealVersion {
		return nil, errors.New("idempotency: a stored response is in an unknown format")
	}
	resp := &Response{Status: int(binary.BigEndian.Uint16(plain[1:3]))}
	rest := plain[3:]
	size, used := binary.Uvarint(rest)
	if used <= 0 || size > uint64(len(rest)-used) {
		return nil, errors.New("idempotency: a stored response is damaged")
	}
	rest = rest[used:]
	if err := json.Unmarshal(rest[:size], &resp.Header); err != nil {
		return nil, fmt.Errorf("idempotency: a stored response is damaged: %w", err)
	}
	if resp.Header == nil {
		resp.Header = http.Header{}
	}
	resp.Body = rest[size:]
	return resp, nil
}

// sealAD is the associated data of a sealed response: the scope and the
// key hash of its row. The hash has a fixed size, so the two cannot run
// into each other.
func sealAD(scope string, keyHash []byte) []byte {
	ad := append([]byte("presente/idempotency-response/v1\x00"), keyHash...)
	return append(ad, scope...)
}
