package web

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"

	"github.com/presente-dispatch/presente/domain/account"
	"github.com/presente-dispatch/presente/infra/accounts"
	"github.com/presente-dispatch/presente/infra/eventstore"
)

// whoMay is, independently of the route table, who may call each route:
// "anyone", "signed-in", or role names, with "self" for the user the path
// names. A route missing here fails the matrix test, so a new route must
// be thought about.
var whoMay = map[string]string{
	"POST /api/v1/session":                                               "anyone",
	"GET /api/v1/session":                                                "signed-in",
	"DELETE /api/v1/session":                                             "signed-in",
	"POST /api/v1/me/password":                                           "signed-in",
	"PUT /api/v1/me/language":                                            "signed-in",
	"GET /api/v1/accounts":                                               "admin",
	"GET /api/v1/accounts/{id}":                                          "admin self",
	"POST /api/v1/accounts/{id}/role":                                    "admin",
	"POST /api/v1/accounts/{id}/deactivate":                              "admin",
	"POST /api/v1/accounts/{id}/reactivate":                              "admin",
	"POST /api/v1/accounts/{id}/revoke-sessions":                         "admin",
	"POST /api/v1/invitations":                                           "admin coordinator",
	"GET /api/v1/invitations":                                            "admin coordinator",
	"POST /api/v1/invitations/{id}/revoke":                               "admin coordinator",
	"POST /api/v1/invitations/lookup":                                    "anyone",
	"POST /api/v1/invitations/accept":                                    "anyone",
	"POST /api/v1/subjects/{id}/forget":                                  "coordinator",
	"GET /api/v1/retention":                                              "coordinator",
	"POST /api/v1/retention/hold":                                        "coordinator",
	"POST /api/v1/retention/release":                                     "coordinator",
	"GET /api/v1/live":                                                   "signed-in",
	"GET /api/v1/live/board":                                             "coordinator dispatcher",
	"GET /api/v1/live/shifts":                                            "signed-in",
	"GET /api/v1/live/mine":                                              "volunteer",
	"GET /api/v1/openapi.yaml":                                           "anyone",
	"POST /api/v1/volunteers":                                            "coordinator volunteer",
	"POST /api/v1/volunteers/{id}/contact":                               "coordinator self",
	"GET /api/v1/volunteers/{id}/trainings":                              "coordinator dispatcher self",
	"POST /api/v1/shifts/{id}/swaps/{volunteer}/decline":                 "coordinator dispatcher self",
	"GET /api/v1/courses":                                                "signed-in",
	"POST /api/v1/courses/{id}":                                          "coordinator",
	"POST /api/v1/courses/{id}/retire":                                   "coordinator",
	"GET /api/v1/sessions":                                               "signed-in",
	"GET /api/v1/sessions/{id}":                                          "signed-in",
	"POST /api/v1/sessions/{id}/cancel":                                  "coordinator",
	"POST /api/v1/sessions/{id}/enrollments/{volunteer}/withdraw":        "coordinator self",
	"GET /api/v1/volunteers/{id}":                                        "coordinator dispatcher self",
	"POST /api/v1/volunteers/{id}/on-call":                               "coordinator dispatcher self",
	"POST /api/v1/volunteers/{id}/certifications":                        "coordinator",
	"POST /api/v1/shifts":                                                "coordinator",
	"GET /api/v1/shifts/{id}":                                            "signed-in",
	"POST /api/v1/shifts/{id}/claims/{volunteer}":                        "coordinator dispatcher self",
	"POST /api/v1/shifts/{id}/claims/{volunteer}/release":                "coordinator dispatcher self",
	"POST /api/v1/shifts/{id}/claims/{volunteer}/check-in":               "coordinator dispatcher self",
	"POST /api/v1/shifts/{id}/claims/{volunteer}/check-out":              "coordinator dispatcher self",
	"POST /api/v1/shifts/{id}/claims/{volunteer}/swap":                   "coordinator dispatcher self",
	"POST /api/v1/shifts/{id}/claims/{volunteer}/swap/withdraw":          "coordinator dispatcher self",
	"POST /api/v1/shifts/{id}/swaps/{volunteer}/accept":                  "coordinator dispatcher self",
	"POST /api/v1/shifts/{id}/cancel":                                    "coordinator",
	"GET /api/v1/settings":                                               "signed-in",
	"GET /api/v1/volunteers":                                             "coordinator dispatcher",
	"POST /api/v1/volunteers/import":                                     "coordinator admin",
	"POST /api/v1/volunteers/{id}/certifications/{certification}/revoke": "coordinator",
	"GET /api/v1/volunteers/{id}/assignments":                            "coordinator dispatcher self",
	"POST /api/v1/volunteers/{id}/profile":                               "coordinator self",
	"POST /api/v1/volunteers/{id}/deactivate":                            "coordinator",
	"POST /api/v1/volunteers/{id}/activate":                              "coordinator",
	"GET /api/v1/shifts":                                                 "signed-in",
	"GET /api/v1/requests":                                               "coordinator dispatcher",
	"POST /api/v1/settings/time-zone":                                    "admin",
	"POST /api/v1/requests":                                              "coordinator dispatcher",
	"GET /api/v1/requests/{id}":                                          "coordinator dispatcher",
	"POST /api/v1/requests/{id}/{action}":                                "coordinator dispatcher",
	"GET /api/v1/requests/{id}/matches":                                  "coordinator dispatcher",
	"GET /api/v1/requests/{id}/timeline":                                 "coordinator dispatcher",
	"GET /api/v1/reports/response-times":                                 "coordinator",
	"GET /api/v1/reports/volunteer-hours":                                "coordinator",
	"GET /api/v1/reports/coverage":                                       "coordinator",
	"GET /api/v1/reports/expiring":                                       "coordinator",
	"GET /api/v1/audit/verification":                                     "coordinator",
	"POST /api/v1/requests/{id}/assignments":                             "coordinator dispatcher",
	"POST /api/v1/requests/{id}/assignments/{assignment}/status":         "coordinator dispatcher",
	"POST /api/v1/courses":                                               "coordinator",
	"POST /api/v1/courses/{id}/sessions":                                 "coordinator",
	"POST /api/v1/sessions/{id}/enrollments/{volunteer}":                 "coordinator self",
	"POST /api/v1/sessions/{id}/attendance/{volunteer}":                  "coordinator",
}

