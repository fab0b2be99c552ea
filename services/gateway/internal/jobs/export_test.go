package jobs

import "time"

// SetClock makes m read the time from now.
func SetClock(m *Manager, now func() time.Time) { m.now = now }
