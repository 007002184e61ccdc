package dispatch

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/presente-dispatch/presente/domain/matching"
	"github.com/presente-dispatch/presente/domain/request"
	"github.com/presente-dispatch/presente/domain/volunteer"
	"github.com/presente-dispatch/presente/infra/eventstore"
)

// ReceiveRequest records a new request.
func (s *Service) ReceiveRequest(ctx context.Context, meta eventstore.Metadata, c request.Receive) error {
	_, err := eventstore.Execute(ctx, s.store, request.Decider, c.RequestID, request.Command(c), meta)
	return err
}

// Request runs a command on a request (triage, verification, alert,
// resolve, close, cancel, reopen). Closing or cancelling also ends the
// commitments of the volunteers still on it, in the same transaction, so
// their windows are free again; those who had arrived count as served.
func (s *Service) Request(ctx context.Context, meta eventstore.Metadata, requestID uuid.UUID, c request.Command) error {
	switch c.(type) {
	case request.Close, request.Cancel:
	default:
		_, err := eventstore.Execute(ctx, s.store, request.Decider, requestID, c, meta)
		return err
	}
	_, err := s.store.Transact(ctx, meta, func(ctx context.Context, l eventstore.Loader) ([]eventstore.StreamAppend, error) {
		req, err := load(ctx, l, request.Decider, requestID)
		if err != nil {
			return nil, err
		}
		events, err := request.Decider.Decide(req.state, c)
		if err != nil || len(events) == 0 {
			return nil, err
		}
		appends := []eventstore.StreamAppend{{Stream: eventstore.Stream{Type: request.StreamType, ID: requestID}, Expected: req.version, Events: events}}
		live := map[uuid.UUID]request.Assignment{}
		for _, a := range req.state.Assignments {
			if a.Status != request.Declined && a.Status != request.Withdrawn && a.Status != request.Done {
				live[a.VolunteerID] = a
			}
		}
		for _, id := range lockOrder(slices.Collect(maps.Keys(live))) {
			a := live[id]
			v, err := load(ctx, l, volunteer.Decider, volunteer.StreamID(a.VolunteerID))
			if err != nil {
				return nil, err
			}
			released, err := volunteer.Decider.Decide(v.state, volunteer.Release{CommitmentID: a.AssignmentID, Served: a.Status == request.Arrived})
			if errors.Is(err, volunteer.ErrNoSuchCommitment) {
				continue
			}
			if err != nil {
				return nil, err
			}
			appends = append(appends, eventstore.StreamAppend{Stream: eventstore.Stream{Type: volunteer.StreamType, ID: volunteer.StreamID(a.VolunteerID)},
				Expected: v.version, Events: released})
		}
		return appends, nil
	})
	return err
}

// candidate is what the team rules need of a volunteer, for a window.
func candidate(v volunteer.State, req request.State) request.Candidate {
	var langs []string
	for _, l := range v.Languages {
		if l.Level.AtLeast(volunteer.Conversational) { // basic does not carry a hearing or a raid
			langs = append(langs, l.Code)
		}
	}
	return request.Candidate{VolunteerID: v.VolunteerID, Languages: langs,
		Certifications: v.CertifiedFor(req.Window), Experienced: v.Served > 0}
}

// Offer assigns a volunteer to a request: the request's team rules and the
// volunteer's own (active, free for the request's window, certified for
// all of it) are decided together, and the request and the volunteer's
// record change together or not at all. Two dispatchers offering the same
// volunteer overlapping requests at the same instant: one wins, the other
// gets the volunteer.OverlapError naming the first. It returns the new
// assignment's id.
func (s *Service) Offer(ctx context.Context, meta eventstore.Metadata, requestID, volunteerID uuid.UUID, override bool) (uuid.UUID, error) {
	assignmentID, err := uuid.NewV7()
	if err != nil {
		return uuid.Nil, err
	}
	return s.OfferAs(ctx, meta, assignmentID, requestID, volunteerID, override)
}

