// Package feed turns the event log into the live views of web/LIVE.md:
// the dispatch board, the shift board and each volunteer's own work. It
// follows the committed events the bus relays, in log order, waits until
// the read models have applied them, reads the rows they touched, and
// publishes one delta per view through the live hub. It also reads the
// snapshots a new connection starts from.
//
// A delta covers the log from the view's previous delta to its own
// position and carries the current rows of everything those events
// touched, so applying deltas in order always converges on the read
// model. Nothing here holds or sends the personal data of the people
// served: the board's read models hold none, and a volunteer's own view
// carries only what the need-to-know rules of dispatch.AssignmentsOf give
// them.
package feed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/presente-dispatch/presente/domain/privacy"
	"github.com/presente-dispatch/presente/domain/request"
	"github.com/presente-dispatch/presente/domain/shift"
	"github.com/presente-dispatch/presente/domain/volunteer"
	"github.com/presente-dispatch/presente/infra/bus"
	"github.com/presente-dispatch/presente/infra/dispatch"
	"github.com/presente-dispatch/presente/infra/eventstore"
	"github.com/presente-dispatch/presente/projections"
	"github.com/presente-dispatch/presente/projections/board"
	"github.com/presente-dispatch/presente/projections/shiftboard"
	"github.com/presente-dispatch/presente/web/live"
)

// View keys.
const (
	Board       = "board"
	ShiftsStaff = "shifts:staff"
	Shifts      = "shifts"
	minePrefix  = "mine:"
)

// Mine is the key of a volunteer's own view.
func Mine(volunteerID uuid.UUID) string { return minePrefix + volunteerID.String() }

// Config is what a Feed needs.
type Config struct {
	Hub      *live.Hub
	Pool     *pgxpool.Pool
	Registry *eventstore.Registry
	// ReadModels is the runner keeping the board and shift board current;
	// the feed waits on it before reading what an event changed.
	ReadModels *projections.Runner
	// Assignments lists a volunteer's live assignments with what they
	// need to know (dispatch.Service.AssignmentsOf).
	Assignments func(ctx context.Context, volunteerID uuid.UUID) ([]dispatch.VolunteerAssignment, error)
	// Start is where the relay feeding Consume starts: every view's
	// chain of deltas begins there.
	Start  eventstore.Cursor
	Logger *zap.Logger
	// Clock gives the time for windows of the shift board; time.Now when nil.
	Clock func() time.Time
}

// Feed publishes the live views' deltas. Consume runs it.
type Feed struct {
	cfg Config
	now func() time.Time

	mu   sync.Mutex
	last map[string]eventstore.Cursor // each view's last delta position

	// lagging is set while the views wait too long for the read models
	// (Consume's goroutine only).
	lagging bool
}

