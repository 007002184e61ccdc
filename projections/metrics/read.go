package metrics

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/presente-dispatch/presente/domain/organization"
	"github.com/presente-dispatch/presente/projections"
)

// Groupings Weekly accepts, each naming the request column it groups by;
// "" groups nothing.
var groupings = map[string]string{"": `''`, "region": "region", "kind": "kind", "sub_kind": "sub_kind"}

// ErrGrouping refuses a grouping Weekly does not know.
var ErrGrouping = errors.New(`group by "region", "kind", "sub_kind" or nothing ("")`)

// Stat is a duration over the requests that have it: how many, and the
// median and 90th percentile (PostgreSQL's percentile_cont, interpolating
// between neighbours). The percentiles are zero when N is.
type Stat struct {
	N int `json:"n"`
	// P50 and P90 are in nanoseconds in JSON, as time.Duration.
	P50 time.Duration `json:"p50"`
	P90 time.Duration `json:"p90"`
}

// Week is one ISO week's requests, or one group's of that week.
type Week struct {
	// Start is the first instant of the week: Monday 00:00 in the
	// organization's time zone (TimeZone).
	Start time.Time `json:"start"`
	// Year and Week are the ISO 8601 year and week number.
	Year int `json:"year"`
	Week int `json:"week"`
	// Group is the region, kind or sub-kind grouped by; "" when not
	// grouped (and for a rapid response's sub-kind).
	Group string `json:"group"`
	// Received counts the requests received in the week; Resolved,
	// Closed and Cancelled those of them that are so now.
	Received  int `json:"received"`
	Resolved  int `json:"resolved"`
	Closed    int `json:"closed"`
	Cancelled int `json:"cancelled"`
	// TimeToAssign runs from receipt to the first accepted assignment,
	// TimeToArrival to the first arrival, TimeToResolve to the
	// resolution.
	TimeToAssign  Stat `json:"time_to_assign"`
	TimeToArrival Stat `json:"time_to_arrival"`
	TimeToResolve Stat `json:"time_to_resolve"`
}

// zoneSQL is the organization's time zone, UTC until one is set.
const zoneSQL = `zone AS (SELECT coalesce((SELECT time_zone FROM projections.metrics_settings), '` + organization.DefaultTimeZone + `') AS tz)`

const weeklySQL = `WITH ` + zoneSQL + `,
r AS (
    SELECT date_trunc('week', r.received_at AT TIME ZONE z.tz) AS week, z.tz, %s AS grp,
        r.resolved_at IS NOT NULL AS resolved, r.closed_at IS NOT NULL AS closed, r.cancelled_at IS NOT NULL AS cancelled,
        extract(epoch FROM r.first_assigned_at - r.received_at)::float8 AS assign,
        extract(epoch FROM r.first_arrival_at - r.received_at)::float8 AS arrival,
        extract(epoch FROM r.resolved_at - r.received_at)::float8 AS resolve
    FROM projections.metrics_requests r CROSS JOIN zone z
    WHERE r.received_at >= $1 AND r.received_at < $2)
SELECT week AT TIME ZONE tz, extract(isoyear FROM week)::int, extract(week FROM week)::int, grp,
    count(*), count(*) FILTER (WHERE resolved), count(*) FILTER (WHERE closed), count(*) FILTER (WHERE cancelled),
    count(assign), percentile_cont(0.5) WITHIN GROUP (ORDER BY assign), percentile_cont(0.9) WITHIN GROUP (ORDER BY assign),
    count(arrival), percentile_cont(0.5) WITHIN GROUP (ORDER BY arrival), percentile_cont(0.9) WITHIN GROUP (ORDER BY arrival),
    count(resolve), percentile_cont(0.5) WITHIN GROUP (ORDER BY resolve), percentile_cont(0.9) WITHIN GROUP (ORDER BY resolve)
FROM r GROUP BY week, tz, grp ORDER BY week, grp`

