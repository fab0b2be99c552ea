package jobs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/broker"
)

// ErrNoDeadLetter is returned when a book has no dead letter.
var ErrNoDeadLetter = errors.New("no dead letter")

// MaxDeadLetters bounds the dead letters one call reads.
const MaxDeadLetters = 10000

// DeadLetter is a request that gave up, as the dead-letter stream keeps it (the newest
// per book).
type DeadLetter struct {
	Site     string
	BookID   string
	Lane     events.Lane
	Priority int
	JobID    string
	Attempts int
	Error    string
	DiedAt   time.Time
	// Seq is the letter's sequence in the dead-letter stream.
	Seq uint64
	// Unreadable is set when the stored payload does not decode; the other fields then
	// come from its subject only.
	Unreadable bool
}

func deadLetterOf(subject string, seq uint64, data []byte) DeadLetter {
	var dl events.DeadLetter
	if err := events.Decode(data, &dl); err != nil {
		site, id, _ := events.BookOfSubject(subject, events.DeadPrefixTokens)
		return DeadLetter{Site: site, BookID: id, Seq: seq, Unreadable: true, Error: "unreadable dead letter: " + err.Error()}
	}
	return DeadLetter{
		Site: dl.Request.Site, BookID: dl.Request.BookID, Lane: dl.Request.Lane, Priority: dl.Request.Priority, JobID: dl.JobID,
		Attempts: dl.Attempts, Error: dl.Error, DiedAt: dl.DiedAt, Seq: seq,
	}
}

// deadCount counts the dead letters: one message per book.
func (m *Manager) deadCount(ctx context.Context) (int, error) {
	info, err := m.dead.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", events.StreamDead, err)
	}
	return int(info.State.Msgs), nil
}

// DeadLetters returns up to limit dead letters, newest first, and how many there are in
// all. At most MaxDeadLetters are read.
func (m *Manager) DeadLetters(ctx context.Context, limit int) ([]DeadLetter, int, error) {
	total, err := m.deadCount(ctx)
	if err != nil || total == 0 {
		return []DeadLetter{}, total, err
	}
	cons, err := m.js.OrderedConsumer(ctx, events.StreamDead, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{events.SubjectDeadAll},
	})
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", events.StreamDead, err)
	}
	want := min(total, MaxDeadLetters)
	out := make([]DeadLetter, 0, want)
	for len(out) < want {
		batch, err := cons.Fetch(want-len(out), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return nil, 0, fmt.Errorf("read %s: %w", events.StreamDead, err)
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			var seq uint64
			if md, err := msg.Metadata(); err == nil {
				seq = md.Sequence.Stream
			}
			out = append(out, deadLetterOf(msg.Subject(), seq, msg.Data()))
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, context.DeadlineExceeded) {
			return nil, 0, fmt.Errorf("read %s: %w", events.StreamDead, err)
		}
		if n == 0 { // letters were deleted meanwhile
			break
		}
	}
	slices.SortStableFunc(out, func(a, b DeadLetter) int { return b.DiedAt.Compare(a.DiedAt) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, total, nil
}

// Replayed is what became of a replayed dead letter.
type Replayed struct {
	DeadLetter
	// Status is the outcome of the new request.
	Status Status
	// Lane and Priority are those of the new request.
	Lane     events.Lane
	Priority int
}

// Replay requests the book of a dead letter again, in the lane and with the priority it
// had, forced past the recently-synced check, then deletes that letter. It returns
// ErrNoDeadLetter when the book has none, and an error wrapping ErrRefused, keeping the
// letter, when the request is refused.
func (m *Manager) Replay(ctx context.Context, site, bookID string) (Replayed, error) {
	dl, err := m.deadLetter(ctx, site, bookID)
	if err != nil {
		return Replayed{}, err
	}
	r, err := m.replay(ctx, dl)
	if err == nil {
		m.purgeLegacyLetter(ctx, site, bookID)
	}
	return r, err
}

// deadLetter returns the newest dead letter of a book, or an error wrapping
// ErrNoDeadLetter when it has none.
func (m *Manager) deadLetter(ctx context.Context, site, bookID string) (DeadLetter, error) {
	var msg *jetstream.RawStreamMsg
	var err error
	for _, subject := range deadSubjects(site, bookID) {
		msg, err = m.dead.GetLastMsgForSubject(ctx, subject)
		if !errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
	}
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return DeadLetter{}, fmt.Errorf("book %s of site %s: %w", bookID, site, ErrNoDeadLetter)
	}
	if err != nil {
		return DeadLetter{}, fmt.Errorf("read dead letter of book %s of site %s: %w", bookID, site, err)
	}
	return deadLetterOf(msg.Subject, msg.Sequence, msg.Data), nil
}

