package bus_test

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/presente-dispatch/presente/domain/account"
	"github.com/presente-dispatch/presente/domain/invitation"
	"github.com/presente-dispatch/presente/domain/organization"
	"github.com/presente-dispatch/presente/domain/privacy"
	"github.com/presente-dispatch/presente/domain/request"
	"github.com/presente-dispatch/presente/domain/retention"
	"github.com/presente-dispatch/presente/domain/shift"
	"github.com/presente-dispatch/presente/domain/training"
	"github.com/presente-dispatch/presente/domain/volunteer"
	"github.com/presente-dispatch/presente/infra/bus"
	"github.com/presente-dispatch/presente/infra/eventstore"
)

// FuzzDecodeMessage feeds arbitrary relayed messages to bus.Decode, as a
// consumer on another machine would receive them. A message it accepts
// holds the event it names, under the id the message carries, and
// re-encodes (bus.NewMessage) to a message that decodes to the same record.
func FuzzDecodeMessage(f *testing.F) {
	registry := eventstore.NewRegistry()
	for _, e := range slices.Concat(privacy.Events, account.Events, invitation.Events, retention.Events, volunteer.Events,
		shift.Events, request.Events, training.Events, organization.Events) {
		if err := registry.Register(e); err != nil {
			f.Fatal(err)
		}
	}
	id := "0195a3b2-0000-7000-8000-000000000009"
	f.Add(id, []byte(`{"position":12,"tx_id":7411,"stream_id":"0195a3b2-0000-7000-8000-000000000001","stream_type":"volunteer","stream_version":1,`+
		`"event_id":"`+id+`","event_type":"OnCallChanged","schema_version":1,"stored_schema_version":1,`+
		`"data":{"volunteer_id":"0195a3b2-0000-7000-8000-000000000001","on_call":true},`+
		`"metadata":{"actor_id":"0195a3b2-0000-7000-8000-000000000002","correlation_id":"0195a3b2-0000-7000-8000-000000000003"},"recorded_at":"2026-11-24T06:40:00Z"}`))
	f.Add(id, []byte(`{"event_id":"`+id+`","event_type":"SubjectForgotten","schema_version":1,"data":{}}`))
	f.Add(id, []byte(`{"event_id":"`+id+`","event_type":"SubjectForgotten","schema_version":2,"data":{}}`))
	f.Add(id, []byte(`{"event_id":"`+id+`","event_type":"Nope","schema_version":1,"data":{}}`))
	f.Add(id, []byte(`{"event_id":"`+id+`","data":null}`))
	f.Add("not-a-uuid", []byte(`[]`))
	f.Fuzz(func(t *testing.T, msgID string, payload []byte) {
		rec, err := bus.Decode(registry, message.NewMessage(msgID, payload))
		if err != nil {
			if !strings.Contains(err.Error(), msgID) {
				t.Fatalf("the error does not name the message %q: %v", msgID, err)
			}
			return
		}
		if rec.EventID.String() != msgID || rec.EventID == uuid.Nil && msgID != uuid.Nil.String() {
			t.Fatalf("message %q decoded as event %s", msgID, rec.EventID)
		}
		if rec.Event == nil || rec.Event.EventType() != rec.Type {
			t.Fatalf("message %q holds %v, named %q", msgID, rec.Event, rec.Type)
		}
		again, err := bus.NewMessage(registry, rec)
		if err != nil {
			t.Fatalf("re-encoding %+v: %v", rec, err)
		}
		back, err := bus.Decode(registry, again)
		if err != nil {
			t.Fatalf("decoding its own re-encoding: %v", err)
		}
		first, _ := json.Marshal(rec)
		second, _ := json.Marshal(back)
		if !bytes.Equal(first, second) {
			t.Fatalf("round trip changed the record:\n%s\n%s", first, second)
		}
		if c, err := eventstore.ParseCursor(again.Metadata.Get(bus.MetadataCursor)); err != nil || c != rec.Cursor() {
			t.Fatalf("cursor metadata %q: %v, %v", again.Metadata.Get(bus.MetadataCursor), c, err)
		}
	})
}
