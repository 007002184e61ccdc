package web

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/presente-dispatch/presente/domain/account"
	"github.com/presente-dispatch/presente/domain/volunteer"
	"github.com/presente-dispatch/presente/infra/accounts"
)

// handleListAccounts serves GET /api/v1/accounts: every account, for admins.
func (s *Server) handleListAccounts(w http.ResponseWriter, r *http.Request, _ *accounts.Principal) error {
	list, err := s.accounts.Accounts(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"accounts": list})
	return nil
}

// handleGetAccount serves GET /api/v1/accounts/{id}: one account, for admins
// and for its holder.
func (s *Server) handleGetAccount(w http.ResponseWriter, r *http.Request, _ *accounts.Principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	a, err := s.accounts.Account(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a)
	return nil
}

// reasonRequest is a body that only gives a reason.
type reasonRequest struct {
	Reason string `json:"reason"`
}

// decodeReason reads an optional {"reason": ...} body; an empty body is
// no reason.
func decodeReason(r *http.Request) (string, error) {
	var req reasonRequest
	if r.ContentLength == 0 {
		return "", nil
	}
	if err := decodeJSON(r, &req); err != nil {
		return "", err
	}
	if err := checkReason(req.Reason); err != nil {
		return "", err
	}
	return req.Reason, nil
}

// checkReason refuses a reason too long to record.
func checkReason(reason string) error {
	if len(reason) > 2000 {
		return &Error{Code: "invalid_field", Field: "reason", Message: "reason is longer than 2000 characters"}
	}
	return nil
}

// checkCodes lower-cases and checks a list of codes (language tags).
func checkCodes(codes *[]string, field string) error {
	if err := checkCount(len(*codes), field); err != nil {
		return err
	}
	for i, c := range *codes {
		c = strings.ToLower(strings.TrimSpace(c))
		if c == "" || len(c) > 16 || strings.Trim(c, "abcdefghijklmnopqrstuvwxyz-") != "" {
			return &Error{Code: "invalid_field", Field: field, Message: field + " holds tags such as es, mam or ht"}
		}
		(*codes)[i] = c
	}
	return nil
}

// maxListItems bounds the lists a body may give (languages, regions,
// certifications): no request, shift or volunteer needs more.
const maxListItems = 20

// checkCount refuses a list longer than maxListItems.
func checkCount(n int, field string) error {
	if n > maxListItems {
		return &Error{Code: "invalid_field", Field: field, Message: fmt.Sprintf("%s holds at most %d items", field, maxListItems)}
	}
	return nil
}

// checkCertifications checks a list of certification names.
func checkCertifications(certs []volunteer.Certification, field string) error {
	if err := checkCount(len(certs), field); err != nil {
		return err
	}
	for _, c := range certs {
		if c.Check() != nil {
			return &Error{Code: "invalid_field", Field: field,
				Message: field + " holds certification names of lower-case letters, digits and _, such as rapid_response"}
		}
	}
	return nil
}

// idAndReason reads the {id} path parameter and an optional reason body.
func idAndReason(r *http.Request) (uuid.UUID, string, error) {
	id, err := pathID(r, "id")
	if err != nil {
		return uuid.Nil, "", err
	}
	reason, err := decodeReason(r)
	return id, reason, err
}

// changeRoleRequest is the body of POST /api/v1/accounts/{id}/role.
type changeRoleRequest struct {
	Role   account.Role `json:"role"`
	Reason string       `json:"reason"`
}

// handleChangeRole serves POST /api/v1/accounts/{id}/role: give an account
// another role.
func (s *Server) handleChangeRole(w http.ResponseWriter, r *http.Request, p *accounts.Principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var req changeRoleRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if err := checkReason(req.Reason); err != nil {
		return err
	}
	if err := s.accounts.ChangeRole(r.Context(), *p, id, req.Role, req.Reason); err != nil {
		return err
	}
	// Live connections carry the role they opened with: close them, and
	// the client reconnects with the new one.
	s.hub.CloseUser(id)
	return s.writeAccount(w, r, id)
}

// handleDeactivate serves POST /api/v1/accounts/{id}/deactivate: close an
// account, end its sessions and close its live connections at once.
func (s *Server) handleDeactivate(w http.ResponseWriter, r *http.Request, p *accounts.Principal) error {
	id, reason, err := idAndReason(r)
	if err != nil {
		return err
	}
	revoked, err := s.accounts.Deactivate(r.Context(), *p, id, reason)
	if err != nil {
		return err
	}
	s.hub.CloseSessions(revoked...)
	s.hub.CloseUser(id)
	return s.writeAccount(w, r, id)
}

