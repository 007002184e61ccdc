package web

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/presente-dispatch/presente/domain/account"
	"github.com/presente-dispatch/presente/infra/accounts"
	"github.com/presente-dispatch/presente/infra/sessions"
)

// Session cookies. The __Host- prefix makes browsers refuse the cookie
// unless it is Secure, has Path=/ and no Domain, so no other site or
// subdomain can set or read it. Browsers accept Secure cookies over TLS
// and from loopback addresses only; a development server reached over
// plain HTTP on a LAN address falls back to the unprefixed name.
const (
	sessionCookie         = "__Host-presente_session"
	insecureSessionCookie = "presente_session"
)

// secure tells whether r reached Presente over TLS, directly or through a
// proxy in front of an https public URL.
func (s *Server) secure(r *http.Request) bool {
	return r.TLS != nil || s.publicURL.Scheme == "https"
}

// secureCookies tells whether the session cookie may be Secure: over TLS,
// or on a loopback host, which browsers treat as a secure context.
func (s *Server) secureCookies(r *http.Request) bool {
	if s.secure(r) {
		return true
	}
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
	}
	if host == "localhost" {
		return true
	}
	addr, err := netip.ParseAddr(host)
	return err == nil && addr.IsLoopback()
}

// setSessionCookie hands the browser its session token.
func (s *Server) setSessionCookie(w http.ResponseWriter, r *http.Request, token string) {
	c := &http.Cookie{Name: insecureSessionCookie, Value: token, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode}
	if s.secureCookies(r) {
		c.Name, c.Secure = sessionCookie, true
	}
	http.SetCookie(w, c)
}

// clearSessionCookie removes the session cookie from the browser.
func (s *Server) clearSessionCookie(w http.ResponseWriter, r *http.Request) {
	for _, name := range []string{sessionCookie, insecureSessionCookie} {
		if _, err := r.Cookie(name); err == nil {
			http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
				Secure: name == sessionCookie, SameSite: http.SameSiteLaxMode})
		}
	}
}

// sessionToken returns the session token a request carries, if any. Where
// the cookie is Secure, only the __Host- cookie counts: the unprefixed one
// could have been planted by a sibling subdomain.
func (s *Server) sessionToken(r *http.Request) string {
	names := []string{sessionCookie, insecureSessionCookie}
	if s.secureCookies(r) {
		names = names[:1]
	}
	for _, name := range names {
		if c, err := r.Cookie(name); err == nil && c.Value != "" {
			return c.Value
		}
	}
	return ""
}

// authenticate returns who sent r: nil when no live session comes with it.
func (s *Server) authenticate(r *http.Request) (*accounts.Principal, error) {
	token := s.sessionToken(r)
	if token == "" {
		return nil, nil
	}
	p, err := s.accounts.Authenticate(r.Context(), token)
	if errors.Is(err, sessions.ErrInvalid) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &p, nil
}

// Answers about who may call a route.
var (
	errUnauthenticated = &Error{Code: "unauthenticated", Message: "sign in first: this needs a live session"}
	errForbidden       = &Error{Code: "forbidden", Message: "your role may not do this: ask a coordinator or an admin"}
)

// throttledError refuses a sign-in attempt made too soon after failures.
type throttledError struct{ wait time.Duration }

func (e *throttledError) Error() string { return "too many failed sign-ins" }

// signInRequest is the body of POST /api/v1/session.
type signInRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// whoAmI describes the signed-in user.
type whoAmI struct {
	UserID string       `json:"user_id"`
	Role   account.Role `json:"role"`
	Email  string       `json:"email,omitempty"`
	// Language is the language the user chose for every device; empty
	// until they choose one.
	Language string `json:"language,omitempty"`
}

// handleSignIn serves POST /api/v1/session: sign in with an email address and
// password. It answers alike for an unknown address, a wrong password and
// a deactivated account, and after repeated failures for an account or
// from an address it answers 429 saying how long to wait.
func (s *Server) handleSignIn(w http.ResponseWriter, r *http.Request, _ *accounts.Principal) error {
	var req signInRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	try, wait := s.throttle.begin(req.Email, clientAddr(r, s.trustedProxies))
	if try == nil {
		return &throttledError{wait: wait}
	}
	token, p, err := s.accounts.SignIn(r.Context(), req.Email, req.Password)
	switch {
	case errors.Is(err, accounts.ErrBadCredentials):
		try.failed()
		return err
	case err != nil:
		try.abandoned()
		return err
	}
	try.succeeded()
	s.setSessionCookie(w, r, token)
	writeJSON(w, http.StatusOK, whoAmI{UserID: p.UserID.String(), Role: p.Role})
	return nil
}

// handleWhoAmI serves GET /api/v1/session: the signed-in user.
func (s *Server) handleWhoAmI(w http.ResponseWriter, r *http.Request, p *accounts.Principal) error {
	a, err := s.accounts.Account(r.Context(), p.UserID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, whoAmI{UserID: p.UserID.String(), Role: p.Role, Email: a.Email, Language: a.Language})
	return nil
}

// languageRequest is the body of PUT /api/v1/me/language.
type languageRequest struct {
	Language string `json:"language"`
}

// handleChooseLanguage serves PUT /api/v1/me/language: the signed-in user
// chooses the language they read the app in, on every device. It must be
// one the app has a catalog for; it answers as GET /api/v1/session.
func (s *Server) handleChooseLanguage(w http.ResponseWriter, r *http.Request, p *accounts.Principal) error {
	var req languageRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	lang, err := account.NormalizeLanguage(req.Language)
	if err != nil {
		return err
	}
	if _, ok := s.languages[lang]; !ok {
		tags := slices.Sorted(maps.Keys(s.languages))
		return &Error{Code: "unknown_language", Field: "language", status: http.StatusUnprocessableEntity,
			Message: fmt.Sprintf("the app has no catalog for %q: choose one of %s", lang, strings.Join(tags, ", "))}
	}
	if err := s.accounts.ChooseLanguage(r.Context(), *p, lang); err != nil {
		return err
	}
	return s.handleWhoAmI(w, r, p)
}

// handleSignOut serves DELETE /api/v1/session: end this session, and close
// the live connections it holds open.
func (s *Server) handleSignOut(w http.ResponseWriter, r *http.Request, p *accounts.Principal) error {
	if err := s.accounts.SignOut(r.Context(), *p); err != nil {
		return err
	}
	s.hub.CloseSessions(p.SessionID)
	s.clearSessionCookie(w, r)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// changePasswordRequest is the body of POST /api/v1/me/password.
type changePasswordRequest struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

// handleChangePassword serves POST /api/v1/me/password: set a new password,
// given the current one. Every other session of the user ends, and its
// live connections close.
func (s *Server) handleChangePassword(w http.ResponseWriter, r *http.Request, p *accounts.Principal) error {
	var req changePasswordRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	// A stolen session must not become a way to guess the password.
	try, wait := s.throttle.begin(p.Actor(), clientAddr(r, s.trustedProxies))
	if try == nil {
		return &throttledError{wait: wait}
	}
	revoked, err := s.accounts.ChangePassword(r.Context(), *p, req.CurrentPassword, req.NewPassword)
	switch {
	case errors.Is(err, accounts.ErrWrongPassword):
		try.failed()
		return &Error{Code: "wrong_password", Field: "current_password", Message: err.Error()}
	case err != nil:
		try.abandoned()
		return err
	}
	try.succeeded()
	s.hub.CloseSessions(revoked...)
	s.logger.Info("password changed; other sessions ended", zap.Int("sessions", len(revoked)))
	w.WriteHeader(http.StatusNoContent)
	return nil
}
