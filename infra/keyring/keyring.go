// Package keyring keeps the data keys of crypto-shredding: one random key
// per data subject, stored in PostgreSQL wrapped (encrypted) by a master key
// that is never stored in the database. Forgetting a subject destroys its
// data key, so everything ever encrypted with it, in the event log and in
// every backup, becomes unreadable.
package keyring

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/crypto/chacha20poly1305"
)

// ErrForgotten reports a subject whose data key has been destroyed.
var ErrForgotten = errors.New("this person has been forgotten: their personal data was destroyed")

// MasterKeySize is the size of a master key in bytes.
const MasterKeySize = chacha20poly1305.KeySize

// MasterKey wraps and unwraps data keys. Keep it out of the database and
// out of database backups: in a key file readable only by the server's
// user, or in the environment.
type MasterKey struct{ key []byte }

// String keeps the key out of logs and error messages however it is printed.
func (MasterKey) String() string { return "[master key]" }

// GoString keeps the key out of %#v output.
func (MasterKey) GoString() string { return "keyring.MasterKey{[redacted]}" }

// Equal tells whether two master keys are the same key.
func (m MasterKey) Equal(o MasterKey) bool { return hmac.Equal(m.key, o.key) }

// GenerateMasterKey returns a new random master key, encoded as ParseMasterKey reads it.
func GenerateMasterKey() string {
	k := make([]byte, MasterKeySize)
	_, _ = rand.Read(k) // crypto/rand.Read never fails on supported platforms
	return base64.StdEncoding.EncodeToString(k)
}

// ParseMasterKey reads a master key encoded in base64 (standard or URL
// alphabet, padded or not), as `presente keygen` prints it.
func ParseMasterKey(encoded string) (MasterKey, error) {
	s := strings.TrimSpace(encoded)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil {
			if len(k) != MasterKeySize {
				return MasterKey{}, fmt.Errorf("the master key is %d bytes, want %d: make one with presente keygen", len(k), MasterKeySize)
			}
			return MasterKey{key: k}, nil
		}
	}
	return MasterKey{}, errors.New("the master key is not base64: make one with presente keygen")
}