// freshCookie starts a new session for u without going through sign-in,
// so that routes which end sessions do not disturb the next row.
func (e *env) freshCookie(u *user) string {
	e.t.Helper()
	token, _, err := e.accounts.Sessions().Create(context.Background(), u.id)
	if err != nil {
		e.t.Fatal(err)
	}
	return sessionCookie + "=" + token
}

func TestEveryRouteAnswersEachRoleAsItsPermissionSays(t *testing.T) {
	e := newEnv(t, envOptions{})
	target := e.newUser(account.Volunteer) // the account {id} names; no caller is it
	routes := e.server.routes()
	declared := map[string]bool{}
	for _, rt := range routes {
		declared[rt.pattern] = true
		if _, ok := whoMay[rt.pattern]; !ok {
			t.Errorf("route %s is not in the whoMay table of this test: add who may call it", rt.pattern)
		}
	}
	for pattern := range whoMay {
		if !declared[pattern] {
			t.Errorf("whoMay lists %s, which is not a route", pattern)
		}
	}

	type caller struct {
		name string
		user *user // nil: anonymous
		id   uuid.UUID
	}
	callers := []caller{{name: "anonymous", id: target.id}}
	for _, role := range account.Roles {
		callers = append(callers, caller{name: string(role), user: e.users[role], id: target.id})
	}
	// A volunteer on their own record, and on someone else's.
	callers = append(callers, caller{name: "self", user: e.users[account.Volunteer], id: e.users[account.Volunteer].id})

	for _, rt := range routes {
		allowed := strings.Fields(whoMay[rt.pattern])
		for _, c := range callers {
			t.Run(rt.pattern+" as "+c.name, func(t *testing.T) {
				method, path, _ := strings.Cut(rt.pattern, " ")
				path = strings.ReplaceAll(path, "{id}", c.id.String())
				path = strings.ReplaceAll(path, "{volunteer}", c.id.String())
				path = strings.ReplaceAll(path, "{assignment}", c.id.String())
				path = strings.ReplaceAll(path, "{action}", "triage")
				path = strings.ReplaceAll(path, "{certification}", "rapid_response")
				req, err := http.NewRequest(method, e.ts.URL+path, nil)
				if err != nil {
					t.Fatal(err)
				}
				if method != http.MethodGet {
					req.Body = http.NoBody
					req, _ = http.NewRequest(method, e.ts.URL+path, strings.NewReader("{}"))
					req.Header.Set("Content-Type", "application/json")
				}
				if c.user != nil {
					req.Header.Set("Cookie", e.freshCookie(c.user))
				}
				resp, err := e.ts.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()

				may := false
				for _, who := range allowed {
					switch {
					case who == "anyone":
						may = true
					case c.user == nil:
					case who == "signed-in", who == c.name && c.name != "self":
						may = true
					case who == "self" && c.name == "self":
						may = true
					}
				}
				if c.name == "self" && !may {
					may = strings.Contains(whoMay[rt.pattern], string(account.Volunteer))
				}
				switch {
				case may && (resp.StatusCode == 401 || resp.StatusCode == 403 || resp.StatusCode >= 500):
					t.Errorf("%s may call it, but got %d", c.name, resp.StatusCode)
				case !may && c.user == nil && resp.StatusCode != http.StatusUnauthorized:
					t.Errorf("anonymous got %d, want 401", resp.StatusCode)
				case !may && c.user != nil && resp.StatusCode != http.StatusForbidden:
					t.Errorf("%s got %d, want 403", c.name, resp.StatusCode)
				}
			})
		}
	}
}

