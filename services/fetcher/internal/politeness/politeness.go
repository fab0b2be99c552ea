// Package politeness keeps the whole cluster under one request rate to each source site.
//
// Every fetcher process and worker books its requests to a site in that site's one
// JetStream key-value entry, advanced with compare-and-set: the entry holds the time of the next free slot,
// and a request may only go out in a slot it booked. So however many fetchers run, the
// site sees at most one request per interval.
//
// Interactive requests (a reader is waiting) book the next free slot directly; background
// requests only take a slot that is free now, so a reader waits at most about one interval
// behind background work. The same entry carries the slow-down that throttling answers
// (429, 503, Retry-After) impose on everyone, and the circuit that repeated failures open.
package politeness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/xswtw/xsw/platform/clock"
)

// Priority says whether a reader is waiting for a request.
type Priority int

// Priorities.
const (
	Background Priority = iota
	Interactive
	// BackgroundOrRefused is background work that would rather step aside than wait
	// for a refusing site: while the next probe is not due it gets the *RefusedError at
	// once; when it is due, it may be the probe.
	BackgroundOrRefused
	// Demoted is a reader's work that goes at background pace: the pages of a reader's
	// job beyond its interactive share (events.InteractivePagesPerBook), and its pages
	// that the site refused, or found busy or its circuit open, at interactive priority.
	// Like Background it waits out refusals (it may be the probe), open circuits and
	// Retry-After, and only takes a slot that is free now; unlike Background it is not
	// background work for BackgroundShare: it neither counts as such nor takes the slot
	// kept for it.
	Demoted
)

// String names the priority, for logs and tests.
func (p Priority) String() string {
	switch p {
	case Background:
		return "background"
	case Interactive:
		return "interactive"
	case BackgroundOrRefused:
		return "background-or-refused"
	case Demoted:
		return "demoted"
	}
	return fmt.Sprintf("Priority(%d)", int(p))
}

// ErrCircuitOpen is returned to interactive requests while the circuit is open; background
// requests wait for it to close instead.
var ErrCircuitOpen = errors.New("source circuit open")

// ErrRefused marks a site that refuses us (a 403, a challenge page): interactive requests
// hear it at once (as a *RefusedError), background requests wait while one probe a
// cooldown asks whether the site lets us in again.
var ErrRefused = errors.New("the site refuses us")

// ErrBusy is returned to an interactive request whose slot would lie further ahead than
// Config.InteractiveMaxWait (as a *BusyError): the site's budget is taken for that long.
var ErrBusy = errors.New("the site's budget is taken")

// BusyError is ErrBusy with how long until a slot within the bound is likely.
type BusyError struct {
	RetryAfter time.Duration
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("%v; try again in %v", ErrBusy, e.RetryAfter.Round(time.Second))
}

// Is makes errors.Is(err, ErrBusy) match.
func (e *BusyError) Is(target error) bool { return target == ErrBusy }

// BackgroundShare: of any BackgroundShare consecutive slots, interactive requests book
// at most BackgroundShare-1 while background work waits, so that background work keeps
// at least a tenth of the budget under any flood of readers.
const BackgroundShare = 10

// refusedPoll is how often a background request waiting for a refusing site reads the
// shared entry again, so that the work resumes soon after any fetcher's probe succeeds.
const refusedPoll = time.Second

// RefusedError is ErrRefused with the site's answer and the time of the next probe.
type RefusedError struct {
	Reason string    // what the site answered: "refused, HTTP 403 (Cloudflare)"
	Probe  time.Time // when the next probe may go
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("%s; the site is probed again after %s", e.Reason, e.Probe.UTC().Format(time.RFC3339))
}

// Is makes errors.Is(err, ErrRefused) match.
func (e *RefusedError) Is(target error) bool { return target == ErrRefused }

