package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"

	"github.com/presente-dispatch/presente/infra/accounts"
	"github.com/presente-dispatch/presente/infra/bus"
	"github.com/presente-dispatch/presente/infra/dispatch"
	"github.com/presente-dispatch/presente/infra/eventstore"
	"github.com/presente-dispatch/presente/infra/idempotency"
	"github.com/presente-dispatch/presente/infra/keyring"
	"github.com/presente-dispatch/presente/infra/postgres"
	"github.com/presente-dispatch/presente/infra/privacy"
	"github.com/presente-dispatch/presente/infra/sessions"
	"github.com/presente-dispatch/presente/projections"
	"github.com/presente-dispatch/presente/web"
	"github.com/presente-dispatch/presente/web/feed"
	"github.com/presente-dispatch/presente/web/live"
)

// server is a running Presente: its database pool, event store, live
// connections, background jobs and HTTP listener.
type server struct {
	logger   *zap.Logger
	pool     *pgxpool.Pool
	store    *eventstore.Store
	hub      *live.Hub
	http     *http.Server
	listener net.Listener
	// publicURL is where people reach the server.
	publicURL *url.URL
	serveErr  chan error
	// stopJobs ends the background jobs; jobsDone closes when they have.
	stopJobs context.CancelFunc
	jobsDone chan struct{}
	// nats and relay are the shared fan-out with --bus nats (nil with
	// the local bus): the connection, and the relay that publishes while
	// this instance leads.
	nats  *bus.NATS
	relay *bus.NATSRelay
}

