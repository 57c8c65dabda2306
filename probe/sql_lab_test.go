//go:build lab

// Lab tier (README, Tests): the mysql and pgsql checks against Debian's
// own MariaDB (mariadb-server) and PostgreSQL (postgresql), each a
// private server of the test's on a free loopback port with its data in
// a temporary directory; needs root (PostgreSQL runs as its user
// postgres). A missing server program fails the test.

package probe

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/internal/testutil"
)

// labDB is a database server the test started.
type labDB struct {
	addr string
	cmd  *exec.Cmd
	log  string
	quit syscall.Signal // the fast shutdown: SIGTERM waits for PostgreSQL's sessions
}

// signal sends sig to the server's process group.
func (d *labDB) signal(sig syscall.Signal) { syscall.Kill(-d.cmd.Process.Pid, sig) }

// stop ends the server and waits for it (quit, then SIGKILL).
func (d *labDB) stop() {
	if d.cmd.ProcessState != nil {
		return
	}
	d.signal(syscall.SIGCONT)
	d.signal(d.quit)
	done := make(chan struct{})
	go func() { d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		d.signal(syscall.SIGKILL)
		<-done
	}
}

func (d *labDB) logTail() string {
	b, _ := os.ReadFile(d.log)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// freeLoopbackPort is a TCP port nothing listens on now.
func freeLoopbackPort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// labProgram is the path of a server program, or fails the test.
func labProgram(t *testing.T, pkg string, paths ...string) string {
	for _, p := range paths {
		if m, _ := filepath.Glob(p); len(m) > 0 {
			slices.Sort(m)
			return m[len(m)-1]
		}
	}
	t.Fatalf("none of %v: install Debian's %s (scripts/deps.sh test)", paths, pkg)
	return ""
}

// run runs a setup command and fails the test with its output.
func run(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
	}
}

// startDB starts cmd in a process group of its own, logging to log,
// and stops it when the test ends.
func startDB(t *testing.T, cmd *exec.Cmd, log string, addr string) *labDB {
	f, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd.Stdout, cmd.Stderr = f, f
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &labDB{addr: addr, cmd: cmd, log: log, quit: syscall.SIGTERM}
	t.Cleanup(d.stop)
	return d
}

// startMariaDB starts a private mariadbd with a database lvs, a table
// health holding "ok", and users monitor (mysql_native_password) and
// monitor2 (ed25519), password pw, who may read it.
func startMariaDB(t *testing.T) *labDB {
	mariadbd := labProgram(t, "mariadb-server", "/usr/sbin/mariadbd")
	install := labProgram(t, "mariadb-server", "/usr/bin/mariadb-install-db", "/usr/bin/mysql_install_db")
	client := labProgram(t, "mariadb-client", "/usr/bin/mariadb", "/usr/bin/mysql")
	dir := t.TempDir()
	run(t, exec.Command(install, "--no-defaults", "--user=root", "--datadir="+dir+"/data", "--auth-root-authentication-method=socket", "--skip-test-db"))
	port := freeLoopbackPort(t)
	sock := filepath.Join(dir, "sock")
	d := startDB(t, exec.Command(mariadbd, "--no-defaults", "--user=root", "--datadir="+dir+"/data", "--socket="+sock,
		"--port="+strconv.Itoa(port), "--bind-address=127.0.0.1", "--skip-networking=0", "--skip-name-resolve",
		"--pid-file="+dir+"/pid", "--innodb-buffer-pool-size=16M", "--skip-log-bin"), dir+"/log", fmt.Sprintf("127.0.0.1:%d", port))
	setup := "CREATE DATABASE lvs; CREATE USER monitor@'127.0.0.1' IDENTIFIED BY 'pw'; GRANT SELECT ON lvs.* TO monitor@'127.0.0.1';" +
		" CREATE TABLE lvs.health (state VARCHAR(20)); INSERT INTO lvs.health VALUES ('ok');" +
		" INSTALL SONAME 'auth_ed25519'; CREATE USER monitor2@'127.0.0.1' IDENTIFIED VIA ed25519 USING PASSWORD('pw'); GRANT SELECT ON lvs.* TO monitor2@'127.0.0.1';"
	var out []byte
	testutil.Eventually(t, 60*time.Second, func() bool {
		var err error
		out, err = exec.Command(client, "--no-defaults", "-S", sock, "-u", "root", "-e", setup).CombinedOutput()
		return err == nil
	}, func() string { return fmt.Sprintf("mariadbd never took the setup: %s\n%s", out, d.logTail()) })
	return d
}

