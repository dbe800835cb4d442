//go:build openblas && cgo

package secondorder

import (
	"strings"
	"testing"
)

// TestSplitGemm checks the goroutine-split cgo OpenBLAS Dgemm against
// gonum's pure-Go Dgemm (backend_shared_test.go).
func TestSplitGemm(t *testing.T) {
	checkGemm(t, splitGemm{})
	if !strings.HasPrefix(Backend(), "openblas") {
		t.Errorf("Backend() = %q with the openblas tag", Backend())
	}
}

// TestSplitTrsm checks the goroutine-split cgo Dtrsm against gonum's.
func TestSplitTrsm(t *testing.T) {
	checkTrsm(t, splitGemm{})
}

func BenchmarkRawDgemm(b *testing.B) {
	benchRawDgemm(b, "openblas-cgo", splitGemm{}.Implementation)
}
