package live

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"go.uber.org/zap"
)

// ValidateOrigins reports the first entry of origins that is not an exact
// origin, scheme://host[:port] with an http or https scheme and nothing
// after the port. The configuration loader calls it so that a typo in
// PRESENTE_ALLOWED_ORIGINS stops the server at start-up instead of
// refusing every browser.
func ValidateOrigins(origins []string) error {
	for _, o := range origins {
		if _, err := originKey(o); err != nil {
			return err
		}
	}
	return nil
}

// originKey returns origin as scheme://host:port with the scheme and host
// in lower case and the scheme's default port written out, so that two
// spellings of one origin compare equal.
func originKey(origin string) (string, error) {
	u, err := url.Parse(origin)
	if err != nil {
		return "", fmt.Errorf("origin %q: %w", origin, err)
	}
	scheme := strings.ToLower(u.Scheme)
	port := u.Port()
	switch {
	case scheme != "http" && scheme != "https":
		return "", fmt.Errorf("origin %q: scheme must be http or https", origin)
	case u.Opaque != "" || u.User != nil || u.Hostname() == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return "", fmt.Errorf("origin %q: must be scheme://host[:port] with nothing after", origin)
	case port == "" && scheme == "http":
		port = "80"
	case port == "":
		port = "443"
	}
	return scheme + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port), nil
}

// originAllowed reports whether r may open a connection: its Origin must be
// one of the allowed origins. Browsers send Origin on every websocket
// handshake, and the session cookie goes with it even from another site,
// so this check is what stops a hostile page from opening the channel as
// its visitor (cross-site websocket hijacking).
func (h *Hub) originAllowed(r *http.Request) bool {
	values := r.Header.Values("Origin")
	if len(values) == 0 {
		// No Origin: the client is not a browser (a script, a test, a
		// native app). CSRF needs a browser to attach a victim's cookie
		// on a hostile page's behalf, so such a client can only use
		// credentials it already holds, and authentication still applies.
		return true
	}
	if len(values) > 1 {
		return false
	}
	key, err := originKey(values[0])
	return err == nil && h.origins[key]
}

// apiError has the shape of web.Error, the JSON error body of every
// Presente endpoint. It is repeated here because package web imports this
// one and not the other way round.
type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

var (
	errOriginNotAllowed = &apiError{Code: "origin_not_allowed",
		Message: "this page's origin may not open the live channel: it is not in PRESENTE_ALLOWED_ORIGINS; " +
			"if it is a Presente address, ask the operator to add it"}
	errShuttingDown = &apiError{Code: "unavailable",
		Message: "the server is shutting down: try again in a moment"}
)

// handshakeError answers a failed upgrade; gorilla calls it.
func (h *Hub) handshakeError(w http.ResponseWriter, r *http.Request, status int, reason error) {
	switch {
	case status == http.StatusForbidden:
		writeError(w, status, errOriginNotAllowed)
	case status >= 500:
		h.logger.Error("websocket upgrade failed", zap.Error(reason))
		writeError(w, status, &apiError{Code: "internal",
			Message: "something went wrong on the server; it has been logged"})
	default:
		// Tells a client speaking another websocket version which one
		// this server speaks (RFC 6455, section 4.4).
		w.Header().Set("Sec-WebSocket-Version", "13")
		writeError(w, status, &apiError{Code: "websocket_required",
			Message: "this address only accepts websocket connections: " + reason.Error()})
	}
}

func writeError(w http.ResponseWriter, code int, e *apiError) {
	if code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "2")
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]*apiError{"error": e}) // the client has gone if this fails
}
