// Package packaging holds no Go code: its directory has the systemd units,
// logrotate files, /etc/default files and default configurations that
// scripts/install.sh installs, and the test that installs them into a staging tree.
package packaging
