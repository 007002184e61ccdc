package eventstore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"time"

	"github.com/presente-dispatch/presente/domain"
)

// Upcaster turns the JSON payload of one schema version of an event into the
// next version's payload.
type Upcaster func(data json.RawMessage) (json.RawMessage, error)

// Registry knows every event type the log may hold: its name, its Go type,
// its current schema version and how to bring older payloads up to date.
// Build it once at start-up; it is read-only afterwards and safe for
// concurrent use.
type Registry struct {
	byName map[string]*eventType
	byType map[reflect.Type]*eventType
}

type eventType struct {
	name      string
	goType    reflect.Type
	upcasters []Upcaster
	personal  []personalField
}

// version is the current schema version: one more than the number of
// upcasters, since each upcaster lifts a payload by one version.
func (t *eventType) version() int { return len(t.upcasters) + 1 }

var eventTypeName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.]{0,127}$`)

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{byName: map[string]*eventType{}, byType: map[reflect.Type]*eventType{}}
}

// Register adds an event type, given as a zero value of its struct type.
// Its current schema version is len(upcasters)+1: upcasters[0] lifts version
// 1 payloads to version 2, upcasters[1] lifts version 2 to 3, and so on.
func (r *Registry) Register(prototype domain.Event, upcasters ...Upcaster) error {
	if prototype == nil {
		return fmt.Errorf("register event type: prototype is nil")
	}
	t := reflect.TypeOf(prototype)
	if t.Kind() != reflect.Struct {
		return fmt.Errorf("register event type %s: want a struct value, got %s", t, t.Kind())
	}
	name := prototype.EventType()
	if !eventTypeName.MatchString(name) {
		return fmt.Errorf("register event type %s: name %q must start with a letter and hold only letters, digits, '_' and '.' (at most 128)", t, name)
	}
	if _, dup := r.byName[name]; dup {
		return fmt.Errorf("register event type %s: name %q is already registered", t, name)
	}
	if _, dup := r.byType[t]; dup {
		return fmt.Errorf("register event type %s: already registered", t)
	}
	for i, u := range upcasters {
		if u == nil {
			return fmt.Errorf("register event type %q: upcaster from version %d is nil", name, i+1)
		}
	}
	personal, err := personalFields(t)
	if err != nil {
		return fmt.Errorf("register event type %q: %w", name, err)
	}
	et := &eventType{name: name, goType: t, upcasters: upcasters, personal: personal}
	r.byName[name] = et
	r.byType[t] = et
	return nil
}

// SchemaVersion returns the current schema version of a registered type.
func (r *Registry) SchemaVersion(name string) (int, error) {
	et, ok := r.byName[name]
	if !ok {
		return 0, &UnknownEventTypeError{Type: name}
	}
	return et.version(), nil
}

// HasPersonalData tells whether any registered type declares personal data.
func (r *Registry) HasPersonalData() bool {
	for _, et := range r.byName {
		if len(et.personal) > 0 {
			return true
		}
	}
	return false
}

// UndeclaredStrings lists, as "EventType.field", every string field of a
// registered event type that is neither declared personal data (pii tag)
// nor named in allowed. A test over the application's registry uses it to
// make sure no field that could hold personal data slips in unencrypted.
func (r *Registry) UndeclaredStrings(allowed map[string]bool) []string {
	var out []string
	for name, et := range r.byName {
		declared := map[int]bool{}
		for _, pf := range et.personal {
			declared[pf.index] = true
		}
		for i := range et.goType.NumField() {
			f := et.goType.Field(i)
			key := name + "." + jsonName(f)
			if containsString(f.Type) && !declared[i] && !allowed[key] {
				out = append(out, key)
			}
		}
	}
	sort.Strings(out)
	return out
}

var (
	timeType       = reflect.TypeOf(time.Time{})
	rawMessageType = reflect.TypeOf(json.RawMessage{})
)

// containsString tells whether a value of type t can hold free text.
func containsString(t reflect.Type) bool {
	return holdsText(t, map[reflect.Type]bool{})
}

func holdsText(t reflect.Type, seen map[reflect.Type]bool) bool {
	if seen[t] {
		return false
	}
	seen[t] = true
	switch {
	case t == uuidType || t == timeType:
		return false
	case t == rawMessageType:
		return true
	}
	switch t.Kind() {
	case reflect.String, reflect.Interface:
		return true
	case reflect.Slice, reflect.Array:
		return t.Elem().Kind() == reflect.Uint8 || holdsText(t.Elem(), seen) // []byte holds anything
	case reflect.Pointer:
		return holdsText(t.Elem(), seen)
	case reflect.Map:
		return holdsText(t.Key(), seen) || holdsText(t.Elem(), seen)
	case reflect.Struct:
		for i := range t.NumField() {
			if holdsText(t.Field(i).Type, seen) {
				return true
			}
		}
	}
	return false
}

// lookup returns the registered type of an event value.
func (r *Registry) lookup(e domain.Event) (*eventType, error) {
	if e == nil {
		return nil, fmt.Errorf("encode event: event is nil")
	}
	et, ok := r.byType[reflect.TypeOf(e)]
	if !ok {
		return nil, &UnknownEventTypeError{Type: fmt.Sprintf("%s (Go type %T)", e.EventType(), e)}
	}
	return et, nil
}

// decode reads a stored payload of the given schema version, upcasting it
// to the current version first.
func (r *Registry) decode(name string, version int, data []byte) (domain.Event, error) {
	et, ok := r.byName[name]
	if !ok {
		return nil, &UnknownEventTypeError{Type: name}
	}
	if version < 1 || version > et.version() {
		return nil, fmt.Errorf("decode event %s: stored schema version %d, this build reads versions 1 to %d", name, version, et.version())
	}
	raw := json.RawMessage(data)
	for v := version; v < et.version(); v++ {
		next, err := et.upcasters[v-1](raw)
		if err != nil {
			return nil, fmt.Errorf("decode event %s: upcast from version %d to %d: %w", name, v, v+1, err)
		}
		raw = next
	}
	ptr := reflect.New(et.goType)
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(ptr.Interface()); err != nil {
		return nil, fmt.Errorf("decode event %s (schema version %d): %w", name, et.version(), err)
	}
	return ptr.Elem().Interface().(domain.Event), nil
}
