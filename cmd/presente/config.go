package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap/zapcore"
)

// Defaults, as documented in README.md.
const (
	defaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/presente"
	defaultAddr        = "127.0.0.1:8080"
)

// Config is every setting of the presente binary. It is parsed and
// validated here, in cmd, and nowhere else: no package below reads the
// environment.
type Config struct {
	DatabaseURL     string
	Addr            string
	Env             string // "production" or "development"
	LogLevel        zapcore.Level
	ShutdownTimeout time.Duration
	// MasterKey (environment only, never a flag: flags show in process
	// listings) or MasterKeyFile holds the key that wraps personal-data
	// keys; see masterKey.
	MasterKey     string
	MasterKeyFile string
	// Args are the command's positional arguments, for commands that take one.
	Args []string
}

// parseOptions says which settings a subcommand takes.
type parseOptions struct {
	server bool // --addr, --shutdown-timeout, master key
	keys   bool // master key only
	// positional names the positional argument the command requires ("" for none).
	positional string
	extra      func(*flag.FlagSet)
}

// Development tells whether the server runs in development mode: readable
// console logs and, later, conveniences unsafe for production.
func (c Config) Development() bool { return c.Env == "development" }

// setting is one configuration value: a flag, the environment variable
// behind it and its default. A flag beats the environment, which beats the
// default.
type setting struct {
	flag, env, def, usage string
	value                 *string
}

// parseConfig parses the settings a subcommand uses.
func parseConfig(cmd string, args []string, getenv func(string) string, stderr io.Writer, opts parseOptions) (Config, error) {
	fs := flag.NewFlagSet("presente "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var dbURL, env, level, addr, shutdown, keyFile string
	settings := []setting{
		{"database-url", "DATABASE_URL", defaultDatabaseURL, "PostgreSQL connection URL", &dbURL},
		{"env", "PRESENTE_ENV", "production", "production or development", &env},
		{"log-level", "PRESENTE_LOG_LEVEL", "info", "debug, info, warn or error", &level},
	}
	if opts.server {
		settings = append(settings,
			setting{"addr", "PRESENTE_ADDR", defaultAddr, "address to listen on, host:port", &addr},
			setting{"shutdown-timeout", "PRESENTE_SHUTDOWN_TIMEOUT", "15s", "how long to let requests finish on SIGTERM", &shutdown})
	}
	if opts.server || opts.keys {
		settings = append(settings,
			setting{"master-key-file", "PRESENTE_MASTER_KEY_FILE", "", "file holding the master key (made by presente keygen); or set PRESENTE_MASTER_KEY", &keyFile})
	}
	for _, s := range settings {
		def := s.def
		if v := getenv(s.env); v != "" {
			def = v
		}
		fs.StringVar(s.value, s.flag, def, fmt.Sprintf("%s (env %s, default %q)", s.usage, s.env, s.def))
	}
	if opts.extra != nil {
		opts.extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return Config{}, err
		}
		return Config{}, &flagParseError{err: err}
	}
	var problems []string
	switch {
	case opts.positional == "" && fs.NArg() > 0:
		return Config{}, fmt.Errorf("unexpected argument %q: presente %s takes only flags (see -h)", fs.Arg(0), cmd)
	case opts.positional != "" && fs.NArg() != 1:
		return Config{}, fmt.Errorf("presente %s takes one argument, the %s, after its flags", cmd, opts.positional)
	}

	cfg := Config{DatabaseURL: dbURL, Env: env, Addr: addr, MasterKeyFile: keyFile, Args: fs.Args()}
	if opts.server || opts.keys {
		cfg.MasterKey = getenv("PRESENTE_MASTER_KEY")
		if cfg.MasterKey != "" && cfg.MasterKeyFile != "" {
			problems = append(problems, "both PRESENTE_MASTER_KEY and a master key file are set: keep one")
		}
	}
	if pc, err := pgx.ParseConfig(dbURL); err != nil {
		problems = append(problems, fmt.Sprintf("DATABASE_URL / --database-url is not a valid PostgreSQL URL: %v", redactErr(err)))
	} else if pc.Database == "" {
		problems = append(problems, "DATABASE_URL / --database-url names no database: end it with /presente, for example")
	}
	if env != "production" && env != "development" {
		problems = append(problems, fmt.Sprintf("PRESENTE_ENV / --env is %q: use production or development", env))
	}
	if err := cfg.LogLevel.UnmarshalText([]byte(level)); err != nil {
		problems = append(problems, fmt.Sprintf("PRESENTE_LOG_LEVEL / --log-level is %q: use debug, info, warn or error", level))
	}
	if opts.server {
		if err := validateAddr(addr); err != nil {
			problems = append(problems, fmt.Sprintf("PRESENTE_ADDR / --addr is %q: %v", addr, err))
		}
		d, err := time.ParseDuration(shutdown)
		switch {
		case err != nil:
			problems = append(problems, fmt.Sprintf("PRESENTE_SHUTDOWN_TIMEOUT / --shutdown-timeout is %q: write a duration such as 15s", shutdown))
		case d <= 0:
			problems = append(problems, "PRESENTE_SHUTDOWN_TIMEOUT / --shutdown-timeout must be positive")
		default:
			cfg.ShutdownTimeout = d
		}
	}
	if len(problems) > 0 {
		return Config{}, errors.New("invalid configuration:\n  - " + strings.Join(problems, "\n  - "))
	}
	return cfg, nil
}

func validateAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("write host:port, such as 127.0.0.1:8080 or :8080")
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return errors.New("the port must be a number from 0 to 65535")
	}
	return nil
}

// redactErr keeps a password that pgx may echo out of messages.
func redactErr(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "://"); i >= 0 {
		if j := strings.Index(msg[i:], "@"); j >= 0 {
			return msg[:i+3] + "…" + msg[i+j:]
		}
	}
	return msg
}

// flagParseError is a command-line parse error the flag package has
// already printed, with the usage.
type flagParseError struct{ err error }

func (e *flagParseError) Error() string { return e.err.Error() }
func (e *flagParseError) Unwrap() error { return e.err }
