package shiftboard

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/google/uuid"

	"github.com/presente-dispatch/presente/domain/shift"
	"github.com/presente-dispatch/presente/infra/eventstore"
	"github.com/presente-dispatch/presente/projections"
	"github.com/presente-dispatch/presente/projections/projectiontest"
)

// statementShiftboard is the read model as it was first written, one statement per event:
// the reference Apply must agree with, row for row, now that it derives
// claimed and waitlisted counts once per batch.
type statementShiftboard struct{ Projector }

// Apply is the Apply this package had at first: one statement per event,
// the derived columns computed again after each.
func (statementShiftboard) Apply(ctx context.Context, tx pgx.Tx, t projections.Names, batch []eventstore.Recorded) error {
	b := &pgx.Batch{}
	sh, cl, wl, sw := t.Table(shifts), t.Table(claims), t.Table(waitlist), t.Table(swaps)
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
		b.Queue(fmt.Sprintf(statementCountsSQL, sh, cl, wl), r.StreamID)
	}
	return tx.SendBatch(ctx, b).Close()
}

const statementCountsSQL = `UPDATE %[1]s s SET
    claimed = (SELECT count(*) FROM %[2]s c WHERE c.shift_id = s.shift_id),
    waitlisted = (SELECT count(*) FROM %[3]s w WHERE w.shift_id = s.shift_id)
WHERE s.shift_id = $1`

// TestApplyEqualsOneStatementPerEvent keeps the read model and the
// reference side by side through the scenario, with batches of several
// sizes: every table must hold the same rows.
func TestApplyEqualsOneStatementPerEvent(t *testing.T) {
	projectiontest.CheckSameAsReference(t, projectiontest.New(t), New(), statementShiftboard{}, swaps, waitlist)
}
