// Package api holds the bodies of the gateway's HTTP API (under /xsw/api) as Go types:
// the gateway answers with them and xswctl reads them, so the API is described once. The
// gateway's openapi.json describes the same bodies, and the gateway's tests check every
// answer against it.
//
// The JSON of each type is what existing clients read, byte for byte: field names,
// types, nulls and the order of the fields are part of the contract. Some bodies keep
// their fields in alphabetical order because that is how the gateway has always written
// them. Times are RFC 3339 strings in UTC, to the second, unless a field says otherwise.
//
// The package depends on the standard library and the events contract only.
package api

// Prefix is the path every API route sits under.
const Prefix = "/xsw/api"

// Error is the body of every answer that is not a success: 4xx and 5xx.
type Error struct {
	Detail string `json:"detail"`
}

// Status is the body of GET /healthz ("ok") and GET /readyz ("ready").
type Status struct {
	Status string `json:"status"`
}
