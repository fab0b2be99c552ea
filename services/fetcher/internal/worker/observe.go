package worker

import (
	"time"

	"github.com/xswtw/xsw/services/fetcher/internal/metrics"
)

// observe tells Config.Observe, when set, how job j's attempt ended.
func (p *Pool) observe(j *job, outcome string) {
	if p.cfg.Observe != nil {
		p.cfg.Observe(j.Request.Lane, outcome, time.Since(j.Started))
	}
}

func completedOutcome(unchanged bool) string {
	if unchanged {
		return metrics.Unchanged
	}
	return metrics.Completed
}

func failedOutcome(permanent bool) string {
	if permanent {
		return metrics.Failed
	}
	return metrics.Dead
}
