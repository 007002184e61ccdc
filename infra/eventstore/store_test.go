package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/presente-dispatch/presente/domain"
	"github.com/presente-dispatch/presente/infra/postgres/pgtest"
)

// Test events. noteAdded exists at schema version 1 only; tallied is at
// version 2 in some tests (see TestUpcasterIsAppliedOnRead).
type noteAdded struct {
	Text string  `json:"text"`
	N    float64 `json:"n,omitempty"`
}

func (noteAdded) EventType() string { return "NoteAdded" }

type tallied struct {
	By int `json:"by"`
}

func (tallied) EventType() string { return "Tallied" }

func testRegistry(tb testing.TB) *Registry {
	tb.Helper()
	r := NewRegistry()
	for _, e := range []domain.Event{noteAdded{}, tallied{}} {
		if err := r.Register(e); err != nil {
			tb.Fatal(err)
		}
	}
	return r
}

func newTestStore(tb testing.TB, opts Options) (*Store, *pgxpool.Pool) {
	tb.Helper()
	pool := pgtest.NewPool(tb)
	s, err := New(pool, testRegistry(tb), opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	return s, pool
}

// streamVersion loads a stream and returns its version.
func streamVersion(tb testing.TB, s *Store, id uuid.UUID) int64 {
	tb.Helper()
	_, v, err := s.Load(context.Background(), id)
	if err != nil {
		tb.Fatalf("load stream %s: %v", id, err)
	}
	return v
}

var testMeta = Metadata{Actor: "user:7f1c1a52-3f4e-4f7a-9a51-0c6c4d1f2b10", Reason: "testing"}

func TestAppendThenLoadReturnsTheEventsInOrderWithTheirMetadata(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 11, 23, 6, 40, 0, 123456789, time.UTC)
	s, _ := newTestStore(t, Options{Clock: func() time.Time { return at }})
	stream := Stream{Type: "note", ID: uuid.New()}

	first, err := s.Append(ctx, stream, 0, testMeta, noteAdded{Text: "uno"}, noteAdded{Text: "dos"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, stream, 2, testMeta, noteAdded{Text: "tres"}); err != nil {
		t.Fatal(err)
	}
	events, version, err := s.Load(ctx, stream.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := version, int64(3); got != want {
		t.Fatalf("version = %d, want %d", got, want)
	}
	for i, want := range []string{"uno", "dos", "tres"} {
		e := events[i]
		if got := e.Event.(noteAdded).Text; got != want {
			t.Errorf("event %d text = %q, want %q", i, got, want)
		}
		if got, want := e.StreamVersion, int64(i+1); got != want {
			t.Errorf("event %d stream version = %d, want %d", i, got, want)
		}
		if got, want := e.Metadata.Actor, testMeta.Actor; got != want {
			t.Errorf("event %d actor = %q, want %q", i, got, want)
		}
		if e.Metadata.CorrelationID == uuid.Nil {
			t.Errorf("event %d has no correlation id", i)
		}
		if got, want := e.RecordedAt, at.Truncate(time.Microsecond); !got.Equal(want) {
			t.Errorf("event %d recorded at %v, want %v", i, got, want)
		}
	}
	if got, want := events[1].Metadata.CorrelationID, first[0].Metadata.CorrelationID; got != want {
		t.Errorf("events of one append have correlation ids %s and %s, want one", want, got)
	}
	if events[0].Position != first[0].Position || events[0].EventID != first[0].EventID {
		t.Errorf("Append returned %+v, Load returned %+v", first[0], events[0])
	}
}

func TestAppendRefusesMissingActorAndEmptyBatches(t *testing.T) {
	s, _ := newTestStore(t, Options{})
	ctx := context.Background()
	stream := Stream{Type: "note", ID: uuid.New()}
	if _, err := s.Append(ctx, stream, 0, Metadata{}, noteAdded{Text: "x"}); err == nil {
		t.Error("append without an actor succeeded")
	}
	if _, err := s.Append(ctx, stream, 0, testMeta); err == nil {
		t.Error("append of no events succeeded")
	}
	type unregistered struct{ noteAdded }
	if _, err := s.Append(ctx, stream, 0, testMeta, unregistered{}); !errors.Is(err, ErrUnknownEventType) {
		t.Errorf("append of an unregistered event type: err = %v, want ErrUnknownEventType", err)
	}
	if v := streamVersion(t, s, stream.ID); v != 0 {
		t.Errorf("refused appends left the stream at version %d", v)
	}
}

func TestAppendToAStreamOfAnotherTypeIsRefused(t *testing.T) {
	s, _ := newTestStore(t, Options{})
	ctx := context.Background()
	id := uuid.New()
	if _, err := s.Append(ctx, Stream{Type: "note", ID: id}, 0, testMeta, noteAdded{Text: "x"}); err != nil {
		t.Fatal(err)
	}
	_, err := s.Append(ctx, Stream{Type: "tally", ID: id}, 1, testMeta, tallied{By: 1})
	var typeErr *StreamTypeError
	if !errors.As(err, &typeErr) || typeErr.Got != "note" || typeErr.Want != "tally" {
		t.Fatalf("err = %v, want a StreamTypeError naming note and tally", err)
	}
}

func TestFiftyWritersAtOneExpectedVersionExactlyOneWins(t *testing.T) {
	s, pool := newTestStore(t, Options{})
	ctx := context.Background()
	stream := Stream{Type: "note", ID: uuid.New()}
	if _, err := s.Append(ctx, stream, 0, testMeta, noteAdded{Text: "first"}); err != nil {
		t.Fatal(err)
	}

	const writers = 50
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		errs  = make(chan error, writers)
	)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, err := s.Append(ctx, stream, 1, testMeta, noteAdded{Text: fmt.Sprint("writer ", i)})
			errs <- err
		}()
	}
	close(start)
	wg.Wait()
	close(errs)

	var won, conflicted int
	for err := range errs {
		var ce *ConcurrencyError
		switch {
		case err == nil:
			won++
		case errors.As(err, &ce):
			conflicted++
			if ce.Expected != 1 || ce.Actual != 2 {
				t.Errorf("conflict says expected %d actual %d, want 1 and 2", ce.Expected, ce.Actual)
			}
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	if won != 1 || conflicted != writers-1 {
		t.Fatalf("%d won and %d conflicted, want 1 and %d", won, conflicted, writers-1)
	}
	var versions []int64
	rows, err := pool.Query(ctx, `SELECT stream_version FROM events WHERE stream_id = $1 ORDER BY stream_version`, stream.ID)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		versions = append(versions, v)
	}
	if fmt.Sprint(versions) != "[1 2]" {
		t.Errorf("stream versions = %v, want [1 2] (no holes, no extras)", versions)
	}
	var maxPos int64
	if err := pool.QueryRow(ctx, `SELECT max(position) FROM events`).Scan(&maxPos); err != nil {
		t.Fatal(err)
	}
	if maxPos != 2 {
		t.Errorf("highest position = %d after 2 events: losers burned positions", maxPos)
	}
}

