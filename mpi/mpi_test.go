package mpi

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/secondorder/secondorder/dist"
)

// The tests run as a singleton (go test) or as every rank of an mpirun job
// (mpirun.sh N mpi.test). Every rank runs the same tests in the same order
// and makes the same collectives: a test checks its results with t.Errorf
// and never stops early, since a rank that skipped a collective would leave
// the others waiting.

// comm is the world Comm of the test process.
var comm *Comm

// TestMain initializes MPI and lets only rank 0 print: the other ranks'
// output is kept and printed, prefixed with the rank, if they fail. A rank
// that fails aborts the job, so that mpirun exits non-zero whatever the
// other ranks do. (-test.shuffle=on would order the tests differently on
// each rank: give it a seed.)
func TestMain(m *testing.M) {
	c, err := Init()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	comm = c
	var out *capture
	if c.Rank() != 0 {
		out = captureStdout()
	}
	code := m.Run()
	if out != nil {
		text := out.stop()
		if code != 0 {
			prefix := fmt.Sprintf("rank %d: ", c.Rank())
			text = strings.TrimSuffix(text, "\n")
			fmt.Fprintln(os.Stderr, prefix+strings.ReplaceAll(text, "\n", "\n"+prefix))
		}
	}
	if code != 0 && c.Size() > 1 {
		c.Abort(code)
	}
	if err := Finalize(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	if err := c.Barrier(); err == nil {
		fmt.Fprintln(os.Stderr, "Barrier after Finalize: no error")
		code = 1
	}
	if _, err := Init(); err == nil {
		fmt.Fprintln(os.Stderr, "Init after Finalize: no error")
		code = 1
	}
	if err := Finalize(); err != nil {
		fmt.Fprintln(os.Stderr, "second Finalize:", err)
		code = 1
	}
	os.Exit(code)
}

// capture collects what is written to os.Stdout.
type capture struct {
	stdout *os.File
	w      *os.File
	buf    bytes.Buffer
	done   chan struct{}
}

func captureStdout() *capture {
	r, w, err := os.Pipe()
	if err != nil {
		panic(err)
	}
	c := &capture{stdout: os.Stdout, w: w, done: make(chan struct{})}
	go func() {
		io.Copy(&c.buf, r)
		r.Close()
		close(c.done)
	}()
	os.Stdout = w
	return c
}

// stop restores os.Stdout and returns what was written.
func (c *capture) stop() string {
	os.Stdout = c.stdout
	c.w.Close()
	<-c.done
	return c.buf.String()
}

// value is the element i of rank r's buffer in the tests of Sum and Max:
// small integers, whose sums are exact in any order.
func value(r, i int) float64 { return float64((r+1)*(i%7) - 3*r) }

func TestInit(t *testing.T) {
	if r, n := comm.Rank(), comm.Size(); n < 1 || r < 0 || r >= n {
		t.Errorf("Rank %d, Size %d", r, n)
	}
	c, err := Init()
	if err != nil || c != comm {
		t.Errorf("second Init = %p, %v, want %p, nil", c, err, comm)
	}
	if err := comm.Barrier(); err != nil {
		t.Error(err)
	}
	if err := new(Comm).Barrier(); err == nil || !strings.HasPrefix(err.Error(), "mpi: ") {
		t.Errorf("Barrier of a Comm other than Init's: %v, want an error", err)
	}
	t.Logf("%d ranks", comm.Size())
}

func TestAllReduceSum(t *testing.T) {
	for _, n := range []int{1, 3, 1000, 100_003} {
		buf := make([]float64, n)
		for i := range buf {
			buf[i] = value(comm.Rank(), i)
		}
		if err := comm.AllReduce(buf, dist.Sum); err != nil {
			t.Fatal(err) // an MPI error: the Comm is unusable anyway
		}
		bad := 0
		for i, v := range buf {
			var want float64
			for r := range comm.Size() {
				want += value(r, i)
			}
			if v != want {
				if bad++; bad <= 3 {
					t.Errorf("n=%d: element %d is %v, want %v", n, i, v, want)
				}
			}
		}
	}
}

func TestAllReduceMax(t *testing.T) {
	for _, n := range []int{1, 3, 1000, 100_003} {
		buf := make([]float64, n)
		for i := range buf {
			buf[i] = value(comm.Rank(), i)
		}
		if err := comm.AllReduce(buf, dist.Max); err != nil {
			t.Fatal(err)
		}
		bad := 0
		for i, v := range buf {
			want := value(0, i)
			for r := 1; r < comm.Size(); r++ {
				want = max(want, value(r, i))
			}
			if v != want {
				if bad++; bad <= 3 {
					t.Errorf("n=%d: element %d is %v, want %v", n, i, v, want)
				}
			}
		}
	}
}

// TestMaxSpecial checks that Max is Go's max, as in dist.Group, whichever
// ranks hold NaNs and signed zeros: element k of the buffers has on rank r
// the digit r of k in base 5 over the values below, so that every
// assignment of values to ranks occurs, repeated to reach every algorithm.
func TestMaxSpecial(t *testing.T) {
	vals := []float64{math.Copysign(0, -1), 0, math.NaN(), 1, math.Inf(-1)}
	size := min(comm.Size(), 4)
	combos := 1
	for range size {
		combos *= len(vals)
	}
	for _, rep := range []int{1, 1000, 20_000} {
		buf := make([]float64, combos*rep)
		want := make([]float64, combos)
		for k := range combos {
			for r, x := 0, k; r < comm.Size(); r, x = r+1, x/len(vals) {
				v := vals[x%len(vals)]
				if r >= size {
					v = math.Inf(-1)
				}
				if r == 0 {
					want[k] = v
				} else {
					want[k] = max(want[k], v)
				}
				if r == comm.Rank() {
					for j := range rep {
						buf[k*rep+j] = v
					}
				}
			}
		}
		if err := comm.AllReduce(buf, dist.Max); err != nil {
			t.Fatal(err)
		}
		bad := 0
		for i, v := range buf {
			w := want[i/rep]
			if math.Float64bits(v) != math.Float64bits(w) && !(math.IsNaN(v) && math.IsNaN(w)) {
				if bad++; bad <= 3 {
					t.Errorf("rep=%d: element %d is %v, want %v", rep, i, v, w)
				}
			}
		}
		sameBits(t, fmt.Sprintf("Max of special values, rep=%d", rep), buf)
	}
}

func TestBroadcast(t *testing.T) {
	for root := range comm.Size() {
		for _, n := range []int{1, 1000, 100_003} {
			buf := make([]float64, n)
			for i := range buf {
				buf[i] = value(comm.Rank(), i) + 0.5
			}
			if err := comm.Broadcast(buf, root); err != nil {
				t.Fatal(err)
			}
			bad := 0
			for i, v := range buf {
				if want := value(root, i) + 0.5; v != want {
					if bad++; bad <= 3 {
						t.Errorf("root %d, n=%d: element %d is %v, want %v", root, n, i, v, want)
					}
				}
			}
		}
	}
}

func TestBroadcastBytes(t *testing.T) {
	for root := range comm.Size() {
		for _, n := range []int{1, 1000, 100_003} {
			buf := make([]byte, n)
			for i := range buf {
				buf[i] = byte(comm.Rank()*31 + i)
			}
			if err := comm.BroadcastBytes(buf, root); err != nil {
				t.Fatal(err)
			}
			bad := 0
			for i, v := range buf {
				if want := byte(root*31 + i); v != want {
					if bad++; bad <= 3 {
						t.Errorf("root %d, n=%d: byte %d is %d, want %d", root, n, i, v, want)
					}
				}
			}
		}
	}
}

func TestZeroLength(t *testing.T) {
	backing := []float64{1, 2, 3}
	for _, buf := range [][]float64{nil, {}, backing[1:1]} {
		for _, op := range []dist.Op{dist.Sum, dist.Max} {
			if err := comm.AllReduce(buf, op); err != nil {
				t.Error(err)
			}
		}
		for root := range comm.Size() {
			if err := comm.Broadcast(buf, root); err != nil {
				t.Error(err)
			}
		}
	}
	raw := []byte{1, 2, 3}
	for _, buf := range [][]byte{nil, {}, raw[1:1]} {
		for root := range comm.Size() {
			if err := comm.BroadcastBytes(buf, root); err != nil {
				t.Error(err)
			}
		}
	}
	if raw[0] != 1 || raw[1] != 2 || raw[2] != 3 {
		t.Errorf("the backing array of an empty byte buffer changed: %v", raw)
	}
	if backing[0] != 1 || backing[1] != 2 || backing[2] != 3 {
		t.Errorf("the backing array of an empty buffer changed: %v", backing)
	}
}

// TestChunks reduces and broadcasts buffers longer than the largest count
// of one call, lowered for the test.
func TestChunks(t *testing.T) {
	defer func(n int) { maxCount = n }(maxCount)
	maxCount = 7
	buf := make([]float64, 50)
	for i := range buf {
		buf[i] = value(comm.Rank(), i)
	}
	if err := comm.AllReduce(buf, dist.Sum); err != nil {
		t.Fatal(err)
	}
	for i, v := range buf {
		var want float64
		for r := range comm.Size() {
			want += value(r, i)
		}
		if v != want {
			t.Errorf("Sum: element %d is %v, want %v", i, v, want)
		}
	}
	root := comm.Size() - 1
	for i := range buf {
		buf[i] = value(comm.Rank(), i)
	}
	if err := comm.Broadcast(buf, root); err != nil {
		t.Fatal(err)
	}
	for i, v := range buf {
		if want := value(root, i); v != want {
			t.Errorf("Broadcast: element %d is %v, want %v", i, v, want)
		}
	}
	b := make([]byte, 50)
	for i := range b {
		b[i] = byte(comm.Rank() + i)
	}
	if err := comm.BroadcastBytes(b, root); err != nil {
		t.Fatal(err)
	}
	for i, v := range b {
		if want := byte(root + i); v != want {
			t.Errorf("BroadcastBytes: byte %d is %d, want %d", i, v, want)
		}
	}
}

// sameBits checks that buf has the same bits on every rank: it compares
// buf with rank 0's, broadcast.
func sameBits(t *testing.T, what string, buf []float64) {
	t.Helper()
	r0 := append([]float64(nil), buf...)
	if err := comm.Broadcast(r0, 0); err != nil {
		t.Fatal(err)
	}
	bad := 0
	for i := range buf {
		if math.Float64bits(buf[i]) != math.Float64bits(r0[i]) {
			if bad++; bad <= 3 {
				t.Errorf("%s: rank %d has %v (%#x) at %d, rank 0 %v (%#x)", what, comm.Rank(), buf[i], math.Float64bits(buf[i]), i, r0[i], math.Float64bits(r0[i]))
			}
		}
	}
	if bad > 3 {
		t.Errorf("%s: rank %d differs from rank 0 at %d of %d elements", what, comm.Rank(), bad, len(buf))
	}
}

// TestSameBits checks that every rank gets the same bits from a sum that
// depends on the order of the additions, for buffer lengths that select
// each of Open MPI's algorithms, and logs how many elements differ from the
// sum in rank order.
func TestSameBits(t *testing.T) {
	pattern := []float64{1e16, 1, -1e16, 1}
	for _, n := range []int{1, 4, 1000, 10_000, 100_000, 1_000_000} {
		rng := rand.New(rand.NewPCG(uint64(n), 1))
		all := make([][]float64, comm.Size()) // the buffers of every rank, before the sum
		for r := range all {
			all[r] = make([]float64, n)
		}
		for i := range n {
			random := i%2 == 1
			for r := range all {
				if random {
					all[r][i] = (rng.Float64() - 0.5) * math.Ldexp(1, rng.IntN(80)-40)
				} else {
					all[r][i] = pattern[(i/2+r)%len(pattern)]
				}
			}
		}
		buf := append([]float64(nil), all[comm.Rank()]...)
		if err := comm.AllReduce(buf, dist.Sum); err != nil {
			t.Fatal(err)
		}
		sameBits(t, fmt.Sprintf("Sum, n=%d", n), buf)
		other := 0
		for i := range n {
			var s float64
			for r := range all {
				s += all[r][i]
			}
			if s != buf[i] {
				other++
			}
		}
		t.Logf("n=%d: %d elements differ from the sum in rank order", n, other)
	}
}

// TestManyCollectives makes many collectives in a row, of varied kinds and
// lengths, and checks each.
func TestManyCollectives(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7)) // the same sequence on every rank
	bad := 0
	for k := range 3000 {
		n := rng.IntN(300)
		buf := make([]float64, n)
		for i := range buf {
			buf[i] = value(comm.Rank(), i+k)
		}
		var what string
		var err error
		var want func(i int) float64
		switch rng.IntN(4) {
		case 0:
			what, err = "Sum", comm.AllReduce(buf, dist.Sum)
			want = func(i int) float64 {
				var s float64
				for r := range comm.Size() {
					s += value(r, i+k)
				}
				return s
			}
		case 1:
			what, err = "Max", comm.AllReduce(buf, dist.Max)
			want = func(i int) float64 {
				m := value(0, i+k)
				for r := 1; r < comm.Size(); r++ {
					m = max(m, value(r, i+k))
				}
				return m
			}
		case 2:
			root := rng.IntN(comm.Size())
			what, err = fmt.Sprintf("Broadcast from %d", root), comm.Broadcast(buf, root)
			want = func(i int) float64 { return value(root, i+k) }
		case 3:
			root := rng.IntN(comm.Size())
			b := make([]byte, n)
			for i := range b {
				b[i] = byte(int(value(comm.Rank(), i+k)))
			}
			what, err = fmt.Sprintf("BroadcastBytes from %d", root), comm.BroadcastBytes(b, root)
			for i := range buf {
				buf[i] = float64(b[i])
			}
			want = func(i int) float64 { return float64(byte(int(value(root, i+k)))) }
		}
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range buf {
			if w := want(i); v != w {
				if bad++; bad <= 3 {
					t.Errorf("collective %d, %s of %d: element %d is %v, want %v", k, what, n, i, v, w)
				}
			}
		}
	}
}

