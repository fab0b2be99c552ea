// Package events is the wire contract of the xsw pipeline: the NATS subjects, the
// JetStream stream, consumer and key-value specs (as plain data), the versioned payloads
// and the rules for message IDs. It depends on the standard library only, so that every
// service, tool and test speaks exactly the same language.
package events

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Version is the payload version every publisher writes. A consumer rejects a payload
// whose version it does not know (ErrVersion) rather than guessing at its meaning.
//
// Version 2 names the site of every book (see LegacySite). A consumer still reads
// version 1, written before sites had names: its books are LegacySite's (Decode fills
// the site in), so that requests, events and dead letters left in the streams by an
// older build are served after an upgrade.
const Version = 2

// VersionLegacy is the payload version written before books were site-qualified.
const VersionLegacy = 1

// Header names carried on messages.
const (
	// HeaderMsgID is JetStream's de-duplication header.
	HeaderMsgID = "Nats-Msg-Id"
)

var (
	// ErrVersion marks a payload written with a version this build does not understand.
	ErrVersion = errors.New("unknown payload version")
	// ErrInvalid marks a payload that decoded but breaks the contract (missing book id,
	// bad lane, ...).
	ErrInvalid = errors.New("invalid payload")
)

// Payload is implemented by every message body of the contract.
type Payload interface {
	// PayloadVersion reports the version the payload was written with.
	PayloadVersion() int
	// Validate reports whether the payload honours the contract.
	Validate() error
}

// Header is embedded in every payload: it carries the version field.
type Header struct {
	Version int `json:"version"`
}

// PayloadVersion reports the version the payload was written with.
func (h Header) PayloadVersion() int { return h.Version }

// Encode stamps nothing and checks everything: it validates p and marshals it to JSON.
// Callers build payloads with Version set (the New* constructors do).
func Encode(p Payload) ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return json.Marshal(p)
}

// Decode unmarshals data into p, then checks its version and validates it. Errors wrap
// ErrVersion or ErrInvalid (or a JSON syntax error), so a consumer can tell poison input
// from a transient failure: both of the former are permanent.
func Decode(data []byte, p Payload) error {
	if err := json.Unmarshal(data, p); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	switch v := p.PayloadVersion(); v {
	case Version:
	case VersionLegacy:
		if l, ok := p.(legacy); ok {
			l.upgrade()
		}
	default:
		return fmt.Errorf("%w: got %d, know %d and %d", ErrVersion, v, VersionLegacy, Version)
	}
	return p.Validate()
}

// legacy is implemented by the payloads that name a book: upgrade fills in what a
// version 1 payload lacks (the site, LegacySite) and stamps the current version.
type legacy interface{ upgrade() }

// legacySite returns site, or LegacySite when it is empty.
func legacySite(site string) string {
	if site == "" {
		return LegacySite
	}
	return site
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}
