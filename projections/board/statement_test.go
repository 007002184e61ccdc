package board

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/presente-dispatch/presente/domain/privacy"
	"github.com/presente-dispatch/presente/domain/request"
	"github.com/presente-dispatch/presente/domain/volunteer"
	"github.com/presente-dispatch/presente/infra/eventstore"
	"github.com/presente-dispatch/presente/projections"
	"github.com/presente-dispatch/presente/projections/projectiontest"
)

// statementBoard is the read model as it was first written, one statement per event:
// the reference Apply must agree with, row for row, now that it derives
// request status once per batch.
type statementBoard struct{ Projector }

// Apply is the Apply this package had at first: one statement per event,
// the derived columns computed again after each.
func (statementBoard) Apply(ctx context.Context, tx pgx.Tx, t projections.Names, batch []eventstore.Recorded) error {
	b := &pgx.Batch{}
	for _, r := range batch {
		queueStatement(b, t, r)
	}
	return tx.SendBatch(ctx, b).Close()
}

func queueStatement(b *pgx.Batch, t projections.Names, r eventstore.Recorded) {
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
		return
	default:
		return
	}
	if r.StreamType == request.StreamType {
		b.Queue(fmt.Sprintf(statementStatusSQL, req, asg), r.StreamID, r.RecordedAt)
	}
}

// statementStatusSQL sets a request's status from its flags and assignments, as
// request.State.Status does.
const statementStatusSQL = `UPDATE %[1]s r SET updated_at = $2, status = CASE
    WHEN r.cancelled THEN 'cancelled'
    WHEN r.closed THEN 'closed'
    WHEN r.resolved THEN 'resolved'
    WHEN EXISTS (SELECT 1 FROM %[2]s a WHERE a.request_id = r.request_id AND a.status IN ('en_route', 'arrived', 'done')) THEN 'in_progress'
    WHEN EXISTS (SELECT 1 FROM %[2]s a WHERE a.request_id = r.request_id AND a.status NOT IN ('declined', 'withdrawn')) THEN 'assigned'
    WHEN r.triaged THEN 'triaged'
    ELSE 'received' END
WHERE r.request_id = $1`

// TestApplyEqualsOneStatementPerEvent keeps the read model and the
// reference side by side through the scenario, with batches of several
// sizes: every table must hold the same rows.
func TestApplyEqualsOneStatementPerEvent(t *testing.T) {
	projectiontest.CheckSameAsReference(t, projectiontest.New(t), New(), statementBoard{})
}
