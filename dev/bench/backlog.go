package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/xswtw/xsw/dev/proctest"
	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/broker"
	"github.com/xswtw/xsw/platform/config"
	"github.com/xswtw/xsw/platform/logging"
	"github.com/xswtw/xsw/services/indexer"
)

// Sizes of the indexer's backlog: books of 3,000 chapters in table-of-contents pages of
// 20, as the site shows them.
const (
	backlogChapters = 3000
	backlogPerPage  = 20
)

// backlog builds what a fetcher publishes for one synced book: its metadata, every
// table-of-contents page, and the job's completion.
func backlog(bookID string, at time.Time) []published {
	jobID := events.JobID(events.LegacySite, bookID, 1)
	pages := (backlogChapters + backlogPerPage - 1) / backlogPerPage
	out := make([]published, 0, pages+2)
	meta := events.BookFetched{Header: events.Header{Version: events.Version}, JobID: jobID, Site: events.LegacySite, BookID: bookID, FetchedAt: at,
		Book: events.BookMeta{Name: "書" + bookID, Author: "作者", Genre: "玄幻小說", Status: "連載中", UpdateText: "2026/1/20 22:05:09",
			Description: "三千年前，天下第一人。", LastChapterTitle: "第3000章 終局", LastChapterID: bookID + "3000",
			LastChapterURL: "http://127.0.0.1/" + bookID + "/" + bookID + "3000.html", SourceURL: "http://127.0.0.1/" + bookID + "/"}}
	out = append(out, published{events.SubjectFetchedBook(events.LegacySite, bookID), meta.MsgID(), &meta})
	for page := 1; page <= pages; page++ {
		ev := events.TOCPageFetched{Header: events.Header{Version: events.Version}, JobID: jobID, Site: events.LegacySite, BookID: bookID,
			Page: page, TotalPages: pages, FetchedAt: at}
		for n := (page-1)*backlogPerPage + 1; n <= min(page*backlogPerPage, backlogChapters); n++ {
			cid := bookID + fmt.Sprintf("%04d", n)
			tn := n
			ev.Chapters = append(ev.Chapters, events.ChapterRef{Number: n, ChapterID: cid,
				Title: fmt.Sprintf("第%d章 天下第一人的歸來", n), URL: "http://127.0.0.1/" + bookID + "/" + cid + ".html", TitleNumber: &tn})
		}
		out = append(out, published{events.SubjectFetchedTOC(events.LegacySite, bookID), ev.MsgID(), &ev})
	}
	done := events.JobEvent{Header: events.Header{Version: events.Version}, Kind: events.JobCompleted, JobID: jobID, Site: events.LegacySite, BookID: bookID,
		Lane: events.LanePrefetch, Attempt: 1, Fetcher: "bench", EnqueuedAt: at, StartedAt: at, At: at,
		Chapters: backlogChapters, TOCPages: pages, Requests: pages + 1}
	out = append(out, published{done.Subject(), done.MsgID(), &done})
	return out
}

type published struct {
	subject, msgID string
	payload        events.Payload
}

// publishAll publishes msgs in order without waiting for each acknowledgement (but at
// most asyncWindow at a time), then checks every one.
func publishAll(ctx context.Context, js jetstream.JetStream, msgs []published) error {
	const asyncWindow = 512
	for len(msgs) > 0 {
		n := min(len(msgs), asyncWindow)
		futures := make([]jetstream.PubAckFuture, 0, n)
		for _, m := range msgs[:n] {
			data, err := events.Encode(m.payload)
			if err != nil {
				return err
			}
			f, err := js.PublishAsync(m.subject, data, jetstream.WithMsgID(m.msgID))
			if err != nil {
				return err
			}
			futures = append(futures, f)
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Minute):
			return errors.New("published messages not acknowledged within a minute")
		}
		for _, f := range futures {
			select {
			case err := <-f.Err():
				return err
			default:
			}
		}
		msgs = msgs[n:]
	}
	return nil
}