// OfferAs is Offer with the new assignment's id given: a retried request
// gives the same id, and the offer it already made is found, not repeated.
func (s *Service) OfferAs(ctx context.Context, meta eventstore.Metadata, assignmentID, requestID, volunteerID uuid.UUID, override bool) (uuid.UUID, error) {
	_, err := s.store.Transact(ctx, meta, func(ctx context.Context, l eventstore.Loader) ([]eventstore.StreamAppend, error) {
		req, err := load(ctx, l, request.Decider, requestID)
		if err != nil {
			return nil, err
		}
		if !req.state.Exists {
			return nil, request.ErrNotFound
		}
		// Volunteers' streams are locked in stream id order, so two offers
		// sharing team members never lock them in opposite orders.
		ids := []uuid.UUID{volunteerID}
		for _, a := range req.state.Assignments {
			if a.Status != request.Declined && a.Status != request.Withdrawn && a.VolunteerID != volunteerID {
				ids = append(ids, a.VolunteerID)
			}
		}
		ids = lockOrder(ids)
		vols := map[uuid.UUID]loaded[volunteer.State]{}
		for _, id := range ids {
			if vols[id], err = load(ctx, l, volunteer.Decider, volunteer.StreamID(id)); err != nil {
				return nil, err
			}
		}
		v := vols[volunteerID]
		if !v.state.Exists {
			return nil, volunteer.ErrNotFound
		}
		var team []request.Candidate
		for _, id := range ids {
			if id != volunteerID {
				team = append(team, candidate(vols[id].state, req.state))
			}
		}
		offered, err := request.Decider.Decide(req.state, request.Offer{AssignmentID: assignmentID,
			Candidate: candidate(v.state, req.state), Team: team, Override: override})
		if err != nil {
			return nil, err
		}
		committed, err := volunteer.Decider.Decide(v.state, volunteer.Commit{CommitmentID: assignmentID, Kind: volunteer.Assignment,
			Window: req.state.Window, Requires: req.state.Certifications, FromShift: req.state.Kind == request.RapidResponse, Ref: requestID})
		if err != nil {
			return nil, err
		}
		return []eventstore.StreamAppend{
			{Stream: eventstore.Stream{Type: request.StreamType, ID: requestID}, Expected: req.version, Events: offered},
			{Stream: eventstore.Stream{Type: volunteer.StreamType, ID: volunteer.StreamID(volunteerID)}, Expected: v.version, Events: committed},
		}, nil
	})
	if err != nil {
		return uuid.Nil, err
	}
	return assignmentID, nil
}

// ChangeAssignment moves an assignment on: accepted, declined, en route,
// arrived, done, withdrawn. A declined or withdrawn assignment frees the
// volunteer's window; a done one counts as served.
func (s *Service) ChangeAssignment(ctx context.Context, meta eventstore.Metadata, requestID, assignmentID uuid.UUID, to request.AssignmentStatus) error {
	_, err := s.store.Transact(ctx, meta, func(ctx context.Context, l eventstore.Loader) ([]eventstore.StreamAppend, error) {
		req, err := load(ctx, l, request.Decider, requestID)
		if err != nil {
			return nil, err
		}
		a, ok := req.state.Assignment(assignmentID)
		if !ok {
			return nil, request.ErrNoSuchAssignment
		}
		events, err := request.Decider.Decide(req.state, request.ChangeAssignment{AssignmentID: assignmentID, To: to, At: s.now()})
		if err != nil || len(events) == 0 {
			return nil, err
		}
		appends := []eventstore.StreamAppend{{Stream: eventstore.Stream{Type: request.StreamType, ID: requestID}, Expected: req.version, Events: events}}
		if to != request.Declined && to != request.Withdrawn && to != request.Done {
			return appends, nil
		}
		v, err := load(ctx, l, volunteer.Decider, volunteer.StreamID(a.VolunteerID))
		if err != nil {
			return nil, err
		}
		released, err := volunteer.Decider.Decide(v.state, volunteer.Release{CommitmentID: assignmentID, Served: to == request.Done})
		if errors.Is(err, volunteer.ErrNoSuchCommitment) {
			released, err = nil, nil
		}
		if err != nil {
			return nil, err
		}
		return append(appends, eventstore.StreamAppend{Stream: eventstore.Stream{Type: volunteer.StreamType, ID: volunteer.StreamID(a.VolunteerID)},
			Expected: v.version, Events: released}), nil
	})
	return err
}

// Match ranks the volunteers who could take the request now, with the
// reasons each matched or not (see domain/matching); relaxed names the
// filters the dispatcher dropped. Until the live projections arrive it
// folds every volunteer's stream, which suits a network of hundreds.
func (s *Service) Match(ctx context.Context, requestID uuid.UUID, relaxed ...string) (matching.Result, error) {
	req, _, err := eventstore.LoadState(ctx, s.store, request.Decider, requestID)
	if err != nil {
		return matching.Result{}, err
	}
	if !req.Exists {
		return matching.Result{}, request.ErrNotFound
	}
	vols, err := s.Volunteers(ctx)
	if err != nil {
		return matching.Result{}, err
	}
	return matching.Rank(req, vols, s.now(), relaxed...), nil
}

// RequestState returns a request as its events leave it.
func (s *Service) RequestState(ctx context.Context, id uuid.UUID) (request.State, error) {
	st, _, err := s.RequestView(ctx, id)
	return st, err
}

