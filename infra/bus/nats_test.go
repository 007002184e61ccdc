package bus_test

import (
	"context"
	"fmt"
	"net"
	"os"
	osexec "os/exec"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"go.uber.org/zap/zaptest"

	"github.com/presente-dispatch/presente/infra/bus"
	"github.com/presente-dispatch/presente/infra/bus/natstest"
	"github.com/presente-dispatch/presente/infra/eventstore"
)

// follower records what one instance's consumer receives.
type follower struct {
	mu   sync.Mutex
	recs []eventstore.Recorded
	errs []error
}

func (f *follower) received() []eventstore.Recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.recs)
}

// follow subscribes to n's stream and follows the log from after, as an
// instance's live views do.
func follow(t *testing.T, w *world, n *bus.NATS, after eventstore.Cursor) *follower {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	sub, err := n.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := bus.Follow(ctx, bus.FollowConfig{Store: w.store, Registry: w.registry, Messages: sub, After: after, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	f := &follower{}
	go func() {
		for m := range msgs {
			rec, err := bus.Decode(w.registry, m)
			m.Ack()
			f.mu.Lock()
			if err != nil {
				f.errs = append(f.errs, err)
			} else {
				f.recs = append(f.recs, rec)
			}
			f.mu.Unlock()
		}
	}()
	return f
}

// instance is one server's share of the fan-out: its NATS connection, its
// relay competing for the leadership, and its consumer.
type instance struct {
	nats   *bus.NATS
	relay  *bus.NATSRelay
	stop   func()
	follow *follower
}

func startInstance(t *testing.T, w *world, url, stream string, listener *bus.Listener) *instance {
	t.Helper()
	n, err := bus.ConnectNATS(context.Background(), bus.NATSConfig{URL: url, Stream: stream, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	relay, err := bus.NewNATSRelay(bus.NATSRelayConfig{NATS: n, Store: w.store, Registry: w.registry, Pool: w.pool,
		Listener: listener, Retry: 200 * time.Millisecond, Check: 200 * time.Millisecond,
		FallbackPoll: time.Hour, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	in := &instance{nats: n, relay: relay, follow: follow(t, w, n, eventstore.Cursor{})}
	in.stop = run(t, relay.Run)
	return in
}

func leaderOf(t *testing.T, ins []*instance, not *instance, within time.Duration) *instance {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		// The old leader may believe it leads until its next check:
		// that overlap is expected (and harmless); two others is not.
		var leaders []*instance
		for _, in := range ins {
			if in.relay.Leading() && in != not {
				leaders = append(leaders, in)
			}
		}
		if len(leaders) > 1 {
			t.Fatalf("%d instances lead at once", len(leaders))
		}
		if len(leaders) == 1 {
			return leaders[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no (new) leader within %s", within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// leaderBackend is the PID of the session holding the relay's lock.
func leaderBackend(t *testing.T, w *world) int32 {
	t.Helper()
	var pid int32
	err := w.pool.QueryRow(context.Background(), `SELECT a.pid FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid
		WHERE a.application_name = $1 AND a.datname = current_database() AND l.locktype = 'advisory' AND l.granted`,
		bus.LeaderApplicationName).Scan(&pid)
	if err != nil {
		t.Fatalf("find the leader's session: %v", err)
	}
	return pid
}

func TestThreeInstancesRelayThroughJetStreamAndHandLeadershipOverWithoutLossOrRepeat(t *testing.T) {
	url := natstest.URL(t)
	stream := natstest.Stream(t, url)
	w := newWorld(t)
	listener := startListener(t, w)
	var ins []*instance
	for range 3 {
		ins = append(ins, startInstance(t, w, url, stream, listener))
	}
	first := leaderOf(t, ins, nil, 10*time.Second)

	// Writers on two other stores (other processes, to the relay) write
	// throughout both hand-overs.
	var written atomic.Int64
	ctx, stopWriting := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range 2 {
		s := w.newStore(t)
		wg.Go(func() {
			for v := 0; ctx.Err() == nil; v++ {
				if _, err := s.Append(context.Background(), eventstore.Stream{Type: "note", ID: uuid.New()}, 0, testMeta,
					noteAdded{Text: fmt.Sprintf("w%d-%d", i, v)}); err != nil {
					t.Error(err)
					return
				}
				written.Add(1)
				time.Sleep(2 * time.Millisecond)
			}
		})
	}
	waitWritten := func(n int64) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); written.Load() < n; {
			if time.Now().After(deadline) {
				t.Fatalf("only %d events written", written.Load())
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitWritten(50)

	// The leader's session dies (as when its machine is cut off): the lock
	// frees and another instance takes over.
	killed := time.Now()
	if _, err := w.pool.Exec(context.Background(), `SELECT pg_terminate_backend($1)`, leaderBackend(t, w)); err != nil {
		t.Fatal(err)
	}
	second := leaderOf(t, ins, first, 10*time.Second)
	t.Logf("leadership moved within %s after the leader's session was killed", time.Since(killed).Round(time.Millisecond))
	waitWritten(written.Load() + 50)

	// The new leader's process stops.
	stopped := time.Now()
	second.stop()
	third := leaderOf(t, ins, second, 10*time.Second)
	t.Logf("leadership moved within %s after the leader stopped", time.Since(stopped).Round(time.Millisecond))
	if third == second {
		t.Fatal("a stopped instance still leads")
	}
	waitWritten(written.Load() + 50)
	stopWriting()
	wg.Wait()

	// Everything in the log, once each, in log order, for every instance.
	all, err := w.store.ReadAllSealed(context.Background(), eventstore.Cursor{}, 100000)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(all)) != written.Load() {
		// Held back by another test's transaction: wait for the log.
		w.readable(t, all[len(all)-1])
	}
	for deadline := time.Now().Add(20 * time.Second); ; {
		if all, err = w.store.ReadAllSealed(context.Background(), eventstore.Cursor{}, 100000); err != nil {
			t.Fatal(err)
		}
		if int64(len(all)) == written.Load() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the log gives %d of %d events", len(all), written.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i, in := range ins {
		deadline := time.Now().Add(20 * time.Second)
		for len(in.follow.received()) < len(all) && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		got := in.follow.received()
		if len(in.follow.errs) > 0 {
			t.Errorf("instance %d: %v", i, in.follow.errs[0])
		}
		if len(got) != len(all) {
			t.Errorf("instance %d received %d events, the log holds %d", i, len(got), len(all))
			continue
		}
		for j := range all {
			if got[j].EventID != all[j].EventID {
				t.Errorf("instance %d: event %d is %s at %s, the log's is %s at %s", i, j, got[j].EventID, got[j].Cursor(), all[j].EventID, all[j].Cursor())
				break
			}
		}
	}

	// The stream holds each event once: the overlap of two leaders, if
	// any, was dropped by the message id.
	conn, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	js, _ := conn.JetStream()
	info, err := js.StreamInfo(stream)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != uint64(len(all)) {
		t.Errorf("the stream holds %d messages for %d events", info.State.Msgs, len(all))
	}
	last, ok, err := ins[0].nats.LastCursor(context.Background())
	if err != nil || !ok || last != all[len(all)-1].Cursor() {
		t.Errorf("the stream's last position is %s (%v, %v), want %s", last, ok, err, all[len(all)-1].Cursor())
	}
}

func TestFollowReadsFromTheLogWhatTheBusMissedAndDropsWhatItRepeats(t *testing.T) {
	w := newWorld(t)
	var recs []eventstore.Recorded
	note := func(n int) {
		for range n {
			recs = append(recs, w.note(t, w.store, fmt.Sprint("note ", len(recs))))
		}
		w.readable(t, recs[len(recs)-1])
	}
	msgOf := func(i int) *message.Message {
		m, err := bus.NewMessage(w.registry, recs[i])
		if err != nil {
			t.Fatal(err)
		}
		m.Metadata.Set(bus.MetadataPrev, recs[i-1].Cursor().String())
		return m
	}
	note(6)
	// The consumer is at event 1: it reads 2 to 5 from the log (in
	// batches of 2), then follows the bus.
	ch := make(chan *message.Message)
	out, err := bus.Follow(context.Background(), bus.FollowConfig{Store: w.store, Registry: w.registry, Messages: ch,
		After: recs[1].Cursor(), BatchSize: 2, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	var got []uuid.UUID
	take := func(n int) {
		for range n {
			m, ok := <-out
			if !ok {
				t.Fatal("the channel closed early")
			}
			rec, err := bus.Decode(w.registry, m)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, rec.EventID)
		}
	}
	take(4)
	// The bus repeats 5, skips 6 and 7, brings 8, an old 3, then 9.
	note(4)
	go func() {
		for _, i := range []int{5, 8, 3, 9} {
			ch <- msgOf(i)
		}
		close(ch)
	}()
	take(4)
	if m, ok := <-out; ok {
		t.Errorf("an extra message %s at %s", m.UUID, m.Metadata.Get(bus.MetadataCursor))
	}
	var want []uuid.UUID
	for _, r := range recs[2:] {
		want = append(want, r.EventID)
	}
	if !slices.Equal(got, want) {
		t.Errorf("followed %v, want events 2 to 9 once each in order %v", got, want)
	}
}

func TestTwoRelaysAtOnceStoreEachEventOnceAndAStaleRelayIsFencedOff(t *testing.T) {
	url := natstest.URL(t)
	w := newWorld(t)
	n, err := bus.ConnectNATS(context.Background(), bus.NATSConfig{URL: url, Stream: natstest.Stream(t, url),
		DuplicateWindow: 500 * time.Millisecond, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	var recs []eventstore.Recorded
	for i := range 10 {
		recs = append(recs, w.note(t, w.store, fmt.Sprint("note ", i)))
	}
	w.readable(t, recs[len(recs)-1])
	newRelay := func(after eventstore.Cursor, seq uint64) *bus.Relay {
		r, err := bus.NewRelay(bus.RelayConfig{Store: w.store, Registry: w.registry, Publisher: n.FencedPublisher(after, seq), Topic: n.Topic(),
			After: after, Fatal: bus.StreamMovedOn,
			FallbackPoll: time.Hour, Logger: zaptest.NewLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	// Two relays from the start of the log at once, as in the overlap of
	// a deposed leader and its successor: within the duplicate window the
	// second copy of each event is dropped before its expectation is
	// checked, so neither relay is refused.
	errs := make(chan error, 2)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 2 {
		r := newRelay(eventstore.Cursor{}, 0)
		wg.Go(func() { errs <- r.Run(ctx) })
	}
	conn, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	js, _ := conn.JetStream()
	msgs := func() uint64 {
		info, err := js.StreamInfo(n.Stream())
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}
	for deadline := time.Now().Add(10 * time.Second); msgs() < 10 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	cancel()
	wg.Wait()
	for range 2 {
		if err := <-errs; err != nil {
			t.Errorf("a relay of the overlap was refused: %v", err)
		}
	}
	if got := msgs(); got != 10 {
		t.Fatalf("the stream holds %d messages for 10 events", got)
	}

	// Past the duplicate window, a relay that fell behind (its last event
	// is 2, at sequence 3; the stream's is 9, at 10) is refused instead
	// of appending copies.
	time.Sleep(time.Second)
	stale := newRelay(recs[2].Cursor(), 3)
	done := make(chan error, 1)
	go func() { done <- stale.Run(context.Background()) }()
	select {
	case err := <-done:
		if !bus.StreamMovedOn(err) {
			t.Errorf("the stale relay stopped with %v, want the stream's refusal", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stale relay was not refused within 10s")
	}
	if got := msgs(); got != 10 {
		t.Errorf("the stream holds %d messages for 10 events after the stale relay", got)
	}
}

func TestFollowReadsTheLogByItselfWhileTheBusDeliversNothing(t *testing.T) {
	w := newWorld(t)
	var recs []eventstore.Recorded
	for i := range 3 {
		recs = append(recs, w.note(t, w.store, fmt.Sprint("note ", i)))
	}
	w.readable(t, recs[len(recs)-1])
	// A bus that never delivers, as when the relay or NATS stalls.
	ch := make(chan *message.Message)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, err := bus.Follow(ctx, bus.FollowConfig{Store: w.store, Registry: w.registry, Messages: ch,
		After: recs[0].Cursor(), Idle: 100 * time.Millisecond, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	var got []uuid.UUID
	take := func(n int) {
		t.Helper()
		for range n {
			select {
			case m := <-out:
				rec, err := bus.Decode(w.registry, m)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, rec.EventID)
			case <-time.After(10 * time.Second):
				t.Fatalf("after %d events, nothing more within 10s while the bus is silent", len(got))
			}
		}
	}
	take(2)
	// Committed after Follow read the log: only the idle read finds them.
	for i := 3; i < 6; i++ {
		recs = append(recs, w.note(t, w.store, fmt.Sprint("note ", i)))
	}
	w.readable(t, recs[len(recs)-1])
	take(3)
	// Several idle reads later, nothing is given twice.
	select {
	case m := <-out:
		t.Errorf("an extra message %s at %s", m.UUID, m.Metadata.Get(bus.MetadataCursor))
	case <-time.After(500 * time.Millisecond):
	}
	var want []uuid.UUID
	for _, r := range recs[1:] {
		want = append(want, r.EventID)
	}
	if !slices.Equal(got, want) {
		t.Errorf("followed %v, want events 1 to 5 once each in order %v", got, want)
	}
}

// privateNATS runs a NATS server with JetStream of the test's own, which
// the test may restart; restart stops it and starts it again on the same
// port and storage.
func privateNATS(t *testing.T) (url string, restart func()) {
	t.Helper()
	bin, err := osexec.LookPath("nats-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("nats-server is required in CI")
		}
		t.Skip("no nats-server on PATH")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir := t.TempDir()
	url = fmt.Sprintf("nats://127.0.0.1:%d", port)
	var cmd *osexec.Cmd
	start := func() {
		cmd = osexec.Command(bin, "-js", "-a", "127.0.0.1", "-p", fmt.Sprint(port), "-sd", dir)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(10 * time.Second); ; {
			c, err := nats.Connect(url)
			if err == nil {
				js, _ := c.JetStream()
				_, err = js.AccountInfo()
				c.Close()
				if err == nil {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("the private NATS server did not start: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	stop := func() {
		cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck // it may have exited
		cmd.Wait()                          //nolint:errcheck // killed on purpose
	}
	start()
	t.Cleanup(stop)
	return url, func() { stop(); start() }
}

func TestTheRelayGoesOnAfterTheNATSServerRestartsPastTheDuplicateWindow(t *testing.T) {
	url, restart := privateNATS(t)
	w := newWorld(t)
	n, err := bus.ConnectNATS(context.Background(), bus.NATSConfig{URL: url, Stream: "PRESENTE_RESTART",
		DuplicateWindow: 300 * time.Millisecond, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	relay, err := bus.NewNATSRelay(bus.NATSRelayConfig{NATS: n, Store: w.store, Registry: w.registry, Pool: w.pool,
		Listener: startListener(t, w), Retry: 200 * time.Millisecond, Check: 200 * time.Millisecond,
		FallbackPoll: 200 * time.Millisecond, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	run(t, relay.Run)
	var recs []eventstore.Recorded
	relayed := func(within time.Duration) {
		t.Helper()
		want := recs[len(recs)-1].Cursor()
		for deadline := time.Now().Add(within); ; {
			last, ok, err := n.LastCursor(context.Background())
			if err == nil && ok && last == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the stream's last position is %s (%v, %v) after %s, want %s", last, ok, err, within, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	note := func(k int) {
		for range k {
			recs = append(recs, w.note(t, w.store, fmt.Sprint("note ", len(recs))))
		}
		w.readable(t, recs[len(recs)-1])
	}
	// The relay starts from the log's head when it leads: write until
	// the stream holds something, then a little more.
	for deadline := time.Now().Add(10 * time.Second); ; {
		note(1)
		if _, ok, err := n.LastCursor(context.Background()); err == nil && ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("nothing relayed within 10s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	note(2)
	relayed(10 * time.Second)
	before := streamMsgs(t, url, n.Stream())
	// The stream stays quiet past its duplicate window, then the server
	// restarts (and forgets the last message id).
	time.Sleep(time.Second)
	restart()
	note(3)
	relayed(30 * time.Second)
	if got := streamMsgs(t, url, n.Stream()); got != before+3 {
		t.Errorf("the stream holds %d messages, want %d before the restart and 3 after", got, before)
	}
}

func streamMsgs(t *testing.T, url, stream string) uint64 {
	t.Helper()
	conn, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	js, _ := conn.JetStream()
	info, err := js.StreamInfo(stream)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func TestALeaderThatCannotReachNATSGivesTheLeadUp(t *testing.T) {
	url := natstest.URL(t)
	stream := natstest.Stream(t, url)
	w := newWorld(t)
	listener := startListener(t, w)
	start := func() (*bus.NATS, *bus.NATSRelay) {
		n, err := bus.ConnectNATS(context.Background(), bus.NATSConfig{URL: url, Stream: stream, Logger: zaptest.NewLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(n.Close)
		r, err := bus.NewNATSRelay(bus.NATSRelayConfig{NATS: n, Store: w.store, Registry: w.registry, Pool: w.pool,
			Listener: listener, Retry: 100 * time.Millisecond, Check: 100 * time.Millisecond,
			FallbackPoll: 200 * time.Millisecond, GiveUp: time.Second, Logger: zaptest.NewLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		run(t, r.Run)
		return n, r
	}
	cutOff, first := start()
	for deadline := time.Now().Add(10 * time.Second); !first.Leading(); {
		if time.Now().After(deadline) {
			t.Fatal("nobody took the lead within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The stream holds something first: a leader finding it empty starts
	// at the log's head when it begins relaying, and a note written
	// between its taking the lead and that moment would be before it.
	relayed := func(n *bus.NATS, rec eventstore.Recorded, within time.Duration) bool {
		for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if at, ok, err := n.LastCursor(context.Background()); err == nil && ok && at == rec.Cursor() {
				return true
			}
		}
		return false
	}
	for deadline := time.Now().Add(15 * time.Second); ; {
		seed := w.note(t, w.store, "before the cut")
		w.readable(t, seed)
		if relayed(cutOff, seed, time.Second) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first leader relayed nothing within 15s")
		}
	}
	// The leader keeps its database session but loses NATS; another
	// instance, connected to both, waits for the lead.
	cutOff.Close()
	n, second := start()
	var last eventstore.Recorded
	for deadline := time.Now().Add(15 * time.Second); ; {
		last = w.note(t, w.store, "while the leader is cut off")
		w.readable(t, last)
		if second.Leading() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the leader cut off from NATS still leads after 15s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if first.Leading() {
		t.Error("both lead")
	}
	// Written once the new leader leads, so it cannot be before where
	// that leader started.
	last = w.note(t, w.store, "after the hand-over")
	w.readable(t, last)
	if !relayed(n, last, 10*time.Second) {
		at, ok, err := n.LastCursor(context.Background())
		t.Fatalf("the new leader relayed up to %s (%v, %v), want %s", at, ok, err, last.Cursor())
	}
}