// startServer prepares the database (creating and migrating it as needed),
// wires the components and starts answering HTTP on cfg.Addr.
func startServer(ctx context.Context, cfg Config, getenv func(string) string, logger *zap.Logger) (_ *server, err error) {
	// Refuse to run without the key that protects personal data, before
	// touching anything.
	master, err := masterKey(cfg, getenv, logger)
	if err != nil {
		return nil, err
	}
	created, err := postgres.EnsureDatabase(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	if created {
		logger.Info("created the database")
	}
	applied, err := postgres.Migrate(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	if applied > 0 {
		logger.Info("applied migrations", zap.Int32("count", applied))
	}
	pool, err := postgres.Open(ctx, cfg.DatabaseURL, postgres.PoolOptions{})
	if err != nil {
		return nil, err
	}
	s := &server{logger: logger, pool: pool, serveErr: make(chan error, 1), jobsDone: make(chan struct{})}
	defer func() {
		if err != nil {
			s.close()
		}
	}()

	metrics := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		postgres.NewCollector(pool),
	} {
		if err := metrics.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	keys, err := keyring.New(pool, master)
	if err != nil {
		return nil, err
	}
	registry, err := newRegistry()
	if err != nil {
		return nil, err
	}
	s.store, err = eventstore.New(pool, registry, eventstore.Options{Keys: keys, Registerer: metrics})
	if err != nil {
		return nil, err
	}
	accountService, err := accounts.New(pool, s.store, master, accounts.Options{})
	if err != nil {
		return nil, err
	}
	dispatcher := dispatch.New(s.store, dispatch.Options{})
	// Read models follow the log sealed, woken by this process's commits
	// and, through LISTEN/NOTIFY, by other servers'.
	commits := bus.NewListener(pool, logger.Named("listen"))
	if cfg.Bus == "nats" {
		s.nats, err = bus.ConnectNATS(ctx, bus.NATSConfig{URL: cfg.NATSURL, Stream: cfg.NATSStream, Replicas: cfg.NATSReplicas,
			Name: "presente " + cfg.Addr, Logger: logger.Named("nats")})
		if err != nil {
			return nil, err
		}
		s.relay, err = bus.NewNATSRelay(bus.NATSRelayConfig{NATS: s.nats, Store: s.store, Registry: registry, Pool: pool,
			Listener: commits, Logger: logger.Named("relay")})
		if err != nil {
			return nil, err
		}
	}
	models, err := projections.New(pool, s.store.ReadAllSealed, readModels(), projections.Options{
		Registerer: metrics,
		Logger:     logger,
	})
	if err != nil {
		return nil, err
	}
	retention, err := privacy.NewRetention(pool, s.store, privacy.RetentionOptions{
		Period: cfg.RetentionPeriod,
		Logger: logger.Named("retention"),
		Sources: []privacy.Source{
			{Name: "closed requests", Due: dispatcher.ClosedRequestPeople},
			{Name: "lapsed invitations", Due: accountService.LapsedInvitees},
		},
	})
	if err != nil {
		return nil, err
	}

	s.listener, err = net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	publicURL, origins := cfg.PublicURL, cfg.AllowedOrigins
	if publicURL == nil { // development: the loopback address it listens on
		port := s.listener.Addr().(*net.TCPAddr).Port
		publicURL = &url.URL{Scheme: "http", Host: fmt.Sprintf("localhost:%d", port)}
		origins = append(origins, fmt.Sprintf("http://127.0.0.1:%d", port), fmt.Sprintf("http://[::1]:%d", port))
	}
	s.publicURL = publicURL
	s.hub = live.New(live.Options{
		Logger:         logger.Named("live"),
		AllowedOrigins: append([]string{web.Origin(publicURL)}, origins...),
		// A session that has ended closes its connections, and so does a
		// role changed (on any server); a database that cannot answer does
		// not: revocation closes them at once anyway, and an outage must
		// not sign every dispatcher out.
		Revalidate: func(ctx context.Context, id uuid.UUID) (string, error) {
			role, err := accountService.Revalidate(ctx, id)
			if errors.Is(err, sessions.ErrInvalid) {
				return "", err
			}
			return string(role), nil
		},
	})

	if cfg.Demo {
		if err := seedDemo(ctx, accountService, dispatcher, logger); err != nil {
			return nil, fmt.Errorf("create the demo organization: %w", err)
		}
	}
	// Serve only once the read models have caught up with the log, so the
	// first board a dispatcher opens is current: on a large log, requests
	// wait in the listen queue until then.
	if err := models.CatchUp(ctx); err != nil {
		return nil, fmt.Errorf("bring the read models up to date: %w", err)
	}

	// Background work: retention, the read models, and the live views fed
	// by the log through the bus, until shutdown.
	idempotent := idempotency.New(pool, master, idempotency.Options{})
	jobs, stopJobs := context.WithCancel(context.WithoutCancel(ctx))
	s.stopJobs = stopJobs
	listenDone := make(chan struct{})
	go func() {
		defer close(listenDone)
		_ = commits.Run(jobs) // returns nil when jobs end; failures are retried inside
	}()
	go bus.OnCommit(jobs, s.store, commits, models.Wake)
	readModelsDone := models.Start(jobs)
	feedConfig := feed.Config{Hub: s.hub, Pool: pool, Registry: registry, ReadModels: models,
		Assignments: dispatcher.AssignmentsOf, Logger: logger.Named("feed")}
	var (
		views     *feed.Feed
		viewsDone <-chan struct{}
	)
	relayDone := make(chan struct{})
	if s.nats != nil {
		// Several instances: every one competes to relay the log to the
		// stream, and follows the stream for its own live views.
		go func() {
			defer close(relayDone)
			_ = s.relay.Run(jobs) // nil once jobs end; failures are retried inside
		}()
		views, viewsDone, err = feed.StartShared(jobs, feedConfig, s.store, s.nats)
	} else {
		close(relayDone) // the local feed runs its own relay
		views, viewsDone, err = feed.Start(jobs, feedConfig, s.store, commits)
	}
	if err != nil {
		stopJobs()
		<-relayDone
		<-readModelsDone
		<-listenDone
		close(s.jobsDone)
		return nil, err
	}
	retentionDone := retention.Start(jobs)
	go func() {
		defer close(s.jobsDone)
		cleanUp(jobs, logger.Named("cleanup"), accountService.Sessions(), idempotent)
		<-retentionDone
		<-viewsDone
		<-relayDone
		<-readModelsDone
		<-listenDone
	}()

	checks := append(readinessChecks(pool), readModelCheck(models))
	if s.nats != nil {
		checks = append(checks, natsCheck(s.nats, s.relay))
	}
	handler, err := web.NewServer(web.Config{
		Logger:     logger.Named("http"),
		Checks:     checks,
		Gatherer:   metrics,
		Registerer: metrics,
		Accounts:   accountService,
		Forget: func(ctx context.Context, subject uuid.UUID, meta eventstore.Metadata) (bool, error) {
			return privacy.Forget(ctx, pool, s.store, subject, meta)
		},
		Retention:   retention,
		Dispatch:    dispatcher,
		Idempotency: idempotent,
		Hub:         s.hub,
		Feed:        views,
		ReadModels:  pool,
		Verify: func(ctx context.Context) (eventstore.VerifyReport, error) {
			return s.store.Verify(ctx, nil)
		},
		PublicURL:      publicURL,
		AllowedOrigins: origins,
		TrustedProxies: cfg.TrustedProxies,
	})
	if err != nil {
		return nil, err
	}

	s.http = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          zap.NewStdLog(logger.Named("http")),
	}
	go func() { s.serveErr <- s.http.Serve(s.listener) }()
	return s, nil
}

// cleanUpEvery is how often expired sessions and idempotency records are
// deleted: the least kept is the least a subpoena finds.
const cleanUpEvery = 15 * time.Minute

// cleanUp deletes expired sessions and idempotency records until ctx ends.
func cleanUp(ctx context.Context, logger *zap.Logger, sessions *sessions.Store, keys *idempotency.Store) {
	ticker := time.NewTicker(cleanUpEvery)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		if n, err := sessions.DeleteExpired(ctx); err != nil {
			logger.Warn("delete expired sessions", zap.Error(err))
		} else if n > 0 {
			logger.Debug("deleted expired sessions", zap.Int64("count", n))
		}
		if n, err := keys.DeleteExpired(ctx); err != nil {
			logger.Warn("delete expired idempotency records", zap.Error(err))
		} else if n > 0 {
			logger.Debug("deleted expired idempotency records", zap.Int64("count", n))
		}
	}
}

