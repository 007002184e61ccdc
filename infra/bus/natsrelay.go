package bus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/presente-dispatch/presente/infra/eventstore"
)

// NATSRelayConfig configures a NATSRelay.
type NATSRelayConfig struct {
	NATS     *NATS
	Store    *eventstore.Store
	Registry *eventstore.Registry
	// Pool elects the leader (its connection settings) and finds the
	// log's head when the stream is empty.
	Pool *pgxpool.Pool
	// Listener wakes the relay at other instances' commits.
	Listener *Listener
	// Retry and Check are the leadership's (DefaultLeaderRetry and
	// DefaultLeaderCheck when zero).
	Retry, Check time.Duration
	// FallbackPoll is the relay's (DefaultFallbackPoll when zero).
	FallbackPoll time.Duration
	// GiveUp is how long a leader's publishes (or its reads of the
	// stream) may fail before it gives the lead up, and how long it then
	// leaves the lead to others; DefaultRelayGiveUp when zero.
	GiveUp time.Duration
	Logger *zap.Logger
}

// DefaultRelayGiveUp is NATSRelayConfig.GiveUp's default: longer than a
// NATS server's restart, shorter than anyone waits for a board.
const DefaultRelayGiveUp = 15 * time.Second

// NATSRelay relays the log to a JetStream stream from whichever instance
// leads: every instance runs one, exactly one publishes at a time. A new
// leader resumes after the last message in the stream (the position is in
// its metadata), so a relay that dies between publishing and anything
// else loses nothing and repeats nothing: a message it published twice in
// an overlap of two leaders, or a batch retried after a failed publish,
// carries the same Nats-Msg-Id and JetStream drops it. An empty stream (a
// first start, a stream deleted by hand) is filled from the log's head:
// consumers read the older events from the log (Follow). It publishes
// through NATS.FencedPublisher, so a deposed relay that fell behind is
// refused rather than append stale copies.
//
// A leader that reaches PostgreSQL but not NATS gives the lead up once
// its publishes have failed for GiveUp, and competes again only while
// connected to NATS and GiveUp after it gave up.
type NATSRelay struct {
	cfg  NATSRelayConfig
	lead *Leadership
	// heldOff is when this relay may compete again (Unix ns) after it
	// gave the lead up.
	heldOff atomic.Int64
}

