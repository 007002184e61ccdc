// Package timeline is the request timeline's read model: every event of
// every request — its type, who caused it (the actor's id), when it was
// recorded and when it says it happened, the reason given, and the
// non-personal facts it carries (status, assignment, volunteer, outcome,
// priority) — so "who assigned her, and when did he arrive?" has an
// exact answer.
//
// It holds no personal data: never the person's name, phone, address,
// meeting point or notes, nor the person's id. Reasons are stored as the
// log holds them, in the clear: commands must not put personal data there
// (see ARCHITECTURE.md). Actor and volunteer ids stay when a subject is
// forgotten, as they stay in the log.
package timeline

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/presente-dispatch/presente/domain/request"
	"github.com/presente-dispatch/presente/infra/eventstore"
	"github.com/presente-dispatch/presente/projections"
)

// Name is the projection's name.
const Name = "timeline"

const table = "timeline_events"

// Projector keeps the timelines.
type Projector struct{}

// New returns the timeline's projector.
func New() Projector { return Projector{} }

// Name implements projections.Projector.
func (Projector) Name() string { return Name }

// Version implements projections.Projector.
func (Projector) Version() int { return 1 }

// Tables implements projections.Projector.
func (Projector) Tables() []string { return []string{table} }

// DDL implements projections.Projector.
func (Projector) DDL(t projections.Names) []string {
	return []string{`CREATE TABLE ` + t.Table(table) + ` (
    request_id     uuid NOT NULL,
    stream_version bigint NOT NULL,
    position       bigint NOT NULL,
    event_type     text NOT NULL,
    actor          text NOT NULL,
    reason         text NOT NULL,
    correlation_id uuid NOT NULL,
    recorded_at    timestamptz NOT NULL,
    -- when the event says it happened (a status change, a resolution), if it says
    happened_at    timestamptz,
    assignment_id  uuid,
    volunteer_id   uuid,
    status         text NOT NULL,
    PRIMARY KEY (request_id, stream_version)
)`}
}

// Apply implements projections.Projector.
func (Projector) Apply(ctx context.Context, tx pgx.Tx, t projections.Names, batch []eventstore.Recorded) error {
	var rows [][]any
	for _, r := range batch {
		if r.StreamType != request.StreamType {
			continue
		}
		var (
			at              *time.Time
			assignment, vol *uuid.UUID
			status          string
		)
		switch e := r.Event.(type) {
		case request.ReceivedEvent:
			status = string(e.Priority)
		case request.TriagedEvent:
			status = string(e.Priority)
		case request.AssignmentOffered:
			assignment, vol, status = &e.AssignmentID, &e.VolunteerID, string(request.Offered)
		case request.AssignmentChanged:
			assignment, at, status = &e.AssignmentID, &e.At, string(e.Status)
		case request.VerificationRecorded:
			status = string(e.Outcome)
		case request.ResolvedEvent:
			at, status = &e.At, e.Outcome
		case request.ClosedEvent:
			at = &e.At
		case request.CancelledEvent:
			at = &e.At
		}
		rows = append(rows, []any{r.StreamID, r.StreamVersion, r.Position, r.Type, r.Metadata.Actor, r.Metadata.Reason,
			r.Metadata.CorrelationID, r.RecordedAt, at, assignment, vol, status})
	}
	if len(rows) == 0 {
		return nil
	}
	_, err := tx.CopyFrom(ctx, t.Identifier(table), []string{"request_id", "stream_version", "position", "event_type", "actor", "reason",
		"correlation_id", "recorded_at", "happened_at", "assignment_id", "volunteer_id", "status"}, pgx.CopyFromRows(rows))
	return err
}

// Entry is one event of a request's timeline.
type Entry struct {
	Version       int64      `json:"version"`
	Position      int64      `json:"position"`
	Type          string     `json:"type"`
	Actor         string     `json:"actor"`
	Reason        string     `json:"reason,omitempty"`
	CorrelationID uuid.UUID  `json:"correlation_id"`
	RecordedAt    time.Time  `json:"recorded_at"`
	HappenedAt    *time.Time `json:"happened_at,omitempty"`
	AssignmentID  *uuid.UUID `json:"assignment_id,omitempty"`
	VolunteerID   *uuid.UUID `json:"volunteer_id,omitempty"`
	// Status is the assignment's new status, the priority, the
	// verification outcome or the resolution, as the event says.
	Status string `json:"status,omitempty"`
}

// Of returns a request's timeline, oldest first.
func Of(ctx context.Context, q projections.Querier, requestID uuid.UUID) ([]Entry, error) {
	rows, err := q.Query(ctx, `SELECT stream_version, position, event_type, actor, reason, correlation_id, recorded_at, happened_at,
    assignment_id, volunteer_id, status
FROM projections.timeline_events WHERE request_id = $1 ORDER BY stream_version`, requestID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Entry, error) {
		var e Entry
		err := row.Scan(&e.Version, &e.Position, &e.Type, &e.Actor, &e.Reason, &e.CorrelationID, &e.RecordedAt, &e.HappenedAt,
			&e.AssignmentID, &e.VolunteerID, &e.Status)
		return e, err
	})
}
