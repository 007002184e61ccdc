package projectiontest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap/zaptest"

	"github.com/presente-dispatch/presente/domain"
	"github.com/presente-dispatch/presente/domain/request"
	"github.com/presente-dispatch/presente/domain/shift"
	"github.com/presente-dispatch/presente/domain/volunteer"
	"github.com/presente-dispatch/presente/infra/eventstore"
	"github.com/presente-dispatch/presente/projections"
)

// Day is what one run of the scenario made.
type Day struct {
	Veteran, Newcomer, Waiting uuid.UUID
	// Shift is a current court-watch shift of one slot: the veteran
	// claimed it, the newcomer waited, was promoted when the veteran let
	// go, checked in and out; the waiting volunteer joined the waitlist
	// of Later and left it.
	Shift, Later uuid.UUID
	// Raid is a rapid-response report verified, alerted, resolved and
	// closed by the veteran and the newcomer; Hearing an accompaniment
	// cancelled, reopened and left open with an offer declined.
	Raid, Hearing          uuid.UUID
	RaidPerson, HearingPer uuid.UUID
	// Names are the people's names and phones written into the log:
	// personal data no read model may hold.
	Names []string
}

// Run plays a day on the board through the dispatch service: every kind
// of event the dispatch read models follow. It is safe to run many at once
// on one Env.
func (e *Env) Run(ctx context.Context) (Day, error) {
	s, m := e.Service, e.Meta
	now := e.Clock.Now()
	tag := uuid.NewString()[:8]
	d := Day{Veteran: uuid.New(), Newcomer: uuid.New(), Waiting: uuid.New(), Shift: uuid.New(), Later: uuid.New(),
		Raid: uuid.New(), Hearing: uuid.New(), RaidPerson: uuid.New(), HearingPer: uuid.New()}
	d.Names = []string{"Veteran " + tag, "Newcomer " + tag, "Waiting " + tag, "Raid Person " + tag, "Hearing Person " + tag,
		fmt.Sprintf("+1 555 %07d", rand.IntN(10_000_000)), "Meeting " + tag}
	step := func(what string, err error) error {
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	}
	lang := []volunteer.Language{{Code: "es", Level: volunteer.Fluent}, {Code: "mam", Level: volunteer.Conversational}}
	for i, v := range []struct {
		id    uuid.UUID
		prior int
	}{{d.Veteran, 12}, {d.Newcomer, 0}, {d.Waiting, 3}} {
		if err := step("register", s.RegisterVolunteer(ctx, m, volunteer.Register{VolunteerID: v.id, Name: d.Names[i], Phone: d.Names[5],
			Languages: lang, Regions: []string{"East"}, PriorAssignments: v.prior})); err != nil {
			return d, err
		}
		for _, c := range []volunteer.Certification{"rapid_response", "court_accompaniment"} {
			if err := step("grant", s.Volunteer(ctx, m, v.id, volunteer.Grant{Certification: c, GrantedAt: now.AddDate(-1, 0, 0),
				ExpiresAt: now.AddDate(1, 0, 0)})); err != nil {
				return d, err
			}
		}
		if err := step("on call", s.Volunteer(ctx, m, v.id, volunteer.SetOnCall{OnCall: true})); err != nil {
			return d, err
		}
	}
	if err := step("revoke", s.Volunteer(ctx, m, d.Waiting, volunteer.Revoke{Certification: "court_accompaniment"})); err != nil {
		return d, err
	}

	// Shifts: a current one of one slot, and a later one.
	current := domain.Window{Start: now.Add(-time.Hour), End: now.Add(3 * time.Hour)}
	later := domain.Window{Start: now.Add(72 * time.Hour), End: now.Add(76 * time.Hour)}
	for _, sh := range []struct {
		id uuid.UUID
		w  domain.Window
	}{{d.Shift, current}, {d.Later, later}} {
		if err := step("schedule", s.ScheduleShift(ctx, m, shift.Schedule{ShiftID: sh.id, Role: "court watch", Window: sh.w,
			Region: "East", Place: "Immigration Court", Capacity: 1, Requires: []volunteer.Certification{"rapid_response"},
			Languages: []string{"es"}})); err != nil {
			return d, err
		}
	}
	for _, c := range []struct{ sh, v uuid.UUID }{{d.Shift, d.Veteran}, {d.Shift, d.Newcomer}, {d.Later, d.Veteran}, {d.Later, d.Waiting}} {
		if _, err := s.ClaimShift(ctx, m, c.sh, c.v); err != nil {
			return d, fmt.Errorf("claim: %w", err)
		}
	}
	late := m
	late.Reason = "sick"
	if err := step("release", s.ReleaseShift(ctx, late, d.Shift, d.Veteran)); err != nil { // the newcomer is promoted
		return d, err
	}
	if err := step("leave waitlist", s.ReleaseShift(ctx, m, d.Later, d.Waiting)); err != nil {
		return d, err
	}
	if err := step("check in", s.Shift(ctx, m, d.Shift, shift.CheckIn{VolunteerID: d.Newcomer, At: now.Add(-50 * time.Minute)})); err != nil {
		return d, err
	}
	if err := step("check out", s.Shift(ctx, m, d.Shift, shift.CheckOut{VolunteerID: d.Newcomer, At: now.Add(-5 * time.Minute)})); err != nil {
		return d, err
	}

	// A report of a raid, verified by both.
	raidWindow := domain.Window{Start: now, End: now.Add(2 * time.Hour)}
	if err := step("receive raid", s.ReceiveRequest(ctx, m, request.Receive{RequestID: d.Raid, Kind: request.RapidResponse,
		Window: raidWindow, Region: "East", Languages: []string{"es"}, Certifications: []volunteer.Certification{"rapid_response"},
		Needed: 2, Priority: request.Urgent, PersonID: d.RaidPerson, PersonName: d.Names[3], PersonPhone: d.Names[5],
		MeetingPoint: d.Names[6], Notes: "notes " + tag})); err != nil {
		return d, err
	}
	if err := step("triage", s.Request(ctx, m, d.Raid, request.Triage{Priority: request.Urgent})); err != nil {
		return d, err
	}
	var assignments []uuid.UUID
	for _, v := range []uuid.UUID{d.Veteran, d.Newcomer} {
		a, err := s.Offer(ctx, m, d.Raid, v, false)
		if err != nil {
			return d, fmt.Errorf("offer: %w", err)
		}
		assignments = append(assignments, a)
	}
	for _, to := range []request.AssignmentStatus{request.Accepted, request.EnRoute, request.Arrived} {
		for _, a := range assignments {
			if err := step("assignment "+string(to), s.ChangeAssignment(ctx, m, d.Raid, a, to)); err != nil {
				return d, err
			}
		}
	}
	for _, c := range []request.Command{request.Verify{Outcome: request.Confirmed}, request.Alert{}} {
		if err := step("verify", s.Request(ctx, m, d.Raid, c)); err != nil {
			return d, err
		}
	}
	if err := step("done", s.ChangeAssignment(ctx, m, d.Raid, assignments[0], request.Done)); err != nil {
		return d, err
	}
	for _, c := range []request.Command{request.Resolve{Outcome: "verified_no_action", At: now.Add(40 * time.Minute)},
		request.Close{At: now.Add(50 * time.Minute)}} {
		if err := step("resolve", s.Request(ctx, m, d.Raid, c)); err != nil {
			return d, err
		}
	}

	// A hearing: cancelled, reopened, offered and declined.
	hearing := domain.Window{Start: now.Add(48 * time.Hour), End: now.Add(50 * time.Hour)}
	if err := step("receive hearing", s.ReceiveRequest(ctx, m, request.Receive{RequestID: d.Hearing, Kind: request.Accompaniment,
		SubKind: "court_hearing", Window: hearing, Region: "East", Needed: 1, Priority: request.Normal, PersonID: d.HearingPer,
		PersonName: d.Names[4], PersonPhone: d.Names[5]})); err != nil {
		return d, err
	}
	cancel := m
	cancel.Reason = "hearing_moved"
	if err := step("cancel", s.Request(ctx, cancel, d.Hearing, request.Cancel{Reason: "hearing_moved", At: now})); err != nil {
		return d, err
	}
	if err := step("reopen", s.Request(ctx, cancel, d.Hearing, request.Reopen{Reason: "rescheduled"})); err != nil {
		return d, err
	}
	a, err := s.Offer(ctx, m, d.Hearing, d.Veteran, false)
	if err != nil {
		return d, fmt.Errorf("offer hearing: %w", err)
	}
	if err := step("decline", s.ChangeAssignment(ctx, m, d.Hearing, a, request.Declined)); err != nil {
		return d, err
	}
	if _, err := s.Offer(ctx, m, d.Hearing, d.Waiting, false); err != nil {
		return d, fmt.Errorf("offer hearing again: %w", err)
	}
	return d, nil
}

