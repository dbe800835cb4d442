//go:build !(openblas && cgo) && (linux || darwin) && (amd64 || arm64)

package secondorder

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/lapack/lapack64"
)

// Without the openblas build tag, the package looks for the system's
// OpenBLAS shared library at init (Debian's libopenblas0 is enough: no
// -dev package, no C compiler) and, when it finds it, routes gonum's level
// 2 and 3 BLAS routines that the module's hot paths use, and LAPACK's
// dsyevd and dpotrf, to it through github.com/ebitengine/purego (no cgo).
// Without the library everything stays pure Go.
//
// SECONDORDER_BLAS=gonum forces pure Go; SECONDORDER_BLAS=openblas requires
// OpenBLAS (init panics when it cannot be loaded); unset, OpenBLAS is used
// when found. SECONDORDER_OPENBLAS=threads keeps OpenBLAS's own threading
// instead of splitting large products across goroutines (split.go).
func init() {
	mode := os.Getenv("SECONDORDER_BLAS")
	switch mode {
	case "", "auto":
	case "gonum":
		backend = "gonum (pure Go, SECONDORDER_BLAS=gonum)"
		return
	case "openblas":
	default:
		panic(fmt.Sprintf("secondorder: SECONDORDER_BLAS=%q: want gonum, openblas or nothing", mode))
	}
	lib, err := loadOpenBLAS(openblasNames())
	if err != nil {
		if mode == "openblas" {
			panic("secondorder: SECONDORDER_BLAS=openblas but OpenBLAS cannot be loaded (install it with apt-get install libopenblas0): " + err.Error())
		}
		return
	}
	useRuntimeOpenBLAS(lib)
}

// useRuntimeOpenBLAS installs lib as gonum's BLAS and LAPACK backend.
func useRuntimeOpenBLAS(lib *openblasLib) {
	ob = lib
	lapack64.Use(rtLAPACK{})
	name := "openblas (run time, " + lib.path
	if os.Getenv("SECONDORDER_OPENBLAS") == "threads" {
		blas64.Use(rtBLAS{threads: true})
		backend = name + ", OpenBLAS threads)"
		return
	}
	purego.SyscallN(lib.setNumThreads, 1)
	blas64.Use(rtBLAS{})
	backend = name + ")"
}

// openblasNames lists the library names and paths tried, in order: the
// sonames the dynamic loader resolves (Debian's alternatives point them at
// the pthread, OpenMP or serial variant), then the variants' own
// directories for systems where only those are installed.
func openblasNames() []string {
	if runtime.GOOS == "darwin" {
		return []string{"libopenblas.dylib", "libopenblas.0.dylib",
			"/opt/homebrew/opt/openblas/lib/libopenblas.dylib", "/usr/local/opt/openblas/lib/libopenblas.dylib"}
	}
	names := []string{"libopenblas.so.0", "libopenblas.so", "libopenblasp.so.0", "libopenblaso.so.0"}
	for _, pat := range []string{
		"/usr/lib/*/openblas-pthread/libopenblas*.so*",
		"/usr/lib/*/openblas-openmp/libopenblas*.so*",
		"/usr/lib/*/openblas-serial/libopenblas*.so*",
		"/usr/lib64/libopenblas*.so*",
		"/usr/local/lib/libopenblas*.so*",
		"/opt/OpenBLAS/lib/libopenblas*.so*",
	} {
		m, _ := filepath.Glob(pat)
		names = append(names, m...)
	}
	return names
}

// openblasLib holds the addresses of the OpenBLAS routines in use.
type openblasLib struct {
	path string // the library's file, or the name it was opened by

	setNumThreads                                         uintptr
	dgemm, dgemv, dger, dsymv, dtrsv, dsymm, dsyrk, dtrsm uintptr
	dpotrf, dsyevd                                        uintptr
}

// ob is the OpenBLAS in use by rtBLAS and rtLAPACK (nil: none).
var ob *openblasLib

