package web

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/presente-dispatch/presente/domain/account"
	"github.com/presente-dispatch/presente/domain/volunteer"
	"github.com/presente-dispatch/presente/infra/dispatch"
	"github.com/presente-dispatch/presente/infra/eventstore"
	"github.com/presente-dispatch/presente/infra/idempotency"
)

// importRoster posts a CSV body to the import route as u.
func (e *env) importRoster(u *user, csv string, headers ...string) answer {
	e.t.Helper()
	return e.do(u, "POST", "/api/v1/volunteers/import", csv, append([]string{"Content-Type", "text/csv; charset=utf-8"}, headers...)...)
}

// rosterIDs are the ids an import by u with key gives the rows.
func rosterIDs(u *user, key string, rows ...int) []uuid.UUID {
	retry := sha256.Sum256([]byte(idempotency.UserScope(u.id) + "\n" + key))
	ids := make([]uuid.UUID, len(rows))
	for i, row := range rows {
		ids[i] = uuid.NewSHA1(rosterNamespace, fmt.Appendf(retry[:], "\n%d", row))
	}
	return ids
}

func TestACoordinatorImportsARosterOnceHoweverOftenItIsSent(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	e := newEnv(t, envOptions{logger: zap.New(core)})
	coordinator := e.users[account.Coordinator]
	key := uuid.NewString()

	r := e.importRoster(coordinator, rosterSample+"\n,,,,,,\n", "Idempotency-Key", key)
	if r.status != http.StatusCreated {
		t.Fatalf("import: %d %s", r.status, r.body)
	}
	var got rosterImported
	decode(t, r.body, &got)
	want := rosterIDs(coordinator, key, 2, 3)
	if fmt.Sprint(got.VolunteerIDs) != fmt.Sprint(want) || got.Registered != 2 {
		t.Fatalf("imported %+v, want ids %v, 2 registered", got, want)
	}

	lucia := e.do(coordinator, "GET", "/api/v1/volunteers/"+want[0].String(), nil)
	var v volunteerView
	decode(t, lucia.body, &v)
	if v.Name != "Lucía Méndez" || v.Phone != "+1 555 0142" || v.Email != "lucia@example.org" || !v.Active ||
		fmt.Sprint(v.Languages) != "[{es native} {en fluent}]" || fmt.Sprint(v.Regions) != "[East]" {
		t.Errorf("first row registered as %+v", v)
	}
	if len(v.Certifications) != 2 || v.Certifications[1].Certification != "rapid_response" || v.Certifications[1].ExpiresAt == nil ||
		v.Certifications[1].ExpiresAt.Format("2006-01-02T15:04") != "2027-07-01T00:00" || v.Certifications[0].ExpiresAt != nil {
		t.Errorf("first row's certifications: %+v", v.Certifications)
	}
	jb := e.do(coordinator, "GET", "/api/v1/volunteers/"+want[1].String(), nil)
	if !strings.Contains(jb.body, `"name":"Jean-Baptiste, Jr."`) || !strings.Contains(jb.body, `"regions":["North","East"]`) {
		t.Errorf("second row registered as %s", jb.body)
	}

	// The client lost the answer and sends the import again: the answer
	// is replayed, and nobody is registered twice.
	again := e.importRoster(coordinator, rosterSample+"\n,,,,,,\n", "Idempotency-Key", key)
	if again.status != http.StatusCreated || again.body != r.body || again.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("retry: %d %s %v", again.status, again.body, again.header)
	}
	// A retry whose first try committed but whose answer was never kept
	// (the server stopped in between) registers nothing either.
	rows, err := parseRoster([]byte(rosterSample), e.server.dispatch.Now())
	if err != nil {
		t.Fatal(err)
	}
	entries := make([]dispatch.RosterEntry, len(rows))
	for i, row := range rows {
		row.Register.VolunteerID = want[i]
		entries[i] = dispatch.RosterEntry{Register: row.Register, Grants: row.Grants}
	}
	registered, err := e.server.dispatch.ImportRoster(context.Background(), coordinator.meta(), entries)
	if err != nil || fmt.Sprint(registered) != "[false false]" {
		t.Errorf("importing the same rows again: %v, %v", registered, err)
	}
	stored := 0
	for _, id := range want {
		events, _, err := e.store.Load(context.Background(), volunteer.StreamID(id))
		if err != nil {
			t.Fatal(err)
		}
		stored += len(events)
	}
	if stored != 2+2 { // two registrations, Lucía's two certifications
		t.Errorf("the two volunteers' streams hold %d events, want 4", stored)
	}

	// An admin may import too; a dispatcher and a volunteer may not.
	if r := e.importRoster(e.users[account.Admin], "name,email\nRosa,rosa@example.org\n", "Idempotency-Key", uuid.NewString()); r.status != http.StatusCreated {
		t.Errorf("an admin's import: %d %s", r.status, r.body)
	}
	for _, role := range []account.Role{account.Dispatcher, account.Volunteer} {
		if r := e.importRoster(e.users[role], "name,email\nRosa,rosa2@example.org\n", "Idempotency-Key", uuid.NewString()); r.status != http.StatusForbidden {
			t.Errorf("a %s's import: %d %s", role, r.status, r.body)
		}
	}

	for _, entry := range logs.All() {
		line := fmt.Sprint(entry.Message, entry.ContextMap())
		for _, secret := range []string{"Lucía", "0142", "lucia@", "Jean-Baptiste", "jb@example"} {
			if strings.Contains(line, secret) {
				t.Errorf("a log line holds a volunteer's contact details: %s", line)
			}
		}
	}
}

