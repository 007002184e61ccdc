package bus_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap/zaptest"

	"github.com/presente-dispatch/presente/domain"
	"github.com/presente-dispatch/presente/infra/bus"
	"github.com/presente-dispatch/presente/infra/eventstore"
	"github.com/presente-dispatch/presente/infra/keyring"
	"github.com/presente-dispatch/presente/infra/postgres/pgtest"
)

// Test events. personReported declares personal data, as the registry
// tests of infra/eventstore do.
type noteAdded struct {
	Text string `json:"text"`
}

func (noteAdded) EventType() string { return "NoteAdded" }

type personReported struct {
	PersonID uuid.UUID `json:"person_id"`
	Name     string    `json:"name" pii:"person_id"`
	Phone    string    `json:"phone" pii:"person_id"`
	Region   string    `json:"region"`
}

func (personReported) EventType() string { return "PersonReported" }

var testMeta = eventstore.Metadata{Actor: "user:7f1c1a52-3f4e-4f7a-9a51-0c6c4d1f2b10", Reason: "testing"}

// world is one test's database with an event store on it.
type world struct {
	url      string
	pool     *pgxpool.Pool
	keys     *keyring.Keyring
	registry *eventstore.Registry
	store    *eventstore.Store
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{url: pgtest.NewDatabase(t)}
	w.pool = pgtest.NewPoolFor(t, w.url)
	master, err := keyring.ParseMasterKey(keyring.GenerateMasterKey())
	if err != nil {
		t.Fatal(err)
	}
	if w.keys, err = keyring.New(w.pool, master); err != nil {
		t.Fatal(err)
	}
	w.registry = eventstore.NewRegistry()
	for _, e := range []domain.Event{noteAdded{}, personReported{}} {
		if err := w.registry.Register(e); err != nil {
			t.Fatal(err)
		}
	}
	w.store = w.newStore(t)
	return w
}

// newStore opens another store on the world's database, on a pool of its
// own: to the relay it is another process, whose commits it hears of only
// through the database.
func (w *world) newStore(t *testing.T) *eventstore.Store {
	t.Helper()
	pool := w.pool
	if w.store != nil {
		pool = pgtest.NewPoolFor(t, w.url)
	}
	s, err := eventstore.New(pool, w.registry, eventstore.Options{Keys: w.keys})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func (w *world) note(t *testing.T, s *eventstore.Store, text string) eventstore.Recorded {
	t.Helper()
	recs, err := s.Append(context.Background(), eventstore.Stream{Type: "note", ID: uuid.New()}, 0, testMeta, noteAdded{Text: text})
	if err != nil {
		t.Fatal(err)
	}
	return recs[0]
}

// readable waits until the log gives rec to its readers, failing the test
// after 15 s. Any transaction anywhere on the server holds events back
// from every reader while it runs (pg_snapshot_xmin is cluster-wide),
// parallel tests' creating their databases included; that delay is not
// the relay's, so tests time the relay from here.
func (w *world) readable(t *testing.T, rec eventstore.Recorded) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		recs, err := w.store.ReadAllSealed(context.Background(), eventstore.Cursor{}, 10000)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if r.EventID == rec.EventID {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("event %s was not readable within 15s", rec.EventID)
		}
		time.Sleep(time.Millisecond)
	}
}

// run runs fn in a goroutine until the returned stop is called or the test
// ends, and fails the test if fn returns an error.
func run(t *testing.T, fn func(context.Context) error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := fn(ctx); err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

// relayed is a local pub/sub with one subscriber that records everything
// it receives, decoded.
type relayed struct {
	pubsub   message.Publisher
	registry *eventstore.Registry

	mu   sync.Mutex
	msgs []*message.Message
	recs []eventstore.Recorded
	errs []error
}

func newRelayed(t *testing.T, w *world) *relayed {
	t.Helper()
	ps := bus.NewLocal(bus.NewZapLogger(zaptest.NewLogger(t)))
	t.Cleanup(func() { _ = ps.Close() }) // after the relays stop: cleanups run last first
	ch, err := ps.Subscribe(context.Background(), bus.Topic)
	if err != nil {
		t.Fatal(err)
	}
	r := &relayed{pubsub: ps, registry: w.registry}
	go func() {
		for msg := range ch {
			rec, err := bus.Decode(w.registry, msg)
			r.mu.Lock()
			r.msgs = append(r.msgs, msg)
			if err != nil {
				r.errs = append(r.errs, err)
			} else {
				r.recs = append(r.recs, rec)
			}
			r.mu.Unlock()
			msg.Ack()
		}
	}()
	return r
}

// startRelay runs a relay publishing to r from after; stop ends it.
func (r *relayed) startRelay(t *testing.T, w *world, after eventstore.Cursor, listener *bus.Listener) (*bus.Relay, func()) {
	t.Helper()
	relay, err := bus.NewRelay(bus.RelayConfig{
		Store: w.store, Registry: w.registry, Publisher: r.pubsub, After: after, Listener: listener,
		// Only a wake-up can deliver an event promptly.
		FallbackPoll: time.Hour,
		Logger:       zaptest.NewLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	return relay, run(t, relay.Run)
}

func startListener(t *testing.T, w *world) *bus.Listener {
	t.Helper()
	l := bus.NewListener(w.pool, zaptest.NewLogger(t))
	run(t, l.Run)
	// Commits made before it listens are announced only by its
	// connecting, late on a loaded machine: let it connect first.
	listenerPID(t, w, 0)
	return l
}

func (r *relayed) received() []eventstore.Recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]eventstore.Recorded(nil), r.recs...)
}

// waitFor waits until n events in all have been received, failing the
// test after within, and returns them.
func (r *relayed) waitFor(t *testing.T, n int, within time.Duration) []eventstore.Recorded {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		r.mu.Lock()
		got, errs := len(r.recs), r.errs
		r.mu.Unlock()
		if len(errs) > 0 {
			t.Fatalf("a relayed message did not decode: %v", errs[0])
		}
		if got >= n {
			return r.received()
		}
		if time.Now().After(deadline) {
			t.Fatalf("received %d events within %s, want %d", got, within, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// beginLateAppend appends one note in a transaction it leaves open, as a
// writer that takes its position now and commits late. It goes around the
// store's group commit, as a command in Store.Transact does.
func beginLateAppend(t *testing.T, pool *pgxpool.Pool, text string) (pgx.Tx, uuid.UUID) {
	t.Helper()
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback(context.Background()) })
	data, err := json.Marshal(noteAdded{Text: text})
	if err != nil {
		t.Fatal(err)
	}
	meta := fmt.Sprintf(`{"actor": %q, "correlation_id": %q}`, testMeta.Actor, uuid.New())
	id := uuid.Must(uuid.NewV7())
	if _, err := tx.Exec(ctx, `SELECT * FROM append_events($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		[]uuid.UUID{uuid.New()}, []string{"note"}, []int64{0}, []int32{1},
		[]uuid.UUID{id}, []string{"NoteAdded"}, []int32{1}, []string{string(data)}, []string{meta},
		time.Now().UTC().Truncate(time.Microsecond)); err != nil {
		t.Fatal(err)
	}
	return tx, id
}

func cursorLess(a, b eventstore.Cursor) bool {
	return a.TxID < b.TxID || (a.TxID == b.TxID && a.Position < b.Position)
}
