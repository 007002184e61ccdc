package eventstore

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/presente-dispatch/presente/domain"
	"github.com/presente-dispatch/presente/domain/account"
	"github.com/presente-dispatch/presente/domain/invitation"
	"github.com/presente-dispatch/presente/domain/organization"
	"github.com/presente-dispatch/presente/domain/privacy"
	requestevents "github.com/presente-dispatch/presente/domain/request"
	"github.com/presente-dispatch/presente/domain/retention"
	"github.com/presente-dispatch/presente/domain/shift"
	"github.com/presente-dispatch/presente/domain/training"
	"github.com/presente-dispatch/presente/domain/volunteer"
)

// tallyV3 is a third schema of the test's Tallied event: "unit" became a
// list. With talliedV1toV2 it makes a chain of two upcasters.
type tallyV3 struct {
	Amount int      `json:"amount"`
	Units  []string `json:"units"`
}

func (tallyV3) EventType() string { return "Tallied" }

func talliedV2toV3(data json.RawMessage) (json.RawMessage, error) {
	var v2 talliedV2
	if err := json.Unmarshal(data, &v2); err != nil {
		return nil, err
	}
	units := []string{}
	if v2.Unit != "" {
		units = append(units, v2.Unit)
	}
	return json.Marshal(tallyV3{Amount: v2.Amount, Units: units})
}

// folds applies a decoded event to the decider of its package, from the
// initial state, once and twice (a redelivered event): whatever a payload
// holds, once it decodes, folding it must not panic.
var folds = map[string]func(domain.Event){
	"account":      func(e domain.Event) { account.Decider.Fold([]domain.Event{e, e}) },
	"invitation":   func(e domain.Event) { invitation.Decider.Fold([]domain.Event{e, e}) },
	"organization": func(e domain.Event) { organization.Decider.Fold([]domain.Event{e, e}) },
	"privacy":      func(e domain.Event) { privacy.Decider.Fold([]domain.Event{e, e}) },
	"request":      func(e domain.Event) { requestevents.Decider.Fold([]domain.Event{e, e}) },
	"retention":    func(e domain.Event) { retention.Decider.Fold([]domain.Event{e, e}) },
	"shift":        func(e domain.Event) { shift.Decider.Fold([]domain.Event{e, e}) },
	"training": func(e domain.Event) {
		training.CourseDecider.Fold([]domain.Event{e, e})
		training.SessionDecider.Fold([]domain.Event{e, e})
	},
	"volunteer":  func(e domain.Event) { volunteer.Decider.Fold([]domain.Event{e, e}) },
	"eventstore": func(domain.Event) {},
}

// fuzzRegistry registers every event type Presente stores and the test's
// Tallied at schema version 3, reached through two upcasters.
func fuzzRegistry(tb testing.TB) (*Registry, []string) {
	tb.Helper()
	reg := NewRegistry()
	for _, e := range slices.Concat(privacy.Events, account.Events, invitation.Events, retention.Events, volunteer.Events,
		shift.Events, requestevents.Events, training.Events, organization.Events) {
		if err := reg.Register(e); err != nil {
			tb.Fatal(err)
		}
	}
	if err := reg.Register(tallyV3{}, talliedV1toV2, talliedV2toV3); err != nil {
		tb.Fatal(err)
	}
	names := make([]string, 0, len(reg.byName))
	for name := range reg.byName {
		names = append(names, name)
	}
	sort.Strings(names)
	return reg, names
}

// FuzzDecodeEvent feeds arbitrary stored payloads, at any schema version,
// to the registry's decoder: every event type Presente stores, and an
// upcast chain. A refusal names the event type; an event that decodes is
// of the type asked for, re-encodes to a payload that decodes to the same
// value at the current version, and folds into its aggregate's state
// without panicking. An upcast payload keeps what the old one said.
func FuzzDecodeEvent(f *testing.F) {
	reg, names := fuzzRegistry(f)
	for _, name := range names {
		zero, err := json.Marshal(reflect.New(reg.byName[name].goType).Elem().Interface())
		if err != nil {
			f.Fatal(err)
		}
		f.Add(name, 1, zero)
		f.Add(name, 1, []byte(`{"volunteer_id":"0195a3b2-0000-7000-8000-000000000001","extra":1}`))
	}
	f.Add("Tallied", 1, []byte(`{"by":3}`))
	f.Add("Tallied", 2, []byte(`{"amount":3,"unit":"hours"}`))
	f.Add("Tallied", 3, []byte(`{"amount":3,"units":["hours"]}`))
	f.Add("Tallied", 1, []byte(`{"by":"3"}`))
	f.Add("Tallied", 4, []byte(`{}`))
	f.Add("NoSuchEvent", 1, []byte(`{}`))
	f.Add("", 0, []byte(`null`))
	f.Fuzz(func(t *testing.T, name string, version int, data []byte) {
		e, err := reg.Decode(name, version, data)
		et, known := reg.byName[name]
		if !known {
			var unknown *UnknownEventTypeError
			if err == nil || !errors.As(err, &unknown) {
				t.Fatalf("an unknown event type %q decoded: %v, %v", name, e, err)
			}
			return
		}
		if err != nil {
			if msg := err.Error(); !strings.Contains(msg, name) {
				t.Fatalf("decoding %s v%d failed without naming the event type: %v", name, version, err)
			}
			if version < 1 || version > et.version() {
				if !strings.Contains(err.Error(), "schema version") {
					t.Fatalf("%s at version %d: the error does not say the version is wrong: %v", name, version, err)
				}
			}
			return
		}
		if e.EventType() != name || reflect.TypeOf(e) != et.goType {
			t.Fatalf("decoding %s gave a %T (%s)", name, e, e.EventType())
		}
		first, err := json.Marshal(e)
		if err != nil {
			t.Fatalf("%s: the decoded event does not encode: %v", name, err)
		}
		again, err := reg.Decode(name, et.version(), first)
		if err != nil {
			t.Fatalf("%s: the decoder refuses the event's own encoding %s: %v", name, first, err)
		}
		second, err := json.Marshal(again)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first, second) {
			t.Fatalf("%s: round trip changed the event:\n%s\n%s", name, first, second)
		}
		if name == "Tallied" && version == 1 {
			var v1 struct {
				By int `json:"by"`
			}
			if err := json.Unmarshal(data, &v1); err != nil {
				t.Fatalf("a v1 Tallied the upcasters accepted is not v1: %v", err)
			}
			if got := e.(tallyV3); got.Amount != v1.By || !slices.Equal(got.Units, []string{"volunteers"}) {
				t.Fatalf("upcasting %s gave %+v, want amount %d in volunteers", data, got, v1.By)
			}
		}
		pkg := et.goType.PkgPath()
		fold, ok := folds[pkg[strings.LastIndex(pkg, "/")+1:]]
		if !ok {
			t.Fatalf("no decider known for %s (package %s): add it to folds", name, pkg)
		}
		fold(e)
	})
}

