package eventstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Break is one place where the stored log contradicts its hash chain.
type Break struct {
	StreamID      uuid.UUID `json:"stream_id"`
	StreamVersion int64     `json:"stream_version"`
	Position      int64     `json:"position"`
	Problem       string    `json:"problem"`
}

func (b Break) String() string {
	if b.Position == 0 {
		return fmt.Sprintf("stream %s: %s", b.StreamID, b.Problem)
	}
	return fmt.Sprintf("stream %s version %d (position %d): %s", b.StreamID, b.StreamVersion, b.Position, b.Problem)
}

// VerifyReport is the outcome of walking every stream's hash chain.
type VerifyReport struct {
	Streams int     `json:"streams"`
	Events  int64   `json:"events"`
	Breaks  []Break `json:"breaks"`
	// Digest is a SHA-256 over every stream's head (id, version, hash of
	// its last event), in id order. The chain alone cannot reveal history
	// rewritten from some event onward with every later hash recomputed, or
	// a stream's newest events removed together with its head; a digest
	// recorded outside the database can, since it would no longer match
	// (see ARCHITECTURE.md).
	Digest string `json:"digest"`
	// Heads lists every stream's head, in stream id order, to be saved as
	// the anchor of a later verification.
	Heads []Head `json:"-"`
}

// Head is a stream's newest event as one verification saw it. Heads saved
// outside the database (an anchor) let a later verification prove that
// history was only appended to since: every anchored event must still be
// there, with the same hash.
type Head struct {
	StreamID uuid.UUID `json:"stream_id"`
	Version  int64     `json:"version"`
	Hash     string    `json:"hash"`
}

// OK tells whether no break was found.
func (r VerifyReport) OK() bool { return len(r.Breaks) == 0 }

type streamHead struct {
	version int64
	typ     string
}

var zeroHash = make([]byte, sha256.Size)