// capped is a decider whose rule depends on the stream's state: at most
// limit tallies. Under concurrency Execute must decide on fresh state, so
// exactly limit commands succeed however many race.
func capped(limit int) domain.Decider[int, int] {
	return domain.Decider[int, int]{
		StreamType: "tally",
		Initial:    func() int { return 0 },
		Evolve: func(total int, e domain.Event) int {
			return total + 1
		},
		Decide: func(total int, by int) ([]domain.Event, error) {
			if total >= limit {
				return nil, errFull
			}
			return []domain.Event{tallied{By: by}}, nil
		},
	}
}

var errFull = errors.New("full")

func TestExecuteRetriesOnConflictAndDecidesOnFreshState(t *testing.T) {
	s, _ := newTestStore(t, Options{MaxAttempts: 100})
	ctx := context.Background()
	id := uuid.New()
	const racers, limit = 20, 7

	var wg sync.WaitGroup
	results := make(chan error, racers)
	start := make(chan struct{})
	for range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, err := Execute(ctx, s, capped(limit), id, 1, testMeta)
			results <- err
		}()
	}
	close(start)
	wg.Wait()
	close(results)
	var ok, full int
	for err := range results {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, errFull):
			full++
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	if ok != limit || full != racers-limit {
		t.Fatalf("%d succeeded and %d were refused as full, want %d and %d", ok, full, limit, racers-limit)
	}
	if v := streamVersion(t, s, id); v != limit {
		t.Errorf("stream version = %d, want %d", v, limit)
	}
}

