package testenv

import "testing"

// TestClaimSlot: processes get disjoint shares of the range below the ephemeral one,
// each held by its lock until given up, when the next process may take it.
func TestClaimSlot(t *testing.T) {
	dir := t.TempDir()
	const top = 32768
	a, alo, ahi, ok := claimSlot(dir, top)
	if !ok {
		t.Fatal("no share for the first claim")
	}
	b, blo, bhi, ok := claimSlot(dir, top)
	if !ok {
		t.Fatal("no share for the second claim")
	}
	defer b.Close()
	if alo < lowestPort || bhi > top || ahi-alo < 100 || bhi-blo != ahi-alo {
		t.Fatalf("shares [%d,%d) and [%d,%d), want equal ones of at least 100 ports in [%d,%d)", alo, ahi, blo, bhi, lowestPort, top)
	}
	if blo < ahi && alo < bhi {
		t.Fatalf("shares [%d,%d) and [%d,%d) overlap", alo, ahi, blo, bhi)
	}
	var held []interface{ Close() error }
	for {
		f, _, _, ok := claimSlot(dir, top)
		if !ok {
			break
		}
		held = append(held, f)
	}
	if len(held) != portSlots-2 {
		t.Fatalf("%d more shares claimed, want %d", len(held), portSlots-2)
	}
	a.Close()
	c, clo, _, ok := claimSlot(dir, top)
	if !ok || clo != alo {
		t.Fatalf("after the first share was given up, a claim got %d (ok %v), want it (%d)", clo, ok, alo)
	}
	c.Close()
	for _, f := range held {
		f.Close()
	}
	if _, _, _, ok := claimSlot(dir, lowestPort+50*portSlots); ok {
		t.Fatal("a share of fewer than 100 ports was claimed")
	}
}
