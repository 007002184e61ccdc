// Command presente runs Presente, the dispatch system for immigrant-justice
// accompaniment and rapid-response networks.
//
// Usage:
//
//	presente serve        run the server (creates and migrates the database)
//	presente migrate      create the database if missing and apply migrations
//	presente verify       check the event log's hash chains for tampering
//	presente keygen       make a master key for personal data
//	presente forget ID    destroy a person's data key (crypto-shredding)
//	presente user add     create an account (the first admin, for instance)
//	presente healthcheck  probe a running server's /readyz (for containers)
//
// Every subcommand takes -h for its flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	// The time zone database travels in the binary, so organizations'
	// zones resolve in a minimal container without the system's tzdata.
	_ "time/tzdata"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

const usage = `presente: dispatch for accompaniment and rapid-response networks

Usage:
  presente serve        run the server (creates and migrates the database)
  presente migrate      create the database if missing and apply migrations
  presente verify       check the event log's hash chains for tampering
  presente rebuild [NAME]
                        rebuild a read model (every one without NAME) from
                        the log and swap it in while servers keep serving
  presente keygen       make a master key for personal data
  presente forget ID    destroy a person's data key (crypto-shredding)
  presente user add     create an account (the first admin, for instance)
  presente healthcheck  probe a running server's /readyz (for containers)

Run "presente <command> -h" for a command's flags.
`

// run executes one subcommand and returns the process exit code. It is the
// whole program minus os.Exit, so tests can run it in-process.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	cmd, rest := args[0], args[1:]
	var err error
	switch cmd {
	case "serve":
		err = runServe(ctx, rest, getenv, stderr)
	case "migrate":
		err = runMigrate(ctx, rest, getenv, stdout, stderr)
	case "verify":
		err = runVerify(ctx, rest, getenv, stdout, stderr)
	case "rebuild":
		err = runRebuild(ctx, rest, getenv, stdout, stderr)
	case "keygen":
		err = runKeygen(rest, stdout, stderr)
	case "forget":
		err = runForget(ctx, rest, getenv, stdout, stderr)
	case "user":
		err = runUser(ctx, rest, getenv, stdin, stdout, stderr)
	case "healthcheck":
		err = runHealthcheck(ctx, rest, getenv, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "presente: unknown command %q\n\n%s", cmd, usage)
		return exitUsage
	}
	var failed *failure
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &failed):
		return failed.code
	default:
		fmt.Fprintf(stderr, "presente %s: %v\n", cmd, err)
		return exitFailure
	}
}

// failure is an outcome already reported to the user, with its exit code.
type failure struct{ code int }

func (f *failure) Error() string { return fmt.Sprintf("exit status %d", f.code) }

// newLogger builds the process logger: JSON for machines in production,
// readable console lines in development.
func newLogger(cfg Config, stderr io.Writer) *zap.Logger {
	var encoder zapcore.Encoder
	if cfg.Development() {
		ec := zap.NewDevelopmentEncoderConfig()
		ec.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05.000")
		encoder = zapcore.NewConsoleEncoder(ec)
	} else {
		ec := zap.NewProductionEncoderConfig()
		ec.EncodeTime = zapcore.ISO8601TimeEncoder
		encoder = zapcore.NewJSONEncoder(ec)
	}
	core := zapcore.NewCore(encoder, zapcore.Lock(zapcore.AddSync(stderr)), cfg.LogLevel)
	return zap.New(core, zap.ErrorOutput(zapcore.Lock(zapcore.AddSync(stderr))))
}
