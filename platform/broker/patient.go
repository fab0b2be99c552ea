package broker

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/xswtw/xsw/events"
)

// PublishPatiently is Publish for a message with an id, retried while the bus is only
// briefly unavailable (no stream answered, JetStream reported itself unavailable or the
// client's request timed out: a stream leader being elected, a server restarting) for at
// most patience, with backoff from 100 ms to 1 s. An attempt is bounded by ctx and the
// client's own timeout only: a server that is slow to answer is waited for, not sent the
// message again. The message id makes every retry safe: the
// stream stores the message once. Any other error, and every error of a message without
// an id, is returned at once.
//
// Fetchers publish what they fetched this way: a page in hand is never fetched again
// because the bus was away for a few seconds.
func PublishPatiently(ctx context.Context, js jetstream.JetStream, subject, msgID string, p events.Payload, patience time.Duration) (*jetstream.PubAck, error) {
	deadline := time.Now().Add(patience)
	wait := 100 * time.Millisecond
	for {
		ack, err := Publish(ctx, js, subject, msgID, p)
		if err == nil || msgID == "" || !Unavailable(err) || ctx.Err() != nil || time.Now().Add(wait).After(deadline) {
			return ack, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}

// Unavailable reports whether err says the bus could not take a request just now, as
// opposed to refusing it: nobody answered, the request timed out, or JetStream answered
// that it is unavailable (HTTP-style code 503, as during a leader election).
func Unavailable(err error) bool {
	var apiErr *jetstream.APIError
	switch {
	case errors.Is(err, nats.ErrNoResponders), errors.Is(err, jetstream.ErrNoStreamResponse),
		errors.Is(err, nats.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return true
	case errors.As(err, &apiErr):
		return apiErr.Code == http.StatusServiceUnavailable
	}
	return false
}