func TestARouteWithoutAPermissionStopsTheServer(t *testing.T) {
	noop := func(http.ResponseWriter, *http.Request, *accounts.Principal) error { return nil }
	err := checkRoutes([]route{{pattern: "GET /api/forgotten", handler: noop}})
	if err == nil || !strings.Contains(err.Error(), "declares no permission") {
		t.Fatalf("checkRoutes = %v, want a refusal naming the missing permission", err)
	}
	if err := checkRoutes([]route{{pattern: "GET /api/fine", permission: SignedIn, handler: noop}}); err != nil {
		t.Fatalf("a declared route was refused: %v", err)
	}
}

func TestSignInSetsAHostOnlyHttpOnlyLaxCookie(t *testing.T) {
	e := newEnv(t, envOptions{noUsers: true})
	u := &user{email: "ana@example.org"}
	if _, err := e.accounts.Create(context.Background(), accounts.NewAccount{Email: u.email, Role: account.Dispatcher, Password: testPassword},
		eventstore.Metadata{Actor: "system:test"}); err != nil {
		t.Fatal(err)
	}
	resp := e.do(nil, "POST", "/api/v1/session", map[string]string{"email": "ANA@example.org", "password": testPassword})
	if resp.status != http.StatusOK {
		t.Fatalf("sign in: %d %s", resp.status, resp.body)
	}
	set := resp.header.Get("Set-Cookie")
	// The test server listens on 127.0.0.1, a secure context for browsers.
	for _, want := range []string{sessionCookie + "=", "Path=/", "HttpOnly", "Secure", "SameSite=Lax"} {
		if !strings.Contains(set, want) {
			t.Errorf("Set-Cookie %q lacks %s", set, want)
		}
	}
	if strings.Contains(set, "Domain=") {
		t.Errorf("Set-Cookie %q has a Domain: a __Host- cookie must not", set)
	}
	me := e.do(&user{cookie: resp.cookie}, "GET", "/api/v1/session", nil)
	if me.status != http.StatusOK || !strings.Contains(me.body, `"role":"dispatcher"`) || !strings.Contains(me.body, u.email) {
		t.Errorf("GET /api/v1/session = %d %s", me.status, me.body)
	}
	out := e.do(&user{cookie: resp.cookie}, "DELETE", "/api/v1/session", nil)
	if out.status != http.StatusNoContent {
		t.Fatalf("sign out: %d %s", out.status, out.body)
	}
	if again := e.do(&user{cookie: resp.cookie}, "GET", "/api/v1/session", nil); again.status != http.StatusUnauthorized {
		t.Errorf("after sign-out the cookie still works: %d", again.status)
	}
}