func TestABadRosterListsWhatToFixAndStoresNothing(t *testing.T) {
	e := newEnv(t, envOptions{})
	coordinator := e.users[account.Coordinator]
	key := uuid.NewString()
	csv := "Name;Teléfono;Email;Languages;Certifications\n" +
		"Ana Ruiz;+1 555 0100;;es:native;rapid_response:2030-01-01\n" + // row 2: fine
		";+1 555 0101;;;\n" + // row 3: no name
		"Bea;call me;;es:native;\n" + // row 4: a phone that is not one
		"Cy;+1 555 0102;;es;\n" + // row 5: no level
		"Dee;+1 555 0103;;;kyr:2020-01-01\n" + // row 6: expired
		"Eve;+1 555 0100;;;\n" // row 7: Ana's phone again
	r := e.importRoster(coordinator, csv, "Idempotency-Key", key)
	if r.status != http.StatusUnprocessableEntity || r.errorCode() != "invalid_roster" {
		t.Fatalf("a roster with bad rows: %d %s", r.status, r.body)
	}
	var body struct{ Error Error }
	decode(t, r.body, &body)
	var got []string
	for _, p := range body.Error.Problems {
		got = append(got, fmt.Sprintf("%d %s", p.Row, p.Column))
	}
	if want := "[3 name 4 phone 5 languages 6 certifications 7 phone]"; fmt.Sprint(got) != want {
		t.Errorf("problems at %v, want %s: %s", got, want, r.body)
	}
	if !strings.Contains(body.Error.Message, "5 problems") || !strings.Contains(body.Error.Message, "nothing was imported") {
		t.Errorf("message: %s", body.Error.Message)
	}
	if strings.Contains(r.body, "555 01") || strings.Contains(r.body, "call me") {
		t.Errorf("the answer repeats contact details: %s", r.body)
	}
	// Row 2 was fine, but nothing was stored.
	id := rosterIDs(coordinator, key, 2)[0]
	if r := e.do(coordinator, "GET", "/api/v1/volunteers/"+id.String(), nil); r.status != http.StatusNotFound {
		t.Errorf("the good row of a refused roster: %d %s", r.status, r.body)
	}

	// Many bad rows: the list is capped, the message counts them all.
	many := "name,email\n" + strings.Repeat(",x@example.org\n", 80)
	r = e.importRoster(coordinator, many, "Idempotency-Key", uuid.NewString())
	decode(t, r.body, &body)
	if r.status != http.StatusUnprocessableEntity || len(body.Error.Problems) != maxRosterProblems || !strings.Contains(body.Error.Message, "80 problems") {
		t.Errorf("80 bad rows: %d, %d problems listed, %q", r.status, len(body.Error.Problems), body.Error.Message)
	}

	for _, c := range []struct {
		name, csv, contentType, key string
		status                      int
		code                        string
	}{
		{"no Idempotency-Key", "name,email\nAna,a@example.org\n", "text/csv", "", http.StatusBadRequest, "idempotency_key_required"},
		{"JSON", `{"name":"Ana"}`, "application/json", "k1", http.StatusUnsupportedMediaType, "unsupported_media_type"},
		{"an unknown column", "name,email,notes\nAna,a@example.org,x\n", "text/csv", "k2", http.StatusUnprocessableEntity, "invalid_roster"},
		{"no header", "", "text/csv", "k3", http.StatusUnprocessableEntity, "invalid_roster"},
		{"a header only", "name,email\n", "text/csv", "k4", http.StatusUnprocessableEntity, "invalid_roster"},
		{"Latin-1", "name,email\nJos\xe9,j@example.org\n", "text/csv", "k5", http.StatusUnprocessableEntity, "invalid_roster"},
		{"too many rows", "name,email\n" + strings.Repeat("Ana,a@example.org\n", maxRosterRows+1), "text/csv", "k6", http.StatusRequestEntityTooLarge, "roster_too_large"},
		{"too large", "name,email\n" + strings.Repeat("x", maxRosterBytes), "text/csv", "k7", http.StatusRequestEntityTooLarge, "body_too_large"},
	} {
		headers := []string{"Content-Type", c.contentType}
		if c.key != "" {
			headers = append(headers, "Idempotency-Key", c.key+uuid.NewString())
		}
		r := e.do(coordinator, "POST", "/api/v1/volunteers/import", c.csv, headers...)
		if r.status != c.status || r.errorCode() != c.code {
			t.Errorf("%s: %d %s, want %d %s", c.name, r.status, r.body, c.status, c.code)
		}
	}
}

// meta is the metadata of a command u gives.
func (u *user) meta() eventstore.Metadata {
	return eventstore.Metadata{Actor: "user:" + u.id.String()}
}
