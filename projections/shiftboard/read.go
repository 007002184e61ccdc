package shiftboard

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/presente-dispatch/presente/projections"
)

// Shift is a shift as the shift board shows it.
type Shift struct {
	ShiftID   uuid.UUID   `json:"shift_id"`
	Role      string      `json:"role"`
	Region    string      `json:"region"`
	Place     string      `json:"place,omitempty"`
	Start     time.Time   `json:"start"`
	End       time.Time   `json:"end"`
	Capacity  int         `json:"capacity"`
	Claimed   int         `json:"claimed"`
	Open      int         `json:"open"`
	Requires  []string    `json:"requires"`
	Languages []string    `json:"languages"`
	SeriesID  *uuid.UUID  `json:"series_id,omitempty"`
	Cancelled bool        `json:"cancelled"`
	Claimants []Claim     `json:"claimants"`
	Waitlist  []uuid.UUID `json:"waitlist"`
}

// Claim is a volunteer holding a slot.
type Claim struct {
	VolunteerID  uuid.UUID  `json:"volunteer_id"`
	ClaimedAt    time.Time  `json:"claimed_at"`
	CheckedInAt  *time.Time `json:"checked_in_at,omitempty"`
	CheckedOutAt *time.Time `json:"checked_out_at,omitempty"`
	Minutes      *int       `json:"minutes,omitempty"`
}

// Shifts lists the shifts overlapping [from, to), by start, with their
// claimants (in the order they got their slot) and waitlists (in order:
// the first is promoted next).
func Shifts(ctx context.Context, q projections.Querier, from, to time.Time) ([]Shift, error) {
	return read(ctx, q, `window_start < $2 AND window_end > $1`, from, to)
}

// ShiftByID returns one shift; found is false when there is none.
func ShiftByID(ctx context.Context, q projections.Querier, id uuid.UUID) (Shift, bool, error) {
	out, err := read(ctx, q, `shift_id = $1`, id)
	if err != nil || len(out) == 0 {
		return Shift{}, false, err
	}
	return out[0], true, nil
}

func read(ctx context.Context, q projections.Querier, where string, args ...any) ([]Shift, error) {
	rows, err := q.Query(ctx, `SELECT shift_id, role, region, place, window_start, window_end, capacity, claimed, open_slots,
    requires, languages, series_id, cancelled
FROM projections.shiftboard_shifts WHERE `+where+` ORDER BY window_start, shift_id`, args...)
	if err != nil {
		return nil, fmt.Errorf("read the shift board: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Shift, error) {
		var s Shift
		err := row.Scan(&s.ShiftID, &s.Role, &s.Region, &s.Place, &s.Start, &s.End, &s.Capacity, &s.Claimed, &s.Open,
			&s.Requires, &s.Languages, &s.SeriesID, &s.Cancelled)
		s.Claimants, s.Waitlist = []Claim{}, []uuid.UUID{}
		return s, err
	})
	if err != nil || len(out) == 0 {
		if err != nil {
			err = fmt.Errorf("read the shift board: %w", err)
		}
		return out, err
	}
	ids := make([]uuid.UUID, len(out))
	index := map[uuid.UUID]int{}
	for i, s := range out {
		ids[i], index[s.ShiftID] = s.ShiftID, i
	}
	rows, err = q.Query(ctx, `SELECT shift_id, volunteer_id, claimed_at, checked_in_at, checked_out_at, minutes
FROM projections.shiftboard_claims WHERE shift_id = ANY($1) ORDER BY claimed_at, volunteer_id`, ids)
	if err != nil {
		return nil, fmt.Errorf("read the shift board's claims: %w", err)
	}
	var shiftID uuid.UUID
	var c Claim
	if _, err := pgx.ForEachRow(rows, []any{&shiftID, &c.VolunteerID, &c.ClaimedAt, &c.CheckedInAt, &c.CheckedOutAt, &c.Minutes}, func() error {
		out[index[shiftID]].Claimants = append(out[index[shiftID]].Claimants, c)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read the shift board's claims: %w", err)
	}
	rows, err = q.Query(ctx, `SELECT shift_id, volunteer_id FROM projections.shiftboard_waitlist WHERE shift_id = ANY($1) ORDER BY seq`, ids)
	if err != nil {
		return nil, fmt.Errorf("read the shift board's waitlists: %w", err)
	}
	var v uuid.UUID
	if _, err := pgx.ForEachRow(rows, []any{&shiftID, &v}, func() error {
		out[index[shiftID]].Waitlist = append(out[index[shiftID]].Waitlist, v)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read the shift board's waitlists: %w", err)
	}
	return out, nil
}

// ShiftsByIDs returns the shifts among ids that the board has.
func ShiftsByIDs(ctx context.Context, q projections.Querier, ids []uuid.UUID) ([]Shift, error) {
	return read(ctx, q, `shift_id = ANY($1)`, ids)
}

// Of returns the shifts not ended by from in which volunteerID holds a
// slot or waits on the waitlist.
func Of(ctx context.Context, q projections.Querier, volunteerID uuid.UUID, from time.Time) ([]Shift, error) {
	return read(ctx, q, `window_end > $2 AND (
    shift_id IN (SELECT shift_id FROM projections.shiftboard_claims WHERE volunteer_id = $1)
    OR shift_id IN (SELECT shift_id FROM projections.shiftboard_waitlist WHERE volunteer_id = $1))`, volunteerID, from)
}
