package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/presente-dispatch/presente/domain/account"
)

// The bad-input catalogue: every route of the API's route table, called by
// a user whose role may call it, receives malformed JSON, wrong types,
// unknown fields, huge bodies and strings, invalid ids, impossible times,
// unicode edge cases, injection strings and bad query parameters. Each
// answer must be a 4xx with an error body saying what to fix, and a
// refused request must leave the event log (and the other tables a
// request writes) exactly as it was.
//
// A new route is attacked as soon as it is in the table: the test fails
// until the route's sample body (badInputBodies), the fixture its path
// parameters name (badInputFixtures.param) and the query parameters it
// reads (badInputQueries) are declared here.

// bodyKind says what body a route takes.
type bodyKind int

const (
	bodyNone     bodyKind = iota // the route reads no body
	bodyRequired                 // a JSON object is required
	bodyOptional                 // a JSON object, or nothing at all
	bodyCSV                      // a text/csv file (an import)
)

// sampleBody is a route's body: its kind and a valid example, from which
// the field attacks are made.
type sampleBody struct {
	kind    bodyKind
	example string
}

// badInputFixtures are the records the routes' paths name, made through
// the API before the attacks.
type badInputFixtures struct {
	account, invitation, volunteer, other, shift, request, assignment, course, session uuid.UUID
	start                                                                              time.Time
}

// param is the value of a route's path parameter: the fixture it names.
func (f badInputFixtures) param(pattern, name string) (string, bool) {
	switch name {
	case "volunteer":
		return f.volunteer.String(), true
	case "assignment":
		return f.assignment.String(), true
	case "certification":
		return "court_accompaniment", true
	case "action":
		return "triage", true
	case "id":
	default:
		return "", false
	}
	// {id} names what the segment before it lists.
	_, path, _ := strings.Cut(pattern, " ")
	before, _, _ := strings.Cut(path, "/{id}")
	collection := before[strings.LastIndex(before, "/")+1:]
	ids := map[string]uuid.UUID{"accounts": f.account, "invitations": f.invitation, "subjects": uuid.Nil,
		"volunteers": f.volunteer, "shifts": f.shift, "requests": f.request, "courses": f.course, "sessions": f.session}
	id, ok := ids[collection]
	if collection == "subjects" {
		// Forgetting is for good: aim it at nobody in particular.
		id = uuid.MustParse("0195a3b2-0000-7000-8000-00000000f0f0")
	}
	return id.String(), ok
}