func TestTheSessionCookieIsSecureOnlyWhereBrowsersAcceptIt(t *testing.T) {
	e := newEnv(t, envOptions{noUsers: true})
	tests := []struct {
		name, host string
		tls        bool
		want       string
		secure     bool
	}{
		{"a LAN address over plain HTTP gets the unprefixed cookie", "192.168.1.20:8080", false, insecureSessionCookie, false},
		{"localhost is a secure context", "localhost:8080", false, sessionCookie, true},
		{"TLS makes it Secure", "presente.example.org", true, sessionCookie, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := http.NewRequest("POST", "http://"+tt.host+"/api/v1/session", nil)
			r.Host = tt.host
			if tt.tls {
				r.TLS = &tls.ConnectionState{}
			}
			rec := httptest.NewRecorder()
			e.server.setSessionCookie(rec, r, "token")
			c := rec.Result().Cookies()[0]
			if c.Name != tt.want || c.Secure != tt.secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode {
				t.Errorf("cookie = %s secure=%v httponly=%v samesite=%v", c.Name, c.Secure, c.HttpOnly, c.SameSite)
			}
		})
	}
}

func TestSignInNeverTellsWhetherAnAddressHasAnAccount(t *testing.T) {
	e := newEnv(t, envOptions{})
	known := e.users[account.Dispatcher].email
	wrong := e.do(nil, "POST", "/api/v1/session", map[string]string{"email": known, "password": "not the password at all"})
	unknown := e.do(nil, "POST", "/api/v1/session", map[string]string{"email": "nobody-" + uuid.NewString()[:8] + "@example.org", "password": "not the password at all"})
	if wrong.status != http.StatusUnauthorized || wrong.status != unknown.status || wrong.body != unknown.body {
		t.Errorf("wrong password: %d %s\nunknown address: %d %s\nwant the same answer", wrong.status, wrong.body, unknown.status, unknown.body)
	}
	// A deactivated account with the right password answers the same.
	admin, dispatcher := e.users[account.Admin], e.users[account.Dispatcher]
	if r := e.do(admin, "POST", "/api/v1/accounts/"+dispatcher.id.String()+"/deactivate", nil); r.status != http.StatusOK {
		t.Fatalf("deactivate: %d %s", r.status, r.body)
	}
	deactivated := e.do(nil, "POST", "/api/v1/session", map[string]string{"email": known, "password": testPassword})
	if deactivated.status != unknown.status || deactivated.body != unknown.body {
		t.Errorf("deactivated account: %d %s, want the same answer as an unknown address", deactivated.status, deactivated.body)
	}
}

func TestRepeatedFailedSignInsAreThrottledWithAClearWait(t *testing.T) {
	e := newEnv(t, envOptions{})
	email := e.users[account.Volunteer].email
	for i := range 5 {
		r := e.do(nil, "POST", "/api/v1/session", map[string]string{"email": email, "password": fmt.Sprintf("guess number %d!", i)})
		if r.status != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d %s, want 401", i+1, r.status, r.body)
		}
	}
	// Even the right password waits: the account is being guessed at.
	r := e.do(nil, "POST", "/api/v1/session", map[string]string{"email": email, "password": testPassword})
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("sixth attempt: %d %s, want 429", r.status, r.body)
	}
	if r.header.Get("Retry-After") != "60" || !strings.Contains(r.body, "try again in 60 seconds") {
		t.Errorf("429 Retry-After %q body %s, want 60 seconds in both", r.header.Get("Retry-After"), r.body)
	}
	e.throttle.Advance(61 * time.Second)
	if r := e.do(nil, "POST", "/api/v1/session", map[string]string{"email": email, "password": testPassword}); r.status != http.StatusOK {
		t.Errorf("after waiting: %d %s, want 200", r.status, r.body)
	}
}

