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
		state, version, err := LoadState(ctx, s, d, streamID)
		if err != nil {
			return nil, err
		}
		events, err := d.Decide(state, cmd)
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

// LoadState loads a stream and folds it with the decider: the aggregate's
// current state and the stream's version. A stream of another type is a
// StreamTypeError; a missing stream is the decider's initial state at
// version 0.
func LoadState[S, C any](ctx context.Context, s *Store, d domain.Decider[S, C], streamID uuid.UUID) (S, int64, error) {
	return fold(d)(s.Load(ctx, streamID))
}

// LoadSealedState is LoadState over LoadSealed: personal data stays sealed.
func LoadSealedState[S, C any](ctx context.Context, s *Store, d domain.Decider[S, C], streamID uuid.UUID) (S, int64, error) {
	return fold(d)(s.LoadSealed(ctx, streamID))
}

// fold folds what a load returned with d.
func fold[S, C any](d domain.Decider[S, C]) func([]Recorded, int64, error) (S, int64, error) {
	return func(history []Recorded, version int64, err error) (S, int64, error) {
		if err != nil {
			var zero S
			return zero, 0, err
		}
		state, err := Fold(d, history)
		return state, version, err
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
