// Package board is the dispatch board's read model: every request with its
// status, kind, priority, region and needs, the volunteers assigned to it
// with their assignment status; and every volunteer's availability —
// active, on call, languages, regions, certifications with expiry, and the
// commitments (assignments and shift slots) that make up their load.
//
// It holds no personal data: ids, codes, statuses, times, regions and
// languages only — never a name, phone, address, meeting point or note,
// and not the id of the person served. A forgotten volunteer's profile,
// certifications and commitments are deleted (their languages and regions
// could single them out); the ids on assignments stay, as they stay in the
// log, and identify nobody once the volunteer's sealed data is gone.
package board

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/presente-dispatch/presente/domain/privacy"
	"github.com/presente-dispatch/presente/domain/request"
	"github.com/presente-dispatch/presente/domain/volunteer"
	"github.com/presente-dispatch/presente/infra/eventstore"
	"github.com/presente-dispatch/presente/projections"
)

// Name is the projection's name.
const Name = "board"

// Projector keeps the board.
type Projector struct{}

// New returns the board's projector.
func New() Projector { return Projector{} }

// Name implements projections.Projector.
func (Projector) Name() string { return Name }

// Version implements projections.Projector.
func (Projector) Version() int { return 1 }

const (
	requests       = "board_requests"
	assignments    = "board_assignments"
	volunteers     = "board_volunteers"
	certifications = "board_certifications"
	commitments    = "board_commitments"
)

// Tables implements projections.Projector.
func (Projector) Tables() []string {
	return []string{requests, assignments, volunteers, certifications, commitments}
}

// DDL implements projections.Projector.
func (Projector) DDL(t projections.Names) []string {
	return []string{
		`CREATE TABLE ` + t.Table(requests) + ` (
    request_id          uuid PRIMARY KEY,
    kind                text NOT NULL,
    sub_kind            text NOT NULL,
    priority            text NOT NULL,
    status              text NOT NULL,
    verification        text,
    alerted             boolean NOT NULL DEFAULT false,
    region              text NOT NULL,
    languages           text[] NOT NULL,
    certifications      text[] NOT NULL,
    team_certifications text[] NOT NULL,
    needed              integer NOT NULL,
    window_start        timestamptz NOT NULL,
    window_end          timestamptz NOT NULL,
    received_at         timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    triaged             boolean NOT NULL DEFAULT false,
    resolved            boolean NOT NULL DEFAULT false,
    closed              boolean NOT NULL DEFAULT false,
    cancelled           boolean NOT NULL DEFAULT false
)`,
		statusIndex(t),
		`CREATE TABLE ` + t.Table(assignments) + ` (
    assignment_id uuid PRIMARY KEY,
    request_id    uuid NOT NULL,
    volunteer_id  uuid NOT NULL,
    status        text NOT NULL,
    override      boolean NOT NULL,
    offered_at    timestamptz NOT NULL,
    changed_at    timestamptz NOT NULL
)`,
		`CREATE INDEX ON ` + t.Table(assignments) + ` (request_id)`,
		`CREATE INDEX ON ` + t.Table(assignments) + ` (volunteer_id)`,
		`CREATE TABLE ` + t.Table(volunteers) + ` (
    volunteer_id uuid PRIMARY KEY,
    active       boolean NOT NULL,
    on_call      boolean NOT NULL,
    languages    jsonb NOT NULL,
    regions      text[] NOT NULL
)`,
		`CREATE TABLE ` + t.Table(certifications) + ` (
    volunteer_id  uuid NOT NULL,
    certification text NOT NULL,
    granted_at    timestamptz NOT NULL,
    expires_at    timestamptz,
    PRIMARY KEY (volunteer_id, certification)
)`,
		`CREATE TABLE ` + t.Table(commitments) + ` (
    commitment_id uuid PRIMARY KEY,
    volunteer_id  uuid NOT NULL,
    kind          text NOT NULL,
    ref           uuid,
    window_start  timestamptz NOT NULL,
    window_end    timestamptz NOT NULL
)`,
		`CREATE INDEX ON ` + t.Table(commitments) + ` (volunteer_id)`,
	}
}

