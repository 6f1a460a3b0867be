package vault

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	t.Parallel()
	base, limit := 100*time.Millisecond, 5*time.Second
	for attempt := range 70 {
		step := limit
		if attempt < 6 { // 100ms·2^5 = 3.2s is the last step below the limit
			step = base << attempt
		}
		for range 50 {
			d := backoff(attempt, base, limit)
			if d < step/2 || d > step {
				t.Fatalf("backoff(%d) = %s, want within [%s, %s]", attempt, d, step/2, step)
			}
		}
	}
	if d := backoff(3, 0, time.Second); d != 0 {
		t.Errorf("backoff with base 0 = %s, want 0", d)
	}
}
