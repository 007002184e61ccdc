package eventstore

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/presente-dispatch/presente/domain"
)

// reader follows the global log the way a projector does: from a cursor,
// in batches.
type reader struct {
	s      *Store
	cursor Cursor
	seen   []Recorded
}

// pollUntil polls until the reader has delivered at least n events in all,
// or fails the test after a deadline. Delivery can be delayed by any
// transaction running anywhere on the server (pg_snapshot_xmin is
// cluster-wide), so a test never expects an event on the very next poll.
func (r *reader) pollUntil(tb testing.TB, n int) {
	tb.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for len(r.seen) < n {
		if time.Now().After(deadline) {
			tb.Fatalf("reader delivered %d events within 15s, want %d", len(r.seen), n)
		}
		if len(r.poll(tb)) == 0 {
			time.Sleep(5 * time.Millisecond)
		}
	}
}

func (r *reader) poll(tb testing.TB) []Recorded {
	tb.Helper()
	var got []Recorded
	for {
		batch, err := r.s.ReadAll(context.Background(), r.cursor, 100)
		if err != nil {
			tb.Fatal(err)
		}
		if len(batch) == 0 {
			r.seen = append(r.seen, got...)
			return got
		}
		got = append(got, batch...)
		r.cursor = batch[len(batch)-1].Cursor()
	}
}

// naivePositionsAfter is the buggy reader of NOTES.md: position > last.
func naivePositionsAfter(tb testing.TB, pool *pgxpool.Pool, after int64) []int64 {
	tb.Helper()
	rows, err := pool.Query(context.Background(), `SELECT position FROM events WHERE position > $1 ORDER BY position`, after)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var p int64
		if err := rows.Scan(&p); err != nil {
			tb.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

func TestReaderNeverSkipsAnEventThatCommitsLate(t *testing.T) {
	s, pool := newTestStore(t, Options{})
	ctx := context.Background()

	// A takes the lower position and stays open.
	txA, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer txA.Rollback(ctx) //nolint:errcheck // committed below on success
	recA, err := s.appendIn(ctx, txA, Stream{Type: "note", ID: uuid.New()}, 0, testMeta, []domain.Event{noteAdded{Text: "A"}})
	if err != nil {
		t.Fatal(err)
	}
	// B takes a higher position and commits first.
	recB, err := s.Append(ctx, Stream{Type: "note", ID: uuid.New()}, 0, testMeta, noteAdded{Text: "B"})
	if err != nil {
		t.Fatal(err)
	}
	if recA[0].Position >= recB[0].Position {
		t.Fatalf("setup: A has position %d, B %d; want A lower", recA[0].Position, recB[0].Position)
	}

	// The naive reader sees B now, moves its high-water mark past A, and
	// would never see A: the bug this design prevents.
	naive := naivePositionsAfter(t, pool, 0)
	if fmt.Sprint(naive) != fmt.Sprint([]int64{recB[0].Position}) {
		t.Fatalf("naive reader saw %v while A was open, want only B's position %d", naive, recB[0].Position)
	}

	r := &reader{s: s}
	for range 3 { // polling throughout, while A is still open
		if got := r.poll(t); len(got) != 0 {
			t.Fatalf("while A was open the reader delivered %d event(s) (first at position %d): B must wait for A", len(got), got[0].Position)
		}
	}
	if err := txA.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	r.pollUntil(t, 2)
	got := r.seen
	if len(got) != 2 || got[0].Event.(noteAdded).Text != "A" || got[1].Event.(noteAdded).Text != "B" {
		t.Fatalf("after A committed the reader delivered %v, want A then B", texts(got))
	}
	if more := naivePositionsAfter(t, pool, recB[0].Position); len(more) != 0 {
		t.Fatalf("naive reader after B: %v", more)
	}
}

func texts(rs []Recorded) []string {
	var out []string
	for _, r := range rs {
		out = append(out, fmt.Sprintf("%s@%d", r.Event.(noteAdded).Text, r.Position))
	}
	return out
}

// TestReaderDeliversEveryEventExactlyOnceUnderConcurrentWriters runs
// writers whose transactions commit in random order relative to their
// positions while a reader polls without pause; at the end the reader must
// have delivered every committed event exactly once, each stream in order,
// and no event of a rolled-back transaction.
func TestReaderDeliversEveryEventExactlyOnceUnderConcurrentWriters(t *testing.T) {
	s, pool := newTestStore(t, Options{})
	ctx := context.Background()
	const writers, perWriter = 8, 25

	var wg sync.WaitGroup
	committed := make(chan uuid.UUID, writers*perWriter)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stream := Stream{Type: "note", ID: uuid.New()}
			var version int64
			for i := range perWriter {
				tx, err := pool.Begin(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				rec, err := s.appendIn(ctx, tx, stream, version, testMeta, []domain.Event{noteAdded{Text: fmt.Sprintf("w%d-%d", w, i)}})
				if err != nil {
					t.Error(err)
					_ = tx.Rollback(ctx)
					return
				}
				// Hold the transaction open for a random moment so that
				// commits interleave out of position order.
				time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
				if i%7 == 3 { // some transactions roll back
					_ = tx.Rollback(ctx)
					continue
				}
				if err := tx.Commit(ctx); err != nil {
					t.Error(err)
					return
				}
				version++
				committed <- rec[0].EventID
			}
		}()
	}

	r := &reader{s: s}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for polling := true; polling; {
		select {
		case <-done:
			polling = false
		default:
			r.poll(t)
		}
	}
	close(committed)
	var n int
	want := map[uuid.UUID]bool{}
	for id := range committed {
		want[id] = true
		n++
	}
	r.pollUntil(t, n) // everything has committed now

	seen := map[uuid.UUID]int{}
	lastVersion := map[uuid.UUID]int64{}
	for _, e := range r.seen {
		seen[e.EventID]++
		if e.StreamVersion != lastVersion[e.StreamID]+1 {
			t.Errorf("stream %s: version %d delivered after %d", e.StreamID, e.StreamVersion, lastVersion[e.StreamID])
		}
		lastVersion[e.StreamID] = e.StreamVersion
	}
	for id := range want {
		if seen[id] != 1 {
			t.Errorf("event %s delivered %d times, want once", id, seen[id])
		}
	}
	if len(seen) != len(want) {
		t.Errorf("reader delivered %d distinct events, %d were committed", len(seen), len(want))
	}
}
