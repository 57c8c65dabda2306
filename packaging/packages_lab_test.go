//go:build lab

package packaging

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// testVersion is the version the test's packages carry.
const testVersion = "0.0~test1"

// buildPackages runs `make deb rpm` at the repository's root (the targets
// an operator runs) and returns the two packages.
func buildPackages(t *testing.T) (deb, rpm string) {
	t.Helper()
	lookTool(t, "make")
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	cmd := exec.Command("make", "-C", root, "deb", "rpm", "PKG_VERSION="+testVersion)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make deb rpm: %v\n%s", err, out)
	}
	t.Logf("make deb rpm: %s", time.Since(start).Round(time.Second))
	deb = filepath.Join(root, "dist", "lvsmon_"+testVersion+"-1_amd64.deb")
	rpm = filepath.Join(root, "dist", "lvsmon-"+testVersion+"-1.x86_64.rpm")
	for _, p := range []string{deb, rpm} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("make deb rpm left no %s: %v", p, err)
		}
	}
	return deb, rpm
}

func output(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(lookTool(t, name), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// common are the files both packages hold besides the unit and the zsh
// completion, whose directories differ.
var common = []string{
	"/etc/lvsmon/lvsmon.yaml",
	"/usr/bin/lvsmon",
	"/usr/share/bash-completion/completions/lvsmon",
	"/usr/share/fish/vendor_completions.d/lvsmon.fish",
	"/usr/share/man/man1/lvsmon.1.gz",
	"/var/lib/lvsmon",
}

func sorted(s ...[]string) []string {
	out := slices.Concat(s...)
	slices.Sort(out)
	return out
}

// The .deb and the .rpm hold exactly their files (with the config a
// conffile, the state directory root's and 0750), depend on librrd and
// carry their maintainer scripts; then the .deb is installed into a
// debootstrapped Debian 12 with apt (which fetches librrd8), where
// lvsmon runs, a removal keeps the config and the state, a reinstall
// keeps an edited config, and a purge deletes the state.
func TestPackages(t *testing.T) {
	deb, rpm := buildPackages(t)

	// The .deb's files: dpkg-deb -c lists directories too; keep files,
	// symlinks and the state directory.
	var debFiles []string
	for _, line := range strings.Split(output(t, "dpkg-deb", "-c", deb), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 {
			continue
		}
		path := strings.TrimSuffix(strings.TrimPrefix(f[5], "."), "/")
		if f[0][0] != 'd' || path == "/var/lib/lvsmon" {
			debFiles = append(debFiles, path)
		}
		if path == "/var/lib/lvsmon" && (f[0] != "drwxr-x---" || f[1] != "root/root") {
			t.Errorf("/var/lib/lvsmon in the .deb: %s %s, want drwxr-x--- root/root", f[0], f[1])
		}
	}
	slices.Sort(debFiles)
	if want := sorted(common, []string{"/etc/default/lvsmon", "/lib/systemd/system/lvsmon.service", "/usr/share/zsh/vendor-completions/_lvsmon"}); !slices.Equal(debFiles, want) {
		t.Errorf(".deb files:\n%s\nwant:\n%s", strings.Join(debFiles, "\n"), strings.Join(want, "\n"))
	}
	if got := strings.TrimSpace(output(t, "dpkg-deb", "-f", deb, "Depends")); got != "libc6 (>= 2.34), librrd8" {
		t.Errorf(".deb Depends: %q", got)
	}
	ctl := t.TempDir()
	output(t, "dpkg-deb", "-e", deb, ctl)
	if b, _ := os.ReadFile(filepath.Join(ctl, "conffiles")); !slices.Equal(sorted(strings.Fields(string(b))), []string{"/etc/default/lvsmon", "/etc/lvsmon/lvsmon.yaml"}) {
		t.Errorf(".deb conffiles: %q", b)
	}
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		if fi, err := os.Stat(filepath.Join(ctl, s)); err != nil || fi.Mode()&0o111 == 0 {
			t.Errorf(".deb %s: %v", s, err)
		}
	}

	// The .rpm, read by rpm itself.
	rpmFiles := strings.Fields(output(t, "rpm", "-qpl", rpm))
	slices.Sort(rpmFiles)
	if want := sorted(common, []string{"/etc/sysconfig/lvsmon", "/usr/lib/systemd/system/lvsmon.service", "/usr/share/zsh/site-functions/_lvsmon"}); !slices.Equal(rpmFiles, want) {
		t.Errorf(".rpm files:\n%s\nwant:\n%s", strings.Join(rpmFiles, "\n"), strings.Join(want, "\n"))
	}
	if got := output(t, "rpm", "-qp", "--requires", rpm); !strings.Contains(got, "rrdtool") {
		t.Errorf(".rpm requires:\n%s", got)
	}
	if got := sorted(strings.Fields(output(t, "rpm", "-qp", "--configfiles", rpm))); !slices.Equal(got, []string{"/etc/lvsmon/lvsmon.yaml", "/etc/sysconfig/lvsmon"}) {
		t.Errorf(".rpm config files: %q", got)
	}
	if got := output(t, "rpm", "-qp", "--scripts", rpm); !strings.Contains(got, "postinstall scriptlet") || !strings.Contains(got, "preuninstall scriptlet") {
		t.Errorf(".rpm scripts:\n%s", got)
	}

	installInDebian(t, deb)
}

// installInDebian installs deb into a fresh Debian 12 root (from the
// cache) and runs it there.
func installInDebian(t *testing.T, deb string) {
	root, cache := debianRoot(t)
	chroot := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("chroot", append([]string{root}, args...)...)
		cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND=noninteractive", "LANG=C.UTF-8"}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("in the Debian root: %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	inRoot := func(p string) string { return filepath.Join(root, p) }
	if err := copyFile(deb, inRoot("/tmp/lvsmon.deb")); err != nil {
		t.Fatal(err)
	}
	// The root has no librrd8: apt fetches it and what it needs from the
	// mirror, as on a director.
	if _, err := os.Stat(inRoot("/usr/lib/x86_64-linux-gnu/librrd.so.8")); err == nil {
		t.Fatal("the Debian root already has librrd8: the dependency would go untested")
	}
	start := time.Now()
	chroot("apt-get", "install", "-y", "-q", "--no-install-recommends", "/tmp/lvsmon.deb")
	t.Logf("apt-get install ./lvsmon.deb in the Debian 12 root: %s", time.Since(start).Round(time.Second))
	saveArchives(t, root, cache)

	if out := chroot("lvsmon", "check-config", "/etc/lvsmon/lvsmon.yaml"); !strings.Contains(out, "valid (0 virtual services, 0 real servers)") {
		t.Errorf("check-config in the Debian root: %s", out)
	}
	if out := chroot("lvsmon", "version"); !strings.HasPrefix(out, "lvsmon, version ") || !strings.Contains(out, "go1.") {
		t.Errorf("version in the Debian root: %s", out)
	} else {
		t.Logf("lvsmon version in the Debian root:\n%s", out)
	}
	// Enabled at the first install, as Debian's daemons are (no systemd
	// runs in the root, so nothing was started).
	if _, err := os.Lstat(inRoot("/etc/systemd/system/multi-user.target.wants/lvsmon.service")); err != nil {
		t.Errorf("lvsmon.service not enabled by postinst: %v", err)
	}
	fi, err := os.Stat(inRoot("/var/lib/lvsmon"))
	if err != nil || fi.Mode().Perm() != 0o750 {
		t.Errorf("/var/lib/lvsmon: %v %v", fi.Mode(), err)
	}

	// Upgrade (a reinstall): an edited conffile is kept.
	edited := "# edited by the operator\nstep: 30s\n"
	if err := os.WriteFile(inRoot("/etc/lvsmon/lvsmon.yaml"), []byte(edited), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(inRoot("/var/lib/lvsmon/events"), []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	chroot("dpkg", "-i", "--force-confold", "/tmp/lvsmon.deb")
	if b, _ := os.ReadFile(inRoot("/etc/lvsmon/lvsmon.yaml")); string(b) != edited {
		t.Errorf("the reinstall replaced the edited config: %q", b)
	}
	// Removal keeps the config and the state; purge deletes both.
	chroot("dpkg", "-r", "lvsmon")
	for _, p := range []string{"/etc/lvsmon/lvsmon.yaml", "/var/lib/lvsmon/events"} {
		if _, err := os.Stat(inRoot(p)); err != nil {
			t.Errorf("after dpkg -r: %v", err)
		}
	}
	if _, err := os.Stat(inRoot("/usr/bin/lvsmon")); err == nil {
		t.Error("after dpkg -r the binary is still there")
	}
	chroot("dpkg", "--purge", "lvsmon")
	for _, p := range []string{"/etc/lvsmon", "/var/lib/lvsmon", "/etc/systemd/system/multi-user.target.wants/lvsmon.service"} {
		if _, err := os.Lstat(inRoot(p)); err == nil {
			t.Errorf("after dpkg --purge %s is still there", p)
		}
	}
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o644)
}

// mirror is the Debian mirror this machine's apt uses for bookworm.
func mirror(t *testing.T) string {
	t.Helper()
	files, _ := filepath.Glob("/etc/apt/sources.list.d/*.sources")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// deb822 stanzas: URIs and Suites.
		for _, st := range strings.Split(string(b), "\n\n") {
			var uri string
			suites := false
			for _, l := range strings.Split(st, "\n") {
				if v, ok := strings.CutPrefix(l, "URIs:"); ok {
					uri = strings.Fields(v)[0]
				}
				if v, ok := strings.CutPrefix(l, "Suites:"); ok && slices.Contains(strings.Fields(v), "bookworm") {
					suites = true
				}
			}
			if uri != "" && suites {
				return uri
			}
		}
	}
	if f, err := os.Open("/etc/apt/sources.list"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if w := strings.Fields(sc.Text()); len(w) >= 3 && w[0] == "deb" && w[2] == "bookworm" {
				return w[1]
			}
		}
	}
	t.Fatal("no bookworm mirror in /etc/apt/sources.list{,.d}")
	return ""
}

