package eventstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrTransactionIDsFromTheFuture reports a log whose newest transaction id
// is not in the database server's past: the database was restored from a
// logical dump into a cluster whose transaction counter is lower. Readers
// of the global log would stall and cursors would skip new events, so the
// server must not serve until an operator fixes it (see ARCHITECTURE.md,
// "Reading the log without skipping events").
var ErrTransactionIDsFromTheFuture = errors.New("the event log holds transaction ids the database server has not reached yet " +
	"(was it restored from a logical dump?): advance the cluster's transaction counter with pg_resetwal -x, see ARCHITECTURE.md")

const newestTxSQL = `SELECT coalesce(
    (SELECT tx_id FROM events ORDER BY tx_id DESC LIMIT 1) < pg_snapshot_xmax(pg_current_snapshot()),
    true)`

// CheckTransactionIDs verifies that every transaction id in the log lies in
// the server's past, as the commit-safe reading order requires.
func CheckTransactionIDs(ctx context.Context, pool *pgxpool.Pool) error {
	var ok bool
	if err := pool.QueryRow(ctx, newestTxSQL).Scan(&ok); err != nil {
		return fmt.Errorf("check the log's transaction ids: %w", err)
	}
	if !ok {
		return ErrTransactionIDsFromTheFuture
	}
	return nil
}
