package privacy

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	privacydomain "github.com/presente-dispatch/presente/domain/privacy"
	"github.com/presente-dispatch/presente/domain/retention"
	"github.com/presente-dispatch/presente/infra/eventstore"
)

// Defaults of RetentionOptions.
const (
	DefaultPeriod   = 30 * 24 * time.Hour
	DefaultInterval = time.Hour
)

// firstRunDelay bounds how long Start waits before its first run: long
// enough for the server to come up, short enough that a restart never
// postpones retention by a whole interval.
const firstRunDelay = time.Minute

// retentionActor is who the log says forgot a subject whose retention ran out.
const retentionActor = "system:retention"

// pendingBatch bounds how many subject ids one query checks.
const pendingBatch = 5000

// Source lists the subjects whose retention has run out: for instance the
// people of the requests closed before cutoff. Due may list a subject
// again on every run (a closed request stays closed); subjects already
// forgotten are skipped. Its errors must not carry personal data.
type Source struct {
	// Name says what the source covers ("closed requests"), in errors and logs.
	Name string
	Due  func(ctx context.Context, cutoff time.Time) ([]uuid.UUID, error)
}

// RetentionOptions configure a Retention. The zero value of every field
// but Sources is ready for production.
type RetentionOptions struct {
	// Period is how long personal data is kept after what it was for has
	// ended; DefaultPeriod when zero.
	Period time.Duration
	// Interval is the time between runs of Start; DefaultInterval when zero.
	Interval time.Duration
	// Clock gives the time runs and holds are taken at; time.Now when nil.
	Clock func() time.Time
	// Logger receives Start's reports; they hold counts, never subject ids.
	// Nothing is logged when nil.
	Logger *zap.Logger
	// Sources list the subjects that are due.
	Sources []Source
}

// Retention forgets the subjects whose retention period has run out,
// unless a legal hold pauses it. Holds and runs are recorded in the
// retention stream (domain/retention). It is safe for concurrent use.
type Retention struct {
	pool     *pgxpool.Pool
	store    *eventstore.Store
	period   time.Duration
	interval time.Duration
	now      func() time.Time
	logger   *zap.Logger
	sources  []Source
}