// startPostgres starts a private PostgreSQL as user postgres, with host
// logins by SCRAM, a database lvs owned by monitor (password pw) and a
// table health holding "ok".
func startPostgres(t *testing.T) *labDB {
	bin := filepath.Dir(labProgram(t, "postgresql", "/usr/lib/postgresql/*/bin/postgres"))
	labProgram(t, "postgresql-client", bin+"/psql")
	pg, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("user postgres: %v (install Debian's postgresql)", err)
	}
	uid, _ := strconv.Atoi(pg.Uid)
	gid, _ := strconv.Atoi(pg.Gid)
	asPostgres := func(cmd *exec.Cmd) *exec.Cmd {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		cmd.Env = append(os.Environ(), "HOME="+pg.HomeDir)
		return cmd
	}
	// t.TempDir's parent is root's alone: postgres gets a directory of
	// its own.
	dir, err := os.MkdirTemp("", "lvsmon-pgsql-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	run(t, asPostgres(exec.Command(bin+"/initdb", "-D", dir+"/data", "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256", "-N")))
	port := freeLoopbackPort(t)
	d := startDB(t, asPostgres(exec.Command(bin+"/postgres", "-D", dir+"/data", "-k", dir, "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-c", "fsync=off")),
		filepath.Join(t.TempDir(), "log"), fmt.Sprintf("127.0.0.1:%d", port))
	d.quit = syscall.SIGINT
	psql := func(db string, sql ...string) *exec.Cmd {
		args := []string{"-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", dir, "-p", strconv.Itoa(port), "-U", "postgres", "-d", db}
		for _, s := range sql {
			args = append(args, "-c", s)
		}
		return asPostgres(exec.Command(filepath.Join(bin, "psql"), args...))
	}
	var out []byte
	testutil.Eventually(t, 60*time.Second, func() bool {
		var err error
		out, err = psql("postgres", "CREATE ROLE monitor LOGIN PASSWORD 'pw'", "CREATE DATABASE lvs OWNER monitor").CombinedOutput()
		return err == nil
	}, func() string { return fmt.Sprintf("postgres never took the setup: %s\n%s", out, d.logTail()) })
	run(t, psql("lvs", "CREATE TABLE health (state text); INSERT INTO health VALUES ('ok'); GRANT SELECT ON health TO monitor"))
	return d
}

type sqlLabCase struct {
	name, check, want string
}

// runSQLLab runs the cases against d, then stops d and wants a refused
// connection.
func runSQLLab(t *testing.T, typ string, p Probe, d *labDB, slowQuery string, cases []sqlLabCase) {
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	probeOnce := func(t *testing.T, check string) (error, time.Duration) {
		c := parseCheck(t, "tcp", "{type: "+typ+", timeout: 5s, "+strings.ReplaceAll(check, "PWFILE", pwFile)+"}")
		start := time.Now()
		err := runBounded(t, p, targetAt(t, d.addr), c)
		return err, time.Since(start)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err, took := probeOnce(t, tc.check)
			t.Logf("%s in %s: %v", tc.name, took.Round(time.Millisecond), err)
			wantErr(t, err, tc.want)
			if err != nil && (strings.Contains(err.Error(), "pw'") || strings.Contains(err.Error(), "wrong-pw")) {
				t.Errorf("the message shows the password: %v", err)
			}
		})
	}
	t.Run("slow query", func(t *testing.T) {
		c := parseCheck(t, "tcp", "{type: "+typ+", timeout: 500ms, username: monitor, password: pw, database: lvs, query: '"+slowQuery+"'}")
		wantErr(t, runBounded(t, p, targetAt(t, d.addr), c), typ+": "+d.addr+": query: no answer within 500ms")
	})
	t.Run("frozen server", func(t *testing.T) {
		d.signal(syscall.SIGSTOP)
		defer d.signal(syscall.SIGCONT)
		c := parseCheck(t, "tcp", "{type: "+typ+", timeout: 500ms, username: monitor, password: pw, database: lvs}")
		wantErr(t, runBounded(t, p, targetAt(t, d.addr), c), typ+": "+d.addr+": login as monitor to database lvs: no answer within 500ms")
	})
	t.Run("stopped server", func(t *testing.T) {
		d.stop()
		err, _ := probeOnce(t, "username: monitor, password: pw, database: lvs")
		wantErr(t, err, typ+": connect "+d.addr+": connection refused")
	})
}

