package events

// Lane is a priority class of book requests. Fetchers always take work from the highest
// waiting lane first (see Lanes).
type Lane string

// The lanes, highest first.
const (
	// LaneInteractive is work a reader is waiting for.
	LaneInteractive Lane = "interactive"
	// LaneManual is work an administrator asked for.
	LaneManual Lane = "manual"
	// LanePrefetch is work queued by category browsing.
	LanePrefetch Lane = "prefetch"
	// LaneRefresh is scheduled resynchronisation.
	LaneRefresh Lane = "refresh"
)

// Lanes lists every lane, highest priority first.
var Lanes = []Lane{LaneInteractive, LaneManual, LanePrefetch, LaneRefresh}

// Valid reports whether l is one of Lanes.
func (l Lane) Valid() bool {
	for _, x := range Lanes {
		if l == x {
			return true
		}
	}
	return false
}

// Rank is the lane's position in Lanes: 0 for the highest; -1 for an unknown lane.
func (l Lane) Rank() int {
	for i, x := range Lanes {
		if l == x {
			return i
		}
	}
	return -1
}

// LaneForPriority maps the seed's numeric priority to a lane: admin triggers (priority
// 5 and above) are manual, anything lower is prefetch.
func LaneForPriority(priority int) Lane {
	if priority >= ManualMinPriority {
		return LaneManual
	}
	return LanePrefetch
}

// Priorities of the seed's API.
const (
	// ManualMinPriority is the lowest priority that still counts as a manual request.
	ManualMinPriority = 5
	// DefaultManualPriority is the priority of an admin trigger that names none.
	DefaultManualPriority = 10
	// PrefetchPriority is the priority of category browsing.
	PrefetchPriority = 0
)
