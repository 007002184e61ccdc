package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/presente-dispatch/presente/domain/privacy"
	"github.com/presente-dispatch/presente/infra/eventstore"
	"github.com/presente-dispatch/presente/infra/keyring"
	infraprivacy "github.com/presente-dispatch/presente/infra/privacy"
)

// masterKey finds the master key: PRESENTE_MASTER_KEY, else the master key
// file. In development, when neither is set, it uses (and on first use
// makes) a key in the user's config directory, with a warning; production
// refuses to start without one.
func masterKey(cfg Config, getenv func(string) string, logger *zap.Logger) (keyring.MasterKey, error) {
	switch {
	case cfg.MasterKey != "":
		return keyring.ParseMasterKey(cfg.MasterKey)
	case cfg.MasterKeyFile != "":
		return keyring.ReadMasterKeyFile(cfg.MasterKeyFile)
	case !cfg.Development():
		return keyring.MasterKey{}, errors.New("production needs a master key to protect personal data: run " +
			"`presente keygen --out /etc/presente/master.key` and set PRESENTE_MASTER_KEY_FILE to it " +
			"(or put the key in PRESENTE_MASTER_KEY); keep it out of database backups, and back it up separately")
	}
	path, err := developmentKeyPath(getenv)
	if err != nil {
		return keyring.MasterKey{}, err
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if err := writeKeyFile(path, keyring.GenerateMasterKey()); err != nil {
			return keyring.MasterKey{}, err
		}
		logger.Warn("development: created a master key on this machine; production must set PRESENTE_MASTER_KEY_FILE",
			zap.String("path", path))
	} else {
		logger.Warn("development: using the master key stored on this machine; production must set PRESENTE_MASTER_KEY_FILE",
			zap.String("path", path))
	}
	return keyring.ReadMasterKeyFile(path)
}

// developmentKeyPath is where development keeps its master key.
func developmentKeyPath(getenv func(string) string) (string, error) {
	dir := getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home := getenv("HOME")
		if home == "" {
			return "", errors.New("development needs HOME or XDG_CONFIG_HOME to keep its master key, or set PRESENTE_MASTER_KEY_FILE")
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "presente", "development-master.key"), nil
}

// writeKeyFile writes a key readable by its owner only, never over an
// existing file: overwriting a master key would make all data unreadable.
func writeKeyFile(path, key string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("master key directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write master key: %w", err)
	}
	// A key that data was wrapped with must survive a crash: sync the file
	// and its directory, and leave no partial file behind on failure.
	_, err = fmt.Fprintln(f, key)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		_ = os.Remove(path)
		return fmt.Errorf("write master key: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// runKeygen makes a new master key: printed, or written to --out.
func runKeygen(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("presente keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "write the key to this file (mode 600, never overwritten) instead of printing it")
	ifMissing := fs.Bool("if-missing", false, "with --out: keep an existing key file and succeed (for container start-up)")
	if err := fs.Parse(args); err != nil {
		return configError(&flagParseError{err: err}, stderr)
	}
	if *ifMissing && *out != "" {
		if _, err := os.Stat(*out); err == nil {
			if _, err := keyring.ReadMasterKeyFile(*out); err != nil {
				return fmt.Errorf("an existing file is in the way and is not a usable master key: %w", err)
			}
			fmt.Fprintf(stdout, "kept the existing master key at %s\n", *out)
			return nil
		}
	}
	key := keyring.GenerateMasterKey()
	if *out == "" {
		fmt.Fprintln(stdout, key)
		return nil
	}
	if err := writeKeyFile(*out, key); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote a new master key to %s: back it up apart from the database; losing it loses all personal data\n", *out)
	return nil
}

// runForget destroys a data subject's key, so all their personal data
// becomes unreadable everywhere, and records that it did.
func runForget(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var reasonCode string
	cfg, err := parseConfig("forget", args, getenv, stderr, parseOptions{positional: "subject id", extra: func(fs *flag.FlagSet) {
		fs.StringVar(&reasonCode, "reason", string(privacy.ReasonAsked), "why: asked, retention, legal or mistake (a code, never free text that could name the person)")
	}})
	if err != nil {
		return configError(err, stderr)
	}
	reason, err := privacy.ParseReason(reasonCode)
	if err != nil {
		return fmt.Errorf("--reason: %w", err)
	}
	subject, err := uuid.Parse(cfg.Args[0])
	if err != nil {
		return fmt.Errorf("%q is not a subject id: give the person's uuid", cfg.Args[0])
	}
	// Only privacy events: they hold no personal data, so no master key is
	// needed to record a forgetting.
	registry, err := registryOf(privacy.Events...)
	if err != nil {
		return err
	}
	store, pool, closeStore, err := openStore(ctx, cfg, registry, nil)
	if err != nil {
		return err
	}
	defer closeStore()
	already, err := infraprivacy.Forget(ctx, pool, store, subject, eventstore.Metadata{Actor: "system:cli", Reason: string(reason)})
	if err != nil {
		return err
	}
	if already {
		fmt.Fprintf(stdout, "subject %s was already forgotten\n", subject)
	} else {
		fmt.Fprintf(stdout, "forgot subject %s: their personal data can no longer be read, here or in any backup\n", subject)
	}
	return nil
}