// NewNATSRelay checks cfg and returns a relay; Run starts it.
func NewNATSRelay(cfg NATSRelayConfig) (*NATSRelay, error) {
	if cfg.NATS == nil || cfg.Store == nil || cfg.Registry == nil || cfg.Pool == nil || cfg.Logger == nil {
		return nil, errors.New("bus: a NATS relay needs NATS, the store, the registry, a pool and a logger")
	}
	if cfg.GiveUp < 0 {
		return nil, errors.New("bus: a NATS relay's give-up delay must not be negative")
	}
	if cfg.GiveUp == 0 {
		cfg.GiveUp = DefaultRelayGiveUp
	}
	r := &NATSRelay{cfg: cfg}
	lead, err := NewLeadership(LeaderConfig{Pool: cfg.Pool, Name: "relay:" + cfg.NATS.Stream(),
		Retry: cfg.Retry, Check: cfg.Check, Ready: r.ready, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	r.lead = lead
	return r, nil
}

// Leading tells whether this instance relays now.
func (r *NATSRelay) Leading() bool { return r.lead.Leading() }

// LeadershipChanged returns a channel closed at the next change of
// Leading.
func (r *NATSRelay) LeadershipChanged() <-chan struct{} { return r.lead.Changed() }

// Run competes for the leadership and relays while it leads, until ctx
// ends; it returns nil.
func (r *NATSRelay) Run(ctx context.Context) error {
	return r.lead.Run(ctx, r.relay)
}

// ready tells whether this relay may compete for the lead: connected to
// NATS, and not just after giving the lead up.
func (r *NATSRelay) ready() bool {
	return r.cfg.NATS.Connected() && time.Now().UnixNano() >= r.heldOff.Load()
}

// giveUp leaves the lead to others for GiveUp.
func (r *NATSRelay) giveUp(why error) {
	r.cfg.Logger.Warn("NATS has failed this relay for too long; giving the lead up", zap.Error(why), zap.Duration("for", r.cfg.GiveUp))
	r.heldOff.Store(time.Now().Add(r.cfg.GiveUp).UnixNano())
}

func (r *NATSRelay) relay(ctx context.Context) {
	failing := &failures{giveUp: r.cfg.GiveUp}
	retry := retryMin
	var (
		after eventstore.Cursor
		seq   uint64
	)
	for {
		var err error
		if after, seq, err = r.resumePoint(ctx); err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		if failing.failed(time.Now()) {
			r.giveUp(err)
			return
		}
		r.cfg.Logger.Error("find where to resume relaying; retrying", zap.Error(err), zap.Duration("after", retry))
		if !sleep(ctx, retry) {
			return
		}
		retry = min(2*retry, retryMax)
	}
	relay, err := NewRelay(RelayConfig{Store: r.cfg.Store, Registry: r.cfg.Registry,
		// The stream takes a message only after the one this relay saw
		// last, so a relay that fell behind another cannot append stale
		// copies.
		Publisher: &watchedPublisher{Publisher: r.cfg.NATS.FencedPublisher(after, seq), failing: failing},
		Topic:     r.cfg.NATS.Topic(), After: after,
		Fatal:    func(err error) bool { return StreamMovedOn(err) || failing.over(time.Now()) },
		Listener: r.cfg.Listener, FallbackPoll: r.cfg.FallbackPoll, Logger: r.cfg.Logger})
	if err != nil {
		r.cfg.Logger.Error("start the relay", zap.Error(err))
		return
	}
	r.cfg.Logger.Info("relaying the log to JetStream", zap.String("stream", r.cfg.NATS.Stream()), zap.Stringer("after", after))
	if err := relay.Run(ctx); err != nil && !StreamMovedOn(err) {
		r.giveUp(err)
	} else if err != nil {
		// Another relay published after this one's last message, or the
		// stream was purged: give the lead up; whoever leads next reads
		// where the stream stands.
		r.cfg.Logger.Warn("the stream moved on without this relay; giving the lead up", zap.Error(err))
	}
}

// resumePoint is the position and stream sequence of the last message in
// the stream, or the log's commit-safe head and the stream's last
// sequence when the stream is empty.
func (r *NATSRelay) resumePoint(ctx context.Context) (eventstore.Cursor, uint64, error) {
	last, seq, ok, err := r.cfg.NATS.lastMessage(ctx)
	if err != nil || ok {
		return last, seq, err
	}
	head, err := Head(ctx, r.cfg.Pool)
	return head, seq, err
}

// Head returns the position of the last event the commit-safe cursor can
// read now (eventstore.Store.ReadAllSealed's horizon): no event at or
// before it can commit later. The zero cursor for an empty log.
func Head(ctx context.Context, pool *pgxpool.Pool) (eventstore.Cursor, error) {
	var tx string
	var pos int64
	err := pool.QueryRow(ctx, `SELECT tx_id::text, position FROM events
WHERE tx_id < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY tx_id DESC, position DESC LIMIT 1`).Scan(&tx, &pos)
	if errors.Is(err, pgx.ErrNoRows) {
		return eventstore.Cursor{}, nil
	}
	if err != nil {
		return eventstore.Cursor{}, fmt.Errorf("read the head of the log: %w", err)
	}
	id, err := strconv.ParseUint(tx, 10, 64)
	if err != nil {
		return eventstore.Cursor{}, fmt.Errorf("read the head of the log: transaction id %q: %w", tx, err)
	}
	return eventstore.Cursor{TxID: id, Position: pos}, nil
}

// failures tracks how long publishing has failed without a success.
type failures struct {
	giveUp time.Duration
	mu     sync.Mutex
	since  time.Time // zero while publishing works
}

// failed records a failure at now and tells whether failures have lasted
// giveUp.
func (f *failures) failed(now time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.since.IsZero() {
		f.since = now
	}
	return now.Sub(f.since) >= f.giveUp
}

// over tells whether failures have lasted giveUp by now.
func (f *failures) over(now time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.since.IsZero() && now.Sub(f.since) >= f.giveUp
}

func (f *failures) succeeded() {
	f.mu.Lock()
	f.since = time.Time{}
	f.mu.Unlock()
}

// watchedPublisher records its publisher's failures and successes.
type watchedPublisher struct {
	message.Publisher
	failing *failures
}

func (p *watchedPublisher) Publish(topic string, msgs ...*message.Message) error {
	if err := p.Publisher.Publish(topic, msgs...); err != nil {
		p.failing.failed(time.Now())
		return err
	}
	p.failing.succeeded()
	return nil
}
