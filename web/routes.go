package web

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/presente-dispatch/presente/domain/account"
	"github.com/presente-dispatch/presente/infra/accounts"
)

// Permission says who may call a route. It is declared once per route, in
// the table of Server.routes, and enforced before the handler runs; a route
// declared without one makes NewServer fail, so no handler can forget it.
type Permission struct {
	public bool
	roles  []account.Role
	// self names a path parameter holding a user id: a signed-in user
	// whose id it is may call the route whatever their role.
	self string
	// owner, when set, lets a user with ownerRole call the route if it
	// reports that they own what the route acts on (a volunteer and
	// their own assignment).
	ownerRole account.Role
	owner     func(r *http.Request, p *accounts.Principal) (bool, error)
}

// Public lets anyone call a route, signed in or not.
var Public = Permission{public: true}

// SignedIn lets every signed-in user call a route.
var SignedIn = Permission{roles: account.Roles}

// Roles lets signed-in users with one of roles call a route.
func Roles(roles ...account.Role) Permission { return Permission{roles: roles} }

// OrSelf also lets the user named by the path parameter param call the
// route: volunteers act only on their own records.
func (p Permission) OrSelf(param string) Permission {
	p.self = param
	return p
}

// OrOwner also lets a user with role call the route when owns says they
// own what it acts on, such as a volunteer's own assignment.
func (p Permission) OrOwner(role account.Role, owns func(r *http.Request, p *accounts.Principal) (bool, error)) Permission {
	p.ownerRole, p.owner = role, owns
	return p
}

// declared tells whether the permission says anything at all.
func (p Permission) declared() bool {
	return p.public || len(p.roles) > 0 || p.self != "" || p.owner != nil
}

// allows tells whether principal may call the route of r. The principal
// is nil for an anonymous request.
func (p Permission) allows(principal *accounts.Principal, r *http.Request) (bool, error) {
	if p.public {
		return true, nil
	}
	if principal == nil {
		return false, nil
	}
	if slices.Contains(p.roles, principal.Role) {
		return true, nil
	}
	if p.self != "" {
		if id, err := uuid.Parse(r.PathValue(p.self)); err == nil && id == principal.UserID {
			return true, nil
		}
	}
	if p.owner != nil && principal.Role == p.ownerRole {
		return p.owner(r, principal)
	}
	return false, nil
}

// String describes the permission for errors and documentation.
func (p Permission) String() string {
	if p.public {
		return "anyone"
	}
	names := make([]string, len(p.roles))
	for i, r := range p.roles {
		names[i] = string(r)
	}
	s := strings.Join(names, ", ")
	if p.self != "" {
		s += " or the user {" + p.self + "}"
	}
	return s
}

// handlerFunc is an API handler. It returns an error instead of writing
// one, so that every error becomes an answer in one place (writeError).
// The principal is nil on a public route called anonymously.
type handlerFunc func(w http.ResponseWriter, r *http.Request, p *accounts.Principal) error

// route is one entry of the API's route table.
type route struct {
	pattern    string // "METHOD /path", as net/http.ServeMux reads it
	permission Permission
	handler    handlerFunc
	// retrySafe marks a POST that is harmless to run twice (signing in or
	// out; looking an invitation up, a read that takes its token in the
	// body to keep it out of URLs), so Idempotency-Key is not needed there:
	// a replayed answer could not carry what the retry needs (a new session
	// cookie), and a read has nothing to protect.
	retrySafe bool
	// maxBody bounds the request body, in bytes; maxBodyBytes when zero.
	maxBody int64
}

// bodyLimit is the largest body the route reads.
func (rt route) bodyLimit() int64 {
	if rt.maxBody > 0 {
		return rt.maxBody
	}
	return maxBodyBytes
}

// method is the route's HTTP method.
func (rt route) method() string { m, _, _ := strings.Cut(rt.pattern, " "); return m }

