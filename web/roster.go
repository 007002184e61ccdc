package web

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/presente-dispatch/presente/domain"
	"github.com/presente-dispatch/presente/domain/volunteer"
	"github.com/presente-dispatch/presente/infra/accounts"
	"github.com/presente-dispatch/presente/infra/dispatch"
)

// Importing a roster: a coordinator onboards the volunteers a network
// already has, from the spreadsheet it kept them in, saved as CSV.

const (
	// maxRosterBytes bounds an imported file: a thousand volunteers take
	// about 200 KiB.
	maxRosterBytes = 1 << 20
	// maxRosterRows bounds the volunteers of one import, all registered in
	// one transaction.
	maxRosterRows = 1000
	// maxRosterProblems bounds the problems listed in one answer.
	maxRosterProblems = 50
)

// Roster columns, as the header row names them.
const (
	colName             = "name"
	colPhone            = "phone"
	colEmail            = "email"
	colLanguages        = "languages"
	colRegions          = "regions"
	colCertifications   = "certifications"
	colPriorAssignments = "prior_assignments"
)

var rosterColumns = []string{colName, colPhone, colEmail, colLanguages, colRegions, colCertifications, colPriorAssignments}

// rosterAliases are other headings spreadsheets use for a column.
var rosterAliases = map[string]string{
	"full_name": colName, "nombre": colName, "telephone": colPhone, "phone_number": colPhone, "teléfono": colPhone, "telefono": colPhone,
	"e_mail": colEmail, "correo": colEmail, "language": colLanguages, "idiomas": colLanguages, "region": colRegions,
	"certification": colCertifications, "certificaciones": colCertifications,
}

// rosterRow is one volunteer of a roster, checked against the volunteer
// rules: registering them and granting each certification succeeds.
type rosterRow struct {
	// Row is the row's number in the spreadsheet; the header is row 1.
	Row      int
	Register volunteer.Register
	Grants   []volunteer.Grant
}

// rosterProblems gathers what to fix in a roster, in row order.
type rosterProblems struct {
	list  []Problem
	total int
}

func (p *rosterProblems) add(row int, column, format string, args ...any) {
	p.total++
	if len(p.list) < maxRosterProblems {
		p.list = append(p.list, Problem{Row: row, Column: column, Message: fmt.Sprintf(format, args...)})
	}
}

func (p *rosterProblems) err() error {
	if p.total == 0 {
		return nil
	}
	msg := fmt.Sprintf("%d problems in the file; nothing was imported: fix them and send the whole file again", p.total)
	if p.total == 1 {
		msg = "1 problem in the file; nothing was imported: fix it and send the whole file again"
	}
	if p.total > len(p.list) {
		msg += fmt.Sprintf(" (the first %d are listed)", len(p.list))
	}
	return &Error{Code: "invalid_roster", Message: msg, Problems: p.list, status: http.StatusUnprocessableEntity}
}