// handleReactivate serves POST /api/v1/accounts/{id}/reactivate: reopen a
// deactivated account; its holder signs in again.
func (s *Server) handleReactivate(w http.ResponseWriter, r *http.Request, p *accounts.Principal) error {
	id, reason, err := idAndReason(r)
	if err != nil {
		return err
	}
	if err := s.accounts.Reactivate(r.Context(), *p, id, reason); err != nil {
		return err
	}
	return s.writeAccount(w, r, id)
}

// handleRevokeSessions serves POST /api/v1/accounts/{id}/revoke-sessions: sign
// an account out everywhere (a lost phone) and close its live connections
// at once.
func (s *Server) handleRevokeSessions(w http.ResponseWriter, r *http.Request, _ *accounts.Principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if err := refuseBody(r); err != nil {
		return err
	}
	revoked, err := s.accounts.RevokeSessions(r.Context(), id)
	if err != nil {
		return err
	}
	s.hub.CloseSessions(revoked...)
	s.hub.CloseUser(id)
	writeJSON(w, http.StatusOK, map[string]int{"sessions_ended": len(revoked)})
	return nil
}

func (s *Server) writeAccount(w http.ResponseWriter, r *http.Request, id uuid.UUID) error {
	a, err := s.accounts.Account(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a)
	return nil
}

// inviteRequest is the body of POST /api/v1/invitations.
type inviteRequest struct {
	Email          string       `json:"email"`
	Role           account.Role `json:"role"`
	ExpiresInHours int          `json:"expires_in_hours"`
}

// invitationCreated answers POST /api/v1/invitations. Link is shown once, to
// whoever invites, to pass on to the invitee.
type invitationCreated struct {
	accounts.Invitation
	Link string `json:"link"`
}

// handleInvite serves POST /api/v1/invitations: invite an email address to a
// role. The answer holds the single-use link for the invitee; the token is
// in the link's fragment, which browsers never send to a server, so it
// stays out of every access log and Referer.
func (s *Server) handleInvite(w http.ResponseWriter, r *http.Request, p *accounts.Principal) error {
	var req inviteRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if req.ExpiresInHours < 0 {
		return &Error{Code: "invalid_field", Field: "expires_in_hours", Message: "expires_in_hours must be positive, or left out for a week"}
	}
	token, inv, err := s.accounts.Invite(r.Context(), *p, req.Email, req.Role, time.Duration(req.ExpiresInHours)*time.Hour, retryOf(r))
	if err != nil {
		return err
	}
	link := s.publicURL.JoinPath("/join")
	link.Fragment = token
	link.RawQuery = ""
	writeJSON(w, http.StatusCreated, invitationCreated{Invitation: inv, Link: link.String()})
	return nil
}

// handleListInvitations serves GET /api/v1/invitations: the pending ones.
func (s *Server) handleListInvitations(w http.ResponseWriter, r *http.Request, _ *accounts.Principal) error {
	list, err := s.accounts.Invitations(r.Context())
	if err != nil {
		return err
	}
	if list == nil {
		list = []accounts.Invitation{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"invitations": list})
	return nil
}

// handleRevokeInvitation serves POST /api/v1/invitations/{id}/revoke:
// withdraw a pending invitation.
func (s *Server) handleRevokeInvitation(w http.ResponseWriter, r *http.Request, p *accounts.Principal) error {
	id, reason, err := idAndReason(r)
	if err != nil {
		return err
	}
	if err := s.accounts.RevokeInvitation(r.Context(), *p, id, reason); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// tokenRequest carries an invitation token in the body, never in a URL.
type tokenRequest struct {
	Token string `json:"token"`
}

// handleLookupInvitation serves POST /api/v1/invitations/lookup: what an
// invitation link offers (address, role, expiry), for the page where the
// invitee sets a password.
func (s *Server) handleLookupInvitation(w http.ResponseWriter, r *http.Request, _ *accounts.Principal) error {
	var req tokenRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	inv, err := s.accounts.InvitationByToken(r.Context(), req.Token)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, inv)
	return nil
}

// acceptRequest is the body of POST /api/v1/invitations/accept.
type acceptRequest struct {
	Token    string `json:"token"`
	Password string `json:"password"`
}

// handleAcceptInvitation serves POST /api/v1/invitations/accept: the invitee
// sets a password and the account opens; they then sign in.
func (s *Server) handleAcceptInvitation(w http.ResponseWriter, r *http.Request, _ *accounts.Principal) error {
	var req acceptRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	id, err := s.accounts.AcceptInvitation(r.Context(), req.Token, req.Password)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]string{"user_id": id.String()})
	return nil
}
