package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// requestBodies is every type an API handler decodes its JSON body into,
// by its Go name. TestEveryRequestBodyIsFuzzed keeps it complete, and each
// has seeds below, so FuzzRequestBodies exercises each one.
var requestBodies = []struct {
	name  string
	new   func() any
	seeds []string
}{
	{"reasonRequest", func() any { return new(reasonRequest) }, []string{`{"reason":"moved away"}`}},
	{"changeRoleRequest", func() any { return new(changeRoleRequest) }, []string{`{"role":"dispatcher","reason":"new hotline lead"}`}},
	{"inviteRequest", func() any { return new(inviteRequest) }, []string{`{"email":"ana@example.org","role":"volunteer","expires_in_hours":72}`}},
	{"tokenRequest", func() any { return new(tokenRequest) }, []string{`{"token":"abc"}`}},
	{"acceptRequest", func() any { return new(acceptRequest) }, []string{`{"token":"abc","password":"a long new password"}`}},
	{"signInRequest", func() any { return new(signInRequest) }, []string{`{"email":"ana@example.org","password":"x"}`}},
	{"changePasswordRequest", func() any { return new(changePasswordRequest) }, []string{`{"current_password":"a","new_password":"b"}`}},
	{"forgetRequest", func() any { return new(forgetRequest) }, []string{`{"reason":"asked"}`}},
	{"receiveRequest", func() any { return new(receiveRequest) }, []string{
		`{"kind":"accompaniment","sub_kind":"court","start":"2026-11-24T09:00:00Z","end":"2026-11-24T11:00:00-05:00","region":"East",` +
			`"meeting_point":"Courthouse","languages":["es","mam"],"certifications":["court_accompaniment"],"needed":2,"priority":"urgent",` +
			`"person":{"name":"Ana","phone":"+1 555 0100","address":"1 Main St"}}`,
		`{"kind":"rapid_response","reported_at":"2026-11-24T06:40:00.123456789Z","team_certifications":["legal_observer"]}`}},
	{"requestActionBody", func() any { return new(requestActionBody) }, []string{`{"priority":"urgent","outcome":"confirmed","reason":"seen"}`}},
	{"offerRequest", func() any { return new(offerRequest) }, []string{`{"volunteer_id":"0195a3b2-0000-7000-8000-000000000001","override":true}`}},
	{"statusRequest", func() any { return new(statusRequest) }, []string{`{"status":"declined","reason":"sick"}`}},
	{"settingsView", func() any { return new(settingsView) }, []string{`{"time_zone":"America/Chicago"}`}},
	{"scheduleShiftRequest", func() any { return new(scheduleShiftRequest) }, []string{
		`{"role":"hotline","start":"2026-11-28T09:00:00Z","end":"2026-11-28T13:00:00Z","region":"East","place":"Office","capacity":3,"requires":["hotline"],"languages":["es"]}`}},
	{"timeRequest", func() any { return new(timeRequest) }, []string{`{"at":"2026-11-28T09:05:00+01:00"}`}},
	{"swapRequest", func() any { return new(swapRequest) }, []string{`{"to":"0195a3b2-0000-7000-8000-000000000002"}`}},
	{"courseRequest", func() any { return new(courseRequest) }, []string{`{"name":"Know your rights","certification":"kyr","validity_months":12}`}},
	{"changeCourseRequest", func() any { return new(changeCourseRequest) }, []string{`{"name":"Know your rights II","validity_months":24}`}},
	{"languageRequest", func() any { return new(languageRequest) }, []string{`{"language":"es"}`, `{"language":"pt-BR"}`}},
	{"sessionRequest", func() any { return new(sessionRequest) }, []string{
		`{"start":"2026-12-01T18:00:00Z","end":"2026-12-01T20:00:00Z","place":"Church hall","capacity":20,"trainer_id":"0195a3b2-0000-7000-8000-000000000003"}`}},
	{"attendanceRequest", func() any { return new(attendanceRequest) }, []string{`{"attended":true,"certify":true}`}},
	{"registerVolunteerRequest", func() any { return new(registerVolunteerRequest) }, []string{
		`{"user_id":"0195a3b2-0000-7000-8000-000000000004","name":"Lucía","phone":"+1 555 0142","email":"l@example.org",` +
			`"languages":[{"code":"es","level":"native"},{"code":"en","level":"fluent"}],"regions":["East"],"prior_assignments":3}`}},
	{"onCallRequest", func() any { return new(onCallRequest) }, []string{`{"on_call":true}`}},
	{"grantRequest", func() any { return new(grantRequest) }, []string{`{"certification":"rapid_response","granted_at":"2026-01-01T00:00:00Z","expires_at":"2027-01-01T00:00:00Z"}`}},
	{"profileRequest", func() any { return new(profileRequest) }, []string{`{"languages":[{"code":"ht","level":"basic"}],"regions":["North","East"]}`}},
	{"contactRequest", func() any { return new(contactRequest) }, []string{`{"name":"Lucía M.","phone":"+1 555 0199","email":""}`}},
}

