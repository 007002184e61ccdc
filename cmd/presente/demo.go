package main

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/presente-dispatch/presente/domain/account"
	"github.com/presente-dispatch/presente/infra/accounts"
	"github.com/presente-dispatch/presente/infra/dispatch"
	"github.com/presente-dispatch/presente/infra/eventstore"
)

// demoPassword is the password of every demo account. It is published in
// README.md; --demo refuses to run outside development for that reason.
const demoPassword = "presente-demo-password"

// demoAccounts are the demo organization's people, one per role, at a
// reserved example domain.
var demoAccounts = []struct {
	email string
	role  account.Role
}{
	{"admin@demo.example.org", account.Admin},
	{"coordinator@demo.example.org", account.Coordinator},
	{"dispatcher@demo.example.org", account.Dispatcher},
	{"volunteer@demo.example.org", account.Volunteer},
}

// seedDemo creates the demo organization, once: its accounts (an account
// that already exists is left as it is) and its network of volunteers,
// courses, shifts and requests.
func seedDemo(ctx context.Context, service *accounts.Service, d *dispatch.Service, logger *zap.Logger) error {
	created := 0
	for _, a := range demoAccounts {
		_, err := service.Create(ctx, accounts.NewAccount{UserID: demoID("account " + a.email), Email: a.email, Role: a.role, Password: demoPassword},
			eventstore.Metadata{Actor: "system:demo"})
		switch {
		case errors.Is(err, accounts.ErrEmailTaken):
		case err != nil:
			return err
		default:
			created++
		}
	}
	seeded, err := seedDemoOrganization(ctx, d, demoID("account volunteer@demo.example.org"), time.Now())
	if err != nil {
		return err
	}
	if seeded {
		logger.Info("demo organization: loaded volunteers, courses, a week of shifts and requests",
			zap.Int("volunteers", len(demoVolunteers)+1))
	}
	emails := make([]string, len(demoAccounts))
	for i, a := range demoAccounts {
		emails[i] = a.email
	}
	logger.Warn("demo organization: sign in with any of these accounts; their password is published, never use --demo with real data",
		zap.Strings("accounts", emails), zap.String("password", demoPassword), zap.Int("created", created))
	return nil
}