func TestLabMySQL(t *testing.T) {
	d := startMariaDB(t)
	login := "login as monitor to database lvs refused: "
	runSQLLab(t, "mysql", probeMySQL, d, "SELECT SLEEP(10)", []sqlLabCase{
		{"healthy", "username: monitor, password: pw, database: lvs, query: 'SELECT state FROM health', expect: '^ok$'", ""},
		{"defaults: SELECT 1, no database", "username: monitor, password: pw", ""},
		{"password file", "username: monitor, password_file: PWFILE, database: lvs", ""},
		{"ed25519 account", "username: monitor2, password: pw, database: lvs", ""},
		{"NULL", "username: monitor, password: pw, query: 'SELECT NULL', expect: '^$'", ""},
		{"ten million rows, the first read", "username: monitor, password: pw, database: lvs, query: 'SELECT seq FROM seq_1_to_10000000'", ""},
		{"wrong password", "username: monitor, password: wrong-pw, database: lvs",
			"mysql: " + d.addr + ": " + login + "Access denied for user 'monitor'@'127.0.0.1' (using password: YES) (error 1045)"},
		{"unknown user", "username: nobody, password: pw", "mysql: " + d.addr + ": login as nobody refused: Access denied for user 'nobody'@'127.0.0.1' (using password: YES) (error 1045)"},
		{"database missing", "username: monitor, password: pw, database: nope", "mysql: " + d.addr + ": login as monitor to database nope refused: |'nope'"},
		{"no rows", "username: monitor, password: pw, database: lvs, query: \"SELECT state FROM health WHERE state = 'down'\"", "mysql: " + d.addr + ": query returned no rows"},
		{"query fails", "username: monitor, password: pw, database: lvs, query: 'SELECT * FROM missing'", "mysql: " + d.addr + ": query failed: Table 'lvs.missing' doesn't exist (error 1146)"},
		{"expect fails", "username: monitor, password: pw, database: lvs, query: 'SELECT state FROM health', expect: '^down$'", `mysql: ` + d.addr + `: first column "ok" does not match "^down$"`},
	})
}

func TestLabPgSQL(t *testing.T) {
	d := startPostgres(t)
	login := "login as monitor to database lvs refused: "
	runSQLLab(t, "pgsql", probePgSQL, d, "SELECT pg_sleep(10)", []sqlLabCase{
		{"healthy", "username: monitor, password: pw, database: lvs, query: 'SELECT state FROM health', expect: '^ok$'", ""},
		{"default query", "username: monitor, password: pw, database: lvs", ""},
		{"password file", "username: monitor, password_file: PWFILE, database: lvs", ""},
		{"NULL", "username: monitor, password: pw, database: lvs, query: 'SELECT NULL', expect: '^$'", ""},
		{"ten million rows, the first read", "username: monitor, password: pw, database: lvs, query: 'SELECT generate_series(1, 10000000)'", ""},
		{"several statements", "username: monitor, password: pw, database: lvs, query: 'SET search_path = public; SELECT state FROM health'", ""},
		{"wrong password", "username: monitor, password: wrong-pw, database: lvs", "pgsql: " + d.addr + ": " + login + `password authentication failed for user "monitor" (28P01)`},
		{"database defaults to the user's", "username: monitor, password: pw", "pgsql: " + d.addr + `: login as monitor to database monitor refused: database "monitor" does not exist (3D000)`},
		{"database missing", "username: monitor, password: pw, database: nope", "pgsql: " + d.addr + `: login as monitor to database nope refused: database "nope" does not exist (3D000)`},
		{"no rows", "username: monitor, password: pw, database: lvs, query: \"SELECT state FROM health WHERE state = 'down'\"", "pgsql: " + d.addr + ": query returned no rows"},
		{"query fails", "username: monitor, password: pw, database: lvs, query: 'SELECT * FROM missing'", "pgsql: " + d.addr + `: query failed: relation "missing" does not exist (42P01)`},
		{"expect fails", "username: monitor, password: pw, database: lvs, query: 'SELECT state FROM health', expect: '^down$'", `pgsql: ` + d.addr + `: first column "ok" does not match "^down$"`},
	})
}
