package projections

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/presente-dispatch/presente/infra/eventstore"
)

// Schema is the PostgreSQL schema read-model tables live in
// (infra/postgres/migrations/008_projections.sql). The server may create
// tables there and nowhere else.
const Schema = "projections"

// A Projector turns events into one read model: a set of tables it owns.
//
// Apply must be a function of the events alone: the read model after
// applying the whole log must not depend on how the log was cut into
// batches, on when it ran, or on what it read elsewhere, so that a rebuild
// equals the live tables row for row. It must not write personal data:
// read models hold ids, codes, statuses, times, regions, languages and
// counts, never a field the event log seals.
type Projector interface {
	// Name identifies the projection: lower-case letters, digits and '_',
	// at most 31 characters. It names the checkpoint and prefixes no table
	// by itself.
	Name() string
	// Version is the schema version of the read model. Changing the tables
	// or what Apply writes into them means raising it: a runner finding
	// tables built at another version rebuilds them.
	Version() int
	// Tables lists the base names of the tables the projector owns, each
	// a valid unquoted identifier (lower case).
	Tables() []string
	// DDL returns the statements that create the tables, named through t:
	// CREATE TABLE t.Table("x") ..., CREATE INDEX ON t.Table("x") (...).
	// Indexes and constraints are left unnamed, so that a copy made for a
	// rebuild never collides with the live table's.
	DDL(t Names) []string
	// Apply writes the effect of a batch of events, in log order, through
	// tx into the tables named by t. The runner commits it together with
	// the checkpoint, or neither.
	Apply(ctx context.Context, tx pgx.Tx, t Names, batch []eventstore.Recorded) error
}

// A LateIndexer is a Projector whose Apply does not rely on some of its
// indexes: they serve readers only. A rebuild creates those after it has
// applied the log, which is faster than maintaining them row by row; live
// tables are created with every statement of DDL.
type LateIndexer interface {
	Projector
	// LateDDL returns the statements of DDL(t), as DDL returns them, that
	// may run once the tables are loaded: CREATE INDEX statements that no
	// statement of Apply needs.
	LateDDL(t Names) []string
}

// lateDDL returns p's late statements, checking that each is one of DDL:
// a rebuild must end with the tables the live ones would have.
func lateDDL(p Projector, t Names) ([]string, error) {
	li, ok := p.(LateIndexer)
	if !ok {
		return nil, nil
	}
	late, all := li.LateDDL(t), p.DDL(t)
	for _, stmt := range late {
		if !slices.Contains(all, stmt) {
			return nil, fmt.Errorf("projections: projector %s: late statement %q is not one of its DDL", p.Name(), stmt)
		}
	}
	return late, nil
}

// Names maps the base name of each table a projector owns to the name it
// has in one run: the live table, or a rebuild's copy.
type Names struct {
	names map[string]string
	ids   map[string]pgx.Identifier
}

// Live returns the names of a projector's live tables.
func Live(p Projector) Names { return names(p, "") }

// names returns the tables of p with suffix appended to each base name.
func names(p Projector, suffix string) Names {
	n := Names{names: map[string]string{}, ids: map[string]pgx.Identifier{}}
	for _, base := range p.Tables() {
		n.ids[base] = pgx.Identifier{Schema, base + suffix}
		n.names[base] = n.ids[base].Sanitize()
	}
	return n
}

// Table returns the schema-qualified, quoted name of the table with the
// given base name. A base name the projector did not declare yields a name
// that no table has, so the statement using it fails and says which.
func (n Names) Table(base string) string {
	if t, ok := n.names[base]; ok {
		return t
	}
	return pgx.Identifier{Schema, "undeclared table " + base}.Sanitize()
}

// Identifier returns the table's name as an identifier, for CopyFrom.
func (n Names) Identifier(base string) pgx.Identifier {
	if _, ok := n.names[base]; !ok {
		return pgx.Identifier{Schema, "undeclared table " + base}
	}
	return n.ids[base]
}

var (
	projectorName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,30}$`)
	tableName     = regexp.MustCompile(`^[a-z][a-z0-9_]{0,40}$`)
)

// check refuses a projector the runner could not manage safely.
func check(p Projector) error {
	switch {
	case p == nil:
		return fmt.Errorf("projections: a nil projector")
	case !projectorName.MatchString(p.Name()):
		return fmt.Errorf("projections: projector name %q: use lower-case letters, digits and _, at most 31, starting with a letter", p.Name())
	case p.Version() < 1:
		return fmt.Errorf("projections: projector %s: version %d must be at least 1", p.Name(), p.Version())
	case len(p.Tables()) == 0:
		return fmt.Errorf("projections: projector %s owns no table", p.Name())
	}
	for _, t := range p.Tables() {
		if !tableName.MatchString(t) || strings.HasSuffix(t, rebuildSuffix) {
			return fmt.Errorf("projections: projector %s: table name %q: use lower-case letters, digits and _, at most 41, starting with a letter", p.Name(), t)
		}
	}
	return nil
}

// less tells whether cursor a comes before b in the log's commit-safe order.
func less(a, b eventstore.Cursor) bool {
	if a.TxID != b.TxID {
		return a.TxID < b.TxID
	}
	return a.Position < b.Position
}

// Twin returns p under the name prefix+p.Name(), owning the tables
// prefix+table: the same read model kept apart from p's. Tests build a
// read model twice with it and compare; an operator could shadow a
// projection the same way.
func Twin(p Projector, prefix string) Projector { return twin{p: p, prefix: prefix} }

type twin struct {
	p      Projector
	prefix string
}

func (t twin) Name() string { return t.prefix + t.p.Name() }
func (t twin) Version() int { return t.p.Version() }
func (t twin) Tables() []string {
	out := make([]string, 0, len(t.p.Tables()))
	for _, base := range t.p.Tables() {
		out = append(out, t.prefix+base)
	}
	return out
}

// inner maps p's base names to the twin's tables.
func (t twin) inner(n Names) Names {
	m := Names{names: map[string]string{}, ids: map[string]pgx.Identifier{}}
	for _, base := range t.p.Tables() {
		m.names[base], m.ids[base] = n.Table(t.prefix+base), n.Identifier(t.prefix+base)
	}
	return m
}

func (t twin) DDL(n Names) []string { return t.p.DDL(t.inner(n)) }

// LateDDL is p's, if p is a LateIndexer.
func (t twin) LateDDL(n Names) []string {
	if li, ok := t.p.(LateIndexer); ok {
		return li.LateDDL(t.inner(n))
	}
	return nil
}

func (t twin) Apply(ctx context.Context, tx pgx.Tx, n Names, batch []eventstore.Recorded) error {
	return t.p.Apply(ctx, tx, t.inner(n), batch)
}

// Querier runs a query: a pool, a connection or a transaction. The read
// functions of each read model take one, so that a caller can read a
// snapshot of several in one REPEATABLE READ transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}
