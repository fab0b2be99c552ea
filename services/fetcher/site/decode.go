package site

import (
	"bytes"
	"fmt"
	"unicode/utf8"

	"golang.org/x/text/encoding/traditionalchinese"
)

// utf8BOM is the byte order mark some pages start with.
var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// Decode turns the raw bytes of a page into UTF-8 by looking at the bytes alone: bytes
// that are valid UTF-8 are used as they are (less a leading byte order mark), anything
// else is decoded as Big5, whatever the page's meta charset tag says. The site declares
// big5 while serving UTF-8, and older pages really were Big5.
//
// When body is valid UTF-8 the result shares its memory with body. Bytes that are not
// valid Big5 either become U+FFFD; the error is reserved for a failing decoder.
func Decode(body []byte) ([]byte, error) {
	if utf8.Valid(body) {
		return bytes.TrimPrefix(body, utf8BOM), nil
	}
	out, err := traditionalchinese.Big5.NewDecoder().Bytes(body)
	if err != nil {
		return nil, fmt.Errorf("decode %d bytes as big5: %w", len(body), err)
	}
	return out, nil
}
