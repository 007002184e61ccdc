package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/presente-dispatch/presente/domain/account"
	"github.com/presente-dispatch/presente/infra/credentials"
	"github.com/presente-dispatch/presente/infra/eventstore"
	"github.com/presente-dispatch/presente/infra/password"
)

const userUsage = "usage: presente user add --role admin|coordinator|dispatcher|volunteer --email ADDRESS --password-stdin"

// runUser manages accounts from the command line; today: user add, which
// creates the first admin of a new installation.
func runUser(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "add" {
		fmt.Fprintln(stderr, userUsage)
		return &failure{code: exitUsage}
	}
	var (
		role, email string
		fromStdin   bool
	)
	cfg, err := parseConfig("user add", args[1:], getenv, stderr, parseOptions{keys: true, extra: func(fs *flag.FlagSet) {
		fs.StringVar(&role, "role", "", "admin, coordinator, dispatcher or volunteer")
		fs.StringVar(&email, "email", "", "the address the person signs in with")
		fs.BoolVar(&fromStdin, "password-stdin", false, "read the password from the first line of standard input")
	}})
	if err != nil {
		return configError(err, stderr)
	}
	if !fromStdin {
		return errors.New("--password-stdin is required: a password given as a flag would show in process listings and shell history")
	}
	if !account.Role(role).Valid() {
		return fmt.Errorf("--role %q: use admin, coordinator, dispatcher or volunteer", role)
	}
	normalized, err := account.NormalizeEmail(email)
	if err != nil {
		return fmt.Errorf("--email: %w", err)
	}
	pw, err := readPassword(stdin)
	if err != nil {
		return err
	}
	hash, err := password.Hash(pw)
	if err != nil {
		return fmt.Errorf("the password: %w", err)
	}

	logger := newLogger(cfg, stderr)
	defer logger.Sync() //nolint:errcheck // nothing to do if stderr is gone
	master, err := masterKey(cfg, getenv, logger)
	if err != nil {
		return err
	}
	registry, err := newRegistry()
	if err != nil {
		return err
	}
	store, pool, closeStore, err := openStore(ctx, cfg, registry, &master)
	if err != nil {
		return err
	}
	defer closeStore()

	userID, err := uuid.NewV7()
	if err != nil {
		return err
	}
	creds := credentials.New(pool, master)
	err = creds.Create(ctx, userID, normalized, hash)
	if errors.Is(err, credentials.ErrEmailTaken) {
		// Credentials whose account was never recorded (a crash between
		// the two steps below) must not block the address for good.
		if reclaimed, rerr := reclaimOrphan(ctx, creds, store, pool, normalized); rerr != nil {
			return rerr
		} else if reclaimed {
			err = creds.Create(ctx, userID, normalized, hash)
		}
	}
	if err != nil {
		return err
	}
	register := account.Command(account.Register{UserID: userID, Email: normalized, Role: account.Role(role)})
	if _, err := eventstore.Execute(ctx, store, account.Decider, userID, register, eventstore.Metadata{Actor: "system:cli"}); err != nil {
		if errors.Is(err, eventstore.ErrOutcomeUnknown) {
			// The account may exist: keep its credentials.
			return err
		}
		// Leave no credentials without their account, even when ctx was
		// cancelled (Ctrl-C) during the append.
		if derr := credentials.Delete(context.WithoutCancel(ctx), pool, userID); derr != nil {
			return fmt.Errorf("%w (and removing the half-made credentials failed: %v)", err, derr)
		}
		return err
	}
	fmt.Fprintf(stdout, "created %s account %s\n", role, userID)
	return nil
}

// reclaimOrphan deletes the credentials registered under email if their
// user has no account stream, and tells whether it did.
func reclaimOrphan(ctx context.Context, creds *credentials.Store, store *eventstore.Store, pool *pgxpool.Pool, email string) (bool, error) {
	owner, _, err := creds.Lookup(ctx, email)
	if err != nil {
		return false, err
	}
	if _, version, err := store.Load(ctx, owner); err != nil || version > 0 {
		return false, err
	}
	return true, credentials.Delete(ctx, pool, owner)
}

// readPassword reads the first line of r, without its line ending.
func readPassword(r io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the password from standard input: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("no password on standard input: pipe it in, e.g. printf '%s\\n' \"$PASSWORD\" | presente user add ...")
	}
	return line, nil
}
