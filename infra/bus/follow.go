package bus

import (
	"context"
	"errors"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.uber.org/zap"

	"github.com/presente-dispatch/presente/infra/eventstore"
)

// FollowConfig configures Follow.
type FollowConfig struct {
	// Store is the log that fills what the bus did not deliver.
	Store *eventstore.Store
	// Registry encodes the events read from the log as messages.
	Registry *eventstore.Registry
	// Messages are the relayed messages, subscribed before Follow is
	// called (NATS.Subscribe): Follow reads the log up to now first, so
	// whatever was published before the subscription is read there.
	Messages <-chan *message.Message
	// After is the consumer's position: it receives the events after it.
	After eventstore.Cursor
	// BatchSize is how many events are read from the log at a time;
	// DefaultBatchSize when zero.
	BatchSize int
	// Idle is how long Follow waits for a message before it reads the
	// log by itself; DefaultFollowIdle when zero. While the bus delivers
	// nothing (a relay or NATS stalled), the consumer so degrades to
	// polling the log every Idle instead of freezing.
	Idle   time.Duration
	Logger *zap.Logger
}

// DefaultFollowIdle is FollowConfig.Idle's default.
const DefaultFollowIdle = 3 * time.Second

// Follow gives a consumer every event after cfg.After, once each and in
// log order, from a bus that may start late, lose or repeat messages (a
// shared broker it subscribed to at some moment, a relay that changed
// leader, a stream that discarded old messages). It reads the log from
// cfg.After up to now, then forwards the bus's messages: one at or before
// the last event given is dropped (acknowledged), and one whose
// MetadataPrev lies after it reveals a gap, which is read from the log
// before the message is forwarded. Messages read from the log are built
// by NewMessage, like the relay's, and need no acknowledgement. The
// channel closes when Messages closes, or when ctx has ended and Messages
// closed (or did not within a few seconds). A failed read is
// logged and retried; nothing is skipped. When no message arrives for
// cfg.Idle, Follow reads the log after the last event given, so a bus
// that stalls delays the consumer by Idle at most, never for ever.
func Follow(ctx context.Context, cfg FollowConfig) (<-chan *message.Message, error) {
	switch {
	case cfg.Store == nil || cfg.Registry == nil || cfg.Messages == nil:
		return nil, errors.New("bus: following the log needs the store, the registry and the messages")
	case cfg.BatchSize < 0 || cfg.Idle < 0:
		return nil, errors.New("bus: following the log needs a positive batch size and idle wait")
	}
	if cfg.Idle == 0 {
		cfg.Idle = DefaultFollowIdle
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	out := make(chan *message.Message)
	f := &follower{cfg: cfg, out: out, last: cfg.After}
	go func() {
		defer close(out)
		f.run(ctx)
		f.release()
	}()
	return out, nil
}

// release waits, a few seconds at most, for Messages to close once ctx
// has ended (a subscription closes its channel after unsubscribing), so
// that whoever waits for Follow's channel to close can close the
// connection under it next.
func (f *follower) release() {
	t := time.NewTimer(releaseWait)
	defer t.Stop()
	for {
		select {
		case m, ok := <-f.cfg.Messages:
			if !ok {
				return
			}
			m.Ack()
		case <-t.C:
			return
		}
	}
}

// releaseWait bounds release.
const releaseWait = 5 * time.Second

type follower struct {
	cfg  FollowConfig
	out  chan *message.Message
	last eventstore.Cursor
}

func (f *follower) run(ctx context.Context) {
	if !f.fill(ctx, nil) {
		return
	}
	idle := time.NewTimer(f.cfg.Idle)
	defer idle.Stop()
	for {
		var m *message.Message
		select {
		case <-ctx.Done():
			return
		case <-idle.C:
			// Nothing from the bus for a while: read what the log holds
			// after the last event given (nothing, when the log is quiet
			// too); messages that follow for the same events are dropped.
			if !f.fill(ctx, nil) {
				return
			}
			idle.Reset(f.cfg.Idle)
			continue
		case msg, ok := <-f.cfg.Messages:
			if !ok {
				return
			}
			m = msg
			idle.Reset(f.cfg.Idle)
		}
		at, err := eventstore.ParseCursor(m.Metadata.Get(MetadataCursor))
		if err != nil {
			// Not a relayed event: nothing to place it by.
			f.cfg.Logger.Error("a message on the bus has no log position; dropped", zap.String("message", m.UUID), zap.Error(err))
			m.Ack()
			continue
		}
		if !before(f.last, at) {
			m.Ack() // given already
			continue
		}
		if prev, err := eventstore.ParseCursor(m.Metadata.Get(MetadataPrev)); err == nil && before(f.last, prev) {
			f.cfg.Logger.Debug("the bus skipped events; reading them from the log",
				zap.Stringer("from", f.last), zap.Stringer("to", at))
			if !f.fill(ctx, &at) {
				return
			}
			if !before(f.last, at) {
				m.Ack()
				continue
			}
		}
		select {
		case <-ctx.Done():
			return
		case f.out <- m:
			f.last = at
		}
	}
}

// fill gives the events of the log after f.last: up to the end of what
// is readable when until is nil, up to (not including) until otherwise,
// waiting for it to become readable. It returns false when ctx ended.
func (f *follower) fill(ctx context.Context, until *eventstore.Cursor) bool {
	retry := retryMin
	for {
		recs, err := f.cfg.Store.ReadAllSealed(ctx, f.last, f.cfg.BatchSize)
		if err != nil {
			if ctx.Err() != nil {
				return false
			}
			f.cfg.Logger.Warn("reading the log to fill the bus's gap failed; retrying", zap.Error(err), zap.Duration("after", retry))
			if !sleep(ctx, retry) {
				return false
			}
			retry = min(2*retry, retryMax)
			continue
		}
		retry = retryMin
		for _, rec := range recs {
			if until != nil && !before(rec.Cursor(), *until) {
				return true
			}
			m, err := NewMessage(f.cfg.Registry, rec)
			if err != nil {
				// The relay could not have published it either: the
				// consumer hears of it as of a message it cannot decode.
				f.cfg.Logger.Error("encode an event read from the log", zap.Error(err))
				m = message.NewMessage(rec.EventID.String(), nil)
			}
			m.Metadata.Set(MetadataCursor, rec.Cursor().String())
			select {
			case <-ctx.Done():
				return false
			case f.out <- m:
				f.last = rec.Cursor()
			}
		}
		if len(recs) < f.cfg.BatchSize {
			if until == nil {
				return true
			}
			// The bus delivered an event this read did not reach yet:
			// the horizon moves on in a moment, unless the log has no
			// such event at all.
			pending, err := f.cfg.Store.Pending(ctx, f.last)
			if err == nil && !pending {
				f.cfg.Logger.Error("the bus carries an event the log does not hold: does another deployment publish to this stream?",
					zap.Stringer("at", *until))
				return true
			}
			if !sleep(ctx, heldBackMax) {
				return false
			}
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// before tells whether a is earlier in the log than b.
func before(a, b eventstore.Cursor) bool {
	return a.TxID < b.TxID || (a.TxID == b.TxID && a.Position < b.Position)
}