// FuzzPersonalField opens arbitrary stored values of a personal-data
// field, and seals then opens arbitrary plaintexts. Sealing round-trips,
// hides the length within a block, and binds the ciphertext to its
// context; anything else stored is refused with an error that does not
// repeat what was stored.
func FuzzPersonalField(f *testing.F) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		f.Fatal(err)
	}
	subject, event := uuid.New(), uuid.New()
	ad := personalAD(subject, event, "name")
	f.Add("Ana", "pii:v1:AAAA", uint16(0))
	f.Add("", "", uint16(3))
	f.Add(strings.Repeat("ñ", 40), "[forgotten]", uint16(9))
	f.Add("+1 555 0100", "pii:v1:"+strings.Repeat("A", 80), uint16(50))
	f.Add("x", "pii:v1:!!!", uint16(7))
	f.Fuzz(func(t *testing.T, plain, stored string, flip uint16) {
		if got, err := open(key, stored, ad); err == nil {
			// Only a ciphertext made with this key for this field opens.
			t.Fatalf("a value nobody sealed opened: %q -> %q", stored, got)
		} else if stored != "" && len(stored) > 8 && strings.Contains(err.Error(), stored) {
			t.Fatalf("the error repeats the stored value: %v", err)
		}
		sealed, err := sealField(key, plain, ad)
		if err != nil {
			t.Fatal(err)
		}
		got, err := open(key, sealed, ad)
		if err != nil || got != plain {
			t.Fatalf("seal/open of %q gave %q, %v", plain, got, err)
		}
		blocks := len(plain)/padBlock + 1
		if want := len(sealField0(blocks)); len(sealed) != want {
			t.Fatalf("%d bytes sealed to %d characters, want %d for %d blocks", len(plain), len(sealed), want, blocks)
		}
		if _, err := open(key, sealed, personalAD(subject, event, "phone")); err == nil {
			t.Fatal("a ciphertext opened as another field")
		}
		// Damage one character of the ciphertext: it must not open as
		// something else.
		b := []byte(sealed)
		i := len(ciphertextPrefix) + int(flip)%(len(b)-len(ciphertextPrefix))
		b[i] ^= 1 + byte(flip>>8)%0x7f
		if got, err := open(key, string(b), ad); err == nil && got != plain {
			t.Fatalf("a damaged ciphertext opened as %q, not %q", got, plain)
		}
		if p, err := unpad(pad([]byte(plain))); err != nil || string(p) != plain {
			t.Fatalf("unpad(pad(%q)) = %q, %v", plain, p, err)
		}
	})
}

// sealField0 is a sealed value of n blocks, for its length.
func sealField0(blocks int) string {
	s, err := sealField(make([]byte, 32), strings.Repeat("x", blocks*padBlock-1), nil)
	if err != nil {
		panic(err)
	}
	return s
}

// FuzzParseCursor parses arbitrary positions, as clients send them in
// ?after=: a cursor that parses prints as a string that parses to it.
func FuzzParseCursor(f *testing.F) {
	for _, s := range []string{"7411:1290", "0:0", "18446744073709551615:9223372036854775807", "1:-1", ":", "+1:+2", "1:2:3", " 1:2", "0x1:2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCursor(s)
		if err != nil {
			if !strings.Contains(err.Error(), "cursor") {
				t.Fatalf("error %q does not say what was wrong", err)
			}
			return
		}
		if c.Position < 0 {
			t.Fatalf("%q parsed to a negative position %d", s, c.Position)
		}
		back, err := ParseCursor(c.String())
		if err != nil || back != c {
			t.Fatalf("%q -> %v -> %q -> %v, %v", s, c, c.String(), back, err)
		}
	})
}
