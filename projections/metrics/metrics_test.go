package metrics_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/presente-dispatch/presente/domain/account"
	"github.com/presente-dispatch/presente/domain/invitation"
	"github.com/presente-dispatch/presente/domain/organization"
	"github.com/presente-dispatch/presente/domain/privacy"
	"github.com/presente-dispatch/presente/domain/request"
	"github.com/presente-dispatch/presente/domain/retention"
	"github.com/presente-dispatch/presente/domain/shift"
	"github.com/presente-dispatch/presente/domain/training"
	"github.com/presente-dispatch/presente/domain/volunteer"
	"github.com/presente-dispatch/presente/infra/dispatch"
	"github.com/presente-dispatch/presente/infra/eventstore"
	"github.com/presente-dispatch/presente/infra/keyring"
	"github.com/presente-dispatch/presente/projections/metrics"
	"github.com/presente-dispatch/presente/projections/projectiontest"
)

// clockedEnv is a projectiontest.Env whose log records events on the test
// clock, as a server's does on its own: receipt times (the recorded time)
// and assignment times (the dispatch service's clock) then come from one
// clock, and the durations between them are the ones the test wrote.
func clockedEnv(t *testing.T) *projectiontest.Env {
	t.Helper()
	env := projectiontest.New(t)
	master, err := keyring.ParseMasterKey(keyring.GenerateMasterKey())
	if err != nil {
		t.Fatal(err)
	}
	keys, err := keyring.New(env.Pool, master)
	if err != nil {
		t.Fatal(err)
	}
	registry := eventstore.NewRegistry()
	for _, e := range slices.Concat(privacy.Events, account.Events, invitation.Events, retention.Events, volunteer.Events,
		shift.Events, request.Events, training.Events, organization.Events) {
		if err := registry.Register(e); err != nil {
			t.Fatal(err)
		}
	}
	store, err := eventstore.New(env.Pool, registry, eventstore.Options{Keys: keys, Clock: env.Clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	env.Store, env.Service = store, dispatch.New(store, dispatch.Options{Clock: env.Clock.Now})
	return env
}

// response is one request played on the clock: received at the clock's
// time, accepted after assign, arrived after arrive more, done after done
// more and resolved then; a zero step stops there.
type response struct {
	kind                 request.Kind
	subKind, region      string
	assign, arrive, done time.Duration
	cancel               bool
}

// play plays r at the clock's time by a volunteer of its own and returns
// the volunteer.
func play(t *testing.T, env *projectiontest.Env, r response) uuid.UUID {
	t.Helper()
	ctx, s, m := context.Background(), env.Service, env.Meta
	v, id := uuid.New(), uuid.New()
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	must("register", s.RegisterVolunteer(ctx, m, volunteer.Register{VolunteerID: v, Name: "Metrics Volunteer", Phone: "+1 555 0100",
		Regions: []string{r.region}, PriorAssignments: 5}))
	now := env.Clock.Now()
	must("receive", s.ReceiveRequest(ctx, m, request.Receive{RequestID: id, Kind: r.kind, SubKind: r.subKind,
		Window: projectiontest.Window(now, 2*time.Hour), Region: r.region, Needed: 1, Priority: request.High,
		PersonID: uuid.New(), PersonName: "Metrics Person"}))
	a, err := s.Offer(ctx, m, id, v, false)
	must("offer", err)
	env.Clock.Advance(r.assign)
	must("accept", s.ChangeAssignment(ctx, m, id, a, request.Accepted))
	if r.cancel {
		must("cancel", s.Request(ctx, m, id, request.Cancel{Reason: "duplicate", At: env.Clock.Now()}))
		return v
	}
	env.Clock.Advance(r.arrive)
	must("arrive", s.ChangeAssignment(ctx, m, id, a, request.Arrived))
	env.Clock.Advance(r.done)
	must("done", s.ChangeAssignment(ctx, m, id, a, request.Done))
	must("resolve", s.Request(ctx, m, id, request.Resolve{Outcome: "accompanied", At: env.Clock.Now()}))
	return v
}

// at moves the clock forward to t.
func at(env *projectiontest.Env, t time.Time) { env.Clock.Advance(t.Sub(env.Clock.Now())) }

// month is the day of the scenario (Monday 23 November 2026, ISO week 48,
// everything at 09:00: the raid is accepted and reached at once, resolved
// after 40 minutes; the hearing is cancelled, reopened and never
// accepted; the newcomer serves 45 minutes of a shift and the veteran
// completes the raid in 0 minutes), then five more requests:
//
//	week 48  Tue 10:00  rapid response, West, by X: accepted +5, arrived +25, done and resolved +55
//	         Wed 10:00  rapid response, West, by X: accepted +15, arrived +50, done and resolved +110
//	         Thu 10:00  accompaniment (ICE check-in), East: accepted +60, then cancelled
//	week 49  Mon 03:00  rapid response, West, by Y: accepted +10, arrived +30, done and resolved +45
//	         Mon 08:00  rapid response, East, by Y: accepted +2, arrived +12, done and resolved +32
//
// The Monday 03:00 UTC report falls on Sunday evening in Chicago: week 48
// there.
type month struct {
	day  projectiontest.Day
	x, y uuid.UUID
}

func playMonth(t *testing.T, env *projectiontest.Env) month {
	t.Helper()
	var mo month
	mo.day = env.MustRun(t)
	monday := projectiontest.Monday
	at(env, monday.Add(25*time.Hour))
	mo.x = play(t, env, response{kind: request.RapidResponse, region: "West", assign: 5 * time.Minute, arrive: 20 * time.Minute, done: 30 * time.Minute})
	// The same volunteer the next day.
	at(env, monday.Add(49*time.Hour))
	second := response{kind: request.RapidResponse, region: "West", assign: 15 * time.Minute, arrive: 35 * time.Minute, done: 60 * time.Minute}
	playAs(t, env, mo.x, second)
	at(env, monday.Add(73*time.Hour))
	play(t, env, response{kind: request.Accompaniment, subKind: "ice_checkin", region: "East", assign: time.Hour, cancel: true})
	at(env, monday.AddDate(0, 0, 7).Add(-6*time.Hour)) // Monday 30th, 03:00
	mo.y = play(t, env, response{kind: request.RapidResponse, region: "West", assign: 10 * time.Minute, arrive: 20 * time.Minute, done: 15 * time.Minute})
	at(env, monday.AddDate(0, 0, 7).Add(-time.Hour)) // 08:00
	playAs(t, env, mo.y, response{kind: request.RapidResponse, region: "East", assign: 2 * time.Minute, arrive: 10 * time.Minute, done: 20 * time.Minute})
	return mo
}

// playAs plays r by an already registered volunteer v.
func playAs(t *testing.T, env *projectiontest.Env, v uuid.UUID, r response) {
	t.Helper()
	ctx, s, m := context.Background(), env.Service, env.Meta
	id := uuid.New()
	if err := s.ReceiveRequest(ctx, m, request.Receive{RequestID: id, Kind: r.kind, SubKind: r.subKind,
		Window: projectiontest.Window(env.Clock.Now(), 2*time.Hour), Region: r.region, Needed: 1, Priority: request.Urgent,
		PersonID: uuid.New(), PersonName: "Metrics Person"}); err != nil {
		t.Fatal(err)
	}
	a, err := s.Offer(ctx, m, id, v, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		after time.Duration
		to    request.AssignmentStatus
	}{{r.assign, request.Accepted}, {r.arrive, request.Arrived}, {r.done, request.Done}} {
		env.Clock.Advance(step.after)
		if err := s.ChangeAssignment(ctx, m, id, a, step.to); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Request(ctx, m, id, request.Resolve{Outcome: "accompanied", At: env.Clock.Now()}); err != nil {
		t.Fatal(err)
	}
}

func stat(n int, p50, p90 time.Duration) metrics.Stat { return metrics.Stat{N: n, P50: p50, P90: p90} }

func minutes(m float64) time.Duration { return time.Duration(m * float64(time.Minute)) }

var (
	week48 = time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	week49 = week48.AddDate(0, 0, 7)
)

func TestTheWeeklyResponseTimesAreThoseOfTheRequestsReceivedInEachWeek(t *testing.T) {
	env := clockedEnv(t)
	playMonth(t, env)
	r := env.Runner(t, metrics.New())
	env.CatchUp(t, r)
	ctx := context.Background()
	from, to := week48.AddDate(0, 0, -7), week49.AddDate(0, 0, 14)

	got, err := metrics.Weekly(ctx, env.Pool, from, to, "")
	if err != nil {
		t.Fatal(err)
	}
	// Week 48: assign 0, 5, 15, 60; arrival 0, 25, 50; resolve 40, 55, 110.
	// Week 49: assign 10, 2; arrival 30, 12; resolve 45, 32.
	want := []metrics.Week{
		{Start: week48, Year: 2026, Week: 48, Received: 5, Resolved: 3, Closed: 1, Cancelled: 1,
			TimeToAssign: stat(4, minutes(10), minutes(46.5)), TimeToArrival: stat(3, minutes(25), minutes(45)),
			TimeToResolve: stat(3, minutes(55), minutes(99))},
		{Start: week49, Year: 2026, Week: 49, Received: 2, Resolved: 2,
			TimeToAssign: stat(2, minutes(6), minutes(9.2)), TimeToArrival: stat(2, minutes(21), minutes(28.2)),
			TimeToResolve: stat(2, minutes(38.5), minutes(43.7))},
	}
	checkWeeks(t, "all", got, want)

	got, err = metrics.Weekly(ctx, env.Pool, from, to, "region")
	if err != nil {
		t.Fatal(err)
	}
	want = []metrics.Week{
		{Start: week48, Year: 2026, Week: 48, Group: "East", Received: 3, Resolved: 1, Closed: 1, Cancelled: 1,
			TimeToAssign: stat(2, minutes(30), minutes(54)), TimeToArrival: stat(1, 0, 0), TimeToResolve: stat(1, minutes(40), minutes(40))},
		{Start: week48, Year: 2026, Week: 48, Group: "West", Received: 2, Resolved: 2,
			TimeToAssign: stat(2, minutes(10), minutes(14)), TimeToArrival: stat(2, minutes(37.5), minutes(47.5)),
			TimeToResolve: stat(2, minutes(82.5), minutes(104.5))},
		{Start: week49, Year: 2026, Week: 49, Group: "East", Received: 1, Resolved: 1,
			TimeToAssign: stat(1, minutes(2), minutes(2)), TimeToArrival: stat(1, minutes(12), minutes(12)), TimeToResolve: stat(1, minutes(32), minutes(32))},
		{Start: week49, Year: 2026, Week: 49, Group: "West", Received: 1, Resolved: 1,
			TimeToAssign: stat(1, minutes(10), minutes(10)), TimeToArrival: stat(1, minutes(30), minutes(30)), TimeToResolve: stat(1, minutes(45), minutes(45))},
	}
	checkWeeks(t, "by region", got, want)

	got, err = metrics.Weekly(ctx, env.Pool, from, to, "kind")
	if err != nil {
		t.Fatal(err)
	}
	want = []metrics.Week{
		{Start: week48, Year: 2026, Week: 48, Group: "accompaniment", Received: 2, Cancelled: 1, TimeToAssign: stat(1, time.Hour, time.Hour)},
		{Start: week48, Year: 2026, Week: 48, Group: "rapid_response", Received: 3, Resolved: 3, Closed: 1,
			TimeToAssign: stat(3, minutes(5), minutes(13)), TimeToArrival: stat(3, minutes(25), minutes(45)),
			TimeToResolve: stat(3, minutes(55), minutes(99))},
		{Start: week49, Year: 2026, Week: 49, Group: "rapid_response", Received: 2, Resolved: 2,
			TimeToAssign: stat(2, minutes(6), minutes(9.2)), TimeToArrival: stat(2, minutes(21), minutes(28.2)),
			TimeToResolve: stat(2, minutes(38.5), minutes(43.7))},
	}
	checkWeeks(t, "by kind", got, want)

	// Only what was received within the bounds counts.
	got, err = metrics.Weekly(ctx, env.Pool, week49, to, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Week != 49 || got[0].Received != 2 {
		t.Errorf("from week 49: %+v, want week 49 alone", got)
	}
	if _, err := metrics.Weekly(ctx, env.Pool, from, to, "volunteer"); !errors.Is(err, metrics.ErrGrouping) {
		t.Errorf("by volunteer: %v, want ErrGrouping", err)
	}
}

func checkWeeks(t *testing.T, what string, got, want []metrics.Week) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d rows, want %d:\n%+v", what, len(got), len(want), got)
	}
	for i := range want {
		g := got[i]
		g.Start = g.Start.UTC()
		if g != want[i] {
			t.Errorf("%s, row %d:\n got %+v\nwant %+v", what, i, g, want[i])
		}
	}
}

func TestVolunteerHoursCountShiftsCheckedOutAndAssignmentsDone(t *testing.T) {
	env := clockedEnv(t)
	mo := playMonth(t, env)
	r := env.Runner(t, metrics.New())
	env.CatchUp(t, r)
	ctx := context.Background()
	from, to := week48, week49.AddDate(0, 0, 7)

	got, err := metrics.VolunteerHours(ctx, env.Pool, from, to)
	if err != nil {
		t.Fatal(err)
	}
	// The newcomer's raid assignment was never done: only the shift. The
	// veteran's was done at once: one assignment of 0 minutes.
	want := []metrics.Hours{
		{Start: week48, Year: 2026, Week: 48, VolunteerID: mo.day.Newcomer, Shifts: 1, ShiftMinutes: 45},
		{Start: week48, Year: 2026, Week: 48, VolunteerID: mo.day.Veteran, Assignments: 1},
		{Start: week48, Year: 2026, Week: 48, VolunteerID: mo.x, Assignments: 2, AssignmentMinutes: 30 + 60},
		{Start: week49, Year: 2026, Week: 49, VolunteerID: mo.y, Assignments: 2, AssignmentMinutes: 15 + 20},
	}
	checkHours(t, "UTC", got, want)
	for _, h := range got {
		if h.VolunteerID == mo.x && h.Minutes() != 90 {
			t.Errorf("X served %d minutes, want 90", h.Minutes())
		}
	}

	// In Chicago the Monday-03:00-UTC report was on Sunday evening: week 48.
	if err := env.Service.SetTimeZone(ctx, env.Meta, "America/Chicago"); err != nil {
		t.Fatal(err)
	}
	env.CatchUp(t, r)
	if zone, err := metrics.TimeZone(ctx, env.Pool); err != nil || zone != "America/Chicago" {
		t.Fatalf("TimeZone = %q, %v", zone, err)
	}
	chicago48 := week48.Add(6 * time.Hour) // Monday 00:00 CST
	chicago49 := chicago48.AddDate(0, 0, 7)
	got, err = metrics.VolunteerHours(ctx, env.Pool, from, to)
	if err != nil {
		t.Fatal(err)
	}
	want = []metrics.Hours{want[0], want[1], want[2],
		{Start: week48, Year: 2026, Week: 48, VolunteerID: mo.y, Assignments: 1, AssignmentMinutes: 15},
		{Start: week49, Year: 2026, Week: 49, VolunteerID: mo.y, Assignments: 1, AssignmentMinutes: 20}}
	for i := range want {
		want[i].Start = map[int]time.Time{48: chicago48, 49: chicago49}[want[i].Week]
	}
	checkHours(t, "Chicago", got, want)

	weeks, err := metrics.Weekly(ctx, env.Pool, from, to, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(weeks) != 2 || !weeks[0].Start.Equal(chicago48) || weeks[0].Received != 6 || weeks[1].Week != 49 || weeks[1].Received != 1 {
		t.Errorf("weeks in Chicago = %+v, want 6 requests in week 48 (from %s) and 1 in week 49", weeks, chicago48)
	}
}

// checkHours compares got with want, in the order Hours are read: by
// week, then volunteer id.
func checkHours(t *testing.T, what string, got, want []metrics.Hours) {
	t.Helper()
	want = slices.Clone(want)
	slices.SortFunc(want, func(a, b metrics.Hours) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return slices.Compare(a.VolunteerID[:], b.VolunteerID[:])
	})
	if len(got) != len(want) {
		t.Fatalf("%s: %d rows, want %d:\n%+v", what, len(got), len(want), got)
	}
	for i := range want {
		g := got[i]
		g.Start = g.Start.UTC()
		if g != want[i] {
			t.Errorf("%s, row %d:\n got %+v\nwant %+v", what, i, g, want[i])
		}
	}
}

func TestTheMetricsHoldNoPersonalDataBeforeOrAfterForgetting(t *testing.T) {
	env := projectiontest.New(t)
	d := env.MustRun(t)
	p := metrics.New()
	r := env.Runner(t, p)
	env.CatchUp(t, r)
	secrets := append(d.Names, d.RaidPerson.String(), d.HearingPer.String())
	projectiontest.NoText(t, env.Pool, p, secrets...)
	before := env.Count(t, `SELECT count(*) FROM projections.metrics_assignments WHERE volunteer_id = $1`, d.Veteran)

	env.Forget(t, d.Veteran)
	env.Forget(t, d.RaidPerson)
	env.CatchUp(t, r)
	projectiontest.NoText(t, env.Pool, p, secrets...)
	// The pseudonymous id stays, as in the log: the hours served stay.
	if after := env.Count(t, `SELECT count(*) FROM projections.metrics_assignments WHERE volunteer_id = $1`, d.Veteran); after != before || after == 0 {
		t.Errorf("the forgotten volunteer's assignments went from %d to %d rows; want them kept", before, after)
	}
}

func TestRebuildingTheMetricsGivesTheLiveMetrics(t *testing.T) {
	projectiontest.CheckRebuild(t, projectiontest.New(t), metrics.New())
}