// LateDDL implements projections.LateIndexer: the index by status serves
// readers, and would otherwise be written at every change of status. The
// indexes by request and by volunteer are not late: Apply derives status
// from a request's assignments and forgets a volunteer's commitments.
func (Projector) LateDDL(t projections.Names) []string { return []string{statusIndex(t)} }

func statusIndex(t projections.Names) string {
	return `CREATE INDEX ON ` + t.Table(requests) + ` (status, received_at)`
}

// Apply implements projections.Projector. A request's status is derived
// once per batch, after its last event in the batch, rather than after
// each: it is a function of the flags and assignments the batch leaves,
// so the rows are the same, with one statement per request instead of one
// per event.
func (Projector) Apply(ctx context.Context, tx pgx.Tx, t projections.Names, batch []eventstore.Recorded) error {
	b := &pgx.Batch{}
	var (
		touched []uuid.UUID
		at      = map[uuid.UUID]time.Time{} // recorded time of each request's last event
	)
	for _, r := range batch {
		if !queue(b, t, r) || r.StreamType != request.StreamType {
			continue
		}
		if _, seen := at[r.StreamID]; !seen {
			touched = append(touched, r.StreamID)
		}
		at[r.StreamID] = r.RecordedAt
	}
	if len(touched) > 0 {
		times := make([]time.Time, len(touched))
		for i, id := range touched {
			times[i] = at[id]
		}
		b.Queue(fmt.Sprintf(statusSQL, t.Table(requests), t.Table(assignments)), touched, times)
	}
	return tx.SendBatch(ctx, b).Close()
}

