package audit_test

import (
	"context"
	"testing"

	"github.com/presente-dispatch/presente/infra/eventstore"
	"github.com/presente-dispatch/presente/projections/audit"
	"github.com/presente-dispatch/presente/projections/projectiontest"
)

func TestPagingTheAuditLogGivesEveryEventOnceInTheLogsOrder(t *testing.T) {
	env := projectiontest.New(t)
	ctx := context.Background()
	d := env.MustRun(t)
	r := env.Runner(t, audit.New())
	env.CatchUp(t, r)

	var log []eventstore.Recorded
	for from := (eventstore.Cursor{}); ; {
		batch, err := env.Store.ReadAll(ctx, from, 500)
		if err != nil {
			t.Fatal(err)
		}
		if len(batch) == 0 {
			break
		}
		log = append(log, batch...)
		from = batch[len(batch)-1].Cursor()
	}
	if len(log) < 10 {
		t.Fatalf("the scenario wrote %d events: too few to page", len(log))
	}

	var got []audit.Entry
	pages := 0
	for after := (eventstore.Cursor{}); ; pages++ {
		page, err := audit.Page(ctx, env.Pool, after, 7)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > 7 {
			t.Fatalf("a page of %d entries, asked for 7", len(page))
		}
		if len(page) == 0 {
			break
		}
		got = append(got, page...)
		after = page[len(page)-1].Cursor
	}
	if want := (len(log) + 6) / 7; pages != want {
		t.Errorf("%d pages of 7, want %d", pages, want)
	}
	if len(got) != len(log) {
		t.Fatalf("%d entries paged, want the log's %d", len(got), len(log))
	}
	sawRaid := false
	for i, e := range log {
		g := got[i]
		if g.Cursor != e.Cursor() || g.EventType != e.Type || g.StreamID != e.StreamID || g.StreamType != e.StreamType ||
			g.StreamVersion != e.StreamVersion || g.Actor != e.Metadata.Actor || g.CorrelationID != e.Metadata.CorrelationID ||
			!g.RecordedAt.Equal(e.RecordedAt) {
			t.Errorf("entry %d = %+v, want event %s %s v%d at %s by %s", i, g, e.Type, e.StreamID, e.StreamVersion, e.Cursor(), e.Metadata.Actor)
		}
		sawRaid = sawRaid || e.StreamID == d.Raid
	}
	if !sawRaid {
		t.Error("the raid's events are not in the log read")
	}

	// A limit out of range is taken as the largest page.
	all, err := audit.Page(ctx, env.Pool, eventstore.Cursor{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != min(len(log), audit.MaxPage) {
		t.Errorf("a page with no limit holds %d entries, want %d", len(all), min(len(log), audit.MaxPage))
	}
}
