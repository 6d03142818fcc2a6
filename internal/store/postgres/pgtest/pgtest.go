// Package pgtest gives tests a real PostgreSQL database of their own.
//
// With COALMINE_TEST_POSTGRES set (a postgres:// URL of a user that may
// create databases) every test gets a fresh database on that server.
// Otherwise the first test that asks starts a throwaway cluster for the
// whole test binary (initdb into a temporary directory, a free loopback
// port, its socket in that directory), when PostgreSQL's initdb and
// postgres are installed. As root the cluster runs as the unprivileged user
// "nobody": PostgreSQL refuses to run as root.
//
// Without either, tests skip, and fail when COALMINE_REQUIRE_INTEGRATION=1
// (CI). Call Stop at the end of TestMain to stop the cluster and remove
// its directory; if the test binary dies first, the cluster is told to
// stop too (its parent-death signal), and the next run removes the
// directory left behind.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL names the variable with the URL of an existing server to use.
const EnvURL = "COALMINE_TEST_POSTGRES"

// DSN returns the postgres:// URL of a new, empty database that is dropped
// when t ends (with whatever still connects to it).
func DSN(t testing.TB) string {
	t.Helper()
	admin := adminURL(t)
	name := "coalmine_test_" + randomHex(6)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := adminExec(ctx, admin, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: create a test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := adminExec(ctx, admin, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("pgtest: drop test database %s: %v", name, err)
		}
	})
	u, _ := url.Parse(admin) // adminURL checked it
	u.Path = "/" + name
	return u.String()
}

// Main runs the tests and then stops the cluster: TestMain's body for a
// package that needs nothing else there.
func Main(m *testing.M) {
	code := m.Run()
	Stop()
	os.Exit(code)
}

func adminExec(ctx context.Context, admin, sql string) error {
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// adminURL is the URL of a database on a server where the test may create
// databases, or skips (or fails, in CI) when there is none.
func adminURL(t testing.TB) string {
	t.Helper()
	if env := os.Getenv(EnvURL); env != "" {
		u, err := url.Parse(env)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			t.Fatalf("pgtest: %s must be a postgres:// URL, such as postgres://postgres@127.0.0.1:5432/postgres", EnvURL)
		}
		return env
	}
	once.Do(func() { shared, startErr = startCluster() })
	if errors.Is(startErr, errNotInstalled) {
		msg := "PostgreSQL tests need a server: install PostgreSQL (apt-get install -y postgresql) so they start their own, or set " +
			EnvURL + " to the postgres:// URL of a user that may create databases"
		if os.Getenv("COALMINE_REQUIRE_INTEGRATION") == "1" {
			t.Fatalf("%s (COALMINE_REQUIRE_INTEGRATION=1: required here)", msg)
		}
		t.Skipf("%s; skipping", msg)
	}
	if startErr != nil {
		t.Fatalf("pgtest: %v", startErr)
	}
	return shared.url
}

var (
	once     sync.Once
	shared   *cluster
	startErr error
)

// Stop stops the cluster this process started, if any, and removes its
// directory.
func Stop() {
	if shared != nil {
		shared.stop()
	}
}

var errNotInstalled = errors.New("initdb and postgres not found")

type cluster struct {
	dir    string
	url    string
	cmd    *exec.Cmd
	exited chan struct{}
}

// binDir finds the directory of initdb and postgres: on PATH, where
// pg_config says, or Debian's /usr/lib/postgresql/VERSION/bin (not on
// PATH there), the newest version first.
func binDir() (string, error) {
	has := func(dir string) bool {
		for _, name := range []string{"initdb", "postgres"} {
			if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.IsDir() {
				return false
			}
		}
		return true
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil && has(filepath.Dir(real)) {
			return filepath.Dir(real), nil
		}
		if has(filepath.Dir(p)) {
			return filepath.Dir(p), nil
		}
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		if dir := strings.TrimSpace(string(out)); has(dir) {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return versionOf(b) - versionOf(a) })
	for _, dir := range dirs {
		if has(dir) {
			return dir, nil
		}
	}
	return "", errNotInstalled
}

func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// runAs is the user the cluster runs as: this one, or nobody when this
// one is root.
func runAs() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		return nil, fmt.Errorf("running as root, PostgreSQL needs an unprivileged user to run as, and there is no user nobody: %w", err)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func startCluster() (*cluster, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	cred, err := runAs()
	if err != nil {
		return nil, err
	}
	sweepStale()
	dir, err := os.MkdirTemp("", dirPrefix)
	if err != nil {
		return nil, err
	}
	c := &cluster{dir: dir}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "--pgdata", data, "--username", "postgres",
		"--auth", "trust", "--encoding", "UTF8", "--locale", "C", "--no-sync")
	initdb.Dir = dir // the test's working directory may be closed to the cluster's user
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb in %s: %v\n%s", data, err, out)
	}
	// The port is free when chosen but may be taken before the server
	// binds it: try a few.
	for attempt := 1; ; attempt++ {
		err := c.start(bin, data, cred)
		if err == nil {
			return c, nil
		}
		if attempt == 3 {
			os.RemoveAll(dir)
			return nil, err
		}
	}
}

const dirPrefix = "coalmine-pgtest-"

// sweepStale removes the directories of clusters whose test binary died
// before Stop (an interrupted run): the server stopped with it (its
// parent-death signal, or the terminal's SIGINT) and removed its
// postmaster.pid. A directory a few minutes old is never one being set up.
func sweepStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, dir := range dirs {
		fi, err := os.Stat(dir)
		if err != nil || time.Since(fi.ModTime()) < 5*time.Minute {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, "data", "postmaster.pid")); errors.Is(err, os.ErrNotExist) {
			os.RemoveAll(dir)
		}
	}
}

func (c *cluster) start(bin, data string, cred *syscall.Credential) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	logPath := filepath.Join(c.dir, "postgres.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	c.cmd = exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-p", strconv.Itoa(port), "-k", c.dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200", "-c", "shared_buffers=32MB")
	c.cmd.Dir = c.dir
	c.cmd.Stdout, c.cmd.Stderr = logFile, logFile
	// SIGQUIT (an immediate shutdown) when this process dies without Stop.
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT}
	c.exited = make(chan struct{})
	started := make(chan error)
	go func() {
		// The parent-death signal follows the thread that started the
		// child, not the process: keep this thread alive as long as the
		// server runs.
		runtime.LockOSThread()
		if err := c.cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = c.cmd.Wait()
		close(c.exited)
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	c.url = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, err := pgx.Connect(ctx, c.url)
		cancel()
		if err == nil {
			conn.Close(context.Background())
			return nil
		}
		select {
		case <-c.exited:
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("postgres exited at start:\n%s", log)
		default:
		}
		if time.Now().After(deadline) {
			c.halt()
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("postgres did not accept connections within 30s: %v\n%s", err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop stops the server and removes the cluster's directory.
func (c *cluster) stop() {
	c.halt()
	os.RemoveAll(c.dir)
}

// halt asks for a fast shutdown (open sessions are ended).
func (c *cluster) halt() {
	if c.cmd != nil && c.cmd.Process != nil {
		_ = c.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-c.exited:
		case <-time.After(20 * time.Second):
			_ = c.cmd.Process.Kill()
			<-c.exited
		}
	}
}