// cacheDir is where the Debian root's tarball and the .debs apt fetched
// are kept between runs: $XDG_CACHE_HOME/lvsmon-test, else
// /var/cache/lvsmon-test (outside the repository).
func cacheDir(t *testing.T, key string) string {
	t.Helper()
	base := "/var/cache/lvsmon-test"
	if x := os.Getenv("XDG_CACHE_HOME"); x != "" {
		base = filepath.Join(x, "lvsmon-test")
	}
	dir := filepath.Join(base, key)
	if err := os.MkdirAll(filepath.Join(dir, "archives"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// debianRoot returns a fresh minimal Debian 12 root in a temporary
// directory, with /proc mounted, unpacked from a cached tarball that
// debootstrap made on the first run (keyed by mirror and suite), and with
// the .debs earlier runs fetched put back in apt's cache.
func debianRoot(t *testing.T) (root, cache string) {
	t.Helper()
	lookTool(t, "debootstrap")
	lookTool(t, "chroot")
	m := mirror(t)
	key := fmt.Sprintf("bookworm-minbase-%x", sha256.Sum256([]byte(m+" bookworm minbase")))[:40]
	cache = cacheDir(t, key)
	tarball := filepath.Join(cache, "root.tar.gz")
	if _, err := os.Stat(tarball); err != nil {
		start := time.Now()
		tmp := t.TempDir()
		out, err := exec.Command("debootstrap", "--variant=minbase", "bookworm", filepath.Join(tmp, "root"), m).CombinedOutput()
		if err != nil {
			t.Fatalf("debootstrap bookworm from %s: %v\n%s", m, err, out)
		}
		// The .debs debootstrap installed are not needed in the tarball.
		debs, _ := filepath.Glob(filepath.Join(tmp, "root", "var/cache/apt/archives", "*.deb"))
		for _, d := range debs {
			os.Remove(d)
		}
		if out, err := exec.Command("tar", "-C", filepath.Join(tmp, "root"), "-czf", tarball+".part", ".").CombinedOutput(); err != nil {
			t.Fatalf("tar: %v\n%s", err, out)
		}
		if err := os.Rename(tarball+".part", tarball); err != nil {
			t.Fatal(err)
		}
		t.Logf("debootstrap of bookworm from %s: %s (cached in %s)", m, time.Since(start).Round(time.Second), tarball)
	}
	root = filepath.Join(t.TempDir(), "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("tar", "-C", root, "-xzf", tarball).CombinedOutput(); err != nil {
		t.Fatalf("unpacking the cached root: %v\n%s", err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(cache, "archives", "*.deb"))
	for _, d := range debs {
		if err := copyFile(d, filepath.Join(root, "var/cache/apt/archives", filepath.Base(d))); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("mount", "-t", "proc", "proc", filepath.Join(root, "proc")).CombinedOutput(); err != nil {
		t.Fatalf("mounting /proc in the root: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", filepath.Join(root, "proc")).Run() })
	return root, cache
}

// saveArchives keeps the .debs apt fetched into the root for the next run.
func saveArchives(t *testing.T, root, cache string) {
	t.Helper()
	debs, _ := filepath.Glob(filepath.Join(root, "var/cache/apt/archives", "*.deb"))
	for _, d := range debs {
		to := filepath.Join(cache, "archives", filepath.Base(d))
		if _, err := os.Stat(to); err == nil {
			continue
		}
		if err := copyFile(d, to); err != nil {
			t.Logf("keeping %s for the next run: %v", filepath.Base(d), err)
		}
	}
}