// Verify walks every stream of the log and recomputes its hash chain from
// the stored columns, independently of the database's own hash function.
// It reports every event whose hash, link to its predecessor or version
// number does not match, and every stream whose recorded head disagrees
// with its events.
//
// Each anchor, a head saved by an earlier verification, must still be in
// the log with the same hash; otherwise its stream's history was rewritten
// or cut short, however carefully the chain was recomputed.
func (s *Store) Verify(ctx context.Context, anchors []Head) (report VerifyReport, err error) {
	// One snapshot for both tables: read separately, a stream appended to
	// in between would look tampered with.
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return VerifyReport{}, fmt.Errorf("verify: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // read-only
	anchored := make(map[uuid.UUID]Head, len(anchors))
	for _, a := range anchors {
		anchored[a.StreamID] = a
	}
	heads := map[uuid.UUID]streamHead{}
	rows, err := tx.Query(ctx, `SELECT stream_id, stream_type, version FROM streams`)
	if err != nil {
		return VerifyReport{}, fmt.Errorf("verify: read streams: %w", err)
	}
	for rows.Next() {
		var id uuid.UUID
		var h streamHead
		if err := rows.Scan(&id, &h.typ, &h.version); err != nil {
			rows.Close()
			return VerifyReport{}, fmt.Errorf("verify: read streams: %w", err)
		}
		heads[id] = h
	}
	if err := rows.Err(); err != nil {
		return VerifyReport{}, fmt.Errorf("verify: read streams: %w", err)
	}

	report = VerifyReport{Streams: len(heads), Breaks: []Break{}}
	rows, err = tx.Query(ctx, `SELECT position, stream_id, stream_type, stream_version, event_id, event_type,
       schema_version, recorded_at, metadata::text, data::text, prev_hash, hash
FROM events ORDER BY stream_id, stream_version`)
	if err != nil {
		return VerifyReport{}, fmt.Errorf("verify: read events: %w", err)
	}
	defer rows.Close()

	var (
		cur        uuid.UUID
		started    bool
		version    int64
		prev       []byte
		streamType string
		digest     = sha256.New()
	)
	finish := func() {
		if !started {
			return
		}
		fmt.Fprintf(digest, "%s %d %x\n", cur, version, prev)
		report.Heads = append(report.Heads, Head{StreamID: cur, Version: version, Hash: hex.EncodeToString(prev)})
		if a, ok := anchored[cur]; ok {
			if a.Version > version {
				report.Breaks = append(report.Breaks, Break{StreamID: cur,
					Problem: fmt.Sprintf("the anchor recorded version %d but the stream now ends at version %d: events were removed", a.Version, version)})
			}
			delete(anchored, cur)
		}
		h, ok := heads[cur]
		switch {
		case !ok:
			report.Breaks = append(report.Breaks, Break{StreamID: cur, Problem: "has events but no row in streams"})
		case h.version != version:
			report.Breaks = append(report.Breaks, Break{StreamID: cur,
				Problem: fmt.Sprintf("streams records version %d but the events end at version %d", h.version, version)})
		case h.typ != streamType:
			report.Breaks = append(report.Breaks, Break{StreamID: cur,
				Problem: fmt.Sprintf("streams records type %s but its events are %s", h.typ, streamType)})
		}
		delete(heads, cur)
	}
	for rows.Next() {
		var (
			e                      eventRow
			metadataText, dataText string
			storedPrev, storedHash []byte
			schemaVersion          int32
		)
		if err := rows.Scan(&e.position, &e.streamID, &e.streamType, &e.streamVersion, &e.eventID, &e.eventType,
			&schemaVersion, &e.recordedAt, &metadataText, &dataText, &storedPrev, &storedHash); err != nil {
			return VerifyReport{}, fmt.Errorf("verify: read events: %w", err)
		}
		e.schemaVersion = int(schemaVersion)
		e.metadata, e.data = metadataText, dataText
		if !started || e.streamID != cur {
			finish()
			cur, started, version, prev, streamType = e.streamID, true, 0, zeroHash, e.streamType
		}
		if e.streamType != streamType {
			report.Breaks = append(report.Breaks, Break{StreamID: e.streamID, StreamVersion: e.streamVersion, Position: e.position,
				Problem: fmt.Sprintf("is a %s event in a %s stream", e.streamType, streamType)})
		}
		report.Events++
		brk := func(problem string) {
			report.Breaks = append(report.Breaks, Break{StreamID: e.streamID, StreamVersion: e.streamVersion, Position: e.position, Problem: problem})
		}
		if e.streamVersion != version+1 {
			brk(fmt.Sprintf("follows version %d: versions %d to %d are missing", version, version+1, e.streamVersion-1))
		}
		if !bytes.Equal(storedPrev, prev) {
			brk("its link to the previous event does not match that event's hash")
		}
		if want := e.hash(storedPrev); !bytes.Equal(storedHash, want) {
			brk("its stored hash does not match its contents: the event was altered after it was written")
		}
		if a, ok := anchored[e.streamID]; ok && a.Version == e.streamVersion && a.Hash != hex.EncodeToString(storedHash) {
			brk("differs from the event the anchor recorded: history was rewritten from here or earlier")
		}
		version, prev = e.streamVersion, storedHash
	}
	if err := rows.Err(); err != nil {
		return VerifyReport{}, fmt.Errorf("verify: read events: %w", err)
	}
	finish()
	for id, a := range anchored {
		report.Breaks = append(report.Breaks, Break{StreamID: id,
			Problem: fmt.Sprintf("the anchor recorded this stream at version %d but it has no events now", a.Version)})
	}
	for id, h := range heads {
		if h.version != 0 {
			report.Breaks = append(report.Breaks, Break{StreamID: id,
				Problem: fmt.Sprintf("streams records version %d but the stream has no events", h.version)})
		}
	}
	sort.Slice(report.Breaks, func(i, j int) bool {
		a, b := report.Breaks[i], report.Breaks[j]
		if a.StreamID != b.StreamID {
			return a.StreamID.String() < b.StreamID.String()
		}
		return a.StreamVersion < b.StreamVersion
	})

	report.Digest = hex.EncodeToString(digest.Sum(nil))
	return report, nil
}

// eventRow holds the stored columns an event's hash covers.
type eventRow struct {
	position      int64
	streamID      uuid.UUID
	streamType    string
	streamVersion int64
	eventID       uuid.UUID
	eventType     string
	schemaVersion int
	recordedAt    time.Time
	metadata      string
	data          string
}

// hash recomputes the chain link exactly as the database's event_hash
// function does (migrations/001_event_store.sql): SHA-256 over the previous
// hash followed by the newline-joined text of the columns.
func (e eventRow) hash(prev []byte) []byte {
	var b bytes.Buffer
	b.Write(prev)
	for i, field := range []string{
		strconv.FormatInt(e.position, 10),
		e.streamID.String(),
		e.streamType,
		strconv.FormatInt(e.streamVersion, 10),
		e.eventID.String(),
		e.eventType,
		strconv.Itoa(e.schemaVersion),
		strconv.FormatInt(e.recordedAt.UnixMicro(), 10),
		e.metadata,
		e.data,
	} {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(field)
	}
	sum := sha256.Sum256(b.Bytes())
	return sum[:]
}
