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
	// Digest summarizes every stream's head (id, version, hash). Recorded
	// outside the database, it lets a later verification prove that the
	// heads it then sees extend the ones recorded.
	Digest string `json:"digest"`
}

// OK tells whether no break was found.
func (r VerifyReport) OK() bool { return len(r.Breaks) == 0 }

type streamHead struct {
	version int64
	hash    []byte
	typ     string
}

var zeroHash = make([]byte, sha256.Size)

// Verify walks every stream of the log and recomputes its hash chain from
// the stored columns, independently of the database's own hash function.
// It reports every event whose hash, link to its predecessor or version
// number does not match, and every stream whose recorded head disagrees
// with its events.
func (s *Store) Verify(ctx context.Context) (VerifyReport, error) {
	heads := map[uuid.UUID]streamHead{}
	rows, err := s.pool.Query(ctx, `SELECT stream_id, stream_type, version, last_hash FROM streams`)
	if err != nil {
		return VerifyReport{}, fmt.Errorf("verify: read streams: %w", err)
	}
	for rows.Next() {
		var id uuid.UUID
		var h streamHead
		if err := rows.Scan(&id, &h.typ, &h.version, &h.hash); err != nil {
			rows.Close()
			return VerifyReport{}, fmt.Errorf("verify: read streams: %w", err)
		}
		heads[id] = h
	}
	if err := rows.Err(); err != nil {
		return VerifyReport{}, fmt.Errorf("verify: read streams: %w", err)
	}

	report := VerifyReport{Streams: len(heads), Breaks: []Break{}}
	rows, err = s.pool.Query(ctx, `SELECT position, stream_id, stream_type, stream_version, event_id, event_type,
       schema_version, recorded_at, metadata::text, data::text, prev_hash, hash
FROM events ORDER BY stream_id, stream_version`)
	if err != nil {
		return VerifyReport{}, fmt.Errorf("verify: read events: %w", err)
	}
	defer rows.Close()

	var (
		cur     uuid.UUID
		started bool
		version int64
		prev    []byte
	)
	finish := func() {
		if !started {
			return
		}
		h, ok := heads[cur]
		switch {
		case !ok:
			report.Breaks = append(report.Breaks, Break{StreamID: cur, Problem: "has events but no row in streams"})
		case h.version != version:
			report.Breaks = append(report.Breaks, Break{StreamID: cur,
				Problem: fmt.Sprintf("streams records version %d but the events end at version %d", h.version, version)})
		case !bytes.Equal(h.hash, prev):
			report.Breaks = append(report.Breaks, Break{StreamID: cur, Problem: "streams records a head hash that is not the hash of its last event"})
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
			cur, started, version, prev = e.streamID, true, 0, zeroHash
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
		version, prev = e.streamVersion, storedHash
	}
	if err := rows.Err(); err != nil {
		return VerifyReport{}, fmt.Errorf("verify: read events: %w", err)
	}
	finish()
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

	digest, err := s.headsDigest(ctx)
	if err != nil {
		return VerifyReport{}, err
	}
	report.Digest = digest
	return report, nil
}

// headsDigest hashes every stream's (id, version, head hash), in id order.
func (s *Store) headsDigest(ctx context.Context) (string, error) {
	rows, err := s.pool.Query(ctx, `SELECT stream_id, version, last_hash FROM streams ORDER BY stream_id`)
	if err != nil {
		return "", fmt.Errorf("verify: digest stream heads: %w", err)
	}
	defer rows.Close()
	h := sha256.New()
	for rows.Next() {
		var id uuid.UUID
		var version int64
		var last []byte
		if err := rows.Scan(&id, &version, &last); err != nil {
			return "", fmt.Errorf("verify: digest stream heads: %w", err)
		}
		fmt.Fprintf(h, "%s %d %x\n", id, version, last)
	}
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("verify: digest stream heads: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
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
