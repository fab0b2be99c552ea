package variants

import (
	"slices"
	"sync"
	"testing"
)

func TestForms(t *testing.T) {
	t.Parallel()
	c, err := New()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		q    string
		want []string
	}{
		{"万古神帝", []string{"万古神帝", "萬古神帝"}},
		{"萬古神帝", []string{"萬古神帝"}},
		{"里面", []string{"里面", "裏面", "裡面"}}, // standard and Taiwan forms differ
		{"abc 123", []string{"abc 123"}},
		{"飞天鱼", []string{"飞天鱼", "飛天魚"}},
	}
	for _, tt := range tests {
		if got := c.Forms(tt.q); !slices.Equal(got, tt.want) {
			t.Errorf("Forms(%q) = %q, want %q", tt.q, got, tt.want)
		}
	}
}

func TestConcurrentForms(t *testing.T) {
	t.Parallel()
	c, err := New()
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if got := c.Forms("头发"); len(got) != 2 || got[1] != "頭髮" {
					t.Errorf("Forms = %q", got)
					return
				}
			}
		})
	}
	wg.Wait()
}
