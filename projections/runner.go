package projections

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/presente-dispatch/presente/infra/eventstore"
)

// ReadFunc reads up to limit events of the global log after a cursor, in
// commit-safe order: eventstore.Store.ReadAll, or a reader that leaves
// personal data sealed (projectors never need it).
type ReadFunc func(ctx context.Context, after eventstore.Cursor, limit int) ([]eventstore.Recorded, error)

// Options tune a Runner. The zero value is ready for production.
type Options struct {
	// PollInterval is how long a projection waits for a wake-up before
	// it reads the log anyway; one second when zero. Wake-ups come from
	// Runner.Wake and the Wake channel; polling only bounds the delay when
	// one is lost.
	PollInterval time.Duration
	// BatchSize is how many events one transaction applies; 500 when zero.
	// Rebuilds read ten times as many at once.
	BatchSize int
	// Wake, when set, wakes every projection each time it delivers (a
	// commit notification).
	Wake <-chan struct{}
	// Registerer receives the runner's metrics; none are exported when nil.
	Registerer prometheus.Registerer
	// Logger receives failures of the background loop; nothing is logged
	// when nil. Messages name projections and log positions, never data.
	Logger *zap.Logger
	// Clock gives the time lag is measured at; time.Now when nil.
	Clock func() time.Time
}

// Runner keeps projections up to date with the log, each in its own
// goroutine, and rebuilds them on demand. It is safe for concurrent use,
// and several runners (in several processes) may follow the same
// projection: each batch is applied once, whoever applies it.
type Runner struct {
	pool      *pgxpool.Pool
	read      ReadFunc
	all       []*projection
	byName    map[string]*projection
	poll      time.Duration
	batch     int
	wakeFrom  <-chan struct{}
	logger    *zap.Logger
	now       func() time.Time
	applied   *prometheus.CounterVec
	failures  *prometheus.CounterVec
	collector *lagCollector
}

// projection is one projector and what the runner knows of its progress.
type projection struct {
	p    Projector
	wake chan struct{}
	// step serializes catching up within this process.
	step sync.Mutex

	mu         sync.Mutex
	ready      bool // checkpoint found at this version and cursor loaded
	cursor     eventstore.Cursor
	advanced   chan struct{} // closed when cursor moves
	measured   bool
	lagEvents  int64
	oldest     time.Time // recorded time of the oldest unapplied event
	rebuilding bool
	problem    string
	err        error
}

// New returns a runner for projectors over pool, reading the log with
// read. Projector names must be distinct.
func New(pool *pgxpool.Pool, read ReadFunc, projectors []Projector, opts Options) (*Runner, error) {
	if pool == nil || read == nil {
		return nil, errors.New("projections: a pool and a log reader are required")
	}
	r := &Runner{pool: pool, read: read, byName: map[string]*projection{}, poll: opts.PollInterval,
		batch: opts.BatchSize, wakeFrom: opts.Wake, logger: opts.Logger, now: opts.Clock}
	switch {
	case r.poll < 0:
		return nil, fmt.Errorf("projections: poll interval %s is negative", r.poll)
	case r.poll == 0:
		r.poll = time.Second
	}
	switch {
	case r.batch < 0:
		return nil, fmt.Errorf("projections: batch size %d is negative", r.batch)
	case r.batch == 0:
		r.batch = 500
	}
	if r.logger == nil {
		r.logger = zap.NewNop()
	}
	r.logger = r.logger.Named("projections")
	if r.now == nil {
		r.now = time.Now
	}
	for _, p := range projectors {
		if err := check(p); err != nil {
			return nil, err
		}
		if _, dup := r.byName[p.Name()]; dup {
			return nil, fmt.Errorf("projections: two projectors are named %q", p.Name())
		}
		pr := &projection{p: p, wake: make(chan struct{}, 1), advanced: make(chan struct{}), problem: "not started"}
		r.all = append(r.all, pr)
		r.byName[p.Name()] = pr
	}
	if err := r.registerMetrics(opts.Registerer); err != nil {
		return nil, err
	}
	return r, nil
}

