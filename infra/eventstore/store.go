// Package eventstore is Presente's record: an append-only log of events in
// PostgreSQL. It appends with optimistic concurrency, loads streams, reads
// the global log in commit-safe order, runs deciders with bounded retry and
// verifies the tamper-evident hash chain of every stream.
package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/presente-dispatch/presente/domain"
)

// Stream addresses one aggregate's stream: its type ("request") and id.
type Stream struct {
	Type string
	ID   uuid.UUID
}

// Metadata says who caused an event, within which flow, and why.
type Metadata struct {
	// Actor identifies who acted: "user:<uuid>" for a person, or
	// "system:<job>" for Presente itself. Never a name or an email.
	Actor string `json:"actor"`
	// CorrelationID ties together every event of one user-visible flow.
	// Append fills it with a new id when it is zero.
	CorrelationID uuid.UUID `json:"correlation_id"`
	// CausationID is the event or command that caused this one, if any.
	CausationID uuid.UUID `json:"causation_id,omitzero"`
	// Reason is the explanation the actor gave, if any.
	Reason string `json:"reason,omitempty"`
}

const (
	maxActorLen  = 200
	maxReasonLen = 2000
)

func (m Metadata) validate() error {
	switch {
	case m.Actor == "":
		return errors.New("metadata: actor is required: every event records who caused it")
	case len(m.Actor) > maxActorLen:
		return fmt.Errorf("metadata: actor is %d bytes, at most %d allowed", len(m.Actor), maxActorLen)
	case strings.IndexFunc(m.Actor, unicode.IsControl) >= 0:
		return errors.New("metadata: actor contains control characters")
	case len(m.Reason) > maxReasonLen:
		return fmt.Errorf("metadata: reason is %d bytes, at most %d allowed", len(m.Reason), maxReasonLen)
	}
	return nil
}

// Recorded is an event as the log holds it.
type Recorded struct {
	Position      int64
	TxID          uint64
	StreamID      uuid.UUID
	StreamType    string
	StreamVersion int64
	EventID       uuid.UUID
	// Type is the event type's name.
	Type string
	// SchemaVersion is the version the payload was stored at; Event has
	// already been upcast to the current version.
	SchemaVersion int
	Event         domain.Event
	Metadata      Metadata
	RecordedAt    time.Time
	// Forgotten is set when some personal data of the event belonged to a
	// forgotten subject and reads as the Forgotten marker.
	Forgotten bool
}

// Cursor returns the global-log position just after this event.
func (r Recorded) Cursor() Cursor { return Cursor{TxID: r.TxID, Position: r.Position} }

// Cursor is a place in the global log, in its commit-safe order
// (writing transaction id, then position). The zero Cursor is the start.
type Cursor struct {
	TxID     uint64 `json:"tx_id"`
	Position int64  `json:"position"`
}

// String renders the cursor as "txid:position".
func (c Cursor) String() string { return fmt.Sprintf("%d:%d", c.TxID, c.Position) }

// ParseCursor reads a cursor rendered by Cursor.String.
func ParseCursor(s string) (Cursor, error) {
	tx, pos, ok := strings.Cut(s, ":")
	if !ok {
		return Cursor{}, fmt.Errorf("cursor %q: want \"<txid>:<position>\"", s)
	}
	t, err := strconv.ParseUint(tx, 10, 64)
	if err != nil {
		return Cursor{}, fmt.Errorf("cursor %q: transaction id is not a number", s)
	}
	p, err := strconv.ParseInt(pos, 10, 64)
	if err != nil || p < 0 {
		return Cursor{}, fmt.Errorf("cursor %q: position is not a non-negative number", s)
	}
	return Cursor{TxID: t, Position: p}, nil
}

// Options tune a Store. The zero value is ready for production.
type Options struct {
	// Clock gives the time recorded on events; time.Now when nil.
	Clock func() time.Time
	// NewID makes event and correlation ids; uuid.NewV7 when nil.
	NewID func() uuid.UUID
	// MaxAttempts bounds how often Execute decides again after a
	// concurrency conflict; 5 when zero.
	MaxAttempts int
	// Registerer receives the store's metrics; none are exported when nil.
	Registerer prometheus.Registerer
	// Keys provides the data keys that personal-data fields are encrypted
	// with. Required when the registry declares personal data.
	Keys Keys
	// Committers is how many batches of appends may be in flight at once;
	// 1 when zero. See batch.go.
	Committers int
}

