package account_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/presente-dispatch/presente/domain"
	"github.com/presente-dispatch/presente/domain/account"
)

var user = uuid.MustParse("0195a3b2-0000-7000-8000-00000000a001")

func registered(role account.Role) account.Registered {
	return account.Registered{UserID: user, Email: "ana@example.org", Role: role}
}

func TestAccountRules(t *testing.T) {
	var invalid *account.InvalidError
	tests := []struct {
		name     string
		given    []domain.Event
		when     account.Command
		then     []domain.Event
		wantErr  error
		wantAs   any
		wantText string
	}{
		{name: "registering opens an active account with a normalized email",
			when: account.Register{UserID: user, Email: "  Ana@Example.ORG ", Role: account.Dispatcher},
			then: []domain.Event{account.Registered{UserID: user, Email: "ana@example.org", Role: account.Dispatcher}}},
		{name: "an account cannot be registered twice",
			given: []domain.Event{registered(account.Volunteer)},
			when:  account.Register{UserID: user, Email: "ana@example.org", Role: account.Volunteer}, wantErr: account.ErrAlreadyRegistered},
		{name: "an unknown role is refused naming the roles",
			when: account.Register{UserID: user, Email: "ana@example.org", Role: "superuser"}, wantAs: &invalid,
			wantText: "use admin, coordinator, dispatcher or volunteer"},
		{name: "a malformed email is refused",
			when: account.Register{UserID: user, Email: "ana at example", Role: account.Volunteer}, wantAs: &invalid},
		{name: "an email without a domain dot is refused",
			when: account.Register{UserID: user, Email: "ana@localhost", Role: account.Volunteer}, wantAs: &invalid},
		{name: "a display-name address is refused",
			when: account.Register{UserID: user, Email: "Ana <ana@example.org>", Role: account.Volunteer}, wantAs: &invalid},
		{name: "a missing user id is refused",
			when: account.Register{Email: "ana@example.org", Role: account.Volunteer}, wantAs: &invalid},
		{name: "commands on a missing account are refused",
			when: account.Deactivate{}, wantErr: account.ErrNotFound},
		{name: "changing the role records from and to",
			given: []domain.Event{registered(account.Volunteer)},
			when:  account.ChangeRole{Role: account.Coordinator},
			then:  []domain.Event{account.RoleChanged{UserID: user, From: account.Volunteer, To: account.Coordinator}}},
		{name: "changing to the same role records nothing",
			given: []domain.Event{registered(account.Volunteer)},
			when:  account.ChangeRole{Role: account.Volunteer}},
		{name: "a deactivated account cannot change role",
			given: []domain.Event{registered(account.Volunteer), account.Deactivated{UserID: user}},
			when:  account.ChangeRole{Role: account.Admin}, wantErr: account.ErrDeactivated},
		{name: "a password change is recorded without the password",
			given: []domain.Event{registered(account.Volunteer)},
			when:  account.RecordPasswordChange{},
			then:  []domain.Event{account.PasswordChanged{UserID: user}}},
		{name: "a deactivated account cannot change its password",
			given: []domain.Event{registered(account.Volunteer), account.Deactivated{UserID: user}},
			when:  account.RecordPasswordChange{}, wantErr: account.ErrDeactivated},
		{name: "deactivating records it once",
			given: []domain.Event{registered(account.Dispatcher)},
			when:  account.Deactivate{},
			then:  []domain.Event{account.Deactivated{UserID: user}}},
		{name: "deactivating a deactivated account records nothing",
			given: []domain.Event{registered(account.Dispatcher), account.Deactivated{UserID: user}},
			when:  account.Deactivate{}},
		{name: "reactivating reopens a deactivated account",
			given: []domain.Event{registered(account.Dispatcher), account.Deactivated{UserID: user}},
			when:  account.Reactivate{},
			then:  []domain.Event{account.Reactivated{UserID: user}}},
		{name: "reactivating an active account records nothing",
			given: []domain.Event{registered(account.Dispatcher)},
			when:  account.Reactivate{}},
		{name: "a reactivated account can change role again",
			given: []domain.Event{registered(account.Dispatcher), account.Deactivated{UserID: user}, account.Reactivated{UserID: user}},
			when:  account.ChangeRole{Role: account.Admin},
			then:  []domain.Event{account.RoleChanged{UserID: user, From: account.Dispatcher, To: account.Admin}}},
		{name: "choosing a language records it, lower-cased",
			given: []domain.Event{registered(account.Volunteer)},
			when:  account.ChooseLanguage{Language: " ES "},
			then:  []domain.Event{account.LanguageChosen{UserID: user, Language: "es"}}},
		{name: "choosing the language already chosen records nothing",
			given: []domain.Event{registered(account.Volunteer), account.LanguageChosen{UserID: user, Language: "es"}},
			when:  account.ChooseLanguage{Language: "es"}},
		{name: "choosing another language after one records the new one",
			given: []domain.Event{registered(account.Volunteer), account.LanguageChosen{UserID: user, Language: "es"}},
			when:  account.ChooseLanguage{Language: "en"},
			then:  []domain.Event{account.LanguageChosen{UserID: user, Language: "en"}}},
		{name: "a language that is not a tag is refused naming the field",
			given: []domain.Event{registered(account.Volunteer)},
			when:  account.ChooseLanguage{Language: "Español!"}, wantAs: &invalid, wantText: "not a language tag"},
		{name: "an empty language is refused",
			given: []domain.Event{registered(account.Volunteer)},
			when:  account.ChooseLanguage{Language: ""}, wantAs: &invalid},
		{name: "a deactivated account cannot choose a language",
			given: []domain.Event{registered(account.Volunteer), account.Deactivated{UserID: user}},
			when:  account.ChooseLanguage{Language: "es"}, wantErr: account.ErrDeactivated},
		{name: "a missing account cannot choose a language",
			when: account.ChooseLanguage{Language: "es"}, wantErr: account.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := account.Decider.Decide(account.Decider.Fold(tt.given), tt.when)
			switch {
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
			case tt.wantAs != nil:
				if !errors.As(err, tt.wantAs) {
					t.Fatalf("err = %v, want %T", err, tt.wantAs)
				}
				if tt.wantText != "" && !strings.Contains(err.Error(), tt.wantText) {
					t.Errorf("err = %q, want it to say %q", err, tt.wantText)
				}
			case err != nil:
				t.Fatalf("unexpected error: %v", err)
			}
			if !reflect.DeepEqual(got, tt.then) {
				t.Errorf("events = %#v, want %#v", got, tt.then)
			}
		})
	}
}