// Names lists the projections, in the order given to New.
func (r *Runner) Names() []string {
	out := make([]string, len(r.all))
	for i, pr := range r.all {
		out[i] = pr.p.Name()
	}
	return out
}

// UnknownError names a projection the runner does not have.
type UnknownError struct {
	Name  string
	Known []string
}

func (e *UnknownError) Error() string {
	return fmt.Sprintf("no projection is named %q: known are %v", e.Name, e.Known)
}

func (r *Runner) projection(name string) (*projection, error) {
	pr, ok := r.byName[name]
	if !ok {
		return nil, &UnknownError{Name: name, Known: r.Names()}
	}
	return pr, nil
}

// Wake makes every projection read the log now. It never blocks: wake-ups
// that arrive while a projection is busy are merged into one.
func (r *Runner) Wake() {
	for _, pr := range r.all {
		select {
		case pr.wake <- struct{}{}:
		default:
		}
	}
}

// Run keeps every projection up to date until ctx ends: it creates the
// tables of a projection seen for the first time, rebuilds one whose
// tables were built at an older version, then applies new events as they
// are committed. Failures are logged and retried at the poll interval;
// Status reports them. Run returns when ctx is done.
func (r *Runner) Run(ctx context.Context) {
	var wg sync.WaitGroup
	if r.wakeFrom != nil {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case _, ok := <-r.wakeFrom:
					if !ok {
						return
					}
					r.Wake()
				}
			}
		})
	}
	for _, pr := range r.all {
		wg.Go(func() { r.follow(ctx, pr) })
	}
	wg.Wait()
}

// Start runs Run in the background; the channel is closed once it has
// returned.
func (r *Runner) Start(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Run(ctx)
	}()
	return done
}

func (r *Runner) follow(ctx context.Context, pr *projection) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-pr.wake:
		case <-timer.C:
		}
		if err := r.catchUp(ctx, pr); err != nil && ctx.Err() == nil {
			r.logger.Error("projection failed; retrying", zap.String("projection", pr.p.Name()), zap.Error(err))
		}
		timer.Reset(r.poll)
	}
}

// CatchUp brings every projection up to the log as it is now visible,
// creating or rebuilding tables as Run does, and returns what failed.
// It serves commands that run once (presente rebuild) and tests.
func (r *Runner) CatchUp(ctx context.Context) error {
	var errs []error
	for _, pr := range r.all {
		errs = append(errs, r.catchUp(ctx, pr))
	}
	return errors.Join(errs...)
}

// catchUp prepares the projection if needed, applies every visible event
// and measures the lag.
func (r *Runner) catchUp(ctx context.Context, pr *projection) error {
	pr.step.Lock()
	defer pr.step.Unlock()
	err := r.prepare(ctx, pr)
	if err == nil {
		err = r.applyAll(ctx, pr)
	}
	if err != nil {
		r.failures.WithLabelValues(pr.p.Name()).Inc()
		pr.fail(err)
	}
	if merr := r.measure(ctx, pr); merr != nil && err == nil {
		err = merr
		pr.fail(err)
	}
	if err == nil {
		pr.healthy()
	}
	return err
}

// prepare makes sure the projection's tables exist at its version and
// loads its checkpoint.
func (r *Runner) prepare(ctx context.Context, pr *projection) error {
	pr.mu.Lock()
	ready := pr.ready
	pr.mu.Unlock()
	if ready {
		return nil
	}
	cursor, found, version, err := r.ensure(ctx, pr.p)
	if err != nil {
		return err
	}
	if found && version > pr.p.Version() {
		return &VersionError{Name: pr.p.Name(), Stored: version, Version: pr.p.Version()}
	}
	if found && version < pr.p.Version() {
		r.logger.Info("projection built at an older version: rebuilding",
			zap.String("projection", pr.p.Name()), zap.Int("from", version), zap.Int("to", pr.p.Version()))
		if err := r.rebuild(ctx, pr); err != nil {
			return err
		}
		if cursor, err = r.checkpoint(ctx, pr.p.Name()); err != nil {
			return err
		}
	}
	pr.mu.Lock()
	pr.ready = true
	pr.mu.Unlock()
	pr.moveTo(cursor)
	return nil
}

