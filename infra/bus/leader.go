package bus

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"
)

// LeaderApplicationName names the leadership session in
// pg_stat_activity, so an operator can tell it from the pool's (and, to
// hand leadership over by hand, terminate it).
const LeaderApplicationName = "presente_bus_leader"

// lockClass is the first key of the two-key advisory lock that elects
// the relay leader ("bus1"), so it never meets another subsystem's lock.
const lockClass int32 = 0x62757331

const (
	// DefaultLeaderRetry is how often a follower tries to take the lock.
	DefaultLeaderRetry = time.Second
	// DefaultLeaderCheck is how often the leader checks that its
	// connection, and so its lock, is still alive.
	DefaultLeaderCheck = time.Second
)

// LeaderConfig configures a Leadership.
type LeaderConfig struct {
	// Pool is the pool whose connection settings the leadership session
	// copies; the session is a connection of its own, outside the pool.
	Pool *pgxpool.Pool
	// Name names what is led: instances that pass the same name compete
	// for the same lock (one relay per stream: the stream's name).
	Name string
	// Retry is how often a follower tries to take the lock;
	// DefaultLeaderRetry when zero.
	Retry time.Duration
	// Check is how often the leader pings its session;
	// DefaultLeaderCheck when zero.
	Check time.Duration
	// Ready, when set, tells whether this process can lead now: a
	// follower tries for the lock only while it tells true (a relay cut
	// off from NATS leaves the lead to others).
	Ready func() bool
	// Logger receives the changes of leadership and the failures.
	Logger *zap.Logger
}

// Leadership elects one leader among any number of processes through a
// PostgreSQL session-level advisory lock (pg_try_advisory_lock) held on a
// dedicated connection. The lock lives as long as the session: when the
// leader's process dies, or its connection breaks, PostgreSQL releases it
// and the next follower to try (each tries every Retry) takes it. A leader
// pings its session every Check and stops leading as soon as a ping
// fails, so an instance cut off from the database stops within about
// Check plus the ping's timeout; meanwhile the new leader may already
// lead, which is why what it leads must tolerate a short overlap (the
// relay does: JetStream drops a message id it has seen, and consumers
// skip positions they have passed).
type Leadership struct {
	cfg    LeaderConfig
	config *pgx.ConnConfig
	key    int32

	leading atomic.Bool
	// silent stops the leader's pings (tests: a leader whose machine
	// vanished).
	silent  atomic.Bool
	mu      sync.Mutex
	changed chan struct{}
}

// NewLeadership checks cfg and returns a leadership; Run takes part in
// the election.
func NewLeadership(cfg LeaderConfig) (*Leadership, error) {
	switch {
	case cfg.Pool == nil:
		return nil, errors.New("bus: a leadership needs a pool to copy its connection settings from")
	case cfg.Name == "":
		return nil, errors.New("bus: a leadership needs the name of what is led")
	case cfg.Logger == nil:
		return nil, errors.New("bus: a leadership needs a logger")
	case cfg.Retry < 0 || cfg.Check < 0:
		return nil, errors.New("bus: a leadership's retry and check intervals must not be negative")
	}
	if cfg.Retry == 0 {
		cfg.Retry = DefaultLeaderRetry
	}
	if cfg.Check == 0 {
		cfg.Check = DefaultLeaderCheck
	}
	conn := cfg.Pool.Config().ConnConfig.Copy()
	conn.RuntimeParams["application_name"] = LeaderApplicationName
	// A leader whose machine vanishes without closing its connection (a
	// power cut, a partition) would hold the lock until the server's TCP
	// gives up, hours later. The session uses itself every Retry (while
	// it waits for the lock) or Check (while it leads, by a ping), so
	// PostgreSQL ends it once it stays idle a few of those (PostgreSQL
	// 14+), and TCP keepalives probe the peer's socket within seconds.
	conn.RuntimeParams["idle_session_timeout"] = strconv.FormatInt(leaderIdleTimeout(cfg.Retry, cfg.Check).Milliseconds(), 10)
	conn.RuntimeParams["tcp_keepalives_idle"] = "5"
	conn.RuntimeParams["tcp_keepalives_interval"] = "2"
	conn.RuntimeParams["tcp_keepalives_count"] = "3"
	h := fnv.New32a()
	h.Write([]byte(cfg.Name))
	return &Leadership{cfg: cfg, config: conn, key: int32(h.Sum32()), changed: make(chan struct{})}, nil
}