// changesState tells whether the route's method may change state; those
// routes get CSRF protection and Idempotency-Key handling.
func (rt route) changesState() bool {
	switch rt.method() {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// checkRoutes refuses a route table with a route lacking a permission or a
// pattern without a method, so a mistake stops the server at start-up.
func checkRoutes(routes []route) error {
	seen := map[string]bool{}
	for _, rt := range routes {
		if !rt.permission.declared() {
			return fmt.Errorf("route %q declares no permission: add one to the table in web/routes.go", rt.pattern)
		}
		if rt.method() == rt.pattern || rt.handler == nil {
			return fmt.Errorf("route %q needs a method and a handler", rt.pattern)
		}
		if seen[rt.pattern] {
			return fmt.Errorf("route %q is declared twice", rt.pattern)
		}
		seen[rt.pattern] = true
	}
	return nil
}

// routes is the API: every route, who may call it, and its handler.
func (s *Server) routes() []route {
	admin, coordinator := account.Admin, account.Coordinator
	return []route{
		{pattern: "POST /api/v1/session", permission: Public, handler: s.handleSignIn, retrySafe: true},
		{pattern: "GET /api/v1/session", permission: SignedIn, handler: s.handleWhoAmI},
		{pattern: "DELETE /api/v1/session", permission: SignedIn, handler: s.handleSignOut, retrySafe: true},
		{pattern: "POST /api/v1/me/password", permission: SignedIn, handler: s.handleChangePassword},
		{pattern: "PUT /api/v1/me/language", permission: SignedIn, handler: s.handleChooseLanguage},

		{pattern: "GET /api/v1/accounts", permission: Roles(admin), handler: s.handleListAccounts},
		{pattern: "GET /api/v1/accounts/{id}", permission: Roles(admin).OrSelf("id"), handler: s.handleGetAccount},
		{pattern: "POST /api/v1/accounts/{id}/role", permission: Roles(admin), handler: s.handleChangeRole},
		{pattern: "POST /api/v1/accounts/{id}/deactivate", permission: Roles(admin), handler: s.handleDeactivate},
		{pattern: "POST /api/v1/accounts/{id}/reactivate", permission: Roles(admin), handler: s.handleReactivate},
		{pattern: "POST /api/v1/accounts/{id}/revoke-sessions", permission: Roles(admin), handler: s.handleRevokeSessions},

		{pattern: "POST /api/v1/invitations", permission: Roles(admin, coordinator), handler: s.handleInvite},
		{pattern: "GET /api/v1/invitations", permission: Roles(admin, coordinator), handler: s.handleListInvitations},
		{pattern: "POST /api/v1/invitations/{id}/revoke", permission: Roles(admin, coordinator), handler: s.handleRevokeInvitation},
		{pattern: "POST /api/v1/invitations/lookup", permission: Public, handler: s.handleLookupInvitation, retrySafe: true},
		{pattern: "POST /api/v1/invitations/accept", permission: Public, handler: s.handleAcceptInvitation},

		{pattern: "POST /api/v1/subjects/{id}/forget", permission: Roles(coordinator), handler: s.handleForget},
		{pattern: "GET /api/v1/retention", permission: Roles(coordinator), handler: s.handleRetentionStatus},
		{pattern: "POST /api/v1/retention/hold", permission: Roles(coordinator), handler: s.handlePlaceHold},
		{pattern: "POST /api/v1/retention/release", permission: Roles(coordinator), handler: s.handleLiftHold},

		{pattern: "POST /api/v1/volunteers", permission: Roles(coordinator, account.Volunteer), handler: s.handleRegisterVolunteer},
		{pattern: "POST /api/v1/volunteers/import", permission: Roles(coordinator, admin), handler: s.handleImportRoster, maxBody: maxRosterBytes},
		{pattern: "GET /api/v1/volunteers", permission: Roles(staff...), handler: s.handleListVolunteers},
		{pattern: "GET /api/v1/volunteers/{id}", permission: Roles(staff...).OrSelf("id"), handler: s.handleGetVolunteer},
		{pattern: "POST /api/v1/volunteers/{id}/on-call", permission: Roles(staff...).OrSelf("id"), handler: s.handleSetOnCall},
		{pattern: "POST /api/v1/volunteers/{id}/certifications", permission: Roles(coordinator), handler: s.handleGrantCertification},
		{pattern: "POST /api/v1/volunteers/{id}/certifications/{certification}/revoke", permission: Roles(coordinator), handler: s.handleRevokeCertification},
		{pattern: "GET /api/v1/volunteers/{id}/assignments", permission: Roles(staff...).OrSelf("id"), handler: s.handleMyAssignments},
		{pattern: "POST /api/v1/volunteers/{id}/profile", permission: Roles(coordinator).OrSelf("id"), handler: s.handleChangeProfile},
		{pattern: "POST /api/v1/volunteers/{id}/contact", permission: Roles(coordinator).OrSelf("id"), handler: s.handleChangeContact},
		{pattern: "GET /api/v1/volunteers/{id}/trainings", permission: Roles(staff...).OrSelf("id"), handler: s.handleVolunteerTrainings},
		{pattern: "POST /api/v1/volunteers/{id}/deactivate", permission: Roles(coordinator), handler: s.handleVolunteerActive(false)},
		{pattern: "POST /api/v1/volunteers/{id}/activate", permission: Roles(coordinator), handler: s.handleVolunteerActive(true)},

		{pattern: "POST /api/v1/shifts", permission: Roles(coordinator), handler: s.handleScheduleShift},
		{pattern: "GET /api/v1/shifts", permission: SignedIn, handler: s.handleListShifts},
		{pattern: "GET /api/v1/shifts/{id}", permission: SignedIn, handler: s.handleGetShift},
		{pattern: "POST /api/v1/shifts/{id}/claims/{volunteer}", permission: Roles(staff...).OrSelf("volunteer"), handler: s.handleClaimShift},
		{pattern: "POST /api/v1/shifts/{id}/claims/{volunteer}/release", permission: Roles(staff...).OrSelf("volunteer"), handler: s.handleReleaseShift},
		{pattern: "POST /api/v1/shifts/{id}/claims/{volunteer}/check-in", permission: Roles(staff...).OrSelf("volunteer"), handler: s.handleCheck(true)},
		{pattern: "POST /api/v1/shifts/{id}/claims/{volunteer}/check-out", permission: Roles(staff...).OrSelf("volunteer"), handler: s.handleCheck(false)},
		{pattern: "POST /api/v1/shifts/{id}/claims/{volunteer}/swap", permission: Roles(staff...).OrSelf("volunteer"), handler: s.handleOfferSwap},
		{pattern: "POST /api/v1/shifts/{id}/claims/{volunteer}/swap/withdraw", permission: Roles(staff...).OrSelf("volunteer"), handler: s.handleWithdrawSwap},
		{pattern: "POST /api/v1/shifts/{id}/swaps/{volunteer}/accept", permission: Roles(staff...).OrSelf("volunteer"), handler: s.handleAcceptSwap},
		{pattern: "POST /api/v1/shifts/{id}/swaps/{volunteer}/decline", permission: Roles(staff...).OrSelf("volunteer"), handler: s.handleDeclineSwap},
		{pattern: "POST /api/v1/shifts/{id}/cancel", permission: Roles(coordinator), handler: s.handleCancelShift},

		{pattern: "POST /api/v1/requests", permission: Roles(staff...), handler: s.handleReceiveRequest},
		{pattern: "GET /api/v1/requests", permission: Roles(staff...), handler: s.handleListRequests},
		{pattern: "GET /api/v1/requests/{id}", permission: Roles(staff...), handler: s.handleGetRequest},
		{pattern: "POST /api/v1/requests/{id}/{action}", permission: Roles(staff...), handler: s.handleRequestAction},
		{pattern: "GET /api/v1/requests/{id}/timeline", permission: Roles(staff...), handler: s.handleTimeline},
		{pattern: "GET /api/v1/requests/{id}/matches", permission: Roles(staff...), handler: s.handleMatches},
		{pattern: "POST /api/v1/requests/{id}/assignments", permission: Roles(staff...), handler: s.handleOffer},
		{pattern: "POST /api/v1/requests/{id}/assignments/{assignment}/status",
			permission: Roles(staff...).OrOwner(account.Volunteer, s.ownsAssignment), handler: s.handleAssignmentStatus},

		{pattern: "POST /api/v1/courses", permission: Roles(coordinator), handler: s.handleAddCourse},
		{pattern: "GET /api/v1/courses", permission: SignedIn, handler: s.handleListCourses},
		{pattern: "POST /api/v1/courses/{id}", permission: Roles(coordinator), handler: s.handleChangeCourse},
		{pattern: "POST /api/v1/courses/{id}/retire", permission: Roles(coordinator), handler: s.handleRetireCourse},
		{pattern: "POST /api/v1/courses/{id}/sessions", permission: Roles(coordinator), handler: s.handleScheduleSession},
		{pattern: "GET /api/v1/sessions", permission: SignedIn, handler: s.handleListSessions},
		{pattern: "GET /api/v1/sessions/{id}", permission: SignedIn, handler: s.handleGetSession},
		{pattern: "POST /api/v1/sessions/{id}/cancel", permission: Roles(coordinator), handler: s.handleCancelSession},
		{pattern: "POST /api/v1/sessions/{id}/enrollments/{volunteer}", permission: Roles(coordinator).OrSelf("volunteer"), handler: s.handleEnroll},
		{pattern: "POST /api/v1/sessions/{id}/enrollments/{volunteer}/withdraw", permission: Roles(coordinator).OrSelf("volunteer"), handler: s.handleUnenroll},
		{pattern: "POST /api/v1/sessions/{id}/attendance/{volunteer}", permission: Roles(coordinator), handler: s.handleAttendance},

		{pattern: "GET /api/v1/reports/response-times", permission: Roles(coordinator), handler: s.handleResponseTimes},
		{pattern: "GET /api/v1/reports/volunteer-hours", permission: Roles(coordinator), handler: s.handleVolunteerHours},
		{pattern: "GET /api/v1/reports/coverage", permission: Roles(coordinator), handler: s.handleCoverage},
		{pattern: "GET /api/v1/reports/expiring", permission: Roles(coordinator), handler: s.handleExpiring},
		{pattern: "GET /api/v1/audit/verification", permission: Roles(coordinator), handler: s.handleVerification},

		{pattern: "GET /api/v1/settings", permission: SignedIn, handler: s.handleGetSettings},
		{pattern: "POST /api/v1/settings/time-zone", permission: Roles(admin), handler: s.handleSetTimeZone},

		{pattern: liveRoute, permission: SignedIn, handler: s.handleLive},
		{pattern: liveRoute + "/board", permission: Roles(staff...), handler: s.handleBoardLive},
		{pattern: liveRoute + "/shifts", permission: SignedIn, handler: s.handleShiftsLive},
		{pattern: liveRoute + "/mine", permission: Roles(account.Volunteer), handler: s.handleMineLive},
		{pattern: "GET /api/v1/openapi.yaml", permission: Public, handler: s.handleOpenAPI},
	}
}
