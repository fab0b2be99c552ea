// Package events is the wire contract of the xsw pipeline: the NATS subjects, the
// JetStream stream, consumer and key-value specs (as plain data), the versioned payloads
// and the rules for message IDs. It depends on the standard library only, so that every
// service, tool and test speaks exactly the same language.
package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// Version is the payload version every publisher writes. A consumer rejects a payload
// whose version it does not know (ErrVersion) rather than guessing at its meaning.
const Version = 1

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
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if v := p.PayloadVersion(); v != Version {
		return fmt.Errorf("%w: got %d, know %d", ErrVersion, v, Version)
	}
	return p.Validate()
}

// MaxBookIDLen bounds a book id: the site's ids are 6-8 digits today.
const MaxBookIDLen = 12

// ValidID reports whether s is a non-empty string of ASCII digits no longer than
// MaxBookIDLen, the only form of book and chapter id that may appear in a subject or URL.
func ValidID(s string) bool {
	if s == "" || len(s) > MaxBookIDLen+6 { // chapter ids run a few digits longer
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// ValidBookID reports whether s is a valid book id.
func ValidBookID(s string) bool {
	if len(s) > MaxBookIDLen || !ValidID(s) {
		return false
	}
	_, err := strconv.ParseInt(s, 10, 64)
	return err == nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}
