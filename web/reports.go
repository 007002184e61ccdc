package web

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/presente-dispatch/presente/domain/account"
	"github.com/presente-dispatch/presente/infra/accounts"
	"github.com/presente-dispatch/presente/infra/eventstore"
	"github.com/presente-dispatch/presente/projections/board"
	"github.com/presente-dispatch/presente/projections/metrics"
	"github.com/presente-dispatch/presente/projections/roster"
	"github.com/presente-dispatch/presente/projections/shiftboard"
	"github.com/presente-dispatch/presente/projections/timeline"
)

// The coordinators' reports: a request's timeline, response times, hours,
// coverage gaps, expiring certifications and the audit chain's state. They
// read the read models (Config.ReadModels), never the people served's
// personal data; each answers JSON, or CSV with ?format=csv or
// Accept: text/csv.

// errNoReadModels answers a report when the server was built without the
// read models' database.
// It is answered 503 unavailable (web/errors.go).
var errNoReadModels = errors.New("reports are not available on this server: it was started without its read models")

// reportsReady fails when the server has no read models to report from.
func (s *Server) reportsReady() error {
	if s.readModels == nil {
		return errNoReadModels
	}
	return nil
}

// wantsCSV tells whether the client asked for CSV, by ?format=csv or an
// Accept header naming text/csv; ?format=json forces JSON.
func wantsCSV(r *http.Request) (bool, error) {
	switch r.URL.Query().Get("format") {
	case "csv":
		return true, nil
	case "json":
		return false, nil
	case "":
		return strings.Contains(r.Header.Get("Accept"), "text/csv"), nil
	}
	return false, &Error{Code: "invalid_field", Field: "format", Message: "format is csv or json"}
}

