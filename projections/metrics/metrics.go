// Package metrics is the response-metrics read model that coordinators
// audit a month with: for every request, when it was received, first
// accepted by a volunteer, first reached by one, and resolved; for every
// volunteer, the minutes served on shifts and on completed assignments.
// Durations, weeks and percentiles are derived at read time (read.go), so
// the tables hold only facts from the log and a change of the
// organization's time zone re-buckets every week without a rebuild.
//
// What the figures mean, as decided here:
//
//   - Received is the time the RequestReceived event was recorded (the
//     event carries no time of its own).
//   - Assigned is the first time a volunteer accepted an assignment of the
//     request, not the first offer: an offer nobody takes has sent nobody.
//     It stays the first acceptance even if that volunteer later withdrew.
//   - First arrival is the first time an assignment of the request was
//     marked arrived.
//   - Resolved is the time the dispatcher gave the resolution (it may be
//     backdated). Reopening a request clears its resolution, closing and
//     cancellation; resolving it again records the new time. The first
//     acceptance and arrival are kept.
//   - Assignment and arrival times are the times the assignment change
//     records (when the volunteer reported it).
//   - Volunteer minutes: a shift counts the minutes of its check-out
//     (ShiftCheckedOut.Minutes, check-in to check-out, whole minutes); an
//     assignment counts from arrived to done, in whole minutes, and only
//     once done (one withdrawn after arriving counts nothing). Both are
//     attributed to the week the service began (check-in, arrival). An
//     assignment done during an on-call shift counts in both.
//
// It holds no personal data: ids, kinds, regions, priorities and times,
// never a name, phone, address, meeting point or note, and not the id of
// the person served. Volunteer ids stay on assignments and shifts, as they
// stay in the log and on the board: they are pseudonymous, identify nobody
// once a forgotten volunteer's sealed data is gone, and removing them
// would change the hours the organization served. SubjectForgotten
// therefore changes nothing here.
package metrics

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/presente-dispatch/presente/domain/organization"
	"github.com/presente-dispatch/presente/domain/request"
	"github.com/presente-dispatch/presente/domain/shift"
	"github.com/presente-dispatch/presente/infra/eventstore"
	"github.com/presente-dispatch/presente/projections"
)

// Name is the projection's name.
const Name = "metrics"

// Projector keeps the response metrics.
type Projector struct{}

// New returns the response metrics' projector.
func New() Projector { return Projector{} }

// Name implements projections.Projector.
func (Projector) Name() string { return Name }

// Version implements projections.Projector.
func (Projector) Version() int { return 1 }

const (
	requests    = "metrics_requests"
	assignments = "metrics_assignments"
	shifts      = "metrics_shifts"
	settings    = "metrics_settings"
)

// Tables implements projections.Projector.
func (Projector) Tables() []string { return []string{requests, assignments, shifts, settings} }

// DDL implements projections.Projector.
func (Projector) DDL(t projections.Names) []string {
	ddl := []string{
		`CREATE TABLE ` + t.Table(requests) + ` (
    request_id        uuid PRIMARY KEY,
    kind              text NOT NULL,
    sub_kind          text NOT NULL,
    region            text NOT NULL,
    priority          text NOT NULL,
    received_at       timestamptz NOT NULL,
    first_assigned_at timestamptz,
    first_arrival_at  timestamptz,
    resolved_at       timestamptz,
    closed_at         timestamptz,
    cancelled_at      timestamptz,
    reopened_at       timestamptz
)`,
		`CREATE TABLE ` + t.Table(assignments) + ` (
    assignment_id uuid PRIMARY KEY,
    request_id    uuid NOT NULL,
    volunteer_id  uuid NOT NULL,
    offered_at    timestamptz NOT NULL,
    accepted_at   timestamptz,
    arrived_at    timestamptz,
    done_at       timestamptz
)`,
		`CREATE TABLE ` + t.Table(shifts) + ` (
    shift_id       uuid NOT NULL,
    volunteer_id   uuid NOT NULL,
    checked_in_at  timestamptz NOT NULL,
    checked_out_at timestamptz,
    minutes        integer,
    PRIMARY KEY (shift_id, volunteer_id)
)`,
		// One row at most: the organization's time zone, once set.
		`CREATE TABLE ` + t.Table(settings) + ` (
    one       boolean PRIMARY KEY DEFAULT true CHECK (one),
    time_zone text NOT NULL
)`,
	}
	return append(ddl, indexes(t)...)
}

// LateDDL implements projections.LateIndexer: Apply writes by primary
// key only; the indexes on times serve the reports.
func (Projector) LateDDL(t projections.Names) []string { return indexes(t) }

