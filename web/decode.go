package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
)

// codeBodyTooLarge is the code of a body over maxBodyBytes, answered 413.
const codeBodyTooLarge = "body_too_large"

// codeUnsupportedMediaType is the code of a body that is not JSON,
// answered 415.
const codeUnsupportedMediaType = "unsupported_media_type"

// refuseBody refuses a body sent to a route that reads none, so that
// nothing a client meant to say is ignored without a word. An empty
// object says nothing, and is let through.
func refuseBody(r *http.Request) error {
	if r.ContentLength == 0 {
		return nil
	}
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		return bodyError(err)
	}
	var fields map[string]json.RawMessage
	if len(bytes.TrimSpace(raw)) == 0 || json.Unmarshal(raw, &fields) == nil && fields != nil && len(fields) == 0 {
		return nil
	}
	return &Error{Code: "invalid_body", Message: "this request takes no body: send it without one (parameters go in the path or query)"}
}

// maxBodyBytes bounds every request body: no command of Presente needs
// more, and a larger body is refused before it is read.
const maxBodyBytes = 64 << 10

// decodeJSON reads r's body into v, refusing what a careful client would
// never send: another content type, a body that is not one JSON object,
// unknown fields, trailing data, a body that is too large, text that is
// not valid UTF-8 or holds control characters, and times no calendar of
// Presente's holds. Nothing is repaired or stripped silently: each refusal
// says what to fix.
func decodeJSON(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return &Error{Code: codeUnsupportedMediaType, Message: "send the body as JSON with Content-Type: application/json"}
		}
	}
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		return bodyError(err)
	}
	switch trimmed := bytes.TrimLeft(raw, " \t\r\n"); {
	case len(trimmed) == 0:
		return &Error{Code: "invalid_body", Message: "the body is empty: send a JSON object"}
	case !utf8.Valid(raw):
		return &Error{Code: "invalid_body", Message: "the body is not valid UTF-8: send its text encoded as UTF-8"}
	case hasLoneSurrogate(raw):
		return &Error{Code: "invalid_body",
			Message: "the body holds half of a UTF-16 surrogate pair (such as \\ud800 alone): send whole characters"}
	case trimmed[0] != '{' && json.Valid(trimmed):
		return &Error{Code: "invalid_body", Message: "the body must be a JSON object, such as {\"reason\": \"...\"}"}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if field, t, ok := badValue(raw, reflect.TypeOf(v)); ok && !isJSONError(err) {
			return &Error{Code: "invalid_field", Field: field, Message: fmt.Sprintf("%s must be %s", field, describeType(t))}
		}
		return bodyError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return bodyError(err)
		}
		return &Error{Code: "invalid_body", Message: "the body holds more than one JSON value: send exactly one object"}
	}
	return checkValues(reflect.ValueOf(v), "")
}

// isJSONError tells whether err is one of encoding/json's own, which
// bodyError explains; any other comes from a field's type (a UUID, a
// time) and names no field.
func isJSONError(err error) bool {
	var (
		syntax  *json.SyntaxError
		typeErr *json.UnmarshalTypeError
	)
	return errors.As(err, &syntax) || errors.As(err, &typeErr) || errors.Is(err, io.ErrUnexpectedEOF) ||
		strings.HasPrefix(err.Error(), "json: unknown field ")
}

// badValue finds the field of raw whose value t's field cannot take, for
// the errors encoding/json reports without a field (a malformed UUID or
// time). It returns the field's JSON path and type.
func badValue(raw []byte, t reflect.Type) (string, reflect.Type, bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		var fields map[string]json.RawMessage
		if json.Unmarshal(raw, &fields) != nil {
			return "", nil, false
		}
		for i := range t.NumField() {
			sf := t.Field(i)
			name := jsonName(sf)
			value, ok := fields[name]
			if !ok || name == "" {
				continue
			}
			if json.Unmarshal(value, reflect.New(sf.Type).Interface()) == nil {
				continue
			}
			if inner, it, ok := badValue(value, sf.Type); ok {
				return joinField(name, inner), it, true
			}
			return name, sf.Type, true
		}
	case reflect.Slice:
		var elems []json.RawMessage
		if json.Unmarshal(raw, &elems) != nil {
			return "", nil, false
		}
		for i, e := range elems {
			if json.Unmarshal(e, reflect.New(t.Elem()).Interface()) != nil {
				if inner, it, ok := badValue(e, t.Elem()); ok {
					return fmt.Sprintf("[%d]", i) + dotted(inner), it, true
				}
				return fmt.Sprintf("[%d]", i), t.Elem(), true
			}
		}
	}
	return "", nil, false
}

