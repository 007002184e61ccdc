package board

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/presente-dispatch/presente/domain/volunteer"
	"github.com/presente-dispatch/presente/projections"
)

// Request is a request as the board shows it.
type Request struct {
	RequestID          uuid.UUID    `json:"request_id"`
	Kind               string       `json:"kind"`
	SubKind            string       `json:"sub_kind,omitempty"`
	Priority           string       `json:"priority"`
	Status             string       `json:"status"`
	Verification       *string      `json:"verification,omitempty"`
	Alerted            bool         `json:"alerted"`
	Region             string       `json:"region"`
	Languages          []string     `json:"languages"`
	Certifications     []string     `json:"certifications"`
	TeamCertifications []string     `json:"team_certifications"`
	Needed             int          `json:"needed"`
	Start              time.Time    `json:"start"`
	End                time.Time    `json:"end"`
	ReceivedAt         time.Time    `json:"received_at"`
	UpdatedAt          time.Time    `json:"updated_at"`
	Assignments        []Assignment `json:"assignments"`
}

// Assignment is one volunteer on a request.
type Assignment struct {
	AssignmentID uuid.UUID `json:"assignment_id"`
	VolunteerID  uuid.UUID `json:"volunteer_id"`
	Status       string    `json:"status"`
	Override     bool      `json:"override"`
	OfferedAt    time.Time `json:"offered_at"`
	ChangedAt    time.Time `json:"changed_at"`
}

// OpenRequests lists the requests not closed or cancelled, most urgent
// first, then oldest first, each with its assignments in the order
// offered.
func OpenRequests(ctx context.Context, q projections.Querier) ([]Request, error) {
	return readRequests(ctx, q, `status NOT IN ('closed', 'cancelled')`)
}

// RequestByID returns one request, open or not; found is false when the
// board has no such request.
func RequestByID(ctx context.Context, q projections.Querier, id uuid.UUID) (r Request, found bool, err error) {
	rs, err := readRequests(ctx, q, `request_id = $1`, id)
	if err != nil || len(rs) == 0 {
		return Request{}, false, err
	}
	return rs[0], true, nil
}

