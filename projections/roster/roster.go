// Package roster is the volunteer roster's read model: every volunteer
// with whether they are active and on call, their languages and regions,
// and their certifications with when each was granted and expires.
//
// It holds no contact data (names, phones and emails are sealed in the
// log and never read here). A forgotten volunteer leaves the roster
// entirely: their languages, regions and certifications could single
// them out.
package roster

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/presente-dispatch/presente/domain/privacy"
	"github.com/presente-dispatch/presente/domain/volunteer"
	"github.com/presente-dispatch/presente/infra/eventstore"
	"github.com/presente-dispatch/presente/projections"
)

// Name is the projection's name.
const Name = "roster"

const (
	volunteers     = "roster_volunteers"
	certifications = "roster_certifications"
)

// Projector keeps the roster.
type Projector struct{}

// New returns the roster's projector.
func New() Projector { return Projector{} }

// Name implements projections.Projector.
func (Projector) Name() string { return Name }

// Version implements projections.Projector.
func (Projector) Version() int { return 1 }

// Tables implements projections.Projector.
func (Projector) Tables() []string { return []string{volunteers, certifications} }

// DDL implements projections.Projector.
func (Projector) DDL(t projections.Names) []string {
	return []string{`CREATE TABLE ` + t.Table(volunteers) + ` (
    volunteer_id  uuid PRIMARY KEY,
    active        boolean NOT NULL,
    on_call       boolean NOT NULL,
    languages     jsonb NOT NULL,
    regions       text[] NOT NULL,
    registered_at timestamptz NOT NULL
)`, `CREATE TABLE ` + t.Table(certifications) + ` (
    volunteer_id  uuid NOT NULL,
    certification text NOT NULL,
    granted_at    timestamptz NOT NULL,
    expires_at    timestamptz,
    session_id    uuid,
    PRIMARY KEY (volunteer_id, certification)
)`, expiryIndex(t)}
}

// LateDDL implements projections.LateIndexer: the expiry index serves
// readers only.
func (Projector) LateDDL(t projections.Names) []string { return []string{expiryIndex(t)} }

func expiryIndex(t projections.Names) string {
	return `CREATE INDEX ON ` + t.Table(certifications) + ` (expires_at)`
}

// Apply implements projections.Projector.
func (Projector) Apply(ctx context.Context, tx pgx.Tx, t projections.Names, batch []eventstore.Recorded) error {
	b := &pgx.Batch{}
	vol, cert := t.Table(volunteers), t.Table(certifications)
	for _, r := range batch {
		switch e := r.Event.(type) {
		case volunteer.Registered:
			b.Queue(`INSERT INTO `+vol+` VALUES ($1, true, false, $2, $3, $4)`, e.VolunteerID, langs(e.Languages), strs(e.Regions), r.RecordedAt)
		case volunteer.ProfileChanged:
			b.Queue(`UPDATE `+vol+` SET languages = $2, regions = $3 WHERE volunteer_id = $1`, e.VolunteerID, langs(e.Languages), strs(e.Regions))
		case volunteer.OnCallChanged:
			b.Queue(`UPDATE `+vol+` SET on_call = $2 WHERE volunteer_id = $1`, e.VolunteerID, e.OnCall)
		case volunteer.Deactivated:
			b.Queue(`UPDATE `+vol+` SET active = false, on_call = false WHERE volunteer_id = $1`, e.VolunteerID)
		case volunteer.Activated:
			b.Queue(`UPDATE `+vol+` SET active = true WHERE volunteer_id = $1`, e.VolunteerID)
		case volunteer.CertificationGranted:
			var expires *time.Time
			if !e.ExpiresAt.IsZero() {
				expires = &e.ExpiresAt
			}
			var session *uuid.UUID
			if e.SessionID != uuid.Nil {
				session = &e.SessionID
			}
			b.Queue(`INSERT INTO `+cert+` SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM `+vol+` WHERE volunteer_id = $1)
ON CONFLICT (volunteer_id, certification) DO UPDATE SET granted_at = excluded.granted_at, expires_at = excluded.expires_at,
    session_id = excluded.session_id`, e.VolunteerID, string(e.Certification), e.GrantedAt, expires, session)
		case volunteer.CertificationRevoked:
			b.Queue(`DELETE FROM `+cert+` WHERE volunteer_id = $1 AND certification = $2`, e.VolunteerID, string(e.Certification))
		case privacy.SubjectForgotten:
			b.Queue(`DELETE FROM `+cert+` WHERE volunteer_id = $1`, e.SubjectID)
			b.Queue(`DELETE FROM `+vol+` WHERE volunteer_id = $1`, e.SubjectID)
		}
	}
	return tx.SendBatch(ctx, b).Close()
}

func strs(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func langs(ls []volunteer.Language) []volunteer.Language {
	if ls == nil {
		return []volunteer.Language{}
	}
	return ls
}

// Certification is a volunteer's certification on the roster.
type Certification struct {
	VolunteerID   uuid.UUID  `json:"volunteer_id"`
	Certification string     `json:"certification"`
	GrantedAt     time.Time  `json:"granted_at"`
	ExpiresAt     *time.Time `json:"expires_at,omitempty"`
}

// Expiring lists the certifications that expire in [from, to), soonest
// first: who needs a refresher training.
func Expiring(ctx context.Context, q projections.Querier, from, to time.Time) ([]Certification, error) {
	rows, err := q.Query(ctx, `SELECT volunteer_id, certification, granted_at, expires_at FROM projections.roster_certifications
WHERE expires_at >= $1 AND expires_at < $2 ORDER BY expires_at, volunteer_id, certification`, from, to)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[Certification])
}
