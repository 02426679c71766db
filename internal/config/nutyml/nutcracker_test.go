package nutyml

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/poolsuite/poolsuite/internal/testenv"
)

// TestNutcrackerAgrees runs nutcracker -t (test the configuration and exit) on every
// file of the tables: nutcracker must accept what Parse accepts and reject what Parse
// rejects, except for kvproxy's own keys.
func TestNutcrackerAgrees(t *testing.T) {
	bin := testenv.LookPath(t, "nutcracker")
	dir := t.TempDir()
	accepts := func(t *testing.T, data []byte) (bool, string) {
		t.Helper()
		path := filepath.Join(dir, "nutcracker.yml")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		cmd := exec.Command(bin, "-t", "-c", path)
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		if _, exit := errors.AsType[*exec.ExitError](err); err != nil && !exit {
			t.Fatalf("running nutcracker: %v", err)
		}
		return err == nil, out.String()
	}
	twemproxyFile, err := os.ReadFile("testdata/twemproxy.yml")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("testdata/twemproxy.yml", func(t *testing.T) {
		if ok, out := accepts(t, twemproxyFile); !ok {
			t.Errorf("nutcracker rejects it:\n%s", out)
		}
	})
	for _, tt := range goodFiles {
		t.Run("good/"+tt.name, func(t *testing.T) {
			if ok, out := accepts(t, []byte(tt.data)); !ok {
				t.Errorf("nutcracker rejects it:\n%s", out)
			}
		})
	}
	for _, tt := range badFiles {
		if tt.ext {
			continue
		}
		t.Run("bad/"+tt.name, func(t *testing.T) {
			if ok, _ := accepts(t, []byte(tt.data)); ok {
				t.Error("nutcracker accepts it")
			}
		})
	}
}
