// Package lease lets one replica among many do a job alone: the one holding a key in a
// JetStream key-value bucket whose entries expire unless renewed (events.BucketLeases,
// whose entries last events.LeaseTTL). The holder renews its lease well within that time;
// when it stops it gives the lease up, so that another replica takes over at its next
// try, and when it dies the lease expires.
package lease

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go/jetstream"
)

// Lease is one replica's claim to a key of the bucket.
type Lease struct {
	kv     jetstream.KeyValue
	key    string
	holder string
}

// New returns the lease of key in kv for the replica named holder (unique among the
// replicas that compete for key).
func New(kv jetstream.KeyValue, key, holder string) *Lease {
	return &Lease{kv: kv, key: key, holder: holder}
}

// Hold takes the lease when nobody holds it and renews it when this replica does, and
// reports whether this replica holds it now. A failure to read or write the bucket counts
// as not holding it: the replica that cannot renew lets the lease expire.
func (l *Lease) Hold(ctx context.Context) bool {
	e, err := l.kv.Get(ctx, l.key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		_, err = l.kv.Create(ctx, l.key, []byte(l.holder))
		return err == nil
	case err != nil:
		return false
	case string(e.Value()) != l.holder:
		return false
	}
	_, err = l.kv.Update(ctx, l.key, []byte(l.holder), e.Revision())
	return err == nil
}

// Release gives the lease up if this replica holds it, so that another can take it at
// once; a lease another replica holds is left alone.
func (l *Lease) Release(ctx context.Context) error {
	e, err := l.kv.Get(ctx, l.key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return nil
	case err != nil:
		return err
	case string(e.Value()) != l.holder:
		return nil
	}
	return l.kv.Delete(ctx, l.key, jetstream.LastRevision(e.Revision()))
}
