package events

import (
	"strings"
	"testing"
)

func TestNotifierConsumer(t *testing.T) {
	c := NotifierConsumer()
	if c.Stream != StreamEvents || !c.DeliverNew || len(c.FilterSubjects) != 1 {
		t.Fatalf("notifier consumer %+v: want one filter on %s, delivering new messages only", c, StreamEvents)
	}
	// The filter catches the failed events of every book, and nothing else.
	failed := SubjectJob(JobFailed, "xsw", "1234567")
	if prefix := strings.TrimSuffix(c.FilterSubjects[0], ">"); !strings.HasPrefix(failed, prefix) ||
		strings.HasPrefix(SubjectJob(JobCompleted, "xsw", "1234567"), prefix) {
		t.Errorf("filter %q vs %s", c.FilterSubjects[0], failed)
	}
}
