package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/presente-dispatch/presente/domain/account"
	"github.com/presente-dispatch/presente/domain/invitation"
	"github.com/presente-dispatch/presente/infra/accounts"
	"github.com/presente-dispatch/presente/infra/eventstore"
	"github.com/presente-dispatch/presente/infra/idempotency"
)

// invite creates an invitation as u and returns its link's token.
func (e *env) invite(u *user, email string, role account.Role) string {
	e.t.Helper()
	r := e.do(u, "POST", "/api/v1/invitations", map[string]any{"email": email, "role": role})
	if r.status != http.StatusCreated {
		e.t.Fatalf("invite: %d %s", r.status, r.body)
	}
	var created struct{ Link string }
	if err := json.Unmarshal([]byte(r.body), &created); err != nil {
		e.t.Fatal(err)
	}
	link, err := url.Parse(created.Link)
	if err != nil || link.Path != "/join" || link.Fragment == "" || link.Host != "presente.test" {
		e.t.Fatalf("invitation link %q: want http://presente.test/join#<token>", created.Link)
	}
	return link.Fragment
}

func TestAnInviteeSetsAPasswordOnceAndSignsInWithTheInvitedRole(t *testing.T) {
	e := newEnv(t, envOptions{})
	coordinator := e.users[account.Coordinator]
	email := "rosa-" + uuid.NewString()[:8] + "@example.org"
	token := e.invite(coordinator, email, account.Volunteer)

	look := e.do(nil, "POST", "/api/v1/invitations/lookup", map[string]string{"token": token})
	if look.status != http.StatusOK || !strings.Contains(look.body, email) || !strings.Contains(look.body, `"status":"pending"`) {
		t.Fatalf("lookup: %d %s", look.status, look.body)
	}
	if r := e.do(nil, "POST", "/api/v1/invitations/accept", map[string]string{"token": token, "password": "short"}); r.status != http.StatusBadRequest || !strings.Contains(r.body, "at least 12") {
		t.Errorf("a short password: %d %s, want 400 saying the minimum", r.status, r.body)
	}
	accept := e.do(nil, "POST", "/api/v1/invitations/accept", map[string]string{"token": token, "password": "a long new password"})
	if accept.status != http.StatusCreated {
		t.Fatalf("accept: %d %s", accept.status, accept.body)
	}
	again := e.do(nil, "POST", "/api/v1/invitations/accept", map[string]string{"token": token, "password": "another password!!"})
	if again.status != http.StatusGone || again.errorCode() != "invitation_used" {
		t.Errorf("second use: %d %s, want 410 invitation_used", again.status, again.body)
	}
	in := e.do(nil, "POST", "/api/v1/session", map[string]string{"email": email, "password": "a long new password"})
	if in.status != http.StatusOK || !strings.Contains(in.body, `"role":"volunteer"`) {
		t.Errorf("sign in as the invitee: %d %s", in.status, in.body)
	}
	// Inviting an address that has an account answers like any other
	// invitation (a coordinator may not learn who has one); its invitee
	// is told on accepting.
	second := e.invite(coordinator, email, account.Dispatcher)
	r := e.do(nil, "POST", "/api/v1/invitations/accept", map[string]string{"token": second, "password": "yet another password"})
	if r.status != http.StatusConflict || r.errorCode() != "address_has_account" {
		t.Errorf("accepting an invitation to an address that has an account: %d %s, want 409 address_has_account", r.status, r.body)
	}
}

func TestInvitationsRespectWhoMayGrantWhichRole(t *testing.T) {
	e := newEnv(t, envOptions{})
	r := e.do(e.users[account.Coordinator], "POST", "/api/v1/invitations", map[string]any{"email": "boss@example.org", "role": "admin"})
	if r.status != http.StatusForbidden || r.errorCode() != "role_not_grantable" {
		t.Errorf("a coordinator inviting an admin: %d %s, want 403 role_not_grantable", r.status, r.body)
	}
	if r := e.do(e.users[account.Admin], "POST", "/api/v1/invitations", map[string]any{"email": "boss@example.org", "role": "admin"}); r.status != http.StatusCreated {
		t.Errorf("an admin inviting an admin: %d %s", r.status, r.body)
	}
}

