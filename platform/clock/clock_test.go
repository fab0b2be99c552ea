package clock

import (
	"context"
	"testing"
	"time"
)

func TestSleep(t *testing.T) {
	began := time.Now()
	if !Sleep(t.Context(), 20*time.Millisecond) || time.Since(began) < 20*time.Millisecond {
		t.Errorf("Sleep(20ms) returned after %v without reporting the wait done", time.Since(began))
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	began = time.Now()
	if Sleep(ctx, time.Minute) || time.Since(began) > 10*time.Second {
		t.Errorf("Sleep(1m) with a context ending in 10ms: reported done, or took %v", time.Since(began))
	}
	if Sleep(ctx, 0) {
		t.Error("Sleep(0) on an ended context reported done")
	}
	if !Sleep(t.Context(), -time.Second) {
		t.Error("Sleep(-1s) on a live context reported it ended")
	}
}
