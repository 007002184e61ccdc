package feed

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/presente-dispatch/presente/infra/bus"
	"github.com/presente-dispatch/presente/infra/eventstore"
)

// Start wires the live views of one server: a relay publishing the log,
// from where the read models stand now, on the in-process pub/sub, and a
// feed consuming it. The relay wakes at this process's commits and, with
// listener, at other processes' (nil: their commits wait for its slow
// poll). It runs until ctx ends; done closes when it has stopped.
func Start(ctx context.Context, cfg Config, store *eventstore.Store, listener *bus.Listener) (*Feed, <-chan struct{}, error) {
	f, start, err := newAtReadModels(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	cfg = f.cfg
	// Watermill reports routine steps at Info: only its warnings matter.
	pubsub := bus.NewLocal(bus.NewZapLogger(cfg.Logger.Named("bus").WithOptions(zap.IncreaseLevel(zap.WarnLevel))))
	msgs, err := pubsub.Subscribe(ctx, bus.Topic)
	if err != nil {
		return nil, nil, fmt.Errorf("subscribe the live views to the log: %w", err)
	}
	relay, err := bus.NewRelay(bus.RelayConfig{Store: store, Registry: cfg.Registry, Publisher: pubsub, After: start,
		Listener: listener, Logger: cfg.Logger.Named("relay")})
	if err != nil {
		return nil, nil, err
	}
	done := make(chan struct{})
	relayDone := make(chan struct{})
	go func() {
		defer close(relayDone)
		_ = relay.Run(ctx) // nil once ctx ends; failures are retried inside
	}()
	go func() {
		defer close(done)
		f.Consume(ctx, msgs)
		_ = pubsub.Close() // releases a Publish waiting for the feed
		<-relayDone
	}()
	return f, done, nil
}

// newAtReadModels returns a feed whose deltas start where the read models
// stand now.
func newAtReadModels(ctx context.Context, cfg Config) (*Feed, eventstore.Cursor, error) {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Pool == nil {
		return nil, eventstore.Cursor{}, fmt.Errorf("feed: a pool is required")
	}
	start, err := oldestCheckpoint(ctx, cfg.Pool)
	if err != nil {
		return nil, eventstore.Cursor{}, err
	}
	cfg.Start = start
	f, err := New(cfg)
	return f, start, err
}

// StartShared wires the live views of one of several instances sharing a
// NATS JetStream stream: a feed following the log, from where the read
// models stand now, through the stream's messages (its own ordered
// consumer) and the log itself for whatever they miss (bus.Follow). The
// relay publishing to the stream is not started here: every instance runs
// a bus.NATSRelay, and the one that leads publishes. It runs until ctx
// ends; done closes when it has stopped.
func StartShared(ctx context.Context, cfg Config, store *eventstore.Store, shared *bus.NATS) (*Feed, <-chan struct{}, error) {
	f, start, err := newAtReadModels(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	// Subscribe first: Follow then reads the log up to now, which covers
	// whatever was published before the subscription.
	sub, err := shared.Subscribe(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("subscribe the live views to the log: %w", err)
	}
	msgs, err := bus.Follow(ctx, bus.FollowConfig{Store: store, Registry: f.cfg.Registry, Messages: sub, After: start,
		Logger: f.cfg.Logger.Named("follow")})
	if err != nil {
		return nil, nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.Consume(ctx, msgs)
		// Done once the subscription has ended, so the NATS connection
		// can close after.
		for m := range msgs {
			m.Ack()
		}
	}()
	return f, done, nil
}