// Store is the event log. It is safe for concurrent use.
type Store struct {
	pool        *pgxpool.Pool
	registry    *Registry
	now         func() time.Time
	newID       func() uuid.UUID
	maxAttempts int
	metrics     metrics
	keys        Keys

	// mu guards closed: enqueueing holds it for reading, so that no append
	// enters the queue once Close has begun.
	mu      sync.RWMutex
	closed  bool
	closing chan struct{}
	// gatherWindow is how long a committer waits for expected appends.
	gatherWindow time.Duration
	queue        chan *appendRequest
	stopped      chan struct{}
	stopOnce     sync.Once
	committers   sync.WaitGroup

	// commitMu guards committed, the channel closed at the next commit.
	commitMu  sync.Mutex
	committed chan struct{}
}

// New returns a store over pool that reads and writes the event types in
// registry.
func New(pool *pgxpool.Pool, registry *Registry, opts Options) (*Store, error) {
	if pool == nil || registry == nil {
		return nil, errors.New("eventstore: a pool and a registry are required")
	}
	if registry.HasPersonalData() && opts.Keys == nil {
		return nil, errors.New("eventstore: event types declare personal data, so a keyring (Options.Keys) is required")
	}
	s := &Store{pool: pool, registry: registry, now: opts.Clock, newID: opts.NewID, maxAttempts: opts.MaxAttempts, keys: opts.Keys,
		committed: make(chan struct{})}
	if s.now == nil {
		s.now = time.Now
	}
	if s.newID == nil {
		s.newID = newV7
	}
	if s.maxAttempts <= 0 {
		s.maxAttempts = 5
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	s.startCommitters(opts.Committers)
	return s, nil
}

// Committed returns a channel that is closed when this store next commits
// events (an append, a batch of them, or a Transact). Every caller waiting
// on it wakes, so any number of followers can share it; take the channel
// before reading the log, then wait on it, and no commit is missed. It
// tells of this process's commits only: other processes' arrive through
// the database (see infra/bus).
func (s *Store) Committed() <-chan struct{} {
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	return s.committed
}

// signalCommit wakes the waiters on Committed. It never blocks on them.
func (s *Store) signalCommit() {
	s.commitMu.Lock()
	close(s.committed)
	s.committed = make(chan struct{})
	s.commitMu.Unlock()
}

// newV7 returns a time-ordered UUID, which keeps the event_id index compact.
func newV7() uuid.UUID {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.New()
	}
	return id
}

// querier is what appends and reads need from a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

const appendSQL = `SELECT item, event_position, event_tx_id, event_stream_version
FROM append_events($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`

// Append adds events to a stream that must be at expectedVersion (0 for a
// new stream). It returns the recorded events once they are committed, or a
// *ConcurrencyError when another writer got there first.
//
// Concurrent appends are committed together (see batch.go); each still
// succeeds or fails on its own. If ctx ends while the append is in flight
// the caller gets ctx's error and the events may or may not be committed:
// they are never acknowledged before they are.
func (s *Store) Append(ctx context.Context, stream Stream, expectedVersion int64, meta Metadata, events ...domain.Event) ([]Recorded, error) {
	req, err := s.prepare(ctx, stream, expectedVersion, meta, events)
	if err != nil {
		return nil, err
	}
	req.ctx = ctx
	req.done = make(chan error, 1)
	if err := s.enqueue(ctx, req); err != nil {
		return nil, fmt.Errorf("append to stream %s: %w", stream.ID, err)
	}
	select {
	case err := <-req.done:
		if err != nil {
			return nil, err
		}
		return req.recs, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("append to stream %s: %w (the events may still be committed)", stream.ID, ctx.Err())
	}
}

// appendIn appends within the caller's transaction q, bypassing batching.
func (s *Store) appendIn(ctx context.Context, q querier, stream Stream, expectedVersion int64, meta Metadata, events []domain.Event) ([]Recorded, error) {
	req, err := s.prepare(ctx, stream, expectedVersion, meta, events)
	if err != nil {
		return nil, err
	}
	outcomes, err := s.run(ctx, q, []*appendRequest{req})
	if err != nil {
		return nil, s.appendError(stream, err)
	}
	if outcomes[0] != nil {
		return nil, outcomes[0]
	}
	return req.recs, nil
}

