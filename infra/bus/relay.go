package bus

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.uber.org/zap"

	"github.com/presente-dispatch/presente/infra/eventstore"
)

const (
	// DefaultFallbackPoll is how often a relay reads the log when nothing
	// woke it. Wake-ups come from this process's commits and from
	// LISTEN/NOTIFY; the poll only bounds the delay when both fail at
	// once (a notification lost while the listener reconnects, a commit
	// by a writer that bypasses the trigger).
	DefaultFallbackPoll = 5 * time.Second
	// DefaultBatchSize is how many events a relay reads and publishes at
	// a time.
	DefaultBatchSize = 256

	// heldBackMin and heldBackMax bound the pause before reading again
	// while committed events are held back by an older transaction, whose
	// end nothing announces; the pause doubles while they stay held.
	heldBackMin = 2 * time.Millisecond
	heldBackMax = 50 * time.Millisecond
	// retryMin and retryMax bound the pause after a failed read or
	// publish, doubling while failures last.
	retryMin = 100 * time.Millisecond
	retryMax = 5 * time.Second
)

// RelayConfig configures a Relay.
type RelayConfig struct {
	// Store is the log the relay follows; its commits wake the relay.
	Store *eventstore.Store
	// Registry encodes the events (the store's registry).
	Registry *eventstore.Registry
	// Publisher receives one message per event, in log order.
	Publisher message.Publisher
	// Topic is the topic published on; Topic when empty.
	Topic string
	// After is where the relay starts: it publishes the events after it.
	// The zero cursor starts at the beginning of the log; a restarted
	// relay passes the cursor of the last event it published (Cursor).
	After eventstore.Cursor
	// Listener, when set, wakes the relay at other processes' commits.
	// Without it only this process's commits wake it promptly.
	Listener *Listener
	// FallbackPoll is how often the relay reads the log when nothing woke
	// it; DefaultFallbackPoll when zero.
	FallbackPoll time.Duration
	// BatchSize is how many events are read and published at a time;
	// DefaultBatchSize when zero.
	BatchSize int
	// Logger receives failures; it never receives payloads.
	Logger *zap.Logger

	// Fatal, when set, tells a publish error the relay must not retry:
	// Run returns it.
	Fatal func(error) bool
}

// Relay publishes the global log, in commit-safe order, to a watermill
// publisher. Every committed event is published once, in order, however
// late its transaction commits; a failed publish is retried from the same
// cursor, so a batch that was partly published may repeat (consumers
// de-duplicate by message UUID or cursor). Exactly one relay should
// publish to a shared broker.
type Relay struct {
	cfg RelayConfig

	mu     sync.Mutex
	cursor eventstore.Cursor
}

// NewRelay checks cfg and returns a relay; Run starts it.
func NewRelay(cfg RelayConfig) (*Relay, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("bus: a relay needs the event store it follows")
	case cfg.Registry == nil:
		return nil, errors.New("bus: a relay needs the event registry")
	case cfg.Publisher == nil:
		return nil, errors.New("bus: a relay needs a publisher")
	case cfg.Logger == nil:
		return nil, errors.New("bus: a relay needs a logger")
	case cfg.FallbackPoll < 0 || cfg.BatchSize < 0:
		return nil, errors.New("bus: a relay's fallback poll and batch size must not be negative")
	}
	if cfg.Topic == "" {
		cfg.Topic = Topic
	}
	if cfg.FallbackPoll == 0 {
		cfg.FallbackPoll = DefaultFallbackPoll
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	return &Relay{cfg: cfg, cursor: cfg.After}, nil
}

// Cursor returns the place of the last event published (the start cursor
// before the first): a relay started from it continues with no gap and no
// repeat.
func (r *Relay) Cursor() eventstore.Cursor {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cursor
}

// Run publishes the log until ctx ends, then returns nil. Failures to read
// or publish are logged and retried (100 ms, doubling up to 5 s); they
// never skip an event. A publish error cfg.Fatal recognises ends Run with
// it. A publisher that blocks (the local pub/sub waits
// for its subscribers) holds Run until it returns.
func (r *Relay) Run(ctx context.Context) error {
	var (
		held  = heldBackMin
		retry = retryMin
	)
	for {
		// Take the wake-up channels before reading, so that a commit made
		// while the relay reads wakes it again.
		committed := r.cfg.Store.Committed()
		var notified <-chan struct{}
		if r.cfg.Listener != nil {
			notified = r.cfg.Listener.Notified()
		}

		wait := r.cfg.FallbackPoll
		pending, err := r.drain(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil && r.cfg.Fatal != nil && r.cfg.Fatal(err):
			return err
		case err != nil:
			r.cfg.Logger.Error("relaying the event log failed; retrying", zap.Error(err),
				zap.Stringer("cursor", r.Cursor()), zap.Duration("after", retry))
			wait, retry = retry, min(2*retry, retryMax)
		case pending:
			// Committed events wait for an older transaction to end (or
			// became readable just after the read): read again soon, as
			// nothing will announce it.
			wait, held = held, min(2*held, heldBackMax)
			retry = retryMin
		default:
			held, retry = heldBackMin, retryMin
		}

		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-committed:
		case <-notified:
		case <-t.C:
		}
		t.Stop()
	}
}

// drain publishes every event the log can give after the cursor, then
// tells whether committed events remain after the cursor.
func (r *Relay) drain(ctx context.Context) (pending bool, err error) {
	for {
		after := r.Cursor()
		recs, err := r.cfg.Store.ReadAllSealed(ctx, after, r.cfg.BatchSize)
		if err != nil {
			return false, err
		}
		if len(recs) > 0 {
			msgs := make([]*message.Message, len(recs))
			prev := after
			for i, rec := range recs {
				if msgs[i], err = NewMessage(r.cfg.Registry, rec); err != nil {
					return false, err
				}
				// The event before it in the log: a consumer that has not
				// reached it missed messages, and reads them from the log.
				msgs[i].Metadata.Set(MetadataPrev, prev.String())
				prev = rec.Cursor()
			}
			if err := r.cfg.Publisher.Publish(r.cfg.Topic, msgs...); err != nil {
				return false, err
			}
			r.mu.Lock()
			r.cursor = recs[len(recs)-1].Cursor()
			r.mu.Unlock()
		}
		if len(recs) < r.cfg.BatchSize {
			return r.cfg.Store.Pending(ctx, r.Cursor())
		}
	}
}