// Weekly returns, for the requests received from from (inclusive) to to
// (exclusive), one row per ISO week of their receipt — weeks in the
// organization's time zone — and per group when by is "region", "kind" or
// "sub_kind", in order of week then group. Weeks without requests are
// left out. A request counts in the week it was received, whatever week
// it was assigned or resolved in.
func Weekly(ctx context.Context, q projections.Querier, from, to time.Time, by string) ([]Week, error) {
	col, ok := groupings[by]
	if !ok {
		return nil, fmt.Errorf("response metrics by %q: %w", by, ErrGrouping)
	}
	rows, err := q.Query(ctx, fmt.Sprintf(weeklySQL, col), from, to)
	if err != nil {
		return nil, fmt.Errorf("read response metrics: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Week, error) {
		var w Week
		var assign, arrival, resolve [2]*float64
		err := row.Scan(&w.Start, &w.Year, &w.Week, &w.Group, &w.Received, &w.Resolved, &w.Closed, &w.Cancelled,
			&w.TimeToAssign.N, &assign[0], &assign[1], &w.TimeToArrival.N, &arrival[0], &arrival[1],
			&w.TimeToResolve.N, &resolve[0], &resolve[1])
		w.TimeToAssign.P50, w.TimeToAssign.P90 = seconds(assign[0]), seconds(assign[1])
		w.TimeToArrival.P50, w.TimeToArrival.P90 = seconds(arrival[0]), seconds(arrival[1])
		w.TimeToResolve.P50, w.TimeToResolve.P90 = seconds(resolve[0]), seconds(resolve[1])
		return w, err
	})
	if err != nil {
		return nil, fmt.Errorf("read response metrics: %w", err)
	}
	return out, nil
}

// seconds turns a number of seconds into a duration, to the microsecond
// (what timestamptz holds); nil, for no value, is zero.
func seconds(s *float64) time.Duration {
	if s == nil {
		return 0
	}
	return time.Duration(math.Round(*s*1e6)) * time.Microsecond
}

// Hours is what one volunteer served in one ISO week.
type Hours struct {
	// Start, Year and Week name the week as in Week.
	Start       time.Time `json:"start"`
	Year        int       `json:"year"`
	Week        int       `json:"week"`
	VolunteerID uuid.UUID `json:"volunteer_id"`
	// Shifts counts the shifts checked out of; ShiftMinutes sums their
	// minutes.
	Shifts       int `json:"shifts"`
	ShiftMinutes int `json:"shift_minutes"`
	// Assignments counts the assignments done; AssignmentMinutes sums
	// their minutes from arrival to done.
	Assignments       int `json:"assignments"`
	AssignmentMinutes int `json:"assignment_minutes"`
}

// Minutes is the week's total. An assignment done during an on-call shift
// counts in both parts.
func (h Hours) Minutes() int { return h.ShiftMinutes + h.AssignmentMinutes }

const hoursSQL = `WITH ` + zoneSQL + `,
service AS (
    SELECT volunteer_id, checked_in_at AS began, minutes, true AS on_shift
    FROM projections.metrics_shifts WHERE minutes IS NOT NULL AND checked_in_at >= $1 AND checked_in_at < $2
    UNION ALL
    SELECT volunteer_id, arrived_at, floor(extract(epoch FROM done_at - arrived_at) / 60)::int, false
    FROM projections.metrics_assignments WHERE done_at IS NOT NULL AND arrived_at >= $1 AND arrived_at < $2),
w AS (SELECT s.*, date_trunc('week', s.began AT TIME ZONE z.tz) AS week, z.tz FROM service s CROSS JOIN zone z)
SELECT week AT TIME ZONE tz, extract(isoyear FROM week)::int, extract(week FROM week)::int, volunteer_id,
    count(*) FILTER (WHERE on_shift), coalesce(sum(minutes) FILTER (WHERE on_shift), 0),
    count(*) FILTER (WHERE NOT on_shift), coalesce(sum(minutes) FILTER (WHERE NOT on_shift), 0)
FROM w GROUP BY week, tz, volunteer_id ORDER BY week, volunteer_id`

// VolunteerHours returns the minutes each volunteer served per ISO week
// (in the organization's time zone), counting the shifts checked into and
// the assignments arrived at from from (inclusive) to to (exclusive), in
// order of week then volunteer id. Volunteers are named by their
// pseudonymous ids only.
func VolunteerHours(ctx context.Context, q projections.Querier, from, to time.Time) ([]Hours, error) {
	rows, err := q.Query(ctx, hoursSQL, from, to)
	if err != nil {
		return nil, fmt.Errorf("read volunteer hours: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Hours, error) {
		var h Hours
		err := row.Scan(&h.Start, &h.Year, &h.Week, &h.VolunteerID, &h.Shifts, &h.ShiftMinutes, &h.Assignments, &h.AssignmentMinutes)
		return h, err
	})
	if err != nil {
		return nil, fmt.Errorf("read volunteer hours: %w", err)
	}
	return out, nil
}

// TimeZone returns the time zone the weeks are counted in: the
// organization's, UTC until one is set.
func TimeZone(ctx context.Context, q projections.Querier) (string, error) {
	rows, err := q.Query(ctx, `WITH `+zoneSQL+` SELECT tz FROM zone`)
	if err != nil {
		return "", fmt.Errorf("read the metrics' time zone: %w", err)
	}
	zone, err := pgx.CollectExactlyOneRow(rows, pgx.RowTo[string])
	if err != nil {
		return "", fmt.Errorf("read the metrics' time zone: %w", err)
	}
	return zone, nil
}
