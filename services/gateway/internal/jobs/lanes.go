package jobs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/xswtw/xsw/events"
)

// ErrNoConsumer means no fetch consumer matches: no fetcher serving the site (or any
// site) has started since the request stream was made, so nothing takes the lane's
// requests yet, and there is nothing to pause.
var ErrNoConsumer = errors.New("no fetch consumer")

// LaneConsumer is a fetch consumer of the request stream: the durable consumer the
// fetchers of a site take one lane's requests from (events.FetcherConsumer), or the one
// that takes the requests an older build stored for events.LegacySite
// (events.LegacyFetcherConsumer).
type LaneConsumer struct {
	Name string
	Lane events.Lane
	Site string
	// Legacy marks the consumer of the requests stored before books were site-qualified.
	Legacy bool
	// PauseUntil is when a pause ends (zero: not paused); Paused says it has not yet.
	PauseUntil time.Time
	Paused     bool
	// Waiting counts the requests waiting for the consumer, InFlight those a fetcher
	// holds.
	Waiting, InFlight int
}

// laneConsumer reads a consumer of the request stream; ok is false for one that is not a
// fetch consumer.
func laneConsumer(info *jetstream.ConsumerInfo) (LaneConsumer, bool) {
	lane, ok := events.FetcherConsumerLane(info.Name)
	if !ok {
		return LaneConsumer{}, false
	}
	c := LaneConsumer{Name: info.Name, Lane: lane, Paused: info.Paused,
		Waiting: int(info.NumPending), InFlight: info.NumAckPending}
	if site, qualified := strings.CutPrefix(strings.TrimPrefix(info.Name, "fetch-"+string(lane)), "-"); qualified {
		c.Site = site
	} else {
		c.Site, c.Legacy = events.LegacySite, true
	}
	if info.Config.PauseUntil != nil && info.Paused {
		c.PauseUntil = info.Config.PauseUntil.UTC()
	}
	return c, true
}

// Lanes lists the fetch consumers of the request stream by lane, highest first, then by
// site (the legacy consumer after the sites').
func (m *Manager) Lanes(ctx context.Context) ([]LaneConsumer, error) {
	var out []LaneConsumer
	infos := m.requests.ListConsumers(ctx)
	for info := range infos.Info() {
		if c, ok := laneConsumer(info); ok {
			out = append(out, c)
		}
	}
	if err := infos.Err(); err != nil {
		return nil, fmt.Errorf("consumers of %s: %w", events.StreamRequests, err)
	}
	slices.SortFunc(out, func(a, b LaneConsumer) int {
		if n := cmp.Compare(slices.Index(events.Lanes, a.Lane), slices.Index(events.Lanes, b.Lane)); n != 0 {
			return n
		}
		if a.Legacy != b.Legacy {
			if a.Legacy {
				return 1
			}
			return -1
		}
		return cmp.Compare(a.Site, b.Site)
	})
	return out, nil
}

// PauseLane pauses the fetch consumers of lane l until until: those of site (with the
// legacy consumer when site is events.LegacySite), or of every site when site is "". A
// zero until resumes them. While a consumer is paused, JetStream delivers none of its
// requests; they wait in the stream, and the fetchers take the other lanes' work. A pause
// outlives restarts of the fetchers and of the server. It returns the consumers as they
// are then, or an error wrapping ErrNoConsumer when none matches.
func (m *Manager) PauseLane(ctx context.Context, l events.Lane, site string, until time.Time) ([]LaneConsumer, error) {
	if !l.Valid() {
		return nil, fmt.Errorf("pause lane %q: %w", l, events.ErrInvalid)
	}
	all, err := m.Lanes(ctx)
	if err != nil {
		return nil, err
	}
	selected := slices.DeleteFunc(all, func(c LaneConsumer) bool { return c.Lane != l || (site != "" && c.Site != site) })
	if len(selected) == 0 {
		if site == "" {
			return nil, fmt.Errorf("lane %s: %w", l, ErrNoConsumer)
		}
		return nil, fmt.Errorf("lane %s of site %s: %w", l, site, ErrNoConsumer)
	}
	// Every selected consumer is asked, whatever one of them answers: a failure part way
	// must not leave the lane half paused without saying which consumers changed.
	var errs []error
	for _, c := range selected {
		if until.IsZero() {
			_, err = m.js.ResumeConsumer(ctx, events.StreamRequests, c.Name)
		} else {
			_, err = m.js.PauseConsumer(ctx, events.StreamRequests, c.Name, until)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("consumer %s: %w", c.Name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("%d of %d consumers unchanged, the others changed: %w", len(errs), len(selected), err)
	}
	out := make([]LaneConsumer, 0, len(selected))
	for _, c := range selected {
		cons, err := m.requests.Consumer(ctx, c.Name)
		if err != nil {
			return nil, fmt.Errorf("consumer %s: %w", c.Name, err)
		}
		c, _ = laneConsumer(cons.CachedInfo())
		out = append(out, c)
	}
	if until.IsZero() {
		m.logger.Info("lane resumed", "lane", l, "site", site, "consumers", len(out))
	} else {
		m.logger.Info("lane paused", "lane", l, "site", site, "until", until, "consumers", len(out))
	}
	return out, nil
}
