package eventstore

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/presente-dispatch/presente/domain"
	"github.com/presente-dispatch/presente/infra/keyring"
	"github.com/presente-dispatch/presente/infra/postgres/pgtest"
)

// personReported is a test event carrying personal data of one person.
type personReported struct {
	PersonID uuid.UUID `json:"person_id"`
	Name     string    `json:"name" pii:"person_id"`
	Phone    string    `json:"phone" pii:"person_id"`
	Region   string    `json:"region"`
}

func (personReported) EventType() string { return "PersonReported" }

type personalStore struct {
	*Store
	pool *pgxpool.Pool
	url  string
	keys *keyring.Keyring
}

func newPersonalStore(t *testing.T) personalStore {
	t.Helper()
	url := pgtest.NewDatabase(t)
	pool := pgtest.NewPoolFor(t, url)
	master, err := keyring.ParseMasterKey(keyring.GenerateMasterKey())
	if err != nil {
		t.Fatal(err)
	}
	keys, err := keyring.New(pool, master)
	if err != nil {
		t.Fatal(err)
	}
	reg := testRegistry(t)
	if err := reg.Register(personReported{}); err != nil {
		t.Fatal(err)
	}
	s, err := New(pool, reg, Options{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return personalStore{Store: s, pool: pool, url: url, keys: keys}
}

func (p personalStore) report(t *testing.T, person uuid.UUID, name, phone string) uuid.UUID {
	t.Helper()
	stream := uuid.New()
	if _, err := p.Append(context.Background(), Stream{Type: "report", ID: stream}, 0, testMeta,
		personReported{PersonID: person, Name: name, Phone: phone, Region: "East"}); err != nil {
		t.Fatal(err)
	}
	return stream
}

func TestPersonalDataIsStoredEncryptedAndReadBackInTheClear(t *testing.T) {
	p := newPersonalStore(t)
	ctx := context.Background()
	person := uuid.New()
	stream := p.report(t, person, "Ana Lucía Tzul", "+1 555 0100")

	var stored string
	if err := p.pool.QueryRow(ctx, `SELECT data::text FROM events WHERE stream_id = $1`, stream).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stored, "Tzul") || strings.Contains(stored, "0100") || !strings.Contains(stored, ciphertextPrefix) {
		t.Fatalf("stored payload %s: want ciphertext, not the name or phone", stored)
	}
	if !strings.Contains(stored, `"region": "East"`) {
		t.Errorf("undeclared fields should stay readable: %s", stored)
	}
	events, _, err := p.Load(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	got := events[0].Event.(personReported)
	if got.Name != "Ana Lucía Tzul" || got.Phone != "+1 555 0100" || events[0].Forgotten {
		t.Errorf("read back %+v (forgotten %v)", got, events[0].Forgotten)
	}
}

func TestAForgottenPersonReadsAsForgottenAndCannotGainNewData(t *testing.T) {
	p := newPersonalStore(t)
	ctx := context.Background()
	forgotten, kept := uuid.New(), uuid.New()
	s1 := p.report(t, forgotten, "Rosa Pérez", "+1 555 0111")
	s2 := p.report(t, kept, "Marco Díaz", "+1 555 0122")

	if already, err := p.keys.Forget(ctx, forgotten); err != nil || already {
		t.Fatalf("Forget = %v, %v", already, err)
	}
	events, _, err := p.Load(ctx, s1)
	if err != nil {
		t.Fatalf("reading a forgotten person's events must not fail: %v", err)
	}
	got := events[0].Event.(personReported)
	if got.Name != Forgotten || got.Phone != Forgotten || got.Region != "East" || !events[0].Forgotten {
		t.Errorf("forgotten person reads as %+v (forgotten flag %v)", got, events[0].Forgotten)
	}
	if events, _, _ := p.Load(ctx, s2); events[0].Event.(personReported).Name != "Marco Díaz" {
		t.Errorf("forgetting one person changed another: %+v", events[0].Event)
	}
	all, err := p.ReadAll(ctx, Cursor{}, 10)
	if err != nil {
		t.Fatalf("ReadAll over a forgotten person: %v", err)
	}
	for _, r := range all {
		if r.StreamID == s1 && !r.Forgotten {
			t.Error("ReadAll revealed a forgotten person")
		}
	}
	_, err = p.Append(ctx, Stream{Type: "report", ID: uuid.New()}, 0, testMeta, personReported{PersonID: forgotten, Name: "Rosa again"})
	if !errors.Is(err, keyring.ErrForgotten) {
		t.Errorf("new personal data about a forgotten person: err = %v, want ErrForgotten", err)
	}
	if already, err := p.keys.Forget(ctx, forgotten); err != nil || !already {
		t.Errorf("forgetting twice = %v, %v; want already forgotten", already, err)
	}
}

func TestCiphertextMovedToAnotherEventDoesNotDecrypt(t *testing.T) {
	p := newPersonalStore(t)
	ctx := context.Background()
	person := uuid.New()
	a := p.report(t, person, "Tomás", "+1 555 0133")
	b := p.report(t, person, "Someone else", "+1 555 0144")
	tamper(t, p.pool, `UPDATE events SET data = jsonb_set(data, '{name}', (SELECT data->'name' FROM events WHERE stream_id = $1))
		WHERE stream_id = $2`, a, b)
	if _, _, err := p.Load(ctx, b); err == nil || !strings.Contains(err.Error(), "altered or moved") {
		t.Errorf("err = %v, want a decryption failure naming the tampering", err)
	}
}

type piiNotString struct {
	PersonID uuid.UUID `json:"person_id"`
	Age      int       `json:"age" pii:"person_id"`
}

func (piiNotString) EventType() string { return "PiiNotString" }

type piiNoSubject struct {
	Name string `json:"name" pii:"person_id"`
}

func (piiNoSubject) EventType() string { return "PiiNoSubject" }

func TestRegisterChecksPersonalDataDeclarations(t *testing.T) {
	for name, e := range map[string]domain.Event{"a non-string field": piiNotString{}, "a missing subject": piiNoSubject{}} {
		if err := NewRegistry().Register(e); err == nil {
			t.Errorf("registering %s succeeded", name)
		}
	}
	reg := testRegistry(t)
	if _, err := New(pgtest.NewPool(t), func() *Registry { _ = reg.Register(personReported{}); return reg }(), Options{}); err == nil {
		t.Error("a store over personal data without a keyring was created")
	}
}

func TestUndeclaredStringsListsFieldsThatCouldHoldPersonalData(t *testing.T) {
	reg := testRegistry(t)
	if err := reg.Register(personReported{}); err != nil {
		t.Fatal(err)
	}
	got := reg.UndeclaredStrings(map[string]bool{"PersonReported.region": true})
	if fmt.Sprint(got) != "[NoteAdded.text]" {
		t.Errorf("undeclared strings = %v, want [NoteAdded.text]", got)
	}
}

// TestSubpoenaDrill is the threat model's test: a dump of the database,
// as a subpoena or a seizure would take it, must never hold a person's
// name or phone in any encoding the application wrote, before or after
// they are forgotten, and after forgetting not even their key.
func TestSubpoenaDrill(t *testing.T) {
	p := newPersonalStore(t)
	ctx := context.Background()
	suffix := uuid.NewString()[:8]
	name := "Xóchitl Ñuñez Subpoena-" + suffix
	phone := "+1-555-" + suffix
	person := uuid.New()
	p.report(t, person, name, phone)
	p.report(t, person, name, phone)

	secrets := map[string]string{"name": name, "phone": phone}
	pgtest.AssertAbsent(t, "before forgetting", pgtest.Dump(t, p.url), secrets)
	var wrapped []byte
	if err := p.pool.QueryRow(ctx, `SELECT wrapped_key FROM subject_keys WHERE subject_id = $1`, person).Scan(&wrapped); err != nil {
		t.Fatalf("the person has no data key: %v", err)
	}

	wrappedHex := []byte(hex.EncodeToString(wrapped))
	if !bytes.Contains(pgtest.Dump(t, p.url), wrappedHex) {
		t.Fatal("before forgetting, the dump does not show the wrapped key in hex: the check after forgetting would prove nothing")
	}

	if _, err := p.keys.Forget(ctx, person); err != nil {
		t.Fatal(err)
	}
	after := pgtest.Dump(t, p.url)
	pgtest.AssertAbsent(t, "after forgetting", after, secrets)
	if bytes.Contains(after, wrappedHex) {
		t.Error("after forgetting, the dump still holds the person's wrapped data key")
	}
	if !bytes.Contains(after, []byte(ciphertextPrefix)) {
		t.Error("the dump holds no ciphertext at all: the drill did not dump the events")
	}
}

type contact struct {
	Name string `json:"name" pii:"person_id"`
}

type piiNested struct {
	PersonID uuid.UUID `json:"person_id"`
	Contact  contact   `json:"contact"`
}

func (piiNested) EventType() string { return "PiiNested" }

type piiEmbedded struct {
	PersonID uuid.UUID `json:"person_id"`
	contact
}

func (piiEmbedded) EventType() string { return "PiiEmbedded" }

type piiUnexported struct {
	PersonID uuid.UUID `json:"person_id"`
	name     string    `pii:"person_id"`
}

func (piiUnexported) EventType() string { return "PiiUnexported" }

type fancyString string

type piiNamedType struct {
	PersonID uuid.UUID   `json:"person_id"`
	Name     fancyString `json:"name" pii:"person_id"`
}

func (piiNamedType) EventType() string { return "PiiNamedType" }

func TestRegisterRefusesPersonalDataTagsItCouldNotHonour(t *testing.T) {
	_ = piiUnexported{name: "unused"}.name
	tests := []struct {
		name  string
		event domain.Event
	}{
		{"a tag inside a nested struct", piiNested{}},
		{"a tag inside an embedded struct", piiEmbedded{}},
		{"a tag on an unexported field", piiUnexported{}},
		{"a tag on a named string type", piiNamedType{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := NewRegistry().Register(tt.event); err == nil {
				t.Error("Register accepted a declaration it would store in the clear")
			}
		})
	}
}

func TestAForgottenValueCarriedIntoANewEventIsStoredAsTheMarker(t *testing.T) {
	p := newPersonalStore(t)
	ctx := context.Background()
	person := uuid.New()
	if _, err := p.keys.Forget(ctx, person); err != nil {
		t.Fatal(err)
	}
	stream := Stream{Type: "report", ID: uuid.New()}
	if _, err := p.Append(ctx, stream, 0, testMeta, personReported{PersonID: person, Name: Forgotten, Phone: Forgotten, Region: "West"}); err != nil {
		t.Fatalf("a decider carrying forgotten values must still be able to append: %v", err)
	}
	events, _, err := p.Load(ctx, stream.ID)
	if err != nil || events[0].Event.(personReported).Name != Forgotten {
		t.Errorf("read back %+v, %v", events, err)
	}
}

func TestCiphertextLengthHidesTheExactLengthOfPersonalData(t *testing.T) {
	p := newPersonalStore(t)
	ctx := context.Background()
	short := p.report(t, uuid.New(), "Ana", "1")
	long := p.report(t, uuid.New(), "Rosa María", "+1 555 0199")
	var a, b int
	if err := p.pool.QueryRow(ctx, `SELECT length(data->>'name') FROM events WHERE stream_id = $1`, short).Scan(&a); err != nil {
		t.Fatal(err)
	}
	if err := p.pool.QueryRow(ctx, `SELECT length(data->>'name') FROM events WHERE stream_id = $1`, long).Scan(&b); err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Errorf("ciphertexts of a 3- and a 10-character name differ in length (%d, %d)", a, b)
	}
}

func TestPadRoundTripsEveryLength(t *testing.T) {
	for n := range 100 {
		b := bytes.Repeat([]byte{0}, n) // trailing zeros in the data itself
		p := pad(b)
		if len(p)%padBlock != 0 {
			t.Fatalf("pad(%d bytes) = %d bytes, not a multiple of %d", n, len(p), padBlock)
		}
		got, err := unpad(p)
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("unpad(pad(%d zero bytes)) = %d bytes, %v", n, len(got), err)
		}
	}
	if _, err := unpad(make([]byte, padBlock)); err == nil {
		t.Error("unpad accepted a block without its 0x80 marker")
	}
}