// NewRetention returns a retention job over pool and store. The store
// must register the retention events and privacy.SubjectForgotten.
func NewRetention(pool *pgxpool.Pool, store *eventstore.Store, opts RetentionOptions) (*Retention, error) {
	if pool == nil || store == nil {
		return nil, errors.New("retention: a pool and an event store are required")
	}
	r := &Retention{pool: pool, store: store, period: opts.Period, interval: opts.Interval, now: opts.Clock, logger: opts.Logger}
	switch {
	case r.period < 0:
		return nil, fmt.Errorf("retention: the period %s is negative", r.period)
	case r.period == 0:
		r.period = DefaultPeriod
	}
	switch {
	case r.interval < 0:
		return nil, fmt.Errorf("retention: the interval %s is negative", r.interval)
	case r.interval == 0:
		r.interval = DefaultInterval
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.logger == nil {
		r.logger = zap.NewNop()
	}
	names := map[string]bool{}
	for i, s := range opts.Sources {
		switch {
		case s.Name == "":
			return nil, fmt.Errorf("retention: source %d has no name", i+1)
		case s.Due == nil:
			return nil, fmt.Errorf("retention: source %q has no Due function", s.Name)
		case names[s.Name]:
			return nil, fmt.Errorf("retention: two sources are named %q", s.Name)
		}
		names[s.Name] = true
	}
	r.sources = append([]Source(nil), opts.Sources...)
	return r, nil
}

// Run is what one retention run did.
type Run struct {
	// At is when the run started; data of what ended before Cutoff was due.
	At     time.Time
	Cutoff time.Time
	// OnHold tells that a legal hold stopped the run: before it began,
	// when nothing was forgotten, or part-way, when Forgotten lists those
	// forgotten before the hold was seen. A stopped run is not recorded:
	// each forgetting it did is, on the subject's stream.
	OnHold bool
	// HeldSince is when the hold that stopped the run was placed.
	HeldSince time.Time
	// Due counts the distinct subjects the sources listed.
	Due int
	// Skipped counts due subjects that had already been forgotten.
	Skipped int
	// Forgotten lists the subjects this run forgot.
	Forgotten []uuid.UUID
	// Failed counts due subjects that could not be forgotten; the next
	// run tries them again.
	Failed int
	// Recorded tells whether the run was recorded as RetentionRunCompleted.
	Recorded bool
}

// Run does one retention run: unless a legal hold is in place, it asks
// every source for the subjects due at now minus the period, forgets those
// not yet forgotten (checking before each one that no hold has been placed
// meanwhile), and records the run.
//
// A failing source or subject does not stop the others: the run goes on,
// is recorded, and the error says what failed. The Run result is valid
// whether or not an error is returned. Errors may name subject ids.
func (r *Retention) Run(ctx context.Context) (Run, error) {
	now := r.now().UTC()
	run := Run{At: now, Cutoff: now.Add(-r.period)}
	state, version, err := r.load(ctx)
	if err != nil {
		return run, err
	}
	if state.OnHold {
		run.OnHold, run.HeldSince = true, state.HeldSince
		return run, nil
	}

	due, sourceErr := r.due(ctx, run.Cutoff)
	run.Due = len(due)
	pending, err := r.pending(ctx, due)
	if err != nil {
		return run, errors.Join(sourceErr, err)
	}
	run.Skipped = len(due) - len(pending)

	// One correlation id ties the run to every forgetting it did.
	meta := eventstore.Metadata{Actor: retentionActor, Reason: string(privacydomain.ReasonRetention), CorrelationID: newID()}
	var failures []error
	for _, subject := range pending {
		held, since, err := r.held(ctx, &version)
		if err != nil {
			return run, errors.Join(sourceErr, failed(failures, len(pending)), err)
		}
		if held {
			run.OnHold, run.HeldSince = true, since
			return run, errors.Join(sourceErr, failed(failures, len(pending)))
		}
		already, err := Forget(ctx, r.pool, r.store, subject, meta)
		switch {
		case err == nil && already:
			// Forgotten meanwhile, or forgotten before without the
			// forgetting being recorded, which Forget has now done.
			run.Skipped++
		case err == nil:
			run.Forgotten = append(run.Forgotten, subject)
		case ctx.Err() != nil:
			return run, errors.Join(sourceErr, failed(failures, len(pending)), ctx.Err())
		default:
			run.Failed++
			failures = append(failures, err)
		}
	}

	_, err = eventstore.Execute(ctx, r.store, retention.Decider, retention.StreamID, retention.Command(retention.RecordRun{
		At: run.At, Cutoff: run.Cutoff, Forgotten: run.Forgotten, Failed: run.Failed,
	}), meta)
	switch {
	case errors.Is(err, retention.ErrOnHold):
		// Placed after the last forgetting: the run is over, but a run
		// is never recorded under a hold.
		state, _, lerr := r.load(ctx)
		run.OnHold, run.HeldSince = true, state.HeldSince
		return run, errors.Join(sourceErr, failed(failures, len(pending)), lerr)
	case err != nil:
		return run, errors.Join(sourceErr, failed(failures, len(pending)), fmt.Errorf("record the retention run: %w", err))
	}
	run.Recorded = true
	return run, errors.Join(sourceErr, failed(failures, len(pending)))
}

// failed summarizes the subjects a run could not forget, or returns nil.
func failed(failures []error, of int) error {
	if len(failures) == 0 {
		return nil
	}
	return fmt.Errorf("%d of %d due subjects could not be forgotten, and are tried again on the next run; the first: %w",
		len(failures), of, failures[0])
}

// due asks every source for its due subjects and returns them once each,
// in the order listed. A failing source does not stop the others.
func (r *Retention) due(ctx context.Context, cutoff time.Time) ([]uuid.UUID, error) {
	var (
		out  []uuid.UUID
		errs []error
		seen = map[uuid.UUID]bool{}
	)
	for _, s := range r.sources {
		ids, err := s.Due(ctx, cutoff)
		if err != nil {
			errs = append(errs, fmt.Errorf("retention source %q: %w", s.Name, err))
			continue
		}
		for _, id := range ids {
			if id == uuid.Nil {
				errs = append(errs, fmt.Errorf("retention source %q listed the nil uuid as a subject", s.Name))
				continue
			}
			if !seen[id] {
				seen[id] = true
				out = append(out, id)
			}
		}
	}
	return out, errors.Join(errs...)
}

// doneSQL returns those of the given subjects with nothing left to do:
// their key is destroyed (keyring's tombstone) and their forgetting is
// recorded (their subject stream exists; it holds only that event). It
// reads two tables of other packages, subject_keys and streams, by their
// primary keys, because neither package offers a bulk question and a
// source lists the same subjects on every run.
const doneSQL = `SELECT d.subject_id
FROM unnest($1::uuid[], $2::uuid[]) AS d(subject_id, stream_id)
JOIN subject_keys k ON k.subject_id = d.subject_id AND k.wrapped_key IS NULL
JOIN streams s ON s.stream_id = d.stream_id AND s.stream_type = $3`

// pending returns the subjects of due that are still to be forgotten.
func (r *Retention) pending(ctx context.Context, due []uuid.UUID) ([]uuid.UUID, error) {
	done := map[uuid.UUID]bool{}
	for start := 0; start < len(due); start += pendingBatch {
		batch := due[start:min(start+pendingBatch, len(due))]
		streams := make([]uuid.UUID, len(batch))
		for i, id := range batch {
			streams[i] = privacydomain.StreamID(id)
		}
		rows, err := r.pool.Query(ctx, doneSQL, batch, streams, privacydomain.StreamType)
		if err != nil {
			return nil, fmt.Errorf("retention: find forgotten subjects: %w", err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
		if err != nil {
			return nil, fmt.Errorf("retention: find forgotten subjects: %w", err)
		}
		for _, id := range ids {
			done[id] = true
		}
	}
	out := make([]uuid.UUID, 0, len(due)-len(done))
	for _, id := range due {
		if !done[id] {
			out = append(out, id)
		}
	}
	return out, nil
}

// versionSQL reads the retention stream's version from the event store's
// streams table: one primary-key lookup, where loading the stream would
// read every run ever recorded.
const versionSQL = `SELECT version FROM streams WHERE stream_id = $1`

// held tells whether a legal hold is in place now, and since when. *known
// is the version of the retention stream last loaded, without a hold: the
// stream is loaded again only if it has changed since.
func (r *Retention) held(ctx context.Context, known *int64) (bool, time.Time, error) {
	var v int64
	err := r.pool.QueryRow(ctx, versionSQL, retention.StreamID).Scan(&v)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return false, time.Time{}, fmt.Errorf("retention: check for a legal hold: %w", err)
	}
	if v == *known {
		return false, time.Time{}, nil
	}
	state, version, err := r.load(ctx)
	if err != nil {
		return false, time.Time{}, err
	}
	*known = version
	return state.OnHold, state.HeldSince, nil
}

// load folds the retention stream.
func (r *Retention) load(ctx context.Context) (retention.State, int64, error) {
	recs, version, err := r.store.Load(ctx, retention.StreamID)
	if err != nil {
		return retention.State{}, 0, fmt.Errorf("retention: %w", err)
	}
	state := retention.Decider.Initial()
	for _, rec := range recs {
		if rec.StreamType != retention.StreamType {
			return retention.State{}, 0, &eventstore.StreamTypeError{StreamID: rec.StreamID, Want: retention.StreamType, Got: rec.StreamType}
		}
		state = retention.Decider.Evolve(state, rec.Event)
	}
	return state, version, nil
}

// Start runs Run every interval, the first time shortly after it is
// called, until ctx ends; the returned channel is closed once it has
// stopped. Runs never overlap: the interval counts from the end of one
// run. Each run's outcome is logged with counts only, never subject ids.
func (r *Retention) Start(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		timer := time.NewTimer(min(r.interval, firstRunDelay))
		defer timer.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
			r.runAndLog(ctx)
			timer.Reset(r.interval)
		}
	}()
	return done
}

