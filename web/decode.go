package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/google/uuid"
)

// maxBodyBytes bounds every request body: no command of Presente needs
// more, and a larger body is refused before it is read.
const maxBodyBytes = 64 << 10

// decodeJSON reads r's body into v, refusing what a careful client would
// never send: another content type, unknown fields, trailing data, a body
// that is too large. Each refusal says what to fix.
func decodeJSON(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return &Error{Code: "unsupported_media_type", Message: "send the body as JSON with Content-Type: application/json"}
		}
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return bodyError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return bodyError(err)
		}
		return &Error{Code: "invalid_body", Message: "the body holds more than one JSON value: send exactly one object"}
	}
	return nil
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
		return &Error{Code: "body_too_large", status: http.StatusRequestEntityTooLarge,
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
	if err != nil {
		return uuid.Nil, &Error{Code: "invalid_id", Field: name,
			Message: fmt.Sprintf("%q in the path is not a UUID such as 0195a3b2-0000-7000-8000-000000000001", r.PathValue(name))}
	}
	return id, nil
}
