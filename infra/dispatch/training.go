package dispatch

import (
	"context"
	"slices"

	"github.com/google/uuid"

	"github.com/presente-dispatch/presente/domain"
	"github.com/presente-dispatch/presente/domain/training"
	"github.com/presente-dispatch/presente/domain/volunteer"
	"github.com/presente-dispatch/presente/infra/eventstore"
)

// Course runs a command on a course of the catalog.
func (s *Service) Course(ctx context.Context, meta eventstore.Metadata, courseID uuid.UUID, c training.CourseCommand) error {
	_, err := eventstore.Execute(ctx, s.store, training.CourseDecider, courseID, c, meta)
	return err
}

// ScheduleSession schedules a session of a course, copying the course's
// certification and validity as they are now.
func (s *Service) ScheduleSession(ctx context.Context, meta eventstore.Metadata, c training.ScheduleSession, courseID uuid.UUID) error {
	course, _, err := eventstore.LoadState(ctx, s.store, training.CourseDecider, courseID)
	if err != nil {
		return err
	}
	c.Course = course
	_, err = eventstore.Execute(ctx, s.store, training.SessionDecider, c.SessionID, training.SessionCommand(c), meta)
	return err
}

// Session runs a command on a training session alone (enroll, unenroll,
// attendance, cancel). Enrollment and attendance take the time from the
// service's clock.
func (s *Service) Session(ctx context.Context, meta eventstore.Metadata, sessionID uuid.UUID, c training.SessionCommand) error {
	switch cmd := c.(type) {
	case training.Enroll:
		if _, err := s.VolunteerState(ctx, cmd.VolunteerID); err != nil {
			return err // a seat goes to a registered volunteer only
		}
		cmd.Now = s.now()
		c = cmd
	case training.Unenroll:
		cmd.Now = s.now()
		c = cmd
	case training.RecordAttendance:
		cmd.Now = s.now()
		c = cmd
	}
	_, err := eventstore.Execute(ctx, s.store, training.SessionDecider, sessionID, c, meta)
	return err
}

// IssueCertification grants a session's certification to a volunteer who
// attended it: the session records it and the volunteer holds it, valid
// from the session's end for the course's validity, together or not at all.
func (s *Service) IssueCertification(ctx context.Context, meta eventstore.Metadata, sessionID, volunteerID uuid.UUID) error {
	_, err := s.store.Transact(ctx, meta, func(ctx context.Context, l eventstore.Loader) ([]eventstore.StreamAppend, error) {
		sess, err := load(ctx, l, training.SessionDecider, sessionID)
		if err != nil {
			return nil, err
		}
		issued, err := training.SessionDecider.Decide(sess.state, training.IssueCertification{VolunteerID: volunteerID})
		if err != nil {
			return nil, err
		}
		v, err := load(ctx, l, volunteer.Decider, volunteer.StreamID(volunteerID))
		if err != nil {
			return nil, err
		}
		e := issued[0].(training.CertificationIssued)
		granted, err := volunteer.Decider.Decide(v.state, volunteer.Grant{Certification: sess.state.Certification,
			GrantedAt: e.GrantedAt, ExpiresAt: e.ExpiresAt, SessionID: sessionID})
		if err != nil {
			return nil, err
		}
		return []eventstore.StreamAppend{
			{Stream: eventstore.Stream{Type: training.SessionStreamType, ID: sessionID}, Expected: sess.version, Events: issued},
			{Stream: eventstore.Stream{Type: volunteer.StreamType, ID: volunteer.StreamID(volunteerID)}, Expected: v.version, Events: granted},
		}, nil
	})
	return err
}

// Courses lists the catalog, retired courses too, in the order added.
func (s *Service) Courses(ctx context.Context) ([]training.Course, error) {
	return all(ctx, s.store, training.CourseDecider)
}

// CourseState is one course of the catalog.
func (s *Service) CourseState(ctx context.Context, id uuid.UUID) (training.Course, error) {
	c, _, err := eventstore.LoadState(ctx, s.store, training.CourseDecider, id)
	if err == nil && !c.Exists {
		err = training.ErrCourseNotFound
	}
	return c, err
}

// Sessions lists the training sessions that overlap window, cancelled
// ones too, by start time.
func (s *Service) Sessions(ctx context.Context, window domain.Window) ([]training.Session, error) {
	return s.sessionsWhere(ctx, func(t training.Session) bool { return t.Window.Overlaps(window) })
}

// sessionsWhere lists the training sessions keep accepts, by start time.
func (s *Service) sessionsWhere(ctx context.Context, keep func(training.Session) bool) ([]training.Session, error) {
	sessions, err := all(ctx, s.store, training.SessionDecider)
	if err != nil {
		return nil, err
	}
	out := slices.DeleteFunc(sessions, func(t training.Session) bool { return !keep(t) })
	slices.SortStableFunc(out, func(a, b training.Session) int { return a.Window.Start.Compare(b.Window.Start) })
	return out, nil
}

// SessionState is one training session.
func (s *Service) SessionState(ctx context.Context, id uuid.UUID) (training.Session, error) {
	t, _, err := eventstore.LoadState(ctx, s.store, training.SessionDecider, id)
	if err == nil && !t.Exists {
		err = training.ErrSessionNotFound
	}
	return t, err
}

// TrainingsOf lists the sessions a volunteer is enrolled in or attended,
// past and upcoming, by start time.
func (s *Service) TrainingsOf(ctx context.Context, volunteerID uuid.UUID) ([]training.Session, error) {
	return s.sessionsWhere(ctx, func(t training.Session) bool {
		_, attended := t.Attended[volunteerID]
		return attended || slices.Contains(t.Enrolled, volunteerID)
	})
}