func joinField(name, inner string) string {
	if inner == "" {
		return name
	}
	if strings.HasPrefix(inner, "[") {
		return name + inner
	}
	return name + "." + inner
}

func dotted(inner string) string {
	if inner == "" || strings.HasPrefix(inner, "[") {
		return inner
	}
	return "." + inner
}

// jsonName is a struct field's name in JSON, or "" when it has none.
func jsonName(sf reflect.StructField) string {
	if !sf.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
	switch name {
	case "-":
		return ""
	case "":
		return sf.Name
	}
	return name
}

// describeType says what a value of t looks like in JSON, with an example.
func describeType(t reflect.Type) string {
	switch t {
	case reflect.TypeFor[uuid.UUID]():
		return "a UUID such as 0195a3b2-0000-7000-8000-000000000001"
	case reflect.TypeFor[time.Time]():
		return "an RFC 3339 time such as 2026-11-26T09:00:00Z"
	}
	return jsonKind(t.String())
}

// Times a request may give: anything outside is a typo or an attack, and
// years past 9999 cannot even be written back out as JSON.
var (
	earliestTime = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)
	latestTime   = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

// checkTime refuses a time outside the years Presente deals in; the zero
// time is a time left out.
func checkTime(field string, t time.Time) error {
	if !t.IsZero() && (t.Before(earliestTime) || !t.Before(latestTime)) {
		return &Error{Code: "invalid_field", Field: field,
			Message: fmt.Sprintf("%s must be a time between the years %d and %d", field, earliestTime.Year(), latestTime.Year()-1)}
	}
	return nil
}

// multiLine are the fields whose text may hold line breaks and tabs.
var multiLine = map[string]bool{"notes": true, "reason": true}

// maxMarks is how many combining marks may follow one character: more
// than Unicode's stream-safe limit (UAX #15) is never writing, only noise.
const maxMarks = 30

// checkText refuses text a person would not have meant to send: control
// characters (line breaks outside multi-line fields), directional
// overrides that can disguise what text says, and piles of combining
// marks. Passwords are secrets compared as sent, and are not checked.
func checkText(field, s string) error {
	name := field[strings.LastIndexAny(field, ".]")+1:]
	if strings.Contains(name, "password") {
		return nil
	}
	marks := 0
	for _, c := range s {
		switch {
		case (c == '\n' || c == '\r' || c == '\t') && multiLine[name]:
		case c < 0x20, c >= 0x7f && c <= 0x9f:
			return &Error{Code: "invalid_field", Field: field,
				Message: fmt.Sprintf("%s holds a control character (U+%04X): remove it", field, c)}
		case c >= 0x202a && c <= 0x202e, c >= 0x2066 && c <= 0x2069:
			return &Error{Code: "invalid_field", Field: field,
				Message: fmt.Sprintf("%s holds a text-direction control (U+%04X), which can disguise what it says: remove it", field, c)}
		}
		if unicode.In(c, unicode.Mn, unicode.Me) {
			if marks++; marks > maxMarks {
				return &Error{Code: "invalid_field", Field: field,
					Message: fmt.Sprintf("%s holds a character with more than %d accents or marks: remove them", field, maxMarks)}
			}
		} else {
			marks = 0
		}
	}
	return nil
}