// badInputBodies are the sample bodies of the routes that take one;
// every state-changing route must be listed.
func badInputBodies(f badInputFixtures) map[string]sampleBody {
	start := f.start.Format(time.RFC3339)
	end := f.start.Add(3 * time.Hour).Format(time.RFC3339)
	reason := sampleBody{bodyOptional, `{"reason": "a reason"}`}
	return map[string]sampleBody{
		"POST /api/v1/session":                                               {bodyRequired, `{"email": "someone@example.org", "password": "a long passphrase"}`},
		"DELETE /api/v1/session":                                             {bodyNone, ""},
		"POST /api/v1/volunteers/import":                                     {bodyCSV, ""},
		"PUT /api/v1/me/language":                                            {bodyRequired, `{"language": "es"}`},
		"POST /api/v1/me/password":                                           {bodyRequired, `{"current_password": "` + testPassword + `", "new_password": "another long passphrase"}`},
		"POST /api/v1/accounts/{id}/role":                                    {bodyRequired, `{"role": "dispatcher", "reason": "moved teams"}`},
		"POST /api/v1/accounts/{id}/deactivate":                              reason,
		"POST /api/v1/accounts/{id}/reactivate":                              reason,
		"POST /api/v1/accounts/{id}/revoke-sessions":                         {bodyNone, ""},
		"POST /api/v1/invitations":                                           {bodyRequired, `{"email": "new@example.org", "role": "volunteer", "expires_in_hours": 24}`},
		"POST /api/v1/invitations/{id}/revoke":                               reason,
		"POST /api/v1/invitations/lookup":                                    {bodyRequired, `{"token": "an-invitation-token"}`},
		"POST /api/v1/invitations/accept":                                    {bodyRequired, `{"token": "an-invitation-token", "password": "a long passphrase"}`},
		"POST /api/v1/subjects/{id}/forget":                                  {bodyRequired, `{"reason": "asked"}`},
		"POST /api/v1/retention/hold":                                        reason,
		"POST /api/v1/retention/release":                                     reason,
		"POST /api/v1/volunteers":                                            {bodyRequired, `{"name": "Ana Ruiz", "phone": "+1 555 0100", "email": "ana@example.org", "languages": [{"code": "es", "level": "native"}], "regions": ["East"], "prior_assignments": 3}`},
		"POST /api/v1/volunteers/{id}/on-call":                               {bodyRequired, `{"on_call": true}`},
		"POST /api/v1/volunteers/{id}/certifications":                        {bodyRequired, `{"certification": "court_accompaniment", "granted_at": "2026-01-05T00:00:00Z", "expires_at": "2028-01-05T00:00:00Z"}`},
		"POST /api/v1/volunteers/{id}/certifications/{certification}/revoke": reason,
		"POST /api/v1/volunteers/{id}/profile":                               {bodyRequired, `{"languages": [{"code": "es", "level": "native"}], "regions": ["East"]}`},
		"POST /api/v1/volunteers/{id}/contact":                               {bodyRequired, `{"name": "Ana Ruiz", "phone": "+1 555 0100", "email": "ana@example.org"}`},
		"POST /api/v1/volunteers/{id}/deactivate":                            reason,
		"POST /api/v1/volunteers/{id}/activate":                              reason,
		"POST /api/v1/shifts": {bodyRequired, `{"role": "court watch", "start": "` + start + `", "end": "` + end +
			`", "region": "East", "place": "Courthouse", "capacity": 2, "requires": ["court_accompaniment"], "languages": ["es"], "repeat_weeks": 1}`},
		"POST /api/v1/shifts/{id}/claims/{volunteer}":               {bodyNone, ""},
		"POST /api/v1/shifts/{id}/claims/{volunteer}/release":       reason,
		"POST /api/v1/shifts/{id}/claims/{volunteer}/check-in":      {bodyOptional, `{"at": "` + start + `"}`},
		"POST /api/v1/shifts/{id}/claims/{volunteer}/check-out":     {bodyOptional, `{"at": "` + end + `"}`},
		"POST /api/v1/shifts/{id}/claims/{volunteer}/swap":          {bodyRequired, `{"to": "` + f.other.String() + `"}`},
		"POST /api/v1/shifts/{id}/claims/{volunteer}/swap/withdraw": reason,
		"POST /api/v1/shifts/{id}/swaps/{volunteer}/accept":         {bodyNone, ""},
		"POST /api/v1/shifts/{id}/swaps/{volunteer}/decline":        reason,
		"POST /api/v1/shifts/{id}/cancel":                           reason,
		"POST /api/v1/requests": {bodyRequired, `{"kind": "accompaniment", "sub_kind": "court_hearing", "start": "` + start + `", "end": "` + end +
			`", "region": "East", "meeting_point": "Courthouse steps", "languages": ["es"], "certifications": ["court_accompaniment"], "team_certifications": [], "needed": 1, "priority": "normal", "person": {"name": "María López", "phone": "+1 555 0199", "address": "12 Main St"}, "notes": "Hearing in room 4"}`},
		"POST /api/v1/requests/{id}/{action}":                        {bodyOptional, `{"priority": "high", "outcome": "accompanied", "reason": "a reason"}`},
		"POST /api/v1/requests/{id}/assignments":                     {bodyRequired, `{"volunteer_id": "` + f.other.String() + `", "override": true}`},
		"POST /api/v1/requests/{id}/assignments/{assignment}/status": {bodyRequired, `{"status": "accepted", "reason": "on my way"}`},
		"POST /api/v1/courses":                                       {bodyRequired, `{"name": "Court accompaniment", "certification": "court_accompaniment", "validity_months": 24}`},
		"POST /api/v1/courses/{id}":                                  {bodyRequired, `{"name": "Court accompaniment II", "validity_months": 12}`},
		"POST /api/v1/courses/{id}/retire":                           reason,
		"POST /api/v1/courses/{id}/sessions": {bodyRequired, `{"start": "` + start + `", "end": "` + end +
			`", "place": "Library", "capacity": 10, "trainer_id": "` + f.other.String() + `"}`},
		"POST /api/v1/sessions/{id}/cancel":                           reason,
		"POST /api/v1/sessions/{id}/enrollments/{volunteer}":          reason,
		"POST /api/v1/sessions/{id}/enrollments/{volunteer}/withdraw": reason,
		"POST /api/v1/sessions/{id}/attendance/{volunteer}":           {bodyRequired, `{"attended": true, "certify": false}`},
		"POST /api/v1/settings/time-zone":                             {bodyRequired, `{"time_zone": "America/Chicago"}`},
	}
}

// badInputQueries are the query parameters each GET route reads, by the
// kind of value they take; every GET route must be listed.
var badInputQueries = map[string]map[string]string{
	"GET /api/v1/session":                     {},
	"GET /api/v1/accounts":                    {},
	"GET /api/v1/accounts/{id}":               {},
	"GET /api/v1/invitations":                 {},
	"GET /api/v1/retention":                   {},
	"GET /api/v1/volunteers":                  {},
	"GET /api/v1/volunteers/{id}":             {},
	"GET /api/v1/volunteers/{id}/assignments": {},
	"GET /api/v1/volunteers/{id}/trainings":   {},
	"GET /api/v1/shifts":                      {"from": "time", "to": "time"},
	"GET /api/v1/shifts/{id}":                 {},
	"GET /api/v1/requests":                    {"closed": "bool"},
	"GET /api/v1/requests/{id}":               {},
	"GET /api/v1/requests/{id}/timeline":      {"format": "format"},
	"GET /api/v1/requests/{id}/matches":       {"relax": "relax"},
	"GET /api/v1/courses":                     {"retired": "bool"},
	"GET /api/v1/sessions":                    {"from": "time", "to": "time"},
	"GET /api/v1/sessions/{id}":               {},
	"GET /api/v1/reports/response-times":      {"from": "date", "to": "date", "by": "by", "format": "format"},
	"GET /api/v1/reports/volunteer-hours":     {"from": "date", "to": "date", "format": "format"},
	"GET /api/v1/reports/coverage":            {"days": "days", "format": "format"},
	"GET /api/v1/reports/expiring":            {"within_days": "within_days", "format": "format"},
	"GET /api/v1/audit/verification":          {"fresh": "bool"},
	"GET /api/v1/settings":                    {},
	"GET /api/v1/live":                        {},
	"GET /api/v1/live/board":                  {"after": "cursor"},
	"GET /api/v1/live/shifts":                 {"after": "cursor"},
	"GET /api/v1/live/mine":                   {"after": "cursor"},
	"GET /api/v1/openapi.yaml":                {},
}

