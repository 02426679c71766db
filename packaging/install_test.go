package packaging

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/poolsuite/poolsuite/internal/testenv"
)

// TestInstall runs scripts/install.sh into a temporary DESTDIR and checks that the
// binaries, units, logrotate files, /etc/default files and configurations land with
// their modes, that the units are Debian's shape (Type=notify, User=postgres with a
// SIGHUP reload and SIGINT stop; User=nutcracker reading /etc/default/nutcracker),
// that the installed binaries accept the installed configurations, that a second run
// keeps a configuration the operator changed, and that systemd-analyze verify
// passes the units (when systemd-analyze is installed).
func TestInstall(t *testing.T) {
	bins := t.TempDir()
	testenv.GoBuild(t, "github.com/poolsuite/poolsuite/cmd/pgpool", bins)
	testenv.GoBuild(t, "github.com/poolsuite/poolsuite/cmd/kvproxy", bins)
	dest := t.TempDir()
	install := func() string {
		t.Helper()
		out, err := exec.Command("../scripts/install.sh", "--destdir", dest, "--prefix", "/usr", "--binaries", bins).CombinedOutput()
		if err != nil {
			t.Fatalf("install.sh: %v\n%s", err, out)
		}
		return string(out)
	}
	install()
	for path, mode := range map[string]os.FileMode{
		"usr/sbin/pgpool":                        0o755,
		"usr/sbin/kvproxy":                       0o755,
		"usr/lib/systemd/system/pgpool.service":  0o644,
		"usr/lib/systemd/system/kvproxy.service": 0o644,
		"etc/logrotate.d/pgpool":                 0o644,
		"etc/logrotate.d/kvproxy":                0o644,
		"etc/default/pgpool":                     0o644,
		"etc/default/kvproxy":                    0o644,
		"etc/pgpool/pgbouncer.ini":               0o644,
		"etc/pgpool/userlist.txt":                0o640,
		"etc/nutcracker/nutcracker.yml":          0o644,
	} {
		fi, err := os.Stat(filepath.Join(dest, path))
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode().Perm(), mode)
		}
	}
	read := func(path string) string {
		b, err := os.ReadFile(filepath.Join(dest, path))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	unitHas := func(unit string, lines ...string) {
		t.Helper()
		text := read("usr/lib/systemd/system/" + unit)
		for _, l := range lines {
			if !strings.Contains("\n"+text, "\n"+l+"\n") {
				t.Errorf("%s lacks the line %q", unit, l)
			}
		}
	}
	unitHas("pgpool.service", "Type=notify", "User=postgres", "ExecReload=/bin/kill -HUP $MAINPID", "KillSignal=SIGINT",
		"EnvironmentFile=-/etc/default/pgpool", "ExecStart=/usr/sbin/pgpool $DAEMON_OPTS ${PGPOOL_CONFIG}")
	unitHas("kvproxy.service", "Type=notify", "User=nutcracker", "EnvironmentFile=-/etc/default/nutcracker",
		"ExecStart=/usr/sbin/kvproxy -c /etc/nutcracker/nutcracker.yml -o /var/log/kvproxy/kvproxy.log $DAEMON_OPTS")
	if !strings.Contains(read("etc/logrotate.d/pgpool"), "systemctl reload pgpool.service") {
		t.Error("pgpool's logrotate file does not reload pgpool")
	}

	// The installed binaries accept the installed configurations.
	ini := filepath.Join(dest, "etc/pgpool/pgbouncer.ini")
	staged := filepath.Join(t.TempDir(), "pgbouncer.ini")
	os.WriteFile(staged, []byte(strings.ReplaceAll(read("etc/pgpool/pgbouncer.ini"), "/etc/pgpool/", filepath.Join(dest, "etc/pgpool")+"/")), 0o644)
	if out, err := exec.Command(filepath.Join(dest, "usr/sbin/pgpool"), "check-config", staged).CombinedOutput(); err != nil {
		t.Errorf("pgpool check-config on the default pgbouncer.ini: %v\n%s", err, out)
	}
	if out, err := exec.Command(filepath.Join(dest, "usr/sbin/kvproxy"), "-t", "-c", filepath.Join(dest, "etc/nutcracker/nutcracker.yml")).CombinedOutput(); err != nil {
		t.Errorf("kvproxy -t on the default nutcracker.yml: %v\n%s", err, out)
	}

	// A second run keeps what the operator changed.
	os.WriteFile(ini, []byte("; mine\n"), 0o644)
	if out := install(); !strings.Contains(out, "keeping /etc/pgpool/pgbouncer.ini") {
		t.Errorf("second run:\n%s", out)
	}
	if read("etc/pgpool/pgbouncer.ini") != "; mine\n" {
		t.Error("a second run replaced the operator's pgbouncer.ini")
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze not installed: units not verified")
		return
	}
	// verify checks that ExecStart's binary exists: point it at the staged one.
	vdir := t.TempDir()
	var units []string
	for _, u := range []string{"pgpool.service", "kvproxy.service"} {
		text := strings.ReplaceAll(read("usr/lib/systemd/system/"+u), "=/usr/sbin/", "="+filepath.Join(dest, "usr/sbin")+"/")
		p := filepath.Join(vdir, u)
		os.WriteFile(p, []byte(text), 0o644)
		units = append(units, p)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(analyze, append([]string{"verify"}, units...)...)
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil || stderr.Len() > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, stderr.String())
	}
}