// appendRequest is one append: its encoded events, the records it will
// return, and where its outcome goes.
type appendRequest struct {
	ctx      context.Context
	stream   Stream
	expected int64
	ids      []uuid.UUID
	types    []string
	versions []int32
	data     []string
	metas    []string
	recs     []Recorded
	done     chan error
}

// prepare validates and encodes an append.
func (s *Store) prepare(ctx context.Context, stream Stream, expectedVersion int64, meta Metadata, events []domain.Event) (*appendRequest, error) {
	if len(events) == 0 {
		return nil, fmt.Errorf("append to stream %s: no events given", stream.ID)
	}
	if expectedVersion < 0 {
		return nil, fmt.Errorf("append to stream %s: expected version %d is negative", stream.ID, expectedVersion)
	}
	if stream.ID == uuid.Nil {
		return nil, errors.New("append: the stream id is the nil uuid")
	}
	if !streamTypeName.MatchString(stream.Type) {
		return nil, fmt.Errorf("append to stream %s: stream type %q must be lower case letters, digits and '_', starting with a letter (at most 63)", stream.ID, stream.Type)
	}
	if err := meta.validate(); err != nil {
		return nil, fmt.Errorf("append to stream %s: %w", stream.ID, err)
	}
	if meta.CorrelationID == uuid.Nil {
		meta.CorrelationID = s.newID()
	}
	metaJSON, err := json.Marshal(meta)
	if err != nil {
		return nil, fmt.Errorf("append to stream %s: encode metadata: %w", stream.ID, err)
	}
	if hasNUL(metaJSON) {
		return nil, fmt.Errorf("append to stream %s: metadata contains a NUL character (U+0000), which cannot be stored: remove it", stream.ID)
	}

	n := len(events)
	r := &appendRequest{
		stream:   stream,
		expected: expectedVersion,
		ids:      make([]uuid.UUID, n),
		types:    make([]string, n),
		versions: make([]int32, n),
		data:     make([]string, n),
		metas:    make([]string, n),
		recs:     make([]Recorded, n),
	}
	keys := map[uuid.UUID][]byte{}
	for i, e := range events {
		et, err := s.registry.lookup(e)
		if err != nil {
			return nil, fmt.Errorf("append to stream %s: %w", stream.ID, err)
		}
		id := s.newID()
		sealed, err := s.seal(ctx, et, e, id, keys)
		if err != nil {
			return nil, fmt.Errorf("append to stream %s: %w", stream.ID, err)
		}
		payload, err := json.Marshal(sealed)
		if err != nil {
			return nil, fmt.Errorf("append to stream %s: encode event %s: %w", stream.ID, et.name, err)
		}
		if hasNUL(payload) {
			return nil, fmt.Errorf("append to stream %s: event %s contains a NUL character (U+0000), which cannot be stored: remove it", stream.ID, et.name)
		}
		r.ids[i], r.types[i], r.versions[i], r.data[i], r.metas[i] = id, et.name, int32(et.version()), string(payload), string(metaJSON)
		r.recs[i] = Recorded{
			StreamID: stream.ID, StreamType: stream.Type, EventID: id, Type: et.name,
			SchemaVersion: et.version(), Event: e, Metadata: meta,
		}
	}
	return r, nil
}

// hasNUL tells whether encoded JSON holds the escape \u0000, which jsonb
// refuses. It reads escapes properly, so the text `\u0000` (escaped as
// `\\u0000`) is not mistaken for one.
func hasNUL(b []byte) bool {
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' || i+1 >= len(b) {
			continue
		}
		if b[i+1] == 'u' && i+6 <= len(b) && string(b[i+2:i+6]) == "0000" {
			return true
		}
		i++ // skip the escaped character
	}
	return false
}

