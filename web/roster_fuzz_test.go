package web

import (
	"bytes"
	"encoding/csv"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/presente-dispatch/presente/domain/volunteer"
)

// rosterNow is when FuzzImportRoster's certifications are granted.
var rosterNow = time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)

const rosterSample = "name,phone,email,languages,regions,certifications,prior_assignments\n" +
	"Lucía Méndez,+1 555 0142,lucia@example.org,es:native; en:fluent,East,rapid_response:2027-06-30; court_accompaniment,12\n" +
	"\"Jean-Baptiste, Jr.\",,jb@example.org,ht:native,North|East,,\n"

// FuzzImportRoster reads arbitrary files as rosters. A refused file gets a
// client error: a list of problems, each naming a row of the file and a
// roster column, in row order, capped, that never repeats a volunteer's
// name, phone or email (answers may be logged or shown over a shoulder);
// or a single message. An accepted file gives rows that register and are
// granted their certifications under the volunteer rules, with no contact
// given twice, and that write back to a CSV file reading as the same
// rows.
func FuzzImportRoster(f *testing.F) {
	f.Add([]byte(rosterSample))
	f.Add([]byte("\ufeffName;Teléfono;Correo\nAna;555 0100;\n"))
	f.Add([]byte("name,email\nAna,ana@example.org\nAna B,ana@example.org\n"))
	f.Add([]byte("name,phone,languages\nAna,555,es\nBo,556,es:expert\nCy,557,??:basic\n"))
	f.Add([]byte("name,phone,certifications\nAna,555,rapid_response:2020-01-01\nBo,556,Rapid Response\nCy,557,kyr:2027-13-01\n"))
	f.Add([]byte("name,phone,prior_assignments\nAna,555,-1\nBo,556,many\n"))
	f.Add([]byte("name,phone,notes\nAna,555,x\n"))
	f.Add([]byte("name,phone\n\"Ana,555\n"))
	f.Add([]byte("name,phone\nAna,555,extra\n,,\n\n"))
	f.Add([]byte("name,phone\n\"Ana\nMaría\",555\n"))
	f.Add([]byte("name,phone\n"))
	f.Add([]byte(""))
	f.Add([]byte("\xff\xfe"))
	f.Fuzz(func(t *testing.T, body []byte) {
		rows, err := parseRoster(body, rosterNow)
		if err != nil {
			checkRosterError(t, body, err)
			return
		}
		if len(rows) == 0 || len(rows) > maxRosterRows {
			t.Fatalf("accepted a roster of %d volunteers", len(rows))
		}
		contacts := map[string]bool{}
		for _, row := range rows {
			checkRosterRow(t, row)
			for _, c := range []string{"email " + strings.ToLower(row.Register.Email), "phone " + row.Register.Phone} {
				if !strings.HasSuffix(c, " ") && contacts[c] {
					t.Fatalf("row %d: the %s was given by an earlier row too", row.Row, c)
				}
				contacts[c] = true
			}
		}
		again, err := parseRoster(writeRoster(t, rows), rosterNow)
		if err != nil {
			t.Fatalf("the rows written back do not read: %v\n%s", err, writeRoster(t, rows))
		}
		for i := range rows {
			again[i].Row = rows[i].Row // the rewritten file has no blank rows
		}
		if !reflect.DeepEqual(rows, again) {
			t.Fatalf("rows changed when written back:\n%+v\n%+v", rows, again)
		}
	})
}

func checkRosterError(t *testing.T, body []byte, err error) {
	t.Helper()
	var apiErr *Error
	if !errors.As(err, &apiErr) {
		t.Fatalf("%T %v is not an answer for the client", err, err)
	}
	status, _ := errorStatus(err)
	switch {
	case apiErr.Code == "invalid_roster" && status == http.StatusUnprocessableEntity:
	case apiErr.Code == "roster_too_large" && status == http.StatusRequestEntityTooLarge:
	default:
		t.Fatalf("%d %s: not a roster answer", status, apiErr.Code)
	}
	if strings.TrimSpace(apiErr.Message) == "" {
		t.Fatal("the answer says nothing")
	}
	if len(apiErr.Problems) > maxRosterProblems {
		t.Fatalf("%d problems listed, over the cap of %d", len(apiErr.Problems), maxRosterProblems)
	}
	contacts, others := contactCells(body)
	for i, p := range apiErr.Problems {
		if p.Row < 1 || strings.TrimSpace(p.Message) == "" {
			t.Fatalf("problem %+v names no row or says nothing", p)
		}
		if p.Column != "" && !slices.Contains(rosterColumns, p.Column) {
			t.Fatalf("problem %+v names a column that is not a roster column", p)
		}
		if i > 0 && p.Row < apiErr.Problems[i-1].Row {
			t.Fatalf("problems out of row order: %+v", apiErr.Problems)
		}
		for _, c := range contacts {
			if strings.Contains(p.Message, c) && !strings.Contains(sourceWording, c) && !strings.Contains(others, c) {
				t.Fatalf("problem %+v repeats a volunteer's contact detail %q", p, c)
			}
		}
	}
}