// writeCSV answers a table as a CSV download named name (dated today).
// Cells starting with a formula character are prefixed with ' so that a
// spreadsheet never runs them.
func writeCSV(w http.ResponseWriter, name string, header []string, rows [][]string) {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="presente-%s-%s.csv"`, name, time.Now().UTC().Format("2006-01-02")))
	w.WriteHeader(http.StatusOK)
	cw := csv.NewWriter(w)
	_ = cw.Write(header)
	for _, row := range rows {
		for i, cell := range row {
			if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
				if _, err := strconv.ParseFloat(cell, 64); err != nil {
					row[i] = "'" + cell
				}
			}
		}
		_ = cw.Write(row)
	}
	cw.Flush()
}

// dateParam reads an optional query parameter that is a date (2026-11-02)
// or an RFC 3339 time.
func dateParam(r *http.Request, name string, def time.Time) (time.Time, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, checkTime(name, t)
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, checkTime(name, t)
	}
	return time.Time{}, &Error{Code: "invalid_field", Field: name, Message: name + " is a date such as 2026-11-02 or an RFC 3339 time"}
}

// reportWindow reads from and to: the last twelve weeks by default, at
// most two years.
func (s *Server) reportWindow(r *http.Request) (time.Time, time.Time, error) {
	now := s.dispatch.Now()
	to, err := dateParam(r, "to", now)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	from, err := dateParam(r, "from", to.AddDate(0, 0, -7*12))
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	if !from.Before(to) || to.Sub(from) > 2*366*24*time.Hour {
		return time.Time{}, time.Time{}, &Error{Code: "invalid_field", Field: "to", Message: "to must be after from, at most two years later"}
	}
	return from, to, nil
}

// intParam reads an optional whole-number query parameter in [lo, hi].
func intParam(r *http.Request, name string, def, lo, hi int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, &Error{Code: "invalid_field", Field: name, Message: fmt.Sprintf("%s is a whole number from %d to %d", name, lo, hi)}
	}
	return n, nil
}

// volunteerNames maps volunteer ids to their names, for coordinators'
// reports; a forgotten volunteer has none.
func (s *Server) volunteerNames(ctx context.Context) (map[uuid.UUID]string, error) {
	vols, err := s.dispatch.Volunteers(ctx)
	if err != nil {
		return nil, err
	}
	names := make(map[uuid.UUID]string, len(vols))
	for _, v := range vols {
		names[v.VolunteerID] = v.Name
	}
	return names, nil
}

// timelineEntry is one step of a request's timeline as the API shows it.
type timelineEntry struct {
	timeline.Entry
	VolunteerName string `json:"volunteer_name,omitempty"`
	// ActorName names the account that acted: a volunteer by their name,
	// other staff by their account's email; empty for the system and for
	// a forgotten account holder. ActorRole is the account's role now.
	ActorName string       `json:"actor_name,omitempty"`
	ActorRole account.Role `json:"actor_role,omitempty"`
}

// staffActor is how a timeline names an account.
type staffActor struct {
	name string
	role account.Role
}

// actors names the accounts behind the actors of entries ("user:<id>"):
// staff are the people who act on requests, never the people served, who
// have no account.
func (s *Server) actors(ctx context.Context, entries []timeline.Entry, volunteers map[uuid.UUID]string) (map[string]staffActor, error) {
	out := map[string]staffActor{}
	for _, e := range entries {
		if _, done := out[e.Actor]; done {
			continue
		}
		kind, raw, _ := strings.Cut(e.Actor, ":")
		id, err := uuid.Parse(raw)
		if kind != "user" || err != nil {
			continue
		}
		a, err := s.accounts.Account(ctx, id)
		if errors.Is(err, account.ErrNotFound) {
			out[e.Actor] = staffActor{}
			continue
		}
		if err != nil {
			return nil, err
		}
		name := a.Email
		if v := volunteers[id]; v != "" {
			name = v
		}
		if name == eventstore.Forgotten {
			name = ""
		}
		out[e.Actor] = staffActor{name: name, role: a.Role}
	}
	return out, nil
}

// handleTimeline serves GET /api/v1/requests/{id}/timeline: every event of
// a request, oldest first, with who caused it and when — never the
// person's personal data.
func (s *Server) handleTimeline(w http.ResponseWriter, r *http.Request, _ *accounts.Principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if err := s.reportsReady(); err != nil {
		return err
	}
	asCSV, err := wantsCSV(r)
	if err != nil {
		return err
	}
	entries, err := timeline.Of(r.Context(), s.readModels, id)
	if err != nil {
		return err
	}
	if len(entries) == 0 {
		// Not yet in the read model, or no such request.
		if _, err := s.dispatch.RequestState(r.Context(), id); err != nil {
			return err
		}
	}
	names, err := s.volunteerNames(r.Context())
	if err != nil {
		return err
	}
	actors, err := s.actors(r.Context(), entries, names)
	if err != nil {
		return err
	}
	out := make([]timelineEntry, len(entries))
	for i, e := range entries {
		out[i] = timelineEntry{Entry: e, ActorName: actors[e.Actor].name, ActorRole: actors[e.Actor].role}
		if e.VolunteerID != nil {
			out[i].VolunteerName = names[*e.VolunteerID]
		}
	}
	if asCSV {
		rows := make([][]string, len(out))
		for i, e := range out {
			rows[i] = []string{strconv.FormatInt(e.Version, 10), e.RecordedAt.UTC().Format(time.RFC3339), timeCell(e.HappenedAt), e.Type,
				e.Actor, e.Status, idCell(e.AssignmentID), idCell(e.VolunteerID), e.VolunteerName, e.Reason, e.ActorName, string(e.ActorRole)}
		}
		writeCSV(w, "timeline-"+id.String()[:8], []string{"version", "recorded_at", "happened_at", "event", "actor", "status",
			"assignment_id", "volunteer_id", "volunteer_name", "reason", "actor_name", "actor_role"}, rows)
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]any{"request_id": id, "entries": out})
	return nil
}

func timeCell(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func idCell(id *uuid.UUID) string {
	if id == nil {
		return ""
	}
	return id.String()
}

// minutesCell is a duration in minutes with one decimal, empty when none.
func minutesCell(st metrics.Stat, d time.Duration) string {
	if st.N == 0 {
		return ""
	}
	return strconv.FormatFloat(d.Minutes(), 'f', 1, 64)
}

// handleResponseTimes serves GET /api/v1/reports/response-times?from=&to=&by=:
// per ISO week (and region, kind or sub-kind) the requests received and
// the p50 and p90 of the time to assign, to first arrival and to resolve.
func (s *Server) handleResponseTimes(w http.ResponseWriter, r *http.Request, _ *accounts.Principal) error {
	if err := s.reportsReady(); err != nil {
		return err
	}
	from, to, err := s.reportWindow(r)
	if err != nil {
		return err
	}
	by := r.URL.Query().Get("by")
	asCSV, err := wantsCSV(r)
	if err != nil {
		return err
	}
	weeks, err := metrics.Weekly(r.Context(), s.readModels, from, to, by)
	if errors.Is(err, metrics.ErrGrouping) {
		return &Error{Code: "invalid_field", Field: "by", Message: "by is region, kind or sub_kind, or left out"}
	}
	if err != nil {
		return err
	}
	zone, err := metrics.TimeZone(r.Context(), s.readModels)
	if err != nil {
		return err
	}
	if asCSV {
		rows := make([][]string, len(weeks))
		for i, wk := range weeks {
			rows[i] = []string{fmt.Sprintf("%d-W%02d", wk.Year, wk.Week), wk.Start.Format(time.RFC3339), wk.Group,
				strconv.Itoa(wk.Received), strconv.Itoa(wk.Resolved), strconv.Itoa(wk.Closed), strconv.Itoa(wk.Cancelled),
				strconv.Itoa(wk.TimeToAssign.N), minutesCell(wk.TimeToAssign, wk.TimeToAssign.P50), minutesCell(wk.TimeToAssign, wk.TimeToAssign.P90),
				strconv.Itoa(wk.TimeToArrival.N), minutesCell(wk.TimeToArrival, wk.TimeToArrival.P50), minutesCell(wk.TimeToArrival, wk.TimeToArrival.P90),
				strconv.Itoa(wk.TimeToResolve.N), minutesCell(wk.TimeToResolve, wk.TimeToResolve.P50), minutesCell(wk.TimeToResolve, wk.TimeToResolve.P90)}
		}
		writeCSV(w, "response-times", []string{"week", "week_start", "group", "received", "resolved", "closed", "cancelled",
			"assigned", "assign_p50_minutes", "assign_p90_minutes", "arrived", "arrival_p50_minutes", "arrival_p90_minutes",
			"resolved_timed", "resolve_p50_minutes", "resolve_p90_minutes"}, rows)
		return nil
	}
	if weeks == nil {
		weeks = []metrics.Week{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"from": from, "to": to, "by": by, "time_zone": zone, "weeks": weeks})
	return nil
}

// hoursRow is one volunteer's week, with their name for coordinators.
type hoursRow struct {
	metrics.Hours
	Name    string `json:"name"`
	Minutes int    `json:"minutes"`
}

// handleVolunteerHours serves GET /api/v1/reports/volunteer-hours?from=&to=:
// the minutes each volunteer served per ISO week, on shifts and on
// assignments.
func (s *Server) handleVolunteerHours(w http.ResponseWriter, r *http.Request, _ *accounts.Principal) error {
	if err := s.reportsReady(); err != nil {
		return err
	}
	from, to, err := s.reportWindow(r)
	if err != nil {
		return err
	}
	asCSV, err := wantsCSV(r)
	if err != nil {
		return err
	}
	hours, err := metrics.VolunteerHours(r.Context(), s.readModels, from, to)
	if err != nil {
		return err
	}
	names, err := s.volunteerNames(r.Context())
	if err != nil {
		return err
	}
	out := make([]hoursRow, len(hours))
	for i, h := range hours {
		out[i] = hoursRow{Hours: h, Name: names[h.VolunteerID], Minutes: h.Minutes()}
	}
	if asCSV {
		rows := make([][]string, len(out))
		for i, h := range out {
			rows[i] = []string{fmt.Sprintf("%d-W%02d", h.Year, h.Week), h.Start.Format(time.RFC3339), h.VolunteerID.String(), h.Name,
				strconv.Itoa(h.Shifts), strconv.Itoa(h.ShiftMinutes), strconv.Itoa(h.Assignments), strconv.Itoa(h.AssignmentMinutes),
				strconv.Itoa(h.Minutes)}
		}
		writeCSV(w, "volunteer-hours", []string{"week", "week_start", "volunteer_id", "name", "shifts", "shift_minutes",
			"assignments", "assignment_minutes", "minutes"}, rows)
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]any{"from": from, "to": to, "hours": out})
	return nil
}

// gap is a shift in the coming days that is short: open slots, or
// languages it wants that no claimant speaks.
type gap struct {
	ShiftID          uuid.UUID `json:"shift_id"`
	Role             string    `json:"role"`
	Region           string    `json:"region"`
	Start            time.Time `json:"start"`
	End              time.Time `json:"end"`
	Capacity         int       `json:"capacity"`
	Claimed          int       `json:"claimed"`
	Open             int       `json:"open"`
	Waitlisted       int       `json:"waitlisted"`
	Languages        []string  `json:"languages"`
	MissingLanguages []string  `json:"missing_languages"`
}

// languageGap is, for one language, how many shifts want it uncovered.
type languageGap struct {
	Language string `json:"language"`
	Shifts   int    `json:"shifts"`
}

// handleCoverage serves GET /api/v1/reports/coverage?days=7: the shifts
// of the next days that are short of volunteers or of a language, and the
// languages missing most.
func (s *Server) handleCoverage(w http.ResponseWriter, r *http.Request, _ *accounts.Principal) error {
	if err := s.reportsReady(); err != nil {
		return err
	}
	days, err := intParam(r, "days", 7, 1, 31)
	if err != nil {
		return err
	}
	asCSV, err := wantsCSV(r)
	if err != nil {
		return err
	}
	now := s.dispatch.Now()
	shifts, err := shiftboard.Shifts(r.Context(), s.readModels, now, now.AddDate(0, 0, days))
	if err != nil {
		return err
	}
	var claimants []uuid.UUID
	for _, sh := range shifts {
		for _, c := range sh.Claimants {
			claimants = append(claimants, c.VolunteerID)
		}
	}
	speaks := map[uuid.UUID][]string{}
	if len(claimants) > 0 {
		members, err := board.Members(r.Context(), s.readModels, claimants)
		if err != nil {
			return err
		}
		for _, m := range members {
			for _, l := range m.Languages {
				speaks[m.VolunteerID] = append(speaks[m.VolunteerID], l.Code)
			}
		}
	}
	gaps := []gap{}
	missing := map[string]int{}
	for _, sh := range shifts {
		if sh.Cancelled || !sh.End.After(now) {
			continue
		}
		g := gap{ShiftID: sh.ShiftID, Role: sh.Role, Region: sh.Region, Start: sh.Start, End: sh.End, Capacity: sh.Capacity,
			Claimed: sh.Claimed, Open: sh.Open, Waitlisted: len(sh.Waitlist), Languages: orEmpty(sh.Languages), MissingLanguages: []string{}}
		for _, lang := range sh.Languages {
			spoken := false
			for _, c := range sh.Claimants {
				if slices.Contains(speaks[c.VolunteerID], lang) {
					spoken = true
					break
				}
			}
			if !spoken {
				g.MissingLanguages = append(g.MissingLanguages, lang)
				missing[lang]++
			}
		}
		if g.Open > 0 || len(g.MissingLanguages) > 0 {
			gaps = append(gaps, g)
		}
	}
	byLanguage := make([]languageGap, 0, len(missing))
	for lang, n := range missing {
		byLanguage = append(byLanguage, languageGap{Language: lang, Shifts: n})
	}
	slices.SortFunc(byLanguage, func(a, b languageGap) int {
		if a.Shifts != b.Shifts {
			return b.Shifts - a.Shifts
		}
		return strings.Compare(a.Language, b.Language)
	})
	if asCSV {
		rows := make([][]string, len(gaps))
		for i, g := range gaps {
			rows[i] = []string{g.ShiftID.String(), g.Role, g.Region, g.Start.Format(time.RFC3339), g.End.Format(time.RFC3339),
				strconv.Itoa(g.Capacity), strconv.Itoa(g.Claimed), strconv.Itoa(g.Open), strconv.Itoa(g.Waitlisted),
				strings.Join(g.Languages, " "), strings.Join(g.MissingLanguages, " ")}
		}
		writeCSV(w, "coverage", []string{"shift_id", "role", "region", "start", "end", "capacity", "claimed", "open", "waitlisted",
			"languages", "missing_languages"}, rows)
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]any{"from": now, "days": days, "shifts": gaps, "languages": byLanguage})
	return nil
}

// expiringRow is a certification about to expire, with the holder's name.
type expiringRow struct {
	roster.Certification
	Name string `json:"name"`
}

// handleExpiring serves GET /api/v1/reports/expiring?within_days=60: the
// certifications expiring in the coming days, soonest first.
func (s *Server) handleExpiring(w http.ResponseWriter, r *http.Request, _ *accounts.Principal) error {
	if err := s.reportsReady(); err != nil {
		return err
	}
	days, err := intParam(r, "within_days", 60, 1, 730)
	if err != nil {
		return err
	}
	asCSV, err := wantsCSV(r)
	if err != nil {
		return err
	}
	now := s.dispatch.Now()
	certs, err := roster.Expiring(r.Context(), s.readModels, now, now.AddDate(0, 0, days))
	if err != nil {
		return err
	}
	names, err := s.volunteerNames(r.Context())
	if err != nil {
		return err
	}
	out := make([]expiringRow, len(certs))
	for i, c := range certs {
		out[i] = expiringRow{Certification: c, Name: names[c.VolunteerID]}
	}
	if asCSV {
		rows := make([][]string, len(out))
		for i, c := range out {
			rows[i] = []string{c.VolunteerID.String(), c.Name, c.Certification.Certification, c.GrantedAt.Format(time.RFC3339), timeCell(c.ExpiresAt)}
		}
		writeCSV(w, "expiring", []string{"volunteer_id", "name", "certification", "granted_at", "expires_at"}, rows)
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]any{"from": now, "within_days": days, "certifications": out})
	return nil
}

// verification keeps the last audit-chain verification, so that a
// dashboard opened by many coordinators walks the log at most once a
// minute, and one at a time.
type verification struct {
	mu   sync.Mutex
	last *verificationResult
}

// verificationResult answers GET /api/v1/audit/verification.
type verificationResult struct {
	OK         bool               `json:"ok"`
	Complete   bool               `json:"complete"`
	CheckedAt  time.Time          `json:"checked_at"`
	DurationMS int64              `json:"duration_ms"`
	Streams    int                `json:"streams"`
	Events     int64              `json:"events"`
	Breaks     []eventstore.Break `json:"breaks"`
	Digest     string             `json:"digest,omitempty"`
}

// verifyFresh is how long a verification is reused; verifyBudget bounds
// one, within the API's request timeout.
const (
	verifyFresh  = time.Minute
	verifyBudget = 15 * time.Second
)

// handleVerification serves GET /api/v1/audit/verification?fresh=true:
// whether every stream's hash chain is intact, from a verification at
// most a minute old (fresh=true walks the log again), bounded to 15
// seconds; a walk that ran out of time says it is incomplete.
func (s *Server) handleVerification(w http.ResponseWriter, r *http.Request, _ *accounts.Principal) error {
	if s.verify == nil {
		return errNoReadModels
	}
	fresh, err := boolParam(r, "fresh")
	if err != nil {
		return err
	}
	s.verification.mu.Lock()
	defer s.verification.mu.Unlock()
	if last := s.verification.last; last != nil && !fresh && time.Since(last.CheckedAt) < verifyFresh {
		writeJSON(w, http.StatusOK, last)
		return nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), verifyBudget)
	defer cancel()
	began := time.Now()
	report, err := s.verify(ctx)
	res := &verificationResult{CheckedAt: began.UTC(), DurationMS: time.Since(began).Milliseconds(), Breaks: []eventstore.Break{}}
	switch {
	case errors.Is(err, context.DeadlineExceeded) && r.Context().Err() == nil:
		// Out of budget: say so rather than fail; the last complete walk stays.
	case err != nil:
		return err
	default:
		res.Complete, res.OK = true, report.OK()
		res.Streams, res.Events, res.Digest = report.Streams, report.Events, report.Digest
		if report.Breaks != nil {
			res.Breaks = report.Breaks
		}
		s.verification.last = res
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}