// ReadMasterKeyFile reads a master key from a file, refusing one that
// other users of the machine could read.
func ReadMasterKeyFile(path string) (MasterKey, error) {
	info, err := os.Stat(path)
	if err != nil {
		return MasterKey{}, fmt.Errorf("master key file: %w", err)
	}
	if info.Mode().Perm()&0o077 != 0 {
		return MasterKey{}, fmt.Errorf("master key file %s is readable by other users (mode %s): chmod 600 it", path, info.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return MasterKey{}, fmt.Errorf("master key file: %w", err)
	}
	return ParseMasterKey(string(b))
}

// BlindIndex returns a keyed hash of value for purpose: equal values give
// equal indexes, so a column of them can be searched, but without the
// master key an index reveals nothing and cannot be tested against guesses.
func (m MasterKey) BlindIndex(purpose, value string) []byte {
	derive := hmac.New(sha256.New, m.key)
	derive.Write([]byte("presente/blind-index/v1/" + purpose))
	mac := hmac.New(sha256.New, derive.Sum(nil))
	mac.Write([]byte(value))
	return mac.Sum(nil)
}

// DeriveKey returns a 32-byte key for purpose, derived from the master key
// the way BlindIndex derives its keys but under its own label, so that
// every purpose gets a key independent of every other purpose's, of every
// blind index key and of the master key itself. It is for data sealed by
// the server for itself (such as stored responses), which belongs to no one
// data subject. It returns nil for the zero MasterKey, so that a caller
// that forgot the key fails instead of sealing under a key derived from none.
func (m MasterKey) DeriveKey(purpose string) []byte {
	if len(m.key) == 0 {
		return nil
	}
	mac := hmac.New(sha256.New, m.key)
	mac.Write([]byte("presente/derived-key/v1/" + purpose))
	return mac.Sum(nil)
}

// Keyring hands out data keys. It is safe for concurrent use.
type Keyring struct {
	pool   *pgxpool.Pool
	master MasterKey
	now    func() time.Time
}

// New returns a keyring over the subject_keys table.
func New(pool *pgxpool.Pool, master MasterKey) (*Keyring, error) {
	if len(master.key) != MasterKeySize {
		return nil, errors.New("keyring: no master key given")
	}
	return &Keyring{pool: pool, master: master, now: time.Now}, nil
}

// DataKey returns the subject's data key, creating it on first use. It
// returns ErrForgotten for a forgotten subject: no new personal data can be
// stored about them.
func (k *Keyring) DataKey(ctx context.Context, subject uuid.UUID) ([]byte, error) {
	// Read, else create, else read what a concurrent creator committed
	// (a statement cannot see a row committed after its snapshot).
	for attempt := 0; attempt < 2; attempt++ {
		var stored []byte
		err := k.pool.QueryRow(ctx, `SELECT wrapped_key FROM subject_keys WHERE subject_id = $1`, subject).Scan(&stored)
		switch {
		case err == nil && stored == nil:
			return nil, fmt.Errorf("subject %s: %w", subject, ErrForgotten)
		case err == nil:
			return k.unwrap(subject, stored)
		case !errors.Is(err, pgx.ErrNoRows):
			return nil, fmt.Errorf("data key for subject %s: %w", subject, err)
		}
		fresh := make([]byte, chacha20poly1305.KeySize)
		_, _ = rand.Read(fresh)
		wrapped, err := k.wrap(subject, fresh)
		if err != nil {
			return nil, err
		}
		tag, err := k.pool.Exec(ctx, `INSERT INTO subject_keys (subject_id, wrapped_key, created_at)
VALUES ($1, $2, $3) ON CONFLICT (subject_id) DO NOTHING`, subject, wrapped, k.now().UTC())
		if err != nil {
			return nil, fmt.Errorf("data key for subject %s: %w", subject, err)
		}
		if tag.RowsAffected() == 1 {
			return fresh, nil
		}
	}
	return nil, fmt.Errorf("data key for subject %s: created and lost concurrently", subject)
}

// DataKeys returns the data keys of the given subjects that still exist.
// A subject missing from the result has been forgotten (or never had a key).
func (k *Keyring) DataKeys(ctx context.Context, subjects []uuid.UUID) (map[uuid.UUID][]byte, error) {
	out := make(map[uuid.UUID][]byte, len(subjects))
	if len(subjects) == 0 {
		return out, nil
	}
	rows, err := k.pool.Query(ctx, `SELECT subject_id, wrapped_key FROM subject_keys
WHERE subject_id = ANY($1) AND wrapped_key IS NOT NULL`, subjects)
	if err != nil {
		return nil, fmt.Errorf("read data keys: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id uuid.UUID
		var wrapped []byte
		if err := rows.Scan(&id, &wrapped); err != nil {
			return nil, fmt.Errorf("read data keys: %w", err)
		}
		key, err := k.unwrap(id, wrapped)
		if err != nil {
			return nil, err
		}
		out[id] = key
	}
	return out, rows.Err()
}

// Forget destroys the subject's data key for good, leaving a tombstone so
// that no new key is ever made for them. Forgetting twice is harmless.
func (k *Keyring) Forget(ctx context.Context, subject uuid.UUID) (alreadyForgotten bool, err error) {
	return Forget(ctx, k.pool, subject, k.now())
}

// Forget destroys a subject's data key without needing the master key.
// It is one upsert, so it cannot miss a key that a concurrent first use is
// creating: whichever commits first, the row ends as a tombstone.
func Forget(ctx context.Context, pool *pgxpool.Pool, subject uuid.UUID, now time.Time) (alreadyForgotten bool, err error) {
	var forgottenAt time.Time
	err = pool.QueryRow(ctx, `INSERT INTO subject_keys AS k (subject_id, wrapped_key, created_at, forgotten_at)
VALUES ($1, NULL, $2, $2)
ON CONFLICT (subject_id) DO UPDATE
    SET wrapped_key = NULL, forgotten_at = coalesce(k.forgotten_at, EXCLUDED.forgotten_at)
RETURNING forgotten_at`, subject, now.UTC()).Scan(&forgottenAt)
	if err != nil {
		return false, fmt.Errorf("forget subject %s: %w", subject, err)
	}
	return !forgottenAt.Equal(now.UTC().Truncate(time.Microsecond)), nil
}

// wrap encrypts a data key under the master key, bound to its subject.
func (k *Keyring) wrap(subject uuid.UUID, key []byte) ([]byte, error) {
	aead, err := chacha20poly1305.NewX(k.master.key)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(key)+aead.Overhead())
	_, _ = rand.Read(nonce)
	return aead.Seal(nonce, nonce, key, wrapAD(subject)), nil
}

func (k *Keyring) unwrap(subject uuid.UUID, wrapped []byte) ([]byte, error) {
	aead, err := chacha20poly1305.NewX(k.master.key)
	if err != nil {
		return nil, err
	}
	if len(wrapped) < aead.NonceSize() {
		return nil, fmt.Errorf("data key of subject %s is damaged", subject)
	}
	key, err := aead.Open(nil, wrapped[:aead.NonceSize()], wrapped[aead.NonceSize():], wrapAD(subject))
	if err != nil {
		return nil, fmt.Errorf("data key of subject %s does not open with this master key: is it the right key?", subject)
	}
	return key, nil
}

func wrapAD(subject uuid.UUID) []byte { return append([]byte("presente/data-key/v1/"), subject[:]...) }