type withTexts struct {
	At       time.Time         `json:"at"`
	Raw      json.RawMessage   `json:"raw"`
	Anything any               `json:"anything"`
	Bytes    []byte            `json:"bytes"`
	Tags     map[string]int    `json:"tags"`
	Next     *withTexts        `json:"next"`
	IDs      []uuid.UUID       `json:"ids"`
	Count    int               `json:"count"`
	Nested   map[int]time.Time `json:"nested"`
}

func (withTexts) EventType() string { return "WithTexts" }

func TestUndeclaredStringsSeesEveryWayToHoldText(t *testing.T) {
	reg := NewRegistry()
	if err := reg.Register(withTexts{}); err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(reg.UndeclaredStrings(nil))
	want := "[WithTexts.anything WithTexts.bytes WithTexts.next WithTexts.raw WithTexts.tags]"
	if got != want {
		t.Errorf("undeclared = %s, want %s", got, want)
	}
}

func TestLoadSealedLeavesPersonalDataSealed(t *testing.T) {
	p := newPersonalStore(t)
	stream := p.report(t, uuid.New(), "Marisol Tzul", "+1 555 0100")
	sealed, version, err := p.LoadSealed(context.Background(), stream)
	if err != nil || version != 1 {
		t.Fatalf("LoadSealed = %v, %d, %v", sealed, version, err)
	}
	got := sealed[0].Event.(personReported)
	if !strings.HasPrefix(got.Name, ciphertextPrefix) || got.Region != "East" {
		t.Errorf("sealed event = %+v, want the name sealed and the region as stored", got)
	}
}