// badInputQueryValues are bad values for each kind of query parameter.
var badInputQueryValues = map[string][]string{
	"time": {"yesterday", "2026-13-45T10:00:00Z", "2026-11-24T25:00:00Z", "2026-11-24 10:00", "0000-01-01T00:00:00Z",
		"99999-01-01T00:00:00Z", "1732440000", "' OR 1=1--", "\x00", "2026-11-24T10:00:00+25:00"},
	"date":        {"yesterday", "2026-13-45", "2026-02-30", "24/11/2026", "0000-01-01", "99999-01-01", "' OR 1=1--", "\x00"},
	"bool":        {"maybe", "2", "yes'--", "\x00"},
	"days":        {"-1", "0", "99999999999999999999", "1.5", "abc", "1e3", "\x00"},
	"within_days": {"-1", "0", "99999999999999999999", "1.5", "abc", "1e3"},
	"format":      {"xml", "csv'--", "../../etc/passwd", "\x00"},
	"by":          {"' OR 1=1--", "region;DROP TABLE events", "../x", "\x00"},
	"relax":       {"everything", "../x", "region,' OR 1=1", "\x00"},
	"cursor":      {"garbage", "-1:-1", "99999999999999999999:1", "1:", ":", "../x", "\x00"},
}

// badInputWindows are query windows whose parts parse but do not make a window.
var badInputWindows = map[string][]string{
	"time": {"from=2026-12-01T00:00:00Z&to=2026-11-01T00:00:00Z", "from=2026-12-01T00:00:00Z&to=2026-12-01T00:00:00Z",
		"from=2000-01-01T00:00:00Z&to=2199-01-01T00:00:00Z"},
	"date": {"from=2026-12-01&to=2026-11-01", "from=2026-12-01&to=2026-12-01", "from=2000-01-01&to=2199-01-01"},
}

// badInputRefused are strings no field may hold: a refusal names the field.
var badInputRefused = map[string]string{
	"NUL":                      "Ana\x00Ruiz",
	"bell":                     "Ana\aRuiz",
	"escape sequence":          "Ana\x1b[31mRuiz",
	"DEL":                      "Ana\x7fRuiz",
	"C1 control":               "Ana\u0085Ruiz",
	"right-to-left override":   "Ana\u202eziuR",
	"bidi isolate":             "Ana\u2066Ruiz",
	"huge string":              strings.Repeat("a", 60000),
	"huge string of emoji":     strings.Repeat("👩🏽‍⚖️", 3000),
	"thousand combining marks": "e" + strings.Repeat("\u0301", 1000),
}

// badInputRefusedRaw are JSON string literals no field may hold, written
// raw because Go would escape or repair them.
var badInputRefusedRaw = map[string]string{
	"lone high surrogate":  `"Ana\ud800Ruiz"`,
	"lone low surrogate":   `"Ana\udc00Ruiz"`,
	"reversed surrogates":  `"\ude00\ud83d"`,
	"invalid UTF-8":        "\"Ana\xff\xfeRuiz\"",
	"overlong UTF-8 slash": "\"..\xc0\xafetc\"",
}

// badInputOdd are strings a field may refuse or keep, but must keep
// exactly as sent: nothing is stripped or rewritten silently.
var badInputOdd = map[string]string{
	"emoji":                 "Ana 👩🏽‍⚖️ Ruiz",
	"combining marks":       "Jose\u0301 Nun\u0303ez",
	"right-to-left script":  "محمد عبد الله",
	"SQL injection":         "Robert'); DROP TABLE events;--",
	"HTML injection":        "<script>alert(1)</script><img src=x onerror=alert(1)>",
	"CSV formula":           "=cmd|' /C calc'!A0",
	"CSV formula with plus": "+1+cmd|' /C calc'!A0",
	"path traversal":        "../../../../etc/passwd",
	"template injection":    "{{7*7}} ${jndi:ldap://example.org/a}",
	"percent-encoded":       "%00%2e%2e%2f",
}

// badInputPathIDs replace a UUID path parameter.
var badInputPathIDs = map[string]string{
	"not a UUID":        "not-a-uuid",
	"too short":         "0195a3b2-0000",
	"bad hex":           "0195a3b2-0000-7000-8000-00000000000g",
	"nil UUID":          "00000000-0000-0000-0000-000000000000",
	"SQL injection":     url.PathEscape("1' OR '1'='1"),
	"path traversal":    url.PathEscape("../../etc/passwd"),
	"NUL":               "%00",
	"unicode":           url.PathEscape("ünïcödé-👩🏽‍⚖️"),
	"huge":              strings.Repeat("a", 4000),
	"UUID with garbage": "0195a3b2-0000-7000-8000-000000000001" + url.PathEscape("<script>"),
}