// VersionError reports tables built by a newer build than this one: this
// build leaves them alone rather than fight over them.
type VersionError struct {
	Name            string
	Stored, Version int
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("projection %s was built at version %d by a newer build; this build projects version %d and leaves it alone",
		e.Name, e.Stored, e.Version)
}

// Advisory-lock classes (the first key of the two-key form), so that these
// locks never meet another subsystem's.
const (
	lockPrepare int32 = 0x70726a31 // "prj1"
	lockRebuild int32 = 0x70726a32 // "prj2"
)

// ensure creates the projection's tables and checkpoint if it has none,
// and returns the checkpoint: its cursor, whether it existed, and the
// version it was built at.
func (r *Runner) ensure(ctx context.Context, p Projector) (c eventstore.Cursor, found bool, version int, err error) {
	err = pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, lockPrepare, p.Name()); err != nil {
			return err
		}
		err := tx.QueryRow(ctx, `SELECT version, tx_id, position FROM projection_checkpoints WHERE name = $1`, p.Name()).
			Scan(&version, &c.TxID, &c.Position)
		if err == nil {
			found = true
			return nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if err := createTables(ctx, tx, p, Live(p)); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO projection_checkpoints (name, version, tx_id, position, updated_at)
VALUES ($1, $2, '0', 0, now())`, p.Name(), p.Version())
		return err
	})
	if err != nil {
		return c, false, 0, fmt.Errorf("prepare projection %s: %w", p.Name(), err)
	}
	return c, found, version, nil
}

// createTables drops whatever holds the names and creates the tables anew,
// running every statement of DDL but those in later.
func createTables(ctx context.Context, tx pgx.Tx, p Projector, t Names, later ...string) error {
	for _, base := range p.Tables() {
		if _, err := tx.Exec(ctx, `DROP TABLE IF EXISTS `+t.Table(base)); err != nil {
			return err
		}
	}
	for _, stmt := range p.DDL(t) {
		if slices.Contains(later, stmt) {
			continue
		}
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("create tables: %w", err)
		}
	}
	return nil
}

func (r *Runner) checkpoint(ctx context.Context, name string) (eventstore.Cursor, error) {
	var c eventstore.Cursor
	err := r.pool.QueryRow(ctx, `SELECT tx_id, position FROM projection_checkpoints WHERE name = $1`, name).Scan(&c.TxID, &c.Position)
	if err != nil {
		return c, fmt.Errorf("read checkpoint of projection %s: %w", name, err)
	}
	return c, nil
}

// applyAll applies batches until the log has no more visible events.
func (r *Runner) applyAll(ctx context.Context, pr *projection) error {
	for {
		from := pr.at()
		batch, err := r.read(ctx, from, r.batch)
		if err != nil {
			return fmt.Errorf("projection %s: %w", pr.p.Name(), err)
		}
		if len(batch) == 0 {
			// Nothing new past where this runner stands: check that the
			// checkpoint has not moved back behind it (a PostgreSQL crash
			// losing the last read-model commits, which do not wait for
			// the disk; an operator's reset), or those events would wait
			// for the next one.
			stored, err := r.checkpoint(ctx, pr.p.Name())
			if err != nil {
				return fmt.Errorf("projection %s: %w", pr.p.Name(), err)
			}
			if !less(stored, from) {
				return nil
			}
			pr.moveTo(stored)
			continue
		}
		if err := r.apply(ctx, pr, from, batch); err != nil {
			return err
		}
		if len(batch) < r.batch {
			return nil
		}
	}
}

// errMoved tells that the checkpoint was moved back behind the batch read
// (an operator reset it): read again from there.
var errMoved = errors.New("checkpoint moved back")

// apply writes one batch, read after cursor from, and the checkpoint in one
// transaction. The checkpoint is locked and compared first: events another
// runner already applied are left out, so delivering a batch twice, or to
// two runners, applies each event once.
func (r *Runner) apply(ctx context.Context, pr *projection, from eventstore.Cursor, batch []eventstore.Recorded) error {
	p := pr.p
	var (
		stored  eventstore.Cursor
		version int
		applied int
	)
	err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		// A read model is rebuilt from the log at will, and its rows and
		// checkpoint commit together: a crash of PostgreSQL may lose its
		// last commits, which the runner then applies again. So it need not
		// wait for the disk, and leaves the disk to the commands that must.
		if _, err := tx.Exec(ctx, `SET LOCAL synchronous_commit TO off`); err != nil {
			return fmt.Errorf("relax durability of the read model: %w", err)
		}
		err := tx.QueryRow(ctx, `SELECT version, tx_id, position FROM projection_checkpoints WHERE name = $1 FOR UPDATE`, p.Name()).
			Scan(&version, &stored.TxID, &stored.Position)
		if err != nil {
			return fmt.Errorf("lock checkpoint: %w", err)
		}
		if version != p.Version() {
			return &VersionError{Name: p.Name(), Stored: version, Version: p.Version()}
		}
		if less(stored, from) {
			return errMoved
		}
		todo := batch
		for len(todo) > 0 && !less(stored, todo[0].Cursor()) {
			todo = todo[1:]
		}
		if len(todo) == 0 {
			return nil
		}
		if err := p.Apply(ctx, tx, Live(p), todo); err != nil {
			return fmt.Errorf("apply events from position %d: %w", todo[0].Position, err)
		}
		last := todo[len(todo)-1].Cursor()
		if _, err := tx.Exec(ctx, `UPDATE projection_checkpoints SET tx_id = $2, position = $3, updated_at = now() WHERE name = $1`,
			p.Name(), last.TxID, last.Position); err != nil {
			return fmt.Errorf("write checkpoint: %w", err)
		}
		stored, applied = last, len(todo)
		return nil
	})
	var verr *VersionError
	switch {
	case errors.Is(err, errMoved):
		pr.moveTo(stored)
		return nil
	case errors.As(err, &verr):
		pr.unready() // prepare again: rebuild if ours is newer
		return fmt.Errorf("projection %s: %w", p.Name(), err)
	case err != nil:
		return fmt.Errorf("projection %s: %w", p.Name(), err)
	}
	r.applied.WithLabelValues(p.Name()).Add(float64(applied))
	pr.moveTo(stored)
	return nil
}

// lagSQL counts the committed events a projection has not applied and finds
// the oldest of them. Events of transactions still in progress are not
// counted; those that committed but wait behind an older open transaction
// are.
const lagSQL = `SELECT count(*), min(recorded_at) FROM events WHERE (tx_id, position) > ($1::xid8, $2)`

func (r *Runner) measure(ctx context.Context, pr *projection) error {
	c := pr.at()
	var (
		n      int64
		oldest *time.Time
	)
	if err := r.pool.QueryRow(ctx, lagSQL, c.TxID, c.Position).Scan(&n, &oldest); err != nil {
		return fmt.Errorf("measure lag of projection %s: %w", pr.p.Name(), err)
	}
	pr.mu.Lock()
	defer pr.mu.Unlock()
	pr.measured, pr.lagEvents, pr.oldest = true, n, time.Time{}
	if oldest != nil {
		pr.oldest = *oldest
	}
	return nil
}

func (pr *projection) at() eventstore.Cursor {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return pr.cursor
}

// moveTo records the checkpoint as the database has it and wakes Await.
func (pr *projection) moveTo(c eventstore.Cursor) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if c == pr.cursor {
		return
	}
	pr.cursor = c
	close(pr.advanced)
	pr.advanced = make(chan struct{})
}

func (pr *projection) unready() {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	pr.ready = false
}

func (pr *projection) fail(err error) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	pr.err = err
	var verr *VersionError
	if errors.As(err, &verr) {
		pr.problem = fmt.Sprintf("built at version %d by a newer build; this build projects version %d", verr.Stored, verr.Version)
		return
	}
	pr.problem = "applying events fails: see the server log"
}

func (pr *projection) healthy() {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	pr.err, pr.problem = nil, ""
}

// Await waits until the projection has applied every event up to and
// including c (an event's Cursor), or ctx ends. It serves read-your-writes:
// after a command, wait for the read model to hold it.
func (r *Runner) Await(ctx context.Context, name string, c eventstore.Cursor) error {
	pr, err := r.projection(name)
	if err != nil {
		return err
	}
	for {
		pr.mu.Lock()
		done, advanced := !less(pr.cursor, c), pr.advanced
		pr.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("await projection %s at %s: %w", name, c, ctx.Err())
		case <-advanced:
		}
	}
}

// Status is what a runner knows of one projection, for /readyz detail.
type Status struct {
	Name    string `json:"name"`
	Version int    `json:"version"`
	// Cursor is the last event applied.
	Cursor eventstore.Cursor `json:"cursor"`
	// LagEvents counts committed events not yet applied, when last
	// measured.
	LagEvents int64 `json:"lag_events"`
	// LagSeconds is how long the oldest of them has waited, now.
	LagSeconds float64 `json:"lag_seconds"`
	Rebuilding bool    `json:"rebuilding"`
	// Problem says what is wrong, without the database's error text (the
	// readiness probe is public); empty when the last catch-up succeeded.
	Problem string `json:"problem,omitempty"`
	// Err is the last failure, for logs.
	Err error `json:"-"`
}

// Status reports every projection, in the order given to New. It reads
// only what the runner already knows, so it is cheap enough for probes.
func (r *Runner) Status() []Status {
	now := r.now()
	out := make([]Status, 0, len(r.all))
	for _, pr := range r.all {
		pr.mu.Lock()
		s := Status{Name: pr.p.Name(), Version: pr.p.Version(), Cursor: pr.cursor, LagEvents: pr.lagEvents,
			Rebuilding: pr.rebuilding, Problem: pr.problem, Err: pr.err}
		if pr.lagEvents > 0 && !pr.oldest.IsZero() {
			s.LagSeconds = max(0, now.Sub(pr.oldest).Seconds())
		}
		pr.mu.Unlock()
		out = append(out, s)
	}
	return out
}

// lagCollector exports lag at scrape time, so that a stuck projection's
// seconds behind keep growing on /metrics.
type lagCollector struct {
	r              *Runner
	events, second *prometheus.Desc
}

func (c *lagCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.events
	ch <- c.second
}

func (c *lagCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.r.Status() {
		ch <- prometheus.MustNewConstMetric(c.events, prometheus.GaugeValue, float64(s.LagEvents), s.Name)
		ch <- prometheus.MustNewConstMetric(c.second, prometheus.GaugeValue, s.LagSeconds, s.Name)
	}
}

func (r *Runner) registerMetrics(reg prometheus.Registerer) error {
	r.applied = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "presente_projection_events_applied_total",
		Help: "Events applied to a projection's live tables by this process.",
	}, []string{"projection"})
	r.failures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "presente_projection_failures_total",
		Help: "Failed attempts to bring a projection up to date.",
	}, []string{"projection"})
	r.collector = &lagCollector{r: r,
		events: prometheus.NewDesc("presente_projection_lag_events",
			"Committed events a projection has not applied yet, when last measured.", []string{"projection"}, nil),
		second: prometheus.NewDesc("presente_projection_lag_seconds",
			"How long the oldest event a projection has not applied has waited.", []string{"projection"}, nil),
	}
	if reg == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{r.applied, r.failures, r.collector} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("projections: register metrics: %w", err)
		}
	}
	return nil
}

// sortedTables returns p's tables in a stable order, so that concurrent
// swaps of different projections never lock in opposite orders.
func sortedTables(p Projector) []string {
	t := slices.Clone(p.Tables())
	slices.Sort(t)
	return t
}