// leaderIdleTimeout is how long the leadership session may stay idle
// before PostgreSQL ends it (and frees the lock): five of its longest
// interval between uses, and a second at least.
func leaderIdleTimeout(retry, check time.Duration) time.Duration {
	return max(5*max(retry, check), time.Second)
}

// Leading tells whether this process leads now.
func (l *Leadership) Leading() bool { return l.leading.Load() }

// Changed returns a channel closed at the next change of Leading.
func (l *Leadership) Changed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.changed
}

func (l *Leadership) set(leading bool) {
	l.leading.Store(leading)
	l.mu.Lock()
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
}

// Run takes part in the election until ctx ends, then returns nil. Each
// time this process wins, lead runs with a context that ends when the
// leadership is lost (or ctx ends); Run waits for lead to return before
// it competes again, so two leads of one process never overlap. A lead
// that returns by itself gives the leadership up, and Run competes again.
func (l *Leadership) Run(ctx context.Context, lead func(context.Context)) error {
	pause := reconnectMin
	for {
		won, err := l.term(ctx, lead)
		if ctx.Err() != nil {
			return nil
		}
		wait := l.cfg.Retry
		if err != nil {
			if won {
				pause = reconnectMin
			}
			l.cfg.Logger.Warn("the relay leadership's session failed; competing again", zap.Error(err), zap.Duration("after", pause))
			wait, pause = max(pause, wait), min(2*pause, reconnectMax)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// term connects, tries for the lock every Retry until it has it, leads
// while the session lives, and returns when the session fails, the lead
// returns or ctx ends. won tells whether it led.
func (l *Leadership) term(ctx context.Context, lead func(context.Context)) (won bool, err error) {
	conn, err := pgx.ConnectConfig(ctx, l.config)
	if err != nil {
		return false, fmt.Errorf("connect: %w", err)
	}
	// Closing the session releases the lock, whether or not it is held.
	defer conn.Close(context.WithoutCancel(ctx)) //nolint:errcheck // the connection is being discarded
	for {
		var locked bool
		if l.cfg.Ready == nil || l.cfg.Ready() {
			if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, $2)`, lockClass, l.key).Scan(&locked); err != nil {
				return false, fmt.Errorf("try the leader lock: %w", err)
			}
		} else if err := conn.Ping(ctx); err != nil { // the session stays in use
			return false, fmt.Errorf("ping the leadership session: %w", err)
		}
		if locked {
			break
		}
		t := time.NewTimer(l.cfg.Retry)
		select {
		case <-ctx.Done():
			t.Stop()
			return false, ctx.Err()
		case <-t.C:
		}
	}

	l.cfg.Logger.Info("leading the relay", zap.String("name", l.cfg.Name))
	l.set(true)
	leadCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		lead(leadCtx)
	}()
	defer func() {
		stop()
		<-done
		l.set(false)
		l.cfg.Logger.Info("no longer leading the relay", zap.String("name", l.cfg.Name), zap.NamedError("why", err))
	}()
	tick := time.NewTicker(l.cfg.Check)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return true, ctx.Err()
		case <-done:
			return true, nil
		case <-tick.C:
		}
		if l.silent.Load() {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, l.cfg.Check)
		err := conn.Ping(pctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			return true, fmt.Errorf("the leader's session does not answer: %w", err)
		}
	}
}
