package privacy_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/presente-dispatch/presente/domain"
	privacydomain "github.com/presente-dispatch/presente/domain/privacy"
	"github.com/presente-dispatch/presente/domain/retention"
	"github.com/presente-dispatch/presente/infra/credentials"
	"github.com/presente-dispatch/presente/infra/eventstore"
	"github.com/presente-dispatch/presente/infra/idempotency"
	"github.com/presente-dispatch/presente/infra/keyring"
	"github.com/presente-dispatch/presente/infra/postgres/pgtest"
	"github.com/presente-dispatch/presente/infra/privacy"
	"github.com/presente-dispatch/presente/infra/sessions"
	"github.com/presente-dispatch/presente/infra/testclock"
)

// personReported is a test event with personal data of one person.
type personReported struct {
	PersonID uuid.UUID `json:"person_id"`
	Name     string    `json:"name" pii:"person_id"`
}

func (personReported) EventType() string { return "PersonReported" }

const day = 24 * time.Hour

type env struct {
	pool   *pgxpool.Pool
	store  *eventstore.Store
	keys   *keyring.Keyring
	master keyring.MasterKey
	clock  *testclock.Clock
}

func newEnv(t *testing.T) *env {
	t.Helper()
	pool := pgtest.NewPool(t)
	master, err := keyring.ParseMasterKey(keyring.GenerateMasterKey())
	if err != nil {
		t.Fatal(err)
	}
	keys, err := keyring.New(pool, master)
	if err != nil {
		t.Fatal(err)
	}
	reg := eventstore.NewRegistry()
	for _, e := range slices.Concat([]domain.Event{personReported{}}, privacydomain.Events, retention.Events) {
		if err := reg.Register(e); err != nil {
			t.Fatal(err)
		}
	}
	store, err := eventstore.New(pool, reg, eventstore.Options{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	return &env{pool: pool, store: store, keys: keys, master: master,
		clock: testclock.New(time.Date(2026, 5, 4, 6, 40, 0, 0, time.UTC))}
}

// report stores personal data of person in a new stream and returns it.
func (e *env) report(t *testing.T, person uuid.UUID, name string) uuid.UUID {
	t.Helper()
	stream := uuid.New()
	if _, err := e.store.Append(context.Background(), eventstore.Stream{Type: "request", ID: stream}, 0,
		eventstore.Metadata{Actor: "user:test"}, personReported{PersonID: person, Name: name}); err != nil {
		t.Fatal(err)
	}
	return stream
}

// name reads back the name a report stream holds.
func (e *env) name(t *testing.T, stream uuid.UUID) string {
	t.Helper()
	recs, _, err := e.store.Load(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	got := recs[0].Event.(personReported).Name
	if recs[0].Forgotten != (got == eventstore.Forgotten) {
		t.Errorf("stream %s reads name %q with Forgotten = %v", stream, got, recs[0].Forgotten)
	}
	return got
}

// forgettings returns the events recorded on subject's stream.
func (e *env) forgettings(t *testing.T, subject uuid.UUID) []eventstore.Recorded {
	t.Helper()
	recs, _, err := e.store.Load(context.Background(), privacydomain.StreamID(subject))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if got, ok := r.Event.(privacydomain.SubjectForgotten); !ok || got.SubjectID != subject {
			t.Errorf("subject %s's stream holds %#v", subject, r.Event)
		}
	}
	return recs
}

// runs returns the retention runs recorded, with their metadata.
func (e *env) runs(t *testing.T) ([]retention.RunCompleted, []eventstore.Metadata) {
	t.Helper()
	recs, _, err := e.store.Load(context.Background(), retention.StreamID)
	if err != nil {
		t.Fatal(err)
	}
	var runs []retention.RunCompleted
	var metas []eventstore.Metadata
	for _, r := range recs {
		if run, ok := r.Event.(retention.RunCompleted); ok {
			runs = append(runs, run)
			metas = append(metas, r.Metadata)
		}
	}
	return runs, metas
}

func (e *env) retention(t *testing.T, sources ...privacy.Source) *privacy.Retention {
	t.Helper()
	r, err := privacy.NewRetention(e.pool, e.store, privacy.RetentionOptions{Clock: e.clock.Now, Sources: sources})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// closedRequest is a person whose request closed at a time.
type closedRequest struct {
	person uuid.UUID
	closed time.Time
}

// closedRequests is a source like the one requests will offer: the people
// of the requests closed before the cutoff.
func closedRequests(reqs ...closedRequest) privacy.Source {
	return privacy.Source{Name: "closed requests", Due: func(_ context.Context, cutoff time.Time) ([]uuid.UUID, error) {
		var due []uuid.UUID
		for _, r := range reqs {
			if r.closed.Before(cutoff) {
				due = append(due, r.person)
			}
		}
		return due, nil
	}}
}

func TestRunForgetsOnlyTheSubjectsWhoseRetentionRanOut(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	ana, rosa := uuid.New(), uuid.New()
	anaStream, rosaStream := e.report(t, ana, "Ana Lucía Tzul"), e.report(t, rosa, "Rosa Pérez")
	now := e.clock.Now()
	r := e.retention(t, closedRequests(
		closedRequest{person: ana, closed: now.Add(-31 * day)},
		closedRequest{person: rosa, closed: now.Add(-29 * day)},
	))

	run, err := r.Run(ctx)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got, want := run.Cutoff, now.Add(-30*day); !got.Equal(want) {
		t.Errorf("cutoff = %s, want %s (30 days by default)", got, want)
	}
	if !slices.Equal(run.Forgotten, []uuid.UUID{ana}) || run.Due != 1 || run.Failed != 0 || run.OnHold || !run.Recorded {
		t.Errorf("first run = %+v, want Ana forgotten and recorded", run)
	}
	if got := e.name(t, anaStream); got != eventstore.Forgotten {
		t.Errorf("Ana's name reads %q after her retention ran out, want %q", got, eventstore.Forgotten)
	}
	if got := e.name(t, rosaStream); got != "Rosa Pérez" {
		t.Errorf("Rosa, not yet due, reads %q", got)
	}
	forgot := e.forgettings(t, ana)
	if len(forgot) != 1 {
		t.Fatalf("Ana's forgettings: %d, want 1", len(forgot))
	}
	if m := forgot[0].Metadata; m.Actor != "system:retention" || m.Reason != "retention" {
		t.Errorf("Ana's forgetting records actor %q, reason %q; want system:retention, retention", m.Actor, m.Reason)
	}
	runs, metas := e.runs(t)
	if len(runs) != 1 {
		t.Fatalf("recorded runs: %d, want 1", len(runs))
	}
	if got := runs[0]; !got.Cutoff.Equal(run.Cutoff) || !got.At.Equal(now) || !slices.Equal(got.Forgotten, []uuid.UUID{ana}) || got.Failed != 0 {
		t.Errorf("recorded run = %+v", got)
	}
	if metas[0].CorrelationID != forgot[0].Metadata.CorrelationID {
		t.Error("the run and the forgetting it did do not share a correlation id")
	}

	// Two days later Rosa is due too; Ana is not forgotten again.
	e.clock.Advance(2 * day)
	run, err = r.Run(ctx)
	if err != nil {
		t.Fatalf("second Run: %v", err)
	}
	if !slices.Equal(run.Forgotten, []uuid.UUID{rosa}) || run.Due != 2 || run.Skipped != 1 {
		t.Errorf("second run = %+v, want Rosa forgotten and Ana skipped", run)
	}
	if got := e.name(t, rosaStream); got != eventstore.Forgotten {
		t.Errorf("Rosa reads %q after her retention ran out", got)
	}

	// Running again changes nothing and does not fail.
	run, err = r.Run(ctx)
	if err != nil {
		t.Fatalf("third Run: %v", err)
	}
	if len(run.Forgotten) != 0 || run.Skipped != 2 || run.Failed != 0 || !run.Recorded {
		t.Errorf("third run = %+v, want both skipped", run)
	}
	for _, s := range []uuid.UUID{ana, rosa} {
		if n := len(e.forgettings(t, s)); n != 1 {
			t.Errorf("subject forgotten %d times, want once", n)
		}
	}
	if runs, _ := e.runs(t); len(runs) != 3 || len(runs[2].Forgotten) != 0 {
		t.Errorf("recorded runs = %+v, want three, the last forgetting no one", runs)
	}
	st, err := r.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.OnHold || !st.LastRun.Equal(e.clock.Now()) || st.LastForgotten != 0 || st.Period != privacy.DefaultPeriod {
		t.Errorf("status = %+v", st)
	}
}

func TestALegalHoldPausesRetentionUntilLifted(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	ana := uuid.New()
	anaStream := e.report(t, ana, "Ana Lucía Tzul")
	r := e.retention(t, closedRequests(closedRequest{person: ana, closed: e.clock.Now().Add(-40 * day)}))

	if err := r.PlaceHold(ctx, "user:coordinator", ""); err == nil {
		t.Error("a hold without a reason was placed")
	}
	if err := r.PlaceHold(ctx, "user:coordinator", "subpoena, matter 2026-017"); err != nil {
		t.Fatalf("PlaceHold: %v", err)
	}
	heldAt := e.clock.Now()
	if err := r.PlaceHold(ctx, "user:other-coordinator", "again"); !errors.Is(err, retention.ErrAlreadyOnHold) {
		t.Errorf("second hold: err = %v, want ErrAlreadyOnHold", err)
	}
	e.clock.Advance(day)

	run, err := r.Run(ctx)
	if err != nil {
		t.Fatalf("Run under a hold: %v", err)
	}
	if !run.OnHold || !run.HeldSince.Equal(heldAt) || len(run.Forgotten) != 0 || run.Recorded {
		t.Errorf("run under a hold = %+v, want it stopped, forgetting no one", run)
	}
	if got := e.name(t, anaStream); got != "Ana Lucía Tzul" {
		t.Errorf("under a hold Ana reads %q", got)
	}
	if n := len(e.forgettings(t, ana)); n != 0 {
		t.Errorf("under a hold %d forgettings were recorded", n)
	}
	if runs, _ := e.runs(t); len(runs) != 0 {
		t.Errorf("under a hold runs were recorded: %+v", runs)
	}
	st, err := r.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !st.OnHold || !st.HeldSince.Equal(heldAt) || !st.LastRun.IsZero() {
		t.Errorf("status under a hold = %+v", st)
	}

	if err := r.LiftHold(ctx, "user:coordinator", "matter closed"); err != nil {
		t.Fatalf("LiftHold: %v", err)
	}
	if err := r.LiftHold(ctx, "user:coordinator", ""); !errors.Is(err, retention.ErrNotOnHold) {
		t.Errorf("lifting twice: err = %v, want ErrNotOnHold", err)
	}
	run, err = r.Run(ctx)
	if err != nil {
		t.Fatalf("Run after lifting: %v", err)
	}
	if run.OnHold || !slices.Equal(run.Forgotten, []uuid.UUID{ana}) || !run.Recorded {
		t.Errorf("run after lifting = %+v, want Ana forgotten", run)
	}
	if got := e.name(t, anaStream); got != eventstore.Forgotten {
		t.Errorf("after lifting Ana reads %q", got)
	}
	recs, _, err := e.store.Load(ctx, retention.StreamID)
	if err != nil {
		t.Fatal(err)
	}
	var trail []string
	for _, rec := range recs {
		trail = append(trail, rec.Type+" by "+rec.Metadata.Actor+": "+rec.Metadata.Reason)
	}
	want := []string{
		"LegalHoldPlaced by user:coordinator: subpoena, matter 2026-017",
		"LegalHoldLifted by user:coordinator: matter closed",
		"RetentionRunCompleted by system:retention: retention",
	}
	if !slices.Equal(trail, want) {
		t.Errorf("retention stream:\n%s\nwant:\n%s", strings.Join(trail, "\n"), strings.Join(want, "\n"))
	}
}

func TestAHoldPlacedDuringARunStopsIt(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	ana := uuid.New()
	anaStream := e.report(t, ana, "Ana Lucía Tzul")
	var r *privacy.Retention
	// The hold arrives after the run has checked for one, while it lists
	// who is due.
	holdingSource := privacy.Source{Name: "closed requests", Due: func(ctx context.Context, _ time.Time) ([]uuid.UUID, error) {
		if err := r.PlaceHold(ctx, "user:coordinator", "subpoena"); err != nil {
			return nil, err
		}
		return []uuid.UUID{ana}, nil
	}}
	r = e.retention(t, holdingSource)

	run, err := r.Run(ctx)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !run.OnHold || len(run.Forgotten) != 0 || run.Recorded {
		t.Errorf("run = %+v, want it stopped by the hold before forgetting anyone", run)
	}
	if got := e.name(t, anaStream); got != "Ana Lucía Tzul" {
		t.Errorf("Ana reads %q: the run forgot her despite the hold", got)
	}
	if runs, _ := e.runs(t); len(runs) != 0 {
		t.Errorf("a run stopped by a hold was recorded: %+v", runs)
	}
}

func TestAFailingSourceDoesNotStopTheOthers(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	ana := uuid.New()
	anaStream := e.report(t, ana, "Ana Lucía Tzul")
	broken := privacy.Source{Name: "expired invitations", Due: func(context.Context, time.Time) ([]uuid.UUID, error) {
		return nil, errors.New("projection not ready")
	}}
	r := e.retention(t, broken, closedRequests(closedRequest{person: ana, closed: e.clock.Now().Add(-31 * day)}))

	run, err := r.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), `"expired invitations"`) {
		t.Errorf("Run err = %v, want it to name the failing source", err)
	}
	if !slices.Equal(run.Forgotten, []uuid.UUID{ana}) || !run.Recorded {
		t.Errorf("run = %+v, want Ana forgotten and the run recorded", run)
	}
	if got := e.name(t, anaStream); got != eventstore.Forgotten {
		t.Errorf("Ana reads %q", got)
	}
}

func TestASubjectThatCannotBeForgottenIsCountedAndTriedAgain(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	ana, blocked := uuid.New(), uuid.New()
	e.report(t, ana, "Ana Lucía Tzul")
	// Another aggregate's events in the blocked subject's stream: its
	// forgetting cannot be recorded.
	if _, err := e.store.Append(ctx, eventstore.Stream{Type: "request", ID: privacydomain.StreamID(blocked)}, 0,
		eventstore.Metadata{Actor: "user:test"}, personReported{PersonID: uuid.New(), Name: "someone"}); err != nil {
		t.Fatal(err)
	}
	long := e.clock.Now().Add(-31 * day)
	r := e.retention(t, closedRequests(closedRequest{person: blocked, closed: long}, closedRequest{person: ana, closed: long}))

	for i := range 2 {
		run, err := r.Run(ctx)
		if err == nil || !strings.Contains(err.Error(), "1 of") {
			t.Errorf("run %d err = %v, want it to say a subject could not be forgotten", i+1, err)
		}
		if run.Failed != 1 || !run.Recorded {
			t.Errorf("run %d = %+v, want one failure, recorded", i+1, run)
		}
	}
	runs, _ := e.runs(t)
	if len(runs) != 2 || runs[0].Failed != 1 || runs[1].Failed != 1 || !slices.Equal(runs[0].Forgotten, []uuid.UUID{ana}) {
		t.Errorf("recorded runs = %+v, want the failure recorded and retried", runs)
	}
}

func TestStartRunsUntilItsContextEndsAndLogsNoSubjectIDs(t *testing.T) {
	e := newEnv(t)
	ana, secret := uuid.New(), uuid.New()
	e.report(t, ana, "Ana Lucía Tzul")
	core, logs := observer.New(zapcore.DebugLevel)
	leaky := privacy.Source{Name: "leaky", Due: func(context.Context, time.Time) ([]uuid.UUID, error) {
		return nil, fmt.Errorf("cannot read subject %s", secret)
	}}
	r, err := privacy.NewRetention(e.pool, e.store, privacy.RetentionOptions{
		Interval: time.Millisecond, Clock: e.clock.Now, Logger: zap.New(core),
		Sources: []privacy.Source{leaky, closedRequests(closedRequest{person: ana, closed: e.clock.Now().Add(-31 * day)})},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := r.Start(ctx)
	defer func() { cancel(); <-done }()

	deadline := time.Now().Add(20 * time.Second)
	for {
		runs, _ := e.runs(t)
		if len(runs) >= 2 && logs.FilterMessage("retention run incomplete").Len() >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Start recorded %d runs within 20s; logs: %v", len(runs), logs.All())
		}
		time.Sleep(5 * time.Millisecond) // polling with a deadline, not waiting for a guessed time
	}
	cancel()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Start did not stop when its context ended")
	}

	for _, entry := range logs.All() {
		line := entry.Message + fmt.Sprint(entry.ContextMap())
		if strings.Contains(line, secret.String()) || strings.Contains(line, ana.String()) {
			t.Errorf("a log line names a subject: %s", line)
		}
	}
	first := logs.FilterMessage("retention run incomplete").All()[0].ContextMap()
	if first["forgotten"] != int64(1) || !strings.Contains(fmt.Sprint(first["error"]), `"leaky"`) {
		t.Errorf("first run logged %v, want one forgotten and the failing source named", first)
	}
}

func TestNewRetentionRefusesIncompleteOptions(t *testing.T) {
	e := newEnv(t)
	due := func(context.Context, time.Time) ([]uuid.UUID, error) { return nil, nil }
	for name, opts := range map[string]privacy.RetentionOptions{
		"a negative period":       {Period: -time.Hour},
		"a negative interval":     {Interval: -time.Hour},
		"a source without a name": {Sources: []privacy.Source{{Due: due}}},
		"a source without Due":    {Sources: []privacy.Source{{Name: "closed requests"}}},
		"two sources of one name": {Sources: []privacy.Source{{Name: "a", Due: due}, {Name: "a", Due: due}}},
	} {
		if _, err := privacy.NewRetention(e.pool, e.store, opts); err == nil {
			t.Errorf("NewRetention accepted %s", name)
		}
	}
	if _, err := privacy.NewRetention(nil, e.store, privacy.RetentionOptions{}); err == nil {
		t.Error("NewRetention accepted a nil pool")
	}
	r, err := privacy.NewRetention(e.pool, e.store, privacy.RetentionOptions{Period: 90 * day})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := r.Status(context.Background()); err != nil || st.Period != 90*day {
		t.Errorf("Status = %+v, %v; want the configured period", st, err)
	}
}

func TestForgetShredsTheSubjectAndUnlinksTheirAccount(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	user := uuid.New()
	stream := e.report(t, user, "Ana Lucía Tzul")
	if err := credentials.New(e.pool, e.master).Create(ctx, user, "ana@example.org", "$argon2id$hash"); err != nil {
		t.Fatal(err)
	}
	sessionStore := sessions.New(e.pool, sessions.Options{})
	token, _, err := sessionStore.Create(ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	keep := idempotency.New(e.pool, e.master, idempotency.Options{})
	if _, err := keep.Begin(ctx, idempotency.UserScope(user), "retry-1", []byte("fingerprint")); err != nil {
		t.Fatal(err)
	}
	if err := keep.Complete(ctx, idempotency.UserScope(user), "retry-1", idempotency.Response{Status: 201, Body: []byte(`{"name":"Ana"}`)}); err != nil {
		t.Fatal(err)
	}
	meta := eventstore.Metadata{Actor: "user:coordinator", Reason: string(privacydomain.ReasonAsked)}

	for _, bad := range []eventstore.Metadata{
		{Actor: "user:coordinator", Reason: "Ana asked us"},
		{Actor: "user:coordinator"},
		{Reason: "asked"},
	} {
		if _, err := privacy.Forget(ctx, e.pool, e.store, user, bad); err == nil {
			t.Errorf("Forget accepted metadata %+v", bad)
		}
	}
	if got := e.name(t, stream); got != "Ana Lucía Tzul" {
		t.Fatalf("a refused Forget destroyed data anyway: name reads %q", got)
	}
	if _, err := privacy.Forget(ctx, e.pool, e.store, uuid.Nil, meta); err == nil {
		t.Error("Forget accepted the nil subject")
	}

	already, err := privacy.Forget(ctx, e.pool, e.store, user, meta)
	if err != nil || already {
		t.Fatalf("Forget = %v, %v; want forgotten now", already, err)
	}
	if got := e.name(t, stream); got != eventstore.Forgotten {
		t.Errorf("after Forget the name reads %q", got)
	}
	if _, err := e.keys.DataKey(ctx, user); !errors.Is(err, keyring.ErrForgotten) {
		t.Errorf("after Forget the key is still there: %v", err)
	}
	if _, _, err := credentials.New(e.pool, e.master).Lookup(ctx, "ana@example.org"); !errors.Is(err, credentials.ErrNotFound) {
		t.Errorf("after Forget, credentials Lookup err = %v, want ErrNotFound", err)
	}
	if _, err := sessionStore.Lookup(ctx, token); !errors.Is(err, sessions.ErrInvalid) {
		t.Errorf("after Forget the session still works: %v", err)
	}
	if replay, err := keep.Begin(ctx, idempotency.UserScope(user), "retry-1", []byte("fingerprint")); err != nil || replay != nil {
		t.Errorf("after Forget a kept answer of theirs replays: %+v, %v", replay, err)
	}
	recs := e.forgettings(t, user)
	if len(recs) != 1 || recs[0].Metadata.Actor != "user:coordinator" || recs[0].Metadata.Reason != "asked" {
		t.Fatalf("forgettings = %+v, want one by user:coordinator, asked", recs)
	}

	already, err = privacy.Forget(ctx, e.pool, e.store, user, meta)
	if err != nil || !already {
		t.Errorf("forgetting twice = %v, %v; want already forgotten", already, err)
	}
	if n := len(e.forgettings(t, user)); n != 1 {
		t.Errorf("forgetting twice recorded it %d times, want once", n)
	}
}

func TestForgetRecordsAForgettingWhoseRecordWasLost(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	subject := uuid.New()
	e.report(t, subject, "Rosa Pérez")
	// The key was destroyed, then the process died before recording it.
	if _, err := e.keys.Forget(ctx, subject); err != nil {
		t.Fatal(err)
	}
	r := e.retention(t, closedRequests(closedRequest{person: subject, closed: e.clock.Now().Add(-31 * day)}))
	run, err := r.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if run.Skipped != 1 || len(run.Forgotten) != 0 {
		t.Errorf("run = %+v, want the subject counted as already forgotten", run)
	}
	if n := len(e.forgettings(t, subject)); n != 1 {
		t.Errorf("forgettings recorded: %d, want the lost one recorded now", n)
	}
}
