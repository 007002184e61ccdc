package pgtest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Cluster is a PostgreSQL server of a test's own, for fault tests that
// stop, restart or starve the database: doing that to the shared server
// would break every other test running beside them. It is made with the
// server binaries of Debian's postgresql package (initdb, pg_ctl), so it is
// the same PostgreSQL the other tests use.
type Cluster struct {
	tb      testing.TB
	bin     string // the directory of initdb, pg_ctl and postgres
	DataDir string
	Port    int
	owner   string // the user the server runs as, when the test runs as root
}

// ClusterOptions place a cluster's files.
type ClusterOptions struct {
	// DataDir is where the cluster's files go; a new temporary directory
	// when empty. Give a directory on a small file system to run the
	// database out of disk space.
	DataDir string
	// WALDir, when set, keeps the write-ahead log apart from DataDir, so
	// a full data disk makes writes fail with an error instead of
	// stopping the server (PostgreSQL stops when it cannot write WAL).
	WALDir string
}

// NewCluster initialises and starts a private PostgreSQL server on a free
// port with trust authentication for user postgres, and stops it when tb
// ends. It fails tb when the server binaries are missing: install
// Debian's postgresql package.
func NewCluster(tb testing.TB, opts ClusterOptions) *Cluster {
	tb.Helper()
	bin, err := serverBinaries()
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	c := &Cluster{tb: tb, bin: bin, DataDir: opts.DataDir}
	if c.DataDir == "" {
		c.DataDir = filepath.Join(tb.TempDir(), "pgdata")
	}
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root; run it as the package's user.
		c.owner = "postgres"
		u, err := user.Lookup(c.owner)
		if err != nil {
			tb.Fatalf("pgtest: running as root needs the postgres user to own the cluster: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		for _, d := range []string{c.DataDir, opts.WALDir} {
			if d == "" {
				continue
			}
			if err := os.MkdirAll(d, 0o700); err != nil {
				tb.Fatal(err)
			}
			// Every parent must be reachable by the server's user.
			for p := d; p != "/" && p != "."; p = filepath.Dir(p) {
				if fi, err := os.Stat(p); err == nil && fi.Mode().Perm()&0o011 != 0o011 && p != d {
					_ = os.Chmod(p, fi.Mode().Perm()|0o011)
				}
			}
			if err := os.Chown(d, uid, gid); err != nil {
				tb.Fatal(err)
			}
		}
	}
	args := []string{"-D", c.DataDir, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8", "--locale", "C.UTF-8"}
	if opts.WALDir != "" {
		args = append(args, "--waldir", opts.WALDir)
	}
	if out, err := c.command("initdb", args...).CombinedOutput(); err != nil {
		tb.Fatalf("pgtest: initdb %s: %v\n%s", c.DataDir, err, out)
	}
	c.Port = freePort(tb)
	c.Start()
	tb.Cleanup(func() { c.stop("immediate", false) })
	return c
}

// URL is the connection string of database db on the cluster.
func (c *Cluster) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.Port, db)
}

// Start starts the server and waits until it accepts connections.
func (c *Cluster) Start() {
	c.tb.Helper()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60", c.Port, c.DataDir)
	out, err := c.command("pg_ctl", "-D", c.DataDir, "-o", opts, "-l", filepath.Join(c.DataDir, "server.log"), "-w", "-t", "60", "start").CombinedOutput()
	if err != nil {
		c.tb.Fatalf("pgtest: start the test's own PostgreSQL: %v\n%s\n%s", err, out, c.Log())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		conn, err := pgx.Connect(ctx, c.URL("postgres"))
		if err == nil {
			conn.Close(ctx)
			return
		}
		if ctx.Err() != nil {
			c.tb.Fatalf("pgtest: the test's own PostgreSQL does not answer: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop stops the server the way an operator's restart or a crash would:
// mode is "fast" (disconnect everyone, then shut down cleanly) or
// "immediate" (stop at once, as a crash; recovery runs at the next start).
func (c *Cluster) Stop(mode string) {
	c.tb.Helper()
	c.stop(mode, true)
}

func (c *Cluster) stop(mode string, must bool) {
	out, err := c.command("pg_ctl", "-D", c.DataDir, "-m", mode, "-w", "-t", "60", "stop").CombinedOutput()
	if err != nil && must {
		c.tb.Fatalf("pgtest: stop the test's own PostgreSQL (%s): %v\n%s", mode, err, out)
	}
}

// Log is what the server wrote to its log so far.
func (c *Cluster) Log() string {
	b, _ := os.ReadFile(filepath.Join(c.DataDir, "server.log"))
	return string(b)
}

func (c *Cluster) command(name string, args ...string) *exec.Cmd {
	path := filepath.Join(c.bin, name)
	if c.owner == "" {
		return exec.Command(path, args...)
	}
	return exec.Command("runuser", append([]string{"-u", c.owner, "--", path}, args...)...)
}

// serverBinaries finds the newest installed PostgreSQL's server binaries.
func serverBinaries() (string, error) {
	if dir := os.Getenv("PG_BINDIR"); dir != "" {
		return dir, nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	if len(matches) == 0 {
		if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
			dir := string(bytes.TrimSpace(out))
			if _, err := os.Stat(filepath.Join(dir, "pg_ctl")); err == nil {
				return dir, nil
			}
		}
		return "", fmt.Errorf("no PostgreSQL server binaries (pg_ctl, initdb) under /usr/lib/postgresql: install Debian's postgresql package or set PG_BINDIR")
	}
	sort.Slice(matches, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(matches[i]))))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(matches[j]))))
		return vi < vj
	})
	return filepath.Dir(matches[len(matches)-1]), nil
}

// freePort returns a TCP port on 127.0.0.1 nothing listens on now.
func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
