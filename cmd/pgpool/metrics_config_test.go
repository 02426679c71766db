package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestMapMetricsListen: metrics_listen reaches the pooler's configuration.
func TestMapMetricsListen(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "userlist.txt")
	os.WriteFile(users, []byte("\"alice\" \"secret\"\n"), 0o600)
	ini := filepath.Join(dir, "pgbouncer.ini")
	os.WriteFile(ini, []byte("[databases]\napp = dbname=app\n\n[pgbouncer]\nauth_file = "+users+"\nmetrics_listen = 127.0.0.1:9127\n"), 0o644)
	rc, warnings, err := loadConfig(ini)
	if err != nil {
		t.Fatal(err)
	}
	if rc.Pooler.MetricsListen != "127.0.0.1:9127" || len(warnings) != 0 {
		t.Errorf("MetricsListen %q, warnings %v", rc.Pooler.MetricsListen, warnings)
	}
}