// parseRoster reads a roster: a header row naming the columns (name, and
// phone or email, are required; languages, regions, certifications and
// prior_assignments are optional), then a row per volunteer. Lists within
// a cell are separated by ";" (or "," or "|"): languages as "es:native;
// en:fluent", certifications as "rapid_response:2027-06-30" (valid through
// that day, UTC) or without a date when they do not expire. Every row is
// checked before anything is stored; the error lists what to fix, by row
// and column. now is when the certifications are granted.
func parseRoster(body []byte, now time.Time) ([]rosterRow, error) {
	body = bytes.TrimPrefix(body, []byte("\ufeff")) // Excel's byte order mark
	if !utf8.Valid(body) {
		return nil, &Error{Code: "invalid_roster", status: http.StatusUnprocessableEntity,
			Message: "the file is not UTF-8 text: save the spreadsheet as \"CSV UTF-8\" and send it again"}
	}
	r := csv.NewReader(bytes.NewReader(body))
	r.FieldsPerRecord = -1
	r.Comma = rosterDelimiter(body)
	var problems rosterProblems
	header, err := r.Read()
	if errors.Is(err, io.EOF) {
		return nil, &Error{Code: "invalid_roster", status: http.StatusUnprocessableEntity,
			Message: "the file is empty: send a header row naming the columns (" + strings.Join(rosterColumns, ", ") + "), then a row per volunteer"}
	}
	if err != nil {
		problems.add(1, "", "%s", csvProblem(err))
		return nil, problems.err()
	}
	columns := make([]string, len(header))
	seen := map[string]bool{}
	for i, h := range header {
		name := strings.ToLower(strings.TrimSpace(h))
		name = strings.NewReplacer(" ", "_", "-", "_").Replace(name)
		if alias, ok := rosterAliases[name]; ok {
			name = alias
		}
		switch {
		case name == "":
			problems.add(1, "", "column %d has no heading: name it (%s) or delete the column", i+1, strings.Join(rosterColumns, ", "))
		case !slices.Contains(rosterColumns, name):
			problems.add(1, "", "column %d, %q, is not a roster column: use %s, or delete the column", i+1, clip(h), strings.Join(rosterColumns, ", "))
		case seen[name]:
			problems.add(1, name, "the %s column appears twice: keep one", name)
		}
		seen[name] = true
		columns[i] = name
	}
	if !seen[colName] {
		problems.add(1, colName, "the header has no name column: the first row must name the columns, such as name,phone,email,languages")
	}
	if !seen[colPhone] && !seen[colEmail] {
		problems.add(1, colPhone, "the header has neither a phone nor an email column: add one, so volunteers can be reached")
	}
	if problems.total > 0 {
		return nil, problems.err()
	}

	var rows []rosterRow
	volunteers := 0
	contacts := map[string]int{} // an email or phone number: the first row that gives it
	for row := 2; ; row++ {
		record, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			problems.add(row, "", "%s", csvProblem(err))
			break // the reader cannot go on past malformed quoting
		}
		if blank(record) {
			continue // spreadsheets export empty rows at the end
		}
		if volunteers++; volunteers > maxRosterRows {
			return nil, &Error{Code: "roster_too_large", status: http.StatusRequestEntityTooLarge,
				Message: fmt.Sprintf("the file has more than %d volunteers: split it into files of at most %d rows and import each", maxRosterRows, maxRosterRows)}
		}
		if len(record) != len(columns) {
			problems.add(row, "", "the row has %d cells and the header %d: check for a stray separator or a missing cell", len(record), len(columns))
			continue
		}
		cells := map[string]string{}
		bad := false
		for i, v := range record {
			v = strings.TrimSpace(v)
			if strings.ContainsFunc(v, unicode.IsControl) {
				problems.add(row, columns[i], "holds a line break or control character: keep the cell on one line")
				bad = true
			}
			cells[columns[i]] = v
		}
		if bad {
			continue
		}
		if parsed, ok := parseRosterRow(row, cells, now, &problems); ok {
			for _, col := range []string{colEmail, colPhone} {
				key := col + "\x00" + strings.ToLower(cells[col])
				if cells[col] == "" {
					continue
				}
				if first, dup := contacts[key]; dup {
					problems.add(row, col, "the same %s as row %d: is this volunteer listed twice?", col, first)
					ok = false
					continue
				}
				contacts[key] = row
			}
			if ok {
				rows = append(rows, parsed)
			}
		}
	}
	if err := problems.err(); err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, &Error{Code: "invalid_roster", status: http.StatusUnprocessableEntity,
			Message: "the file has a header but no volunteers: add a row per volunteer below it"}
	}
	return rows, nil
}

