// Package shiftboard is the shift board's read model: every shift with its
// role, region, place, window, capacity, claimed and open slots; who holds
// the slots, with check-in and check-out times; the waitlist in order;
// and pending swap offers. Waitlist promotion is read from the log
// (ShiftWaitlistPromoted), never decided here.
//
// It holds no personal data: shift places are public places, volunteers
// appear by id only. Their ids stay when a volunteer is forgotten, as in
// the log: removing them would make the board miscount the slots.
package shiftboard

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/presente-dispatch/presente/domain/shift"
	"github.com/presente-dispatch/presente/domain/volunteer"
	"github.com/presente-dispatch/presente/infra/eventstore"
	"github.com/presente-dispatch/presente/projections"
)

// Name is the projection's name.
const Name = "shiftboard"

// Projector keeps the shift board.
type Projector struct{}

// New returns the shift board's projector.
func New() Projector { return Projector{} }

// Name implements projections.Projector.
func (Projector) Name() string { return Name }

// Version implements projections.Projector.
func (Projector) Version() int { return 1 }

const (
	shifts   = "shiftboard_shifts"
	claims   = "shiftboard_claims"
	waitlist = "shiftboard_waitlist"
	swaps    = "shiftboard_swaps"
)

// Tables implements projections.Projector.
func (Projector) Tables() []string { return []string{shifts, claims, waitlist, swaps} }

// DDL implements projections.Projector.
func (Projector) DDL(t projections.Names) []string {
	ddl := []string{
		`CREATE TABLE ` + t.Table(shifts) + ` (
    shift_id     uuid PRIMARY KEY,
    role         text NOT NULL,
    region       text NOT NULL,
    place        text NOT NULL,
    window_start timestamptz NOT NULL,
    window_end   timestamptz NOT NULL,
    capacity     integer NOT NULL,
    claimed      integer NOT NULL DEFAULT 0,
    open_slots   integer GENERATED ALWAYS AS (greatest(capacity - claimed, 0)) STORED,
    waitlisted   integer NOT NULL DEFAULT 0,
    requires     text[] NOT NULL,
    languages    text[] NOT NULL,
    series_id    uuid,
    cancelled    boolean NOT NULL DEFAULT false
)`,
		`CREATE TABLE ` + t.Table(claims) + ` (
    shift_id       uuid NOT NULL,
    volunteer_id   uuid NOT NULL,
    claimed_at     timestamptz NOT NULL,
    checked_in_at  timestamptz,
    checked_out_at timestamptz,
    minutes        integer,
    PRIMARY KEY (shift_id, volunteer_id)
)`,
		`CREATE TABLE ` + t.Table(waitlist) + ` (
    shift_id     uuid NOT NULL,
    volunteer_id uuid NOT NULL,
    -- the log position of the waitlisting: the waitlist's order
    seq          bigint NOT NULL,
    PRIMARY KEY (shift_id, volunteer_id)
)`,
		`CREATE TABLE ` + t.Table(swaps) + ` (
    shift_id       uuid NOT NULL,
    from_volunteer uuid NOT NULL,
    to_volunteer   uuid NOT NULL,
    PRIMARY KEY (shift_id, from_volunteer)
)`,
	}
	return append(ddl, indexes(t)...)
}

// LateDDL implements projections.LateIndexer: Apply finds rows by shift
// (the primary keys); the indexes by window and by volunteer serve
// readers.
func (Projector) LateDDL(t projections.Names) []string { return indexes(t) }

func indexes(t projections.Names) []string {
	return []string{
		`CREATE INDEX ON ` + t.Table(shifts) + ` (window_start)`,
		`CREATE INDEX ON ` + t.Table(claims) + ` (volunteer_id)`,
		`CREATE INDEX ON ` + t.Table(waitlist) + ` (volunteer_id)`,
	}
}