func TestOneAddressGuessingManyAccountsIsThrottled(t *testing.T) {
	e := newEnv(t, envOptions{noUsers: true})
	for i := range 20 {
		r := e.do(nil, "POST", "/api/v1/session", map[string]string{"email": fmt.Sprintf("person%d@example.org", i), "password": "a password spray"})
		if r.status != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d %s", i+1, r.status, r.body)
		}
	}
	r := e.do(nil, "POST", "/api/v1/session", map[string]string{"email": "someone-else@example.org", "password": "a password spray"})
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != "10" {
		t.Errorf("21st account from one address: %d Retry-After %q %s, want 429 after 10 seconds", r.status, r.header.Get("Retry-After"), r.body)
	}
}

func TestClientAddrBelievesOnlyTrustedProxies(t *testing.T) {
	proxy := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	tests := []struct {
		name, remote, xff string
		trusted           []netip.Prefix
		want              string
	}{
		{"a direct client is its own address", "203.0.113.7:5000", "198.51.100.1", nil, "203.0.113.7/32"},
		{"a trusted proxy's forwarded address is believed", "10.0.0.2:5000", "198.51.100.1", proxy, "198.51.100.1/32"},
		{"a spoofed hop before the real one is ignored", "10.0.0.2:5000", "1.2.3.4, 198.51.100.1", proxy, "198.51.100.1/32"},
		{"IPv6 clients are counted by their /64", "[2001:db8::1]:5000", "", nil, "2001:db8::/64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := http.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.remote
			if tt.xff != "" {
				r.Header.Set("X-Forwarded-For", tt.xff)
			}
			if got := clientAddr(r, tt.trusted); got.String() != tt.want {
				t.Errorf("clientAddr = %s, want %s", got, tt.want)
			}
		})
	}
}

// wsURL is the live channel's websocket address on the test server.
func (e *env) wsURL() string { return "ws" + strings.TrimPrefix(e.ts.URL, "http") + "/api/v1/live" }

// dialLive opens the live channel as u from origin.
func (e *env) dialLive(cookie, origin string) (*websocket.Conn, *http.Response, error) {
	h := http.Header{}
	h.Set("Cookie", cookie)
	if origin != "" {
		h.Set("Origin", origin)
	}
	return websocket.DefaultDialer.Dial(e.wsURL(), h)
}

// expectClosed reads from conn until it is closed, and returns the close
// code; it fails the test if the connection stays open for 5 seconds.
func expectClosed(t *testing.T, conn *websocket.Conn) int {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, _, err := conn.ReadMessage()
		if err == nil {
			continue
		}
		if ce, ok := err.(*websocket.CloseError); ok {
			return ce.Code
		}
		t.Fatalf("the connection was not closed with a close frame: %v", err)
	}
}

