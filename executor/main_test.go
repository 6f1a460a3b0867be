package executor_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Execute starts a goroutine per running step and SendCallbacks one per
// callback; both must be gone when they return.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