// decodeErrorCodes are the codes decodeJSON may answer with.
var decodeErrorCodes = []string{"unsupported_media_type", "invalid_body", "invalid_json", "invalid_field", "unknown_field", "body_too_large"}

// FuzzRequestBodies sends arbitrary bodies, with arbitrary content types,
// to the strict decoder every handler uses, into each body type in turn.
// A refusal must be a client error with a known code and a message saying
// what to fix (naming a real field when it blames one); a body over the
// limit is refused as too large. An accepted body must survive a round
// trip: encoding what was decoded and decoding it again gives the same
// value, so what the server acts on is what it would echo.
func FuzzRequestBodies(f *testing.F) {
	for i, b := range requestBodies {
		for _, s := range b.seeds {
			f.Add(uint8(i), "application/json", []byte(s))
		}
		f.Add(uint8(i), "", []byte(`{"unknown":1}`))
		f.Add(uint8(i), "application/json; charset=utf-8", []byte(`[]`))
	}
	f.Add(uint8(0), "text/plain", []byte(`{"reason":"x"}`))
	f.Add(uint8(0), "application/json", []byte(`{"reason":"x"} {"reason":"y"}`))
	f.Add(uint8(0), "application/json", []byte(`{"reason":"\ud800\xff"}`))
	f.Add(uint8(8), "application/json", []byte(`{"needed":1e400}`))
	f.Add(uint8(8), "application/json", []byte(`{"start":"2026-02-30T00:00:00Z"}`))
	f.Add(uint8(8), "application/json", []byte(`{"person":{"name":["x"]}}`))
	f.Add(uint8(19), "application/json", []byte(`{"languages":[{"code":"es","level":7}]}`))
	// A valid body padded past the limit with whitespace.
	f.Add(uint8(0), "application/json", append([]byte(`{"reason":"x"}`), bytes.Repeat([]byte(" "), maxBodyBytes)...))
	f.Fuzz(func(t *testing.T, kind uint8, contentType string, body []byte) {
		b := requestBodies[int(kind)%len(requestBodies)]
		v := b.new()
		err := decodeBody(contentType, body, v)
		if err != nil {
			checkDecodeError(t, b.name, v, body, err)
			return
		}
		if len(body) > maxBodyBytes {
			t.Fatalf("%s: a body of %d bytes, over the %d limit, was accepted", b.name, len(body), maxBodyBytes)
		}
		first, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("%s: the decoded value does not encode: %v", b.name, err)
		}
		again := b.new()
		if err := decodeBody("application/json", first, again); err != nil {
			t.Fatalf("%s: the decoder refuses its own re-encoding %s: %v", b.name, first, err)
		}
		second, err := json.Marshal(again)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first, second) {
			t.Fatalf("%s: round trip changed the value:\n%s\n%s", b.name, first, second)
		}
	})
}

// decodeBody runs decodeJSON on body as the server would: through the
// size limit every route sets.
func decodeBody(contentType string, body []byte, v any) error {
	r := httptest.NewRequest(http.MethodPost, "/api/v1/x", bytes.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, maxBodyBytes)
	return decodeJSON(r, v)
}

