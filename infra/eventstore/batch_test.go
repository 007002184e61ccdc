package eventstore

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/presente-dispatch/presente/domain"
)

func request(t *testing.T, s *Store, stream Stream, expected int64, events ...domain.Event) *appendRequest {
	t.Helper()
	r, err := s.prepare(context.Background(), stream, expected, testMeta, events)
	if err != nil {
		t.Fatal(err)
	}
	r.ctx, r.done = context.Background(), make(chan error, 1)
	return r
}

func TestEachAppendInABatchSucceedsOrFailsAlone(t *testing.T) {
	s, _ := newTestStore(t, Options{})
	ctx := context.Background()
	existing := Stream{Type: "note", ID: uuid.New()}
	if _, err := s.Append(ctx, existing, 0, testMeta, noteAdded{Text: "v1"}); err != nil {
		t.Fatal(err)
	}
	wrongType := Stream{Type: "tally", ID: existing.ID}

	fresh := request(t, s, Stream{Type: "note", ID: uuid.New()}, 0, noteAdded{Text: "a"}, noteAdded{Text: "b"})
	next := request(t, s, existing, 1, noteAdded{Text: "v2"})
	stale := request(t, s, existing, 1, noteAdded{Text: "also v2"}) // same stream, same expected version
	mistyped := request(t, s, wrongType, 2, tallied{By: 1})
	s.commit([]*appendRequest{fresh, next, stale})

	if err := <-fresh.done; err != nil {
		t.Errorf("new stream: %v", err)
	}
	if err := <-next.done; err != nil {
		t.Errorf("next version: %v", err)
	}
	var ce *ConcurrencyError
	if err := <-stale.done; !errors.As(err, &ce) || ce.Actual != 2 {
		t.Errorf("second append at the same version: err = %v, want a conflict at version 2", err)
	}
	if fresh.recs[0].TxID != next.recs[0].TxID {
		t.Errorf("one batch committed in transactions %d and %d, want one", fresh.recs[0].TxID, next.recs[0].TxID)
	}

	// A batch that fails as a whole (here: an append to a stream of another
	// type) is retried append by append, so the innocent ones commit.
	innocent := request(t, s, Stream{Type: "note", ID: uuid.New()}, 0, noteAdded{Text: "innocent"})
	s.commit([]*appendRequest{innocent, mistyped})
	if err := <-innocent.done; err != nil {
		t.Errorf("innocent append in a failed batch: %v", err)
	}
	var typeErr *StreamTypeError
	if err := <-mistyped.done; !errors.As(err, &typeErr) {
		t.Errorf("mistyped append: err = %v, want a StreamTypeError", err)
	}
	if v := streamVersion(t, s, innocent.stream.ID); v != 1 {
		t.Errorf("innocent stream at version %d, want 1", v)
	}
	if v := streamVersion(t, s, existing.ID); v != 2 {
		t.Errorf("existing stream at version %d, want 2", v)
	}
}

func TestCloseAnswersEveryAppendAndRefusesLaterOnes(t *testing.T) {
	s, _ := newTestStore(t, Options{})
	ctx := context.Background()
	var wg sync.WaitGroup
	type outcome struct {
		stream uuid.UUID
		err    error
	}
	outcomes := make(chan outcome, 20)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := uuid.New()
			_, err := s.Append(ctx, Stream{Type: "note", ID: id}, 0, testMeta, noteAdded{Text: "x"})
			outcomes <- outcome{id, err}
		}()
	}
	s.Close()
	wg.Wait() // every Append returned: none was left waiting forever
	close(outcomes)
	for o := range outcomes {
		switch {
		case o.err == nil:
			// Reported committed: it must be in the log.
			if _, v, err := s.Load(ctx, o.stream); err != nil || v != 1 {
				t.Errorf("append reported committed during Close is not stored (version %d, %v)", v, err)
			}
		case !errors.Is(o.err, ErrClosed):
			t.Errorf("append racing Close: %v", o.err)
		}
	}
	for range 50 { // the refusal must not depend on a lucky select
		if _, err := s.Append(ctx, Stream{Type: "note", ID: uuid.New()}, 0, testMeta, noteAdded{Text: "x"}); !errors.Is(err, ErrClosed) {
			t.Fatalf("append after Close: err = %v, want ErrClosed", err)
		}
	}
	if _, err := s.Append(ctx, Stream{Type: "note", ID: uuid.New()}, 0, testMeta, noteAdded{Text: "x"}); !errors.Is(err, ErrClosed) {
		t.Errorf("append after Close: err = %v, want ErrClosed", err)
	}
}