// parseRosterRow reads one row's cells and checks them with the volunteer
// rules, reporting each problem.
func parseRosterRow(row int, cells map[string]string, now time.Time, problems *rosterProblems) (rosterRow, bool) {
	before := problems.total
	reg := volunteer.Register{Name: cells[colName], Phone: cells[colPhone], Email: cells[colEmail], Regions: []string{}, Languages: []volunteer.Language{}}
	for _, entry := range splitList(cells[colLanguages]) {
		code, level, ok := strings.Cut(entry, ":")
		if !ok {
			problems.add(row, colLanguages, "%q needs a level after a colon, such as es:native (basic, conversational, fluent or native)", clip(entry))
			continue
		}
		reg.Languages = append(reg.Languages, volunteer.Language{Code: strings.TrimSpace(code), Level: volunteer.Level(strings.ToLower(strings.TrimSpace(level)))})
	}
	reg.Regions = append(reg.Regions, splitList(cells[colRegions])...)
	if v := cells[colPriorAssignments]; v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			problems.add(row, colPriorAssignments, "write a whole number such as 12, or leave it empty")
		}
		reg.PriorAssignments = n
	}
	var grants []volunteer.Grant
	for _, entry := range splitList(cells[colCertifications]) {
		name, date, dated := strings.Cut(entry, ":")
		g := volunteer.Grant{Certification: volunteer.Certification(strings.TrimSpace(name)), GrantedAt: now}
		if dated {
			day, err := time.Parse(time.DateOnly, strings.TrimSpace(date))
			if err != nil {
				problems.add(row, colCertifications, "%q: write the expiry as a date such as 2027-06-30, or leave it out if it does not expire", clip(entry))
				continue
			}
			g.ExpiresAt = day.AddDate(0, 0, 1) // valid through that day
			if !g.ExpiresAt.After(now) {
				problems.add(row, colCertifications, "%s expired on %s: renew it before importing, or leave it out", g.Certification, day.Format(time.DateOnly))
				continue
			}
		}
		if slices.ContainsFunc(grants, func(h volunteer.Grant) bool { return h.Certification == g.Certification }) {
			problems.add(row, colCertifications, "%s is listed twice: keep one", clip(string(g.Certification)))
			continue
		}
		grants = append(grants, g)
	}
	if problems.total > before {
		return rosterRow{}, false
	}
	// The volunteer rules, as registering will apply them, with a stand-in
	// id: what passes here is stored as it is.
	reg.VolunteerID = uuid.Max
	state := volunteer.Decider.Initial()
	commands := []volunteer.Command{reg}
	for _, g := range grants {
		commands = append(commands, g)
	}
	for _, c := range commands {
		events, err := volunteer.Decider.Decide(state, c)
		var invalid *domain.InvalidError
		switch {
		case errors.As(err, &invalid):
			problems.add(row, rosterColumn(invalid.Field), "%s", invalid.Error())
			return rosterRow{}, false
		case err != nil:
			problems.add(row, "", "%s", err.Error())
			return rosterRow{}, false
		}
		for _, e := range events {
			state = volunteer.Decider.Evolve(state, e)
		}
	}
	// What is stored is what the rules normalize (trimmed, lower-case
	// language codes, regions once each).
	reg.VolunteerID = uuid.Nil
	reg.Name, reg.Phone, reg.Email = state.Name, state.Phone, state.Email
	reg.Languages, reg.Regions = state.Languages, state.Regions
	return rosterRow{Row: row, Register: reg, Grants: grants}, true
}

// rosterColumn names the column a volunteer rule's field comes from.
func rosterColumn(field string) string {
	switch field {
	case "certification", "granted_at", "expires_at":
		return colCertifications
	case "volunteer_id":
		return ""
	}
	return field
}

// rosterDelimiter is the header row's separator: a comma, or the semicolon
// that spreadsheets use where the comma is the decimal mark.
func rosterDelimiter(body []byte) rune {
	first, _, _ := bytes.Cut(body, []byte("\n"))
	if !bytes.ContainsRune(first, ',') && bytes.ContainsRune(first, ';') {
		return ';'
	}
	return ','
}

