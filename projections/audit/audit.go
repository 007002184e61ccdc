// Package audit is the audit log's read model: one row per event of the
// log — its position, when it was recorded, who caused it (the actor, a
// user or system id), the stream it belongs to, its type and correlation
// id — and never its payload.
//
// It holds no personal data: actors are "user:<id>" or "system:<job>",
// never a name; a forgotten subject's id stays, as it stays in the log,
// and identifies nobody once their sealed data is gone.
package audit

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/presente-dispatch/presente/infra/eventstore"
	"github.com/presente-dispatch/presente/projections"
)

// Name is the projection's name.
const Name = "audit"

const table = "audit_log"

// Projector keeps the audit log.
type Projector struct{}

// New returns the audit log's projector.
func New() Projector { return Projector{} }

// Name implements projections.Projector.
func (Projector) Name() string { return Name }

// Version implements projections.Projector. Version 2 adds the index on
// the log's order that Page reads by.
func (Projector) Version() int { return 2 }

// Tables implements projections.Projector.
func (Projector) Tables() []string { return []string{table} }

// DDL implements projections.Projector.
func (Projector) DDL(t projections.Names) []string {
	return append([]string{`CREATE TABLE ` + t.Table(table) + ` (
    position       bigint PRIMARY KEY,
    tx_id          xid8 NOT NULL,
    recorded_at    timestamptz NOT NULL,
    actor          text NOT NULL,
    stream_type    text NOT NULL,
    stream_id      uuid NOT NULL,
    stream_version bigint NOT NULL,
    event_type     text NOT NULL,
    correlation_id uuid NOT NULL
)`},
		indexes(t)...)
}

// LateDDL implements projections.LateIndexer: Apply only appends, so a
// rebuild indexes the log once it has copied it.
func (Projector) LateDDL(t projections.Names) []string { return indexes(t) }

func indexes(t projections.Names) []string {
	return []string{
		`CREATE INDEX ON ` + t.Table(table) + ` (recorded_at)`,
		`CREATE INDEX ON ` + t.Table(table) + ` (actor, recorded_at)`,
		`CREATE INDEX ON ` + t.Table(table) + ` (tx_id, position)`,
	}
}

// Apply implements projections.Projector. It copies with COPY: the audit
// log grows by every event, so a rebuild writes as many rows as the log
// holds.
func (Projector) Apply(ctx context.Context, tx pgx.Tx, t projections.Names, batch []eventstore.Recorded) error {
	rows := make([][]any, len(batch))
	for i, r := range batch {
		rows[i] = []any{r.Position, r.TxID, r.RecordedAt, r.Metadata.Actor, r.StreamType, r.StreamID, r.StreamVersion, r.Type, r.Metadata.CorrelationID}
	}
	_, err := tx.CopyFrom(ctx, t.Identifier(table), []string{"position", "tx_id", "recorded_at", "actor", "stream_type", "stream_id",
		"stream_version", "event_type", "correlation_id"}, pgx.CopyFromRows(rows))
	return err
}