func indexes(t projections.Names) []string {
	return []string{
		`CREATE INDEX ON ` + t.Table(requests) + ` (received_at)`,
		`CREATE INDEX ON ` + t.Table(assignments) + ` (arrived_at) WHERE done_at IS NOT NULL`,
		`CREATE INDEX ON ` + t.Table(shifts) + ` (checked_in_at) WHERE minutes IS NOT NULL`,
	}
}

// Apply implements projections.Projector. Every statement is an upsert or
// sets a column to a value the event carries (first times with LEAST), so
// an event applied again leaves the same rows.
func (Projector) Apply(ctx context.Context, tx pgx.Tx, t projections.Names, batch []eventstore.Recorded) error {
	b := &pgx.Batch{}
	for _, r := range batch {
		queue(b, t, r)
	}
	if b.Len() == 0 {
		return nil
	}
	return tx.SendBatch(ctx, b).Close()
}

func queue(b *pgx.Batch, t projections.Names, r eventstore.Recorded) {
	req, asg, sh := t.Table(requests), t.Table(assignments), t.Table(shifts)
	switch e := r.Event.(type) {
	case request.ReceivedEvent:
		b.Queue(`INSERT INTO `+req+` (request_id, kind, sub_kind, region, priority, received_at) VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (request_id) DO UPDATE SET kind = excluded.kind, sub_kind = excluded.sub_kind, region = excluded.region,
    priority = excluded.priority, received_at = excluded.received_at`,
			e.RequestID, string(e.Kind), e.SubKind, e.Region, string(e.Priority), r.RecordedAt)
	case request.TriagedEvent:
		b.Queue(`UPDATE `+req+` SET priority = $2 WHERE request_id = $1`, e.RequestID, string(e.Priority))
	case request.AssignmentOffered:
		b.Queue(`INSERT INTO `+asg+` (assignment_id, request_id, volunteer_id, offered_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (assignment_id) DO NOTHING`, e.AssignmentID, e.RequestID, e.VolunteerID, r.RecordedAt)
	case request.AssignmentChanged:
		switch e.Status {
		case request.Accepted:
			b.Queue(`UPDATE `+asg+` SET accepted_at = LEAST(accepted_at, $2) WHERE assignment_id = $1`, e.AssignmentID, e.At)
			b.Queue(`UPDATE `+req+` SET first_assigned_at = LEAST(first_assigned_at, $2) WHERE request_id = $1`, e.RequestID, e.At)
		case request.Arrived:
			b.Queue(`UPDATE `+asg+` SET arrived_at = LEAST(arrived_at, $2) WHERE assignment_id = $1`, e.AssignmentID, e.At)
			b.Queue(`UPDATE `+req+` SET first_arrival_at = LEAST(first_arrival_at, $2) WHERE request_id = $1`, e.RequestID, e.At)
		case request.Done:
			b.Queue(`UPDATE `+asg+` SET done_at = $2 WHERE assignment_id = $1`, e.AssignmentID, e.At)
		}
	case request.ResolvedEvent:
		b.Queue(`UPDATE `+req+` SET resolved_at = $2 WHERE request_id = $1`, e.RequestID, e.At)
	case request.ClosedEvent:
		b.Queue(`UPDATE `+req+` SET closed_at = $2 WHERE request_id = $1`, e.RequestID, e.At)
	case request.CancelledEvent:
		b.Queue(`UPDATE `+req+` SET cancelled_at = $2 WHERE request_id = $1`, e.RequestID, e.At)
	case request.ReopenedEvent:
		b.Queue(`UPDATE `+req+` SET resolved_at = NULL, closed_at = NULL, cancelled_at = NULL, reopened_at = $2 WHERE request_id = $1`,
			e.RequestID, r.RecordedAt)

	case shift.CheckedIn:
		b.Queue(`INSERT INTO `+sh+` (shift_id, volunteer_id, checked_in_at) VALUES ($1, $2, $3)
ON CONFLICT (shift_id, volunteer_id) DO UPDATE SET checked_in_at = excluded.checked_in_at`, e.ShiftID, e.VolunteerID, e.At)
	case shift.CheckedOut:
		// The check-in always comes first; were it missing, the minutes
		// still tell when the service began.
		b.Queue(`INSERT INTO `+sh+` (shift_id, volunteer_id, checked_in_at, checked_out_at, minutes)
VALUES ($1, $2, $3::timestamptz - make_interval(mins => $4::integer), $3, $4)
ON CONFLICT (shift_id, volunteer_id) DO UPDATE SET checked_out_at = excluded.checked_out_at, minutes = excluded.minutes`,
			e.ShiftID, e.VolunteerID, e.At, e.Minutes)

	case organization.TimeZoneSet:
		b.Queue(`INSERT INTO `+t.Table(settings)+` (one, time_zone) VALUES (true, $1)
ON CONFLICT (one) DO UPDATE SET time_zone = excluded.time_zone`, e.TimeZone)
	}
}
