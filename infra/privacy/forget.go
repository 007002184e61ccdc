// Package privacy carries out Presente's duty to forget. Forget shreds one
// data subject: it destroys their data key, deletes what links them to an
// account, and records the forgetting in the log. Retention forgets, on a
// schedule, every subject whose retention period has run out, unless a
// legal hold pauses it.
//
// The command line (presente forget), the retention job and the
// coordinator's "forget this person" all go through Forget, so a person is
// forgotten the same way whoever asks.
package privacy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	privacydomain "github.com/presente-dispatch/presente/domain/privacy"
	"github.com/presente-dispatch/presente/infra/credentials"
	"github.com/presente-dispatch/presente/infra/eventstore"
	"github.com/presente-dispatch/presente/infra/idempotency"
	"github.com/presente-dispatch/presente/infra/keyring"
	"github.com/presente-dispatch/presente/infra/sessions"
)

// Forget destroys subject's data key, so all their personal data, in the
// log and in every backup, becomes unreadable; deletes their credentials
// and sessions, so nothing links an email or a device to them any more;
// and records privacy.SubjectForgotten on their subject stream unless it
// is already recorded. alreadyForgotten tells whether the key had been
// destroyed before.
//
// meta.Reason must be one of the privacy.Reason codes: it is stored in
// the clear beside the subject's id. It is checked, with the actor, before
// anything is destroyed.
//
// The key goes first: if a later step fails, the person is still
// forgotten, and calling Forget again completes the rest. The store must
// register privacy.SubjectForgotten.
func Forget(ctx context.Context, pool *pgxpool.Pool, store *eventstore.Store, subject uuid.UUID, meta eventstore.Metadata) (alreadyForgotten bool, err error) {
	switch {
	case pool == nil || store == nil:
		return false, errors.New("forget: a pool and an event store are required")
	case subject == uuid.Nil:
		return false, errors.New("forget: the subject id is the nil uuid")
	case meta.Actor == "":
		return false, fmt.Errorf("forget subject %s: the actor is required: every forgetting records who asked", subject)
	}
	if _, err := privacydomain.ParseReason(meta.Reason); err != nil {
		return false, fmt.Errorf("forget subject %s: %w", subject, err)
	}
	// The tombstone's time is when the key really was destroyed, whatever
	// clock the caller runs on.
	already, err := keyring.Forget(ctx, pool, subject, time.Now())
	if err != nil {
		return false, err
	}
	// An account holder can no longer sign in, nothing links their email
	// to the account any more, and their open sessions end.
	if err := credentials.Delete(ctx, pool, subject); err != nil {
		return already, fmt.Errorf("the key is destroyed, but: %w", err)
	}
	if err := sessions.DeleteUser(ctx, pool, subject); err != nil {
		return already, fmt.Errorf("the key is destroyed, but: %w", err)
	}
	// Answers kept for their retries are sealed under the master key, not
	// the person's own key: delete them.
	if err := idempotency.DeleteScope(ctx, pool, idempotency.UserScope(subject)); err != nil {
		return already, fmt.Errorf("the key is destroyed, but: %w", err)
	}
	if _, err := eventstore.Execute(ctx, store, privacydomain.Decider, privacydomain.StreamID(subject),
		privacydomain.RecordForgotten{SubjectID: subject}, meta); err != nil {
		return already, fmt.Errorf("subject %s: the key is destroyed, but recording it failed: %w", subject, err)
	}
	return already, nil
}
