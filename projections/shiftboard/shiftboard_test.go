package shiftboard_test

import (
	"context"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/presente-dispatch/presente/projections/projectiontest"
	"github.com/presente-dispatch/presente/projections/shiftboard"
)

func TestTheShiftBoardAgreesWithTheShifts(t *testing.T) {
	env := projectiontest.New(t)
	ctx := context.Background()
	d := env.MustRun(t)
	// A full shift with a waitlist of two, in the order they came.
	for _, v := range []uuid.UUID{d.Newcomer, d.Waiting} {
		if _, err := env.Service.ClaimShift(ctx, env.Meta, d.Later, v); err != nil {
			t.Fatal(err)
		}
	}
	r := env.Runner(t, shiftboard.New())
	env.CatchUp(t, r)

	for _, id := range []uuid.UUID{d.Shift, d.Later} {
		st, err := env.Service.ShiftState(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		got, found, err := shiftboard.ShiftByID(ctx, env.Pool, id)
		if err != nil || !found {
			t.Fatalf("ShiftByID = found %v, %v", found, err)
		}
		var claimants []uuid.UUID
		for _, c := range got.Claimants {
			claimants = append(claimants, c.VolunteerID)
		}
		if !slices.Equal(claimants, st.Claimants) || got.Claimed != len(st.Claimants) || got.Open != st.Open() || got.Capacity != st.Capacity {
			t.Errorf("shift %s: claimants %v (%d claimed, %d open), want %v (%d open)", id, claimants, got.Claimed, got.Open, st.Claimants, st.Open())
		}
		if !slices.Equal(got.Waitlist, st.Waitlist) {
			t.Errorf("shift %s: waitlist %v, want %v", id, got.Waitlist, st.Waitlist)
		}
	}
	got, _, _ := shiftboard.ShiftByID(ctx, env.Pool, d.Shift)
	if len(got.Claimants) != 1 || got.Claimants[0].Minutes == nil || *got.Claimants[0].Minutes != 45 {
		t.Errorf("the promoted newcomer's claim = %+v, want checked out after 45 minutes", got.Claimants)
	}
	later, _, _ := shiftboard.ShiftByID(ctx, env.Pool, d.Later)
	if !slices.Equal(later.Waitlist, []uuid.UUID{d.Newcomer, d.Waiting}) {
		t.Errorf("waitlist of the full shift = %v, want the newcomer then the waiting volunteer", later.Waitlist)
	}
	list, err := shiftboard.Shifts(ctx, env.Pool, env.Clock.Now(), env.Clock.Now().AddDate(0, 0, 7))
	if err != nil || len(list) != 2 {
		t.Errorf("Shifts this week = %d shifts, %v; want 2", len(list), err)
	}
}

func TestTheShiftBoardHoldsNoPersonalData(t *testing.T) {
	env := projectiontest.New(t)
	d := env.MustRun(t)
	p := shiftboard.New()
	r := env.Runner(t, p)
	env.Forget(t, d.Veteran)
	env.CatchUp(t, r)
	projectiontest.NoText(t, env.Pool, p, append(d.Names, d.RaidPerson.String(), d.HearingPer.String())...)
}

func TestRebuildingTheShiftBoardGivesTheLiveShiftBoard(t *testing.T) {
	projectiontest.CheckRebuild(t, projectiontest.New(t), shiftboard.New())
}
