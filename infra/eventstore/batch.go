package eventstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
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
// as a row, not an error, so a losing command never aborts the others. When
// Postgres refuses a batch as a whole, nothing of it was committed and each
// append is retried alone. When the reply is lost (a broken connection, a
// timeout), the batch may or may not have committed: each append's event
// ids are looked up, and an append is reported committed only if its events
// are there, and as ErrOutcomeUnknown otherwise — never as a conflict, and
// never retried blindly. No caller hears of success before the commit.
//
// Appends within a batch are sent in stream-id order, so that batches of
// several committers (Options.Committers) lock streams in one global order
// and cannot deadlock one another.

const (
	maxBatch      = 64
	commitTimeout = 30 * time.Second
	// gatherWindow bounds how long a committer waits for the appends it
	// expects (see gather) before sending what it has.
	gatherWindow = 200 * time.Microsecond
)

// ErrClosed is returned by appends made after Close.
var ErrClosed = errors.New("the event store is closed")

// ErrOutcomeUnknown reports an append whose batch lost its reply from the
// database and whose events could not be found afterwards: it may still
// have been committed. Reload the stream before deciding again.
var ErrOutcomeUnknown = errors.New("the database did not confirm the append and it could not be found: it may or may not have been saved")

func (s *Store) startCommitters(n int) {
	if n <= 0 {
		n = 1 // measured best on 2 cores: see docs/BENCHMARKS.md
	}
	s.gatherWindow = gatherWindow
	s.queue = make(chan *appendRequest, maxBatch*n)
	s.closing = make(chan struct{})
	s.stopped = make(chan struct{})
	for range n {
		s.committers.Add(1)
		go s.commitLoop()
	}
}

// enqueue hands an append to the committers. It holds the read lock while
// it waits for room in the queue, so Close cannot finish under it, but it
// also watches closing, so Close never waits on a blocked sender.
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
	case <-s.closing:
		return ErrClosed
	}
}

// Close commits the appends already queued, then stops the committers.
// Appends after Close fail with ErrClosed.
func (s *Store) Close() {
	s.stopOnce.Do(func() {
		close(s.closing)
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		close(s.stopped)
	})
	s.committers.Wait()
}

func (s *Store) commitLoop() {
	defer s.committers.Done()
	last := 0 // size of this committer's previous batch
	for {
		var first *appendRequest
		expect := last
		select {
		case first = <-s.queue:
			// Appends were already waiting: they came from writers other
			// than the previous batch's, who will be back too.
			expect += len(s.queue) + 1
		default:
			// Nothing waiting: every writer was in the previous batch.
			select {
			case first = <-s.queue:
			case <-s.stopped:
				// Nothing enters the queue any more: commit what is left.
				for batch := s.gather(nil, 0); len(batch) > 0; batch = s.gather(nil, 0) {
					s.commit(batch)
				}
				return
			}
		}
		batch := s.gather(first, expect)
		last = len(batch)
		s.commit(batch)
	}
}

// gather takes first (if any) and whatever else is waiting, up to
// maxBatch. When more appends are expected — the callers of the previous
// batch are likely to send their next ones within microseconds — it waits,
// like PostgreSQL's commit_delay, up to gatherWindow for that many, so that
// one commit serves them all. A lone writer (expect of one) never waits.
func (s *Store) gather(first *appendRequest, expect int) []*appendRequest {
	var batch []*appendRequest
	if first != nil {
		batch = append(batch, first)
	}
drain:
	for len(batch) < maxBatch {
		select {
		case r := <-s.queue:
			batch = append(batch, r)
		default:
			break drain
		}
	}
	want := min(expect, maxBatch)
	if want <= 1 || len(batch) >= want {
		return batch
	}
	timer := time.NewTimer(s.gatherWindow)
	defer timer.Stop()
	for len(batch) < want {
		select {
		case r := <-s.queue:
			batch = append(batch, r)
		case <-timer.C:
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
	// Whatever the outcome, some events may have been committed: waking
	// followers for nothing costs one read, missing a commit costs a delay.
	defer s.signalCommit()
	switch {
	case err == nil:
		for i, r := range live {
			r.done <- outcomes[i]
		}
	case !refused(err):
		s.settle(live, err)
	case len(live) == 1:
		live[0].done <- s.appendError(live[0].stream, err)
	default:
		// Postgres refused the batch as a whole, so none of it committed:
		// let each append succeed or fail alone.
		for _, r := range live {
			outcomes, err := s.send([]*appendRequest{r})
			switch {
			case err == nil:
				r.done <- outcomes[0]
			case !refused(err):
				s.settle([]*appendRequest{r}, err)
			default:
				r.done <- s.appendError(r.stream, err)
			}
		}
	}
}

// refused tells whether err proves that a batch was not committed: the
// database answered with an error, or nothing was sent at all.
func refused(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) || pgconn.SafeToRetry(err)
}

// settle answers appends whose batch lost its reply: an append whose
// events are in the log was committed; any other may or may not have been.
func (s *Store) settle(batch []*appendRequest, cause error) {
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	defer cancel()
	var ids []uuid.UUID
	for _, r := range batch {
		ids = append(ids, r.ids...)
	}
	found := map[uuid.UUID]Recorded{}
	rows, err := s.pool.Query(ctx, `SELECT event_id, position, tx_id, stream_version, recorded_at FROM events WHERE event_id = ANY($1)`, ids)
	if err == nil {
		for rows.Next() {
			var r Recorded
			if err = rows.Scan(&r.EventID, &r.Position, &r.TxID, &r.StreamVersion, &r.RecordedAt); err != nil {
				break
			}
			found[r.EventID] = r
		}
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
	}
	for _, r := range batch {
		stored, ok := found[r.ids[0]]
		if err != nil || !ok {
			r.done <- fmt.Errorf("append to stream %s: %w (%v)", r.stream.ID, ErrOutcomeUnknown, cause)
			continue
		}
		for i := range r.recs {
			stored = found[r.ids[i]]
			r.recs[i].Position, r.recs[i].TxID, r.recs[i].StreamVersion, r.recs[i].RecordedAt =
				stored.Position, stored.TxID, stored.StreamVersion, stored.RecordedAt
		}
		r.done <- nil
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