// Config tunes a Limiter.
type Config struct {
	// Interval between two requests to the source, cluster-wide. Zero switches politeness
	// off entirely (benchmarks only): no booking, no slow-down, no circuit.
	Interval time.Duration
	// MaxFactor caps the slow-down multiplier of the interval after throttling (default 16).
	MaxFactor float64
	// FailureThreshold is the number of consecutive failures that opens the circuit
	// (default 5).
	FailureThreshold int
	// Cooldown is how long the circuit first stays open; it doubles on each reopening, up
	// to MaxCooldown (defaults 30s and 10m).
	Cooldown, MaxCooldown time.Duration
	// InteractiveMaxWait bounds how far ahead an interactive request may book its slot
	// (INTERACTIVE_MAX_WAIT); beyond it the request gets a *BusyError. Zero: no bound.
	InteractiveMaxWait time.Duration
	// OnRefusal, when set, is called when this limiter sees the site start (refused true)
	// or stop refusing us, in the shared entry as it read or wrote it: the site's state
	// can be published at once rather than at the next heartbeat. It must not block.
	OnRefusal func(refused bool)
}

func (c *Config) defaults() {
	if c.MaxFactor < 1 {
		c.MaxFactor = 16
	}
	if c.FailureThreshold < 1 {
		c.FailureThreshold = 5
	}
	if c.Cooldown <= 0 {
		c.Cooldown = 30 * time.Second
	}
	if c.MaxCooldown < c.Cooldown {
		c.MaxCooldown = 10 * time.Minute
	}
}

// state is the shared entry.
type state struct {
	Next      int64   `json:"next"`       // unix nanoseconds of the next free slot
	Factor    float64 `json:"factor"`     // interval multiplier, >= 1
	Failures  int     `json:"failures"`   // consecutive failures
	OpenUntil int64   `json:"open_until"` // unix nanoseconds; circuit open before it
	Opens     int     `json:"opens"`      // consecutive openings, for the cooldown
	// Refused is what the site answered when it refused us; empty while it does not.
	Refused string `json:"refused,omitempty"`
	// ProbeAt is when a refusing site may next be probed (unix nanoseconds); Probes
	// counts the probes refused, for the cooldown.
	ProbeAt int64 `json:"probe_at,omitempty"`
	Probes  int   `json:"probes,omitempty"`
	// Probing is set while a probe is out: its refusal counts as a refused probe (the
	// other requests refused meanwhile, booked before the refusal, do not).
	Probing bool `json:"probing,omitempty"`
	// LastBg is background work's last slot (unix nanoseconds); Reserved is a slot kept
	// for background work; BgWaits is until when background work is known to wait for a
	// slot (see BackgroundShare).
	LastBg   int64 `json:"last_bg,omitempty"`
	Reserved int64 `json:"reserved,omitempty"`
	BgWaits  int64 `json:"bg_waits,omitempty"`
}

// Circuit states, as reported by Snapshot.
const (
	CircuitClosed   = "closed"
	CircuitOpen     = "open"
	CircuitHalfOpen = "half-open"
)

// Snapshot is what the limiter last saw of the shared entry.
type Snapshot struct {
	Interval time.Duration // in force now, after any slow-down
	Circuit  string
	Until    time.Time // when an open circuit lets a probe through
	// Refused is what a refusing site answered (empty while it does not refuse);
	// Probe is when it is next probed.
	Refused string
	Probe   time.Time
}

// Limiter books source requests in a key-value bucket.
type Limiter struct {
	kv  jetstream.KeyValue
	key string
	cfg Config

	now   func() time.Time
	sleep func(context.Context, time.Duration) error

	// turn lets one background worker of this process contend for the shared entry at a
	// time; the others queue here instead of multiplying compare-and-set conflicts.
	// Demoted work queues apart (demotedTurn): it must not hold the turn while background
	// work waits for the slot kept for it.
	turn, demotedTurn chan struct{}

	mu   sync.Mutex
	last state
}

// New returns a limiter booking in kv under key (one key per source site).
func New(kv jetstream.KeyValue, key string, cfg Config) *Limiter {
	cfg.defaults()
	return &Limiter{
		kv: kv, key: key, cfg: cfg, now: time.Now, sleep: sleepCtx,
		turn: make(chan struct{}, 1), demotedTurn: make(chan struct{}, 1), last: state{Factor: 1},
	}
}

// Disabled reports whether politeness is switched off.
func (l *Limiter) Disabled() bool { return l.cfg.Interval <= 0 }

// Wait books a slot for one request and sleeps until it. It returns ErrCircuitOpen to an
// interactive request while the circuit is open, a *RefusedError while the site refuses
// us, or the context's error. A background request waits out both; while the site
// refuses us, one request per cooldown, cluster-wide, is let through as a probe.
func (l *Limiter) Wait(ctx context.Context, p Priority) error {
	_, err := l.book(ctx, p)
	return err
}

