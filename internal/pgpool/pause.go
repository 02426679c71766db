package pgpool

import "time"

// Pause is what the admin console's PAUSE does, for SIGUSR1: no client gets a server
// connection any more, and server connections are closed as they are released (in
// the background: Pause does not wait). It returns false, changing nothing, when the
// pooler is paused already.
func (pl *Pooler) Pause() bool {
	if pl.isPaused("") {
		return false
	}
	pl.setPause("", true)
	select {
	case <-pl.done:
		return true // shutting down: nothing left to close as it is released
	default:
	}
	pl.wg.Add(1) // owned by the pooler: Shutdown waits for it (it ends at pl.done)
	go func() {
		defer pl.wg.Done()
		t := time.NewTicker(adminPollInterval)
		defer t.Stop()
		for {
			ps := pl.poolsOf("")
			for _, p := range ps {
				p.closeIdle()
			}
			if busyServers(ps) == 0 || !pl.pausedDatabase("") {
				return
			}
			select {
			case <-pl.done:
				return
			case <-t.C:
			}
		}
	}()
	return true
}

// Resume is the admin console's RESUME, for SIGUSR2: it lifts a pause of the whole
// pooler and returns false when there was none.
func (pl *Pooler) Resume() bool {
	if !pl.isPaused("") {
		return false
	}
	pl.setPause("", false)
	return true
}