func TestPanics(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"AllReduce with Op(7)", func() { comm.AllReduce([]float64{1}, dist.Op(7)) }},
		{"Broadcast from -1", func() { comm.Broadcast([]float64{1}, -1) }},
		{"Broadcast from Size", func() { comm.Broadcast([]float64{1}, comm.Size()) }},
		{"BroadcastBytes from -1", func() { comm.BroadcastBytes([]byte{1}, -1) }},
		{"BroadcastBytes from Size", func() { comm.BroadcastBytes([]byte{1}, comm.Size()) }},
	} {
		func() {
			defer func() {
				msg, _ := recover().(string)
				if !strings.HasPrefix(msg, "mpi: ") {
					t.Errorf("%s: panic %q, want a message prefixed \"mpi: \"", tc.name, msg)
				}
			}()
			tc.f()
		}()
	}
}

// BenchmarkAllReduce measures AllReduce sums of n doubles. Under mpirun
// every rank must make the same number of calls, which Go's choice of b.N
// from each process's own timings does not give: run it with a fixed count,
// -test.benchtime=200x.
func BenchmarkAllReduce(b *testing.B) {
	if comm.Size() > 1 && !strings.HasSuffix(flag.Lookup("test.benchtime").Value.String(), "x") {
		b.Skip("under mpirun, run with -test.benchtime=Nx: every rank must make the same number of calls")
	}
	for _, n := range []int{1, 1000, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			buf := make([]float64, n)
			for i := range buf {
				buf[i] = value(comm.Rank(), i)
			}
			b.SetBytes(int64(8 * n))
			if err := comm.Barrier(); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for range b.N {
				if err := comm.AllReduce(buf, dist.Sum); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
