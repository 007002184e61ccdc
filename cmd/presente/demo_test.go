package main

import (
	"context"
	"testing"
	"time"

	"github.com/presente-dispatch/presente/domain/training"
	"github.com/presente-dispatch/presente/domain/volunteer"
	"github.com/presente-dispatch/presente/infra/dispatch"
	"github.com/presente-dispatch/presente/infra/eventstore"
	"github.com/presente-dispatch/presente/infra/keyring"
	"github.com/presente-dispatch/presente/infra/postgres/pgtest"
)

// A first start stopped half way through seeding (a newcomer pressing
// Ctrl-C) must not leave a demo that never starts again: the next start
// finishes the organization.
func TestTheDemoSeedFinishesARunThatStoppedHalfWay(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	master, _ := keyring.ParseMasterKey(keyring.GenerateMasterKey())
	keys, err := keyring.New(pool, master)
	if err != nil {
		t.Fatal(err)
	}
	registry, err := newRegistry()
	if err != nil {
		t.Fatal(err)
	}
	store, err := eventstore.New(pool, registry, eventstore.Options{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	d := dispatch.New(store, dispatch.Options{})
	account := demoID("account volunteer@demo.example.org")
	now := time.Now()

	// What a stopped run left: the first course and a volunteer
	// registered without their certifications.
	c := demoCourses[0]
	if err := d.Course(ctx, demoMeta, demoID("course "+c.name), training.AddCourse{CourseID: demoID("course " + c.name), Name: c.name,
		Certification: c.cert, ValidityMonths: c.months}); err != nil {
		t.Fatal(err)
	}
	v := demoVolunteers[0]
	if err := d.RegisterVolunteer(ctx, demoMeta, volunteer.Register{VolunteerID: demoID("volunteer " + v.name), Name: v.name,
		Phone: "+1 555 0100", Languages: parseLanguages(v.langs), Regions: v.regions}); err != nil {
		t.Fatal(err)
	}

	seeded, err := seedDemoOrganization(ctx, d, account, now)
	if err != nil || !seeded {
		t.Fatalf("seeding after a stopped run = %v, %v; want it finished", seeded, err)
	}
	first, err := d.VolunteerState(ctx, demoID("volunteer "+v.name))
	if err != nil {
		t.Fatal(err)
	}
	for _, cert := range v.certs {
		if _, ok := first.Certifications[cert]; !ok {
			t.Errorf("%s, registered by the stopped run, lacks %s", v.name, cert)
		}
	}
	if _, err := d.RequestState(ctx, demoID("open request 0")); err != nil {
		t.Errorf("the open requests were not received: %v", err)
	}
	if seeded, err := seedDemoOrganization(ctx, d, account, now); err != nil || seeded {
		t.Errorf("seeding a finished organization = %v, %v; want nothing done", seeded, err)
	}
}
