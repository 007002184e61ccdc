package timeline_test

import (
	"context"
	"testing"

	"github.com/presente-dispatch/presente/infra/eventstore"
	"github.com/presente-dispatch/presente/projections/audit"
	"github.com/presente-dispatch/presente/projections/projectiontest"
	"github.com/presente-dispatch/presente/projections/timeline"
)

func TestATimelineHoldsEveryEventOfTheRequestWithWhoAndWhen(t *testing.T) {
	env := projectiontest.New(t)
	ctx := context.Background()
	d := env.MustRun(t)
	r := env.Runner(t, timeline.New(), audit.New())
	env.CatchUp(t, r)

	history, _, err := env.Store.Load(ctx, d.Hearing)
	if err != nil {
		t.Fatal(err)
	}
	got, err := timeline.Of(ctx, env.Pool, d.Hearing)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(history) {
		t.Fatalf("timeline has %d entries, want the %d events of the request", len(got), len(history))
	}
	for i, h := range history {
		g := got[i]
		if g.Type != h.Type || g.Actor != h.Metadata.Actor || g.Reason != h.Metadata.Reason || !g.RecordedAt.Equal(h.RecordedAt) || g.Position != h.Position {
			t.Errorf("entry %d = %+v, want %s by %s (%q) at %s", i, g, h.Type, h.Metadata.Actor, h.Metadata.Reason, h.RecordedAt)
		}
	}
	if got[1].Type != "RequestCancelled" || got[1].Reason != "hearing_moved" || got[1].HappenedAt == nil {
		t.Errorf("the cancellation = %+v, want its reason and time", got[1])
	}

	all, err := env.Store.ReadAll(ctx, eventstore.Cursor{}, 100000)
	if err != nil {
		t.Fatal(err)
	}
	if n := env.Count(t, `SELECT count(*) FROM projections.audit_log`); n != len(all) {
		t.Errorf("the audit log holds %d events, want all %d", n, len(all))
	}
	last := all[len(all)-1]
	if n := env.Count(t, `SELECT count(*) FROM projections.audit_log WHERE position = $1 AND actor = $2 AND event_type = $3 AND stream_type = $4`,
		last.Position, last.Metadata.Actor, last.Type, last.StreamType); n != 1 {
		t.Errorf("the newest event is not in the audit log as recorded")
	}
}

func TestTimelinesAndTheAuditLogHoldNoPersonalData(t *testing.T) {
	env := projectiontest.New(t)
	d := env.MustRun(t)
	env.Forget(t, d.RaidPerson)
	tl, au := timeline.New(), audit.New()
	r := env.Runner(t, tl, au)
	env.CatchUp(t, r)
	secrets := append(d.Names, d.RaidPerson.String(), d.HearingPer.String())
	projectiontest.NoText(t, env.Pool, tl, secrets...)
	projectiontest.NoText(t, env.Pool, au, d.Names...)
}

func TestRebuildingTheTimelinesAndTheAuditLogGivesTheLiveOnes(t *testing.T) {
	env := projectiontest.New(t)
	projectiontest.CheckRebuild(t, env, timeline.New())
	projectiontest.CheckRebuild(t, projectiontest.New(t), audit.New())
}
