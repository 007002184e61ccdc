package board_test

import (
	"context"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/presente-dispatch/presente/projections/board"
	"github.com/presente-dispatch/presente/projections/projectiontest"
)

func TestTheBoardAgreesWithTheRequestsAndVolunteersItFollows(t *testing.T) {
	env := projectiontest.New(t)
	ctx := context.Background()
	d := env.MustRun(t)
	r := env.Runner(t, board.New())
	env.CatchUp(t, r)

	for _, id := range []uuid.UUID{d.Raid, d.Hearing} {
		st, err := env.Service.RequestState(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		got, found, err := board.RequestByID(ctx, env.Pool, id)
		if err != nil || !found {
			t.Fatalf("RequestByID(%s) = found %v, %v", id, found, err)
		}
		if got.Status != string(st.Status()) || got.Priority != string(st.Priority) || got.Region != st.Region || got.Needed != st.Needed {
			t.Errorf("board request = %s %s %s %d, want %s %s %s %d", got.Status, got.Priority, got.Region, got.Needed,
				st.Status(), st.Priority, st.Region, st.Needed)
		}
		if v := st.Verification; v != "" && (got.Verification == nil || *got.Verification != string(v)) {
			t.Errorf("verification = %v, want %s", got.Verification, v)
		}
		if len(got.Assignments) != len(st.Assignments) {
			t.Fatalf("%d assignments on the board, want %d", len(got.Assignments), len(st.Assignments))
		}
		for i, a := range st.Assignments {
			if g := got.Assignments[i]; g.AssignmentID != a.AssignmentID || g.VolunteerID != a.VolunteerID || g.Status != string(a.Status) {
				t.Errorf("assignment %d = %+v, want %+v", i, g, a)
			}
		}
	}
	open, err := board.OpenRequests(ctx, env.Pool)
	if err != nil {
		t.Fatal(err)
	}
	if len(open) != 1 || open[0].RequestID != d.Hearing || open[0].Status != "assigned" {
		t.Errorf("open requests = %+v, want only the hearing, assigned (the raid is closed)", open)
	}

	now := env.Clock.Now()
	avail, err := board.Available(ctx, env.Pool, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(avail) != 3 {
		t.Fatalf("%d volunteers available, want the 3 on call", len(avail))
	}
	for _, v := range avail {
		st, err := env.Service.VolunteerState(ctx, v.VolunteerID)
		if err != nil {
			t.Fatal(err)
		}
		if v.Load != st.Load(now) {
			t.Errorf("volunteer %s: load %d, want %d", v.VolunteerID, v.Load, st.Load(now))
		}
		var certs []string
		for _, c := range st.CertifiedFor(projectiontest.Window(now, 1)) {
			certs = append(certs, string(c))
		}
		var got []string
		for _, c := range v.Certifications {
			got = append(got, c.Certification)
		}
		if !slices.Equal(got, certs) {
			t.Errorf("volunteer %s: certifications %v, want %v", v.VolunteerID, got, certs)
		}
		if onShift := v.VolunteerID == d.Newcomer; v.OnShift != onShift {
			t.Errorf("volunteer %s on shift = %v, want %v", v.VolunteerID, v.OnShift, onShift)
		}
	}
}

func TestAForgottenVolunteerLeavesTheBoardAndNoPersonalDataIsOnIt(t *testing.T) {
	env := projectiontest.New(t)
	d := env.MustRun(t)
	p := board.New()
	r := env.Runner(t, p)
	env.CatchUp(t, r)
	projectiontest.NoText(t, env.Pool, p, append(d.Names, d.RaidPerson.String(), d.HearingPer.String())...)

	env.Forget(t, d.Veteran)
	env.Forget(t, d.RaidPerson)
	env.CatchUp(t, r)
	for _, table := range []string{"board_volunteers", "board_certifications", "board_commitments"} {
		if n := env.Count(t, `SELECT count(*) FROM projections.`+table+` WHERE volunteer_id = $1`, d.Veteran); n != 0 {
			t.Errorf("%s holds %d rows of the forgotten volunteer", table, n)
		}
		if n := env.Count(t, `SELECT count(*) FROM projections.`+table+` WHERE volunteer_id = $1`, d.Newcomer); n == 0 {
			t.Errorf("%s lost the volunteer who was not forgotten", table)
		}
	}
	projectiontest.NoText(t, env.Pool, p, append(d.Names, d.RaidPerson.String(), d.HearingPer.String())...)
}

func TestRebuildingTheBoardGivesTheLiveBoard(t *testing.T) {
	projectiontest.CheckRebuild(t, projectiontest.New(t), board.New())
}