func splitList(cell string) []string {
	var out []string
	for _, part := range strings.FieldsFunc(cell, func(r rune) bool { return r == ';' || r == ',' || r == '|' }) {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

func blank(record []string) bool {
	for _, v := range record {
		if strings.TrimSpace(v) != "" {
			return false
		}
	}
	return true
}

// csvProblem explains a CSV syntax error without repeating the row.
func csvProblem(err error) string {
	var parse *csv.ParseError
	if errors.As(err, &parse) {
		switch {
		case errors.Is(parse.Err, csv.ErrQuote), errors.Is(parse.Err, csv.ErrBareQuote):
			return fmt.Sprintf("a quote mark is out of place (line %d, column %d): put a cell holding quotes in double quotes, and double each quote inside it", parse.Line, parse.Column)
		}
		return fmt.Sprintf("the CSV cannot be read at line %d: %v", parse.Line, parse.Err)
	}
	return "the CSV cannot be read: " + err.Error()
}

// clip shortens what a problem quotes from the file, which is not contact
// data, to keep the answer small.
func clip(s string) string {
	const max = 40
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	return string([]rune(s)[:max]) + "…"
}

// rosterImported answers a successful import.
type rosterImported struct {
	// VolunteerIDs are the volunteers' ids, in the file's order.
	VolunteerIDs []uuid.UUID `json:"volunteer_ids"`
	// Registered counts those this request registered; the others were
	// registered by an earlier try of the same import.
	Registered int `json:"registered"`
}

// rosterNamespace derives the ids of an import's volunteers.
var rosterNamespace = uuid.MustParse("6f1d9b52-3c8e-4a7f-b0d2-9e4c1a5f7b38")

// handleImportRoster serves POST /api/v1/volunteers/import: a coordinator
// registers a roster of volunteers from a CSV file, all or none. The
// request must carry an Idempotency-Key: each volunteer's id is derived
// from it and the row, so a retry registers nobody twice.
func (s *Server) handleImportRoster(w http.ResponseWriter, r *http.Request, p *accounts.Principal) error {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "text/csv" {
		return &Error{Code: "unsupported_media_type", status: http.StatusUnsupportedMediaType,
			Message: "send the roster as a CSV file with Content-Type: text/csv"}
	}
	seed := retryOf(r)
	if seed == nil {
		return &Error{Code: "idempotency_key_required", Message: "send an Idempotency-Key header with the import, so that retrying it never registers anyone twice"}
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return &Error{Code: codeBodyTooLarge, status: http.StatusRequestEntityTooLarge,
				Message: fmt.Sprintf("the file is larger than %d KiB: split it into smaller files and import each", maxRosterBytes>>10)}
		}
		return err
	}
	rows, err := parseRoster(body, s.dispatch.Now())
	if err != nil {
		return err
	}
	entries := make([]dispatch.RosterEntry, len(rows))
	out := rosterImported{VolunteerIDs: make([]uuid.UUID, len(rows))}
	for i, row := range rows {
		id := uuid.NewSHA1(rosterNamespace, fmt.Appendf(slices.Clone(seed), "\n%d", row.Row))
		row.Register.VolunteerID = id
		entries[i] = dispatch.RosterEntry{Register: row.Register, Grants: row.Grants}
		out.VolunteerIDs[i] = id
	}
	registered, err := s.dispatch.ImportRoster(r.Context(), p.Meta(""), entries)
	var rowErr *dispatch.RosterError
	if errors.As(err, &rowErr) {
		// parseRoster applied the same rules: this is a bug, not the file.
		return fmt.Errorf("import roster: row %d passed the checks but not registration: %w", rows[rowErr.Index].Row, rowErr.Err)
	}
	if err != nil {
		return err
	}
	for _, ok := range registered {
		if ok {
			out.Registered++
		}
	}
	writeJSON(w, http.StatusCreated, out)
	return nil
}
