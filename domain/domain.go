// Package domain holds what every aggregate of Presente shares: the Event
// interface and the Decider, the pure-function shape in which business rules
// are written.
//
// Packages under domain/ import only the standard library and
// github.com/google/uuid. They never touch a database, a network, a clock or
// a logger: time and ids arrive inside commands, and the event store in
// infra/eventstore runs deciders against persisted streams.
package domain

// Event is a fact that happened to one aggregate. Its EventType names it in
// the log; names are past tense ("ShiftClaimed") and never change once an
// event of that type has been stored.
type Event interface {
	EventType() string
}

// Decider is an aggregate's rules written as pure functions over its stream:
// Evolve folds one past event into the state, Decide turns a command and the
// current state into new events or a domain error.
//
// Initial returns a fresh state for an empty stream; it is a function so
// that states holding maps or slices are never shared between commands.
type Decider[S any, C any] struct {
	// StreamType names the aggregate's streams in the log ("request").
	StreamType string
	Initial    func() S
	Evolve     func(state S, event Event) S
	Decide     func(state S, command C) ([]Event, error)
}

// Fold replays events onto the decider's initial state.
func (d Decider[S, C]) Fold(events []Event) S {
	state := d.Initial()
	for _, e := range events {
		state = d.Evolve(state, e)
	}
	return state
}

// InvalidError is a command field that does not hold what it must: the
// field, by its JSON name, and what to fix. Every aggregate answers bad
// input with it, so the API maps it in one place.
type InvalidError struct {
	Field   string
	Message string
}

func (e *InvalidError) Error() string { return e.Field + ": " + e.Message }
