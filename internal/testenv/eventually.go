package testenv

import (
	"testing"
	"time"
)

// Eventually calls cond until it returns nil, failing t with cond's last error
// if timeout passes first. Tests use it to wait for controllers and caches.
func Eventually(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if err = cond(); err == nil {
			return
		}
	}
	t.Fatalf("not reached in %s: %v", timeout, err)
}
