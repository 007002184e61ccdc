package keyring_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/presente-dispatch/presente/infra/keyring"
	"github.com/presente-dispatch/presente/infra/postgres/pgtest"
)

func newMaster(t *testing.T) keyring.MasterKey {
	t.Helper()
	m, err := keyring.ParseMasterKey(keyring.GenerateMasterKey())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestConcurrentFirstUsesOfASubjectAgreeOnOneKey(t *testing.T) {
	pool := pgtest.NewPool(t)
	k, err := keyring.New(pool, newMaster(t))
	if err != nil {
		t.Fatal(err)
	}
	subject := uuid.New()
	const racers = 12
	keys := make([][]byte, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key, err := k.DataKey(context.Background(), subject)
			if err != nil {
				t.Error(err)
			}
			keys[i] = key
		}()
	}
	wg.Wait()
	for i := range keys {
		if len(keys[i]) != 32 || !bytes.Equal(keys[i], keys[0]) {
			t.Fatalf("racer %d got another key than racer 0", i)
		}
	}
	got, err := k.DataKeys(context.Background(), []uuid.UUID{subject, uuid.New()})
	if err != nil || len(got) != 1 || !bytes.Equal(got[subject], keys[0]) {
		t.Errorf("DataKeys = %d keys, %v; want the one key", len(got), err)
	}
}

func TestAnotherMasterKeyCannotOpenTheDataKeys(t *testing.T) {
	pool := pgtest.NewPool(t)
	ctx := context.Background()
	right, _ := keyring.New(pool, newMaster(t))
	subject := uuid.New()
	if _, err := right.DataKey(ctx, subject); err != nil {
		t.Fatal(err)
	}
	wrong, _ := keyring.New(pool, newMaster(t))
	if _, err := wrong.DataKey(ctx, subject); err == nil || !strings.Contains(err.Error(), "right key") {
		t.Errorf("err = %v, want a message asking whether it is the right master key", err)
	}
}

func TestAForgottenSubjectGetsNoNewKey(t *testing.T) {
	pool := pgtest.NewPool(t)
	ctx := context.Background()
	k, _ := keyring.New(pool, newMaster(t))
	never := uuid.New() // forgotten before any data was stored
	if already, err := k.Forget(ctx, never); err != nil || already {
		t.Fatalf("Forget = %v, %v", already, err)
	}
	if _, err := k.DataKey(ctx, never); !errors.Is(err, keyring.ErrForgotten) {
		t.Errorf("DataKey after Forget: err = %v, want ErrForgotten", err)
	}
}

func TestMasterKeyInputsAreCheckedWithAdvice(t *testing.T) {
	if _, err := keyring.ParseMasterKey("not base64!"); err == nil || !strings.Contains(err.Error(), "keygen") {
		t.Errorf("non-base64 key: %v", err)
	}
	if _, err := keyring.ParseMasterKey("c2hvcnQ="); err == nil || !strings.Contains(err.Error(), "want 32") {
		t.Errorf("short key: %v", err)
	}
	path := filepath.Join(t.TempDir(), "master.key")
	if err := os.WriteFile(path, []byte(keyring.GenerateMasterKey()), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := keyring.ReadMasterKeyFile(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("world-readable key file: %v", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := keyring.ReadMasterKeyFile(path); err != nil {
		t.Errorf("private key file: %v", err)
	}
}

func TestAMasterKeyNeverPrintsItself(t *testing.T) {
	encoded := keyring.GenerateMasterKey()
	m, err := keyring.ParseMasterKey(encoded)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(encoded)
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q"} {
		out := fmt.Sprintf(verb, m)
		if strings.Contains(out, encoded) || strings.Contains(out, fmt.Sprintf("%x", raw)) || strings.Contains(out, fmt.Sprint(raw)) {
			t.Errorf("fmt %s prints the key: %s", verb, out)
		}
	}
}

func TestDerivedKeysArePinnedAndIndependentPerPurposeAndMasterKey(t *testing.T) {
	// A pinned vector: sealed data would stop opening if the derivation
	// changed. It is HMAC-SHA256(master, "presente/derived-key/v1/" + purpose),
	// computed outside Go.
	fixed, err := keyring.ParseMasterKey("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=") // bytes 0..31
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprintf("%x", fixed.DeriveKey("idempotency-response")),
		"ae17dea538a09ea234436cb75ed8d5c40ae0db187c6cf1e7e97e7cd6ab61dfd8"; got != want {
		t.Errorf("DeriveKey(idempotency-response) = %s, want %s", got, want)
	}

	m, other := newMaster(t), newMaster(t)
	seen := map[string]string{}
	for _, purpose := range []string{"idempotency-response", "idempotency-response ", "export", "", "sign-in-email"} {
		key := m.DeriveKey(purpose)
		if len(key) != 32 {
			t.Fatalf("DeriveKey(%q) is %d bytes, want 32", purpose, len(key))
		}
		if again := m.DeriveKey(purpose); !bytes.Equal(again, key) {
			t.Errorf("DeriveKey(%q) changed between calls", purpose)
		}
		if bytes.Equal(other.DeriveKey(purpose), key) {
			t.Errorf("two master keys derive the same key for %q", purpose)
		}
		if bytes.Equal(m.BlindIndex(purpose, ""), key) {
			t.Errorf("DeriveKey(%q) equals a blind index of the same purpose", purpose)
		}
		if prev, ok := seen[string(key)]; ok {
			t.Errorf("purposes %q and %q derive the same key", prev, purpose)
		}
		seen[string(key)] = purpose
	}
	if key := (keyring.MasterKey{}).DeriveKey("idempotency-response"); key != nil {
		t.Errorf("the zero master key derives %x, want nil", key)
	}
}