func TestAWithdrawnInvitationCannotBeUsed(t *testing.T) {
	e := newEnv(t, envOptions{})
	admin := e.users[account.Admin]
	token := e.invite(admin, "late@example.org", account.Dispatcher)
	list := e.do(admin, "GET", "/api/v1/invitations", nil)
	id := invitation.StreamID(token).String()
	if !strings.Contains(list.body, id) {
		t.Fatalf("pending invitations %s lack %s", list.body, id)
	}
	if r := e.do(admin, "POST", "/api/v1/invitations/"+id+"/revoke", nil); r.status != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	r := e.do(nil, "POST", "/api/v1/invitations/accept", map[string]string{"token": token, "password": "a long new password"})
	if r.status != http.StatusGone || r.errorCode() != "invitation_revoked" {
		t.Errorf("accepting a withdrawn invitation: %d %s", r.status, r.body)
	}
	if r := e.do(nil, "POST", "/api/v1/invitations/lookup", map[string]string{"token": "not-a-token"}); r.status != http.StatusNotFound {
		t.Errorf("an unknown token: %d %s, want 404", r.status, r.body)
	}
}

func TestARetryWithTheSameIdempotencyKeyActsOnce(t *testing.T) {
	e := newEnv(t, envOptions{})
	admin := e.users[account.Admin]
	body := map[string]any{"email": "once@example.org", "role": "volunteer"}
	first := e.do(admin, "POST", "/api/v1/invitations", body, "Idempotency-Key", "phone-retry-1")
	second := e.do(admin, "POST", "/api/v1/invitations", body, "Idempotency-Key", "phone-retry-1")
	if first.status != http.StatusCreated || second.status != first.status || second.body != first.body {
		t.Fatalf("first %d %s\nretry %d %s\nwant the same answer", first.status, first.body, second.status, second.body)
	}
	if second.header.Get("Idempotent-Replayed") != "true" {
		t.Error("the retry was not marked as replayed")
	}
	ids, err := e.store.StreamIDs(context.Background(), invitation.StreamType)
	if err != nil || len(ids) != 1 {
		t.Errorf("invitations in the log = %d, %v; want exactly 1", len(ids), err)
	}
	other := e.do(admin, "POST", "/api/v1/invitations", map[string]any{"email": "other@example.org", "role": "volunteer"}, "Idempotency-Key", "phone-retry-1")
	if other.status != http.StatusUnprocessableEntity || other.errorCode() != "idempotency_key_reused" {
		t.Errorf("the key reused for another request: %d %s, want 422", other.status, other.body)
	}
	// Another user's identical key is theirs alone.
	coordinator := e.users[account.Coordinator]
	if r := e.do(coordinator, "POST", "/api/v1/invitations", map[string]any{"email": "third@example.org", "role": "volunteer"}, "Idempotency-Key", "phone-retry-1"); r.status != http.StatusCreated {
		t.Errorf("another user's request with the same key: %d %s", r.status, r.body)
	}
	// An error answer is kept too: the retry of a refused request is refused alike.
	bad := map[string]any{"email": "not an address", "role": "volunteer"}
	b1 := e.do(admin, "POST", "/api/v1/invitations", bad, "Idempotency-Key", "bad-1")
	b2 := e.do(admin, "POST", "/api/v1/invitations", bad, "Idempotency-Key", "bad-1")
	if b1.status != http.StatusBadRequest || b2.body != b1.body {
		t.Errorf("a refused request and its retry: %d %s / %d %s", b1.status, b1.body, b2.status, b2.body)
	}
	if r := e.do(admin, "POST", "/api/v1/invitations", body, "Idempotency-Key", strings.Repeat("k", 300)); r.status != http.StatusBadRequest {
		t.Errorf("an over-long key: %d %s, want 400", r.status, r.body)
	}
}

