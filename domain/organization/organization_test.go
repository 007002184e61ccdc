package organization_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/presente-dispatch/presente/domain"
	"github.com/presente-dispatch/presente/domain/organization"
)

func TestSettingsRules(t *testing.T) {
	tests := []struct {
		name    string
		given   []domain.Event
		when    organization.Command
		then    []domain.Event
		wantErr error
	}{
		{name: "a known zone is set", when: organization.SetTimeZone{TimeZone: "America/Chicago", Known: true},
			then: []domain.Event{organization.TimeZoneSet{TimeZone: "America/Chicago"}}},
		{name: "an unknown zone is refused", when: organization.SetTimeZone{TimeZone: "Mars/Olympus", Known: false}, wantErr: organization.ErrUnknownZone},
		{name: "setting the same zone records nothing",
			given: []domain.Event{organization.TimeZoneSet{TimeZone: "America/Chicago"}},
			when:  organization.SetTimeZone{TimeZone: "America/Chicago", Known: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := organization.Decider.Decide(organization.Decider.Fold(tt.given), tt.when)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
			if !reflect.DeepEqual(got, tt.then) {
				t.Errorf("events = %#v, want %#v", got, tt.then)
			}
		})
	}
	if z := organization.Decider.Fold(nil).TimeZone; z != "UTC" {
		t.Errorf("the default zone is %s, want UTC", z)
	}
}
