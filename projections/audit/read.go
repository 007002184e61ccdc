package audit

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/presente-dispatch/presente/infra/eventstore"
	"github.com/presente-dispatch/presente/projections"
)

// Entry is one event as the audit log shows it.
type Entry struct {
	// Cursor is the event's place in the log; pass the last one of a page
	// to Page for the next.
	Cursor        eventstore.Cursor `json:"cursor"`
	RecordedAt    time.Time         `json:"recorded_at"`
	Actor         string            `json:"actor"`
	StreamType    string            `json:"stream_type"`
	StreamID      uuid.UUID         `json:"stream_id"`
	StreamVersion int64             `json:"stream_version"`
	EventType     string            `json:"event_type"`
	CorrelationID uuid.UUID         `json:"correlation_id"`
}

// MaxPage is the most entries Page returns at once.
const MaxPage = 1000

// Page returns up to limit entries after the cursor after (the zero
// Cursor for the start), in the log's commit-safe order (writing
// transaction, then position) — the order the projection applies them in.
// Paging by it never skips an event: one committed late, by a transaction
// that started early, is applied, and so shown, only after every event
// before it in that order. Paging by position alone would skip it. A limit
// below 1 or above MaxPage is taken as MaxPage.
func Page(ctx context.Context, q projections.Querier, after eventstore.Cursor, limit int) ([]Entry, error) {
	if limit < 1 || limit > MaxPage {
		limit = MaxPage
	}
	rows, err := q.Query(ctx, `SELECT tx_id, position, recorded_at, actor, stream_type, stream_id, stream_version, event_type, correlation_id
FROM projections.audit_log WHERE (tx_id, position) > ($1::xid8, $2) ORDER BY tx_id, position LIMIT $3`, after.TxID, after.Position, limit)
	if err != nil {
		return nil, fmt.Errorf("read the audit log: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Entry, error) {
		var e Entry
		err := row.Scan(&e.Cursor.TxID, &e.Cursor.Position, &e.RecordedAt, &e.Actor, &e.StreamType, &e.StreamID, &e.StreamVersion,
			&e.EventType, &e.CorrelationID)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("read the audit log: %w", err)
	}
	return out, nil
}