// sourceWording is every string literal of the roster import and of the
// volunteer rules: what a problem says in its own words. A contact cell
// found in it ("le.org", "fluent") is not being repeated.
var sourceWording = func() string {
	var b strings.Builder
	for _, name := range []string{"roster.go", "../domain/volunteer/volunteer.go"} {
		file, err := parser.ParseFile(token.NewFileSet(), name, nil, 0)
		if err != nil {
			panic(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if v, err := strconv.Unquote(lit.Value); err == nil {
					b.WriteString(v + "\x00")
				}
			}
			return true
		})
	}
	return b.String()
}()

// contactCells are the name, phone and email cells of a roster, those
// long enough that finding one in a message is not a coincidence, and
// every other cell (the header's too), joined: a problem may quote those.
func contactCells(body []byte) ([]string, string) {
	body = bytes.TrimPrefix(body, []byte("\ufeff"))
	r := csv.NewReader(bytes.NewReader(body))
	r.FieldsPerRecord = -1
	r.Comma = rosterDelimiter(body)
	header, err := r.Read()
	if err != nil {
		return nil, ""
	}
	var out []string
	others := strings.Join(header, "\x00")
	for {
		record, err := r.Read()
		if err != nil {
			return out, others
		}
		for i, v := range record {
			column := ""
			if i < len(header) {
				column = strings.NewReplacer(" ", "_", "-", "_").Replace(strings.ToLower(strings.TrimSpace(header[i])))
				if alias, ok := rosterAliases[column]; ok {
					column = alias
				}
			}
			switch v = strings.TrimSpace(v); {
			case column != colName && column != colPhone && column != colEmail:
				others += "\x00" + v
			case len(v) >= 6:
				out = append(out, v)
			}
		}
	}
}

func checkRosterRow(t *testing.T, row rosterRow) {
	t.Helper()
	reg := row.Register
	reg.VolunteerID = uuid.New()
	state := volunteer.Decider.Initial()
	events, err := volunteer.Decider.Decide(state, reg)
	if err != nil {
		t.Fatalf("row %d was accepted but does not register: %v", row.Row, err)
	}
	state = volunteer.Decider.Fold(events)
	if state.Name != reg.Name || state.Phone != reg.Phone || state.Email != reg.Email ||
		!slices.Equal(state.Languages, reg.Languages) || !slices.Equal(state.Regions, reg.Regions) {
		t.Fatalf("row %d is not in the form the rules store: %+v, stored %+v", row.Row, reg, state)
	}
	for _, g := range row.Grants {
		events, err := volunteer.Decider.Decide(state, g)
		if err != nil {
			t.Fatalf("row %d: granting %s fails: %v", row.Row, g.Certification, err)
		}
		for _, e := range events {
			state = volunteer.Decider.Evolve(state, e)
		}
		if !g.ExpiresAt.IsZero() && !g.ExpiresAt.After(rosterNow) {
			t.Fatalf("row %d: %s is already expired", row.Row, g.Certification)
		}
	}
}

// writeRoster writes rows as a roster file, as a spreadsheet would.
func writeRoster(t *testing.T, rows []rosterRow) []byte {
	t.Helper()
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write(rosterColumns)
	for _, row := range rows {
		reg := row.Register
		langs := make([]string, len(reg.Languages))
		for i, l := range reg.Languages {
			langs[i] = l.Code + ":" + string(l.Level)
		}
		certs := make([]string, len(row.Grants))
		for i, g := range row.Grants {
			certs[i] = string(g.Certification)
			if !g.ExpiresAt.IsZero() {
				certs[i] += ":" + g.ExpiresAt.AddDate(0, 0, -1).Format(time.DateOnly)
			}
		}
		prior := ""
		if reg.PriorAssignments != 0 {
			prior = strconv.Itoa(reg.PriorAssignments)
		}
		_ = w.Write([]string{reg.Name, reg.Phone, reg.Email, strings.Join(langs, "; "), strings.Join(reg.Regions, "|"), strings.Join(certs, "; "), prior})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
