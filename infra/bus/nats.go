package bus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/presente-dispatch/presente/infra/eventstore"
)

// DefaultStream is the JetStream stream the log is relayed to; its
// subject is Topic.
const DefaultStream = "PRESENTE"

const (
	// DefaultStreamMaxMsgs bounds the stream: JetStream discards the
	// oldest messages beyond it. Consumers catch up from the log, not the
	// stream, so it only needs the last message (the relay's resume
	// point) and a margin for slow consumers.
	DefaultStreamMaxMsgs = 1_000_000
	// DuplicateWindow is how long JetStream remembers a message id to drop
	// a second publish of it: longer than any overlap of two relays.
	DuplicateWindow = 2 * time.Minute
)

// NATSConfig configures the connection to NATS JetStream.
type NATSConfig struct {
	// URL is the NATS server, or a comma-separated list of a cluster's.
	URL string
	// Stream names the stream; DefaultStream when empty. Its subject is
	// Subject(Stream), Topic for the default stream.
	Stream string
	// Replicas is the stream's replication factor in a NATS cluster (1, 3
	// or 5); 1 when zero.
	Replicas int
	// MaxMsgs bounds the stream; DefaultStreamMaxMsgs when zero.
	MaxMsgs int64
	// DuplicateWindow is how long the stream remembers message ids;
	// DuplicateWindow when zero.
	DuplicateWindow time.Duration
	// Name names the connection in the server's monitoring (the instance).
	Name string
	// Logger receives connection changes and failures.
	Logger *zap.Logger
}

// Subject is the subject of stream's messages: the lower-cased stream name
// followed by ".events", so the default stream's is Topic.
func Subject(stream string) string {
	return strings.ToLower(stream) + ".events"
}

// NATS is a connection to a JetStream stream holding the relayed log: a
// watermill-nats publisher that publishes each message with its UUID (the
// event id) as the Nats-Msg-Id, so JetStream drops a message it already
// holds, and subscribers that read the stream with ordered consumers.
// The relay publishes through FencedPublisher instead, which also fences
// on the stream sequence.
type NATS struct {
	cfg     NATSConfig
	subject string
	conn    *nats.Conn
	js      nats.JetStreamContext
	pub     *wmnats.Publisher
	wmlog   watermill.LoggerAdapter
}