// book is Wait, also returning the booked slot.
func (l *Limiter) book(ctx context.Context, p Priority) (time.Time, error) {
	if l.Disabled() {
		return l.now(), ctx.Err()
	}
	if p != Interactive {
		turn := l.turn
		if p == Demoted {
			turn = l.demotedTurn
		}
		select {
		case turn <- struct{}{}:
			defer func() { <-turn }()
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		}
	}
	for {
		st, rev, err := l.load(ctx)
		if err != nil {
			return time.Time{}, err
		}
		now := l.now().UnixNano()
		if st.Refused != "" {
			if p == Interactive || p == BackgroundOrRefused && st.ProbeAt > now {
				return time.Time{}, &RefusedError{Reason: st.Refused, Probe: time.Unix(0, st.ProbeAt)}
			}
			if st.ProbeAt > now {
				// Look again at least every refusedPoll: a probe elsewhere may end the
				// refusal long before the next one is due.
				if err := l.sleep(ctx, min(time.Duration(st.ProbeAt-now), refusedPoll)); err != nil {
					return time.Time{}, err
				}
				continue
			}
			if hold := max(st.Next, st.OpenUntil); hold > now {
				// The probe is due, but the site asked us to wait longer (Retry-After),
				// or its circuit is open: the probe waits too.
				if err := l.sleep(ctx, min(time.Duration(hold-now), refusedPoll)); err != nil {
					return time.Time{}, err
				}
				continue
			}
			// This request is the probe: nobody else's goes out before the next one is due.
			l.claimProbe(&st, now)
			ok, err := l.store(ctx, st, rev)
			if err != nil {
				return time.Time{}, err
			}
			if ok {
				return time.Unix(0, now), nil
			}
			continue
		}
		if st.OpenUntil > now {
			if p == Interactive {
				return time.Time{}, fmt.Errorf("%w until %s", ErrCircuitOpen, time.Unix(0, st.OpenUntil).UTC().Format(time.RFC3339))
			}
			if err := l.sleep(ctx, time.Duration(st.OpenUntil-now)); err != nil {
				return time.Time{}, err
			}
			continue
		}
		step := int64(float64(l.cfg.Interval) * st.Factor)
		var slot int64
		if p == Demoted {
			// Only a slot free now, and never the one kept for background work: that one
			// lies before st.Next, where interactive requests put it.
			if slot = max(now, st.Next); slot > now {
				if err := l.sleep(ctx, time.Duration(min(slot-now, backgroundLook*step))); err != nil {
					return time.Time{}, err
				}
				continue
			}
			st.Next = slot + step
		} else if p == Background {
			var wait int64
			slot, wait = l.backgroundSlot(&st, now, step)
			if wait > 0 {
				if until := now + wait + step; st.BgWaits < until-step {
					// Say that background work waits (a write at most once an interval),
					// so that interactive requests leave it its share meanwhile.
					st.BgWaits = until
					_, _ = l.store(ctx, st, rev)
				}
				if err := l.sleep(ctx, time.Duration(wait)); err != nil {
					return time.Time{}, err
				}
				continue
			}
		} else {
			slot = max(now, st.Next)
			if st.BgWaits >= now && st.Reserved < now && slot-st.LastBg >= (BackgroundShare-1)*step {
				// Background work waits and readers have had the nine slots since its
				// last: this one is background work's.
				st.Reserved, st.LastBg = slot, slot
				slot += step
			}
			if limit := l.cfg.InteractiveMaxWait; limit > 0 && time.Duration(slot-now) > limit {
				return time.Time{}, &BusyError{RetryAfter: time.Duration(slot-now) - limit}
			}
			st.Next = slot + step
		}
		ok, err := l.store(ctx, st, rev)
		if err != nil {
			return time.Time{}, err
		}
		if !ok {
			// Somebody else booked first: look again after a breath, so that contending
			// workers do not spin in lockstep.
			if err := l.sleep(ctx, time.Duration(rand.Int64N(int64(2*time.Millisecond)))); err != nil {
				return time.Time{}, err
			}
			continue
		}
		return time.Unix(0, slot), l.sleep(ctx, time.Duration(slot-l.now().UnixNano()))
	}
}