var streamTypeName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// run appends a batch with one statement through q and returns each
// append's own outcome (nil or a *ConcurrencyError). Through a pool, the
// statement is its own transaction: run returns only after its commit.
func (s *Store) run(ctx context.Context, q querier, batch []*appendRequest) ([]error, error) {
	recordedAt := s.now().UTC().Truncate(time.Microsecond)
	var total int
	for _, r := range batch {
		total += len(r.ids)
	}
	var (
		streamIDs   = make([]uuid.UUID, len(batch))
		streamTypes = make([]string, len(batch))
		expected    = make([]int64, len(batch))
		counts      = make([]int32, len(batch))
		ids         = make([]uuid.UUID, 0, total)
		types       = make([]string, 0, total)
		versions    = make([]int32, 0, total)
		data        = make([]string, 0, total)
		metas       = make([]string, 0, total)
	)
	for i, r := range batch {
		streamIDs[i], streamTypes[i], expected[i], counts[i] = r.stream.ID, r.stream.Type, r.expected, int32(len(r.ids))
		ids = append(ids, r.ids...)
		types = append(types, r.types...)
		versions = append(versions, r.versions...)
		data = append(data, r.data...)
		metas = append(metas, r.metas...)
	}
	rows, err := q.Query(ctx, appendSQL, streamIDs, streamTypes, expected, counts, ids, types, versions, data, metas, recordedAt)
	if err != nil {
		return nil, err
	}
	outcomes := make([]error, len(batch))
	filled := make([]int, len(batch))
	for rows.Next() {
		var (
			item    int32
			pos     *int64
			tx      *uint64
			version int64
		)
		if err := rows.Scan(&item, &pos, &tx, &version); err != nil {
			rows.Close()
			return nil, err
		}
		if item < 1 || int(item) > len(batch) {
			rows.Close()
			return nil, fmt.Errorf("append_events returned item %d of a batch of %d", item, len(batch))
		}
		i := int(item) - 1
		r := batch[i]
		if pos == nil {
			outcomes[i] = &ConcurrencyError{StreamID: r.stream.ID, Expected: r.expected, Actual: version}
			continue
		}
		if filled[i] >= len(r.recs) {
			rows.Close()
			return nil, fmt.Errorf("append to stream %s: the database returned more rows than events", r.stream.ID)
		}
		rec := &r.recs[filled[i]]
		rec.Position, rec.TxID, rec.StreamVersion, rec.RecordedAt = *pos, *tx, version, recordedAt
		filled[i]++
	}
	// Closing reads through the statement's end, past its commit.
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	events := 0
	for i, r := range batch {
		switch {
		case outcomes[i] != nil:
			s.metrics.conflicts.Inc()
		case filled[i] != len(r.recs):
			return nil, fmt.Errorf("append to stream %s: the database recorded %d of %d events", r.stream.ID, filled[i], len(r.recs))
		default:
			events += filled[i]
		}
	}
	s.metrics.appended.Add(float64(events))
	return outcomes, nil
}

