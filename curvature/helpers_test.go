package curvature

import (
	"math/rand/v2"
	"testing"

	"github.com/secondorder/secondorder/internal/testutil"
)

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0xc0ffee)) }

// expectPanic checks that f panics with a message starting "curvature: "
// and containing fragment.
func expectPanic(t *testing.T, name string, f func(), fragment string) {
	t.Helper()
	testutil.ExpectPanicFrom(t, name, f, "curvature: ", fragment)
}