func TestAnAppendWhoseContextEndedBeforeItsBatchIsNotWritten(t *testing.T) {
	s, _ := newTestStore(t, Options{})
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	r := request(t, s, Stream{Type: "note", ID: uuid.New()}, 0, noteAdded{Text: "x"})
	r.ctx = gone
	s.commit([]*appendRequest{r})
	if err := <-r.done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if v := streamVersion(t, s, r.stream.ID); v != 0 {
		t.Errorf("a cancelled append was written (version %d)", v)
	}
}

func TestALostReplyIsSettledByLookingTheEventsUp(t *testing.T) {
	s, pool := newTestStore(t, Options{})
	ctx := context.Background()
	committed := request(t, s, Stream{Type: "note", ID: uuid.New()}, 0, noteAdded{Text: "made it"}, noteAdded{Text: "also"})
	lost := request(t, s, Stream{Type: "note", ID: uuid.New()}, 0, noteAdded{Text: "never arrived"})
	// The first append commits, but as far as the committer knows the
	// connection broke before the reply.
	if _, err := s.run(ctx, pool, []*appendRequest{committed}); err != nil {
		t.Fatal(err)
	}
	s.settle([]*appendRequest{committed, lost}, errors.New("read tcp: connection reset by peer"))

	if err := <-committed.done; err != nil {
		t.Fatalf("a committed append was reported as %v", err)
	}
	if committed.recs[1].StreamVersion != 2 || committed.recs[0].Position == 0 {
		t.Errorf("settled records lack their stored places: %+v", committed.recs)
	}
	if err := <-lost.done; !errors.Is(err, ErrOutcomeUnknown) {
		t.Errorf("an append not found after a lost reply: err = %v, want ErrOutcomeUnknown", err)
	}
}

func TestRefusedTellsAnAnsweredFailureFromALostReply(t *testing.T) {
	if !refused(&pgconn.PgError{Code: "23505"}) {
		t.Error("a database error must count as refused: nothing was committed")
	}
	if refused(errors.New("read tcp: connection reset by peer")) {
		t.Error("a broken connection must not count as refused: the batch may have committed")
	}
}

func TestTextWithANULCharacterIsRefusedBeforeItReachesABatch(t *testing.T) {
	s, _ := newTestStore(t, Options{})
	_, err := s.Append(context.Background(), Stream{Type: "note", ID: uuid.New()}, 0, testMeta, noteAdded{Text: "a\x00b"})
	if err == nil || !strings.Contains(err.Error(), "NUL") {
		t.Fatalf("err = %v, want a NUL refusal", err)
	}
	if _, err := s.Append(context.Background(), Stream{Type: "note", ID: uuid.New()}, 0, testMeta, noteAdded{Text: `a literal \u0000 is fine`}); err != nil {
		t.Errorf("the text \\u0000 was mistaken for a NUL: %v", err)
	}
}

func TestHasNUL(t *testing.T) {
	tests := []struct {
		json string
		want bool
	}{
		{`{"a":"x\u0000y"}`, true},
		{`{"a":"x\\u0000y"}`, false},
		{`{"a":"x\\\u0000y"}`, true},
		{`{"a":"\u00001"}`, true},
		{`{"a":"\u0001"}`, false},
		{`{"a":"\\"}`, false},
	}
	for _, tt := range tests {
		if got := hasNUL([]byte(tt.json)); got != tt.want {
			t.Errorf("hasNUL(%s) = %v, want %v", tt.json, got, tt.want)
		}
	}
}

func TestGatherWaitsForExpectedAppendsButNeverPastItsWindow(t *testing.T) {
	first := &appendRequest{}

	// A lone writer: nothing expected, no wait even with a long window.
	s := &Store{queue: make(chan *appendRequest, maxBatch), gatherWindow: time.Hour}
	if got := s.gather(first, 1); len(got) != 1 {
		t.Fatalf("gather = %d appends, want 1", len(got))
	}
	// Expected appends that arrive within the window join the batch.
	go func() {
		for range 3 {
			s.queue <- &appendRequest{}
		}
	}()
	if got := s.gather(first, 4); len(got) != 4 {
		t.Errorf("gather = %d appends, want the 4 expected", len(got))
	}
	// Expected appends that never come cost the window, no more.
	s = &Store{queue: make(chan *appendRequest, maxBatch), gatherWindow: 20 * time.Millisecond}
	start := time.Now()
	if got := s.gather(first, 8); len(got) != 1 {
		t.Errorf("gather = %d appends, want 1", len(got))
	}
	if elapsed := time.Since(start); elapsed < 20*time.Millisecond || elapsed > 2*time.Second {
		t.Errorf("gather gave up after %v, want about its 20ms window", elapsed)
	}
}