// RequestView reads a request once: its state, and what it was received
// with, including the person's details as revealed to staff (the marker
// once the person is forgotten).
func (s *Service) RequestView(ctx context.Context, id uuid.UUID) (request.State, request.ReceivedEvent, error) {
	history, _, err := s.store.Load(ctx, id)
	if err != nil {
		return request.State{}, request.ReceivedEvent{}, err
	}
	st, err := eventstore.Fold(request.Decider, history)
	var other *eventstore.StreamTypeError
	if errors.As(err, &other) || (err == nil && !st.Exists) {
		return request.State{}, request.ReceivedEvent{}, request.ErrNotFound
	}
	if err != nil {
		return request.State{}, request.ReceivedEvent{}, err
	}
	received, _ := history[0].Event.(request.ReceivedEvent) // a request's stream starts with it
	return st, received, nil
}

// ClosedRequestPeople lists the people of requests closed or cancelled
// before cutoff (and not reopened since). It is the retention source of
// the people Presente serves (infra/privacy): their personal data is
// forgotten once the retention period after closing has passed, while the
// requests' timelines and statistics stay.
func (s *Service) ClosedRequestPeople(ctx context.Context, cutoff time.Time) ([]uuid.UUID, error) {
	ids, err := s.store.StreamIDs(ctx, request.StreamType)
	if err != nil {
		return nil, err
	}
	var due []uuid.UUID
	for _, id := range ids {
		history, _, err := s.store.Load(ctx, id)
		if err != nil {
			return nil, err
		}
		st := request.Decider.Initial()
		var ended time.Time
		for _, r := range history {
			st = request.Decider.Evolve(st, r.Event)
			switch e := r.Event.(type) {
			case request.ClosedEvent:
				ended = e.At
			case request.CancelledEvent:
				ended = e.At
			case request.ReopenedEvent:
				ended = time.Time{}
			}
		}
		if (st.Closed || st.Cancelled) && !ended.IsZero() && ended.Before(cutoff) {
			due = append(due, st.PersonID)
		}
	}
	return due, nil
}

// VolunteerAssignment is what a volunteer may know of an assignment of
// theirs: the request's kind, window and region always; the meeting point
// and the person's first name only once they accepted, from an hour
// before the window until it ends (need to know).
type VolunteerAssignment struct {
	RequestID    uuid.UUID                `json:"request_id"`
	AssignmentID uuid.UUID                `json:"assignment_id"`
	Status       request.AssignmentStatus `json:"status"`
	Kind         request.Kind             `json:"kind"`
	SubKind      string                   `json:"sub_kind,omitempty"`
	Start        time.Time                `json:"start"`
	End          time.Time                `json:"end"`
	Region       string                   `json:"region"`
	MeetingPoint string                   `json:"meeting_point,omitempty"`
	FirstName    string                   `json:"first_name,omitempty"`
}

// revealBefore is how long before an assignment's window the volunteer
// sees where to go and whom to meet.
const revealBefore = time.Hour

// AssignmentsOf lists a volunteer's live assignments (offered, accepted,
// en route, arrived), soonest first.
func (s *Service) AssignmentsOf(ctx context.Context, volunteerID uuid.UUID) ([]VolunteerAssignment, error) {
	v, err := s.VolunteerState(ctx, volunteerID)
	if err != nil {
		return nil, err
	}
	now := s.now()
	out := []VolunteerAssignment{}
	// The volunteer's record holds each live assignment and its request:
	// read only those requests, once each.
	for _, c := range v.Commitments {
		if c.Kind != volunteer.Assignment {
			continue
		}
		r, details, err := s.RequestView(ctx, c.Ref)
		if err != nil {
			return nil, err
		}
		a, ok := r.Assignment(c.CommitmentID)
		if !ok || a.VolunteerID != volunteerID {
			continue
		}
		va := VolunteerAssignment{RequestID: r.RequestID, AssignmentID: a.AssignmentID, Status: a.Status, Kind: r.Kind,
			SubKind: details.SubKind, Start: r.Window.Start, End: r.Window.End, Region: r.Region}
		if a.Status != request.Offered && !now.Before(r.Window.Start.Add(-revealBefore)) && now.Before(r.Window.End) {
			va.MeetingPoint = details.MeetingPoint
			va.FirstName, _, _ = strings.Cut(strings.TrimSpace(details.PersonName), " ")
		}
		out = append(out, va)
	}
	slices.SortFunc(out, func(a, b VolunteerAssignment) int { return a.Start.Compare(b.Start) })
	return out, nil
}
