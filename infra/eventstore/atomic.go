package eventstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/presente-dispatch/presente/domain"
)

// StreamAppend is one stream's part of an atomic append: the events to
// add and the version the stream must be at.
type StreamAppend struct {
	Stream   Stream
	Expected int64
	Events   []domain.Event
}

// Loader reads a stream inside a Transact, locking it until the
// transaction ends: it returns the stream's events and version. Personal
// data stays sealed (as stored): decisions never need it, and revealing it
// would need a second connection while this one holds locks. A command
// must therefore not copy a personal-data field from what it loaded into
// a new event.
type Loader func(ctx context.Context, streamID uuid.UUID) ([]Recorded, int64, error)

// lockStreamSQL locks a stream's row for the rest of the transaction.
const lockStreamSQL = `SELECT version FROM streams WHERE stream_id = $1 FOR UPDATE`

// Transact runs a command that spans streams (a volunteer claims a shift
// slot: the shift's capacity and the volunteer's other commitments) as one
// transaction: decide reads every stream it needs through load, which locks
// each until the end, decides, and returns the appends at the versions it
// read; they are written in the same transaction. Commands on the same
// streams therefore queue on their locks instead of racing and retrying, so
// two hundred volunteers claiming one shift at once are served one after
// another, each on the shift as the previous one left it.
//
// A stream that did not exist when read cannot be locked: if another
// command creates it first, or two commands lock streams in opposite
// orders and Postgres breaks the deadlock, decide runs again, at most
// Options.MaxAttempts times. A domain error from decide is returned as it
// is; a decide that returns no appends writes nothing. Commands should
// read streams in a fixed order of kinds (requests and shifts before
// volunteers) to keep deadlocks rare.
func (s *Store) Transact(ctx context.Context, meta Metadata, decide func(ctx context.Context, load Loader) ([]StreamAppend, error)) ([][]Recorded, error) {
	if meta.CorrelationID == uuid.Nil {
		meta.CorrelationID = s.newID() // the same id on every attempt
	}
	for attempt := 1; ; attempt++ {
		recorded, err := s.transactOnce(ctx, meta, decide)
		if !errors.Is(err, ErrConcurrency) && !isDeadlock(err) {
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

func isDeadlock(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001")
}

func (s *Store) transactOnce(ctx context.Context, meta Metadata, decide func(ctx context.Context, load Loader) ([]StreamAppend, error)) ([][]Recorded, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("transact: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // after Commit it does nothing
	load := func(ctx context.Context, id uuid.UUID) ([]Recorded, int64, error) {
		if _, err := tx.Exec(ctx, lockStreamSQL, id); err != nil {
			return nil, 0, fmt.Errorf("lock stream %s: %w", id, err)
		}
		return s.load(ctx, tx, id, s.scan)
	}
	appends, err := decide(ctx, load)
	if err != nil {
		return nil, err
	}
	reqs := make([]*appendRequest, 0, len(appends))
	seen := map[uuid.UUID]bool{}
	for _, a := range appends {
		if len(a.Events) == 0 {
			continue
		}
		if seen[a.Stream.ID] {
			return nil, fmt.Errorf("transact: stream %s appears twice: give all its events in one StreamAppend", a.Stream.ID)
		}
		seen[a.Stream.ID] = true
		req, err := s.prepare(ctx, a.Stream, a.Expected, meta, a.Events)
		if err != nil {
			return nil, err
		}
		req.done = make(chan error, 1)
		reqs = append(reqs, req)
	}
	if len(reqs) == 0 {
		return nil, nil
	}
	outcomes, err := s.run(ctx, tx, reqs)
	if err != nil {
		return nil, s.appendError(reqs[0].stream, err)
	}
	for _, o := range outcomes {
		if o != nil {
			return nil, o
		}
	}
	err = tx.Commit(ctx)
	if err == nil || !refused(err) {
		s.signalCommit()
	}
	if err != nil {
		if refused(err) {
			return nil, fmt.Errorf("transact: %w", err)
		}
		s.settle(reqs, err)
		for _, r := range reqs {
			if err := <-r.done; err != nil {
				return nil, err
			}
		}
	}
	out := make([][]Recorded, 0, len(reqs))
	for _, r := range reqs {
		out = append(out, r.recs)
	}
	return out, nil
}

// Fold folds recorded events with a decider: the state they leave. A
// record of another stream type is a StreamTypeError.
func Fold[S, C any](d domain.Decider[S, C], history []Recorded) (S, error) {
	state := d.Initial()
	for _, r := range history {
		if r.StreamType != d.StreamType {
			var zero S
			return zero, &StreamTypeError{StreamID: r.StreamID, Want: d.StreamType, Got: r.StreamType}
		}
		state = d.Evolve(state, r.Event)
	}
	return state, nil
}