func TestACoordinatorForgetsAPersonWhoThenCannotSignIn(t *testing.T) {
	e := newEnv(t, envOptions{})
	coordinator, admin, volunteer := e.users[account.Coordinator], e.users[account.Admin], e.users[account.Volunteer]
	conn, _, err := e.dialLive(volunteer.cookie, "http://presente.test")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if r := e.do(coordinator, "POST", "/api/v1/subjects/"+volunteer.id.String()+"/forget", map[string]string{"reason": "Ana asked us"}); r.status != http.StatusBadRequest || r.errorCode() != "invalid_field" {
		t.Errorf("a free-text reason: %d %s, want 400", r.status, r.body)
	}
	r := e.do(coordinator, "POST", "/api/v1/subjects/"+volunteer.id.String()+"/forget", map[string]string{"reason": "asked"})
	if r.status != http.StatusConflict || r.errorCode() != "account_active" {
		t.Fatalf("forgetting the holder of an active account: %d %s, want 409 account_active", r.status, r.body)
	}
	if r := e.do(admin, "POST", "/api/v1/accounts/"+volunteer.id.String()+"/deactivate", nil); r.status != http.StatusOK {
		t.Fatalf("deactivate: %d %s", r.status, r.body)
	}
	if code := expectClosed(t, conn); code != 4001 {
		t.Errorf("the deactivated person's live connection: close code %d, want 4001", code)
	}
	r = e.do(coordinator, "POST", "/api/v1/subjects/"+volunteer.id.String()+"/forget", map[string]string{"reason": "asked"})
	if r.status != http.StatusOK || !strings.Contains(r.body, `"already_forgotten":false`) {
		t.Fatalf("forget: %d %s", r.status, r.body)
	}
	if r := e.do(nil, "POST", "/api/v1/session", map[string]string{"email": volunteer.email, "password": testPassword}); r.status != http.StatusUnauthorized {
		t.Errorf("a forgotten person signed in: %d %s", r.status, r.body)
	}
	got := e.do(admin, "GET", "/api/v1/accounts/"+volunteer.id.String(), nil)
	if got.status != http.StatusOK || strings.Contains(got.body, volunteer.email) || !strings.Contains(got.body, eventstore.Forgotten) {
		t.Errorf("the forgotten account reads %d %s, want its email replaced by %s", got.status, got.body, eventstore.Forgotten)
	}
	if r := e.do(coordinator, "POST", "/api/v1/subjects/"+volunteer.id.String()+"/forget", map[string]string{"reason": "asked"}); !strings.Contains(r.body, `"already_forgotten":true`) {
		t.Errorf("forgetting twice: %d %s", r.status, r.body)
	}
}

func TestALegalHoldIsPlacedAndLiftedWithAReason(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.users[account.Coordinator]
	if r := e.do(c, "POST", "/api/v1/retention/hold", nil); r.status != http.StatusBadRequest {
		t.Errorf("a hold without a reason: %d %s, want 400", r.status, r.body)
	}
	r := e.do(c, "POST", "/api/v1/retention/hold", map[string]string{"reason": "matter 2026-14"})
	if r.status != http.StatusOK || !strings.Contains(r.body, `"on_hold":true`) {
		t.Fatalf("hold: %d %s", r.status, r.body)
	}
	if r := e.do(c, "POST", "/api/v1/retention/hold", map[string]string{"reason": "again"}); r.status != http.StatusConflict {
		t.Errorf("a second hold: %d %s, want 409", r.status, r.body)
	}
	if r := e.do(c, "POST", "/api/v1/retention/release", map[string]string{"reason": "matter closed"}); r.status != http.StatusOK || !strings.Contains(r.body, `"on_hold":false`) {
		t.Errorf("release: %d %s", r.status, r.body)
	}
}

func TestLogsNeverHoldPersonalDataPasswordsOrTokens(t *testing.T) {
	var buf bytes.Buffer
	core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&buf), zapcore.DebugLevel)
	e := newEnv(t, envOptions{logger: zap.New(core)})
	admin, coordinator := e.users[account.Admin], e.users[account.Coordinator]

	unique := "Xochitl" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	email := strings.ToLower(unique) + "@example.org"
	pw := "pw " + uuid.NewString()
	token := e.invite(coordinator, email, account.Volunteer)
	e.do(nil, "POST", "/api/v1/invitations/lookup", map[string]string{"token": token})
	e.do(nil, "POST", "/api/v1/invitations/accept", map[string]string{"token": token, "password": pw})
	in := e.do(nil, "POST", "/api/v1/session", map[string]string{"email": email, "password": pw})
	newcomer := &user{cookie: in.cookie}
	e.do(nil, "POST", "/api/v1/session", map[string]string{"email": email, "password": "wrong " + pw})
	e.do(newcomer, "GET", "/api/v1/session", nil)
	e.do(newcomer, "POST", "/api/v1/me/password", map[string]string{"current_password": pw, "new_password": pw + " changed"})
	e.do(admin, "GET", "/api/v1/accounts", nil)
	e.do(admin, "GET", "/api/v1/accounts/"+email, nil)                                     // personal data in a path
	e.do(nil, "POST", "/api/v1/session", `{"email": "`+email+`", "password": `+unique+`}`) // and in a malformed body
	var whoami struct {
		UserID string `json:"user_id"`
	}
	_ = json.Unmarshal([]byte(in.body), &whoami)
	e.do(admin, "POST", "/api/v1/accounts/"+whoami.UserID+"/deactivate", map[string]string{"reason": "left"})
	if r := e.do(coordinator, "POST", "/api/v1/subjects/"+whoami.UserID+"/forget", map[string]string{"reason": "asked"}); r.status != http.StatusOK {
		t.Fatalf("forget: %d %s", r.status, r.body)
	}
	e.do(newcomer, "GET", "/api/v1/session", nil)

	logs := buf.String()
	if !strings.Contains(logs, `"route"`) {
		t.Fatalf("nothing was logged, so this test proves nothing:\n%s", logs)
	}
	_, sessionToken, _ := strings.Cut(in.cookie, "=")
	for what, secret := range map[string]string{"name": unique, "email": email, "password": pw, "invitation token": token, "session token": sessionToken} {
		if secret == "" {
			t.Fatalf("the %s is empty: the flow above failed", what)
		}
		if strings.Contains(strings.ToLower(logs), strings.ToLower(secret)) {
			t.Errorf("the logs contain the %s", what)
		}
	}
}

