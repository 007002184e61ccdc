package web

import (
	"net/http"
	"strings"
	"testing"

	"github.com/presente-dispatch/presente/domain/account"
)

func TestTheChosenLanguageIsKeptOnTheAccountAndMustHaveACatalog(t *testing.T) {
	e := newEnv(t, envOptions{})
	vol, dispatcher := e.users[account.Volunteer], e.users[account.Dispatcher]
	me := func(u *user) whoAmI {
		t.Helper()
		var w whoAmI
		r := e.do(u, "GET", "/api/v1/session", nil)
		mustStatus(t, r, http.StatusOK, "who am I")
		decode(t, r.body, &w)
		return w
	}
	if got := me(vol).Language; got != "" {
		t.Fatalf("before choosing, the account's language is %q, want none", got)
	}

	r := e.do(vol, "PUT", "/api/v1/me/language", map[string]string{"language": "ES"})
	var chosen whoAmI
	mustStatus(t, r, http.StatusOK, "choose Spanish")
	decode(t, r.body, &chosen)
	if chosen.Language != "es" || chosen.UserID != vol.id.String() {
		t.Errorf("choosing Spanish answers %+v, want the volunteer with language es", chosen)
	}
	// A new session, as from another device, finds it.
	other := &user{id: vol.id, email: vol.email, cookie: e.freshCookie(vol)}
	if got := me(other).Language; got != "es" {
		t.Errorf("another session of the volunteer sees language %q, want es", got)
	}
	if got := me(dispatcher).Language; got != "" {
		t.Errorf("the dispatcher's language is %q: one user's choice changed another's", got)
	}

	// A language the app has no catalog for, and something that is no language.
	r = e.do(vol, "PUT", "/api/v1/me/language", map[string]string{"language": "fr"})
	if r.status != http.StatusUnprocessableEntity || r.errorCode() != "unknown_language" ||
		!strings.Contains(r.body, `"field":"language"`) || !strings.Contains(r.body, "en, es") {
		t.Errorf("choosing French = %d %s, want 422 unknown_language naming en, es", r.status, r.body)
	}
	r = e.do(vol, "PUT", "/api/v1/me/language", map[string]string{"language": "<script>"})
	if r.status != http.StatusBadRequest || r.errorCode() != "invalid_field" || !strings.Contains(r.body, `"field":"language"`) {
		t.Errorf("choosing a non-tag = %d %s, want 400 invalid_field on language", r.status, r.body)
	}
	r = e.do(vol, "PUT", "/api/v1/me/language", map[string]string{"lang": "es"})
	if r.status != http.StatusBadRequest {
		t.Errorf("a misnamed field = %d %s, want 400", r.status, r.body)
	}
	if got := me(vol).Language; got != "es" {
		t.Errorf("after the refusals the language is %q, want es still", got)
	}
	if r := e.do(nil, "PUT", "/api/v1/me/language", map[string]string{"language": "es"}); r.status != http.StatusUnauthorized {
		t.Errorf("anonymous = %d, want 401", r.status)
	}
	// Admins see it on the account too.
	var a struct{ Language string }
	decode(t, e.do(e.users[account.Admin], "GET", "/api/v1/accounts/"+vol.id.String(), nil).body, &a)
	if a.Language != "es" {
		t.Errorf("the account shows language %q, want es", a.Language)
	}
}
