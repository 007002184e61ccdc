package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/presente-dispatch/presente/infra/keyring"
	"github.com/presente-dispatch/presente/infra/postgres/pgtest"
)

func TestRebuildSwapsInFreshReadModels(t *testing.T) {
	dbURL := pgtest.NewDatabase(t)
	env := envOf(map[string]string{"DATABASE_URL": dbURL, "PRESENTE_MASTER_KEY": keyring.GenerateMasterKey()})
	var out, errs bytes.Buffer
	if code := run(context.Background(), []string{"rebuild"}, env, nil, &out, &errs); code != exitOK {
		t.Fatalf("rebuild every read model: exit %d: %s", code, errs.String())
	}
	for _, p := range readModels() {
		if !strings.Contains(out.String(), "rebuilt "+p.Name()+"\n") {
			t.Errorf("rebuild did not report %s:\n%s", p.Name(), out.String())
		}
	}
	out.Reset()
	if code := run(context.Background(), []string{"rebuild", "board"}, env, nil, &out, &errs); code != exitOK || out.String() != "rebuilt board\n" {
		t.Errorf("rebuild board: exit %d, %q %s", code, out.String(), errs.String())
	}
	errs.Reset()
	if code := run(context.Background(), []string{"rebuild", "bored"}, env, nil, &out, &errs); code == exitOK || !strings.Contains(errs.String(), "board, ") {
		t.Errorf("rebuild of an unknown read model: exit %d: %s; want a failure naming the read models", code, errs.String())
	}
}