// Invitations expire: the lapsed ones are a retention source.
func TestLapsedInvitationsAreDueForForgettingAfterTheirExpiry(t *testing.T) {
	e := newEnv(t, envOptions{})
	admin := e.users[account.Admin]
	lapsed := e.invite(admin, "never-came@example.org", account.Volunteer)
	used := e.invite(admin, "came@example.org", account.Volunteer)
	if r := e.do(nil, "POST", "/api/v1/invitations/accept", map[string]string{"token": used, "password": "a long new password"}); r.status != http.StatusCreated {
		t.Fatalf("accept: %d %s", r.status, r.body)
	}
	ctx := context.Background()
	st, _, err := eventstore.LoadState(ctx, e.store, invitation.Decider, invitation.StreamID(lapsed))
	if err != nil {
		t.Fatal(err)
	}
	due, err := e.accounts.LapsedInvitees(ctx, time.Now())
	if err != nil || len(due) != 0 {
		t.Fatalf("due before expiry = %v, %v; want none", due, err)
	}
	due, err = e.accounts.LapsedInvitees(ctx, st.ExpiresAt.Add(time.Second))
	if err != nil || len(due) != 1 || due[0] != st.UserID {
		t.Errorf("due after expiry = %v, %v; want only the lapsed invitee %s", due, err, st.UserID)
	}
}

// TestSubpoenaDrillThroughTheAPI plays the threat model end to end: a
// person is invited (with an Idempotency-Key, so the answer holding their
// address is kept), joins, signs in and is forgotten; a dump of the
// database before and after holds neither their address, their password,
// the invitation link's token nor their session token, in any encoding.
func TestSubpoenaDrillThroughTheAPI(t *testing.T) {
	e := newEnv(t, envOptions{})
	coordinator := e.users[account.Coordinator]
	email := "xochitl.nunez." + strings.ReplaceAll(uuid.NewString()[:8], "-", "") + "@example.org"
	pw := "subpoena drill " + uuid.NewString()
	r := e.do(coordinator, "POST", "/api/v1/invitations", map[string]any{"email": email, "role": "volunteer"}, "Idempotency-Key", "drill-1")
	if r.status != http.StatusCreated {
		t.Fatalf("invite: %d %s", r.status, r.body)
	}
	var created struct{ Link string }
	_ = json.Unmarshal([]byte(r.body), &created)
	token := created.Link[strings.Index(created.Link, "#")+1:]
	accept := e.do(nil, "POST", "/api/v1/invitations/accept", map[string]string{"token": token, "password": pw}, "Idempotency-Key", "drill-2")
	if accept.status != http.StatusCreated {
		t.Fatalf("accept: %d %s", accept.status, accept.body)
	}
	in := e.do(nil, "POST", "/api/v1/session", map[string]string{"email": email, "password": pw})
	if in.status != http.StatusOK {
		t.Fatalf("sign in: %d %s", in.status, in.body)
	}
	_, session, _ := strings.Cut(in.cookie, "=")
	secrets := map[string]string{"email": email, "password": pw, "invitation token": token, "session token": session}
	pgtestAssertAbsent(t, "before forgetting", e.dbURL, secrets)

	var who struct {
		UserID string `json:"user_id"`
	}
	_ = json.Unmarshal([]byte(accept.body), &who)
	if r := e.do(e.users[account.Admin], "POST", "/api/v1/accounts/"+who.UserID+"/deactivate", nil); r.status != http.StatusOK {
		t.Fatalf("deactivate: %d %s", r.status, r.body)
	}
	if r := e.do(coordinator, "POST", "/api/v1/subjects/"+who.UserID+"/forget", map[string]string{"reason": "asked"}, "Idempotency-Key", "drill-3"); r.status != http.StatusOK {
		t.Fatalf("forget: %d %s", r.status, r.body)
	}
	pgtestAssertAbsent(t, "after forgetting", e.dbURL, secrets)
}

