//go:build openblas && cgo

package secondorder

// #cgo LDFLAGS: -lopenblas
import "C"

import (
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/netlib/blas/netlib"
)

// With the openblas build tag every package of the module (they all import
// this one) runs gonum's level-3 BLAS on OpenBLAS through cgo.
func init() {
	blas64.Use(netlib.Implementation{})
	backend = "openblas"
}
