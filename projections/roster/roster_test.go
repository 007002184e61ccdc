package roster_test

import (
	"context"
	"testing"

	"github.com/presente-dispatch/presente/projections/projectiontest"
	"github.com/presente-dispatch/presente/projections/roster"
)

func TestTheRosterListsCertificationsWithExpiryAndForgetsAForgottenVolunteer(t *testing.T) {
	env := projectiontest.New(t)
	ctx := context.Background()
	d := env.MustRun(t)
	p := roster.New()
	r := env.Runner(t, p)
	env.CatchUp(t, r)
	now := env.Clock.Now()
	expiring, err := roster.Expiring(ctx, env.Pool, now, now.AddDate(1, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	// Three volunteers with two each, but the waiting one's court
	// certification was revoked.
	if len(expiring) != 5 {
		t.Errorf("%d certifications expire within the year, want 5: %+v", len(expiring), expiring)
	}
	projectiontest.NoText(t, env.Pool, p, d.Names...)

	env.Forget(t, d.Veteran)
	env.CatchUp(t, r)
	for _, table := range []string{"roster_volunteers", "roster_certifications"} {
		if n := env.Count(t, `SELECT count(*) FROM projections.`+table+` WHERE volunteer_id = $1`, d.Veteran); n != 0 {
			t.Errorf("%s holds %d rows of the forgotten volunteer", table, n)
		}
	}
	if n := env.Count(t, `SELECT count(*) FROM projections.roster_volunteers`); n != 2 {
		t.Errorf("the roster holds %d volunteers after one of three was forgotten, want 2", n)
	}
}

func TestRebuildingTheRosterGivesTheLiveRoster(t *testing.T) {
	projectiontest.CheckRebuild(t, projectiontest.New(t), roster.New())
}
