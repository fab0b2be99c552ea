package httpapi

import (
	"fmt"
	"testing"
)

func TestParseRange(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{in: "1-7", want: "[1 2 3 4 5 6 7]"},
		{in: "3", want: "[3]"},
		{in: "5-6,1,3,5", want: "[1 3 5 6]"},
		{in: " 2 - 3 ", wantErr: true},
		{in: "0-3", wantErr: true},
		{in: "7-1", wantErr: true},
		{in: "1-100", wantErr: true},
		{in: "a", wantErr: true},
		{in: "", wantErr: true},
		{in: "1-", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseRange(tt.in, 1, 99)
		if (err != nil) != tt.wantErr || (!tt.wantErr && fmt.Sprint(got) != tt.want) {
			t.Errorf("parseRange(%q) = %v, %v; want %s (error %v)", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}
