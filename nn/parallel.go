package nn

import (
	"runtime"
	"sync"
)

// parallelMin is the number of matrix elements below which elementwise
// passes stay on the calling goroutine: under it, starting goroutines costs
// more than it saves.
const parallelMin = 1 << 15

// parallel reports whether an elementwise pass over rows×cols elements is
// worth splitting across goroutines.
func parallel(rows, cols int) bool {
	return rows > 1 && rows*cols >= parallelMin && runtime.GOMAXPROCS(0) > 1
}

// forRows runs f over [0, rows) split into one contiguous chunk of rows per
// available processor and waits for all of them. Callers create the closure
// only on the parallel path (see parallel) so that the serial path does not
// allocate.
func forRows(rows int, f func(lo, hi int)) {
	p := min(runtime.GOMAXPROCS(0), rows)
	chunk := (rows + p - 1) / p
	var wg sync.WaitGroup
	for lo := chunk; lo < rows; lo += chunk {
		hi := min(lo+chunk, rows)
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(lo, hi)
		}()
	}
	f(0, min(chunk, rows))
	wg.Wait()
}
