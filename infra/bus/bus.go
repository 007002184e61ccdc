// Package bus fans the event log out to its consumers through watermill.
//
// A Relay follows the global log with the commit-safe cursor
// (eventstore.Store.ReadAllSealed) and publishes every recorded event, in
// log order and without gaps, as one message on Topic. It wakes as soon as
// events commit: at once for this process's commits (Store.Committed), and
// through PostgreSQL LISTEN/NOTIFY for other processes' (Listener), with a
// slow poll only as a safety net. Messages carry the event as stored, with
// personal data sealed, so nothing on the bus is plaintext about a person.
//
// Publisher and subscriber are watermill's interfaces: a single server uses
// the in-process pub/sub of NewLocal; a broker (NATS JetStream) can take its
// place with one relay leader, consumers de-duplicating by message UUID
// (the event id) or by cursor.
package bus

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/google/uuid"

	"github.com/presente-dispatch/presente/infra/eventstore"
)

// Topic is the topic every recorded event is published on.
const Topic = "presente.events"

// Metadata keys of a relayed event's message. Consumers can route and
// de-duplicate on them without decoding the payload.
const (
	// MetadataCursor is the event's place in the log, as
	// eventstore.Cursor.String renders it; eventstore.ParseCursor reads it.
	MetadataCursor = "cursor"
	// MetadataPrev is the log position the relay read the event after:
	// no event lies between the two. A consumer whose last event is older
	// than it missed messages (Follow reads them from the log).
	MetadataPrev = "prev_cursor"
	// MetadataStreamID is the id of the event's stream.
	MetadataStreamID = "stream_id"
	// MetadataStreamType is the type of the event's stream ("request").
	MetadataStreamType = "stream_type"
	// MetadataEventType is the event type's name ("AssignmentOffered").
	MetadataEventType = "event_type"
	// MetadataSchemaVersion is the schema version of the payload's event.
	MetadataSchemaVersion = "schema_version"
)

// envelope is a message's payload: the recorded event, its personal-data
// fields sealed as the log stores them.
type envelope struct {
	Position      int64     `json:"position"`
	TxID          uint64    `json:"tx_id"`
	StreamID      uuid.UUID `json:"stream_id"`
	StreamType    string    `json:"stream_type"`
	StreamVersion int64     `json:"stream_version"`
	EventID       uuid.UUID `json:"event_id"`
	EventType     string    `json:"event_type"`
	// SchemaVersion is the version Data is at: the current version in the
	// publisher's build, since the store upcasts what it reads.
	SchemaVersion int `json:"schema_version"`
	// StoredSchemaVersion is the version the log holds the event at.
	StoredSchemaVersion int                 `json:"stored_schema_version"`
	Data                json.RawMessage     `json:"data"`
	Metadata            eventstore.Metadata `json:"metadata"`
	RecordedAt          time.Time           `json:"recorded_at"`
}

// NewMessage encodes a recorded event, read sealed, as a message: its
// UUID is the event id, its metadata the keys above, its payload the
// record as JSON. rec must have been read sealed (ReadAllSealed): nothing
// in the clear goes on the bus.
func NewMessage(registry *eventstore.Registry, rec eventstore.Recorded) (*message.Message, error) {
	version, err := registry.SchemaVersion(rec.Type)
	if err != nil {
		return nil, fmt.Errorf("event %s: %w", rec.EventID, err)
	}
	data, err := json.Marshal(rec.Event)
	if err != nil {
		return nil, fmt.Errorf("event %s: encode %s: %w", rec.EventID, rec.Type, err)
	}
	payload, err := json.Marshal(envelope{
		Position: rec.Position, TxID: rec.TxID,
		StreamID: rec.StreamID, StreamType: rec.StreamType, StreamVersion: rec.StreamVersion,
		EventID: rec.EventID, EventType: rec.Type,
		SchemaVersion: version, StoredSchemaVersion: rec.SchemaVersion,
		Data: data, Metadata: rec.Metadata, RecordedAt: rec.RecordedAt,
	})
	if err != nil {
		return nil, fmt.Errorf("event %s: encode its record: %w", rec.EventID, err)
	}
	msg := message.NewMessage(rec.EventID.String(), payload)
	msg.Metadata.Set(MetadataCursor, rec.Cursor().String())
	msg.Metadata.Set(MetadataStreamID, rec.StreamID.String())
	msg.Metadata.Set(MetadataStreamType, rec.StreamType)
	msg.Metadata.Set(MetadataEventType, rec.Type)
	msg.Metadata.Set(MetadataSchemaVersion, strconv.Itoa(version))
	return msg, nil
}

// Decode reads a relayed message back into the recorded event, decoded
// through registry (upcast to the current version) with its personal data
// still sealed. A consumer that needs the plaintext, and may see it, calls
// eventstore.Store.Reveal on what it decoded. An event type the registry
// does not know, or a payload newer than this build, fails loudly.
func Decode(registry *eventstore.Registry, msg *message.Message) (eventstore.Recorded, error) {
	var env envelope
	if err := json.Unmarshal(msg.Payload, &env); err != nil {
		return eventstore.Recorded{}, fmt.Errorf("message %s: decode its record: %w", msg.UUID, err)
	}
	if env.EventID.String() != msg.UUID {
		return eventstore.Recorded{}, fmt.Errorf("message %s: its record is event %s", msg.UUID, env.EventID)
	}
	if len(env.Data) == 0 {
		return eventstore.Recorded{}, errors.New("message " + msg.UUID + ": its record holds no event")
	}
	e, err := registry.Decode(env.EventType, env.SchemaVersion, env.Data)
	if err != nil {
		return eventstore.Recorded{}, fmt.Errorf("message %s: %w", msg.UUID, err)
	}
	return eventstore.Recorded{
		Position: env.Position, TxID: env.TxID,
		StreamID: env.StreamID, StreamType: env.StreamType, StreamVersion: env.StreamVersion,
		EventID: env.EventID, Type: env.EventType, SchemaVersion: env.StoredSchemaVersion,
		Event: e, Metadata: env.Metadata, RecordedAt: env.RecordedAt,
	}, nil
}

// NewLocal returns the in-process pub/sub of a single server. Publish
// waits until every subscriber has acknowledged each message before
// sending the next: watermill's channel pub/sub otherwise hands messages
// to subscribers from one goroutine each, which can reorder them. The
// price is that a slow subscriber holds up every other: a subscriber must
// acknowledge at once and do slow work elsewhere (the websocket hub queues
// per client; a projection that writes to Postgres follows the log with
// its own cursor and uses the bus, or Store.Committed and Listener, only
// to wake up). Closing the pub/sub releases a Publish that waits.
func NewLocal(logger watermill.LoggerAdapter) *gochannel.GoChannel {
	return gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: true}, logger)
}
