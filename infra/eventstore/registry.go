package eventstore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"

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
	et := &eventType{name: name, goType: t, upcasters: upcasters}
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

// encode serializes an event at its current schema version.
func (r *Registry) encode(e domain.Event) (name string, version int, data []byte, err error) {
	if e == nil {
		return "", 0, nil, fmt.Errorf("encode event: event is nil")
	}
	et, ok := r.byType[reflect.TypeOf(e)]
	if !ok {
		return "", 0, nil, &UnknownEventTypeError{Type: fmt.Sprintf("%s (Go type %T)", e.EventType(), e)}
	}
	data, err = json.Marshal(e)
	if err != nil {
		return "", 0, nil, fmt.Errorf("encode event %s: %w", et.name, err)
	}
	return et.name, et.version(), data, nil
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