// New returns a feed.
func New(cfg Config) (*Feed, error) {
	if cfg.Hub == nil || cfg.Pool == nil || cfg.Registry == nil || cfg.ReadModels == nil || cfg.Assignments == nil {
		return nil, errors.New("feed: a hub, a pool, the registry, the read models and the assignments are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	f := &Feed{cfg: cfg, now: cfg.Clock, last: map[string]eventstore.Cursor{}}
	if f.now == nil {
		f.now = time.Now
	}
	return f, nil
}

// batchLimit bounds how many events one round of deltas covers.
const batchLimit = 256

// ringSize is how many deltas of the boards the hub keeps for clients
// that reconnect: at 50 commands a second, about 20 seconds' worth.
// mineRingSize is the same for a volunteer's own view, whose every delta
// carries the whole view: a client further behind gets a snapshot, which
// is as small.
const (
	ringSize     = 1024
	mineRingSize = 8
)

// queueLimit bounds the events received but not yet published: beyond
// it the receiving goroutine stops taking messages, which holds the relay
// back (backpressure) rather than growing without bound.
const queueLimit = 8192

// Consume publishes deltas for the events of msgs, in order, until msgs
// closes or ctx ends. A goroutine takes and acknowledges each message as
// it arrives (the local pub/sub hands over the next only after the ack),
// so events that arrive while a round is published queue up and are
// covered together by the next round, up to batchLimit at a time.
func (f *Feed) Consume(ctx context.Context, msgs <-chan *message.Message) {
	queue := make(chan eventstore.Recorded, queueLimit)
	go func() {
		defer close(queue)
		for {
			select {
			case <-ctx.Done():
				return
			case m, ok := <-msgs:
				if !ok {
					return
				}
				rec, err := bus.Decode(f.cfg.Registry, m)
				m.Ack()
				if err != nil {
					// An event this build cannot read: the read models will
					// fail on it too and say so on /readyz; the feed goes on.
					f.cfg.Logger.Error("decode a relayed event", zap.Error(err))
					continue
				}
				select {
				case queue <- rec:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	batch := make([]eventstore.Recorded, 0, batchLimit)
	for {
		rec, ok := <-queue
		if !ok {
			return
		}
		batch = append(batch[:0], rec)
	drain:
		for len(batch) < batchLimit {
			select {
			case rec, ok := <-queue:
				if !ok {
					break drain
				}
				batch = append(batch, rec)
			default:
				break drain
			}
		}
		f.publish(ctx, batch)
		if ctx.Err() != nil {
			return
		}
	}
}

// touched is what a round of events changed, by view.
type touched struct {
	requests, shifts, volunteers, mine map[uuid.UUID]bool
}

func (t touched) add(set map[uuid.UUID]bool, ids ...uuid.UUID) {
	for _, id := range ids {
		if id != uuid.Nil {
			set[id] = true
		}
	}
}

func keys(set map[uuid.UUID]bool) []uuid.UUID {
	out := make([]uuid.UUID, 0, len(set))
	for id := range set {
		out = append(out, id)
	}
	slices.SortFunc(out, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
	return out
}

// volunteersNamed returns the volunteer ids an event names: its
// volunteer, the two sides of a swap, a forgotten subject, those a
// cancelled shift let go.
func volunteersNamed(e any) []uuid.UUID {
	raw, err := json.Marshal(e)
	if err != nil {
		return nil
	}
	var fields map[string]any
	if json.Unmarshal(raw, &fields) != nil {
		return nil
	}
	var out []uuid.UUID
	add := func(v any) {
		if s, ok := v.(string); ok {
			if id, err := uuid.Parse(s); err == nil {
				out = append(out, id)
			}
		}
	}
	for _, k := range []string{"volunteer_id", "from", "to", "subject_id"} {
		add(fields[k])
	}
	for _, k := range []string{"claimants", "waitlisted"} {
		list, _ := fields[k].([]any)
		for _, v := range list {
			add(v)
		}
	}
	return out
}

func (f *Feed) touchedBy(batch []eventstore.Recorded) touched {
	t := touched{requests: map[uuid.UUID]bool{}, shifts: map[uuid.UUID]bool{}, volunteers: map[uuid.UUID]bool{}, mine: map[uuid.UUID]bool{}}
	for _, r := range batch {
		switch r.StreamType {
		case request.StreamType:
			t.add(t.requests, r.StreamID)
			t.add(t.mine, volunteersNamed(r.Event)...)
		case shift.StreamType:
			t.add(t.shifts, r.StreamID)
			t.add(t.mine, volunteersNamed(r.Event)...)
		case volunteer.StreamType:
			named := volunteersNamed(r.Event)
			t.add(t.volunteers, named...)
			t.add(t.mine, named...)
		}
		if e, ok := r.Event.(privacy.SubjectForgotten); ok {
			t.add(t.volunteers, e.SubjectID)
			t.add(t.mine, e.SubjectID)
		}
	}
	return t
}

// readModelsUsed are the read models the views read.
var readModelsUsed = []string{board.Name, shiftboard.Name}

// publish publishes the deltas of one round of events.
func (f *Feed) publish(ctx context.Context, batch []eventstore.Recorded) {
	end := batch[len(batch)-1].Cursor()
	t := f.touchedBy(batch)
	// The relay has read these events, so they are visible: wake the read
	// models in case what held them back was a transaction that wrote
	// nothing (its end wakes nobody).
	f.cfg.ReadModels.Wake()
	for _, name := range readModelsUsed {
		// The read model applies what the relay delivered; waiting is
		// bounded only by shutdown, as skipping would leave a gap.
		if !f.await(ctx, name, end) {
			return
		}
	}
	for attempt := 0; ; attempt++ {
		err := f.publishRound(ctx, t, end)
		if err == nil || ctx.Err() != nil {
			return
		}
		// The database is away: try again, as the deltas must not skip
		// these events. Clients that fall too far behind resync.
		f.cfg.Logger.Warn("publish live deltas", zap.Error(err), zap.Int("attempt", attempt+1))
		select {
		case <-ctx.Done():
			return
		case <-time.After(min(time.Duration(attempt+1)*100*time.Millisecond, 2*time.Second)):
		}
	}
}

// lagAfter is how long the feed waits for a read model before it tells
// every connection that what they see may be out of date.
const lagAfter = 5 * time.Second

// await waits until read model name has applied the log up to end, or ctx
// ends (false). While it waits longer than lagAfter, every connection is
// told the views are lagging, and told again when they are live.
func (f *Feed) await(ctx context.Context, name string, end eventstore.Cursor) bool {
	for {
		wctx, cancel := context.WithTimeout(ctx, lagAfter)
		err := f.cfg.ReadModels.Await(wctx, name, end)
		cancel()
		switch {
		case err == nil:
			if f.lagging {
				f.lagging = false
				f.cfg.Hub.Publish([]byte(`{"type":"status","state":"live"}`), nil)
				f.cfg.Logger.Info("live views caught up", zap.String("read_model", name))
			}
			return true
		case ctx.Err() != nil:
			return false
		case !f.lagging:
			f.lagging = true
			f.cfg.Hub.Publish([]byte(`{"type":"status","state":"lagging"}`), nil)
			f.cfg.Logger.Warn("live views wait for a read model", zap.String("read_model", name),
				zap.Stringer("at", end), zap.Duration("waited", lagAfter))
		}
	}
}

func (f *Feed) publishRound(ctx context.Context, t touched, end eventstore.Cursor) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if len(t.requests) > 0 || len(t.volunteers) > 0 {
		var (
			reqs    []board.Request
			members []board.Member
		)
		// One snapshot of the read model, so a request and its
		// assignments, and the volunteers, are read as of one moment.
		err := f.consistently(ctx, func(tx pgx.Tx) error {
			var err error
			if reqs, err = board.RequestsByIDs(ctx, tx, keys(t.requests)); err != nil {
				return err
			}
			members, err = board.Members(ctx, tx, keys(t.volunteers))
			return err
		})
		if err != nil {
			return err
		}
		for _, r := range reqs {
			for _, a := range r.Assignments {
				t.add(t.mine, a.VolunteerID)
			}
		}
		if err := f.send(Board, end, boardDelta(t, reqs, members)); err != nil {
			return err
		}
	}
	if len(t.shifts) > 0 {
		var shifts []shiftboard.Shift
		err := f.consistently(ctx, func(tx pgx.Tx) error {
			var err error
			shifts, err = shiftboard.ShiftsByIDs(ctx, tx, keys(t.shifts))
			return err
		})
		if err != nil {
			return err
		}
		for _, s := range shifts {
			for _, c := range s.Claimants {
				t.add(t.mine, c.VolunteerID)
			}
			t.add(t.mine, s.Waitlist...)
		}
		if err := f.send(ShiftsStaff, end, shiftsData{Shifts: shifts}); err != nil {
			return err
		}
		if err := f.send(Shifts, end, shiftsData{Shifts: public(shifts)}); err != nil {
			return err
		}
	}
	for _, v := range keys(t.mine) {
		key := Mine(v)
		if !f.cfg.Hub.Watching(key) {
			continue
		}
		data, err := f.mine(ctx, v)
		if err == nil {
			err = f.send(key, end, data)
		}
		if err != nil {
			// One volunteer's view must not hold up everyone's board: their
			// connections start again from a snapshot.
			f.cfg.Logger.Warn("a volunteer's live view could not be updated; its connections resync", zap.Error(err))
			f.cfg.Hub.Resync(key)
		}
	}
	return nil
}

// consistently runs read in one read-only repeatable-read transaction:
// the rows it reads belong to one state of the read models.
func (f *Feed) consistently(ctx context.Context, read func(pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, f.cfg.Pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, read)
}

// send publishes data as the delta of view key up to at. A volunteer's
// view is sent whenever an event touches it, changed or not: comparing
// with what was sent before would need the last payload kept, stale while
// they were away and holding what they were told.
func (f *Feed) send(key string, at eventstore.Cursor, data any) error {
	raw, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("encode the %s delta: %w", key, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	prev, ok := f.last[key]
	if !ok {
		prev = f.cfg.Start
	}
	if !before(prev, at) {
		return nil // already published up to here
	}
	msg, err := json.Marshal(struct {
		Type     string          `json:"type"`
		View     string          `json:"view"`
		Prev     string          `json:"prev"`
		Position string          `json:"position"`
		Data     json.RawMessage `json:"data"`
	}{"delta", key, prev.String(), at.String(), raw})
	if err != nil {
		return fmt.Errorf("encode the %s delta: %w", key, err)
	}
	keep := ringSize
	if strings.HasPrefix(key, minePrefix) {
		keep = mineRingSize
	}
	f.cfg.Hub.PublishDelta(key, prev, at, msg, keep)
	f.last[key] = at
	return nil
}

func before(a, b eventstore.Cursor) bool {
	return a.TxID < b.TxID || (a.TxID == b.TxID && a.Position < b.Position)
}

// boardData is the board's snapshot, and the shape of its deltas.
type boardData struct {
	// Requests are the open requests (in a delta: those touched that are
	// still open), each with its assignments.
	Requests []board.Request `json:"requests"`
	// RequestsRemoved are the requests touched that left the board:
	// closed or cancelled (deltas only).
	RequestsRemoved []uuid.UUID `json:"requests_removed,omitempty"`
	// Volunteers are the active volunteers (in a delta: those touched
	// that are active).
	Volunteers []board.Member `json:"volunteers"`
	// VolunteersRemoved are the volunteers touched who left the board:
	// deactivated or forgotten (deltas only).
	VolunteersRemoved []uuid.UUID `json:"volunteers_removed,omitempty"`
}

func open(r board.Request) bool {
	return r.Status != string(request.Closed) && r.Status != string(request.Cancelled)
}

func boardDelta(t touched, reqs []board.Request, members []board.Member) boardData {
	d := boardData{Requests: []board.Request{}, Volunteers: members}
	seen := map[uuid.UUID]bool{}
	for _, r := range reqs {
		seen[r.RequestID] = true
		if open(r) {
			d.Requests = append(d.Requests, r)
		} else {
			d.RequestsRemoved = append(d.RequestsRemoved, r.RequestID)
		}
	}
	for _, id := range keys(t.requests) {
		if !seen[id] {
			d.RequestsRemoved = append(d.RequestsRemoved, id)
		}
	}
	if d.Volunteers == nil {
		d.Volunteers = []board.Member{}
	}
	active := map[uuid.UUID]bool{}
	for _, m := range members {
		active[m.VolunteerID] = true
	}
	for _, id := range keys(t.volunteers) {
		if !active[id] {
			d.VolunteersRemoved = append(d.VolunteersRemoved, id)
		}
	}
	return d
}

// shiftsData is the shift board's snapshot and deltas.
type shiftsData struct {
	Shifts any `json:"shifts"`
}

// publicShift is a shift as volunteers see it on the shift board: how many
// slots are open and how long the waitlist is, not who holds or waits.
type publicShift struct {
	ShiftID   uuid.UUID  `json:"shift_id"`
	Role      string     `json:"role"`
	Region    string     `json:"region"`
	Place     string     `json:"place,omitempty"`
	Start     time.Time  `json:"start"`
	End       time.Time  `json:"end"`
	Capacity  int        `json:"capacity"`
	Claimed   int        `json:"claimed"`
	Open      int        `json:"open"`
	Waitlist  int        `json:"waitlist"`
	Requires  []string   `json:"requires"`
	Languages []string   `json:"languages"`
	SeriesID  *uuid.UUID `json:"series_id,omitempty"`
	Cancelled bool       `json:"cancelled"`
}

func public(shifts []shiftboard.Shift) []publicShift {
	out := make([]publicShift, len(shifts))
	for i, s := range shifts {
		out[i] = publicShift{ShiftID: s.ShiftID, Role: s.Role, Region: s.Region, Place: s.Place, Start: s.Start, End: s.End,
			Capacity: s.Capacity, Claimed: s.Claimed, Open: s.Open, Waitlist: len(s.Waitlist), Requires: s.Requires,
			Languages: s.Languages, SeriesID: s.SeriesID, Cancelled: s.Cancelled}
	}
	return out
}

// myShift is a shift on a volunteer's own view: the shift as everyone sees
// it, and their own place in it.
type myShift struct {
	publicShift
	// Mine is "claimed" or "waitlisted".
	Mine             string     `json:"mine"`
	WaitlistPosition int        `json:"waitlist_position,omitempty"`
	CheckedInAt      *time.Time `json:"checked_in_at,omitempty"`
	CheckedOutAt     *time.Time `json:"checked_out_at,omitempty"`
}

// mineData is a volunteer's own view: their live assignments and the
// shifts they hold or wait for. Deltas carry all of it.
type mineData struct {
	Assignments []dispatch.VolunteerAssignment `json:"assignments"`
	Shifts      []myShift                      `json:"shifts"`
}

func (f *Feed) mine(ctx context.Context, v uuid.UUID) (mineData, error) {
	assignments, err := f.cfg.Assignments(ctx, v)
	if err != nil && !errors.Is(err, volunteer.ErrNotFound) {
		return mineData{}, err
	}
	shifts, err := shiftboard.Of(ctx, f.cfg.Pool, v, f.now().Add(-12*time.Hour))
	if err != nil {
		return mineData{}, err
	}
	d := mineData{Assignments: assignments, Shifts: []myShift{}}
	if d.Assignments == nil {
		d.Assignments = []dispatch.VolunteerAssignment{}
	}
	pub := public(shifts)
	for i, s := range shifts {
		m := myShift{publicShift: pub[i]}
		for _, c := range s.Claimants {
			if c.VolunteerID == v {
				m.Mine, m.CheckedInAt, m.CheckedOutAt = "claimed", c.CheckedInAt, c.CheckedOutAt
			}
		}
		if p := slices.Index(s.Waitlist, v); p >= 0 && m.Mine == "" {
			m.Mine, m.WaitlistPosition = "waitlisted", p+1
		}
		d.Shifts = append(d.Shifts, m)
	}
	return d, nil
}

// checkpoint reads where a read model stands, in q's snapshot.
func checkpoint(ctx context.Context, q projections.Querier, name string) (eventstore.Cursor, error) {
	rows, err := q.Query(ctx, `SELECT tx_id::text, position FROM projection_checkpoints WHERE name = $1`, name)
	if err != nil {
		return eventstore.Cursor{}, err
	}
	type cp struct {
		Tx  string
		Pos int64
	}
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[cp])
	if err != nil || len(got) == 0 {
		return eventstore.Cursor{}, err
	}
	tx, err := strconv.ParseUint(got[0].Tx, 10, 64)
	if err != nil {
		return eventstore.Cursor{}, fmt.Errorf("read model %s: checkpoint %q: %w", name, got[0].Tx, err)
	}
	return eventstore.Cursor{TxID: tx, Position: got[0].Pos}, nil
}

// oldestCheckpoint is the older of the positions of the read models the
// views read: where the live views' deltas start (every event after it is
// relayed) and where a volunteer's own view stands at least.
func oldestCheckpoint(ctx context.Context, q projections.Querier) (eventstore.Cursor, error) {
	var oldest eventstore.Cursor
	for i, name := range readModelsUsed {
		c, err := checkpoint(ctx, q, name)
		if err != nil {
			return eventstore.Cursor{}, fmt.Errorf("read where the %s read model stands: %w", name, err)
		}
		if i == 0 || before(c, oldest) {
			oldest = c
		}
	}
	return oldest, nil
}

// snapshot reads a read model's rows with read and the position they
// reflect, in one repeatable-read transaction, so they match exactly.
func (f *Feed) snapshot(ctx context.Context, name string, read func(pgx.Tx) (any, error)) ([]byte, eventstore.Cursor, error) {
	var (
		data any
		at   eventstore.Cursor
	)
	err := f.consistently(ctx, func(tx pgx.Tx) error {
		var err error
		if at, err = checkpoint(ctx, tx, name); err != nil {
			return err
		}
		data, err = read(tx)
		return err
	})
	if err != nil {
		return nil, eventstore.Cursor{}, fmt.Errorf("read the %s snapshot: %w", name, err)
	}
	raw, err := json.Marshal(data)
	return raw, at, err
}

// shiftWindow is the part of the shift board a snapshot holds: from
// half a day ago (shifts still running or just ended) to four weeks ahead.
func (f *Feed) shiftWindow() (time.Time, time.Time) {
	now := f.now()
	return now.Add(-12 * time.Hour), now.AddDate(0, 0, 28)
}

// BoardView is the dispatch board, for staff; after is the client's last
// position, nil for a fresh start.
func (f *Feed) BoardView(after *eventstore.Cursor) live.View {
	return live.View{Key: Board, After: after, Snapshot: func(ctx context.Context) ([]byte, eventstore.Cursor, error) {
		return f.snapshot(ctx, board.Name, func(tx pgx.Tx) (any, error) {
			reqs, err := board.OpenRequests(ctx, tx)
			if err != nil {
				return nil, err
			}
			members, err := board.Members(ctx, tx, nil)
			if err != nil {
				return nil, err
			}
			return boardData{Requests: orEmpty(reqs), Volunteers: orEmpty(members)}, nil
		})
	}}
}

// ShiftsView is the shift board: with who holds and waits for staff,
// with counts only for everyone else.
func (f *Feed) ShiftsView(staff bool, after *eventstore.Cursor) live.View {
	key := Shifts
	if staff {
		key = ShiftsStaff
	}
	return live.View{Key: key, After: after, Snapshot: func(ctx context.Context) ([]byte, eventstore.Cursor, error) {
		return f.snapshot(ctx, shiftboard.Name, func(tx pgx.Tx) (any, error) {
			from, to := f.shiftWindow()
			shifts, err := shiftboard.Shifts(ctx, tx, from, to)
			if err != nil {
				return nil, err
			}
			if staff {
				return shiftsData{Shifts: orEmpty(shifts)}, nil
			}
			return shiftsData{Shifts: public(shifts)}, nil
		})
	}}
}

// MineView is a volunteer's own assignments and shifts.
func (f *Feed) MineView(volunteerID uuid.UUID, after *eventstore.Cursor) live.View {
	return live.View{Key: Mine(volunteerID), After: after, Snapshot: func(ctx context.Context) ([]byte, eventstore.Cursor, error) {
		// The position first, the state after: the state is at least as
		// new as the position, which is what a snapshot promises.
		at, err := oldestCheckpoint(ctx, f.cfg.Pool)
		if err != nil {
			return nil, eventstore.Cursor{}, err
		}
		data, err := f.mine(ctx, volunteerID)
		if err != nil {
			return nil, eventstore.Cursor{}, err
		}
		raw, err := json.Marshal(data)
		return raw, at, err
	}}
}

func orEmpty[T any](xs []T) []T {
	if xs == nil {
		return []T{}
	}
	return xs
}
