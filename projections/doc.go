// Package projections runs Presente's read models: the dispatch board,
// the shift board, the volunteer roster, request timelines and the audit
// log, each in its own subpackage as a Projector.
//
// A Runner reads the global log through the commit-safe cursor, writes a
// read model and its checkpoint in one transaction (so each event is
// applied exactly once, however often it is delivered), exposes lag, and
// rebuilds a projection into fresh tables that it swaps in atomically
// while readers keep reading. See ARCHITECTURE.md, "Projections".
package projections
