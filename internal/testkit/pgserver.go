package testkit

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"testing"
)

// PGServer is a Postgres server of one test's own, for tests that stop and
// start the database (the shared server of VALETKEY_TEST_POSTGRES_URL must
// never be stopped: other tests use it at the same time). It listens on a
// free port of 127.0.0.1 with trust authentication; its files live in a
// temporary directory removed when the test ends.
type PGServer struct {
	// URL reaches the server's postgres database.
	URL string

	t    testing.TB
	bin  string
	dir  string // the temporary directory: data/, the socket, the log
	port int
	cred *syscall.Credential // run as this user (root may not run Postgres)
	uid  int
	gid  int
}

// StartPostgres initialises and starts a private Postgres server. It skips
// the test with -short, when VALETKEY_TEST_POSTGRES_URL is unset (the
// Postgres side of the suites is off), or when no Postgres server binaries
// (initdb, pg_ctl) are found on PATH or under /usr/lib/postgresql.
func StartPostgres(t testing.TB) *PGServer {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a Postgres server")
	}
	if os.Getenv(PostgresEnv) == "" {
		t.Skip(PostgresEnv + " is not set: skipping the Postgres side")
	}
	bin := postgresBinDir()
	if bin == "" {
		t.Skip("no Postgres server binaries (initdb, pg_ctl) on PATH or under /usr/lib/postgresql/*/bin")
	}
	s := &PGServer{t: t, bin: bin}
	if os.Geteuid() == 0 {
		// initdb and postgres refuse to run as root: use the postgres user.
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Skip("running as root and there is no postgres user to run a Postgres server as")
		}
		s.uid, _ = strconv.Atoi(u.Uid)
		s.gid, _ = strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(s.uid), Gid: uint32(s.gid)}
	}
	// Not t.TempDir: its parent is private to root, and the server's user
	// must reach this directory.
	dir, err := os.MkdirTemp("", "valetkey-pg-")
	if err != nil {
		t.Fatal(err)
	}
	s.dir = dir
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if s.cred != nil {
		if err := os.Chown(dir, s.uid, s.gid); err != nil {
			t.Fatal(err)
		}
	}
	s.run("initdb", "-D", s.data(), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync", "--no-instructions")
	s.port = freePort(t)
	s.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", s.port)
	s.Start()
	t.Cleanup(func() {
		// Whatever state the test left it in; immediate: nothing to keep.
		_ = s.command("pg_ctl", "stop", "-D", s.data(), "-m", "immediate", "-w").Run()
	})
	return s
}

// Stop shuts the server down the way an operator's restart does (mode
// "fast": sessions are terminated, then a clean shutdown) and returns once
// it is down.
func (s *PGServer) Stop() { s.StopMode("fast") }

// StopMode shuts the server down with pg_ctl's mode: "smart", "fast", or
// "immediate" (as if it crashed: crash recovery runs at the next start).
func (s *PGServer) StopMode(mode string) {
	s.t.Helper()
	s.run("pg_ctl", "stop", "-D", s.data(), "-m", mode, "-w", "-t", "60")
}

// Start starts the (stopped) server on its port and returns once it
// accepts connections.
func (s *PGServer) Start() {
	s.t.Helper()
	// fsync=off: the machine does not crash in a test, and what a stopped
	// or killed server wrote stays in the page cache.
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -c unix_socket_directories=%s -c fsync=off -c max_connections=200", s.port, s.dir)
	s.run("pg_ctl", "start", "-D", s.data(), "-l", filepath.Join(s.dir, "postgres.log"), "-o", opts, "-w", "-t", "60")
}

// Restart stops the server (mode "fast") and starts it again.
func (s *PGServer) Restart() {
	s.t.Helper()
	s.Stop()
	s.Start()
}

// Log returns the server's log so far (for failure messages).
func (s *PGServer) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "postgres.log"))
	return string(b)
}

func (s *PGServer) data() string { return filepath.Join(s.dir, "data") }

// command prepares a server binary to run as the server's user.
func (s *PGServer) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(s.bin, name), args...)
	cmd.Dir = s.dir
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
		cmd.Env = append(os.Environ(), "HOME="+s.dir)
	}
	return cmd
}

func (s *PGServer) run(name string, args ...string) {
	s.t.Helper()
	if out, err := s.command(name, args...).CombinedOutput(); err != nil {
		s.t.Fatalf("%s %v: %v\n%s\n%s", name, args, err, out, s.Log())
	}
}

// postgresBinDir finds the directory holding initdb and pg_ctl: PATH first,
// else the newest /usr/lib/postgresql/<version>/bin (Debian's layout).
func postgresBinDir() string {
	if p, err := exec.LookPath("initdb"); err == nil {
		if dir := filepath.Dir(p); fileExists(filepath.Join(dir, "pg_ctl")) {
			return dir
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, dir := range dirs {
		if fileExists(filepath.Join(dir, "initdb")) && fileExists(filepath.Join(dir, "pg_ctl")) {
			return dir
		}
	}
	return ""
}

func versionOf(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// freePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
