package credentials_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/presente-dispatch/presente/infra/credentials"
	"github.com/presente-dispatch/presente/infra/keyring"
	"github.com/presente-dispatch/presente/infra/postgres/pgtest"
)

func TestCredentialsAreFoundByEmailAndReplaceable(t *testing.T) {
	pool := pgtest.NewPool(t)
	master, _ := keyring.ParseMasterKey(keyring.GenerateMasterKey())
	s := credentials.New(pool, master)
	ctx := context.Background()
	user := uuid.New()
	if err := s.Create(ctx, user, "vol@example.org", "$argon2id$first"); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, uuid.New(), "vol@example.org", "$argon2id$other"); !errors.Is(err, credentials.ErrEmailTaken) {
		t.Errorf("a second account with the same email: err = %v, want ErrEmailTaken", err)
	}
	if err := s.SetPassword(ctx, user, "$argon2id$second"); err != nil {
		t.Fatal(err)
	}
	id, hash, err := s.Lookup(ctx, "vol@example.org")
	if err != nil || id != user || hash != "$argon2id$second" {
		t.Errorf("Lookup = %s, %q, %v; want the user with the new hash", id, hash, err)
	}
	if _, _, err := s.Lookup(ctx, "other@example.org"); !errors.Is(err, credentials.ErrNotFound) {
		t.Errorf("unknown email: err = %v, want ErrNotFound", err)
	}
	if err := s.SetPassword(ctx, uuid.New(), "$argon2id$x"); !errors.Is(err, credentials.ErrNotFound) {
		t.Errorf("SetPassword of an unknown user: err = %v, want ErrNotFound", err)
	}
	// Another master key gives other indexes: the table cannot be searched without it.
	otherMaster, _ := keyring.ParseMasterKey(keyring.GenerateMasterKey())
	if _, _, err := credentials.New(pool, otherMaster).Lookup(ctx, "vol@example.org"); !errors.Is(err, credentials.ErrNotFound) {
		t.Errorf("lookup with another master key: err = %v, want ErrNotFound", err)
	}
	if err := credentials.Delete(ctx, pool, user); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Lookup(ctx, "vol@example.org"); !errors.Is(err, credentials.ErrNotFound) {
		t.Errorf("after Delete: err = %v, want ErrNotFound", err)
	}
}
