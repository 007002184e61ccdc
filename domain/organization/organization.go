// Package organization holds the settings of the organization running
// Presente: today, the time zone its people read times in. Times are
// stored and exchanged in UTC (RFC 3339); the zone is for display.
package organization

import (
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/presente-dispatch/presente/domain"
)

// StreamType names the settings stream.
const StreamType = "organization"

// StreamID is the one settings stream.
var StreamID = uuid.MustParse("7a0c5e2f-3b1d-4e9a-8c6f-0d2b4a6e8c13")

// DefaultTimeZone is the zone before one is set.
const DefaultTimeZone = "UTC"

// TimeZoneSet records the organization's time zone, an IANA name such as
// America/Chicago.
type TimeZoneSet struct {
	TimeZone string `json:"time_zone"`
}

// EventType implements domain.Event.
func (TimeZoneSet) EventType() string { return "OrganizationTimeZoneSet" }

// Events lists a zero value of every event type, for registration.
var Events = []domain.Event{TimeZoneSet{}}

// SetTimeZone sets the time zone. Known tells whether the zone exists (the
// caller looks it up in the time zone database; the domain does no I/O).
type SetTimeZone struct {
	TimeZone string
	Known    bool
}

// Command is any settings command.
type Command interface{ isCommand() }

func (SetTimeZone) isCommand() {}

// ErrUnknownZone refuses a time zone that does not exist.
var ErrUnknownZone = errors.New("unknown time zone: use an IANA name such as America/Chicago or Europe/Madrid")

// Settings are the organization's settings.
type Settings struct {
	TimeZone string
}

// Decider is the settings aggregate.
var Decider = domain.Decider[Settings, Command]{
	StreamType: StreamType,
	Initial:    func() Settings { return Settings{TimeZone: DefaultTimeZone} },
	Evolve: func(s Settings, e domain.Event) Settings {
		if e, ok := e.(TimeZoneSet); ok {
			s.TimeZone = e.TimeZone
		}
		return s
	},
	Decide: func(s Settings, c Command) ([]domain.Event, error) {
		switch c := c.(type) {
		case SetTimeZone:
			zone := strings.TrimSpace(c.TimeZone)
			if zone == "" || len(zone) > 64 || !c.Known {
				return nil, ErrUnknownZone
			}
			if zone == s.TimeZone {
				return nil, nil
			}
			return []domain.Event{TimeZoneSet{TimeZone: zone}}, nil
		}
		return nil, fmt.Errorf("organization: unknown command %T", c)
	},
}