func TestRevokingAUsersSessionsClosesTheirLiveConnectionAtOnce(t *testing.T) {
	e := newEnv(t, envOptions{})
	admin, volunteer, dispatcher := e.users[account.Admin], e.users[account.Volunteer], e.users[account.Dispatcher]
	conn, _, err := e.dialLive(volunteer.cookie, "http://presente.test")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	other, _, err := e.dialLive(dispatcher.cookie, "http://presente.test")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, hello, err := conn.ReadMessage(); err != nil || !strings.Contains(string(hello), `"hello"`) {
		t.Fatalf("first message = %s, %v; want hello", hello, err)
	}

	r := e.do(admin, "POST", "/api/v1/accounts/"+volunteer.id.String()+"/revoke-sessions", nil)
	if r.status != http.StatusOK || !strings.Contains(r.body, `"sessions_ended":1`) {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	if code := expectClosed(t, conn); code != 4001 {
		t.Errorf("close code = %d, want 4001 (session ended)", code)
	}
	if r := e.do(volunteer, "GET", "/api/v1/session", nil); r.status != http.StatusUnauthorized {
		t.Errorf("the revoked session still works: %d", r.status)
	}
	// Another user's connection stays open.
	_ = other.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, _, err := other.ReadMessage(); err != nil {
		t.Errorf("another user's connection: %v, want its hello", err)
	}
}

func TestDeactivatingAUserClosesTheirLiveConnectionAndEndsTheirSessions(t *testing.T) {
	e := newEnv(t, envOptions{})
	admin, dispatcher := e.users[account.Admin], e.users[account.Dispatcher]
	conn, _, err := e.dialLive(dispatcher.cookie, "http://presente.test")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := e.do(admin, "POST", "/api/v1/accounts/"+dispatcher.id.String()+"/deactivate", map[string]string{"reason": "left the network"})
	if r.status != http.StatusOK || !strings.Contains(r.body, `"active":false`) {
		t.Fatalf("deactivate: %d %s", r.status, r.body)
	}
	if code := expectClosed(t, conn); code != 4001 {
		t.Errorf("close code = %d, want 4001", code)
	}
	if _, resp, err := e.dialLive(dispatcher.cookie, "http://presente.test"); err == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a deactivated user reopened the live channel: %v", err)
	}
}

func TestSigningOutClosesThatSessionsLiveConnectionOnly(t *testing.T) {
	e := newEnv(t, envOptions{})
	u := e.users[account.Dispatcher]
	phone := &user{id: u.id, cookie: e.freshCookie(u)}
	desk, _, err := e.dialLive(u.cookie, "http://presente.test")
	if err != nil {
		t.Fatal(err)
	}
	defer desk.Close()
	mobile, _, err := e.dialLive(phone.cookie, "http://presente.test")
	if err != nil {
		t.Fatal(err)
	}
	defer mobile.Close()
	if r := e.do(phone, "DELETE", "/api/v1/session", nil); r.status != http.StatusNoContent {
		t.Fatalf("sign out: %d %s", r.status, r.body)
	}
	if code := expectClosed(t, mobile); code != 4001 {
		t.Errorf("close code = %d, want 4001", code)
	}
	_ = desk.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, _, err := desk.ReadMessage(); err != nil {
		t.Errorf("the other session's connection: %v, want its hello", err)
	}
}

func TestTheLiveChannelRefusesAnotherSitesPage(t *testing.T) {
	e := newEnv(t, envOptions{})
	u := e.users[account.Dispatcher]
	_, resp, err := e.dialLive(u.cookie, "https://evil.example")
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-origin handshake: %v (status %v), want 403", err, resp)
	}
	if _, _, err := e.dialLive(u.cookie, "http://presente.test"); err != nil {
		t.Errorf("the server's own origin was refused: %v", err)
	}
	if _, resp, err := e.dialLive("", "http://presente.test"); err == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("an anonymous handshake: %v, want 401", err)
	}
}

func TestStateChangingRequestsFromAnotherSiteAreRefused(t *testing.T) {
	e := newEnv(t, envOptions{})
	admin := e.users[account.Admin]
	body := map[string]string{"email": "x@example.org", "role": "volunteer"}
	r := e.do(admin, "POST", "/api/v1/invitations", body, "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site")
	if r.status != http.StatusForbidden || r.errorCode() != "cross_origin" {
		t.Errorf("cross-site POST: %d %s, want 403 cross_origin", r.status, r.body)
	}
	r = e.do(admin, "POST", "/api/v1/invitations", body, "Origin", "http://presente.test", "Sec-Fetch-Site", "same-origin")
	if r.status != http.StatusCreated {
		t.Errorf("same-origin POST: %d %s, want 201", r.status, r.body)
	}
	if r := e.do(admin, "GET", "/api/v1/invitations", nil, "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"); r.status != http.StatusOK {
		t.Errorf("a cross-site GET changes nothing and is allowed: %d", r.status)
	}
}

