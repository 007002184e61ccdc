package eventstore

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"reflect"
	"strings"

	"github.com/google/uuid"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/presente-dispatch/presente/domain"
)

// Personal data (crypto-shredding).
//
// An event type declares each field of personal data with a struct tag
// naming, by its JSON name, the field that holds the subject the data
// belongs to:
//
//	type RequestReceived struct {
//		PersonID uuid.UUID `json:"person_id"`
//		Name     string    `json:"name" pii:"person_id"`
//	}
//
// On append each such field is encrypted with XChaCha20-Poly1305 under the
// subject's own data key, the ciphertext bound to subject, event and field
// through the associated data, and stored as "pii:v1:<base64>". On read the
// field is decrypted; once the subject has been forgotten (its key
// destroyed) it reads as Forgotten and Recorded.Forgotten is set. Upcasters
// see ciphertext and must not rename personal-data fields.

// Forgotten is what a personal-data field reads as once its subject has
// been forgotten.
const Forgotten = "[forgotten]"

const ciphertextPrefix = "pii:v1:"

// Keys provides the per-subject data keys that personal-data fields are
// encrypted with (see infra/keyring).
type Keys interface {
	// DataKey returns the subject's key, creating it on first use; it fails
	// for a forgotten subject.
	DataKey(ctx context.Context, subject uuid.UUID) ([]byte, error)
	// DataKeys returns the keys of those subjects that are not forgotten.
	DataKeys(ctx context.Context, subjects []uuid.UUID) (map[uuid.UUID][]byte, error)
}

// personalField is one declared personal-data field of an event type.
type personalField struct {
	index   int    // the string field
	name    string // its JSON name, bound into the ciphertext
	subject int    // the uuid.UUID field naming its subject
}

var (
	uuidType   = reflect.TypeOf(uuid.UUID{})
	stringType = reflect.TypeOf("")
)

// personalFields reads the pii tags of an event struct type. It refuses
// every tag it could not honour, so a declared field is never stored in the
// clear: tags must sit on exported top-level fields of type string, naming
// an exported top-level uuid.UUID field.
func personalFields(t reflect.Type) ([]personalField, error) {
	if nested := nestedPIITag(t, 0, map[reflect.Type]bool{}); nested != "" {
		return nil, fmt.Errorf("field %s is tagged pii inside a nested or embedded struct: declare personal data on top-level fields", nested)
	}
	byJSON := map[string]int{}
	for i := range t.NumField() {
		byJSON[jsonName(t.Field(i))] = i
	}
	var out []personalField
	for i := range t.NumField() {
		f := t.Field(i)
		subjectName, ok := f.Tag.Lookup("pii")
		if !ok {
			continue
		}
		if !f.IsExported() {
			return nil, fmt.Errorf("field %s is tagged pii but unexported: it would not be stored at all", f.Name)
		}
		if f.Type != stringType {
			return nil, fmt.Errorf("field %s is tagged pii but is a %s: personal data fields must be plain strings", f.Name, f.Type)
		}
		si, ok := byJSON[subjectName]
		if !ok || t.Field(si).Type != uuidType || !t.Field(si).IsExported() {
			return nil, fmt.Errorf("field %s is tagged pii:%q but the type has no exported uuid.UUID field with JSON name %q", f.Name, subjectName, subjectName)
		}
		out = append(out, personalField{index: i, name: jsonName(f), subject: si})
	}
	return out, nil
}

// nestedPIITag returns the name of a pii-tagged field below the top level
// of t, or "".
func nestedPIITag(t reflect.Type, depth int, seen map[reflect.Type]bool) string {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || seen[t] {
		return ""
	}
	seen[t] = true
	for i := range t.NumField() {
		f := t.Field(i)
		if _, ok := f.Tag.Lookup("pii"); ok && depth > 0 {
			return t.Name() + "." + f.Name
		}
		if name := nestedPIITag(f.Type, depth+1, seen); name != "" {
			return name
		}
	}
	return ""
}

func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name == "" {
		return f.Name
	}
	return name
}

func personalAD(subject, event uuid.UUID, field string) []byte {
	ad := make([]byte, 0, 16+32+len(field))
	ad = append(ad, "presente/pii/v1/"...)
	ad = append(ad, subject[:]...)
	ad = append(ad, event[:]...)
	return append(ad, field...)
}