// purgeLegacyLetter drops the dead letter a book of events.LegacySite may have kept from
// before the upgrade, once the book's letter was dealt with: it is older than any on the
// new subject, and would otherwise be replayed again later.
func (m *Manager) purgeLegacyLetter(ctx context.Context, site, bookID string) {
	if site != events.LegacySite {
		return
	}
	if err := m.dead.Purge(ctx, jetstream.WithPurgeSubject(events.SubjectDeadLegacy(bookID))); err != nil {
		m.logger.Warn("purge legacy dead letter", "book_id", bookID, "err", err)
	}
}

// deadSubjects lists where a book's dead letter may be kept: its subject, and for a
// book of events.LegacySite the subject of a letter written before books were
// site-qualified (the dead-letter prefix and the bare id).
func deadSubjects(site, bookID string) []string {
	out := []string{events.SubjectDead(site, bookID)}
	if site == events.LegacySite {
		out = append(out, events.SubjectDeadLegacy(bookID))
	}
	return out
}

func (m *Manager) replay(ctx context.Context, dl DeadLetter) (Replayed, error) {
	r := Replayed{DeadLetter: dl, Lane: dl.Lane, Priority: dl.Priority}
	if !r.Lane.Valid() { // an unreadable letter: an administrator asked, so manual
		r.Lane, r.Priority = events.LaneManual, events.DefaultManualPriority
	}
	status, err := m.Request(ctx, Request{
		Site: dl.Site, BookID: dl.BookID, Lane: r.Lane, Priority: r.Priority, Force: true, Reason: "replay of dead job " + dl.JobID,
		// One request per letter: a replay of a newer letter minutes after the last is
		// asked for, while two replays of the same letter are one.
		MsgID: "replay:" + events.Key(dl.Site, dl.BookID) + ":" + strconv.FormatUint(dl.Seq, 10),
	})
	if err != nil {
		return Replayed{}, err
	}
	r.Status = status
	if err := m.deleteLetter(ctx, dl); err != nil {
		return Replayed{}, err
	}
	m.logger.Info("dead letter replayed", "site", dl.Site, "book_id", dl.BookID, "job_id", dl.JobID, "lane", r.Lane, "status", status)
	return r, nil
}

// deleteLetter deletes dead letter dl by its sequence: a newer letter of the same book
// stays.
func (m *Manager) deleteLetter(ctx context.Context, dl DeadLetter) error {
	if err := m.dead.DeleteMsg(ctx, dl.Seq); err != nil {
		// A concurrent replay may have deleted it first: gone is what we wanted.
		if _, gerr := m.dead.GetMsg(ctx, dl.Seq); !errors.Is(gerr, jetstream.ErrMsgNotFound) {
			return fmt.Errorf("delete dead letter of book %s of site %s: %w", dl.BookID, dl.Site, err)
		}
	}
	return nil
}

// ReplayAll replays every dead letter (at most MaxDeadLetters per call), oldest death
// first. It returns what became of each letter and how many are left: a letter whose
// request is refused stays, reported with the status Refused.
func (m *Manager) ReplayAll(ctx context.Context) ([]Replayed, int, error) {
	letters, _, err := m.DeadLetters(ctx, 0)
	if err != nil {
		return nil, 0, err
	}
	slices.Reverse(letters)
	out := make([]Replayed, 0, len(letters))
	for _, dl := range letters {
		r, err := m.replay(ctx, dl)
		if errors.Is(err, ErrRefused) {
			m.logger.Warn("dead letter not replayed", "site", dl.Site, "book_id", dl.BookID, "err", err)
			out = append(out, Replayed{DeadLetter: dl, Status: Refused, Lane: dl.Lane, Priority: dl.Priority})
			continue
		}
		if err != nil {
			return out, 0, err
		}
		out = append(out, r)
	}
	left, err := m.deadCount(ctx)
	return out, left, err
}

