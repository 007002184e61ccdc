package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/presente-dispatch/presente/domain/account"
	"github.com/presente-dispatch/presente/infra/accounts"
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
	if err := password.Validate(pw); err != nil {
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
	service, err := accounts.New(pool, store, master, accounts.Options{})
	if err != nil {
		return err
	}
	userID, err := service.Create(ctx, accounts.NewAccount{Email: normalized, Role: account.Role(role), Password: pw},
		eventstore.Metadata{Actor: "system:cli"})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "created %s account %s\n", role, userID)
	return nil
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