// appendError turns the database's refusal of an append into a typed error.
func (s *Store) appendError(stream Stream, err error) error {
	var typeErr *StreamTypeError
	if errors.As(err, &typeErr) {
		return err
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "PS422" {
		return &StreamTypeError{StreamID: stream.ID, Want: stream.Type, Got: pgErr.Detail}
	}
	return fmt.Errorf("append to stream %s: %w", stream.ID, err)
}

const selectEvents = `SELECT position, tx_id, stream_id, stream_type, stream_version, event_id,
       event_type, schema_version, data, metadata, recorded_at
FROM events `

// Load returns every event of a stream in order, and the stream's version
// (0 when it has no events).
func (s *Store) Load(ctx context.Context, streamID uuid.UUID) ([]Recorded, int64, error) {
	return s.load(ctx, s.pool, streamID, s.query)
}

// LoadSealed is Load without revealing personal data: declared fields
// read as stored (sealed). It saves the data-key lookup where the caller
// needs no personal data, as authenticating every request does not.
func (s *Store) LoadSealed(ctx context.Context, streamID uuid.UUID) ([]Recorded, int64, error) {
	return s.load(ctx, s.pool, streamID, s.scan)
}

func (s *Store) load(ctx context.Context, q querier, streamID uuid.UUID,
	read func(context.Context, querier, string, ...any) ([]Recorded, error)) ([]Recorded, int64, error) {
	events, err := read(ctx, q, selectEvents+`WHERE stream_id = $1 ORDER BY stream_version`, streamID)
	if err != nil {
		return nil, 0, fmt.Errorf("load stream %s: %w", streamID, err)
	}
	var version int64
	if len(events) > 0 {
		version = events[len(events)-1].StreamVersion
	}
	return events, version, nil
}

// StreamIDs returns the ids of every stream of one type, oldest first. It
// serves small aggregates an administrator lists (accounts, invitations);
// large views are projections.
func (s *Store) StreamIDs(ctx context.Context, streamType string) ([]uuid.UUID, error) {
	rows, err := s.pool.Query(ctx, `SELECT stream_id FROM streams WHERE stream_type = $1 ORDER BY created_at, stream_id`, streamType)
	if err != nil {
		return nil, fmt.Errorf("list %s streams: %w", streamType, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return nil, fmt.Errorf("list %s streams: %w", streamType, err)
	}
	return ids, nil
}

// readAllSQL reads the global log in commit-safe order: only events written
// by transactions older than every transaction still running are returned,
// so an event that commits late is delayed, never skipped.
const readAllSQL = selectEvents + `WHERE (tx_id, position) > ($1::xid8, $2)
  AND tx_id < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY tx_id, position
LIMIT $3`

// ReadAll returns up to limit events of the global log after cursor, in
// commit-safe order. Reading again from the last event's Cursor never skips
// an event, however late its transaction commits.
func (s *Store) ReadAll(ctx context.Context, after Cursor, limit int) ([]Recorded, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("read log after %s: limit %d must be positive", after, limit)
	}
	events, err := s.query(ctx, s.pool, readAllSQL, after.TxID, after.Position, limit)
	if err != nil {
		return nil, fmt.Errorf("read log after %s: %w", after, err)
	}
	return events, nil
}

// query reads events and reveals their personal data.
func (s *Store) query(ctx context.Context, q querier, sql string, args ...any) ([]Recorded, error) {
	out, err := s.scan(ctx, q, sql, args...)
	if err != nil {
		return nil, err
	}
	if err := s.reveal(ctx, out); err != nil {
		return nil, err
	}
	return out, nil
}

// scan reads events as stored: personal-data fields stay sealed.
func (s *Store) scan(ctx context.Context, q querier, sql string, args ...any) ([]Recorded, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Recorded
	for rows.Next() {
		var (
			r              Recorded
			schemaVersion  int32
			data, metaJSON []byte
		)
		if err := rows.Scan(&r.Position, &r.TxID, &r.StreamID, &r.StreamType, &r.StreamVersion, &r.EventID,
			&r.Type, &schemaVersion, &data, &metaJSON, &r.RecordedAt); err != nil {
			return nil, err
		}
		r.SchemaVersion = int(schemaVersion)
		if err := json.Unmarshal(metaJSON, &r.Metadata); err != nil {
			return nil, fmt.Errorf("event %d: decode metadata: %w", r.Position, err)
		}
		e, err := s.registry.decode(r.Type, r.SchemaVersion, data)
		if err != nil {
			return nil, fmt.Errorf("event %d: %w", r.Position, err)
		}
		r.Event = e
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

type metrics struct {
	batchSize     prometheus.Histogram
	appendSeconds prometheus.Histogram
	appended      prometheus.Counter
	conflicts     prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (metrics, error) {
	m := metrics{
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "presente_eventstore_commit_batch_appends",
			Help:    "Appends committed together in one transaction.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64},
		}),
		appendSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "presente_eventstore_commit_seconds",
			Help:    "Time to commit one batch of appends, from sending it to the database's commit.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
		appended: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "presente_eventstore_events_appended_total",
			Help: "Events appended to the log by this process.",
		}),
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "presente_eventstore_conflicts_total",
			Help: "Appends refused because the stream changed concurrently.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.batchSize, m.appendSeconds, m.appended, m.conflicts} {
		if err := reg.Register(c); err != nil {
			return metrics{}, fmt.Errorf("eventstore: register metrics: %w", err)
		}
	}
	return m, nil
}

func (m metrics) observeCommit(d time.Duration, appends int) {
	m.appendSeconds.Observe(d.Seconds())
	m.batchSize.Observe(float64(appends))
}