// runIndexerBacklog measures the indexer alone: a backlog of fetched events waits in
// JetStream while the indexer's consumer is paused, then the consumer is resumed and
// the harness times the indexer writing it all.
func runIndexerBacklog(ctx context.Context, e *env, r *Results) error {
	b, err := e.startBus("indexer")
	if err != nil {
		return err
	}
	defer b.close()
	js := b.js
	if err := broker.Provision(ctx, js, broker.Topology{RequestMaxAge: 24 * time.Hour, SyncedTTL: events.SyncedTTL(5 * time.Minute)}); err != nil {
		return err
	}
	dsn, err := e.schema(ctx, "indexer")
	if err != nil {
		return err
	}
	cfg, err := indexer.ConfigFromEnv(config.Map(map[string]string{
		"DATABASE_URL": dsn, "NATS_URL": b.url(), "INDEXER_HEALTH_ADDR": "127.0.0.1:0",
	}))
	if err != nil {
		return err
	}
	tr, err := newTracker(b.nc)
	if err != nil {
		return err
	}
	defer tr.close()
	logFile, err := os.Create(filepath.Join(e.opts.outDir, "indexer-backlog.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	logger, _ := logging.New(logFile, "info", "text")
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- indexer.Run(runCtx, cfg, logger) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			e.log.Error("indexer did not stop within 30s")
		}
	}()
	durable := events.IndexerConsumer().Durable
	err = proctest.Poll(ctx, 30*time.Second, "the indexer's consumer", func() (bool, error) {
		select {
		case err := <-done:
			return false, fmt.Errorf("indexer stopped: %v", err)
		default:
		}
		_, err := js.Consumer(ctx, events.StreamEvents, durable)
		return err == nil, nil
	})
	if err != nil {
		return err
	}

	next := 2_000_000
	books := func(n int) []string {
		ids := make([]string, n)
		for i := range ids {
			ids[i] = strconv.Itoa(next)
			next++
		}
		return ids
	}
	load := func(ids []string) (int, error) {
		var msgs []published
		now := time.Now().UTC()
		for _, id := range ids {
			msgs = append(msgs, backlog(id, now)...)
		}
		return len(msgs), publishAll(ctx, js, msgs)
	}
	// Warm up, consumer running.
	warm := books(2)
	if _, err := load(warm); err != nil {
		return err
	}
	if _, err := tr.wait(ctx, warm, time.Minute); err != nil {
		return fmt.Errorf("indexer warm-up: %w", err)
	}

	fig := &IndexerBacklog{Books: e.opts.indexerBooks, ChaptersPerBook: backlogChapters, RefsPerPage: backlogPerPage, BatchSize: cfg.BatchSize}
	// The profiles cover the indexing only, not the publishing of the backlog.
	prof, err := startProfiles(e.opts.outDir, "indexer")
	if err == nil {
		err = prof.pause()
	}
	if err != nil {
		return err
	}
	var refs, evs, secs, cores, busy, first []float64
	for run := 1; run <= e.opts.runs; run++ {
		if _, err := js.PauseConsumer(ctx, events.StreamEvents, durable, time.Now().Add(time.Hour)); err != nil {
			_, _ = prof.stop()
			return fmt.Errorf("pause the indexer's consumer: %w", err)
		}
		ids := books(e.opts.indexerBooks)
		n, err := load(ids)
		if err != nil {
			_, _ = prof.stop()
			return err
		}
		fig.Events = n
		e.settle(ctx, "indexer backlog")
		if err := prof.resume(); err != nil {
			return err
		}
		meter := newCPUMeter()
		began := time.Now()
		if _, err := js.ResumeConsumer(ctx, events.StreamEvents, durable); err != nil {
			_, _ = prof.stop()
			return fmt.Errorf("resume the indexer's consumer: %w", err)
		}
		end, err := tr.wait(ctx, ids, syncTimeout(len(ids), backlogChapters))
		if err != nil {
			_, _ = prof.stop()
			return fmt.Errorf("indexer run %d: %w", run, err)
		}
		c, b := meter.read()
		if err := prof.pause(); err != nil {
			return err
		}
		s := end.Sub(began).Seconds()
		total := float64(len(ids) * backlogChapters)
		refs, evs, secs = append(refs, total/s), append(evs, float64(n)/s), append(secs, s)
		cores, busy = append(cores, c), append(busy, b)
		first = append(first, ms(tr.firstAfter(ids, began).Sub(began)))
		e.log.Info("indexer backlog", "run", run, "events", n, "seconds", round(s, 3), "refs_per_s", round(total/s, 0),
			"process_cores", round(c, 2), "machine_busy", round(b, 2))
	}
	summaries, err := prof.stop()
	if err != nil {
		return err
	}
	for i := range summaries {
		summaries[i].Note = "The indexer alone writing the backlog (publishing it is left out)."
	}
	r.Profiles = append(r.Profiles, summaries...)
	fig.RefsPerSecond, fig.EventsPerSecond, fig.Seconds = newSample(refs), newSample(evs), newSample(secs)
	fig.ProcessCores, fig.MachineBusy, fig.FirstCommitMS = newSample(cores), newSample(busy), newSample(first)
	r.Indexer = fig
	return nil
}