// badInputTimes replace a time field.
var badInputTimes = map[string]string{
	"year 0":        `"0000-01-01T00:00:00Z"`,
	"year 99999":    `"99999-01-01T00:00:00Z"`,
	"year 9999":     `"9999-12-31T23:00:00Z"`,
	"not RFC 3339":  `"2026-11-24 10:00"`,
	"date only":     `"2026-11-24"`,
	"February 30":   `"2026-02-30T10:00:00Z"`,
	"hour 25":       `"2026-11-24T25:00:00Z"`,
	"offset +25:00": `"2026-11-24T10:00:00+25:00"`,
	"words":         `"tomorrow at ten"`,
	"unix seconds":  `1732440000`,
	"empty":         `""`,
	"SQL injection": `"2026-11-24T10:00:00Z' OR 1=1--"`,
}

// badInputCase is one bad request.
type badInputCase struct {
	name   string
	path   string
	body   string
	header []string
	// odd is the field path and value of an odd string: the route may
	// keep it, exactly as sent, instead of refusing it.
	odd      []string
	oddValue string
}

func TestBadInput(t *testing.T) {
	e := newEnv(t, envOptions{})
	f := badInputMakeFixtures(t, e)
	bodies := badInputBodies(f)
	routes := e.server.routes()
	var total, totalRoutes, kept int
	counts := map[string]int{}
	for _, rt := range routes {
		method, _, _ := strings.Cut(rt.pattern, " ")
		role, ok := badInputRole(rt.permission)
		if !ok {
			t.Errorf("%s: no role may call it", rt.pattern)
			continue
		}
		path, ok := badInputPath(f, rt.pattern, nil)
		if !ok {
			t.Errorf("%s: a path parameter names no fixture: add it to badInputFixtures.param", rt.pattern)
			continue
		}
		var cases []badInputCase
		if rt.changesState() {
			sample, ok := bodies[rt.pattern]
			if !ok {
				t.Errorf("%s: no sample body: add one (or bodyNone) to badInputBodies", rt.pattern)
				continue
			}
			if sample.kind == bodyCSV {
				cases = badInputCSVCases(path)
			} else {
				cases = badInputBodyCases(t, f, rt.pattern, path, sample)
			}
		} else {
			params, ok := badInputQueries[rt.pattern]
			if !ok {
				t.Errorf("%s: add the query parameters it reads to badInputQueries", rt.pattern)
				continue
			}
			cases = badInputQueryCases(path, params)
			cases = append(cases, badInputCase{name: "a body on a GET", path: path, body: `{"from": "2026-11-24T10:00:00Z"}`})
		}
		cases = append(cases, badInputPathCases(f, rt.pattern, bodies[rt.pattern].example)...)
		caller := e.newUser(role)
		for _, c := range cases {
			if badInputSend(t, e, caller, method, rt.pattern, c) {
				kept++
			}
		}
		totalRoutes++
		total += len(cases)
		counts[rt.pattern] = len(cases)
	}
	names := make([]string, 0, len(counts))
	for n := range counts {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		t.Logf("%-75s %4d bad requests", n, counts[n])
	}
	t.Logf("bad input: %d routes of %d covered, %d bad requests sent; %d refused with a 4xx, %d odd but valid strings kept exactly as sent",
		totalRoutes, len(routes), total, total-kept, kept)
	if missing := undocumentedAnswers(); len(missing) > 0 {
		t.Errorf("web/openapi.yaml does not document these answers:\n  %s", strings.Join(missing, "\n  "))
	}
}

// undocumentedAnswers is what undocumented reports for the answers seen so
// far: in a run of TestBadInput alone, its own.
func undocumentedAnswers() []string {
	observedMu.Lock()
	defer observedMu.Unlock()
	return undocumented()
}

// badInputRole picks a role the permission lets call the route.
func badInputRole(p Permission) (account.Role, bool) {
	if p.public {
		return account.Coordinator, true
	}
	for _, r := range []account.Role{account.Coordinator, account.Admin, account.Dispatcher, account.Volunteer} {
		if slices.Contains(p.roles, r) {
			return r, true
		}
	}
	return "", false
}

// badInputPath fills the pattern's path parameters with fixtures, or with
// the values of replace.
func badInputPath(f badInputFixtures, pattern string, replace map[string]string) (string, bool) {
	_, path, _ := strings.Cut(pattern, " ")
	for {
		i := strings.Index(path, "{")
		if i < 0 {
			return path, true
		}
		j := strings.Index(path[i:], "}")
		name := path[i+1 : i+j]
		v, ok := replace[name]
		if !ok {
			if v, ok = f.param(pattern, name); !ok {
				return "", false
			}
		}
		path = path[:i] + v + path[i+j+1:]
	}
}