// runAndLog runs once and reports the outcome: the error boundary of Start.
func (r *Retention) runAndLog(ctx context.Context) {
	run, err := r.Run(ctx)
	if ctx.Err() != nil {
		return // shutting down: an interrupted run is not a failure
	}
	fields := []zap.Field{
		zap.Time("cutoff", run.Cutoff),
		zap.Int("due", run.Due),
		zap.Int("skipped", run.Skipped),
		zap.Int("forgotten", len(run.Forgotten)),
		zap.Int("failed", run.Failed),
		zap.Bool("recorded", run.Recorded),
	}
	if run.OnHold {
		fields = append(fields, zap.Time("held_since", run.HeldSince))
	}
	switch {
	case err != nil && run.Recorded:
		// The error may name subjects: log it without their ids.
		r.logger.Error("retention run incomplete", append(fields, zap.String("error", withoutIDs(err.Error())))...)
	case err != nil:
		r.logger.Error("retention run failed", append(fields, zap.String("error", withoutIDs(err.Error())))...)
	case run.OnHold:
		r.logger.Info("retention paused by a legal hold", fields...)
	case len(run.Forgotten) > 0:
		r.logger.Info("retention run", fields...)
	default:
		r.logger.Debug("retention run", fields...)
	}
}

var uuidText = regexp.MustCompile(`(?i)[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

// withoutIDs replaces every uuid in s, so a log line names no subject.
func withoutIDs(s string) string { return uuidText.ReplaceAllString(s, "[id]") }

// PlaceHold places a legal hold: nothing is forgotten automatically until
// it is lifted. reason is required and stored in the clear, forever: give
// a matter or case reference, never a person's name.
func (r *Retention) PlaceHold(ctx context.Context, actor, reason string) error {
	if reason == "" {
		return &retention.InvalidError{Field: "reason", Message: "is required: say why retention is paused (a matter or case reference, never a person's name)"}
	}
	_, err := eventstore.Execute(ctx, r.store, retention.Decider, retention.StreamID,
		retention.Command(retention.PlaceLegalHold{At: r.now().UTC()}), eventstore.Metadata{Actor: actor, Reason: reason})
	if err != nil {
		return fmt.Errorf("place a legal hold: %w", err)
	}
	return nil
}

// LiftHold lifts the legal hold, so retention resumes with the next run.
// reason is optional and, like a hold's, stored in the clear forever.
func (r *Retention) LiftHold(ctx context.Context, actor, reason string) error {
	_, err := eventstore.Execute(ctx, r.store, retention.Decider, retention.StreamID,
		retention.Command(retention.LiftLegalHold{At: r.now().UTC()}), eventstore.Metadata{Actor: actor, Reason: reason})
	if err != nil {
		return fmt.Errorf("lift the legal hold: %w", err)
	}
	return nil
}

// Status is retention as the log records it, and the period in force.
type Status struct {
	OnHold bool
	// HeldSince is when the current hold was placed; zero when not on hold.
	HeldSince time.Time
	// LastRun is when the last recorded run started; zero before the first.
	LastRun       time.Time
	LastForgotten int
	LastFailed    int
	Period        time.Duration
}

// Status reports whether retention is on hold and what its last run did.
func (r *Retention) Status(ctx context.Context) (Status, error) {
	s, _, err := r.load(ctx)
	if err != nil {
		return Status{}, err
	}
	return Status{
		OnHold: s.OnHold, HeldSince: s.HeldSince,
		LastRun: s.LastRun, LastForgotten: s.LastForgotten, LastFailed: s.LastFailed,
		Period: r.period,
	}, nil
}

// newID returns a time-ordered id for a run's correlation.
func newID() uuid.UUID {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.New()
	}
	return id
}
