package eventstore

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"
)

func TestCheckTransactionIDsCatchesALogRestoredIntoAYoungerCluster(t *testing.T) {
	s, pool := newTestStore(t, Options{})
	ctx := context.Background()
	if err := CheckTransactionIDs(ctx, pool); err != nil {
		t.Fatalf("empty log: %v", err)
	}
	if _, err := s.Append(ctx, Stream{Type: "note", ID: uuid.New()}, 0, testMeta, noteAdded{Text: "x"}); err != nil {
		t.Fatal(err)
	}
	if err := CheckTransactionIDs(ctx, pool); err != nil {
		t.Fatalf("healthy log: %v", err)
	}
	// What a logical restore into a fresh cluster looks like: a stored
	// transaction id far beyond the server's counter.
	if _, err := pool.Exec(ctx, `INSERT INTO events (tx_id, stream_id, stream_type, stream_version, event_id, event_type,
		schema_version, data, metadata, recorded_at, prev_hash, hash)
		VALUES ('900000000000'::xid8, gen_random_uuid(), 'note', 1, gen_random_uuid(), 'NoteAdded', 1, '{}', '{}', now(), '\x00', '\x00')`); err != nil {
		t.Fatal(err)
	}
	if err := CheckTransactionIDs(ctx, pool); !errors.Is(err, ErrTransactionIDsFromTheFuture) {
		t.Fatalf("err = %v, want ErrTransactionIDsFromTheFuture", err)
	}
}
