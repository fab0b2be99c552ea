package config

import (
	"strings"
	"testing"
	"time"
)

func TestReader(t *testing.T) {
	r := NewReader(Map(map[string]string{
		"S": " x ", "I": "3", "F": "2.5", "B": "yes", "D1": "1.5", "D2": "2m", "L": "a, ,b",
		"BAD_I": "three", "BAD_D": "soon", "BAD_B": "maybe",
	}))
	if got := r.String("S", "d"); got != "x" {
		t.Errorf("String = %q", got)
	}
	if got := r.String("UNSET", "d"); got != "d" {
		t.Errorf("String default = %q", got)
	}
	if got := r.Int("I", 0); got != 3 {
		t.Errorf("Int = %d", got)
	}
	if got := r.Float("F", 0); got != 2.5 {
		t.Errorf("Float = %v", got)
	}
	if got := r.Bool("B", false); !got {
		t.Errorf("Bool = %v", got)
	}
	if got := r.Duration("D1", 0); got != 1500*time.Millisecond {
		t.Errorf("Duration seconds = %v", got)
	}
	if got := r.Duration("D2", 0); got != 2*time.Minute {
		t.Errorf("Duration = %v", got)
	}
	if got := r.List("L"); len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Errorf("List = %q", got)
	}
	if err := r.Err(); err != nil {
		t.Fatalf("Err before bad values = %v", err)
	}
	r.Int("BAD_I", 1)
	r.Duration("BAD_D", 1)
	r.Bool("BAD_B", true)
	err := r.Err()
	for _, k := range []string{"BAD_I", "BAD_D", "BAD_B"} {
		if err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("Err = %v, want it to name %s", err, k)
		}
	}
}