func TestAPIResponsesCarryTheCSPAndNoStore(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, r := range []answer{
		e.do(e.users[account.Admin], "GET", "/api/v1/accounts", nil),
		e.do(nil, "GET", "/api/v1/accounts", nil),
		e.do(nil, "POST", "/api/v1/session", "not json"),
	} {
		if got := r.header.Get("Content-Security-Policy"); got != contentSecurityPolicy {
			t.Errorf("%d answer: CSP %q", r.status, got)
		}
		if got := r.header.Get("Cache-Control"); got != "no-store" {
			t.Errorf("%d answer: Cache-Control %q", r.status, got)
		}
	}
}

func TestConcurrentGuessesCannotOutrunTheThrottle(t *testing.T) {
	e := newEnv(t, envOptions{})
	email := e.users[account.Volunteer].email
	const guesses = 30
	codes := make(chan int, guesses)
	var wg sync.WaitGroup
	for i := range guesses {
		wg.Go(func() {
			body := fmt.Sprintf(`{"email":%q,"password":"concurrent guess %d"}`, email, i)
			req, _ := http.NewRequest("POST", e.ts.URL+"/api/v1/session", strings.NewReader(body))
			resp, err := e.ts.Client().Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		})
	}
	wg.Wait()
	close(codes)
	checked := 0
	for code := range codes {
		switch code {
		case http.StatusUnauthorized:
			checked++
		case http.StatusTooManyRequests:
		default:
			t.Errorf("a guess got %d", code)
		}
	}
	if checked > 5 {
		t.Errorf("%d concurrent guesses had their password checked, want at most the burst of 5", checked)
	}
}

func TestAThrottledAnswerIsNotKeptForTheRetry(t *testing.T) {
	e := newEnv(t, envOptions{})
	u := e.users[account.Dispatcher]
	for i := range 5 {
		e.do(u, "POST", "/api/v1/me/password", map[string]string{"current_password": fmt.Sprintf("wrong guess %d!!", i), "new_password": "a new long password"})
	}
	body := map[string]string{"current_password": testPassword, "new_password": "a new long password"}
	if r := e.do(u, "POST", "/api/v1/me/password", body, "Idempotency-Key", "k1"); r.status != http.StatusTooManyRequests {
		t.Fatalf("sixth attempt: %d %s, want 429", r.status, r.body)
	}
	e.throttle.Advance(time.Minute)
	if r := e.do(u, "POST", "/api/v1/me/password", body, "Idempotency-Key", "k1"); r.status != http.StatusNoContent {
		t.Errorf("the retry after waiting: %d %s, want 204, not the kept 429", r.status, r.body)
	}
}

func TestOverTLSOnlyTheHostPrefixedCookieCounts(t *testing.T) {
	e := newEnv(t, envOptions{tls: true})
	u := e.users[account.Dispatcher]
	token, _, err := e.accounts.Sessions().Create(context.Background(), u.id)
	if err != nil {
		t.Fatal(err)
	}
	// A sibling subdomain could plant the unprefixed cookie; it never counts
	// where the prefixed one can be set.
	if r := e.do(&user{cookie: insecureSessionCookie + "=" + token}, "GET", "/api/v1/session", nil); r.status != http.StatusUnauthorized {
		t.Errorf("the unprefixed cookie over TLS: %d, want 401", r.status)
	}
	if r := e.do(&user{cookie: sessionCookie + "=" + token}, "GET", "/api/v1/session", nil); r.status != http.StatusOK {
		t.Errorf("the __Host- cookie over TLS: %d %s, want 200", r.status, r.body)
	}
}
