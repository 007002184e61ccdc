package bus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"
)

// Channel is the PostgreSQL notification channel on which every
// transaction that appends events notifies at commit, with an empty
// payload (migration 007_event_notify.sql).
const Channel = "presente_events"

// ListenerApplicationName names the listening session in
// pg_stat_activity, so an operator can tell it from the pool's.
const ListenerApplicationName = "presente_bus_listener"

const (
	// listenCheck is how long the listener waits for a notification
	// before it checks that its connection still answers: a peer that
	// vanished without closing the connection would otherwise leave it
	// deaf until TCP keepalives notice.
	listenCheck = 30 * time.Second
	// reconnectMin and reconnectMax bound the pause between attempts to
	// reconnect, doubling after each failure.
	reconnectMin = 100 * time.Millisecond
	reconnectMax = 5 * time.Second
)

// Listener wakes followers of the log when any process commits events: it
// holds a dedicated connection that LISTENs on Channel and reconnects by
// itself when the connection fails. It is safe for concurrent use.
type Listener struct {
	config *pgx.ConnConfig
	logger *zap.Logger

	mu       sync.Mutex
	notified chan struct{}
}

// NewListener returns a listener that connects like pool (same server,
// database, role and settings) on a connection of its own. Run starts it.
func NewListener(pool *pgxpool.Pool, logger *zap.Logger) *Listener {
	cfg := pool.Config().ConnConfig.Copy()
	cfg.RuntimeParams["application_name"] = ListenerApplicationName
	return &Listener{config: cfg, logger: logger, notified: make(chan struct{})}
}

// Notified returns a channel closed at the next notification, or when the
// listener has (re)connected and so may have missed some. Any number of
// followers can wait on it; take it before reading the log, then wait.
func (l *Listener) Notified() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.notified
}

func (l *Listener) wake() {
	l.mu.Lock()
	close(l.notified)
	l.notified = make(chan struct{})
	l.mu.Unlock()
}

// Run listens until ctx ends, then returns nil. A failed or lost
// connection is logged and replaced after a pause (100 ms, doubling up to
// 5 s); meanwhile followers fall back on their slow poll.
func (l *Listener) Run(ctx context.Context) error {
	pause := reconnectMin
	for {
		listened, err := l.listen(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if listened {
			pause = reconnectMin
		}
		l.logger.Warn("listening for commits failed; reconnecting", zap.Error(err), zap.Duration("after", pause))
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		pause = min(2*pause, reconnectMax)
	}
}

// listen connects, listens and wakes followers at every notification until
// the connection fails. listened tells whether LISTEN took effect.
func (l *Listener) listen(ctx context.Context) (listened bool, err error) {
	conn, err := pgx.ConnectConfig(ctx, l.config)
	if err != nil {
		return false, fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx)) //nolint:errcheck // the connection is being discarded
	if _, err := conn.Exec(ctx, "LISTEN "+Channel); err != nil {
		return false, fmt.Errorf("listen on %s: %w", Channel, err)
	}
	// Commits made while no connection listened went unannounced.
	l.wake()
	for {
		wait, cancel := context.WithTimeout(ctx, listenCheck)
		_, err := conn.WaitForNotification(wait)
		quiet := errors.Is(wait.Err(), context.DeadlineExceeded)
		cancel()
		switch {
		case err == nil:
			// Notifications that arrived meanwhile are read by the next
			// wait at once; each only says "read the log again".
			l.wake()
		case ctx.Err() != nil:
			return true, ctx.Err()
		case quiet:
			// No commit for a while: a timeout leaves the connection
			// usable, so make sure it is still alive.
			if err := l.check(ctx, conn); err != nil {
				return true, err
			}
		default:
			return true, fmt.Errorf("wait for notifications: %w", err)
		}
	}
}

// check tells whether conn still answers.
func (l *Listener) check(ctx context.Context, conn *pgx.Conn) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := conn.Ping(ctx); err != nil {
		return fmt.Errorf("the listening connection does not answer: %w", err)
	}
	return nil
}
