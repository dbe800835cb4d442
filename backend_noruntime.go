//go:build !(openblas && cgo) && !((linux || darwin) && (amd64 || arm64))

package secondorder

import (
	"fmt"
	"os"
)

// On platforms where OpenBLAS is not loaded at run time (see
// backend_runtime.go) the backend is pure Go; SECONDORDER_BLAS=openblas
// then fails at init rather than running silently in pure Go.
func init() {
	switch mode := os.Getenv("SECONDORDER_BLAS"); mode {
	case "", "auto":
	case "gonum":
		backend = "gonum (pure Go, SECONDORDER_BLAS=gonum)"
	case "openblas":
		panic("secondorder: SECONDORDER_BLAS=openblas but OpenBLAS is not loaded at run time on this platform; build with -tags openblas (cgo)")
	default:
		panic(fmt.Sprintf("secondorder: SECONDORDER_BLAS=%q: want gonum, openblas or nothing", mode))
	}
}