// badInputPathCases replace each path parameter with bad values; the body
// is the route's sample, so only the path is wrong.
func badInputPathCases(f badInputFixtures, pattern, body string) []badInputCase {
	var cases []badInputCase
	_, path, _ := strings.Cut(pattern, " ")
	for _, seg := range strings.Split(path, "/") {
		if !strings.HasPrefix(seg, "{") {
			continue
		}
		name := strings.Trim(seg, "{}")
		values := badInputPathIDs
		if name == "action" || name == "certification" {
			values = map[string]string{"unknown": "frobnicate", "SQL injection": url.PathEscape("x' OR '1'='1"),
				"path traversal": url.PathEscape("../../etc/passwd"), "NUL": "%00", "huge": strings.Repeat("a", 4000),
				"HTML": url.PathEscape("<script>alert(1)</script>")}
		}
		for what, v := range values {
			p, _ := badInputPath(f, pattern, map[string]string{name: v})
			cases = append(cases, badInputCase{name: "path {" + name + "}: " + what, path: p, body: body})
		}
	}
	return cases
}

// badInputQueryCases send each query parameter a route reads bad values.
func badInputQueryCases(path string, params map[string]string) []badInputCase {
	var cases []badInputCase
	windows := map[string]bool{}
	for name, kind := range params {
		for _, v := range badInputQueryValues[kind] {
			cases = append(cases, badInputCase{name: fmt.Sprintf("?%s=%q", name, v), path: path + "?" + name + "=" + url.QueryEscape(v)})
		}
		if badInputWindows[kind] != nil && !windows[kind] {
			windows[kind] = true
			for _, q := range badInputWindows[kind] {
				cases = append(cases, badInputCase{name: "?" + q, path: path + "?" + q})
			}
		}
	}
	return cases
}

// badInputBodyCases are the attacks on a state-changing route's body.
// badInputCSVCases are the attacks on a route that imports a CSV file:
// each must be refused whole, saying what to fix, with nothing stored.
func badInputCSVCases(path string) []badInputCase {
	csv := func(name, body string) badInputCase {
		return badInputCase{name: name, path: path, body: body,
			header: []string{"Content-Type", "text/csv", "Idempotency-Key", "bad-input-" + uuid.NewString()}}
	}
	good := "name,phone,languages,regions\nAna Ruiz,+1 555 0100,es:native,East\n"
	var many strings.Builder
	many.WriteString("name,phone\n")
	for i := range 1001 {
		fmt.Fprintf(&many, "Volunteer %d,+1 555 %04d\n", i, i)
	}
	return []badInputCase{
		{name: "CSV without an Idempotency-Key", path: path, body: good, header: []string{"Content-Type", "text/csv"}},
		{name: "CSV sent as JSON", path: path, body: good},
		{name: "JSON sent as CSV", path: path, body: `{"name": "Ana"}`, header: []string{"Content-Type", "text/csv", "Idempotency-Key", "bad-input-json"}},
		csv("empty file", ""),
		csv("header only", "name,phone\n"),
		csv("no name column", "phone,email\n+1 555 0100,a@example.org\n"),
		csv("unknown column", "name,phone,shoe_size\nAna,+1 555 0100,9\n"),
		csv("a row with more cells than the header", "name,phone\nAna,+1 555 0100,extra\n"),
		csv("a stray quote", "name,phone\nA\"na,+1 555 0100\n"),
		csv("an unterminated quote", "name,phone\n\"Ana,+1 555 0100\n"),
		csv("a NUL byte", "name,phone\nAna\x00,+1 555 0100\n"),
		csv("invalid UTF-8", "name,phone\nAna\xff,+1 555 0100\n"),
		csv("a language that is no language tag", "name,phone,languages\nAna,+1 555 0100,e$:native\n"),
		csv("a language level that does not exist", "name,phone,languages\nAna,+1 555 0100,es:superb\n"),
		csv("an impossible certification date", "name,phone,certifications\nAna,+1 555 0100,rapid_response:2026-13-45\n"),
		csv("negative prior assignments", "name,phone,prior_assignments\nAna,+1 555 0100,-1\n"),
		csv("prior assignments that are not a number", "name,phone,prior_assignments\nAna,+1 555 0100,many\n"),
		csv("no way to reach the volunteer", "name,phone\nAna,\n"),
		csv("the same phone twice", "name,phone\nAna,+1 555 0100\nBea,+1 555 0100\n"),
		csv("a good row beside a bad one", good+"Bea,+1 555 0101,es:nope,East\n"),
		csv("a huge cell", "name,phone\n"+strings.Repeat("a", 100000)+",+1 555 0100\n"),
		csv("too many rows", many.String()),
		csv("a file over the limit", "name,phone\n"+strings.Repeat("Ana,+1 555 0100\n", 80000)),
	}
}

