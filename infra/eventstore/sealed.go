package eventstore

import (
	"context"
	"fmt"

	"github.com/presente-dispatch/presente/domain"
)

// Reading the log as stored, for relays.
//
// A relay (infra/bus) forwards the global log to consumers in other
// goroutines and, later, other machines. What it forwards must not carry
// personal data in the clear, so it reads events sealed, as the log holds
// them; a consumer that needs the plaintext, and may see it, reveals the
// records it received with Store.Reveal.

// ReadAllSealed is ReadAll without revealing personal data: declared
// fields read as stored ("pii:v1:…" ciphertext, or the Forgotten marker).
// It needs no data key, so it never fails or slows for the keyring.
func (s *Store) ReadAllSealed(ctx context.Context, after Cursor, limit int) ([]Recorded, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("read log after %s: limit %d must be positive", after, limit)
	}
	events, err := s.scan(ctx, s.pool, readAllSQL, after.TxID, after.Position, limit)
	if err != nil {
		return nil, fmt.Errorf("read log after %s: %w", after, err)
	}
	return events, nil
}

// pendingSQL finds a committed event after the cursor, readable yet or
// not.
const pendingSQL = `SELECT EXISTS (SELECT 1 FROM events WHERE (tx_id, position) > ($1::xid8, $2))`

// Pending tells whether committed events lie after the cursor: events held
// back from ReadAll by an older transaction still running (which need not
// write events at all: any transaction on the server counts), or events
// committed since the caller last read. A follower that has read all it
// could asks it to decide whether to read again soon, since the end of
// that older transaction is signalled by nothing. It looks at committed
// events only, not at ReadAll's snapshot horizon, which may move between
// two statements: an event that became readable just after the last read
// counts too, so none is left waiting for the next wake-up.
func (s *Store) Pending(ctx context.Context, after Cursor) (bool, error) {
	var pending bool
	if err := s.pool.QueryRow(ctx, pendingSQL, after.TxID, after.Position).Scan(&pending); err != nil {
		return false, fmt.Errorf("look for events after %s: %w", after, err)
	}
	return pending, nil
}

// Reveal decrypts in place the personal-data fields of records read
// sealed (ReadAllSealed, LoadSealed, or decoded from a relayed message),
// with one key lookup for all their subjects. A field whose subject was
// forgotten reads as Forgotten and its record is marked Forgotten. Records
// already revealed must not be passed again: their fields are no longer
// ciphertext, and Reveal reports them as stored unencrypted.
func (s *Store) Reveal(ctx context.Context, recs []Recorded) error {
	if err := s.reveal(ctx, recs); err != nil {
		return fmt.Errorf("reveal personal data: %w", err)
	}
	return nil
}

// Decode reads an event payload of the given type and schema version, as
// the log stores it, upcasting it to the current version first. Personal
// data stays as it is in the payload (sealed, for a stored one). It serves
// consumers of relayed events, which receive the payload, not the row.
func (r *Registry) Decode(eventType string, schemaVersion int, data []byte) (domain.Event, error) {
	return r.decode(eventType, schemaVersion, data)
}
