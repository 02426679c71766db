//go:build race

package main

// raceBuild: the tests run under the race detector, and so do the kvproxy processes
// the upgrade tests start (buildKvproxy), so that the handover code they run is
// checked too.
const raceBuild = true