func readRequests(ctx context.Context, q projections.Querier, where string, args ...any) ([]Request, error) {
	rows, err := q.Query(ctx, `SELECT request_id, kind, sub_kind, priority, status, verification, alerted, region, languages,
    certifications, team_certifications, needed, window_start, window_end, received_at, updated_at
FROM projections.board_requests WHERE `+where+`
ORDER BY CASE priority WHEN 'urgent' THEN 0 WHEN 'high' THEN 1 ELSE 2 END, received_at, request_id`, args...)
	if err != nil {
		return nil, fmt.Errorf("read the board's requests: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Request, error) {
		var r Request
		err := row.Scan(&r.RequestID, &r.Kind, &r.SubKind, &r.Priority, &r.Status, &r.Verification, &r.Alerted, &r.Region, &r.Languages,
			&r.Certifications, &r.TeamCertifications, &r.Needed, &r.Start, &r.End, &r.ReceivedAt, &r.UpdatedAt)
		r.Assignments = []Assignment{}
		return r, err
	})
	if err != nil || len(out) == 0 {
		if err != nil {
			err = fmt.Errorf("read the board's requests: %w", err)
		}
		return out, err
	}
	ids := make([]uuid.UUID, len(out))
	index := map[uuid.UUID]int{}
	for i, r := range out {
		ids[i], index[r.RequestID] = r.RequestID, i
	}
	rows, err = q.Query(ctx, `SELECT request_id, assignment_id, volunteer_id, status, override, offered_at, changed_at
FROM projections.board_assignments WHERE request_id = ANY($1) ORDER BY offered_at, assignment_id`, ids)
	if err != nil {
		return nil, fmt.Errorf("read the board's assignments: %w", err)
	}
	var requestID uuid.UUID
	var a Assignment
	_, err = pgx.ForEachRow(rows, []any{&requestID, &a.AssignmentID, &a.VolunteerID, &a.Status, &a.Override, &a.OfferedAt, &a.ChangedAt}, func() error {
		i := index[requestID]
		out[i].Assignments = append(out[i].Assignments, a)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the board's assignments: %w", err)
	}
	return out, nil
}

// Volunteer is a volunteer available now, as the board shows them: no
// contact data.
type Volunteer struct {
	VolunteerID uuid.UUID            `json:"volunteer_id"`
	OnCall      bool                 `json:"on_call"`
	OnShift     bool                 `json:"on_shift"`
	Languages   []volunteer.Language `json:"languages"`
	Regions     []string             `json:"regions"`
	// Certifications are those valid at the time asked about.
	Certifications []Certification `json:"certifications"`
	// Load counts the commitments not ended by then, as
	// volunteer.State.Load does.
	Load int `json:"load"`
}

// Certification is a held certification and when it expires (never, when
// nil).
type Certification struct {
	Certification string     `json:"certification"`
	ExpiresAt     *time.Time `json:"expires_at"`
}

// Available lists the active volunteers on call or on a shift at now, with
// their languages, certifications valid at now, and load.
func Available(ctx context.Context, q projections.Querier, now time.Time) ([]Volunteer, error) {
	rows, err := q.Query(ctx, `SELECT v.volunteer_id, v.on_call,
    EXISTS (SELECT 1 FROM projections.board_commitments c WHERE c.volunteer_id = v.volunteer_id
        AND c.kind = 'shift' AND c.window_start <= $1 AND c.window_end > $1) AS on_shift,
    v.languages, v.regions,
    coalesce((SELECT jsonb_agg(jsonb_build_object('certification', x.certification, 'expires_at', x.expires_at) ORDER BY x.certification)
        FROM projections.board_certifications x
        WHERE x.volunteer_id = v.volunteer_id AND x.granted_at <= $1 AND (x.expires_at IS NULL OR x.expires_at > $1)), '[]'),
    (SELECT count(*) FROM projections.board_commitments c WHERE c.volunteer_id = v.volunteer_id AND c.window_end > $1)
FROM projections.board_volunteers v
WHERE v.active AND (v.on_call OR EXISTS (SELECT 1 FROM projections.board_commitments c WHERE c.volunteer_id = v.volunteer_id
    AND c.kind = 'shift' AND c.window_start <= $1 AND c.window_end > $1))
ORDER BY v.volunteer_id`, now)
	if err != nil {
		return nil, fmt.Errorf("read the board's volunteers: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Volunteer, error) {
		var v Volunteer
		err := row.Scan(&v.VolunteerID, &v.OnCall, &v.OnShift, &v.Languages, &v.Regions, &v.Certifications, &v.Load)
		return v, err
	})
	if err != nil {
		return nil, fmt.Errorf("read the board's volunteers: %w", err)
	}
	return out, nil
}

// RequestsByIDs returns the requests among ids that the board has, open
// or not, in the board's order.
func RequestsByIDs(ctx context.Context, q projections.Querier, ids []uuid.UUID) ([]Request, error) {
	return readRequests(ctx, q, `request_id = ANY($1)`, ids)
}

// Member is an active volunteer as the live board holds them: enough for
// a client to tell, at any moment, who is on call or on a shift, what they
// are certified for, and their load, without asking again as time passes.
// No contact data.
type Member struct {
	VolunteerID    uuid.UUID            `json:"volunteer_id"`
	OnCall         bool                 `json:"on_call"`
	Languages      []volunteer.Language `json:"languages"`
	Regions        []string             `json:"regions"`
	Certifications []Held               `json:"certifications"`
	// Commitments are the work they hold: shift slots and assignments.
	Commitments []Commitment `json:"commitments"`
}

// Held is a certification with the window it is valid in (no end: never
// expires).
type Held struct {
	Certification string     `json:"certification"`
	GrantedAt     time.Time  `json:"granted_at"`
	ExpiresAt     *time.Time `json:"expires_at"`
}

// Commitment is a piece of work a volunteer holds.
type Commitment struct {
	Kind  string     `json:"kind"`
	Ref   *uuid.UUID `json:"ref"`
	Start time.Time  `json:"start"`
	End   time.Time  `json:"end"`
}

// Members returns the active volunteers among ids, or every active
// volunteer when ids is nil, by id.
func Members(ctx context.Context, q projections.Querier, ids []uuid.UUID) ([]Member, error) {
	rows, err := q.Query(ctx, `SELECT v.volunteer_id, v.on_call, v.languages, v.regions,
    coalesce((SELECT jsonb_agg(jsonb_build_object('certification', x.certification, 'granted_at', x.granted_at, 'expires_at', x.expires_at)
        ORDER BY x.certification) FROM projections.board_certifications x WHERE x.volunteer_id = v.volunteer_id), '[]'),
    coalesce((SELECT jsonb_agg(jsonb_build_object('kind', c.kind, 'ref', c.ref, 'start', c.window_start, 'end', c.window_end)
        ORDER BY c.window_start, c.commitment_id) FROM projections.board_commitments c WHERE c.volunteer_id = v.volunteer_id), '[]')
FROM projections.board_volunteers v
WHERE v.active AND ($1::uuid[] IS NULL OR v.volunteer_id = ANY($1))
ORDER BY v.volunteer_id`, ids)
	if err != nil {
		return nil, fmt.Errorf("read the board's volunteers: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Member, error) {
		var m Member
		err := row.Scan(&m.VolunteerID, &m.OnCall, &m.Languages, &m.Regions, &m.Certifications, &m.Commitments)
		return m, err
	})
	if err != nil {
		return nil, fmt.Errorf("read the board's volunteers: %w", err)
	}
	return out, nil
}
