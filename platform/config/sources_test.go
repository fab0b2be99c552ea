package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func validSite(s string) bool {
	return s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyz0123456789") == "" && s[0] >= 'a'
}

func TestReadSources(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    Sources
		wantErr string
	}{
		{name: "default", env: nil, want: Sources{{ID: "xsw", RateLimit: 2 * time.Second}}},
		{name: "base url is the default site's", env: map[string]string{"SOURCES": "czbooks, xsw", "BASE_URL": "http://127.0.0.1:9", "BG_JOB_RATE_LIMIT": "3"},
			want: Sources{{ID: "czbooks", URL: "http://127.0.0.1:9", RateLimit: 3 * time.Second}, {ID: "xsw", RateLimit: 3 * time.Second}}},
		{name: "per-site variables win", env: map[string]string{"SOURCES": "xsw,czbooks", "BASE_URL": "http://a", "SOURCE_XSW_URL": "http://b",
			"SOURCE_CZBOOKS_RATE_LIMIT": "0.5"},
			want: Sources{{ID: "xsw", URL: "http://b", RateLimit: 2 * time.Second}, {ID: "czbooks", RateLimit: 500 * time.Millisecond}}},
		{name: "bad id", env: map[string]string{"SOURCES": "xsw,Bad.Site"}, wantErr: "SOURCES"},
		{name: "twice", env: map[string]string{"SOURCES": "xsw,xsw"}, wantErr: "each site once"},
		{name: "bad rate", env: map[string]string{"SOURCE_XSW_RATE_LIMIT": "fast"}, wantErr: "SOURCE_XSW_RATE_LIMIT"},
		{name: "negative rate", env: map[string]string{"SOURCE_XSW_RATE_LIMIT": "-1"}, wantErr: "SOURCE_XSW_RATE_LIMIT"},
		{name: "base url not http", env: map[string]string{"BASE_URL": "ftp://m.xsw.tw"}, wantErr: "SOURCE_XSW_URL (or BASE_URL)"},
		{name: "site url without host", env: map[string]string{"SOURCES": "xsw,czbooks", "SOURCE_CZBOOKS_URL": "https:///x"}, wantErr: "SOURCE_CZBOOKS_URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(Map(tt.env))
			got := ReadSources(r, validSite)
			err := r.Err()
			if err == nil {
				err = got.Validate()
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v; want one naming %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ReadSources = %+v; want %+v", got, tt.want)
			}
			if got.Default() != tt.want[0].ID {
				t.Errorf("Default = %q", got.Default())
			}
		})
	}
}

// TestValidateHidesPasswords: a bad base URL is named by its variable, never quoted: it
// may carry a password.
func TestValidateHidesPasswords(t *testing.T) {
	err := Sources{{ID: "xsw", URL: "ftp://reader:s3cret@m.xsw.tw"}}.Validate()
	if err == nil || !strings.Contains(err.Error(), "SOURCE_XSW_URL") || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("Validate = %v, want an error naming SOURCE_XSW_URL without the password", err)
	}
}
