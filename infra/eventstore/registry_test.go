package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/presente-dispatch/presente/domain"
)

// talliedV2 is tallied after a payload change: "by" became "amount" and a
// "unit" was added. Its upcaster lifts stored version-1 payloads.
type talliedV2 struct {
	Amount int    `json:"amount"`
	Unit   string `json:"unit"`
}

func (talliedV2) EventType() string { return "Tallied" }

func talliedV1toV2(data json.RawMessage) (json.RawMessage, error) {
	var v1 struct {
		By int `json:"by"`
	}
	if err := json.Unmarshal(data, &v1); err != nil {
		return nil, err
	}
	return json.Marshal(talliedV2{Amount: v1.By, Unit: "volunteers"})
}

func TestUpcasterIsAppliedOnRead(t *testing.T) {
	ctx := context.Background()
	old, pool := newTestStore(t, Options{})
	id := uuid.New()
	if _, err := old.Append(ctx, Stream{Type: "tally", ID: id}, 0, testMeta, tallied{By: 3}); err != nil {
		t.Fatal(err)
	}

	// A later build registers version 2 with its upcaster.
	reg := NewRegistry()
	if err := reg.Register(talliedV2{}, talliedV1toV2); err != nil {
		t.Fatal(err)
	}
	if v, _ := reg.SchemaVersion("Tallied"); v != 2 {
		t.Fatalf("schema version = %d, want 2", v)
	}
	updated, err := New(pool, reg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer updated.Close()
	if _, err := updated.Append(ctx, Stream{Type: "tally", ID: id}, 1, testMeta, talliedV2{Amount: 4, Unit: "hours"}); err != nil {
		t.Fatal(err)
	}
	events, _, err := updated.Load(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := events[0].Event, (talliedV2{Amount: 3, Unit: "volunteers"}); got != want {
		t.Errorf("upcast event = %+v, want %+v", got, want)
	}
	if events[0].SchemaVersion != 1 || events[1].SchemaVersion != 2 {
		t.Errorf("stored schema versions = %d, %d; want 1, 2", events[0].SchemaVersion, events[1].SchemaVersion)
	}

	// The old build cannot read what the new one wrote, and says so.
	if _, _, err := old.Load(ctx, id); err == nil || !strings.Contains(err.Error(), "stored schema version 2") {
		t.Errorf("old build reading a newer payload: err = %v, want a schema version error", err)
	}
}

func TestReadingAnUnknownEventTypeFailsLoudly(t *testing.T) {
	ctx := context.Background()
	s, pool := newTestStore(t, Options{})
	id := uuid.New()
	if _, err := s.Append(ctx, Stream{Type: "note", ID: id}, 0, testMeta, noteAdded{Text: "x"}); err != nil {
		t.Fatal(err)
	}
	onlyTallies := NewRegistry()
	if err := onlyTallies.Register(tallied{}); err != nil {
		t.Fatal(err)
	}
	blind, err := New(pool, onlyTallies, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer blind.Close()
	if _, _, err := blind.Load(ctx, id); !errors.Is(err, ErrUnknownEventType) {
		t.Errorf("Load: err = %v, want ErrUnknownEventType", err)
	}
	// The global log may show the event only once older transactions
	// elsewhere on the server have finished; poll until it does.
	deadline := time.Now().Add(15 * time.Second)
	for {
		events, err := blind.ReadAll(ctx, Cursor{}, 10)
		if errors.Is(err, ErrUnknownEventType) {
			break
		}
		if err != nil || len(events) > 0 || time.Now().After(deadline) {
			t.Fatalf("ReadAll = %d events, err %v; want ErrUnknownEventType", len(events), err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type pointerEvent struct{}

func (*pointerEvent) EventType() string { return "Pointer" }

type badName struct{}

func (badName) EventType() string { return "has space" }

func TestRegisterRefusesWhatCouldNotBeReadBack(t *testing.T) {
	tests := []struct {
		name      string
		prototype domain.Event
		upcasters []Upcaster
	}{
		{"a pointer type", &pointerEvent{}, nil},
		{"a name with a space", badName{}, nil},
		{"a nil upcaster", tallied{}, []Upcaster{nil}},
		{"a nil prototype", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := NewRegistry().Register(tt.prototype, tt.upcasters...); err == nil {
				t.Error("Register succeeded")
			}
		})
	}
	r := testRegistry(t)
	if err := r.Register(talliedV2{}); err == nil {
		t.Error("registering a second type under the name Tallied succeeded")
	}
}

func TestDecodeRejectsFieldsTheTypeDoesNotHave(t *testing.T) {
	r := testRegistry(t)
	if _, err := r.decode("Tallied", 1, []byte(`{"by":1,"extra":true}`)); err == nil {
		t.Error("decode accepted an unknown field")
	}
}
