// Package variants turns a search query into the forms it may take in the stored text:
// the site writes Traditional Chinese (Taiwan), readers often type Simplified. The
// conversion is OpenCC's (github.com/longbridgeapp/opencc, dictionaries embedded).
package variants

import (
	"fmt"

	"github.com/longbridgeapp/opencc"
)

// Converter finds the Traditional forms of a query. It is safe for concurrent use:
// conversion only reads its dictionaries.
type Converter struct {
	s2t, s2tw *opencc.OpenCC
}

// New loads the Simplified-to-Traditional dictionaries (standard and Taiwan forms),
// which takes about a tenth of a second.
func New() (*Converter, error) {
	s2t, err := opencc.New("s2t")
	if err != nil {
		return nil, fmt.Errorf("opencc s2t: %w", err)
	}
	s2tw, err := opencc.New("s2tw")
	if err != nil {
		return nil, fmt.Errorf("opencc s2tw: %w", err)
	}
	return &Converter{s2t: s2t, s2tw: s2tw}, nil
}

// Forms returns q followed by its distinct Traditional forms (standard, then Taiwan):
// one to three strings, q first. A query already in Traditional Chinese, or without
// Chinese at all, yields q alone.
func (c *Converter) Forms(q string) []string {
	out := []string{q}
	for _, cc := range []*opencc.OpenCC{c.s2t, c.s2tw} {
		v, err := cc.Convert(q)
		if err != nil || v == "" {
			continue // a dictionary lookup failed: searching the other forms still helps
		}
		seen := false
		for _, f := range out {
			seen = seen || f == v
		}
		if !seen {
			out = append(out, v)
		}
	}
	return out
}