func badInputBodyCases(t *testing.T, f badInputFixtures, pattern, path string, sample sampleBody) []badInputCase {
	t.Helper()
	huge := `{"reason": "` + strings.Repeat("a", maxBodyBytes) + `"}`
	cases := []badInputCase{
		{name: "malformed JSON: truncated", body: `{"reason": "a`},
		{name: "malformed JSON: stray comma", body: `{,}`},
		{name: "malformed JSON: single quotes", body: `{'reason': 'x'}`},
		{name: "malformed JSON: bare word", body: `nul`},
		{name: "malformed JSON: unclosed array", body: `[1, 2`},
		{name: "malformed JSON: comment", body: `{/* x */}`},
		{name: "malformed JSON: NaN", body: `{"a": NaN}`},
		{name: "two JSON values", body: `{} {}`},
		{name: "not an object: string", body: `"just a string"`},
		{name: "not an object: array", body: `[]`},
		{name: "not an object: number", body: `42`},
		{name: "not an object: null", body: `null`},
		{name: "not an object: true", body: `true`},
		{name: "unknown field", body: `{"zzz_not_a_field": 1}`},
		{name: "huge body", body: huge},
		{name: "huge body of nesting", body: strings.Repeat("[", maxBodyBytes+10)},
		{name: "deep nesting within the limit", body: `{"reason": ` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`},
		{name: "invalid UTF-8", body: "{\"reason\": \"\xff\"}"},
		{name: "form content type", body: `reason=x`, header: []string{"Content-Type", "application/x-www-form-urlencoded"}},
	}
	if sample.example != "" {
		cases = append(cases, badInputCase{name: "JSON as text/plain", body: sample.example, header: []string{"Content-Type", "text/plain"}},
			badInputCase{name: "bad Content-Type", body: sample.example, header: []string{"Content-Type", "application/json; =broken"}})
	}
	if sample.kind == bodyRequired {
		cases = append(cases, badInputCase{name: "empty body", body: ``}, badInputCase{name: "whitespace body", body: "  \n"})
	}
	if sample.kind == bodyNone {
		cases = append(cases, badInputCase{name: "a body where none is read", body: `{"reason": "x"}`})
	}
	if sample.example != "" {
		var example any
		dec := json.NewDecoder(strings.NewReader(sample.example))
		dec.UseNumber()
		if err := dec.Decode(&example); err != nil {
			t.Fatalf("%s: the sample body is not JSON: %v", pattern, err)
		}
		cases = append(cases, badInputCase{name: "unknown field beside the sample", body: withValue(t, example, nil, json.RawMessage(`1`), "zzz_not_a_field")})
		for _, leaf := range bodyLeaves(example, nil) {
			cases = append(cases, badFieldCases(t, example, leaf)...)
		}
	}
	for i := range cases {
		cases[i].path = path
	}
	return cases
}

// bodyLeaf is a value in a sample body, by its path of keys and indices.
type bodyLeaf struct {
	path  []any
	value any
}

func bodyLeaves(v any, path []any) []bodyLeaf {
	out := []bodyLeaf{}
	if len(path) > 0 {
		out = append(out, bodyLeaf{path: path, value: v})
	}
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			out = append(out, bodyLeaves(x[k], append(slices.Clone(path), k))...)
		}
	case []any:
		for i, e := range x {
			out = append(out, bodyLeaves(e, append(slices.Clone(path), i))...)
		}
	}
	return out
}

func leafName(path []any) string {
	var b strings.Builder
	for i, p := range path {
		switch p := p.(type) {
		case string:
			if i > 0 {
				b.WriteByte('.')
			}
			b.WriteString(p)
		case int:
			fmt.Fprintf(&b, "[%d]", p)
		}
	}
	return b.String()
}

// withValue is the sample with the value at path replaced by raw (or,
// with extra, a field added beside the sample's).
func withValue(t *testing.T, sample any, path []any, raw json.RawMessage, extra ...string) string {
	t.Helper()
	copied := copyJSON(sample)
	if len(extra) > 0 {
		copied.(map[string]any)[extra[0]] = raw
	} else {
		setJSON(copied, path, raw)
	}
	b, err := json.Marshal(copied)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func copyJSON(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = copyJSON(e)
		}
		return m
	case []any:
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = copyJSON(e)
		}
		return s
	}
	return v
}

func setJSON(v any, path []any, raw json.RawMessage) {
	for i, p := range path {
		last := i == len(path)-1
		switch p := p.(type) {
		case string:
			m := v.(map[string]any)
			if last {
				m[p] = raw
				return
			}
			v = m[p]
		case int:
			s := v.([]any)
			if last {
				s[p] = raw
				return
			}
			v = s[p]
		}
	}
}

// badFieldCases are the attacks on one field of a sample body.
func badFieldCases(t *testing.T, sample any, l bodyLeaf) []badInputCase {
	t.Helper()
	name := leafName(l.path)
	var cases []badInputCase
	bad := func(what, raw string) {
		cases = append(cases, badInputCase{name: name + ": " + what, body: withValue(t, sample, l.path, json.RawMessage(raw))})
	}
	switch v := l.value.(type) {
	case string:
		bad("a number instead of a string", `12345`)
		bad("true instead of a string", `true`)
		bad("an object instead of a string", `{"a": "b"}`)
		bad("an array instead of a string", `["a"]`)
		for what, s := range badInputRefused {
			raw, _ := json.Marshal(s)
			bad(what, string(raw))
		}
		for what, raw := range badInputRefusedRaw {
			bad(what, raw)
		}
		if _, err := uuid.Parse(v); err == nil {
			for what, s := range badInputPathIDs {
				if what == "nil UUID" {
					s = uuid.Nil.String()
				}
				raw, _ := json.Marshal(s)
				bad("id "+what, string(raw))
			}
			break
		}
		if _, err := time.Parse(time.RFC3339, v); err == nil {
			for what, raw := range badInputTimes {
				bad("time "+what, raw)
			}
			if before := badInputBefore(sample, l); before != "" {
				bad("before "+before, `"`+badInputEarlier(sample, before)+`"`)
				bad("equal to "+before, `"`+badInputEarlier(sample, before, 0)+`"`)
				if before == "start" {
					bad("a year after start", `"`+badInputEarlier(sample, before, -366*24*time.Hour)+`"`)
				}
			}
			break
		}
		for what, s := range badInputOdd {
			raw, _ := json.Marshal(s)
			cases = append(cases, badInputCase{name: name + ": " + what, body: withValue(t, sample, l.path, raw),
				odd: badInputOddPath(l.path), oddValue: s})
		}
	case json.Number:
		bad("a string instead of a number", `"12"`)
		bad("true instead of a number", `true`)
		bad("a fraction", `1.5`)
		bad("an exponent past int64", `1e400`)
		bad("past int64", `99999999999999999999`)
		bad("negative", `-1`)
		bad("the most negative int64", `-9223372036854775808`)
		bad("huge", `2147483648`)
		bad("an array instead of a number", `[1]`)
	case bool:
		bad("a string instead of true or false", `"true"`)
		bad("a number instead of true or false", `1`)
		bad("an object instead of true or false", `{}`)
	case []any:
		bad("a string instead of an array", `"es"`)
		bad("an object instead of an array", `{"0": "es"}`)
		bad("a number instead of an array", `1`)
		bad("a thousand elements", badInputArray(v, 1000))
	case map[string]any:
		bad("a string instead of an object", `"x"`)
		bad("an array instead of an object", `[]`)
		bad("an unknown field inside", `{"zzz_not_a_field": 1}`)
	}
	return cases
}

// badInputArray is an array of n copies of the sample's first element (or of
// a string).
func badInputArray(sample []any, n int) string {
	var elem any = "es"
	if len(sample) > 0 {
		elem = sample[0]
	}
	all := make([]any, n)
	for i := range all {
		all[i] = elem
	}
	b, _ := json.Marshal(all)
	return string(b)
}

// badInputBefore names the field a time field must come after (end after start).
func badInputBefore(sample any, l bodyLeaf) string {
	m, ok := sample.(map[string]any)
	if !ok || len(l.path) != 1 {
		return ""
	}
	pairs := map[string]string{"end": "start", "expires_at": "granted_at"}
	if b := pairs[l.path[0].(string)]; b != "" && m[b] != nil {
		return b
	}
	return ""
}

// badInputEarlier is the time of field before, moved back by an hour (or by the
// given durations).
func badInputEarlier(sample any, before string, by ...time.Duration) string {
	d := time.Hour
	if len(by) > 0 {
		d = by[0]
	}
	at, _ := time.Parse(time.RFC3339, sample.(map[string]any)[before].(string))
	return at.Add(-d).Format(time.RFC3339)
}

func badInputOddPath(path []any) []string {
	out := make([]string, len(path))
	for i, p := range path {
		out[i] = fmt.Sprint(p)
	}
	return out
}

// badInputCounts counts what a request could write: events, data keys,
// credentials and sessions.
func badInputCounts(t *testing.T, e *env) [4]int64 {
	t.Helper()
	var n [4]int64
	err := e.pool.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM subject_keys),
		(SELECT count(*) FROM credentials), (SELECT count(*) FROM sessions)`).Scan(&n[0], &n[1], &n[2], &n[3])
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// badInputSend sends one bad request and checks its answer. It reports
// whether the route kept an odd string rather than refusing it.
func badInputSend(t *testing.T, e *env, caller *user, method, pattern string, c badInputCase) bool {
	t.Helper()
	before := badInputCounts(t, e)
	var body any
	if c.body != "" || method != http.MethodGet {
		body = c.body
	}
	a := e.do(caller, method, c.path, body, c.header...)
	where := fmt.Sprintf("%s %.200q", pattern, c.name)
	short := fmt.Sprintf("%.300q", a.body)
	if a.status >= 500 {
		t.Errorf("%s: %d %s: a server error for bad input", where, a.status, short)
		return false
	}
	if a.status < 400 {
		if c.odd != nil && a.status < 300 {
			if got, ok := badInputLookup(a.body, c.odd); ok && got != c.oddValue {
				t.Errorf("%s: kept as %q, not as sent (%q)", where, got, c.oddValue)
			}
			return true
		}
		t.Errorf("%s: %d %s: bad input accepted", where, a.status, short)
		return false
	}
	var eb struct {
		Error *Error `json:"error"`
	}
	dec := json.NewDecoder(strings.NewReader(a.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&eb); err != nil || eb.Error == nil {
		t.Errorf("%s: %d %s: the answer is not a JSON error body", where, a.status, short)
		return false
	}
	if eb.Error.Code == "" || len(eb.Error.Message) < 10 {
		t.Errorf("%s: %d %s: the error needs a code and a message saying what to fix", where, a.status, short)
	}
	for _, internal := range []string{"json: ", "parsing time", "cannot parse", "reflect", "strconv.", "pgx", "SQLSTATE"} {
		if strings.Contains(eb.Error.Message, internal) {
			t.Errorf("%s: %d %s: the message shows the server's internals (%q), not what to fix", where, a.status, short, internal)
			break
		}
	}
	if ct := a.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type %q", where, ct)
	}
	if after := badInputCounts(t, e); after != before {
		t.Errorf("%s: %d %s: refused, yet stored something (events, keys, credentials, sessions: %v then %v)", where, a.status, short, before, after)
	}
	return false
}

// badInputLookup finds the string at path in a JSON answer.
func badInputLookup(body string, path []string) (string, bool) {
	var v any
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		return "", false
	}
	for _, p := range path {
		switch x := v.(type) {
		case map[string]any:
			v = x[p]
		case []any:
			i, err := strconv.Atoi(p)
			if err != nil || i >= len(x) {
				return "", false
			}
			v = x[i]
		default:
			return "", false
		}
	}
	s, ok := v.(string)
	return s, ok
}

// badInputMakeFixtures makes, through the API, the records the routes'
// paths name.
func badInputMakeFixtures(t *testing.T, e *env) badInputFixtures {
	t.Helper()
	coordinator, dispatcher, admin := e.users[account.Coordinator], e.users[account.Dispatcher], e.users[account.Admin]
	f := badInputFixtures{start: time.Now().UTC().Add(72 * time.Hour).Truncate(time.Hour)}
	var created struct {
		VolunteerID  uuid.UUID `json:"volunteer_id"`
		ShiftID      uuid.UUID `json:"shift_id"`
		RequestID    uuid.UUID `json:"request_id"`
		CourseID     uuid.UUID `json:"course_id"`
		SessionID    uuid.UUID `json:"session_id"`
		InvitationID uuid.UUID `json:"invitation_id"`
		Assignments  []struct {
			AssignmentID uuid.UUID `json:"assignment_id"`
		} `json:"assignments"`
	}
	must := func(a answer, want int, what string) {
		t.Helper()
		mustStatus(t, a, want, what)
		created.Assignments = nil
		decode(t, a.body, &created)
	}
	f.account = e.newUser(account.Dispatcher).id
	must(e.do(coordinator, "POST", "/api/v1/volunteers", map[string]any{"user_id": e.users[account.Volunteer].id, "name": "Vol One",
		"phone": "+1 555 0101", "prior_assignments": 5, "languages": []map[string]string{{"code": "es", "level": "native"}}, "regions": []string{"East"}}), http.StatusCreated, "volunteer")
	f.volunteer = created.VolunteerID
	must(e.do(coordinator, "POST", "/api/v1/volunteers", map[string]any{"name": "Vol Two", "phone": "+1 555 0102",
		"languages": []map[string]string{{"code": "es", "level": "native"}}, "regions": []string{"East"}}), http.StatusCreated, "other volunteer")
	f.other = created.VolunteerID
	must(e.do(coordinator, "POST", "/api/v1/shifts", map[string]any{"role": "court watch", "start": f.start, "end": f.start.Add(3 * time.Hour),
		"region": "East", "capacity": 3}), http.StatusCreated, "shift")
	f.shift = created.ShiftID
	mustStatus(t, e.do(coordinator, "POST", "/api/v1/shifts/"+f.shift.String()+"/claims/"+f.volunteer.String(), nil), http.StatusOK, "claim")
	must(e.do(dispatcher, "POST", "/api/v1/requests", map[string]any{"kind": "accompaniment", "sub_kind": "court_hearing",
		"start": f.start.Add(24 * time.Hour), "end": f.start.Add(26 * time.Hour), "region": "East", "needed": 2,
		"person": map[string]string{"name": "Person One", "phone": "+1 555 0199"}}), http.StatusCreated, "request")
	f.request = created.RequestID
	must(e.do(dispatcher, "POST", "/api/v1/requests/"+f.request.String()+"/assignments", map[string]any{"volunteer_id": f.volunteer, "override": true}),
		http.StatusCreated, "offer")
	if len(created.Assignments) == 0 {
		t.Fatal("the offer made no assignment")
	}
	f.assignment = created.Assignments[0].AssignmentID
	must(e.do(coordinator, "POST", "/api/v1/courses", map[string]any{"name": "Court accompaniment", "certification": "court_accompaniment",
		"validity_months": 24}), http.StatusCreated, "course")
	f.course = created.CourseID
	must(e.do(coordinator, "POST", "/api/v1/courses/"+f.course.String()+"/sessions", map[string]any{"start": f.start.Add(48 * time.Hour),
		"end": f.start.Add(50 * time.Hour), "place": "Library", "capacity": 5}), http.StatusCreated, "session")
	f.session = created.SessionID
	must(e.do(admin, "POST", "/api/v1/invitations", map[string]any{"email": "invitee@example.org", "role": "volunteer"}), http.StatusCreated, "invitation")
	f.invitation = created.InvitationID
	if f.invitation == uuid.Nil {
		t.Fatal("the invitation answer has no invitation_id")
	}
	return f
}