// ConnectNATS connects to NATS and creates the stream, or updates its
// settings, so the stream exists before anything publishes or subscribes.
func ConnectNATS(ctx context.Context, cfg NATSConfig) (*NATS, error) {
	if cfg.URL == "" {
		return nil, errors.New("bus: NATS needs a URL")
	}
	if cfg.Logger == nil {
		return nil, errors.New("bus: NATS needs a logger")
	}
	if cfg.Stream == "" {
		cfg.Stream = DefaultStream
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	if cfg.MaxMsgs == 0 {
		cfg.MaxMsgs = DefaultStreamMaxMsgs
	}
	if cfg.DuplicateWindow == 0 {
		cfg.DuplicateWindow = DuplicateWindow
	}
	logger := cfg.Logger
	conn, err := nats.Connect(cfg.URL,
		nats.Name(cfg.Name),
		// Reconnect for ever: the servers keep working on PostgreSQL while
		// NATS is away, and live views resume when it is back.
		nats.MaxReconnects(-1),
		// No buffering of publishes while reconnecting: a relay's publish
		// fails at once and is retried from its cursor, rather than be
		// flushed minutes later, after another instance took over and past
		// JetStream's duplicate window.
		nats.ReconnectBufSize(-1),
		// Notice a silent server within about 15 s (three pings), not the
		// client's default 6 minutes: a relay on a dead connection gives
		// the lead up, and only a connected instance competes for it.
		nats.PingInterval(5*time.Second),
		nats.MaxPingsOutstanding(2),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil: closed on purpose
				logger.Warn("disconnected from NATS", zap.Error(err))
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			logger.Info("reconnected to NATS", zap.String("server", c.ConnectedUrlRedacted()))
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			logger.Warn("NATS", zap.Error(err))
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS: %w", err)
	}
	n := &NATS{cfg: cfg, subject: Subject(cfg.Stream), conn: conn,
		wmlog: NewZapLogger(logger.WithOptions(zap.IncreaseLevel(zap.WarnLevel)))}
	if n.js, err = conn.JetStream(nats.Context(ctx)); err != nil {
		conn.Close()
		return nil, fmt.Errorf("open JetStream: %w", err)
	}
	if err := n.ensureStream(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	n.pub, err = wmnats.NewPublisherWithNatsConn(conn, wmnats.PublisherPublishConfig{
		Marshaler:         &wmnats.NATSMarshaler{},
		SubjectCalculator: wmnats.DefaultSubjectCalculator,
		JetStream: wmnats.JetStreamConfig{
			// Nats-Msg-Id = the message UUID = the event id.
			TrackMsgId: true,
		},
	}, n.wmlog)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("make the NATS publisher: %w", err)
	}
	return n, nil
}

func (n *NATS) streamConfig() *nats.StreamConfig {
	return &nats.StreamConfig{
		Name:        n.cfg.Stream,
		Description: "Presente's event log, relayed in log order (sealed: no personal data in the clear)",
		Subjects:    []string{n.subject},
		Storage:     nats.FileStorage,
		Replicas:    n.cfg.Replicas,
		MaxMsgs:     n.cfg.MaxMsgs,
		Discard:     nats.DiscardOld,
		Duplicates:  n.cfg.DuplicateWindow,
	}
}

func (n *NATS) ensureStream(ctx context.Context) error {
	cfg := n.streamConfig()
	_, err := n.js.StreamInfo(cfg.Name, nats.Context(ctx))
	switch {
	case errors.Is(err, nats.ErrStreamNotFound):
		_, err = n.js.AddStream(cfg, nats.Context(ctx))
	case err == nil:
		_, err = n.js.UpdateStream(cfg, nats.Context(ctx))
	}
	if err != nil {
		return fmt.Errorf("create the JetStream stream %s: %w", cfg.Name, err)
	}
	return nil
}

// Topic is the topic to publish and subscribe on: the stream's subject.
func (n *NATS) Topic() string { return n.subject }

// Stream is the stream's name.
func (n *NATS) Stream() string { return n.cfg.Stream }

// Publisher is the watermill-nats publisher. Publish returns once
// JetStream has stored each message (or recognised it as a duplicate).
func (n *NATS) Publisher() message.Publisher { return n.pub }

// Subscribe reads the messages published on the stream from now on, in
// stream order, through an ordered consumer of its own: ephemeral,
// without acknowledgements, recreated by the client from the last
// sequence it saw if a message goes missing or the connection drops. Each
// instance subscribes for itself; nothing on the server outlives it. The
// channel closes when ctx ends.
func (n *NATS) Subscribe(ctx context.Context) (<-chan *message.Message, error) {
	sub, err := wmnats.NewSubscriberWithNatsConn(n.conn, wmnats.SubscriberSubscriptionConfig{
		Unmarshaler:       orderedUnmarshaler{},
		SubjectCalculator: wmnats.DefaultSubjectCalculator,
		SubscribersCount:  1, // one subscription delivers in order
		AckWaitTimeout:    time.Minute,
		CloseTimeout:      5 * time.Second,
		JetStream: wmnats.JetStreamConfig{
			SubscribeOptions: []nats.SubOpt{nats.OrderedConsumer(), nats.DeliverNew()},
		},
	}, n.wmlog)
	if err != nil {
		return nil, fmt.Errorf("make the NATS subscriber: %w", err)
	}
	msgs, err := sub.Subscribe(ctx, n.subject)
	if err != nil {
		return nil, fmt.Errorf("subscribe to the JetStream stream %s: %w", n.cfg.Stream, err)
	}
	return msgs, nil
}

// orderedUnmarshaler reads a message like NATSMarshaler and drops its
// reply subject: an ordered consumer takes no acknowledgements, and
// watermill-nats treats an acknowledged message without a reply subject as
// nothing to send (instead of logging the client's refusal for each one).
// The client has already checked the message's sequence by then.
type orderedUnmarshaler struct{}

func (orderedUnmarshaler) Unmarshal(m *nats.Msg) (*message.Message, error) {
	msg, err := (&wmnats.NATSMarshaler{}).Unmarshal(m)
	m.Reply = ""
	return msg, err
}

// LastCursor returns the log position of the last message in the stream,
// and false when the stream is empty: where a new relay leader resumes.
func (n *NATS) LastCursor(ctx context.Context) (eventstore.Cursor, bool, error) {
	c, _, ok, err := n.lastMessage(ctx)
	return c, ok, err
}

// lastMessage returns the position and the stream sequence of the last
// message in the stream, and false when the stream is empty (the sequence
// is then the stream's last, which a purge keeps).
func (n *NATS) lastMessage(ctx context.Context) (eventstore.Cursor, uint64, bool, error) {
	m, err := n.js.GetLastMsg(n.cfg.Stream, n.subject, nats.Context(ctx))
	if errors.Is(err, nats.ErrMsgNotFound) {
		info, err := n.js.StreamInfo(n.cfg.Stream, nats.Context(ctx))
		if err != nil {
			return eventstore.Cursor{}, 0, false, fmt.Errorf("read the state of the JetStream stream %s: %w", n.cfg.Stream, err)
		}
		return eventstore.Cursor{}, info.State.LastSeq, false, nil
	}
	if err != nil {
		return eventstore.Cursor{}, 0, false, fmt.Errorf("read the last message of the JetStream stream %s: %w", n.cfg.Stream, err)
	}
	c, err := eventstore.ParseCursor(m.Header.Get(MetadataCursor))
	if err != nil {
		return eventstore.Cursor{}, 0, false, fmt.Errorf("the last message of the JetStream stream %s (sequence %d): %w", n.cfg.Stream, m.Sequence, err)
	}
	return c, m.Sequence, true, nil
}

// FencedPublisher returns a publisher that appends to the stream only
// while the stream's last sequence is the one it expects
// (Nats-Expected-Last-Sequence): after at first (the stream's last
// sequence when its relay resumed), then the sequence JetStream acknowledged
// for its own last message. A relay that fell behind another is refused
// (StreamMovedOn) instead of appending stale copies. Sequences survive a
// server restart, unlike the last message id, so the fence holds however
// long the stream was quiet. Each message keeps its UUID (the event id)
// as the Nats-Msg-Id, so JetStream drops a copy within its duplicate
// window, before checking the expectation, and acknowledges it with the
// original's sequence: a relay publishing copies of what another just
// published follows that relay's sequence and appends after it.
//
// The messages are relayed events (their MetadataCursor set); one at or
// before the last the publisher stored (at first, at: the position of the
// message at sequence after) is skipped, so a relay retrying a batch of
// which a part was stored does not store that part twice, even past the
// duplicate window.
func (n *NATS) FencedPublisher(at eventstore.Cursor, after uint64) *FencedPublisher {
	return &FencedPublisher{js: n.js, at: at, last: after}
}

// FencedPublisher is NATS.FencedPublisher's publisher.
type FencedPublisher struct {
	js   nats.JetStreamContext
	mu   sync.Mutex
	at   eventstore.Cursor
	last uint64
}

// Publish publishes msgs in order, each once JetStream stored the one
// before, and stops at the first failure.
func (p *FencedPublisher) Publish(topic string, msgs ...*message.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, msg := range msgs {
		at, err := eventstore.ParseCursor(msg.Metadata.Get(MetadataCursor))
		if err != nil {
			return fmt.Errorf("message %s is not a relayed event: %w", msg.UUID, err)
		}
		if !before(p.at, at) {
			continue // stored already
		}
		m, err := (&wmnats.NATSMarshaler{}).Marshal(topic, msg)
		if err != nil {
			return fmt.Errorf("encode message %s for NATS: %w", msg.UUID, err)
		}
		m.Header.Set(nats.MsgIdHdr, msg.UUID)
		if p.last > 0 { // JetStream ignores an expectation of 0
			m.Header.Set(nats.ExpectedLastSeqHdr, strconv.FormatUint(p.last, 10))
		}
		ack, err := p.js.PublishMsg(m, nats.Context(msg.Context()))
		if err != nil {
			return fmt.Errorf("publish message %s to JetStream: %w", msg.UUID, err)
		}
		p.at, p.last = at, ack.Sequence
	}
	return nil
}

// LastSequence is the stream sequence of the last message published (or
// recognised as a copy), or the one given at first.
func (p *FencedPublisher) LastSequence() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last
}

// Close does nothing: the connection is the NATS's.
func (p *FencedPublisher) Close() error { return nil }

// JetStream's error codes for a publish whose Nats-Expected-Last-Msg-Id,
// or Nats-Expected-Last-Sequence, is not the stream's last.
const (
	jsWrongLastMsgID    = 10070
	jsWrongLastSequence = 10071
)

// StreamMovedOn tells whether err is JetStream refusing a publish
// because the stream's last message is not the one the publisher expected
// (Nats-Expected-Last-Sequence): another relay published after it, or
// the stream was recreated.
func StreamMovedOn(err error) bool {
	var api *nats.APIError
	return errors.As(err, &api) && (api.ErrorCode == jsWrongLastSequence || api.ErrorCode == jsWrongLastMsgID)
}

// Connected tells whether the connection to NATS is up now.
func (n *NATS) Connected() bool { return n.conn.IsConnected() }

// Close closes the connection.
func (n *NATS) Close() {
	n.conn.Close()
}

// DeleteStream deletes the stream and everything in it (tests).
func (n *NATS) DeleteStream(ctx context.Context) error {
	return n.js.DeleteStream(n.cfg.Stream, nats.Context(ctx))
}
