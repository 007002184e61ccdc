package projections

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/zap"

	"github.com/presente-dispatch/presente/infra/eventstore"
)

// rebuildSuffix names a rebuild's copy of a table. It is fixed, so that a
// rebuild that died half-way leaves tables the next one simply replaces.
const rebuildSuffix = "__rebuild"

// ErrRebuildRunning is returned when the projection is already being
// rebuilt, by this process or another.
var ErrRebuildRunning = errors.New("this projection is already being rebuilt")

// swapAttempts bounds how often a rebuild tries to swap its tables in when
// readers keep the live tables locked beyond swapLockTimeout.
const (
	swapAttempts    = 3
	swapLockTimeout = "5s"
)

// Rebuild builds the named projection again from the start of the log into
// new tables while the live ones keep serving, catches up with the live
// head, and swaps the new tables in: in one transaction that locks the
// projection's checkpoint (the live runners of every process wait for it,
// briefly), applies the last events, drops the live tables, renames the new
// ones into their place and sets the checkpoint. Readers see the old
// tables until that commit and the new ones after it, never a mix and
// never a missing table.
func (r *Runner) Rebuild(ctx context.Context, name string) error {
	pr, err := r.projection(name)
	if err != nil {
		return err
	}
	return r.rebuild(ctx, pr)
}

func (r *Runner) rebuild(ctx context.Context, pr *projection) (err error) {
	p := pr.p
	conn, err := r.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("rebuild projection %s: %w", p.Name(), err)
	}
	defer conn.Release()
	var locked bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, hashtext($2))`, lockRebuild, p.Name()).Scan(&locked); err != nil {
		return fmt.Errorf("rebuild projection %s: %w", p.Name(), err)
	}
	if !locked {
		return fmt.Errorf("rebuild projection %s: %w", p.Name(), ErrRebuildRunning)
	}
	defer func() {
		if _, uerr := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1, hashtext($2))`, lockRebuild, p.Name()); uerr != nil {
			conn.Conn().Close(context.WithoutCancel(ctx)) //nolint:errcheck // closing the session releases its lock
		}
	}()
	pr.setRebuilding(true)
	defer pr.setRebuilding(false)

	fresh := names(p, rebuildSuffix)
	defer func() {
		if err != nil { // leave no half-built copy behind
			r.dropTables(context.WithoutCancel(ctx), p, fresh)
		}
	}()
	late, err := lateDDL(p, fresh)
	if err != nil {
		return err
	}
	err = pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		if err := createTables(ctx, tx, p, fresh, late...); err != nil {
			return err
		}
		return setLogged(ctx, tx, p, fresh, false)
	})
	if err != nil {
		return fmt.Errorf("rebuild projection %s: %w", p.Name(), err)
	}
	var cursor eventstore.Cursor
	readCtx, stopReading := context.WithCancel(ctx)
	defer stopReading()
	for next := range r.readAhead(readCtx, r.batch*10) {
		if next.err != nil {
			return fmt.Errorf("rebuild projection %s: %w", p.Name(), next.err)
		}
		batch := next.batch
		if err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error { return p.Apply(ctx, tx, fresh, batch) }); err != nil {
			return fmt.Errorf("rebuild projection %s: apply events from position %d: %w", p.Name(), batch[0].Position, err)
		}
		cursor = batch[len(batch)-1].Cursor()
	}
	if err := readCtx.Err(); err != nil { // ended before the log did
		return fmt.Errorf("rebuild projection %s: %w", p.Name(), err)
	}
	// Logged again before the late indexes, since SET LOGGED rewrites the
	// table and every index it has.
	err = pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		if err := setLogged(ctx, tx, p, fresh, true); err != nil {
			return err
		}
		for _, stmt := range late {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("create indexes: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("rebuild projection %s: %w", p.Name(), err)
	}
	var swapped swapCursors
	for attempt := 1; ; attempt++ {
		swapped, err = r.swap(ctx, p, fresh, cursor)
		var pgErr *pgconn.PgError
		if err == nil || !errors.As(err, &pgErr) || pgErr.Code != "55P03" || attempt == swapAttempts { // lock_not_available
			break
		}
	}
	if err != nil {
		return fmt.Errorf("rebuild projection %s: swap the new tables in: %w", p.Name(), err)
	}
	// The cursors tell, should a rebuilt read model ever differ from the
	// live one, which of them was wrong.
	r.logger.Info("projection rebuilt", zap.String("projection", p.Name()), zap.Stringer("read_to", cursor),
		zap.Stringer("live_checkpoint", swapped.live), zap.Stringer("checkpoint", swapped.set))
	return nil
}

// readBatch is a batch of the log read ahead of a rebuild, or why it
// could not be read.
type readBatch struct {
	batch []eventstore.Recorded
	err   error
}