// queue queues the statements an event calls for and tells whether it
// calls for any.
func queue(b *pgx.Batch, t projections.Names, r eventstore.Recorded) bool {
	req, asg, vol, cert, com := t.Table(requests), t.Table(assignments), t.Table(volunteers), t.Table(certifications), t.Table(commitments)
	switch e := r.Event.(type) {
	case request.ReceivedEvent:
		var verification *string
		if e.Kind == request.RapidResponse {
			v := string(request.Unverified)
			verification = &v
		}
		b.Queue(`INSERT INTO `+req+` (request_id, kind, sub_kind, priority, status, verification, region, languages, certifications,
    team_certifications, needed, window_start, window_end, received_at, updated_at)
VALUES ($1, $2, $3, $4, 'received', $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)`,
			e.RequestID, string(e.Kind), e.SubKind, string(e.Priority), verification, e.Region, strs(e.Languages),
			certs(e.Certifications), certs(e.TeamCertifications), e.Needed, e.Window.Start, e.Window.End, r.RecordedAt)
	case request.TriagedEvent:
		b.Queue(`UPDATE `+req+` SET triaged = true, priority = $2 WHERE request_id = $1`, e.RequestID, string(e.Priority))
	case request.AssignmentOffered:
		b.Queue(`INSERT INTO `+asg+` (assignment_id, request_id, volunteer_id, status, override, offered_at, changed_at)
VALUES ($1, $2, $3, 'offered', $4, $5, $5)`, e.AssignmentID, e.RequestID, e.VolunteerID, e.Override, r.RecordedAt)
		b.Queue(`UPDATE `+req+` SET verification = 'verifiers_dispatched' WHERE request_id = $1 AND verification = 'unverified'`, e.RequestID)
	case request.AssignmentChanged:
		b.Queue(`UPDATE `+asg+` SET status = $2, changed_at = $3 WHERE assignment_id = $1`, e.AssignmentID, string(e.Status), e.At)
	case request.VerificationRecorded:
		b.Queue(`UPDATE `+req+` SET verification = $2 WHERE request_id = $1`, e.RequestID, string(e.Outcome))
	case request.AlertSent:
		b.Queue(`UPDATE `+req+` SET alerted = true WHERE request_id = $1`, e.RequestID)
	case request.ResolvedEvent:
		b.Queue(`UPDATE `+req+` SET resolved = true WHERE request_id = $1`, e.RequestID)
	case request.ClosedEvent:
		b.Queue(`UPDATE `+req+` SET closed = true WHERE request_id = $1`, e.RequestID)
	case request.CancelledEvent:
		b.Queue(`UPDATE `+req+` SET cancelled = true WHERE request_id = $1`, e.RequestID)
	case request.ReopenedEvent:
		b.Queue(`UPDATE `+req+` SET closed = false, cancelled = false, resolved = false WHERE request_id = $1`, e.RequestID)

	case volunteer.Registered:
		b.Queue(`INSERT INTO `+vol+` (volunteer_id, active, on_call, languages, regions) VALUES ($1, true, false, $2, $3)`,
			e.VolunteerID, languages(e.Languages), strs(e.Regions))
	case volunteer.ProfileChanged:
		b.Queue(`UPDATE `+vol+` SET languages = $2, regions = $3 WHERE volunteer_id = $1`, e.VolunteerID, languages(e.Languages), strs(e.Regions))
	case volunteer.OnCallChanged:
		b.Queue(`UPDATE `+vol+` SET on_call = $2 WHERE volunteer_id = $1`, e.VolunteerID, e.OnCall)
	case volunteer.Deactivated:
		b.Queue(`UPDATE `+vol+` SET active = false, on_call = false WHERE volunteer_id = $1`, e.VolunteerID)
	case volunteer.Activated:
		b.Queue(`UPDATE `+vol+` SET active = true WHERE volunteer_id = $1`, e.VolunteerID)
	case volunteer.CertificationGranted:
		// Only for a volunteer on the board: a forgotten one stays off it.
		b.Queue(`INSERT INTO `+cert+` (volunteer_id, certification, granted_at, expires_at)
SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM `+vol+` WHERE volunteer_id = $1)
ON CONFLICT (volunteer_id, certification) DO UPDATE SET granted_at = excluded.granted_at, expires_at = excluded.expires_at`,
			e.VolunteerID, string(e.Certification), e.GrantedAt, nullTime(e.ExpiresAt))
	case volunteer.CertificationRevoked:
		b.Queue(`DELETE FROM `+cert+` WHERE volunteer_id = $1 AND certification = $2`, e.VolunteerID, string(e.Certification))
	case volunteer.Committed:
		b.Queue(`INSERT INTO `+com+` (commitment_id, volunteer_id, kind, ref, window_start, window_end)
SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS (SELECT 1 FROM `+vol+` WHERE volunteer_id = $2)
ON CONFLICT (commitment_id) DO UPDATE SET kind = excluded.kind, ref = excluded.ref,
    window_start = excluded.window_start, window_end = excluded.window_end`,
			e.CommitmentID, e.VolunteerID, string(e.Kind), nullID(e.Ref), e.Window.Start, e.Window.End)
	case volunteer.Released:
		b.Queue(`DELETE FROM `+com+` WHERE commitment_id = $1`, e.CommitmentID)

	case privacy.SubjectForgotten:
		for _, table := range []string{com, cert, vol} {
			b.Queue(`DELETE FROM `+table+` WHERE volunteer_id = $1`, e.SubjectID)
		}
	default:
		return false
	}
	return true
}

// statusSQL sets the status of requests ($1) from their flags and
// assignments, as request.State.Status does, and their update times ($2).
const statusSQL = `UPDATE %[1]s r SET updated_at = v.at, status = CASE
    WHEN r.cancelled THEN 'cancelled'
    WHEN r.closed THEN 'closed'
    WHEN r.resolved THEN 'resolved'
    WHEN EXISTS (SELECT 1 FROM %[2]s a WHERE a.request_id = r.request_id AND a.status IN ('en_route', 'arrived', 'done')) THEN 'in_progress'
    WHEN EXISTS (SELECT 1 FROM %[2]s a WHERE a.request_id = r.request_id AND a.status NOT IN ('declined', 'withdrawn')) THEN 'assigned'
    WHEN r.triaged THEN 'triaged'
    ELSE 'received' END
FROM unnest($1::uuid[], $2::timestamptz[]) AS v(request_id, at)
WHERE r.request_id = v.request_id`

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

func languages(ls []volunteer.Language) []volunteer.Language {
	if ls == nil {
		return []volunteer.Language{}
	}
	return ls
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func nullID(id uuid.UUID) *uuid.UUID {
	if id == uuid.Nil {
		return nil
	}
	return &id
}
