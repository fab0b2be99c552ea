package database

import "testing"

func TestRedact(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"postgres://xsw:secret@db:5432/xsw?sslmode=require", "postgres://xsw:xxxxx@db:5432/xsw?sslmode=require"},
		{"postgres://xsw@db/xsw?password=secret&sslmode=disable", "postgres://xsw@db/xsw?password=xxxxx&sslmode=disable"},
		{"postgres://db/xsw?sslpassword=secret", "postgres://db/xsw?sslpassword=xxxxx"},
		{"postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"},
		{"host=db user=xsw password=secret", "(connection string with password)"},
		{"host=db user=xsw", "host=db user=xsw"},
	} {
		if got := Redact(c.in); got != c.want {
			t.Errorf("Redact(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