// readAhead reads the whole log from its start in batches of limit, one
// batch ahead of the caller, so that reading the next batch overlaps
// applying this one; the channel is closed after the last batch (which may
// carry an error) or when ctx ends. The caller cancels ctx if it stops
// early.
func (r *Runner) readAhead(ctx context.Context, limit int) <-chan readBatch {
	out := make(chan readBatch, 1)
	go func() {
		defer close(out)
		var cursor eventstore.Cursor
		for {
			batch, err := r.read(ctx, cursor, limit)
			if err == nil && len(batch) == 0 {
				return
			}
			select {
			case out <- readBatch{batch: batch, err: err}:
			case <-ctx.Done():
				return
			}
			if err != nil || len(batch) < limit {
				return
			}
			cursor = batch[len(batch)-1].Cursor()
		}
	}()
	return out
}

// setLogged makes the rebuild's tables logged or unlogged. A rebuild fills
// them unlogged: what it writes, row by row and change by change, is not
// written to the WAL too, and a crash meanwhile only loses a rebuild that
// must start again anyway. Setting them logged afterwards writes each
// table to the WAL once, as it ends up, before it is swapped in.
func setLogged(ctx context.Context, tx pgx.Tx, p Projector, t Names, logged bool) error {
	to := "UNLOGGED"
	if logged {
		to = "LOGGED"
	}
	for _, base := range sortedTables(p) {
		if _, err := tx.Exec(ctx, `ALTER TABLE `+t.Table(base)+` SET `+to); err != nil {
			return fmt.Errorf("set %s: %w", strings.ToLower(to), err)
		}
	}
	return nil
}

// swapCursors are the live checkpoint a swap found and the one it set.
type swapCursors struct{ live, set eventstore.Cursor }

// swap catches the new tables up under the checkpoint's lock and puts them
// in the live tables' place, all in one transaction.
func (r *Runner) swap(ctx context.Context, p Projector, fresh Names, cursor eventstore.Cursor) (swapCursors, error) {
	live := Live(p)
	var found eventstore.Cursor
	err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		// Readers hold the live tables while their queries run: wait for
		// them a while, not forever, since new readers queue behind us.
		if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '`+swapLockTimeout+`'`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO projection_checkpoints (name, version, tx_id, position, updated_at)
VALUES ($1, $2, '0', 0, now()) ON CONFLICT (name) DO NOTHING`, p.Name(), p.Version()); err != nil {
			return err
		}
		err := tx.QueryRow(ctx, `SELECT tx_id, position FROM projection_checkpoints WHERE name = $1 FOR UPDATE`, p.Name()).
			Scan(&found.TxID, &found.Position)
		if err != nil {
			return err
		}
		// The live runners are held off now: apply what they may have
		// applied meanwhile.
		for {
			batch, err := r.read(ctx, cursor, r.batch)
			if err != nil {
				return err
			}
			if len(batch) == 0 {
				break
			}
			if err := p.Apply(ctx, tx, fresh, batch); err != nil {
				return fmt.Errorf("apply events from position %d: %w", batch[0].Position, err)
			}
			cursor = batch[len(batch)-1].Cursor()
			if len(batch) < r.batch {
				break
			}
		}
		for _, base := range sortedTables(p) {
			if _, err := tx.Exec(ctx, `DROP TABLE IF EXISTS `+live.Table(base)); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `ALTER TABLE `+fresh.Table(base)+` RENAME TO `+pgx.Identifier{base}.Sanitize()); err != nil {
				return err
			}
			if err := renameIndexes(ctx, tx, base); err != nil {
				return err
			}
		}
		_, err = tx.Exec(ctx, `UPDATE projection_checkpoints SET version = $2, tx_id = $3, position = $4, updated_at = now() WHERE name = $1`,
			p.Name(), p.Version(), cursor.TxID, cursor.Position)
		return err
	})
	return swapCursors{live: found, set: cursor}, err
}

// renameIndexes gives the indexes (and so the constraints) of a table just
// renamed from its rebuild copy the names they would have had if it had
// been created under its own name, so names do not drift rebuild after
// rebuild.
func renameIndexes(ctx context.Context, tx pgx.Tx, base string) error {
	rows, err := tx.Query(ctx, `SELECT c.relname FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = $1 AND t.relname = $2`, Schema, base)
	if err != nil {
		return err
	}
	indexes, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, idx := range indexes {
		rest, ok := strings.CutPrefix(idx, base+rebuildSuffix)
		if !ok {
			continue // a name Postgres truncated: leave it
		}
		if _, err := tx.Exec(ctx, `ALTER INDEX `+pgx.Identifier{Schema, idx}.Sanitize()+` RENAME TO `+pgx.Identifier{base + rest}.Sanitize()); err != nil {
			return err
		}
	}
	return nil
}

func (r *Runner) dropTables(ctx context.Context, p Projector, t Names) {
	for _, base := range p.Tables() {
		if _, err := r.pool.Exec(ctx, `DROP TABLE IF EXISTS `+t.Table(base)); err != nil {
			r.logger.Warn("could not drop a rebuild's table", zap.String("projection", p.Name()), zap.Error(err))
		}
	}
}

func (pr *projection) setRebuilding(on bool) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	pr.rebuilding = on
}
