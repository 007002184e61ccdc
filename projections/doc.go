// Package projections holds Presente's read models: the dispatch board, the
// shift board, the volunteer roster, request timelines, response metrics
// and the audit log, each in its own subpackage. None exists yet; they
// arrive with the live board.
//
// The contract every projector will follow: it reads the global log through
// eventstore.Store.ReadAll's commit-safe cursor, writes its read model and
// its checkpoint in one transaction (so each event is applied exactly once),
// and can be rebuilt from the log at any time. See ARCHITECTURE.md.
package projections
