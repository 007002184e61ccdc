package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"regexp"
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
	// PublicURL is where people reach the server (invitation links, the
	// origin browsers send); empty in development means the loopback
	// address it listens on.
	PublicURL *url.URL
	// AllowedOrigins are further origins whose pages may call the API.
	AllowedOrigins []string
	// TrustedProxies are reverse proxies whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	// RetentionPeriod is how long personal data of closed requests is kept.
	RetentionPeriod time.Duration
	// Demo seeds a demo organization (development only).
	Demo bool
	// Bus is how the log reaches the live views: "local" (one server) or
	// "nats" (several instances sharing a NATS JetStream stream).
	Bus string
	// NATSURL, NATSStream and NATSReplicas say where the stream is when
	// Bus is "nats": the server (or a cluster's, comma-separated), the
	// stream's name and its replication factor.
	NATSURL      string
	NATSStream   string
	NATSReplicas int
	// Args are the command's positional arguments, for commands that take one.
	Args []string
}

// parseOptions says which settings a subcommand takes.
type parseOptions struct {
	server bool // --addr, --shutdown-timeout, master key
	keys   bool // master key only
	// positional names the positional argument the command requires ("" for none).
	positional string
	// optional lets the positional argument be left out.
	optional bool
	extra    func(*flag.FlagSet)
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
	var dbURL, env, level, addr, shutdown, keyFile, publicURL, origins, proxies, retention string
	var busKind, natsURL, natsStream, natsReplicas string
	var demo bool
	settings := []setting{
		{"database-url", "DATABASE_URL", defaultDatabaseURL, "PostgreSQL connection URL", &dbURL},
		{"env", "PRESENTE_ENV", "production", "production or development", &env},
		{"log-level", "PRESENTE_LOG_LEVEL", "info", "debug, info, warn or error", &level},
	}
	if opts.server {
		settings = append(settings,
			setting{"addr", "PRESENTE_ADDR", defaultAddr, "address to listen on, host:port", &addr},
			setting{"shutdown-timeout", "PRESENTE_SHUTDOWN_TIMEOUT", "15s", "how long to let requests finish on SIGTERM", &shutdown},
			setting{"public-url", "PRESENTE_PUBLIC_URL", "", "where people reach Presente, such as https://presente.example.org (required in production)", &publicURL},
			setting{"allowed-origins", "PRESENTE_ALLOWED_ORIGINS", "", "comma-separated further origins allowed to call the API and open websockets", &origins},
			setting{"trusted-proxies", "PRESENTE_TRUSTED_PROXIES", "", "comma-separated addresses or CIDRs of reverse proxies whose X-Forwarded-For is believed", &proxies},
			setting{"retention-days", "PRESENTE_RETENTION_DAYS", "30", "days after a request closes before its people's personal data is forgotten", &retention},
			setting{"bus", "PRESENTE_BUS", "local", "how events reach the live views: local (one server) or nats (several instances)", &busKind},
			setting{"nats-url", "NATS_URL", "nats://127.0.0.1:4222", "NATS server(s) with JetStream, comma-separated, for --bus nats", &natsURL},
			setting{"nats-stream", "PRESENTE_NATS_STREAM", "PRESENTE", "JetStream stream the log is relayed to, for --bus nats", &natsStream},
			setting{"nats-replicas", "PRESENTE_NATS_REPLICAS", "1", "replicas of the stream in a NATS cluster (1, 3 or 5), for --bus nats", &natsReplicas})
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
	if opts.server {
		fs.BoolVar(&demo, "demo", false, "create a demo organization with demo accounts, development only (env PRESENTE_DEMO)")
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
	case opts.positional != "" && opts.optional && fs.NArg() > 1:
		return Config{}, fmt.Errorf("presente %s takes at most one argument, the %s, after its flags", cmd, opts.positional)
	case opts.positional != "" && !opts.optional && fs.NArg() != 1:
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
	if opts.server {
		if v := getenv("PRESENTE_DEMO"); v != "" && !isFlagSet(fs, "demo") {
			on, err := strconv.ParseBool(v)
			if err != nil {
				problems = append(problems, fmt.Sprintf("PRESENTE_DEMO is %q: write true or false", v))
			}
			demo = on
		}
		problems = append(problems, cfg.parseServer(publicURL, origins, proxies, retention, demo)...)
		problems = append(problems, cfg.parseBus(busKind, natsURL, natsStream, natsReplicas)...)
	}
	if len(problems) > 0 {
		return Config{}, errors.New("invalid configuration:\n  - " + strings.Join(problems, "\n  - "))
	}
	return cfg, nil
}

// parseServer reads the settings only serve uses, and returns what is
// wrong with them.
func (cfg *Config) parseServer(publicURL, origins, proxies, retention string, demo bool) []string {
	var problems []string
	switch {
	case publicURL != "":
		u, err := parseOrigin(publicURL)
		switch {
		case err != nil:
			problems = append(problems, fmt.Sprintf("PRESENTE_PUBLIC_URL / --public-url is %q: %v", publicURL, err))
		case cfg.Env == "production" && u.Scheme != "https" && !loopbackHost(u.Hostname()):
			problems = append(problems, fmt.Sprintf("PRESENTE_PUBLIC_URL / --public-url is %q: production needs https "+
				"(TLS at Presente's reverse proxy), or session cookies and passwords cross the network in the clear", publicURL))
		}
		cfg.PublicURL = u
	case cfg.Env == "production":
		problems = append(problems, "PRESENTE_PUBLIC_URL / --public-url is required in production: the address people open, such as https://presente.example.org")
	}
	for _, o := range splitList(origins) {
		u, err := parseOrigin(o)
		if err != nil {
			problems = append(problems, fmt.Sprintf("PRESENTE_ALLOWED_ORIGINS has %q: %v", o, err))
			continue
		}
		cfg.AllowedOrigins = append(cfg.AllowedOrigins, u.Scheme+"://"+u.Host)
	}
	for _, p := range splitList(proxies) {
		prefix, err := netip.ParsePrefix(p)
		if err != nil {
			addr, aerr := netip.ParseAddr(p)
			if aerr != nil {
				problems = append(problems, fmt.Sprintf("PRESENTE_TRUSTED_PROXIES has %q: write an address (10.0.0.2) or a CIDR (10.0.0.0/24)", p))
				continue
			}
			prefix = netip.PrefixFrom(addr, addr.BitLen())
		}
		cfg.TrustedProxies = append(cfg.TrustedProxies, prefix.Masked())
	}
	if days, err := strconv.Atoi(retention); err != nil || days < 1 || days > 3650 {
		problems = append(problems, fmt.Sprintf("PRESENTE_RETENTION_DAYS / --retention-days is %q: write a whole number of days from 1 to 3650", retention))
	} else {
		cfg.RetentionPeriod = time.Duration(days) * 24 * time.Hour
	}
	if demo && cfg.Env != "development" {
		problems = append(problems, "PRESENTE_DEMO / --demo needs --env development: demo accounts have published passwords")
	}
	cfg.Demo = demo
	return problems
}

// streamName is what JetStream accepts as a stream name.
var streamName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// parseBus reads the fan-out settings, and returns what is wrong with them.
func (cfg *Config) parseBus(kind, natsURL, stream, replicas string) []string {
	var problems []string
	cfg.Bus = kind
	if kind != "local" && kind != "nats" {
		problems = append(problems, fmt.Sprintf("PRESENTE_BUS / --bus is %q: use local (one server) or nats (several instances sharing NATS JetStream)", kind))
	}
	if kind != "nats" {
		return problems
	}
	for _, u := range strings.Split(natsURL, ",") {
		parsed, err := url.Parse(strings.TrimSpace(u))
		if err != nil || parsed.Host == "" || (parsed.Scheme != "nats" && parsed.Scheme != "tls") {
			problems = append(problems, fmt.Sprintf("NATS_URL / --nats-url has %q: write nats://host:4222 (or tls://), several separated by commas", redactURL(u)))
		}
	}
	cfg.NATSURL = natsURL
	if !streamName.MatchString(stream) {
		problems = append(problems, fmt.Sprintf("PRESENTE_NATS_STREAM / --nats-stream is %q: use letters, digits, - and _ only (at most 64)", stream))
	}
	cfg.NATSStream = stream
	switch n, err := strconv.Atoi(replicas); {
	case err != nil || (n != 1 && n != 3 && n != 5):
		problems = append(problems, fmt.Sprintf("PRESENTE_NATS_REPLICAS / --nats-replicas is %q: use 1, or 3 or 5 in a NATS cluster", replicas))
	default:
		cfg.NATSReplicas = n
	}
	return problems
}

// redactURL hides a URL's password, for error messages.
func redactURL(s string) string {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		return "(not a URL)"
	}
	if u.User == nil {
		return s
	}
	return u.Redacted()
}

// parseOrigin reads a URL that must be an origin: http or https, a host,
// and nothing after it.
func parseOrigin(s string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSuffix(s, "/"))
	switch {
	case err != nil || u.Host == "":
		return nil, errors.New("write a URL such as https://presente.example.org")
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, errors.New("use http or https")
	case u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return nil, errors.New("give only scheme, host and port, with no path, query or user")
	}
	return u, nil
}

// loopbackHost tells whether host names this machine only.
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	addr, err := netip.ParseAddr(host)
	return err == nil && addr.IsLoopback()
}

// isFlagSet tells whether the command line set the named flag.
func isFlagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
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
