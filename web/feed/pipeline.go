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
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Pool == nil {
		return nil, nil, fmt.Errorf("feed: a pool is required")
	}
	start, err := oldestCheckpoint(ctx, cfg.Pool)
	if err != nil {
		return nil, nil, err
	}
	cfg.Start = start
	f, err := New(cfg)
	if err != nil {
		return nil, nil, err
	}
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