func TestAnAcceptanceThatFailedAfterOpeningTheAccountIsCompletedByARetry(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	token := e.invite(e.users[account.Admin], "halfway@example.org", account.Volunteer)
	st, _, err := eventstore.LoadState(ctx, e.store, invitation.Decider, invitation.StreamID(token))
	if err != nil {
		t.Fatal(err)
	}
	// The first attempt opened the account, then failed before marking
	// the invitation used.
	if _, err := e.accounts.Create(ctx, accounts.NewAccount{UserID: st.UserID, Email: "halfway@example.org", Role: account.Volunteer,
		Password: "the first password"}, eventstore.Metadata{Actor: "user:" + st.UserID.String()}); err != nil {
		t.Fatal(err)
	}
	if due, err := e.accounts.LapsedInvitees(ctx, st.ExpiresAt.Add(time.Hour)); err != nil || len(due) != 0 {
		t.Errorf("a pending invitation whose account is open is due for forgetting: %v, %v", due, err)
	}
	r := e.do(nil, "POST", "/api/v1/invitations/accept", map[string]string{"token": token, "password": "the retry's password"})
	if r.status != http.StatusCreated || !strings.Contains(r.body, st.UserID.String()) {
		t.Fatalf("the retry: %d %s, want 201 for the account already opened", r.status, r.body)
	}
	if after, _, _ := eventstore.LoadState(ctx, e.store, invitation.Decider, invitation.StreamID(token)); after.Status != invitation.AcceptedState {
		t.Errorf("after the retry the invitation is %s, want accepted", after.Status)
	}
	if r := e.do(nil, "POST", "/api/v1/session", map[string]string{"email": "halfway@example.org", "password": "the first password"}); r.status != http.StatusOK {
		t.Errorf("signing in with the password set first: %d %s", r.status, r.body)
	}
}

func TestARoleChangeClosesTheLiveConnectionsOpenedWithTheOldRole(t *testing.T) {
	e := newEnv(t, envOptions{})
	dispatcher := e.users[account.Dispatcher]
	conn, _, err := e.dialLive(dispatcher.cookie, "http://presente.test")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := e.do(e.users[account.Admin], "POST", "/api/v1/accounts/"+dispatcher.id.String()+"/role", map[string]string{"role": "volunteer", "reason": "steps back"})
	if r.status != http.StatusOK || !strings.Contains(r.body, `"role":"volunteer"`) {
		t.Fatalf("change role: %d %s", r.status, r.body)
	}
	expectClosed(t, conn)
	again, _, err := e.dialLive(dispatcher.cookie, "http://presente.test")
	if err != nil {
		t.Fatalf("reconnecting after the role change: %v", err)
	}
	defer again.Close()
	if _, hello, err := again.ReadMessage(); err != nil || !strings.Contains(string(hello), `"role":"volunteer"`) {
		t.Errorf("hello after reconnecting = %s, %v; want the new role", hello, err)
	}
}

func TestAnIdOfAnotherKindIsNotFound(t *testing.T) {
	e := newEnv(t, envOptions{})
	token := e.invite(e.users[account.Admin], "kind@example.org", account.Volunteer)
	r := e.do(e.users[account.Admin], "GET", "/api/v1/accounts/"+invitation.StreamID(token).String(), nil)
	if r.status != http.StatusNotFound {
		t.Errorf("an invitation's id as an account: %d %s, want 404", r.status, r.body)
	}
}

func TestARetryAfterAnUnseenCommitReturnsTheSameInvitation(t *testing.T) {
	e := newEnv(t, envOptions{})
	admin := e.users[account.Admin]
	ctx := context.Background()
	// The first try committed, but its answer was lost and its claim
	// released (the database did not confirm in time).
	seed := sha256.Sum256([]byte(idempotency.UserScope(admin.id) + "\n" + "lost-answer"))
	token, _, err := e.accounts.Invite(ctx, accounts.Principal{UserID: admin.id, Role: account.Admin}, "lost@example.org", account.Volunteer, 0, seed[:])
	if err != nil {
		t.Fatal(err)
	}
	r := e.do(admin, "POST", "/api/v1/invitations", map[string]any{"email": "lost@example.org", "role": "volunteer"}, "Idempotency-Key", "lost-answer")
	if r.status != http.StatusCreated || !strings.HasSuffix(strings.TrimSpace(r.body), token+`"}`) {
		t.Fatalf("the retry: %d %s, want the first try's link (token %s)", r.status, r.body, token)
	}
	ids, err := e.store.StreamIDs(ctx, invitation.StreamType)
	if err != nil || len(ids) != 1 {
		t.Errorf("invitations = %d, %v; want the one the first try made", len(ids), err)
	}
}
