package web

import (
	"net/http"
	"slices"

	"github.com/presente-dispatch/presente/infra/accounts"
	"github.com/presente-dispatch/presente/infra/eventstore"
	"github.com/presente-dispatch/presente/web/live"
)

// The live views (web/LIVE.md): websocket endpoints that send a snapshot
// of a board and then its deltas. ?after=<position> resumes from the last
// message a client applied.

// afterParam reads the optional ?after= position.
func afterParam(r *http.Request) (*eventstore.Cursor, error) {
	v := r.URL.Query().Get("after")
	if v == "" {
		return nil, nil
	}
	c, err := eventstore.ParseCursor(v)
	if err != nil {
		return nil, &Error{Code: "invalid_field", Field: "after",
			Message: "after is the position of the last message applied, such as 7411:1290, as the server sent it"}
	}
	return &c, nil
}

func liveClient(p *accounts.Principal) live.Client {
	return live.Client{SessionID: p.SessionID, UserID: p.UserID, Role: string(p.Role), Since: p.Checked}
}

// handleBoardLive serves GET /api/v1/live/board: the dispatch board, for
// staff.
func (s *Server) handleBoardLive(w http.ResponseWriter, r *http.Request, p *accounts.Principal) error {
	after, err := afterParam(r)
	if err != nil {
		return err
	}
	s.hub.ServeView(w, r, liveClient(p), s.feed.BoardView(after))
	return nil
}

// handleShiftsLive serves GET /api/v1/live/shifts: the shift board, with
// who holds and waits for staff and counts only for everyone else.
func (s *Server) handleShiftsLive(w http.ResponseWriter, r *http.Request, p *accounts.Principal) error {
	after, err := afterParam(r)
	if err != nil {
		return err
	}
	s.hub.ServeView(w, r, liveClient(p), s.feed.ShiftsView(slices.Contains(staff, p.Role), after))
	return nil
}

// handleMineLive serves GET /api/v1/live/mine: a volunteer's own
// assignments and shifts, and nobody else's.
func (s *Server) handleMineLive(w http.ResponseWriter, r *http.Request, p *accounts.Principal) error {
	after, err := afterParam(r)
	if err != nil {
		return err
	}
	s.hub.ServeView(w, r, liveClient(p), s.feed.MineView(p.UserID, after))
	return nil
}