// Apply implements projections.Projector. A shift's claimed and
// waitlisted counts are counted once per batch, after its last event in
// the batch, rather than after each: they count the rows the batch
// leaves, so the result is the same with one statement per shift instead
// of one per event.
func (Projector) Apply(ctx context.Context, tx pgx.Tx, t projections.Names, batch []eventstore.Recorded) error {
	b := &pgx.Batch{}
	sh, cl, wl, sw := t.Table(shifts), t.Table(claims), t.Table(waitlist), t.Table(swaps)
	var (
		touched []uuid.UUID
		seen    = map[uuid.UUID]bool{}
	)
	for _, r := range batch {
		switch e := r.Event.(type) {
		case shift.Scheduled:
			var series *uuid.UUID
			if e.SeriesID != uuid.Nil {
				series = &e.SeriesID
			}
			b.Queue(`INSERT INTO `+sh+` (shift_id, role, region, place, window_start, window_end, capacity, requires, languages, series_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, e.ShiftID, e.Role, e.Region, e.Place, e.Window.Start, e.Window.End, e.Capacity,
				certs(e.Requires), strs(e.Languages), series)
		case shift.Claimed:
			b.Queue(`INSERT INTO `+cl+` (shift_id, volunteer_id, claimed_at) VALUES ($1, $2, $3)`, e.ShiftID, e.VolunteerID, r.RecordedAt)
		case shift.Waitlisted:
			b.Queue(`INSERT INTO `+wl+` (shift_id, volunteer_id, seq) VALUES ($1, $2, $3)`, e.ShiftID, e.VolunteerID, r.Position)
		case shift.Released:
			b.Queue(`DELETE FROM `+cl+` WHERE shift_id = $1 AND volunteer_id = $2`, e.ShiftID, e.VolunteerID)
			b.Queue(`DELETE FROM `+sw+` WHERE shift_id = $1 AND from_volunteer = $2`, e.ShiftID, e.VolunteerID)
		case shift.Promoted:
			b.Queue(`DELETE FROM `+wl+` WHERE shift_id = $1 AND volunteer_id = $2`, e.ShiftID, e.VolunteerID)
			b.Queue(`INSERT INTO `+cl+` (shift_id, volunteer_id, claimed_at) VALUES ($1, $2, $3)`, e.ShiftID, e.VolunteerID, r.RecordedAt)
		case shift.LeftWaitlist:
			b.Queue(`DELETE FROM `+wl+` WHERE shift_id = $1 AND volunteer_id = $2`, e.ShiftID, e.VolunteerID)
		case shift.CheckedIn:
			b.Queue(`UPDATE `+cl+` SET checked_in_at = $3 WHERE shift_id = $1 AND volunteer_id = $2`, e.ShiftID, e.VolunteerID, e.At)
		case shift.CheckedOut:
			b.Queue(`UPDATE `+cl+` SET checked_out_at = $3, minutes = $4 WHERE shift_id = $1 AND volunteer_id = $2`,
				e.ShiftID, e.VolunteerID, e.At, e.Minutes)
		case shift.Cancelled:
			b.Queue(`UPDATE `+sh+` SET cancelled = true WHERE shift_id = $1`, e.ShiftID)
			for _, table := range []string{cl, wl, sw} {
				b.Queue(`DELETE FROM `+table+` WHERE shift_id = $1`, e.ShiftID)
			}
		case shift.SwapOffered:
			b.Queue(`INSERT INTO `+sw+` (shift_id, from_volunteer, to_volunteer) VALUES ($1, $2, $3)
ON CONFLICT (shift_id, from_volunteer) DO UPDATE SET to_volunteer = excluded.to_volunteer`, e.ShiftID, e.From, e.To)
		case shift.SwapAccepted:
			b.Queue(`DELETE FROM `+sw+` WHERE shift_id = $1 AND from_volunteer = $2`, e.ShiftID, e.From)
			b.Queue(`UPDATE `+cl+` SET volunteer_id = $3, claimed_at = $4, checked_in_at = NULL, checked_out_at = NULL, minutes = NULL
WHERE shift_id = $1 AND volunteer_id = $2`, e.ShiftID, e.From, e.To, r.RecordedAt)
			b.Queue(`DELETE FROM `+wl+` WHERE shift_id = $1 AND volunteer_id = $2`, e.ShiftID, e.To)
		case shift.SwapWithdrawn:
			b.Queue(`DELETE FROM `+sw+` WHERE shift_id = $1 AND from_volunteer = $2`, e.ShiftID, e.From)
		default:
			continue
		}
		if !seen[r.StreamID] {
			seen[r.StreamID] = true
			touched = append(touched, r.StreamID)
		}
	}
	if len(touched) > 0 {
		b.Queue(fmt.Sprintf(countsSQL, sh, cl, wl), touched)
	}
	return tx.SendBatch(ctx, b).Close()
}

// countsSQL counts the claims and waitlist of shifts ($1).
const countsSQL = `UPDATE %[1]s s SET
    claimed = (SELECT count(*) FROM %[2]s c WHERE c.shift_id = s.shift_id),
    waitlisted = (SELECT count(*) FROM %[3]s w WHERE w.shift_id = s.shift_id)
WHERE s.shift_id = ANY ($1::uuid[])`

func strs(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func certs(cs []volunteer.Certification) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = string(c)
	}
	return out
}
