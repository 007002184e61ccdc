package eventstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/google/uuid"

	"github.com/presente-dispatch/presente/domain"
)

// StreamAppend is one stream's part of an atomic append: the events to
// add and the version the stream must be at.
type StreamAppend struct {
	Stream   Stream
	Expected int64
	Events   []domain.Event
}

// AppendAll appends to several streams in one transaction: all of the
// appends are committed, or none. A rule that spans aggregates (a
// volunteer may not hold two overlapping assignments; a request may not
// take more volunteers than it needs) is kept by deciding on every stream
// it reads and appending to all of them at the versions read: if any moved
// meanwhile, nothing is written and the caller gets a *ConcurrencyError.
// Every event shares meta, and so one correlation id.
//
// It bypasses group commit, which batches independent appends that
// succeed or fail alone. It returns each append's recorded events in the
// order given.
func (s *Store) AppendAll(ctx context.Context, meta Metadata, appends ...StreamAppend) ([][]Recorded, error) {
	if len(appends) == 0 {
		return nil, errors.New("append all: no appends given")
	}
	if meta.CorrelationID == uuid.Nil {
		meta.CorrelationID = s.newID()
	}
	reqs := make([]*appendRequest, len(appends))
	seen := make(map[uuid.UUID]bool, len(appends))
	for i, a := range appends {
		if seen[a.Stream.ID] {
			return nil, fmt.Errorf("append all: stream %s appears twice: give all its events in one StreamAppend", a.Stream.ID)
		}
		seen[a.Stream.ID] = true
		req, err := s.prepare(ctx, a.Stream, a.Expected, meta, a.Events)
		if err != nil {
			return nil, err
		}
		req.done = make(chan error, 1)
		reqs[i] = req
	}
	// Streams are locked in id order, as group commit locks them, so two
	// transactions over the same streams never deadlock.
	ordered := slices.Clone(reqs)
	slices.SortFunc(ordered, func(a, b *appendRequest) int { return cmp.Compare(a.stream.ID.String(), b.stream.ID.String()) })

	if err := s.appendAll(ctx, ordered); err != nil {
		return nil, err
	}
	out := make([][]Recorded, len(reqs))
	for i, r := range reqs {
		out[i] = r.recs
	}
	return out, nil
}

// appendAll runs the appends in one transaction and commits it only if
// every one of them found its stream at the expected version.
func (s *Store) appendAll(ctx context.Context, reqs []*appendRequest) error {
	// Close waits for this transaction, as it waits for queued appends.
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("append all: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // after Commit it does nothing
	outcomes, err := s.run(ctx, tx, reqs)
	if err != nil {
		return s.appendError(reqs[0].stream, err)
	}
	for _, o := range outcomes {
		if o != nil {
			return o // nothing is committed: the deferred rollback undoes the rest
		}
	}
	err = tx.Commit(ctx)
	switch {
	case err == nil:
		return nil
	case refused(err):
		return fmt.Errorf("append all: %w", err)
	}
	// The commit's reply was lost: the events are in the log or not, all
	// together; look for them.
	s.settle(reqs, err)
	for _, r := range reqs {
		if err := <-r.done; err != nil {
			return err
		}
	}
	return nil
}

// Transact runs a command that spans streams: decide loads what it needs,
// decides, and returns the appends at the versions it loaded; Transact
// appends them atomically. When another writer moved one of the streams
// first it runs decide again on fresh state, at most Options.MaxAttempts
// times in all. A domain error from decide is returned as it is and never
// retried; a decide that returns no appends appends nothing.
func (s *Store) Transact(ctx context.Context, meta Metadata, decide func(ctx context.Context) ([]StreamAppend, error)) ([][]Recorded, error) {
	if meta.CorrelationID == uuid.Nil {
		meta.CorrelationID = s.newID() // the same id on every attempt
	}
	for attempt := 1; ; attempt++ {
		appends, err := decide(ctx)
		if err != nil {
			return nil, err
		}
		appends = slices.DeleteFunc(appends, func(a StreamAppend) bool { return len(a.Events) == 0 })
		if len(appends) == 0 {
			return nil, nil
		}
		recorded, err := s.AppendAll(ctx, meta, appends...)
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