// PurgeLane drops every request waiting in lane l and reports how many were waiting
// just before. Jobs already in a fetcher's hands run on.
func (m *Manager) PurgeLane(ctx context.Context, l events.Lane) (int, error) {
	if !l.Valid() {
		return 0, fmt.Errorf("purge lane %q: %w", l, events.ErrInvalid)
	}
	filter := events.RequestSubjectLane(l)
	info, err := m.requests.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return 0, fmt.Errorf("count requests in lane %s: %w", l, err)
	}
	n := 0
	for _, msgs := range info.State.Subjects {
		n += int(msgs)
	}
	if err := m.requests.Purge(ctx, jetstream.WithPurgeSubject(filter)); err != nil {
		return 0, fmt.Errorf("purge %s: %w", filter, err)
	}
	m.logger.Info("lane purged", "lane", l, "requests", n)
	return n, nil
}

// PurgeTexts asks the indexer to forget the stored chapter texts of a book, those fetched
// up to at (events.BookPurgeRequested on the indexer's stream). The indexer announces the
// book when done.
func (m *Manager) PurgeTexts(ctx context.Context, site, bookID, reason string, at time.Time) error {
	cmd := events.NewBookPurgeRequested(site, bookID, reason, at)
	if _, err := broker.Publish(ctx, m.js, cmd.Subject(), cmd.MsgID(), &cmd); err != nil {
		return fmt.Errorf("request purge of book %s of site %s: %w", bookID, site, err)
	}
	m.logger.Info("chapter texts purge requested", "site", site, "book_id", bookID, "reason", reason)
	return nil
}

// ShrinkAccepted is what became of an accepted shrink.
type ShrinkAccepted struct {
	Site   string
	BookID string
	// Status is the outcome of the forced request that followed the acceptance; Lane
	// and Priority are its.
	Status   Status
	Lane     events.Lane
	Priority int
	// Letter is the book's dead letter, deleted; nil when the book had none.
	Letter *DeadLetter
}

// AcceptShrink tells the indexer that the site of a book really removed chapters
// (events.BookShrinkAccepted: the first sync of the book completed after it applies
// whatever the site lists, where the indexer would refuse it as a shrink), then requests
// the book in the manual lane, forced, and deletes its dead letter, if any. The
// acceptance is published before the request, so that the sync it asks for is judged by
// it. A book its check refuses is an error wrapping ErrRefused, before anything is
// published.
func (m *Manager) AcceptShrink(ctx context.Context, site, bookID, reason string, at time.Time) (ShrinkAccepted, error) {
	if m.check != nil {
		if err := m.check(ctx, site, bookID); err != nil {
			return ShrinkAccepted{}, fmt.Errorf("accept shrink of book %s of site %s: %w: %w", bookID, site, ErrRefused, err)
		}
	}
	// The letter is read first: one that dies of the request made below is news, and stays.
	var letter *DeadLetter
	dl, err := m.deadLetter(ctx, site, bookID)
	switch {
	case err == nil:
		letter = &dl
	case !errors.Is(err, ErrNoDeadLetter):
		return ShrinkAccepted{}, err
	}
	cmd := events.NewBookShrinkAccepted(site, bookID, reason, at)
	if _, err := broker.Publish(ctx, m.js, cmd.Subject(), cmd.MsgID(), &cmd); err != nil {
		return ShrinkAccepted{}, fmt.Errorf("accept shrink of book %s of site %s: %w", bookID, site, err)
	}
	r := ShrinkAccepted{Site: site, BookID: bookID, Lane: events.LaneManual, Priority: events.DefaultManualPriority, Letter: letter}
	r.Status, err = m.Request(ctx, Request{
		Site: site, BookID: bookID, Lane: r.Lane, Priority: r.Priority, Force: true, Reason: "shrink accepted (" + reason + ")",
		// Its own request, even right after a forced one (a replay) that the indexer
		// refused: the acceptance is judged by the sync this asks for.
		MsgID: "req:" + cmd.MsgID(),
		// Queued even behind a sync under way, which may complete before or after the
		// acceptance: this one is sure to follow it.
		Behind: true,
	})
	if err != nil {
		return ShrinkAccepted{}, err
	}
	if letter != nil {
		if err := m.deleteLetter(ctx, *letter); err != nil {
			return ShrinkAccepted{}, err
		}
		m.purgeLegacyLetter(ctx, site, bookID)
	}
	m.logger.Info("shrink accepted", "site", site, "book_id", bookID, "reason", reason, "status", r.Status, "dead_letter", letter != nil)
	return r, nil
}
