package reads

import (
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/natstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestReadsAreReportedInBatches(t *testing.T) {
	ns := natstest.Start(t)
	c := New(ns.JS, "gw-1", time.Hour, slog.New(slog.DiscardHandler))
	c.Flush(t.Context())                                                     // nothing to report: nothing published
	xsw, other := events.Key("xsw", "1721851"), events.Key("toy", "1721851") // one id, two books
	for i := 0; i < 3; i++ {
		c.Add(xsw)
	}
	c.Add(other)
	c.Flush(t.Context())
	c.Add(other)
	c.Flush(t.Context())

	cons, err := ns.JS.OrderedConsumer(t.Context(), events.StreamEvents, jetstream.OrderedConsumerConfig{FilterSubjects: []string{events.SubjectReads}})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.FetchNoWait(10)
	if err != nil {
		t.Fatal(err)
	}
	var got []events.BooksRead
	for m := range batch.Messages() {
		var r events.BooksRead
		if err := events.Decode(m.Data(), &r); err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	if len(got) != 2 {
		t.Fatalf("%d reports, want 2", len(got))
	}
	if got[0].Reads["xsw.1721851"] != 3 || got[0].Reads["toy.1721851"] != 1 || got[1].Reads["toy.1721851"] != 1 || len(got[1].Reads) != 1 {
		t.Errorf("reports %+v", got)
	}
	if got[0].BatchID == got[1].BatchID {
		t.Errorf("two reports share batch id %s", got[0].BatchID)
	}
}