// backgroundSlot finds a background request's slot: a slot kept for background work,
// when one is due now, else the next free slot if it is free now. It updates st for the
// booking; wait, when positive, is how long to sleep before looking again.
func (l *Limiter) backgroundSlot(st *state, now, step int64) (slot, wait int64) {
	if r := st.Reserved; r != 0 {
		if r >= now {
			// Kept for background work: book it, and go out exactly at it (the slots
			// on either side of it are readers').
			// Background work is counted as waiting until it is back for more.
			st.Reserved, st.BgWaits = 0, max(st.BgWaits, r+step)
			return r, 0
		}
		st.Reserved = 0 // nobody took it in time: gone
	}
	slot = max(now, st.Next)
	if slot > now {
		// Readers may keep a slot for background work meanwhile, often the very next
		// one: look again within a few intervals, and a little before the next slot, so
		// that a slot kept there is booked ahead rather than missed by waking late.
		early := max(2*int64(time.Millisecond), min(step/10, 20*int64(time.Millisecond)))
		wait = min(slot-now, backgroundLook*step)
		if wait > early {
			wait -= early
		}
		return 0, wait
	}
	st.LastBg = slot
	st.Next = slot + step
	return slot, 0
}

// claimProbe books the probe of a refusing site in st at now: nobody else's request
// goes out before the next one is due.
func (l *Limiter) claimProbe(st *state, now int64) {
	st.ProbeAt = now + int64(l.cooldown(st.Probes))
	st.Next = now + int64(float64(l.cfg.Interval)*st.Factor)
	st.Probing = true
}

// TryProbe books the probe of a refusing site if it is due now, without waiting: it
// reports false, booking nothing, while the site does not refuse us, its next probe is
// not due, or the site's Retry-After or an open circuit holds the probe back. Probes
// booked here and those of background work share one schedule, so that at most one
// request per cooldown asks a refusing site, cluster-wide. The caller that got true
// makes the request and reports its outcome (Refuse or Report).
func (l *Limiter) TryProbe(ctx context.Context) (bool, error) {
	if l.Disabled() {
		return false, nil
	}
	for {
		st, rev, err := l.load(ctx)
		if err != nil {
			return false, err
		}
		now := l.now().UnixNano()
		if st.Refused == "" || st.ProbeAt > now || max(st.Next, st.OpenUntil) > now {
			return false, nil
		}
		l.claimProbe(&st, now)
		ok, err := l.store(ctx, st, rev)
		if err != nil || ok {
			return ok, err
		}
	}
}

// backgroundLook is how many intervals a waiting background request sleeps at most
// before it reads the shared entry again, for a slot readers kept for it.
const backgroundLook = 3

// Outcome is what became of one source request.
type Outcome int

// Outcomes.
const (
	// Success: the site answered (2xx, 304, or a 404 for a missing page).
	Success Outcome = iota
	// Throttled: the site asked us to slow down (429, 503).
	Throttled
	// Failed: the site failed (other 5xx, connection refused or reset, timeout).
	Failed
)

// Report records the outcome of a request. retryAfter is the site's Retry-After, if any.
// Throttling slows every fetcher down; consecutive failures open the circuit; a success
// closes it and lets the slow-down decay.
func (l *Limiter) Report(ctx context.Context, o Outcome, retryAfter time.Duration) error {
	return l.update(ctx, func(st *state, now int64) {
		switch o {
		case Success:
			st.Failures, st.Opens = 0, 0
			st.Refused, st.ProbeAt, st.Probes, st.Probing = "", 0, 0, false
			if st.Factor > 1 {
				st.Factor = math.Max(1, st.Factor*0.75)
			}
		case Throttled, Failed:
			st.Failures++
			if o == Throttled {
				st.Factor = math.Min(l.cfg.MaxFactor, st.Factor*2)
				pause := max(retryAfter, time.Duration(float64(l.cfg.Interval)*st.Factor))
				st.Next = max(st.Next, now+int64(pause))
			}
			if st.Failures >= l.cfg.FailureThreshold {
				st.OpenUntil = now + int64(l.cooldown(st.Opens))
				st.Opens++
				// One more failure after the cooldown (the probe) reopens at once.
				st.Failures = l.cfg.FailureThreshold - 1
			}
		}
	})
}

