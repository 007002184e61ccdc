package eventstore

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/presente-dispatch/presente/domain"
)

func TestTransactCommitsEveryStreamInOneTransaction(t *testing.T) {
	s, _ := newTestStore(t, Options{})
	ctx := context.Background()
	a, b := uuid.New(), uuid.New()
	recs, err := s.Transact(ctx, Metadata{Actor: "test"}, func(context.Context, Loader) ([]StreamAppend, error) {
		return []StreamAppend{
			{Stream: Stream{Type: "note", ID: a}, Events: []domain.Event{noteAdded{Text: "a1"}, noteAdded{Text: "a2"}}},
			{Stream: Stream{Type: "tally", ID: b}, Events: []domain.Event{tallied{By: 1}}},
		}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || len(recs[0]) != 2 || len(recs[1]) != 1 || recs[0][0].StreamID != a || recs[1][0].StreamID != b {
		t.Fatalf("recorded = %+v, want a's two events then b's one, in the order given", recs)
	}
	if recs[0][0].TxID != recs[1][0].TxID || recs[0][0].Metadata.CorrelationID != recs[1][0].Metadata.CorrelationID {
		t.Error("the streams' events were not written by one transaction under one correlation id")
	}
}

func TestTransactWritesNothingWhenOneStreamMoved(t *testing.T) {
	s, _ := newTestStore(t, Options{MaxAttempts: 2})
	ctx := context.Background()
	a, b := uuid.New(), uuid.New()
	for _, id := range []uuid.UUID{a, b} {
		if _, err := s.Append(ctx, Stream{Type: "note", ID: id}, 0, testMeta, noteAdded{Text: "first"}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := s.Transact(ctx, testMeta, func(context.Context, Loader) ([]StreamAppend, error) {
		return []StreamAppend{
			{Stream: Stream{Type: "note", ID: a}, Expected: 1, Events: []domain.Event{noteAdded{Text: "would be second"}}},
			{Stream: Stream{Type: "note", ID: b}, Expected: 0, Events: []domain.Event{noteAdded{Text: "stale"}}},
		}, nil
	})
	var conflict *ConcurrencyError
	if !errors.As(err, &conflict) || conflict.StreamID != b || conflict.Actual != 1 {
		t.Fatalf("err = %v, want a ConcurrencyError on %s at version 1", err, b)
	}
	if v := streamVersion(t, s, a); v != 1 {
		t.Errorf("stream a is at version %d: part of a refused transaction was committed", v)
	}
}

var errPoolFull = errors.New("the pool is full")

// TestTransactKeepsARuleThatSpansStreams races 20 commands that each take
// a place from a pool of 5 (one stream) and record it on a stream of their
// own: exactly 5 win, each with its own record, and the pool holds 5.
func TestTransactKeepsARuleThatSpansStreams(t *testing.T) {
	s, _ := newTestStore(t, Options{})
	ctx := context.Background()
	pool := uuid.New()
	const contenders, places = 20, 5
	errs := make([]error, contenders)
	mine := make([]uuid.UUID, contenders)
	var wg sync.WaitGroup
	for i := range contenders {
		mine[i] = uuid.New()
		wg.Go(func() {
			_, errs[i] = s.Transact(ctx, testMeta, func(ctx context.Context, load Loader) ([]StreamAppend, error) {
				taken, version, err := load(ctx, pool)
				if err != nil {
					return nil, err
				}
				if len(taken) >= places {
					return nil, errPoolFull
				}
				return []StreamAppend{
					{Stream: Stream{Type: "tally", ID: pool}, Expected: version, Events: []domain.Event{tallied{By: 1}}},
					{Stream: Stream{Type: "note", ID: mine[i]}, Events: []domain.Event{noteAdded{Text: "got a place"}}},
				}, nil
			})
		})
	}
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
			if streamVersion(t, s, mine[i]) != 1 {
				t.Errorf("contender %d won but has no record", i)
			}
		case errors.Is(err, errPoolFull):
			if streamVersion(t, s, mine[i]) != 0 {
				t.Errorf("contender %d lost but its record was written", i)
			}
		default:
			t.Errorf("contender %d: %v", i, err)
		}
	}
	if won != places || streamVersion(t, s, pool) != places {
		t.Errorf("%d won and the pool holds %d, want %d and %d", won, streamVersion(t, s, pool), places, places)
	}
}
