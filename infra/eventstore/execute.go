package eventstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"

	"github.com/presente-dispatch/presente/domain"
)

// Execute runs one command against the stream it addresses: it loads the
// stream, folds it with the decider, decides, and appends the new events at
// the version it loaded. When another writer appended first it reloads and
// decides again, at most Options.MaxAttempts times in all, so the decision
// is always taken on the stream as it really is.
//
// A domain error from Decide is returned as it is and never retried. A
// command that decides no events returns (nil, nil) and appends nothing.
func Execute[S, C any](ctx context.Context, s *Store, d domain.Decider[S, C], streamID uuid.UUID, cmd C, meta Metadata) ([]Recorded, error) {
	if meta.CorrelationID == uuid.Nil {
		meta.CorrelationID = s.newID() // the same id on every attempt
	}
	for attempt := 1; ; attempt++ {
		history, version, err := s.Load(ctx, streamID)
		if err != nil {
			return nil, err
		}
		past := make([]domain.Event, len(history))
		for i, r := range history {
			if r.StreamType != d.StreamType {
				return nil, &StreamTypeError{StreamID: streamID, Want: d.StreamType, Got: r.StreamType}
			}
			past[i] = r.Event
		}
		events, err := d.Decide(d.Fold(past), cmd)
		if err != nil {
			return nil, err
		}
		if len(events) == 0 {
			return nil, nil
		}
		recorded, err := s.Append(ctx, Stream{Type: d.StreamType, ID: streamID}, version, meta, events...)
		if !errors.Is(err, ErrConcurrency) {
			return recorded, err
		}
		if attempt >= s.maxAttempts {
			return nil, fmt.Errorf("gave up after %d attempts: %w", attempt, err)
		}
		if err := backoff(ctx, attempt); err != nil {
			return nil, err
		}
	}
}

// backoff waits a short, jittered, growing time so that writers colliding
// on one stream spread out instead of colliding again in lockstep.
func backoff(ctx context.Context, attempt int) error {
	d := time.Duration(attempt) * time.Millisecond
	d += time.Duration(rand.Int64N(int64(d)))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