// Refuse records that the site refused a request (a 403, a challenge page) with reason,
// what it answered. Until a request succeeds again, interactive requests are told so at
// once and background requests wait, while one probe per cooldown (doubling with each
// refused probe, up to MaxCooldown) asks again.
func (l *Limiter) Refuse(ctx context.Context, reason string) error {
	return l.update(ctx, func(st *state, now int64) {
		if st.Refused != "" && st.Probing {
			st.Probes++
		}
		st.Refused, st.Probing = reason, false
		st.ProbeAt = max(st.ProbeAt, now+int64(l.cooldown(st.Probes)))
	})
}

// update applies change to the shared entry with compare-and-set, reading it again after
// another writer's change; nothing is written when change leaves it as it was.
func (l *Limiter) update(ctx context.Context, change func(st *state, now int64)) error {
	if l.Disabled() {
		return nil
	}
	for {
		st, rev, err := l.load(ctx)
		if err != nil {
			return err
		}
		before := st
		change(&st, l.now().UnixNano())
		if st == before {
			return nil
		}
		if ok, err := l.store(ctx, st, rev); err != nil || ok {
			return err
		}
	}
}

// cooldown is how long the circuit stays open after its n-th consecutive opening, or a
// refusing site waits after its n-th refused probe: Cooldown, doubling, up to MaxCooldown.
func (l *Limiter) cooldown(n int) time.Duration {
	return min(l.cfg.Cooldown<<min(n, 16), l.cfg.MaxCooldown)
}

// Refused returns what a refusing site answered, as last seen here; empty while the site
// does not refuse us.
func (l *Limiter) Refused() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last.Refused
}

// Snapshot reports what the limiter last read or wrote.
func (l *Limiter) Snapshot() Snapshot {
	l.mu.Lock()
	st := l.last
	l.mu.Unlock()
	s := Snapshot{Interval: time.Duration(float64(l.cfg.Interval) * max(st.Factor, 1)), Circuit: CircuitClosed, Refused: st.Refused}
	if st.Refused != "" {
		s.Probe = time.Unix(0, st.ProbeAt)
	}
	now := l.now().UnixNano()
	switch {
	case st.OpenUntil > now:
		s.Circuit, s.Until = CircuitOpen, time.Unix(0, st.OpenUntil)
	case st.Opens > 0:
		s.Circuit = CircuitHalfOpen
	}
	return s
}

// Refresh reads the shared entry so that Snapshot is current.
func (l *Limiter) Refresh(ctx context.Context) error {
	if l.Disabled() {
		return nil
	}
	_, _, err := l.load(ctx)
	return err
}

func (l *Limiter) load(ctx context.Context) (state, uint64, error) {
	st := state{Factor: 1}
	e, err := l.kv.Get(ctx, l.key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return st, 0, nil
	case err != nil:
		return st, 0, fmt.Errorf("politeness: read %s: %w", l.key, err)
	}
	if err := json.Unmarshal(e.Value(), &st); err != nil || st.Factor < 1 {
		// A damaged entry is replaced by a fresh one rather than stopping every fetcher.
		st = state{Factor: 1}
	}
	l.remember(st)
	return st, e.Revision(), nil
}

// store writes st if the entry is still at rev; ok is false when another writer won.
func (l *Limiter) store(ctx context.Context, st state, rev uint64) (ok bool, err error) {
	b, _ := json.Marshal(st)
	if rev == 0 {
		_, err = l.kv.Create(ctx, l.key, b)
	} else {
		_, err = l.kv.Update(ctx, l.key, b, rev)
	}
	switch {
	case err == nil:
		l.remember(st)
		return true, nil
	case errors.Is(err, jetstream.ErrKeyExists), errors.Is(err, jetstream.ErrKeyRevisionMismatch):
		return false, nil
	}
	return false, fmt.Errorf("politeness: book %s: %w", l.key, err)
}

func (l *Limiter) remember(st state) {
	l.mu.Lock()
	changed := (l.last.Refused != "") != (st.Refused != "")
	l.last = st
	l.mu.Unlock()
	if changed && l.cfg.OnRefusal != nil {
		l.cfg.OnRefusal(st.Refused != "")
	}
}

// sleepCtx is clock.Sleep as an error: the context's when it ended first.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if !clock.Sleep(ctx, d) {
		return ctx.Err()
	}
	return nil
}
