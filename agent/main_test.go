package agent

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if a goroutine outlives them: the
// daemon promises that every goroutine it starts (actors, bursts, the cloud
// side's claimers, watchers) ends when it stops, and a test that stops a
// daemon or a cloud side and leaves one running breaks that promise.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
