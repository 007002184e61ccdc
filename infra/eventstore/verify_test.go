package eventstore

import (
	"context"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
)

// seedLog appends a few streams whose payloads exercise the text forms the
// hash covers: unicode, escapes, numbers, nested JSON.
func seedLog(t *testing.T, s *Store) []Stream {
	t.Helper()
	ctx := context.Background()
	texts := []string{
		"plain", "acentos: Quiché, K'iche', niño", "línea\nnueva\ty\ttab", `comillas "dobles" y \barra`,
		"emoji 🚨 y 中文", "<script>alert(1)</script>", "' OR 1=1; --",
	}
	var streams []Stream
	for i := range 3 {
		st := Stream{Type: "note", ID: uuid.New()}
		streams = append(streams, st)
		for v, text := range texts {
			if _, err := s.Append(ctx, st, int64(v), testMeta, noteAdded{Text: text, N: float64(i) + 0.1}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return streams
}

func verify(t *testing.T, s *Store) VerifyReport {
	t.Helper()
	r, err := s.Verify(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// tamper runs SQL with the append-only triggers disabled, as an attacker
// who owns the tables could.
func tamper(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // committed below
	for _, stmt := range []string{"ALTER TABLE events DISABLE TRIGGER events_append_only", sql, "ALTER TABLE events ENABLE TRIGGER events_append_only"} {
		a := []any(nil)
		if stmt == sql {
			a = args
		}
		if _, err := tx.Exec(ctx, stmt, a...); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyAcceptsAnUntouchedLog(t *testing.T) {
	s, _ := newTestStore(t, Options{})
	seedLog(t, s)
	r := verify(t, s)
	if !r.OK() {
		t.Fatalf("untouched log has breaks: %v", r.Breaks)
	}
	if r.Streams != 3 || r.Events != 21 {
		t.Errorf("verified %d streams and %d events, want 3 and 21", r.Streams, r.Events)
	}
	if len(r.Digest) != 64 {
		t.Errorf("digest %q is not a hex SHA-256", r.Digest)
	}
}

func TestVerifyCatchesAnEditedEvent(t *testing.T) {
	s, pool := newTestStore(t, Options{})
	streams := seedLog(t, s)
	before := verify(t, s).Digest
	tamper(t, pool, `UPDATE events SET data = jsonb_set(data, '{text}', '"nothing happened"') WHERE stream_id = $1 AND stream_version = 3`, streams[1].ID)

	r := verify(t, s)
	if len(r.Breaks) != 1 {
		t.Fatalf("breaks = %v, want exactly one", r.Breaks)
	}
	b := r.Breaks[0]
	if b.StreamID != streams[1].ID || b.StreamVersion != 3 || !strings.Contains(b.Problem, "altered") {
		t.Errorf("break = %v, want stream %s version 3 altered", b, streams[1].ID)
	}
	if r.Digest != before {
		t.Errorf("editing an event body changed the heads digest; heads did not change")
	}
}

func TestVerifyCatchesEditedMetadataAndTime(t *testing.T) {
	s, pool := newTestStore(t, Options{})
	streams := seedLog(t, s)
	tamper(t, pool, `UPDATE events SET metadata = jsonb_set(metadata, '{actor}', '"user:someone-else"') WHERE stream_id = $1 AND stream_version = 1`, streams[0].ID)
	tamper(t, pool, `UPDATE events SET recorded_at = recorded_at + interval '1 microsecond' WHERE stream_id = $1 AND stream_version = 2`, streams[2].ID)
	if got := len(verify(t, s).Breaks); got != 2 {
		t.Fatalf("%d breaks, want 2 (actor and time)", got)
	}
}

func TestVerifyCatchesADeletedEvent(t *testing.T) {
	s, pool := newTestStore(t, Options{})
	streams := seedLog(t, s)
	tamper(t, pool, `DELETE FROM events WHERE stream_id = $1 AND stream_version = 4`, streams[0].ID)
	r := verify(t, s)
	if r.OK() {
		t.Fatal("a deleted event went unnoticed")
	}
	var missing, link bool
	for _, b := range r.Breaks {
		missing = missing || strings.Contains(b.Problem, "missing")
		link = link || strings.Contains(b.Problem, "link")
	}
	if !missing || !link {
		t.Errorf("breaks %v should report the missing version and the broken link", r.Breaks)
	}
}

func TestVerifyCatchesATruncatedStreamWhoseHeadWasNotRewound(t *testing.T) {
	s, pool := newTestStore(t, Options{})
	streams := seedLog(t, s)
	tamper(t, pool, `DELETE FROM events WHERE stream_id = $1 AND stream_version = 7`, streams[2].ID)
	r := verify(t, s)
	if len(r.Breaks) != 1 || !strings.Contains(r.Breaks[0].Problem, "version 7 but the events end at version 6") {
		t.Fatalf("breaks = %v, want the stream head disagreeing with its events", r.Breaks)
	}
}

func TestVerifyCatchesAStreamHeadThatDisagreesWithItsEvents(t *testing.T) {
	s, pool := newTestStore(t, Options{})
	streams := seedLog(t, s)
	if _, err := pool.Exec(context.Background(), `UPDATE streams SET version = version + 1 WHERE stream_id = $1`, streams[0].ID); err != nil {
		t.Fatal(err)
	}
	if r := verify(t, s); len(r.Breaks) != 1 || r.Breaks[0].StreamID != streams[0].ID {
		t.Fatalf("breaks = %v, want one on the altered stream", r.Breaks)
	}
}

// TestAnAnchorRevealsHistoryRewrittenWithItsChainRecomputed plays the
// strongest attacker: one who edits an event, recomputes every later hash
// with the database's own function and cuts another stream short with its
// head. The chain is consistent again; only the anchor saved earlier,
// outside the database, shows what happened.
func TestAnAnchorRevealsHistoryRewrittenWithItsChainRecomputed(t *testing.T) {
	s, pool := newTestStore(t, Options{})
	streams := seedLog(t, s)
	anchor := verify(t, s).Heads
	if len(anchor) != 3 {
		t.Fatalf("heads = %d, want 3", len(anchor))
	}
	// Appending after the anchor is fine: history is only extended.
	if _, err := s.Append(context.Background(), streams[2], 7, testMeta, noteAdded{Text: "later"}); err != nil {
		t.Fatal(err)
	}
	if r, err := s.Verify(context.Background(), anchor); err != nil || !r.OK() {
		t.Fatalf("appending after the anchor: %v, %v", r.Breaks, err)
	}

	tamper(t, pool, `UPDATE events SET data = '{"text": "nothing happened"}' WHERE stream_id = $1 AND stream_version = 5`, streams[0].ID)
	tamper(t, pool, `DO $$
DECLARE r record; prev bytea := NULL;
BEGIN
  FOR r IN SELECT * FROM events WHERE stream_id = '`+streams[0].ID.String()+`' ORDER BY stream_version LOOP
    IF prev IS NOT NULL THEN
      UPDATE events SET prev_hash = prev,
        hash = event_hash(prev, r.position, r.stream_id, r.stream_type, r.stream_version, r.event_id,
                          r.event_type, r.schema_version, r.recorded_at, r.metadata, r.data)
      WHERE position = r.position RETURNING hash INTO prev;
    ELSE
      prev := r.hash;
    END IF;
  END LOOP;
END $$`)
	tamper(t, pool, `DELETE FROM events WHERE stream_id = $1 AND stream_version = 7`, streams[1].ID)
	if _, err := pool.Exec(context.Background(), `UPDATE streams SET version = 6 WHERE stream_id = $1`, streams[1].ID); err != nil {
		t.Fatal(err)
	}

	if r := verify(t, s); !r.OK() {
		t.Fatalf("setup: the attacker left visible breaks %v; the point is that they did not", r.Breaks)
	}
	r, err := s.Verify(context.Background(), anchor)
	if err != nil {
		t.Fatal(err)
	}
	var rewritten, cut bool
	for _, b := range r.Breaks {
		rewritten = rewritten || (b.StreamID == streams[0].ID && strings.Contains(b.Problem, "rewritten"))
		cut = cut || (b.StreamID == streams[1].ID && strings.Contains(b.Problem, "events were removed"))
	}
	if !rewritten || !cut {
		t.Errorf("breaks against the anchor = %v, want the rewritten and the cut stream", r.Breaks)
	}
}

// TestVerifyDuringConcurrentAppendsReportsNoFalseBreak: verification runs
// while writers append, and must not mistake their appends for tampering.
func TestVerifyDuringConcurrentAppendsReportsNoFalseBreak(t *testing.T) {
	s, _ := newTestStore(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	for range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			stream := Stream{Type: "note", ID: uuid.New()}
			for v := int64(0); ctx.Err() == nil; v++ {
				if _, err := s.Append(ctx, stream, v, testMeta, noteAdded{Text: "busy"}); err != nil && ctx.Err() == nil {
					t.Errorf("append: %v", err)
					return
				}
			}
		}()
	}
	for range 15 {
		if r := verify(t, s); !r.OK() {
			t.Fatalf("verification during appends reported breaks: %v", r.Breaks)
		}
	}
	cancel()
	for range 4 {
		<-done
	}
}