// MustRun runs the scenario once and fails tb if it fails.
func (e *Env) MustRun(tb testing.TB) Day {
	tb.Helper()
	d, err := e.Run(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

// CheckRebuild proves that rebuilding p gives the read model it keeps
// live. It runs p and a twin of it (projections.Twin) live while the
// scenario runs on two goroutines, rebuilds p twice meanwhile while a
// reader keeps reading p's tables, then compares p's tables with the
// twin's, which were never rebuilt, row for row; and again after a
// rebuild at rest.
func CheckRebuild(t *testing.T, env *Env, p projections.Projector) {
	t.Helper()
	twin := projections.Twin(p, "twin_")
	// The runner logs each rebuild's cursors: a failure below shows them.
	r := env.RunnerWith(t, projections.Options{BatchSize: 5, PollInterval: 5 * time.Millisecond, Logger: zaptest.NewLogger(t)}, p, twin)
	ctx := context.Background()
	live, stopLive := context.WithCancel(ctx)
	running := r.Start(live)
	stopped := false
	stopRunner := func() {
		if !stopped {
			stopped = true
			stopLive()
			<-running
		}
	}
	defer stopRunner()
	env.MustRun(t)
	env.CatchUp(t, r)

	traffic, stop := context.WithCancel(ctx)
	errs := make(chan error, 3)
	for range 2 {
		go func() {
			for traffic.Err() == nil {
				if _, err := env.Run(traffic); err != nil && traffic.Err() == nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	reads := 0
	go func() {
		live := projections.Live(p)
		for traffic.Err() == nil {
			for _, base := range p.Tables() {
				var n int
				if err := env.Pool.QueryRow(traffic, `SELECT count(*) FROM `+live.Table(base)).Scan(&n); err != nil && traffic.Err() == nil {
					errs <- fmt.Errorf("a reader of %s during the rebuild: %w", base, err)
					return
				}
				reads++
			}
		}
		errs <- nil
	}()
	for range 2 {
		if err := r.Rebuild(ctx, p.Name()); err != nil {
			t.Fatal(err)
		}
	}
	stop()
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if reads == 0 {
		t.Error("the reader never read during the rebuilds")
	}
	// Compare at rest: the background runner stopped, and no command of
	// the stopped traffic still committing (a command whose context was
	// cancelled can commit a moment later). Otherwise the comparison could
	// catch one table having applied a late event the other has not yet.
	stopRunner()
	quiesce(t, env)
	env.CatchUp(t, r)
	compare(t, env, r, p, twin)

	if err := r.Rebuild(ctx, p.Name()); err != nil {
		t.Fatal(err)
	}
	compare(t, env, r, p, twin)
}

// quiesce waits until no other transaction of the test database holds a
// transaction id and the log has stopped growing.
func quiesce(t *testing.T, env *Env) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	last := -1
	for {
		busy := env.Count(t, `SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND backend_xid IS NOT NULL AND pid <> pg_backend_pid()`)
		events := env.Count(t, `SELECT count(*) FROM events`)
		if busy == 0 && events == last {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the test database never came to rest: %d transactions writing, %d events", busy, events)
		}
		last = events
		time.Sleep(50 * time.Millisecond)
	}
}

func compare(t *testing.T, env *Env, r *projections.Runner, p, twin projections.Projector) {
	t.Helper()
	failed := t.Failed()
	defer func() {
		if !failed && t.Failed() {
			explain(t, env, r)
		}
	}()
	live, other := projections.Live(p), projections.Live(twin)
	total := 0
	for _, base := range p.Tables() {
		SameRows(t, env.Pool, live.Table(base), other.Table("twin_"+base))
		total += env.Count(t, `SELECT count(*) FROM `+live.Table(base))
	}
	if total == 0 {
		t.Errorf("%s's tables are empty: the comparison proves nothing", p.Name())
	}
}

// explain reports where each projection stands, by the runner and by its
// checkpoint row, and the log's head, so that a rebuilt read model that
// differs from its twin says which cursor was wrong.
func explain(t *testing.T, env *Env, r *projections.Runner) {
	t.Helper()
	t.Logf("the log's head is %s", env.Head(t))
	for _, s := range r.Status() {
		var c eventstore.Cursor
		if err := env.Pool.QueryRow(context.Background(), `SELECT tx_id, position FROM projection_checkpoints WHERE name = $1`, s.Name).
			Scan(&c.TxID, &c.Position); err != nil {
			t.Logf("%s: checkpoint: %v", s.Name, err)
			continue
		}
		t.Logf("%s: the runner is at %s, the checkpoint at %s, %d events behind, problem %q", s.Name, s.Cursor, c, s.LagEvents, s.Problem)
	}
}

// CheckSameAsReference plays the scenario many times at once, forgets a
// volunteer, and keeps p and reference (the same read model written
// another way) with batches of several sizes: every table must hold the
// same rows. Tables in mayBeEmpty may end empty; any other empty table
// fails, as comparing it would prove nothing.
func CheckSameAsReference(t *testing.T, env *Env, p, reference projections.Projector, mayBeEmpty ...string) {
	t.Helper()
	ctx := context.Background()
	errs := make(chan error, 6)
	for range 6 {
		go func() {
			_, err := env.Run(ctx)
			errs <- err
		}()
	}
	for range 6 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	d := env.MustRun(t)
	env.Forget(t, d.Newcomer)
	env.MustRun(t)
	for _, size := range []int{1, 7, 5000} {
		name := fmt.Sprintf("batch%d_", size)
		applied, ref := projections.Twin(p, name), projections.Twin(reference, name+"ref_")
		r := env.RunnerWith(t, projections.Options{BatchSize: size}, applied, ref)
		env.CatchUp(t, r)
		a, b := projections.Live(applied), projections.Live(ref)
		for _, base := range p.Tables() {
			SameRows(t, env.Pool, a.Table(name+base), b.Table(name+"ref_"+base))
			if n := env.Count(t, `SELECT count(*) FROM `+a.Table(name+base)); n == 0 && !slices.Contains(mayBeEmpty, base) {
				t.Errorf("%s is empty: the comparison proves nothing", base)
			}
		}
	}
}
