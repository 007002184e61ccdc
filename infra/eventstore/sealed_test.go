package eventstore

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/presente-dispatch/presente/domain"
)

func TestReadAllSealedKeepsPersonalDataSealedInCommitSafeOrder(t *testing.T) {
	p := newPersonalStore(t)
	ctx := context.Background()
	ana, rosa := uuid.New(), uuid.New()
	p.report(t, ana, "Ana Lucía Tzul", "+1 555 0100")
	p.report(t, rosa, "Rosa Pérez", "+1 555 0111")

	sealed := readSealedUntil(t, p.Store, 2)
	clear, err := p.ReadAll(ctx, Cursor{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(sealed) != 2 || len(clear) != 2 {
		t.Fatalf("ReadAllSealed returned %d events and ReadAll %d, want 2 each", len(sealed), len(clear))
	}
	for i, r := range sealed {
		if r.EventID != clear[i].EventID || r.Cursor() != clear[i].Cursor() {
			t.Errorf("event %d: sealed read has %s at %s, ReadAll %s at %s: want the same order", i, r.EventID, r.Cursor(), clear[i].EventID, clear[i].Cursor())
		}
		e := r.Event.(personReported)
		if !strings.HasPrefix(e.Name, ciphertextPrefix) || !strings.HasPrefix(e.Phone, ciphertextPrefix) {
			t.Errorf("event %d reads %+v: want its name and phone sealed", i, e)
		}
		if e.Region != "East" || e.PersonID != clear[i].Event.(personReported).PersonID {
			t.Errorf("event %d reads %+v: undeclared fields should read in the clear", i, e)
		}
	}

	if _, err := p.keys.Forget(ctx, rosa); err != nil {
		t.Fatal(err)
	}
	again, err := p.ReadAllSealed(ctx, Cursor{}, 10)
	if err != nil {
		t.Fatalf("a sealed read must not depend on the keys: %v", err)
	}
	if err := p.Reveal(ctx, again); err != nil {
		t.Fatal(err)
	}
	if got := again[0].Event.(personReported); got.Name != "Ana Lucía Tzul" || got.Phone != "+1 555 0100" || again[0].Forgotten {
		t.Errorf("revealed %+v (forgotten %v), want Ana's name and phone", got, again[0].Forgotten)
	}
	if got := again[1].Event.(personReported); got.Name != Forgotten || !again[1].Forgotten {
		t.Errorf("revealed a forgotten person as %+v (forgotten %v), want the marker", got, again[1].Forgotten)
	}
}

// readSealedUntil reads the log sealed until it returns n events, or fails
// the test after a deadline: another test's transaction anywhere on the
// server can hold events back for a while (pg_snapshot_xmin is
// cluster-wide).
func readSealedUntil(tb testing.TB, s *Store, n int) []Recorded {
	tb.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got, err := s.ReadAllSealed(context.Background(), Cursor{}, 100)
		if err != nil {
			tb.Fatal(err)
		}
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			tb.Fatalf("the log gave %d events sealed within 15s, want %d", len(got), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRegistryDecodeReadsAPayloadAsStored(t *testing.T) {
	p := newPersonalStore(t)
	p.report(t, uuid.New(), "Ana Lucía Tzul", "+1 555 0100")
	sealed := readSealedUntil(t, p.Store, 1)
	payload, err := json.Marshal(sealed[0].Event)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(payload), "Tzul") {
		t.Fatalf("the sealed payload holds the name in the clear: %s", payload)
	}
	e, err := p.registry.Decode("PersonReported", 1, payload)
	if err != nil {
		t.Fatal(err)
	}
	if e != sealed[0].Event {
		t.Errorf("decoded %+v, want %+v", e, sealed[0].Event)
	}
	if _, err := p.registry.Decode("PersonReported", 2, payload); err == nil {
		t.Error("a payload newer than the build decoded without error")
	}
	if _, err := p.registry.Decode("NoSuchEvent", 1, payload); err == nil {
		t.Error("an unknown event type decoded without error")
	}
}

func TestPendingTellsOfEventsAnOlderTransactionHoldsBack(t *testing.T) {
	s, pool := newTestStore(t, Options{})
	ctx := context.Background()

	// An older transaction that writes no event at all: its end is
	// signalled by nothing, yet it holds back every reader.
	older, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer older.Rollback(ctx) //nolint:errcheck // committed below on success
	if _, err := older.Exec(ctx, `SELECT pg_current_xact_id()`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, Stream{Type: "note", ID: uuid.New()}, 0, testMeta, noteAdded{Text: "held"}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ReadAllSealed(ctx, Cursor{}, 10); err != nil || len(got) != 0 {
		t.Fatalf("while the older transaction runs ReadAllSealed = %d events, %v; want none", len(got), err)
	}
	if pending, err := s.Pending(ctx, Cursor{}); err != nil || !pending {
		t.Fatalf("Pending = %v, %v while an older transaction runs; want true", pending, err)
	}
	if err := older.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	got := readSealedUntil(t, s, 1)
	if pending, err := s.Pending(ctx, got[0].Cursor()); err != nil || pending {
		t.Errorf("Pending after the last event = %v, %v; want false", pending, err)
	}
}

func TestCommittedIsClosedByEveryKindOfCommit(t *testing.T) {
	s, _ := newTestStore(t, Options{})
	ctx := context.Background()
	stream := Stream{Type: "note", ID: uuid.New()}
	commits := map[string]func() error{
		"an append": func() error {
			_, err := s.Append(ctx, stream, 0, testMeta, noteAdded{Text: "uno"})
			return err
		},
		"a transaction": func() error {
			_, err := s.Transact(ctx, testMeta, func(context.Context, Loader) ([]StreamAppend, error) {
				return []StreamAppend{{Stream: stream, Expected: 1, Events: []domain.Event{noteAdded{Text: "dos"}}}}, nil
			})
			return err
		},
	}
	for _, name := range []string{"an append", "a transaction"} {
		woken := s.Committed()
		select {
		case <-woken:
			t.Fatalf("before %s: Committed was already closed", name)
		default:
		}
		if err := commits[name](); err != nil {
			t.Fatal(err)
		}
		select {
		case <-woken:
		case <-time.After(10 * time.Second):
			t.Fatalf("Committed was not closed within 10s of %s", name)
		}
	}
}