// loadOpenBLAS opens the first of names that loads and has every routine
// the backend needs.
func loadOpenBLAS(names []string) (*openblasLib, error) {
	var errs []string
	for _, name := range names {
		h, err := purego.Dlopen(name, purego.RTLD_NOW|purego.RTLD_LOCAL)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		lib := &openblasLib{path: name}
		syms := []struct {
			name string
			addr *uintptr
		}{
			{"openblas_set_num_threads", &lib.setNumThreads},
			{"dgemm_", &lib.dgemm}, {"dgemv_", &lib.dgemv}, {"dger_", &lib.dger},
			{"dsymv_", &lib.dsymv}, {"dtrsv_", &lib.dtrsv}, {"dsymm_", &lib.dsymm},
			{"dsyrk_", &lib.dsyrk}, {"dtrsm_", &lib.dtrsm},
			{"dpotrf_", &lib.dpotrf}, {"dsyevd_", &lib.dsyevd},
		}
		ok := true
		for _, s := range syms {
			if *s.addr, err = purego.Dlsym(h, s.name); err != nil || *s.addr == 0 {
				errs = append(errs, fmt.Sprintf("%s: no %s", name, s.name))
				ok = false
				break
			}
		}
		if !ok {
			purego.Dlclose(h)
			continue
		}
		if p := mappedPath(filepath.Base(name)); p != "" {
			lib.path = p
		}
		return lib, nil
	}
	if len(errs) == 0 {
		errs = append(errs, "no library names to try")
	}
	return nil, fmt.Errorf("%s", strings.Join(errs, "; "))
}

// mappedPath returns the file of the loaded library whose name starts like
// base (its soname), from /proc/self/maps; "" when unknown.
func mappedPath(base string) string {
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return ""
	}
	stem, _, _ := strings.Cut(base, ".so")
	var found string
	for _, line := range strings.Split(string(maps), "\n") {
		i := strings.IndexByte(line, '/')
		if i < 0 {
			continue
		}
		p := line[i:]
		if strings.HasPrefix(filepath.Base(p), stem) {
			if found == "" || found == p {
				found = p
			} else {
				return "" // two candidates: do not guess
			}
		}
	}
	return found
}

// f77Call is the argument block of one call of a Fortran BLAS or LAPACK
// routine: every argument is passed by reference, so the scalars live here
// and ptr holds the addresses passed. Blocks come from a pool, so that a
// call allocates nothing.
type f77Call struct {
	ptr [16]uintptr
	np  int
	ch  [4]byte
	i   [9]int32
	f   [2]float64
}

var f77Pool = sync.Pool{New: func() any { return new(f77Call) }}

func newCall() *f77Call {
	c := f77Pool.Get().(*f77Call)
	c.np = 0
	return c
}

// escapeSink makes the addresses given to escapes escape to the heap in
// the eyes of the compiler, so that no caller keeps a matrix on its stack
// (which can move) while OpenBLAS reads it through a uintptr.
var escapeSink struct {
	on bool
	p  unsafe.Pointer
}

func escapes(p unsafe.Pointer) {
	if escapeSink.on {
		escapeSink.p = p
	}
}

func (c *f77Call) char(i int, v byte) {
	c.ch[i] = v
	c.ptr[c.np] = uintptr(unsafe.Pointer(&c.ch[i]))
	c.np++
}

func (c *f77Call) int(i, v int) {
	c.i[i] = int32(v)
	c.ptr[c.np] = uintptr(unsafe.Pointer(&c.i[i]))
	c.np++
}

func (c *f77Call) float(i int, v float64) {
	c.f[i] = v
	c.ptr[c.np] = uintptr(unsafe.Pointer(&c.f[i]))
	c.np++
}

func (c *f77Call) slice(s []float64) {
	p := unsafe.Pointer(unsafe.SliceData(s))
	escapes(p)
	c.ptr[c.np] = uintptr(p)
	c.np++
}

func (c *f77Call) slice32(s []int32) {
	p := unsafe.Pointer(unsafe.SliceData(s))
	escapes(p)
	c.ptr[c.np] = uintptr(p)
	c.np++
}

// call calls fn with the addresses set and nLens hidden string lengths (of
// 1) that gfortran-compiled routines expect after the arguments, returns
// the integer argument info (LAPACK's info; ignored for BLAS), and puts
// the block back in the pool.
func (c *f77Call) call(fn uintptr, nLens, info int) int32 {
	for range nLens {
		c.ptr[c.np] = 1
		c.np++
	}
	purego.SyscallN(fn, c.ptr[:c.np]...)
	r := c.i[info]
	f77Pool.Put(c)
	return r
}

func trans(t blas.Transpose) byte {
	if t == blas.NoTrans {
		return 'N'
	}
	return 'T'
}

func flipTrans(t blas.Transpose) byte {
	if t == blas.NoTrans {
		return 'T'
	}
	return 'N'
}

func flipSide(s blas.Side) byte {
	if s == blas.Left {
		return 'R'
	}
	return 'L'
}

func diag(d blas.Diag) byte {
	if d == blas.Unit {
		return 'U'
	}
	return 'N'
}

// fits32 reports whether every value fits OpenBLAS's 32-bit integers.
func fits32(v ...int) bool {
	for _, x := range v {
		if x > math.MaxInt32 || x < -math.MaxInt32 {
			return false
		}
	}
	return true
}