// readinessChecks decide /readyz: the database answers, its schema is the
// one this build expects, and the log's transaction ids are sane.
func readinessChecks(pool *pgxpool.Pool) []web.Check {
	return []web.Check{
		{Name: "database", Run: func(ctx context.Context) (any, error) {
			if err := pool.Ping(ctx); err != nil {
				return nil, errors.New("the database does not answer")
			}
			return nil, nil
		}},
		{Name: "migrations", Run: func(ctx context.Context) (any, error) {
			st, err := postgres.MigrationStatus(ctx, pool)
			if err != nil {
				return nil, errors.New("cannot read the schema version")
			}
			if !st.UpToDate() {
				return st, fmt.Errorf("the schema is at version %d, this build needs %d: run presente migrate", st.Current, st.Latest)
			}
			return st, nil
		}},
		{Name: "event_log", Run: func(ctx context.Context) (any, error) {
			// /readyz is public: name the problem, never the database's words.
			err := eventstore.CheckTransactionIDs(ctx, pool)
			if err != nil && !errors.Is(err, eventstore.ErrTransactionIDsFromTheFuture) {
				return nil, errors.New("cannot read the event log")
			}
			return nil, err
		}},
	}
}

// natsCheck reports on /readyz whether the instance reaches NATS now, and
// whether it relays the log. It never fails the probe: without NATS the
// live boards stand still until it is back, but commands and reads work,
// and a NATS outage takes every instance's connection at once — failing
// /readyz would take the whole API out of the proxy's rotation with it.
func natsCheck(n *bus.NATS, relay *bus.NATSRelay) web.Check {
	return web.Check{Name: "nats", Run: func(context.Context) (any, error) {
		return map[string]any{"stream": n.Stream(), "connected": n.Connected(), "relaying": relay.Leading()}, nil
	}}
}

// Addr is the address the server listens on.
func (s *server) Addr() string { return s.listener.Addr().String() }

// shutdown stops accepting requests, lets those in flight finish within
// timeout, closes the live connections, stops the background jobs, then
// closes the event store and the database pool.
func (s *server) shutdown(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := s.http.Shutdown(ctx)
	if herr := s.hub.Shutdown(ctx); err == nil && herr != nil {
		err = fmt.Errorf("close live connections: %w", herr)
	}
	s.close()
	if err != nil {
		return fmt.Errorf("shut down within %s: %w", timeout, err)
	}
	return nil
}

// close releases what startServer acquired, in reverse order.
func (s *server) close() {
	if s.stopJobs != nil {
		s.stopJobs()
		<-s.jobsDone
	}
	if s.listener != nil && s.http == nil {
		s.listener.Close()
	}
	if s.nats != nil {
		s.nats.Close()
	}
	if s.store != nil {
		s.store.Close()
	}
	s.pool.Close()
}

func runServe(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	cfg, err := parseConfig("serve", args, getenv, stderr, parseOptions{server: true})
	if err != nil {
		return configError(err, stderr)
	}
	logger := newLogger(cfg, stderr)
	defer logger.Sync() //nolint:errcheck // nothing to do if stderr is gone

	s, err := startServer(ctx, cfg, getenv, logger)
	if err != nil {
		logger.Error("cannot start", zap.Error(err))
		return &failure{code: exitFailure}
	}
	logger.Info("serving", zap.String("url", "http://"+s.Addr()), zap.String("public_url", s.publicURL.String()), zap.String("env", cfg.Env))

	select {
	case <-ctx.Done():
		logger.Info("shutting down: letting requests in flight finish", zap.Duration("timeout", cfg.ShutdownTimeout))
	case err := <-s.serveErr:
		logger.Error("HTTP server stopped", zap.Error(err))
		_ = s.shutdown(cfg.ShutdownTimeout)
		return &failure{code: exitFailure}
	}
	if err := s.shutdown(cfg.ShutdownTimeout); err != nil {
		logger.Error("unclean shutdown", zap.Error(err))
		return &failure{code: exitFailure}
	}
	logger.Info("stopped")
	return nil
}

// configError reports a configuration problem. The flag package has already
// printed its own parse errors; validation errors are printed here.
func configError(err error, stderr io.Writer) error {
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	var parse *flagParseError
	if !errors.As(err, &parse) {
		fmt.Fprintln(stderr, err)
	}
	return &failure{code: exitUsage}
}