func checkDecodeError(t *testing.T, name string, v any, body []byte, err error) {
	t.Helper()
	var apiErr *Error
	if !errors.As(err, &apiErr) {
		t.Fatalf("%s: %T %v is not an answer for the client", name, err, err)
	}
	if !slices.Contains(decodeErrorCodes, apiErr.Code) {
		t.Fatalf("%s: unknown error code %q (%s)", name, apiErr.Code, apiErr.Message)
	}
	if strings.TrimSpace(apiErr.Message) == "" || !utf8.ValidString(apiErr.Message) || !utf8.ValidString(apiErr.Field) {
		t.Fatalf("%s: %s: the message %q (field %q) does not say what to fix in readable text", name, apiErr.Code, apiErr.Message, apiErr.Field)
	}
	status, _ := errorStatus(err)
	want := http.StatusBadRequest
	switch apiErr.Code {
	case "body_too_large":
		want = http.StatusRequestEntityTooLarge
	case "unsupported_media_type":
		want = http.StatusUnsupportedMediaType
	}
	if status != want {
		t.Fatalf("%s: %s answered %d, want %d", name, apiErr.Code, status, want)
	}
	if len(body) > maxBodyBytes && json.Valid(body) && apiErr.Code != "body_too_large" && apiErr.Code != "unsupported_media_type" {
		// A value within the limit padded past it may be refused for what
		// the value says, as it would be without the padding; a value
		// itself over the limit is always too large.
		value := bytes.TrimSpace(body)
		if len(value) > maxBodyBytes {
			t.Fatalf("%s: a well-formed body over the limit was refused as %s (%s), not as too large", name, apiErr.Code, apiErr.Message)
		}
		var alone *Error
		if !errors.As(decodeBody("application/json", value, reflect.New(reflect.TypeOf(v).Elem()).Interface()), &alone) || alone.Code != apiErr.Code {
			t.Fatalf("%s: a padded body was refused as %s, but the value alone is not", name, apiErr.Code)
		}
	}
	switch apiErr.Code {
	case "invalid_field":
		if !hasJSONPath(reflect.TypeOf(v).Elem(), apiErr.Field) {
			t.Fatalf("%s: invalid_field names %q, which is not a field of the body", name, apiErr.Field)
		}
	case "unknown_field":
		if apiErr.Field == "" && !strings.Contains(apiErr.Message, "empty name") {
			t.Fatalf("%s: unknown_field names no field: %s", name, apiErr.Message)
		}
	}
}

// hasJSONPath tells whether the dotted path names a field of t as JSON
// spells it (encoding/json reports nested fields as "person.name").
func hasJSONPath(t reflect.Type, path string) bool {
	if path == "" {
		return false
	}
	for _, part := range strings.Split(path, ".") {
		for t.Kind() == reflect.Slice || t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return false
		}
		found := false
		for i := range t.NumField() {
			if name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); name == part {
				t, found = t.Field(i).Type, true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// TestEveryRequestBodyIsFuzzed reads the handlers' source and checks that
// every type passed to decodeJSON is in requestBodies, so a new body type
// cannot escape FuzzRequestBodies.
func TestEveryRequestBodyIsFuzzed(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	decoded := map[string]bool{}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			fn, ok := n.(*ast.FuncLit)
			var body *ast.BlockStmt
			if ok {
				body = fn.Body
			} else if fd, ok := n.(*ast.FuncDecl); ok {
				body = fd.Body
			}
			if body == nil {
				return true
			}
			types := map[string]string{}
			ast.Inspect(body, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.ValueSpec:
					for _, id := range n.Names {
						if tn, ok := n.Type.(*ast.Ident); ok {
							types[id.Name] = tn.Name
						} else if n.Type != nil {
							types[id.Name] = "<anonymous at " + fset.Position(n.Pos()).String() + ">"
						}
					}
				case *ast.CallExpr:
					if id, ok := n.Fun.(*ast.Ident); ok && id.Name == "decodeJSON" && len(n.Args) == 2 {
						if u, ok := n.Args[1].(*ast.UnaryExpr); ok {
							if arg, ok := u.X.(*ast.Ident); ok {
								decoded[types[arg.Name]] = true
							}
						}
					}
				}
				return true
			})
			return true
		})
	}
	if len(decoded) < 10 {
		t.Fatalf("found only %d decoded body types: the source scan is broken", len(decoded))
	}
	fuzzed := map[string]bool{}
	for _, b := range requestBodies {
		fuzzed[b.name] = true
		if got := reflect.TypeOf(b.new()).Elem().Name(); got != b.name {
			t.Errorf("requestBodies entry %q makes a %s", b.name, got)
		}
	}
	for name := range decoded {
		if !fuzzed[name] {
			t.Errorf("handlers decode %s, which FuzzRequestBodies does not: add it to requestBodies with a seed", name)
		}
	}
}
