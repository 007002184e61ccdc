package bus

import (
	"context"

	"github.com/presente-dispatch/presente/infra/eventstore"
)

// OnCommit calls fn after commits until ctx ends: this process's (the
// store's) and, when listener is not nil, other processes' (its
// notifications). Commits that land while fn runs are folded into one
// more call, so fn never misses the last of them.
func OnCommit(ctx context.Context, store *eventstore.Store, listener *Listener, fn func()) {
	var theirs <-chan struct{}
	for {
		ours := store.Committed()
		if listener != nil {
			theirs = listener.Notified()
		}
		select {
		case <-ctx.Done():
			return
		case <-ours:
		case <-theirs:
		}
		fn()
	}
}
