package eventstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Group commit.
//
// Appends from concurrent commands wait in one queue. A committer goroutine
// takes whatever is waiting (up to maxBatch appends) and sends it to
// Postgres as one append_events call, one statement and so one transaction.
// A batch thus costs one round trip, one function call and one commit (one
// WAL flush) however many commands it carries; while it is in flight the
// next batch gathers. That is what lets appends keep up with a plain INSERT.
//
// Each append still stands alone: append_events reports a version conflict
// as a row, not an error, so a losing command never aborts the others. If a
// batch fails as a whole, each of its appends is retried alone with the same
// event ids, so none is lost or written twice (event_id is unique). No
// caller hears of success before the batch's commit has returned.
//
// Appends within a batch are sent in stream-id order, so that batches of
// several committers (Options.Committers) lock streams in one global order
// and cannot deadlock one another.

const (
	maxBatch      = 64
	commitTimeout = 30 * time.Second
)

// ErrClosed is returned by appends made after Close.
var ErrClosed = errors.New("the event store is closed")

func (s *Store) startCommitters(n int) {
	if n <= 0 {
		n = 2 // measured best on 2 cores: see docs/BENCHMARKS.md
	}
	s.queue = make(chan *appendRequest, maxBatch*n)
	s.stopped = make(chan struct{})
	for range n {
		s.committers.Add(1)
		go s.commitLoop()
	}
}

// enqueue hands an append to the committers.
func (s *Store) enqueue(ctx context.Context, r *appendRequest) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	select {
	case s.queue <- r:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close commits the appends already queued, then stops the committers.
// Appends after Close fail with ErrClosed.
func (s *Store) Close() {
	s.stopOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		close(s.stopped)
	})
	s.committers.Wait()
}

func (s *Store) commitLoop() {
	defer s.committers.Done()
	for {
		var first *appendRequest
		select {
		case first = <-s.queue:
		case <-s.stopped:
			// Nothing enters the queue any more: commit what is left.
			for batch := s.gather(nil); len(batch) > 0; batch = s.gather(nil) {
				s.commit(batch)
			}
			return
		}
		s.commit(s.gather(first))
	}
}

// gather takes first (if any) and whatever else is waiting, up to maxBatch.
func (s *Store) gather(first *appendRequest) []*appendRequest {
	var batch []*appendRequest
	if first != nil {
		batch = append(batch, first)
	}
	for len(batch) < maxBatch {
		select {
		case r := <-s.queue:
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

// commit sends one batch and reports each append's outcome.
func (s *Store) commit(batch []*appendRequest) {
	live := batch[:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.done <- fmt.Errorf("append to stream %s: %w", r.stream.ID, err)
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	slices.SortStableFunc(live, func(a, b *appendRequest) int {
		return cmp.Compare(a.stream.ID.String(), b.stream.ID.String())
	})

	outcomes, err := s.send(live)
	if err == nil {
		for i, r := range live {
			r.done <- outcomes[i]
		}
		return
	}
	if len(live) == 1 {
		live[0].done <- s.appendError(live[0].stream, err)
		return
	}
	// The batch failed as a whole: let each append succeed or fail alone.
	for _, r := range live {
		outcomes, err := s.send([]*appendRequest{r})
		if err != nil {
			r.done <- s.appendError(r.stream, err)
			continue
		}
		r.done <- outcomes[0]
	}
}

// send commits a batch as one statement, its own transaction. It returns
// each append's own outcome (nil or a *ConcurrencyError) once the
// transaction has committed, or an error when the batch as a whole did not.
func (s *Store) send(batch []*appendRequest) ([]error, error) {
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	defer cancel()
	start := time.Now()
	outcomes, err := s.run(ctx, s.pool, batch)
	if err != nil {
		return nil, err
	}
	s.metrics.observeCommit(time.Since(start), len(batch))
	return outcomes, nil
}
