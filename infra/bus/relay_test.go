package bus_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/presente-dispatch/presente/infra/bus"
	"github.com/presente-dispatch/presente/infra/eventstore"
)

func TestRelayPublishesEveryEventOnceInCommitSafeOrderDespiteALateCommit(t *testing.T) {
	w := newWorld(t)
	r := newRelayed(t, w)
	r.startRelay(t, w, eventstore.Cursor{}, startListener(t, w))
	ctx := context.Background()

	// The late transaction takes its position first and commits last.
	late, lateID := beginLateAppend(t, w.pool, "late")

	const writers, perWriter = 8, 25
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			stream := eventstore.Stream{Type: "note", ID: uuid.New()}
			for v := range perWriter {
				if _, err := w.store.Append(ctx, stream, int64(v), testMeta, noteAdded{Text: fmt.Sprintf("w%d-%d", i, v)}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if got := r.received(); len(got) != 0 {
		t.Fatalf("while the late transaction was open %d events were published (first %s): all must wait for it", len(got), got[0].Cursor())
	}
	if err := late.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	got := r.waitFor(t, writers*perWriter+1, 15*time.Second)
	if got[0].EventID != lateID {
		t.Errorf("first event published is %s, want the late one %s", got[0].EventID, lateID)
	}
	seen := map[uuid.UUID]bool{}
	versions := map[uuid.UUID]int64{}
	for i, rec := range got {
		if seen[rec.EventID] {
			t.Errorf("event %s published twice", rec.EventID)
		}
		seen[rec.EventID] = true
		if i > 0 && !cursorLess(got[i-1].Cursor(), rec.Cursor()) {
			t.Errorf("event %d at %s published after %s: out of order", i, rec.Cursor(), got[i-1].Cursor())
		}
		if rec.StreamVersion != versions[rec.StreamID]+1 {
			t.Errorf("stream %s: version %d published after %d", rec.StreamID, rec.StreamVersion, versions[rec.StreamID])
		}
		versions[rec.StreamID] = rec.StreamVersion
	}
	if len(got) != writers*perWriter+1 {
		t.Errorf("published %d events, want %d", len(got), writers*perWriter+1)
	}
	r.mu.Lock()
	for i, msg := range r.msgs {
		if c := msg.Metadata.Get(bus.MetadataCursor); c != r.recs[i].Cursor().String() || msg.UUID != r.recs[i].EventID.String() {
			t.Errorf("message %d: uuid %s, cursor %s; want the event's id %s and cursor %s", i, msg.UUID, c, r.recs[i].EventID, r.recs[i].Cursor())
		}
	}
	r.mu.Unlock()
}

func TestRelayWakesAtOnceAtThisProcesssCommits(t *testing.T) {
	w := newWorld(t)
	r := newRelayed(t, w)
	r.startRelay(t, w, eventstore.Cursor{}, nil) // no listener: only Store.Committed
	for i := range 5 {
		rec := w.note(t, w.store, fmt.Sprint(i))
		w.readable(t, rec)
		start := time.Now()
		r.waitFor(t, i+1, time.Second)
		t.Logf("commit %d published %s after it was readable", i, time.Since(start))
	}
}

func TestRelayWakesAtOnceAtAnotherProcesssCommitsThroughNotify(t *testing.T) {
	w := newWorld(t)
	other := w.newStore(t)
	r := newRelayed(t, w)
	r.startRelay(t, w, eventstore.Cursor{}, startListener(t, w))
	for i := range 5 {
		rec := w.note(t, other, fmt.Sprint(i))
		w.readable(t, rec)
		start := time.Now()
		r.waitFor(t, i+1, time.Second)
		t.Logf("commit %d published %s after it was readable", i, time.Since(start))
	}
}

func TestListenerRecoversWhenItsConnectionIsKilled(t *testing.T) {
	w := newWorld(t)
	other := w.newStore(t)
	r := newRelayed(t, w)
	r.startRelay(t, w, eventstore.Cursor{}, startListener(t, w))
	ctx := context.Background()

	w.readable(t, w.note(t, other, "before"))
	r.waitFor(t, 1, time.Second)
	killed := listenerPID(t, w, 0)
	if _, err := w.pool.Exec(ctx, `SELECT pg_terminate_backend($1)`, killed); err != nil {
		t.Fatal(err)
	}
	// Committed while nothing listens: announced by the reconnection.
	w.note(t, other, "while deaf")
	r.waitFor(t, 2, 15*time.Second)
	if pid := listenerPID(t, w, killed); pid == killed {
		t.Fatalf("the listener still uses the killed backend %d", pid)
	}
	// And the new connection hears commits again.
	for i := range 3 {
		w.readable(t, w.note(t, other, fmt.Sprint("after ", i)))
		r.waitFor(t, 3+i, time.Second)
	}
}

// listenerPID waits until a backend other than not listens for the
// world's database and returns its pid.
func listenerPID(t *testing.T, w *world, not int32) int32 {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var pid int32
		err := w.pool.QueryRow(context.Background(), `SELECT pid FROM pg_stat_activity
			WHERE application_name = $1 AND datname = current_database() AND pid <> $2
			  AND query = 'LISTEN ' || $3`, bus.ListenerApplicationName, not, bus.Channel).Scan(&pid)
		if err == nil {
			return pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("no listening backend (other than %d) within 15s: %v", not, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestARelayRestartedFromItsCursorResumesWithoutGapOrRepeat(t *testing.T) {
	w := newWorld(t)
	r := newRelayed(t, w)
	first, stop := r.startRelay(t, w, eventstore.Cursor{}, nil)
	var want []uuid.UUID
	for i := range 5 {
		want = append(want, w.note(t, w.store, fmt.Sprint("first ", i)).EventID)
	}
	r.waitFor(t, 5, 15*time.Second)
	stop()
	cursor := first.Cursor()
	if got := r.received(); cursor != got[len(got)-1].Cursor() {
		t.Fatalf("the stopped relay's cursor is %s, want its last event's %s", cursor, got[len(got)-1].Cursor())
	}

	// Committed while no relay runs.
	for i := range 5 {
		want = append(want, w.note(t, w.store, fmt.Sprint("meanwhile ", i)).EventID)
	}
	r.startRelay(t, w, cursor, nil)
	r.waitFor(t, 10, 15*time.Second)
	// A marker committed last must arrive right after them: nothing
	// repeated in between.
	want = append(want, w.note(t, w.store, "marker").EventID)
	got := r.waitFor(t, 11, 15*time.Second)
	if len(got) != len(want) {
		t.Fatalf("received %d events, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].EventID != want[i] {
			t.Errorf("event %d is %s, want %s", i, got[i].EventID, want[i])
		}
	}
}

func TestNoPersonalDataInTheClearOnTheBus(t *testing.T) {
	w := newWorld(t)
	r := newRelayed(t, w)
	r.startRelay(t, w, eventstore.Cursor{}, nil)
	ctx := context.Background()
	people := map[uuid.UUID][2]string{
		uuid.New(): {"Ana Lucía Tzul", "+1 555 0100"},
		uuid.New(): {"Rosa Pérez", "+1 555 0111"},
	}
	for id, p := range people {
		if _, err := w.store.Append(ctx, eventstore.Stream{Type: "report", ID: uuid.New()}, 0, testMeta,
			personReported{PersonID: id, Name: p[0], Phone: p[1], Region: "East"}); err != nil {
			t.Fatal(err)
		}
	}
	got := r.waitFor(t, 2, 15*time.Second)

	r.mu.Lock()
	for _, msg := range r.msgs {
		onTheBus := string(msg.Payload) + fmt.Sprint(msg.Metadata)
		for _, p := range people {
			for _, secret := range []string{p[0], p[1], "Tzul", "Pérez", "0100", "0111"} {
				if strings.Contains(onTheBus, secret) {
					t.Errorf("message %s carries %q in the clear: %s", msg.UUID, secret, onTheBus)
				}
			}
		}
		if !strings.Contains(string(msg.Payload), "pii:v1:") || !strings.Contains(string(msg.Payload), "East") {
			t.Errorf("message %s: want its personal data sealed and the rest readable: %s", msg.UUID, msg.Payload)
		}
	}
	r.mu.Unlock()

	// A consumer allowed to see it reveals what it decoded.
	if err := w.store.Reveal(ctx, got); err != nil {
		t.Fatal(err)
	}
	for _, rec := range got {
		e := rec.Event.(personReported)
		if p := people[e.PersonID]; e.Name != p[0] || e.Phone != p[1] {
			t.Errorf("revealed %+v, want %v", e, p)
		}
	}
}

func TestDecodeRefusesWhatItCannotReadFaithfully(t *testing.T) {
	w := newWorld(t)
	rec := w.note(t, w.store, "uno")
	msg, err := bus.NewMessage(w.registry, rec)
	if err != nil {
		t.Fatal(err)
	}
	back, err := bus.Decode(w.registry, msg)
	if err != nil {
		t.Fatal(err)
	}
	if back.EventID != rec.EventID || back.Cursor() != rec.Cursor() || back.Event != rec.Event ||
		back.StreamVersion != rec.StreamVersion || !back.RecordedAt.Equal(rec.RecordedAt) || back.Metadata != rec.Metadata {
		t.Errorf("decoded %+v, want %+v", back, rec)
	}

	moved := msg.Copy()
	moved.UUID = uuid.NewString()
	if _, err := bus.Decode(w.registry, moved); err == nil {
		t.Error("a message whose UUID is not its event's id decoded without error")
	}
	if _, err := bus.Decode(eventstore.NewRegistry(), msg); err == nil {
		t.Error("an event type the registry does not know decoded without error")
	}
}
