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

var uuidType = reflect.TypeOf(uuid.UUID{})

// personalFields reads the pii tags of an event struct type.
func personalFields(t reflect.Type) ([]personalField, error) {
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
		if f.Type.Kind() != reflect.String {
			return nil, fmt.Errorf("field %s is tagged pii but is a %s: personal data fields must be strings", f.Name, f.Type)
		}
		si, ok := byJSON[subjectName]
		if !ok || t.Field(si).Type != uuidType {
			return nil, fmt.Errorf("field %s is tagged pii:%q but the type has no uuid.UUID field with JSON name %q", f.Name, subjectName, subjectName)
		}
		out = append(out, personalField{index: i, name: jsonName(f), subject: si})
	}
	return out, nil
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

// seal returns e with its personal-data fields encrypted.
func (s *Store) seal(ctx context.Context, et *eventType, e domain.Event, eventID uuid.UUID) (domain.Event, error) {
	if len(et.personal) == 0 {
		return e, nil
	}
	v := reflect.New(et.goType).Elem()
	v.Set(reflect.ValueOf(e))
	for _, pf := range et.personal {
		plain := v.Field(pf.index).String()
		if plain == "" {
			continue
		}
		subject := v.Field(pf.subject).Interface().(uuid.UUID)
		if subject == uuid.Nil {
			return nil, fmt.Errorf("event %s: field %s holds personal data but its subject id is empty", et.name, pf.name)
		}
		key, err := s.keys.DataKey(ctx, subject)
		if err != nil {
			return nil, fmt.Errorf("event %s: %w", et.name, err)
		}
		aead, err := chacha20poly1305.NewX(key)
		if err != nil {
			return nil, err
		}
		nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
		_, _ = rand.Read(nonce)
		sealed := aead.Seal(nonce, nonce, []byte(plain), personalAD(subject, eventID, pf.name))
		v.Field(pf.index).SetString(ciphertextPrefix + base64.RawStdEncoding.EncodeToString(sealed))
	}
	return v.Interface().(domain.Event), nil
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
			if stored == "" {
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
	plain, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], ad)
	if err != nil {
		return "", fmt.Errorf("personal data does not decrypt: it was altered or moved to another event")
	}
	return string(plain), nil
}