// checkValues applies checkText and checkTime to every string and time
// decoded into v, naming fields by their JSON path.
func checkValues(v reflect.Value, field string) error {
	if !v.IsValid() {
		return nil
	}
	if t, ok := v.Interface().(time.Time); ok {
		return checkTime(field, t)
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return checkValues(v.Elem(), field)
	case reflect.String:
		return checkText(field, v.String())
	case reflect.Struct:
		for i := range v.NumField() {
			name := jsonName(v.Type().Field(i))
			if name == "" {
				continue
			}
			if err := checkValues(v.Field(i), joinField(field, name)); err != nil {
				return err
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			if err := checkValues(v.Index(i), fmt.Sprintf("%s[%d]", field, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// hasLoneSurrogate tells whether raw escapes half of a UTF-16 surrogate
// pair, which encoding/json would turn into U+FFFD without a word.
func hasLoneSurrogate(raw []byte) bool {
	inString := false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c == '"':
			inString = !inString
		case c == '\\' && inString && i+1 < len(raw):
			if raw[i+1] != 'u' {
				i++
				continue
			}
			r, ok := hexRune(raw, i+2)
			if !ok {
				return false // a syntax error, which the decoder explains
			}
			i += 5
			switch {
			case r >= 0xdc00 && r <= 0xdfff:
				return true
			case r >= 0xd800 && r <= 0xdbff:
				if i+2 >= len(raw) || raw[i+1] != '\\' || raw[i+2] != 'u' {
					return true
				}
				low, ok := hexRune(raw, i+3)
				if !ok || low < 0xdc00 || low > 0xdfff {
					return true
				}
				i += 6
			}
		}
	}
	return false
}

// hexRune reads the four hex digits at raw[at:].
func hexRune(raw []byte, at int) (rune, bool) {
	if at+4 > len(raw) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(raw[at:at+4]), 16, 32)
	return rune(n), err == nil
}

// bodyError turns a JSON decoding failure into an answer saying what to fix.
func bodyError(err error) error {
	var (
		syntax   *json.SyntaxError
		typeErr  *json.UnmarshalTypeError
		tooLarge *http.MaxBytesError
	)
	switch {
	case errors.Is(err, io.EOF):
		return &Error{Code: "invalid_body", Message: "the body is empty: send a JSON object"}
	case errors.As(err, &tooLarge):
		return &Error{Code: codeBodyTooLarge, status: http.StatusRequestEntityTooLarge,
			Message: fmt.Sprintf("the body is larger than %d KiB: send less", tooLarge.Limit>>10)}
	case errors.As(err, &syntax):
		return &Error{Code: "invalid_json", Message: fmt.Sprintf("the body is not valid JSON (at byte %d): %s", syntax.Offset, syntax.Error())}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &Error{Code: "invalid_json", Message: "the body ends in the middle of a JSON value"}
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			return &Error{Code: "invalid_body", Message: fmt.Sprintf("the body must be a JSON object, not %s", typeErr.Value)}
		}
		return &Error{Code: "invalid_field", Field: field,
			Message: fmt.Sprintf("%s must be %s, not %s", field, jsonKind(typeErr.Type.String()), typeErr.Value)}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		quoted := strings.TrimPrefix(err.Error(), "json: unknown field ")
		field, uerr := strconv.Unquote(quoted)
		if uerr != nil {
			field = strings.Trim(quoted, `"`)
		}
		if field == "" {
			return &Error{Code: "unknown_field", Message: `the body has a field with an empty name (""): remove it`}
		}
		return &Error{Code: "unknown_field", Field: field,
			Message: fmt.Sprintf("%s is not a field of this request: check its spelling against the API documentation", field)}
	default:
		return &Error{Code: "invalid_body", Message: "the body could not be read as the expected JSON object: " + err.Error()}
	}
}

// jsonKind names a Go type as JSON calls it.
func jsonKind(goType string) string {
	switch {
	case goType == "string", strings.HasSuffix(goType, ".Role"), strings.HasSuffix(goType, ".Reason"):
		return "a string"
	case goType == "bool":
		return "true or false"
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "uint"), strings.HasPrefix(goType, "float"):
		return "a number"
	case goType == "uuid.UUID":
		return "a UUID string"
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	default:
		return "a " + goType
	}
}

// pathID reads a UUID path parameter.
func pathID(r *http.Request, name string) (uuid.UUID, error) {
	id, err := uuid.Parse(r.PathValue(name))
	switch {
	case err != nil:
		return uuid.Nil, &Error{Code: "invalid_id", Field: name,
			Message: fmt.Sprintf("%q in the path is not a UUID such as 0195a3b2-0000-7000-8000-000000000001", r.PathValue(name))}
	case id == uuid.Nil:
		return uuid.Nil, &Error{Code: "invalid_id", Field: name,
			Message: "the nil UUID in the path names nothing: use the id of a record, such as 0195a3b2-0000-7000-8000-000000000001"}
	}
	return id, nil
}
