package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"

	"github.com/presente-dispatch/presente/infra/eventstore"
	"github.com/presente-dispatch/presente/infra/postgres"
	"github.com/presente-dispatch/presente/web"
)

// server is a running Presente: its database pool and its HTTP listener.
type server struct {
	logger   *zap.Logger
	pool     *pgxpool.Pool
	http     *http.Server
	listener net.Listener
	serveErr chan error
}

// startServer prepares the database (creating and migrating it as needed),
// wires the components and starts answering HTTP on cfg.Addr.
func startServer(ctx context.Context, cfg Config, getenv func(string) string, logger *zap.Logger) (*server, error) {
	// Refuse to run without the key that protects personal data, before
	// touching anything.
	if _, err := masterKey(cfg, getenv, logger); err != nil {
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

	metrics := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		postgres.NewCollector(pool),
	} {
		if err := metrics.Register(c); err != nil {
			pool.Close()
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}

	handler, err := web.NewServer(web.Config{
		Logger:     logger.Named("http"),
		Checks:     readinessChecks(pool),
		Gatherer:   metrics,
		Registerer: metrics,
	})
	if err != nil {
		pool.Close()
		return nil, err
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	s := &server{
		logger:   logger,
		pool:     pool,
		listener: ln,
		serveErr: make(chan error, 1),
		http: &http.Server{
			Handler:           handler,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          zap.NewStdLog(logger.Named("http")),
		},
	}
	go func() { s.serveErr <- s.http.Serve(ln) }()
	return s, nil
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

// Addr is the address the server listens on.
func (s *server) Addr() string { return s.listener.Addr().String() }

// shutdown stops accepting requests, lets those in flight finish within
// timeout, then closes the database pool.
func (s *server) shutdown(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := s.http.Shutdown(ctx)
	s.pool.Close()
	if err != nil {
		return fmt.Errorf("shut down HTTP within %s: %w", timeout, err)
	}
	return nil
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
	logger.Info("serving", zap.String("url", "http://"+s.Addr()), zap.String("env", cfg.Env))

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