// seal returns e with its personal-data fields encrypted. keys caches the
// data keys already fetched for this append, so a subject's key is read
// once however many fields and events name them.
func (s *Store) seal(ctx context.Context, et *eventType, e domain.Event, eventID uuid.UUID, keys map[uuid.UUID][]byte) (domain.Event, error) {
	if len(et.personal) == 0 {
		return e, nil
	}
	v := reflect.New(et.goType).Elem()
	v.Set(reflect.ValueOf(e))
	for _, pf := range et.personal {
		plain := v.Field(pf.index).String()
		if plain == "" || plain == Forgotten {
			// A decider that carries a forgotten value along stores the
			// marker as it is: there is nothing left to protect.
			continue
		}
		subject := v.Field(pf.subject).Interface().(uuid.UUID)
		if subject == uuid.Nil {
			return nil, fmt.Errorf("event %s: field %s holds personal data but its subject id is empty", et.name, pf.name)
		}
		key, ok := keys[subject]
		if !ok {
			var err error
			if key, err = s.keys.DataKey(ctx, subject); err != nil {
				return nil, fmt.Errorf("event %s: %w", et.name, err)
			}
			keys[subject] = key
		}
		sealed, err := sealField(key, plain, personalAD(subject, eventID, pf.name))
		if err != nil {
			return nil, err
		}
		v.Field(pf.index).SetString(sealed)
	}
	return v.Interface().(domain.Event), nil
}

// sealField encrypts one field's plaintext, padded, bound to ad; open
// reverses it.
func sealField(key []byte, plain string, ad []byte) (string, error) {
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+padBlock+aead.Overhead())
	_, _ = rand.Read(nonce)
	sealed := aead.Seal(nonce, nonce, pad([]byte(plain)), ad)
	return ciphertextPrefix + base64.RawStdEncoding.EncodeToString(sealed), nil
}

// reveal decrypts the personal-data fields of recs in place, with one key
// lookup for all their subjects. A field whose subject was forgotten reads
// as Forgotten.
func (s *Store) reveal(ctx context.Context, recs []Recorded) error {
	var subjects []uuid.UUID
	seen := map[uuid.UUID]bool{}
	for _, r := range recs {
		et := s.registry.byName[r.Type]
		if len(et.personal) == 0 {
			continue
		}
		v := reflect.ValueOf(r.Event)
		for _, pf := range et.personal {
			id := v.Field(pf.subject).Interface().(uuid.UUID)
			if !seen[id] && v.Field(pf.index).String() != "" {
				seen[id] = true
				subjects = append(subjects, id)
			}
		}
	}
	if len(subjects) == 0 {
		return nil
	}
	if s.keys == nil {
		return fmt.Errorf("events hold personal data but the store has no keyring")
	}
	keys, err := s.keys.DataKeys(ctx, subjects)
	if err != nil {
		return err
	}
	for i := range recs {
		r := &recs[i]
		et := s.registry.byName[r.Type]
		if len(et.personal) == 0 {
			continue
		}
		v := reflect.New(et.goType).Elem()
		v.Set(reflect.ValueOf(r.Event))
		for _, pf := range et.personal {
			stored := v.Field(pf.index).String()
			if stored == "" || stored == Forgotten {
				continue
			}
			subject := v.Field(pf.subject).Interface().(uuid.UUID)
			key, ok := keys[subject]
			if !ok {
				v.Field(pf.index).SetString(Forgotten)
				r.Forgotten = true
				continue
			}
			plain, err := open(key, stored, personalAD(subject, r.EventID, pf.name))
			if err != nil {
				return fmt.Errorf("event %d (%s) field %s: %w", r.Position, r.Type, pf.name, err)
			}
			v.Field(pf.index).SetString(plain)
		}
		r.Event = v.Interface().(domain.Event)
	}
	return nil
}

func open(key []byte, stored string, ad []byte) (string, error) {
	b64, ok := strings.CutPrefix(stored, ciphertextPrefix)
	if !ok {
		return "", fmt.Errorf("personal data is stored unencrypted: the log was written around the event store")
	}
	sealed, err := base64.RawStdEncoding.DecodeString(b64)
	if err != nil {
		return "", fmt.Errorf("personal data ciphertext is damaged: %w", err)
	}
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return "", err
	}
	if len(sealed) < aead.NonceSize() {
		return "", fmt.Errorf("personal data ciphertext is damaged")
	}
	padded, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], ad)
	if err != nil {
		return "", fmt.Errorf("personal data does not decrypt: it was altered or moved to another event")
	}
	plain, err := unpad(padded)
	if err != nil {
		return "", err
	}
	return string(plain), nil
}

// padBlock hides the exact length of personal data: ciphertexts differ in
// length only by whole blocks, so "Ana" and "Rosa" look alike.
const padBlock = 32

// pad appends 0x80 and zeros up to a multiple of padBlock (ISO/IEC 7816-4).
func pad(b []byte) []byte {
	n := padBlock - (len(b)+1)%padBlock
	if n == padBlock {
		n = 0
	}
	out := make([]byte, len(b), len(b)+1+n)
	copy(out, b)
	out = append(out, 0x80)
	return append(out, make([]byte, n)...)
}

func unpad(b []byte) ([]byte, error) {
	i := len(b) - 1
	for i >= 0 && b[i] == 0 {
		i--
	}
	if i < 0 || b[i] != 0x80 {
		return nil, fmt.Errorf("personal data ciphertext is damaged: bad padding")
	}
	return b[:i], nil
}
