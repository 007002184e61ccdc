package main

import (
	"context"
	"slices"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/presente-dispatch/presente/domain"
	"github.com/presente-dispatch/presente/domain/account"
	"github.com/presente-dispatch/presente/domain/invitation"
	"github.com/presente-dispatch/presente/domain/organization"
	"github.com/presente-dispatch/presente/domain/privacy"
	"github.com/presente-dispatch/presente/domain/request"
	"github.com/presente-dispatch/presente/domain/retention"
	"github.com/presente-dispatch/presente/domain/shift"
	"github.com/presente-dispatch/presente/domain/training"
	"github.com/presente-dispatch/presente/domain/volunteer"
	"github.com/presente-dispatch/presente/infra/eventstore"
	"github.com/presente-dispatch/presente/infra/keyring"
	"github.com/presente-dispatch/presente/infra/postgres"
)

// newRegistry registers every event type Presente stores.
func newRegistry() (*eventstore.Registry, error) {
	return registryOf(slices.Concat(privacy.Events, account.Events, invitation.Events, retention.Events, volunteer.Events, shift.Events, request.Events, training.Events, organization.Events)...)
}

func registryOf(events ...domain.Event) (*eventstore.Registry, error) {
	r := eventstore.NewRegistry()
	for _, e := range events {
		if err := r.Register(e); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// openStore opens a small pool on the configured database and an event
// store over it, for the one-shot commands. master may be nil when the
// registry declares no personal data. close releases both.
func openStore(ctx context.Context, cfg Config, registry *eventstore.Registry, master *keyring.MasterKey) (*eventstore.Store, *pgxpool.Pool, func(), error) {
	pool, err := postgres.Open(ctx, cfg.DatabaseURL, postgres.PoolOptions{MaxConns: 4})
	if err != nil {
		return nil, nil, nil, err
	}
	var opts eventstore.Options
	if master != nil {
		keys, err := keyring.New(pool, *master)
		if err != nil {
			pool.Close()
			return nil, nil, nil, err
		}
		opts.Keys = keys
	}
	store, err := eventstore.New(pool, registry, opts)
	if err != nil {
		pool.Close()
		return nil, nil, nil, err
	}
	return store, pool, func() { store.Close(); pool.Close() }, nil
}