func TestExecuteGivesUpAfterMaxAttemptsWithAConcurrencyError(t *testing.T) {
	s, _ := newTestStore(t, Options{MaxAttempts: 2})
	ctx := context.Background()
	id := uuid.New()
	// A decider that, while deciding, lets another writer append first,
	// so every attempt conflicts.
	sneaky := domain.Decider[int, int]{
		StreamType: "tally",
		Initial:    func() int { return 0 },
		Evolve:     func(n int, _ domain.Event) int { return n + 1 },
		Decide: func(n int, _ int) ([]domain.Event, error) {
			if _, err := s.Append(ctx, Stream{Type: "tally", ID: id}, int64(n), testMeta, tallied{By: 9}); err != nil {
				t.Errorf("interfering append: %v", err)
			}
			return []domain.Event{tallied{By: 1}}, nil
		},
	}
	_, err := Execute(ctx, s, sneaky, id, 1, testMeta)
	if !errors.Is(err, ErrConcurrency) {
		t.Fatalf("err = %v, want ErrConcurrency after giving up", err)
	}
	if v := streamVersion(t, s, id); v != 2 {
		t.Errorf("stream version = %d, want 2 (only the interfering appends)", v)
	}
}

func TestExecuteRefusesAStreamOfAnotherType(t *testing.T) {
	s, _ := newTestStore(t, Options{})
	ctx := context.Background()
	id := uuid.New()
	if _, err := s.Append(ctx, Stream{Type: "note", ID: id}, 0, testMeta, noteAdded{Text: "x"}); err != nil {
		t.Fatal(err)
	}
	var typeErr *StreamTypeError
	if _, err := Execute(ctx, s, capped(5), id, 1, testMeta); !errors.As(err, &typeErr) {
		t.Fatalf("err = %v, want a StreamTypeError", err)
	}
}

func TestCursorRoundTripsThroughItsText(t *testing.T) {
	c := Cursor{TxID: 18446744073709551615, Position: 42}
	got, err := ParseCursor(c.String())
	if err != nil || got != c {
		t.Fatalf("ParseCursor(%q) = %v, %v; want %v", c.String(), got, err, c)
	}
	for _, bad := range []string{"", "12", "a:1", "1:b", "1:-3"} {
		if _, err := ParseCursor(bad); err == nil {
			t.Errorf("ParseCursor(%q) succeeded", bad)
		}
	}
}

func TestMetadataOmitsAnEmptyCausationAndReason(t *testing.T) {
	b, err := json.Marshal(Metadata{Actor: "system:test", CorrelationID: uuid.MustParse("0195a3b2-0000-7000-8000-000000000001")})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"actor":"system:test","correlation_id":"0195a3b2-0000-7000-8000-000000000001"}`; got != want {
		t.Errorf("metadata JSON = %s, want %s", got, want)
	}
}

func TestStreamIDsListsTheStreamsOfOneTypeOldestFirst(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t, Options{})
	meta := Metadata{Actor: "test"}
	var notes []uuid.UUID
	for i := range 3 {
		id := uuid.New()
		notes = append(notes, id)
		if _, err := s.Append(ctx, Stream{Type: "note", ID: id}, 0, meta, noteAdded{Text: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Append(ctx, Stream{Type: "tally", ID: uuid.New()}, 0, meta, tallied{By: 1}); err != nil {
		t.Fatal(err)
	}
	got, err := s.StreamIDs(ctx, "note")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(notes) {
		t.Errorf("note streams = %v, want %v", got, notes)
	}
	if got, err := s.StreamIDs(ctx, "nothing"); err != nil || len(got) != 0 {
		t.Errorf("streams of an unused type = %v, %v; want none", got, err)
	}
}
